//! The plumb controller: makes a cluster match Git and keeps it so.
//!
//! Start with [`Controller::run`]. It installs the CRDs it serves, watches Argo CD
//! `Application`s in the configured namespaces, and reconciles each one on a work
//! [`queue`]: resolve the source revision, render, compare with the live objects through a
//! server-side apply dry-run ([`reconcile`]), run sync operations ([`operation`]) — automated
//! ones on new revisions and on drift with `selfHeal` — and write status the way Argo CD does.
//! Managed objects are watched ([`drift`]) so a change made by hand is seen at once. Flux
//! `GitRepository` and `Kustomization` objects are served by [`flux`], in every namespace.
//! An Application's objects live in its destination cluster: the in-cluster one, or one named
//! by an Argo CD cluster Secret (module `clusters`); everything else stays on the cluster the
//! controller was given.
//!
//! **Guarantees**: nothing is applied when rendering fails; only objects carrying this
//! application's tracking id are pruned; an empty render never prunes without `allowEmpty`; a
//! sync's progress is written to `status.operationState` before it starts, so a restarted
//! controller resumes it.

mod appset;
pub mod clock;
mod clusters;
pub mod crds;
mod credentials;
mod dependencies;
pub mod diff;
mod fetch;

pub mod drift;
pub mod flux;
pub mod git;
mod health_config;
mod multi_source;
pub mod operation;
mod project;
pub mod queue;
pub mod reconcile;
mod rollback;
pub mod sources;
pub mod status;
mod windows;

use futures::StreamExt;
use plumb_core::key::str_at;
use plumb_kube::{Cluster, WatchEvent};
use queue::{AppId, Queue};
use serde_json::Value;
use sources::{RenderCache, Sources};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Controller settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Namespaces whose Applications are reconciled (Argo CD's `--application-namespaces`).
    pub app_namespaces: Vec<String>,
    /// The control-plane namespace; apps there use their bare name as instance name.
    pub control_namespace: String,
    /// How often sources are polled.
    pub poll_interval: Duration,
    /// Random extra delay up to this much, so polls spread out.
    pub poll_jitter: Duration,
    /// Concurrent reconciles.
    pub workers: usize,
    /// Render limits.
    pub limits: plumb_render::Limits,
    /// The wall clock of retry backoff and sync windows.
    pub clock: clock::Clock,
    /// Flux's multi-tenancy lockdown.
    pub flux_tenancy: flux::Tenancy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            app_namespaces: vec!["argocd".into()],
            control_namespace: "argocd".into(),
            poll_interval: Duration::from_secs(180),
            poll_jitter: Duration::from_secs(60),
            workers: 16,
            limits: plumb_render::Limits::default(),
            clock: clock::Clock::System,
            flux_tenancy: flux::Tenancy::default(),
        }
    }
}

/// A controller failure that stops it (per-application failures are written to status).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CRDs could not be installed.
    #[error("cannot install the custom resource definitions")]
    InstallCrds(#[source] plumb_kube::Error),
    /// Applications cannot be watched.
    #[error("cannot watch applications in namespace {namespace:?}")]
    WatchApplications {
        /// The namespace.
        namespace: String,
        /// The cause.
        #[source]
        source: plumb_kube::Error,
    },
    /// A Flux kind cannot be watched.
    #[error("cannot watch Flux {kind} objects")]
    WatchFlux {
        /// The kind.
        kind: String,
        /// The cause.
        #[source]
        source: plumb_kube::Error,
    },
}

/// (cluster server URL, object) of the compare cache.
pub(crate) type CompareKey = (String, plumb_core::ObjectKey);

/// Shared state of the controller's tasks.
pub(crate) struct Context {
    pub(crate) cluster: Cluster,
    pub(crate) sources: Arc<dyn Sources>,
    pub(crate) renders: RenderCache,
    pub(crate) options: Options,
    pub(crate) queue: Queue,
    pub(crate) drift: drift::DriftWatch,
    apps: RwLock<HashMap<AppId, Value>>,
    /// Per object of a cluster (its server URL): (hash of desired, live resourceVersion) → in
    /// sync. Skips dry-runs when neither side changed.
    pub(crate) compare_cache: Mutex<HashMap<CompareKey, (u64, String, bool)>>,
    last_refresh: Mutex<HashMap<AppId, Instant>>,
    /// AppProjects by name, with when they were read (see [`project`]).
    pub(crate) projects: Mutex<HashMap<String, (Instant, Option<Value>)>>,
    pub(crate) credentials: credentials::CredentialCache,
    /// Argo CD's health customizations (`argocd-cm`), read through a short-lived cache.
    pub(crate) health_config: health_config::HealthConfig,
    /// Destination clusters (Argo CD cluster Secrets) and their clients.
    pub(crate) clusters: clusters::Clusters,
}

impl Context {
    /// Runs `f` over every Application held (under the read lock: keep it short).
    pub(crate) fn with_apps<R>(&self, f: impl FnOnce(&HashMap<AppId, Value>) -> R) -> R {
        match self.apps.read() {
            Ok(apps) => f(&apps),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    pub(crate) fn app(&self, id: &AppId) -> Option<Value> {
        self.apps.read().ok().and_then(|apps| apps.get(id).cloned())
    }

    /// Records an object we just wrote, so the next reconcile does not read a stale copy.
    pub(crate) fn remember(&self, id: &AppId, mut app: Value) {
        // Field ownership of Applications is never read here and is a large part of each one.
        if let Some(metadata) = app.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("managedFields");
        }
        if let Ok(mut apps) = self.apps.write() {
            if let Some(existing) = apps.get(id)
                && resource_version(existing) > resource_version(&app)
            {
                return;
            }
            apps.insert(id.clone(), app);
        }
    }

    /// Whether the application held is exactly this version of it (a non-numeric version is
    /// never taken as known).
    pub(crate) fn knows_version(&self, id: &AppId, app: &Value) -> bool {
        let version = resource_version(app);
        version > 0
            && self
                .apps
                .read()
                .ok()
                .and_then(|apps| apps.get(id).map(resource_version))
                == Some(version)
    }

    /// Whether a full refresh (polling) is due, and marks it done when so.
    pub(crate) fn refresh_due(&self, id: &AppId) -> bool {
        let Ok(mut last) = self.last_refresh.lock() else {
            return true;
        };
        let due = last
            .get(id)
            .is_none_or(|t| t.elapsed() >= self.options.poll_interval);
        if due {
            last.insert(id.clone(), Instant::now());
        }
        due
    }

    /// The next poll delay with jitter.
    pub(crate) fn poll_delay(&self) -> Duration {
        let jitter_ms = self.options.poll_jitter.as_millis() as u64;
        let extra = if jitter_ms == 0 {
            0
        } else {
            rand::random::<u64>() % jitter_ms
        };
        self.options.poll_interval + Duration::from_millis(extra)
    }
}

/// The controller. Cheap to construct; [`Controller::run`] does the work.
pub struct Controller {
    context: Arc<Context>,
}

impl Controller {
    /// A controller for `cluster`, reading sources through `sources`.
    pub fn new(cluster: Cluster, sources: Arc<dyn Sources>, options: Options) -> Controller {
        Controller {
            context: Arc::new(Context {
                cluster,
                sources,
                renders: RenderCache::default(),
                options,
                queue: Queue::default(),
                drift: drift::DriftWatch::default(),
                apps: RwLock::default(),
                compare_cache: Mutex::default(),
                last_refresh: Mutex::default(),
                projects: Mutex::default(),
                credentials: Default::default(),
                health_config: Default::default(),
                clusters: Default::default(),
            }),
        }
    }

    /// Runs until `shutdown` completes.
    ///
    /// **Errors**: only when the CRDs cannot be installed or Applications cannot be watched.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        let context = self.context;
        let installed = crds::install_missing(&context.cluster)
            .await
            .map_err(Error::InstallCrds)?;
        for name in installed {
            tracing::info!(crd = %name, "installed custom resource definition");
        }
        // The control namespace may not exist yet: keep trying until the project is there.
        let default_project = {
            let context = context.clone();
            tokio::spawn(async move {
                let namespace = context.options.control_namespace.clone();
                while !crds::ensure_default_project(&context.cluster, &namespace).await {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            })
        };
        let mut watchers = Vec::new();
        // Flux kinds: every namespace, their own queues and workers.
        watchers.extend(flux::start(context.clone()).await?);
        watchers.push(health_config::watch(context.clone()));
        watchers.push(clusters::watch(context.clone()));
        for namespace in context.options.app_namespaces.clone() {
            let stream = watch_argo_kind(&context, "Application", &namespace).await?;
            let context = context.clone();
            watchers.push(tokio::spawn(async move {
                let mut stream = Box::pin(stream);
                while let Some(event) = stream.next().await {
                    match event {
                        WatchEvent::Applied(app) => {
                            let id = app_id(&app);
                            // The echo of the controller's own write needs no second look.
                            let echo = context.knows_version(&id, &app);
                            context.remember(&id, app);
                            if !echo {
                                context.queue.add(id);
                            }
                        }
                        WatchEvent::Deleted(app) => {
                            let id = app_id(&app);
                            if let Ok(mut apps) = context.apps.write() {
                                apps.remove(&id);
                            }
                            context.queue.forget(&id);
                            context.drift.unregister(&id);
                        }
                        WatchEvent::Synced | WatchEvent::Restarted => {}
                        WatchEvent::Error(error) => {
                            tracing::warn!(%error, "application watch error; retrying")
                        }
                    }
                }
            }));
        }
        // ApplicationSets: one watch per namespace, reconciled one at a time on their own queue.
        let sets: Arc<RwLock<HashMap<AppId, Value>>> = Arc::default();
        let set_queue = Queue::default();
        for namespace in context.options.app_namespaces.clone() {
            let stream = watch_argo_kind(&context, "ApplicationSet", &namespace).await?;
            let (sets, set_queue) = (sets.clone(), set_queue.clone());
            watchers.push(tokio::spawn(async move {
                let mut stream = Box::pin(stream);
                while let Some(event) = stream.next().await {
                    match event {
                        WatchEvent::Applied(set) => {
                            let id = app_id(&set);
                            if let Ok(mut sets) = sets.write() {
                                sets.insert(id.clone(), set);
                            }
                            set_queue.add(id);
                        }
                        WatchEvent::Deleted(set) => {
                            let id = app_id(&set);
                            if let Ok(mut sets) = sets.write() {
                                sets.remove(&id);
                            }
                            set_queue.forget(&id);
                        }
                        WatchEvent::Synced | WatchEvent::Restarted | WatchEvent::Error(_) => {}
                    }
                }
            }));
        }
        let mut workers = Vec::new();
        {
            let context = context.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    let id = set_queue.next().await;
                    let set = sets.read().ok().and_then(|sets| sets.get(&id).cloned());
                    let delay = match set {
                        Some(set) => Some(appset::reconcile(&context, &set).await),
                        None => None,
                    };
                    set_queue.done(&id);
                    if let Some(delay) = delay {
                        set_queue.add_after(id, delay);
                    }
                }
            }));
        }
        for _ in 0..context.options.workers.max(1) {
            let context = context.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    let id = context.queue.next().await;
                    let requeue = reconcile::reconcile(&context, &id).await;
                    context.queue.done(&id);
                    if let Some(delay) = requeue {
                        context.queue.add_after(id, delay);
                    }
                }
            }));
        }
        tracing::info!(namespaces = ?context.options.app_namespaces, "controller running");
        shutdown.await;
        default_project.abort();
        for task in workers.into_iter().chain(watchers) {
            task.abort();
        }
        context.drift.stop();
        Ok(())
    }
}

/// Opens a watch of an Argo CD kind in one namespace.
async fn watch_argo_kind(
    context: &Context,
    kind: &str,
    namespace: &str,
) -> Result<impl futures::Stream<Item = WatchEvent> + Send + 'static, Error> {
    context
        .cluster
        .watch(plumb_core::application::API_VERSION, kind, namespace, None)
        .await
        .map_err(|source| Error::WatchApplications {
            namespace: namespace.to_string(),
            source,
        })
}

/// An object's resourceVersion as a number, for ordering what the watch and the controller's
/// own writes report (0 when it is not numeric, which never wins over a known version).
pub(crate) fn resource_version(object: &Value) -> u64 {
    str_at(object, &["metadata", "resourceVersion"])
        .parse()
        .unwrap_or(0)
}

/// (namespace, name) of an object.
pub(crate) fn app_id(app: &Value) -> AppId {
    (
        str_at(app, &["metadata", "namespace"]).to_string(),
        str_at(app, &["metadata", "name"]).to_string(),
    )
}
