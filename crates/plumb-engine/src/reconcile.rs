//! One reconcile of one Application: resolve, render, compare, maybe sync, write status.

use crate::Context;
use crate::clusters::{Destination, Unusable};
use crate::dependencies::Gate;
use crate::health_config::HealthRules;
use crate::operation;
use crate::queue::AppId;
use crate::sources::{Freshness, Resolved, error_chain};
use crate::status::{ResourceStatus, carry_transition_times, condition, inventory, now};
use plumb_core::application::{ApplicationSpec, REFRESH_ANNOTATION, Source};
use plumb_core::health::{self, Health, HealthStatus};
use plumb_core::key::{ObjectKey, str_at};
use plumb_core::manifest::Manifest;
use plumb_core::sync_options::SyncOptions;
use plumb_core::tracking::{app_instance, instance_label_value, is_owned_by, owner_of, stamp};
use plumb_kube::{ApplyOptions, DryRun};
use plumb_render::SourceType;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

/// How soon to look again after a failure to fetch or render.
const ERROR_BACKOFF: Duration = Duration::from_secs(10);

/// The state of one desired object after comparison.
#[derive(Debug, Clone)]
pub(crate) struct Compared {
    pub manifest: Manifest,
    pub live: Option<Value>,
    pub in_sync: bool,
    /// Why the server would refuse this object (dry-run failure, unknown kind).
    pub error: Option<String>,
    /// Another application owns the live object.
    pub shared_with: Option<String>,
    /// What the server would make of the desired object (when a dry-run was needed).
    pub dry_run: Option<Value>,
}

/// Everything a comparison found.
#[derive(Debug, Clone)]
pub(crate) struct Comparison {
    /// The cluster the objects live in: every read and write of them goes there.
    pub destination: Destination,
    pub revision: Resolved,
    pub source: Source,
    pub source_type: SourceType,
    /// Revisions, sources and types of a multi-source application (`spec.sources`).
    pub multi: Option<crate::multi_source::MultiSource>,
    pub objects: Vec<Compared>,
    /// Hooks (PreSync, Sync, PostSync, SyncFail...): run by operations, never compared, listed
    /// or pruned.
    pub hooks: Vec<Manifest>,
    /// Owned live objects no longer declared.
    pub extra: Vec<Value>,
    pub warnings: Vec<Value>,
}

impl Comparison {
    pub(crate) fn is_synced(&self) -> bool {
        self.extra.is_empty() && self.objects.iter().all(|o| o.in_sync)
    }

    pub(crate) fn desired(&self) -> Vec<Manifest> {
        self.objects.iter().map(|o| o.manifest.clone()).collect()
    }

    /// Every live object the application owns (declared or not), for the plan.
    pub(crate) fn owned_live(&self, instance: &str) -> Vec<Value> {
        self.objects
            .iter()
            .filter_map(|o| o.live.clone())
            .filter(|live| is_owned_by(live, instance))
            .chain(self.extra.iter().cloned())
            .collect()
    }

    /// Each resource with its health by `rules`, and the messages of the health scripts that
    /// failed (their resources' health is then `Unknown`, with the same message).
    fn resources(&self, rules: &HealthRules) -> (Vec<ResourceStatus>, Vec<String>) {
        let mut failures = Vec::new();
        let mut assess = |live: &Value| {
            let assessment = rules.assess(live);
            if let Some(failure) = assessment.failure {
                failures.push(format!(
                    "failed to get resource health for {:?} with name {:?} in namespace {:?}: {failure}",
                    str_at(live, &["kind"]),
                    str_at(live, &["metadata", "name"]),
                    str_at(live, &["metadata", "namespace"]),
                ));
            }
            assessment.health
        };
        let mut resources: Vec<ResourceStatus> = Vec::new();
        for o in &self.objects {
            resources.push(ResourceStatus {
                key: o.manifest.key(),
                api_version: str_at(&o.manifest.object, &["apiVersion"]).to_string(),
                sync: if o.in_sync { "Synced" } else { "OutOfSync" },
                health: match &o.live {
                    Some(live) => assess(live),
                    None => Some(Health {
                        status: HealthStatus::Missing,
                        message: String::new(),
                    }),
                },
                requires_pruning: false,
            });
        }
        for live in &self.extra {
            resources.push(ResourceStatus {
                key: ObjectKey::of(live),
                api_version: str_at(live, &["apiVersion"]).to_string(),
                sync: "OutOfSync",
                health: assess(live),
                requires_pruning: true,
            });
        }
        resources.sort_by(|a, b| {
            plumb_core::order::apply_order(&a.key).cmp(&plumb_core::order::apply_order(&b.key))
        });
        (resources, failures)
    }
}

/// Argo CD's condition for health scripts that failed: the first failure, and how many more.
fn health_error(failures: &[String]) -> Option<Value> {
    let first = failures.first()?;
    let message = match failures.len() {
        1 => format!("error setting app health: {first}"),
        n => format!(
            "error setting app health: {first} (and {} more failing health script runs; see the resources' health messages)",
            n - 1
        ),
    };
    Some(condition("ComparisonError", &message))
}

/// Reconciles the application `id`; returns when to look again.
pub(crate) async fn reconcile(context: &Arc<Context>, id: &AppId) -> Option<Duration> {
    let app = context.app(id)?;
    let instance = app_instance(&id.0, &id.1, &context.options.control_namespace);
    context
        .drift
        .register(instance_label_value(&instance), id.clone());
    if app
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        let destination = match app_destination(context, &app).await {
            Ok(destination) => destination,
            Err(Unusable::Invalid(message)) => {
                // As Argo CD: the cluster is gone, so are the means to delete anything there.
                return operation::release_without_cluster(context, &app, &message).await;
            }
            Err(Unusable::Failed(message)) => {
                tracing::warn!(app = %id.1, namespace = %id.0, %message, "cannot delete the application's objects yet");
                return Some(ERROR_BACKOFF);
            }
        };
        if let Some(delay) = operation::finalize(context, &destination, &app, &instance).await {
            return Some(delay);
        }
        // PostDelete hooks run once the resources are gone (finalize wrote the Application).
        let app = context.app(id).unwrap_or(app);
        if has_finalizer(&app, operation::POST_DELETE_FINALIZER) {
            if has_finalizer(&app, operation::RESOURCES_FINALIZER) {
                return Some(Duration::from_secs(1));
            }
            let spec = ApplicationSpec::parse(app.get("spec").unwrap_or(&Value::Null)).ok()?;
            return operation::run_post_delete_hooks(context, &destination, &app, &spec, &instance)
                .await;
        }
        return None;
    }
    let refresh = str_at(&app, &["metadata", "annotations", REFRESH_ANNOTATION]).to_string();
    let full_refresh = context.refresh_due(id) || !refresh.is_empty();
    let previous = app.get("status").cloned().unwrap_or(Value::Null);

    let spec = match ApplicationSpec::parse(app.get("spec").unwrap_or(&Value::Null)) {
        Ok(spec) => spec,
        Err(error) => {
            let status = error_status(&previous, "InvalidSpecError", &error.to_string());
            write_status(context, &app, status, full_refresh).await;
            return Some(context.poll_delay());
        }
    };
    if let Some(problem) = spec_problem(&spec) {
        let status = error_status(&previous, "InvalidSpecError", &problem);
        write_status(context, &app, status, full_refresh).await;
        return Some(context.poll_delay());
    }
    let destination = match crate::clusters::destination(context, &spec.destination).await {
        Ok(destination) => destination,
        Err(unusable) => {
            let kind = match unusable {
                Unusable::Invalid(_) => "InvalidSpecError",
                Unusable::Failed(_) => "ComparisonError",
            };
            let status = error_status(&previous, kind, unusable.message());
            write_status(context, &app, status, full_refresh).await;
            return Some(ERROR_BACKOFF.min(context.poll_delay()));
        }
    };
    // The project's rules come before any fetch: a refused source is never even read.
    let refusal = match crate::project::load(context, &spec).await {
        Ok(project) => crate::project::refusal(
            &project,
            &app,
            &spec,
            &destination.target,
            &context.options.control_namespace,
        ),
        Err(message) => Some(message),
    };
    if let Some(refusal) = refusal {
        let status = error_status(&previous, "InvalidSpecError", &refusal);
        write_status(context, &app, status, full_refresh).await;
        return Some(crate::project::PROJECT_TTL.max(ERROR_BACKOFF.min(context.poll_delay())));
    }

    let pending = app.get("operation").filter(|o| !o.is_null()).cloned();
    let wanted_sources = crate::multi_source::Target::of(&spec, pending.as_ref());
    // Polling shares fetches: a fetch younger than the poll interval serves every application
    // of the repository. Only an explicit refresh insists on fetching now.
    let freshness = if refresh.is_empty() {
        Freshness::Within(context.options.poll_interval)
    } else {
        Freshness::Now
    };
    // A cluster that does not answer: say so and keep the last state; look again soon.
    if let Err(message) = crate::clusters::reachable(context, &destination).await {
        let mut status = error_status(&previous, "ComparisonError", &message);
        if let Some(sync) = status.get_mut("sync") {
            sync["status"] = json!("Unknown");
        }
        write_status(context, &app, status, full_refresh).await;
        return Some(ERROR_BACKOFF.min(context.poll_delay()));
    }
    let mut comparison = match compare(
        context,
        &destination,
        &app,
        &spec,
        &instance,
        &wanted_sources,
        freshness,
    )
    .await
    {
        Ok(comparison) => comparison,
        Err(message) => {
            // A cluster that went down meanwhile is named as such, not by a request's error.
            let message = match crate::clusters::recheck(context, &destination).await {
                Err(down) => down,
                Ok(()) => message,
            };
            let mut status = error_status(&previous, "ComparisonError", &message);
            if let Some(sync) = status.get_mut("sync") {
                sync["status"] = json!("Unknown");
            }
            write_status(context, &app, status, full_refresh).await;
            return Some(ERROR_BACKOFF.min(context.poll_delay()));
        }
    };

    let mut operation_state = previous.get("operationState").cloned();
    let mut history = previous.get("history").cloned().unwrap_or(json!([]));
    let mut clear_operation = false;
    let mut requeue = context.poll_delay();
    let prune_blocked = prune_guard(&spec, &comparison, &instance);
    let rolled_back = !comparison.revision.revision.is_empty()
        && str_at(&previous, &["rollback", "rolledBackFrom"]) == comparison.revision.revision;
    let operation_to_run = match pending {
        Some(op) => Some(op),
        // A revision rolled back for its health is not synced again automatically.
        None if rolled_back => {
            comparison.warnings.push(condition(
                "RolledBack",
                &format!(
                    "revision {} was rolled back because it left the application Degraded; a new commit (or a manual sync) deploys again",
                    comparison.revision.revision
                ),
            ));
            None
        }
        None => match operation::automated(
            &spec,
            &comparison,
            operation_state.as_ref(),
            prune_blocked.is_some(),
        ) {
            operation::AutoSync::Run(op) => Some(op),
            operation::AutoSync::Later(delay) => {
                requeue = delay;
                None
            }
            operation::AutoSync::No => None,
        },
    };
    let mut operation_to_run = operation_to_run;
    if let Some(op) = operation_to_run.clone() {
        let op = &op;
        let automated = op
            .pointer("/initiatedBy/automated")
            .and_then(Value::as_bool)
            == Some(true);
        let trigger = if automated {
            plumb_core::plan::Trigger::Automated
        } else {
            plumb_core::plan::Trigger::Manual
        };
        // Windows gate starting an operation; one already running goes on.
        // Running means started: progress recorded (a sync waiting for its dependencies is
        // Running too, but has applied nothing yet).
        let running = operation_state
            .as_ref()
            .is_some_and(|s| str_at(s, &["phase"]) == "Running" && s.get("syncResult").is_some());
        if !running
            && let Some(blocked) = crate::windows::check(context, &app, &spec, trigger).await
        {
            comparison
                .warnings
                .push(condition("SyncWindowBlocked", &blocked.message));
            if automated {
                requeue = blocked.retry_after;
            } else {
                // Argo CD refuses a manual sync inside a deny window without manualSync.
                operation_state = Some(json!({"operation": op, "phase": "Failed",
                        "message": format!("cannot sync: {}", blocked.message), "startedAt": now(), "finishedAt": now()}));
                clear_operation = true;
            }
            operation_to_run = None;
        }
        if !running && operation_to_run.is_some() {
            match crate::dependencies::check(context, id, &spec) {
                Gate::Open => {}
                Gate::Waiting(message) => {
                    comparison
                        .warnings
                        .push(condition("DependencyNotReady", &message));
                    requeue = DEPENDENCY_POLL;
                    if !automated {
                        let state =
                            waiting_for_dependencies(op, operation_state.as_ref(), &message, &spec);
                        clear_operation = str_at(&state, &["phase"]) == "Failed";
                        operation_state = Some(state);
                    }
                    operation_to_run = None;
                }
                Gate::Invalid(message) => {
                    comparison
                        .warnings
                        .push(condition("InvalidSpecError", &message));
                    if !automated {
                        operation_state = Some(json!({"operation": op, "phase": "Failed",
                            "message": format!("cannot sync: {message}"), "startedAt": now(), "finishedAt": now()}));
                        clear_operation = true;
                    }
                    operation_to_run = None;
                }
            }
        }
    }
    let operation_ran = operation_to_run.is_some();
    let mut terminated = false;
    if let Some(op) = operation_to_run {
        let outcome = operation::run(
            context,
            &app,
            &spec,
            &instance,
            &comparison,
            &op,
            operation_state.as_ref(),
        )
        .await;
        operation_state = Some(outcome.state);
        terminated = outcome.terminated;
        if let Some(entry) = outcome.history_entry {
            history = crate::status::append_history(&history, entry, spec.history_limit());
        }
        match outcome.retry_after {
            Some(delay) => requeue = delay,
            None => clear_operation = true,
        }
        // Look again at what the sync changed, so the status written now is accurate.
        if let Ok(after) = compare(
            context,
            &destination,
            &app,
            &spec,
            &instance,
            &crate::multi_source::Target::resolved(&comparison),
            Freshness::Within(Duration::MAX),
        )
        .await
        {
            comparison = after;
        }
    }

    if let Some(blocked) = prune_guard(&spec, &comparison, &instance) {
        comparison
            .warnings
            .push(condition("PruneBlockedWarning", &blocked));
    }
    let mut status = Map::new();
    let rules = crate::health_config::load(context).await;
    let (resources, health_failures) = comparison.resources(&rules);
    if let Some(condition) = health_error(&health_failures) {
        comparison.warnings.push(condition);
    }
    if !rules.problems().is_empty() {
        let problems: Vec<String> = rules.problems().iter().map(ToString::to_string).collect();
        comparison.warnings.push(condition(
            "ComparisonError",
            &format!("health customizations ignored: {}", problems.join("; ")),
        ));
    }
    let app_health = health::worst(
        resources
            .iter()
            .filter(|r| !r.requires_pruning)
            .filter_map(|r| r.health.as_ref()),
    );
    let synced = comparison.is_synced();
    status.insert(
        "sync".into(),
        json!({"status": if synced { "Synced" } else { "OutOfSync" }, "revision": comparison.revision.revision,
            "comparedTo": {"source": comparison.source, "destination": spec.destination}}),
    );
    let mut health_json = json!({"status": app_health.status.as_str()});
    if !app_health.message.is_empty() {
        health_json["message"] = json!(app_health.message);
    }
    status.insert("health".into(), health_json);
    let mut rollback_operation = None;
    match crate::rollback::timeout_of(&app) {
        Ok(Some(timeout)) => {
            let now_text = now();
            let operation_active = operation_ran
                || !clear_operation && app.get("operation").is_some_and(|o| !o.is_null());
            let (state, operation) = crate::rollback::decide(
                &crate::rollback::Observed {
                    previous: previous.get("rollback"),
                    health: app_health.status,
                    synced,
                    revision: &comparison.revision.revision,
                    source: &serde_json::to_value(&comparison.source).unwrap_or_default(),
                    multi: comparison
                        .multi
                        .as_ref()
                        .map(|m| json!({"revisions": m.revisions, "sources": m.sources}))
                        .as_ref(),
                    operation_active,
                    now: (&now_text, chrono::Utc::now().timestamp()),
                },
                timeout,
            );
            status.insert("rollback".into(), state);
            if let Some(operation) = operation {
                let reason = crate::rollback::reason_of(&operation)
                    .unwrap_or("")
                    .to_string();
                operation::record_event(context, &app, "Warning", "RollbackStarted", &reason).await;
                rollback_operation = Some(operation);
                requeue = Duration::ZERO;
            } else if !str_at(
                status.get("rollback").unwrap_or(&Value::Null),
                &["degradedSince"],
            )
            .is_empty()
            {
                // Look again when the timeout may have passed.
                requeue = requeue.min(timeout.max(Duration::from_secs(1)));
            }
        }
        Ok(None) => {}
        Err(problem) => comparison
            .warnings
            .push(condition("InvalidSpecError", &problem)),
    }
    status.insert(
        "resources".into(),
        Value::Array(resources.iter().map(ResourceStatus::to_json).collect()),
    );
    status.insert("sourceType".into(), json!(comparison.source_type.as_str()));
    if let Some(multi) = &comparison.multi {
        multi.write_status(&mut status);
    }
    let mut conditions = comparison.warnings.clone();
    carry_transition_times(
        &mut conditions,
        previous.get("conditions").unwrap_or(&Value::Null),
    );
    if !conditions.is_empty() {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    if let Some(state) = operation_state {
        status.insert("operationState".into(), state);
    }
    if history.as_array().is_some_and(|h| !h.is_empty()) {
        status.insert("history".into(), history);
    }
    status.insert("summary".into(), json!({"images": images(&comparison)}));
    status.insert(
        "reconciledAt".into(),
        previous
            .get("reconciledAt")
            .cloned()
            .unwrap_or_else(|| json!(now())),
    );
    let previous_sync = str_at(&previous, &["sync", "status"]).to_string();
    let new_sync = if synced { "Synced" } else { "OutOfSync" };
    if !previous_sync.is_empty() && previous_sync != new_sync {
        operation::record_event(
            context,
            &app,
            "Normal",
            "ResourceUpdated",
            &format!("Updated sync status: {previous_sync} -> {new_sync}"),
        )
        .await;
    }
    let previous_health = str_at(&previous, &["health", "status"]).to_string();
    if !previous_health.is_empty() && previous_health != app_health.status.as_str() {
        operation::record_event(
            context,
            &app,
            "Normal",
            "ResourceUpdated",
            &format!(
                "Updated health status: {previous_health} -> {}",
                app_health.status.as_str()
            ),
        )
        .await;
    }
    // An operation patched the Application meanwhile; diff against what the server has now.
    let current = if operation_ran {
        context.app(id).unwrap_or(app.clone())
    } else {
        app.clone()
    };
    let base = current.get("status").cloned().unwrap_or(Value::Null);
    let mut patch = json!({"status": merge_diff(&base, &Value::Object(status))});
    let changed = patch["status"].as_object().is_some_and(|m| !m.is_empty());
    // Argo CD's way: an application with PostDelete hooks carries the finalizer that makes its
    // deletion wait for them.
    let add_post_delete_finalizer = operation::has_post_delete_hooks(&comparison)
        && !has_finalizer(&current, operation::POST_DELETE_FINALIZER);
    if add_post_delete_finalizer {
        let mut finalizers = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        finalizers.push(json!(operation::POST_DELETE_FINALIZER));
        patch["metadata"]["finalizers"] = Value::Array(finalizers);
    }
    if changed
        || full_refresh
        || clear_operation
        || !refresh.is_empty()
        || rollback_operation.is_some()
        || add_post_delete_finalizer
    {
        patch["status"]["reconciledAt"] = json!(now());
        if clear_operation {
            patch["operation"] = Value::Null;
        }
        if let Some(operation) = rollback_operation {
            patch["operation"] = operation;
        }
        if !refresh.is_empty() {
            patch["metadata"]["annotations"] = json!({REFRESH_ANNOTATION: null});
        }
        if operation_ran && !terminated {
            // Never write a running operation's state over a termination request.
            if patch_app_unless_terminating(context, id, &patch).await
                == Err(NotWritten::Terminating)
            {
                return Some(Duration::ZERO);
            }
        } else {
            patch_app(context, &current, &patch).await;
        }
    }
    Some(requeue)
}

/// Why an automated sync would hold pruning back now, if it would.
fn prune_guard(spec: &ApplicationSpec, comparison: &Comparison, instance: &str) -> Option<String> {
    let automated = spec.automated()?;
    if !automated.prune || comparison.extra.is_empty() {
        return None;
    }
    let plan = plumb_core::plan::Plan::build(
        &comparison.desired(),
        &comparison.owned_live(instance),
        &plumb_core::plan::PlanOptions {
            prune: true,
            allow_empty: automated.allow_empty,
            allow_mass_prune: spec.sync_options().allow_mass_prune,
            trigger: plumb_core::plan::Trigger::Automated,
            app: instance.to_string(),
            app_options: spec.sync_options(),
        },
    );
    plan.prune_blocked.map(|blocked| blocked.to_string())
}

/// The Helm chart in an OCI registry a source names, if it names one: `chart` with an
/// `oci://` or scheme-less `repoURL` (Argo CD's Helm OCI form), or an `oci://` `repoURL`
/// without `chart` (Argo CD's OCI source; the chart is the last path component).
pub(crate) fn oci_chart_of(
    source: &Source,
) -> Option<Result<plumb_source::helm::oci::OciReference, plumb_source::helm::HelmError>> {
    use plumb_source::helm::oci::OciReference;
    let url = source.repo_url.trim();
    let oci = if source.chart.is_empty() {
        url.starts_with("oci://")
    } else {
        OciReference::is_oci(url)
    };
    oci.then(|| OciReference::parse(url, &source.chart))
}

/// Problems with the spec that parsing cannot see.
fn spec_problem(spec: &ApplicationSpec) -> Option<String> {
    let sources = spec.all_sources();
    if sources.is_empty() {
        return Some(
            "spec.source: an application needs a source (spec.source, or entries in spec.sources)"
                .into(),
        );
    }
    if !spec.sources.is_empty() {
        // Argo CD's rule: with spec.sources, spec.source is ignored.
        if let Some(problem) = crate::multi_source::problem(&spec.sources) {
            return Some(problem);
        }
    } else if sources[0].repo_url.is_empty() {
        return Some("spec.source.repoURL: must be set".into());
    } else if let Some(Err(error)) = oci_chart_of(sources[0]) {
        return Some(format!("spec.source.{error}"));
    }
    // The destination is resolved (and checked) through the cluster Secrets: see clusters.rs.
    None
}

/// The previous status with one condition replacing the others.
fn error_status(previous: &Value, kind: &str, message: &str) -> Value {
    let mut status = previous.as_object().cloned().unwrap_or_default();
    let mut conditions = vec![condition(kind, message)];
    carry_transition_times(
        &mut conditions,
        previous.get("conditions").unwrap_or(&Value::Null),
    );
    status.insert("conditions".into(), Value::Array(conditions));
    if !status.contains_key("sync") {
        status.insert("sync".into(), json!({"status": "Unknown"}));
    }
    if !status.contains_key("health") {
        status.insert("health".into(), json!({"status": "Unknown"}));
    }
    Value::Object(status)
}

async fn write_status(context: &Arc<Context>, app: &Value, status: Value, force: bool) {
    let previous = app.get("status").cloned().unwrap_or(Value::Null);
    let mut patch = json!({"status": merge_diff(&previous, &status)});
    let changed = patch["status"].as_object().is_some_and(|m| !m.is_empty());
    let refresh = !str_at(app, &["metadata", "annotations", REFRESH_ANNOTATION]).is_empty();
    if changed || force || refresh {
        patch["status"]["reconciledAt"] = json!(now());
        if refresh {
            patch["metadata"] = json!({"annotations": {REFRESH_ANNOTATION: null}});
        }
        patch_app(context, app, &patch).await;
    }
}

/// Merge-patches the Application and remembers the result.
pub(crate) async fn patch_app(context: &Arc<Context>, app: &Value, patch: &Value) -> Option<Value> {
    let id = crate::app_id(app);
    match context
        .cluster
        .merge_patch(
            plumb_core::application::API_VERSION,
            "Application",
            &id.0,
            &id.1,
            patch,
        )
        .await
    {
        Ok(updated) => {
            context.remember(&id, updated.clone());
            Some(updated)
        }
        Err(error) => {
            tracing::warn!(app = %id.1, namespace = %id.0, error = %error_chain(&error), "cannot write application status");
            None
        }
    }
}

/// The destination of `app` as its spec names it.
async fn app_destination(context: &Context, app: &Value) -> Result<Destination, Unusable> {
    // A spec that does not parse (any more) is deleted as before clusters existed: in-cluster.
    let Ok(spec) = ApplicationSpec::parse(app.get("spec").unwrap_or(&Value::Null)) else {
        return Ok(Destination::in_cluster(context.cluster.clone()));
    };
    crate::clusters::destination(context, &spec.destination).await
}

/// Whether `app` carries a finalizer starting with `finalizer`.
fn has_finalizer(app: &Value, finalizer: &str) -> bool {
    app.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| {
            f.iter()
                .any(|f| f.as_str().is_some_and(|f| f.starts_with(finalizer)))
        })
}

/// How often an operation waiting for its dependencies looks at them again.
const DEPENDENCY_POLL: Duration = Duration::from_secs(2);

/// The state of a manual operation waiting for its dependencies: Running since it was asked
/// for, Failed once `spec.dependsOn.timeout` has passed.
fn waiting_for_dependencies(
    operation: &Value,
    previous: Option<&Value>,
    message: &str,
    spec: &ApplicationSpec,
) -> Value {
    let since = previous
        .filter(|s| {
            str_at(s, &["phase"]) == "Running"
                && s.get("syncResult").is_none()
                && s.get("operation") == Some(operation)
        })
        .map(|s| str_at(s, &["startedAt"]).to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(now);
    let waited = chrono::DateTime::parse_from_rfc3339(&since)
        .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
        .unwrap_or(0);
    let timeout = spec.depends_on.as_ref().and_then(|d| d.timeout);
    if let Some(timeout) = timeout.filter(|t| waited >= i64::try_from(*t).unwrap_or(i64::MAX)) {
        return json!({"operation": operation, "phase": "Failed", "startedAt": since, "finishedAt": now(),
            "message": format!("timed out after {timeout}s {message}")});
    }
    json!({"operation": operation, "phase": "Running", "message": message, "startedAt": since})
}

/// Why a guarded status write was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotWritten {
    /// Someone asked to terminate the running operation (`status.operationState.phase:
    /// Terminating`); the operation must stop instead of writing its progress over that.
    Terminating,
    /// The server refused the write (logged).
    Failed,
}

/// Whether the application's running operation is being terminated.
pub(crate) fn is_terminating(app: &Value) -> bool {
    str_at(app, &["status", "operationState", "phase"]) == "Terminating"
}

/// Merge-patches the Application unless its operation is being terminated.
///
/// **Guarantees**: the patch is made against the newest version of the Application the
/// controller knows (its resourceVersion is a precondition), so a termination request written
/// meanwhile is never overwritten: the server refuses with a conflict, the Application is read
/// again and the termination seen.
pub(crate) async fn patch_app_unless_terminating(
    context: &Arc<Context>,
    id: &crate::queue::AppId,
    patch: &Value,
) -> Result<Value, NotWritten> {
    let api_version = plumb_core::application::API_VERSION;
    let mut current = context.app(id);
    for _ in 0..5 {
        let Some(app) = current.take() else {
            return Err(NotWritten::Failed);
        };
        if is_terminating(&app) {
            return Err(NotWritten::Terminating);
        }
        let mut guarded = patch.clone();
        guarded["metadata"]["resourceVersion"] =
            json!(str_at(&app, &["metadata", "resourceVersion"]));
        match context
            .cluster
            .merge_patch(api_version, "Application", &id.0, &id.1, &guarded)
            .await
        {
            Ok(updated) => {
                context.remember(id, updated.clone());
                return Ok(updated);
            }
            Err(error) if error.is_conflict() => {
                match context
                    .cluster
                    .get(api_version, "Application", &id.0, &id.1)
                    .await
                {
                    Ok(Some(fresh)) => {
                        context.remember(id, fresh.clone());
                        current = Some(fresh);
                    }
                    Ok(None) => return Err(NotWritten::Failed),
                    Err(error) => {
                        tracing::warn!(app = %id.1, error = %error_chain(&error), "cannot read application");
                        return Err(NotWritten::Failed);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(app = %id.1, namespace = %id.0, error = %error_chain(&error), "cannot write application status");
                return Err(NotWritten::Failed);
            }
        }
    }
    Err(NotWritten::Failed)
}

/// A JSON merge patch turning `old` into `new` (keys missing from `new` become `null`).
pub(crate) fn merge_diff(old: &Value, new: &Value) -> Value {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return new.clone();
    };
    let mut patch = Map::new();
    for (key, value) in new {
        match old.get(key) {
            Some(previous) if previous == value => {}
            Some(previous) if previous.is_object() && value.is_object() => {
                patch.insert(key.clone(), merge_diff(previous, value));
            }
            _ => {
                patch.insert(key.clone(), value.clone());
            }
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) && key != "reconciledAt" {
            patch.insert(key.clone(), Value::Null);
        }
    }
    Value::Object(patch)
}

fn images(comparison: &Comparison) -> Vec<String> {
    let mut images: Vec<String> = comparison
        .objects
        .iter()
        .flat_map(|o| {
            let spec = o
                .manifest
                .object
                .pointer("/spec/template/spec")
                .or_else(|| o.manifest.object.pointer("/spec"));
            ["containers", "initContainers"]
                .into_iter()
                .filter_map(move |field| spec.and_then(|s| s.get(field)).and_then(Value::as_array))
                .flatten()
                .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_string))
        })
        .collect();
    images.sort();
    images.dedup();
    images
}

/// Resolves and renders the source (every source of a multi-source application), then
/// compares every desired object with the cluster.
pub(crate) async fn compare(
    context: &Arc<Context>,
    destination: &Destination,
    app: &Value,
    spec: &ApplicationSpec,
    instance: &str,
    target: &crate::multi_source::Target,
    freshness: Freshness,
) -> Result<Comparison, String> {
    let render_context = plumb_render::RenderContext {
        app_name: str_at(app, &["metadata", "name"]).to_string(),
        namespace: spec.destination.namespace.clone(),
        kube_version: None,
    };
    let (revision, source, rendered, multi) = match target {
        crate::multi_source::Target::One { source, revision } => {
            let fetched = crate::fetch::fetch(context, source, revision, freshness)
                .await
                .map_err(|error| error.shown("spec.source"))?;
            let limits = context.options.limits.clone();
            let context_for_render = context.clone();
            let revision = fetched.revision.clone();
            let rendered = tokio::task::spawn_blocking(move || {
                context_for_render.renders.render(
                    &fetched.revision.revision,
                    &fetched.root,
                    &fetched.source,
                    &render_context,
                    &limits,
                )
            })
            .await
            .map_err(|e| format!("render task failed: {e}"))??;
            (revision, (**source).clone(), rendered, None)
        }
        crate::multi_source::Target::Many { sources, revisions } => {
            let render = crate::multi_source::render(
                context,
                &render_context,
                sources,
                revisions,
                freshness,
            )
            .await?;
            (
                render.revision,
                render.first,
                render.rendered,
                Some(render.multi),
            )
        }
    };
    let (source_type, manifests) = (rendered.0, &rendered.1);

    let project = crate::project::load(context, spec).await?;
    let mut warnings = Vec::new();
    let unknown =
        plumb_core::application::unknown_spec_fields(app.get("spec").unwrap_or(&Value::Null));
    if !unknown.is_empty() {
        warnings.push(condition(
            "UnknownFieldsWarning",
            &format!("fields not known, ignored: {}", unknown.join(", ")),
        ));
    }
    let ignore = plumb_core::ignore::IgnoreRules::compile(&spec.ignore_differences)
        .map_err(|error| format!("spec.ignoreDifferences: {error}"))?;
    let rules_hash =
        hash_value(&serde_json::to_value(&spec.ignore_differences).unwrap_or_default());
    let app_options = spec.sync_options();
    if !app_options.unknown.is_empty() {
        warnings.push(condition(
            "InvalidSpecError",
            &format!(
                "spec.syncPolicy.syncOptions: unknown options ignored: {}",
                app_options.unknown.join(", ")
            ),
        ));
    }
    // CRDs declared by this application tell the scope of kinds the server does not serve yet.
    let declared_crds: BTreeMap<(String, String), bool> = manifests
        .iter()
        .filter(|m| m.key().kind == "CustomResourceDefinition")
        .map(|m| {
            let group = str_at(&m.object, &["spec", "group"]).to_string();
            let kind = str_at(&m.object, &["spec", "names", "kind"]).to_string();
            (
                (group, kind),
                str_at(&m.object, &["spec", "scope"]) != "Cluster",
            )
        })
        .collect();

    let mut objects: Vec<Compared> = Vec::new();
    let mut hooks: Vec<Manifest> = Vec::new();
    let mut seen = HashSet::new();
    for manifest in manifests.iter() {
        let mut manifest = manifest.clone();
        let api_version = str_at(&manifest.object, &["apiVersion"]).to_string();
        let kind = str_at(&manifest.object, &["kind"]).to_string();
        let mut error = None;
        let namespaced = match destination.cluster.kind(&api_version, &kind).await {
            Ok(resolved) => {
                // A cluster whose Secret lists namespaces is watched in each of them.
                let namespaces = if resolved.namespaced {
                    &destination.target.namespaces[..]
                } else {
                    &[]
                };
                context.drift.ensure(
                    destination.key(),
                    &destination.cluster,
                    &context.queue,
                    &api_version,
                    &kind,
                    namespaces,
                );
                Some(resolved.namespaced)
            }
            Err(plumb_kube::Error::UnknownKind { .. }) => {
                let group = plumb_core::key::group_of(&api_version).to_string();
                match declared_crds.get(&(group, kind.clone())) {
                    Some(namespaced) => Some(*namespaced),
                    // SkipDryRunOnMissingResource: its CRD is expected to come some other way;
                    // applying it is the only check.
                    None if app_options.skip_dry_run_on_missing_resource
                        || SyncOptions::of_object(&manifest.object)
                            .skip_dry_run_on_missing_resource =>
                    {
                        None
                    }
                    None => {
                        error = Some(format!(
                            "{}: {kind} {:?}: the server does not serve {api_version} {kind} (unknown kind; is its CRD installed?)",
                            manifest.origin,
                            str_at(&manifest.object, &["metadata", "name"])
                        ));
                        None
                    }
                }
            }
            Err(other) => return Err(error_chain(&other)),
        };
        if let Some(metadata) = manifest
            .object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            match namespaced {
                Some(true)
                    if !metadata.contains_key("namespace") || metadata["namespace"] == "" =>
                {
                    let namespace = if spec.destination.namespace.is_empty() {
                        "default"
                    } else {
                        &spec.destination.namespace
                    };
                    metadata.insert("namespace".into(), json!(namespace));
                }
                Some(false) => {
                    metadata.remove("namespace");
                }
                _ => {}
            }
        }
        if error.is_none()
            && let Some(namespaced) = namespaced
        {
            let group = plumb_core::key::group_of(&api_version);
            let namespace = namespaced
                .then(|| str_at(&manifest.object, &["metadata", "namespace"]).to_string());
            if let Some(refusal) = crate::project::object_refusal(
                &project,
                &destination.target,
                group,
                &kind,
                namespace.as_deref(),
            )
            .or_else(|| destination.target.scope_refusal(namespace.as_deref()))
            {
                error = Some(format!(
                    "{}: {kind} {:?}: {refusal}",
                    manifest.origin,
                    str_at(&manifest.object, &["metadata", "name"])
                ));
            }
        }
        // An app-of-apps that renders its own Application would rewrite itself on every sync.
        if kind == "Application"
            && plumb_core::key::group_of(&api_version) == "argoproj.io"
            && str_at(&manifest.object, &["metadata", "name"]) == str_at(app, &["metadata", "name"])
            && str_at(&manifest.object, &["metadata", "namespace"])
                == str_at(app, &["metadata", "namespace"])
        {
            error = Some(format!(
                "{}: Application {:?} renders itself; an application cannot manage its own definition",
                manifest.origin,
                str_at(app, &["metadata", "name"])
            ));
        }
        stamp(&mut manifest.object, instance);
        let object_options = SyncOptions::of_object(&manifest.object);
        if !object_options.unknown.is_empty() {
            warnings.push(condition(
                "SyncOptionWarning",
                &format!(
                    "{}: {} {:?}: annotation {:?}: unknown options ignored: {}",
                    manifest.origin,
                    kind,
                    str_at(&manifest.object, &["metadata", "name"]),
                    plumb_core::sync_options::SYNC_OPTIONS_ANNOTATION,
                    object_options.unknown.join(", ")
                ),
            ));
        }
        // Hook, wave and delete-policy annotations are checked here, so a typo is named before
        // any sync (the sync refuses the whole plan too).
        if let Err(problem) = plumb_core::hooks::SyncRole::of(&manifest.object) {
            let message = format!("{}: {problem}", manifest.origin);
            if plumb_core::hooks::is_hook(&manifest.object) {
                warnings.push(condition("ComparisonError", &message));
            } else {
                error = error.or(Some(message));
            }
        }
        if plumb_core::hooks::is_hook(&manifest.object) {
            hooks.push(manifest);
            continue;
        }
        let key = manifest.key();
        if !seen.insert(key.clone()) {
            warnings.push(condition(
                "RepeatedResourceWarning",
                &format!(
                    "{}: {key} appears more than once; the last definition wins",
                    manifest.origin
                ),
            ));
            objects.retain(|o| o.manifest.key() != key);
        }
        objects.push(Compared {
            manifest,
            live: None,
            in_sync: false,
            error,
            shared_with: None,
            dry_run: None,
        });
    }

    for object in objects.iter_mut() {
        if object.error.is_some() {
            continue;
        }
        let key = object.manifest.key();
        let api_version = str_at(&object.manifest.object, &["apiVersion"]).to_string();
        let live = match live_object(context, destination, &api_version, &key, Wanted::Any).await {
            Ok(live) => live,
            Err(plumb_kube::Error::UnknownKind { .. }) => None, // its CRD comes with this app
            Err(error) => return Err(error_chain(&error)),
        };
        if let Some(live) = &live
            && let Some(owner) = owner_of(live).filter(|owner| *owner != instance)
        {
            object.shared_with = Some(owner.to_string());
            warnings.push(condition(
                "SharedResourceWarning",
                &format!("{key} is also part of application {owner}"),
            ));
        }
        // Both worlds in one cluster: an object a Flux Kustomization manages is reported, not
        // taken over.
        if let Some(live) = &live
            && let Some(flux) = flux_owner(live)
        {
            object.error = Some(format!(
                "{}: {key} is managed by Flux Kustomization {flux}; plumb does not take it over",
                object.manifest.origin
            ));
            object.live = Some(live.clone());
            continue;
        }
        object.live = live;
        let Some(live) = &object.live else { continue };
        let desired_hash = hash_value(&object.manifest.object) ^ rules_hash;
        let live_version = str_at(live, &["metadata", "resourceVersion"]).to_string();
        let cache_key = (destination.key().to_string(), key.clone());
        let cached = context
            .compare_cache
            .lock()
            .ok()
            .and_then(|cache| cache.get(&cache_key).cloned());
        if let Some((hash, version, in_sync)) = cached
            && hash == desired_hash
            && version == live_version
        {
            object.in_sync = in_sync;
            continue;
        }
        match destination
            .cluster
            .apply(
                &object.manifest.object,
                &ApplyOptions {
                    dry_run: DryRun::Server,
                    force: true,
                },
            )
            .await
        {
            Ok(dry_run) => {
                object.in_sync = if ignore.applies_to(&key) {
                    let (mut live, mut desired) = (live.clone(), dry_run.clone());
                    for problem in ignore.normalize(Some(&mut live), Some(&mut desired)) {
                        tracing::debug!(object = %key, ?problem, "ignoreDifferences rule did not apply");
                    }
                    plumb_core::diff::is_in_sync(&desired, &live)
                } else {
                    plumb_core::diff::is_in_sync(&dry_run, live)
                };
                if let Ok(mut cache) = context.compare_cache.lock() {
                    cache.insert(cache_key, (desired_hash, live_version, object.in_sync));
                }
                object.dry_run = Some(dry_run);
            }
            // Force=true: a change the server refuses (an immutable field) is made by deleting
            // and creating the object, so the refusal only means "out of sync".
            Err(plumb_kube::Error::Api { code: 422, .. })
                if app_options.force
                    || SyncOptions::of_object(&object.manifest.object).force
                    || app.get("operation").is_some_and(operation::forced) =>
            {
                object.in_sync = false;
            }
            Err(error) => {
                object.error = Some(format!(
                    "{}: {key}: {}",
                    object.manifest.origin,
                    error_chain(&error)
                ));
            }
        }
    }
    for object in &objects {
        if let Some(error) = &object.error {
            warnings.push(condition("ComparisonError", error));
        }
    }

    // Objects recorded at the last comparison and no longer declared: candidates for pruning,
    // but only while this application still owns them.
    let mut extra = Vec::new();
    let previous = app.get("status").cloned().unwrap_or(Value::Null);
    for (api_version, key) in inventory(&previous) {
        if seen.contains(&key) {
            continue;
        }
        match live_object(context, destination, &api_version, &key, Wanted::Managed).await {
            Ok(Some(live)) if is_owned_by(&live, instance) => extra.push(live),
            Ok(_) | Err(plumb_kube::Error::UnknownKind { .. }) => {}
            Err(error) => return Err(error_chain(&error)),
        }
    }
    Ok(Comparison {
        destination: destination.clone(),
        revision,
        source,
        source_type,
        multi,
        objects,
        hooks,
        extra,
        warnings,
    })
}

/// `namespace/name` of the Flux Kustomization whose labels `live` carries, if any.
fn flux_owner(live: &Value) -> Option<String> {
    let labels = live.pointer("/metadata/labels")?;
    let name = labels.get("kustomize.toolkit.fluxcd.io/name")?.as_str()?;
    let namespace = labels
        .get("kustomize.toolkit.fluxcd.io/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(format!("{namespace}/{name}"))
}

/// Which live objects a reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// The object whether or not plumb manages it.
    Any,
    /// Only an object carrying plumb's instance label.
    Managed,
}

/// The live object in `destination`: from the cache of managed objects when it knows, else
/// from the server.
pub(crate) async fn live_object(
    context: &Context,
    destination: &Destination,
    api_version: &str,
    key: &plumb_core::ObjectKey,
    wanted: Wanted,
) -> Result<Option<Value>, plumb_kube::Error> {
    match context.drift.lookup(
        destination.key(),
        api_version,
        &key.kind,
        &key.namespace,
        &key.name,
    ) {
        crate::drift::Cached::Found(object) => Ok(Some(object)),
        crate::drift::Cached::NotManaged if wanted == Wanted::Managed => Ok(None),
        crate::drift::Cached::NotManaged | crate::drift::Cached::Unknown => {
            destination
                .cluster
                .get(api_version, &key.kind, &key.namespace, &key.name)
                .await
        }
    }
}

fn hash_value(value: &Value) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_diff_nulls_removed_keys_and_skips_equal_ones() {
        let old = json!({"health": {"status": "Progressing", "message": "waiting"}, "sync": {"status": "Synced"}, "conditions": [1]});
        let new = json!({"health": {"status": "Healthy"}, "sync": {"status": "Synced"}});
        assert_eq!(
            merge_diff(&old, &new),
            json!({"health": {"status": "Healthy", "message": null}, "conditions": null})
        );
        assert_eq!(merge_diff(&new, &new), json!({}));
    }
}
