//! Bad sync settings: malformed hook and wave annotations, unknown hook types and delete
//! policies, unknown sync options, invalid cron schedules in sync windows and bad jq in
//! ignoreDifferences. Each is a condition naming the object (or field) and the problem; nothing
//! is applied and nothing panics. (Bad Lua and CEL: tests/custom_health.rs and tests/flux.rs.)

mod common;

use common::{Harness, automated, cm};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::{Value, json};

fn annotated_cm(name: &str, annotation: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n    {annotation}: \"{value}\"\ndata:\n  a: \"1\"\n"
    )
}

/// Waits for a condition of `kind` mentioning every part; returns its message.
async fn condition_with(h: &Harness, app: &str, kind: &str, parts: &[&str]) -> String {
    let found = h
        .wait_app(app, &format!("a {kind} condition naming {parts:?}"), |a| {
            a.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        str_at(c, &["type"]) == kind
                            && parts.iter().all(|p| str_at(c, &["message"]).contains(p))
                    })
                })
        })
        .await;
    found
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == kind))
        .map(|c| str_at(c, &["message"]).to_string())
        .unwrap_or_default()
}

async fn assert_nothing_applied(h: &Harness, app: &str) {
    assert!(h.configmap("good").await.is_none(), "nothing applied");
    let app = h.app(app).await;
    assert_ne!(
        str_at(&app, &["status", "operationState", "phase"]),
        "Succeeded"
    );
}

async fn refused_annotation(annotation: &str, value: &str, parts: &[&str]) {
    let bad = annotated_cm("bad", annotation, value);
    let h = Harness::start(&[("app/good.yaml", &cm("good", "1")), ("app/bad.yaml", &bad)]).await;
    h.create_app("web", "app", automated(true)).await;
    let mut expected = vec!["bad.yaml", annotation];
    expected.extend_from_slice(parts);
    condition_with(&h, "web", "ComparisonError", &expected).await;
    assert_nothing_applied(&h, "web").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_hook_type_is_named() {
    refused_annotation("argocd.argoproj.io/hook", "Sometimes", &["Sometimes"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_sync_wave_is_named() {
    refused_annotation("argocd.argoproj.io/sync-wave", "soon", &["soon"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_hook_delete_policy_is_named() {
    refused_annotation(
        "argocd.argoproj.io/hook-delete-policy",
        "WhenItRains",
        &["WhenItRains"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_helm_hook_is_named() {
    refused_annotation("helm.sh/hook", "pre-lunch", &["pre-lunch"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_cron_schedule_blocks_syncs_and_is_named() {
    let h = Harness::start(&[("app/good.yaml", &cm("good", "1"))]).await;
    h.apply(json!({"apiVersion": API_VERSION, "kind": "AppProject",
        "metadata": {"name": "default", "namespace": "argocd"},
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
            "syncWindows": [{"kind": "allow", "schedule": "every tuesday", "duration": "1h",
                "applications": ["*"]}]}}))
        .await;
    h.create_app("web", "app", automated(true)).await;
    let message = condition_with(
        &h,
        "web",
        "SyncWindowBlocked",
        &["spec.syncWindows", "every tuesday"],
    )
    .await;
    assert!(message.contains("[0]"), "{message}");
    assert_nothing_applied(&h, "web").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jq_in_ignore_differences_is_named() {
    let h = Harness::start(&[("app/good.yaml", &cm("good", "1"))]).await;
    h.apply(json!({"apiVersion": API_VERSION, "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd"},
        "spec": {"project": "default",
            "source": {"repoURL": h.url(), "targetRevision": "main", "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "ignoreDifferences": [{"kind": "ConfigMap", "jqPathExpressions": [".data | ]["]}],
            "syncPolicy": automated(true)}}))
        .await;
    let message = h
        .wait_app("web", "a condition naming the jq expression", |a| {
            a.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        str_at(c, &["message"])
                            .contains("ignoreDifferences[0].jqPathExpressions[0]")
                    })
                })
        })
        .await;
    let conditions = message
        .pointer("/status/conditions")
        .cloned()
        .unwrap_or_default();
    assert!(
        conditions.to_string().contains(".data | ]["),
        "{conditions}"
    );
    assert_nothing_applied(&h, "web").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sync_options_are_named_in_a_warning() {
    let odd = annotated_cm(
        "odd",
        "argocd.argoproj.io/sync-options",
        "Prune=maybe,Teleport=true",
    );
    let h = Harness::start(&[("app/good.yaml", &cm("good", "1")), ("app/odd.yaml", &odd)]).await;
    h.create_app("web", "app", automated(true)).await;
    let warning = condition_with(&h, "web", "SyncOptionWarning", &["Teleport=true"]).await;
    assert!(warning.contains("Prune=maybe"), "{warning}");
}
