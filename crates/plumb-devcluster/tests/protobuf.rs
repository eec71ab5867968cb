//! kubectl ≥ 1.32 sends protobuf bodies for generator commands; the server
//! decodes them for the kinds those generators create without a pod template.

mod common;

use common::Kube;

/// A kubectl ≥ 1.32 binary, if one is installed next to the dispatcher.
fn newer_kubectl() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let Ok(real) = std::fs::canonicalize(dir.join("kubectl")) else {
            continue;
        };
        let parent = real.parent()?.to_path_buf();
        for v in ["kubectl.1.33", "kubectl.1.32"] {
            let candidate = parent.join(v);
            if candidate.exists() {
                return Some(candidate);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_32_generators_send_protobuf() {
    let Some(kubectl) = newer_kubectl() else {
        eprintln!("no kubectl >= 1.32 found: skipping");
        return;
    };
    let k = Kube::start().await;
    let run = |args: &[&str]| {
        let mut c = tokio::process::Command::new(&kubectl);
        c.arg("--kubeconfig").arg(&k.kubeconfig).args(args);
        c
    };
    for args in [
        &["create", "namespace", "pb"][..],
        &["create", "configmap", "pbcm", "--from-literal=a=b"],
        &["create", "secret", "generic", "pbs", "--from-literal=a=b"],
        &["create", "serviceaccount", "pbsa"],
        &["create", "role", "pbr", "--verb=get", "--resource=pods"],
        &[
            "create",
            "rolebinding",
            "pbrb",
            "--role=pbr",
            "--user=alice",
        ],
    ] {
        let out = run(args).output().await.expect("kubectl runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cm = k.json(&["get", "cm", "pbcm"]).await;
    assert_eq!(cm["data"]["a"], "b");
    let s = k.json(&["get", "secret", "pbs"]).await;
    assert_eq!(s["data"]["a"], "Yg==");
    let rb = k.json(&["get", "rolebinding", "pbrb"]).await;
    assert_eq!(rb["roleRef"]["name"], "pbr");
    assert_eq!(rb["subjects"][0]["name"], "alice");
    let ns = k.json(&["get", "ns", "pb"]).await;
    assert_eq!(ns["status"]["phase"], "Active");
    k.cluster.shutdown().await;
}
