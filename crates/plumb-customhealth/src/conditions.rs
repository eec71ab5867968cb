//! Built-in health of common custom resources that report standard conditions.
//!
//! [`specific`] knows a few CRDs whose conditions need more than the `Ready` convention;
//! [`generic`] reads the conventions any controller may follow. Both are pure.
//!
//! | objects | rule |
//! |---|---|
//! | `cert-manager.io` `Certificate` | `Issuing=True` → Progressing, then `Ready` |
//! | `*.toolkit.fluxcd.io` (Flux) | `spec.suspend` → Suspended, then kstatus: `Stalled=True` → Degraded, `Reconciling=True` → Progressing, `Ready` |
//! | `*.crossplane.io`, `*.upbound.io` managed and composite resources | `Synced=False` → Degraded, `Ready=True` → Healthy, otherwise Progressing |
//! | `argoproj.io` `Rollout` | `status.phase` (`Paused` → Suspended) |
//! | any other kind ([`generic`]) | `status.observedGeneration` behind `metadata.generation` → Progressing; `Stalled=True` → Degraded; `Reconciling=True` → Progressing; `Ready`, else `Available`: True → Healthy, False → Degraded, Unknown → Progressing |

use plumb_core::health::{Health, HealthStatus};
use plumb_core::key::{at, group_of, i64_at, str_at};
use serde_json::Value;

/// The health of objects of a kind known here; `None` for other kinds.
pub fn specific(object: &Value) -> Option<Health> {
    let group = group_of(str_at(object, &["apiVersion"]));
    let kind = str_at(object, &["kind"]);
    match (group, kind) {
        ("cert-manager.io", "Certificate") => Some(certificate(object)),
        ("argoproj.io", "Rollout") => Some(rollout(object)),
        (group, _) if group.ends_with(".toolkit.fluxcd.io") => Some(flux(object)),
        ("pkg.crossplane.io" | "apiextensions.crossplane.io", _) => None,
        (group, _) if group.ends_with(".crossplane.io") || group.ends_with(".upbound.io") => {
            Some(crossplane(object))
        }
        _ => None,
    }
}

/// The health of any object following the condition conventions; `None` when it reports no
/// condition this reads and no generation.
pub fn generic(object: &Value) -> Option<Health> {
    if let Some(behind) = generation_behind(object) {
        return Some(behind);
    }
    if let Some(stalled) = true_condition(object, "Stalled") {
        return Some(from_condition(HealthStatus::Degraded, stalled));
    }
    if let Some(reconciling) = true_condition(object, "Reconciling") {
        return Some(from_condition(HealthStatus::Progressing, reconciling));
    }
    let readiness = condition(object, "Ready").or_else(|| condition(object, "Available"))?;
    let status = match str_at(readiness, &["status"]) {
        "True" => HealthStatus::Healthy,
        "False" => HealthStatus::Degraded,
        _ => HealthStatus::Progressing,
    };
    Some(from_condition(status, readiness))
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    at(object, &["status", "conditions"])?
        .as_array()?
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
}

fn true_condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    condition(object, kind).filter(|c| str_at(c, &["status"]) == "True")
}

/// `reason: message`, or whichever of the two is set.
fn from_condition(status: HealthStatus, condition: &Value) -> Health {
    let reason = str_at(condition, &["reason"]);
    let message = str_at(condition, &["message"]);
    let message = match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        _ => message.to_string(),
    };
    Health { status, message }
}

fn health(status: HealthStatus, message: impl Into<String>) -> Health {
    Health {
        status,
        message: message.into(),
    }
}

/// Progressing while `status.observedGeneration` (a number, or a numeric string as Argo
/// Rollouts writes it) is behind `metadata.generation`.
fn generation_behind(object: &Value) -> Option<Health> {
    let observed = at(object, &["status", "observedGeneration"])?;
    let observed = observed
        .as_i64()
        .or_else(|| observed.as_str().and_then(|s| s.parse().ok()))?;
    let generation = i64_at(object, &["metadata", "generation"])?;
    (observed < generation).then(|| {
        health(
            HealthStatus::Progressing,
            format!("Waiting for generation {generation} to be observed (observed {observed})"),
        )
    })
}

fn certificate(object: &Value) -> Health {
    if let Some(behind) = generation_behind(object) {
        return behind;
    }
    if let Some(issuing) = true_condition(object, "Issuing") {
        return from_condition(HealthStatus::Progressing, issuing);
    }
    match condition(object, "Ready") {
        Some(ready) => {
            let status = match str_at(ready, &["status"]) {
                "True" => HealthStatus::Healthy,
                "False" => HealthStatus::Degraded,
                _ => HealthStatus::Progressing,
            };
            from_condition(status, ready)
        }
        None => health(HealthStatus::Progressing, "Waiting for certificate"),
    }
}

fn flux(object: &Value) -> Health {
    if at(object, &["spec", "suspend"]).and_then(Value::as_bool) == Some(true) {
        return health(HealthStatus::Suspended, "Reconciliation is suspended");
    }
    generic(object).unwrap_or_else(|| health(HealthStatus::Progressing, "Waiting to be reconciled"))
}

fn crossplane(object: &Value) -> Health {
    if let Some(synced) = condition(object, "Synced")
        && str_at(synced, &["status"]) == "False"
    {
        return from_condition(HealthStatus::Degraded, synced);
    }
    match condition(object, "Ready") {
        Some(ready) if str_at(ready, &["status"]) == "True" => {
            from_condition(HealthStatus::Healthy, ready)
        }
        Some(ready) => from_condition(HealthStatus::Progressing, ready),
        None => health(
            HealthStatus::Progressing,
            "Waiting for the resource to be ready",
        ),
    }
}

fn rollout(object: &Value) -> Health {
    if let Some(behind) = generation_behind(object) {
        return behind;
    }
    let message = str_at(object, &["status", "message"]);
    match str_at(object, &["status", "phase"]) {
        "Healthy" => health(HealthStatus::Healthy, message),
        "Degraded" => health(HealthStatus::Degraded, message),
        "Paused" => health(HealthStatus::Suspended, message),
        _ => health(HealthStatus::Progressing, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status_of(object: &Value) -> Option<HealthStatus> {
        specific(object)
            .or_else(|| generic(object))
            .map(|h| h.status)
    }

    #[test]
    fn certificate_is_progressing_while_issuing() {
        let mut cert = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "c", "generation": 1},
            "status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "no secret"},
                {"type": "Issuing", "status": "True", "reason": "Issuing", "message": "issuing"}]}});
        assert_eq!(status_of(&cert), Some(HealthStatus::Progressing));
        cert["status"]["conditions"][1]["status"] = json!("False");
        let h = specific(&cert).unwrap();
        assert_eq!(h.status, HealthStatus::Degraded);
        assert_eq!(h.message, "DoesNotExist: no secret");
        cert["status"]["conditions"][0]["status"] = json!("True");
        assert_eq!(status_of(&cert), Some(HealthStatus::Healthy));
        cert["status"] = json!({});
        assert_eq!(status_of(&cert), Some(HealthStatus::Progressing));
    }

    #[test]
    fn flux_kinds_follow_kstatus_and_suspend() {
        let mut ks = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "k", "generation": 2},
            "status": {"observedGeneration": 2, "conditions": [
                {"type": "Ready", "status": "Unknown", "reason": "Progressing"},
                {"type": "Reconciling", "status": "True", "reason": "Progressing"}]}});
        assert_eq!(status_of(&ks), Some(HealthStatus::Progressing));
        ks["status"]["conditions"] =
            json!([{"type": "Ready", "status": "False", "reason": "BuildFailed"}]);
        assert_eq!(status_of(&ks), Some(HealthStatus::Degraded));
        ks["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        assert_eq!(status_of(&ks), Some(HealthStatus::Healthy));
        ks["status"]["observedGeneration"] = json!(1);
        assert_eq!(status_of(&ks), Some(HealthStatus::Progressing));
        ks["spec"] = json!({"suspend": true});
        assert_eq!(status_of(&ks), Some(HealthStatus::Suspended));
        let fresh = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "g"}});
        assert_eq!(status_of(&fresh), Some(HealthStatus::Progressing));
    }

    #[test]
    fn crossplane_synced_and_ready() {
        let mut bucket = json!({"apiVersion": "s3.aws.upbound.io/v1beta1", "kind": "Bucket",
            "metadata": {"name": "b"},
            "status": {"conditions": [
                {"type": "Synced", "status": "False", "reason": "ReconcileError", "message": "denied"},
                {"type": "Ready", "status": "True"}]}});
        let h = specific(&bucket).unwrap();
        assert_eq!(
            (h.status, h.message.as_str()),
            (HealthStatus::Degraded, "ReconcileError: denied")
        );
        bucket["status"]["conditions"][0]["status"] = json!("True");
        assert_eq!(status_of(&bucket), Some(HealthStatus::Healthy));
        bucket["status"]["conditions"][1] =
            json!({"type": "Ready", "status": "False", "reason": "Creating"});
        assert_eq!(status_of(&bucket), Some(HealthStatus::Progressing));
        let provider = json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "metadata": {"name": "p"}});
        assert_eq!(specific(&provider), None);
    }

    #[test]
    fn rollout_phase() {
        let mut rollout = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "r", "generation": 3},
            "status": {"observedGeneration": "3", "phase": "Paused", "message": "CanaryPauseStep"}});
        assert_eq!(status_of(&rollout), Some(HealthStatus::Suspended));
        rollout["status"]["observedGeneration"] = json!("2");
        assert_eq!(status_of(&rollout), Some(HealthStatus::Progressing));
        rollout["status"]["observedGeneration"] = json!("3");
        rollout["status"]["phase"] = json!("Degraded");
        assert_eq!(status_of(&rollout), Some(HealthStatus::Degraded));
        rollout["status"]["phase"] = json!("Healthy");
        assert_eq!(status_of(&rollout), Some(HealthStatus::Healthy));
    }

    #[test]
    fn generic_available_ready_and_generation() {
        let mut widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "generation": 1},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "NoReplicas", "message": "0/1"}]}});
        assert_eq!(specific(&widget), None);
        let h = generic(&widget).unwrap();
        assert_eq!(
            (h.status, h.message.as_str()),
            (HealthStatus::Degraded, "NoReplicas: 0/1")
        );
        widget["status"]["conditions"][0]["status"] = json!("True");
        assert_eq!(generic(&widget).unwrap().status, HealthStatus::Healthy);
        widget["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "Ready", "status": "Unknown"}));
        assert_eq!(generic(&widget).unwrap().status, HealthStatus::Progressing);
        widget["status"]["observedGeneration"] = json!(0);
        assert!(generic(&widget).unwrap().message.contains("generation 1"));
        let bare =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
        assert_eq!(generic(&bare), None);
        let odd = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "status": {"conditions": "not a list", "observedGeneration": {"x": 1}}});
        assert_eq!(generic(&odd), None);
    }
}
