//! Shared harness: an in-process devcluster on an ephemeral port, driven by
//! the real `kubectl` through a kubeconfig in a temporary directory.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use plumb_devcluster::{DevCluster, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Kube {
    pub cluster: DevCluster,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// Whether the real kubectl is available; the kubectl suites need it.
pub fn has_kubectl() -> bool {
    std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Kube {
    pub async fn start() -> Kube {
        Self::start_with(Options {
            pod_ready_delay: Duration::from_millis(200),
            ..Options::default()
        })
        .await
    }

    pub async fn start_with(options: Options) -> Kube {
        let cluster = DevCluster::start(options).await.expect("devcluster starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, cluster.kubeconfig()).expect("write kubeconfig");
        Kube {
            cluster,
            dir,
            kubeconfig,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write file");
        p.display().to_string()
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .kill_on_drop(true);
        c
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("kubectl runs")
    }

    pub async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().await.expect("kubectl runs")
    }

    /// Runs kubectl, asserts success, returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts failure, returns stderr.
    pub async fn fail(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} should fail but printed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Applies YAML text through a file.
    pub async fn apply(&self, yaml: &str, extra: &[&str]) -> String {
        let f = self.write("apply.yaml", yaml);
        let mut args = vec!["apply", "-f", f.as_str()];
        args.extend_from_slice(extra);
        self.ok(&args).await
    }

    pub async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&a).await).expect("kubectl printed JSON")
    }

    /// Polls until `check` passes or the timeout elapses.
    pub async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..100 {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// A raw HTTP/1.1 request; returns (status, body). Handles chunked bodies.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        http(self.cluster.addr(), method, path, headers, body, None).await
    }
}

/// Raw HTTP client for tests that need exact control of headers; reads until
/// the connection closes or `max_wait` passes (for watches).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    max_wait: Option<Duration>,
) -> (u16, String) {
    let (status, _, body) = exchange(addr, method, path, headers, body, max_wait).await;
    (status, body)
}

/// Like [`http`], also returning the response head (status line and headers).
pub async fn http_with_head(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    exchange(addr, method, path, headers, body, None).await
}

async fn exchange(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    max_wait: Option<Duration>,
) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write body");
    let mut raw = Vec::new();
    let read = async {
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    };
    match max_wait {
        Some(d) => {
            let _ = tokio::time::timeout(d, read).await;
        }
        None => read.await,
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, head.to_string(), body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            out.push_str(&rest[..rest.len().min(n)]);
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// Skips a kubectl suite on machines without kubectl.
#[macro_export]
macro_rules! require_kubectl {
    () => {
        if !common::has_kubectl() {
            eprintln!("kubectl not found on PATH: skipping");
            return;
        }
    };
}
