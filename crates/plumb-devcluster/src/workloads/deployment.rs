//! Deployment controller: one ReplicaSet per pod template, rollouts that
//! scale the old sets down once the new one is available, and the status and
//! conditions `kubectl rollout status` reads (including
//! ProgressDeadlineExceeded).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{
    canonical, create_owned, delete, int_or_percent, owned, set_condition, template_hash,
    write_object, write_status,
};
use crate::controllers::{Controllers, Key};
use crate::store::meta_str;

const REVISION: &str = "deployment.kubernetes.io/revision";

fn revision(rs: &Value) -> i64 {
    rs.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(o: &Value) -> i64 {
    o.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn status_i(o: &Value, f: &str) -> i64 {
    o.pointer(&format!("/status/{f}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn new_replica_set(d: &Value, hash: &str, revision: i64, replicas: i64) -> Value {
    let mut template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let labels = {
        let meta = template
            .as_object_mut()
            .map(|t| t.entry("metadata").or_insert(json!({})));
        let mut l = meta
            .and_then(|m| m.get("labels").cloned())
            .unwrap_or(json!({}));
        l["pod-template-hash"] = json!(hash);
        l
    };
    template["metadata"]["labels"] = labels.clone();
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    let ml = selector
        .as_object_mut()
        .map(|s| s.entry("matchLabels").or_insert(json!({})));
    if let Some(ml) = ml {
        ml["pod-template-hash"] = json!(hash);
    }
    let desired = spec_replicas(d);
    let surge = int_or_percent(
        d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
        desired,
        true,
    );
    let mut spec = json!({"replicas": replicas, "selector": selector, "template": template});
    if let Some(m) = d.pointer("/spec/minReadySeconds") {
        spec["minReadySeconds"] = m.clone();
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{hash}", meta_str(d, "name")),
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": desired.to_string(),
                "deployment.kubernetes.io/max-replicas": desired.saturating_add(surge).to_string(),
                REVISION: revision.to_string(),
            },
        },
        "spec": spec,
    })
}

fn set_replicas(ctl: &Controllers, rs: &Value, n: i64) {
    if spec_replicas(rs) != n {
        write_object(&ctl.cluster, "replicasets.apps", rs, |o| {
            o["spec"]["replicas"] = json!(n);
        });
    }
}

pub(crate) fn reconcile(ctl: &mut Controllers, d: &Value) {
    let cluster = ctl.cluster.clone();
    let ns = meta_str(d, "namespace").to_string();
    let name = meta_str(d, "name").to_string();
    let desired = spec_replicas(d).max(0);
    let paused = d.pointer("/spec/paused") == Some(&json!(true));
    let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = template_hash(&template);
    let mut sets = owned(&cluster, "replicasets.apps", &ns, meta_str(d, "uid"));
    let max_revision = sets.iter().map(revision).max().unwrap_or(0);
    let mut created_new = false;
    // The current set is the one whose template equals the deployment's,
    // ignoring the hash label (how a rollback finds its old set again).
    let mut new_rs = sets
        .iter()
        .find(|rs| {
            let mut t = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
            if let Some(labels) = t
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
            {
                labels.shift_remove("pod-template-hash");
            }
            canonical(&t) == canonical(&template)
        })
        .cloned();
    if !paused {
        match &new_rs {
            None => {
                let old_up: i64 = sets.iter().map(|rs| status_i(rs, "replicas")).sum();
                let start = if recreate && old_up > 0 { 0 } else { desired };
                let rs = new_replica_set(d, &hash, max_revision + 1, start);
                if let Some(created) =
                    create_owned(&cluster, "replicasets.apps", d, "Deployment", "apps/v1", rs)
                {
                    created_new = true;
                    sets.push(created.clone());
                    new_rs = Some(created);
                }
            }
            Some(rs) if revision(rs) < max_revision => {
                // Rolled back to an older template: it becomes the newest revision.
                write_object(&cluster, "replicasets.apps", rs, |o| {
                    o["metadata"]["annotations"][REVISION] = json!((max_revision + 1).to_string());
                });
            }
            Some(_) => {}
        }
    }
    // The deployment carries its current revision, as the real controller sets it.
    if let Some(nrs) = new_rs.as_ref().filter(|rs| revision(rs) > 0) {
        let rev = if revision(nrs) < max_revision {
            max_revision + 1
        } else {
            revision(nrs)
        }
        .to_string();
        let current = d
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(REVISION))
            .and_then(Value::as_str);
        if current != Some(rev.as_str()) {
            write_object(&cluster, "deployments.apps", d, |o| {
                let meta = crate::meta::metadata_mut(o);
                let ann = meta.entry("annotations").or_insert(json!({}));
                if let Some(a) = ann.as_object_mut() {
                    a.insert(REVISION.into(), json!(rev));
                }
            });
        }
    }
    let new_uid = new_rs
        .as_ref()
        .map(|r| meta_str(r, "uid").to_string())
        .unwrap_or_default();
    let old: Vec<&Value> = sets
        .iter()
        .filter(|rs| meta_str(rs, "uid") != new_uid)
        .collect();
    if !paused && let Some(nrs) = &new_rs {
        let old_running: i64 = old.iter().map(|rs| status_i(rs, "replicas")).sum();
        let new_available = status_i(nrs, "availableReplicas");
        if recreate {
            for rs in &old {
                set_replicas(ctl, rs, 0);
            }
            if old_running == 0 {
                set_replicas(ctl, nrs, desired);
            }
        } else {
            set_replicas(ctl, nrs, desired);
            for rs in &old {
                let keep = if new_available >= desired {
                    0
                } else {
                    spec_replicas(rs).min(desired)
                };
                set_replicas(ctl, rs, keep);
            }
        }
    }
    // Old, scaled-down sets beyond the history limit are deleted, oldest first.
    let limit = d
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0) as usize;
    let mut idle: Vec<&&Value> = old
        .iter()
        .filter(|rs| spec_replicas(rs) == 0 && status_i(rs, "replicas") == 0)
        .collect();
    if idle.len() > limit {
        idle.sort_by_key(|rs| revision(rs));
        for rs in idle.iter().take(idle.len() - limit) {
            delete(&cluster, "replicasets.apps", rs);
        }
    }
    write_deployment_status(ctl, d, &sets, new_rs.as_ref(), created_new, desired, paused);
    let _ = name;
}

fn write_deployment_status(
    ctl: &mut Controllers,
    d: &Value,
    sets: &[Value],
    new_rs: Option<&Value>,
    created_new: bool,
    desired: i64,
    paused: bool,
) {
    let replicas: i64 = sets.iter().map(|rs| status_i(rs, "replicas")).sum();
    let ready: i64 = sets.iter().map(|rs| status_i(rs, "readyReplicas")).sum();
    let available: i64 = sets
        .iter()
        .map(|rs| status_i(rs, "availableReplicas"))
        .sum();
    let updated = new_rs.map(|rs| status_i(rs, "replicas")).unwrap_or(0);
    let new_available = new_rs
        .map(|rs| status_i(rs, "availableReplicas"))
        .unwrap_or(0);
    let rs_name = new_rs
        .map(|rs| meta_str(rs, "name").to_string())
        .unwrap_or_default();
    let max_unavailable =
        if d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate") {
            0
        } else {
            int_or_percent(
                d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
                desired,
                false,
            )
        };
    let old_status = d.get("status").cloned().unwrap_or(json!({}));
    let conditions: Vec<Value> = old_status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let minimum = available >= desired - max_unavailable;
    let conditions = set_condition(
        &conditions,
        if minimum {
            json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."})
        } else {
            json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."})
        },
        true,
    );
    let complete = updated == desired && new_available == desired && replicas == desired;
    let deadline = d
        .pointer("/spec/progressDeadlineSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(600);
    let previous = conditions
        .iter()
        .find(|c| c.get("type") == Some(&json!("Progressing")))
        .cloned();
    let prev_reason = previous
        .as_ref()
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let prev_rs_same = previous
        .as_ref()
        .and_then(|c| c.get("message"))
        .and_then(Value::as_str)
        .is_some_and(|m| m.contains(&format!("\"{rs_name}\"")));
    let progressed = status_i(d, "updatedReplicas") != updated
        || status_i(d, "availableReplicas") != available
        || status_i(d, "readyReplicas") != ready;
    let since_update = previous
        .as_ref()
        .and_then(|c| c.get("lastUpdateTime"))
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
        .unwrap_or(0);
    let progressing = if paused {
        json!({"type": "Progressing", "status": "Unknown", "reason": "DeploymentPaused", "message": "Deployment is paused"})
    } else if complete {
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed.")})
    } else if prev_reason == "ProgressDeadlineExceeded" && prev_rs_same && !created_new {
        previous.clone().unwrap_or(json!({}))
    } else if !created_new
        && !progressed
        && prev_rs_same
        && since_update >= deadline
        // Like the deployment controller's DeploymentTimedOut: a complete rollout never times
        // out, so scaling a long-settled Deployment starts a new deadline instead.
        && prev_reason != "NewReplicaSetAvailable"
    {
        json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": format!("ReplicaSet \"{rs_name}\" has timed out progressing.")})
    } else if created_new {
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated", "message": format!("Created new replica set \"{rs_name}\"")})
    } else if progressed || !prev_rs_same || prev_reason == "NewReplicaSetAvailable" {
        json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": format!("ReplicaSet \"{rs_name}\" is progressing."), "lastUpdateTime": crate::meta::now()})
    } else {
        previous.clone().unwrap_or(json!({}))
    };
    let mut conditions = if progressing.get("type").is_some() {
        let forced_update = progressing.get("lastUpdateTime").cloned();
        let mut c = set_condition(&conditions, progressing, true);
        if let Some(t) = forced_update
            && let Some(p) = c
                .iter_mut()
                .find(|c| c.get("type") == Some(&json!("Progressing")))
        {
            p["lastUpdateTime"] = t;
        }
        c
    } else {
        conditions
    };
    // Available first, Progressing second, as the real controller leaves them.
    conditions.sort_by_key(|c| c.get("type") != Some(&json!("Available")));
    let mut status = Map::new();
    if let Some(g) = d.pointer("/metadata/generation") {
        status.insert("observedGeneration".into(), g.clone());
    }
    for (k, v) in [
        ("replicas", replicas),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ] {
        if v > 0 {
            status.insert(k.into(), json!(v));
        }
    }
    let unavailable = (desired - available).max(0);
    if unavailable > 0 {
        status.insert("unavailableReplicas".into(), json!(unavailable));
    }
    status.insert("conditions".into(), json!(conditions));
    write_status(&ctl.cluster, "deployments.apps", d, Value::Object(status));
    if !complete && !paused {
        let key = Key::Workload(
            "deployments.apps".into(),
            meta_str(d, "namespace").to_string(),
            meta_str(d, "name").to_string(),
        );
        let wait = (deadline - since_update).clamp(1, deadline.max(1)) as u64;
        ctl.requeue(key, Duration::from_secs(wait));
    }
}
