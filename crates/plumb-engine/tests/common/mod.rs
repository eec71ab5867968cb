//! Test harness: an in-process devcluster on an ephemeral port, a temporary Git repository,
//! and the controller running against both.
#![allow(dead_code)]

pub mod charts;
pub mod registry;

use plumb_core::application::{API_VERSION, REFRESH_ANNOTATION};
use plumb_core::key::str_at;
use plumb_engine::{Controller, Options};
use plumb_kube::{ApplyOptions, Cluster, DryRun};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Harness {
    pub devcluster: Option<plumb_devcluster::DevCluster>,
    pub cluster: Cluster,
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// How the controller is configured.
    setup: Setup,
}

/// The controller settings a test may change.
#[derive(Clone)]
pub struct Setup {
    /// Controller workers.
    pub workers: usize,
    /// The controller's wall clock.
    pub clock: plumb_engine::clock::Clock,
    /// Flux's lockdown flags.
    pub flux_tenancy: plumb_engine::flux::Tenancy,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            workers: 4,
            clock: plumb_engine::clock::Clock::System,
            flux_tenancy: Default::default(),
        }
    }
}

pub fn git(repo: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(repo)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Writes `files` (an empty text deletes the file) to the Git repository at `repo`, creating
/// it on first use, and commits them; returns the commit.
pub fn commit_to(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    if !repo.join(".git").exists() {
        std::fs::create_dir_all(repo).expect("repo dir");
        git(repo, &["init", "-q", "-b", "main"]);
    }
    for (path, text) in files {
        let file = repo.join(path);
        if text.is_empty() {
            let _ = std::fs::remove_file(&file);
            continue;
        }
        std::fs::create_dir_all(file.parent().expect("parent")).expect("dirs");
        std::fs::write(&file, text).expect("write");
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "--allow-empty", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

pub fn cm(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

impl Harness {
    /// Starts everything; `files` is the first commit.
    pub async fn start(files: &[(&str, &str)]) -> Harness {
        Harness::start_with_workers(files, 4).await
    }

    /// [`Harness::start`] with a controller of `workers` workers.
    pub async fn start_with_workers(files: &[(&str, &str)], workers: usize) -> Harness {
        Harness::start_with(
            files,
            Setup {
                workers,
                ..Setup::default()
            },
        )
        .await
    }

    /// [`Harness::start`] with a controller reading time from `clock`.
    pub async fn start_with_clock(
        files: &[(&str, &str)],
        clock: plumb_engine::clock::Clock,
    ) -> Harness {
        Harness::start_with(
            files,
            Setup {
                clock,
                ..Setup::default()
            },
        )
        .await
    }

    /// [`Harness::start`] with the controller configured by `setup`.
    pub async fn start_with(files: &[(&str, &str)], setup: Setup) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).expect("repo dir");
        git(&repo, &["init", "-q", "-b", "main"]);
        let devcluster = plumb_devcluster::DevCluster::start(plumb_devcluster::Options {
            pod_ready_delay: Duration::from_millis(100),
            ..Default::default()
        })
        .await
        .expect("devcluster starts");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, devcluster.kubeconfig()).expect("kubeconfig");
        let cluster = Cluster::from_kubeconfig(&kubeconfig, None)
            .await
            .expect("client");
        let mut harness = Harness {
            devcluster: Some(devcluster),
            cluster,
            dir,
            repo,
            stop: None,
            setup,
        };
        harness.commit(files, "initial");
        harness.start_controller();
        for kind in ["Application", "ApplicationSet"] {
            plumb_engine::crds::wait_established(&harness.cluster, API_VERSION, kind)
                .await
                .expect("CRDs installed");
        }
        harness
            .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}))
            .await;
        harness
            .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}))
            .await;
        harness
    }

    pub fn start_controller(&mut self) {
        let sources =
            plumb_engine::git::GitSources::new(&self.dir.path().join("cache")).expect("cache");
        let options = Options {
            poll_interval: Duration::from_secs(3600),
            poll_jitter: Duration::ZERO,
            workers: self.setup.workers,
            clock: self.setup.clock.clone(),
            flux_tenancy: self.setup.flux_tenancy.clone(),
            ..Default::default()
        };
        let controller = Controller::new(self.cluster.clone(), Arc::new(sources), options);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(controller.run(async {
            stopped.await.ok();
        }));
        self.stop = Some(stop);
    }

    pub fn stop_controller(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Writes files (a `None`-like empty content deletes) and commits; returns the SHA.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        commit_to(&self.repo, files, message)
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.repo.display())
    }

    pub async fn apply(&self, object: Value) -> Value {
        self.cluster
            .apply(
                &object,
                &ApplyOptions {
                    dry_run: DryRun::None,
                    force: true,
                },
            )
            .await
            .expect("apply")
    }

    /// Creates an Application `name` for `path` with the given syncPolicy.
    pub async fn create_app(&self, name: &str, path: &str, sync_policy: Value) {
        self.apply(json!({
            "apiVersion": API_VERSION, "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "default",
                "source": {"repoURL": self.url(), "targetRevision": "main", "path": path},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
                "syncPolicy": sync_policy}
        }))
        .await;
    }

    pub async fn app(&self, name: &str) -> Value {
        self.cluster
            .get(API_VERSION, "Application", "argocd", name)
            .await
            .expect("get app")
            .unwrap_or(Value::Null)
    }

    pub async fn refresh(&self, name: &str) {
        self.cluster
            .merge_patch(
                API_VERSION,
                "Application",
                "argocd",
                name,
                &json!({"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}}),
            )
            .await
            .expect("refresh");
    }

    /// Makes the controller look at the application now and waits until it has (the refresh
    /// annotation is removed when a reconcile is done).
    pub async fn reconcile_now(&self, name: &str) -> Value {
        self.refresh(name).await;
        self.wait_app(name, "the refresh to be handled", |app| {
            str_at(app, &["metadata", "annotations", REFRESH_ANNOTATION]).is_empty()
        })
        .await
    }

    /// Sets `operation` on the application (a manual sync: `{"sync": {...}}`, plus `retry`
    /// if wanted) with a unique `initiatedBy.username`, which it returns.
    pub async fn request_operation(&self, name: &str, mut operation: Value) -> String {
        static OPERATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let user = format!(
            "test-{}",
            OPERATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        operation["initiatedBy"] = json!({"username": user});
        self.cluster
            .merge_patch(
                API_VERSION,
                "Application",
                "argocd",
                name,
                &json!({"operation": operation}),
            )
            .await
            .expect("request an operation");
        user
    }

    /// Requests `operation` and waits until it has ended (Succeeded, Failed or Error).
    pub async fn run_operation(&self, name: &str, operation: Value) -> Value {
        let user = self.request_operation(name, operation).await;
        self.wait_app(name, "the operation to end", |app| {
            initiator(app) == user
                && app.get("operation").is_none_or(Value::is_null)
                && matches!(
                    str_at(app, &["status", "operationState", "phase"]),
                    "Succeeded" | "Failed" | "Error"
                )
        })
        .await
    }

    /// Waits until `check` holds for the application; panics with its status otherwise.
    pub async fn wait_app(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let app = self.app(name).await;
            if check(&app) {
                return app;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; application: {}",
                    serde_json::to_string_pretty(&app).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_synced(&self, name: &str, revision: &str) -> Value {
        self.wait_app(name, "Synced and Healthy", |app| {
            str_at(app, &["status", "sync", "status"]) == "Synced"
                && str_at(app, &["status", "health", "status"]) == "Healthy"
                && str_at(app, &["status", "sync", "revision"]) == revision
        })
        .await
    }

    /// Waits until `check` holds for the object (`Null` while it does not exist); returns it.
    pub async fn wait_object(
        &self,
        (api_version, kind): (&str, &str),
        (namespace, name): (&str, &str),
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let object = self
                .cluster
                .get(api_version, kind, namespace, name)
                .await
                .expect("get")
                .unwrap_or(Value::Null);
            if check(&object) {
                return object;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {kind} {namespace}/{name}: {object}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn configmap(&self, name: &str) -> Option<Value> {
        self.cluster
            .get("v1", "ConfigMap", "apps", name)
            .await
            .expect("get configmap")
    }

    pub async fn condition(&self, name: &str, kind: &str) -> String {
        let app = self
            .wait_app(name, &format!("condition {kind}"), |app| {
                app.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|c| c.iter().any(|c| str_at(c, &["type"]) == kind))
            })
            .await;
        app.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == kind))
            .map(|c| str_at(c, &["message"]).to_string())
            .unwrap_or_default()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop_controller();
    }
}

/// Who started the application's last operation.
pub fn initiator(app: &Value) -> &str {
    str_at(
        app,
        &[
            "status",
            "operationState",
            "operation",
            "initiatedBy",
            "username",
        ],
    )
}

pub fn automated(self_heal: bool) -> Value {
    json!({"automated": {"prune": true, "selfHeal": self_heal}})
}
