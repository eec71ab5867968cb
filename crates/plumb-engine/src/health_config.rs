//! Argo CD's health customizations: the `argocd-cm` ConfigMap of the control namespace.
//!
//! Like AppProjects ([`crate::project`]), the ConfigMap is read through a short-lived cache:
//! one read every [`CONFIG_TTL`] serves every application, and the scripts are parsed (and
//! syntax-checked) again only when the ConfigMap's `resourceVersion` changes. A change to a
//! script therefore takes effect within that time without a request per object.
//!
//! **Caveats**: when the ConfigMap cannot be read, the last rules read stay in force (built-in
//! rules only, if none were ever read) and a warning is logged; a missing ConfigMap means no
//! custom scripts.

use crate::Context;
use crate::sources::error_chain;
use plumb_customhealth::CustomHealth;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a read of `argocd-cm` serves reconciles.
pub(crate) const CONFIG_TTL: Duration = Duration::from_secs(2);

/// The rules last read, shared by the controller's tasks.
#[derive(Default)]
pub(crate) struct HealthConfig {
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    read: Instant,
    /// `resourceVersion` of the ConfigMap parsed (empty: it did not exist).
    version: String,
    health: Arc<CustomHealth>,
}

/// The health rules in force: `argocd-cm`'s scripts plus the built-in rules.
pub(crate) async fn load(context: &Context) -> Arc<CustomHealth> {
    let known = match context.health_config.cached.lock() {
        Ok(cached) => match cached.as_ref() {
            Some(c) if c.read.elapsed() < CONFIG_TTL => return c.health.clone(),
            Some(c) => Some((c.version.clone(), c.health.clone())),
            None => None,
        },
        Err(_) => None,
    };
    let namespace = &context.options.control_namespace;
    let read = context
        .cluster
        .get(
            "v1",
            "ConfigMap",
            namespace,
            plumb_customhealth::argocd::CONFIG_MAP,
        )
        .await;
    let (version, health) = match read {
        Ok(object) => {
            let version = object
                .as_ref()
                .map(|o| plumb_core::key::str_at(o, &["metadata", "resourceVersion"]).to_string())
                .unwrap_or_default();
            match known {
                Some((known_version, health)) if known_version == version => (version, health),
                _ => (version, Arc::new(parse(namespace, object.as_ref()))),
            }
        }
        Err(error) => {
            tracing::warn!(
                namespace = %namespace,
                error = %error_chain(&error),
                "cannot read ConfigMap argocd-cm; keeping the health rules last read"
            );
            known.unwrap_or_else(|| (String::new(), Arc::new(CustomHealth::default())))
        }
    };
    if let Ok(mut cached) = context.health_config.cached.lock() {
        *cached = Some(Cached {
            read: Instant::now(),
            version,
            health: health.clone(),
        });
    }
    health
}

/// The rules of one `argocd-cm` (none when it does not exist); its problems are logged.
fn parse(namespace: &str, config_map: Option<&Value>) -> CustomHealth {
    let data: BTreeMap<String, String> = config_map
        .and_then(|c| c.get("data"))
        .and_then(Value::as_object)
        .map(|data| {
            data.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let health = CustomHealth::from_config_map(&data);
    for problem in health.problems() {
        tracing::warn!(namespace = %namespace, "{problem}; entry ignored");
    }
    health
}
