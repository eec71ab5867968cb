//! Pure builders of the Application status, in the shape Argo CD writes it.

use plumb_core::health::Health;
use plumb_core::key::{ObjectKey, version_of};
use serde_json::{Map, Value, json};

/// RFC 3339 timestamp with seconds, as Kubernetes writes them.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One entry of `status.resources`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceStatus {
    /// Identity.
    pub key: ObjectKey,
    /// `apiVersion` as declared or found.
    pub api_version: String,
    /// `Synced`, `OutOfSync` or `Unknown`.
    pub sync: &'static str,
    /// Health, when the kind has one; `Missing` when declared but absent.
    pub health: Option<Health>,
    /// Owned but no longer declared.
    pub requires_pruning: bool,
}

impl ResourceStatus {
    /// The JSON entry.
    pub fn to_json(&self) -> Value {
        let mut entry = Map::new();
        if !self.key.group.is_empty() {
            entry.insert("group".into(), json!(self.key.group));
        }
        entry.insert("version".into(), json!(version_of(&self.api_version)));
        entry.insert("kind".into(), json!(self.key.kind));
        if !self.key.namespace.is_empty() {
            entry.insert("namespace".into(), json!(self.key.namespace));
        }
        entry.insert("name".into(), json!(self.key.name));
        entry.insert("status".into(), json!(self.sync));
        if let Some(health) = &self.health {
            let mut h = json!({"status": health.status.as_str()});
            if !health.message.is_empty() {
                h["message"] = json!(health.message);
            }
            entry.insert("health".into(), h);
        }
        if self.requires_pruning {
            entry.insert("requiresPruning".into(), json!(true));
        }
        Value::Object(entry)
    }
}

/// Reads `status.resources` back into (apiVersion, key) pairs: the inventory of what the
/// application managed at its last comparison.
pub fn inventory(status: &Value) -> Vec<(String, ObjectKey)> {
    status
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let text = |field: &str| {
                entry
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let (group, version, kind, name) =
                (text("group"), text("version"), text("kind"), text("name"));
            if kind.is_empty() || name.is_empty() || version.is_empty() {
                return None;
            }
            let api_version = if group.is_empty() {
                version
            } else {
                format!("{group}/{version}")
            };
            Some((
                api_version,
                ObjectKey {
                    group,
                    kind,
                    namespace: text("namespace"),
                    name,
                },
            ))
        })
        .collect()
}

/// A condition entry.
pub fn condition(kind: &str, message: &str) -> Value {
    json!({"type": kind, "message": message, "lastTransitionTime": now()})
}

/// Keeps the `lastTransitionTime` of conditions that did not change, so rewriting the same
/// conditions is a no-op.
pub fn carry_transition_times(new: &mut [Value], old: &Value) {
    let old = old.as_array().cloned().unwrap_or_default();
    for condition in new.iter_mut() {
        if let Some(previous) = old.iter().find(|o| {
            o.get("type") == condition.get("type") && o.get("message") == condition.get("message")
        }) && let Some(time) = previous.get("lastTransitionTime")
        {
            condition["lastTransitionTime"] = time.clone();
        }
    }
}

/// Appends a history entry with the next id and trims to `limit` entries.
pub fn append_history(history: &Value, entry: Value, limit: usize) -> Value {
    let mut entries = history.as_array().cloned().unwrap_or_default();
    let next_id = entries
        .iter()
        .filter_map(|e| e.get("id").and_then(Value::as_i64))
        .max()
        .unwrap_or(-1)
        + 1;
    let mut entry = entry;
    entry["id"] = json!(next_id);
    entries.push(entry);
    let keep = limit.max(1);
    if entries.len() > keep {
        entries.drain(..entries.len() - keep);
    }
    Value::Array(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumb_core::HealthStatus;

    #[test]
    fn resource_entry_round_trips_through_inventory() {
        let status = ResourceStatus {
            key: ObjectKey {
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: "web".into(),
                name: "ui".into(),
            },
            api_version: "apps/v1".into(),
            sync: "Synced",
            health: Some(Health {
                status: HealthStatus::Healthy,
                message: String::new(),
            }),
            requires_pruning: false,
        };
        let json = status.to_json();
        assert_eq!(
            json,
            json!({"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "web",
            "name": "ui", "status": "Synced", "health": {"status": "Healthy"}})
        );
        let inventory = inventory(
            &json!({"resources": [json, {"version": "v1", "kind": "Namespace", "name": "web", "status": "Synced"}]}),
        );
        assert_eq!(inventory[0].0, "apps/v1");
        assert_eq!(inventory[1].0, "v1");
        assert_eq!(inventory[1].1.namespace, "");
    }

    #[test]
    fn history_ids_grow_and_are_trimmed() {
        let mut history = json!([]);
        for revision in ["a", "b", "c"] {
            history = append_history(&history, json!({"revision": revision}), 2);
        }
        assert_eq!(
            history,
            json!([{"revision": "b", "id": 1}, {"revision": "c", "id": 2}])
        );
    }
}
