//! plumb-devcluster: an embedded, kubectl-compatible Kubernetes API server
//! with simulated workloads, for development and tests.
//!
//! It owns everything between the HTTP socket and the object store: API
//! discovery, the verbs (get/list/watch/create/update/patch/apply/delete),
//! object semantics (resourceVersion, generation, managedFields, defaulting,
//! validation, kube-apiserver's error wording), garbage collection, namespace
//! lifecycle, CRDs, and controllers that make Deployments, Jobs and friends
//! report real-looking status. It does not run containers.
//!
//! Start at [`DevCluster::start`]. Requests enter in `server.rs`, which routes
//! to `discovery.rs`, `openapi.rs`, `watch.rs` and `handlers/`; object rules
//! live in `objects.rs`, server-side apply in `apply.rs` + `fieldset.rs`,
//! patches in `patch.rs`, storage in `store.rs` (+ `persist.rs`), and the
//! controllers in `controllers.rs`, `gc.rs` and `workloads/`.

mod apply;
mod authz;
mod cluster;
mod controllers;
mod defaults;
mod discovery;
mod errors;
mod field_validation;
mod fieldset;
mod gc;
mod handlers;
mod lifecycle;
mod meta;
mod objects;
mod openapi;
mod patch;
mod persist;
#[cfg(test)]
mod proptests;
mod protobuf;
mod prune;
mod request;
mod resources;
mod schema;
mod selectors;
mod server;
mod store;
mod table;
mod typed;
mod watch;
mod workloads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;

pub use persist::PersistError;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where to persist state; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// How long simulated pods take to become Ready (zero is allowed).
    pub pod_ready_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            pod_ready_delay: Duration::from_secs(1),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load the data directory")]
    Persist(#[from] PersistError),
}

/// A running server. Dropping it stops it too (without waiting); call
/// [`DevCluster::shutdown`] to wait until it has stopped.
pub struct DevCluster {
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Option<(JoinHandle<()>, JoinHandle<()>)>,
}

/// How long shutdown waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

impl DevCluster {
    /// Binds, loads persisted state, and starts serving on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::Bind`] when the address is taken or not allowed, and
    /// [`Error::Persist`] when the data directory cannot be read or written.
    pub async fn start(options: Options) -> Result<DevCluster, Error> {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: options.listen,
            source,
        })?;
        let store = match &options.data_dir {
            Some(dir) => {
                let loaded = persist::load(dir)?;
                store::Store::new(Some(loaded.journal), loaded.objects, loaded.rv)
            }
            None => store::Store::new(None, vec![], 0),
        };
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let cluster = Arc::new(cluster::Cluster::new(
            store,
            options.pod_ready_delay,
            addr,
            stop_rx.clone(),
        ));
        bootstrap(&cluster);
        let controllers = tokio::spawn(controllers::run(cluster.clone()));
        let app = server::router(cluster);
        let mut stop_server = stop_rx;
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_server.wait_for(|s| *s).await;
            };
            if let Err(err) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %err, "devcluster server stopped");
            }
        });
        tracing::info!(%addr, "plumb devcluster listening");
        Ok(DevCluster {
            addr,
            stop,
            tasks: Some((server, controllers)),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig pointing at this server (cluster, context and user all
    /// named `plumb-devcluster`, no authentication).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: plumb-devcluster\n  cluster:\n    server: {}\ncontexts:\n- name: plumb-devcluster\n  context:\n    cluster: plumb-devcluster\n    user: plumb-devcluster\n    namespace: default\ncurrent-context: plumb-devcluster\nusers:\n- name: plumb-devcluster\n  user: {{}}\npreferences: {{}}\n",
            self.url()
        )
    }

    /// Stops serving (open watches end) and waits for the tasks to finish;
    /// connections still open after a few seconds are cut.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some((mut server, controllers)) = self.tasks.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
            let _ = controllers.await;
        }
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Creates the system namespaces and the node, re-registers persisted CRDs,
/// and reserves allocated cluster IPs.
fn bootstrap(cluster: &Arc<cluster::Cluster>) {
    let (crds, _) = cluster
        .store
        .list("customresourcedefinitions.apiextensions.k8s.io", None);
    for crd in crds {
        if let Some(rt) = resources::from_crd(&crd) {
            cluster.registry.insert(rt);
        }
    }
    let (services, _) = cluster.store.list("services", None);
    for s in services {
        if let Some(ip) = s.pointer("/spec/clusterIP").and_then(|v| v.as_str()) {
            cluster.reserve_ip(ip);
        }
    }
    let ctx = objects::WriteCtx::internal("kube-apiserver", "v1");
    for ns in SYSTEM_NAMESPACES {
        if cluster.store.get("namespaces", "", ns).is_some() {
            continue;
        }
        if let Some(rt) = cluster.registry.by_key("namespaces") {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Ok(obj) = objects::prepare_create(cluster, &rt, "", body, &ctx) {
                let _ = objects::commit_create(cluster, &rt, obj, false);
            }
        }
    }
    if cluster
        .store
        .get("nodes", "", workloads::NODE_NAME)
        .is_none()
        && let Some(rt) = cluster.registry.by_key("nodes")
    {
        let body = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": workloads::NODE_NAME, "labels": {"kubernetes.io/hostname": workloads::NODE_NAME, "node-role.kubernetes.io/control-plane": ""}}});
        if let Ok(mut obj) = objects::prepare_create(cluster, &rt, "", body, &ctx) {
            obj["status"] = json!({
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": workloads::NODE_NAME}],
                "nodeInfo": {"kubeletVersion": "v1.31.0", "architecture": "amd64", "operatingSystem": "linux", "containerRuntimeVersion": "simulated://1.0"},
            });
            let _ = objects::commit_create(cluster, &rt, obj, false);
        }
    }
}
