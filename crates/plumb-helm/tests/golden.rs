//! Conformance: every case of Helm's own `helm template` golden tests (Helm v3.21.4),
//! run through `plumb_helm::cli::run` and compared byte for byte with the golden file.
//! A ratchet: the cases listed in PASSING must keep passing; the rest are listed by name.

use std::path::{Path, PathBuf};

use plumb_helm::cli::{CliConfig, run};

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

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/corpus/helm-template-golden-v3")
}

fn corpus_dir() -> Option<PathBuf> {
    let candidates = [corpus(), PathBuf::from("/work/shared/corpus/helm-template-golden-v3")];
    candidates.into_iter().find(|p| p.join("cases.tsv").exists())
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

#[test]
fn helm_v3_golden_cases() {
    let Some(dir) = corpus_dir() else {
        panic!("golden corpus not found (expected ../shared/corpus/helm-template-golden-v3)");
    };
    let cases = std::fs::read_to_string(dir.join("cases.tsv")).unwrap_or_default();
    let cfg = CliConfig {
        // Helm's test build reports Kubernetes v1.20.0.
        default_kube_version: Some("v1.20.0".into()),
        root: Some(dir.clone()),
    };
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    for line in cases.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 2 {
            continue;
        }
        let golden = std::fs::read_to_string(dir.join(cols[0])).unwrap_or_default().replace("\r\n", "\n");
        let mut args = shell_split(cols[1]);
        if args.first().map(String::as_str) == Some("template") {
            args.remove(0);
        }
        let out = run(&args, &dir, &cfg);
        let mut got = out.stdout;
        if let Some(e) = out.error {
            got.push_str(&format!("Error: {e}\n"));
        }
        let name = cols[0].rsplit('/').next().unwrap_or(cols[0]).to_string();
        if got == golden {
            passed.push(name);
        } else {
            if std::env::var("GOLDEN_DIFF").is_ok() {
                eprintln!("=== {name}\n--- got\n{got}\n--- want\n{golden}");
            }
            failed.push(name);
        }
    }
    let total = passed.len() + failed.len();
    eprintln!("helm v3 golden: {}/{} passed", passed.len(), total);
    eprintln!("passing: {passed:?}");
    eprintln!("failing: {failed:?}");
    for p in PASSING {
        assert!(passed.iter().any(|x| x == p), "regression: {p} no longer passes");
    }
    assert!(total > 0, "no cases ran");
}

#[test]
fn golden_sanity_output_is_real() {
    let Some(dir) = corpus_dir() else { return };
    let cfg = CliConfig { default_kube_version: Some("v1.20.0".into()), root: Some(dir.clone()) };
    let out = run(&["testdata/testcharts/subchart".to_string()], &dir, &cfg);
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.stdout.contains("# Source: subchart/templates/service.yaml"), "{}", out.stdout);
    assert!(out.stdout.contains("kube-version/version: \"v1.20.0\""));
}
