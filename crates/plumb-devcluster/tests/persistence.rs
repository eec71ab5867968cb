//! State survives a restart with a data directory; old watches get 410.

mod common;

use std::time::Duration;

use common::{Kube, http};
use plumb_devcluster::Options;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_objects_and_expires_old_watches() {
    let data = tempfile::tempdir().expect("tempdir");
    let options = || Options {
        data_dir: Some(data.path().to_path_buf()),
        pod_ready_delay: Duration::from_millis(50),
        ..Options::default()
    };
    let k = Kube::start_with(options()).await;
    let body =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kept"},"data":{"a":"1"}}"#;
    let (code, out) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[("Content-Type", "application/json")],
            body,
        )
        .await;
    assert_eq!(code, 201, "{out}");
    let created: serde_json::Value = serde_json::from_str(&out).expect("json");
    k.cluster.shutdown().await;

    let k = Kube::start_with(options()).await;
    let (code, out) = k
        .http(
            "GET",
            "/api/v1/namespaces/default/configmaps/kept",
            &[],
            b"",
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let got: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(got["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(
        got["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    // A new write continues the resourceVersion sequence.
    let (_, out) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[("Content-Type", "application/json")],
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"next"}}"#,
        )
        .await;
    let next: serde_json::Value = serde_json::from_str(&out).expect("json");
    let rv = |v: &serde_json::Value| {
        v["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(rv(&next) > rv(&created));
    let (code, out) = http(
        k.cluster.addr(),
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1",
        &[],
        b"",
        Some(Duration::from_millis(300)),
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        out.contains("\"type\":\"ERROR\"")
            && out.contains("\"code\":410")
            && out.contains("too old resource version"),
        "{out}"
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_journal_line_is_ignored() {
    let data = tempfile::tempdir().expect("tempdir");
    let options = Options {
        data_dir: Some(data.path().to_path_buf()),
        ..Options::default()
    };
    let k = Kube::start_with(options.clone()).await;
    let (code, _) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[("Content-Type", "application/json")],
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"whole"}}"#,
        )
        .await;
    assert_eq!(code, 201);
    k.cluster.shutdown().await;
    // Simulate a kill -9 in the middle of a write.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(data.path().join("journal.jsonl"))
        .expect("journal");
    f.write_all(br#"{"rv":999,"op":"put","resource":"configmaps","object":{"metadata":{"na"#)
        .expect("write");
    drop(f);
    let k = Kube::start_with(options).await;
    let (code, _) = k
        .http(
            "GET",
            "/api/v1/namespaces/default/configmaps/whole",
            &[],
            b"",
        )
        .await;
    assert_eq!(code, 200);
    k.cluster.shutdown().await;
}
