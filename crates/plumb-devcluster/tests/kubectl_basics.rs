//! Discovery, CRUD and error wording through the real kubectl.

mod common;

use common::Kube;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_discovery() {
    require_kubectl!();
    let k = Kube::start().await;
    let v = k.ok(&["version", "-o", "json"]).await;
    assert!(v.contains("\"gitVersion\": \"v1.31.0\""), "{v}");
    let resources = k.ok(&["api-resources"]).await;
    for r in [
        "deployments",
        "configmaps",
        "customresourcedefinitions",
        "leases",
        "horizontalpodautoscalers",
    ] {
        assert!(resources.contains(r), "{r} missing from:\n{resources}");
    }
    let ns = k.ok(&["get", "ns"]).await;
    assert!(ns.contains("default") && ns.contains("kube-system"), "{ns}");
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_output_formats() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&["create", "configmap", "c1", "--from-literal=a=1"])
        .await;
    let y = k.ok(&["get", "cm", "c1", "-o", "yaml"]).await;
    assert!(
        y.contains("a: \"1\"") && y.contains("resourceVersion:") && y.contains("uid:"),
        "{y}"
    );
    let j = k.json(&["get", "cm", "c1"]).await;
    assert_eq!(j["metadata"]["name"], "c1");
    assert!(
        j["metadata"].get("generation").is_none(),
        "configmaps track no generation"
    );
    let table = k.ok(&["get", "cm"]).await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("DATA") && table.contains("c1"), "{table}");
    k.ok(&["create", "service", "clusterip", "s1", "--tcp=80:8080"])
        .await;
    let wide = k.ok(&["get", "svc", "s1", "-o", "wide"]).await;
    assert!(
        wide.contains("SELECTOR") && wide.contains("10.96."),
        "{wide}"
    );
    assert!(wide.contains("80/TCP"), "{wide}");
    let list = k.json(&["get", "cm"]).await;
    assert_eq!(list["kind"], "List");
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_messages_match_kube_apiserver() {
    require_kubectl!();
    let k = Kube::start().await;
    let e = k.fail(&["get", "cm", "nope"]).await;
    assert!(
        e.contains("Error from server (NotFound): configmaps \"nope\" not found"),
        "{e}"
    );
    let e = k.fail(&["get", "deploy", "nope"]).await;
    assert!(e.contains("deployments.apps \"nope\" not found"), "{e}");
    k.ok(&["create", "cm", "dup"]).await;
    let e = k.fail(&["create", "cm", "dup"]).await;
    assert!(e.contains("configmaps \"dup\" already exists"), "{e}");
    let f = k.write(
        "dup.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\n",
    );
    let e = k.fail(&["create", "-f", &f]).await;
    assert!(
        e.contains("Error from server (AlreadyExists): error when creating"),
        "{e}"
    );
    let f = k.write(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
    );
    let e = k.fail(&["create", "-f", &f]).await;
    assert!(e.contains("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{e}");
    let e = k.fail(&["create", "cm", "x", "-n", "missing-ns"]).await;
    assert!(e.contains("namespaces \"missing-ns\" not found"), "{e}");
    let e = k.fail(&["get", "nosuchkind"]).await;
    assert!(
        e.contains("the server doesn't have a resource type \"nosuchkind\""),
        "{e}"
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_annotate_and_selectors() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&["create", "cm", "a"]).await;
    k.ok(&["create", "cm", "b"]).await;
    k.ok(&["label", "cm", "a", "tier=web"]).await;
    k.ok(&["annotate", "cm", "a", "note=hi"]).await;
    let out = k.ok(&["get", "cm", "-l", "tier=web", "-o", "name"]).await;
    assert_eq!(out.trim(), "configmap/a");
    let out = k.ok(&["get", "cm", "-l", "tier!=web", "-o", "name"]).await;
    assert!(
        out.contains("configmap/b") && !out.contains("configmap/a"),
        "{out}"
    );
    let out = k
        .ok(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=b",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(out.trim(), "configmap/b");
    let j = k.json(&["get", "cm", "a"]).await;
    assert_eq!(j["metadata"]["annotations"]["note"], "hi");
    k.ok(&["label", "cm", "a", "tier-"]).await;
    let j = k.json(&["get", "cm", "a"]).await;
    assert!(
        j["metadata"]
            .get("labels")
            .is_none_or(|l| l.get("tier").is_none()),
        "{j}"
    );
    let e = k
        .fail(&["get", "cm", "--field-selector", "spec.foo=bar"])
        .await;
    assert!(e.contains("field label not supported: spec.foo"), "{e}");
    k.cluster.shutdown().await;
}
