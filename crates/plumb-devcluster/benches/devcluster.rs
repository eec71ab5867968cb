//! Throughput and latency of the devcluster through HTTP:
//! `cargo bench -p plumb-devcluster --bench devcluster`.
//!
//! Prints a Markdown table (the figures in BENCHMARKS.md come from it).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use plumb_devcluster::{DevCluster, Options};

// The allocator of the `plumb` binary, which serves `plumb devcluster`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build_http()
}

async fn request(c: &HttpClient, method: &str, url: &str, body: Bytes) -> (u16, Bytes) {
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("request");
    let resp = c.request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

fn configmap(name: &str, payload: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"bench":"yes"}}}},"data":{{"payload":"{payload}"}}}}"#
    ))
}

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

async fn start() -> DevCluster {
    DevCluster::start(Options {
        pod_ready_delay: Duration::ZERO,
        ..Options::default()
    })
    .await
    .expect("start")
}

/// Runs `total` requests over `workers` concurrent clients; returns
/// (requests per wall second, requests per CPU second of the whole process).
async fn throughput<F>(workers: usize, total: usize, make: F) -> (f64, f64)
where
    F: Fn(usize) -> (String, String, Bytes) + Send + Sync + 'static,
{
    let make = std::sync::Arc::new(make);
    let c = client();
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut tasks = vec![];
    for w in 0..workers {
        let make = make.clone();
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < total {
                let (method, url, body) = make(i);
                let (status, _) = request(&c, &method, &url, body).await;
                assert!(status < 300, "status {status}");
                i += workers;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let cpu_used = (cpu_seconds() - cpu).max(0.01);
    (
        total as f64 / started.elapsed().as_secs_f64(),
        total as f64 / cpu_used,
    )
}

async fn fan_out(watchers: usize, writes: usize) -> (f64, f64, f64) {
    let cluster = start().await;
    let base = cluster.url();
    let c = client();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let mut ready = vec![];
    for _ in 0..watchers {
        let url = format!(
            "{base}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=0&labelSelector=fan%3Dout"
        );
        let c = c.clone();
        let tx = tx.clone();
        let (rtx, rrx) = tokio::sync::oneshot::channel::<()>();
        ready.push(rrx);
        tokio::spawn(async move {
            let req = hyper::Request::builder()
                .uri(url)
                .body(Full::new(Bytes::new()))
                .expect("req");
            let resp = c.request(req).await.expect("watch");
            let _ = rtx.send(());
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        let text = String::from_utf8_lossy(&line);
                        if let Some(i) = text
                            .split("\"name\":\"fan-")
                            .nth(1)
                            .and_then(|r| r.split('"').next())
                            .and_then(|n| n.parse::<usize>().ok())
                        {
                            let _ = tx.send((i, Instant::now()));
                        }
                    }
                }
            }
        });
    }
    for r in ready {
        let _ = r.await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sent = vec![];
    for i in 0..writes {
        let body = Bytes::from(format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"fan-{i}","labels":{{"fan":"out"}}}}}}"#
        ));
        let t0 = Instant::now();
        let (status, _) = request(
            &c,
            "POST",
            &format!("{base}/api/v1/namespaces/default/configmaps"),
            body,
        )
        .await;
        assert_eq!(status, 201);
        sent.push(t0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut latencies = vec![];
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies.len() < watchers * writes && Instant::now() < deadline {
        if let Ok(Some((i, t))) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            latencies.push(t.duration_since(sent[i]).as_secs_f64() * 1000.0);
        }
    }
    assert_eq!(
        latencies.len(),
        watchers * writes,
        "every watcher saw every write"
    );
    latencies.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    cluster.shutdown().await;
    (p(0.5), p(0.99), latencies[latencies.len() - 1])
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Start-up.
        let mut starts = vec![];
        for _ in 0..20 {
            let t = Instant::now();
            let c = start().await;
            starts.push(t.elapsed().as_secs_f64() * 1000.0);
            c.shutdown().await;
        }
        starts.sort_by(|a, b| a.total_cmp(b));
        let startup_median = starts[starts.len() / 2];

        // Memory for 10,000 objects of ~2 KiB, then writes/s and reads/s.
        let cluster = start().await;
        let base = cluster.url();
        let payload: String = "x".repeat(2048 - 150);
        let before = rss_kib();
        let b2 = base.clone();
        let p2 = payload.clone();
        let writes = throughput(16, 10_000, move |i| {
            ("POST".into(), format!("{b2}/api/v1/namespaces/default/configmaps"), configmap(&format!("cm-{i}"), &p2))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib();
        let b3 = base.clone();
        let reads = throughput(16, 40_000, move |i| {
            ("GET".into(), format!("{b3}/api/v1/namespaces/default/configmaps/cm-{}", i % 10_000), Bytes::new())
        })
        .await;
        let b4 = base.clone();
        let p4 = payload.clone();
        let updates = throughput(16, 10_000, move |i| {
            ("PUT".into(), format!("{b4}/api/v1/namespaces/default/configmaps/cm-{i}"), configmap(&format!("cm-{i}"), &format!("{p4}u")))
        })
        .await;
        let list_t = Instant::now();
        let c = client();
        let (_, list) = request(&c, "GET", &format!("{base}/api/v1/namespaces/default/configmaps"), Bytes::new()).await;
        let list_ms = list_t.elapsed().as_secs_f64() * 1000.0;
        cluster.shutdown().await;

        let (p50, p99, max) = fan_out(100, 200).await;

        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!("load average during the run: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
        println!();
        println!("| measure | result | per CPU-second (client + server) | target |");
        println!("|---|---|---|---|");
        println!("| start-up (median of 20, in-process, to listening) | {startup_median:.2} ms | | < 50 ms |");
        println!("| creates/s (16 clients, 10,000 ConfigMaps of 2 KiB) | {:.0} | {:.0} | ≥ 5,000 |", writes.0, writes.1);
        println!("| updates/s (16 clients, PUT, 10,000 objects) | {:.0} | {:.0} | ≥ 5,000 |", updates.0, updates.1);
        println!("| reads/s (16 clients, GET by name) | {:.0} | {:.0} | ≥ 20,000 |", reads.0, reads.1);
        println!("| RSS growth holding 10,000 objects of 2 KiB | {:.1} MiB | | < 100 MiB |", (after.saturating_sub(before)) as f64 / 1024.0);
        println!("| LIST of 10,000 objects ({:.1} MiB JSON) | {list_ms:.0} ms | | — |", list.len() as f64 / 1048576.0);
        println!("| watch fan-out to 100 watchers, 200 writes: p50 / p99 / max | {p50:.2} / {p99:.2} / {max:.2} ms | | p99 < 10 ms |");
    });
}
