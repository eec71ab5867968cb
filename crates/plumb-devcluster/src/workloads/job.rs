//! Job controller: runs pods to `completions`, counts failures against
//! `backoffLimit`, and sets the Complete or Failed condition.

use serde_json::{Map, Value, json};

use super::{
    create_owned, delete, owned, pod_from_template, pod_phase, pod_ready, set_condition,
    write_status,
};
use crate::controllers::Controllers;
use crate::meta::now;
use crate::store::meta_str;

/// Adds the selector and labels the real server generates for a Job.
pub(crate) fn on_create(job: &mut Value) {
    let uid = meta_str(job, "uid").to_string();
    let name = meta_str(job, "name").to_string();
    let manual = job.pointer("/spec/manualSelector") == Some(&json!(true));
    let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if !manual && spec.get("selector").is_none() {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
    }
    let template = spec.entry("template").or_insert(json!({}));
    if let Some(t) = template.as_object_mut() {
        let meta = t.entry("metadata").or_insert(json!({}));
        if let Some(m) = meta.as_object_mut() {
            let labels = m.entry("labels").or_insert(json!({}));
            if let Some(l) = labels.as_object_mut() {
                for (k, v) in [
                    ("batch.kubernetes.io/controller-uid", &uid),
                    ("batch.kubernetes.io/job-name", &name),
                    ("controller-uid", &uid),
                    ("job-name", &name),
                ] {
                    l.entry(k).or_insert(json!(v));
                }
            }
        }
    }
}

fn has_condition(job: &Value, ty: &str) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("type") == Some(&json!(ty)) && c.get("status") == Some(&json!("True"))
            })
        })
}

pub(crate) fn reconcile(ctl: &mut Controllers, job: &Value) {
    let cluster = &ctl.cluster;
    if has_condition(job, "Complete") || has_condition(job, "Failed") {
        return;
    }
    let ns = meta_str(job, "namespace");
    let pods = owned(cluster, "pods", ns, meta_str(job, "uid"));
    let spec = |f: &str, d: i64| {
        job.pointer(&format!("/spec/{f}"))
            .and_then(Value::as_i64)
            .unwrap_or(d)
    };
    let completions = spec("completions", 1);
    let parallelism = spec("parallelism", 1);
    let backoff = spec("backoffLimit", 6);
    let succeeded = pods.iter().filter(|p| pod_phase(p) == "Succeeded").count() as i64;
    let failed = pods.iter().filter(|p| pod_phase(p) == "Failed").count() as i64;
    let active: Vec<&Value> = pods
        .iter()
        .filter(|p| !matches!(pod_phase(p), "Succeeded" | "Failed"))
        .collect();
    let suspended = job.pointer("/spec/suspend") == Some(&json!(true));
    let old = job.get("status").cloned().unwrap_or(json!({}));
    let conditions: Vec<Value> = old
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let t = now();
    let mut status = Map::new();
    let mut conditions = conditions;
    let mut active_count = active.len() as i64;
    if failed > backoff {
        for p in &active {
            delete(cluster, "pods", p);
        }
        active_count = 0;
        conditions = set_condition(
            &conditions,
            json!({"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": t}),
            false,
        );
        conditions = set_condition(
            &conditions,
            json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": t}),
            false,
        );
    } else if succeeded >= completions {
        conditions = set_condition(
            &conditions,
            json!({"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": t}),
            false,
        );
        conditions = set_condition(
            &conditions,
            json!({"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": t}),
            false,
        );
        status.insert("completionTime".into(), json!(t));
    } else if suspended {
        for p in &active {
            delete(cluster, "pods", p);
        }
        active_count = 0;
        conditions = set_condition(
            &conditions,
            json!({"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended", "lastProbeTime": t}),
            false,
        );
    } else {
        let want = parallelism.min(completions - succeeded).max(0);
        let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let prefix = format!("{}-", meta_str(job, "name"));
        let missing = (want - active_count).clamp(0, 500);
        for _ in 0..missing {
            let pod = pod_from_template(&template, None, Some(&prefix), &[]);
            if create_owned(cluster, "pods", job, "Job", "batch/v1", pod).is_some() {
                active_count += 1;
            }
        }
    }
    status.insert(
        "startTime".into(),
        old.get("startTime").cloned().unwrap_or(json!(t)),
    );
    if active_count > 0 {
        status.insert("active".into(), json!(active_count));
    }
    if succeeded > 0 {
        status.insert("succeeded".into(), json!(succeeded));
    }
    if failed > 0 {
        status.insert("failed".into(), json!(failed));
    }
    status.insert(
        "ready".into(),
        json!(active.iter().filter(|p| pod_ready(p)).count()),
    );
    status.insert("terminating".into(), json!(0));
    status.insert("uncountedTerminatedPods".into(), json!({}));
    if !conditions.is_empty() {
        status.insert("conditions".into(), json!(conditions));
    }
    if let Some(ct) = old.get("completionTime").cloned() {
        status.insert("completionTime".into(), ct);
    }
    write_status(cluster, "jobs.batch", job, Value::Object(status));
}
