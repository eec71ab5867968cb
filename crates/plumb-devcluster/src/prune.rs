//! Pruning of unknown fields in custom resources, as kube-apiserver does for
//! CRDs with a structural schema: fields the schema does not declare are
//! dropped unless `x-kubernetes-preserve-unknown-fields` is set.

use serde_json::Value;

fn preserves(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

/// Prunes a whole custom resource against its `openAPIV3Schema`.
pub(crate) fn prune_object(obj: &mut Value, schema: &Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    for (k, v) in map.iter_mut() {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(s) = schema.get("properties").and_then(|p| p.get(k)) {
            prune(v, s);
        }
    }
    if !preserves(schema) {
        let known = schema.get("properties").and_then(Value::as_object);
        map.retain(|k, _| {
            matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                || known.is_some_and(|p| p.contains_key(k))
        });
    }
}

fn prune(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true)) {
                prune_object(value, schema);
                return;
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (k, v) in map.iter_mut() {
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    prune(v, s);
                } else if let Some(s) = additional.filter(|a| a.is_object()) {
                    prune(v, s);
                }
            }
            let keep_unknown = preserves(schema)
                || additional.is_some_and(|a| a.is_object() || a == &Value::Bool(true));
            if !keep_unknown {
                map.retain(|k, _| props.is_some_and(|p| p.contains_key(k)));
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for i in items {
                    prune(i, s);
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
        prune_object(&mut obj, &schema);
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"size": "s", "free": {"any": 1}, "labels": {"a": "b"}, "items": [{"n": 1}]}})
        );
    }
}
