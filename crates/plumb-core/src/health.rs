//! Health assessment of live objects, in Argo CD's terms.
//!
//! One small function per kind, chosen by [`assess`]. Objects without a rule and without
//! standard status conditions have no health (`None`) and do not affect the application's.

use crate::key::{at, i64_at, str_at};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Health states, declared from best to worst: the derived order is Argo CD's severity order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HealthStatus {
    /// Running as intended.
    Healthy,
    /// Paused or suspended on purpose.
    Suspended,
    /// Not yet healthy, expected to become so.
    Progressing,
    /// Declared but absent from the cluster.
    Missing,
    /// Failed or stuck.
    Degraded,
    /// Health could not be assessed.
    Unknown,
}

impl HealthStatus {
    /// The status string Argo CD writes.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "Healthy",
            HealthStatus::Suspended => "Suspended",
            HealthStatus::Progressing => "Progressing",
            HealthStatus::Missing => "Missing",
            HealthStatus::Degraded => "Degraded",
            HealthStatus::Unknown => "Unknown",
        }
    }
}

/// A health status with a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// Why, when not obvious.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Health {
    fn new(status: HealthStatus, message: impl Into<String>) -> Health {
        Health {
            status,
            message: message.into(),
        }
    }
}

/// The worst of several healths; `Healthy` when there are none.
pub fn worst<'a>(healths: impl IntoIterator<Item = &'a Health>) -> Health {
    healths
        .into_iter()
        .max_by_key(|health| health.status)
        .cloned()
        .unwrap_or_else(|| Health::new(HealthStatus::Healthy, ""))
}

/// Assesses a live object. `None` means the kind has no notion of health.
pub fn assess(object: &Value) -> Option<Health> {
    let api_version = str_at(object, &["apiVersion"]);
    let group = crate::key::group_of(api_version);
    let kind = str_at(object, &["kind"]);
    if at(object, &["metadata", "deletionTimestamp"]).is_some() {
        return Some(Health::new(HealthStatus::Progressing, "Pending deletion"));
    }
    match (group, kind) {
        ("apps" | "extensions", "Deployment") => Some(deployment(object)),
        ("apps", "StatefulSet") => Some(stateful_set(object)),
        ("apps" | "extensions", "DaemonSet") => Some(daemon_set(object)),
        ("apps" | "extensions", "ReplicaSet") => Some(replica_set(object)),
        ("", "Pod") => Some(pod(object)),
        ("", "Service") => service(object),
        ("networking.k8s.io" | "extensions", "Ingress") => Some(ingress(object)),
        ("", "PersistentVolumeClaim") => Some(pvc(object)),
        ("batch", "Job") => Some(job(object)),
        ("batch", "CronJob") => Some(cron_job(object)),
        ("autoscaling", "HorizontalPodAutoscaler") => Some(hpa(object)),
        ("apiregistration.k8s.io", "APIService") => Some(api_service(object)),
        // As Argo CD since 1.8: a child Application's health is not assessed (an app of apps
        // is not held up by its children), unless argocd-cm's
        // `resource.customizations.health.argoproj.io_Application` script says otherwise.
        ("argoproj.io", "Application") => None,
        (group, _) if group.ends_with(".toolkit.fluxcd.io") => Some(flux(object)),
        _ => conditions(object),
    }
}

/// Flux's kinds always report `Ready`: until they do, the controller has not reconciled them.
fn flux(object: &Value) -> Health {
    conditions(object)
        .filter(|_| condition(object, "Ready").is_some())
        .unwrap_or_else(|| {
            Health::new(
                HealthStatus::Progressing,
                "Waiting for the object to be reconciled",
            )
        })
}

fn generation_observed(object: &Value) -> bool {
    let generation = i64_at(object, &["metadata", "generation"]).unwrap_or(0);
    let observed = i64_at(object, &["status", "observedGeneration"]).unwrap_or(0);
    observed >= generation
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    at(object, &["status", "conditions"])?
        .as_array()?
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
}

fn deployment(object: &Value) -> Health {
    if at(object, &["spec", "paused"]).and_then(Value::as_bool) == Some(true) {
        return Health::new(HealthStatus::Suspended, "Deployment is paused");
    }
    let name = str_at(object, &["metadata", "name"]);
    if !generation_observed(object) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        );
    }
    if let Some(progressing) = condition(object, "Progressing")
        && str_at(progressing, &["reason"]) == "ProgressDeadlineExceeded"
    {
        return Health::new(
            HealthStatus::Degraded,
            format!("Deployment {name:?} exceeded its progress deadline"),
        );
    }
    let desired = i64_at(object, &["spec", "replicas"]).unwrap_or(1);
    let replicas = i64_at(object, &["status", "replicas"]).unwrap_or(0);
    let updated = i64_at(object, &["status", "updatedReplicas"]).unwrap_or(0);
    let available = i64_at(object, &["status", "availableReplicas"]).unwrap_or(0);
    if updated < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {updated} out of {desired} new replicas have been updated..."
            ),
        );
    }
    if replicas > updated {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {} old replicas are pending termination...",
                replicas - updated
            ),
        );
    }
    if available < updated {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        );
    }
    Health::new(HealthStatus::Healthy, "")
}

fn stateful_set(object: &Value) -> Health {
    if !generation_observed(object) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for statefulset spec update to be observed...",
        );
    }
    let desired = i64_at(object, &["spec", "replicas"]).unwrap_or(1);
    let ready = i64_at(object, &["status", "readyReplicas"]).unwrap_or(0);
    if ready < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!("Waiting for {} pods to be ready...", desired - ready),
        );
    }
    let current = str_at(object, &["status", "currentRevision"]);
    let update = str_at(object, &["status", "updateRevision"]);
    if str_at(object, &["spec", "updateStrategy", "type"]) != "OnDelete" && current != update {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for statefulset rolling update to complete",
        );
    }
    Health::new(HealthStatus::Healthy, "")
}

fn daemon_set(object: &Value) -> Health {
    if !generation_observed(object) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for daemon set spec update to be observed...",
        );
    }
    let desired = i64_at(object, &["status", "desiredNumberScheduled"]).unwrap_or(0);
    let updated = i64_at(object, &["status", "updatedNumberScheduled"]).unwrap_or(0);
    let available = i64_at(object, &["status", "numberAvailable"]).unwrap_or(0);
    if updated < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for daemon set rollout to finish: {updated} out of {desired} new pods have been updated..."
            ),
        );
    }
    if available < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for daemon set rollout to finish: {available} of {desired} updated pods are available..."
            ),
        );
    }
    Health::new(HealthStatus::Healthy, "")
}

fn replica_set(object: &Value) -> Health {
    if !generation_observed(object) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        );
    }
    if let Some(failure) = condition(object, "ReplicaFailure")
        && str_at(failure, &["status"]) == "True"
    {
        return Health::new(HealthStatus::Degraded, str_at(failure, &["message"]));
    }
    let desired = i64_at(object, &["spec", "replicas"]).unwrap_or(1);
    let available = i64_at(object, &["status", "availableReplicas"]).unwrap_or(0);
    if available < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {available} out of {desired} new replicas are available..."
            ),
        );
    }
    Health::new(HealthStatus::Healthy, "")
}

fn pod(object: &Value) -> Health {
    let message = str_at(object, &["status", "message"]);
    match str_at(object, &["status", "phase"]) {
        "Succeeded" => Health::new(HealthStatus::Healthy, message),
        "Failed" => Health::new(HealthStatus::Degraded, message),
        "Running" => {
            let ready = condition(object, "Ready").map(|c| str_at(c, &["status"]) == "True");
            if ready == Some(true) {
                Health::new(HealthStatus::Healthy, message)
            } else {
                Health::new(HealthStatus::Progressing, message)
            }
        }
        _ => {
            let waiting = at(object, &["status", "containerStatuses"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|status| at(status, &["state", "waiting"]))
                .find(|waiting| {
                    matches!(
                        str_at(waiting, &["reason"]),
                        "ImagePullBackOff"
                            | "ErrImagePull"
                            | "CrashLoopBackOff"
                            | "InvalidImageName"
                    )
                });
            match waiting {
                Some(waiting) => Health::new(HealthStatus::Degraded, str_at(waiting, &["message"])),
                None => Health::new(HealthStatus::Progressing, message),
            }
        }
    }
}

fn service(object: &Value) -> Option<Health> {
    if str_at(object, &["spec", "type"]) != "LoadBalancer" {
        return Some(Health::new(HealthStatus::Healthy, ""));
    }
    let has_ingress = at(object, &["status", "loadBalancer", "ingress"])
        .and_then(Value::as_array)
        .is_some_and(|ingress| !ingress.is_empty());
    Some(if has_ingress {
        Health::new(HealthStatus::Healthy, "")
    } else {
        Health::new(HealthStatus::Progressing, "")
    })
}

fn ingress(object: &Value) -> Health {
    let has_ingress = at(object, &["status", "loadBalancer", "ingress"])
        .and_then(Value::as_array)
        .is_some_and(|ingress| !ingress.is_empty());
    if has_ingress {
        Health::new(HealthStatus::Healthy, "")
    } else {
        Health::new(HealthStatus::Progressing, "")
    }
}

fn pvc(object: &Value) -> Health {
    match str_at(object, &["status", "phase"]) {
        "Bound" => Health::new(HealthStatus::Healthy, ""),
        "Lost" => Health::new(HealthStatus::Degraded, ""),
        _ => Health::new(HealthStatus::Progressing, ""),
    }
}

fn job(object: &Value) -> Health {
    for (kind, status) in [
        ("Failed", HealthStatus::Degraded),
        ("Complete", HealthStatus::Healthy),
    ] {
        if let Some(c) = condition(object, kind)
            && str_at(c, &["status"]) == "True"
        {
            return Health::new(status, str_at(c, &["message"]));
        }
    }
    if at(object, &["spec", "suspend"]).and_then(Value::as_bool) == Some(true) {
        return Health::new(HealthStatus::Suspended, "Job is suspended");
    }
    Health::new(HealthStatus::Progressing, "")
}

fn cron_job(object: &Value) -> Health {
    if at(object, &["spec", "suspend"]).and_then(Value::as_bool) == Some(true) {
        return Health::new(HealthStatus::Suspended, "CronJob is suspended");
    }
    Health::new(HealthStatus::Healthy, "")
}

fn hpa(object: &Value) -> Health {
    for kind in ["AbleToScale", "ScalingActive"] {
        if let Some(c) = condition(object, kind)
            && str_at(c, &["status"]) == "False"
            && str_at(c, &["reason"]) != "ScalingDisabled"
        {
            return Health::new(HealthStatus::Degraded, str_at(c, &["message"]));
        }
    }
    if condition(object, "AbleToScale").is_none() {
        return Health::new(HealthStatus::Progressing, "Waiting to be scaled");
    }
    Health::new(HealthStatus::Healthy, "")
}

fn api_service(object: &Value) -> Health {
    match condition(object, "Available") {
        Some(c) if str_at(c, &["status"]) == "True" => Health::new(HealthStatus::Healthy, ""),
        Some(c) => Health::new(HealthStatus::Progressing, str_at(c, &["message"])),
        None => Health::new(HealthStatus::Progressing, "Waiting to be processed"),
    }
}

/// Any object following the standard conventions: `Ready`/`Stalled` conditions and
/// `observedGeneration`, as Flux and kstatus read them.
fn conditions(object: &Value) -> Option<Health> {
    let status = at(object, &["status"])?;
    let has_observed = at(status, &["observedGeneration"]).is_some();
    if has_observed && !generation_observed(object) {
        return Some(Health::new(
            HealthStatus::Progressing,
            "Waiting for the generation to be observed",
        ));
    }
    if let Some(stalled) = condition(object, "Stalled")
        && str_at(stalled, &["status"]) == "True"
    {
        return Some(Health::new(
            HealthStatus::Degraded,
            str_at(stalled, &["message"]),
        ));
    }
    let ready = condition(object, "Ready")?;
    let message = str_at(ready, &["message"]);
    Some(match str_at(ready, &["status"]) {
        "True" => Health::new(HealthStatus::Healthy, message),
        "False" => Health::new(HealthStatus::Degraded, message),
        _ => Health::new(HealthStatus::Progressing, message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flux_objects_without_ready_are_progressing() {
        let fresh = json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"generation": 1}});
        assert_eq!(
            assess(&fresh).map(|h| h.status),
            Some(HealthStatus::Progressing)
        );
        let ready = json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"generation": 1}, "status": {"observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(
            assess(&ready).map(|h| h.status),
            Some(HealthStatus::Healthy)
        );
    }

    #[test]
    fn severity_order_is_argo_cds() {
        use HealthStatus::*;
        let mut all = vec![Unknown, Degraded, Missing, Progressing, Suspended, Healthy];
        all.sort();
        assert_eq!(
            all,
            vec![Healthy, Suspended, Progressing, Missing, Degraded, Unknown]
        );
        let h = [
            Health::new(Healthy, ""),
            Health::new(Missing, "gone"),
            Health::new(Progressing, ""),
        ];
        assert_eq!(worst(&h).status, Missing);
    }

    #[test]
    fn deployment_states() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 1}});
        assert_eq!(assess(&d).unwrap().status, HealthStatus::Progressing);
        d["status"] = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1});
        let h = assess(&d).unwrap();
        assert_eq!(h.status, HealthStatus::Progressing);
        assert!(h.message.contains("1 of 2 updated replicas are available"));
        d["status"]["availableReplicas"] = json!(2);
        assert_eq!(assess(&d).unwrap().status, HealthStatus::Healthy);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]);
        assert_eq!(assess(&d).unwrap().status, HealthStatus::Degraded);
        d["spec"]["paused"] = json!(true);
        assert_eq!(assess(&d).unwrap().status, HealthStatus::Suspended);
    }

    #[test]
    fn pods_jobs_and_plain_objects() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(assess(&pod).unwrap().status, HealthStatus::Healthy);
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "status": {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}});
        assert_eq!(assess(&job).unwrap().status, HealthStatus::Degraded);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(assess(&cm), None);
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "ClusterIP"}});
        assert_eq!(assess(&svc).unwrap().status, HealthStatus::Healthy);
    }

    #[test]
    fn custom_resource_ready_condition() {
        let mut cr = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "generation": 1},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "False", "message": "boom"}]}});
        let h = assess(&cr).unwrap();
        assert_eq!(
            (h.status, h.message.as_str()),
            (HealthStatus::Degraded, "boom")
        );
        cr["status"]["conditions"][0]["status"] = json!("True");
        assert_eq!(assess(&cr).unwrap().status, HealthStatus::Healthy);
    }
}
