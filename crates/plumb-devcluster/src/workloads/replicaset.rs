//! ReplicaSet controller: keeps `spec.replicas` pods and reports their state.

use serde_json::{Map, Value, json};

use super::{create_owned, delete, owned, pod_from_template, pod_ready, write_status};
use crate::controllers::Controllers;
use crate::store::meta_str;

const MAX_CREATES_PER_PASS: usize = 500;

pub(crate) fn reconcile(ctl: &mut Controllers, rs: &Value) {
    let cluster = &ctl.cluster;
    let ns = meta_str(rs, "namespace");
    let uid = meta_str(rs, "uid");
    let desired = rs
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0) as usize;
    let mut pods = owned(cluster, "pods", ns, uid);
    if pods.len() < desired {
        let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let prefix = format!("{}-", meta_str(rs, "name"));
        // Bounded work per pass; the pod events bring the next pass.
        for _ in pods.len()..desired.min(pods.len() + MAX_CREATES_PER_PASS) {
            let pod = pod_from_template(&template, None, Some(&prefix), &[]);
            if let Some(p) = create_owned(cluster, "pods", rs, "ReplicaSet", "apps/v1", pod) {
                pods.push(p);
            }
        }
    } else if pods.len() > desired {
        // Not-ready pods go first, then the newest.
        pods.sort_by_key(|p| {
            (
                pod_ready(p),
                std::cmp::Reverse(meta_str(p, "creationTimestamp").to_string()),
            )
        });
        let extra = pods.len() - desired;
        for p in pods.drain(..extra) {
            delete(cluster, "pods", &p);
        }
    }
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let mut status = Map::new();
    status.insert("replicas".into(), json!(pods.len()));
    if !pods.is_empty() {
        status.insert("fullyLabeledReplicas".into(), json!(pods.len()));
    }
    if ready > 0 {
        status.insert("readyReplicas".into(), json!(ready));
        status.insert("availableReplicas".into(), json!(ready));
    }
    if let Some(g) = rs.pointer("/metadata/generation") {
        status.insert("observedGeneration".into(), g.clone());
    }
    write_status(cluster, "replicasets.apps", rs, Value::Object(status));
}
