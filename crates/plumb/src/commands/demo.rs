//! `plumb demo`: the whole loop on one machine in seconds.
//!
//! Starts the embedded cluster and the controller in this process, writes the bundled
//! guestbook example into a new local Git repository, registers an Application for it, and
//! walks through the three things GitOps promises: Git → cluster, a commit rolls out, a change
//! made by hand is reverted. Each step prints how long it took.

use crate::cli::DemoArgs;
use anyhow::{Context as _, bail};
use plumb_core::application::{API_VERSION, REFRESH_ANNOTATION};
use plumb_core::key::str_at;
use plumb_kube::{ApplyOptions, Cluster, DryRun};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FILES: &[(&str, &str)] = &[
    (
        "guestbook/configmap.yaml",
        include_str!("../../demo/guestbook/configmap.yaml"),
    ),
    (
        "guestbook/deployment.yaml",
        include_str!("../../demo/guestbook/deployment.yaml"),
    ),
    (
        "guestbook/service.yaml",
        include_str!("../../demo/guestbook/service.yaml"),
    ),
];
const APPLICATION: &str = include_str!("../../demo/application.yaml");
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => tempfile::Builder::new()
            .prefix("plumb-demo-")
            .tempdir()?
            .keep(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;

    let options = plumb_devcluster::Options {
        listen: args.listen,
        data_dir: None,
        pod_ready_delay: Duration::from_millis(500),
    };
    let devcluster = plumb_devcluster::DevCluster::start(options)
        .await
        .context("cannot start the embedded cluster")?;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, devcluster.kubeconfig())?;
    println!("▶ embedded cluster listening on {}", devcluster.url());

    let repo = dir.join("repo");
    create_repository(&repo)?;
    let revision = git(&repo, &["rev-parse", "HEAD"])?;
    println!(
        "▶ example repository at {} (commit {})",
        repo.display(),
        &revision[..7]
    );

    let cluster = Cluster::from_kubeconfig(&kubeconfig, None).await?;
    let sources = plumb_engine::git::GitSources::new(&dir.join("cache"))?;
    let options = plumb_engine::Options {
        poll_interval: Duration::from_secs(15),
        poll_jitter: Duration::from_secs(2),
        ..Default::default()
    };
    let controller = plumb_engine::Controller::new(cluster.clone(), Arc::new(sources), options);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller_task = tokio::spawn(controller.run(async {
        stopped.await.ok();
    }));
    println!("▶ controller started");

    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}});
    cluster
        .apply(
            &namespace,
            &ApplyOptions {
                dry_run: DryRun::None,
                force: true,
            },
        )
        .await?;
    wait_for(&cluster, "the Application CRD", |c| async move {
        Ok(c.kind(API_VERSION, "Application").await.is_ok())
    })
    .await?;
    let mut application: Value =
        serde_saphyr::from_str(APPLICATION).context("bundled application.yaml")?;
    application["spec"]["source"]["repoURL"] = json!(format!("file://{}", repo.display()));
    cluster
        .apply(
            &application,
            &ApplyOptions {
                dry_run: DryRun::None,
                force: true,
            },
        )
        .await?;

    println!(
        "\n1. Git → cluster: registered Application argocd/guestbook (automated sync, prune, self-heal)"
    );
    let step = Instant::now();
    wait_app(&cluster, &revision).await?;
    println!(
        "   ✔ Synced and Healthy at {} in {:.1}s",
        &revision[..7],
        step.elapsed().as_secs_f64()
    );

    println!("\n2. A commit rolls out: scaling guestbook-ui to 2 replicas in Git");
    let deployment = repo.join("guestbook/deployment.yaml");
    let text = std::fs::read_to_string(&deployment)?.replace("replicas: 1", "replicas: 2");
    std::fs::write(&deployment, text)?;
    git(
        &repo,
        &["commit", "-q", "-am", "Scale guestbook-ui to 2 replicas"],
    )?;
    let revision = git(&repo, &["rev-parse", "HEAD"])?;
    let step = Instant::now();
    cluster
        .merge_patch(
            API_VERSION,
            "Application",
            "argocd",
            "guestbook",
            &json!({"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}}),
        )
        .await?;
    wait_app(&cluster, &revision).await?;
    println!(
        "   ✔ Synced and Healthy at {} in {:.1}s (refresh annotation; polling every 15s would find it too)",
        &revision[..7],
        step.elapsed().as_secs_f64()
    );

    println!("\n3. Drift is reverted: scaling guestbook-ui to 5 by hand, behind Git's back");
    let step = Instant::now();
    cluster
        .merge_patch(
            "apps/v1",
            "Deployment",
            "guestbook",
            "guestbook-ui",
            &json!({"spec": {"replicas": 5}}),
        )
        .await?;
    wait_for(&cluster, "self-heal", |c| async move {
        let live = c
            .get("apps/v1", "Deployment", "guestbook", "guestbook-ui")
            .await?;
        Ok(live.is_some_and(|d| d.pointer("/spec/replicas") == Some(&json!(2))))
    })
    .await?;
    println!(
        "   ✔ reverted to 2 replicas in {:.0}ms",
        step.elapsed().as_secs_f64() * 1000.0
    );

    let keep_running = args.keep_running || (!args.exit && std::io::stdout().is_terminal());
    println!(
        "\nDone in {:.1}s. Look around:",
        started.elapsed().as_secs_f64()
    );
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get all -n guestbook");
    println!("  plumb app get guestbook        # status, resources, health");
    println!("  plumb app history guestbook");
    println!(
        "  edit {}/guestbook/*.yaml, `git commit -am ...`, then `plumb app refresh guestbook`",
        repo.display()
    );
    if keep_running {
        println!("\nThe cluster and controller keep running; press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await.ok();
    }
    let _ = stop.send(());
    let _ = controller_task.await;
    devcluster.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Waits until the application is Synced and Healthy at `revision`.
async fn wait_app(cluster: &Cluster, revision: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let app = cluster
            .get(API_VERSION, "Application", "argocd", "guestbook")
            .await?
            .unwrap_or(Value::Null);
        let (sync, health) = (
            str_at(&app, &["status", "sync", "status"]),
            str_at(&app, &["status", "health", "status"]),
        );
        if sync == "Synced"
            && health == "Healthy"
            && str_at(&app, &["status", "sync", "revision"]) == revision
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            let conditions = app
                .pointer("/status/conditions")
                .cloned()
                .unwrap_or(Value::Null);
            bail!(
                "application did not become Synced and Healthy within {}s (sync {sync:?}, health {health:?}, conditions {conditions})",
                STEP_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for<F, Fut>(cluster: &Cluster, what: &str, check: F) -> anyhow::Result<()>
where
    F: Fn(Cluster) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !check(cluster.clone()).await? {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn create_repository(repo: &Path) -> anyhow::Result<()> {
    if repo.exists() {
        std::fs::remove_dir_all(repo)?;
    }
    for (path, text) in FILES {
        let file = repo.join(path);
        std::fs::create_dir_all(file.parent().unwrap_or(repo))?;
        std::fs::write(file, text)?;
    }
    git(repo, &["init", "-q", "-b", "main"])?;
    git(repo, &["add", "."])?;
    git(repo, &["commit", "-q", "-m", "Add the guestbook example"])?;
    Ok(())
}

/// Runs git with fixed arguments in the demo's own repository (never user or cluster data).
fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=plumb demo",
            "-c",
            "user.email=demo@plumb.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(repo)
        .output()
        .context("cannot run git (is it installed?)")?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
