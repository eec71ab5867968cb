//! Per-object and application sync options with Argo CD's meaning: Force=true, Replace=true,
//! SkipDryRunOnMissingResource=true.

mod common;

use common::{Harness, automated};
use plumb_core::key::str_at;
use serde_json::{Value, json};

fn immutable_cm(name: &str, value: &str, options: &str) -> String {
    let annotations = if options.is_empty() {
        String::new()
    } else {
        format!("  annotations:\n    argocd.argoproj.io/sync-options: {options}\n")
    };
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{annotations}immutable: true\ndata:\n  value: \"{value}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_recreates_an_object_whose_change_the_server_refuses() {
    let h = Harness::start(&[
        ("forced/cm.yaml", &immutable_cm("forced", "1", "Force=true")),
        ("plain/cm.yaml", &immutable_cm("plain", "1", "")),
    ])
    .await;
    h.create_app("forced", "forced", automated(false)).await;
    h.create_app("plain", "plain", automated(false)).await;
    let first = h.commit(&[], "nothing");
    h.refresh("forced").await;
    h.refresh("plain").await;
    h.wait_synced("forced", &first).await;
    h.wait_synced("plain", &first).await;
    let uid = str_at(
        &h.configmap("forced").await.expect("forced"),
        &["metadata", "uid"],
    )
    .to_string();

    let second = h.commit(
        &[
            ("forced/cm.yaml", &immutable_cm("forced", "2", "Force=true")),
            ("plain/cm.yaml", &immutable_cm("plain", "2", "")),
        ],
        "change immutable data",
    );
    h.refresh("forced").await;
    h.refresh("plain").await;
    h.wait_synced("forced", &second).await;
    let forced = h.configmap("forced").await.expect("forced exists");
    assert_eq!(str_at(&forced, &["data", "value"]), "2");
    assert_ne!(str_at(&forced, &["metadata", "uid"]), uid, "recreated");
    // Without Force the server's refusal is a comparison error naming the field; nothing is
    // applied.
    let message = h.condition("plain", "ComparisonError").await;
    assert!(message.contains("immutable"), "{message}");
    let plain = h.configmap("plain").await.expect("plain exists");
    assert_eq!(str_at(&plain, &["data", "value"]), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_drops_what_another_manager_added() {
    let cm = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: replaced\n  annotations:\n    argocd.argoproj.io/sync-options: Replace=true\ndata:\n  value: \"{value}\"\n"
        )
    };
    let h = Harness::start(&[("app/cm.yaml", &cm("1"))]).await;
    h.create_app("web", "app", automated(false)).await;
    let first = h.commit(&[], "nothing");
    h.refresh("web").await;
    h.wait_synced("web", &first).await;
    // Someone else adds a key; server-side apply would keep it, a replace does not.
    h.cluster
        .merge_patch(
            "v1",
            "ConfigMap",
            "apps",
            "replaced",
            &json!({"data": {"extra": "x"}}),
        )
        .await
        .expect("add a key");
    let second = h.commit(&[("app/cm.yaml", &cm("2"))], "change");
    h.refresh("web").await;
    h.wait_synced("web", &second).await;
    let live = h.configmap("replaced").await.expect("exists");
    assert_eq!(str_at(&live, &["data", "value"]), "2");
    assert!(live.pointer("/data/extra").is_none(), "{live}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_dry_run_on_missing_resource_applies_the_rest_instead_of_refusing() {
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  annotations:\n    argocd.argoproj.io/sync-options: SkipDryRunOnMissingResource=true\nspec:\n  size: 1\n";
    let h = Harness::start(&[
        ("app/widget.yaml", widget),
        ("app/cm.yaml", &common::cm("beside-widget", "1")),
    ])
    .await;
    h.create_app("web", "app", Value::Null).await;
    let app = h
        .wait_app("web", "compared", |a| {
            !str_at(a, &["status", "sync", "status"]).is_empty()
        })
        .await;
    let conditions = app
        .pointer("/status/conditions")
        .cloned()
        .unwrap_or_default();
    assert!(
        !conditions.to_string().contains("unknown kind"),
        "no comparison error for the skipped object: {conditions}"
    );
    assert_eq!(str_at(&app, &["status", "sync", "status"]), "OutOfSync");
    // Without the option the same object refuses the whole sync (see bad_input.rs); with it,
    // the sync applies what it can and reports the Widget's own failure.
    h.cluster
        .merge_patch(
            plumb_core::application::API_VERSION,
            "Application",
            "argocd",
            "web",
            &json!({"operation": {"sync": {}, "initiatedBy": {"username": "test"}}}),
        )
        .await
        .expect("sync");
    let app = h
        .wait_app("web", "the sync to end", |a| {
            a.get("operation").is_none_or(Value::is_null)
                && !str_at(a, &["status", "operationState", "phase"]).is_empty()
        })
        .await;
    assert!(h.configmap("beside-widget").await.is_some(), "{app}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_sync_recreates_what_the_server_refuses_to_change() {
    let h = Harness::start(&[("app/cm.yaml", &immutable_cm("frozen", "1", ""))]).await;
    h.create_app("web", "app", Value::Null).await;
    let request = |h: &Harness, sync: Value| {
        let cluster = h.cluster.clone();
        async move {
            cluster
                .merge_patch(
                    plumb_core::application::API_VERSION,
                    "Application",
                    "argocd",
                    "web",
                    &json!({"operation": {"sync": sync, "initiatedBy": {"username": "test"}}}),
                )
                .await
                .expect("request a sync");
        }
    };
    request(&h, json!({})).await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("web", &first).await;
    let second = h.commit(
        &[("app/cm.yaml", &immutable_cm("frozen", "2", ""))],
        "change",
    );
    h.refresh("web").await;
    h.condition("web", "ComparisonError").await;
    // As `plumb app sync --force` asks.
    request(&h, json!({"syncStrategy": {"apply": {"force": true}}})).await;
    h.wait_synced("web", &second).await;
    let live = h.configmap("frozen").await.expect("exists");
    assert_eq!(str_at(&live, &["data", "value"]), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respect_ignore_differences_keeps_ignored_fields_as_they_are_live() {
    let cm = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tuned\ndata:\n  value: \"{value}\"\n  tuned: \"from-git\"\n"
        )
    };
    let h = Harness::start(&[("app/cm.yaml", &cm("1"))]).await;
    h.apply(json!({
        "apiVersion": plumb_core::application::API_VERSION, "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd"},
        "spec": {"project": "default",
            "source": {"repoURL": h.url(), "targetRevision": "main", "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "ignoreDifferences": [{"kind": "ConfigMap", "jsonPointers": ["/data/tuned"]}],
            "syncPolicy": {"automated": {"prune": true},
                "syncOptions": ["RespectIgnoreDifferences=true"]}}
    }))
    .await;
    let first = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("web", &first).await;
    // Tuned by hand (an autoscaler, an operator...): ignored, so still Synced.
    h.cluster
        .merge_patch(
            "v1",
            "ConfigMap",
            "apps",
            "tuned",
            &json!({"data": {"tuned": "by-hand"}}),
        )
        .await
        .expect("tune");
    let second = h.commit(&[("app/cm.yaml", &cm("2"))], "change value");
    h.refresh("web").await;
    h.wait_synced("web", &second).await;
    let live = h.configmap("tuned").await.expect("exists");
    assert_eq!(str_at(&live, &["data", "value"]), "2");
    assert_eq!(str_at(&live, &["data", "tuned"]), "by-hand", "{live}");
}
