//! Disruption controller: PodDisruptionBudget status from the pods its
//! selector matches.

use serde_json::{Value, json};

use super::{int_or_percent, pod_ready, set_condition, write_status};
use crate::controllers::Controllers;
use crate::selectors::LabelSelector;
use crate::store::meta_str;

pub(crate) fn reconcile(ctl: &mut Controllers, pdb: &Value) {
    let cluster = &ctl.cluster;
    let ns = meta_str(pdb, "namespace");
    let selector = pdb
        .pointer("/spec/selector")
        .map(LabelSelector::from_object)
        .unwrap_or_default();
    let (pods, _) = cluster.store.list("pods", Some(ns));
    let matching: Vec<_> = pods
        .iter()
        .filter(|p| !selector.is_empty() && selector.matches(p))
        .filter(|p| meta_str(p, "deletionTimestamp").is_empty())
        .collect();
    let expected = matching.len() as i64;
    let healthy = matching.iter().filter(|p| pod_ready(p)).count() as i64;
    let desired = if let Some(min) = pdb.pointer("/spec/minAvailable") {
        int_or_percent(Some(min), expected, true)
    } else if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
        (expected - int_or_percent(Some(max), expected, true)).max(0)
    } else {
        expected
    };
    let allowed = (healthy - desired).max(0);
    let old: Vec<Value> = pdb
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let cond = if allowed > 0 {
        json!({"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "", "observedGeneration": pdb.pointer("/metadata/generation")})
    } else {
        json!({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": "", "observedGeneration": pdb.pointer("/metadata/generation")})
    };
    let status = json!({
        "observedGeneration": pdb.pointer("/metadata/generation"),
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": set_condition(&old, cond, false),
    });
    write_status(cluster, "poddisruptionbudgets.policy", pdb, status);
}
