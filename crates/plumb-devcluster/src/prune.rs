//! Pruning of unknown fields in custom resources, as kube-apiserver does for
//! CRDs with a structural schema: fields the schema does not declare are
//! dropped unless `x-kubernetes-preserve-unknown-fields` is set.

use serde_json::Value;

fn preserves(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

/// Prunes a whole custom resource against its `openAPIV3Schema`; returns
/// the paths of the fields it dropped (for `fieldValidation=Strict`).
pub(crate) fn prune_object(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut removed = vec![];
    prune_at(obj, schema, "", true, &mut removed);
    removed
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn prune_at(value: &mut Value, schema: &Value, path: &str, root: bool, removed: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let embedded =
                root || schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keep_unknown = preserves(schema)
                || additional.is_some_and(|a| a.is_object() || a == &Value::Bool(true));
            let system = |k: &str| embedded && matches!(k, "apiVersion" | "kind" | "metadata");
            for (k, v) in map.iter_mut() {
                if system(k) {
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    prune_at(v, s, &join(path, k), false, removed);
                } else if let Some(s) = additional.filter(|a| a.is_object()) {
                    prune_at(v, s, &join(path, k), false, removed);
                }
            }
            if !keep_unknown {
                map.retain(|k, _| {
                    let keep = system(k) || props.is_some_and(|p| p.contains_key(k));
                    if !keep {
                        removed.push(join(path, k));
                    }
                    keep
                });
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(item, s, &format!("{path}[{i}]"), false, removed);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_dropped_unless_preserved() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "string"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"}}}}
            }}
        }});
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "junk": 1,
            "spec": {"size": "s", "bogus": true, "free": {"any": 1}, "labels": {"a": "b"}, "items": [{"n": 1, "m": 2}]}});
        let removed = prune_object(&mut obj, &schema);
        assert_eq!(removed, ["spec.items[0].m", "spec.bogus", "junk"]);
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"size": "s", "free": {"any": 1}, "labels": {"a": "b"}, "items": [{"n": 1}]}})
        );
    }
}
