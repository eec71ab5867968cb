//! A chart from an HTTP Helm repository: an index and a `.tgz` served over loopback, and an
//! Application with `spec.source.chart` and a version range installs it.

mod common;

use common::Harness;
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn podinfo_chart() -> PathBuf {
    let beside =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/podinfo/charts/podinfo");
    if beside.is_dir() {
        beside
    } else {
        PathBuf::from("/work/shared/corpus/podinfo/charts/podinfo")
    }
}

/// The chart directory packed as `helm package` does: everything under `<name>/`.
fn package(dir: &Path, name: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    builder.append_dir_all(name, dir).expect("pack the chart");
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// Serves `files` (path → body) over HTTP/1.1 on an ephemeral loopback port.
fn serve(files: Vec<(String, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let files = files.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut stream = stream;
                match files.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(body);
                    }
                    None => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_from_a_helm_repository_installs_with_the_resolved_version() {
    let chart = package(&podinfo_chart(), "podinfo");
    let chart_yaml =
        std::fs::read_to_string(podinfo_chart().join("Chart.yaml")).expect("Chart.yaml");
    let version = chart_yaml
        .lines()
        .find_map(|l| l.strip_prefix("version:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .expect("chart version");
    let index = format!(
        "apiVersion: v1\nentries:\n  podinfo:\n  - name: podinfo\n    version: {version}\n    urls: [charts/podinfo-{version}.tgz]\n    digest: {}\n  - name: podinfo\n    version: 5.0.0\n    urls: [charts/missing.tgz]\n  unrelated:\n  - version: 1.0.0\n    urls: [x.tgz]\n",
        sha256(&chart)
    );
    let repo = serve(vec![
        ("/index.yaml".into(), index.into_bytes()),
        (format!("/charts/podinfo-{version}.tgz"), chart),
    ]);
    let h = Harness::start(&[("unused/README.md", "x")]).await;
    let app = |name: &str, constraint: &str| {
        json!({"apiVersion": API_VERSION, "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "default",
                "source": {"repoURL": repo, "chart": "podinfo", "targetRevision": constraint,
                    "helm": {"releaseName": name}},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
                "syncPolicy": {"automated": {"prune": true}}}})
    };
    h.apply(app("podinfo", "^6.0")).await;
    let synced = h.wait_synced("podinfo", &version).await;
    assert_eq!(str_at(&synced, &["status", "sourceType"]), "Helm");
    let deployment = h
        .cluster
        .get("apps/v1", "Deployment", "apps", "podinfo")
        .await
        .expect("get")
        .expect("the chart's Deployment exists");
    assert_eq!(
        str_at(
            &deployment,
            &["metadata", "labels", "app.kubernetes.io/version"]
        ),
        version
    );

    // Bad input: no version matches; the condition names the chart and the constraint.
    h.apply(app("too-new", ">=7")).await;
    let message = h.condition("too-new", "ComparisonError").await;
    assert!(
        message.contains("chart \"podinfo\"") && message.contains(">=7"),
        "{message}"
    );
    // A chart the repository does not have.
    let mut missing = app("missing", "*");
    missing["spec"]["source"]["chart"] = json!("nope");
    h.apply(missing).await;
    let message = h.condition("missing", "ComparisonError").await;
    assert!(message.contains("chart \"nope\" not found"), "{message}");
}
