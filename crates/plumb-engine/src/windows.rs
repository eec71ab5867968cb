//! Sync windows from the Application's AppProject (`spec.syncWindows`).
//!
//! Before an operation starts, the project's windows decide whether it may: an automated sync
//! outside its windows waits (the application says which window blocks it and when that
//! changes); a manual sync blocked by a window without `manualSync` fails with that message, as
//! Argo CD refuses it.

use crate::Context;
use crate::sources::error_chain;
use plumb_core::application::{API_VERSION, ApplicationSpec};
use plumb_core::plan::Trigger;
use plumb_core::windows::{SyncWindow, SyncWindows, WindowTarget};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Why a sync may not start now.
pub(crate) struct Blocked {
    /// Which window blocks it, and until when.
    pub message: String,
    /// When to look again.
    pub retry_after: Duration,
}

/// Decides whether an operation of `trigger` may start now for `app`.
pub(crate) async fn check(
    context: &Arc<Context>,
    app: &Value,
    spec: &ApplicationSpec,
    trigger: Trigger,
) -> Option<Blocked> {
    let project = if spec.project.is_empty() {
        "default"
    } else {
        spec.project.as_str()
    };
    let namespace = &context.options.control_namespace;
    let project = match context
        .cluster
        .get(API_VERSION, "AppProject", namespace, project)
        .await
    {
        Ok(Some(project)) => project,
        Ok(None) => return None,
        Err(error) => {
            tracing::debug!(error = %error_chain(&error), "cannot read the AppProject; no sync windows applied");
            return None;
        }
    };
    let windows: Vec<SyncWindow> = match project.pointer("/spec/syncWindows") {
        Some(windows) if !windows.is_null() => match serde_json::from_value(windows.clone()) {
            Ok(windows) => windows,
            Err(error) => {
                return Some(Blocked {
                    message: format!("AppProject spec.syncWindows: {error}"),
                    retry_after: context.poll_delay(),
                });
            }
        },
        _ => return None,
    };
    let compiled = match SyncWindows::compile(&windows) {
        Ok(compiled) => compiled,
        Err(error) => {
            return Some(Blocked {
                message: format!("AppProject spec.syncWindows: {error}"),
                retry_after: context.poll_delay(),
            });
        }
    };
    let target = WindowTarget::of_application(
        plumb_core::key::str_at(app, &["metadata", "name"]),
        &spec.destination,
    );
    let now = context.options.clock.now();
    let decision = compiled.decide(&target, now, trigger);
    if decision.allowed {
        return None;
    }
    let retry_after = decision
        .next_change
        .and_then(|at| (at - now).to_std().ok())
        .map(|d| d.max(Duration::from_secs(1)))
        .unwrap_or_else(|| context.poll_delay());
    Some(Blocked {
        message: decision.message(),
        retry_after,
    })
}
