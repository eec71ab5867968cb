//! Discovery documents as kube-rs and older kubectl versions read them.

mod common;

use common::Kube;

fn parse(out: &str) -> serde_json::Value {
    serde_json::from_str(out).expect("discovery is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_discovery_documents() {
    let k = Kube::start().await;
    let (code, out) = k.http("GET", "/api", &[], b"").await;
    assert_eq!(code, 200);
    assert_eq!(parse(&out)["versions"], serde_json::json!(["v1"]));
    let (_, out) = k.http("GET", "/apis", &[], b"").await;
    let groups = parse(&out);
    assert_eq!(groups["kind"], "APIGroupList");
    let apps = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "apps")
        .cloned()
        .expect("apps group");
    assert_eq!(apps["preferredVersion"]["groupVersion"], "apps/v1");
    let (_, out) = k.http("GET", "/apis/apps/v1", &[], b"").await;
    let list = parse(&out);
    assert_eq!(list["groupVersion"], "apps/v1");
    let names: Vec<&str> = list["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or(""))
        .collect();
    for n in [
        "deployments",
        "deployments/status",
        "deployments/scale",
        "statefulsets",
        "daemonsets",
        "replicasets",
    ] {
        assert!(names.contains(&n), "{n} missing: {names:?}");
    }
    let (code, _) = k
        .http("GET", "/apis/nothing.example.com/v1", &[], b"")
        .await;
    assert_eq!(code, 404);
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_discovery_v2_and_v2beta1() {
    let k = Kube::start().await;
    for version in ["v2", "v2beta1"] {
        let accept = format!(
            "application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList,application/json"
        );
        for path in ["/api", "/apis"] {
            let (code, out) = k
                .http("GET", path, &[("Accept", accept.as_str())], b"")
                .await;
            assert_eq!(code, 200);
            let doc = parse(&out);
            assert_eq!(doc["kind"], "APIGroupDiscoveryList");
            assert_eq!(doc["apiVersion"], format!("apidiscovery.k8s.io/{version}"));
            let items = doc["items"].as_array().expect("items");
            if path == "/api" {
                assert_eq!(items.len(), 1);
                let pods = items[0]["versions"][0]["resources"]
                    .as_array()
                    .expect("resources")
                    .iter()
                    .find(|r| r["resource"] == "pods")
                    .cloned()
                    .expect("pods");
                assert_eq!(pods["scope"], "Namespaced");
                assert_eq!(pods["responseKind"]["kind"], "Pod");
                assert_eq!(pods["subresources"][0]["subresource"], "status");
            } else {
                assert!(items.iter().any(|g| g["metadata"]["name"] == "apps"));
            }
        }
    }
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v3_declares_field_validation_for_patch() {
    let k = Kube::start().await;
    let (_, out) = k.http("GET", "/openapi/v3", &[], b"").await;
    let root = parse(&out);
    let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 url")
        .to_string();
    let (code, out) = k.http("GET", &url, &[], b"").await;
    assert_eq!(code, 200);
    let doc = parse(&out);
    let op = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Deployment");
    assert!(
        op["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    k.cluster.shutdown().await;
}
