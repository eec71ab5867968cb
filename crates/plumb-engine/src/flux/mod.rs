//! Flux kinds: `source.toolkit.fluxcd.io/v1` `GitRepository`, `HelmRepository` and `OCIRepository` ([`oci_repository`]),
//! `kustomize.toolkit.fluxcd.io/v1` `Kustomization` and `helm.toolkit.fluxcd.io/v2`
//! `HelmRelease` ([`helm_repository`], [`helm_release`]), read as Flux users write them and with
//! status written where Flux's tools look (`Ready` condition, `status.artifact`,
//! `status.lastAppliedRevision`, `status.inventory`).
//!
//! Both kinds are watched in every namespace and reconciled on their own work queues:
//! [`git_repository`] resolves the reference through the engine's shared [`Sources`]
//! (one fetch per repository serves Flux and Argo CD alike) and records the commit as the
//! artifact revision (`main@sha1:<sha>`); [`kustomization`] builds the path of that commit
//! with Flux's semantics (`plumb_render::flux`), substitutes variables ([`substitute`]),
//! applies with server-side apply, waits for health when asked ([`apply`]) and prunes what
//! left its [`inventory`].
//!
//! A reconcile happens when the spec changes (`generation`), when
//! `reconcile.fluxcd.io/requestedAt` changes, every `spec.interval`, when a Kustomization's
//! source records a new revision, and when one of its dependencies becomes ready.
//!
//! [`Sources`]: crate::sources::Sources

pub mod apply;
pub(crate) mod artifact;
pub mod conditions;
pub mod git_repository;
pub mod helm_drift;
pub mod helm_hooks;
pub mod helm_release;
pub mod helm_repository;
pub mod helm_rollback;
pub mod helm_spec;
pub mod helm_storage;
pub mod inventory;
pub mod kustomization;
pub mod kustomization_spec;
pub mod oci_repository;
pub mod post_build;
pub(crate) mod remote;
pub mod substitute;

use crate::Context;
use crate::queue::{AppId, Queue};
use futures::StreamExt;
use plumb_core::key::str_at;
use plumb_kube::WatchEvent;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// API version of `GitRepository`.
pub const SOURCE_API_VERSION: &str = "source.toolkit.fluxcd.io/v1";
/// API version of `Kustomization`.
pub const KUSTOMIZE_API_VERSION: &str = "kustomize.toolkit.fluxcd.io/v1";
/// API version of `HelmRelease`.
pub const HELM_API_VERSION: &str = "helm.toolkit.fluxcd.io/v2";
/// Changing this annotation's value asks for a reconcile now.
pub const REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";
/// Label naming the Kustomization that applied an object.
pub const NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
/// Label naming the namespace of the Kustomization that applied an object.
pub const NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
/// `disabled` on an object keeps it from being pruned.
pub const PRUNE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/prune";
/// `IfNotPresent`, `Ignore` (or `Override`, `Merge`) on an object changes how it is applied.
pub const SSA_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/ssa";
/// `disabled` on an object skips variable substitution for it.
pub const SUBSTITUTE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// How long workers wait for the initial lists of both kinds.
const INITIAL_LIST_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Flux's multi-tenancy lockdown, as its controllers' `--no-cross-namespace-refs` and
/// `--default-service-account` flags set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tenancy {
    /// Whether a Kustomization or HelmRelease may use a source of another namespace.
    pub cross_namespace_refs: CrossNamespaceRefs,
    /// The service account impersonated by Kustomizations and HelmReleases that name none
    /// (and no `kubeConfig`), so nothing is applied with the controller's own rights.
    pub default_service_account: Option<String>,
}

/// Whether references to objects of other namespaces are followed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CrossNamespaceRefs {
    /// Followed (Flux's default).
    #[default]
    Allowed,
    /// Refused with `AccessDenied`.
    Denied,
}

impl Tenancy {
    /// `Err` with Flux's message when `kind` `namespace/name`, referenced from an object
    /// of `own_namespace`, is out of bounds.
    pub fn check_reference(
        &self,
        own_namespace: &str,
        (kind, namespace, name): (&str, &str, &str),
    ) -> Result<(), String> {
        if self.cross_namespace_refs == CrossNamespaceRefs::Denied && namespace != own_namespace {
            return Err(format!(
                "can't access '{kind}/{namespace}/{name}', cross-namespace references have been blocked"
            ));
        }
        Ok(())
    }
}

/// Which Flux kind a queue serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FluxKind {
    GitRepository,
    Kustomization,
    HelmRepository,
    HelmRelease,
    OciRepository,
}

impl FluxKind {
    /// Every kind, in the order their watches start.
    const ALL: [FluxKind; 5] = [
        FluxKind::GitRepository,
        FluxKind::OciRepository,
        FluxKind::Kustomization,
        FluxKind::HelmRepository,
        FluxKind::HelmRelease,
    ];
}

impl FluxKind {
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            FluxKind::GitRepository | FluxKind::HelmRepository | FluxKind::OciRepository => {
                SOURCE_API_VERSION
            }
            FluxKind::Kustomization => KUSTOMIZE_API_VERSION,
            FluxKind::HelmRelease => HELM_API_VERSION,
        }
    }

    pub(crate) fn kind(self) -> &'static str {
        match self {
            FluxKind::GitRepository => "GitRepository",
            FluxKind::Kustomization => "Kustomization",
            FluxKind::HelmRepository => "HelmRepository",
            FluxKind::HelmRelease => "HelmRelease",
            FluxKind::OciRepository => "OCIRepository",
        }
    }
}

/// The Flux side of the controller: the objects last seen and their queues.
pub(crate) struct Flux {
    pub(crate) context: Arc<Context>,
    repositories: RwLock<HashMap<AppId, Value>>,
    kustomizations: RwLock<HashMap<AppId, Value>>,
    helm_repositories: RwLock<HashMap<AppId, Value>>,
    helm_releases: RwLock<HashMap<AppId, Value>>,
    oci_repositories: RwLock<HashMap<AppId, Value>>,
    pub(crate) repository_queue: Queue,
    pub(crate) kustomization_queue: Queue,
    helm_repository_queue: Queue,
    helm_release_queue: Queue,
    oci_repository_queue: Queue,
    /// Clusters named by `spec.kubeConfig`.
    remote_clusters: remote::RemoteClusters,
}

impl Flux {
    fn objects(&self, kind: FluxKind) -> &RwLock<HashMap<AppId, Value>> {
        match kind {
            FluxKind::GitRepository => &self.repositories,
            FluxKind::Kustomization => &self.kustomizations,
            FluxKind::HelmRepository => &self.helm_repositories,
            FluxKind::HelmRelease => &self.helm_releases,
            FluxKind::OciRepository => &self.oci_repositories,
        }
    }

    fn queue(&self, kind: FluxKind) -> &Queue {
        match kind {
            FluxKind::GitRepository => &self.repository_queue,
            FluxKind::Kustomization => &self.kustomization_queue,
            FluxKind::HelmRepository => &self.helm_repository_queue,
            FluxKind::HelmRelease => &self.helm_release_queue,
            FluxKind::OciRepository => &self.oci_repository_queue,
        }
    }

    /// The last seen copy of an object.
    pub(crate) fn get(&self, kind: FluxKind, id: &AppId) -> Option<Value> {
        self.objects(kind)
            .read()
            .ok()
            .and_then(|objects| objects.get(id).cloned())
    }

    /// Forgets a deleted object.
    fn forget(&self, kind: FluxKind, id: &AppId) {
        if let Ok(mut objects) = self.objects(kind).write() {
            objects.remove(id);
        }
        self.queue(kind).forget(id);
        match kind {
            FluxKind::Kustomization => self.enqueue_dependents_of(id),
            FluxKind::HelmRelease => self.enqueue_release_dependents_of(id),
            _ => {}
        }
    }

    /// HelmRelease → the HelmReleases it depends on, for every one last seen.
    pub(crate) fn release_dependency_graph(&self) -> std::collections::BTreeMap<AppId, Vec<AppId>> {
        self.helm_releases
            .read()
            .map(|objects| {
                objects
                    .iter()
                    .map(|(id, object)| (id.clone(), helm_spec::depends_on(object, &id.0)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The ids of the HelmReleases for which `matches(object, id)` holds.
    fn releases_where(&self, matches: impl Fn(&Value, &AppId) -> bool) -> Vec<AppId> {
        self.ids_where(FluxKind::HelmRelease, matches)
    }

    /// The ids of the objects of `kind` for which `matches(object, id)` holds (read under the
    /// lock, nothing cloned but the ids).
    fn ids_where(&self, kind: FluxKind, matches: impl Fn(&Value, &AppId) -> bool) -> Vec<AppId> {
        self.objects(kind)
            .read()
            .map(|objects| {
                objects
                    .iter()
                    .filter(|(id, object)| matches(object, id))
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Enqueues the GitRepositories that include the GitRepository `included`.
    fn enqueue_includers_of(&self, included: &AppId) {
        for id in self.ids_where(FluxKind::GitRepository, |object, id| {
            id.0 == included.0
                && object
                    .pointer("/spec/include")
                    .and_then(Value::as_array)
                    .is_some_and(|entries| {
                        entries
                            .iter()
                            .any(|e| str_at(e, &["repository", "name"]) == included.1)
                    })
        }) {
            self.repository_queue.add(id);
        }
    }

    /// Enqueues the HelmReleases that depend on `dependency`.
    fn enqueue_release_dependents_of(&self, dependency: &AppId) {
        for id in self
            .releases_where(|object, id| helm_spec::depends_on(object, &id.0).contains(dependency))
        {
            self.helm_release_queue.add(id);
        }
    }

    /// Enqueues the HelmReleases whose chart comes from the HelmRepository `repository`.
    fn enqueue_chart_users_of(&self, repository: &AppId) {
        for id in self.releases_where(|object, id| {
            helm_spec::repository_of(object, &id.0).as_ref() == Some(repository)
        }) {
            self.helm_release_queue.add(id);
        }
    }

    /// Kustomization → the Kustomizations it depends on, for every one last seen.
    pub(crate) fn dependency_graph(&self) -> std::collections::BTreeMap<AppId, Vec<AppId>> {
        self.kustomizations
            .read()
            .map(|objects| {
                objects
                    .iter()
                    .map(|(id, object)| (id.clone(), kustomization_spec::depends_on(object, &id.0)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stores `object` unless a newer copy is known; returns the copy it replaced.
    fn remember(&self, kind: FluxKind, object: Value) -> Option<Value> {
        let id = crate::app_id(&object);
        let mut objects = self.objects(kind).write().ok()?;
        let version = |v: &Value| {
            str_at(v, &["metadata", "resourceVersion"])
                .parse::<u64>()
                .unwrap_or(0)
        };
        if let Some(existing) = objects.get(&id)
            && version(existing) > version(&object)
        {
            return Some(existing.clone());
        }
        objects.insert(id, object)
    }

    /// Writes `status` as the object's new status (a merge patch of the difference, to the
    /// status subresource) and remembers the result.
    pub(crate) async fn write_status(&self, kind: FluxKind, object: &Value, status: Value) {
        let id = crate::app_id(object);
        // Diff against the latest copy: a reconcile may have written a progress status since
        // `object` was read.
        let current = self.get(kind, &id).unwrap_or_else(|| object.clone());
        let previous = current.get("status").cloned().unwrap_or(Value::Null);
        let patch = crate::reconcile::merge_diff(&previous, &status);
        if patch.as_object().is_some_and(|m| m.is_empty()) {
            return;
        }
        match self
            .context
            .cluster
            .merge_patch_status(
                kind.api_version(),
                kind.kind(),
                &id.0,
                &id.1,
                &json!({"status": patch}),
            )
            .await
        {
            Ok(updated) => {
                let previous = self.remember(kind, updated.clone());
                self.notify_change(kind, previous.as_ref(), &updated);
                self.record_transition(kind, object, &updated).await;
            }
            Err(error) => {
                tracing::warn!(kind = kind.kind(), namespace = %id.0, name = %id.1,
                    error = %crate::sources::error_chain(&error), "cannot write status");
            }
        }
    }

    /// Records a Kubernetes Event when the `Ready` condition changes status or reason, or a
    /// new revision is applied (Flux's tools show these); reconciles that change nothing
    /// record nothing.
    async fn record_transition(&self, kind: FluxKind, before: &Value, after: &Value) {
        let ready = |o: &Value| {
            o.pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == conditions::READY))
                .map(|c| {
                    (
                        str_at(c, &["status"]).to_string(),
                        str_at(c, &["reason"]).to_string(),
                        str_at(c, &["message"]).to_string(),
                    )
                })
                .unwrap_or_default()
        };
        let revision = |o: &Value| {
            let applied = str_at(o, &["status", "lastAppliedRevision"]);
            if applied.is_empty() {
                str_at(o, &["status", "artifact", "revision"]).to_string()
            } else {
                applied.to_string()
            }
        };
        let (old, new) = (ready(before), ready(after));
        if (old.0 == new.0 && old.1 == new.1 && revision(before) == revision(after))
            || new.0.is_empty()
            || new.0 == "Unknown"
        {
            return;
        }
        let event_type = if new.0 == "False" {
            "Warning"
        } else {
            "Normal"
        };
        self.record_event(kind, after, event_type, &new.1, &new.2)
            .await;
    }

    /// Records a Kubernetes Event about `object` (and logs it).
    pub(crate) async fn record_event(
        &self,
        kind: FluxKind,
        object: &Value,
        event_type: &str,
        reason: &str,
        message: &str,
    ) {
        let (namespace, name) = crate::app_id(object);
        let time = crate::status::now();
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": format!("{name}."), "namespace": namespace},
            "involvedObject": {"apiVersion": kind.api_version(), "kind": kind.kind(),
                "name": name, "namespace": namespace, "uid": str_at(object, &["metadata", "uid"])},
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": "plumb-controller"},
            "reportingComponent": "plumb-controller",
            "firstTimestamp": time,
            "lastTimestamp": time,
            "count": 1,
        });
        if let Err(error) = self.context.cluster.create(&event).await {
            tracing::debug!(error = %crate::sources::error_chain(&error), "cannot record event");
        }
        tracing::info!(kind = kind.kind(), %namespace, %name, %reason, "{message}");
    }

    /// The ids of the Kustomizations for which `matches(object, id)` holds.
    fn kustomizations_where(&self, matches: impl Fn(&Value, &AppId) -> bool) -> Vec<AppId> {
        self.ids_where(FluxKind::Kustomization, matches)
    }

    /// Enqueues the Kustomizations whose source is the GitRepository `repository`.
    pub(crate) fn enqueue_users_of(&self, repository: &AppId) {
        self.enqueue_kustomizations_of("GitRepository", repository);
    }

    /// Enqueues the Kustomizations whose source is the `kind` `repository`.
    fn enqueue_kustomizations_of(&self, kind: &str, repository: &AppId) {
        let users = self.kustomizations_where(|object, id| {
            let source = kustomization_spec::source_ref(object, &id.0);
            source.kind == kind && source.namespace == repository.0 && source.name == repository.1
        });
        for id in users {
            self.kustomization_queue.add(id);
        }
    }

    /// Enqueues the HelmReleases whose `chartRef` is the OCIRepository `repository`.
    fn enqueue_chart_ref_users_of(&self, repository: &AppId) {
        for id in self.releases_where(|object, id| {
            helm_spec::chart_ref_of(object, &id.0)
                .is_some_and(|(kind, source)| kind == "OCIRepository" && source == *repository)
        }) {
            self.helm_release_queue.add(id);
        }
    }

    /// Enqueues the Kustomizations that depend on `dependency`.
    fn enqueue_dependents_of(&self, dependency: &AppId) {
        let dependents = self.kustomizations_where(|object, id| {
            kustomization_spec::depends_on(object, &id.0).contains(dependency)
        });
        for id in dependents {
            self.kustomization_queue.add(id);
        }
    }
}

/// The status fields every Flux kind writes: `observedGeneration`, and
/// `lastHandledReconcileAt` (the request being handled, or the last one).
pub(crate) fn reconcile_fields(object: &Value, previous: &Value) -> serde_json::Map<String, Value> {
    let mut status = serde_json::Map::new();
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    status.insert("observedGeneration".into(), json!(generation));
    let requested = str_at(
        object,
        &["metadata", "annotations", REQUESTED_AT_ANNOTATION],
    );
    let handled = if requested.is_empty() {
        str_at(previous, &["lastHandledReconcileAt"])
    } else {
        requested
    };
    if !handled.is_empty() {
        status.insert("lastHandledReconcileAt".into(), json!(handled));
    }
    status
}

/// Whether the object asks for a reconcile: a spec not yet observed, or a reconcile requested
/// and not yet handled.
pub(crate) fn wants_reconcile(object: &Value) -> bool {
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let observed = object
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    let requested = str_at(
        object,
        &["metadata", "annotations", REQUESTED_AT_ANNOTATION],
    );
    let handled = str_at(object, &["status", "lastHandledReconcileAt"]);
    generation != observed || (!requested.is_empty() && requested != handled)
}

/// Whether the object's `Ready` condition is `True` for its current generation.
pub(crate) fn is_ready(object: &Value) -> bool {
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let observed = object
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    generation == observed && conditions::status_of(object, "Ready") == Some("True")
}

/// Starts the watches and workers of both kinds; returns their tasks.
///
/// **Errors**: when a kind cannot be watched (its CRD is not served).
pub(crate) async fn start(
    context: Arc<Context>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, crate::Error> {
    let flux = Arc::new(Flux {
        context: context.clone(),
        repositories: RwLock::default(),
        kustomizations: RwLock::default(),
        helm_repositories: RwLock::default(),
        helm_releases: RwLock::default(),
        oci_repositories: RwLock::default(),
        repository_queue: Queue::default(),
        kustomization_queue: Queue::default(),
        helm_repository_queue: Queue::default(),
        helm_release_queue: Queue::default(),
        oci_repository_queue: Queue::default(),
        remote_clusters: remote::RemoteClusters::default(),
    });
    let mut tasks = Vec::new();
    // Workers start once both initial lists are in, so a Kustomization is never judged
    // against a half-loaded set of sources and dependencies (bounded wait).
    let (listed, lists_done) = tokio::sync::watch::channel(0usize);
    let listed = Arc::new(listed);
    for kind in FluxKind::ALL {
        let listed = listed.clone();
        let stream = context
            .cluster
            .watch(kind.api_version(), kind.kind(), "", None)
            .await
            .map_err(|source| crate::Error::WatchFlux {
                kind: kind.kind().to_string(),
                source,
            })?;
        let flux = flux.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = Box::pin(stream);
            let mut first_list = true;
            // Ids seen since a (re)list began; what the list does not show again is gone.
            let mut relist: Option<std::collections::HashSet<AppId>> = None;
            while let Some(event) = stream.next().await {
                match event {
                    WatchEvent::Applied(object) => {
                        if let Some(seen) = relist.as_mut() {
                            seen.insert(crate::app_id(&object));
                        }
                        observe(&flux, kind, object);
                    }
                    WatchEvent::Deleted(object) => flux.forget(kind, &crate::app_id(&object)),
                    WatchEvent::Restarted => relist = Some(Default::default()),
                    WatchEvent::Synced => {
                        if let Some(seen) = relist.take() {
                            let gone: Vec<AppId> = flux
                                .objects(kind)
                                .read()
                                .map(|o| {
                                    o.keys().filter(|id| !seen.contains(*id)).cloned().collect()
                                })
                                .unwrap_or_default();
                            for id in gone {
                                flux.forget(kind, &id);
                            }
                        }
                        if std::mem::take(&mut first_list) {
                            listed.send_modify(|count| *count += 1);
                        }
                    }
                    WatchEvent::Error(error) => {
                        tracing::warn!(kind = kind.kind(), %error, "watch error; retrying")
                    }
                }
            }
        }));
    }
    let workers = (context.options.workers / 2).max(1);
    for kind in FluxKind::ALL {
        for _ in 0..workers {
            let flux = flux.clone();
            let mut lists_done = lists_done.clone();
            tasks.push(tokio::spawn(async move {
                let loaded = lists_done.wait_for(|count| *count >= FluxKind::ALL.len());
                if tokio::time::timeout(INITIAL_LIST_WAIT, loaded)
                    .await
                    .is_err()
                {
                    tracing::warn!("Flux objects not fully listed yet; reconciling anyway");
                }
                loop {
                    let id = flux.queue(kind).next().await;
                    let requeue = match kind {
                        FluxKind::GitRepository => git_repository::reconcile(&flux, &id).await,
                        FluxKind::Kustomization => kustomization::reconcile(&flux, &id).await,
                        FluxKind::HelmRepository => helm_repository::reconcile(&flux, &id).await,
                        FluxKind::HelmRelease => helm_release::reconcile(&flux, &id).await,
                        FluxKind::OciRepository => oci_repository::reconcile(&flux, &id).await,
                    };
                    flux.queue(kind).done(&id);
                    if let Some(delay) = requeue {
                        flux.queue(kind).add_after(id, delay);
                    }
                }
            }));
        }
    }
    Ok(tasks)
}

/// Handles a watch event of an existing object.
fn observe(flux: &Flux, kind: FluxKind, object: Value) {
    let id = crate::app_id(&object);
    let deleting = object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let wants = wants_reconcile(&object) || deleting;
    let previous = flux.remember(kind, object.clone());
    if previous.is_none() || wants {
        flux.queue(kind).add(id.clone());
    }
    flux.notify_change(kind, previous.as_ref(), &object);
}

impl Flux {
    /// Wakes what depends on an object that changed from `previous` to `object`: users of a
    /// source with a new artifact, dependents of a Kustomization that became ready or applied
    /// a new revision.
    fn notify_change(&self, kind: FluxKind, previous: Option<&Value>, object: &Value) {
        let id = crate::app_id(object);
        match kind {
            FluxKind::GitRepository => {
                let revision =
                    |o: &Value| str_at(o, &["status", "artifact", "revision"]).to_string();
                // New ignore rules or included artifacts are a new artifact of the same
                // revision.
                let ignore = |o: &Value| str_at(o, &["spec", "ignore"]).to_string();
                let included = |o: &Value| {
                    o.pointer("/status/includedArtifacts")
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                let revision_changed = previous.map(revision) != Some(revision(object));
                if revision_changed
                    || previous.map(ignore) != Some(ignore(object))
                    || previous.map(included) != Some(included(object))
                {
                    self.enqueue_users_of(&id);
                }
                if revision_changed {
                    self.enqueue_includers_of(&id);
                }
            }
            FluxKind::Kustomization => {
                let became_ready = is_ready(object) && !previous.is_some_and(is_ready);
                let applied = |o: &Value| str_at(o, &["status", "lastAppliedRevision"]).to_string();
                let new_revision = previous.map(applied) != Some(applied(object));
                if became_ready || new_revision {
                    self.enqueue_dependents_of(&id);
                }
            }
            FluxKind::HelmRepository => {
                let revision =
                    |o: &Value| str_at(o, &["status", "artifact", "revision"]).to_string();
                let became_ready = is_ready(object) && !previous.is_some_and(is_ready);
                if became_ready || previous.map(revision) != Some(revision(object)) {
                    self.enqueue_chart_users_of(&id);
                }
            }
            FluxKind::HelmRelease => {
                if is_ready(object) && !previous.is_some_and(is_ready) {
                    self.enqueue_release_dependents_of(&id);
                }
            }
            FluxKind::OciRepository => {
                let revision =
                    |o: &Value| str_at(o, &["status", "artifact", "revision"]).to_string();
                let became_ready = is_ready(object) && !previous.is_some_and(is_ready);
                if became_ready || previous.map(revision) != Some(revision(object)) {
                    self.enqueue_kustomizations_of("OCIRepository", &id);
                    self.enqueue_chart_ref_users_of(&id);
                }
            }
        }
    }
}
