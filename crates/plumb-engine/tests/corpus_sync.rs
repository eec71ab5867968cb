//! argocd-example-apps from `../shared/corpus`, unchanged, on the embedded cluster: `sync-waves`
//! and `pre-post-sync` sync with hooks and waves in the order Argo CD documents (PreSync hooks,
//! then the Sync phase wave by wave, then PostSync hooks; hooks cleaned up by their policy);
//! `guestbook`, `kustomize-guestbook`, `helm-guestbook` and `sock-shop` become Synced and
//! Healthy; the `apps` chart works as an app of apps.

mod common;

use common::{Harness, automated};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::{Value, json};
use std::path::Path;

/// `shared/corpus/argocd-example-apps`: beside the checkout, or /work/shared on this project's
/// machines.
fn corpus_root() -> std::path::PathBuf {
    let beside =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/argocd-example-apps");
    if beside.is_dir() {
        beside
    } else {
        Path::new("/work/shared/corpus/argocd-example-apps").to_path_buf()
    }
}

fn corpus(dirs: &[&str]) -> Vec<(String, String)> {
    let root = corpus_root();
    let mut files = Vec::new();
    for dir in dirs {
        collect(&root.join(dir), dir, &mut files);
    }
    files
}

/// Every text file below `path`, as (`prefix/relative path`, text).
fn collect(path: &Path, prefix: &str, files: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(path).expect("corpus directory").flatten() {
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        if entry.file_type().expect("type").is_dir() {
            collect(&entry.path(), &name, files);
        } else if let Ok(text) = std::fs::read_to_string(entry.path()) {
            files.push((name, text));
        }
    }
}

/// An Application of the local corpus copy, synced automatically into its own namespace.
fn example_app(h: &Harness, name: &str, path: &str, helm: Option<Value>) -> Value {
    let mut source = json!({"repoURL": h.url(), "targetRevision": "main", "path": path});
    if let Some(helm) = helm {
        source["helm"] = helm;
    }
    json!({"apiVersion": API_VERSION, "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"project": "default", "source": source,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true},
                "syncOptions": ["CreateNamespace=true"]}}})
}

fn as_refs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(path, text)| (path.as_str(), text.as_str()))
        .collect()
}

/// Issue 7's acceptance: Argo CD's example applications as their repository has them —
/// a directory, a Kustomize overlay, a Helm chart with `values-production.yaml`, and the
/// 29-object sock-shop — each Synced and Healthy on the embedded cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_example_apps_sync_and_become_healthy() {
    let files = corpus(&[
        "guestbook",
        "kustomize-guestbook",
        "helm-guestbook",
        "sock-shop",
    ]);
    let h = Harness::start(&as_refs(&files)).await;
    h.apply(example_app(&h, "guestbook", "guestbook", None))
        .await;
    h.apply(example_app(
        &h,
        "kustomize-guestbook",
        "kustomize-guestbook",
        None,
    ))
    .await;
    h.apply(example_app(
        &h,
        "helm-guestbook",
        "helm-guestbook",
        Some(json!({"valueFiles": ["values-production.yaml"]})),
    ))
    .await;
    h.apply(example_app(&h, "sock-shop", "sock-shop", None))
        .await;
    for name in [
        "guestbook",
        "kustomize-guestbook",
        "helm-guestbook",
        "sock-shop",
    ] {
        let app = synced_and_healthy(&h, name).await;
        assert!(
            app.pointer("/status/resources")
                .and_then(Value::as_array)
                .is_some_and(|r| !r.is_empty()),
            "{name}: {app}"
        );
    }
    let sock_shop = h.app("sock-shop").await;
    let kinds: Vec<&str> = sock_shop
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(kinds.len() >= 25, "{kinds:?}");
    // values-production.yaml is applied (it sets the Service to a LoadBalancer).
    let service = h
        .cluster
        .get("v1", "Service", "helm-guestbook", "helm-guestbook")
        .await
        .expect("get")
        .expect("the chart's Service");
    assert_eq!(
        str_at(&service, &["spec", "type"]),
        "LoadBalancer",
        "{service}"
    );
    assert!(
        h.cluster
            .get(
                "apps/v1",
                "Deployment",
                "kustomize-guestbook",
                "kustomize-guestbook-ui"
            )
            .await
            .expect("get")
            .is_some(),
        "the overlay's namePrefix"
    );
}

/// Issue 7's acceptance: the `apps` chart as an app of apps, its children's `repoURL` pointed
/// at the local copy through the chart's values (the only change). The parent is Synced and
/// Healthy, the children it renders are reconciled, those plumb can render become Synced and
/// Healthy, and deleting the parent cascades through `resources-finalizer.argocd.argoproj.io`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_app_of_apps_creates_and_deletes_its_children() {
    let files = corpus(&[
        "apps",
        "guestbook",
        "kustomize-guestbook",
        "helm-guestbook",
        "sock-shop",
        "sync-waves",
        "pre-post-sync",
    ]);
    let h = Harness::start(&as_refs(&files)).await;
    let values = json!({"valuesObject": {"config": {"spec": {"source":
        {"repoURL": h.url(), "targetRevision": "main"}}}}});
    let mut parent = example_app(&h, "apps", "apps", Some(values));
    parent["spec"]["destination"]["namespace"] = json!("argocd");
    // Deleting it deletes what it deployed, as with Argo CD, only with this finalizer.
    parent["metadata"]["finalizers"] = json!(["resources-finalizer.argocd.argoproj.io"]);
    h.apply(parent).await;
    let parent = synced_and_healthy(&h, "apps").await;
    let children: Vec<String> = parent
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == "Application")
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        children.len(),
        14,
        "every child the chart renders: {children:?}"
    );
    for child in [
        "example.guestbook",
        "example.kustomize-guestbook",
        "example.helm-guestbook",
        "example.sock-shop",
    ] {
        let app = synced_and_healthy(&h, child).await;
        assert_eq!(str_at(&app, &["spec", "source", "repoURL"]), h.url());
    }
    // Children plumb cannot serve yet (Jsonnet, config-management plugins, a chart
    // dependency from the network) say so in a condition instead of failing silently.
    let jsonnet = h
        .wait_app("example.jsonnet-guestbook", "a condition", |a| {
            a.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty())
        })
        .await;
    assert!(jsonnet.to_string().contains("ComparisonError"), "{jsonnet}");

    // Deleting the parent deletes its children and, through their finalizers, their objects.
    h.cluster
        .delete(
            API_VERSION,
            "Application",
            "argocd",
            "apps",
            plumb_kube::Propagation::Background,
        )
        .await
        .expect("delete");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let child = h
            .cluster
            .get(API_VERSION, "Application", "argocd", "example.guestbook")
            .await
            .expect("get");
        let deployment = h
            .cluster
            .get("apps/v1", "Deployment", "guestbook", "guestbook-ui")
            .await
            .expect("get");
        if child.is_none() && deployment.is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cascade did not finish: child {child:?}, deployment {deployment:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn results(app: &Value) -> Vec<Value> {
    app.pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

async fn synced_and_healthy(h: &Harness, name: &str) -> Value {
    h.wait_app(name, "Synced, Healthy and the operation Succeeded", |a| {
        str_at(a, &["status", "sync", "status"]) == "Synced"
            && str_at(a, &["status", "health", "status"]) == "Healthy"
            && str_at(a, &["status", "operationState", "phase"]) == "Succeeded"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_waves_run_presync_then_waves_in_order() {
    let files = corpus(&["sync-waves"]);
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let h = Harness::start(&files).await;
    h.create_app("sync-waves", "sync-waves", automated(false))
        .await;
    let app = synced_and_healthy(&h, "sync-waves").await;
    // Results are recorded in the order the objects were applied.
    let order: Vec<(String, String, String)> = results(&app)
        .iter()
        .map(|r| {
            (
                str_at(r, &["syncPhase"]).to_string(),
                str_at(r, &["kind"]).to_string(),
                str_at(r, &["name"]).to_string(),
            )
        })
        .collect();
    let position = |kind: &str, name: &str| {
        order
            .iter()
            .position(|(_, k, n)| k == kind && n.starts_with(name))
            .unwrap_or_else(|| panic!("{kind} {name} not in {order:?}"))
    };
    let pre = position("Job", "upgrade-sql-schema");
    let backend = position("ReplicaSet", "backend");
    let page_up = position("Job", "maint-page-up");
    let frontend = position("ReplicaSet", "frontend");
    let page_down = position("Job", "maint-page-down");
    assert!(
        pre < backend && backend < page_up && page_up < frontend && frontend < page_down,
        "{order:?}"
    );
    assert_eq!(order[pre].0, "PreSync");
    for result in results(&app) {
        assert_ne!(str_at(&result, &["status"]), "SyncFailed", "{result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_post_sync_hooks_run_around_the_sync_and_are_deleted_when_they_succeed() {
    let files = corpus(&["pre-post-sync", "kustomize-guestbook"]);
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let h = Harness::start(&files).await;
    h.create_app("pre-post-sync", "pre-post-sync", automated(false))
        .await;
    let app = synced_and_healthy(&h, "pre-post-sync").await;
    let order: Vec<(String, String)> = results(&app)
        .iter()
        .map(|r| {
            (
                str_at(r, &["syncPhase"]).to_string(),
                str_at(r, &["name"]).to_string(),
            )
        })
        .collect();
    let phase_rank = |phase: &str| match phase {
        "PreSync" => 0,
        "Sync" => 1,
        "PostSync" => 2,
        _ => 3,
    };
    let ranks: Vec<i32> = order.iter().map(|(p, _)| phase_rank(p)).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    assert!(
        order.contains(&("PreSync".into(), "pre-post-sync-before".into())),
        "{order:?}"
    );
    assert!(
        order.contains(&("PostSync".into(), "pre-post-sync-after".into())),
        "{order:?}"
    );
    assert!(
        order.contains(&("Sync".into(), "pre-post-sync-kustomize-guestbook-ui".into())),
        "{order:?}"
    );
    // HookSucceeded: both hook Jobs are gone once they succeeded.
    for job in ["pre-post-sync-before", "pre-post-sync-after"] {
        let mut gone = false;
        for _ in 0..100 {
            let live = h
                .cluster
                .get("batch/v1", "Job", "apps", job)
                .await
                .expect("get job");
            if live.is_none_or(|j| j.pointer("/metadata/deletionTimestamp").is_some()) {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(gone, "hook {job} deleted after it succeeded");
    }
}

/// Issue 7's acceptance: an ApplicationSet with a git directory generator over the corpus
/// creates one Application per directory, owned by the set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_directory_generator_makes_one_application_per_corpus_directory() {
    let root = corpus_root();
    let mut directories: Vec<String> = std::fs::read_dir(&root)
        .expect("corpus")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    directories.sort();
    let dirs: Vec<&str> = directories.iter().map(String::as_str).collect();
    let files = corpus(&dirs);
    let h = Harness::start(&as_refs(&files)).await;
    h.apply(json!({"apiVersion": API_VERSION, "kind": "ApplicationSet",
        "metadata": {"name": "examples", "namespace": "argocd"},
        "spec": {
            "generators": [{"git": {"repoURL": h.url(), "revision": "main",
                "directories": [{"path": "*"}]}}],
            "template": {
                "metadata": {"name": "{{path.basename}}"},
                "spec": {"project": "default",
                    "source": {"repoURL": h.url(), "targetRevision": "main", "path": "{{path}}"},
                    "destination": {"server": "https://kubernetes.default.svc",
                        "namespace": "{{path.basename}}"}}}}}))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let apps = h
            .cluster
            .list(API_VERSION, "Application", "argocd")
            .await
            .expect("list");
        let mut made: Vec<(String, String)> = apps
            .iter()
            .map(|a| {
                (
                    str_at(a, &["metadata", "name"]).to_string(),
                    str_at(a, &["spec", "source", "path"]).to_string(),
                )
            })
            .collect();
        made.sort();
        let owned = apps
            .iter()
            .filter(|a| {
                a.pointer("/metadata/ownerReferences/0/kind")
                    .and_then(Value::as_str)
                    == Some("ApplicationSet")
            })
            .count();
        let expected: Vec<(String, String)> =
            directories.iter().map(|d| (d.clone(), d.clone())).collect();
        if made == expected && owned == directories.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected one Application per directory {directories:?}, got {made:?} ({owned} owned)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
