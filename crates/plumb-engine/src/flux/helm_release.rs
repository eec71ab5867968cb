//! `HelmRelease`: resolve the chart from its `HelmRepository`, compose the values
//! (`valuesFrom` in order, then `values`), render the chart in-process, apply the objects with
//! server-side apply, prune what the previous release had and this one has not, wait for
//! readiness, and record the release the way Helm does (see [`helm_storage`]) and the status
//! the way Flux's helm-controller writes it (`Ready` and `Released` with `InstallSucceeded`,
//! `UpgradeSucceeded`, `InstallFailed`, `UpgradeFailed`, `ArtifactFailed`, `InitFailed`,
//! `DependencyNotReady`, `RetriesExceeded`; `history`, `lastAttemptedRevision`,
//! `lastAttemptedConfigDigest`, `lastAttemptedReleaseAction`, failure counts).
//!
//! **Guarantees**: every object is validated with a server-side dry-run before any is applied
//! (see [`apply::apply_all`]); prune deletes only objects of the previous release that still
//! carry this HelmRelease's labels; CRDs are never deleted; a failed install or upgrade is
//! retried only as `remediation.retries` allows, then the release stalls until its spec
//! changes or a reconcile is requested.
//!
//! [`helm_storage`]: super::helm_storage

use super::apply::{self, ApplySettings, Owner};
use super::conditions::{self, Condition};
use super::helm_drift::{self, DriftMode};
use super::helm_hooks::{self, Event as HookEvent};
use super::helm_rollback;
use super::helm_spec::{
    CrdPolicy, HelmReleaseSpec, ReleaseStrategy, UpgradeRemediation, ValuesReference,
};
use super::helm_storage::{self, Release};
use super::inventory::Entry;
use super::kustomization_spec::dependency_cycle;
use super::remote::Cleanup;
use super::{Flux, FluxKind, is_ready};
use crate::queue::AppId;
use crate::sources::{Freshness, error_chain};
use crate::status::now;
use base64::Engine as _;
use plumb_core::key::{ObjectKey, str_at};
use serde_json::{Map, Value, json};
use sha2::Digest as _;
use std::sync::Arc;
use std::time::Duration;

/// Label naming the HelmRelease that installed an object (Flux's).
pub const NAME_LABEL: &str = "helm.toolkit.fluxcd.io/name";
/// Label naming the namespace of the HelmRelease that installed an object (Flux's).
pub const NAMESPACE_LABEL: &str = "helm.toolkit.fluxcd.io/namespace";
/// The finalizer that lets a deleted HelmRelease uninstall first (Flux's).
pub const FINALIZER: &str = "finalizers.fluxcd.io";
/// How soon a release waiting for a dependency or its source looks again.
const REQUEUE_DEPENDENCY: Duration = Duration::from_secs(30);

/// Install or upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Install,
    Upgrade,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Upgrade => "upgrade",
        }
    }

    fn succeeded(self) -> &'static str {
        match self {
            Action::Install => "InstallSucceeded",
            Action::Upgrade => "UpgradeSucceeded",
        }
    }

    fn failed(self) -> &'static str {
        match self {
            Action::Install => "InstallFailed",
            Action::Upgrade => "UpgradeFailed",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Upgrade => "upgrade",
        }
    }
}

/// What was attempted: chart version, values digest, action.
#[derive(Debug, Clone)]
struct Attempt {
    chart_version: String,
    /// The OCI manifest digest of a chart from an OCIRepository (empty otherwise).
    revision_digest: String,
    config_digest: String,
    action: Action,
}

/// How a reconcile ended, for the status.
#[derive(Debug)]
struct Outcome {
    ready: &'static str,
    reason: String,
    message: String,
    stalled: bool,
    /// The `Released` condition, when a release was attempted.
    released: Option<Condition>,
    attempt: Option<Attempt>,
    /// A failed install or upgrade (counted for remediation).
    failure: Option<Action>,
    /// The new history, newest first, when a release was recorded.
    history: Option<Vec<Value>>,
    /// Reset the failure counts (a successful release).
    reset_failures: bool,
    /// Warnings for the status.
    warnings: Vec<String>,
    /// The `Remediated` condition, when a failed release was remediated (or tried to be).
    remediated: Option<Condition>,
    /// The `TestSuccess` condition, when the release's tests ran.
    tested: Option<Condition>,
}

impl Outcome {
    fn failed(reason: &str, message: impl Into<String>) -> Outcome {
        Outcome {
            ready: "False",
            reason: reason.to_string(),
            message: message.into(),
            stalled: false,
            released: None,
            attempt: None,
            failure: None,
            history: None,
            reset_failures: false,
            warnings: Vec::new(),
            remediated: None,
            tested: None,
        }
    }
}

type Step<T> = Result<T, Box<(Outcome, Option<Duration>)>>;

fn stop<T>(outcome: Outcome, requeue: Option<Duration>) -> Step<T> {
    Err(Box::new((outcome, requeue)))
}

fn failures(previous: &Value, field: &str) -> i64 {
    previous.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// Install and upgrade failures in a row once `outcome` is counted: they restart when the
/// spec changes or a release succeeds.
fn failure_counts(previous: &Value, generation: i64, outcome: &Outcome) -> (i64, i64) {
    let same_generation = previous
        .get("lastAttemptedGeneration")
        .and_then(Value::as_i64)
        == Some(generation);
    let (mut install, mut upgrade) = if outcome.reset_failures || !same_generation {
        (0, 0)
    } else {
        (
            failures(previous, "installFailures"),
            failures(previous, "upgradeFailures"),
        )
    };
    match outcome.failure {
        Some(Action::Install) => install += 1,
        Some(Action::Upgrade) => upgrade += 1,
        None => {}
    }
    (install, upgrade)
}

/// [`failure_counts`] of the HelmRelease `object` once `outcome` is counted.
fn failures_with(object: &Value, outcome: &Outcome) -> (i64, i64) {
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    failure_counts(
        object.get("status").unwrap_or(&Value::Null),
        generation,
        outcome,
    )
}

/// Rewrites a release record as `superseded` (a failure is logged: the record only tells
/// history).
pub(super) async fn supersede(
    cluster: &plumb_kube::Cluster,
    storage_namespace: &str,
    release: Release,
) {
    mark(cluster, storage_namespace, release, "superseded").await;
}

/// Rewrites a release record with `status` (a failure is logged).
async fn mark(
    cluster: &plumb_kube::Cluster,
    storage_namespace: &str,
    mut release: Release,
    status: &str,
) {
    release.status = status.into();
    let Ok(updated) = release.to_secret(storage_namespace) else {
        return;
    };
    let options = plumb_kube::ApplyOptions {
        dry_run: plumb_kube::DryRun::None,
        force: true,
    };
    if let Err(error) = cluster.apply(&updated, &options).await {
        tracing::warn!(error = %error_chain(&error), status, "cannot rewrite a release record");
    }
}

/// The status for `outcome`, keeping what it does not change.
fn status_for(object: &Value, spec: Option<&HelmReleaseSpec>, outcome: &Outcome) -> Value {
    let previous = object.get("status").cloned().unwrap_or(Value::Null);
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut status = super::reconcile_fields(object, &previous);
    for field in [
        "lastAttemptedRevision",
        "lastAttemptedConfigDigest",
        "lastAttemptedGeneration",
        "lastAttemptedReleaseAction",
        "lastAttemptedRevisionDigest",
        "observedPostRenderersDigest",
        "history",
        "helmChart",
        "storageNamespace",
    ] {
        if let Some(value) = previous.get(field).filter(|v| !v.is_null()) {
            status.insert(field.into(), value.clone());
        }
    }
    if let Some(spec) = spec.filter(|s| s.chart.source_kind == "HelmRepository") {
        status.insert(
            "helmChart".into(),
            json!(format!(
                "{}/{}-{}",
                spec.chart.source_namespace,
                str_at(object, &["metadata", "namespace"]),
                str_at(object, &["metadata", "name"])
            )),
        );
        status.insert("storageNamespace".into(), json!(spec.storage_namespace));
    }
    if let Some(spec) = spec.filter(|s| s.chart.source_kind != "HelmRepository") {
        // A chart from chartRef has no HelmChart object.
        status.remove("helmChart");
        status.insert("storageNamespace".into(), json!(spec.storage_namespace));
    }
    if let Some(attempt) = &outcome.attempt {
        status.insert("lastAttemptedRevision".into(), json!(attempt.chart_version));
        if attempt.revision_digest.is_empty() {
            status.remove("lastAttemptedRevisionDigest");
        } else {
            status.insert(
                "lastAttemptedRevisionDigest".into(),
                json!(attempt.revision_digest),
            );
        }
        status.insert(
            "lastAttemptedConfigDigest".into(),
            json!(attempt.config_digest),
        );
        status.insert("lastAttemptedGeneration".into(), json!(generation));
        status.insert(
            "lastAttemptedReleaseAction".into(),
            json!(attempt.action.as_str()),
        );
    }
    if let Some(history) = &outcome.history {
        status.insert("history".into(), Value::Array(history.clone()));
    }
    if outcome.ready == "True" {
        // What the released manifest was post-rendered with; a change is an upgrade.
        match post_renderers_digest(object) {
            Some(digest) => status.insert("observedPostRenderersDigest".into(), json!(digest)),
            None => status.remove("observedPostRenderersDigest"),
        };
    }
    let (install, upgrade) = failure_counts(&previous, generation, outcome);
    if install > 0 {
        status.insert("installFailures".into(), json!(install));
    }
    if upgrade > 0 {
        status.insert("upgradeFailures".into(), json!(upgrade));
    }
    if install + upgrade > 0 {
        status.insert("failures".into(), json!(install + upgrade));
    }
    let mut list = conditions::ready_conditions(
        outcome.ready,
        &outcome.reason,
        &outcome.message,
        outcome.stalled,
    );
    // Each condition of this outcome, or the previous one where the outcome says nothing.
    let tests_enabled = spec.is_some_and(|s| s.test.enable);
    for (kind, new, keep) in [
        (RELEASED, &outcome.released, true),
        // A successful release clears the last remediation.
        (REMEDIATED, &outcome.remediated, !outcome.reset_failures),
        // Kept until the next release's tests, while tests stay enabled.
        (TEST_SUCCESS, &outcome.tested, tests_enabled),
    ] {
        match new {
            Some(condition) => list.push(condition.clone()),
            None if keep => list.extend(kept_condition(&previous, kind)),
            None => {}
        }
    }
    let mut warnings = spec.map(|s| s.not_acted_on.clone()).unwrap_or_default();
    warnings.extend(outcome.warnings.iter().cloned());
    if !warnings.is_empty() {
        list.push(Condition::new(
            conditions::FIELDS_NOT_ACTED_ON,
            "True",
            "NotSupportedYet",
            format!("accepted but not acted on: {}", warnings.join("; ")),
        ));
    }
    let old_conditions = previous.get("conditions").cloned().unwrap_or(Value::Null);
    status.insert(
        "conditions".into(),
        conditions::to_json(&list, &old_conditions, generation, &now()),
    );
    Value::Object(status)
}

/// The condition `kind` of a previous status, as it was.
fn kept_condition(previous: &Value, kind: &'static str) -> Option<Condition> {
    let old = previous
        .get("conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)?;
    Some(Condition {
        kind,
        status: match str_at(old, &["status"]) {
            "True" => "True",
            "False" => "False",
            _ => "Unknown",
        },
        reason: str_at(old, &["reason"]).to_string(),
        message: str_at(old, &["message"]).to_string(),
    })
}

/// `Released`: whether the last release action succeeded.
pub const RELEASED: &str = "Released";

/// `Remediated`: whether the last failed release was remediated.
pub const REMEDIATED: &str = "Remediated";

/// `TestSuccess`: whether the tests of the last release passed.
pub const TEST_SUCCESS: &str = "TestSuccess";

/// Reconciles the HelmRelease `id`; returns when to look again.
pub(crate) async fn reconcile(flux: &Arc<Flux>, id: &AppId) -> Option<Duration> {
    let object = flux.get(FluxKind::HelmRelease, id)?;
    let parsed = HelmReleaseSpec::parse(object.get("spec").unwrap_or(&Value::Null), &id.1, &id.0);
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return finalize(flux, id, &object, parsed.ok().as_ref()).await;
    }
    let spec = match parsed {
        Ok(spec) => spec,
        Err(error) => {
            let mut outcome = Outcome::failed("InvalidSpec", error.to_string());
            outcome.stalled = true;
            let status = status_for(&object, None, &outcome);
            flux.write_status(FluxKind::HelmRelease, &object, status)
                .await;
            return None;
        }
    };
    if spec.suspend {
        return None;
    }
    if !finalizers(&object).iter().any(|f| f == FINALIZER) {
        let mut list = finalizers(&object);
        list.push(FINALIZER.to_string());
        set_finalizers(flux, id, list).await;
    }
    let cluster = match super::remote::target_cluster(flux, &id.0, spec.target()).await {
        Ok(cluster) => cluster,
        Err(error) => {
            let outcome = Outcome::failed("InitFailed", error.message().to_string());
            let status = status_for(&object, Some(&spec), &outcome);
            flux.write_status(FluxKind::HelmRelease, &object, status)
                .await;
            return Some(spec.interval.min(REQUEUE_DEPENDENCY));
        }
    };
    let (mut outcome, mut requeue) = match run(flux, &cluster, id, &object, &spec).await {
        Ok(outcome) => (outcome, Some(spec.interval)),
        Err(stopped) => *stopped,
    };
    let strategy = |action: Action| match action {
        Action::Install => spec.install_strategy,
        Action::Upgrade => spec.upgrade_strategy,
    };
    match outcome.failure {
        // RetryOnFailure: no remediation, the same release is tried again.
        Some(action) if matches!(strategy(action), ReleaseStrategy::RetryOnFailure { .. }) => {
            if let ReleaseStrategy::RetryOnFailure { retry_interval } = strategy(action) {
                requeue = Some(retry_interval);
            }
        }
        Some(Action::Upgrade) => remediate(&cluster, id, &object, &spec, &mut outcome).await,
        Some(Action::Install) => {
            remediate_install(&cluster, id, &object, &spec, &mut outcome).await
        }
        None => {}
    }
    let status = status_for(&object, Some(&spec), &outcome);
    flux.write_status(FluxKind::HelmRelease, &object, status)
        .await;
    requeue
}

/// Remediates a failed install when Flux's rules call for it (retries remain, or
/// `remediateLastFailure`): the release is uninstalled, so the next attempt installs afresh.
async fn remediate_install(
    cluster: &plumb_kube::Cluster,
    id: &AppId,
    object: &Value,
    spec: &HelmReleaseSpec,
    outcome: &mut Outcome,
) {
    let (failures, _) = failures_with(object, outcome);
    let retries_remain = spec.install_retries < 0 || failures <= spec.install_retries;
    if !retries_remain && !spec.remediate_last_install_failure {
        return;
    }
    remediate_by_uninstall(cluster, id, spec, outcome).await;
}

/// Uninstalls the release after a failure (install remediation, or upgrade remediation with
/// `strategy: uninstall`), recorded in `Remediated` (and `Ready`).
async fn remediate_by_uninstall(
    cluster: &plumb_kube::Cluster,
    id: &AppId,
    spec: &HelmReleaseSpec,
    outcome: &mut Outcome,
) {
    let release = format!("{}/{}", spec.target_namespace, spec.release_name);
    let uninstalled = match records(cluster, &spec.storage_namespace, &spec.release_name).await {
        Ok(found) if found.is_empty() => return,
        Ok(found) => uninstall(cluster, id, spec, &found).await,
        Err(message) => Err(message),
    };
    match uninstalled {
        Ok(Some(gone)) => {
            let message = format!(
                "Helm uninstall for release {release}.v{} with chart {}@{} succeeded",
                gone.version,
                str_at(&gone.chart_metadata, &["name"]),
                str_at(&gone.chart_metadata, &["version"])
            );
            outcome.reason = "UninstallSucceeded".into();
            outcome.message = message.clone();
            outcome.remediated = Some(Condition::new(
                REMEDIATED,
                "True",
                "UninstallSucceeded",
                &message,
            ));
        }
        Ok(None) => {}
        Err(problem) => {
            outcome.remediated = Some(Condition::new(
                REMEDIATED,
                "False",
                "UninstallFailed",
                format!("Helm uninstall of release {release} failed: {problem}"),
            ));
        }
    }
}

/// Remediates a failed upgrade when Flux's rules call for it: a rollback to the last
/// successful revision, recorded in `Remediated` (and `Ready`) and the history.
async fn remediate(
    cluster: &plumb_kube::Cluster,
    id: &AppId,
    object: &Value,
    spec: &HelmReleaseSpec,
    outcome: &mut Outcome,
) {
    let previous = object.get("status").cloned().unwrap_or(Value::Null);
    let (_, failures) = failures_with(object, outcome);
    if !helm_rollback::due(spec, failures) {
        return;
    }
    if spec.upgrade_remediation == UpgradeRemediation::Uninstall {
        remediate_by_uninstall(cluster, id, spec, outcome).await;
        return;
    }
    let release = format!("{}/{}", spec.target_namespace, spec.release_name);
    let rolled = match records(cluster, &spec.storage_namespace, &spec.release_name).await {
        Ok(found) => helm_rollback::rollback(cluster, id, spec, &found).await,
        Err(message) => Err(message),
    };
    match rolled {
        Ok(rolled) => {
            let message = format!(
                "Helm rollback to previous release {release}.v{} with chart {} succeeded",
                rolled.to, rolled.chart
            );
            outcome.reason = "RollbackSucceeded".into();
            outcome.message = message.clone();
            outcome.remediated = Some(Condition::new(
                REMEDIATED,
                "True",
                "RollbackSucceeded",
                &message,
            ));
            let mut history = outcome.history.clone().unwrap_or_else(|| {
                previous
                    .get("history")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            });
            for entry in history.iter_mut() {
                if matches!(str_at(entry, &["status"]), "deployed" | "failed") {
                    entry["status"] = json!("superseded");
                }
            }
            history.insert(0, rolled.snapshot);
            history.truncate(if spec.max_history == 0 {
                5
            } else {
                spec.max_history
            });
            outcome.history = Some(history);
        }
        Err(problem) => {
            let message = format!("Helm rollback of release {release} failed: {problem}");
            outcome.remediated = Some(Condition::new(
                REMEDIATED,
                "False",
                "RollbackFailed",
                &message,
            ));
        }
    }
}

/// Uninstalls the release as `helm uninstall` does: pre-delete hooks, the latest revision's
/// objects (those still carrying this HelmRelease's labels), post-delete hooks, then every
/// release record. Returns the revision uninstalled, if there was one.
async fn uninstall(
    cluster: &plumb_kube::Cluster,
    id: &AppId,
    spec: &HelmReleaseSpec,
    found: &[Value],
) -> Result<Option<Release>, String> {
    let latest = helm_storage::latest(found).and_then(|l| Release::from_secret(l).ok());
    let settings = &spec.uninstall;
    let timeout = settings.timeout.unwrap_or(spec.timeout);
    if let Some(release) = &latest {
        let hooks = if settings.disable_hooks {
            Vec::new()
        } else {
            release.hook_manifests()
        };
        let namespace = &spec.target_namespace;
        if let Err(message) =
            helm_hooks::run(cluster, &hooks, HookEvent::PreDelete, namespace, timeout).await
        {
            tracing::warn!(namespace = %id.0, name = %id.1, %message, "a pre-delete hook failed; uninstalling anyway");
        }
        apply::prune(cluster, &entries_of(&release.objects()), &owner(id)).await?;
        if let Err(message) =
            helm_hooks::run(cluster, &hooks, HookEvent::PostDelete, namespace, timeout).await
        {
            tracing::warn!(namespace = %id.0, name = %id.1, %message, "a post-delete hook failed");
        }
    }
    if settings.keep_history {
        // As `helm uninstall --keep-history`: the records stay, the latest marked uninstalled.
        if let Some(release) = latest.clone() {
            mark(cluster, &spec.storage_namespace, release, "uninstalled").await;
        }
    } else {
        for record in found {
            delete_record(cluster, &spec.storage_namespace, record).await;
        }
    }
    Ok(latest)
}

fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

async fn set_finalizers(flux: &Flux, id: &AppId, finalizers: Vec<String>) {
    if let Err(error) = flux
        .context
        .cluster
        .merge_patch(
            super::HELM_API_VERSION,
            "HelmRelease",
            &id.0,
            &id.1,
            &json!({"metadata": {"finalizers": finalizers}}),
        )
        .await
    {
        tracing::warn!(namespace = %id.0, name = %id.1, error = %error_chain(&error), "cannot update HelmRelease finalizers");
    }
}

/// The record Secrets of `release` in `namespace`.
async fn records(
    cluster: &plumb_kube::Cluster,
    namespace: &str,
    release: &str,
) -> Result<Vec<Value>, String> {
    let list = cluster
        .list_selected(
            "v1",
            "Secret",
            namespace,
            &format!("owner=helm,name={release}"),
        )
        .await
        .map_err(|e| format!("cannot list release records: {}", error_chain(&e)))?;
    Ok(list
        .into_iter()
        .filter(|s| str_at(s, &["type"]) == helm_storage::RELEASE_TYPE)
        .collect())
}

/// Uninstall: delete the objects of the latest release that still carry this release's labels
/// (CRDs are kept, as Helm keeps them), then the release records, then release the finalizer.
async fn finalize(
    flux: &Arc<Flux>,
    id: &AppId,
    object: &Value,
    spec: Option<&HelmReleaseSpec>,
) -> Option<Duration> {
    if !finalizers(object).iter().any(|f| f == FINALIZER) {
        return None;
    }
    if let Some(spec) = spec.filter(|s| !s.suspend) {
        match super::remote::cleanup_cluster(flux, id, spec.target(), "HelmRelease").await {
            Cleanup::Retry => return Some(Duration::from_secs(5)),
            Cleanup::Orphan => {}
            Cleanup::Reach(cluster) => {
                let cluster = &cluster;
                let found = match records(cluster, &spec.storage_namespace, &spec.release_name)
                    .await
                {
                    Ok(found) => found,
                    Err(message) => {
                        tracing::warn!(namespace = %id.0, name = %id.1, %message, "cannot uninstall; retrying");
                        return Some(Duration::from_secs(5));
                    }
                };
                if let Err(message) = uninstall(cluster, id, spec, &found).await {
                    tracing::warn!(namespace = %id.0, name = %id.1, %message, "cannot delete a deleted HelmRelease's objects; retrying");
                    return Some(Duration::from_secs(5));
                }
            }
        }
    }
    let remaining: Vec<String> = finalizers(object)
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    set_finalizers(flux, id, remaining).await;
    None
}

pub(super) fn owner(id: &AppId) -> Owner<'_> {
    Owner {
        labels: (NAME_LABEL, NAMESPACE_LABEL),
        name: &id.1,
        namespace: &id.0,
    }
}

/// Inventory entries of release objects, CRDs left out (Helm never deletes them).
pub(super) fn entries_of(objects: &[(String, ObjectKey)]) -> Vec<Entry> {
    objects
        .iter()
        .filter(|(_, key)| key.kind != "CustomResourceDefinition")
        .map(|(api_version, key)| Entry::of(api_version, key))
        .collect()
}

/// Dependencies: each must exist and be ready; a cycle stalls.
fn check_dependencies(flux: &Flux, id: &AppId, spec: &HelmReleaseSpec) -> Step<()> {
    if spec.depends_on.is_empty() {
        return Ok(());
    }
    if let Some(cycle) = dependency_cycle(id, &flux.release_dependency_graph()) {
        let path: Vec<String> = cycle
            .iter()
            .map(|(ns, name)| format!("{ns}/{name}"))
            .collect();
        let mut outcome = Outcome::failed(
            "DependencyNotReady",
            format!("spec.dependsOn: dependency cycle: {}", path.join(" -> ")),
        );
        outcome.stalled = true;
        return stop(outcome, None);
    }
    for (namespace, name) in &spec.depends_on {
        let message = match flux.get(FluxKind::HelmRelease, &(namespace.clone(), name.clone())) {
            None => format!("dependency '{namespace}/{name}' not found"),
            Some(dependency) if !is_ready(&dependency) => {
                format!("dependency '{namespace}/{name}' is not ready")
            }
            Some(_) => continue,
        };
        return stop(
            Outcome::failed("DependencyNotReady", message),
            Some(REQUEUE_DEPENDENCY),
        );
    }
    Ok(())
}

/// Sets `value` at the dotted `path` of `values` (Helm's `--set` path form without indexes).
fn set_path(values: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("targetPath {path:?} has an empty segment"));
    }
    let mut node = values;
    for (index, part) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Some(map) = node.as_object_mut() else {
            return Err(format!("targetPath {path:?}: cannot set"));
        };
        if index + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return Ok(());
        }
        node = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

/// The data of a ConfigMap or Secret under `key`, decoded.
fn data_value(object: &Value, key: &str) -> Option<String> {
    if str_at(object, &["kind"]) == "Secret" {
        if let Some(text) = object
            .get("stringData")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
        {
            return Some(text.to_string());
        }
        let encoded = object.get("data")?.get(key)?.as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        return String::from_utf8(bytes).ok();
    }
    object
        .get("data")
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The values: each `valuesFrom` in order, then `spec.values` over them. Values never appear
/// in an error.
async fn compose_values(
    flux: &Flux,
    namespace: &str,
    spec: &HelmReleaseSpec,
) -> Result<Value, String> {
    let mut values = Value::Object(Map::new());
    for (index, reference) in spec.values_from.iter().enumerate() {
        let ValuesReference {
            kind,
            name,
            values_key,
            target_path,
            optional,
        } = reference;
        let field = format!("spec.valuesFrom[{index}]");
        let found = flux
            .context
            .cluster
            .get("v1", kind, namespace, name)
            .await
            .map_err(|e| {
                format!(
                    "{field}: cannot read {kind} '{namespace}/{name}': {}",
                    error_chain(&e)
                )
            })?;
        let Some(object) = found else {
            if *optional {
                continue;
            }
            return Err(format!(
                "{field}: could not find {kind} '{namespace}/{name}'"
            ));
        };
        let Some(text) = data_value(&object, values_key) else {
            if *optional {
                continue;
            }
            return Err(format!(
                "{field}: missing key '{values_key}' in {kind} '{namespace}/{name}'"
            ));
        };
        if target_path.is_empty() {
            let parsed: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_saphyr::from_str(&text).map_err(|e| {
                    format!(
                        "{field}: key '{values_key}' of {kind} '{namespace}/{name}' is not valid YAML: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    )
                })?
            };
            match parsed {
                Value::Null => {}
                Value::Object(_) => plumb_render::merge_values(&mut values, parsed),
                _ => {
                    return Err(format!(
                        "{field}: key '{values_key}' of {kind} '{namespace}/{name}' is not a map of values"
                    ));
                }
            }
        } else {
            set_path(&mut values, target_path, Value::String(text))
                .map_err(|message| format!("{field}: {message}"))?;
        }
    }
    plumb_render::merge_values(&mut values, spec.values.clone());
    Ok(values)
}

/// The digest of a HelmRelease's post-renderers and common metadata (`None` without either),
/// as Flux records it in `status.observedPostRenderersDigest`.
fn post_renderers_digest(object: &Value) -> Option<String> {
    let renderers = object
        .pointer("/spec/postRenderers")
        .filter(|v| !v.is_null());
    let common = object
        .pointer("/spec/commonMetadata")
        .filter(|v| !v.is_null());
    if renderers.is_none() && common.is_none() {
        return None;
    }
    Some(digest_of(&json!([renderers, common])))
}

/// Whether the post-renderers changed since the last successful release.
fn post_renderers_changed(object: &Value) -> bool {
    post_renderers_digest(object).as_deref()
        != object
            .pointer("/status/observedPostRenderersDigest")
            .and_then(Value::as_str)
}

pub(super) fn digest_of(values: &Value) -> String {
    let bytes = serde_json::to_vec(values).unwrap_or_default();
    let digest = sha2::Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The resolved chart: version, metadata, and the rendered objects with their source files.
struct Rendered {
    version: String,
    metadata: Value,
    objects: Vec<plumb_core::manifest::Manifest>,
    /// Hook objects (run at their events, never part of the manifest).
    hooks: Vec<plumb_core::manifest::Manifest>,
}

async fn render(
    flux: &Flux,
    spec: &HelmReleaseSpec,
    fetch: ChartFetch,
    freshness: Freshness,
    values: &Value,
    include_crds: bool,
) -> Result<Rendered, (&'static str, String)> {
    let sources = flux.context.sources.clone();
    let chart = spec.chart.clone();
    let helm = json!({
        "releaseName": spec.release_name,
        "namespace": spec.target_namespace,
        "valuesObject": values,
        "valueFiles": chart.values_files,
        "skipCrds": !include_crds,
    });
    let context = plumb_render::RenderContext {
        app_name: spec.release_name.clone(),
        namespace: spec.target_namespace.clone(),
        kube_version: None,
    };
    let post_renderers = spec.post_renderers.clone();
    let common_metadata = spec.common_metadata.clone();
    let limits = flux.context.options.limits.clone();
    let task = tokio::task::spawn_blocking(move || {
        let (version, dir, chart_dir, metadata) = match fetch {
            ChartFetch::Repository {
                url, credentials, ..
            } => {
                let (version, dir) = sources
                    .chart(&url, &chart.chart, &chart.version, &credentials, freshness)
                    .map_err(|e| {
                        (
                            "ArtifactFailed",
                            format!(
                                "chart {}@{} from {url}: {}",
                                chart.chart,
                                chart.version,
                                error_chain(e.as_ref())
                            ),
                        )
                    })?;
                let chart_dir = dir.join(&chart.chart);
                let metadata: Value = std::fs::read_to_string(chart_dir.join("Chart.yaml"))
                    .ok()
                    .and_then(|text| serde_saphyr::from_str(&text).ok())
                    .unwrap_or(Value::Null);
                (version, dir, chart_dir, metadata)
            }
            ChartFetch::Artifact {
                spec: oci,
                access,
                revision,
                digest,
            } => artifact_chart(sources.as_ref(), &oci, &access, &revision, &digest)
                .map_err(|message| ("ArtifactFailed", message))?,
        };
        let objects = plumb_render::render_chart_with_tests(
            &dir,
            &chart_dir,
            Some(&helm),
            &context,
            plumb_render::TestHooks::Keep,
        )
        .map_err(|e| {
            (
                "InstallFailed",
                format!("chart {}@{version}: {}", chart.chart, error_chain(&e)),
            )
        })?;
        let (hooks, mut objects): (Vec<_>, Vec<_>) = objects
            .into_iter()
            .partition(|m| super::helm_hooks::is_hook(&m.object));
        // Flux's post-renderers: the user's in order, then the common metadata; as Helm's
        // post-renderers, they do not see hooks.
        for (index, renderer) in post_renderers.iter().enumerate() {
            objects = plumb_render::flux::post_render(
                objects,
                renderer,
                &format!("spec.postRenderers[{index}]"),
                &limits,
            )
            .map_err(|e| ("InstallFailed", error_chain(&e)))?;
        }
        for manifest in objects.iter_mut() {
            add_common_metadata(&mut manifest.object, &common_metadata);
        }
        Ok::<_, (&'static str, String)>((version, metadata, objects, hooks))
    });
    let (version, metadata, objects, hooks) = match tokio::time::timeout(spec.timeout, task).await {
        Ok(Ok(result)) => result?,
        Ok(Err(error)) => return Err(("ArtifactFailed", format!("chart task failed: {error}"))),
        Err(_) => {
            return Err((
                "ArtifactFailed",
                format!(
                    "fetching and rendering the chart took longer than {:?}",
                    spec.timeout
                ),
            ));
        }
    };
    Ok(Rendered {
        version,
        metadata,
        objects,
        hooks,
    })
}

/// Where the chart comes from.
enum ChartFetch {
    /// `spec.chart.spec` of a HelmRepository.
    Repository {
        url: String,
        credentials: plumb_source::Credentials,
        /// The repository's interval.
        interval: Duration,
    },
    /// `spec.chartRef` to an OCIRepository: its artifact, pulled by digest.
    Artifact {
        spec: Box<super::oci_repository::OciRepositorySpec>,
        access: plumb_source::helm::oci::OciAccess,
        /// The OCIRepository's revision (`<tag>@sha256:<hex>` or `sha256:<hex>`).
        revision: String,
        /// Its manifest digest.
        digest: String,
    },
}

/// The chart source of a `chartRef` to an OCIRepository: the repository must be ready with
/// an artifact, its secret readable.
async fn oci_chart_fetch(flux: &Flux, spec: &HelmReleaseSpec) -> Step<ChartFetch> {
    let source_id = (
        spec.chart.source_namespace.clone(),
        spec.chart.source_name.clone(),
    );
    let not_ready = |message: String| {
        Box::new((
            Outcome::failed("ArtifactFailed", message),
            Some(REQUEUE_DEPENDENCY),
        ))
    };
    let repository = flux
        .get(FluxKind::OciRepository, &source_id)
        .ok_or_else(|| {
            not_ready(format!(
                "could not get Source object: OCIRepository '{}/{}' not found",
                source_id.0, source_id.1
            ))
        })?;
    let (oci, revision) = super::oci_repository::ready_artifact(&repository).map_err(not_ready)?;
    let digest = super::oci_repository::digest_of(&revision)
        .unwrap_or_default()
        .to_string();
    let access = super::oci_repository::access_of(flux, &source_id.0, &oci)
        .await
        .map_err(|message| {
            not_ready(format!(
                "OCIRepository '{}/{}': {message}",
                source_id.0, source_id.1
            ))
        })?;
    Ok(ChartFetch::Artifact {
        spec: Box::new(oci),
        access,
        revision,
        digest,
    })
}

/// The chart in an OCIRepository's artifact (blocking): (version, sandbox root, chart
/// directory, Chart.yaml). As Flux's helm-controller does, the tag of the revision must be
/// the chart's version, and the version gets the digest's first 12 hex digits as build
/// metadata (`6.14.1+3b6cdcc7adcc`), so a tag pushed again is a new chart version.
fn artifact_chart(
    sources: &dyn crate::sources::Sources,
    oci: &super::oci_repository::OciRepositorySpec,
    access: &plumb_source::helm::oci::OciAccess,
    revision: &str,
    digest: &str,
) -> Result<(String, std::path::PathBuf, std::path::PathBuf, Value), String> {
    let pulled = super::oci_repository::pull_recorded(sources, oci, access, digest)
        .map_err(|message| format!("artifact {revision}: {message}"))?;
    let root = pulled.root;
    let chart_dir = if root.join("Chart.yaml").is_file() {
        root.clone()
    } else {
        let mut found = std::fs::read_dir(&root)
            .map_err(|e| format!("artifact {revision}: cannot list its files: {e}"))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.join("Chart.yaml").is_file());
        match (found.next(), found.next()) {
            (Some(dir), None) => dir,
            (None, _) => {
                return Err(format!(
                    "artifact {revision} holds no Helm chart (no Chart.yaml at its top or in one top-level directory; layer media type {})",
                    pulled.layer_media_type
                ));
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "artifact {revision} holds more than one chart directory"
                ));
            }
        }
    };
    let text = std::fs::read_to_string(chart_dir.join("Chart.yaml"))
        .map_err(|e| format!("artifact {revision}: cannot read Chart.yaml: {e}"))?;
    let mut metadata: Value = serde_saphyr::from_str(&text)
        .map_err(|e| format!("artifact {revision}: invalid Chart.yaml: {e}"))?;
    let version = str_at(&metadata, &["version"]).to_string();
    let parsed = plumb_core::semver::Version::parse(&version)
        .map_err(|e| format!("artifact {revision}: chart version {version:?}: {e}"))?;
    if let Some(tag) = super::oci_repository::tag_of(revision) {
        let tag_version = plumb_core::semver::Version::parse(tag)
            .map_err(|_| format!("failed parsing artifact revision {tag}"))?;
        if tag_version.cmp(&parsed) != std::cmp::Ordering::Equal {
            return Err(format!(
                "artifact revision {tag} does not match chart version {version}"
            ));
        }
    }
    let short = digest.strip_prefix("sha256:").unwrap_or(digest);
    let core = version.split('+').next().unwrap_or(&version);
    let mutated = format!("{core}+{}", short.get(..12).unwrap_or(short));
    if let Some(fields) = metadata.as_object_mut() {
        fields.insert("version".into(), json!(mutated));
    }
    Ok((mutated, root, chart_dir, metadata))
}

/// `spec.commonMetadata`: its labels and annotations set on `object` (they win over the
/// chart's, as Flux's post-renderer sets them).
fn add_common_metadata(object: &mut Value, common: &super::helm_spec::CommonMetadata) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, entries) in [
        ("labels", &common.labels),
        ("annotations", &common.annotations),
    ] {
        if entries.is_empty() {
            continue;
        }
        let map = metadata.entry(field).or_insert_with(|| json!({}));
        if !map.is_object() {
            *map = json!({});
        }
        if let Some(map) = map.as_object_mut() {
            for (key, value) in entries {
                map.insert(key.clone(), json!(value));
            }
        }
    }
}

/// Labels and annotations Flux's helm-controller and Helm put on every object.
fn label(object: &mut Value, id: &AppId, spec: &HelmReleaseSpec) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(NAME_LABEL.into(), json!(id.1));
        labels.insert(NAMESPACE_LABEL.into(), json!(id.0));
        labels.insert("app.kubernetes.io/managed-by".into(), json!("Helm"));
    }
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert("meta.helm.sh/release-name".into(), json!(spec.release_name));
        annotations.insert(
            "meta.helm.sh/release-namespace".into(),
            json!(spec.target_namespace),
        );
    }
}

/// Dependencies, source, values, chart, apply, prune, wait, record.
async fn run(
    flux: &Arc<Flux>,
    cluster: &plumb_kube::Cluster,
    id: &AppId,
    object: &Value,
    spec: &HelmReleaseSpec,
) -> Step<Outcome> {
    check_dependencies(flux, id, spec)?;
    flux.context
        .options
        .flux_tenancy
        .check_reference(
            &id.0,
            (
                &spec.chart.source_kind,
                &spec.chart.source_namespace,
                &spec.chart.source_name,
            ),
        )
        .map_err(|message| {
            Box::new((
                Outcome::failed("AccessDenied", message),
                Some(spec.interval),
            ))
        })?;
    let previous = object.get("status").cloned().unwrap_or(Value::Null);
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    // The source.
    let fetch = if spec.chart.source_kind == "OCIRepository" {
        oci_chart_fetch(flux, spec).await?
    } else {
        let source_id = (
            spec.chart.source_namespace.clone(),
            spec.chart.source_name.clone(),
        );
        let Some(repository) = flux.get(FluxKind::HelmRepository, &source_id) else {
            return stop(
                Outcome::failed(
                    "ArtifactFailed",
                    format!("HelmRepository '{}/{}' not found", source_id.0, source_id.1),
                ),
                Some(REQUEUE_DEPENDENCY),
            );
        };
        if conditions::status_of(&repository, conditions::READY) != Some("True") {
            return stop(
                Outcome::failed(
                    "ArtifactFailed",
                    format!(
                        "HelmRepository '{}/{}' is not ready",
                        source_id.0, source_id.1
                    ),
                ),
                Some(REQUEUE_DEPENDENCY),
            );
        }
        let url = str_at(&repository, &["spec", "url"]).to_string();
        let secret_ref = repository
            .pointer("/spec/secretRef/name")
            .and_then(Value::as_str);
        let (credentials, _) =
            super::helm_repository::secret_credentials(flux, &source_id.0, secret_ref)
                .await
                .map_err(|message| {
                    Box::new((
                        Outcome::failed(
                            "ArtifactFailed",
                            format!(
                                "HelmRepository '{}/{}': {message}",
                                source_id.0, source_id.1
                            ),
                        ),
                        Some(REQUEUE_DEPENDENCY),
                    ))
                })?;
        let interval = repository
            .pointer("/spec/interval")
            .and_then(Value::as_str)
            .and_then(plumb_core::application::parse_duration)
            .unwrap_or(spec.interval);
        ChartFetch::Repository {
            url,
            credentials,
            interval,
        }
    };
    // Values.
    let values = compose_values(flux, &id.0, spec).await.map_err(|message| {
        Box::new((Outcome::failed("InitFailed", message), Some(spec.interval)))
    })?;
    let config_digest = digest_of(&values);
    // The last release, if any.
    let found = records(cluster, &spec.storage_namespace, &spec.release_name)
        .await
        .map_err(|message| {
            Box::new((
                Outcome::failed("GetLastReleaseFailed", message),
                Some(REQUEUE_DEPENDENCY),
            ))
        })?;
    let last = match helm_storage::latest(&found) {
        Some(secret) => Some(Release::from_secret(secret).map_err(|message| {
            Box::new((
                Outcome::failed("GetLastReleaseFailed", message),
                Some(REQUEUE_DEPENDENCY),
            ))
        })?),
        None => None,
    };
    let action = match &last {
        Some(release) if release.status == "deployed" || release.status == "superseded" => {
            Action::Upgrade
        }
        // Uninstalled with its history kept: installed again, numbering on.
        Some(release) if release.status == "uninstalled" => Action::Install,
        Some(release) if release.version > 1 => Action::Upgrade,
        _ => Action::Install,
    };
    // Remediation: stop after the allowed retries, until the spec changes.
    let retries = match action {
        Action::Install => spec.install_retries,
        Action::Upgrade => spec.upgrade_retries,
    };
    let same_generation = previous
        .get("lastAttemptedGeneration")
        .and_then(Value::as_i64)
        == Some(generation);
    let failed_so_far = failures(
        &previous,
        match action {
            Action::Install => "installFailures",
            Action::Upgrade => "upgradeFailures",
        },
    );
    let strategy = match action {
        Action::Install => spec.install_strategy,
        Action::Upgrade => spec.upgrade_strategy,
    };
    if strategy == ReleaseStrategy::RemediateOnFailure
        && same_generation
        && !super::wants_reconcile(object)
        && retries >= 0
        && failed_so_far > retries
    {
        let last_error = previous
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == RELEASED))
            .map(|c| format!(": {}", str_at(c, &["message"])))
            .unwrap_or_default();
        let mut outcome = Outcome::failed(
            "RetriesExceeded",
            format!(
                "Failed to {} after {failed_so_far} attempt(s){last_error}; change the spec or request a reconcile to try again",
                action.title()
            ),
        );
        outcome.stalled = true;
        return stop(outcome, None);
    }
    let freshness = match &fetch {
        _ if super::wants_reconcile(object) => Freshness::Now,
        ChartFetch::Repository { interval, .. } => Freshness::Within(spec.interval.min(*interval)),
        ChartFetch::Artifact { .. } => Freshness::Within(spec.interval),
    };
    let revision_digest = match &fetch {
        ChartFetch::Artifact { digest, .. } => digest.clone(),
        ChartFetch::Repository { .. } => String::new(),
    };
    let include_crds = match action {
        Action::Install => spec.install_crds == CrdPolicy::Apply,
        Action::Upgrade => spec.upgrade_crds == CrdPolicy::Apply,
    };
    let rendered = render(flux, spec, fetch, freshness, &values, include_crds)
        .await
        .map_err(|(reason, message)| {
            // Rendering is part of the install or upgrade, and fails as it.
            let reason = if reason == "InstallFailed" {
                action.failed()
            } else {
                reason
            };
            let mut outcome = Outcome::failed(reason, message.clone());
            if reason != "ArtifactFailed" {
                outcome.released = Some(Condition::new(RELEASED, "False", reason, message));
                outcome.failure = Some(action);
                outcome.attempt = Some(Attempt {
                    chart_version: String::new(),
                    revision_digest: revision_digest.clone(),
                    config_digest: config_digest.clone(),
                    action,
                });
            }
            Box::new((outcome, Some(spec.interval.min(REQUEUE_DEPENDENCY))))
        })?;
    let attempt = Attempt {
        chart_version: rendered.version.clone(),
        revision_digest: revision_digest.clone(),
        config_digest: config_digest.clone(),
        action,
    };
    let warnings: Vec<String> = Vec::new();
    let fail = |message: String, warnings: &[String]| {
        let mut outcome = Outcome::failed(action.failed(), message.clone());
        outcome.attempt = Some(attempt.clone());
        outcome.failure = Some(action);
        outcome.released = Some(Condition::new(RELEASED, "False", action.failed(), message));
        outcome.warnings = warnings.to_vec();
        Box::new((outcome, Some(spec.interval.min(REQUEUE_DEPENDENCY))))
    };
    if action == Action::Install && spec.create_namespace {
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": spec.target_namespace}});
        if let Err(error) = cluster
            .apply(
                &namespace,
                &plumb_kube::ApplyOptions {
                    dry_run: plumb_kube::DryRun::None,
                    force: true,
                },
            )
            .await
        {
            return Err(fail(
                format!(
                    "cannot create namespace {:?}: {}",
                    spec.target_namespace,
                    error_chain(&error)
                ),
                &warnings,
            ));
        }
    }
    let mut manifests = rendered.objects;
    for manifest in manifests.iter_mut() {
        label(&mut manifest.object, id, spec);
    }
    let mut hooks = rendered.hooks;
    for hook in hooks.iter_mut() {
        label(&mut hook.object, id, spec);
    }
    // Hooks run when the release changes (install, new chart version or values), not when a
    // reconcile only corrects drift.
    let renderers_changed = post_renderers_changed(object);
    let new_release = !last.as_ref().is_some_and(|l| {
        l.status == "deployed"
            && str_at(&l.chart_metadata, &["version"]) == rendered.version
            && digest_of(&l.config) == config_digest
            && !renderers_changed
    });
    // An unchanged release is left alone unless drift detection says otherwise; correcting
    // drift records no new release.
    if let Some(last) = last
        .as_ref()
        .filter(|l| !new_release && l.namespace == spec.target_namespace)
    {
        if spec.drift.mode != DriftMode::Disabled {
            let drifted =
                helm_drift::detect(cluster, &manifests, &spec.target_namespace, &spec.drift)
                    .await
                    .map_err(|message| {
                        fail(
                            format!("cannot compare the release with the cluster: {message}"),
                            &warnings,
                        )
                    })?;
            if !drifted.is_empty() {
                let release = format!(
                    "{}/{}.v{}",
                    spec.target_namespace, spec.release_name, last.version
                );
                let what = helm_drift::describe(&drifted);
                if spec.drift.mode == DriftMode::Warn {
                    let message = format!(
                        "Cluster state of release {release} has drifted from the desired state: {what}"
                    );
                    flux.record_event(
                        FluxKind::HelmRelease,
                        object,
                        "Warning",
                        "DriftDetected",
                        &message,
                    )
                    .await;
                } else {
                    let manifests = drifted.into_iter().map(|d| d.manifest).collect();
                    let settings = ApplySettings {
                        force: spec.force,
                        default_namespace: Some(spec.target_namespace.clone()),
                    };
                    let applied = apply::apply_all(cluster, manifests, &settings)
                        .await
                        .map_err(|message| {
                            fail(format!("cannot correct drift: {message}"), &warnings)
                        })?;
                    let problems: Vec<String> = applied
                        .errors
                        .into_iter()
                        .chain(applied.conflicts)
                        .collect();
                    if !problems.is_empty() {
                        return Err(fail(
                            format!("cannot correct drift: {}", problems.join("; ")),
                            &warnings,
                        ));
                    }
                    let message =
                        format!("Cluster state of release {release} has been corrected: {what}");
                    flux.record_event(
                        FluxKind::HelmRelease,
                        object,
                        "Normal",
                        "DriftCorrected",
                        &message,
                    )
                    .await;
                }
            }
        }
        let message = format!(
            "Helm {} succeeded for release {}/{}.v{} with chart {}@{}",
            action.title(),
            spec.target_namespace,
            spec.release_name,
            last.version,
            str_at(&rendered.metadata, &["name"]),
            rendered.version
        );
        let mut outcome = Outcome {
            ready: "True",
            reason: action.succeeded().to_string(),
            message,
            stalled: false,
            released: None,
            attempt: None,
            failure: None,
            history: None,
            reset_failures: true,
            warnings,
            remediated: None,
            tested: None,
        };
        keep_ready(&previous, &mut outcome);
        return Ok(outcome);
    }
    let (pre, post) = match action {
        Action::Install => (HookEvent::PreInstall, HookEvent::PostInstall),
        Action::Upgrade => (HookEvent::PreUpgrade, HookEvent::PostUpgrade),
    };
    if new_release
        && let Err(message) =
            helm_hooks::run(cluster, &hooks, pre, &spec.target_namespace, spec.timeout).await
    {
        return Err(fail(message, &warnings));
    }
    let sources: Vec<(String, Value)> = manifests
        .iter()
        .map(|m| (m.origin.file.clone(), m.object.clone()))
        .collect();
    let applied = apply::apply_all(
        cluster,
        manifests,
        &ApplySettings {
            force: spec.force,
            default_namespace: Some(spec.target_namespace.clone()),
        },
    )
    .await
    .map_err(|message| {
        fail(
            format!("Helm {} failed, nothing applied: {message}", action.title()),
            &warnings,
        )
    })?;
    if !applied.errors.is_empty() {
        return Err(fail(
            format!(
                "Helm {} failed: {}",
                action.title(),
                applied.errors.join("; ")
            ),
            &warnings,
        ));
    }
    if !applied.conflicts.is_empty() {
        return Err(fail(
            format!(
                "not applied, owned elsewhere: {}",
                applied.conflicts.join("; ")
            ),
            &warnings,
        ));
    }
    // Prune what the last release had and this one has not.
    let new_entries = entries_of(&applied.objects);
    if let Some(last) = &last {
        let stale = apply::stale(&entries_of(&last.objects()), &new_entries);
        if let Err(message) = apply::prune(cluster, &stale, &owner(id)).await {
            return Err(fail(
                format!("cannot delete objects the chart no longer renders: {message}"),
                &warnings,
            ));
        }
    }
    let wait = match action {
        Action::Install => spec.install_wait,
        Action::Upgrade => spec.upgrade_wait,
    };
    let mut wait_error = None;
    if wait
        && !applied.objects.is_empty()
        && let Err(message) = apply::wait_healthy(cluster, &applied.objects, spec.timeout).await
    {
        wait_error = Some(message);
    }
    if new_release
        && wait_error.is_none()
        && let Err(message) =
            helm_hooks::run(cluster, &hooks, post, &spec.target_namespace, spec.timeout).await
    {
        wait_error = Some(message);
    }
    // Record the release when something changed (or the last one failed).
    let unchanged = last.as_ref().is_some_and(|l| {
        l.status == "deployed"
            && str_at(&l.chart_metadata, &["version"]) == rendered.version
            && digest_of(&l.config) == config_digest
            && !renderers_changed
            && applied.changed == 0
    });
    let mut history = previous
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let version;
    if unchanged && wait_error.is_none() {
        version = last.as_ref().map_or(1, |l| l.version);
    } else {
        let time = now();
        version = last.as_ref().map_or(1, |l| l.version + 1);
        let status = if wait_error.is_some() {
            "failed"
        } else {
            "deployed"
        };
        let objects: Vec<(String, Value)> = sources
            .into_iter()
            .filter(|(_, o)| str_at(o, &["kind"]) != "CustomResourceDefinition")
            .map(|(file, mut o)| {
                let namespaced = applied.objects.iter().any(|(_, key)| {
                    key.kind == str_at(&o, &["kind"])
                        && key.name == str_at(&o, &["metadata", "name"])
                        && !key.namespace.is_empty()
                });
                if namespaced
                    && str_at(&o, &["metadata", "namespace"]).is_empty()
                    && let Some(metadata) = o.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    metadata.insert("namespace".into(), json!(spec.target_namespace));
                }
                (file, o)
            })
            .collect();
        let release = Release {
            name: spec.release_name.clone(),
            namespace: spec.target_namespace.clone(),
            version,
            status: status.into(),
            description: match (&wait_error, action) {
                (Some(message), _) => format!("{} failed: {message}", action.title()),
                (None, Action::Install) => "Install complete".into(),
                (None, Action::Upgrade) => "Upgrade complete".into(),
            },
            first_deployed: last
                .as_ref()
                .map(|l| l.first_deployed.clone())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| time.clone()),
            last_deployed: time.clone(),
            chart_metadata: rendered.metadata.clone(),
            config: values.clone(),
            manifest: helm_storage::manifest_of(&objects),
            hooks: hooks
                .iter()
                .map(|h| (h.origin.file.clone(), h.object.clone()))
                .collect(),
        };
        let secret = release
            .to_secret(&spec.storage_namespace)
            .map_err(|message| fail(format!("cannot record the release: {message}"), &warnings))?;
        if let Err(error) = cluster.create(&secret).await {
            return Err(fail(
                format!("cannot record the release: {}", error_chain(&error)),
                &warnings,
            ));
        }
        // A successful release supersedes the previous deployed record (its label and its
        // JSON); after a failed one the previous stays deployed, as Helm leaves it.
        for old in found.iter().filter(|_| status == "deployed") {
            if str_at(old, &["metadata", "labels", "status"]) != "deployed" {
                continue;
            }
            if let Ok(old_release) = Release::from_secret(old) {
                supersede(cluster, &spec.storage_namespace, old_release).await;
            }
        }
        prune_records(cluster, spec, &found, version).await;
        let snapshot = json!({
            "name": spec.release_name,
            "namespace": spec.target_namespace,
            "version": version,
            "status": status,
            "chartName": str_at(&rendered.metadata, &["name"]),
            "chartVersion": rendered.version,
            "appVersion": str_at(&rendered.metadata, &["appVersion"]),
            "configDigest": config_digest,
            "firstDeployed": release.first_deployed,
            "lastDeployed": time,
        });
        for entry in history.iter_mut() {
            if str_at(entry, &["status"]) == "deployed" {
                entry["status"] = json!("superseded");
            }
        }
        history.insert(0, snapshot);
        history.truncate(if spec.max_history == 0 {
            5
        } else {
            spec.max_history
        });
    }
    if let Some(message) = wait_error {
        let mut stopped = fail(
            format!(
                "Helm {} failed for release {}/{} with chart {}@{}: {message}",
                action.title(),
                spec.target_namespace,
                spec.release_name,
                str_at(&rendered.metadata, &["name"]),
                rendered.version
            ),
            &warnings,
        );
        stopped.0.history = Some(history);
        return Err(stopped);
    }
    let release_name = format!(
        "{}/{}.v{version} with chart {}@{}",
        spec.target_namespace,
        spec.release_name,
        str_at(&rendered.metadata, &["name"]),
        rendered.version
    );
    // Helm's tests, after a release that changed something.
    let mut tested = None;
    if spec.test.enable && !unchanged {
        let selected: Vec<plumb_core::manifest::Manifest> = hooks
            .iter()
            .filter(|h| spec.test.selects(str_at(&h.object, &["metadata", "name"])))
            .cloned()
            .collect();
        let ran = helm_hooks::run(
            cluster,
            &selected,
            HookEvent::Test,
            &spec.target_namespace,
            spec.test.timeout.unwrap_or(spec.timeout),
        )
        .await;
        let ignored = match action {
            Action::Install => spec.install_ignore_test_failures,
            Action::Upgrade => spec.upgrade_ignore_test_failures,
        };
        match ran {
            Ok(count) => {
                tested = Some(Condition::new(
                    TEST_SUCCESS,
                    "True",
                    "TestSucceeded",
                    format!(
                        "Helm test succeeded for release {release_name}: {}",
                        if count == 0 {
                            "no test hooks".to_string()
                        } else {
                            format!("{count} test hooks completed successfully")
                        }
                    ),
                ));
            }
            Err(problem) => {
                let message = format!("Helm test failed for release {release_name}: {problem}");
                let condition = Condition::new(TEST_SUCCESS, "False", "TestFailed", &message);
                if !ignored {
                    let mut stopped = fail(message.clone(), &warnings);
                    // The release itself succeeded; its tests did not.
                    stopped.0.reason = "TestFailed".into();
                    stopped.0.released = Some(Condition::new(
                        RELEASED,
                        "True",
                        action.succeeded(),
                        format!(
                            "Helm {} succeeded for release {release_name}",
                            action.title()
                        ),
                    ));
                    stopped.0.tested = Some(condition);
                    stopped.0.history = Some(history);
                    return Err(stopped);
                }
                tested = Some(condition);
            }
        }
    }
    let message = format!(
        "Helm {} succeeded for release {release_name}",
        action.title(),
    );
    let mut outcome = Outcome {
        ready: "True",
        reason: action.succeeded().to_string(),
        message: message.clone(),
        stalled: false,
        released: Some(Condition::new(
            RELEASED,
            "True",
            action.succeeded(),
            &message,
        )),
        attempt: Some(attempt),
        failure: None,
        history: Some(history),
        reset_failures: true,
        warnings,
        remediated: None,
        tested,
    };
    if unchanged {
        keep_ready(&previous, &mut outcome);
    }
    Ok(outcome)
}

/// Nothing new was released: the `Ready` condition of the release in place stays as it is.
fn keep_ready(previous: &Value, outcome: &mut Outcome) {
    if let Some(old) = previous
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == conditions::READY))
        .filter(|c| str_at(c, &["status"]) == "True")
    {
        outcome.reason = str_at(old, &["reason"]).to_string();
        outcome.message = str_at(old, &["message"]).to_string();
        outcome.released = None;
        outcome.attempt = None;
        outcome.history = None;
    }
}

/// Deletes a release record Secret (a failure is logged: an old record harms nothing).
async fn delete_record(cluster: &plumb_kube::Cluster, namespace: &str, record: &Value) {
    let name = str_at(record, &["metadata", "name"]);
    if let Err(error) = cluster
        .delete(
            "v1",
            "Secret",
            namespace,
            name,
            plumb_kube::Propagation::Background,
        )
        .await
    {
        tracing::warn!(secret = name, error = %error_chain(&error), "cannot delete a release record");
    }
}

/// Deletes records beyond `spec.maxHistory` (0 keeps all).
async fn prune_records(
    cluster: &plumb_kube::Cluster,
    spec: &HelmReleaseSpec,
    found: &[Value],
    newest: u64,
) {
    if spec.max_history == 0 {
        return;
    }
    let keep_from = newest.saturating_sub(spec.max_history as u64 - 1);
    for record in found {
        let version = str_at(record, &["metadata", "labels", "version"])
            .parse::<u64>()
            .unwrap_or(0);
        if version < keep_from {
            delete_record(cluster, &spec.storage_namespace, record).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_paths_set_nested_strings() {
        let mut values = json!({"a": {"keep": 1}});
        set_path(&mut values, "a.b.c", json!("x")).expect("set");
        assert_eq!(values, json!({"a": {"keep": 1, "b": {"c": "x"}}}));
        assert!(set_path(&mut values, "a..c", json!("x")).is_err());
    }

    #[test]
    fn values_merge_maps_and_replace_the_rest() {
        let mut base = json!({"a": {"x": 1, "y": [1]}, "b": 1});
        plumb_render::merge_values(&mut base, json!({"a": {"y": [2], "z": 3}, "b": {"c": 1}}));
        assert_eq!(
            base,
            json!({"a": {"x": 1, "y": [2], "z": 3}, "b": {"c": 1}})
        );
    }

    #[test]
    fn failure_counts_restart_on_a_new_generation() {
        let object = json!({"metadata": {"generation": 3, "name": "p", "namespace": "n"},
            "status": {"installFailures": 2, "lastAttemptedGeneration": 2}});
        let mut outcome = Outcome::failed("InstallFailed", "boom");
        outcome.failure = Some(Action::Install);
        let status = status_for(&object, None, &outcome);
        assert_eq!(status["installFailures"], 1);
        let object = json!({"metadata": {"generation": 3, "name": "p", "namespace": "n"},
            "status": {"installFailures": 2, "lastAttemptedGeneration": 3}});
        let status = status_for(&object, None, &outcome);
        assert_eq!(status["installFailures"], 3);
        assert_eq!(status["failures"], 3);
    }
}
