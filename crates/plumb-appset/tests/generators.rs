//! Each generator through `generate`, in both templating modes.

mod support;

use plumb_appset::generate;
use serde_json::{Value, json};
use support::*;

fn list_spec(go: bool, elements: Value, name: &str) -> Value {
    json!({
        "goTemplate": go,
        "generators": [{"list": {"elements": elements}}],
        "template": {
            "metadata": {"name": name},
            "spec": {"project": "default", "destination": {"server": "https://kubernetes.default.svc", "namespace": "ns"}}
        }
    })
}

#[test]
fn list_generator_default_mode() {
    let set = appset(list_spec(
        false,
        json!([{"cluster": "engineering-dev", "url": "https://1.2.3.4", "values": {"ns": "dev"}}, {"cluster": "prod", "url": "https://5.6.7.8", "values": {"ns": "p"}}]),
        "{{cluster}}-guestbook",
    ));
    let apps = generate(&set, &Fake::default()).expect("generate");
    assert_eq!(
        names(&apps),
        ["engineering-dev-guestbook", "prod-guestbook"]
    );
    assert_eq!(apps[0]["metadata"]["namespace"], "argocd");
    assert_eq!(apps[0]["kind"], "Application");
    assert_eq!(apps[0]["apiVersion"], "argoproj.io/v1alpha1");
}

#[test]
fn list_generator_values_and_non_strings() {
    let mut set = appset(list_spec(
        false,
        json!([{"cluster": "a", "values": {"ns": "dev"}}]),
        "{{cluster}}",
    ));
    set["spec"]["template"]["spec"]["destination"]["namespace"] = json!("{{values.ns}}");
    let apps = generate(&set, &Fake::default()).expect("generate");
    assert_eq!(apps[0]["spec"]["destination"]["namespace"], "dev");

    let bad = appset(list_spec(
        false,
        json!([{"cluster": "a", "replicas": 3}]),
        "{{cluster}}",
    ));
    assert_eq!(
        error_of(generate(&bad, &Fake::default())),
        "spec.generators[0].list.elements[0].replicas: error parsing value as string (use goTemplate for non-string values)"
    );
}

#[test]
fn list_generator_go_template_keeps_structure() {
    let mut set = appset(list_spec(
        true,
        json!([{"cluster": "a", "replicas": 3, "tags": ["x", "y"]}]),
        "{{.cluster}}-{{.replicas}}",
    ));
    set["spec"]["template"]["spec"]["source"] = json!({"path": "{{ index .tags 1 }}"});
    let apps = generate(&set, &Fake::default()).expect("generate");
    assert_eq!(names(&apps), ["a-3"]);
    assert_eq!(apps[0]["spec"]["source"]["path"], "y");
}

#[test]
fn list_generator_elements_yaml() {
    let set = appset(json!({
        "goTemplate": true,
        "generators": [{"list": {"elements": [{"n": "first"}], "elementsYaml": "- n: second\n- n: third\n"}}],
        "template": {"metadata": {"name": "{{.n}}"}, "spec": {"project": "default"}}
    }));
    let apps = generate(&set, &Fake::default()).expect("generate");
    assert_eq!(names(&apps), ["first", "second", "third"]);
}

fn cluster_fake() -> Fake {
    Fake {
        secrets: vec![
            cluster_secret(
                "staging",
                "https://staging.example",
                json!({"env": "staging"}),
            ),
            cluster_secret("Prod_East", "https://prod.example", json!({"env": "prod"})),
            json!({"metadata": {"name": "not-a-cluster", "labels": {"app": "x"}}, "data": {}}),
        ],
        ..Fake::default()
    }
}

#[test]
fn clusters_generator_default_mode_adds_in_cluster() {
    let set = appset(json!({
        "generators": [{"clusters": {"values": {"rev": "{{name}}-main"}}}],
        "template": {
            "metadata": {"name": "{{nameNormalized}}-app", "labels": {"env": "{{metadata.labels.env}}"}},
            "spec": {"project": "{{project}}", "destination": {"server": "{{server}}"}, "source": {"targetRevision": "{{values.rev}}"}}
        }
    }));
    let apps = generate(&set, &cluster_fake()).expect("generate");
    assert_eq!(
        names(&apps),
        ["prod-east-app", "staging-app", "in-cluster-app"]
    );
    assert_eq!(
        apps[0]["spec"]["destination"]["server"],
        "https://prod.example"
    );
    assert_eq!(apps[0]["metadata"]["labels"]["env"], "prod");
    assert_eq!(apps[1]["spec"]["source"]["targetRevision"], "staging-main");
    assert_eq!(
        apps[2]["spec"]["destination"]["server"],
        "https://kubernetes.default.svc"
    );
    // The in-cluster cluster has no labels: the tag stays as written, like Argo CD.
    assert_eq!(
        apps[2]["metadata"]["labels"]["env"],
        "{{metadata.labels.env}}"
    );
    assert_eq!(apps[2]["spec"]["project"], "");
}

#[test]
fn clusters_generator_selector_drops_in_cluster() {
    let set = appset(json!({
        "goTemplate": true,
        "generators": [{"clusters": {"selector": {"matchLabels": {"env": "staging"}}}}],
        "template": {"metadata": {"name": "{{.name}}-{{.metadata.labels.env}}-{{.metadata.annotations.note}}"}, "spec": {"project": "default"}}
    }));
    let apps = generate(&set, &cluster_fake()).expect("generate");
    assert_eq!(names(&apps), ["staging-staging-hi"]);
}

#[test]
fn clusters_generator_secret_for_in_cluster_overrides_it() {
    let mut fake = cluster_fake();
    fake.secrets.push(cluster_secret(
        "local",
        "https://kubernetes.default.svc",
        json!({}),
    ));
    let set = appset(json!({
        "generators": [{"clusters": {}}],
        "template": {"metadata": {"name": "{{name}}"}, "spec": {"project": "default"}}
    }));
    let apps = generate(&set, &fake).expect("generate");
    assert_eq!(names(&apps), ["Prod_East", "local", "staging"]);
}

#[test]
fn clusters_generator_flat_list() {
    let set = appset(json!({
        "goTemplate": true,
        "generators": [{"clusters": {"flatList": true}}],
        "template": {"metadata": {"name": "all"}, "spec": {"project": "default", "info": [{"name": "{{ len .clusters }}"}]}}
    }));
    let apps = generate(&set, &cluster_fake()).expect("generate");
    assert_eq!(names(&apps), ["all"]);
    assert_eq!(apps[0]["spec"]["info"][0]["name"], "3");
}

#[test]
fn clusters_generator_reports_context_errors() {
    let fake = Fake {
        secrets_error: Some("forbidden".into()),
        ..Fake::default()
    };
    let set =
        appset(json!({"generators": [{"clusters": {}}], "template": {"metadata": {"name": "x"}}}));
    assert_eq!(
        error_of(generate(&set, &fake)),
        "spec.generators[0].clusters: cannot list cluster secrets: forbidden"
    );
    let bad = Fake {
        secrets: vec![
            json!({"metadata": {"name": "s", "labels": {"argocd.argoproj.io/secret-type": "cluster"}}, "data": {"name": "%%%"}}),
        ],
        ..Fake::default()
    };
    let err = error_of(generate(&set, &bad));
    assert!(
        err.starts_with(
            "spec.generators[0].clusters: cluster secret s: data.name is not valid base64"
        ),
        "{err}"
    );
}

fn dir_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for d in [
        "apps/guestbook",
        "apps/helm-guestbook",
        "apps/excluded",
        "apps/.hidden",
        "other/x",
        "apps/guestbook/nested",
    ] {
        std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
    }
    write(dir.path(), "apps/guestbook/app.yaml", "kind: x");
    dir
}

#[test]
fn git_directories_default_mode() {
    let repo = dir_repo();
    let set = appset(json!({
        "generators": [{"git": {"repoURL": "https://git.example/repo.git", "revision": "HEAD", "directories": [
            {"path": "apps/*"}, {"path": "apps/excluded", "exclude": true}
        ]}}],
        "template": {
            "metadata": {"name": "{{path.basename}}"},
            "spec": {"project": "default", "source": {"path": "{{path}}", "targetRevision": "{{path[0]}}/{{path.basenameNormalized}}"}}
        }
    }));
    let apps = generate(
        &set,
        &with_repo("https://git.example/repo.git", repo.path()),
    )
    .expect("generate");
    assert_eq!(names(&apps), ["guestbook", "helm-guestbook"]);
    assert_eq!(apps[1]["spec"]["source"]["path"], "apps/helm-guestbook");
    assert_eq!(
        apps[1]["spec"]["source"]["targetRevision"],
        "apps/helm-guestbook"
    );
}

#[test]
fn git_directories_go_template_and_prefix() {
    let repo = dir_repo();
    let set = appset(json!({
        "goTemplate": true,
        "goTemplateOptions": ["missingkey=error"],
        "generators": [{"git": {"repoURL": "r", "revision": "main", "pathParamPrefix": "app", "values": {"team": "t-{{.app.path.basename}}"},
            "directories": [{"path": "apps/guest*"}, {"path": "*/x"}]}}],
        "template": {
            "metadata": {"name": "{{.app.path.basenameNormalized}}-{{index .app.path.segments 0}}"},
            "spec": {"project": "default", "source": {"path": "{{.app.path.path}}"}, "info": [{"name": "team", "value": "{{.values.team}}"}]}
        }
    }));
    let apps = generate(&set, &with_repo("r", repo.path())).expect("generate");
    assert_eq!(names(&apps), ["guestbook-apps", "x-other"]);
    assert_eq!(apps[0]["spec"]["info"][0]["value"], "t-guestbook");
}

#[test]
fn git_directories_errors_name_the_field() {
    let repo = dir_repo();
    let fake = with_repo("r", repo.path());
    let mk = |dirs: Value| {
        appset(
            json!({"generators": [{"list": {"elements": [{"a": "b"}]}}, {"git": {"repoURL": "r", "revision": "", "directories": dirs}}],
            "template": {"metadata": {"name": "{{path}}"}}}),
        )
    };
    assert_eq!(
        error_of(generate(
            &mk(json!([{"path": "ok"}, {"path": "[a-"}])),
            &fake
        )),
        "spec.generators[1].git.directories[1].path: syntax error in pattern \"[a-\""
    );
    assert_eq!(
        error_of(generate(&mk(json!([{"exclude": true}])), &fake)),
        "spec.generators[1].git.directories[0].path: is required"
    );
    let unknown = appset(
        json!({"generators": [{"git": {"repoURL": "nope", "revision": "", "directories": [{"path": "*"}]}}]}),
    );
    assert_eq!(
        error_of(generate(&unknown, &fake)),
        "spec.generators[0].git.repoURL: cannot get nope at revision \"\": unknown repository nope"
    );
}

fn files_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "cluster-config/engineering/dev/config.json",
        r#"{"aws_account": "123456", "asset_id": "11223344", "cluster": {"owner": "cluster-admin@company.com", "name": "engineering-dev", "address": "https://1.2.3.4", "replicas": 3}}"#,
    );
    write(
        dir.path(),
        "cluster-config/engineering/prod/config.json",
        r#"{"aws_account": "123456", "asset_id": "11223344", "cluster": {"owner": "cluster-admin@company.com", "name": "engineering-prod", "address": "https://2.4.6.8", "replicas": 1000000}}"#,
    );
    write(
        dir.path(),
        "cluster-config/skip/config.json",
        r#"{"cluster": {"name": "skip"}}"#,
    );
    write(
        dir.path(),
        "lists/apps.yaml",
        "- cluster: {name: l1}\n- cluster: {name: l2}\n",
    );
    dir
}

#[test]
fn git_files_default_mode_flattens() {
    let repo = files_repo();
    let set = appset(json!({
        "generators": [{"git": {"repoURL": "r", "revision": "HEAD", "files": [
            {"path": "cluster-config/**/config.json"}, {"path": "cluster-config/skip/*", "exclude": true}
        ]}}],
        "template": {
            "metadata": {"name": "{{cluster.name}}"},
            "spec": {"project": "default", "destination": {"server": "{{cluster.address}}"},
                     "source": {"path": "{{path}}|{{path.basename}}|{{path.filename}}|{{path[1]}}|{{cluster.replicas}}"}}
        }
    }));
    let apps = generate(&set, &with_repo("r", repo.path())).expect("generate");
    assert_eq!(names(&apps), ["engineering-dev", "engineering-prod"]);
    assert_eq!(
        apps[0]["spec"]["source"]["path"],
        "cluster-config/engineering/dev|dev|config.json|engineering|3"
    );
    // Go prints float64 1000000 with %v as 1e+06, and so does Argo CD.
    assert_eq!(
        apps[1]["spec"]["source"]["path"],
        "cluster-config/engineering/prod|prod|config.json|engineering|1e+06"
    );
}

#[test]
fn git_files_go_template_and_lists() {
    let repo = files_repo();
    let set = appset(json!({
        "goTemplate": true,
        "generators": [{"git": {"repoURL": "r", "revision": "HEAD", "files": [{"path": "lists/*.yaml"}]}}],
        "template": {"metadata": {"name": "{{.cluster.name}}-{{.path.filenameNormalized}}"}, "spec": {"project": "default", "source": {"path": "{{.path.path}}"}}}
    }));
    let apps = generate(&set, &with_repo("r", repo.path())).expect("generate");
    assert_eq!(names(&apps), ["l1-apps.yaml", "l2-apps.yaml"]);
    assert_eq!(apps[0]["spec"]["source"]["path"], "lists");
}

#[cfg(unix)]
#[test]
fn git_files_refuse_symlink_escapes() {
    let outside = tempfile::tempdir().expect("tempdir");
    write(outside.path(), "secret.json", r#"{"stolen": "yes"}"#);
    let repo = files_repo();
    std::os::unix::fs::symlink(
        outside.path().join("secret.json"),
        repo.path().join("lists/evil.json"),
    )
    .expect("symlink");
    let set = appset(json!({
        "generators": [{"git": {"repoURL": "r", "revision": "HEAD", "files": [{"path": "lists/*.json"}]}}],
        "template": {"metadata": {"name": "{{stolen}}"}}
    }));
    assert_eq!(
        error_of(generate(&set, &with_repo("r", repo.path()))),
        "spec.generators[0].git.files: lists/evil.json resolves outside the repository"
    );
}

#[test]
fn git_files_bound_sizes_and_report_parse_errors() {
    let repo = files_repo();
    write(
        repo.path(),
        "big/config.json",
        &format!("{{\"a\": \"{}\"}}", "x".repeat(2 << 20)),
    );
    write(repo.path(), "bad/config.json", "a: [");
    let mk = |p: &str| {
        appset(
            json!({"generators": [{"git": {"repoURL": "r", "revision": "HEAD", "files": [{"path": p}]}}], "template": {"metadata": {"name": "x"}}}),
        )
    };
    let fake = with_repo("r", repo.path());
    assert_eq!(
        error_of(generate(&mk("big/config.json"), &fake)),
        "spec.generators[0].git.files: big/config.json exceeds the size limit of 1048576 bytes"
    );
    let err = error_of(generate(&mk("bad/*"), &fake));
    assert!(err.starts_with("spec.generators[0].git.files: unable to process file 'bad/config.json' from repository 'r': unable to parse file"), "{err}");
}

#[test]
fn generator_selector_filters_params() {
    let set = appset(json!({
        "generators": [{"list": {"elements": [{"n": "a", "env": "prod"}, {"n": "b", "env": "dev"}]},
                        "selector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}}],
        "template": {"metadata": {"name": "{{n}}"}, "spec": {"project": "default"}}
    }));
    assert_eq!(
        names(&generate(&set, &Fake::default()).expect("generate")),
        ["a"]
    );
}

#[test]
fn unsupported_and_unknown_generators_are_named() {
    for (kind, feature) in [
        ("scmProvider", "the SCM provider generator"),
        ("pullRequest", "the pull request generator"),
        (
            "clusterDecisionResource",
            "the cluster decision resource generator",
        ),
        ("plugin", "the plugin generator"),
    ] {
        let set =
            appset(json!({"generators": [{ kind: {} }], "template": {"metadata": {"name": "x"}}}));
        assert_eq!(
            error_of(generate(&set, &Fake::default())),
            format!("spec.generators[0].{kind}: not supported yet: {feature}")
        );
    }
    let set = appset(json!({"generators": [{"lists": {}}]}));
    assert_eq!(
        error_of(generate(&set, &Fake::default())),
        "spec.generators[0].lists: not supported yet: unknown generator \"lists\" (supported: list, clusters, git, matrix, merge)"
    );
    let set = appset(json!({"generators": [{}]}));
    assert!(
        error_of(generate(&set, &Fake::default()))
            .starts_with("spec.generators[0]: no generator given")
    );
}

#[test]
fn missing_repository_root_is_reported() {
    let gone = tempfile::tempdir().expect("tempdir").path().join("gone");
    let set = appset(json!({
        "generators": [{"git": {"repoURL": "r", "revision": "HEAD", "directories": [{"path": "*"}]}}],
        "template": {"metadata": {"name": "{{path}}"}}
    }));
    assert_eq!(
        error_of(generate(&set, &with_repo("r", &gone))),
        "spec.generators[0].git: cannot read ."
    );
}

#[test]
fn new_git_file_globbing_keeps_stars_inside_directories() {
    let repo = files_repo();
    write(
        repo.path(),
        "cluster-config/engineering/dev/nested/config.json",
        r#"{"cluster": {"name": "nested"}}"#,
    );
    let set = appset(json!({
        "generators": [{"git": {"repoURL": "r", "revision": "HEAD", "files": [{"path": "cluster-config/*/{dev,prod}/config.json"}]}}],
        "template": {"metadata": {"name": "{{cluster.name}}"}, "spec": {"project": "default"}}
    }));
    let options = plumb_appset::Options {
        new_git_file_globbing: true,
    };
    let generation = plumb_appset::generate_with(&set, &with_repo("r", repo.path()), &options)
        .expect("generate");
    assert_eq!(
        names(&generation.applications),
        ["engineering-dev", "engineering-prod"]
    );
    // The default pathspec globbing lets `*` cross directories (and has no braces).
    let greedy = appset(json!({
        "generators": [{"git": {"repoURL": "r", "revision": "HEAD", "files": [{"path": "cluster-config/*/config.json"}]}}],
        "template": {"metadata": {"name": "{{cluster.name}}"}, "spec": {"project": "default"}}
    }));
    assert_eq!(
        names(&generate(&greedy, &with_repo("r", repo.path())).expect("generate")),
        ["engineering-dev", "nested", "engineering-prod", "skip"]
    );
    let strict = plumb_appset::generate_with(&greedy, &with_repo("r", repo.path()), &options)
        .expect("generate");
    assert_eq!(names(&strict.applications), ["skip"]);
}
