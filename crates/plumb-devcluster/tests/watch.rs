//! Watch: kubectl get -w, replay from a resourceVersion, streaming lists
//! with bookmarks, selectors.

mod common;

use std::time::Duration;

use common::{Kube, http};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_sees_new_objects() {
    require_kubectl!();
    let k = Kube::start().await;
    let mut child = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .args(["get", "cm", "-w"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl get -w");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::sleep(Duration::from_millis(500)).await;
    k.ok(&["create", "cm", "watched"]).await;
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("watched") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true));
    let _ = child.kill().await;
    k.cluster.shutdown().await;
}

fn events(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("watch line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_then_bookmark() {
    let k = Kube::start().await;
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"one"}}"#;
    let (code, _) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[("Content-Type", "application/json")],
            body,
        )
        .await;
    assert_eq!(code, 201);
    let (code, out) = http(
        k.cluster.addr(),
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan",
        &[],
        b"",
        Some(Duration::from_millis(700)),
    )
    .await;
    assert_eq!(code, 200);
    let evs = events(&out);
    assert_eq!(evs[0]["type"], "ADDED");
    assert_eq!(evs[0]["object"]["metadata"]["name"], "one");
    assert_eq!(evs[1]["type"], "BOOKMARK");
    assert_eq!(
        evs[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_resource_version_with_label_selector() {
    let k = Kube::start().await;
    let post = |name: &'static str, label: &'static str| {
        let k = &k;
        async move {
            let body = format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"app":"{label}"}}}}}}"#
            );
            let (code, out) = k
                .http(
                    "POST",
                    "/api/v1/namespaces/default/configmaps",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                )
                .await;
            assert_eq!(code, 201, "{out}");
            serde_json::from_str::<serde_json::Value>(&out).expect("json")
        }
    };
    let a = post("a", "x").await;
    let rv = a["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    post("b", "x").await;
    post("c", "other").await;
    let (_, out) = http(
        k.cluster.addr(),
        "GET",
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&labelSelector=app%3Dx"),
        &[],
        b"",
        Some(Duration::from_millis(500)),
    )
    .await;
    let evs = events(&out);
    let names: Vec<&str> = evs
        .iter()
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["b"], "{out}");
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_representation() {
    let k = Kube::start().await;
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"m","labels":{"a":"b"}},"data":{"big":"x"}}"#;
    let (code, _) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[("Content-Type", "application/json")],
            body,
        )
        .await;
    assert_eq!(code, 201);
    let accept = (
        "Accept",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
    );
    let (_, out) = k
        .http(
            "GET",
            "/api/v1/namespaces/default/configmaps",
            &[accept],
            b"",
        )
        .await;
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["items"][0]["metadata"]["labels"]["a"], "b");
    assert!(list["items"][0].get("data").is_none());
    let accept = (
        "Accept",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    );
    let (_, out) = http(
        k.cluster.addr(),
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1",
        &[accept],
        b"",
        Some(Duration::from_millis(300)),
    )
    .await;
    let evs = events(&out);
    assert_eq!(evs[0]["object"]["kind"], "PartialObjectMetadata");
    assert!(evs[0]["object"].get("data").is_none());
    k.cluster.shutdown().await;
}
