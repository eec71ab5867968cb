//! PostDelete hooks: they run after an Application's resources are deleted, and the
//! Application goes away once they succeeded.

mod common;

use common::{Harness, automated, cm};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_delete_hooks_run_after_the_resources_are_gone() {
    let hook = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: goodbye\n  annotations:\n    argocd.argoproj.io/hook: PostDelete\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: run\n        image: busybox:1\n";
    let h = Harness::start(&[
        ("app/cm.yaml", &cm("kept-until-delete", "1")),
        ("app/hook.yaml", hook),
    ])
    .await;
    h.create_app("web", "app", automated(false)).await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    let app = h
        .wait_app("web", "Synced with the PostDelete finalizer", |a| {
            str_at(a, &["status", "sync", "status"]) == "Synced"
                && str_at(a, &["status", "sync", "revision"]) == revision
                && a.pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| {
                        f.iter()
                            .any(|f| f == "post-delete-finalizer.argocd.argoproj.io")
                    })
        })
        .await;
    assert_eq!(str_at(&app, &["status", "health", "status"]), "Healthy");
    assert!(
        h.cluster
            .get("batch/v1", "Job", "apps", "goodbye")
            .await
            .expect("get")
            .is_none(),
        "a PostDelete hook does not run during a sync"
    );
    // Cascade delete, as `plumb app delete` asks.
    h.cluster
        .merge_patch(API_VERSION, "Application", "argocd", "web",
            &serde_json::json!({"metadata": {"finalizers": ["resources-finalizer.argocd.argoproj.io", "post-delete-finalizer.argocd.argoproj.io"]}}))
        .await
        .expect("finalizers");
    h.cluster
        .delete(
            API_VERSION,
            "Application",
            "argocd",
            "web",
            plumb_kube::Propagation::Foreground,
        )
        .await
        .expect("delete");
    let mut hook_seen = false;
    for _ in 0..200 {
        if h.cluster
            .get("batch/v1", "Job", "apps", "goodbye")
            .await
            .expect("get")
            .is_some()
        {
            hook_seen = true;
            assert!(
                h.configmap("kept-until-delete").await.is_none(),
                "the hook runs after the resources are gone"
            );
        }
        if h.cluster
            .get(API_VERSION, "Application", "argocd", "web")
            .await
            .expect("get")
            .is_none()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hook_seen, "the PostDelete hook ran");
    assert!(
        h.cluster
            .get(API_VERSION, "Application", "argocd", "web")
            .await
            .expect("get")
            .is_none(),
        "the Application is gone once its hook succeeded"
    );
}
