//! `plumb app sync --resource` and `--dry-run`: Argo CD's `operation.sync.resources` and
//! `operation.sync.dryRun`.

mod common;

use common::{Harness, cm};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::{Value, json};

async fn request(h: &Harness, sync: Value) {
    h.cluster
        .merge_patch(
            API_VERSION,
            "Application",
            "argocd",
            "web",
            &json!({"operation": {"sync": sync, "initiatedBy": {"username": "test"}}}),
        )
        .await
        .expect("request the operation");
}

async fn finished(h: &Harness) -> Value {
    h.wait_app("web", "the operation to finish", |a| {
        a.get("operation").is_none_or(Value::is_null)
            && str_at(a, &["status", "operationState", "phase"]) == "Succeeded"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selective_sync_applies_only_the_named_resources_and_a_dry_run_nothing() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("only-a", "1")),
        ("app/b.yaml", &cm("only-b", "1")),
    ])
    .await;
    h.create_app("web", "app", Value::Null).await;
    h.wait_app("web", "OutOfSync", |a| {
        str_at(a, &["status", "sync", "status"]) == "OutOfSync"
    })
    .await;

    request(
        &h,
        json!({"resources": [{"group": "", "kind": "ConfigMap", "name": "only-a"}]}),
    )
    .await;
    let app = finished(&h).await;
    assert!(h.configmap("only-a").await.is_some());
    assert!(h.configmap("only-b").await.is_none(), "not selected");
    assert_eq!(str_at(&app, &["status", "sync", "status"]), "OutOfSync");

    request(&h, json!({"dryRun": true})).await;
    let app = h
        .wait_app("web", "the dry run to finish", |a| {
            a.get("operation").is_none_or(Value::is_null)
                && str_at(a, &["status", "operationState", "phase"]) == "Succeeded"
                && a.pointer("/status/operationState/operation/sync/dryRun") == Some(&json!(true))
        })
        .await;
    assert!(
        h.configmap("only-b").await.is_none(),
        "a dry run applies nothing"
    );
    let messages: Vec<String> = app
        .pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .map(|r| str_at(r, &["message"]).to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !messages.is_empty() && messages.iter().all(|m| m.ends_with("(dry run)")),
        "{messages:?}"
    );
    let history = app
        .pointer("/status/history")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    assert_eq!(history, 1, "only the real sync is history");
}
