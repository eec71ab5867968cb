//! AppProject restrictions: a forbidden source, destination or kind is refused with a clear
//! condition and nothing is applied.

mod common;

use common::{Harness, automated, cm};
use plumb_core::application::API_VERSION;
use serde_json::json;

async fn project(h: &Harness) {
    h.apply(json!({"apiVersion": API_VERSION, "kind": "AppProject",
        "metadata": {"name": "restricted", "namespace": "argocd"},
        "spec": {
            "sourceRepos": [h.url()],
            "destinations": [{"server": "*", "namespace": "apps"}],
            "namespaceResourceBlacklist": [{"group": "", "kind": "Secret"}]}}))
        .await;
}

async fn create_app(
    h: &Harness,
    name: &str,
    path: &str,
    project: &str,
    namespace: &str,
    repo: &str,
) {
    h.apply(json!({
        "apiVersion": API_VERSION, "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"project": project,
            "source": {"repoURL": repo, "targetRevision": "main", "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": automated(false)}
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_refuses_forbidden_destinations_sources_and_kinds() {
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: forbidden-secret\nstringData:\n  a: b\n";
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: made-by-app\n";
    let h = Harness::start(&[
        ("ok/cm.yaml", &cm("allowed", "1")),
        ("kinds/cm.yaml", &cm("beside-secret", "1")),
        ("kinds/secret.yaml", secret),
        ("cluster/ns.yaml", namespace),
        ("cluster/cm.yaml", &cm("beside-namespace", "1")),
        ("elsewhere/cm.yaml", &cm("elsewhere", "1")),
    ])
    .await;
    project(&h).await;
    let url = h.url();
    create_app(&h, "ok", "ok", "restricted", "apps", &url).await;
    create_app(&h, "kinds", "kinds", "restricted", "apps", &url).await;
    create_app(&h, "cluster", "cluster", "restricted", "apps", &url).await;
    create_app(
        &h,
        "elsewhere",
        "elsewhere",
        "restricted",
        "kube-system",
        &url,
    )
    .await;
    create_app(
        &h,
        "repo",
        "ok",
        "restricted",
        "apps",
        "https://example.com/other.git",
    )
    .await;
    create_app(&h, "ghost", "ok", "no-such-project", "apps", &url).await;

    let revision = h.commit(&[], "nothing");
    h.refresh("ok").await;
    h.wait_synced("ok", &revision).await;
    assert!(h.configmap("allowed").await.is_some());

    let message = h.condition("kinds", "ComparisonError").await;
    assert!(
        message.contains("resource :Secret is not permitted in project restricted"),
        "{message}"
    );
    assert!(message.contains("kinds/secret.yaml"), "{message}");
    let message = h.condition("cluster", "ComparisonError").await;
    assert!(
        message.contains("resource :Namespace is not permitted in project restricted"),
        "{message}"
    );
    let message = h.condition("elsewhere", "InvalidSpecError").await;
    assert!(message.contains("namespace 'kube-system' do not match any of the allowed destinations in project 'restricted'"), "{message}");
    let message = h.condition("repo", "InvalidSpecError").await;
    assert!(message.contains("application repo https://example.com/other.git is not permitted in project 'restricted'"), "{message}");
    let message = h.condition("ghost", "InvalidSpecError").await;
    assert!(
        message.contains("Application referencing project no-such-project which does not exist"),
        "{message}"
    );

    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for refused in ["beside-secret", "beside-namespace"] {
        assert!(
            h.configmap(refused).await.is_none(),
            "{refused}: nothing applied"
        );
    }
    assert!(
        h.cluster
            .get("v1", "ConfigMap", "kube-system", "elsewhere")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        h.cluster
            .get("v1", "Namespace", "", "made-by-app")
            .await
            .expect("get")
            .is_none()
    );
}
