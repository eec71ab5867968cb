//! Strategic merge patch with kyaml's merge semantics: maps merge recursively, `null` deletes,
//! lists merge by key where the schema says so (see [`crate::merge_keys`]) and are replaced
//! otherwise. Only `$patch: delete|replace|merge` is a directive: like kyaml, other `$` keys
//! (`$retainKeys`, `$setElementOrder/...`) are kept as ordinary data. Merged keyed lists put the
//! patch's elements first, in patch order, then the remaining original elements (kustomize
//! merges with "prepend" list direction).

use serde_json::{Map, Value};

use crate::merge_keys::list_strategy;

pub(crate) struct Ctx<'a> {
    pub group: &'a str,
    pub kind: &'a str,
}

/// Outcome of merging into an object: kept, or deleted by `$patch: delete`.
#[derive(PartialEq, Debug)]
pub(crate) enum Outcome {
    Kept,
    Deleted,
}

pub(crate) fn merge_object(dest: &mut Value, patch: &Value, ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let mut path = Vec::new();
    merge_value(dest, patch, ctx, &mut path)
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

fn merge_value(dest: &mut Value, patch: &Value, ctx: &Ctx<'_>, path: &mut Vec<String>) -> Result<Outcome, String> {
    let Value::Object(pm) = patch else {
        *dest = clean(patch);
        return Ok(Outcome::Kept);
    };
    match directive(patch) {
        Some("delete") => return Ok(Outcome::Deleted),
        Some("replace") => {
            *dest = clean(patch);
            return Ok(Outcome::Kept);
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown $patch directive {other:?}")),
    }
    if !dest.is_object() {
        *dest = Value::Object(Map::new());
    }
    let Value::Object(dm) = dest else {
        return Ok(Outcome::Kept);
    };
    for (k, pv) in pm {
        if k == "$patch" {
            continue;
        }
        if pv.is_null() {
            dm.remove(k);
            continue;
        }
        path.push(k.clone());
        match pv {
            Value::Object(_) => {
                if let Some(dv) = dm.get_mut(k).filter(|d| d.is_object()) {
                    if merge_value(dv, pv, ctx, path)? == Outcome::Deleted {
                        dm.remove(k);
                    }
                } else if directive(pv) != Some("delete") {
                    let mut fresh = Value::Object(Map::new());
                    merge_value(&mut fresh, pv, ctx, path)?;
                    dm.insert(k.clone(), fresh);
                } else {
                    dm.remove(k);
                }
            }
            Value::Array(items) => {
                let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                let strategy = list_strategy(ctx.group, ctx.kind, &refs);
                let merged = match (strategy, dm.get_mut(k)) {
                    (Some(s), Some(Value::Array(existing))) => {
                        merge_list(existing, items, s.merge_key, ctx, path)?;
                        None
                    }
                    _ => Some(clean_list(items)),
                };
                if let Some(v) = merged {
                    dm.insert(k.clone(), v);
                }
            }
            scalar => {
                dm.insert(k.clone(), scalar.clone());
            }
        }
        path.pop();
    }
    Ok(Outcome::Kept)
}

fn merge_list(
    existing: &mut Vec<Value>,
    items: &[Value],
    key: Option<&str>,
    ctx: &Ctx<'_>,
    path: &mut Vec<String>,
) -> Result<(), String> {
    if items.iter().any(|i| directive(i) == Some("replace")) {
        *existing = items.iter().filter(|i| directive(i) != Some("replace")).map(clean).collect();
        return Ok(());
    }
    let Some(key) = key else {
        for item in items {
            if !existing.contains(item) {
                existing.push(clean(item));
            }
        }
        return Ok(());
    };
    let mut merged: Vec<Value> = Vec::new();
    let mut used = vec![false; existing.len()];
    for item in items {
        let Some(kv) = item.get(key) else {
            merged.push(clean(item));
            continue;
        };
        let pos = existing.iter().position(|e| e.get(key) == Some(kv));
        if let Some(p) = pos
            && let Some(u) = used.get_mut(p)
        {
            *u = true;
        }
        if directive(item) == Some("delete") {
            continue;
        }
        match pos.and_then(|p| existing.get(p)) {
            Some(orig) => {
                let mut target = orig.clone();
                if merge_value(&mut target, item, ctx, path)? == Outcome::Kept {
                    merged.push(target);
                }
            }
            None => merged.push(clean(item)),
        }
    }
    for (i, e) in existing.iter().enumerate() {
        if !used.get(i).copied().unwrap_or(false) {
            merged.push(e.clone());
        }
    }
    *existing = merged;
    Ok(())
}

/// A patch value with directives and nulls removed, as it lands where nothing was to merge.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                if k == "$patch" || x.is_null() {
                    continue;
                }
                out.insert(k.clone(), clean(x));
            }
            Value::Object(out)
        }
        Value::Array(items) => clean_list(items),
        other => other.clone(),
    }
}

fn clean_list(items: &[Value]) -> Value {
    Value::Array(
        items.iter().filter(|i| !matches!(directive(i), Some("delete") | Some("replace"))).map(clean).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_containers_by_name() {
        let mut dest = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
            {"name": "b", "image": "y"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "env": [{"name": "B", "value": "2"}]},
            {"name": "b", "$patch": "delete"}
        ]}}}});
        let ctx = Ctx { group: "apps", kind: "Deployment" };
        assert_eq!(merge_object(&mut dest, &patch, &ctx), Ok(Outcome::Kept));
        assert_eq!(
            dest,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "a", "image": "x", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}
            ]}}}})
        );
    }

    #[test]
    fn null_deletes_and_lists_of_crs_replace() {
        let mut dest = json!({"spec": {"items": [{"name": "a"}], "drop": 1}});
        let patch = json!({"spec": {"items": [{"name": "b"}], "drop": null}});
        let ctx = Ctx { group: "example.com", kind: "Foo" };
        assert_eq!(merge_object(&mut dest, &patch, &ctx), Ok(Outcome::Kept));
        assert_eq!(dest, json!({"spec": {"items": [{"name": "b"}]}}));
    }
}
