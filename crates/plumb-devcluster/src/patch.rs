//! PATCH engines: JSON patch (RFC 6902), JSON merge patch (RFC 7396) and
//! strategic merge patch with its `$patch`, `$setElementOrder`,
//! `$retainKeys` and `$deleteFromPrimitiveList` directives.

use serde_json::{Map, Value};

use crate::schema::{ListKind, Schema, list_kind};

/// Why a patch could not be applied (reported as 422/400 by the caller).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PatchError {
    #[error("invalid JSON patch: {0}")]
    BadJsonPatch(String),
    #[error("{0}")]
    JsonPatchFailed(String),
    #[error("unable to apply strategic merge patch: {0}")]
    Strategic(String),
}

/// Applies an RFC 6902 JSON patch.
pub(crate) fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let p: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::BadJsonPatch(e.to_string()))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &p).map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
    Ok(doc)
}

/// Applies an RFC 7396 merge patch.
pub(crate) fn merge_patch(original: &Value, patch: &Value) -> Value {
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    doc
}

/// Applies a strategic merge patch for a built-in kind.
pub(crate) fn strategic(original: &Value, patch: &Value, kind: &str) -> Result<Value, PatchError> {
    let schema = Schema::Builtin(kind);
    match merge_value(Some(original), patch, schema, &mut vec![])? {
        Some(v) => Ok(v),
        None => Ok(Value::Object(Map::new())),
    }
}

const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Removes directives from a value that is being added as is.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|i| i.get("$patch").is_none())
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Merges `patch` into `original`; `None` means "delete this value".
fn merge_value(
    original: Option<&Value>,
    patch: &Value,
    schema: Schema<'_>,
    path: &mut Vec<String>,
) -> Result<Option<Value>, PatchError> {
    let Value::Object(pm) = patch else {
        return Ok(Some(patch.clone()));
    };
    match pm.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(None),
        Some("replace") => return Ok(Some(strip(patch))),
        Some("merge") | None => {}
        Some(other) => {
            return Err(PatchError::Strategic(format!(
                "unknown patch type: {other}"
            )));
        }
    }
    let mut out = match original {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    for (k, pv) in pm {
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            out.shift_remove(k);
            continue;
        }
        path.push(k.clone());
        let merged = match pv {
            Value::Object(_) => merge_value(out.get(k), pv, schema, path)?,
            Value::Array(items) => Some(merge_list(out.get(k), items, schema, path)?),
            _ => Some(pv.clone()),
        };
        path.pop();
        match merged {
            Some(v) => {
                out.insert(k.clone(), v);
            }
            None => {
                out.shift_remove(k);
            }
        }
    }
    for (k, pv) in pm {
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            let doomed = pv.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(items)) = out.get_mut(field) {
                items.retain(|i| !doomed.contains(i));
            }
        }
    }
    for (k, pv) in pm {
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            path.push(field.to_string());
            let names: Vec<&str> = path.iter().map(String::as_str).collect();
            let kind = list_kind(schema, &names);
            path.pop();
            if let (Some(Value::Array(items)), Some(order)) = (out.get_mut(field), pv.as_array()) {
                reorder(items, order, &kind);
            }
        }
    }
    if let Some(retain) = pm.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(Some(Value::Object(out)))
}

fn merge_key(kind: &ListKind) -> Option<&str> {
    match kind {
        ListKind::Map(keys) => keys.first().map(String::as_str),
        _ => None,
    }
}

fn merge_list(
    original: Option<&Value>,
    items: &[Value],
    schema: Schema<'_>,
    path: &mut Vec<String>,
) -> Result<Value, PatchError> {
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    let kind = list_kind(schema, &names);
    let orig: Vec<Value> = match original {
        Some(Value::Array(a)) => a.clone(),
        _ => vec![],
    };
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(strip(&Value::Array(items.to_vec())));
    }
    match &kind {
        ListKind::Atomic => Ok(strip(&Value::Array(items.to_vec()))),
        ListKind::Set => {
            let mut out = orig;
            for i in items {
                if !out.contains(i) {
                    out.push(i.clone());
                }
            }
            Ok(Value::Array(out))
        }
        ListKind::Map(_) => {
            let Some(key) = merge_key(&kind) else {
                return Ok(Value::Array(items.to_vec()));
            };
            let mut out = orig;
            for item in items {
                let Some(kv) = item.get(key) else {
                    return Err(PatchError::Strategic(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    )));
                };
                let pos = out.iter().position(|o| o.get(key) == Some(kv));
                if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                    if let Some(i) = pos {
                        out.remove(i);
                    }
                    continue;
                }
                match pos {
                    Some(i) => {
                        if let Some(v) = merge_value(Some(&out[i]), item, schema, path)? {
                            out[i] = v;
                        } else {
                            out.remove(i);
                        }
                    }
                    None => out.push(strip(item)),
                }
            }
            Ok(Value::Array(out))
        }
    }
}

/// Orders list items as `$setElementOrder` says; items it does not name keep
/// their relative order after the named ones.
fn reorder(items: &mut Vec<Value>, order: &[Value], kind: &ListKind) {
    let key = merge_key(kind);
    let rank = |item: &Value| -> usize {
        order
            .iter()
            .position(|o| match key {
                Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
                None => o == item,
            })
            .unwrap_or(usize::MAX)
    };
    let mut ranked: Vec<(usize, usize, Value)> = items
        .drain(..)
        .enumerate()
        .map(|(i, v)| (rank(&v), i, v))
        .collect();
    ranked.sort_by_key(|(r, i, _)| (*r, *i));
    items.extend(ranked.into_iter().map(|(_, _, v)| v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let orig = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "z"}]}}}});
        let out = strategic(&orig, &patch, "Deployment").expect("patch");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "y"}, {"name": "a", "image": "z"}])
        );
    }

    #[test]
    fn strategic_directives() {
        let orig = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
            "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                     "template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}});
        let patch = json!({
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"y": null}},
            "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                     "template": {"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}}});
        let out = strategic(&orig, &patch, "Deployment").expect("patch");
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(out["metadata"]["labels"], json!({"x": "1"}));
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a"}])
        );
    }

    #[test]
    fn strategic_replace_directive_on_map() {
        let orig = json!({"data": {"a": "1", "b": "2"}});
        let patch = json!({"data": {"$patch": "replace", "c": "3"}});
        let out = strategic(&orig, &patch, "ConfigMap").expect("patch");
        assert_eq!(out["data"], json!({"c": "3"}));
    }

    #[test]
    fn merge_and_json_patch() {
        let orig = json!({"a": {"b": 1, "c": 2}});
        assert_eq!(
            merge_patch(&orig, &json!({"a": {"c": null}})),
            json!({"a": {"b": 1}})
        );
        let out = json_patch(
            &orig,
            &json!([{"op": "replace", "path": "/a/b", "value": 5}]),
        )
        .expect("json patch");
        assert_eq!(out["a"]["b"], 5);
        assert!(json_patch(&orig, &json!([{"op": "remove", "path": "/zz"}])).is_err());
    }
}
