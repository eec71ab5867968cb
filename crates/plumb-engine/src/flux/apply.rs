//! Applying a Kustomization's objects, pruning what left its inventory, and waiting for
//! health — the Flux way, through [`Cluster`].
//!
//! **Guarantees**: every object is validated with a server-side dry-run before anything is
//! applied, so a refused object means nothing was applied (objects whose kind or namespace
//! comes with the same Kustomization are checked when applied); CRDs and Namespaces go first;
//! an object managed by an Argo CD Application (its tracking annotation names one) is left
//! alone and reported; prune deletes only objects of the previous inventory that still carry
//! this Kustomization's labels and do not say `kustomize.toolkit.fluxcd.io/prune: disabled`.

use super::inventory::Entry;
use super::post_build::describe;
use super::{NAME_LABEL, NAMESPACE_LABEL, PRUNE_ANNOTATION, SSA_ANNOTATION};
use crate::sources::error_chain;
use plumb_core::health::{self, HealthStatus};
use plumb_core::key::{ObjectKey, group_of, str_at};
use plumb_core::manifest::Manifest;
use plumb_customhealth::HealthCheckExprs;
use plumb_kube::{ApplyOptions, Cluster, DryRun, Propagation};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

/// Options of [`apply_all`].
#[derive(Debug, Clone, Default)]
pub struct ApplySettings {
    /// `spec.force`: recreate objects whose immutable fields changed.
    pub force: bool,
    /// The namespace of namespaced objects that name none (`default` when unset).
    pub default_namespace: Option<String>,
}

/// Whose objects a prune may delete: those carrying both labels with these values.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The labels naming the owner's name and namespace.
    pub labels: (&'static str, &'static str),
    /// The owner's name.
    pub name: &'a str,
    /// The owner's namespace.
    pub namespace: &'a str,
}

impl<'a> Owner<'a> {
    /// A Kustomization as owner.
    pub fn kustomization(name: &'a str, namespace: &'a str) -> Owner<'a> {
        Owner {
            labels: (NAME_LABEL, NAMESPACE_LABEL),
            name,
            namespace,
        }
    }
}

/// What [`apply_all`] did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The objects now owned: the new inventory.
    pub inventory: Vec<Entry>,
    /// Objects changed (created or updated).
    pub changed: usize,
    /// Objects left alone because an Argo CD Application manages them.
    pub conflicts: Vec<String>,
    /// Objects whose apply failed, with why.
    pub errors: Vec<String>,
    /// (apiVersion, key) of every object applied or kept, for health checks.
    pub objects: Vec<(String, ObjectKey)>,
}

struct Planned {
    manifest: Manifest,
    api_version: String,
    key: ObjectKey,
    /// The kind is served now (not only declared by a CRD of this set).
    served: bool,
    live: Option<Value>,
    /// What the server made of it in the dry-run, if one ran.
    dry_run: Option<Value>,
}

fn is_immutable_error(error: &plumb_kube::Error) -> bool {
    matches!(error, plumb_kube::Error::Api { code: 422, message, .. } if message.contains("immutable"))
}

fn is_first_stage(kind: &str) -> bool {
    matches!(kind, "CustomResourceDefinition" | "Namespace")
}

/// Validates and applies `manifests`.
///
/// **Errors**: an object of a kind the server does not serve (and no CRD of the set
/// declares), or any refused dry-run: then nothing has been applied. Failures while
/// applying are results in [`Applied::errors`].
pub async fn apply_all(
    cluster: &Cluster,
    manifests: Vec<Manifest>,
    settings: &ApplySettings,
) -> Result<Applied, String> {
    // CRDs declared here tell the scope of kinds the server does not serve yet.
    let declared: BTreeMap<(String, String), bool> = manifests
        .iter()
        .filter(|m| m.key().kind == "CustomResourceDefinition")
        .map(|m| {
            (
                (
                    str_at(&m.object, &["spec", "group"]).to_string(),
                    str_at(&m.object, &["spec", "names", "kind"]).to_string(),
                ),
                str_at(&m.object, &["spec", "scope"]) != "Cluster",
            )
        })
        .collect();
    let mut planned = Vec::new();
    for mut manifest in manifests {
        let api_version = str_at(&manifest.object, &["apiVersion"]).to_string();
        let kind = str_at(&manifest.object, &["kind"]).to_string();
        let (namespaced, served) = match cluster.kind(&api_version, &kind).await {
            Ok(resolved) => (resolved.namespaced, true),
            Err(plumb_kube::Error::UnknownKind { .. }) => {
                match declared.get(&(group_of(&api_version).to_string(), kind.clone())) {
                    Some(namespaced) => (*namespaced, false),
                    None => {
                        return Err(format!(
                            "{}: {}: the server does not serve {api_version} {kind} (is its CRD installed?)",
                            manifest.origin.file,
                            describe(&manifest.object)
                        ));
                    }
                }
            }
            Err(error) => return Err(error_chain(&error)),
        };
        if let Some(metadata) = manifest
            .object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            if namespaced {
                if metadata
                    .get("namespace")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    let namespace = settings.default_namespace.as_deref().unwrap_or("default");
                    metadata.insert("namespace".into(), json!(namespace));
                }
            } else {
                metadata.remove("namespace");
            }
        }
        let key = manifest.key();
        planned.push(Planned {
            manifest,
            api_version,
            key,
            served,
            live: None,
            dry_run: None,
        });
    }
    planned.sort_by(|a, b| {
        plumb_core::order::apply_order(&a.key).cmp(&plumb_core::order::apply_order(&b.key))
    });

    let mut applied = Applied::default();
    let mut missing_namespaces = HashSet::new();
    for item in planned.iter_mut().filter(|p| p.served) {
        item.live = cluster
            .get(
                &item.api_version,
                &item.key.kind,
                &item.key.namespace,
                &item.key.name,
            )
            .await
            .map_err(|e| format!("{}: {}", describe(&item.manifest.object), error_chain(&e)))?;
        if item.key.kind == "Namespace" && item.live.is_none() {
            missing_namespaces.insert(item.key.name.clone());
        }
    }
    // Leave alone what Argo CD manages, and what the ssa annotation says to skip.
    let mut to_apply = Vec::new();
    for item in planned {
        if let Some(owner) = item.live.as_ref().and_then(plumb_core::tracking::owner_of) {
            applied.conflicts.push(format!(
                "{} is managed by Argo CD application {owner}",
                describe(&item.manifest.object)
            ));
            continue;
        }
        match str_at(
            &item.manifest.object,
            &["metadata", "annotations", SSA_ANNOTATION],
        ) {
            "Ignore" => continue,
            "IfNotPresent" if item.live.is_some() => {
                applied
                    .inventory
                    .push(Entry::of(&item.api_version, &item.key));
                applied
                    .objects
                    .push((item.api_version.clone(), item.key.clone()));
                continue;
            }
            _ => {}
        }
        to_apply.push(item);
    }
    // Validate everything that can be validated before changing anything.
    let mut refused = Vec::new();
    for item in to_apply.iter_mut() {
        if !item.served || missing_namespaces.contains(&item.key.namespace) {
            continue;
        }
        match cluster
            .apply(
                &item.manifest.object,
                &ApplyOptions {
                    dry_run: DryRun::Server,
                    force: true,
                },
            )
            .await
        {
            Ok(result) => item.dry_run = Some(result),
            Err(error) if settings.force && is_immutable_error(&error) => {}
            Err(error) => refused.push(format!(
                "{}: {}: {}",
                item.manifest.origin.file,
                describe(&item.manifest.object),
                error_chain(&error)
            )),
        }
    }
    if !refused.is_empty() {
        return Err(refused.join("; "));
    }
    let (first, second): (Vec<Planned>, Vec<Planned>) = to_apply
        .into_iter()
        .partition(|p| is_first_stage(&p.key.kind));
    for stage in [first, second] {
        let mut crds = Vec::new();
        for item in stage {
            applied
                .inventory
                .push(Entry::of(&item.api_version, &item.key));
            applied
                .objects
                .push((item.api_version.clone(), item.key.clone()));
            let unchanged = match (&item.dry_run, &item.live) {
                (Some(dry_run), Some(live)) => plumb_core::diff::is_in_sync(dry_run, live),
                _ => false,
            };
            if unchanged {
                continue;
            }
            match apply_one(cluster, &item.manifest.object, settings).await {
                Ok(()) => {
                    applied.changed += 1;
                    if item.key.kind == "CustomResourceDefinition" {
                        crds.push(item.manifest.object.clone());
                    }
                }
                Err(error) => applied.errors.push(format!(
                    "{}: {}: {error}",
                    item.manifest.origin.file,
                    describe(&item.manifest.object)
                )),
            }
        }
        for crd in crds {
            let group = str_at(&crd, &["spec", "group"]);
            let kind = str_at(&crd, &["spec", "names", "kind"]);
            let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
            let version = versions
                .and_then(|v| {
                    v.iter()
                        .find(|v| v.get("served").and_then(Value::as_bool) == Some(true))
                })
                .map(|v| str_at(v, &["name"]).to_string())
                .unwrap_or_default();
            if let Err(error) =
                crate::crds::wait_established(cluster, &format!("{group}/{version}"), kind).await
            {
                applied.errors.push(format!(
                    "CustomResourceDefinition {kind}: not established: {}",
                    error_chain(&error)
                ));
            }
        }
    }
    Ok(applied)
}

/// Applies one object; with `force`, an immutable-field refusal recreates it.
async fn apply_one(
    cluster: &Cluster,
    object: &Value,
    settings: &ApplySettings,
) -> Result<(), String> {
    let options = ApplyOptions {
        dry_run: DryRun::None,
        force: true,
    };
    match cluster.apply(object, &options).await {
        Ok(_) => Ok(()),
        Err(error) if settings.force && is_immutable_error(&error) => {
            let key = ObjectKey::of(object);
            let api_version = str_at(object, &["apiVersion"]);
            delete_and_wait(cluster, api_version, &key, Duration::from_secs(30))
                .await
                .map_err(|message| format!("cannot recreate: {message}"))?;
            cluster
                .apply(object, &options)
                .await
                .map(|_| ())
                .map_err(|e| error_chain(&e))
        }
        Err(error) => Err(error_chain(&error)),
    }
}

/// Deletes an object (a missing one is fine) and waits up to `timeout` until it is gone.
///
/// **Errors**: the delete is refused, or the object is still there when time ran out.
pub async fn delete_and_wait(
    cluster: &Cluster,
    api_version: &str,
    key: &ObjectKey,
    timeout: Duration,
) -> Result<(), String> {
    match cluster
        .delete(
            api_version,
            &key.kind,
            &key.namespace,
            &key.name,
            Propagation::Background,
        )
        .await
    {
        Ok(()) | Err(plumb_kube::Error::Api { code: 404, .. }) => {}
        Err(error) => return Err(error_chain(&error)),
    }
    let deadline = tokio::time::Instant::now() + timeout;
    while cluster
        .get(api_version, &key.kind, &key.namespace, &key.name)
        .await
        .map_err(|e| error_chain(&e))?
        .is_some()
    {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{key} is still being deleted"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Deletes the objects of `stale` (inventory entries no longer rendered) that still carry the
/// labels of `owner` and allow pruning; returns what was deleted, or the failures.
pub async fn prune(
    cluster: &Cluster,
    stale: &[Entry],
    owner: &Owner<'_>,
) -> Result<Vec<String>, String> {
    let mut objects: Vec<(String, ObjectKey)> = stale.iter().filter_map(Entry::object).collect();
    objects.sort_by(|a, b| {
        plumb_core::order::apply_order(&b.1).cmp(&plumb_core::order::apply_order(&a.1))
    });
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for (api_version, key) in objects {
        let live = match cluster
            .get(&api_version, &key.kind, &key.namespace, &key.name)
            .await
        {
            Ok(Some(live)) => live,
            Ok(None) | Err(plumb_kube::Error::UnknownKind { .. }) => continue,
            Err(error) => {
                errors.push(format!("{key}: {}", error_chain(&error)));
                continue;
            }
        };
        let labels_match = str_at(&live, &["metadata", "labels", owner.labels.0]) == owner.name
            && str_at(&live, &["metadata", "labels", owner.labels.1]) == owner.namespace;
        let disabled = str_at(&live, &["metadata", "annotations", PRUNE_ANNOTATION]) == "disabled";
        if !labels_match || disabled || plumb_core::tracking::owner_of(&live).is_some() {
            continue;
        }
        match cluster
            .delete(
                &api_version,
                &key.kind,
                &key.namespace,
                &key.name,
                Propagation::Background,
            )
            .await
        {
            Ok(()) => deleted.push(describe(&live)),
            Err(error) => errors.push(format!("{}: {}", describe(&live), error_chain(&error))),
        }
    }
    if errors.is_empty() {
        Ok(deleted)
    } else {
        Err(errors.join("; "))
    }
}

/// Waits (up to `timeout`) until none of `objects` exists any more.
///
/// **Errors**: the objects still present when time ran out.
pub async fn wait_deleted(
    cluster: &Cluster,
    objects: &[(String, ObjectKey)],
    timeout: Duration,
) -> Result<(), String> {
    let deadline = deadline_after(timeout);
    loop {
        let mut present = Vec::new();
        for (api_version, key) in objects {
            if let Ok(Some(_)) = cluster
                .get(api_version, &key.kind, &key.namespace, &key.name)
                .await
            {
                present.push(key.to_string());
            }
        }
        if present.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("still present: {}", present.join(", ")));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The longest any wait lasts, whatever `spec.timeout` says.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// `timeout` from now, capped at [`MAX_WAIT`] (so a huge timeout cannot overflow the clock).
fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + timeout.min(MAX_WAIT)
}

/// The entries of `old` missing from `new`.
pub fn stale(old: &[Entry], new: &[Entry]) -> Vec<Entry> {
    let keep: BTreeSet<&str> = new.iter().map(|e| e.id.as_str()).collect();
    old.iter()
        .filter(|e| !keep.contains(e.id.as_str()))
        .cloned()
        .collect()
}

/// Whether an object reporting `Ready=False` is still working on it, as kstatus (which Flux
/// waits with) reads conditions: not ready is failed only once `Stalled` is true.
fn in_progress(live: &Value) -> bool {
    let conditions = live
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let is = |kind: &str, status: &str| {
        conditions
            .iter()
            .any(|c| str_at(c, &["type"]) == kind && str_at(c, &["status"]) == status)
    };
    is("Ready", "False") && !is("Stalled", "True")
}

/// Waits until every object of `targets` is healthy (or has no notion of health), up to
/// `timeout`; a Degraded object fails at once.
///
/// **Errors**: the objects not healthy when time ran out (or the degraded one), with their
/// health messages.
pub async fn wait_healthy(
    cluster: &Cluster,
    targets: &[(String, ObjectKey)],
    timeout: Duration,
) -> Result<(), String> {
    wait_healthy_with(cluster, targets, timeout, None).await
}

/// [`wait_healthy`] with a Kustomization's `spec.healthCheckExprs`: an object of a group and
/// kind they name is judged by them, with Flux's meaning (`failed` fails at once, `current`
/// passes, anything else — `inProgress`, none true, an expression that fails on the object —
/// keeps waiting, the failure shown in the timeout message); other objects by the built-in
/// rules.
///
/// **Errors**: as [`wait_healthy`].
pub async fn wait_healthy_with(
    cluster: &Cluster,
    targets: &[(String, ObjectKey)],
    timeout: Duration,
    exprs: Option<&HealthCheckExprs>,
) -> Result<(), String> {
    let deadline = deadline_after(timeout);
    loop {
        let mut waiting = Vec::new();
        for (api_version, key) in targets {
            let live = match cluster
                .get(api_version, &key.kind, &key.namespace, &key.name)
                .await
            {
                Ok(live) => live,
                Err(plumb_kube::Error::UnknownKind { .. }) => None,
                Err(error) => return Err(format!("{key}: {}", error_chain(&error))),
            };
            let Some(live) = live else {
                waiting.push(format!("{key}: not found"));
                continue;
            };
            let (assessed, by_expression) = match exprs.and_then(|e| e.assess(&live)) {
                Some(Ok(health)) => (Some(health), true),
                Some(Err(error)) => {
                    waiting.push(format!("{}: Unknown {error}", describe(&live)));
                    continue;
                }
                None => (health::assess(&live), false),
            };
            match assessed {
                None => {}
                Some(h) if matches!(h.status, HealthStatus::Healthy | HealthStatus::Suspended) => {}
                Some(h)
                    if h.status == HealthStatus::Degraded
                        && (by_expression || !in_progress(&live)) =>
                {
                    return Err(format!(
                        "{}: {} {}",
                        describe(&live),
                        h.status.as_str(),
                        h.message
                    )
                    .trim_end()
                    .to_string());
                }
                Some(h) => waiting.push(
                    format!("{}: {} {}", describe(&live), h.status.as_str(), h.message)
                        .trim_end()
                        .to_string(),
                ),
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("timeout waiting for: [{}]", waiting.join(", ")));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_entries_are_those_no_longer_rendered() {
        let key = |name: &str| ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: "apps".into(),
            name: name.into(),
        };
        let old = vec![Entry::of("v1", &key("a")), Entry::of("v1", &key("b"))];
        let new = vec![Entry::of("v1", &key("a")), Entry::of("v1", &key("c"))];
        assert_eq!(stale(&old, &new), vec![Entry::of("v1", &key("b"))]);
        assert!(stale(&new, &new).is_empty());
    }
}
