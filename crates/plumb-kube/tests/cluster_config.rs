//! `Cluster::from_config`: a client built from a server URL and credentials (the parts of an
//! Argo CD cluster Secret), against the embedded cluster and against nothing at all.

use plumb_kube::{ApplyOptions, Cluster, ClusterConfig, DryRun, TlsConfig};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_server_with_a_bearer_token_serves_requests_and_watches() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let devcluster = plumb_devcluster::DevCluster::start(plumb_devcluster::Options::default())
        .await
        .expect("start");
    let cluster = Cluster::from_config(&ClusterConfig {
        server: devcluster.url(),
        bearer_token: Some("not-checked-by-the-devcluster".into()),
        ..Default::default()
    })
    .await
    .expect("client");
    cluster.probe().await.expect("server answers");
    let applied = cluster
        .apply(
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v"}}),
            &ApplyOptions {
                dry_run: DryRun::None,
                force: true,
            },
        )
        .await
        .expect("apply");
    assert_eq!(applied["data"]["k"], "v");
    let stream = cluster
        .watch("v1", "ConfigMap", "default", None)
        .await
        .expect("watch");
    let mut stream = Box::pin(stream);
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        use futures::StreamExt;
        while let Some(event) = stream.next().await {
            if let plumb_kube::WatchEvent::Applied(object) = event
                && object["metadata"]["name"] == "a"
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true));
}

#[tokio::test]
async fn an_unreachable_server_fails_fast() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A port nothing listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let cluster = Cluster::from_config(&ClusterConfig {
        server: format!("http://127.0.0.1:{port}"),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .await
    .expect("client");
    let started = Instant::now();
    assert!(cluster.probe().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn malformed_certificate_data_is_refused_without_showing_credentials() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let error = Cluster::from_config(&ClusterConfig {
        server: "https://example.invalid:6443".into(),
        bearer_token: Some("secret-token-value".into()),
        tls: TlsConfig {
            ca_data: Some("%%% not base64".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .map(|_| ())
    .expect_err("a CA that is not base64 is refused");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("example.invalid"), "{shown}");
    assert!(!shown.contains("secret-token-value"), "{shown}");
    let config = ClusterConfig {
        bearer_token: Some("secret-token-value".into()),
        password: Some("secret-password".into()),
        ..Default::default()
    };
    let debug = format!("{config:?}");
    assert!(!debug.contains("secret-token-value") && !debug.contains("secret-password"));
}
