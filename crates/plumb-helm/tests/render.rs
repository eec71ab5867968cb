//! Rendering real charts (podinfo, argocd-example-apps) and the sandbox guarantees.

use std::path::{Path, PathBuf};

use plumb_helm::{Error, TemplateOptions, template};

fn corpus() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/corpus");
    if p.exists() {
        p
    } else {
        PathBuf::from("/work/shared/corpus")
    }
}

fn opts() -> TemplateOptions {
    TemplateOptions {
        kube_version: Some("1.30.0".into()),
        ..TemplateOptions::default()
    }
}

#[test]
fn podinfo_renders_with_hooks_and_tests() {
    let root = corpus().join("podinfo");
    let r =
        template(&root, &root.join("charts/podinfo"), &opts()).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = r.manifests.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, vec!["Service", "Deployment"]);
    assert!(r.hooks.iter().all(|h| h.hook.is_some()));
    assert!(
        r.hooks
            .iter()
            .any(|h| h.source == "podinfo/templates/tests/grpc.yaml")
    );
    let out = r.to_output();
    assert!(
        out.starts_with("---\n# Source: podinfo/templates/service.yaml\n"),
        "{out}"
    );
    assert!(out.contains("image: \"ghcr.io/stefanprodan/podinfo:6.14.1\""));
    let objs = r.objects().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        objs.iter()
            .any(|o| o.pointer("/metadata/annotations/helm.sh~1hook").is_some())
    );
    assert_eq!(objs[1]["spec"]["replicas"], 1);
}

#[test]
fn podinfo_prod_values_and_skip_tests() {
    let root = corpus().join("podinfo");
    let o = TemplateOptions {
        values_files: vec![root.join("charts/podinfo/values-prod.yaml")],
        skip_tests: true,
        release_name: "prod".into(),
        namespace: "apps".into(),
        ..opts()
    };
    let r = template(&root, &root.join("charts/podinfo"), &o).unwrap_or_else(|e| panic!("{e}"));
    let out = r.to_output();
    assert!(!out.contains("templates/tests/"), "{out}");
    assert!(out.contains("name: prod-podinfo"));
    assert!(out.contains("namespace: apps"));
}

#[test]
fn podinfo_refuses_old_kubernetes() {
    let root = corpus().join("podinfo");
    let o = TemplateOptions {
        kube_version: Some("1.20.0".into()),
        ..TemplateOptions::default()
    };
    let err = template(&root, &root.join("charts/podinfo"), &o)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "chart requires kubeVersion: >=1.23.0-0 which is incompatible with Kubernetes v1.20.0"
        )
    );
}

#[test]
fn guestbook_with_production_values() {
    let root = corpus().join("argocd-example-apps");
    let o = TemplateOptions {
        values_files: vec!["helm-guestbook/values-production.yaml".into()],
        base_dir: Some(root.clone()),
        ..opts()
    };
    let r = template(&root, Path::new("helm-guestbook"), &o).unwrap_or_else(|e| panic!("{e}"));
    let objs = r.objects().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0]["kind"], "Service");
    assert_eq!(objs[0]["spec"]["type"], "LoadBalancer");
    assert_eq!(
        objs[1]["spec"]["template"]["spec"]["containers"][0]["image"],
        "gcr.io/google-samples/gb-frontend:v5"
    );
}

#[test]
fn app_of_apps_chart_renders_applications() {
    let root = corpus().join("argocd-example-apps");
    let r = template(&root, &root.join("apps"), &opts()).unwrap_or_else(|e| panic!("{e}"));
    let objs = r.objects().unwrap_or_else(|e| panic!("{e}"));
    assert!(objs.len() >= 5, "{}", objs.len());
    assert!(objs.iter().all(|o| o["kind"] == "Application"));
}

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(p, body).unwrap_or_else(|e| panic!("{e}"));
}

fn mini_chart(dir: &Path, template_body: &str) {
    write(
        dir,
        "mychart/Chart.yaml",
        "apiVersion: v2\nname: mychart\nversion: 0.1.0\n",
    );
    write(dir, "mychart/values.yaml", "x: 1\n");
    write(dir, "mychart/templates/cm.yaml", template_body);
}

#[test]
fn value_file_outside_root_is_refused() {
    let outside = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(outside.path(), "secret.yaml", "x: 2\n");
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(root.path(), "a: {{ .Values.x }}\n");
    let o = TemplateOptions {
        values_files: vec![outside.path().join("secret.yaml")],
        ..opts()
    };
    let err = template(root.path(), &root.path().join("mychart"), &o).err();
    assert!(matches!(err, Some(Error::OutsideRoot { .. })), "{err:?}");
    // The same through a relative path with `..`.
    let o = TemplateOptions {
        values_files: vec![
            PathBuf::from("../../../../../../../../")
                .join(outside.path().strip_prefix("/").unwrap_or(outside.path()))
                .join("secret.yaml"),
        ],
        base_dir: Some(root.path().to_path_buf()),
        ..opts()
    };
    let err = template(root.path(), Path::new("mychart"), &o).err();
    assert!(matches!(err, Some(Error::OutsideRoot { .. })), "{err:?}");
}

#[cfg(unix)]
#[test]
fn symlink_escaping_root_is_refused() {
    let outside = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(outside.path(), "passwd", "root:x:0:0\n");
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(root.path(), "a: {{ .Files.Get \"leak\" | quote }}\n");
    std::os::unix::fs::symlink(
        outside.path().join("passwd"),
        root.path().join("mychart/leak"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = template(root.path(), &root.path().join("mychart"), &opts()).err();
    assert!(matches!(err, Some(Error::OutsideRoot { .. })), "{err:?}");
}

#[test]
fn files_get_cannot_reach_outside_the_chart() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(root.path(), "other.txt", "not yours");
    mini_chart(
        root.path(),
        "a: {{ .Files.Get \"../other.txt\" | quote }}\nb: {{ .Files.Get \"data.txt\" | quote }}\n",
    );
    write(root.path(), "mychart/data.txt", "mine");
    let r = template(root.path(), &root.path().join("mychart"), &opts())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.to_output().contains("a: \"\"\nb: \"mine\""),
        "{}",
        r.to_output()
    );
}

#[test]
fn infinite_include_recursion_is_refused() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(
        root.path(),
        "{{ define \"loop\" }}{{ include \"loop\" . }}{{ end }}a: {{ include \"loop\" . }}\n",
    );
    let err = template(root.path(), &root.path().join("mychart"), &opts())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("rendering template has a nested reference name: loop"),
        "{err}"
    );
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(root.path(), "a: {{ tpl \"{{ tpl .Values.t . }}\" . }}\n");
    write(
        root.path(),
        "mychart/values.yaml",
        "t: \"{{ tpl .Values.t . }}\"\n",
    );
    let err = template(root.path(), &root.path().join("mychart"), &opts())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("nested reference name"), "{err}");
}

#[test]
fn template_errors_name_file_and_line() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(root.path(), "a: 1\nb: {{ .Values.x | nosuch }}\n");
    let err = template(root.path(), &root.path().join("mychart"), &opts())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("parse error at (mychart/templates/cm.yaml:2): function \"nosuch\" not defined")
    );

    mini_chart(root.path(), "a: 1\nb: {{ .Values.missing.deep }}\n");
    let err = template(root.path(), &root.path().join("mychart"), &opts())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "template: mychart/templates/cm.yaml:2:13: executing \"mychart/templates/cm.yaml\" at <.Values.missing.deep>: nil pointer evaluating interface {}.deep"
        )
    );

    mini_chart(
        root.path(),
        "a: {{ required \"x.y is required\" .Values.nope }}\n",
    );
    let err = template(root.path(), &root.path().join("mychart"), &opts())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("execution error at (mychart/templates/cm.yaml:1:6): x.y is required")
    );
}

#[test]
fn set_values_take_precedence_with_types() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(
        root.path(),
        "a: {{ .Values.x }}\nb: {{ kindOf .Values.y }}\nc: {{ .Values.z | toJson }}\n",
    );
    let o = TemplateOptions {
        set: vec!["x=5,y=007".into(), "z={a,b}".into()],
        set_string: vec!["x=six".into()],
        ..opts()
    };
    let r =
        template(root.path(), &root.path().join("mychart"), &o).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.to_output()
            .contains("a: six\nb: string\nc: [\"a\",\"b\"]"),
        "{}",
        r.to_output()
    );
}

#[test]
fn missing_dependency_is_reported_as_helm_does() {
    let root = corpus().join("argocd-example-apps");
    let err = template(&root, &root.join("helm-dependency"), &opts())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("found in Chart.yaml, but missing in charts/ directory: wordpress"),
        "{err}"
    );
}

#[test]
fn capabilities_know_builtin_kinds() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(
        root.path(),
        "a: {{ .Capabilities.APIVersions.Has \"policy/v1/PodDisruptionBudget\" }}\nb: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" }}\n",
    );
    let r = template(root.path(), &root.path().join("mychart"), &opts())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.to_output().contains("a: true\nb: false"),
        "{}",
        r.to_output()
    );
}

#[test]
fn bad_release_names_and_paths_are_refused() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(root.path(), "a: 1\n");
    let o = TemplateOptions {
        release_name: "Bad_Name".into(),
        ..opts()
    };
    let err = template(root.path(), &root.path().join("mychart"), &o)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("release name \"Bad_Name\": invalid release name"),
        "{err}"
    );
    let o = TemplateOptions {
        base_dir: Some(root.path().to_path_buf()),
        ..opts()
    };
    let err = template(root.path(), Path::new("nope"), &o)
        .err()
        .map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("path \"nope\" not found"));
}

#[test]
fn files_glob_range_and_config() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(
        root.path(),
        "{{- range $path, $_ := .Files.Glob \"conf/*.ini\" }}\n{{ base $path }}: {{ $.Files.Get $path | trim | quote }}\n{{- end }}\nn: {{ len (.Files.Glob \"conf/*\") }}\nempty: {{ if .Files.Glob \"nope/*\" }}no{{ else }}yes{{ end }}\ncfg:\n{{ (.Files.Glob \"conf/*.ini\").AsConfig | indent 2 }}\nlines: {{ .Files.Lines \"conf/b.ini\" | len }}\n",
    );
    write(root.path(), "mychart/conf/a.ini", "x=1\n");
    write(root.path(), "mychart/conf/b.ini", "y=2\nz=3\n");
    write(root.path(), "mychart/conf/c.txt", "other");
    let r = template(root.path(), &root.path().join("mychart"), &opts())
        .unwrap_or_else(|e| panic!("{e}"));
    let out = r.to_output();
    assert!(
        out.contains("a.ini: \"x=1\"\nb.ini: \"y=2\\nz=3\"\nn: 3\nempty: yes\ncfg:\n  a.ini: |\n    x=1\n  b.ini: |\n    y=2\n    z=3\nlines: 2"),
        "{out}"
    );
}

#[test]
fn lookup_is_empty_offline_and_uses_the_cluster_when_enabled() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(
        root.path(),
        "a: {{ dig \"data\" \"pw\" \"none\" (lookup \"v1\" \"Secret\" \"ns\" \"s\") }}\n",
    );
    let r = template(root.path(), &root.path().join("mychart"), &opts())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.to_output().contains("a: none"), "{}", r.to_output());
    let o = TemplateOptions {
        lookup: Some(plumb_helm::Lookup(std::sync::Arc::new(
            |api, kind, ns, name| {
                Ok(if (api, kind, ns, name) == ("v1", "Secret", "ns", "s") {
                    serde_json::json!({"data": {"pw": "c2VjcmV0"}})
                } else {
                    serde_json::Value::Null
                })
            },
        ))),
        ..opts()
    };
    let r =
        template(root.path(), &root.path().join("mychart"), &o).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.to_output().contains("a: c2VjcmV0"), "{}", r.to_output());
}

#[test]
fn runaway_templates_hit_limits() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(root.path(), "a: {{ repeat 1000000000000 \"x\" }}\n");
    let err = template(root.path(), &root.path().join("mychart"), &opts())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("exceeds the limit"), "{err}");
    mini_chart(
        root.path(),
        "{{ range until 1000000 }}{{ range until 1000000 }}{{ end }}{{ end }}\n",
    );
    let o = TemplateOptions {
        limits: plumb_helm::tmpl::exec::Limits {
            max_duration: std::time::Duration::from_millis(200),
            ..Default::default()
        },
        ..opts()
    };
    let started = std::time::Instant::now();
    let err = template(root.path(), &root.path().join("mychart"), &o)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("exceeded the time limit"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    mini_chart(
        root.path(),
        "{{ range until 100000 }}{{ printf \"%0100000d\" 1 }}{{ end }}\n",
    );
    let err = template(root.path(), &root.path().join("mychart"), &opts())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("output exceeds the limit"), "{err}");
}

#[test]
fn results_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<plumb_helm::Rendered>();
    assert_send_sync::<plumb_helm::Error>();
    assert_send_sync::<TemplateOptions>();
}

#[test]
fn chart_yaml_numbers_keep_their_text() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(
        root.path(),
        "v: {{ .Chart.AppVersion | quote }}\nc: {{ .Chart.Version | quote }}\n",
    );
    write(
        root.path(),
        "mychart/Chart.yaml",
        "apiVersion: v2\nname: mychart\nversion: 1.0\nappVersion: 1.10 # comment\n",
    );
    let r = template(root.path(), &root.path().join("mychart"), &opts())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.to_output().contains("v: \"1.10\"\nc: \"1.0\""),
        "{}",
        r.to_output()
    );
}

#[test]
fn helmignore_and_hidden_templates() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(root.path(), "a: {{ len (.Files.Glob \"*.txt\") }}\n");
    write(root.path(), "mychart/templates/.swp", "not: {{ valid");
    write(
        root.path(),
        "mychart/.helmignore",
        "# comment\n*.bak\nsecret/\n",
    );
    write(root.path(), "mychart/keep.txt", "x");
    write(root.path(), "mychart/drop.bak", "x");
    write(root.path(), "mychart/secret/key.txt", "x");
    let r = template(root.path(), &root.path().join("mychart"), &opts())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.to_output().contains("a: 1"), "{}", r.to_output());
}

#[test]
fn kube_version_keeps_build_metadata() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    mini_chart(
        root.path(),
        "v: {{ .Capabilities.KubeVersion }} {{ .Capabilities.KubeVersion.Minor }} {{ semverCompare \">=1.28-0\" .Capabilities.KubeVersion.Version }}\n",
    );
    let o = TemplateOptions {
        kube_version: Some("v1.29.3+k3s1".into()),
        ..opts()
    };
    let r =
        template(root.path(), &root.path().join("mychart"), &o).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.to_output().contains("v: v1.29.3+k3s1 29 true"),
        "{}",
        r.to_output()
    );
}
