//! argocd-example-apps' `sync-waves` and `pre-post-sync` applications, unchanged from
//! `../shared/corpus`, sync with hooks and waves in the order Argo CD documents: PreSync hooks,
//! then the Sync phase wave by wave, then PostSync hooks; hooks are cleaned up by their policy.

mod common;

use common::{Harness, automated};
use plumb_core::key::str_at;
use serde_json::Value;
use std::path::Path;

fn corpus(dirs: &[&str]) -> Vec<(String, String)> {
    // `shared/` sits beside the checkout; /work/shared on this project's machines.
    let beside =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/argocd-example-apps");
    let root = if beside.is_dir() {
        beside
    } else {
        Path::new("/work/shared/corpus/argocd-example-apps").to_path_buf()
    };
    let mut files = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(root.join(dir)).expect("corpus directory");
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let text = std::fs::read_to_string(entry.path()).expect("corpus file");
            files.push((format!("{dir}/{name}"), text));
        }
    }
    files
}

fn results(app: &Value) -> Vec<Value> {
    app.pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

async fn synced_and_healthy(h: &Harness, name: &str) -> Value {
    h.wait_app(name, "Synced, Healthy and the operation Succeeded", |a| {
        str_at(a, &["status", "sync", "status"]) == "Synced"
            && str_at(a, &["status", "health", "status"]) == "Healthy"
            && str_at(a, &["status", "operationState", "phase"]) == "Succeeded"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_waves_run_presync_then_waves_in_order() {
    let files = corpus(&["sync-waves"]);
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let h = Harness::start(&files).await;
    h.create_app("sync-waves", "sync-waves", automated(false))
        .await;
    let app = synced_and_healthy(&h, "sync-waves").await;
    // Results are recorded in the order the objects were applied.
    let order: Vec<(String, String, String)> = results(&app)
        .iter()
        .map(|r| {
            (
                str_at(r, &["syncPhase"]).to_string(),
                str_at(r, &["kind"]).to_string(),
                str_at(r, &["name"]).to_string(),
            )
        })
        .collect();
    let position = |kind: &str, name: &str| {
        order
            .iter()
            .position(|(_, k, n)| k == kind && n.starts_with(name))
            .unwrap_or_else(|| panic!("{kind} {name} not in {order:?}"))
    };
    let pre = position("Job", "upgrade-sql-schema");
    let backend = position("ReplicaSet", "backend");
    let page_up = position("Job", "maint-page-up");
    let frontend = position("ReplicaSet", "frontend");
    let page_down = position("Job", "maint-page-down");
    assert!(
        pre < backend && backend < page_up && page_up < frontend && frontend < page_down,
        "{order:?}"
    );
    assert_eq!(order[pre].0, "PreSync");
    for result in results(&app) {
        assert_ne!(str_at(&result, &["status"]), "SyncFailed", "{result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_post_sync_hooks_run_around_the_sync_and_are_deleted_when_they_succeed() {
    let files = corpus(&["pre-post-sync", "kustomize-guestbook"]);
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let h = Harness::start(&files).await;
    h.create_app("pre-post-sync", "pre-post-sync", automated(false))
        .await;
    let app = synced_and_healthy(&h, "pre-post-sync").await;
    let order: Vec<(String, String)> = results(&app)
        .iter()
        .map(|r| {
            (
                str_at(r, &["syncPhase"]).to_string(),
                str_at(r, &["name"]).to_string(),
            )
        })
        .collect();
    let phase_rank = |phase: &str| match phase {
        "PreSync" => 0,
        "Sync" => 1,
        "PostSync" => 2,
        _ => 3,
    };
    let ranks: Vec<i32> = order.iter().map(|(p, _)| phase_rank(p)).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    assert!(
        order.contains(&("PreSync".into(), "pre-post-sync-before".into())),
        "{order:?}"
    );
    assert!(
        order.contains(&("PostSync".into(), "pre-post-sync-after".into())),
        "{order:?}"
    );
    assert!(
        order.contains(&("Sync".into(), "pre-post-sync-kustomize-guestbook-ui".into())),
        "{order:?}"
    );
    // HookSucceeded: both hook Jobs are gone once they succeeded.
    for job in ["pre-post-sync-before", "pre-post-sync-after"] {
        let mut gone = false;
        for _ in 0..100 {
            let live = h
                .cluster
                .get("batch/v1", "Job", "apps", job)
                .await
                .expect("get job");
            if live.is_none_or(|j| j.pointer("/metadata/deletionTimestamp").is_some()) {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(gone, "hook {job} deleted after it succeeded");
    }
}
