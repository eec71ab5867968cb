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

fn shared() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

#[test]
fn kustomize_build_prints_what_kustomize_prints() {
    let cases = shared().join("conformance/kustomize/cases");
    if !cases.exists() {
        return;
    }
    let mut checked = 0;
    for case in std::fs::read_dir(&cases).unwrap() {
        let case = case.unwrap().path();
        let Ok(expected) = std::fs::read_to_string(case.join("expected.yaml")) else {
            continue;
        };
        let entry = std::fs::read_to_string(case.join("entry"))
            .map(|e| format!("input/{}", e.trim()))
            .unwrap_or("input".into());
        let output = plumb()
            .args(["kustomize", "build", &entry])
            .current_dir(&case)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            case.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            expected,
            "{}",
            case.display()
        );
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} cases found");
}

#[test]
fn kustomize_build_errors_exit_nonzero_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources:\n- missing.yaml\n",
    )
    .unwrap();
    let output = plumb()
        .args(["kustomize", "build"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.yaml"));
}

#[test]
fn helm_template_matches_helm_v3_goldens() {
    let corpus = shared().join("corpus/helm-template-golden-v3");
    let Ok(cases) = std::fs::read_to_string(corpus.join("cases.tsv")) else {
        return;
    };
    let mut checked = 0;
    for line in cases.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (golden, args) = (fields[0], fields[1]);
        let expected = std::fs::read_to_string(corpus.join(golden))
            .unwrap()
            .replace("\r\n", "\n");
        let args = shell_words(args);
        if args.first().map(String::as_str) != Some("template") {
            continue;
        }
        let mut command = plumb();
        command.arg("helm").args(&args).current_dir(&corpus);
        if !args.iter().any(|a| a.starts_with("--kube-version")) {
            command.args(["--kube-version", "1.20.0"]); // the goldens' test-build default
        }
        let output = command.output().unwrap();
        let mut combined = String::from_utf8_lossy(&output.stdout).to_string();
        combined.push_str(&String::from_utf8_lossy(&output.stderr));
        if expected.contains("Error: ") {
            assert!(!output.status.success(), "{golden} should fail");
            continue;
        }
        assert_eq!(combined, expected, "{golden}");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} goldens checked");
}

/// Splits like a shell without globbing: whitespace separates, quotes group.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    let mut has_word = false;
    for c in text.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                has_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if has_word {
                    words.push(std::mem::take(&mut current));
                    has_word = false;
                }
            }
            (_, c) => {
                current.push(c);
                has_word = true;
            }
        }
    }
    if has_word {
        words.push(current);
    }
    words
}

/// Every kustomization in the shared corpus builds to what the machine's `kubectl kustomize`
/// builds (the reference), except the one kubectl itself cannot build.
#[test]
fn corpus_kustomizations_match_kubectl_kustomize() {
    let corpus = shared().join("corpus");
    if !corpus.exists()
        || Command::new("kubectl")
            .arg("version")
            .arg("--client")
            .output()
            .is_err()
    {
        return;
    }
    let mut dirs = Vec::new();
    let mut stack = vec![corpus.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
                dirs.push(dir.clone());
            }
        }
    }
    dirs.sort();
    let mut compared = 0;
    for dir in dirs {
        let reference = Command::new("kubectl")
            .arg("kustomize")
            .arg(&dir)
            .output()
            .unwrap();
        if !reference.status.success() {
            continue; // e.g. plugins/kustomized-helm refers to a file generated outside Git
        }
        let ours = plumb()
            .args(["kustomize", "build"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            ours.status.success(),
            "{}: {}",
            dir.display(),
            String::from_utf8_lossy(&ours.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&reference.stdout),
            "{}",
            dir.display()
        );
        compared += 1;
    }
    assert!(
        compared >= 15,
        "only {compared} corpus kustomizations compared"
    );
}
