//! End-to-end runs of the real `plumb` binary.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn plumb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_plumb"))
}

#[test]
fn demo_walks_through_sync_rollout_and_self_heal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = plumb()
        .args(["demo", "--exit", "--dir"])
        .arg(dir.path())
        .output()
        .expect("plumb runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stdout.matches("✔ Synced and Healthy").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("✔ reverted to 2 replicas"), "{stdout}");
    assert!(dir.path().join("kubeconfig").exists());
}

#[test]
fn usage_errors_exit_2() {
    let output = plumb().args(["app", "get"]).output().expect("plumb runs");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn devcluster_refuses_non_loopback_addresses() {
    let output = plumb()
        .args(["devcluster", "--listen", "0.0.0.0:0"])
        .output()
        .expect("plumb runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}

#[test]
fn app_commands_name_a_missing_kubeconfig() {
    let output = plumb()
        .args(["app", "list", "--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .expect("plumb runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/kubeconfig"), "{stderr}");
}
