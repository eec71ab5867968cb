//! The GitOps loop end to end: Git → render → compare → apply → prune → health → self-heal,
//! against an in-process devcluster and temporary Git repositories.

mod common;

use common::{Harness, automated, cm};
use plumb_core::key::str_at;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_then_revision_change() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("a", "one")),
        ("app/b.yaml", &cm("b", "one")),
    ])
    .await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.create_app("web", "app", automated(false)).await;
    let app = h.wait_synced("web", &first).await;
    assert_eq!(
        app.pointer("/status/resources")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        str_at(&app, &["status", "operationState", "phase"]),
        "Succeeded"
    );
    assert_eq!(str_at(&app, &["status", "sourceType"]), "Directory");
    let a = h.configmap("a").await.expect("a applied");
    assert_eq!(a["data"]["value"], "one");
    assert_eq!(
        str_at(
            &a,
            &["metadata", "annotations", "argocd.argoproj.io/tracking-id"]
        ),
        "web:/ConfigMap:apps/a"
    );

    let second = h.commit(&[("app/a.yaml", &cm("a", "two"))], "change a");
    h.refresh("web").await;
    let app = h.wait_synced("web", &second).await;
    assert_eq!(h.configmap("a").await.expect("a")["data"]["value"], "two");
    let history = app
        .pointer("/status/history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[1]["revision"], second);
    assert!(
        str_at(
            &app,
            &["metadata", "annotations", "argocd.argoproj.io/refresh"]
        )
        .is_empty(),
        "refresh annotation removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_only_owned_objects() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("a", "1")),
        ("app/b.yaml", &cm("b", "1")),
        ("app/c.yaml", &cm("c", "1")),
    ])
    .await;
    h.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unmanaged", "namespace": "apps"}}))
        .await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.create_app("web", "app", automated(false)).await;
    h.wait_synced("web", &first).await;
    let second = h.commit(&[("app/b.yaml", "")], "drop b");
    h.refresh("web").await;
    h.wait_synced("web", &second).await;
    assert!(h.configmap("b").await.is_none(), "b pruned");
    assert!(h.configmap("a").await.is_some());
    assert!(
        h.configmap("unmanaged").await.is_some(),
        "unmanaged objects are left alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reverted_with_self_heal() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "git"))]).await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.create_app("web", "app", automated(true)).await;
    h.wait_synced("web", &first).await;
    let started = Instant::now();
    h.cluster
        .merge_patch(
            "v1",
            "ConfigMap",
            "apps",
            "a",
            &json!({"data": {"value": "by hand"}}),
        )
        .await
        .expect("patch");
    loop {
        if h.configmap("a").await.expect("a")["data"]["value"] == "git" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "drift not reverted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_without_self_heal_is_reported() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "git"))]).await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.create_app("web", "app", automated(false)).await;
    h.wait_synced("web", &first).await;
    h.cluster
        .merge_patch(
            "v1",
            "ConfigMap",
            "apps",
            "a",
            &json!({"data": {"value": "by hand"}}),
        )
        .await
        .expect("patch");
    h.wait_app("web", "OutOfSync", |app| {
        str_at(app, &["status", "sync", "status"]) == "OutOfSync"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        h.configmap("a").await.expect("a")["data"]["value"],
        "by hand",
        "not reverted without selfHeal"
    );
    let events = h
        .cluster
        .list("v1", "Event", "argocd")
        .await
        .expect("events");
    assert!(
        events
            .iter()
            .any(|e| str_at(e, &["message"]).contains("Synced -> OutOfSync")),
        "an event records the drift: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_render_never_prunes() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("a", "1")),
        ("app/README.md", "keep the directory"),
    ])
    .await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.create_app("web", "app", automated(false)).await;
    h.wait_synced("web", &first).await;
    h.commit(&[("app/a.yaml", "")], "oops, everything removed");
    h.refresh("web").await;
    let message = h.condition("web", "PruneBlockedWarning").await;
    assert!(message.contains("rendered no objects"), "{message}");
    assert!(h.configmap("a").await.is_some(), "nothing pruned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automated_sync_refuses_mass_prune() {
    let files: Vec<(String, String)> = (0..4)
        .map(|i| (format!("app/{i}.yaml"), cm(&format!("c{i}"), "1")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let h = Harness::start(&refs).await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.create_app("web", "app", automated(false)).await;
    h.wait_synced("web", &first).await;
    h.commit(
        &[("app/1.yaml", ""), ("app/2.yaml", ""), ("app/3.yaml", "")],
        "remove three of four",
    );
    h.refresh("web").await;
    let message = h.condition("web", "PruneBlockedWarning").await;
    assert!(message.contains("would prune 3 of 4"), "{message}");
    for i in 0..4 {
        assert!(h.configmap(&format!("c{i}")).await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_reapplies_a_recorded_revision() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "v1"))]).await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.create_app("web", "app", json!({})).await;
    let sync = |h: &Harness, sync: Value| {
        let cluster = h.cluster.clone();
        async move {
            let operation =
                json!({"operation": {"sync": sync, "initiatedBy": {"username": "test"}}});
            cluster
                .merge_patch(
                    plumb_core::application::API_VERSION,
                    "Application",
                    "argocd",
                    "web",
                    &operation,
                )
                .await
                .expect("operation");
        }
    };
    h.wait_app("web", "OutOfSync", |a| {
        str_at(a, &["status", "sync", "status"]) == "OutOfSync"
    })
    .await;
    sync(&h, json!({"prune": true})).await;
    h.wait_synced("web", &first).await;
    let second = h.commit(&[("app/a.yaml", &cm("a", "v2"))], "v2");
    h.refresh("web").await;
    h.wait_app("web", "OutOfSync at v2", |a| {
        str_at(a, &["status", "sync", "revision"]) == second
    })
    .await;
    sync(&h, json!({"prune": true})).await;
    h.wait_app("web", "history of 2", |a| {
        a.pointer("/status/history")
            .and_then(Value::as_array)
            .is_some_and(|h| h.len() == 2)
    })
    .await;
    assert_eq!(h.configmap("a").await.expect("a")["data"]["value"], "v2");
    sync(&h, json!({"revision": first, "prune": false})).await;
    h.wait_app("web", "history of 3", |a| {
        a.pointer("/status/history")
            .and_then(Value::as_array)
            .is_some_and(|h| h.len() == 3)
    })
    .await;
    assert_eq!(
        h.configmap("a").await.expect("a")["data"]["value"],
        "v1",
        "rolled back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_repository_is_a_condition() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    h.apply(json!({
        "apiVersion": plumb_core::application::API_VERSION, "kind": "Application",
        "metadata": {"name": "gone", "namespace": "argocd"},
        "spec": {"source": {"repoURL": format!("file://{}/nope", h.dir.path().display()), "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "syncPolicy": automated(true)}
    }))
    .await;
    let message = h.condition("gone", "ComparisonError").await;
    assert!(message.contains("nope"), "{message}");
    assert_eq!(
        str_at(&h.app("gone").await, &["status", "sync", "status"]),
        "Unknown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_restart_converges_without_duplicate_history() {
    let mut h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.create_app("web", "app", automated(true)).await;
    h.wait_synced("web", &first).await;
    h.stop_controller();
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.start_controller();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let app = h.wait_synced("web", &first).await;
    assert_eq!(
        app.pointer("/status/history")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_differences_keeps_an_ignored_change_in_sync() {
    let h = Harness::start(&[(
        "app/a.yaml",
        &format!("{}  other: \"git\"\n", cm("a", "git")),
    )])
    .await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.apply(json!({
        "apiVersion": plumb_core::application::API_VERSION, "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd"},
        "spec": {"source": {"repoURL": h.url(), "targetRevision": "main", "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "ignoreDifferences": [{"kind": "ConfigMap", "jsonPointers": ["/data/value"]},
                {"kind": "ConfigMap", "name": "a", "jqPathExpressions": [".metadata.labels.team"]}],
            "syncPolicy": automated(false)}
    }))
    .await;
    h.wait_synced("web", &first).await;
    h.cluster
        .merge_patch(
            "v1",
            "ConfigMap",
            "apps",
            "a",
            &json!({"data": {"value": "by hand"}, "metadata": {"labels": {"team": "x"}}}),
        )
        .await
        .expect("patch");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        str_at(&h.app("web").await, &["status", "sync", "status"]),
        "Synced",
        "ignored fields do not count"
    );
    h.cluster
        .merge_patch(
            "v1",
            "ConfigMap",
            "apps",
            "a",
            &json!({"data": {"other": "by hand"}}),
        )
        .await
        .expect("patch");
    h.wait_app("web", "OutOfSync", |app| {
        str_at(app, &["status", "sync", "status"]) == "OutOfSync"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_windows_block_automated_and_manual_syncs() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    h.apply(json!({
        "apiVersion": plumb_core::application::API_VERSION, "kind": "AppProject",
        "metadata": {"name": "default", "namespace": "argocd"},
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
            "syncWindows": [{"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]}]}
    }))
    .await;
    h.create_app("web", "app", automated(true)).await;
    let message = h.condition("web", "SyncWindowBlocked").await;
    assert!(message.contains("deny"), "{message}");
    assert!(
        h.configmap("a").await.is_none(),
        "an automated sync waits for the window"
    );
    let operation =
        json!({"operation": {"sync": {"prune": true}, "initiatedBy": {"username": "test"}}});
    h.cluster
        .merge_patch(
            plumb_core::application::API_VERSION,
            "Application",
            "argocd",
            "web",
            &operation,
        )
        .await
        .expect("operation");
    let app = h
        .wait_app("web", "manual sync refused", |a| {
            str_at(a, &["status", "operationState", "phase"]) == "Failed"
        })
        .await;
    assert!(str_at(&app, &["status", "operationState", "message"]).starts_with("cannot sync"));
    assert!(h.configmap("a").await.is_none());
}
