//! A controller killed with SIGKILL in the middle of a sync: the next controller resumes the
//! same operation (same start, hook not created again) and finishes it. Real binaries: `plumb
//! devcluster` and `plumb controller` as child processes, `kubectl` as the client.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn plumb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_plumb"))
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("command runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn git(repo: &Path, args: &[&str]) -> String {
    run(Command::new("git")
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(repo))
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs")
}

fn application(kubeconfig: &Path) -> serde_json::Value {
    let output = kubectl(
        kubeconfig,
        &["get", "application", "web", "-n", "argocd", "-o", "json"],
    );
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

fn wait_for(what: &str, mut check: impl FnMut() -> Option<serde_json::Value>) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn controller(kubeconfig: &Path, cache: &Path) -> Killed {
    Killed(
        plumb()
            .arg("controller")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--poll-interval", "1h"])
            .arg("--cache-dir")
            .arg(cache)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("controller starts"),
    )
}

fn hook_running(app: &serde_json::Value) -> bool {
    app.pointer("/status/operationState/syncResult/resources")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|r| r.iter().any(|r| r["hookPhase"] == "Running"))
}

#[test]
fn a_sync_interrupted_by_kill_9_is_resumed_not_repeated() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        panic!("kubectl is needed: it is on every machine of this project");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("app")).expect("repo");
    // The PreSync hook's pod takes 3 s to run: long enough to kill the controller meanwhile.
    std::fs::write(
        repo.join("app/pre.yaml"),
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    argocd.argoproj.io/hook: PreSync\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: m\n        image: example.com/migrate:1\n",
    )
    .expect("hook");
    std::fs::write(
        repo.join("app/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after-hook\ndata:\n  a: \"1\"\n",
    )
    .expect("cm");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    let _cluster = Killed(
        plumb()
            .args(["devcluster", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--pod-ready-delay", "3"])
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .spawn()
            .expect("devcluster starts"),
    );
    wait_for("the embedded cluster", || {
        (kubeconfig.exists()
            && kubectl(&kubeconfig, &["get", "--raw", "/readyz"])
                .status
                .success())
        .then_some(serde_json::Value::Null)
    });
    let cache = dir.path().join("cache");
    let mut first = controller(&kubeconfig, &cache);
    for namespace in ["argocd", "apps"] {
        assert!(
            kubectl(&kubeconfig, &["create", "namespace", namespace])
                .status
                .success()
        );
    }
    wait_for("the Application CRD", || {
        kubectl(&kubeconfig, &["get", "crd", "applications.argoproj.io"])
            .status
            .success()
            .then_some(serde_json::Value::Null)
    });
    let manifest = dir.path().join("app.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\n  namespace: argocd\nspec:\n  project: default\n  source:\n    repoURL: file://{}\n    targetRevision: main\n    path: app\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: apps\n  syncPolicy:\n    automated: {{}}\n",
            repo.display()
        ),
    )
    .expect("manifest");
    let applied = kubectl(
        &kubeconfig,
        &["apply", "-f", manifest.to_str().expect("path")],
    );
    assert!(applied.status.success(), "{applied:?}");

    let running = wait_for("the PreSync hook to run", || {
        Some(application(&kubeconfig)).filter(hook_running)
    });
    let started = running["status"]["operationState"]["startedAt"].clone();
    let job_uid = |kubeconfig: &Path| {
        let output = kubectl(
            kubeconfig,
            &[
                "get",
                "job",
                "migrate",
                "-n",
                "apps",
                "-o",
                "jsonpath={.metadata.uid}",
            ],
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let uid = job_uid(&kubeconfig);
    assert!(!uid.is_empty());

    // SIGKILL: no chance to write anything more.
    first.0.kill().expect("kill -9");
    first.0.wait().expect("reaped");
    drop(first);
    assert!(
        !kubectl(
            &kubeconfig,
            &["get", "configmap", "after-hook", "-n", "apps"]
        )
        .status
        .success(),
        "the Sync phase had not started"
    );

    let _second = controller(&kubeconfig, &cache);
    let done = wait_for("the resumed sync to succeed", || {
        let app = application(&kubeconfig);
        (app["status"]["operationState"]["phase"] == "Succeeded").then_some(app)
    });
    assert_eq!(
        done["status"]["operationState"]["startedAt"], started,
        "the same operation went on"
    );
    assert_eq!(job_uid(&kubeconfig), uid, "the hook was not created again");
    assert!(
        kubectl(
            &kubeconfig,
            &["get", "configmap", "after-hook", "-n", "apps"]
        )
        .status
        .success()
    );
    let history = done["status"]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["revision"], serde_json::Value::String(head));
}
