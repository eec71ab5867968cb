//! Sync windows against a manual clock: allow and deny windows with a time zone, `manualSync`,
//! and a blocked automated sync that goes ahead the moment its window opens.

mod common;

use common::{Harness, cm};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use plumb_engine::clock::{Clock, ManualClock};
use serde_json::{Value, json};
use std::time::Duration;

fn utc(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&chrono::Utc)
}

fn blocked(app: &Value) -> Option<String> {
    app.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| str_at(c, &["type"]) == "SyncWindowBlocked")
        })
        .map(|c| str_at(c, &["message"]).to_string())
}

async fn value(h: &Harness, name: &str) -> Option<String> {
    h.configmap(name)
        .await
        .map(|cm| str_at(&cm, &["data", "value"]).to_string())
}

async fn manual_sync(h: &Harness, name: &str) -> Value {
    h.run_operation(name, json!({"sync": {"revision": "main"}}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_follow_their_time_zone_and_manual_sync_setting() {
    // Monday 2026-12-07 08:30 in New York (EST, UTC-5).
    let clock = ManualClock::new(utc("2026-12-07T13:30:00Z"));
    let h = Harness::start_with_clock(
        &[
            ("web/a.yaml", &cm("web", "1")),
            ("ops/b.yaml", &cm("ops", "1")),
        ],
        Clock::Manual(clock.clone()),
    )
    .await;
    let project = |name: &str, window: Value| {
        json!({"apiVersion": API_VERSION, "kind": "AppProject",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                "syncWindows": [window]}})
    };
    // web may sync 09:00–10:00 New York time on weekdays; manual syncs any time.
    h.apply(project(
        "default",
        json!({"kind": "allow", "schedule": "0 9 * * 1-5", "duration": "1h",
            "timeZone": "America/New_York", "applications": ["web"], "manualSync": true}),
    ))
    .await;
    // ops must not change 09:00–10:00 New York time, not even by hand.
    h.apply(project(
        "ops",
        json!({"kind": "deny", "schedule": "0 9 * * *", "duration": "1h",
            "timeZone": "America/New_York", "applications": ["*"]}),
    ))
    .await;
    let automated = json!({"automated": {"prune": true, "selfHeal": true}});
    h.create_app("web", "web", automated.clone()).await;
    h.apply(json!({"apiVersion": API_VERSION, "kind": "Application",
        "metadata": {"name": "ops", "namespace": "argocd"},
        "spec": {"project": "ops",
            "source": {"repoURL": h.url(), "targetRevision": "main", "path": "ops"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "syncPolicy": automated}}))
        .await;

    // 08:30 New York: web waits for its window, which opens at 14:00 UTC (09:00 New York, not
    // 09:00 UTC); ops is outside its deny window and syncs.
    let head = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("ops", &head).await;
    let message = h
        .wait_app("web", "web blocked", |app| blocked(app).is_some())
        .await;
    let message = blocked(&message).unwrap_or_default();
    assert!(
        message.contains("outside allow window") && message.contains("2026-12-07T14:00:00Z"),
        "{message}"
    );
    assert_eq!(value(&h, "web").await, None);

    // 08:59:59: still closed.
    clock.advance(Duration::from_secs(29 * 60 + 59));
    h.reconcile_now("web").await;
    assert_eq!(value(&h, "web").await, None);

    // 09:00 New York: the window opens and the waiting automated sync goes ahead; ops is frozen.
    clock.advance(Duration::from_secs(1));
    h.refresh("web").await;
    h.wait_synced("web", &head).await;
    assert_eq!(value(&h, "web").await.as_deref(), Some("1"));

    let second = h.commit(
        &[
            ("web/a.yaml", &cm("web", "2")),
            ("ops/b.yaml", &cm("ops", "2")),
        ],
        "second",
    );
    h.refresh("ops").await;
    let app = h
        .wait_app("ops", "ops blocked by its deny window", |app| {
            blocked(app).is_some() && str_at(app, &["status", "sync", "revision"]) == second
        })
        .await;
    assert!(
        blocked(&app)
            .unwrap_or_default()
            .contains("deny window(s) 0 until 2026-12-07T15:00:00Z"),
        "{app}"
    );
    let app = manual_sync(&h, "ops").await;
    assert_eq!(
        str_at(&app, &["status", "operationState", "phase"]),
        "Failed"
    );
    assert_eq!(value(&h, "ops").await.as_deref(), Some("1"));

    // 10:00 New York: ops's deny window is over and its automated sync goes ahead; web's window
    // has closed (a new commit waits), but manualSync lets a person sync it.
    clock.advance(Duration::from_secs(3600));
    h.refresh("ops").await;
    h.wait_synced("ops", &second).await;
    assert_eq!(value(&h, "ops").await.as_deref(), Some("2"));
    let before = value(&h, "web").await;
    let third = h.commit(&[("web/a.yaml", &cm("web", "3"))], "third");
    h.refresh("web").await;
    let app = h
        .wait_app("web", "web blocked again", |app| {
            blocked(app).is_some() && str_at(app, &["status", "sync", "revision"]) == third
        })
        .await;
    assert!(
        blocked(&app)
            .unwrap_or_default()
            .contains("2026-12-08T14:00:00Z"),
        "{app}"
    );
    assert_eq!(value(&h, "web").await, before, "automated sync waits");
    let app = manual_sync(&h, "web").await;
    assert_eq!(
        str_at(&app, &["status", "operationState", "phase"]),
        "Succeeded",
        "{app}"
    );
    assert_eq!(value(&h, "web").await.as_deref(), Some("3"));
}
