//! Cascading deletion, finalizers and namespace lifecycle.

mod common;

use common::Kube;

async fn deployment_with_pods(k: &Kube, name: &str) {
    k.ok(&["create", "deploy", name, "--image=nginx:1.25"])
        .await;
    k.ok(&[
        "rollout",
        "status",
        &format!("deploy/{name}"),
        "--timeout=20s",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascades_background_foreground_orphan() {
    require_kubectl!();
    let k = Kube::start().await;
    deployment_with_pods(&k, "bg").await;
    k.ok(&["delete", "deploy", "bg"]).await;
    k.eventually("background cascade", || async {
        k.ok(&["get", "rs,pods", "-l", "app=bg", "-o", "name"])
            .await
            .trim()
            .is_empty()
    })
    .await;
    deployment_with_pods(&k, "fg").await;
    k.ok(&["delete", "deploy", "fg", "--cascade=foreground"])
        .await;
    assert!(
        k.ok(&["get", "rs,pods", "-l", "app=fg", "-o", "name"])
            .await
            .trim()
            .is_empty()
    );
    deployment_with_pods(&k, "or").await;
    k.ok(&["delete", "deploy", "or", "--cascade=orphan"]).await;
    let rs = k.json(&["get", "rs", "-l", "app=or"]).await;
    let items = rs["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "orphaned replica set stays");
    assert!(
        items[0]["metadata"].get("ownerReferences").is_none(),
        "{}",
        items[0]
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_deletion() {
    require_kubectl!();
    let k = Kube::start().await;
    k.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n", &[]).await;
    k.ok(&["delete", "cm", "held", "--wait=false"]).await;
    let j = k.json(&["get", "cm", "held"]).await;
    assert!(j["metadata"]["deletionTimestamp"].is_string(), "{j}");
    k.ok(&[
        "patch",
        "cm",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .await;
    let e = k.fail(&["get", "cm", "held"]).await;
    assert!(e.contains("not found"), "{e}");
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_removes_contents() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&["create", "ns", "team"]).await;
    k.ok(&["-n", "team", "create", "cm", "c"]).await;
    k.ok(&["-n", "team", "create", "deploy", "d", "--image=nginx:1.25"])
        .await;
    // A finalizer keeps the namespace Terminating, and new content is refused.
    k.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: team\n  finalizers: [example.com/hold]\n", &[]).await;
    k.ok(&["delete", "ns", "team", "--wait=false"]).await;
    k.eventually("namespace terminating", || async {
        k.json(&["get", "ns", "team"]).await["status"]["phase"] == "Terminating"
    })
    .await;
    let e = k.fail(&["-n", "team", "create", "cm", "late"]).await;
    assert!(e.contains("configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"), "{e}");
    k.ok(&[
        "-n",
        "team",
        "patch",
        "cm",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .await;
    k.eventually("namespace gone", || async {
        !k.run(&["get", "ns", "team"]).await.status.success()
    })
    .await;
    k.cluster.shutdown().await;
}
