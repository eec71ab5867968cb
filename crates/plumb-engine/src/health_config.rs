//! Argo CD's health customizations: the `argocd-cm` ConfigMap of the control namespace.
//!
//! Like AppProjects ([`crate::project`]), the ConfigMap is read through a short-lived cache:
//! one read every [`CONFIG_TTL`] serves every application, and the scripts are parsed (and
//! syntax-checked) again only when the ConfigMap's `resourceVersion` changes. The ConfigMap is
//! also watched ([`watch`]), so an edit takes effect at once and every application is
//! reconciled again.
//!
//! Script results are kept per object for one `resourceVersion` (as Argo CD assesses an object
//! once per change, in its cluster cache), so a reconcile that finds nothing changed runs no
//! script, and a script that runs into its time limit costs that time once per change of the
//! object, not once per reconcile.
//!
//! **Caveats**: when the ConfigMap cannot be read, the last rules read stay in force (built-in
//! rules only, if none were ever read) and a warning is logged; a missing ConfigMap means no
//! custom scripts.

use crate::Context;
use crate::sources::error_chain;
use futures::StreamExt;
use plumb_core::health::Health;
use plumb_core::key::{ObjectKey, group_of, str_at};
use plumb_customhealth::{Assessment, CustomHealth};
use plumb_kube::WatchEvent;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a read of `argocd-cm` serves reconciles.
pub(crate) const CONFIG_TTL: Duration = Duration::from_secs(2);

/// Most objects whose script results are kept; past it the memo starts over.
const MEMO_LIMIT: usize = 50_000;

/// The health rules of one read of `argocd-cm`, with the script results they gave.
pub(crate) struct HealthRules {
    rules: CustomHealth,
    /// (object, uid) → (resourceVersion, assessment), for objects a script assesses.
    memo: Mutex<HashMap<(ObjectKey, String), (String, Assessment)>>,
}

impl HealthRules {
    fn new(rules: CustomHealth) -> HealthRules {
        HealthRules {
            rules,
            memo: Mutex::default(),
        }
    }

    /// The assessment of a live object (see [`CustomHealth::assess`]).
    pub(crate) fn assess(&self, live: &Value) -> Assessment {
        let scripted = self
            .rules
            .scripts()
            .script_for(
                group_of(str_at(live, &["apiVersion"])),
                str_at(live, &["kind"]),
            )
            .is_some();
        let version = str_at(live, &["metadata", "resourceVersion"]);
        if !scripted || version.is_empty() {
            return self.rules.assess(live);
        }
        let key = (
            ObjectKey::of(live),
            str_at(live, &["metadata", "uid"]).to_string(),
        );
        if let Ok(memo) = self.memo.lock()
            && let Some((known, assessment)) = memo.get(&key)
            && known == version
        {
            return assessment.clone();
        }
        let assessment = self.rules.assess(live);
        if let Ok(mut memo) = self.memo.lock() {
            if memo.len() >= MEMO_LIMIT {
                memo.clear();
            }
            memo.insert(key, (version.to_string(), assessment.clone()));
        }
        assessment
    }

    /// Entries of `argocd-cm` left out, each naming its key.
    pub(crate) fn problems(&self) -> &[plumb_customhealth::ConfigProblem] {
        self.rules.problems()
    }

    /// The health alone (a failed script is `Unknown`).
    pub(crate) fn health(&self, live: &Value) -> Option<Health> {
        self.assess(live).health
    }
}

/// The rules last read, shared by the controller's tasks.
#[derive(Default)]
pub(crate) struct HealthConfig {
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    read: Instant,
    /// `resourceVersion` of the ConfigMap parsed (empty: it did not exist).
    version: String,
    health: Arc<HealthRules>,
}

/// The health rules in force: `argocd-cm`'s scripts plus the built-in rules.
pub(crate) async fn load(context: &Context) -> Arc<HealthRules> {
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
    match read {
        Ok(object) => install(context, object.as_ref()).0,
        Err(error) => {
            tracing::warn!(
                namespace = %namespace,
                error = %error_chain(&error),
                "cannot read ConfigMap argocd-cm; keeping the health rules last read"
            );
            let (version, health) = known.unwrap_or_else(|| {
                (
                    String::new(),
                    Arc::new(HealthRules::new(CustomHealth::default())),
                )
            });
            if let Ok(mut cached) = context.health_config.cached.lock() {
                *cached = Some(Cached {
                    read: Instant::now(),
                    version,
                    health: health.clone(),
                });
            }
            health
        }
    }
}

/// Makes the rules of `config_map` (a read or a watch event; `None`: it does not exist) the
/// ones in force, parsing them only when its version is new, and never going back to an older
/// version than the one held (a read that raced a watch event). Returns the rules in force and
/// whether they changed.
fn install(context: &Context, config_map: Option<&Value>) -> (Arc<HealthRules>, bool) {
    let version = config_map
        .map(|o| str_at(o, &["metadata", "resourceVersion"]).to_string())
        .unwrap_or_default();
    let Ok(mut cached) = context.health_config.cached.lock() else {
        return (
            Arc::new(HealthRules::new(parse(
                &context.options.control_namespace,
                config_map,
            ))),
            false,
        );
    };
    if let Some(c) = cached.as_mut() {
        // resourceVersions are numbers on the API servers plumb talks to; others never count
        // as older.
        let number = |v: &str| v.parse::<u64>().unwrap_or(0);
        let older = !version.is_empty() && number(&c.version) > number(&version);
        if c.version == version || older {
            c.read = Instant::now();
            return (c.health.clone(), false);
        }
    }
    let changed = cached.is_some();
    let health = Arc::new(HealthRules::new(parse(
        &context.options.control_namespace,
        config_map,
    )));
    *cached = Some(Cached {
        read: Instant::now(),
        version,
        health: health.clone(),
    });
    (health, changed)
}

/// Watches `argocd-cm` in the control namespace: a new version replaces the rules at once and
/// every application is reconciled again (Argo CD, too, refreshes its applications when its
/// settings change). Without the watch a change still applies within [`CONFIG_TTL`], at each
/// application's next reconcile.
pub(crate) fn watch(context: Arc<Context>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let namespace = context.options.control_namespace.clone();
        let stream = loop {
            match context
                .cluster
                .watch("v1", "ConfigMap", &namespace, None)
                .await
            {
                Ok(stream) => break stream,
                Err(error) => {
                    tracing::warn!(namespace = %namespace, error = %error_chain(&error),
                        "cannot watch ConfigMap argocd-cm; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        };
        let mut stream = Box::pin(stream);
        while let Some(event) = stream.next().await {
            let (object, deleted) = match event {
                WatchEvent::Applied(object) => (object, false),
                WatchEvent::Deleted(object) => (object, true),
                _ => continue,
            };
            if str_at(&object, &["metadata", "name"]) != plumb_customhealth::argocd::CONFIG_MAP {
                continue;
            }
            let (_, changed) = install(&context, (!deleted).then_some(&object));
            if changed {
                let ids: Vec<_> = context.with_apps(|apps| apps.keys().cloned().collect());
                for id in ids {
                    context.queue.add(id);
                }
            }
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use plumb_core::health::HealthStatus;
    use serde_json::json;

    fn widget(version: &str, phase: &str) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "apps", "uid": "u1", "resourceVersion": version},
            "status": {"phase": phase}})
    }

    fn rules(script: &str) -> HealthRules {
        let data: BTreeMap<String, String> = [(
            "resource.customizations.health.example.com_Widget".to_string(),
            script.to_string(),
        )]
        .into();
        HealthRules::new(CustomHealth::from_config_map(&data))
    }

    #[test]
    fn a_script_runs_once_per_object_version() {
        let looping = rules("while true do end");
        let started = Instant::now();
        let first = looping.assess(&widget("1", "x"));
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(first.health.map(|h| h.status), Some(HealthStatus::Unknown));
        assert!(first.failure.is_some());
        // The same version again: the result kept, no second run into the limit.
        let started = Instant::now();
        let again = looping.assess(&widget("1", "x"));
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(again.failure.is_some());

        let phase = rules("return {status = obj.status.phase}");
        assert_eq!(
            phase.health(&widget("1", "Healthy")).map(|h| h.status),
            Some(HealthStatus::Healthy)
        );
        // A new version is assessed again.
        assert_eq!(
            phase.health(&widget("2", "Degraded")).map(|h| h.status),
            Some(HealthStatus::Degraded)
        );
        // Objects without a version, and kinds without a script, are never kept.
        let mut unversioned = widget("", "Suspended");
        assert_eq!(
            phase.health(&unversioned).map(|h| h.status),
            Some(HealthStatus::Suspended)
        );
        unversioned["status"]["phase"] = json!("Progressing");
        assert_eq!(
            phase.health(&unversioned).map(|h| h.status),
            Some(HealthStatus::Progressing)
        );
        assert_eq!(phase.memo.lock().map(|m| m.len()).unwrap_or(0), 1);
    }
}
