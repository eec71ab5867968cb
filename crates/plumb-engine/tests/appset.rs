//! ApplicationSets generate owned Applications, which the controller then syncs; an element
//! removed from the generator deletes its Application.

mod common;

use common::{Harness, cm};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn set(url: &str, elements: Value) -> Value {
    json!({
        "apiVersion": API_VERSION, "kind": "ApplicationSet",
        "metadata": {"name": "envs", "namespace": "argocd"},
        "spec": {
            "generators": [{"list": {"elements": elements}}],
            "template": {
                "metadata": {"name": "web-{{env}}"},
                "spec": {"project": "default",
                    "source": {"repoURL": url, "targetRevision": "main", "path": "envs/{{env}}"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
                    "syncPolicy": {"automated": {"prune": true}}}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_generator_creates_syncs_and_deletes_applications() {
    let h = Harness::start(&[
        ("envs/dev/a.yaml", &cm("dev", "1")),
        ("envs/prod/a.yaml", &cm("prod", "1")),
    ])
    .await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.apply(set(&h.url(), json!([{"env": "dev"}, {"env": "prod"}])))
        .await;
    for env in ["dev", "prod"] {
        let app = h.wait_synced(&format!("web-{env}"), &revision).await;
        let owner = app
            .pointer("/metadata/ownerReferences/0/kind")
            .and_then(Value::as_str);
        assert_eq!(owner, Some("ApplicationSet"));
        assert!(h.configmap(env).await.is_some());
    }
    h.apply(set(&h.url(), json!([{"env": "dev"}]))).await;
    let started = Instant::now();
    while h
        .cluster
        .get(API_VERSION, "Application", "argocd", "web-prod")
        .await
        .expect("get")
        .is_some()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "web-prod not deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let set = h
        .cluster
        .get(API_VERSION, "ApplicationSet", "argocd", "envs")
        .await
        .expect("get")
        .expect("set");
    let up_to_date = set
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| str_at(c, &["type"]) == "ResourcesUpToDate")
        })
        .map(|c| str_at(c, &["status"]).to_string());
    assert_eq!(up_to_date.as_deref(), Some("True"));
}
