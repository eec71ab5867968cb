//! CRDs registered at run time, custom resources, status subresource.

mod common;

use common::Kube;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

const WIDGET: &str = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: big\n  replicas: 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_then_custom_resource() {
    require_kubectl!();
    let k = Kube::start().await;
    k.apply(CRD, &[]).await;
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ])
    .await;
    assert!(
        k.apply(WIDGET, &[])
            .await
            .contains("widget.example.com/w1 created")
    );
    let table = k.ok(&["get", "wd"]).await;
    assert!(table.contains("SIZE") && table.contains("big"), "{table}");
    let j = k.json(&["get", "widget", "w1"]).await;
    assert_eq!(j["metadata"]["generation"], 1);
    // Status writes do not bump generation; spec writes do.
    k.ok(&[
        "patch",
        "wd",
        "w1",
        "--type=merge",
        "--subresource=status",
        "-p",
        r#"{"status":{"replicas":1}}"#,
    ])
    .await;
    let j = k.json(&["get", "widget", "w1"]).await;
    assert_eq!(j["metadata"]["generation"], 1);
    assert_eq!(j["status"]["replicas"], 1);
    k.ok(&[
        "patch",
        "wd",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":"small"},"status":{"replicas":7}}"#,
    ])
    .await;
    let j = k.json(&["get", "widget", "w1"]).await;
    assert_eq!(j["metadata"]["generation"], 2);
    assert_eq!(j["status"]["replicas"], 1, "main resource ignores status");
    // Strategic merge patch is refused for custom resources.
    let e = k
        .fail(&[
            "patch",
            "wd",
            "w1",
            "--type=strategic",
            "-p",
            r#"{"spec":{"size":"x"}}"#,
        ])
        .await;
    assert!(
        e.contains("the body of the request was in an unknown format"),
        "{e}"
    );
    k.ok(&["scale", "wd", "w1", "--replicas=4"]).await;
    assert_eq!(
        k.json(&["get", "widget", "w1"]).await["spec"]["replicas"],
        4
    );
    // Deleting the CRD removes its objects and its API.
    k.ok(&["delete", "crd", "widgets.example.com"]).await;
    let e = k.fail(&["get", "widgets"]).await;
    assert!(
        e.contains("doesn't have a resource type")
            || e.contains("the server could not find the requested resource"),
        "{e}"
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_pruned_or_refused_when_strict() {
    require_kubectl!();
    let k = Kube::start().await;
    let crd = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: string}
"#;
    k.apply(crd, &[]).await;
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gadgets.example.com",
        "--timeout=10s",
    ])
    .await;
    let g = "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\nspec:\n  size: s\n  bogus: 1\n";
    let f = k.write("g.yaml", g);
    // kubectl validates strictly by default: the server refuses the unknown field.
    let e = k.fail(&["apply", "-f", &f]).await;
    assert!(
        e.contains("strict decoding error: unknown field \"spec.bogus\""),
        "{e}"
    );
    // Without validation the field is pruned, as a structural schema prunes it.
    k.ok(&["apply", "--validate=false", "-f", &f]).await;
    let j = k.json(&["get", "gadget", "g"]).await;
    assert_eq!(j["spec"], serde_json::json!({"size": "s"}));
    k.cluster.shutdown().await;
}
