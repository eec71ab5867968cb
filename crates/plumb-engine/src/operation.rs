//! Sync operations: what `plumb app sync`, rollback and automated sync do.
//!
//! An operation is requested by setting `.operation` on the Application (as Argo CD's CLI and
//! UI do; the controller does it too for automated syncs). Its progress is written to
//! `status.operationState` *before* anything is applied, so a controller killed mid-sync finds
//! the operation still set on restart and runs it again; server-side apply is idempotent, and
//! the history entry is written once, with the operation cleared in the same patch.

use crate::Context;
use crate::reconcile::{Comparison, patch_app};
use crate::sources::error_chain;
use crate::status::now;
use plumb_core::application::{ApplicationSpec, Source, parse_duration};
use plumb_core::key::{ObjectKey, str_at, version_of};
use plumb_core::plan::{Plan, PlanOptions, Trigger};
use plumb_core::sync_options::{PruneOption, SyncOptions};
use plumb_core::tracking::is_owned_by;
use plumb_kube::{ApplyOptions, DryRun, Propagation};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The finalizer that makes deleting an Application delete its objects.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// What running an operation produced.
pub(crate) struct Outcome {
    pub state: Value,
    pub history_entry: Option<Value>,
    /// Set when the operation failed and will be retried after this delay.
    pub retry_after: Option<Duration>,
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
        let last_revision = str_at(last, &["syncResult", "revision"]);
        let phase = str_at(last, &["phase"]);
        if last_revision == revision {
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
    AutoSync::Run(json!({
        "sync": {"revision": revision, "prune": automated.prune},
        "initiatedBy": {"automated": true},
        "retry": spec.sync_policy.as_ref().and_then(|p| p.retry.clone()),
    }))
}

/// Runs `operation` against the comparison just made.
pub(crate) async fn run(
    context: &Arc<Context>,
    app: &Value,
    spec: &ApplicationSpec,
    instance: &str,
    comparison: &Comparison,
    operation: &Value,
    last: Option<&Value>,
) -> Outcome {
    let started_at = now();
    let retry_count = last
        .filter(|l| str_at(l, &["phase"]) == "Running" || l.get("operation") == Some(operation))
        .and_then(|l| l.get("retryCount").and_then(Value::as_i64))
        .unwrap_or(0);
    let revision = comparison.revision.revision.clone();
    let mut state = json!({
        "operation": operation,
        "phase": "Running",
        "message": "syncing",
        "startedAt": started_at,
        "syncResult": {"revision": revision, "source": comparison.source, "resources": []},
    });
    if retry_count > 0 {
        state["retryCount"] = json!(retry_count);
    }
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

    let (phase, message, results) = execute(context, spec, instance, comparison, operation).await;
    state["phase"] = json!(phase);
    state["message"] = json!(message);
    state["finishedAt"] = json!(now());
    state["syncResult"]["resources"] = Value::Array(results);

    let mut retry_after = None;
    if phase != "Succeeded" {
        if let Some(delay) = retry_delay(operation, retry_count) {
            state["phase"] = json!("Running");
            state["retryCount"] = json!(retry_count + 1);
            state["message"] = json!(format!(
                "{message}. Retrying attempt #{} at {}",
                retry_count + 1,
                retry_at(delay)
            ));
            state.as_object_mut().map(|s| s.remove("finishedAt"));
            retry_after = Some(delay);
        }
    }
    let reason = if phase == "Succeeded" {
        "OperationCompleted"
    } else {
        "OperationFailed"
    };
    let event_type = if phase == "Succeeded" {
        "Normal"
    } else {
        "Warning"
    };
    record_event(
        context,
        app,
        event_type,
        reason,
        &format!(
            "Sync operation to {revision} {}: {message}",
            phase.to_lowercase()
        ),
    )
    .await;
    let history_entry = (phase == "Succeeded").then(|| {
        json!({"revision": revision, "deployedAt": now(), "deployStartedAt": started_at,
            "source": comparison.source, "initiatedBy": operation.get("initiatedBy").cloned().unwrap_or(json!({}))})
    });
    Outcome {
        state,
        history_entry,
        retry_after,
    }
}

fn retry_at(delay: Duration) -> String {
    let at = chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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

fn result_entry(key: &ObjectKey, api_version: &str, status: &str, message: &str) -> Value {
    json!({"group": key.group, "version": version_of(api_version), "kind": key.kind,
        "namespace": key.namespace, "name": key.name, "status": status, "message": message,
        "hookPhase": if status == "SyncFailed" { "Failed" } else { "Succeeded" }, "syncPhase": "Sync"})
}

/// Applies the plan; returns (phase, message, per-object results).
async fn execute(
    context: &Arc<Context>,
    spec: &ApplicationSpec,
    instance: &str,
    comparison: &Comparison,
    operation: &Value,
) -> (&'static str, String, Vec<Value>) {
    let app_options = spec.sync_options();
    // Refuse before touching anything: Argo CD dry-runs every object first, so one bad object
    // never leaves a half-applied application.
    let refused: Vec<&str> = comparison
        .objects
        .iter()
        .filter_map(|o| o.error.as_deref())
        .collect();
    if !refused.is_empty() {
        return (
            "Failed",
            format!(
                "one or more objects failed to apply (dry run), nothing was applied: {}",
                refused.join("; ")
            ),
            vec![],
        );
    }
    if app_options.fail_on_shared_resource {
        if let Some(shared) = comparison.objects.iter().find(|o| o.shared_with.is_some()) {
            return (
                "Failed",
                format!(
                    "{} is part of application {} and FailOnSharedResource is set",
                    shared.manifest.key(),
                    shared.shared_with.as_deref().unwrap_or("")
                ),
                vec![],
            );
        }
    }
    let prune = operation
        .pointer("/sync/prune")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let automated = operation
        .pointer("/initiatedBy/automated")
        .and_then(Value::as_bool)
        == Some(true);
    let plan = Plan::build(
        &comparison.desired(),
        &comparison.owned_live(instance),
        &PlanOptions {
            prune,
            allow_empty: spec.automated().is_some_and(|a| a.allow_empty)
                || operation
                    .pointer("/sync/allowEmpty")
                    .and_then(Value::as_bool)
                    == Some(true),
            allow_mass_prune: app_options.allow_mass_prune,
            trigger: if automated {
                Trigger::Automated
            } else {
                Trigger::Manual
            },
            app: instance.to_string(),
        },
    );
    let mut results = Vec::new();
    let mut failures = Vec::new();
    if app_options.create_namespace && !spec.destination.namespace.is_empty() {
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.destination.namespace}});
        if let Err(error) = context
            .cluster
            .apply(
                &namespace,
                &ApplyOptions {
                    dry_run: DryRun::None,
                    force: true,
                },
            )
            .await
        {
            failures.push(format!(
                "namespace {}: {}",
                spec.destination.namespace,
                error_chain(&error)
            ));
        }
    }
    let in_sync: std::collections::HashSet<ObjectKey> = comparison
        .objects
        .iter()
        .filter(|o| o.in_sync)
        .map(|o| o.manifest.key())
        .collect();
    let (first, rest): (Vec<_>, Vec<_>) = plan.apply.iter().partition(|m| {
        matches!(
            m.key().kind.as_str(),
            "Namespace" | "CustomResourceDefinition"
        )
    });
    for batch in [first, rest] {
        let mut crds = Vec::new();
        for manifest in batch {
            let key = manifest.key();
            let api_version = str_at(&manifest.object, &["apiVersion"]).to_string();
            if app_options.apply_out_of_sync_only && in_sync.contains(&key) {
                continue;
            }
            let options = SyncOptions::of_object(&manifest.object);
            if options.replace {
                // Replace=true is honoured as a forced apply; delete-and-create is not done yet.
            }
            match context
                .cluster
                .apply(
                    &manifest.object,
                    &ApplyOptions {
                        dry_run: DryRun::None,
                        force: true,
                    },
                )
                .await
            {
                Ok(_) => {
                    let message = format!(
                        "{}/{} serverside-applied",
                        key.kind.to_lowercase(),
                        key.name
                    );
                    results.push(result_entry(&key, &api_version, "Synced", &message));
                    if key.kind == "CustomResourceDefinition" {
                        crds.push(manifest.object.clone());
                    }
                }
                Err(error) => {
                    let message = error_chain(&error);
                    failures.push(format!("{key}: {message}"));
                    results.push(result_entry(&key, &api_version, "SyncFailed", &message));
                }
            }
        }
        for crd in crds {
            let group = str_at(&crd, &["spec", "group"]);
            let kind = str_at(&crd, &["spec", "names", "kind"]);
            let version = crd
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .and_then(|v| {
                    v.iter()
                        .find(|v| v.get("served").and_then(Value::as_bool) != Some(false))
                })
                .map(|v| str_at(v, &["name"]).to_string())
                .unwrap_or_default();
            if let Err(error) =
                crate::crds::wait_established(&context.cluster, &format!("{group}/{version}"), kind)
                    .await
            {
                failures.push(format!(
                    "CustomResourceDefinition for {kind}.{group} not established: {}",
                    error_chain(&error)
                ));
            }
        }
    }
    let propagation = match app_options.prune_propagation_policy {
        plumb_core::sync_options::PropagationPolicy::Foreground => Propagation::Foreground,
        plumb_core::sync_options::PropagationPolicy::Background => Propagation::Background,
        plumb_core::sync_options::PropagationPolicy::Orphan => Propagation::Orphan,
    };
    for item in &plan.prune {
        if item.options.prune == PruneOption::Confirm {
            results.push(result_entry(
                &item.key,
                &item.api_version,
                "PruneSkipped",
                "waiting for confirmation to prune (Prune=confirm)",
            ));
            continue;
        }
        match context
            .cluster
            .delete(
                &item.api_version,
                &item.key.kind,
                &item.key.namespace,
                &item.key.name,
                propagation,
            )
            .await
        {
            Ok(()) => results.push(result_entry(
                &item.key,
                &item.api_version,
                "Pruned",
                "pruned",
            )),
            Err(error) => {
                let message = error_chain(&error);
                failures.push(format!("prune {}: {message}", item.key));
                results.push(result_entry(
                    &item.key,
                    &item.api_version,
                    "SyncFailed",
                    &message,
                ));
            }
        }
    }
    for key in &plan.orphaned {
        let api_version = comparison
            .extra
            .iter()
            .find(|live| ObjectKey::of(live) == *key)
            .map(|live| str_at(live, &["apiVersion"]).to_string())
            .unwrap_or_default();
        let message = match &plan.prune_blocked {
            Some(blocked) => blocked.to_string(),
            None => "ignored (requires pruning)".to_string(),
        };
        results.push(result_entry(key, &api_version, "PruneSkipped", &message));
    }
    if !failures.is_empty() {
        return (
            "Failed",
            format!(
                "one or more objects failed to apply, reason: {}",
                failures.join("; ")
            ),
            results,
        );
    }
    let mut message = "successfully synced (all tasks run)".to_string();
    if let Some(blocked) = &plan.prune_blocked {
        message = format!("successfully synced, but pruning was held back: {blocked}");
    }
    ("Succeeded", message, results)
}

/// Deletes what a deleted Application owns (when it carries the resources finalizer), then
/// releases the Application.
pub(crate) async fn finalize(
    context: &Arc<Context>,
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
    let mut remaining = 0;
    for (api_version, key) in crate::status::inventory(&status) {
        let live = match context
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
        if !is_owned_by(&live, instance) || SyncOptions::of_object(&live).delete_disabled {
            continue;
        }
        if let Err(error) = context
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
