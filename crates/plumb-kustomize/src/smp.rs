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
    pub version: &'a str,
    pub kind: &'a str,
    /// A custom schema (`openapi:`) replaces the built-in merge-key table.
    pub schema: Option<&'a crate::openapi::CustomSchema>,
}

/// Outcome of merging into an object: kept, or deleted by `$patch: delete`.
#[derive(PartialEq, Debug)]
pub(crate) enum Outcome {
    Kept,
    Deleted,
}

pub(crate) fn merge_object(
    dest: &mut Value,
    patch: &Value,
    ctx: &Ctx<'_>,
) -> Result<Outcome, String> {
    let mut path = Vec::new();
    merge_value(dest, patch, ctx, &mut path)
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

fn merge_value(
    dest: &mut Value,
    patch: &Value,
    ctx: &Ctx<'_>,
    path: &mut Vec<String>,
) -> Result<Outcome, String> {
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
                let merged = match dm.get_mut(k) {
                    Some(Value::Array(existing)) => {
                        let owned: Vec<String> = refs.iter().map(|r| (*r).to_string()).collect();
                        merge_list_field(existing, items, ctx, &owned, path)?;
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

/// Merge a patch list into an existing one, using the custom schema or the built-in table.
fn merge_list_field(
    existing: &mut Vec<Value>,
    items: &[Value],
    ctx: &Ctx<'_>,
    refs: &[String],
    path: &mut Vec<String>,
) -> Result<(), String> {
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let refs = refs.as_slice();
    let plain = items
        .iter()
        .chain(existing.iter())
        .all(|i| i.is_object() && directive(i).is_none());
    if let Some(schema) = ctx.schema {
        let Some(info) = schema
            .list(ctx.group, ctx.version, ctx.kind, refs)
            .filter(|i| i.merge)
        else {
            *existing = match clean_list(items) {
                Value::Array(a) => a,
                _ => Vec::new(),
            };
            return Ok(());
        };
        let keys: Vec<&str> = info.keys.iter().map(String::as_str).collect();
        return match keys.as_slice() {
            [] => merge_list(existing, items, None, ctx, path),
            [one] => merge_list(existing, items, Some(one), ctx, path),
            many if plain => compound_merge(existing, items, many, ctx, path),
            many => merge_list(existing, items, many.first().copied(), ctx, path),
        };
    }
    match list_strategy(ctx.group, ctx.kind, refs) {
        Some(s) => match crate::merge_keys::list_map_keys(ctx.group, ctx.kind, refs) {
            Some(keys) if plain => compound_merge(existing, items, keys, ctx, path),
            _ => merge_list(existing, items, s.merge_key, ctx, path),
        },
        None => {
            *existing = match clean_list(items) {
                Value::Array(a) => a,
                _ => Vec::new(),
            };
            Ok(())
        }
    }
}

fn merge_list(
    existing: &mut Vec<Value>,
    items: &[Value],
    key: Option<&str>,
    ctx: &Ctx<'_>,
    path: &mut Vec<String>,
) -> Result<(), String> {
    if items.iter().any(|i| directive(i) == Some("replace")) {
        *existing = items
            .iter()
            .filter(|i| directive(i) != Some("replace"))
            .map(clean)
            .collect();
        return Ok(());
    }
    let Some(key) = key else {
        // Set-like lists of scalars: the patch's values first, then the other original ones.
        let mut merged: Vec<Value> = Vec::new();
        for item in items.iter().chain(existing.iter()) {
            if !merged.contains(item) {
                merged.push(clean(item));
            }
        }
        *existing = merged;
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

fn key_text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn tuple(v: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|k| key_text(v, k).unwrap_or_default())
        .collect()
}

/// kyaml's `validateKeys`: keep the keys that have a value somewhere in `all`.
fn valid_keys<'k>(
    all: &[Vec<String>],
    values: &[String],
    keys: &[&'k str],
) -> (Vec<&'k str>, Vec<String>) {
    let mut present = vec![false; keys.len()];
    for vals in all {
        for (i, v) in vals.iter().enumerate() {
            if !v.is_empty()
                && let Some(p) = present.get_mut(i)
            {
                *p = true;
            }
        }
    }
    if !present.iter().any(|p| *p) {
        return (keys.to_vec(), values.to_vec());
    }
    let ks = keys
        .iter()
        .zip(&present)
        .filter(|(_, p)| **p)
        .map(|(k, _)| *k)
        .collect();
    let vs = values
        .iter()
        .zip(&present)
        .filter(|(v, p)| !v.is_empty() || **p)
        .map(|(v, _)| v.clone())
        .collect();
    (ks, vs)
}

fn element_matches(e: &Value, keys: &[&str], values: &[String]) -> bool {
    let mut found = false;
    for (j, k) in keys.iter().enumerate() {
        if let Some(want) = values.get(j) {
            found = key_text(e, k).as_deref() == Some(want.as_str());
        }
        if !found {
            return false;
        }
    }
    found
}

/// kyaml's `ElementSetter`: replace (or delete, when `element` is `None`) the elements matching
/// `keys`/`values`, appending when none matched.
fn element_setter(
    list: &mut Vec<Value>,
    element: Option<&Value>,
    keys: &[&str],
    values: &[String],
) {
    let mut out = Vec::new();
    let mut any = false;
    for e in list.drain(..) {
        if e.is_null() || e.as_object().is_some_and(|m| m.is_empty()) {
            continue;
        }
        if !element_matches(&e, keys, values) {
            if !values.is_empty() {
                out.push(e);
            }
            continue;
        }
        any = true;
        if let Some(el) = element {
            out.push(el.clone());
        }
    }
    *list = out;
    if let Some(el) = element
        && !any
    {
        list.push(el.clone());
    }
}

/// kyaml's associative-list merge for compound keys, reproduced step by step (including how
/// elements that lack the secondary key are dropped or moved), since kustomize's output
/// depends on it.
fn compound_merge<'k>(
    existing: &mut Vec<Value>,
    items: &[Value],
    keys: &[&'k str],
    ctx: &Ctx<'_>,
    path: &mut Vec<String>,
) -> Result<(), String> {
    let mut values: Vec<Vec<String>> = Vec::new();
    for e in items.iter().chain(existing.iter()) {
        let t = tuple(e, keys);
        if !values.contains(&t) {
            values.push(t);
        }
    }
    // mergeValues: tuples that agree where both are set collapse into one.
    for i in 0..values.len() {
        for j in 0..values.len() {
            let (a, b) = (values[i].clone(), values[j].clone());
            let mut common = false;
            let mut res = Vec::new();
            let mut ok = true;
            for (x, y) in a.iter().zip(&b) {
                if x == y {
                    common = true;
                    res.push(x.clone());
                } else if !x.is_empty() && !y.is_empty() {
                    ok = false;
                    break;
                } else {
                    res.push(if x.is_empty() { y.clone() } else { x.clone() });
                }
            }
            if ok && common {
                values[i] = res.clone();
                values[j] = res;
            }
        }
    }
    let mut to_add: Vec<Value> = Vec::new();
    let mut last_keys: Vec<&'k str> = keys.to_vec();
    for v in values.clone() {
        let (vk, vv) = valid_keys(&values, &v, keys);
        let (ek, ev) = valid_keys(std::slice::from_ref(&vv), &vv, &vk);
        let src = items.iter().find(|e| element_matches(e, &ek, &ev));
        let dest_pos = existing.iter().position(|e| element_matches(e, &ek, &ev));
        let mut val = match (dest_pos, src) {
            (Some(p), Some(s)) => {
                let Some(d) = existing.get_mut(p) else {
                    continue;
                };
                merge_value(d, s, ctx, path)?;
                d.clone()
            }
            (Some(p), None) => existing.get(p).cloned().unwrap_or(Value::Null),
            (None, Some(s)) => clean(s),
            (None, None) => Value::Null,
        };
        last_keys = vk.clone();
        if val.is_null() || val.as_object().is_some_and(|m| m.is_empty()) {
            element_setter(&mut to_add, None, &vk, &vv);
            continue;
        }
        for (i, k) in vk.iter().enumerate() {
            if let (Some(m), Some(want)) = (val.as_object_mut(), vv.get(i))
                && !m.contains_key(*k)
                && !want.is_empty()
            {
                m.insert((*k).to_string(), Value::String(want.clone()));
            }
        }
        element_setter(&mut to_add, Some(&val), &vk, &vv);
    }
    // appendListNode(to_add, original, keys) with the original elements as merged in place.
    for elem in existing.iter() {
        let mut v = Vec::new();
        for k in &last_keys {
            match key_text(elem, k) {
                Some(x) => v.push(x),
                None => to_add.push(elem.clone()),
            }
        }
        if last_keys.len() > 1 {
            element_setter(&mut to_add, None, &last_keys, &v);
        }
        element_setter(&mut to_add, Some(elem), &last_keys, &v);
    }
    *existing = to_add;
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
        items
            .iter()
            .filter(|i| !matches!(directive(i), Some("delete") | Some("replace")))
            .map(clean)
            .collect(),
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
        let ctx = Ctx {
            group: "apps",
            version: "v1",
            kind: "Deployment",
            schema: None,
        };
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
        let ctx = Ctx {
            group: "example.com",
            version: "v1",
            kind: "Foo",
            schema: None,
        };
        assert_eq!(merge_object(&mut dest, &patch, &ctx), Ok(Outcome::Kept));
        assert_eq!(dest, json!({"spec": {"items": [{"name": "b"}]}}));
    }
}
