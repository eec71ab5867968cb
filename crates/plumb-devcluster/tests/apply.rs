//! Client-side and server-side apply, diff exit codes.

mod common;

use common::Kube;

const CM_V1: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  keep: \"1\"\n  drop: \"2\"\n";
const CM_V2: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  keep: \"1\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_removes_dropped_field_and_is_idempotent() {
    require_kubectl!();
    let k = Kube::start().await;
    assert!(k.apply(CM_V1, &[]).await.contains("configmap/app created"));
    assert!(
        k.apply(CM_V1, &[])
            .await
            .contains("configmap/app unchanged")
    );
    let rv1 = k.json(&["get", "cm", "app"]).await["metadata"]["resourceVersion"].clone();
    assert!(
        k.apply(CM_V2, &[])
            .await
            .contains("configmap/app configured")
    );
    let j = k.json(&["get", "cm", "app"]).await;
    assert_eq!(j["data"], serde_json::json!({"keep": "1"}));
    assert_ne!(j["metadata"]["resourceVersion"], rv1);
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_of_deployment_drops_env_var() {
    require_kubectl!();
    let k = Kube::start().await;
    let with_env = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.25\n        env:\n        - {name: A, value: \"1\"}\n        - {name: B, value: \"2\"}\n";
    k.apply(with_env, &[]).await;
    let without = with_env.replace("        - {name: B, value: \"2\"}\n", "");
    assert!(k.apply(&without, &[]).await.contains("configured"));
    let j = k.json(&["get", "deploy", "web"]).await;
    assert_eq!(
        j["spec"]["template"]["spec"]["containers"][0]["env"],
        serde_json::json!([{"name": "A", "value": "1"}])
    );
    assert_eq!(j["metadata"]["generation"], 2);
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_exit_codes() {
    require_kubectl!();
    let k = Kube::start().await;
    k.apply(CM_V1, &[]).await;
    let f = k.write("same.yaml", CM_V1);
    let out = k.run(&["diff", "-f", &f]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = k.write("changed.yaml", CM_V2);
    let out = k.run(&["diff", "-f", &f]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("-  drop: \"2\""));
    // diff is a dry run: nothing changed.
    assert_eq!(k.json(&["get", "cm", "app"]).await["data"]["drop"], "2");
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_and_force() {
    require_kubectl!();
    let k = Kube::start().await;
    assert!(
        k.apply(CM_V1, &["--server-side"])
            .await
            .contains("serverside-applied")
    );
    let other =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  keep: \"changed\"\n";
    let f = k.write("other.yaml", other);
    let e = k
        .fail(&["apply", "--server-side", "--field-manager=other", "-f", &f])
        .await;
    assert!(
        e.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .data.keep"),
        "{e}"
    );
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &f,
    ])
    .await;
    let j = k.json(&["get", "cm", "app", "--show-managed-fields"]).await;
    assert_eq!(j["data"]["keep"], "changed");
    let managers: Vec<&str> = j["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|m| m["manager"].as_str().unwrap_or(""))
        .collect();
    assert!(
        managers.contains(&"other") && managers.contains(&"kubectl"),
        "{managers:?}"
    );
    // kubectl stops applying `drop`: it is removed (nobody else owns it).
    let f2 = k.write(
        "mine.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata: {}\n",
    );
    k.ok(&["apply", "--server-side", "-f", &f2]).await;
    let j = k.json(&["get", "cm", "app"]).await;
    assert_eq!(j["data"], serde_json::json!({"keep": "changed"}));
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_server_changes_nothing() {
    require_kubectl!();
    let k = Kube::start().await;
    let f = k.write("cm.yaml", CM_V1);
    let out = k.ok(&["apply", "--dry-run=server", "-f", &f]).await;
    assert!(out.contains("(server dry run)"), "{out}");
    let e = k.fail(&["get", "cm", "app"]).await;
    assert!(e.contains("not found"), "{e}");
    k.cluster.shutdown().await;
}
