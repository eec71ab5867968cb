//! Argo CD cluster Secrets as destinations: one controller, two clusters. The harness's
//! devcluster is the control cluster (and the in-cluster destination); a second in-process
//! devcluster is a remote cluster named by a Secret.

mod common;

use base64::Engine as _;
use common::{Harness, automated, cm};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use plumb_kube::{Cluster, ClusterConfig};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Remote {
    devcluster: plumb_devcluster::DevCluster,
    cluster: Cluster,
    url: String,
}

async fn remote() -> Remote {
    let devcluster = plumb_devcluster::DevCluster::start(plumb_devcluster::Options {
        pod_ready_delay: Duration::from_millis(100),
        ..Default::default()
    })
    .await
    .expect("second devcluster starts");
    let url = devcluster.url();
    let cluster = Cluster::from_config(&ClusterConfig {
        server: url.clone(),
        ..Default::default()
    })
    .await
    .expect("client");
    Remote {
        devcluster,
        cluster,
        url,
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A cluster Secret in `argocd` (as `data`, the way the API server stores it).
fn cluster_secret(secret: &str, name: &str, server: &str, config: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret, "namespace": "argocd",
            "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
        "type": "Opaque",
        "data": {"name": b64(name), "server": b64(server), "config": b64(config)}})
}

fn app(h: &Harness, name: &str, destination: Value, sync_policy: Value) -> Value {
    json!({
        "apiVersion": API_VERSION, "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"project": "default",
            "source": {"repoURL": h.url(), "targetRevision": "main", "path": "app"},
            "destination": destination,
            "syncPolicy": sync_policy}
    })
}

fn with_create_namespace(mut policy: Value) -> Value {
    policy["syncOptions"] = json!(["CreateNamespace=true"]);
    policy
}

async fn get(cluster: &Cluster, kind: &str, name: &str) -> Option<Value> {
    let api_version = if kind == "Deployment" {
        "apps/v1"
    } else {
        "v1"
    };
    cluster
        .get(api_version, kind, "apps", name)
        .await
        .expect("get")
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn edit(cluster: &Cluster, name: &str, value: &str) {
    cluster
        .merge_patch(
            "v1",
            "ConfigMap",
            "apps",
            name,
            &json!({"data": {"value": value}}),
        )
        .await
        .expect("edit by hand");
}

fn deployment() -> String {
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: main\n        image: nginx:1.27\n".to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_named_after_a_cluster_secret_syncs_heals_prunes_and_deletes_there() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("a", "1")),
        ("app/b.yaml", &cm("b", "1")),
        ("app/web.yaml", &deployment()),
    ])
    .await;
    let two = remote().await;
    h.apply(cluster_secret(
        "cluster-two",
        "two",
        &two.url,
        r#"{"bearerToken": "token-of-two", "tlsClientConfig": {"insecure": false}}"#,
    ))
    .await;
    let mut application = app(
        &h,
        "remote",
        json!({"name": "two", "namespace": "apps"}),
        with_create_namespace(automated(true)),
    );
    application["metadata"]["finalizers"] = json!(["resources-finalizer.argocd.argoproj.io"]);
    h.apply(application).await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    let synced = h.wait_synced("remote", &revision).await;
    // Everything went to cluster two (its namespace too), nothing to the control cluster.
    assert!(get(&two.cluster, "ConfigMap", "a").await.is_some());
    assert!(get(&two.cluster, "Deployment", "web").await.is_some());
    assert!(h.configmap("a").await.is_none());
    assert!(
        h.cluster
            .get("apps/v1", "Deployment", "apps", "web")
            .await
            .expect("get")
            .is_none()
    );
    // Health comes from cluster two's workload status.
    let web = synced
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .and_then(|r| r.iter().find(|r| str_at(r, &["kind"]) == "Deployment"))
        .cloned()
        .expect("deployment listed");
    assert_eq!(str_at(&web, &["health", "status"]), "Healthy");
    assert_eq!(
        str_at(
            &synced,
            &["status", "sync", "comparedTo", "destination", "name"]
        ),
        "two"
    );

    // Drift in cluster two is reverted (selfHeal).
    edit(&two.cluster, "a", "changed by hand").await;
    wait_for("the edit in cluster two to be reverted", async || {
        get(&two.cluster, "ConfigMap", "a")
            .await
            .is_some_and(|cm| str_at(&cm, &["data", "value"]) == "1")
    })
    .await;

    // Pruning happens in cluster two.
    let revision = h.commit(&[("app/b.yaml", "")], "drop b");
    h.refresh("remote").await;
    h.wait_synced("remote", &revision).await;
    wait_for("b to be pruned from cluster two", async || {
        get(&two.cluster, "ConfigMap", "b").await.is_none()
    })
    .await;
    assert!(get(&two.cluster, "ConfigMap", "a").await.is_some());

    // Deleting the application deletes its objects in cluster two.
    h.cluster
        .delete(
            API_VERSION,
            "Application",
            "argocd",
            "remote",
            plumb_kube::Propagation::Foreground,
        )
        .await
        .expect("delete");
    wait_for("the application and its objects to be gone", async || {
        get(&two.cluster, "ConfigMap", "a").await.is_none()
            && get(&two.cluster, "Deployment", "web").await.is_none()
            && h.app("remote").await.is_null()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_objects_in_two_clusters_do_not_mix() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    let two = remote().await;
    // By server this time; the Secret's server has a trailing slash.
    h.apply(cluster_secret(
        "cluster-two",
        "two",
        &format!("{}/", two.url),
        "{}",
    ))
    .await;
    h.apply(app(
        &h,
        "local",
        json!({"server": "https://kubernetes.default.svc", "namespace": "apps"}),
        automated(false),
    ))
    .await;
    let mut remote_app = app(
        &h,
        "remote",
        json!({"server": two.url, "namespace": "apps"}),
        with_create_namespace(automated(false)),
    );
    remote_app["metadata"]["finalizers"] = json!(["resources-finalizer.argocd.argoproj.io"]);
    h.apply(remote_app).await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("local", &revision).await;
    h.wait_synced("remote", &revision).await;
    let local = h.configmap("a").await.expect("in cluster one");
    let remote = get(&two.cluster, "ConfigMap", "a")
        .await
        .expect("in cluster two");
    assert_eq!(
        str_at(
            &local,
            &["metadata", "labels", plumb_core::tracking::INSTANCE_LABEL]
        ),
        "local"
    );
    assert_eq!(
        str_at(
            &remote,
            &["metadata", "labels", plumb_core::tracking::INSTANCE_LABEL]
        ),
        "remote"
    );

    // A change in cluster two puts only the remote application out of sync.
    edit(&two.cluster, "a", "drifted").await;
    h.wait_app("remote", "OutOfSync", |app| {
        str_at(app, &["status", "sync", "status"]) == "OutOfSync"
    })
    .await;
    h.refresh("local").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        str_at(&h.app("local").await, &["status", "sync", "status"]),
        "Synced"
    );

    // Deleting the remote application leaves cluster one's object alone.
    h.cluster
        .delete(
            API_VERSION,
            "Application",
            "argocd",
            "remote",
            plumb_kube::Propagation::Foreground,
        )
        .await
        .expect("delete");
    wait_for("cluster two's object to be deleted", async || {
        get(&two.cluster, "ConfigMap", "a").await.is_none()
    })
    .await;
    assert!(h.configmap("a").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_secret_added_after_the_application_makes_it_sync() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    let two = remote().await;
    h.apply(app(
        &h,
        "late",
        json!({"name": "later", "namespace": "apps"}),
        with_create_namespace(automated(false)),
    ))
    .await;
    let message = h.condition("late", "InvalidSpecError").await;
    assert!(
        message.contains("spec.destination.name")
            && message.contains("there are no clusters with this name: later"),
        "{message}"
    );
    assert!(h.configmap("a").await.is_none());
    h.apply(cluster_secret("later", "later", &two.url, "{}"))
        .await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    let app = h.wait_synced("late", &revision).await;
    assert!(app.pointer("/status/conditions").is_none(), "{app}");
    assert!(get(&two.cluster, "ConfigMap", "a").await.is_some());
    assert!(h.configmap("a").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_destinations_are_clear_conditions_and_nothing_is_applied() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    h.apply(cluster_secret(
        "down",
        "down",
        &format!("http://127.0.0.1:{closed}"),
        "{}",
    ))
    .await;
    h.apply(cluster_secret(
        "broken",
        "broken",
        "https://broken.example.invalid",
        r#"{"bearerToken": "s3cret-token", "tlsClientConfig": {"insecure": tru"#,
    ))
    .await;
    h.apply(cluster_secret(
        "eks",
        "eks",
        "https://eks.example.invalid",
        r#"{"execProviderConfig": {"command": "argocd-k8s-auth", "args": ["aws"]}}"#,
    ))
    .await;
    let cases = [
        (
            "unknown",
            json!({"name": "nowhere", "namespace": "apps"}),
            "InvalidSpecError",
            "there are no clusters with this name: nowhere",
        ),
        (
            "both",
            json!({"name": "down", "server": "https://kubernetes.default.svc", "namespace": "apps"}),
            "InvalidSpecError",
            "can't have both name and server defined",
        ),
        (
            "unknown-server",
            json!({"server": "https://elsewhere.example.invalid", "namespace": "apps"}),
            "InvalidSpecError",
            "cluster \"https://elsewhere.example.invalid\" is not configured",
        ),
        (
            "unreachable",
            json!({"name": "down", "namespace": "apps"}),
            "ComparisonError",
            "cluster down (http://127.0.0.1:",
        ),
        (
            "malformed",
            json!({"name": "broken", "namespace": "apps"}),
            "ComparisonError",
            "cluster Secret argocd/broken: config: not valid JSON",
        ),
        (
            "exec",
            json!({"name": "eks", "namespace": "apps"}),
            "ComparisonError",
            "cluster Secret argocd/eks: config.execProviderConfig: exec credential providers are not supported yet",
        ),
    ];
    for (name, destination, _, _) in &cases {
        h.apply(app(&h, name, destination.clone(), automated(true)))
            .await;
    }
    for (name, _, kind, expected) in &cases {
        let message = h.condition(name, kind).await;
        assert!(message.contains(expected), "{name}: {message}");
        assert!(!message.contains("s3cret-token"), "{name}: {message}");
    }
    let unreachable = h.condition("unreachable", "ComparisonError").await;
    assert!(unreachable.contains("unreachable"), "{unreachable}");
    // Nothing was applied anywhere reachable, and the in-cluster apps still work meanwhile.
    assert!(h.configmap("a").await.is_none());
    h.apply(app(
        &h,
        "fine",
        json!({"name": "in-cluster", "namespace": "apps"}),
        automated(false),
    ))
    .await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("fine", &revision).await;
    assert!(h.configmap("a").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clusters_generator_deploys_to_the_cluster_of_each_secret() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    let two = remote().await;
    let mut secret = cluster_secret("cluster-two", "two", &two.url, "{}");
    secret["metadata"]["labels"]["env"] = json!("staging");
    h.apply(secret).await;
    h.apply(json!({
        "apiVersion": API_VERSION, "kind": "ApplicationSet",
        "metadata": {"name": "fleet", "namespace": "argocd"},
        "spec": {
            "generators": [{"clusters": {"selector": {"matchLabels": {"env": "staging"}}}}],
            "template": {
                "metadata": {"name": "web-{{name}}"},
                "spec": {"project": "default",
                    "source": {"repoURL": h.url(), "targetRevision": "main", "path": "app"},
                    "destination": {"server": "{{server}}", "namespace": "apps"},
                    "syncPolicy": {"automated": {"prune": true},
                        "syncOptions": ["CreateNamespace=true"]}}
            }
        }
    }))
    .await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("web-two", &revision).await;
    assert!(get(&two.cluster, "ConfigMap", "a").await.is_some());
    assert!(h.configmap("a").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_checks_the_resolved_cluster_name_and_server() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    let two = remote().await;
    h.apply(cluster_secret("cluster-two", "two", &two.url, "{}"))
        .await;
    // Destinations by cluster name only: an application naming the cluster by server is
    // still matched by the name its Secret gives.
    h.apply(json!({"apiVersion": API_VERSION, "kind": "AppProject",
        "metadata": {"name": "team", "namespace": "argocd"},
        "spec": {"sourceRepos": ["*"],
            "destinations": [{"name": "two", "namespace": "apps"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}}))
        .await;
    let mut by_server = app(
        &h,
        "by-server",
        json!({"server": two.url, "namespace": "apps"}),
        with_create_namespace(automated(false)),
    );
    by_server["spec"]["project"] = json!("team");
    h.apply(by_server).await;
    let mut elsewhere = app(
        &h,
        "elsewhere",
        json!({"name": "in-cluster", "namespace": "apps"}),
        automated(false),
    );
    elsewhere["spec"]["project"] = json!("team");
    h.apply(elsewhere).await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("by-server", &revision).await;
    let refused = h.condition("elsewhere", "InvalidSpecError").await;
    assert!(
        refused.contains("do not match any of the allowed destinations"),
        "{refused}"
    );
    assert!(h.configmap("a").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_goes_down_is_named_its_last_state_kept_and_others_go_on() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    let two = remote().await;
    h.apply(cluster_secret("cluster-two", "two", &two.url, "{}"))
        .await;
    h.apply(app(
        &h,
        "remote",
        json!({"name": "two", "namespace": "apps"}),
        with_create_namespace(automated(false)),
    ))
    .await;
    h.apply(app(
        &h,
        "local",
        json!({"name": "in-cluster", "namespace": "apps"}),
        automated(false),
    ))
    .await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("remote", &revision).await;
    h.wait_synced("local", &revision).await;
    let Remote {
        devcluster, url, ..
    } = two;
    devcluster.shutdown().await;

    let expected = format!("cluster two ({url}) is unreachable");
    let went_down = Instant::now();
    let deadline = went_down + Duration::from_secs(30);
    let down = loop {
        h.refresh("remote").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let app = h.app("remote").await;
        let reported = app
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == "ComparisonError"))
            .is_some_and(|c| str_at(c, &["message"]).contains(&expected));
        if reported {
            break app;
        }
        assert!(Instant::now() < deadline, "no unreachable condition: {app}");
    };
    eprintln!(
        "the cluster being down was reported after {:?}",
        went_down.elapsed()
    );
    // The last known resources stay listed.
    assert!(
        down.pointer("/status/resources")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty()),
        "{down}"
    );

    // The in-cluster application is not held up by the cluster that is down.
    let started = Instant::now();
    let revision = h.commit(&[("app/a.yaml", &cm("a", "2"))], "change a");
    h.refresh("local").await;
    h.refresh("remote").await;
    h.wait_synced("local", &revision).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(
        h.configmap("a")
            .await
            .map(|cm| str_at(&cm, &["data", "value"]).to_string())
            .as_deref(),
        Some("2"),
        "the in-cluster application synced the new revision"
    );
    eprintln!("in-cluster sync while another cluster is down took {took:?}");
}

fn job(name: &str, hook: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  annotations:\n    argocd.argoproj.io/hook: {hook}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: run\n        image: busybox:1\n"
    )
}

async fn request_sync(h: &Harness, sync: Value) {
    h.cluster
        .merge_patch(
            API_VERSION,
            "Application",
            "argocd",
            "web",
            &json!({"operation": {"sync": sync, "initiatedBy": {"username": "test"}}}),
        )
        .await
        .expect("request the operation");
}

async fn operation_succeeded(h: &Harness) -> Value {
    h.wait_app("web", "the operation to succeed", |a| {
        a.get("operation").is_none_or(Value::is_null)
            && str_at(a, &["status", "operationState", "phase"]) == "Succeeded"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selective_syncs_hooks_and_post_delete_hooks_run_in_the_destination_cluster() {
    let h = Harness::start(&[
        ("app/a.yaml", &cm("a", "1")),
        ("app/b.yaml", &cm("b", "1")),
        ("app/before.yaml", &job("before", "PreSync")),
        ("app/goodbye.yaml", &job("goodbye", "PostDelete")),
    ])
    .await;
    let two = remote().await;
    h.apply(cluster_secret("cluster-two", "two", &two.url, "{}"))
        .await;
    let mut web = app(
        &h,
        "web",
        json!({"name": "two", "namespace": "apps"}),
        json!({"syncOptions": ["CreateNamespace=true"]}),
    );
    web["metadata"]["finalizers"] = json!([
        "resources-finalizer.argocd.argoproj.io",
        "post-delete-finalizer.argocd.argoproj.io"
    ]);
    h.apply(web).await;
    h.wait_app("web", "OutOfSync", |a| {
        str_at(a, &["status", "sync", "status"]) == "OutOfSync"
    })
    .await;

    // A selective sync: only `a`, only in cluster two, no hooks.
    request_sync(
        &h,
        json!({"resources": [{"group": "", "kind": "ConfigMap", "name": "a"}]}),
    )
    .await;
    operation_succeeded(&h).await;
    assert!(get(&two.cluster, "ConfigMap", "a").await.is_some());
    assert!(get(&two.cluster, "ConfigMap", "b").await.is_none());
    assert!(
        two.cluster
            .get("batch/v1", "Job", "apps", "before")
            .await
            .expect("get")
            .is_none()
    );

    // A full sync runs the PreSync hook there.
    request_sync(&h, json!({})).await;
    let app = operation_succeeded(&h).await;
    assert_eq!(str_at(&app, &["status", "sync", "status"]), "Synced");
    assert!(get(&two.cluster, "ConfigMap", "b").await.is_some());
    assert!(
        two.cluster
            .get("batch/v1", "Job", "apps", "before")
            .await
            .expect("get")
            .is_some()
    );
    for kind in ["ConfigMap", "Job"] {
        let api_version = if kind == "Job" { "batch/v1" } else { "v1" };
        assert!(
            h.cluster
                .list(api_version, kind, "apps")
                .await
                .expect("list")
                .is_empty(),
            "nothing of kind {kind} in the control cluster"
        );
    }

    // Deleting: the objects go, then the PostDelete hook runs in cluster two.
    h.cluster
        .delete(
            API_VERSION,
            "Application",
            "argocd",
            "web",
            plumb_kube::Propagation::Foreground,
        )
        .await
        .expect("delete");
    let mut hook_seen = false;
    wait_for("the application to be gone", async || {
        if two
            .cluster
            .get("batch/v1", "Job", "apps", "goodbye")
            .await
            .expect("get")
            .is_some()
        {
            hook_seen = true;
            assert!(get(&two.cluster, "ConfigMap", "a").await.is_none());
        }
        h.app("web").await.is_null()
    })
    .await;
    assert!(hook_seen, "the PostDelete hook ran in cluster two");
    assert!(
        h.cluster
            .get("batch/v1", "Job", "apps", "goodbye")
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_whose_cluster_secret_is_gone_is_released_on_deletion() {
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1"))]).await;
    let two = remote().await;
    h.apply(cluster_secret("cluster-two", "two", &two.url, "{}"))
        .await;
    let mut remote_app = app(
        &h,
        "remote",
        json!({"name": "two", "namespace": "apps"}),
        with_create_namespace(automated(false)),
    );
    remote_app["metadata"]["finalizers"] = json!(["resources-finalizer.argocd.argoproj.io"]);
    h.apply(remote_app).await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("remote", &revision).await;

    // The Secret goes: the application says its cluster is unknown (the watch tells at once).
    h.cluster
        .delete(
            "v1",
            "Secret",
            "argocd",
            "cluster-two",
            plumb_kube::Propagation::Background,
        )
        .await
        .expect("delete the Secret");
    let message = h.condition("remote", "InvalidSpecError").await;
    assert!(
        message.contains("there are no clusters with this name: two"),
        "{message}"
    );
    // Deleting the application releases it; nothing could be deleted in the unknown cluster.
    h.cluster
        .delete(
            API_VERSION,
            "Application",
            "argocd",
            "remote",
            plumb_kube::Propagation::Foreground,
        )
        .await
        .expect("delete");
    wait_for("the application to be released", async || {
        h.app("remote").await.is_null()
    })
    .await;
    assert!(get(&two.cluster, "ConfigMap", "a").await.is_some());
    let events = h
        .cluster
        .list("v1", "Event", "argocd")
        .await
        .expect("events");
    assert!(
        events
            .iter()
            .any(|e| str_at(e, &["reason"]) == "DeletionWithoutCluster"),
        "a warning event says why"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_limited_to_namespaces_manages_and_watches_only_those() {
    let elsewhere = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n  namespace: elsewhere\ndata:\n  value: \"1\"\n";
    let h = Harness::start(&[("app/a.yaml", &cm("a", "1")), ("app/stray.yaml", elsewhere)]).await;
    let two = remote().await;
    for namespace in ["apps", "elsewhere"] {
        two.cluster
            .apply(
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
                &plumb_kube::ApplyOptions {
                    dry_run: plumb_kube::DryRun::None,
                    force: true,
                },
            )
            .await
            .expect("namespace");
    }
    let mut secret = cluster_secret("cluster-two", "two", &two.url, "{}");
    secret["data"]["namespaces"] = json!(b64("apps"));
    h.apply(secret).await;
    h.apply(app(
        &h,
        "limited",
        json!({"name": "two", "namespace": "apps"}),
        automated(true),
    ))
    .await;
    let message = h.condition("limited", "ComparisonError").await;
    assert!(
        message.contains("namespace elsewhere is not managed in cluster two"),
        "{message}"
    );
    assert!(
        get(&two.cluster, "ConfigMap", "a").await.is_none(),
        "nothing applied"
    );

    let revision = h.commit(&[("app/stray.yaml", "")], "keep to apps");
    h.refresh("limited").await;
    h.wait_synced("limited", &revision).await;
    assert!(get(&two.cluster, "ConfigMap", "a").await.is_some());
    // Drift in the managed namespace is seen (a watch of that namespace) and reverted.
    edit(&two.cluster, "a", "changed by hand").await;
    wait_for("the edit to be reverted", async || {
        get(&two.cluster, "ConfigMap", "a")
            .await
            .is_some_and(|cm| str_at(&cm, &["data", "value"]) == "1")
    })
    .await;
}
