//! `meta.k8s.io/v1` Table responses for `kubectl get`: the built-in column
//! sets of common kinds (wide columns at priority 1), CRD printer columns,
//! and NAME/AGE for everything else.

use serde_json::{Value, json};

use crate::request::Query;
use crate::resources::ResourceType;
use crate::store::meta_str;

/// Go's `duration.HumanDuration`, as kubectl prints ages.
pub(crate) fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn age(obj: &Value) -> String {
    age_of(meta_str(obj, "creationTimestamp"))
}

fn age_of(ts: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => human_duration((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()),
        Err(_) => "<unknown>".into(),
    }
}

fn col(name: &str, ty: &str, priority: u8) -> Value {
    let mut c =
        json!({"name": name, "type": ty, "format": "", "description": name, "priority": priority});
    if name == "Name" {
        c["format"] = json!("name");
        c["description"] = json!(
            "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
        );
    }
    c
}

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn n(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(s: String) -> Value {
    if s.is_empty() {
        json!("<none>")
    } else {
        json!(s)
    }
}

fn containers_images(obj: &Value, pointer: &str) -> (String, String) {
    let cs = obj
        .pointer(pointer)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = cs.iter().map(|c| s(c.get("name"))).collect();
    let images: Vec<String> = cs.iter().map(|c| s(c.get("image"))).collect();
    (names.join(","), images.join(","))
}

fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return String::new() };
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", s(Some(v))))
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty()
        && let Some(m) = sel.as_object()
        && sel.get("matchExpressions").is_none()
    {
        parts = m
            .iter()
            .map(|(k, v)| format!("{k}={}", s(Some(v))))
            .collect();
    }
    parts.join(",")
}

fn pod_status(obj: &Value) -> (String, String, i64) {
    let statuses = obj
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = obj
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = statuses
        .iter()
        .filter(|c| c.get("ready") == Some(&json!(true)))
        .count();
    let restarts: i64 = statuses.iter().map(|c| n(c.get("restartCount"))).sum();
    let mut reason = s(obj.pointer("/status/phase"));
    for c in &statuses {
        if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            reason = r.to_string();
        } else if let Some(r) = c
            .pointer("/state/terminated/reason")
            .and_then(Value::as_str)
        {
            reason = r.to_string();
        }
    }
    if !meta_str(obj, "deletionTimestamp").is_empty() {
        reason = "Terminating".into();
    }
    (format!("{ready}/{total}"), reason, restarts)
}

fn service_ports(obj: &Value) -> String {
    let ports = obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let out: Vec<String> = ports
        .iter()
        .map(|p| {
            let np = p
                .get("nodePort")
                .map(|v| format!(":{}", s(Some(v))))
                .unwrap_or_default();
            format!("{}{np}/{}", s(p.get("port")), s(p.get("protocol")))
        })
        .collect();
    out.join(",")
}

/// Column definitions and one row's cells for a built-in kind.
fn builtin(kind: &str) -> Option<Vec<Value>> {
    let c = |n: &str| col(n, "string", 0);
    let i = |n: &str| col(n, "integer", 0);
    let w = |n: &str| col(n, "string", 1);
    Some(match kind {
        "Pod" => vec![
            c("Name"),
            c("Ready"),
            c("Status"),
            i("Restarts"),
            c("Age"),
            w("IP"),
            w("Node"),
            w("Nominated Node"),
            w("Readiness Gates"),
        ],
        "Deployment" => vec![
            c("Name"),
            c("Ready"),
            i("Up-to-date"),
            i("Available"),
            c("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        "ReplicaSet" => vec![
            c("Name"),
            i("Desired"),
            i("Current"),
            i("Ready"),
            c("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        "StatefulSet" => vec![
            c("Name"),
            c("Ready"),
            c("Age"),
            w("Containers"),
            w("Images"),
        ],
        "DaemonSet" => vec![
            c("Name"),
            i("Desired"),
            i("Current"),
            i("Ready"),
            i("Up-to-date"),
            i("Available"),
            c("Node Selector"),
            c("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        "Job" => vec![
            c("Name"),
            c("Status"),
            c("Completions"),
            c("Duration"),
            c("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        "CronJob" => vec![
            c("Name"),
            c("Schedule"),
            c("Timezone"),
            c("Suspend"),
            i("Active"),
            c("Last Schedule"),
            c("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        "Service" => {
            vec![
                c("Name"),
                c("Type"),
                c("Cluster-IP"),
                c("External-IP"),
                c("Port(s)"),
                c("Age"),
                w("Selector"),
            ]
        }
        "ConfigMap" => vec![c("Name"), i("Data"), c("Age")],
        "Secret" => vec![c("Name"), c("Type"), i("Data"), c("Age")],
        "Namespace" => vec![c("Name"), c("Status"), c("Age")],
        "ServiceAccount" => vec![c("Name"), i("Secrets"), c("Age")],
        "PersistentVolumeClaim" => vec![
            c("Name"),
            c("Status"),
            c("Volume"),
            c("Capacity"),
            c("Access Modes"),
            c("StorageClass"),
            c("VolumeAttributesClass"),
            c("Age"),
            w("VolumeMode"),
        ],
        "Ingress" => vec![
            c("Name"),
            c("Class"),
            c("Hosts"),
            c("Address"),
            c("Ports"),
            c("Age"),
        ],
        "CustomResourceDefinition" => vec![c("Name"), col("Created At", "date", 0)],
        "PodDisruptionBudget" => vec![
            c("Name"),
            c("Min Available"),
            c("Max Unavailable"),
            i("Allowed Disruptions"),
            c("Age"),
        ],
        "Event" => vec![
            c("Last Seen"),
            c("Type"),
            c("Reason"),
            c("Object"),
            c("Message"),
        ],
        "Node" => vec![c("Name"), c("Status"), c("Roles"), c("Age"), c("Version")],
        _ => return None,
    })
}

fn builtin_cells(kind: &str, o: &Value) -> Vec<Value> {
    let name = json!(meta_str(o, "name"));
    let st = |p: &str| o.pointer(p);
    match kind {
        "Pod" => {
            let (ready, status, restarts) = pod_status(o);
            vec![
                name,
                json!(ready),
                json!(status),
                json!(restarts),
                json!(age(o)),
                or_none(s(st("/status/podIP"))),
                or_none(s(st("/spec/nodeName"))),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        "Deployment" => {
            let (cs, is) = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(st("/status/readyReplicas")),
                    n(st("/spec/replicas"))
                )),
                json!(n(st("/status/updatedReplicas"))),
                json!(n(st("/status/availableReplicas"))),
                json!(age(o)),
                json!(cs),
                json!(is),
                or_none(selector_string(st("/spec/selector"))),
            ]
        }
        "ReplicaSet" => {
            let (cs, is) = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(n(st("/spec/replicas"))),
                json!(n(st("/status/replicas"))),
                json!(n(st("/status/readyReplicas"))),
                json!(age(o)),
                json!(cs),
                json!(is),
                or_none(selector_string(st("/spec/selector"))),
            ]
        }
        "StatefulSet" => {
            let (cs, is) = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(st("/status/readyReplicas")),
                    n(st("/spec/replicas"))
                )),
                json!(age(o)),
                json!(cs),
                json!(is),
            ]
        }
        "DaemonSet" => {
            let (cs, is) = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(n(st("/status/desiredNumberScheduled"))),
                json!(n(st("/status/currentNumberScheduled"))),
                json!(n(st("/status/numberReady"))),
                json!(n(st("/status/updatedNumberScheduled"))),
                json!(n(st("/status/numberAvailable"))),
                or_none(selector_string(st("/spec/template/spec/nodeSelector"))),
                json!(age(o)),
                json!(cs),
                json!(is),
                or_none(selector_string(st("/spec/selector"))),
            ]
        }
        "Job" => {
            let (cs, is) = containers_images(o, "/spec/template/spec/containers");
            let conds = st("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let has = |t: &str| {
                conds.iter().any(|c| {
                    c.get("type") == Some(&json!(t)) && c.get("status") == Some(&json!("True"))
                })
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else if has("Suspended") {
                "Suspended"
            } else {
                "Running"
            };
            let duration = match (
                st("/status/startTime").and_then(Value::as_str),
                st("/status/completionTime").and_then(Value::as_str),
            ) {
                (Some(a), Some(b)) => {
                    match (
                        chrono::DateTime::parse_from_rfc3339(a),
                        chrono::DateTime::parse_from_rfc3339(b),
                    ) {
                        (Ok(a), Ok(b)) => human_duration((b - a).num_seconds()),
                        _ => String::new(),
                    }
                }
                (Some(a), None) => age_of(a),
                _ => String::new(),
            };
            vec![
                name,
                json!(status),
                json!(format!(
                    "{}/{}",
                    n(st("/status/succeeded")),
                    n(st("/spec/completions")).max(1)
                )),
                json!(duration),
                json!(age(o)),
                json!(cs),
                json!(is),
                or_none(selector_string(st("/spec/selector"))),
            ]
        }
        "CronJob" => {
            let (cs, is) = containers_images(o, "/spec/jobTemplate/spec/template/spec/containers");
            let last = st("/status/lastScheduleTime")
                .and_then(Value::as_str)
                .map(age_of)
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(s(st("/spec/schedule"))),
                or_none(s(st("/spec/timeZone"))),
                json!(s(st("/spec/suspend"))),
                json!(
                    st("/status/active")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                ),
                json!(last),
                json!(age(o)),
                json!(cs),
                json!(is),
                or_none(selector_string(st("/spec/jobTemplate/spec/selector"))),
            ]
        }
        "Service" => {
            let ext: Vec<String> = st("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|i| s(i.get("ip").or(i.get("hostname"))))
                        .collect()
                })
                .unwrap_or_default();
            let ty = s(st("/spec/type"));
            let external = if !ext.is_empty() {
                ext.join(",")
            } else if ty == "LoadBalancer" {
                "<pending>".into()
            } else if ty == "ExternalName" {
                s(st("/spec/externalName"))
            } else {
                "<none>".into()
            };
            vec![
                name,
                json!(ty),
                or_none(s(st("/spec/clusterIP"))),
                json!(external),
                or_none(service_ports(o)),
                json!(age(o)),
                or_none(selector_string(st("/spec/selector"))),
            ]
        }
        "ConfigMap" => {
            let count = st("/data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + st("/binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(count), json!(age(o))]
        }
        "Secret" => vec![
            name,
            json!(s(st("/type"))),
            json!(
                st("/data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
            ),
            json!(age(o)),
        ],
        "Namespace" => vec![name, json!(s(st("/status/phase"))), json!(age(o))],
        "ServiceAccount" => {
            vec![
                name,
                json!(st("/secrets").and_then(Value::as_array).map_or(0, Vec::len)),
                json!(age(o)),
            ]
        }
        "PersistentVolumeClaim" => {
            let modes: Vec<String> = st("/status/accessModes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|m| match m.as_str() {
                            Some("ReadWriteOnce") => "RWO".into(),
                            Some("ReadOnlyMany") => "ROX".into(),
                            Some("ReadWriteMany") => "RWX".into(),
                            Some("ReadWriteOncePod") => "RWOP".into(),
                            other => s(other.map(|x| json!(x)).as_ref()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(s(st("/status/phase"))),
                json!(s(st("/spec/volumeName"))),
                json!(s(st("/status/capacity/storage"))),
                json!(modes.join(",")),
                or_none(s(st("/spec/storageClassName"))),
                json!("<unset>"),
                json!(age(o)),
                json!(s(st("/spec/volumeMode"))),
            ]
        }
        "Ingress" => {
            let hosts: Vec<String> = st("/spec/rules")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|r| {
                            let h = s(r.get("host"));
                            if h.is_empty() { "*".to_string() } else { h }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let addr: Vec<String> = st("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|i| s(i.get("ip").or(i.get("hostname"))))
                        .collect()
                })
                .unwrap_or_default();
            let ports = if st("/spec/tls").is_some() {
                "80, 443"
            } else {
                "80"
            };
            vec![
                name,
                or_none(s(st("/spec/ingressClassName"))),
                json!(if hosts.is_empty() {
                    "*".into()
                } else {
                    hosts.join(",")
                }),
                json!(addr.join(",")),
                json!(ports),
                json!(age(o)),
            ]
        }
        "CustomResourceDefinition" => vec![name, json!(meta_str(o, "creationTimestamp"))],
        "PodDisruptionBudget" => vec![
            name,
            json!(
                st("/spec/minAvailable")
                    .map(|v| s(Some(v)))
                    .unwrap_or_else(|| "N/A".into())
            ),
            json!(
                st("/spec/maxUnavailable")
                    .map(|v| s(Some(v)))
                    .unwrap_or_else(|| "N/A".into())
            ),
            json!(n(st("/status/disruptionsAllowed"))),
            json!(age(o)),
        ],
        "Event" => {
            let seen = st("/lastTimestamp")
                .or(st("/eventTime"))
                .and_then(Value::as_str)
                .map(age_of)
                .unwrap_or_else(|| age(o));
            let kind = s(st("/involvedObject/kind").or(st("/regarding/kind"))).to_ascii_lowercase();
            let obj_name = s(st("/involvedObject/name").or(st("/regarding/name")));
            vec![
                json!(seen),
                json!(s(st("/type"))),
                json!(s(st("/reason"))),
                json!(format!("{kind}/{obj_name}")),
                json!(s(st("/message").or(st("/note")))),
            ]
        }
        "Node" => vec![
            name,
            json!("Ready"),
            json!("control-plane"),
            json!(age(o)),
            json!("v1.31.0"),
        ],
        _ => vec![name, json!(age(o))],
    }
}

/// The JSONPath subset CRD printer columns use: `.a.b`, `.a[0].b`, `.a[*].b` and filters
/// such as `.status.conditions[?(@.type=="Ready")].status` (`==` and `!=` on one field).
fn json_path(obj: &Value, path: &str) -> Vec<Value> {
    let mut cur = vec![obj.clone()];
    let cleaned = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    for seg in path_segments(cleaned) {
        let (field, idx) = match seg.split_once('[') {
            Some((f, rest)) => (f, Some(rest.strip_suffix(']').unwrap_or(rest))),
            None => (seg, None),
        };
        let mut next = vec![];
        for v in cur {
            let Some(x) = (if field.is_empty() {
                Some(v.clone())
            } else {
                v.get(field).cloned()
            }) else {
                continue;
            };
            match idx {
                None => next.push(x),
                Some("*") => next.extend(x.as_array().cloned().unwrap_or_default()),
                Some(filter) if filter.starts_with('?') => next.extend(
                    x.as_array()
                        .into_iter()
                        .flatten()
                        .filter(|item| filter_matches(filter, item))
                        .cloned(),
                ),
                Some(i) => {
                    if let (Ok(i), Some(a)) = (i.parse::<usize>(), x.as_array())
                        && let Some(item) = a.get(i)
                    {
                        next.push(item.clone());
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

/// Splits a path at the dots outside `[...]`.
fn path_segments(path: &str) -> Vec<&str> {
    let (mut segments, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in path.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                if i > start {
                    segments.push(&path[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < path.len() {
        segments.push(&path[start..]);
    }
    segments
}

/// Whether `item` passes `?(@.field=="value")` (or `!=`); anything else matches nothing.
fn filter_matches(filter: &str, item: &Value) -> bool {
    let inner = filter
        .trim_start_matches('?')
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')');
    let (left, right, equal) = match (inner.split_once("!="), inner.split_once("==")) {
        (Some((l, r)), _) => (l, r, false),
        (None, Some((l, r))) => (l, r, true),
        _ => return false,
    };
    let Some(field) = left.trim().strip_prefix("@.") else {
        return false;
    };
    let wanted = right
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '\\');
    let actual = match item.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => return !equal,
    };
    (actual == wanted) == equal
}

#[cfg(test)]
mod json_path_tests {
    use super::*;

    #[test]
    fn filters_pick_the_matching_condition() {
        let o = json!({"status": {"conditions": [
            {"type": "Reconciling", "status": "False"},
            {"type": "Ready", "status": "True", "message": "Applied revision: main@sha1:abc"}]}});
        assert_eq!(
            json_path(&o, r#".status.conditions[?(@.type=="Ready")].status"#),
            vec![json!("True")]
        );
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type=='Ready')].message"),
            vec![json!("Applied revision: main@sha1:abc")]
        );
        assert_eq!(
            json_path(&o, r#".status.conditions[?(@.type!="Ready")].type"#),
            vec![json!("Reconciling")]
        );
        assert!(json_path(&o, ".status.conditions[?(@.type=\"Missing\")].status").is_empty());
        assert_eq!(
            json_path(&o, ".status.conditions[1].type"),
            vec![json!("Ready")]
        );
        assert!(json_path(&o, ".status.conditions[?garbage]").is_empty());
    }
}

fn custom_columns(rt: &ResourceType) -> Vec<Value> {
    let mut cols = vec![col("Name", "string", 0)];
    for pc in &rt.printer_columns {
        let ty = s(pc.get("type"));
        let mut c = col(
            &s(pc.get("name")),
            if ty == "date" { "date" } else { &ty },
            n(pc.get("priority")) as u8,
        );
        c["description"] = json!(s(pc.get("description")));
        c["format"] = json!(s(pc.get("format")));
        cols.push(c);
    }
    if rt.printer_columns.is_empty() {
        cols.push(col("Age", "date", 0));
    }
    cols
}

fn custom_cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let mut cells = vec![json!(meta_str(o, "name"))];
    for pc in &rt.printer_columns {
        let vals = json_path(o, &s(pc.get("jsonPath")));
        let cell = match (vals.as_slice(), s(pc.get("type")).as_str()) {
            ([], _) => Value::Null,
            ([v], "date") => json!(v.as_str().map(age_of).unwrap_or_default()),
            ([v], _) => v.clone(),
            (many, _) => json!(
                many.iter()
                    .map(|v| s(Some(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        cells.push(cell);
    }
    if rt.printer_columns.is_empty() {
        cells.push(json!(age(o)));
    }
    cells
}

fn row_object(o: &Value, q: &Query) -> Option<Value> {
    match q.get("includeObject").unwrap_or("Metadata") {
        "None" => None,
        "Object" => Some(o.clone()),
        _ => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
        })),
    }
}

type CellFn<'a> = Box<dyn Fn(&Value) -> Vec<Value> + 'a>;

/// Builds a Table for objects of one type.
pub(crate) fn table(rt: &ResourceType, objs: &[Value], rv: &str, q: &Query) -> Value {
    let (columns, cells): (Vec<Value>, CellFn<'_>) = if rt.builtin {
        match builtin(&rt.kind) {
            Some(c) => {
                let kind = rt.kind.clone();
                (c, Box::new(move |o| builtin_cells(&kind, o)))
            }
            None => (
                vec![col("Name", "string", 0), col("Age", "string", 0)],
                Box::new(|o| vec![json!(meta_str(o, "name")), json!(age(o))]),
            ),
        }
    } else {
        (custom_columns(rt), Box::new(move |o| custom_cells(rt, o)))
    };
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let mut r = json!({"cells": cells(o)});
            if let Some(obj) = row_object(o, q) {
                r["object"] = obj;
            }
            r
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_print_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(130), "2m10s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 120), "3h2m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }

    #[test]
    fn printer_column_paths() {
        let o = json!({"spec": {"items": [{"n": 1}, {"n": 2}]}});
        assert_eq!(json_path(&o, ".spec.items[*].n"), vec![json!(1), json!(2)]);
        assert_eq!(json_path(&o, ".spec.items[1].n"), vec![json!(2)]);
    }
}
