//! `plumb bench helm`: N Flux HelmReleases of one chart, installed and then upgraded, against
//! an embedded cluster and a loopback chart repository.

use super::bench::{start_controller, start_devcluster, usage};
use crate::cli::BenchHelmArgs;
use anyhow::{Context as _, bail};
use plumb_core::key::str_at;
use plumb_engine::flux::{HELM_API_VERSION, SOURCE_API_VERSION};
use plumb_kube::{ApplyOptions, Cluster, DryRun};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const CHART: [(&str, &str); 5] = [
    (
        "Chart.yaml",
        "apiVersion: v2\nname: bench\nversion: 1.0.0\nappVersion: \"1.0\"\n",
    ),
    ("values.yaml", "replicaCount: 1\nmessage: hello\n"),
    (
        "templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  labels:\n    app: {{ .Release.Name }}\ndata:\n  message: {{ .Values.message | quote }}\n",
    ),
    (
        "templates/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  selector:\n    app: {{ .Release.Name }}\n  ports:\n  - port: 80\n",
    ),
    (
        "templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicaCount }}\n  selector:\n    matchLabels:\n      app: {{ .Release.Name }}\n  template:\n    metadata:\n      labels:\n        app: {{ .Release.Name }}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    ),
];

/// The bench chart as `helm package` packs it.
fn archive() -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, text) in CHART {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, format!("bench/{path}"), text.as_bytes())?;
    }
    Ok(builder.into_inner()?.finish()?)
}

/// Serves the index and the archive on an ephemeral loopback port; returns the URL.
fn serve(archive: Vec<u8>) -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let index = "apiVersion: v1\nentries:\n  bench:\n  - name: bench\n    version: 1.0.0\n    urls: [bench-1.0.0.tgz]\n";
    let files = std::sync::Arc::new([
        ("/index.yaml".to_string(), index.as_bytes().to_vec()),
        ("/bench-1.0.0.tgz".to_string(), archive),
    ]);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let files = files.clone();
            std::thread::spawn(move || {
                let Ok(clone) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(clone);
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let mut stream = stream;
                match files.iter().find(|(p, _)| p == path) {
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
    Ok(format!("http://{address}"))
}

fn released(release: &Value, version: u64) -> bool {
    let ready = release
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True")
        });
    ready
        && release
            .pointer("/status/history/0/version")
            .and_then(Value::as_u64)
            == Some(version)
}

/// Waits until every release has release `version` deployed and is Ready.
async fn wait_all(cluster: &Cluster, count: usize, version: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let releases = cluster
            .list(HELM_API_VERSION, "HelmRelease", "bench")
            .await?;
        let done = releases.iter().filter(|r| released(r, version)).count();
        if done == count {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("only {done} of {count} HelmReleases reached release v{version} in 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub(super) async fn helm(args: BenchHelmArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new().prefix("plumb-bench-").tempdir()?;
    let (_devcluster, kubeconfig) = start_devcluster(dir.path()).await?;
    let url = serve(archive().context("cannot pack the bench chart")?)?;
    let cluster = Cluster::from_kubeconfig(&kubeconfig, None).await?;
    let apply = ApplyOptions {
        dry_run: DryRun::None,
        force: true,
    };
    cluster
        .apply(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}),
            &apply,
        )
        .await?;
    let controller = start_controller(&kubeconfig, args.workers, &dir.path().join("cache"))?;
    let pid = controller.0.id();
    while cluster.kind(HELM_API_VERSION, "HelmRelease").await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster
        .apply(
            &json!({"apiVersion": SOURCE_API_VERSION, "kind": "HelmRepository",
                "metadata": {"name": "bench", "namespace": "bench"},
                "spec": {"url": url, "interval": "1h"}}),
            &apply,
        )
        .await?;
    let release = |index: usize, message: &str| {
        json!({"apiVersion": HELM_API_VERSION, "kind": "HelmRelease",
            "metadata": {"name": format!("r-{index}"), "namespace": "bench"},
            "spec": {"interval": "1h",
                "chart": {"spec": {"chart": "bench", "version": "1.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "bench"}}},
                "values": {"message": message}}})
    };
    let started = Instant::now();
    for index in 0..args.releases {
        cluster.apply(&release(index, "hello"), &apply).await?;
    }
    wait_all(&cluster, args.releases, 1).await?;
    let install = started.elapsed();
    let (install_cpu, _) = usage(pid);
    tokio::time::sleep(Duration::from_secs(5)).await;

    let started = Instant::now();
    for index in 0..args.releases {
        cluster.apply(&release(index, "upgraded"), &apply).await?;
    }
    wait_all(&cluster, args.releases, 2).await?;
    let upgrade = started.elapsed();
    let (cpu, peak_rss) = usage(pid);
    drop(controller);

    println!("| measure | result |");
    println!("|---|---|");
    println!("| HelmReleases × objects | {} × 3 |", args.releases);
    println!(
        "| install all (created → all Ready with release v1) | {:.1} s |",
        install.as_secs_f64()
    );
    println!(
        "| upgrade all with new values (→ all Ready with v2) | {:.1} s |",
        upgrade.as_secs_f64()
    );
    println!(
        "| controller CPU per install | {:.1} ms |",
        install_cpu * 1000.0 / args.releases as f64
    );
    println!(
        "| controller CPU per upgrade | {:.1} ms |",
        (cpu - install_cpu) * 1000.0 / args.releases as f64
    );
    println!("| controller peak RSS | {peak_rss:.0} MiB |");
    Ok(ExitCode::SUCCESS)
}
