//! Multiple sources (`spec.sources`): each source fetched and rendered on its own, manifests
//! concatenated, Helm value files read from a `ref` source's checkout, and status in Argo CD's
//! multi-source shape.

mod common;

use common::charts::{chart_version, package, podinfo_chart, repository};
use common::{Harness, automated, cm, git};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A second Git repository beside the harness's, with `files` as its first commit.
struct Repo {
    path: PathBuf,
}

impl Repo {
    fn create(h: &Harness, name: &str, files: &[(&str, &str)]) -> Repo {
        let path = h.dir.path().join(name);
        std::fs::create_dir_all(&path).expect("repo dir");
        git(&path, &["init", "-q", "-b", "main"]);
        let repo = Repo { path };
        repo.commit(files, "initial");
        repo
    }

    fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        write_files(&self.path, files);
        git(&self.path, &["add", "-A"]);
        git(
            &self.path,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        git(&self.path, &["rev-parse", "HEAD"])
    }

    fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }
}

fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("dirs");
        std::fs::write(&file, text).expect("write");
    }
}

fn application(name: &str, sources: Value, sync_policy: Value) -> Value {
    json!({"apiVersion": API_VERSION, "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"project": "default", "sources": sources,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "syncPolicy": sync_policy}})
}

fn revisions(app: &Value, at: &str) -> Vec<String> {
    app.pointer(at)
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .map(|r| r.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_revisions(h: &Harness, name: &str, wanted: &[&str]) -> Value {
    h.wait_app(name, &format!("Synced at {wanted:?}"), |app| {
        str_at(app, &["status", "sync", "status"]) == "Synced"
            && str_at(app, &["status", "health", "status"]) == "Healthy"
            && revisions(app, "/status/sync/revisions") == wanted
    })
    .await
}

/// Argo CD's canonical example: a chart from a Helm repository, its values from Git.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_from_a_helm_repository_takes_value_files_from_a_git_ref_source() {
    let version = chart_version(&podinfo_chart());
    let charts = repository(vec![(
        "podinfo".into(),
        version.clone(),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = Harness::start(&[(
        "envs/prod/podinfo.yaml",
        "ui:\n  message: from-git-values\n",
    )])
    .await;
    // A symlink out of the repository, for the escape below.
    std::os::unix::fs::symlink("/etc", h.repo.join("outside")).expect("symlink");
    let values_revision = h.commit(&[], "a symlink out of the repository");
    let sources = json!([
        {"repoURL": charts, "chart": "podinfo", "targetRevision": version,
            "helm": {"releaseName": "podinfo",
                "valueFiles": ["$values/envs/prod/podinfo.yaml", "$values/envs/prod/missing.yaml"],
                "ignoreMissingValueFiles": true}},
        {"repoURL": h.url(), "targetRevision": "main", "ref": "values"}]);
    h.apply(application("podinfo", sources.clone(), automated(false)))
        .await;
    let app = wait_revisions(&h, "podinfo", &[&version, &values_revision]).await;

    let deployment = h
        .cluster
        .get("apps/v1", "Deployment", "apps", "podinfo")
        .await
        .expect("get")
        .expect("the chart's Deployment exists");
    let env = deployment
        .pointer("/spec/template/spec/containers/0/env")
        .cloned()
        .unwrap_or_default();
    assert!(
        env.as_array().is_some_and(|e| e
            .iter()
            .any(|v| str_at(v, &["name"]) == "PODINFO_UI_MESSAGE"
                && str_at(v, &["value"]) == "from-git-values")),
        "the value file from the ref source reached the chart: {env}"
    );

    // Status in Argo CD's multi-source shape.
    let status = &app["status"];
    assert!(status["sync"].get("revision").is_none(), "{status}");
    assert_eq!(
        status["sync"]["comparedTo"]["sources"][0]["chart"],
        "podinfo"
    );
    assert_eq!(status["sync"]["comparedTo"]["sources"][1]["ref"], "values");
    assert!(status["sync"]["comparedTo"].get("source").is_none());
    assert_eq!(status["sourceTypes"], json!(["Helm", ""]));
    assert!(status.get("sourceType").is_none());
    let history = status["history"].as_array().expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(
        revisions(&history[0], "/revisions"),
        [version.as_str(), values_revision.as_str()]
    );
    assert_eq!(
        history[0]["sources"],
        status["sync"]["comparedTo"]["sources"]
    );
    assert!(history[0].get("revision").is_none());
    let state = &status["operationState"];
    assert_eq!(
        revisions(state, "/operation/sync/revisions"),
        [version.as_str(), values_revision.as_str()]
    );
    assert_eq!(
        revisions(state, "/syncResult/revisions"),
        [version.as_str(), values_revision.as_str()]
    );
    assert_eq!(state["syncResult"]["sources"][1]["ref"], "values");
    assert_eq!(state["phase"], "Succeeded");

    // A change of the values alone (the chart is the same) syncs automatically.
    let values_revision = h.commit(
        &[("envs/prod/podinfo.yaml", "ui:\n  message: changed\n")],
        "new message",
    );
    h.refresh("podinfo").await;
    let app = wait_revisions(&h, "podinfo", &[&version, &values_revision]).await;
    let deployment = h
        .cluster
        .get("apps/v1", "Deployment", "apps", "podinfo")
        .await
        .expect("get")
        .expect("deployment");
    assert!(deployment.to_string().contains("\"changed\""));
    assert_eq!(app["status"]["history"].as_array().map(Vec::len), Some(2));

    // The value file is confined to the ref source's checkout, symlinks included.
    let mut escaping = sources.clone();
    escaping[0]["helm"]["valueFiles"] = json!(["$values/outside/passwd"]);
    escaping[0]["helm"]["ignoreMissingValueFiles"] = json!(false);
    h.apply(application("escaping", escaping, automated(false)))
        .await;
    let message = h.condition("escaping", "ComparisonError").await;
    assert!(
        message.contains("spec.sources[0].helm.valueFiles")
            && message.contains("leads outside the source with ref \"values\""),
        "{message}"
    );
    // A missing value file without ignoreMissingValueFiles is named.
    let mut missing = sources;
    missing[0]["helm"]["ignoreMissingValueFiles"] = json!(false);
    h.apply(application("missing", missing, automated(false)))
        .await;
    let message = h.condition("missing", "ComparisonError").await;
    assert!(
        message.contains("spec.sources[0].helm.valueFiles")
            && message.contains("$values/envs/prod/missing.yaml"),
        "{message}"
    );
}

/// Two Git directories merged into one application; a commit to one of them syncs
/// automatically, and the revisions of both are in status and history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_git_directories_merge_and_a_commit_to_either_syncs_automatically() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("from-first", "1")),
        ("app/shared.yaml", &cm("shared", "first")),
    ])
    .await;
    let first = git(&h.repo, &["rev-parse", "HEAD"]);
    let other = Repo::create(
        &h,
        "other",
        &[
            ("config/b.yaml", &cm("from-second", "1")),
            ("config/shared.yaml", &cm("shared", "second")),
        ],
    );
    let second = git(&other.path, &["rev-parse", "HEAD"]);
    let sources = json!([
        {"repoURL": h.url(), "targetRevision": "main", "path": "app"},
        {"repoURL": other.url(), "targetRevision": "main", "path": "config"}]);
    h.apply(application("merged", sources, automated(true)))
        .await;
    let app = wait_revisions(&h, "merged", &[&first, &second]).await;
    assert_eq!(
        app["status"]["sourceTypes"],
        json!(["Directory", "Directory"])
    );
    for name in ["from-first", "from-second"] {
        assert!(h.configmap(name).await.is_some(), "{name} applied");
    }
    // The same object from both sources: the last source wins, with Argo CD's warning.
    let shared = h.configmap("shared").await.expect("shared");
    assert_eq!(str_at(&shared, &["data", "value"]), "second");
    let warning = h.condition("merged", "RepeatedResourceWarning").await;
    assert!(warning.contains("shared"), "{warning}");

    // A commit to the second source alone: automated sync to the new pair of revisions.
    let second = other.commit(&[("config/b.yaml", &cm("from-second", "2"))], "bump");
    h.refresh("merged").await;
    let app = wait_revisions(&h, "merged", &[&first, &second]).await;
    let b = h.configmap("from-second").await.expect("from-second");
    assert_eq!(str_at(&b, &["data", "value"]), "2");
    let history = app["status"]["history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(
        revisions(&history[1], "/revisions"),
        [first.as_str(), second.as_str()]
    );
    assert_eq!(
        app.pointer("/status/operationState/operation/initiatedBy/automated"),
        Some(&json!(true))
    );

    // A source whose fetch fails: the application keeps what it has, and says which source.
    let mut broken = app["spec"]["sources"].clone();
    broken[1]["targetRevision"] = json!("no-such-branch");
    h.cluster
        .merge_patch(
            API_VERSION,
            "Application",
            "argocd",
            "merged",
            &json!({"spec": {"sources": broken}}),
        )
        .await
        .expect("patch");
    let message = h.condition("merged", "ComparisonError").await;
    assert!(
        message.starts_with("spec.sources[1] (file://") && message.contains("no-such-branch"),
        "{message}"
    );
    let app = h.app("merged").await;
    assert_eq!(
        revisions(&app, "/status/sync/revisions"),
        [first.as_str(), second.as_str()]
    );
    assert!(h.configmap("from-first").await.is_some());
    assert!(h.configmap("from-second").await.is_some());
}

/// A manual sync of a multi-source application, then a rollback to its first deployment: the
/// operation Argo CD's rollback writes (the history entry's `revisions` and `sources`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_sync_and_rollback_to_a_history_entry_of_both_sources() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    let first = git(&h.repo, &["rev-parse", "HEAD"]);
    let other = Repo::create(&h, "other", &[("config/b.yaml", &cm("b", "1"))]);
    let second = git(&other.path, &["rev-parse", "HEAD"]);
    let sources = json!([
        {"repoURL": h.url(), "targetRevision": "main", "path": "app"},
        {"repoURL": other.url(), "targetRevision": "main", "path": "config"}]);
    h.apply(application("manual", sources, json!({}))).await;
    let app = h
        .wait_app("manual", "OutOfSync at both revisions", |app| {
            str_at(app, &["status", "sync", "status"]) == "OutOfSync"
                && revisions(app, "/status/sync/revisions") == [first.as_str(), second.as_str()]
        })
        .await;
    assert!(h.configmap("a").await.is_none(), "nothing synced by itself");
    let sync = |app: &Value, operation: Value| {
        json!({"metadata": {"resourceVersion": str_at(app, &["metadata", "resourceVersion"])},
            "operation": operation})
    };
    let patch = sync(
        &app,
        json!({"sync": {"prune": true}, "initiatedBy": {"username": "tester"}}),
    );
    h.cluster
        .merge_patch(API_VERSION, "Application", "argocd", "manual", &patch)
        .await
        .expect("sync");
    wait_revisions(&h, "manual", &[&first, &second]).await;
    assert!(h.configmap("a").await.is_some() && h.configmap("b").await.is_some());

    let second_new = other.commit(&[("config/b.yaml", &cm("b", "2"))], "bump");
    h.refresh("manual").await;
    let app = h
        .wait_app("manual", "OutOfSync at the new revision", |app| {
            revisions(app, "/status/sync/revisions") == [first.as_str(), second_new.as_str()]
                && str_at(app, &["status", "sync", "status"]) == "OutOfSync"
        })
        .await;
    // `plumb app diff` sees what the second source changed.
    let sources =
        plumb_engine::git::GitSources::new(&h.dir.path().join("diff-cache")).expect("cache");
    let diffs = plumb_engine::diff::diff(
        h.cluster.clone(),
        std::sync::Arc::new(sources),
        plumb_engine::Options::default(),
        &app,
    )
    .await
    .expect("diff");
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(diffs[0].key.name, "b");
    let patch = sync(
        &app,
        json!({"sync": {"prune": true}, "initiatedBy": {"username": "tester"}}),
    );
    h.cluster
        .merge_patch(API_VERSION, "Application", "argocd", "manual", &patch)
        .await
        .expect("sync");
    let app = wait_revisions(&h, "manual", &[&first, &second_new]).await;
    let b = h.configmap("b").await.expect("b");
    assert_eq!(str_at(&b, &["data", "value"]), "2");

    // Roll back to history entry 0: Argo CD's rollback operation.
    let entry = app["status"]["history"][0].clone();
    let patch = sync(
        &app,
        json!({"sync": {"revisions": entry["revisions"], "sources": entry["sources"], "prune": true},
            "initiatedBy": {"username": "tester"}}),
    );
    h.cluster
        .merge_patch(API_VERSION, "Application", "argocd", "manual", &patch)
        .await
        .expect("rollback");
    let app = h
        .wait_app("manual", "rolled back", |app| {
            str_at(app, &["status", "operationState", "phase"]) == "Succeeded"
                && revisions(app, "/status/operationState/syncResult/revisions")
                    == [first.as_str(), second.as_str()]
                && app["status"]["history"].as_array().map(Vec::len) == Some(3)
        })
        .await;
    let b = h.configmap("b").await.expect("b");
    assert_eq!(str_at(&b, &["data", "value"]), "1");
    assert_eq!(
        revisions(&app["status"]["history"][2], "/revisions"),
        [first.as_str(), second.as_str()]
    );
    // Git is ahead of what is deployed: OutOfSync at the newest revisions.
    h.wait_app("manual", "OutOfSync after the rollback", |app| {
        str_at(app, &["status", "sync", "status"]) == "OutOfSync"
            && revisions(app, "/status/sync/revisions") == [first.as_str(), second_new.as_str()]
    })
    .await;
}

/// A `ref` source with a `path` renders too (Argo CD's rule), and still serves `$ref` files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_source_with_a_path_renders_and_serves_value_files() {
    let h = Harness::start(&[
        ("manifests/extra.yaml", &cm("extra", "x")),
        ("values/chart.yaml", "name: from-values\n"),
    ])
    .await;
    let revision = git(&h.repo, &["rev-parse", "HEAD"]);
    let charts = Repo::create(
        &h,
        "charts",
        &[
            (
                "chart/Chart.yaml",
                "apiVersion: v2\nname: tiny\nversion: 0.1.0\n",
            ),
            ("chart/values.yaml", "name: default\n"),
            (
                "chart/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\ndata:\n  value: \"1\"\n",
            ),
        ],
    );
    let chart_revision = git(&charts.path, &["rev-parse", "HEAD"]);
    let sources = json!([
        {"repoURL": charts.url(), "targetRevision": "main", "path": "chart",
            "helm": {"valueFiles": ["$config/values/chart.yaml"]}},
        {"repoURL": h.url(), "targetRevision": "main", "path": "manifests", "ref": "config"}]);
    h.apply(application("refpath", sources, automated(false)))
        .await;
    let app = wait_revisions(&h, "refpath", &[&chart_revision, &revision]).await;
    assert_eq!(app["status"]["sourceTypes"], json!(["Helm", "Directory"]));
    assert!(h.configmap("from-values").await.is_some());
    assert!(h.configmap("extra").await.is_some());
    assert!(h.configmap("default").await.is_none());
}

/// Bad input: each a condition naming the field, nothing applied, no panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_multi_source_specs_are_named_and_nothing_is_applied() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("bad-a", "1")),
        ("single/s.yaml", &cm("from-source", "1")),
        ("values/v.yaml", "x: 1\n"),
        (
            "chart/Chart.yaml",
            "apiVersion: v2\nname: tiny\nversion: 0.1.0\n",
        ),
        (
            "chart/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad-chart\n",
        ),
    ])
    .await;
    let url = h.url();
    let chart = |value_file: &str| {
        json!({"repoURL": url, "targetRevision": "main", "path": "chart",
            "helm": {"valueFiles": [value_file]}})
    };
    let values = json!({"repoURL": url, "targetRevision": "main", "ref": "values"});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "no-ref",
            json!([chart("$vals/values/v.yaml"), values.clone()]),
            "InvalidSpecError",
            "spec.sources[0].helm.valueFiles[0]: \"$vals/values/v.yaml\" names $vals, but no source has ref \"vals\"",
        ),
        (
            "escape",
            json!([chart("$values/../../etc/passwd"), values.clone()]),
            "InvalidSpecError",
            "spec.sources[0].helm.valueFiles[0]: \"$values/../../etc/passwd\" leads outside the source with ref \"values\"",
        ),
        (
            "twice",
            json!([values.clone(), values.clone()]),
            "InvalidSpecError",
            "spec.sources[1].ref: \"values\" is also the ref of spec.sources[0]",
        ),
        (
            "no-repo",
            json!([{"path": "app", "targetRevision": "main"}]),
            "InvalidSpecError",
            "spec.sources[0].repoURL: must be set",
        ),
        (
            "nothing",
            json!([{"repoURL": url, "targetRevision": "main"}]),
            "InvalidSpecError",
            "spec.sources[0]: one of path, chart or ref must be set",
        ),
        (
            "bad-ref",
            json!([{"repoURL": url, "targetRevision": "main", "ref": "my/values"}]),
            "InvalidSpecError",
            "spec.sources[0].ref: \"my/values\" may contain only",
        ),
        (
            "unreachable",
            json!([{"repoURL": url, "targetRevision": "main", "path": "app"},
                {"repoURL": format!("file://{}/missing", h.dir.path().display()), "targetRevision": "main", "path": "x"}]),
            "ComparisonError",
            "spec.sources[1] (file://",
        ),
    ];
    for (name, sources, kind, expected) in &cases {
        h.apply(application(name, sources.clone(), automated(false)))
            .await;
        let message = h.condition(name, kind).await;
        assert!(message.starts_with(expected), "{name}: {message}");
    }
    // Empty sources and no source: the application needs one.
    h.apply(application("empty", json!([]), automated(false)))
        .await;
    let message = h.condition("empty", "InvalidSpecError").await;
    assert!(message.contains("needs a source"), "{message}");
    for name in ["bad-a", "bad-chart"] {
        assert!(h.configmap(name).await.is_none(), "{name} was applied");
    }

    // The project's sourceRepos cover every source: the second one is refused here.
    h.apply(json!({"apiVersion": API_VERSION, "kind": "AppProject",
        "metadata": {"name": "one-repo", "namespace": "argocd"},
        "spec": {"sourceRepos": [url], "destinations": [{"server": "*", "namespace": "*"}]}}))
        .await;
    let other = Repo::create(&h, "other", &[("x/o.yaml", &cm("bad-other", "1"))]);
    let mut refused = application(
        "refused",
        json!([{"repoURL": url, "targetRevision": "main", "path": "app"},
            {"repoURL": other.url(), "targetRevision": "main", "path": "x"}]),
        automated(false),
    );
    refused["spec"]["project"] = json!("one-repo");
    h.apply(refused).await;
    let message = h.condition("refused", "InvalidSpecError").await;
    assert!(
        message.contains(&other.url()) && message.contains("spec.sourceRepos"),
        "{message}"
    );
    assert!(h.configmap("bad-other").await.is_none());

    // Both source and sources: Argo CD ignores source.
    let mut both = application(
        "both",
        json!([{"repoURL": url, "targetRevision": "main", "path": "app"}]),
        automated(false),
    );
    both["spec"]["source"] = json!({"repoURL": url, "targetRevision": "main", "path": "single"});
    h.apply(both).await;
    let revision = git(&h.repo, &["rev-parse", "HEAD"]);
    wait_revisions(&h, "both", &[&revision]).await;
    assert!(h.configmap("bad-a").await.is_some());
    assert!(h.configmap("from-source").await.is_none());
}

/// Health-gated rollback (`plumb.dev/rollback-on-degraded`) takes every source back to the
/// revisions that were last Synced and Healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_source_sync_left_degraded_is_rolled_back_on_every_source() {
    let deployment = |image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  progressDeadlineSeconds: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: main\n        image: {image}\n"
        )
    };
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    let first = git(&h.repo, &["rev-parse", "HEAD"]);
    let other = Repo::create(&h, "web", &[("web/web.yaml", &deployment("nginx:1.27"))]);
    let good = git(&other.path, &["rev-parse", "HEAD"]);
    let mut app = application(
        "rollback",
        json!([{"repoURL": h.url(), "targetRevision": "main", "path": "app"},
            {"repoURL": other.url(), "targetRevision": "main", "path": "web"}]),
        automated(false),
    );
    app["metadata"]["annotations"] = json!({"plumb.dev/rollback-on-degraded": "1s"});
    h.apply(app).await;
    wait_revisions(&h, "rollback", &[&first, &good]).await;

    let bad = other.commit(
        &[("web/web.yaml", &deployment("example.com/fail-pull:1"))],
        "an image that never pulls",
    );
    h.refresh("rollback").await;
    let app = h
        .wait_app("rollback", "rolled back on every source", |a| {
            a.pointer("/status/history")
                .and_then(Value::as_array)
                .and_then(|h| h.last())
                .is_some_and(|last| {
                    revisions(last, "/revisions") == [first.as_str(), good.as_str()]
                        && !str_at(last, &["reason"]).is_empty()
                })
        })
        .await;
    let history = app["status"]["history"].as_array().expect("history");
    assert_eq!(history.len(), 3);
    assert_eq!(
        revisions(&history[1], "/revisions"),
        [first.as_str(), bad.as_str()]
    );
    assert_eq!(
        str_at(&app, &["status", "rollback", "rolledBackFrom"]),
        format!("{first}, {bad}")
    );
    let web = h
        .cluster
        .get("apps/v1", "Deployment", "apps", "web")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        web.pointer("/spec/template/spec/containers/0/image"),
        Some(&json!("nginx:1.27"))
    );
    let message = h.condition("rollback", "RolledBack").await;
    assert!(message.contains(&bad), "{message}");
}

/// Deleting a multi-source application runs the PostDelete hooks of any of its sources, from
/// the revisions last compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_delete_hooks_of_a_second_source_run_after_deletion() {
    let hook = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: goodbye\n  annotations:\n    argocd.argoproj.io/hook: PostDelete\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: run\n        image: busybox:1\n";
    let h = Harness::start(&[("app/cm.yaml", &cm("kept-until-delete", "1"))]).await;
    let first = git(&h.repo, &["rev-parse", "HEAD"]);
    let other = Repo::create(&h, "hooks", &[("hooks/hook.yaml", hook)]);
    let second = git(&other.path, &["rev-parse", "HEAD"]);
    h.apply(application(
        "bye",
        json!([{"repoURL": h.url(), "targetRevision": "main", "path": "app"},
            {"repoURL": other.url(), "targetRevision": "main", "path": "hooks"}]),
        automated(false),
    ))
    .await;
    h.wait_app("bye", "Synced with the PostDelete finalizer", |a| {
        revisions(a, "/status/sync/revisions") == [first.as_str(), second.as_str()]
            && str_at(a, &["status", "sync", "status"]) == "Synced"
            && a.pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| {
                    f.iter()
                        .any(|f| f == "post-delete-finalizer.argocd.argoproj.io")
                })
    })
    .await;
    h.cluster
        .merge_patch(API_VERSION, "Application", "argocd", "bye",
            &json!({"metadata": {"finalizers": ["resources-finalizer.argocd.argoproj.io", "post-delete-finalizer.argocd.argoproj.io"]}}))
        .await
        .expect("finalizers");
    h.cluster
        .delete(
            API_VERSION,
            "Application",
            "argocd",
            "bye",
            plumb_kube::Propagation::Foreground,
        )
        .await
        .expect("delete");
    let mut hook_seen = false;
    for _ in 0..200 {
        if h.cluster
            .get("batch/v1", "Job", "apps", "goodbye")
            .await
            .expect("get")
            .is_some()
        {
            hook_seen = true;
        }
        if h.app("bye").await.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(hook_seen, "the PostDelete hook of the second source ran");
    assert!(h.app("bye").await.is_null(), "the Application is gone");
    assert!(h.configmap("kept-until-delete").await.is_none());
}
