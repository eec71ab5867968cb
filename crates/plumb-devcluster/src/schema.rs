//! How lists merge, per kind and field path: the merge keys the built-in
//! types declare (`patchMergeKey` / `x-kubernetes-list-map-keys`), and the
//! list types CRD schemas declare.
//!
//! Both strategic merge patch and server-side apply consult this table; a
//! list not described here is atomic (replaced whole), as for a CRD without
//! a list type.

use serde_json::Value;

/// How a list merges.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// Items are maps identified by these keys (the first is the SMP merge key).
    Map(Vec<String>),
    /// Items are scalars, merged as a set.
    Set,
}

/// The schema context a merge runs under.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Schema<'a> {
    /// A built-in kind, identified by its Kind.
    Builtin(&'a str),
    /// A custom resource with (optionally) its CRD's OpenAPI schema.
    Custom(Option<&'a Value>),
}

/// The default value a list-map key takes when absent (so `ports` items
/// without `protocol` match `TCP`).
pub(crate) fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| Value::String("TCP".into()))
}

fn keys(k: &[&str]) -> ListKind {
    ListKind::Map(k.iter().map(|s| s.to_string()).collect())
}

/// `path` holds the field names from the object root to the list, without indices.
pub(crate) fn list_kind(schema: Schema<'_>, path: &[&str]) -> ListKind {
    let Some(last) = path.last() else {
        return ListKind::Atomic;
    };
    if path.len() == 2 && path[0] == "metadata" {
        return match *last {
            "finalizers" => ListKind::Set,
            "ownerReferences" => keys(&["uid"]),
            _ => ListKind::Atomic,
        };
    }
    match schema {
        Schema::Builtin(kind) => builtin_list_kind(kind, path, last),
        Schema::Custom(Some(s)) => custom_list_kind(s, path),
        Schema::Custom(None) => ListKind::Atomic,
    }
}

fn builtin_list_kind(kind: &str, path: &[&str], last: &str) -> ListKind {
    let in_container = path.len() >= 2
        && matches!(
            path[path.len() - 2],
            "containers" | "initContainers" | "ephemeralContainers"
        );
    match last {
        "containers" | "initContainers" | "ephemeralContainers" => keys(&["name"]),
        "ports" if in_container => keys(&["containerPort", "protocol"]),
        "ports" if kind == "Service" && path == ["spec", "ports"] => keys(&["port", "protocol"]),
        "env" if in_container => keys(&["name"]),
        "volumeMounts" if in_container => keys(&["mountPath"]),
        "volumeDevices" if in_container => keys(&["devicePath"]),
        "resizePolicy" if in_container => keys(&["resourceName"]),
        "volumes" => keys(&["name"]),
        "imagePullSecrets" => keys(&["name"]),
        "hostAliases" => keys(&["ip"]),
        "resourceClaims" => keys(&["name"]),
        "schedulingGates" => keys(&["name"]),
        "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
        "conditions" if path.first() == Some(&"status") => keys(&["type"]),
        "secrets" if kind == "ServiceAccount" => keys(&["name"]),
        "finalizers" if kind == "Namespace" => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

/// Walks a CRD OpenAPI schema to the list and reads `x-kubernetes-list-type`.
fn custom_list_kind(schema: &Value, path: &[&str]) -> ListKind {
    let mut cur = schema;
    for seg in path {
        let next = cur
            .get("properties")
            .and_then(|p| p.get(*seg))
            .or_else(|| cur.get("additionalProperties").filter(|a| a.is_object()))
            .or_else(|| {
                // Stepping through a list: descend into its item schema first.
                cur.get("items")
                    .and_then(|i| i.get("properties"))
                    .and_then(|p| p.get(*seg))
            });
        match next {
            Some(n) => cur = n,
            None => return ListKind::Atomic,
        }
    }
    match cur.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => ListKind::Map(
            cur.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("set") => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

/// The identity of a list-map item: its key fields (with defaults filled in).
pub(crate) fn item_key(item: &Value, keys: &[String]) -> Option<serde_json::Map<String, Value>> {
    let obj = item.as_object()?;
    let mut out = serde_json::Map::new();
    for k in keys {
        match obj.get(k).cloned().or_else(|| key_default(k)) {
            Some(v) => {
                out.insert(k.clone(), v);
            }
            None if out.is_empty() && k == &keys[0] => return None,
            None => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_ports_key_by_port_and_protocol() {
        let k = list_kind(
            Schema::Builtin("Deployment"),
            &["spec", "template", "spec", "containers", "ports"],
        );
        assert_eq!(k, keys(&["containerPort", "protocol"]));
        let item = json!({"containerPort": 80});
        let ListKind::Map(ks) = k else { panic!() };
        assert_eq!(
            Value::Object(item_key(&item, &ks).expect("key")),
            json!({"containerPort": 80, "protocol": "TCP"})
        );
    }

    #[test]
    fn crd_list_type_is_read_from_schema() {
        let s = json!({"properties": {"spec": {"properties": {"items": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]}}}}});
        assert_eq!(
            list_kind(Schema::Custom(Some(&s)), &["spec", "items"]),
            keys(&["id"])
        );
        assert_eq!(
            list_kind(Schema::Custom(None), &["spec", "items"]),
            ListKind::Atomic
        );
    }
}
