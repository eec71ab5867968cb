//! `spec.dependsOn`: an application syncs only once what it depends on is Synced and Healthy;
//! a cycle is an error on the applications of the cycle, not a wait that never ends.

mod common;

use common::{Harness, automated, cm};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::{Value, json};
use std::time::Duration;

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: main\n        image: nginx:1.27\n"
    )
}

async fn create_app(h: &Harness, name: &str, path: &str, labels: Value, depends_on: Value) {
    h.apply(json!({
        "apiVersion": API_VERSION, "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "labels": labels},
        "spec": {"project": "default",
            "source": {"repoURL": h.url(), "targetRevision": "main", "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "syncPolicy": automated(false),
            "dependsOn": depends_on}
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_waits_for_its_dependencies_to_be_synced_and_healthy() {
    let h = Harness::start(&[
        ("db/db.yaml", &deployment("db")),
        ("web/web.yaml", &cm("web", "1")),
    ])
    .await;
    create_app(
        &h,
        "web",
        "web",
        json!({}),
        json!({"selectors": [{"labelSelector": {"matchLabels": {"tier": "data"}}}], "blockOnEmpty": true}),
    )
    .await;
    let message = h.condition("web", "DependencyNotReady").await;
    assert!(message.contains("blockOnEmpty"), "{message}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        h.configmap("web").await.is_none(),
        "nothing applied before its dependency exists"
    );

    create_app(&h, "db", "db", json!({"tier": "data"}), Value::Null).await;
    // The Deployment becomes available only after its pod is ready: web must not have synced
    // before db was Synced and Healthy.
    let web = h
        .wait_app("web", "web Synced", |a| {
            str_at(a, &["status", "sync", "status"]) == "Synced"
        })
        .await;
    let db = h.app("db").await;
    assert_eq!(
        str_at(&db, &["status", "health", "status"]),
        "Healthy",
        "{db}"
    );
    // Timestamps have a resolution of one second: web's sync cannot have started before db's.
    let db_deployed = db
        .pointer("/status/history/0/deployedAt")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let web_started = str_at(&web, &["status", "operationState", "startedAt"]).to_string();
    assert!(
        !db_deployed.is_empty() && web_started >= db_deployed,
        "web started at {web_started}, db deployed at {db_deployed}"
    );
    assert!(h.configmap("web").await.is_some());
    assert!(
        web.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_none_or(|c| c
                .iter()
                .all(|c| str_at(c, &["type"]) != "DependencyNotReady")),
        "the condition is gone once the dependency is ready"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_cycle_is_an_error_and_nothing_is_applied() {
    let h = Harness::start(&[
        ("a/a.yaml", &cm("cycle-a", "1")),
        ("b/b.yaml", &cm("cycle-b", "1")),
    ])
    .await;
    create_app(
        &h,
        "a",
        "a",
        json!({}),
        json!({"selectors": [{"namePattern": ["b"]}]}),
    )
    .await;
    create_app(
        &h,
        "b",
        "b",
        json!({}),
        json!({"selectors": [{"namePattern": ["a"]}]}),
    )
    .await;
    for name in ["a", "b"] {
        h.wait_app(name, "a cycle condition", |app| {
            app.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        str_at(c, &["type"]) == "InvalidSpecError"
                            && str_at(c, &["message"]).contains("dependency cycle")
                    })
                })
        })
        .await;
    }
    let message = h.condition("a", "InvalidSpecError").await;
    assert!(
        message.contains("argocd/a -> argocd/b -> argocd/a"),
        "{message}"
    );
    assert!(h.configmap("cycle-a").await.is_none());
    assert!(h.configmap("cycle-b").await.is_none());
}
