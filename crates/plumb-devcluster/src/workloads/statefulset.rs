//! StatefulSet controller: ordinal pods created in order (OrderedReady or
//! Parallel), rolling updates from the highest ordinal, revisions in status.

use serde_json::{Map, Value, json};

use super::{
    create_owned, delete, owned, pod_from_template, pod_ready, template_hash, write_status,
};
use crate::controllers::Controllers;
use crate::store::meta_str;

const REVISION_LABEL: &str = "controller-revision-hash";

fn ordinal(pod: &Value, set: &str) -> Option<i64> {
    meta_str(pod, "name")
        .strip_prefix(&format!("{set}-"))?
        .parse()
        .ok()
}

/// Creates the ordinal's claims from `volumeClaimTemplates` (if missing) and
/// mounts them into the pod, as the StatefulSet controller does.
fn claims(
    cluster: &crate::cluster::Cluster,
    sts: &Value,
    set: &str,
    ns: &str,
    ordinal: i64,
    pod: &mut Value,
) {
    let templates = sts
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let selector_labels = sts
        .pointer("/spec/selector/matchLabels")
        .cloned()
        .unwrap_or(json!({}));
    for t in templates {
        let Some(tname) = t.pointer("/metadata/name").and_then(Value::as_str) else {
            continue;
        };
        let claim = format!("{tname}-{set}-{ordinal}");
        if cluster
            .store
            .get("persistentvolumeclaims", ns, &claim)
            .is_none()
        {
            let mut labels = t.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
            if let (Some(l), Some(s)) = (labels.as_object_mut(), selector_labels.as_object()) {
                for (k, v) in s {
                    l.insert(k.clone(), v.clone());
                }
            }
            let pvc = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "labels": labels},
                "spec": t.get("spec").cloned().unwrap_or(json!({})),
            });
            super::create_plain(cluster, "persistentvolumeclaims", ns, pvc);
        }
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            let volumes = spec.entry("volumes").or_insert(json!([]));
            if let Some(v) = volumes.as_array_mut()
                && !v
                    .iter()
                    .any(|x| x.get("name").and_then(Value::as_str) == Some(tname))
            {
                v.push(json!({"name": tname, "persistentVolumeClaim": {"claimName": claim}}));
            }
        }
    }
}

pub(crate) fn reconcile(ctl: &mut Controllers, sts: &Value) {
    let cluster = &ctl.cluster;
    let name = meta_str(sts, "name").to_string();
    let ns = meta_str(sts, "namespace");
    let replicas = sts
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0);
    let parallel = sts
        .pointer("/spec/podManagementPolicy")
        .and_then(Value::as_str)
        == Some("Parallel");
    let on_delete = sts
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        == Some("OnDelete");
    let partition = sts
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let template = sts.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let update_revision = format!("{name}-{}", template_hash(&template));
    let mut pods = owned(cluster, "pods", ns, meta_str(sts, "uid"));
    pods.sort_by_key(|p| ordinal(p, &name).unwrap_or(i64::MAX));
    let revision_of = |p: &Value| {
        p.pointer(&format!("/metadata/labels/{REVISION_LABEL}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };

    // Scale down from the highest ordinal.
    let mut excess: Vec<&Value> = pods
        .iter()
        .filter(|p| ordinal(p, &name).is_none_or(|o| o >= replicas))
        .collect();
    excess.reverse();
    if let Some(p) = excess.first() {
        delete(cluster, "pods", p);
        if !parallel {
            excess.clear();
        } else {
            for p in excess.iter().skip(1) {
                delete(cluster, "pods", p);
            }
        }
    }
    // Create missing ordinals, in order unless Parallel.
    let mut all_ready_so_far = true;
    let mut created = 0;
    for i in 0..replicas {
        // Bounded work per pass; the pod events bring the next pass.
        if created >= 100 {
            break;
        }
        match pods.iter().find(|p| ordinal(p, &name) == Some(i)) {
            Some(p) => all_ready_so_far &= pod_ready(p),
            None => {
                if !parallel && !all_ready_so_far {
                    break;
                }
                let pod_name = format!("{name}-{i}");
                let mut pod = pod_from_template(
                    &template,
                    Some(&pod_name),
                    None,
                    &[
                        (REVISION_LABEL, update_revision.clone()),
                        ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                        ("apps.kubernetes.io/pod-index", i.to_string()),
                    ],
                );
                pod["spec"]["hostname"] = json!(pod_name);
                claims(cluster, sts, &name, ns, i, &mut pod);
                if let Some(svc) = sts.pointer("/spec/serviceName") {
                    pod["spec"]["subdomain"] = svc.clone();
                }
                create_owned(cluster, "pods", sts, "StatefulSet", "apps/v1", pod);
                created += 1;
                all_ready_so_far = false;
                if !parallel {
                    break;
                }
            }
        }
    }
    // Rolling update: replace one outdated pod at a time, highest ordinal first.
    let in_range: Vec<&Value> = pods
        .iter()
        .filter(|p| ordinal(p, &name).is_some_and(|o| o < replicas))
        .collect();
    if !on_delete
        && in_range.len() as i64 == replicas
        && in_range.iter().all(|p| pod_ready(p))
        && let Some(p) = in_range.iter().rev().find(|p| {
            revision_of(p) != update_revision && ordinal(p, &name).is_some_and(|o| o >= partition)
        })
    {
        delete(cluster, "pods", p);
    }
    let ready = in_range.iter().filter(|p| pod_ready(p)).count();
    let updated = in_range
        .iter()
        .filter(|p| revision_of(p) == update_revision)
        .count();
    let old_status = sts.get("status").cloned().unwrap_or(json!({}));
    let complete = updated as i64 == replicas && ready as i64 == replicas;
    let current_revision = if complete {
        update_revision.clone()
    } else {
        old_status
            .get("currentRevision")
            .and_then(Value::as_str)
            .unwrap_or(&update_revision)
            .to_string()
    };
    let current = in_range
        .iter()
        .filter(|p| revision_of(p) == current_revision)
        .count();
    let mut status = Map::new();
    if let Some(g) = sts.pointer("/metadata/generation") {
        status.insert("observedGeneration".into(), g.clone());
    }
    status.insert("replicas".into(), json!(in_range.len()));
    if ready > 0 {
        status.insert("readyReplicas".into(), json!(ready));
    }
    status.insert("currentReplicas".into(), json!(current));
    status.insert("updatedReplicas".into(), json!(updated));
    status.insert("currentRevision".into(), json!(current_revision));
    status.insert("updateRevision".into(), json!(update_revision));
    status.insert("collisionCount".into(), json!(0));
    status.insert("availableReplicas".into(), json!(ready));
    write_status(cluster, "statefulsets.apps", sts, Value::Object(status));
}
