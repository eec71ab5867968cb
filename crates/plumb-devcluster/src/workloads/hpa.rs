//! Horizontal pod autoscaler controller, as on a cluster with a metrics server: status from
//! the scale target (current and desired replicas within the bounds) and the conditions the
//! real controller writes. It does not change the target's replicas.

use serde_json::{Value, json};

use super::{set_condition, write_status};
use crate::controllers::Controllers;
use crate::store::meta_str;

fn target_resource(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Deployment" => "deployments.apps",
        "StatefulSet" => "statefulsets.apps",
        "ReplicaSet" => "replicasets.apps",
        _ => return None,
    })
}

pub(crate) fn reconcile(ctl: &mut Controllers, hpa: &Value) {
    let cluster = &ctl.cluster;
    let ns = meta_str(hpa, "namespace");
    let kind = hpa
        .pointer("/spec/scaleTargetRef/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = hpa
        .pointer("/spec/scaleTargetRef/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let target = target_resource(kind).and_then(|r| cluster.store.get(r, ns, name));
    let old: Vec<Value> = hpa
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let min = hpa
        .pointer("/spec/minReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let max = hpa
        .pointer("/spec/maxReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(min)
        .max(min);
    let Some(target) = target else {
        let cond = json!({"type": "AbleToScale", "status": "False", "reason": "FailedGetScale",
            "message": format!("the HPA controller was unable to get the target's current scale: {} {name:?} not found", kind.to_lowercase())});
        let status = json!({"currentReplicas": 0, "desiredReplicas": 0,
            "conditions": set_condition(&old, cond, false)});
        write_status(cluster, "horizontalpodautoscalers.autoscaling", hpa, status);
        return;
    };
    let current = target
        .pointer("/status/replicas")
        .and_then(Value::as_i64)
        .or_else(|| target.pointer("/spec/replicas").and_then(Value::as_i64))
        .unwrap_or(1);
    let desired = current.clamp(min, max);
    let mut conditions = set_condition(
        &old,
        json!({"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
            "message": "recommended size matches current size"}),
        false,
    );
    conditions = set_condition(
        &conditions,
        json!({"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
            "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"}),
        false,
    );
    let limited = desired != current;
    conditions = set_condition(
        &conditions,
        if limited {
            json!({"type": "ScalingLimited", "status": "True", "reason": if current < min { "TooFewReplicas" } else { "TooManyReplicas" },
                "message": "the desired replica count is outside the allowed range"})
        } else {
            json!({"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange",
                "message": "the desired count is within the acceptable range"})
        },
        false,
    );
    let status = json!({"currentReplicas": current, "desiredReplicas": desired,
        "conditions": conditions});
    write_status(cluster, "horizontalpodautoscalers.autoscaling", hpa, status);
}
