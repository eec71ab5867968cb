//! Sync phases, waves and hooks: PreSync → Sync waves → PostSync, hook delete policies, and a
//! failing hook that stops the sync and runs the SyncFail hooks.

mod common;

use common::{Harness, automated, cm};
use plumb_core::key::str_at;
use serde_json::Value;

fn job(name: &str, hook: &str, image: &str, extra_annotations: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: {name}-\n  annotations:\n    argocd.argoproj.io/hook: {hook}\n{extra_annotations}spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: run\n        image: {image}\n"
    )
}

fn with_wave(manifest: &str, wave: i64) -> String {
    manifest.replacen(
        "metadata:\n",
        &format!("metadata:\n  annotations:\n    argocd.argoproj.io/sync-wave: \"{wave}\"\n"),
        1,
    )
}

fn results(app: &Value) -> Vec<Value> {
    app.pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_and_waves_run_in_order() {
    let h = Harness::start(&[
        ("app/pre.yaml", &job("migrate", "PreSync", "busybox:1", "")),
        ("app/a.yaml", &cm("first", "1")),
        ("app/b.yaml", &with_wave(&cm("second", "1"), 2)),
        (
            "app/post.yaml",
            &job(
                "smoke",
                "PostSync",
                "busybox:1",
                "    argocd.argoproj.io/hook-delete-policy: HookSucceeded\n",
            ),
        ),
    ])
    .await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.create_app("web", "app", automated(false)).await;
    let _app = h.wait_synced("web", &revision).await;
    let app = h
        .wait_app("web", "operation Succeeded", |a| {
            str_at(a, &["status", "operationState", "phase"]) == "Succeeded"
        })
        .await;
    let results = results(&app);
    let order: Vec<String> = results
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{}",
                str_at(r, &["syncPhase"]),
                str_at(r, &["kind"]),
                str_at(r, &["name"])
            )
        })
        .collect();
    assert_eq!(order.len(), 4, "{order:?}");
    assert!(order[0].starts_with("PreSync:Job:migrate-"), "{order:?}");
    assert_eq!(order[1], "Sync:ConfigMap:first");
    assert_eq!(order[2], "Sync:ConfigMap:second");
    assert!(order[3].starts_with("PostSync:Job:smoke-"), "{order:?}");
    assert!(
        results
            .iter()
            .all(|r| str_at(r, &["hookPhase"]) == "Succeeded"),
        "{results:?}"
    );
    assert_eq!(str_at(&results[0], &["hookType"]), "PreSync");
    // Hooks are not part of the application's resources.
    let kinds: Vec<&str> = app
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| str_at(r, &["kind"]))
        .collect();
    assert_eq!(kinds, ["ConfigMap", "ConfigMap"]);
    // HookSucceeded deleted the PostSync job; the PreSync job (BeforeHookCreation) stays.
    let jobs = h
        .cluster
        .list("batch/v1", "Job", "apps")
        .await
        .expect("jobs");
    let names: Vec<&str> = jobs
        .iter()
        .map(|j| str_at(j, &["metadata", "name"]))
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("migrate-"))
            && !names.iter().any(|n| n.starts_with("smoke-")),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pre_sync_hook_stops_the_sync_and_runs_sync_fail_hooks() {
    let h = Harness::start(&[
        (
            "app/pre.yaml",
            &job("migrate", "PreSync", "example.com/fail-job:1", ""),
        ),
        ("app/a.yaml", &cm("never", "1")),
        (
            "app/fail.yaml",
            &job("cleanup", "SyncFail", "busybox:1", ""),
        ),
    ])
    .await;
    h.create_app("web", "app", automated(false)).await;
    let app = h
        .wait_app("web", "operation Failed", |a| {
            str_at(a, &["status", "operationState", "phase"]) == "Failed"
        })
        .await;
    assert!(
        h.configmap("never").await.is_none(),
        "the Sync phase never ran"
    );
    let phases: Vec<String> = results(&app)
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                str_at(r, &["syncPhase"]),
                str_at(r, &["hookPhase"])
            )
        })
        .collect();
    assert!(phases.contains(&"PreSync:Failed".to_string()), "{phases:?}");
    assert!(
        phases.contains(&"SyncFail:Succeeded".to_string()),
        "{phases:?}"
    );
    assert_eq!(str_at(&app, &["status", "sync", "status"]), "OutOfSync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_a_running_sync_stops_it_and_deletes_the_running_hook() {
    // The PreSync hook's image is never pulled: the sync waits on it until terminated.
    let h = Harness::start(&[
        (
            "app/pre.yaml",
            &job("migrate", "PreSync", "example.com/fail-pull:1", ""),
        ),
        ("app/a.yaml", &cm("after-hook", "1")),
        (
            "app/fail.yaml",
            &job("cleanup", "SyncFail", "busybox:1", ""),
        ),
    ])
    .await;
    h.create_app("web", "app", automated(false)).await;
    let running = h
        .wait_app("web", "the hook running", |a| {
            str_at(a, &["status", "operationState", "phase"]) == "Running"
                && results(a)
                    .iter()
                    .any(|r| str_at(r, &["hookPhase"]) == "Running")
        })
        .await;
    let hook = results(&running)
        .into_iter()
        .find(|r| str_at(r, &["hookPhase"]) == "Running")
        .map(|r| str_at(&r, &["name"]).to_string())
        .unwrap_or_default();
    assert!(
        h.cluster
            .get("batch/v1", "Job", "apps", &hook)
            .await
            .expect("get job")
            .is_some(),
        "the hook job {hook} runs"
    );
    // As `plumb app terminate-op` (and Argo CD's CLI) asks: against the version read, so a
    // progress write in between is refused rather than overwritten.
    let mut terminated = false;
    for _ in 0..10 {
        let app = h.app("web").await;
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": str_at(&app, &["metadata", "resourceVersion"])},
            "status": {"operationState": {"phase": "Terminating"}}});
        match h
            .cluster
            .merge_patch(
                plumb_core::application::API_VERSION,
                "Application",
                "argocd",
                "web",
                &patch,
            )
            .await
        {
            Ok(_) => {
                terminated = true;
                break;
            }
            Err(error) if error.is_conflict() => continue,
            Err(error) => panic!("terminate: {error}"),
        }
    }
    assert!(terminated, "the termination request was written");
    let app = h
        .wait_app("web", "operation terminated", |a| {
            str_at(a, &["status", "operationState", "phase"]) == "Failed"
        })
        .await;
    assert_eq!(
        str_at(&app, &["status", "operationState", "message"]),
        "Operation terminated"
    );
    assert!(
        app.get("operation").is_none_or(Value::is_null),
        "the operation is cleared"
    );
    for _ in 0..50 {
        let job = h
            .cluster
            .get("batch/v1", "Job", "apps", &hook)
            .await
            .expect("get job");
        if job.is_none_or(|j| j.pointer("/metadata/deletionTimestamp").is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let job = h
        .cluster
        .get("batch/v1", "Job", "apps", &hook)
        .await
        .expect("get job");
    assert!(
        job.is_none_or(|j| j.pointer("/metadata/deletionTimestamp").is_some()),
        "the running hook is deleted"
    );
    assert!(
        h.configmap("after-hook").await.is_none(),
        "nothing after the hook ran"
    );
    // A terminated operation is not restarted by itself (no retry configured, manual sync).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let later = h.app("web").await;
    assert_eq!(
        str_at(&later, &["status", "operationState", "phase"]),
        "Failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_resumes_the_running_sync_instead_of_repeating_it() {
    // The PreSync hook never finishes (its image is never pulled): the sync is mid-way when
    // the controller stops.
    let mut h = Harness::start(&[
        (
            "app/pre.yaml",
            &job("migrate", "PreSync", "example.com/fail-pull:1", ""),
        ),
        ("app/a.yaml", &cm("after-hook", "1")),
    ])
    .await;
    h.create_app("web", "app", automated(false)).await;
    let running = h
        .wait_app("web", "the hook running", |a| {
            results(a)
                .iter()
                .any(|r| str_at(r, &["hookPhase"]) == "Running")
        })
        .await;
    let started = str_at(&running, &["status", "operationState", "startedAt"]).to_string();
    h.stop_controller();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    h.start_controller();
    // Let the new controller look at it a few times.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let app = h.app("web").await;
    assert_eq!(
        str_at(&app, &["status", "operationState", "phase"]),
        "Running"
    );
    assert_eq!(
        str_at(&app, &["status", "operationState", "startedAt"]),
        started,
        "the same operation goes on"
    );
    let jobs = h
        .cluster
        .list("batch/v1", "Job", "apps")
        .await
        .expect("jobs");
    assert_eq!(jobs.len(), 1, "the hook was not created again: {jobs:?}");
    assert!(
        h.configmap("after-hook").await.is_none(),
        "the Sync phase still waits for the hook"
    );
}
