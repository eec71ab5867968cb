//! The three patch types, edit with a scripted editor, scale.

mod common;

use common::Kube;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_merge_and_strategic_patches() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&[
        "create",
        "cm",
        "p",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ])
    .await;
    k.ok(&[
        "patch",
        "cm",
        "p",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/c","value":"3"}]"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "cm",
        "p",
        "--type=merge",
        "-p",
        r#"{"data":{"a":null}}"#,
    ])
    .await;
    k.ok(&["patch", "cm", "p", "-p", r#"{"data":{"d":"4"}}"#])
        .await;
    let j = k.json(&["get", "cm", "p"]).await;
    assert_eq!(j["data"], serde_json::json!({"b": "2", "c": "3", "d": "4"}));
    let e = k
        .fail(&[
            "patch",
            "cm",
            "p",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/data/zz"}]"#,
        ])
        .await;
    assert!(e.contains("The request is invalid"), "{e}");
    k.ok(&["create", "deploy", "d", "--image=nginx:1.25"]).await;
    k.ok(&[
        "patch",
        "deploy",
        "d",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ])
    .await;
    let j = k.json(&["get", "deploy", "d"]).await;
    let names: Vec<&str> = j["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["nginx", "sidecar"],
        "strategic merge keeps both containers"
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_with_scripted_editor() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&["create", "cm", "e", "--from-literal=k=old"]).await;
    let script = k.write("editor.sh", "#!/bin/sh\nsed -i 's/k: old/k: new/' \"$1\"\n");
    std::process::Command::new("chmod")
        .args(["+x", &script])
        .status()
        .expect("chmod");
    let out = k
        .run_env(&["edit", "cm", "e"], &[("KUBE_EDITOR", &script)])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configmap/e edited"));
    assert_eq!(k.json(&["get", "cm", "e"]).await["data"]["k"], "new");
    // Saving without changes reports no edit.
    let noop = k.write("noop.sh", "#!/bin/sh\ntrue\n");
    std::process::Command::new("chmod")
        .args(["+x", &noop])
        .status()
        .expect("chmod");
    let out = k
        .run_env(&["edit", "cm", "e"], &[("KUBE_EDITOR", &noop)])
        .await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Edit cancelled, no changes made."),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_and_replace_conflicts() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&["create", "deploy", "s", "--image=nginx:1.25"]).await;
    k.ok(&["scale", "deploy", "s", "--replicas=3"]).await;
    let j = k.json(&["get", "deploy", "s"]).await;
    assert_eq!(j["spec"]["replicas"], 3);
    // replace with a stale resourceVersion is a 409.
    let mut stale = j.clone();
    stale["metadata"]["resourceVersion"] = serde_json::json!("1");
    let f = k.write("stale.json", &stale.to_string());
    let e = k.fail(&["replace", "-f", &f]).await;
    assert!(e.contains("Operation cannot be fulfilled on deployments.apps \"s\": the object has been modified; please apply your changes to the latest version and try again"), "{e}");
    k.cluster.shutdown().await;
}
