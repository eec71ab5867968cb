//! Status conditions in the shape Flux writes them (`type`, `status`, `reason`, `message`,
//! `observedGeneration`, `lastTransitionTime`), built as values and written whole.

use plumb_core::key::str_at;
use serde_json::{Value, json};

/// `Ready`: the object's desired state is in place.
pub const READY: &str = "Ready";
/// `Reconciling`: work is under way.
pub const RECONCILING: &str = "Reconciling";
/// `Stalled`: the object cannot make progress until its spec changes.
pub const STALLED: &str = "Stalled";
/// `Healthy`: health checks passed (Kustomizations with `wait` or `healthChecks`).
pub const HEALTHY: &str = "Healthy";
/// `ArtifactInStorage`: a GitRepository has a revision to serve.
pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
/// A warning that fields were accepted but are not acted on (plumb's own condition type).
pub const FIELDS_NOT_ACTED_ON: &str = "FieldsNotActedOn";

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The condition type.
    pub kind: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// A CamelCase reason, as Flux's.
    pub reason: String,
    /// For humans.
    pub message: String,
}

impl Condition {
    /// A condition of `kind`.
    pub fn new(
        kind: &'static str,
        status: &'static str,
        reason: &str,
        message: impl Into<String>,
    ) -> Condition {
        Condition {
            kind,
            status,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// The status of condition `kind` on `object`, if it has one.
pub fn status_of<'a>(object: &'a Value, kind: &str) -> Option<&'a str> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
}

/// `status.conditions` for `conditions`: the transition time of a condition whose status did
/// not change since `previous` (the old `status.conditions`) is kept.
pub fn to_json(conditions: &[Condition], previous: &Value, generation: i64, now: &str) -> Value {
    let previous = previous.as_array().cloned().unwrap_or_default();
    Value::Array(
        conditions
            .iter()
            .map(|c| {
                let since = previous
                    .iter()
                    .find(|p| str_at(p, &["type"]) == c.kind && str_at(p, &["status"]) == c.status)
                    .and_then(|p| p.get("lastTransitionTime"))
                    .and_then(Value::as_str)
                    .unwrap_or(now);
                json!({"type": c.kind, "status": c.status, "observedGeneration": generation,
                    "lastTransitionTime": since, "reason": c.reason, "message": c.message})
            })
            .collect(),
    )
}

/// `Stalled` (when stalled), `Reconciling` (while `Ready` is `Unknown`) and `Ready`, as every
/// Flux kind reports the end of a reconcile.
pub fn ready_conditions(
    ready: &'static str,
    reason: &str,
    message: &str,
    stalled: bool,
) -> Vec<Condition> {
    let mut list = Vec::new();
    if stalled {
        list.push(Condition::new(STALLED, "True", reason, message));
    }
    if ready == "Unknown" {
        list.push(Condition::new(RECONCILING, "True", "Progressing", message));
    }
    list.push(Condition::new(READY, ready, reason, message));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_changes_only_with_the_status() {
        let first = to_json(
            &[Condition::new(READY, "False", "BuildFailed", "bad")],
            &Value::Null,
            1,
            "t1",
        );
        let same = to_json(
            &[Condition::new(READY, "False", "BuildFailed", "worse")],
            &first,
            2,
            "t2",
        );
        assert_eq!(same[0]["lastTransitionTime"], "t1");
        assert_eq!(same[0]["observedGeneration"], 2);
        let flipped = to_json(
            &[Condition::new(
                READY,
                "True",
                "ReconciliationSucceeded",
                "ok",
            )],
            &same,
            2,
            "t3",
        );
        assert_eq!(flipped[0]["lastTransitionTime"], "t3");
        let object = json!({"status": {"conditions": flipped}});
        assert_eq!(status_of(&object, READY), Some("True"));
        assert_eq!(status_of(&object, STALLED), None);
    }
}
