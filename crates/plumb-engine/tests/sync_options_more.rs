//! Sync options with Argo CD's meaning: Prune=false, Prune=confirm, Delete=false,
//! Delete=confirm (per object and per application, the object's setting winning),
//! ApplyOutOfSyncOnly, PrunePropagationPolicy, PruneLast, FailOnSharedResource,
//! CreateNamespace, ServerSideApply and Validate=false.

mod common;

use common::{Harness, cm, initiator};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use plumb_core::sync_options::DELETION_APPROVED_ANNOTATION;
use serde_json::{Value, json};

fn cm_with(name: &str, value: &str, options: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n    argocd.argoproj.io/sync-options: {options}\ndata:\n  value: \"{value}\"\n"
    )
}

/// Creates an application with manual syncs and the given application-level sync options.
async fn create_app(h: &Harness, name: &str, path: &str, options: &[&str], finalizer: bool) {
    let mut metadata = json!({"name": name, "namespace": "argocd"});
    if finalizer {
        metadata["finalizers"] = json!(["resources-finalizer.argocd.argoproj.io"]);
    }
    h.apply(
        json!({"apiVersion": API_VERSION, "kind": "Application", "metadata": metadata,
        "spec": {"project": "default",
            "source": {"repoURL": h.url(), "targetRevision": "main", "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "syncPolicy": {"syncOptions": options}}}),
    )
    .await;
}

/// Requests a manual sync with prune; returns who asked.
async fn request_sync(h: &Harness, name: &str) -> String {
    h.request_operation(name, json!({"sync": {"revision": "main", "prune": true}}))
        .await
}

async fn sync(h: &Harness, name: &str) -> Value {
    h.run_operation(name, json!({"sync": {"revision": "main", "prune": true}}))
        .await
}

async fn approve(h: &Harness, name: &str) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    h.cluster
        .merge_patch(
            API_VERSION,
            "Application",
            "argocd",
            name,
            &json!({"metadata": {"annotations": {DELETION_APPROVED_ANNOTATION: now}}}),
        )
        .await
        .expect("approve");
}

fn phase(app: &Value) -> &str {
    str_at(app, &["status", "operationState", "phase"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_false_keeps_and_prune_confirm_waits_for_approval() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("a", "1")),
        ("app/gone.yaml", &cm("gone", "1")),
        ("app/keep.yaml", &cm_with("keep", "1", "Prune=false")),
        (
            "app/careful.yaml",
            &cm_with("careful", "1", "Prune=confirm"),
        ),
    ])
    .await;
    create_app(&h, "web", "app", &[], false).await;
    let app = sync(&h, "web").await;
    assert_eq!(phase(&app), "Succeeded", "{app}");
    h.commit(
        &[
            ("app/gone.yaml", ""),
            ("app/keep.yaml", ""),
            ("app/careful.yaml", ""),
        ],
        "remove three",
    );
    h.refresh("web").await;
    h.wait_app("web", "OutOfSync", |app| {
        str_at(app, &["status", "sync", "status"]) == "OutOfSync"
    })
    .await;

    // Nothing is pruned while one prune waits for a person.
    let user = request_sync(&h, "web").await;
    let app = h
        .wait_app("web", "the prune confirmation wait", |app| {
            initiator(app) == user
                && str_at(app, &["status", "operationState", "message"]).starts_with("Waiting for")
        })
        .await;
    assert_eq!(phase(&app), "Running");
    assert_eq!(
        str_at(&app, &["status", "operationState", "message"]),
        "Waiting for pruning confirmation of v1/ConfigMap/careful"
    );
    assert!(h.configmap("gone").await.is_some());
    assert!(h.configmap("careful").await.is_some());

    approve(&h, "web").await;
    let app = h
        .wait_app("web", "the sync to finish once approved", |app| {
            phase(app) == "Succeeded" && app.get("operation").is_none_or(Value::is_null)
        })
        .await;
    assert!(h.configmap("gone").await.is_none());
    assert!(h.configmap("careful").await.is_none());
    assert!(h.configmap("keep").await.is_some(), "Prune=false is kept");
    let keep = app
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .and_then(|r| r.iter().find(|r| str_at(r, &["name"]) == "keep"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(keep["requiresPruning"], json!(true), "{app}");
    assert_eq!(str_at(&app, &["status", "sync", "status"]), "OutOfSync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_prune_false_yields_to_an_objects_prune_true() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("a", "1")),
        ("app/b.yaml", &cm("b", "1")),
        ("app/c.yaml", &cm_with("c", "1", "Prune=true")),
    ])
    .await;
    create_app(&h, "web", "app", &["Prune=false"], false).await;
    assert_eq!(phase(&sync(&h, "web").await), "Succeeded");
    h.commit(&[("app/b.yaml", ""), ("app/c.yaml", "")], "remove two");
    h.refresh("web").await;
    h.wait_app("web", "OutOfSync", |app| {
        str_at(app, &["status", "sync", "status"]) == "OutOfSync"
    })
    .await;
    let app = sync(&h, "web").await;
    assert_eq!(phase(&app), "Succeeded", "{app}");
    assert!(
        h.configmap("b").await.is_some(),
        "the application says Prune=false"
    );
    assert!(
        h.configmap("c").await.is_none(),
        "the object says Prune=true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_application_keeps_delete_false_and_waits_for_delete_confirm() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("a", "1")),
        ("app/kept.yaml", &cm_with("kept", "1", "Delete=false")),
        (
            "app/careful.yaml",
            &cm_with("careful", "1", "Delete=confirm"),
        ),
    ])
    .await;
    create_app(&h, "web", "app", &[], true).await;
    assert_eq!(phase(&sync(&h, "web").await), "Succeeded");
    h.cluster
        .delete(
            API_VERSION,
            "Application",
            "argocd",
            "web",
            plumb_kube::Propagation::Background,
        )
        .await
        .expect("delete app");
    let app = h
        .wait_app("web", "the deletion confirmation wait", |app| {
            app.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| str_at(c, &["type"]) == "DeletionError"))
        })
        .await;
    assert!(
        app.to_string()
            .contains("Waiting for deletion confirmation of v1/ConfigMap/careful"),
        "{app}"
    );
    assert!(h.configmap("a").await.is_none());
    assert!(h.configmap("careful").await.is_some());

    approve(&h, "web").await;
    h.wait_app("web", "the application to be gone", Value::is_null)
        .await;
    assert!(h.configmap("careful").await.is_none());
    assert!(h.configmap("kept").await.is_some(), "Delete=false is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_delete_false_keeps_everything() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    create_app(&h, "web", "app", &["Delete=false"], true).await;
    assert_eq!(phase(&sync(&h, "web").await), "Succeeded");
    h.cluster
        .delete(
            API_VERSION,
            "Application",
            "argocd",
            "web",
            plumb_kube::Propagation::Background,
        )
        .await
        .expect("delete app");
    h.wait_app("web", "the application to be gone", Value::is_null)
        .await;
    assert!(h.configmap("a").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_out_of_sync_only_leaves_synced_objects_untouched() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1")), ("app/b.yaml", &cm("b", "1"))]).await;
    create_app(&h, "web", "app", &["ApplyOutOfSyncOnly=true"], false).await;
    assert_eq!(phase(&sync(&h, "web").await), "Succeeded");
    let version = |cm: Option<Value>| {
        str_at(&cm.expect("exists"), &["metadata", "resourceVersion"]).to_string()
    };
    let a = version(h.configmap("a").await);
    let b = version(h.configmap("b").await);
    h.commit(&[("app/b.yaml", &cm("b", "2"))], "change b");
    h.refresh("web").await;
    h.wait_app("web", "OutOfSync", |app| {
        str_at(app, &["status", "sync", "status"]) == "OutOfSync"
    })
    .await;
    let app = sync(&h, "web").await;
    assert_eq!(phase(&app), "Succeeded");
    assert_eq!(
        version(h.configmap("a").await),
        a,
        "a was in sync: not applied"
    );
    assert_ne!(version(h.configmap("b").await), b);
    let results = app
        .pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let message_of = |name: &str| {
        results
            .iter()
            .find(|r| str_at(r, &["name"]) == name)
            .map(|r| str_at(r, &["message"]).to_string())
            .unwrap_or_default()
    };
    assert_eq!(message_of("a"), "unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_propagation_orphan_leaves_dependents_and_prune_last_goes_last() {
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n";
    let h = Harness::start(&[
        ("app/a.yaml", &cm("a", "1")),
        ("app/deploy.yaml", deployment),
        ("app/last.yaml", &cm_with("last", "1", "PruneLast=true")),
        ("app/early.yaml", &cm("early", "1")),
    ])
    .await;
    create_app(&h, "web", "app", &["PrunePropagationPolicy=orphan"], false).await;
    assert_eq!(phase(&sync(&h, "web").await), "Succeeded");
    let replicasets = |h: &Harness| {
        let cluster = h.cluster.clone();
        async move {
            cluster
                .list("apps/v1", "ReplicaSet", "apps")
                .await
                .expect("list")
        }
    };
    h.wait_app("web", "Healthy", |app| {
        str_at(app, &["status", "health", "status"]) == "Healthy"
    })
    .await;
    assert_eq!(replicasets(&h).await.len(), 1);
    h.commit(
        &[
            ("app/deploy.yaml", ""),
            ("app/last.yaml", ""),
            ("app/early.yaml", ""),
        ],
        "remove",
    );
    h.refresh("web").await;
    h.wait_app("web", "OutOfSync", |app| {
        str_at(app, &["status", "sync", "status"]) == "OutOfSync"
    })
    .await;
    let app = sync(&h, "web").await;
    assert_eq!(phase(&app), "Succeeded", "{app}");
    assert!(
        h.cluster
            .get("apps/v1", "Deployment", "apps", "web")
            .await
            .expect("get")
            .is_none()
    );
    let left = replicasets(&h).await;
    assert_eq!(left.len(), 1, "orphaned, not deleted");
    assert!(
        left[0]
            .pointer("/metadata/ownerReferences")
            .is_none_or(|o| { o.as_array().is_none_or(Vec::is_empty) })
    );
    let pruned: Vec<String> = app
        .pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| str_at(r, &["status"]) == "Pruned")
        .map(|r| str_at(r, &["name"]).to_string())
        .collect();
    assert_eq!(
        pruned.last().map(String::as_str),
        Some("last"),
        "{pruned:?}"
    );
    assert_eq!(pruned.len(), 3, "{pruned:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_shared_resource_refuses_an_object_of_another_application() {
    let h = Harness::start(&[
        ("one/shared.yaml", &cm("shared", "1")),
        ("two/shared.yaml", &cm("shared", "1")),
        ("two/own.yaml", &cm("own", "1")),
    ])
    .await;
    create_app(&h, "one", "one", &[], false).await;
    assert_eq!(phase(&sync(&h, "one").await), "Succeeded");
    create_app(&h, "two", "two", &["FailOnSharedResource=true"], false).await;
    h.wait_app("two", "a first comparison", |app| {
        !str_at(app, &["status", "sync", "status"]).is_empty()
    })
    .await;
    let app = sync(&h, "two").await;
    assert_eq!(phase(&app), "Failed", "{app}");
    let message = str_at(&app, &["status", "operationState", "message"]);
    assert!(
        message.contains("shared")
            && message.contains("one")
            && message.contains("FailOnSharedResource"),
        "{message}"
    );
    assert!(h.configmap("own").await.is_none(), "nothing applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_namespace_and_server_side_apply() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    h.apply(json!({"apiVersion": API_VERSION, "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd"},
        "spec": {"project": "default",
            "source": {"repoURL": h.url(), "targetRevision": "main", "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "fresh"},
            "syncPolicy": {"syncOptions": ["CreateNamespace=true", "ServerSideApply=true"]}}}))
        .await;
    h.wait_app("web", "a first comparison", |app| {
        !str_at(app, &["status", "sync", "status"]).is_empty()
    })
    .await;
    let app = sync(&h, "web").await;
    assert_eq!(phase(&app), "Succeeded", "{app}");
    assert!(
        h.cluster
            .get("v1", "Namespace", "", "fresh")
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        h.cluster
            .get("v1", "ConfigMap", "fresh", "a")
            .await
            .expect("get")
            .is_some()
    );
    let app = h.app("web").await;
    let conditions = app
        .pointer("/status/conditions")
        .cloned()
        .unwrap_or_default();
    assert!(
        !conditions.to_string().contains("ServerSideApply"),
        "ServerSideApply=true is understood: {conditions}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeclared_field_is_named_and_nothing_is_applied() {
    // Server-side apply refuses fields the schema does not declare, Validate=false or not
    // (kube-apiserver cannot build a typed patch from them).
    let loose = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: loose\n  annotations:\n    argocd.argoproj.io/sync-options: Validate=false\nsurprise: 1\ndata:\n  value: \"1\"\n";
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1")), ("app/loose.yaml", loose)]).await;
    create_app(&h, "web", "app", &[], false).await;
    h.wait_app("web", "a first comparison", |app| {
        !str_at(app, &["status", "sync", "status"]).is_empty()
    })
    .await;
    let app = sync(&h, "web").await;
    assert_eq!(phase(&app), "Failed", "{app}");
    let message = str_at(&app, &["status", "operationState", "message"]);
    assert!(
        message.contains("loose") && message.contains(".surprise"),
        "{message}"
    );
    assert!(h.configmap("a").await.is_none(), "nothing applied");
}
