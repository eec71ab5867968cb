//! Health-gated rollback: `plumb.dev/rollback-on-degraded` rolls an Application back to its
//! last healthy revision when a sync leaves it Degraded longer than the given time.

mod common;

use common::{Harness, automated};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::{Value, json};

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  progressDeadlineSeconds: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: main\n        image: {image}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_left_degraded_is_rolled_back_to_the_last_healthy_revision() {
    let h = Harness::start(&[("app/web.yaml", &deployment("nginx:1.27"))]).await;
    h.apply(json!({
        "apiVersion": API_VERSION, "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd",
            "annotations": {"plumb.dev/rollback-on-degraded": "1s"}},
        "spec": {"project": "default",
            "source": {"repoURL": h.url(), "targetRevision": "main", "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "syncPolicy": automated(false)}
    }))
    .await;
    let good = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("web", &good).await;

    let bad = h.commit(
        &[("app/web.yaml", &deployment("example.com/fail-pull:1"))],
        "an image that never pulls",
    );
    h.refresh("web").await;
    let app = h
        .wait_app("web", "rolled back to the healthy revision", |a| {
            a.pointer("/status/history")
                .and_then(Value::as_array)
                .and_then(|h| h.last())
                .is_some_and(|last| {
                    str_at(last, &["revision"]) == good && !str_at(last, &["reason"]).is_empty()
                })
        })
        .await;
    let history = app
        .pointer("/status/history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let revisions: Vec<&str> = history.iter().map(|h| str_at(h, &["revision"])).collect();
    assert_eq!(revisions, [good.as_str(), bad.as_str(), good.as_str()]);
    let reason = str_at(history.last().unwrap_or(&Value::Null), &["reason"]);
    assert!(
        reason.contains(&format!("after the sync to {bad}")),
        "{reason}"
    );
    assert_eq!(str_at(&app, &["status", "rollback", "rolledBackFrom"]), bad);

    let deployment = h
        .cluster
        .get("apps/v1", "Deployment", "apps", "web")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        deployment.pointer("/spec/template/spec/containers/0/image"),
        Some(&json!("nginx:1.27"))
    );
    // The bad revision is not synced again automatically; the application says why.
    let message = h.condition("web", "RolledBack").await;
    assert!(message.contains(&bad), "{message}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let app = h.app("web").await;
    assert_eq!(
        app.pointer("/status/history")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(3),
        "no new sync of the rolled-back revision"
    );
    assert_eq!(str_at(&app, &["status", "health", "status"]), "Healthy");
    let events = h
        .cluster
        .list("v1", "Event", "argocd")
        .await
        .expect("events");
    assert!(
        events
            .iter()
            .any(|e| str_at(e, &["reason"]) == "RollbackStarted"),
        "an event says so"
    );
}
