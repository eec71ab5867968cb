//! `syncPolicy.retry` / `operation.retry`: a failed sync is retried after Argo CD's backoff
//! (`duration * factor^(attempt-1)`, capped at `maxDuration`, counted from the failed attempt's
//! `finishedAt`), up to `limit` times. Time is a manual clock the test moves by hand, so the
//! timing is checked exactly and nothing sleeps for the backoff.

mod common;

use common::Harness;
use plumb_core::key::str_at;
use plumb_engine::clock::{Clock, ManualClock};
use serde_json::{Value, json};
use std::time::Duration;

/// A ConfigMap in a namespace that does not exist yet: every sync fails until it is created.
const FILES: &[(&str, &str)] = &[(
    "app/cm.yaml",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: later\ndata:\n  a: \"1\"\n",
)];

fn start_time() -> chrono::DateTime<chrono::Utc> {
    // Whole seconds: status timestamps have second precision.
    let now = chrono::Utc::now().timestamp();
    chrono::DateTime::from_timestamp(now, 0).expect("valid time")
}

fn at(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Starts a manual sync of `name` with the given retry strategy.
async fn sync_with_retry(h: &Harness, name: &str, retry: Value) {
    h.request_operation(name, json!({"sync": {"revision": "main"}, "retry": retry}))
        .await;
}

fn state(app: &Value) -> &Value {
    app.pointer("/status/operationState")
        .unwrap_or(&Value::Null)
}

fn retry_count(app: &Value) -> u64 {
    state(app)
        .get("retryCount")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

async fn wait_attempt_failed(h: &Harness, name: &str, attempt: u64) -> Value {
    h.wait_app(
        name,
        &format!("attempt {attempt} to fail and wait for its retry"),
        |app| {
            let state = state(app);
            str_at(state, &["phase"]) == "Running"
                && retry_count(app) == attempt
                && !str_at(state, &["finishedAt"]).is_empty()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_syncs_are_retried_after_argo_cds_backoff() {
    let start = start_time();
    let clock = ManualClock::new(start);
    let h = Harness::start_with_clock(FILES, Clock::Manual(clock.clone())).await;
    h.create_app("web", "app", json!({})).await;
    h.wait_app("web", "a first comparison", |app| {
        !str_at(app, &["status", "sync", "status"]).is_empty()
    })
    .await;
    let retry =
        json!({"limit": 3, "backoff": {"duration": "1h", "factor": 2, "maxDuration": "3h"}});
    sync_with_retry(&h, "web", retry).await;

    // Attempt 1 fails; retry #1 is due one `duration` after it finished.
    let app = wait_attempt_failed(&h, "web", 1).await;
    let first = state(&app).clone();
    assert_eq!(str_at(&first, &["finishedAt"]), at(start));
    let message = str_at(&first, &["message"]);
    assert!(
        message.contains("later")
            && message.ends_with(&format!(
                "Retrying attempt #1 at {}",
                at(start + chrono::Duration::hours(1))
            )),
        "{message}"
    );

    // Woken before the time (a refresh, and again one second early): nothing is attempted.
    let app = h.reconcile_now("web").await;
    assert_eq!(state(&app), &first, "no attempt before the backoff");
    clock.advance(Duration::from_secs(3599));
    let app = h.reconcile_now("web").await;
    assert_eq!(state(&app), &first, "no attempt one second early");

    // On time: attempt 2 runs and fails; retry #2 waits duration × factor = 2 h.
    clock.advance(Duration::from_secs(1));
    h.refresh("web").await;
    let app = wait_attempt_failed(&h, "web", 2).await;
    let second = state(&app).clone();
    let retried_at = start + chrono::Duration::hours(1);
    assert_eq!(str_at(&second, &["startedAt"]), at(retried_at));
    assert_eq!(str_at(&second, &["finishedAt"]), at(retried_at));
    assert!(
        str_at(&second, &["message"]).ends_with(&format!(
            "Retrying attempt #2 at {}",
            at(retried_at + chrono::Duration::hours(2))
        )),
        "{second}"
    );

    // The cause goes away; the retry still waits its full 2 h.
    h.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "later"}}))
        .await;
    clock.advance(Duration::from_secs(2 * 3600 - 1));
    let app = h.reconcile_now("web").await;
    assert_eq!(state(&app), &second, "no attempt before 2 h");
    assert!(
        h.cluster
            .get("v1", "ConfigMap", "later", "settings")
            .await
            .expect("get")
            .is_none()
    );

    clock.advance(Duration::from_secs(1));
    h.refresh("web").await;
    let app = h
        .wait_app("web", "the third attempt to succeed", |app| {
            str_at(state(app), &["phase"]) == "Succeeded"
        })
        .await;
    assert_eq!(retry_count(&app), 2);
    assert!(app.get("operation").is_none_or(Value::is_null));
    assert!(
        h.cluster
            .get("v1", "ConfigMap", "later", "settings")
            .await
            .expect("get")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_limit_and_the_cap_bounds_the_wait() {
    let start = start_time();
    let clock = ManualClock::new(start);
    let h = Harness::start_with_clock(FILES, Clock::Manual(clock.clone())).await;
    h.create_app("web", "app", json!({})).await;
    h.wait_app("web", "a first comparison", |app| {
        !str_at(app, &["status", "sync", "status"]).is_empty()
    })
    .await;
    // 10 m × 5 would be 50 m, capped at 20 m.
    let retry =
        json!({"limit": 2, "backoff": {"duration": "10m", "factor": 5, "maxDuration": "20m"}});
    sync_with_retry(&h, "web", retry).await;

    wait_attempt_failed(&h, "web", 1).await;
    clock.advance(Duration::from_secs(600));
    h.refresh("web").await;
    let app = wait_attempt_failed(&h, "web", 2).await;
    let waiting = state(&app).clone();
    let retried_at = start + chrono::Duration::minutes(10);
    assert!(
        str_at(&waiting, &["message"]).ends_with(&format!(
            "Retrying attempt #2 at {}",
            at(retried_at + chrono::Duration::minutes(20))
        )),
        "{waiting}"
    );
    clock.advance(Duration::from_secs(20 * 60 - 1));
    let app = h.reconcile_now("web").await;
    assert_eq!(state(&app), &waiting, "the cap is the wait, not less");

    // The last allowed attempt fails: the operation is over, Failed, and not retried again.
    clock.advance(Duration::from_secs(1));
    h.refresh("web").await;
    let app = h
        .wait_app("web", "the operation to fail for good", |app| {
            str_at(state(app), &["phase"]) == "Failed"
        })
        .await;
    assert_eq!(retry_count(&app), 2);
    assert!(app.get("operation").is_none_or(Value::is_null));
    let failed = state(&app).clone();
    clock.advance(Duration::from_secs(24 * 3600));
    let app = h.reconcile_now("web").await;
    assert_eq!(state(&app), &failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automated_sync_retries_a_failing_revision() {
    let start = start_time();
    let clock = ManualClock::new(start);
    // A Job hook whose image the embedded cluster makes fail: the automated sync fails.
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    argocd.argoproj.io/hook: PreSync\n    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: m\n        image: fail-job\n";
    let h = Harness::start_with_clock(
        &[
            ("app/job.yaml", job),
            ("app/cm.yaml", &common::cm("web", "1")),
        ],
        Clock::Manual(clock.clone()),
    )
    .await;
    h.create_app(
        "web",
        "app",
        json!({"automated": {"prune": true},
            "retry": {"limit": 1, "backoff": {"duration": "30s", "factor": 2}}}),
    )
    .await;
    let app = wait_attempt_failed(&h, "web", 1).await;
    assert_eq!(
        state(&app).pointer("/operation/initiatedBy/automated"),
        Some(&json!(true))
    );
    let app = h.reconcile_now("web").await;
    assert_eq!(retry_count(&app), 1, "no attempt before 30 s");
    clock.advance(Duration::from_secs(30));
    h.refresh("web").await;
    let app = h
        .wait_app("web", "the retry to fail for good", |app| {
            str_at(state(app), &["phase"]) == "Failed"
        })
        .await;
    assert_eq!(retry_count(&app), 1);
    assert!(h.configmap("web").await.is_none(), "PreSync failed first");
}
