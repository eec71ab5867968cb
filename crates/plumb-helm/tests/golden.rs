//! Conformance: every case of Helm's own `helm template` golden tests (Helm v3.21.4),
//! run through `plumb_helm::cli::run` and compared byte for byte with the golden file.
//! A ratchet: the cases listed in PASSING must keep passing; the rest are listed by name.

use std::path::{Path, PathBuf};

use plumb_helm::Flavor;
use plumb_helm::cli::{CliConfig, run};

/// Helm 4 cases known to pass (golden file names).
const PASSING_V4: &[&str] = &[
    "issue-9027.txt",
    "object-order.txt",
    "template-chart-bad-type.txt",
    "template-chart-with-template-lib-archive-dep.txt",
    "template-chart-with-template-lib-dep.txt",
    "template-lib-chart.txt",
    "template-name-template.txt",
    "template-no-args.txt",
    "template-set.txt",
    "template-show-only-glob.txt",
    "template-show-only-multiple.txt",
    "template-show-only-one.txt",
    "template-skip-tests.txt",
    "template-subchart-cm-set-file.txt",
    "template-subchart-cm-set.txt",
    "template-subchart-cm.txt",
    "template-values-files.txt",
    "template-with-api-version.txt",
    "template-with-crds.txt",
    "template-with-invalid-template-expr-debug-show-only.txt",
    "template-with-invalid-yaml-debug.txt",
    "template-with-invalid-yaml.txt",
    "template-with-kube-version.txt",
    "template.txt",
];

/// Cases known to pass (golden file names). Add to this list; never remove.
const PASSING: &[&str] = &[
    "template.txt",
    "template-set.txt",
    "template-values-files.txt",
    "template-name-template.txt",
    "template-no-args.txt",
    "template-lib-chart.txt",
    "template-chart-bad-type.txt",
    "template-chart-with-template-lib-dep.txt",
    "template-chart-with-template-lib-archive-dep.txt",
    "template-with-kube-version.txt",
    "template-with-api-version.txt",
    "template-with-crds.txt",
    "template-show-only-one.txt",
    "template-show-only-multiple.txt",
    "template-show-only-glob.txt",
    "object-order.txt",
    "template-with-invalid-yaml.txt",
    "template-with-invalid-yaml-debug.txt",
    "template-skip-tests.txt",
    "issue-9027.txt",
    "template-subchart-cm.txt",
    "template-subchart-cm-set.txt",
    "template-subchart-cm-set-file.txt",
];

fn corpus_dir_named(name: &str) -> Option<PathBuf> {
    let candidates = [
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../../shared/corpus")
            .join(name),
        PathBuf::from("/work/shared/corpus").join(name),
    ];
    candidates
        .into_iter()
        .find(|p| p.join("cases.tsv").exists())
}

fn corpus_dir() -> Option<PathBuf> {
    corpus_dir_named("helm-template-golden-v3")
}

/// go-shellwords splitting: quotes group, no globbing.
fn shell_split(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                have = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                have = true;
                while let Some(d) = chars.next() {
                    if d == '"' {
                        break;
                    }
                    if d == '\\' {
                        if let Some(e) = chars.next() {
                            cur.push(e);
                        }
                        continue;
                    }
                    cur.push(d);
                }
            }
            ' ' | '\t' => {
                if have || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => cur.push(c),
        }
    }
    if have || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Run every case of one corpus; returns (passing, failing) golden names.
fn run_corpus(dir: &Path, flavor: Flavor) -> (Vec<String>, Vec<String>) {
    let cases = std::fs::read_to_string(dir.join("cases.tsv")).unwrap_or_default();
    let cfg = CliConfig {
        // Helm's test build reports Kubernetes v1.20.0.
        default_kube_version: Some("v1.20.0".into()),
        root: Some(dir.to_path_buf()),
        flavor,
    };
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    for line in cases.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 2 {
            continue;
        }
        let golden = std::fs::read_to_string(dir.join(cols[0]))
            .unwrap_or_default()
            .replace("\r\n", "\n");
        let mut args = shell_split(cols[1]);
        if args.first().map(String::as_str) == Some("template") {
            args.remove(0);
        }
        let out = run(&args, dir, &cfg);
        let mut got = out.stdout;
        if let Some(e) = out.error {
            got.push_str(&format!("Error: {e}\n"));
        }
        let name = format!(
            "{} [{}]",
            cols[0].rsplit('/').next().unwrap_or(cols[0]),
            cols[1]
        );
        if got == golden {
            passed.push(name);
        } else {
            if std::env::var("GOLDEN_DIFF").is_ok() {
                eprintln!("=== {name}\n--- got\n{got}\n--- want\n{golden}");
            }
            failed.push(name);
        }
    }
    (passed, failed)
}

fn check(label: &str, corpus: &str, flavor: Flavor, must_pass: &[&str], min_pass: usize) {
    let Some(dir) = corpus_dir_named(corpus) else {
        panic!("golden corpus {corpus} not found under ../shared/corpus");
    };
    let (passed, failed) = run_corpus(&dir, flavor);
    eprintln!(
        "{label}: {}/{} passed",
        passed.len(),
        passed.len() + failed.len()
    );
    eprintln!("{label} failing: {failed:#?}");
    for p in must_pass {
        assert!(
            passed.iter().any(|x| x.starts_with(&format!("{p} ["))),
            "regression: {p} no longer passes"
        );
    }
    assert!(
        passed.len() >= min_pass,
        "{label}: only {} cases pass",
        passed.len()
    );
}

#[test]
fn helm_v3_golden_cases() {
    check(
        "helm v3 golden",
        "helm-template-golden-v3",
        Flavor::V3,
        PASSING,
        23,
    );
}

#[test]
fn helm_v4_golden_cases() {
    check(
        "helm v4 golden",
        "helm-template-golden",
        Flavor::V4,
        PASSING_V4,
        25,
    );
}

#[test]
fn golden_sanity_output_is_real() {
    let Some(dir) = corpus_dir() else { return };
    let cfg = CliConfig {
        default_kube_version: Some("v1.20.0".into()),
        root: Some(dir.clone()),
        flavor: Flavor::V3,
    };
    let out = run(&["testdata/testcharts/subchart".to_string()], &dir, &cfg);
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(
        out.stdout
            .contains("# Source: subchart/templates/service.yaml"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("kube-version/version: \"v1.20.0\""));
}
