//! The sync-semantics building blocks used together through the public API only, the way the
//! engine uses them: an Application spec is read, its ignoreDifferences compiled, the
//! `pre-post-sync` example planned and walked to the end, windows and dependencies consulted.

use plumb_core::application::ApplicationSpec;
use plumb_core::dependencies::{AppNode, DependencyGraph, Readiness};
use plumb_core::hooks::SyncPhase;
use plumb_core::ignore::IgnoreRules;
use plumb_core::manifest::{Manifest, Origin};
use plumb_core::plan::Trigger;
use plumb_core::waves::{OperationPhase, ResourceResult, ResultCode, Step, SyncPlan, SyncProgress};
use plumb_core::windows::{SyncWindow, SyncWindows, WindowTarget};
use serde_json::{Value, json};

fn manifest(file: &str, object: Value) -> Manifest {
    Manifest {
        object,
        origin: Origin {
            file: file.into(),
            document: 0,
        },
    }
}

/// argocd-example-apps `pre-post-sync` (kustomize-guestbook with the `pre-post-sync-` prefix).
fn pre_post_sync() -> Vec<Manifest> {
    vec![
        manifest(
            "guestbook-ui-deployment.yaml",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pre-post-sync-guestbook-ui"}}),
        ),
        manifest(
            "guestbook-ui-svc.yaml",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "pre-post-sync-guestbook-ui"}}),
        ),
        manifest(
            "post-sync-job.yaml",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pre-post-sync-after",
                "annotations": {"argocd.argoproj.io/hook": "PostSync",
                    "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}}}),
        ),
        manifest(
            "pre-sync-job.yaml",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pre-post-sync-before",
                "annotations": {"argocd.argoproj.io/hook": "PreSync",
                    "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}}}),
        ),
    ]
}

#[test]
fn pre_post_sync_runs_hooks_around_the_resources_and_survives_a_restart() {
    let mut progress = SyncProgress::start("6f2c9a1b0d", 1_700_000_000);
    let mut applied = Vec::new();
    loop {
        // Every iteration starts from the stored JSON, as after a controller restart.
        let stored = serde_json::to_value(&progress).unwrap();
        progress = serde_json::from_value(stored).unwrap();
        let plan =
            SyncPlan::build(&pre_post_sync(), &progress.plan_options("guestbook", false)).unwrap();
        let step = plan.next_step(&progress);
        progress.advance(&step);
        match step {
            Step::Apply { tasks, .. } => {
                for task in tasks {
                    applied.push(format!("{}:{}", task.phase, task.key.name));
                    progress.record(ResourceResult::for_task(
                        task,
                        ResultCode::Synced,
                        "created",
                    ));
                }
            }
            Step::Wait { tasks, .. } => {
                for task in tasks {
                    let hook_cleanup = task
                        .hook
                        .as_ref()
                        .is_some_and(|h| h.delete_after(plumb_core::waves::Outcome::Succeeded));
                    assert_eq!(hook_cleanup, task.is_hook(), "both hooks are HookSucceeded");
                    progress.set_task_phase(task, OperationPhase::Succeeded, "healthy");
                }
            }
            Step::Done { succeeded } => {
                assert!(succeeded);
                break;
            }
        }
    }
    assert_eq!(
        applied,
        [
            "PreSync:pre-post-sync-before",
            "Sync:pre-post-sync-guestbook-ui",
            "Sync:pre-post-sync-guestbook-ui",
            "PostSync:pre-post-sync-after"
        ]
    );
    assert_eq!(progress.phase, OperationPhase::Succeeded);
    assert!(
        progress
            .resources
            .iter()
            .any(|r| r.sync_phase == SyncPhase::PostSync)
    );
}

#[test]
fn application_spec_drives_ignore_differences_and_dependencies() {
    let spec = ApplicationSpec::parse(&json!({
        "ignoreDifferences": [{"group": "apps", "kind": "Deployment",
            "jqPathExpressions": [".spec.template.spec.containers[] | select(.name == \"app\") | .image"],
            "jsonPointers": ["/spec/replicas"]}],
        "dependsOn": {"selectors": [{"namePattern": ["database"]}]}
    }))
    .unwrap();
    let rules = IgnoreRules::compile(&spec.ignore_differences).unwrap();
    let deployment = |replicas: i64, image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
    };
    let mut live = deployment(5, "app:2");
    let mut desired = deployment(2, "app:1");
    assert!(
        rules
            .normalize(Some(&mut live), Some(&mut desired))
            .is_empty()
    );
    assert_eq!(live, desired);

    let apps = [
        AppNode {
            namespace: "argocd".into(),
            name: "web".into(),
            depends_on: spec.depends_on.clone(),
            ..Default::default()
        },
        AppNode {
            namespace: "argocd".into(),
            name: "database".into(),
            ..Default::default()
        },
    ];
    let graph = DependencyGraph::build(&apps).unwrap();
    let order: Vec<String> = graph.order().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(order, ["database", "web"]);
    let web = plumb_core::dependencies::AppRef {
        namespace: "argocd".into(),
        name: "web".into(),
    };
    assert!(matches!(
        graph.readiness(&web, |_| false),
        Readiness::Waiting(_)
    ));
}

#[test]
fn project_windows_block_automated_but_not_manual_syncs() {
    let windows: Vec<SyncWindow> = serde_json::from_value(json!([
        {"kind": "deny", "schedule": "0 0 * * SAT", "duration": "48h", "clusters": ["*"], "manualSync": true}
    ]))
    .unwrap();
    let windows = SyncWindows::compile(&windows).unwrap();
    let target = WindowTarget {
        application: "web".into(),
        cluster_server: "https://kubernetes.default.svc".into(),
        ..Default::default()
    };
    // 2026-01-10 is a Saturday.
    let saturday = chrono::DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
        .unwrap()
        .to_utc();
    let automated = windows.decide(&target, saturday, Trigger::Automated);
    assert!(!automated.allowed);
    assert_eq!(
        automated.message(),
        "sync blocked by active deny window(s) 0 until 2026-01-12T00:00:00Z"
    );
    assert!(windows.decide(&target, saturday, Trigger::Manual).allowed);
}
