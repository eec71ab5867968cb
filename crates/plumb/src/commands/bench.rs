//! `plumb bench gitops` and `plumb bench helm`: the controller measured end to end.
//!
//! The embedded cluster runs in a child process (`plumb devcluster`), and so does the
//! controller, so the peak RSS and CPU reported are the controller's own. In `gitops` every
//! application has 4 objects (ConfigMap, Secret, Service, Deployment with one replica) from one
//! shared Git repository; in `helm` every HelmRelease installs a 3-object chart (ConfigMap,
//! Service, Deployment) served by a loopback chart repository.

use crate::cli::{BenchCommand, BenchGitopsArgs};
use anyhow::{Context as _, bail};
use plumb_core::application::{API_VERSION, REFRESH_ANNOTATION};
use plumb_core::key::str_at;
use plumb_kube::{ApplyOptions, Cluster, DryRun};
use serde_json::json;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

pub async fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Gitops(args) => gitops(args).await,
        BenchCommand::Helm(args) => super::bench_helm::helm(args).await,
    }
}

fn app_files(repo: &Path, index: usize, value: &str) -> anyhow::Result<()> {
    let dir = repo.join(format!("apps/app-{index}"));
    std::fs::create_dir_all(&dir)?;
    let name = format!("app-{index}");
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n  token: \"t-{index}\"\n"
        ),
    )?;
    std::fs::write(
        dir.join("workload.yaml"),
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n  ports:\n  - port: 80\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n"
        ),
    )?;
    Ok(())
}

fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=plumb bench",
            "-c",
            "user.email=bench@plumb.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(repo)
        .output()
        .context("cannot run git")?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// (user + system CPU seconds, peak RSS in MiB) of process `pid`.
pub(super) fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
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
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

/// A child process killed when dropped, so an early return never leaves it running.
pub(super) struct Child(pub(super) std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

async fn count_ready(cluster: &Cluster, revision: &str) -> anyhow::Result<usize> {
    let apps = cluster.list(API_VERSION, "Application", "argocd").await?;
    Ok(apps
        .iter()
        .filter(|a| {
            str_at(a, &["status", "sync", "status"]) == "Synced"
                && str_at(a, &["status", "health", "status"]) == "Healthy"
                && str_at(a, &["status", "sync", "revision"]) == revision
        })
        .count())
}

/// Starts `plumb devcluster` in a child process; returns it and its kubeconfig path once the
/// cluster answers.
pub(super) async fn start_devcluster(dir: &Path) -> anyhow::Result<(Child, std::path::PathBuf)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let kubeconfig = dir.join("kubeconfig");
    let cluster = Child(
        Command::new(std::env::current_exe()?)
            .args([
                "devcluster",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--pod-ready-delay",
                "0.1",
            ])
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start `plumb devcluster`")?,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !kubeconfig.exists() {
        if Instant::now() > deadline {
            bail!("the embedded cluster did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((cluster, kubeconfig))
}

/// Starts `plumb controller` in a child process against `kubeconfig`.
pub(super) fn start_controller(
    kubeconfig: &Path,
    workers: usize,
    cache: &Path,
) -> anyhow::Result<Child> {
    Ok(Child(
        Command::new(std::env::current_exe()?)
            .arg("controller")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--poll-interval", "1h", "--workers", &workers.to_string()])
            .arg("--cache-dir")
            .arg(cache)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start `plumb controller`")?,
    ))
}

async fn gitops(args: BenchGitopsArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new().prefix("plumb-bench-").tempdir()?;
    let (_cluster, kubeconfig) = start_devcluster(dir.path()).await?;
    measure(&args, dir.path(), &kubeconfig).await
}

async fn measure(
    args: &BenchGitopsArgs,
    dir: &Path,
    kubeconfig: &Path,
) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::from_kubeconfig(kubeconfig, None).await?;
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    for index in 0..args.apps {
        app_files(&repo, index, "v0")?;
    }
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "bench apps"])?;
    let mut revision = git(&repo, &["rev-parse", "HEAD"])?;
    let apply = ApplyOptions {
        dry_run: DryRun::None,
        force: true,
    };
    for namespace in ["argocd", "bench"] {
        cluster
            .apply(
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
                &apply,
            )
            .await?;
    }

    // The controller runs as its own process, as in production, so its CPU and memory are
    // measured apart from this benchmark's client.
    let controller = start_controller(kubeconfig, args.workers, &dir.join("cache"))?;
    let pid = controller.0.id();
    while cluster.kind(API_VERSION, "Application").await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let url = format!("file://{}", repo.display());
    let started = Instant::now();
    for index in 0..args.apps {
        let app = json!({"apiVersion": API_VERSION, "kind": "Application",
            "metadata": {"name": format!("app-{index}"), "namespace": "argocd"},
            "spec": {"source": {"repoURL": url, "targetRevision": "main", "path": format!("apps/app-{index}")},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "bench"},
                "syncPolicy": {"automated": {"prune": true, "selfHeal": true}}}});
        cluster.apply(&app, &apply).await?;
    }
    let created = started.elapsed();
    loop {
        let ready = count_ready(&cluster, &revision).await?;
        if ready == args.apps {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!(
                "only {ready} of {} applications became Synced and Healthy in 15 minutes",
                args.apps
            );
        }
        // Each look lists every Application with its status: keep the benchmark's own load
        // on the API server small next to the controller's.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cold = started.elapsed();
    // Let the reconciles that the rollout's own status changes trigger die down.
    tokio::time::sleep(Duration::from_secs(10)).await;

    // Drift: change a ConfigMap by hand, time until self-heal puts it back.
    let mut drift = Vec::new();
    for sample in 0..args.drift_samples {
        let name = format!("app-{}", sample % args.apps);
        let t = Instant::now();
        cluster
            .merge_patch(
                "v1",
                "ConfigMap",
                "bench",
                &name,
                &json!({"data": {"value": "drifted"}}),
            )
            .await?;
        loop {
            let live = cluster.get("v1", "ConfigMap", "bench", &name).await?;
            if live.is_some_and(|c| c.pointer("/data/value") == Some(&json!("v0"))) {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                bail!("drift on {name} not reverted in 30s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drift.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Commit to applied: change one app in Git, ask for a refresh, time until the cluster has it.
    let mut commit = Vec::new();
    for sample in 0..args.commit_samples {
        let index = sample % args.apps;
        let value = format!("v{}", sample + 1);
        app_files(&repo, index, &value)?;
        git(&repo, &["commit", "-q", "-am", &format!("sample {sample}")])?;
        revision = git(&repo, &["rev-parse", "HEAD"])?;
        let t = Instant::now();
        let name = format!("app-{index}");
        cluster
            .merge_patch(
                API_VERSION,
                "Application",
                "argocd",
                &name,
                &json!({"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}}),
            )
            .await?;
        loop {
            let live = cluster.get("v1", "ConfigMap", "bench", &name).await?;
            if live.is_some_and(|c| c.pointer("/data/value") == Some(&json!(value))) {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                bail!("commit {revision} not applied to {name} in 30s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        commit.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // No-change reconciles: touching an annotation wakes each application's reconcile.
    let (cpu_before, _) = usage(pid);
    let touch_started = Instant::now();
    for index in 0..args.apps {
        cluster
            .merge_patch(
                API_VERSION,
                "Application",
                "argocd",
                &format!("app-{index}"),
                &json!({"metadata": {"annotations": {"bench.plumb.dev/touch": "1"}}}),
            )
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu_after, _) = usage(pid);
    let cpu_per_reconcile_ms = (cpu_after - cpu_before) * 1000.0 / args.apps as f64;
    let _ = touch_started;

    let (_, peak_rss) = usage(pid);
    drop(controller);

    println!("| measure | result |");
    println!("|---|---|");
    println!("| applications × objects | {} × 4 |", args.apps);
    println!(
        "| create {} Applications | {:.1} s |",
        args.apps,
        created.as_secs_f64()
    );
    println!(
        "| cold sync until all Synced and Healthy | {:.1} s |",
        cold.as_secs_f64()
    );
    println!("| controller CPU per no-change reconcile | {cpu_per_reconcile_ms:.2} ms |");
    println!(
        "| drift revert p50 / p99 ({} samples) | {:.0} ms / {:.0} ms |",
        drift.len(),
        percentile(&mut drift, 0.5),
        percentile(&mut drift, 0.99)
    );
    println!(
        "| commit-to-applied p50 / p99 ({} samples) | {:.0} ms / {:.0} ms |",
        commit.len(),
        percentile(&mut commit, 0.5),
        percentile(&mut commit, 0.99)
    );
    println!("| controller peak RSS | {peak_rss:.0} MiB |");
    Ok(ExitCode::SUCCESS)
}
