//! An Argo CD Application and a Flux Kustomization in one cluster: an object one of them
//! manages is reported by the other, never taken over.

mod common;

use common::{Harness, automated, cm};
use plumb_core::key::str_at;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_does_not_take_over_what_a_flux_kustomization_manages() {
    let h = Harness::start(&[("app/shared.yaml", &cm("shared", "from-argo"))]).await;
    h.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "shared", "namespace": "apps", "labels": {
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
        "data": {"value": "from-flux"}}))
        .await;
    h.create_app("web", "app", automated(true)).await;
    let message = h.condition("web", "ComparisonError").await;
    assert!(
        message.contains("managed by Flux Kustomization flux-system/apps"),
        "{message}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let live = h.configmap("shared").await.expect("still there");
    assert_eq!(str_at(&live, &["data", "value"]), "from-flux");
}
