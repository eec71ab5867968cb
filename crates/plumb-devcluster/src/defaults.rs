//! Defaulting, as the real API server applies it on every write, for the
//! fields clients commonly look at. Deterministic: the same input always
//! gives the same output, so re-applying a manifest is a no-op.

use base64::Engine;
use serde_json::{Map, Value, json};

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let m = v.as_object_mut()?;
    let e = m.entry(key).or_insert_with(|| json!({}));
    if e.is_null() {
        *e = json!({});
    }
    e.as_object_mut()
}

fn default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if m.get(k).is_none_or(Value::is_null) {
        m.insert(k.to_string(), v);
    }
}

/// Pod spec defaults (containers, restart policy, DNS, scheduler).
pub(crate) fn pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    default(s, "restartPolicy", json!("Always"));
    default(s, "terminationGracePeriodSeconds", json!(30));
    default(s, "dnsPolicy", json!("ClusterFirst"));
    default(s, "securityContext", json!({}));
    default(s, "schedulerName", json!("default-scheduler"));
    for field in ["containers", "initContainers"] {
        let Some(cs) = s.get_mut(field).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            default(c, "terminationMessagePath", json!("/dev/termination-log"));
            default(c, "terminationMessagePolicy", json!("File"));
            default(c, "resources", json!({}));
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            let tag = image.rsplit('/').next().unwrap_or("");
            let policy = if image.contains('@') || (tag.contains(':') && !tag.ends_with(":latest"))
            {
                "IfNotPresent"
            } else {
                "Always"
            };
            default(c, "imagePullPolicy", json!(policy));
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    default(p, "protocol", json!("TCP"));
                }
            }
        }
    }
}

fn template(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template")
        && let Some(ps) = obj_mut(t, "spec")
    {
        let mut v = Value::Object(std::mem::take(ps));
        pod_spec(&mut v);
        if let Value::Object(m) = v {
            *ps = m;
        }
    }
}

/// Applies the defaults of one kind (`uid` is known on create only).
pub(crate) fn apply(kind: &str, obj: &mut Value) {
    match kind {
        "Deployment" => {
            let Some(spec) = obj_mut(obj, "spec") else {
                return;
            };
            default(spec, "replicas", json!(1));
            default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            template(spec);
        }
        "ReplicaSet" => {
            let Some(spec) = obj_mut(obj, "spec") else {
                return;
            };
            default(spec, "replicas", json!(1));
            template(spec);
        }
        "StatefulSet" => {
            let Some(spec) = obj_mut(obj, "spec") else {
                return;
            };
            default(spec, "replicas", json!(1));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            template(spec);
        }
        "DaemonSet" => {
            let Some(spec) = obj_mut(obj, "spec") else {
                return;
            };
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            template(spec);
        }
        "Job" => {
            let Some(spec) = obj_mut(obj, "spec") else {
                return;
            };
            default(spec, "parallelism", json!(1));
            default(spec, "completions", json!(1));
            default(spec, "backoffLimit", json!(6));
            default(spec, "completionMode", json!("NonIndexed"));
            default(spec, "suspend", json!(false));
            default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
            template(spec);
        }
        "CronJob" => {
            let Some(spec) = obj_mut(obj, "spec") else {
                return;
            };
            default(spec, "concurrencyPolicy", json!("Allow"));
            default(spec, "suspend", json!(false));
            default(spec, "successfulJobsHistoryLimit", json!(3));
            default(spec, "failedJobsHistoryLimit", json!(1));
            if let Some(jt) = spec.get_mut("jobTemplate")
                && let Some(js) = obj_mut(jt, "spec")
            {
                template(js);
            }
        }
        "Pod" => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec);
            }
        }
        "Service" => service(obj),
        "Secret" => secret(obj),
        "Namespace" => {
            let name = crate::store::meta_str(obj, "name").to_string();
            if let Some(meta) = obj_mut(obj, "metadata")
                && let Some(labels) = {
                    let l = meta.entry("labels").or_insert_with(|| json!({}));
                    l.as_object_mut()
                }
            {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            if let Some(spec) = obj_mut(obj, "spec") {
                default(spec, "finalizers", json!(["kubernetes"]));
            }
        }
        "PersistentVolumeClaim" => {
            if let Some(spec) = obj_mut(obj, "spec") {
                default(spec, "volumeMode", json!("Filesystem"));
            }
        }
        _ => {}
    }
}

fn service(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else {
        return;
    };
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if ty != "ExternalName" {
        default(spec, "internalTrafficPolicy", json!("Cluster"));
        default(spec, "ipFamilies", json!(["IPv4"]));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                default(p, "targetPort", port);
            }
        }
    }
}

fn secret(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    default(m, "type", json!("Opaque"));
    // stringData is write-only: it is folded into data, base64-encoded.
    if let Some(Value::Object(sd)) = m.shift_remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if data.is_null() {
            *data = json!({});
        }
        if let Some(d) = data.as_object_mut() {
            for (k, v) in sd {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                d.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_idempotent() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx:1.25"}]}}}});
        apply("Deployment", &mut d);
        let once = d.clone();
        apply("Deployment", &mut d);
        assert_eq!(d, once);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
    }

    #[test]
    fn secret_string_data_is_encoded() {
        let mut s = json!({"stringData": {"k": "v"}});
        apply("Secret", &mut s);
        assert_eq!(s, json!({"type": "Opaque", "data": {"k": "dg=="}}));
    }
}
