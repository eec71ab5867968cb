//! The sandbox: reads stay inside the root (after symlink resolution), cycles and oversized
//! inputs are errors, unsupported features fail clearly.

use std::fs;
use std::path::Path;

use plumb_kustomize::{Error, Options, build};

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n";

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, text).expect("write");
}

fn kustomization(dir: &Path, body: &str) {
    write(&dir.join("kustomization.yaml"), body);
}

#[test]
fn parent_path_escaping_the_root_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    write(&tmp.path().join("secret.yaml"), CM);
    kustomization(&root, "resources:\n- ../secret.yaml\n");
    let err = build(&root, &root, &Options::default()).expect_err("must refuse");
    let msg = err.chain();
    assert!(msg.contains("outside the build root"), "{msg}");
    assert!(msg.contains("secret.yaml"), "{msg}");
}

#[test]
fn absolute_path_outside_the_root_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside.yaml");
    write(&outside, CM);
    kustomization(&root, &format!("resources:\n- {}\n", outside.display()));
    let err = build(&root, &root, &Options::default()).expect_err("must refuse");
    assert!(
        err.chain().contains("outside the build root"),
        "{}",
        err.chain()
    );
}

#[cfg(unix)]
#[test]
fn symlink_escaping_the_root_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    write(&tmp.path().join("passwd.yaml"), CM);
    kustomization(&root, "resources:\n- link.yaml\n");
    std::os::unix::fs::symlink(tmp.path().join("passwd.yaml"), root.join("link.yaml"))
        .expect("symlink");
    let err = build(&root, &root, &Options::default()).expect_err("must refuse");
    assert!(
        matches!(root_cause(&err), Error::Escape { .. }),
        "{}",
        err.chain()
    );
}

#[cfg(unix)]
#[test]
fn symlink_inside_the_root_is_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    write(&root.join("real.yaml"), CM);
    kustomization(&root, "resources:\n- link.yaml\n");
    std::os::unix::fs::symlink(root.join("real.yaml"), root.join("link.yaml")).expect("symlink");
    let out = build(&root, &root, &Options::default()).expect("builds");
    assert_eq!(out.len(), 1);
}

#[test]
fn generator_file_outside_the_root_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    write(&tmp.path().join("id_rsa"), "private");
    kustomization(
        &root,
        "secretGenerator:\n- name: s\n  files:\n  - ../id_rsa\n",
    );
    let err = build(&root, &root, &Options::default()).expect_err("must refuse");
    assert!(
        matches!(root_cause(&err), Error::Escape { .. }),
        "{}",
        err.chain()
    );
}

#[test]
fn cycle_between_bases_is_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    kustomization(&root.join("a"), "resources:\n- ../b\n");
    kustomization(&root.join("b"), "resources:\n- ../a\n");
    let err = build(root, &root.join("a"), &Options::default()).expect_err("must fail");
    let msg = err.chain();
    assert!(msg.contains("cycle"), "{msg}");
}

#[test]
fn self_reference_is_a_cycle() {
    let tmp = tempfile::tempdir().expect("tempdir");
    kustomization(tmp.path(), "resources:\n- .\n");
    let err = build(tmp.path(), tmp.path(), &Options::default()).expect_err("must fail");
    assert!(err.chain().contains("cycle"), "{}", err.chain());
}

#[test]
fn oversized_file_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let big = format!("{CM}  filler: \"{}\"\n", "x".repeat(4096));
    write(&tmp.path().join("big.yaml"), &big);
    kustomization(tmp.path(), "resources:\n- big.yaml\n");
    let options = Options {
        max_file_size: 1024,
        ..Options::default()
    };
    let err = build(tmp.path(), tmp.path(), &options).expect_err("must refuse");
    assert!(
        err.chain().contains("larger than the limit"),
        "{}",
        err.chain()
    );
}

#[test]
fn deep_nesting_hits_the_depth_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dir = tmp.path().to_path_buf();
    for _ in 0..6 {
        kustomization(&dir, "resources:\n- sub\n");
        dir = dir.join("sub");
    }
    kustomization(&dir, "resources: []\n");
    let options = Options {
        max_depth: 3,
        ..Options::default()
    };
    let err = build(tmp.path(), tmp.path(), &options).expect_err("must fail");
    assert!(err.chain().contains("nested deeper"), "{}", err.chain());
}

#[test]
fn remote_resources_are_refused_without_network() {
    let tmp = tempfile::tempdir().expect("tempdir");
    kustomization(
        tmp.path(),
        "resources:\n- https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.5.0\n",
    );
    let err = build(tmp.path(), tmp.path(), &Options::default()).expect_err("must refuse");
    assert!(err.chain().contains("remote resources"), "{}", err.chain());
}

#[test]
fn helm_charts_are_reported_as_unsupported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    kustomization(
        tmp.path(),
        "helmCharts:\n- name: nginx\n  repo: https://example.com\n",
    );
    let err = build(tmp.path(), tmp.path(), &Options::default()).expect_err("must refuse");
    let msg = err.chain();
    assert!(
        msg.contains("helmCharts") && msg.contains("not supported"),
        "{msg}"
    );
}

#[test]
fn build_dir_outside_root_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let other = tmp.path().join("other");
    kustomization(&root, "resources: []\n");
    kustomization(&other, "resources: []\n");
    let err = build(&root, &other, &Options::default()).expect_err("must refuse");
    assert!(
        matches!(root_cause(&err), Error::Escape { .. }),
        "{}",
        err.chain()
    );
}

fn root_cause(err: &Error) -> &Error {
    match err {
        Error::Context { source, .. } => root_cause(source),
        other => other,
    }
}

#[test]
fn deeply_nested_yaml_is_an_error_not_a_crash() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut doc = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: ");
    doc.push_str(&"[".repeat(100_000));
    write(&tmp.path().join("deep.yaml"), &doc);
    kustomization(tmp.path(), "resources:\n- deep.yaml\n");
    let err = build(tmp.path(), tmp.path(), &Options::default()).expect_err("must fail");
    assert!(err.chain().contains("deep.yaml"), "{}", err.chain());
}

#[test]
fn alias_bomb_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut doc = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..12 {
        let prev = i - 1;
        doc.push_str(&format!(
            "x{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    write(&tmp.path().join("bomb.yaml"), &doc);
    kustomization(tmp.path(), "resources:\n- bomb.yaml\n");
    let started = std::time::Instant::now();
    let err = build(tmp.path(), tmp.path(), &Options::default()).expect_err("must refuse");
    assert!(err.chain().contains("bomb.yaml"), "{}", err.chain());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn load_restrictor_none_reads_files_outside_the_kustomization_dir() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cases/error-load-restrictor-file-outside-kustomization");
    let input = case.join("input");
    let app = input.join("app");
    let err = build(&input, &app, &Options::default()).expect_err("root-only refuses");
    assert!(err.chain().contains("not in or below"), "{}", err.chain());
    let options = Options {
        load_restrictor: plumb_kustomize::LoadRestrictor::None,
        ..Options::default()
    };
    let out = plumb_kustomize::to_yaml(&build(&input, &app, &options).expect("builds"));
    let expected =
        fs::read_to_string(case.join("expected-load-restrictor-none.yaml")).expect("expected");
    assert_eq!(out, expected);
}
