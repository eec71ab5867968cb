//! ApplicationSets: generate Applications, apply them, and delete the ones no longer generated.
//!
//! Generation is `plumb-appset`'s pure function; this module gives it what it may read (Git
//! snapshots through [`Sources`], cluster Secrets) and writes the result: every generated
//! Application is server-side applied with an ownerReference to its set, and Applications the
//! set owns but no longer generates are deleted (unless `syncPolicy.applicationsSync` forbids
//! it). Conditions are written in Argo CD's shape (`ErrorOccurred`, `ParametersGenerated`,
//! `ResourcesUpToDate`).

use crate::Context;
use crate::sources::{Freshness, Sources, error_chain};
use crate::status::now;
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use plumb_kube::{ApplyOptions, DryRun, Propagation};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct Generators {
    sources: Arc<dyn Sources>,
    clusters: Vec<Value>,
    freshness: Duration,
}

impl plumb_appset::GeneratorContext for Generators {
    fn repository_root(&self, repo_url: &str, revision: &str) -> Result<PathBuf, String> {
        let resolved = self
            .sources
            .resolve(
                repo_url,
                revision,
                &plumb_source::Credentials::None,
                Freshness::Within(self.freshness),
            )
            .map_err(|e| error_chain(e.as_ref()))?;
        self.sources
            .snapshot(repo_url, &resolved)
            .map_err(|e| error_chain(e.as_ref()))
    }

    fn cluster_secrets(&self) -> Result<Vec<Value>, String> {
        Ok(self.clusters.clone())
    }
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": if status { "True" } else { "False" }, "reason": reason,
        "message": message, "lastTransitionTime": now()})
}

/// Reconciles one ApplicationSet; returns when to look again.
pub(crate) async fn reconcile(context: &Arc<Context>, set: &Value) -> Duration {
    let namespace = str_at(set, &["metadata", "namespace"]).to_string();
    let name = str_at(set, &["metadata", "name"]).to_string();
    let uid = str_at(set, &["metadata", "uid"]).to_string();
    let clusters: Vec<Value> = context
        .cluster
        .list("v1", "Secret", &context.options.control_namespace)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|s| {
            str_at(s, &["metadata", "labels", "argocd.argoproj.io/secret-type"]) == "cluster"
        })
        .collect();
    let generators = Generators {
        sources: context.sources.clone(),
        clusters,
        freshness: context.options.poll_interval,
    };
    let set_owned = set.clone();
    let generated = tokio::task::spawn_blocking(move || {
        plumb_appset::generate_with_warnings(&set_owned, &generators)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| error_chain(&e)));
    let generation = match generated {
        Ok(generation) => generation,
        Err(message) => {
            let conditions = vec![
                condition(
                    "ErrorOccurred",
                    true,
                    "ApplicationGenerationFromParamsError",
                    &message,
                ),
                condition("ParametersGenerated", false, "ErrorOccurred", &message),
                condition("ResourcesUpToDate", false, "ErrorOccurred", &message),
            ];
            write_status(context, &namespace, &name, conditions).await;
            return context.poll_delay();
        }
    };
    let policy = plumb_appset::applications_sync(set).ok();
    let mut failures = Vec::new();
    let mut generated_names = std::collections::HashSet::new();
    for application in &generation.applications {
        let app_name = str_at(application, &["metadata", "name"]).to_string();
        generated_names.insert(app_name.clone());
        let exists = context
            .cluster
            .get(API_VERSION, "Application", &namespace, &app_name)
            .await
            .ok()
            .flatten()
            .is_some();
        if exists && policy.as_ref().is_some_and(|p| !p.allows_update()) {
            continue;
        }
        if let Err(error) = context
            .cluster
            .apply(
                application,
                &ApplyOptions {
                    dry_run: DryRun::None,
                    force: true,
                },
            )
            .await
        {
            failures.push(format!("application {app_name}: {}", error_chain(&error)));
        }
    }
    if policy.as_ref().is_none_or(|p| p.allows_delete()) {
        let existing = context
            .cluster
            .list(API_VERSION, "Application", &namespace)
            .await
            .unwrap_or_default();
        for app in existing {
            let owned = app
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter().any(|r| {
                        str_at(r, &["kind"]) == "ApplicationSet" && str_at(r, &["uid"]) == uid
                    })
                });
            let app_name = str_at(&app, &["metadata", "name"]).to_string();
            if owned
                && !generated_names.contains(&app_name)
                && let Err(error) = context
                    .cluster
                    .delete(
                        API_VERSION,
                        "Application",
                        &namespace,
                        &app_name,
                        Propagation::Foreground,
                    )
                    .await
            {
                failures.push(format!(
                    "delete application {app_name}: {}",
                    error_chain(&error)
                ));
            }
        }
    }
    let mut conditions = vec![condition(
        "ParametersGenerated",
        true,
        "ParametersGenerated",
        "Successfully generated parameters for all Applications",
    )];
    if failures.is_empty() {
        conditions.push(condition(
            "ErrorOccurred",
            false,
            "ApplicationSetUpToDate",
            "All applications have been generated successfully",
        ));
        conditions.push(condition(
            "ResourcesUpToDate",
            true,
            "ApplicationSetUpToDate",
            "All applications have been generated successfully",
        ));
    } else {
        let message = failures.join("; ");
        conditions.push(condition(
            "ErrorOccurred",
            true,
            "ApplicationSetApplyError",
            &message,
        ));
        conditions.push(condition(
            "ResourcesUpToDate",
            false,
            "ApplicationSetApplyError",
            &message,
        ));
    }
    for warning in &generation.warnings {
        conditions.push(condition(
            "Warning",
            true,
            "UnsupportedField",
            &format!("{}: {}", warning.field, warning.message),
        ));
    }
    write_status(context, &namespace, &name, conditions).await;
    Duration::from_secs(generation.requeue_after_seconds.unwrap_or(180).max(1))
}

async fn write_status(context: &Arc<Context>, namespace: &str, name: &str, conditions: Vec<Value>) {
    let current = context
        .cluster
        .get(API_VERSION, "ApplicationSet", namespace, name)
        .await
        .ok()
        .flatten();
    let previous = current
        .as_ref()
        .and_then(|s| s.pointer("/status/conditions"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut conditions = conditions;
    crate::status::carry_transition_times(&mut conditions, &previous);
    if previous == Value::Array(conditions.clone()) {
        return;
    }
    let patch = json!({"status": {"conditions": conditions}});
    if let Err(error) = context
        .cluster
        .merge_patch(API_VERSION, "ApplicationSet", namespace, name, &patch)
        .await
    {
        tracing::warn!(set = %name, error = %error_chain(&error), "cannot write applicationset status");
    }
}
