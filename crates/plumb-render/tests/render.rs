//! Rendering plain directories from a snapshot root, including every bad input the controller
//! must report instead of applying.

#![allow(clippy::unwrap_used)]

use plumb_core::application::{Directory, Source};
use plumb_render::{Error, Limits, RenderContext, SourceType, render};
use std::fs;
use std::path::Path;

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n")
}

fn source(path: &str) -> Source {
    Source {
        path: path.into(),
        ..Default::default()
    }
}

fn names(root: &Path, source: &Source) -> Vec<String> {
    let (_, manifests) =
        render(root, source, &RenderContext::default(), &Limits::default()).unwrap();
    manifests
        .iter()
        .map(|m| m.object["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn renders_files_in_path_order_and_recurses_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "app/b.yaml",
        &format!("{}---\n{}", cm("b1"), cm("b2")),
    );
    write(
        dir.path(),
        "app/a.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#,
    );
    write(dir.path(), "app/sub/c.yml", &cm("c"));
    write(dir.path(), "app/README.md", "not yaml: [");
    write(dir.path(), "app/.hidden.yaml", &cm("hidden"));
    assert_eq!(names(dir.path(), &source("app")), ["a", "b1", "b2"]);
    let mut recursive = source("app");
    recursive.directory = Some(Directory {
        recurse: true,
        ..Default::default()
    });
    assert_eq!(names(dir.path(), &recursive), ["a", "b1", "b2", "c"]);
    recursive.directory = Some(Directory {
        recurse: true,
        include: "{*.yml,b.yaml}".into(),
        exclude: "sub/*".into(),
        ..Default::default()
    });
    assert_eq!(names(dir.path(), &recursive), ["b1", "b2"]);
}

#[test]
fn corpus_guestbook() {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/argocd-example-apps");
    if !root.exists() {
        return; // the shared corpus sits beside the repository on every machine of this project
    }
    let (kind, manifests) = render(
        &root,
        &source("guestbook"),
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(kind, SourceType::Directory);
    let kinds: Vec<_> = manifests.iter().map(|m| m.key().kind).collect();
    assert_eq!(kinds, ["Deployment", "Service"]);
    assert_eq!(
        manifests[0].origin.file,
        "guestbook/guestbook-ui-deployment.yaml"
    );
}

#[test]
fn path_outside_the_root_is_refused() {
    let outer = tempfile::tempdir().unwrap();
    write(outer.path(), "secret/x.yaml", &cm("x"));
    write(outer.path(), "repo/app/a.yaml", &cm("a"));
    let root = outer.path().join("repo");
    let error = render(
        &root,
        &source("../secret"),
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(error, Error::OutsideRoot { .. }), "{error}");
    assert!(error.to_string().contains("leads outside the repository"));
}

#[test]
fn symlink_outside_the_root_is_refused() {
    let outer = tempfile::tempdir().unwrap();
    write(outer.path(), "secret.yaml", &cm("stolen"));
    write(outer.path(), "repo/app/a.yaml", &cm("a"));
    std::os::unix::fs::symlink(
        outer.path().join("secret.yaml"),
        outer.path().join("repo/app/link.yaml"),
    )
    .unwrap();
    let error = render(
        &outer.path().join("repo"),
        &source("app"),
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "app/link.yaml: symlink leads outside the repository"
    );
}

#[test]
fn symlink_inside_the_root_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "shared/a.yaml", &cm("shared"));
    write(dir.path(), "app/b.yaml", &cm("b"));
    std::os::unix::fs::symlink(
        dir.path().join("shared/a.yaml"),
        dir.path().join("app/a.yaml"),
    )
    .unwrap();
    assert_eq!(names(dir.path(), &source("app")), ["shared", "b"]);
}

#[test]
fn oversized_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "app/big.yaml",
        &format!("{}  big: \"{}\"\n", cm("big"), "x".repeat(2048)),
    );
    let limits = Limits {
        max_file_bytes: 1024,
        ..Default::default()
    };
    let error = render(
        dir.path(),
        &source("app"),
        &RenderContext::default(),
        &limits,
    )
    .unwrap_err();
    assert!(
        error.to_string().starts_with("app/big.yaml: file is"),
        "{error}"
    );
}

#[test]
fn invalid_yaml_and_invalid_objects_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad/x.yaml",
        "apiVersion: v1\nkind: [unclosed\n",
    );
    let error = render(
        dir.path(),
        &source("bad"),
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.starts_with("bad/x.yaml: invalid YAML"), "{error}");

    write(
        dir.path(),
        "nokind/x.yaml",
        "apiVersion: v1\nmetadata:\n  name: a\n",
    );
    let error = render(
        dir.path(),
        &source("nokind"),
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(error, "nokind/x.yaml: object \"a\": missing field \"kind\"");

    write(
        dir.path(),
        "noname/x.yaml",
        &format!(
            "{}---\napiVersion: v1\nkind: Service\nmetadata: {{}}\n",
            cm("ok")
        ),
    );
    let error = render(
        dir.path(),
        &source("noname"),
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "noname/x.yaml (document 2): Service: missing field \"metadata.name\""
    );
}

#[test]
fn missing_path_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let error = render(
        dir.path(),
        &source("nope"),
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "path \"nope\" does not exist in the repository"
    );
}

#[test]
fn bad_include_pattern() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "app/a.yaml", &cm("a"));
    let mut s = source("app");
    s.directory = Some(Directory {
        include: "{a.yaml".into(),
        ..Default::default()
    });
    let error = render(
        dir.path(),
        &s,
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "spec.source.directory.include: invalid pattern \"{a.yaml\""
    );
}

#[test]
fn corpus_kustomize_guestbook() {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/argocd-example-apps");
    if !root.exists() {
        return;
    }
    let (kind, manifests) = render(
        &root,
        &source("kustomize-guestbook"),
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(kind, SourceType::Kustomize);
    let names: Vec<_> = manifests
        .iter()
        .map(|m| m.object["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("kustomize-")),
        "{names:?}"
    );
}

#[test]
fn kustomize_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "app/kustomization.yaml",
        "resources:\n- missing.yaml\n",
    );
    let error = render(
        dir.path(),
        &source("app"),
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err();
    let chain = format!(
        "{error}: {}",
        std::error::Error::source(&error)
            .map(|e| e.to_string())
            .unwrap_or_default()
    );
    assert!(
        chain.contains("kustomize build app") && chain.contains("missing.yaml"),
        "{chain}"
    );
}

#[test]
fn corpus_helm_guestbook_with_value_files_and_parameters() {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/argocd-example-apps");
    if !root.exists() {
        return;
    }
    let mut s = source("helm-guestbook");
    s.helm = Some(
        serde_json::json!({"valueFiles": ["values-production.yaml"], "parameters": [{"name": "replicaCount", "value": "3"}]}),
    );
    let context = RenderContext {
        app_name: "gb".into(),
        namespace: "web".into(),
        kube_version: None,
    };
    let (kind, manifests) = render(&root, &s, &context, &Limits::default()).unwrap();
    assert_eq!(kind, SourceType::Helm);
    let deployment = manifests
        .iter()
        .find(|m| m.key().kind == "Deployment")
        .expect("a Deployment");
    assert_eq!(deployment.object["spec"]["replicas"], 3);
    assert!(
        deployment.object["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("gb-")
    );
}

#[test]
fn helm_value_file_outside_the_repository_is_refused() {
    let outer = tempfile::tempdir().unwrap();
    write(outer.path(), "secret.yaml", "x: 1\n");
    write(
        outer.path(),
        "repo/chart/Chart.yaml",
        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    );
    let mut s = source("chart");
    s.helm = Some(serde_json::json!({"valueFiles": ["../../secret.yaml"]}));
    let error = render(
        &outer.path().join("repo"),
        &s,
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "spec.source.helm.valueFiles: \"../../secret.yaml\" leads outside the repository"
    );
    s.helm = Some(serde_json::json!({"valueFiles": ["missing.yaml"]}));
    let error = render(
        &outer.path().join("repo"),
        &s,
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("does not exist"), "{error}");
    s.helm =
        Some(serde_json::json!({"valueFiles": ["missing.yaml"], "ignoreMissingValueFiles": true}));
    let result = render(
        &outer.path().join("repo"),
        &s,
        &RenderContext::default(),
        &Limits::default(),
    );
    assert!(result.is_ok(), "{:?}", result.err());
}

#[test]
fn argo_cd_kustomize_overrides_apply_on_top() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "app/kustomization.yaml",
        "resources:\n- d.yaml\n",
    );
    write(
        dir.path(),
        "app/d.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.25\n",
    );
    let mut s = source("app");
    s.kustomize = Some(
        serde_json::json!({"namePrefix": "prod-", "images": ["nginx:1.27"],
        "commonLabels": {"team": "a"}, "replicas": [{"name": "web", "count": 3}]}),
    );
    let (_, manifests) = render(
        dir.path(),
        &s,
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap();
    let d = &manifests[0].object;
    assert_eq!(d["metadata"]["name"], "prod-web");
    assert_eq!(d["metadata"]["labels"]["team"], "a");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    s.kustomize = Some(serde_json::json!({"replicas": [{"name": "web", "count": "many"}]}));
    let error = render(
        dir.path(),
        &s,
        &RenderContext::default(),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "spec.source.kustomize.replicas: [0].count: must be an integer"
    );
}

#[test]
fn helm_ref_value_files_read_from_the_named_checkout_only() {
    let outer = tempfile::tempdir().unwrap();
    write(outer.path(), "secret.yaml", "name: secret\n");
    write(
        outer.path(),
        "charts/chart/Chart.yaml",
        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    );
    write(
        outer.path(),
        "charts/chart/values.yaml",
        "name: default\nk: chart\n",
    );
    write(
        outer.path(),
        "charts/chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\ndata:\n  k: {{ .Values.k }}\n  file: {{ .Values.file | quote }}\n",
    );
    write(outer.path(), "values/prod/values.yaml", "name: prod\n");
    write(outer.path(), "values/files/a.txt", "from-ref");
    write(outer.path(), "charts/chart/local.yaml", "k: local\n");
    std::os::unix::fs::symlink(outer.path(), outer.path().join("values/out")).unwrap();
    let refs: plumb_render::ValueRefs = [("values".to_string(), outer.path().join("values"))]
        .into_iter()
        .collect();
    let root = outer.path().join("charts");
    let render = |helm: serde_json::Value, refs: Option<&plumb_render::ValueRefs>| {
        let mut s = source("chart");
        s.helm = Some(helm);
        plumb_render::render_with_refs(
            &root,
            &s,
            &RenderContext::default(),
            &Limits::default(),
            refs,
        )
    };
    // A $ref file merges in order with the chart's own files; fileParameters read from it too.
    let (_, manifests) = render(
        serde_json::json!({"valueFiles": ["$values/prod/values.yaml", "local.yaml"],
            "fileParameters": [{"name": "file", "path": "$values/files/a.txt"}]}),
        Some(&refs),
    )
    .unwrap();
    assert_eq!(manifests[0].object["metadata"]["name"], "prod");
    assert_eq!(manifests[0].object["data"]["k"], "local");
    assert_eq!(manifests[0].object["data"]["file"], "from-ref");
    let error = |helm: serde_json::Value, refs: Option<&plumb_render::ValueRefs>| {
        render(helm, refs).unwrap_err().to_string()
    };
    assert_eq!(
        error(
            serde_json::json!({"valueFiles": ["$values/../secret.yaml"]}),
            Some(&refs)
        ),
        "spec.source.helm.valueFiles: \"$values/../secret.yaml\" leads outside the source with ref \"values\""
    );
    assert_eq!(
        error(
            serde_json::json!({"valueFiles": ["$values/out/secret.yaml"]}),
            Some(&refs)
        ),
        "spec.source.helm.valueFiles: \"$values/out/secret.yaml\" leads outside the source with ref \"values\""
    );
    assert_eq!(
        error(
            serde_json::json!({"valueFiles": ["$other/x.yaml"]}),
            Some(&refs)
        ),
        "spec.source.helm.valueFiles: \"$other/x.yaml\": no source has ref \"other\""
    );
    assert!(
        error(
            serde_json::json!({"valueFiles": ["$values/nope.yaml"]}),
            Some(&refs)
        )
        .contains("does not exist")
    );
    assert!(
        render(
            serde_json::json!({"valueFiles": ["$values/nope.yaml"], "ignoreMissingValueFiles": true}),
            Some(&refs)
        )
        .is_ok()
    );
    // A single-source application has no refs.
    assert!(
        error(
            serde_json::json!({"valueFiles": ["$values/prod/values.yaml"]}),
            None
        )
        .contains("need spec.sources")
    );
}
