//! Health-gated rollback (plumb): with the annotation `plumb.dev/rollback-on-degraded: <duration>`
//! on an Application, a sync that leaves it Degraded for longer than that is rolled back to the
//! last revision that was Synced and Healthy.
//!
//! The state lives in `status.rollback{lastHealthyRevision, lastHealthySource, degradedSince,
//! rolledBackFrom}` (a multi-source application keeps `lastHealthySources{revisions, sources}`
//! too, and its revisions read as one `a, b` revision). A rolled-back revision is not synced again automatically; the next commit
//! is. The rollback is an ordinary sync operation pinned to the healthy revision, initiated by
//! `plumb-rollback`, with its reason in the operation's `info`, the history entry and an event.

use plumb_core::application::parse_duration;
use plumb_core::health::HealthStatus;
use plumb_core::key::str_at;
use serde_json::{Value, json};
use std::time::Duration;

/// The annotation that turns the rollback on, with the time an application may stay Degraded.
pub(crate) const ANNOTATION: &str = "plumb.dev/rollback-on-degraded";

/// The time an application may stay Degraded after a sync, if rollback is on.
///
/// **Errors**: an annotation that is not a duration, named.
pub(crate) fn timeout_of(app: &Value) -> Result<Option<Duration>, String> {
    let text = str_at(app, &["metadata", "annotations", ANNOTATION]);
    if text.is_empty() {
        return Ok(None);
    }
    parse_duration(text).map(Some).ok_or_else(|| {
        format!("metadata.annotations[{ANNOTATION}]: {text:?} is not a duration such as 5m or 90s")
    })
}

/// What the reconcile observed.
pub(crate) struct Observed<'a> {
    /// `status.rollback` as last written.
    pub previous: Option<&'a Value>,
    /// The application's health now.
    pub health: HealthStatus,
    /// Whether it is Synced to `revision`.
    pub synced: bool,
    /// The revision compared.
    pub revision: &'a str,
    /// The source compared.
    pub source: &'a Value,
    /// For a multi-source application, `{revisions, sources}` compared.
    pub multi: Option<&'a Value>,
    /// Whether an operation is pending or running.
    pub operation_active: bool,
    /// Now, as RFC 3339, and as seconds since the epoch.
    pub now: (&'a str, i64),
}

/// The new `status.rollback`, and the rollback operation to start, if it is time.
pub(crate) fn decide(observed: &Observed, timeout: Duration) -> (Value, Option<Value>) {
    let mut state = observed
        .previous
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    if observed.synced && observed.health == HealthStatus::Healthy {
        state["lastHealthyRevision"] = json!(observed.revision);
        state["lastHealthySource"] = observed.source.clone();
        match observed.multi {
            Some(multi) => state["lastHealthySources"] = multi.clone(),
            None => remove(&mut state, "lastHealthySources"),
        }
        remove(&mut state, "degradedSince");
        return (state, None);
    }
    if observed.health != HealthStatus::Degraded || observed.operation_active {
        remove(&mut state, "degradedSince");
        return (state, None);
    }
    let healthy = str_at(&state, &["lastHealthyRevision"]).to_string();
    if healthy.is_empty()
        || healthy == observed.revision
        || str_at(&state, &["rolledBackFrom"]) == observed.revision
    {
        return (state, None);
    }
    let since = match state.get("degradedSince").and_then(Value::as_str) {
        Some(since) => since.to_string(),
        None => {
            state["degradedSince"] = json!(observed.now.0);
            return (state, None);
        }
    };
    let since_seconds = chrono::DateTime::parse_from_rfc3339(&since)
        .map(|t| t.timestamp())
        .unwrap_or(observed.now.1);
    let degraded_for = observed.now.1.saturating_sub(since_seconds);
    if u64::try_from(degraded_for).unwrap_or(0) < timeout.as_secs() {
        return (state, None);
    }
    let reason = format!(
        "rollback to {healthy}: Degraded for {degraded_for}s (more than {}s) after the sync to {}",
        timeout.as_secs(),
        observed.revision
    );
    let sync = match state.get("lastHealthySources").filter(|m| m.is_object()) {
        Some(multi) => json!({"revisions": multi.get("revisions").cloned().unwrap_or(Value::Null),
            "sources": multi.get("sources").cloned().unwrap_or(Value::Null), "prune": true}),
        None => json!({"revision": healthy,
            "source": state.get("lastHealthySource").cloned().unwrap_or(Value::Null), "prune": true}),
    };
    let operation = json!({
        "sync": sync,
        "initiatedBy": {"username": "plumb-rollback", "automated": true},
        "info": [{"name": "reason", "value": reason}],
    });
    state["rolledBackFrom"] = json!(observed.revision);
    remove(&mut state, "degradedSince");
    (state, Some(operation))
}

/// The reason recorded in a rollback operation, if `operation` is one.
pub(crate) fn reason_of(operation: &Value) -> Option<&str> {
    operation
        .get("info")
        .and_then(Value::as_array)?
        .iter()
        .find(|i| str_at(i, &["name"]) == "reason")
        .map(|i| str_at(i, &["value"]))
        .filter(|_| str_at(operation, &["initiatedBy", "username"]) == "plumb-rollback")
}

fn remove(state: &mut Value, key: &str) {
    if let Some(map) = state.as_object_mut() {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed<'a>(
        previous: Option<&'a Value>,
        health: HealthStatus,
        synced: bool,
        revision: &'a str,
        now: (&'a str, i64),
    ) -> Observed<'a> {
        static SOURCE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
        Observed {
            previous,
            health,
            synced,
            revision,
            source: SOURCE.get_or_init(|| json!({"path": "app"})),
            multi: None,
            operation_active: false,
            now,
        }
    }

    #[test]
    fn rolls_back_after_the_timeout_to_the_last_healthy_revision() {
        let minute = Duration::from_secs(60);
        let (state, op) = decide(
            &observed(
                None,
                HealthStatus::Healthy,
                true,
                "good",
                ("2026-01-01T00:00:00Z", 0),
            ),
            minute,
        );
        assert!(op.is_none());
        assert_eq!(state["lastHealthyRevision"], "good");
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        let (state, op) = decide(
            &observed(
                Some(&state),
                HealthStatus::Degraded,
                true,
                "bad",
                ("2026-01-01T00:00:00Z", t0),
            ),
            minute,
        );
        assert!(op.is_none());
        assert_eq!(state["degradedSince"], "2026-01-01T00:00:00Z");
        let (same, op) = decide(
            &observed(
                Some(&state),
                HealthStatus::Degraded,
                true,
                "bad",
                ("2026-01-01T00:00:30Z", t0 + 30),
            ),
            minute,
        );
        assert!(op.is_none());
        let (state, op) = decide(
            &observed(
                Some(&same),
                HealthStatus::Degraded,
                true,
                "bad",
                ("2026-01-01T00:01:01Z", t0 + 61),
            ),
            minute,
        );
        let op = op.expect("rollback");
        assert_eq!(op["sync"]["revision"], "good");
        assert!(reason_of(&op).unwrap().contains("Degraded for 61s"));
        assert_eq!(state["rolledBackFrom"], "bad");
        // Never twice for the same revision.
        let (_, again) = decide(
            &observed(
                Some(&state),
                HealthStatus::Degraded,
                false,
                "bad",
                ("2026-01-01T00:05:00Z", t0 + 300),
            ),
            minute,
        );
        assert!(again.is_none());
    }

    #[test]
    fn recovering_resets_the_clock_and_nothing_happens_without_a_healthy_revision() {
        let minute = Duration::from_secs(60);
        let previous = json!({"degradedSince": "2026-01-01T00:00:00Z"});
        let (state, op) = decide(
            &observed(
                Some(&previous),
                HealthStatus::Degraded,
                true,
                "bad",
                ("2026-01-01T01:00:00Z", 3600),
            ),
            minute,
        );
        assert!(op.is_none(), "no healthy revision to go back to");
        let (state, _) = decide(
            &observed(
                Some(&state),
                HealthStatus::Progressing,
                true,
                "bad",
                ("x", 0),
            ),
            minute,
        );
        assert!(state.get("degradedSince").is_none());
    }

    #[test]
    fn a_multi_source_application_rolls_back_every_source() {
        let minute = Duration::from_secs(60);
        let good = json!({"revisions": ["a1", "b1"], "sources": [{"path": "a"}, {"path": "b"}]});
        let mut healthy = observed(None, HealthStatus::Healthy, true, "a1, b1", ("x", 0));
        healthy.multi = Some(&good);
        let (state, _) = decide(&healthy, minute);
        assert_eq!(state["lastHealthySources"], good);
        let state = json!({"lastHealthyRevision": "a1, b1", "lastHealthySources": good,
            "degradedSince": "2026-01-01T00:00:00Z"});
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        let (state, op) = decide(
            &observed(
                Some(&state),
                HealthStatus::Degraded,
                true,
                "a1, b2",
                ("later", t0 + 61),
            ),
            minute,
        );
        let op = op.expect("rollback");
        assert_eq!(
            op["sync"],
            json!({"revisions": ["a1", "b1"], "sources": [{"path": "a"}, {"path": "b"}], "prune": true})
        );
        assert_eq!(state["rolledBackFrom"], "a1, b2");
    }

    #[test]
    fn a_bad_annotation_is_named() {
        let app = json!({"metadata": {"annotations": {ANNOTATION: "soon"}}});
        assert!(timeout_of(&app).unwrap_err().contains(ANNOTATION));
        let app = json!({"metadata": {"annotations": {ANNOTATION: "90s"}}});
        assert_eq!(timeout_of(&app).unwrap(), Some(Duration::from_secs(90)));
    }
}
