//! Custom health: what decides an object's health beyond plumb-core's rules for built-in kinds.
//!
//! Start with [`CustomHealth`]: built from Argo CD's `argocd-cm` ConfigMap
//! ([`CustomHealth::from_config_map`]), it assesses a live object the way Argo CD does — a
//! configured Lua script first ([`lua`], [`argocd`]), then plumb-core's rules, with the checks for
//! common custom resources of [`conditions`] filling in where those have none. Flux's CEL health
//! checks (`spec.healthCheckExprs` of a Kustomization) are [`expressions::HealthCheckExprs`].
//!
//! **Guarantees**: nothing here does I/O or panics on any input; scripts and expressions run
//! with time, memory and cost limits; a script that fails gives health `Unknown` and a
//! [`ScriptFailure`] naming the ConfigMap key, never an error that stops the caller.

pub mod argocd;
pub mod conditions;
pub mod expressions;
pub mod lua;
mod os;

pub use argocd::{ConfigProblem, HealthScripts};
pub use expressions::{ExprError, HealthCheckExprs};
pub use lua::{Limits, ScriptError};

use plumb_core::health::{Health, HealthStatus};
use plumb_core::key::{group_of, str_at};
use serde_json::Value;
use std::collections::BTreeMap;

/// A configured script that failed on an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFailure {
    /// Where the script is configured: the `argocd-cm` key (and block entry).
    pub source: String,
    /// What went wrong.
    pub error: ScriptError,
}

impl std::fmt::Display for ScriptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} key {:?}: {}",
            argocd::CONFIG_MAP,
            self.source,
            self.error
        )
    }
}

/// The outcome of assessing one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Its health; `None` when nothing has a notion of health for it.
    pub health: Option<Health>,
    /// The configured script that failed, when one did (the health is then `Unknown`).
    pub failure: Option<ScriptFailure>,
}

/// Health rules from Argo CD's configuration plus plumb's built-in ones.
#[derive(Debug, Clone, Default)]
pub struct CustomHealth {
    scripts: HealthScripts,
    limits: Limits,
}

impl CustomHealth {
    /// Rules from the `data` of an `argocd-cm` ConfigMap, with the default [`Limits`].
    pub fn from_config_map(data: &BTreeMap<String, String>) -> CustomHealth {
        CustomHealth::with_limits(data, Limits::default())
    }

    /// Rules from `argocd-cm` data with the given limits.
    pub fn with_limits(data: &BTreeMap<String, String>, limits: Limits) -> CustomHealth {
        CustomHealth {
            scripts: HealthScripts::parse(data, &limits),
            limits,
        }
    }

    /// The configured scripts.
    pub fn scripts(&self) -> &HealthScripts {
        &self.scripts
    }

    /// ConfigMap entries left out, each naming its key.
    pub fn problems(&self) -> &[ConfigProblem] {
        self.scripts.problems()
    }

    /// Assesses a live object: its configured script if any (as in Argo CD, a script overrides
    /// even a built-in rule), else plumb-core's rule for its kind, the checks of
    /// [`conditions::specific`], and the generic condition conventions.
    pub fn assess(&self, object: &Value) -> Assessment {
        let group = group_of(str_at(object, &["apiVersion"]));
        let kind = str_at(object, &["kind"]);
        if let Some(script) = self.scripts.script_for(group, kind) {
            let result = script
                .script
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|source| lua::evaluate(source, object, &self.limits));
            return match result {
                Ok(health) => Assessment {
                    health: Some(health),
                    failure: None,
                },
                Err(error) => {
                    let failure = ScriptFailure {
                        source: script.source.clone(),
                        error,
                    };
                    Assessment {
                        health: Some(Health {
                            status: HealthStatus::Unknown,
                            message: failure.to_string(),
                        }),
                        failure: Some(failure),
                    }
                }
            };
        }
        Assessment {
            health: builtin(object),
            failure: None,
        }
    }

    /// The health alone (a failed script is `Unknown`).
    pub fn health(&self, object: &Value) -> Option<Health> {
        self.assess(object).health
    }
}

/// plumb's built-in health without configured scripts: the checks for known custom resources,
/// then plumb-core's rules, then the generic condition conventions.
pub fn builtin(object: &Value) -> Option<Health> {
    if str_at(object, &["metadata", "deletionTimestamp"]).is_empty()
        && let Some(health) = conditions::specific(object)
    {
        return Some(health);
    }
    plumb_core::health::assess(object).or_else(|| conditions::generic(object))
}

#[cfg(test)]
mod tests;
