//! kube-rs, the client plumb uses against real clusters, against the embedded cluster:
//! discovery (legacy and aggregated), server-side apply with conflicts, and watchers in both
//! list-then-watch and streaming-list modes.

use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::Discovery;
use kube::runtime::watcher;
use plumb_kube::{ApplyOptions, Cluster, DryRun};
use serde_json::json;
use std::time::Duration;

async fn start() -> (plumb_devcluster::DevCluster, Cluster, tempfile::TempDir) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let devcluster = plumb_devcluster::DevCluster::start(plumb_devcluster::Options::default())
        .await
        .expect("start");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, devcluster.kubeconfig()).expect("kubeconfig");
    let cluster = Cluster::from_kubeconfig(&path, None).await.expect("client");
    (devcluster, cluster, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_legacy_and_aggregated() {
    let (_devcluster, cluster, _dir) = start().await;
    let legacy = Discovery::new(cluster.client().clone())
        .run()
        .await
        .expect("legacy discovery");
    let aggregated = Discovery::new(cluster.client().clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    for discovery in [&legacy, &aggregated] {
        let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
        assert!(
            groups.contains(&"apps".to_string()) && groups.contains(&String::new()),
            "{groups:?}"
        );
    }
    let deployment = cluster
        .kind("apps/v1", "Deployment")
        .await
        .expect("deployments served");
    assert!(deployment.namespaced);
    assert!(
        !cluster
            .kind("v1", "Namespace")
            .await
            .expect("namespaces served")
            .namespaced
    );
    assert!(matches!(
        cluster.kind("example.com/v1", "Widget").await,
        Err(plumb_kube::Error::UnknownKind { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_and_dry_run() {
    let (_devcluster, cluster, _dir) = start().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": {"k": "plumb"}});
    let dry = cluster
        .apply(
            &cm,
            &ApplyOptions {
                dry_run: DryRun::Server,
                force: false,
            },
        )
        .await
        .expect("dry run");
    assert_eq!(dry["data"]["k"], "plumb");
    assert!(
        cluster
            .get("v1", "ConfigMap", "default", "c")
            .await
            .expect("get")
            .is_none(),
        "dry run persists nothing"
    );
    cluster
        .apply(
            &cm,
            &ApplyOptions {
                dry_run: DryRun::None,
                force: false,
            },
        )
        .await
        .expect("apply");
    let api: Api<DynamicObject> = Api::namespaced_with(
        cluster.client().clone(),
        "default",
        &cluster
            .kind("v1", "ConfigMap")
            .await
            .expect("kind")
            .resource,
    );
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "other"}});
    let conflict = api
        .patch(
            "c",
            &PatchParams::apply("someone-else"),
            &Patch::Apply(&other),
        )
        .await
        .expect_err("conflict");
    assert!(
        matches!(conflict, kube::Error::Api(ref status) if status.code == 409),
        "{conflict:?}"
    );
    api.patch(
        "c",
        &PatchParams::apply("someone-else").force(),
        &Patch::Apply(&other),
    )
    .await
    .expect("forced");
    let live = cluster
        .get("v1", "ConfigMap", "default", "c")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(live["data"]["k"], "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_changes_in_both_list_modes() {
    let (_devcluster, cluster, _dir) = start().await;
    let resource = cluster
        .kind("v1", "ConfigMap")
        .await
        .expect("kind")
        .resource;
    for streaming in [false, true] {
        let api: Api<DynamicObject> =
            Api::namespaced_with(cluster.client().clone(), "default", &resource);
        let mut config = watcher::Config::default().labels("watched=yes");
        if streaming {
            config = config.streaming_lists();
        }
        let mut stream = Box::pin(watcher(api, config));
        let name = format!("w-{streaming}");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": {"watched": "yes"}}});
        let seen = async {
            let mut created = false;
            while let Some(event) = stream.next().await {
                match event.expect("watch event") {
                    watcher::Event::InitDone if !created => {
                        cluster
                            .apply(&cm, &ApplyOptions::default())
                            .await
                            .expect("apply");
                        created = true;
                    }
                    watcher::Event::Apply(object)
                        if object.metadata.name.as_deref() == Some(name.as_str()) =>
                    {
                        return true;
                    }
                    _ => {}
                }
            }
            false
        };
        assert!(
            tokio::time::timeout(Duration::from_secs(10), seen)
                .await
                .expect("in time"),
            "streaming={streaming}"
        );
    }
}
