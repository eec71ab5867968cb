//! ApplicationSets over the argocd-example-apps corpus (a local copy of Argo CD's example
//! repository).

mod support;

use std::path::PathBuf;

use plumb_appset::generate;
use serde_json::json;
use support::*;

const REPO: &str = "https://github.com/argoproj/argocd-example-apps.git";

fn corpus() -> PathBuf {
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../../shared/corpus/argocd-example-apps");
    if beside.is_dir() {
        beside
    } else {
        PathBuf::from("/work/shared/corpus/argocd-example-apps")
    }
}

#[test]
fn git_directory_generator_makes_one_application_per_directory() {
    let set = appset(json!({
        "goTemplate": true,
        "goTemplateOptions": ["missingkey=error"],
        "generators": [{"git": {"repoURL": REPO, "revision": "HEAD", "directories": [{"path": "*"}, {"path": "plugins", "exclude": true}]}}],
        "template": {
            "metadata": {"name": "{{.path.basename}}"},
            "spec": {
                "project": "default",
                "source": {"repoURL": REPO, "targetRevision": "HEAD", "path": "{{.path.path}}"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "{{.path.basenameNormalized}}"}
            }
        }
    }));
    let apps = generate(&set, &with_repo(REPO, &corpus())).expect("generate");
    assert_eq!(
        names(&apps),
        [
            "apps",
            "blue-green",
            "guestbook",
            "helm-dependency",
            "helm-guestbook",
            "helm-hooks",
            "jsonnet-guestbook",
            "jsonnet-guestbook-tla",
            "kustomize-guestbook",
            "pre-post-sync",
            "sock-shop",
            "sync-waves"
        ]
    );
    let guestbook = &apps[2];
    assert_eq!(guestbook["spec"]["source"]["path"], "guestbook");
    assert_eq!(guestbook["spec"]["destination"]["namespace"], "guestbook");
    assert_eq!(guestbook["metadata"]["ownerReferences"][0]["name"], "set");
}

#[test]
fn git_directory_generator_default_mode_on_nested_directories() {
    let set = appset(json!({
        "generators": [{"git": {"repoURL": REPO, "revision": "HEAD", "directories": [{"path": "plugins/*"}, {"path": "*/templates"}]}}],
        "template": {"metadata": {"name": "{{path[0]}}-{{path.basename}}"}, "spec": {"project": "default", "source": {"path": "{{path}}"}}}
    }));
    let apps = generate(&set, &with_repo(REPO, &corpus())).expect("generate");
    assert_eq!(
        names(&apps),
        [
            "apps-templates",
            "blue-green-templates",
            "helm-guestbook-templates",
            "plugins-kasane",
            "plugins-kustomized-helm",
            "plugins-nix"
        ]
    );
}

#[test]
fn git_file_generator_reads_chart_metadata() {
    let set = appset(json!({
        "generators": [{"git": {"repoURL": REPO, "revision": "HEAD", "files": [{"path": "**/Chart.yaml"}, {"path": "plugins/**", "exclude": true}]}}],
        "template": {"metadata": {"name": "{{path.basename}}-{{name}}-{{version}}"}, "spec": {"project": "default", "source": {"path": "{{path}}"}}}
    }));
    let apps = generate(&set, &with_repo(REPO, &corpus())).expect("generate");
    assert_eq!(
        names(&apps),
        [
            "apps-applications-0.1.0",
            "blue-green-helm-guestbook-0.1.0",
            "helm-dependency-wordpress-0.1.0",
            "helm-guestbook-helm-guestbook-0.1.0"
        ]
    );
}

#[test]
fn matrix_of_corpus_directories_and_clusters() {
    let mut fake = with_repo(REPO, &corpus());
    fake.secrets.push(cluster_secret(
        "east",
        "https://east.example",
        json!({"tier": "edge"}),
    ));
    let set = appset(json!({
        "goTemplate": true,
        "generators": [{"matrix": {"generators": [
            {"git": {"repoURL": REPO, "revision": "HEAD", "directories": [{"path": "*guestbook"}]}},
            {"clusters": {"selector": {"matchLabels": {"tier": "edge"}}}}
        ]}}],
        "template": {
            "metadata": {"name": "{{.path.basename}}-{{.name}}"},
            "spec": {"project": "default", "source": {"repoURL": REPO, "path": "{{.path.path}}"}, "destination": {"server": "{{.server}}"}}
        }
    }));
    let apps = generate(&set, &fake).expect("generate");
    assert_eq!(
        names(&apps),
        [
            "guestbook-east",
            "helm-guestbook-east",
            "jsonnet-guestbook-east",
            "kustomize-guestbook-east"
        ]
    );
    assert!(
        apps.iter()
            .all(|a| a["spec"]["destination"]["server"] == "https://east.example")
    );
}
