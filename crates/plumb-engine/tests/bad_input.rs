//! Bad input never reaches the cluster: each case gives a condition naming the file and the
//! problem, and nothing is applied.

mod common;

use common::{Harness, automated, cm};
use plumb_core::key::str_at;
use serde_json::json;

async fn assert_refused(files: &[(&str, &str)], expected: &[&str]) {
    let h = Harness::start(files).await;
    h.create_app("bad", "app", automated(true)).await;
    let message = h.condition("bad", "ComparisonError").await;
    for part in expected {
        assert!(
            message.contains(part),
            "condition {message:?} should mention {part:?}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        h.configmap("good").await.is_none(),
        "nothing applied when the render fails"
    );
    let app = h.app("bad").await;
    assert_ne!(
        str_at(&app, &["status", "operationState", "phase"]),
        "Succeeded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_yaml() {
    assert_refused(
        &[
            ("app/good.yaml", &cm("good", "1")),
            ("app/x.yaml", "kind: [unclosed\n"),
        ],
        &["app/x.yaml", "invalid YAML"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_without_kind() {
    assert_refused(
        &[
            ("app/good.yaml", &cm("good", "1")),
            ("app/x.yaml", "apiVersion: v1\nmetadata:\n  name: x\n"),
        ],
        &["app/x.yaml", "missing field \"kind\""],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_without_name() {
    assert_refused(
        &[
            ("app/good.yaml", &cm("good", "1")),
            (
                "app/x.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            ),
        ],
        &["app/x.yaml", "metadata.name"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kind() {
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n";
    assert_refused(
        &[("app/good.yaml", &cm("good", "1")), ("app/w.yaml", widget)],
        &["app/w.yaml", "Widget", "does not serve"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_file() {
    let big = format!(
        "{}  filler: \"{}\"\n",
        cm("big", "1"),
        "x".repeat(5 * 1024 * 1024)
    );
    assert_refused(
        &[("app/good.yaml", &cm("good", "1")), ("app/big.yaml", &big)],
        &["app/big.yaml", "over the limit"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_outside_the_repository() {
    let h = Harness::start(&[("app/good.yaml", &cm("good", "1"))]).await;
    h.create_app("bad", "../../etc", automated(true)).await;
    let message = h.condition("bad", "ComparisonError").await;
    assert!(
        message.contains("outside the repository") || message.contains("does not exist"),
        "{message}"
    );
    assert!(h.configmap("good").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_outside_the_repository() {
    let h = Harness::start(&[("app/good.yaml", &cm("good", "1"))]).await;
    std::os::unix::fs::symlink("/etc/hostname", h.repo.join("app/link.yaml")).expect("symlink");
    h.commit(&[], "add a symlink leading out");
    h.create_app("bad", "app", automated(true)).await;
    let message = h.condition("bad", "ComparisonError").await;
    assert!(
        message.contains("app/link.yaml") && message.contains("outside the repository"),
        "{message}"
    );
    assert!(h.configmap("good").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_that_does_not_exist() {
    let h = Harness::start(&[("app/good.yaml", &cm("good", "1"))]).await;
    h.apply(json!({
        "apiVersion": plumb_core::application::API_VERSION, "kind": "Application",
        "metadata": {"name": "bad", "namespace": "argocd"},
        "spec": {"source": {"repoURL": h.url(), "targetRevision": "no-such-branch", "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "syncPolicy": automated(true)}
    }))
    .await;
    let message = h.condition("bad", "ComparisonError").await;
    assert!(message.contains("no-such-branch"), "{message}");
    assert!(h.configmap("good").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_field() {
    let h = Harness::start(&[("app/good.yaml", &cm("good", "1"))]).await;
    h.apply(json!({
        "apiVersion": plumb_core::application::API_VERSION, "kind": "Application",
        "metadata": {"name": "bad", "namespace": "argocd"},
        "spec": {"source": {"repoURL": h.url(), "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "syncPolicy": {"automated": {"prune": "yes"}}}
    }))
    .await;
    let message = h.condition("bad", "InvalidSpecError").await;
    assert!(
        message.contains("spec.syncPolicy.automated.prune"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_of_apps_that_renders_itself() {
    let own = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: bad\n  namespace: argocd\nspec:\n  source:\n    repoURL: x\n    path: app\n  destination:\n    server: https://kubernetes.default.svc\n";
    assert_refused(
        &[
            ("app/self.yaml", own),
            ("app/cm.yaml", &cm("beside-self", "1")),
        ],
        &["app/self.yaml", "renders itself"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_spec_fields_are_named_in_a_warning() {
    let h = Harness::start(&[("app/cm.yaml", &cm("typo", "1"))]).await;
    h.apply(json!({
        "apiVersion": plumb_core::application::API_VERSION, "kind": "Application",
        "metadata": {"name": "typo", "namespace": "argocd"},
        "spec": {"project": "default",
            "source": {"repoURL": h.url(), "targetRevision": "main", "path": "app", "recursive": true},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "syncPolicy": {"automated": {"prune": true, "selfheal": true}}}
    }))
    .await;
    let message = h.condition("typo", "UnknownFieldsWarning").await;
    assert!(
        message.contains("spec.source.recursive")
            && message.contains("spec.syncPolicy.automated.selfheal"),
        "{message}"
    );
    // A warning only: the rest of the spec is acted on.
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("typo", &revision).await;
}
