//! The embedded cluster's throughput as plumb's kube-rs client sees it:
//! `cargo bench -p plumb-kube --bench kube_client`.
//!
//! Server and client share one 2-worker runtime (and the machine's two cores), so the figures
//! include kube-rs's own cost (tower stack, JSON to `DynamicObject` and back). Prints a Markdown
//! table; `crates/plumb-devcluster/BENCHMARKS.md` has the raw-HTTP figures.

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use plumb_kube::{Cluster, DryRun};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

// The allocator of the `plumb` binary, which serves `plumb devcluster` and runs the controller.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OBJECTS: usize = 10_000;
const READS: usize = 40_000;
const CONCURRENCY: usize = 16;

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn configmap(index: usize, payload: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("cm-{index}"), "namespace": "default"},
        "data": {"payload": payload}})
}

/// Runs `total` operations, `CONCURRENCY` at a time; (operations per second, per CPU-second).
async fn throughput<F, Fut>(total: usize, operation: F) -> (f64, f64)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut running = FuturesUnordered::new();
    let mut next = 0;
    while next < total || !running.is_empty() {
        while next < total && running.len() < CONCURRENCY {
            running.push(operation(next));
            next += 1;
        }
        running.next().await;
    }
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    (total as f64 / wall, total as f64 / cpu.max(0.01))
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let devcluster = plumb_devcluster::DevCluster::start(plumb_devcluster::Options::default())
            .await
            .expect("start the embedded cluster");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, devcluster.kubeconfig()).expect("kubeconfig");
        let cluster = Arc::new(Cluster::from_kubeconfig(&path, None).await.expect("client"));
        cluster.kind("v1", "ConfigMap").await.expect("discovery");
        let payload: Arc<str> = "x".repeat(2048 - 150).into();

        let creates = throughput(OBJECTS, |i| {
            let (cluster, payload) = (cluster.clone(), payload.clone());
            async move {
                cluster.create(&configmap(i, &payload)).await.expect("create");
            }
        })
        .await;
        let reads = throughput(READS, |i| {
            let cluster = cluster.clone();
            async move {
                let name = format!("cm-{}", i % OBJECTS);
                let found = cluster.get("v1", "ConfigMap", "default", &name).await;
                assert!(matches!(found, Ok(Some(_))), "{name}: {found:?}");
            }
        })
        .await;
        let applies = throughput(OBJECTS, |i| {
            let (cluster, payload) = (cluster.clone(), payload.clone());
            async move {
                let object = configmap(i, &format!("{payload}u"));
                let options = plumb_kube::ApplyOptions {
                    dry_run: DryRun::None,
                    force: true,
                };
                cluster.apply(&object, &options).await.expect("apply");
            }
        })
        .await;
        devcluster.shutdown().await;

        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "load average during the run: {}",
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
        println!();
        println!("| measure (kube-rs client, {CONCURRENCY} concurrent) | per second | per CPU-second (client + server) | target |");
        println!("|---|---|---|---|");
        println!("| creates, 10,000 ConfigMaps of 2 KiB | {:.0} | {:.0} | ≥ 5,000 writes/s |", creates.0, creates.1);
        println!("| server-side applies (changing each object) | {:.0} | {:.0} | ≥ 5,000 writes/s |", applies.0, applies.1);
        println!("| GET by name | {:.0} | {:.0} | ≥ 20,000 reads/s |", reads.0, reads.1);
    });
}
