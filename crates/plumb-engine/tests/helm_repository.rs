//! A chart from an HTTP Helm repository: an index and a `.tgz` served over loopback, and an
//! Application with `spec.source.chart` and a version range installs it.

mod common;

use common::Harness;
use common::charts::{package, podinfo_chart, serve, sha256};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_from_a_helm_repository_installs_with_the_resolved_version() {
    let chart = package(&podinfo_chart(), "podinfo");
    let chart_yaml =
        std::fs::read_to_string(podinfo_chart().join("Chart.yaml")).expect("Chart.yaml");
    let version = chart_yaml
        .lines()
        .find_map(|l| l.strip_prefix("version:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .expect("chart version");
    let index = format!(
        "apiVersion: v1\nentries:\n  podinfo:\n  - name: podinfo\n    version: {version}\n    urls: [charts/podinfo-{version}.tgz]\n    digest: {}\n  - name: podinfo\n    version: 5.0.0\n    urls: [charts/missing.tgz]\n  unrelated:\n  - version: 1.0.0\n    urls: [x.tgz]\n",
        sha256(&chart)
    );
    let repo = serve(vec![
        ("/index.yaml".into(), index.into_bytes()),
        (format!("/charts/podinfo-{version}.tgz"), chart),
    ]);
    let h = Harness::start(&[("unused/README.md", "x")]).await;
    let app = |name: &str, constraint: &str| {
        json!({"apiVersion": API_VERSION, "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "default",
                "source": {"repoURL": repo, "chart": "podinfo", "targetRevision": constraint,
                    "helm": {"releaseName": name}},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
                "syncPolicy": {"automated": {"prune": true}}}})
    };
    h.apply(app("podinfo", "^6.0")).await;
    let synced = h.wait_synced("podinfo", &version).await;
    assert_eq!(str_at(&synced, &["status", "sourceType"]), "Helm");
    let deployment = h
        .cluster
        .get("apps/v1", "Deployment", "apps", "podinfo")
        .await
        .expect("get")
        .expect("the chart's Deployment exists");
    assert_eq!(
        str_at(
            &deployment,
            &["metadata", "labels", "app.kubernetes.io/version"]
        ),
        version
    );

    // Bad input: no version matches; the condition names the chart and the constraint.
    h.apply(app("too-new", ">=7")).await;
    let message = h.condition("too-new", "ComparisonError").await;
    assert!(
        message.contains("chart \"podinfo\"") && message.contains(">=7"),
        "{message}"
    );
    // A chart the repository does not have.
    let mut missing = app("missing", "*");
    missing["spec"]["source"]["chart"] = json!("nope");
    h.apply(missing).await;
    let message = h.condition("missing", "ComparisonError").await;
    assert!(message.contains("chart \"nope\" not found"), "{message}");
}
