//! Simulated workload controllers and kubelet: Deployments create
//! ReplicaSets, ReplicaSets/Jobs/StatefulSets/DaemonSets create Pods, and
//! Pods become Ready after `pod_ready_delay`. Statuses and conditions are
//! written the way the real controllers write them.
//!
//! Fault injection by image name (see the crate README): `fail-pull` never
//! pulls, `fail-job` exits 1, `fail-crash` crash-loops.

mod daemonset;
mod deployment;
mod hpa;
mod job;
mod pdb;
mod pod;
mod replicaset;
mod statefulset;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::controllers::{Controllers, Key};
use crate::meta::{metadata_mut, now};
use crate::objects::{WriteCtx, commit_create, commit_update, prepare_create};
use crate::resources::ResourceType;
use crate::store::{Event, WriteError, meta_str};

const WORKLOADS: &[&str] = &[
    "deployments.apps",
    "replicasets.apps",
    "statefulsets.apps",
    "daemonsets.apps",
    "jobs.batch",
    "pods",
    "persistentvolumeclaims",
    "poddisruptionbudgets.policy",
    "horizontalpodautoscalers.autoscaling",
];

/// The name simulated pods are bound to.
pub(crate) const NODE_NAME: &str = "devcluster-node";

pub(crate) fn is_workload(resource: &str) -> bool {
    WORKLOADS.contains(&resource)
}

/// Create-time fields the real server (or its allocators) fills in.
pub(crate) fn on_create(cluster: &Cluster, rt: &ResourceType, obj: &mut Value) {
    match rt.kind.as_str() {
        "Service" => {
            let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
                return;
            };
            let ty = spec
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP")
                .to_string();
            let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
            if ty != "ExternalName" && !headless && spec.get("clusterIP").is_none_or(|v| v == "") {
                let ip = cluster.allocate_ip();
                spec.insert("clusterIP".into(), json!(ip));
                spec.insert("clusterIPs".into(), json!([ip]));
            } else if headless {
                spec.insert("clusterIPs".into(), json!(["None"]));
            }
            if (ty == "NodePort" || ty == "LoadBalancer")
                && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
            {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    if p.get("nodePort").is_none() {
                        p.insert("nodePort".into(), json!(cluster.allocate_node_port()));
                    }
                }
            }
            let status = if ty == "LoadBalancer" {
                json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}})
            } else {
                json!({"loadBalancer": {}})
            };
            if let Some(m) = obj.as_object_mut() {
                m.insert("status".into(), status);
            }
        }
        "Namespace" => {
            if let Some(m) = obj.as_object_mut() {
                m.insert("status".into(), json!({"phase": "Active"}));
            }
        }
        "Pod" => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("nodeName").or_insert(json!(NODE_NAME));
            }
            if let Some(m) = obj.as_object_mut() {
                m.insert(
                    "status".into(),
                    json!({"phase": "Pending", "qosClass": "BestEffort"}),
                );
            }
        }
        "Job" => job::on_create(obj),
        "Ingress" => {
            if let Some(m) = obj.as_object_mut() {
                m.insert(
                    "status".into(),
                    json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}),
                );
            }
        }
        _ => {}
    }
}

/// The controller owner reference of an object: (kind, name, uid).
pub(crate) fn controller_of(obj: &Value) -> Option<(String, String, String)> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller") == Some(&json!(true)))
        .map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (s("kind"), s("name"), s("uid"))
        })
}

fn owner_resource(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Deployment" => "deployments.apps",
        "ReplicaSet" => "replicasets.apps",
        "StatefulSet" => "statefulsets.apps",
        "DaemonSet" => "daemonsets.apps",
        "Job" => "jobs.batch",
        _ => return None,
    })
}

pub(crate) fn observe(ctl: &mut Controllers, ev: &Event, queue: &mut BTreeSet<Key>) {
    if !is_workload(&ev.resource) {
        return;
    }
    let ns = meta_str(&ev.object, "namespace").to_string();
    queue.insert(Key::Workload(
        ev.resource.clone(),
        ns.clone(),
        meta_str(&ev.object, "name").to_string(),
    ));
    // Pods count toward the budgets of their namespace.
    if ev.resource == "pods" {
        let (budgets, _) = ctl
            .cluster
            .store
            .list("poddisruptionbudgets.policy", Some(&ns));
        for b in budgets {
            queue.insert(Key::Workload(
                "poddisruptionbudgets.policy".into(),
                ns.clone(),
                meta_str(&b, "name").to_string(),
            ));
        }
    }
    // Scale targets change the status of their autoscalers.
    if matches!(
        ev.resource.as_str(),
        "deployments.apps" | "statefulsets.apps" | "replicasets.apps"
    ) {
        let (autoscalers, _) = ctl
            .cluster
            .store
            .list("horizontalpodautoscalers.autoscaling", Some(&ns));
        let name = meta_str(&ev.object, "name");
        for a in autoscalers {
            if a.pointer("/spec/scaleTargetRef/name")
                .and_then(Value::as_str)
                == Some(name)
            {
                queue.insert(Key::Workload(
                    "horizontalpodautoscalers.autoscaling".into(),
                    ns.clone(),
                    meta_str(&a, "name").to_string(),
                ));
            }
        }
    }
    if let Some((kind, name, _)) = controller_of(&ev.object)
        && let Some(r) = owner_resource(&kind)
    {
        queue.insert(Key::Workload(r.to_string(), ns, name));
    }
}

pub(crate) fn reconcile(ctl: &mut Controllers, resource: &str, ns: &str, name: &str) {
    let Some(obj) = ctl.cluster.store.get(resource, ns, name) else {
        return;
    };
    if !meta_str(&obj, "deletionTimestamp").is_empty() {
        return;
    }
    match resource {
        "deployments.apps" => deployment::reconcile(ctl, &obj),
        "replicasets.apps" => replicaset::reconcile(ctl, &obj),
        "statefulsets.apps" => statefulset::reconcile(ctl, &obj),
        "daemonsets.apps" => daemonset::reconcile(ctl, &obj),
        "jobs.batch" => job::reconcile(ctl, &obj),
        "pods" => pod::reconcile(ctl, &obj),
        "persistentvolumeclaims" => bind_claim(&ctl.cluster, &obj),
        "poddisruptionbudgets.policy" => pdb::reconcile(ctl, &obj),
        "horizontalpodautoscalers.autoscaling" => hpa::reconcile(ctl, &obj),
        _ => {}
    }
}

/// Claims bind at once, as with a default dynamic provisioner.
fn bind_claim(cluster: &Cluster, pvc: &Value) {
    let mut status = json!({
        "phase": "Bound",
        "accessModes": pvc.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
    });
    if let Some(storage) = pvc.pointer("/spec/resources/requests/storage") {
        status["capacity"] = json!({"storage": storage});
    }
    write_status(cluster, "persistentvolumeclaims", pvc, status);
}

fn ctx(rt: &ResourceType) -> WriteCtx {
    WriteCtx::internal(
        "kube-controller-manager",
        &rt.api_version(rt.preferred_version()),
    )
}

/// Writes `status` through the status subresource path, if it changed.
pub(crate) fn write_status(cluster: &Cluster, resource: &str, obj: &Value, status: Value) {
    let Some(rt) = cluster.registry.by_key(resource) else {
        return;
    };
    let ns = meta_str(obj, "namespace").to_string();
    let name = meta_str(obj, "name").to_string();
    loop {
        let Some(cur) = cluster.store.get(resource, &ns, &name) else {
            return;
        };
        if cur.get("status") == Some(&status) {
            return;
        }
        let mut incoming = (*cur).clone();
        if let Some(m) = incoming.as_object_mut() {
            m.insert("status".into(), status.clone());
        }
        let Ok(new) = crate::objects::prepare_update(
            &rt,
            "status",
            &cur,
            incoming,
            &ctx(&rt),
            crate::objects::Managed::Keep,
        ) else {
            return;
        };
        match commit_update(cluster, &rt, &cur, new, false) {
            Err(WriteError::Conflict) => continue,
            _ => return,
        }
    }
}

/// Applies `change` to the main object (spec/metadata), if it changes anything.
pub(crate) fn write_object(
    cluster: &Cluster,
    resource: &str,
    obj: &Value,
    change: impl Fn(&mut Value),
) {
    let Some(rt) = cluster.registry.by_key(resource) else {
        return;
    };
    let ns = meta_str(obj, "namespace").to_string();
    let name = meta_str(obj, "name").to_string();
    loop {
        let Some(cur) = cluster.store.get(resource, &ns, &name) else {
            return;
        };
        let mut incoming = (*cur).clone();
        change(&mut incoming);
        if incoming == *cur {
            return;
        }
        let Ok(new) = crate::objects::prepare_update(
            &rt,
            "",
            &cur,
            incoming,
            &ctx(&rt),
            crate::objects::Managed::Keep,
        ) else {
            return;
        };
        match commit_update(cluster, &rt, &cur, new, false) {
            Err(WriteError::Conflict) => continue,
            _ => return,
        }
    }
}

/// Creates an object owned by `owner`.
pub(crate) fn create_owned(
    cluster: &Cluster,
    resource: &str,
    owner: &Value,
    owner_kind: &str,
    owner_api: &str,
    mut obj: Value,
) -> Option<Value> {
    let rt = cluster.registry.by_key(resource)?;
    let owner_ref = json!({
        "apiVersion": owner_api,
        "kind": owner_kind,
        "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    });
    let meta = metadata_mut(&mut obj);
    meta.insert("ownerReferences".into(), json!([owner_ref]));
    let ns = meta_str(owner, "namespace").to_string();
    let prepared = prepare_create(cluster, &rt, &ns, obj, &ctx(&rt)).ok()?;
    commit_create(cluster, &rt, prepared, false)
        .ok()
        .map(|o| (*o).clone())
}

/// Creates an object with no owner (StatefulSet claims outlive their set).
pub(crate) fn create_plain(cluster: &Cluster, resource: &str, ns: &str, obj: Value) -> bool {
    let Some(rt) = cluster.registry.by_key(resource) else {
        return false;
    };
    match prepare_create(cluster, &rt, ns, obj, &ctx(&rt)) {
        Ok(prepared) => commit_create(cluster, &rt, prepared, false).is_ok(),
        Err(_) => false,
    }
}

/// Deletes an object in the background.
pub(crate) fn delete(cluster: &Cluster, resource: &str, obj: &Value) {
    if let Some(rt) = cluster.registry.by_key(resource) {
        let _ = crate::lifecycle::delete(
            cluster,
            &rt,
            meta_str(obj, "namespace"),
            meta_str(obj, "name"),
            &crate::lifecycle::DeleteOptions::default(),
        );
    }
}

/// Live objects of `resource` in `ns` controlled by the owner with `uid`.
pub(crate) fn owned(cluster: &Cluster, resource: &str, ns: &str, uid: &str) -> Vec<Value> {
    let (items, _) = cluster.store.list(resource, Some(ns));
    items
        .iter()
        .filter(|o| controller_of(o).is_some_and(|(_, _, u)| u == uid))
        .filter(|o| meta_str(o, "deletionTimestamp").is_empty())
        .map(|o| (**o).clone())
        .collect()
}

/// A pod's Ready condition.
pub(crate) fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("type") == Some(&json!("Ready")) && c.get("status") == Some(&json!("True"))
            })
        })
}

pub(crate) fn pod_phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A pod from a template, named by the caller.
pub(crate) fn pod_from_template(
    template: &Value,
    name: Option<&str>,
    generate: Option<&str>,
    extra_labels: &[(&str, String)],
) -> Value {
    let mut meta = template.get("metadata").cloned().unwrap_or(json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.shift_remove("creationTimestamp");
        if let Some(n) = name {
            m.insert("name".into(), json!(n));
        }
        if let Some(g) = generate {
            m.insert("generateName".into(), json!(g));
        }
        let labels = m.entry("labels").or_insert(json!({}));
        if let Some(l) = labels.as_object_mut() {
            for (k, v) in extra_labels {
                l.insert((*k).to_string(), json!(v));
            }
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    })
}

/// Sets a condition the way controllers do: `lastTransitionTime` moves only
/// when the status flips. Returns the new condition list.
pub(crate) fn set_condition(
    conditions: &[Value],
    cond: Value,
    with_update_time: bool,
) -> Vec<Value> {
    let t = now();
    let ty = cond.get("type").cloned();
    let mut out: Vec<Value> = conditions.to_vec();
    let existing = out.iter().position(|c| c.get("type") == ty.as_ref());
    let mut c = cond;
    match existing {
        Some(i) => {
            let old = &out[i];
            let same_status = old.get("status") == c.get("status");
            let same_reason =
                old.get("reason") == c.get("reason") && old.get("message") == c.get("message");
            c["lastTransitionTime"] = if same_status {
                old.get("lastTransitionTime").cloned().unwrap_or(json!(t))
            } else {
                json!(t)
            };
            if with_update_time {
                c["lastUpdateTime"] = if same_status && same_reason {
                    old.get("lastUpdateTime").cloned().unwrap_or(json!(t))
                } else {
                    json!(t)
                };
            }
            out[i] = c;
        }
        None => {
            c["lastTransitionTime"] = json!(t);
            if with_update_time {
                c["lastUpdateTime"] = json!(t);
            }
            out.push(c);
        }
    }
    out
}

/// A stable short hash of a pod template, printed like the real
/// `pod-template-hash` (digits mapped to the safe alphabet).
pub(crate) fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in canonical(template).to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|d| ALPHABET[(d as usize) % ALPHABET.len()] as char)
        .collect()
}

/// The value with object keys sorted at every level and nulls dropped, so
/// templates that are equal as Go structs (where `creationTimestamp: null`
/// and an absent field are the same) compare and hash equally.
pub(crate) fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| !m[*k].is_null()).collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Whether any container image carries a fault marker.
pub(crate) fn has_fault(spec: &Value, marker: &str) -> bool {
    spec.get("containers")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("image")
                    .and_then(Value::as_str)
                    .is_some_and(|i| i.contains(marker))
            })
        })
}

/// Reads an int-or-percent (`1` or `"25%"`) against a total.
pub(crate) fn int_or_percent(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => {
                let scaled = total.saturating_mul(p);
                if round_up {
                    scaled.saturating_add(99) / 100
                } else {
                    scaled / 100
                }
            }
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_like_the_deployment_controller() {
        assert_eq!(int_or_percent(Some(&json!("25%")), 3, false), 0);
        assert_eq!(int_or_percent(Some(&json!("25%")), 3, true), 1);
        assert_eq!(int_or_percent(Some(&json!(2)), 3, true), 2);
    }

    #[test]
    fn template_hash_is_stable() {
        let t = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(template_hash(&t), template_hash(&t.clone()));
        assert_ne!(template_hash(&t), template_hash(&json!({})));
    }
}
