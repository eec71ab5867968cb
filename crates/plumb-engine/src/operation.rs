//! Sync operations: what `plumb app sync`, rollback and automated sync do.
//!
//! An operation is requested by setting `.operation` on the Application (as Argo CD's CLI and
//! UI do; the controller does it too for automated syncs). Its progress is written to
//! `status.operationState` *before* anything is applied, so a controller killed mid-sync finds
//! the operation still set on restart and runs it again; server-side apply is idempotent, and
//! the history entry is written once, with the operation cleared in the same patch.

use crate::Context;
use crate::clusters::Destination;
use crate::reconcile::{Comparison, NotWritten, Wanted, patch_app, patch_app_unless_terminating};
use crate::sources::error_chain;
use crate::status::now;
use plumb_core::application::{ApplicationSpec, Source, parse_duration};
use plumb_core::health::HealthStatus;
use plumb_core::hooks::SyncPhase;
use plumb_core::key::{ObjectKey, str_at, version_of};
use plumb_core::manifest::Manifest;
use plumb_core::plan::{Plan, PlanOptions, Trigger};
use plumb_core::sync_options::{
    DELETION_APPROVED_ANNOTATION, DeleteOption, PruneOption, SyncOptions,
};
use plumb_core::tracking::is_owned_by;
use plumb_core::waves::{
    OperationPhase, Outcome as TaskOutcome, ResourceResult, ResultCode, Step, SyncPlan,
    SyncProgress, SyncTask,
};
use plumb_kube::{ApplyOptions, DryRun, Propagation, Validation};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The finalizer that makes deleting an Application delete its objects.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// What running an operation produced.
pub(crate) struct Outcome {
    pub state: Value,
    pub history_entry: Option<Value>,
    /// Set when the operation is not over (waiting for a wave's health or hooks, or a retry
    /// is scheduled): look again after this delay; the operation stays set.
    pub retry_after: Option<Duration>,
    /// The operation ended because termination was asked for.
    pub terminated: bool,
}

/// The revision an operation pins (rollback, `sync --revision`).
pub(crate) fn pinned_revision(operation: &Value) -> Option<String> {
    operation
        .pointer("/sync/revision")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// The source an operation pins (rollback to a history entry with another source).
pub(crate) fn pinned_source(operation: &Value) -> Option<Source> {
    operation
        .pointer("/sync/source")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
}

/// What automation calls for now.
pub(crate) enum AutoSync {
    /// Start this operation.
    Run(Value),
    /// Self-heal is due but the last sync was moments ago; look again after this delay.
    Later(Duration),
    /// Nothing to do.
    No,
}

/// The least time between two self-heal syncs of the same revision, so an object the server
/// keeps changing cannot make the controller apply in a tight loop (Argo CD waits 5 s).
const SELF_HEAL_SPACING: Duration = Duration::from_secs(1);

/// The automated operation to start now, if automation calls for one.
///
/// Argo CD's rules: sync when out of sync on a revision not yet attempted; a revision whose
/// automated sync failed is not attempted again (retries are the operation's own business);
/// after a successful sync of the same revision, only `selfHeal` re-applies drift. Pruning that
/// a guard holds back does not count as drift.
pub(crate) fn automated(
    spec: &ApplicationSpec,
    comparison: &Comparison,
    last: Option<&Value>,
    prune_blocked: bool,
) -> AutoSync {
    let Some(automated) = spec.automated() else {
        return AutoSync::No;
    };
    if comparison.is_synced() {
        return AutoSync::No;
    }
    let only_pruning = comparison.objects.iter().all(|o| o.in_sync);
    if only_pruning && (!automated.prune || prune_blocked) {
        return AutoSync::No;
    }
    if comparison.objects.iter().any(|o| o.error.is_some()) {
        // A comparison error is shown as a condition; an automated sync would only fail.
        return AutoSync::No;
    }
    let revision = &comparison.revision.revision;
    if let Some(last) = last {
        let last_revision = crate::multi_source::result_key(last);
        let phase = str_at(last, &["phase"]);
        if last_revision == *revision && crate::multi_source::same_sources(spec, last) {
            if matches!(phase, "Failed" | "Error") || !automated.self_heal {
                return AutoSync::No;
            }
            let finished = chrono::DateTime::parse_from_rfc3339(str_at(last, &["finishedAt"])).ok();
            if let Some(finished) = finished {
                let since = (chrono::Utc::now() - finished.with_timezone(&chrono::Utc))
                    .to_std()
                    .unwrap_or_default();
                if since < SELF_HEAL_SPACING {
                    return AutoSync::Later(SELF_HEAL_SPACING - since);
                }
            }
        }
    }
    let sync = match &comparison.multi {
        Some(multi) => multi.automated_sync(automated.prune),
        None => json!({"revision": revision, "prune": automated.prune}),
    };
    AutoSync::Run(json!({
        "sync": sync,
        "initiatedBy": {"automated": true},
        "retry": spec.sync_policy.as_ref().and_then(|p| p.retry.clone()),
    }))
}

/// Runs (or resumes) `operation` against the comparison just made.
///
/// The sync is a state machine over [`SyncPlan`]: phases (PreSync → Sync → PostSync), waves,
/// hooks. Each reconcile applies what is due and checks what is running; progress is written to
/// `status.operationState` after every step, so a restarted controller rebuilds the same plan
/// (same generated hook names) and continues where the last one stopped.
pub(crate) async fn run(
    context: &Arc<Context>,
    app: &Value,
    spec: &ApplicationSpec,
    instance: &str,
    comparison: &Comparison,
    operation: &Value,
    last: Option<&Value>,
) -> Outcome {
    let revision = comparison.revision.revision.clone();
    let scope = Scope::of(operation);
    // A selective sync or a dry run runs no hooks, as in Argo CD.
    let hooks = comparison
        .hooks
        .iter()
        .filter(|_| scope.resources.is_empty() && !scope.dry_run);
    let desired: Vec<Manifest> = comparison
        .desired()
        .into_iter()
        .filter(|m| scope.includes(&m.key()))
        .chain(hooks.cloned())
        .collect();
    let default_namespace = spec.destination.namespace.clone();
    // Termination asked for (`plumb app terminate-op`): stop here, whatever was running.
    if let Some(last) = last.filter(|l| str_at(l, &["phase"]) == "Terminating") {
        let mut progress = progress_of(last);
        progress.phase = OperationPhase::Terminating;
        return terminate(
            context, app, spec, comparison, operation, &desired, progress,
        )
        .await;
    }
    // A failed attempt waiting for its retry: nothing happens before the backoff has passed,
    // whatever woke this reconcile (Argo CD's `NextRetryAt` from the attempt's `finishedAt`).
    if let Some(last) = last.filter(|l| l.get("operation") == Some(operation))
        && let Some(wait) = retry_wait(operation, last, context.options.clock.now())
    {
        return Outcome {
            state: last.clone(),
            history_entry: None,
            retry_after: Some(wait),
            terminated: false,
        };
    }
    // The same operation still running: resume it, unless it already failed (a pending retry).
    let resumed = last
        .filter(|l| str_at(l, &["phase"]) == "Running" && l.get("operation") == Some(operation))
        .map(progress_of);
    let (mut progress, fresh) = match resumed {
        Some(progress) if progress.revision == revision => {
            let plan = SyncPlan::build(&desired, &progress.plan_options(&default_namespace, false));
            // A failed attempt whose retry is due (`finishedAt` kept while Running), or one
            // whose failure the plan shows.
            let failed = last.is_some_and(|l| !str_at(l, &["finishedAt"]).is_empty())
                || plan.is_ok_and(|p| {
                    matches!(p.next_step(&progress), Step::Done { succeeded: false })
                });
            if failed {
                let mut retry =
                    SyncProgress::start(revision.clone(), context.options.clock.now().timestamp());
                retry.retry_count = progress.retry_count;
                (retry, true)
            } else {
                (progress, false)
            }
        }
        Some(progress) => {
            let mut retry =
                SyncProgress::start(revision.clone(), context.options.clock.now().timestamp());
            retry.retry_count = progress.retry_count;
            (retry, true)
        }
        None => (
            SyncProgress::start(revision.clone(), context.options.clock.now().timestamp()),
            true,
        ),
    };
    let mut state = state_of(operation, comparison, &progress);
    if fresh {
        // Persist first: a crash from here on leaves the operation set, to be resumed.
        let mut started = json!({"status": {"operationState": state}});
        if app.get("operation").is_none_or(Value::is_null) {
            started["operation"] = operation.clone();
        }
        patch_app(context, app, &started).await;
        record_event(
            context,
            app,
            "Normal",
            "OperationStarted",
            &format!("Initiated sync to {revision}"),
        )
        .await;
    }

    let step = execute(
        context,
        app,
        spec,
        instance,
        comparison,
        operation,
        &desired,
        &mut progress,
        fresh,
    )
    .await;
    if progress.phase == OperationPhase::Terminating {
        return terminate(
            context, app, spec, comparison, operation, &desired, progress,
        )
        .await;
    }
    state = state_of(operation, comparison, &progress);
    let phase = match step {
        Progress::Waiting => {
            return Outcome {
                state,
                history_entry: None,
                retry_after: Some(WAIT_INTERVAL),
                terminated: false,
            };
        }
        Progress::Finished => progress.phase,
    };
    let message = progress.message.clone();
    let mut retry_after = None;
    if phase != OperationPhase::Succeeded
        && let Some(delay) = retry_delay(operation, i64::from(progress.retry_count))
    {
        // Running with `finishedAt` set is Argo CD's mark of an attempt waiting for its retry.
        let finished = context.options.clock.now();
        state["phase"] = json!("Running");
        state["retryCount"] = json!(progress.retry_count + 1);
        state["finishedAt"] = json!(rfc3339(finished));
        state["message"] = json!(format!(
            "{message}. Retrying attempt #{} at {}",
            progress.retry_count + 1,
            rfc3339(finished + chrono::Duration::from_std(delay).unwrap_or_default())
        ));
        retry_after = Some(delay);
    }
    let succeeded = phase == OperationPhase::Succeeded;
    let (event_type, reason) = if succeeded {
        ("Normal", "OperationCompleted")
    } else {
        ("Warning", "OperationFailed")
    };
    let verb = if succeeded { "succeeded" } else { "failed" };
    record_event(
        context,
        app,
        event_type,
        reason,
        &format!("Sync operation to {revision} {verb}: {message}"),
    )
    .await;
    let history_entry = (succeeded && !scope.dry_run).then(|| {
        let mut entry = json!({"revision": revision, "deployedAt": now(), "deployStartedAt": state["startedAt"],
            "source": comparison.source, "initiatedBy": operation.get("initiatedBy").cloned().unwrap_or(json!({}))});
        if let Some(reason) = crate::rollback::reason_of(operation) {
            entry["reason"] = json!(reason);
        }
        if let Some(multi) = &comparison.multi {
            multi.write_history_entry(&mut entry);
        }
        entry
    });
    Outcome {
        state,
        history_entry,
        retry_after,
        terminated: false,
    }
}

/// Ends a terminated operation as Argo CD does: hooks still running are deleted, nothing else
/// runs (SyncFail hooks included), and the operation fails with "Operation terminated".
async fn terminate(
    context: &Arc<Context>,
    app: &Value,
    spec: &ApplicationSpec,
    comparison: &Comparison,
    operation: &Value,
    desired: &[Manifest],
    mut progress: SyncProgress,
) -> Outcome {
    let options = progress.plan_options(&spec.destination.namespace, false);
    if let Ok(plan) = SyncPlan::build(desired, &options) {
        for task in plan.running(&progress).into_iter().filter(|t| t.is_hook()) {
            let api_version = str_at(&task.manifest.object, &["apiVersion"]);
            let key = &task.key;
            if let Err(error) = comparison
                .destination
                .cluster
                .delete(
                    api_version,
                    &key.kind,
                    &key.namespace,
                    &key.name,
                    Propagation::Background,
                )
                .await
                && !error.is_not_found()
            {
                tracing::warn!(hook = %key, error = %error_chain(&error), "cannot delete the running hook of a terminated operation");
            }
            progress.set_task_phase(task, OperationPhase::Failed, "Operation terminated");
        }
    }
    finish(
        &mut progress,
        OperationPhase::Failed,
        "Operation terminated".to_string(),
    );
    record_event(
        context,
        app,
        "Warning",
        "OperationFailed",
        &format!(
            "Sync operation to {} terminated",
            comparison.revision.revision
        ),
    )
    .await;
    Outcome {
        state: state_of(operation, comparison, &progress),
        history_entry: None,
        retry_after: None,
        terminated: true,
    }
}

/// How often a waiting operation looks at its running tasks again (watch events of managed
/// objects usually wake it sooner).
const WAIT_INTERVAL: Duration = Duration::from_secs(1);

fn unix_to_rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Rebuilds the progress stored in `status.operationState`.
fn progress_of(state: &Value) -> SyncProgress {
    let started = chrono::DateTime::parse_from_rfc3339(str_at(state, &["startedAt"]))
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let resources: Vec<ResourceResult> = state
        .pointer("/syncResult/resources")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    SyncProgress {
        phase: OperationPhase::Running,
        message: str_at(state, &["message"]).to_string(),
        revision: crate::multi_source::result_key(state),
        started_at_unix: started,
        retry_count: state.get("retryCount").and_then(Value::as_u64).unwrap_or(0) as u32,
        resources,
        ..SyncProgress::default()
    }
}

/// `status.operationState` for the progress, in Argo CD's shape.
fn state_of(operation: &Value, comparison: &Comparison, progress: &SyncProgress) -> Value {
    let phase = match progress.phase {
        OperationPhase::Running => "Running",
        OperationPhase::Terminating => "Terminating",
        OperationPhase::Failed => "Failed",
        OperationPhase::Error => "Error",
        OperationPhase::Succeeded => "Succeeded",
    };
    let mut state = json!({
        "operation": operation,
        "phase": phase,
        "message": progress.message,
        "startedAt": unix_to_rfc3339(progress.started_at_unix),
        "syncResult": {"revision": progress.revision, "source": comparison.source,
            "resources": serde_json::to_value(&progress.resources).unwrap_or(json!([]))},
    });
    if let Some(multi) = &comparison.multi {
        multi.write_sync_result(&mut state);
    }
    if progress.retry_count > 0 {
        state["retryCount"] = json!(progress.retry_count);
    }
    if let Some(finished) = progress.finished_at_unix {
        state["finishedAt"] = json!(unix_to_rfc3339(finished));
    }
    state
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How long a failed attempt still waits for its retry at `now`; `None` when `last` is not a
/// pending retry or its time has come.
fn retry_wait(
    operation: &Value,
    last: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    if str_at(last, &["phase"]) != "Running" {
        return None;
    }
    let finished = chrono::DateTime::parse_from_rfc3339(str_at(last, &["finishedAt"])).ok()?;
    let attempt = last.get("retryCount").and_then(Value::as_i64)?;
    let delay = retry_delay(operation, attempt - 1)?;
    let due = finished.with_timezone(&chrono::Utc) + chrono::Duration::from_std(delay).ok()?;
    (due - now).to_std().ok().filter(|wait| !wait.is_zero())
}

/// Argo CD's retry backoff: `duration * factor^attempt`, capped at `maxDuration`.
fn retry_delay(operation: &Value, attempts_done: i64) -> Option<Duration> {
    let retry = operation.get("retry").filter(|r| !r.is_null())?;
    let limit = retry.get("limit").and_then(Value::as_i64).unwrap_or(0);
    if limit == 0 || (limit > 0 && attempts_done >= limit) {
        return None;
    }
    let duration_of = |field: &str, default: Duration| {
        retry
            .pointer(&format!("/backoff/{field}"))
            .and_then(|v| match v {
                Value::String(s) => parse_duration(s),
                Value::Number(n) => n.as_u64().map(Duration::from_secs),
                _ => None,
            })
            .unwrap_or(default)
    };
    let base = duration_of("duration", Duration::from_secs(5));
    let max = duration_of("maxDuration", Duration::from_secs(180));
    let factor = retry
        .pointer("/backoff/factor")
        .and_then(Value::as_i64)
        .unwrap_or(2)
        .max(1) as u32;
    let delay = base.saturating_mul(factor.saturating_pow(attempts_done.clamp(0, 30) as u32));
    Some(delay.min(max))
}

/// Where one reconcile left the operation.
enum Progress {
    /// Tasks are running (hooks, or resources of a wave that must become healthy first).
    Waiting,
    /// The operation is over; `progress.phase` says how.
    Finished,
}

fn finish(progress: &mut SyncProgress, phase: OperationPhase, message: String) -> Progress {
    progress.phase = phase;
    progress.message = message;
    progress.finished_at_unix = Some(chrono::Utc::now().timestamp());
    Progress::Finished
}

/// Writes the operation's progress; true when the operation is being terminated instead.
async fn persist(
    context: &Arc<Context>,
    app: &Value,
    operation: &Value,
    comparison: &Comparison,
    progress: &SyncProgress,
) -> bool {
    let state = state_of(operation, comparison, progress);
    let patch = json!({"status": {"operationState": state}});
    matches!(
        patch_app_unless_terminating(context, &crate::app_id(app), &patch).await,
        Err(NotWritten::Terminating)
    )
}

/// Whether a task applied earlier is done: hooks when they complete, resources when healthy
/// (by `rules`: a failing health script leaves it running, as in Argo CD, with the failure as
/// its message).
fn task_state(
    rules: &crate::health_config::HealthRules,
    task: &SyncTask,
    live: Option<&Value>,
) -> (OperationPhase, String) {
    let Some(live) = live else {
        return (
            OperationPhase::Running,
            "waiting for the object to appear".into(),
        );
    };
    match rules.health(live) {
        None => (OperationPhase::Succeeded, String::new()),
        Some(health) => match health.status {
            HealthStatus::Healthy => (OperationPhase::Succeeded, health.message),
            HealthStatus::Suspended if !task.is_hook() => {
                (OperationPhase::Succeeded, health.message)
            }
            HealthStatus::Degraded => (OperationPhase::Failed, health.message),
            _ => (OperationPhase::Running, health.message),
        },
    }
}

fn prune_result(
    item: &plumb_core::plan::PruneItem,
    status: ResultCode,
    message: &str,
) -> ResourceResult {
    ResourceResult {
        group: item.key.group.clone(),
        version: version_of(&item.api_version).to_string(),
        kind: item.key.kind.clone(),
        namespace: item.key.namespace.clone(),
        name: item.key.name.clone(),
        status: Some(status),
        message: message.to_string(),
        hook_type: None,
        hook_phase: if status == ResultCode::SyncFailed {
            OperationPhase::Failed
        } else {
            OperationPhase::Succeeded
        },
        sync_phase: SyncPhase::Sync,
    }
}

/// Applies one task as its sync options ask, with Argo CD's meaning: `Replace=true` replaces
/// the object (PUT, or create) instead of applying it; `Force=true` deletes and creates it
/// again when the server refuses the change (an immutable field) — with `Replace=true`, always;
/// `Validate=false` lets the server drop fields its schema does not know.
async fn apply_task(
    context: &Arc<Context>,
    destination: &Destination,
    task: &SyncTask,
    spec: &ApplicationSpec,
    operation: &Value,
) -> Result<Value, String> {
    let app_options = spec.sync_options();
    let object_options = SyncOptions::of_object(&task.manifest.object);
    let replace = app_options.replace || object_options.replace;
    let force = app_options.force || object_options.force || forced(operation);
    let validation = if app_options.validate_disabled || object_options.validate_disabled {
        Validation::Ignore
    } else {
        Validation::ServerDefault
    };
    // RespectIgnoreDifferences: what ignoreDifferences hides keeps its live value.
    let respected = if app_options.respect_ignore_differences && !spec.ignore_differences.is_empty()
    {
        let rules = plumb_core::ignore::IgnoreRules::compile(&spec.ignore_differences)
            .map_err(|e| format!("spec.ignoreDifferences: {e}"))?;
        let api_version = str_at(&task.manifest.object, &["apiVersion"]);
        match crate::reconcile::live_object(
            context,
            destination,
            api_version,
            &task.key,
            Wanted::Any,
        )
        .await
        {
            Ok(Some(live)) => Some(rules.respect(&live, &task.manifest.object)),
            Ok(None) | Err(plumb_kube::Error::UnknownKind { .. }) => None,
            Err(error) => return Err(error_chain(&error)),
        }
    } else {
        None
    };
    let object = respected.as_ref().unwrap_or(&task.manifest.object);
    let apply = || async {
        if replace {
            destination.cluster.replace(object).await
        } else {
            let options = ApplyOptions {
                dry_run: DryRun::None,
                force: true,
            };
            destination
                .cluster
                .apply_validated(object, &options, validation)
                .await
        }
    };
    if replace && force {
        delete_existing(destination, task).await?;
        return apply().await.map_err(|e| error_chain(&e));
    }
    match apply().await {
        Err(plumb_kube::Error::Api { code: 422, .. }) if force => {
            delete_existing(destination, task).await?;
            apply().await.map_err(|e| error_chain(&e))
        }
        result => result.map_err(|e| error_chain(&e)),
    }
}

/// Whether the operation asks for force (`plumb app sync --force`, Argo CD's
/// `syncStrategy.apply.force` or `syncStrategy.hook.force`): every object as with `Force=true`.
pub(crate) fn forced(operation: &Value) -> bool {
    [
        "/sync/syncStrategy/apply/force",
        "/sync/syncStrategy/hook/force",
    ]
    .iter()
    .any(|path| operation.pointer(path).and_then(Value::as_bool) == Some(true))
}

/// Deletes `task`'s object if it exists and waits (briefly) until it is gone.
async fn delete_existing(destination: &Destination, task: &SyncTask) -> Result<(), String> {
    let api_version = str_at(&task.manifest.object, &["apiVersion"]).to_string();
    let key = &task.key;
    let exists = |c: plumb_kube::Cluster, api_version: String, key: ObjectKey| async move {
        c.get(&api_version, &key.kind, &key.namespace, &key.name)
            .await
            .map(|o| o.is_some())
    };
    if !exists(
        destination.cluster.clone(),
        api_version.clone(),
        key.clone(),
    )
    .await
    .map_err(|e| error_chain(&e))?
    {
        return Ok(());
    }
    destination
        .cluster
        .delete(
            &api_version,
            &key.kind,
            &key.namespace,
            &key.name,
            Propagation::Background,
        )
        .await
        .map_err(|e| error_chain(&e))?;
    for _ in 0..100 {
        if !exists(
            destination.cluster.clone(),
            api_version.clone(),
            key.clone(),
        )
        .await
        .map_err(|e| error_chain(&e))?
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{key} is still being deleted"))
}

/// Dry-runs the objects the cluster does not hold yet (the comparison dry-ran the others), so
/// a refused new object fails the sync before anything is applied. Skipped, as in Argo CD: kinds
/// the cluster does not serve yet (their CRD comes with this sync, or SkipDryRunOnMissingResource),
/// and a missing namespace this sync creates. Returns the refusals.
async fn dry_run_new_objects(
    spec: &ApplicationSpec,
    comparison: &Comparison,
    app_options: &SyncOptions,
    scope: &Scope,
) -> Vec<String> {
    let mut created_namespaces: HashSet<&str> = comparison
        .objects
        .iter()
        .filter(|o| o.manifest.key().kind == "Namespace" && o.manifest.key().group.is_empty())
        .map(|o| str_at(&o.manifest.object, &["metadata", "name"]))
        .collect();
    if app_options.create_namespace {
        created_namespaces.insert(&spec.destination.namespace);
    }
    let cluster = &comparison.destination.cluster;
    let mut refused = Vec::new();
    for object in &comparison.objects {
        let key = object.manifest.key();
        if object.live.is_some() || object.error.is_some() || !scope.includes(&key) {
            continue;
        }
        let api_version = str_at(&object.manifest.object, &["apiVersion"]);
        if cluster.kind(api_version, &key.kind).await.is_err() {
            continue;
        }
        let options = ApplyOptions {
            dry_run: DryRun::Server,
            force: true,
        };
        match cluster.apply(&object.manifest.object, &options).await {
            Ok(_) => {}
            Err(plumb_kube::Error::Api { code: 404, .. })
                if created_namespaces.contains(key.namespace.as_str()) => {}
            Err(error) => refused.push(format!(
                "{}: {key}: {}",
                object.manifest.origin,
                error_chain(&error)
            )),
        }
    }
    refused
}

/// Advances the operation as far as it can go now.
#[allow(clippy::too_many_arguments)]
async fn execute(
    context: &Arc<Context>,
    app: &Value,
    spec: &ApplicationSpec,
    instance: &str,
    comparison: &Comparison,
    operation: &Value,
    desired: &[Manifest],
    progress: &mut SyncProgress,
    fresh: bool,
) -> Progress {
    let app_options = spec.sync_options();
    let scope = Scope::of(operation);
    let destination = &comparison.destination;
    if fresh {
        // Refuse before touching anything: Argo CD dry-runs every object first, so one bad
        // object never leaves a half-applied application.
        let refused: Vec<&str> = comparison
            .objects
            .iter()
            .filter_map(|o| o.error.as_deref())
            .collect();
        if !refused.is_empty() {
            let message = format!(
                "one or more objects failed to apply (dry run), nothing was applied: {}",
                refused.join("; ")
            );
            return finish(progress, OperationPhase::Failed, message);
        }
        if !scope.dry_run {
            let refused = dry_run_new_objects(spec, comparison, &app_options, &scope).await;
            if !refused.is_empty() {
                let message = format!(
                    "one or more objects failed to apply (dry run), nothing was applied: {}",
                    refused.join("; ")
                );
                return finish(progress, OperationPhase::Failed, message);
            }
        }
        if app_options.fail_on_shared_resource
            && let Some(shared) = comparison.objects.iter().find(|o| o.shared_with.is_some())
        {
            let message = format!(
                "{} is part of application {} and FailOnSharedResource is set",
                shared.manifest.key(),
                shared.shared_with.as_deref().unwrap_or("")
            );
            return finish(progress, OperationPhase::Failed, message);
        }
        if app_options.create_namespace && !spec.destination.namespace.is_empty() && !scope.dry_run
        {
            let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.destination.namespace}});
            let applied = destination
                .cluster
                .apply(
                    &namespace,
                    &ApplyOptions {
                        dry_run: DryRun::None,
                        force: true,
                    },
                )
                .await;
            if let Err(error) = applied {
                let message = format!(
                    "cannot create namespace {}: {}",
                    spec.destination.namespace,
                    error_chain(&error)
                );
                return finish(progress, OperationPhase::Failed, message);
            }
        }
    }
    let plan = match SyncPlan::build(
        desired,
        &progress.plan_options(&spec.destination.namespace, false),
    ) {
        Ok(plan) => plan,
        Err(error) => return finish(progress, OperationPhase::Failed, error.to_string()),
    };
    let last_wave = plan.waves().last().map(|w| (w.phase, w.wave));
    let in_sync: std::collections::HashSet<ObjectKey> = comparison
        .objects
        .iter()
        .filter(|o| o.in_sync)
        .map(|o| o.manifest.key())
        .collect();
    loop {
        let step = plan.next_step(progress);
        progress.advance(&step);
        match step {
            Step::Apply { phase, wave, tasks } => {
                let final_wave = last_wave == Some((phase, wave));
                let mut crds = Vec::new();
                for task in tasks {
                    if let Some(hook) = &task.hook {
                        if hook.delete_before_creation()
                            && let Err(message) = delete_existing(destination, task).await
                        {
                            progress.record(ResourceResult::for_task(
                                task,
                                ResultCode::SyncFailed,
                                message,
                            ));
                            continue;
                        }
                    } else if app_options.apply_out_of_sync_only && in_sync.contains(&task.key) {
                        let mut result =
                            ResourceResult::for_task(task, ResultCode::Synced, "unchanged");
                        result.hook_phase = OperationPhase::Succeeded;
                        progress.record(result);
                        continue;
                    }
                    let applied = if scope.dry_run {
                        let options = ApplyOptions {
                            dry_run: DryRun::Server,
                            force: true,
                        };
                        (destination
                            .cluster
                            .apply(&task.manifest.object, &options)
                            .await)
                            .map_err(|e| error_chain(&e))
                    } else {
                        apply_task(context, destination, task, spec, operation).await
                    };
                    let result = match applied {
                        Ok(_) if scope.dry_run => {
                            let kind = task.key.kind.to_lowercase();
                            let mut result = ResourceResult::for_task(
                                task,
                                ResultCode::Synced,
                                format!("{kind}/{} serverside-applied (dry run)", task.key.name),
                            );
                            // Nothing changed: there is nothing to wait for.
                            result.hook_phase = OperationPhase::Succeeded;
                            result
                        }
                        Ok(live) => {
                            context.drift.observe(destination.key(), &live);
                            if task.key.kind == "CustomResourceDefinition" {
                                crds.push(task);
                            }
                            let kind = task.key.kind.to_lowercase();
                            let mut result = ResourceResult::for_task(
                                task,
                                ResultCode::Synced,
                                format!("{kind}/{} serverside-applied", task.key.name),
                            );
                            // The last wave's resources need not be healthy for the sync to end
                            // (their health is the application's); hooks always run to completion.
                            if final_wave && !task.is_hook() {
                                result.hook_phase = OperationPhase::Succeeded;
                            }
                            result
                        }
                        Err(error) => ResourceResult::for_task(task, ResultCode::SyncFailed, error),
                    };
                    progress.record(result);
                }
                for task in crds {
                    let object = &task.manifest.object;
                    let group = str_at(object, &["spec", "group"]);
                    let kind = str_at(object, &["spec", "names", "kind"]);
                    let version = object
                        .pointer("/spec/versions")
                        .and_then(Value::as_array)
                        .and_then(|v| {
                            v.iter()
                                .find(|v| v.get("served").and_then(Value::as_bool) != Some(false))
                        })
                        .map(|v| str_at(v, &["name"]).to_string())
                        .unwrap_or_default();
                    if let Err(error) = crate::crds::wait_established(
                        &destination.cluster,
                        &format!("{group}/{version}"),
                        kind,
                    )
                    .await
                    {
                        let message = format!("not established: {}", error_chain(&error));
                        progress.set_task_phase(task, OperationPhase::Failed, &message);
                    }
                }
                if persist(context, app, operation, comparison, progress).await {
                    progress.phase = OperationPhase::Terminating;
                    return Progress::Finished;
                }
            }
            Step::Wait { tasks, .. } => {
                let rules = crate::health_config::load(context).await;
                let mut running = false;
                for task in tasks {
                    let api_version = str_at(&task.manifest.object, &["apiVersion"]).to_string();
                    let key = &task.key;
                    let live = crate::reconcile::live_object(
                        context,
                        destination,
                        &api_version,
                        key,
                        Wanted::Any,
                    )
                    .await;
                    let (phase, message) = match &live {
                        Ok(live) => task_state(&rules, task, live.as_ref()),
                        Err(error) => (OperationPhase::Running, error_chain(error)),
                    };
                    if phase == OperationPhase::Running {
                        running = true;
                        continue;
                    }
                    progress.set_task_phase(task, phase, &message);
                    if let Some(hook) = &task.hook {
                        let outcome = if phase == OperationPhase::Succeeded {
                            TaskOutcome::Succeeded
                        } else {
                            TaskOutcome::Failed
                        };
                        if hook.delete_after(outcome) {
                            let _ = destination
                                .cluster
                                .delete(
                                    &api_version,
                                    &key.kind,
                                    &key.namespace,
                                    &key.name,
                                    Propagation::Background,
                                )
                                .await;
                        }
                    }
                }
                if running {
                    if persist(context, app, operation, comparison, progress).await {
                        progress.phase = OperationPhase::Terminating;
                        return Progress::Finished;
                    }
                    return Progress::Waiting;
                }
            }
            Step::Done { succeeded } => {
                if !succeeded {
                    let message = progress.message.clone();
                    return finish(progress, OperationPhase::Failed, message);
                }
                return prune(app, spec, instance, comparison, operation, progress).await;
            }
        }
    }
}

/// What an operation covers: `sync.resources` (a selective sync; empty for all) and
/// `sync.dryRun`.
#[derive(Debug, Default)]
struct Scope {
    resources: Vec<ObjectKey>,
    dry_run: bool,
}

impl Scope {
    fn of(operation: &Value) -> Scope {
        let resources = operation
            .pointer("/sync/resources")
            .and_then(Value::as_array)
            .map(|resources| {
                resources
                    .iter()
                    .map(|r| ObjectKey {
                        group: str_at(r, &["group"]).to_string(),
                        kind: str_at(r, &["kind"]).to_string(),
                        namespace: str_at(r, &["namespace"]).to_string(),
                        name: str_at(r, &["name"]).to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Scope {
            resources,
            dry_run: operation.pointer("/sync/dryRun").and_then(Value::as_bool) == Some(true),
        }
    }

    /// Whether the operation covers `key` (an empty namespace in the selection matches any).
    fn includes(&self, key: &ObjectKey) -> bool {
        self.resources.is_empty()
            || self.resources.iter().any(|r| {
                r.group == key.group
                    && r.kind == key.kind
                    && r.name == key.name
                    && (r.namespace.is_empty() || r.namespace == key.namespace)
            })
    }
}

/// Whether the application carries a deletion approval given at or after `since` (unix
/// seconds): `argocd.argoproj.io/deletion-approved`, as `plumb app confirm-deletion` writes it.
pub(crate) fn deletion_approved(app: &Value, since: i64) -> bool {
    let approved = str_at(
        app,
        &["metadata", "annotations", DELETION_APPROVED_ANNOTATION],
    );
    chrono::DateTime::parse_from_rfc3339(approved).is_ok_and(|at| at.timestamp() >= since)
}

/// Prunes after a successful sync, within the guards of [`Plan`].
async fn prune(
    app: &Value,
    spec: &ApplicationSpec,
    instance: &str,
    comparison: &Comparison,
    operation: &Value,
    progress: &mut SyncProgress,
) -> Progress {
    let app_options = &spec.sync_options();
    let scope = Scope::of(operation);
    let prune = operation
        .pointer("/sync/prune")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let automated = operation
        .pointer("/initiatedBy/automated")
        .and_then(Value::as_bool)
        == Some(true);
    let allow_empty = spec.automated().is_some_and(|a| a.allow_empty)
        || operation
            .pointer("/sync/allowEmpty")
            .and_then(Value::as_bool)
            == Some(true);
    let plan = Plan::build(
        &comparison.desired(),
        &comparison.owned_live(instance),
        &PlanOptions {
            prune,
            allow_empty,
            allow_mass_prune: app_options.allow_mass_prune,
            trigger: if automated {
                Trigger::Automated
            } else {
                Trigger::Manual
            },
            app: instance.to_string(),
            app_options: app_options.clone(),
        },
    );
    // Prune=confirm: nothing is pruned until a person approves (Argo CD keeps the operation
    // Running, "Waiting for pruning confirmation").
    let unconfirmed: Vec<String> = plan
        .prune
        .iter()
        .filter(|i| scope.includes(&i.key) && i.options.prune() == PruneOption::Confirm)
        .map(|i| format!("{}/{}/{}", i.api_version, i.key.kind, i.key.name))
        .collect();
    if !scope.dry_run
        && !unconfirmed.is_empty()
        && !deletion_approved(app, progress.started_at_unix)
    {
        progress.phase = OperationPhase::Running;
        progress.message = format!(
            "Waiting for pruning confirmation of {}",
            unconfirmed.join(", ")
        );
        return Progress::Waiting;
    }
    let propagation = match app_options.prune_propagation_policy {
        plumb_core::sync_options::PropagationPolicy::Foreground => Propagation::Foreground,
        plumb_core::sync_options::PropagationPolicy::Background => Propagation::Background,
        plumb_core::sync_options::PropagationPolicy::Orphan => Propagation::Orphan,
    };
    let mut failures = Vec::new();
    for item in plan.prune.iter().filter(|i| scope.includes(&i.key)) {
        if scope.dry_run {
            progress.record(prune_result(item, ResultCode::Pruned, "pruned (dry run)"));
            continue;
        }
        let key = &item.key;
        match comparison
            .destination
            .cluster
            .delete(
                &item.api_version,
                &key.kind,
                &key.namespace,
                &key.name,
                propagation,
            )
            .await
        {
            Ok(()) => progress.record(prune_result(item, ResultCode::Pruned, "pruned")),
            Err(error) => {
                let message = error_chain(&error);
                failures.push(format!("prune {key}: {message}"));
                progress.record(prune_result(item, ResultCode::SyncFailed, &message));
            }
        }
    }
    if !failures.is_empty() {
        let message = format!(
            "one or more objects failed to prune: {}",
            failures.join("; ")
        );
        return finish(progress, OperationPhase::Failed, message);
    }
    let message = match &plan.prune_blocked {
        Some(blocked) => format!("successfully synced, but pruning was held back: {blocked}"),
        None => "successfully synced (all tasks run)".to_string(),
    };
    finish(progress, OperationPhase::Succeeded, message)
}

/// Deletes what a deleted Application owns (when it carries the resources finalizer), then
/// releases the Application.
pub(crate) async fn finalize(
    context: &Arc<Context>,
    destination: &Destination,
    app: &Value,
    instance: &str,
) -> Option<Duration> {
    let finalizers: Vec<String> = app
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    let ours: Vec<&String> = finalizers
        .iter()
        .filter(|f| f.starts_with(RESOURCES_FINALIZER))
        .collect();
    if ours.is_empty() {
        return None;
    }
    let propagation = if ours.iter().any(|f| f.ends_with("/background")) {
        Propagation::Background
    } else {
        Propagation::Foreground
    };
    let status = app.get("status").cloned().unwrap_or(Value::Null);
    let app_options = ApplicationSpec::parse(app.get("spec").unwrap_or(&Value::Null))
        .map(|spec| spec.sync_options())
        .unwrap_or_default();
    let deleted_at =
        chrono::DateTime::parse_from_rfc3339(str_at(app, &["metadata", "deletionTimestamp"]))
            .map(|t| t.timestamp())
            .unwrap_or(0);
    let approved = deletion_approved(app, deleted_at);
    let mut remaining = 0;
    let mut unconfirmed = Vec::new();
    for (api_version, key) in crate::status::inventory(&status) {
        let live = match destination
            .cluster
            .get(&api_version, &key.kind, &key.namespace, &key.name)
            .await
        {
            Ok(Some(live)) => live,
            Ok(None) | Err(plumb_kube::Error::UnknownKind { .. }) => continue,
            Err(error) => {
                tracing::warn!(object = %key, error = %error_chain(&error), "cannot read object to delete");
                remaining += 1;
                continue;
            }
        };
        if !is_owned_by(&live, instance) {
            continue;
        }
        match SyncOptions::of_object(&live).over(&app_options).delete() {
            DeleteOption::Disabled => continue,
            DeleteOption::Confirm if !approved => {
                unconfirmed.push(format!("{api_version}/{}/{}", key.kind, key.name));
                continue;
            }
            DeleteOption::Allowed | DeleteOption::Confirm => {}
        }
        if let Err(error) = destination
            .cluster
            .delete(
                &api_version,
                &key.kind,
                &key.namespace,
                &key.name,
                propagation,
            )
            .await
        {
            tracing::warn!(object = %key, error = %error_chain(&error), "cannot delete object");
            remaining += 1;
        }
    }
    if !unconfirmed.is_empty() {
        // Delete=confirm: the rest is gone; these wait for `plumb app confirm-deletion`.
        let message = format!(
            "Waiting for deletion confirmation of {}",
            unconfirmed.join(", ")
        );
        let shown = app
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| str_at(c, &["message"]) == message));
        if !shown {
            let condition = json!({"type": "DeletionError", "message": message,
                "lastTransitionTime": now()});
            patch_app(
                context,
                app,
                &json!({"status": {"conditions": [condition]}}),
            )
            .await;
        }
        return Some(Duration::from_secs(5));
    }
    if remaining > 0 {
        return Some(Duration::from_secs(5));
    }
    let kept: Vec<&String> = finalizers
        .iter()
        .filter(|f| !f.starts_with(RESOURCES_FINALIZER))
        .collect();
    patch_app(context, app, &json!({"metadata": {"finalizers": kept}})).await;
    None
}

/// Releases a deleted Application whose destination cluster no longer exists (its Secret is
/// gone): nothing can be deleted or run there, so its finalizers go, as in Argo CD, with a
/// warning event.
pub(crate) async fn release_without_cluster(
    context: &Arc<Context>,
    app: &Value,
    message: &str,
) -> Option<Duration> {
    let kept: Vec<Value> = app
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|f| {
            f.as_str().is_none_or(|f| {
                !f.starts_with(RESOURCES_FINALIZER) && !f.starts_with(POST_DELETE_FINALIZER)
            })
        })
        .cloned()
        .collect();
    let held = app
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.len() != kept.len());
    if held {
        record_event(
            context,
            app,
            "Warning",
            "DeletionWithoutCluster",
            &format!("the application's objects were not deleted: {message}"),
        )
        .await;
        patch_app(context, app, &json!({"metadata": {"finalizers": kept}})).await;
    }
    None
}

/// Argo CD's finalizer that holds an Application's deletion until its PostDelete hooks ran.
pub(crate) const POST_DELETE_FINALIZER: &str = "post-delete-finalizer.argocd.argoproj.io";

/// Whether the application's render has PostDelete hooks.
pub(crate) fn has_post_delete_hooks(comparison: &Comparison) -> bool {
    comparison.hooks.iter().any(|hook| {
        str_at(
            &hook.object,
            &["metadata", "annotations", "argocd.argoproj.io/hook"],
        )
        .split(',')
        .any(|t| t.trim() == "PostDelete")
    })
}

/// Runs the PostDelete hooks of a deleted application once its resources are gone, then
/// releases [`POST_DELETE_FINALIZER`]. Hook names derive from the revision and the deletion
/// time, so every look finds the same hooks; which ones succeeded is kept in
/// `status.postDeleteHooks`, so a hook deleted by its policy is not run again.
pub(crate) async fn run_post_delete_hooks(
    context: &Arc<Context>,
    destination: &Destination,
    app: &Value,
    spec: &ApplicationSpec,
    instance: &str,
) -> Option<Duration> {
    let target = crate::multi_source::Target::last_compared(spec, app);
    let comparison = match crate::reconcile::compare(
        context,
        destination,
        app,
        spec,
        instance,
        &target,
        crate::sources::Freshness::Within(Duration::MAX),
    )
    .await
    {
        Ok(comparison) => comparison,
        Err(message) => {
            tracing::warn!(app = %str_at(app, &["metadata", "name"]), %message, "cannot render the PostDelete hooks");
            return Some(Duration::from_secs(5));
        }
    };
    let deleted_at =
        chrono::DateTime::parse_from_rfc3339(str_at(app, &["metadata", "deletionTimestamp"]))
            .map(|t| t.timestamp())
            .unwrap_or(0);
    let progress = SyncProgress::start(comparison.revision.revision.clone(), deleted_at);
    let hooks: Vec<Manifest> = comparison.hooks.clone();
    let plan = match SyncPlan::build(
        &hooks,
        &progress.plan_options(&spec.destination.namespace, false),
    ) {
        Ok(plan) => plan,
        Err(error) => {
            tracing::warn!(error = %error, "cannot plan the PostDelete hooks");
            return Some(Duration::from_secs(5));
        }
    };
    let done = app
        .pointer("/status/postDeleteHooks")
        .cloned()
        .unwrap_or(json!({}));
    let mut record = done.as_object().cloned().unwrap_or_default();
    let mut running = false;
    let rules = crate::health_config::load(context).await;
    for task in &plan.post_delete {
        let name = task.key.name.clone();
        if str_at(&done, &[name.as_str()]) == "Succeeded" {
            continue;
        }
        let api_version = str_at(&task.manifest.object, &["apiVersion"]).to_string();
        let live = destination
            .cluster
            .get(&api_version, &task.key.kind, &task.key.namespace, &name)
            .await;
        match live {
            Ok(None) => {
                let options = ApplyOptions {
                    dry_run: DryRun::None,
                    force: true,
                };
                if let Err(error) = destination
                    .cluster
                    .apply(&task.manifest.object, &options)
                    .await
                {
                    record_event(
                        context,
                        app,
                        "Warning",
                        "PostDeleteHookFailed",
                        &format!("{}: {}", task.key, error_chain(&error)),
                    )
                    .await;
                }
                running = true;
            }
            Ok(Some(live)) => match task_state(&rules, task, Some(&live)) {
                (OperationPhase::Succeeded, _) => {
                    record.insert(name.clone(), json!("Succeeded"));
                    if task
                        .hook
                        .as_ref()
                        .is_some_and(|h| h.delete_after(TaskOutcome::Succeeded))
                    {
                        let _ = destination
                            .cluster
                            .delete(
                                &api_version,
                                &task.key.kind,
                                &task.key.namespace,
                                &name,
                                Propagation::Background,
                            )
                            .await;
                    }
                }
                (OperationPhase::Failed, message) => {
                    // Argo CD keeps the Application until its PostDelete hooks succeed.
                    record.insert(name.clone(), json!("Failed"));
                    record_event(
                        context,
                        app,
                        "Warning",
                        "PostDeleteHookFailed",
                        &format!("{}: {message}", task.key),
                    )
                    .await;
                    running = true;
                }
                _ => running = true,
            },
            Err(error) => {
                tracing::warn!(hook = %task.key, error = %error_chain(&error), "cannot read PostDelete hook");
                running = true;
            }
        }
    }
    if running {
        patch_app(
            context,
            app,
            &json!({"status": {"postDeleteHooks": record}}),
        )
        .await;
        return Some(WAIT_INTERVAL);
    }
    let kept: Vec<Value> = app
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|f| f.as_str() != Some(POST_DELETE_FINALIZER))
        .cloned()
        .collect();
    patch_app(
        context,
        app,
        &json!({"metadata": {"finalizers": kept}, "status": {"postDeleteHooks": record}}),
    )
    .await;
    None
}

/// Records a Kubernetes Event about the Application (best effort).
pub(crate) async fn record_event(
    context: &Arc<Context>,
    app: &Value,
    event_type: &str,
    reason: &str,
    message: &str,
) {
    let (namespace, name) = crate::app_id(app);
    let time = now();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{name}."), "namespace": namespace},
        "involvedObject": {"apiVersion": plumb_core::application::API_VERSION, "kind": "Application",
            "name": name, "namespace": namespace, "uid": str_at(app, &["metadata", "uid"])},
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": "plumb-controller"},
        "reportingComponent": "plumb-controller",
        "firstTimestamp": time,
        "lastTimestamp": time,
        "count": 1,
    });
    if let Err(error) = context.cluster.create(&event).await {
        tracing::debug!(error = %error_chain(&error), "cannot record event");
    }
    tracing::info!(app = %name, namespace = %namespace, reason, "{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_retry_waits_from_the_failed_attempts_finish() {
        let op = json!({"retry": {"limit": 3, "backoff": {"duration": "10s", "factor": 3}}});
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let pending =
            json!({"phase": "Running", "retryCount": 2, "finishedAt": "2026-01-01T00:00:00Z"});
        // Retry #2 waits 10 s × 3.
        assert_eq!(
            retry_wait(&op, &pending, at("2026-01-01T00:00:10Z")),
            Some(Duration::from_secs(20))
        );
        assert_eq!(retry_wait(&op, &pending, at("2026-01-01T00:00:30Z")), None);
        // Not a pending retry: a running attempt, a finished operation, a bad time.
        let running = json!({"phase": "Running", "retryCount": 2});
        assert_eq!(retry_wait(&op, &running, at("2026-01-01T00:00:00Z")), None);
        let failed =
            json!({"phase": "Failed", "retryCount": 2, "finishedAt": "2026-01-01T00:00:00Z"});
        assert_eq!(retry_wait(&op, &failed, at("2026-01-01T00:00:00Z")), None);
        let garbled = json!({"phase": "Running", "retryCount": 1, "finishedAt": "yesterday"});
        assert_eq!(retry_wait(&op, &garbled, at("2026-01-01T00:00:00Z")), None);
    }

    #[test]
    fn retry_backoff_follows_argo_cd() {
        let op = json!({"retry": {"limit": 3, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "15s"}}});
        assert_eq!(retry_delay(&op, 0), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(&op, 1), Some(Duration::from_secs(10)));
        assert_eq!(retry_delay(&op, 2), Some(Duration::from_secs(15)));
        assert_eq!(retry_delay(&op, 3), None);
        assert_eq!(
            retry_delay(&json!({"retry": {"limit": -1}}), 50),
            Some(Duration::from_secs(180))
        );
        assert_eq!(retry_delay(&json!({}), 0), None);
    }
}
