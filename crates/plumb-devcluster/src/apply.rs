//! Server-side apply and `managedFields` bookkeeping.
//!
//! Managers are identified by (manager, operation, subresource), as in
//! kube-apiserver: an `Apply` entry and an `Update` entry of the same name
//! are different owners and can conflict.

use serde_json::{Map, Value, json};

use crate::fieldset::{FieldSet, PathEl, fields_of, path_string, remove_at, value_at};
use crate::schema::{ListKind, Schema, item_key, list_kind};

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub set: FieldSet,
}

impl Entry {
    fn same_owner(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        m.insert("time".into(), json!(self.time));
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.set.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    /// How conflict messages name the owner.
    fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// Reads the `managedFields` of an object.
pub(crate) fn entries(obj: &Value) -> Vec<Entry> {
    obj.get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| {
                    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    Entry {
                        manager: s("manager"),
                        operation: s("operation"),
                        api_version: s("apiVersion"),
                        time: s("time"),
                        subresource: s("subresource"),
                        set: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes entries back as `metadata.managedFields` (dropping empty ones).
pub(crate) fn store_entries(obj: &mut Value, list: &[Entry]) {
    let arr: Vec<Value> = list
        .iter()
        .filter(|e| !e.set.is_empty())
        .map(Entry::to_json)
        .collect();
    let meta = crate::meta::metadata_mut(obj);
    if arr.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(arr));
    }
}

/// Who is writing, and how.
pub(crate) struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: &'a str,
    pub time: &'a str,
    pub schema: Schema<'a>,
    /// Ignore `status` (main resource of a kind with a status subresource),
    /// or everything but `status` (the status subresource).
    pub scope: Scope,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scope {
    All,
    NoStatus,
    StatusOnly,
}

fn scoped_fields(obj: &Value, w: &Writer<'_>) -> FieldSet {
    match w.scope {
        Scope::All => fields_of(obj, w.schema, false),
        Scope::NoStatus => fields_of(obj, w.schema, true),
        Scope::StatusOnly => {
            let status_only = json!({"status": obj.get("status").cloned().unwrap_or(Value::Null)});
            if obj.get("status").is_some() {
                fields_of(&status_only, w.schema, false)
            } else {
                FieldSet::default()
            }
        }
    }
}

/// Records an Update-operation write: changed fields move to the writer.
pub(crate) fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer<'_>) {
    let mut list = match old {
        Some(o) => entries(o),
        None => vec![],
    };
    let new_set = scoped_fields(new, w);
    let old_set = old.map(|o| scoped_fields(o, w)).unwrap_or_default();
    let mut changed = FieldSet::default();
    for p in new_set.paths() {
        let now = value_at(new, &p);
        let before = old.and_then(|o| value_at(o, &p));
        let differs = if new_set.has_children(&p) {
            before.is_none()
        } else {
            now != before
        };
        if differs {
            changed.insert(&p);
        }
    }
    let removed = old_set.difference(&new_set);
    if changed.is_empty() && removed.is_empty() {
        store_entries(new, &list);
        return;
    }
    for e in &mut list {
        e.set = e.set.difference(&changed).difference(&removed);
    }
    match list
        .iter_mut()
        .find(|e| e.same_owner(w.manager, "Update", w.subresource))
    {
        Some(e) => {
            e.set = e.set.union(&changed);
            e.time = w.time.to_string();
            e.api_version = w.api_version.to_string();
        }
        None => list.push(Entry {
            manager: w.manager.to_string(),
            operation: "Update".into(),
            api_version: w.api_version.to_string(),
            time: w.time.to_string(),
            subresource: w.subresource.to_string(),
            set: changed,
        }),
    }
    store_entries(new, &list);
}

/// An apply conflict: who owns which field.
#[derive(Debug, Clone)]
pub(crate) struct Conflict {
    pub owner: String,
    pub path: String,
}

/// The kube-apiserver message for a set of conflicts.
pub(crate) fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.owner, c.path
        );
    }
    let mut owners: Vec<&String> = conflicts.iter().map(|c| &c.owner).collect();
    owners.sort();
    owners.dedup();
    let mut lines = vec![];
    for o in owners {
        lines.push(format!("conflicts with {o}:"));
        for c in conflicts.iter().filter(|c| &c.owner == o) {
            lines.push(format!("- {}", c.path));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Merges an applied configuration into the live object (structured merge:
/// maps merge, list-maps merge by key, sets union, everything else replaces).
pub(crate) fn merge(
    live: &Value,
    applied: &Value,
    schema: Schema<'_>,
    path: &mut Vec<String>,
) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            let mut out = l.clone();
            for (k, av) in a {
                if av.is_null() {
                    out.shift_remove(k);
                    continue;
                }
                path.push(k.clone());
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, av, schema, path),
                    None => without_nulls(av),
                };
                path.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => {
            let names: Vec<&str> = path.iter().map(String::as_str).collect();
            match list_kind(schema, &names) {
                ListKind::Map(keys) => {
                    let mut out = l.clone();
                    for item in a {
                        let Some(k) = item_key(item, &keys) else {
                            return applied.clone();
                        };
                        match out
                            .iter()
                            .position(|o| item_key(o, &keys).as_ref() == Some(&k))
                        {
                            Some(i) => out[i] = merge(&out[i], item, schema, path),
                            None => out.push(without_nulls(item)),
                        }
                    }
                    Value::Array(out)
                }
                ListKind::Set => {
                    let mut out = l.clone();
                    for item in a {
                        if !out.contains(item) {
                            out.push(item.clone());
                        }
                    }
                    Value::Array(out)
                }
                ListKind::Atomic => without_nulls(applied),
            }
        }
        _ => without_nulls(applied),
    }
}

/// `value` without null-valued fields: an applied `null` sets nothing (as kube-apiserver
/// stores it), so a new subtree never carries one.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The outcome of an apply: the new object (managedFields set) or conflicts.
pub(crate) fn apply(
    live: &Value,
    applied: &Value,
    w: &Writer<'_>,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let mut list = entries(live);
    let mut applied_body = applied.clone();
    // Only ownable content merges; identity and system metadata stay live.
    if let Some(meta) = applied_body
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
    {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.shift_remove(k);
        }
    }
    if w.scope == Scope::NoStatus
        && let Some(o) = applied_body.as_object_mut()
    {
        o.shift_remove("status");
    }
    let applied_set = scoped_fields(&applied_body, w);
    let mut merged = merge(live, &applied_body, w.schema, &mut vec![]);

    let mut conflicts = vec![];
    for e in &mut list {
        if e.same_owner(w.manager, "Apply", w.subresource) {
            continue;
        }
        let mut lost = FieldSet::default();
        for p in e.set.intersection(&applied_set).paths() {
            if applied_set.has_children(&p) {
                continue;
            }
            if value_at(live, &p) != value_at(&merged, &p) {
                conflicts.push(Conflict {
                    owner: e.display(),
                    path: path_string(&p),
                });
                lost.insert(&p);
            }
        }
        if force {
            e.set = e.set.difference(&lost);
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }

    let previous = list
        .iter()
        .find(|e| e.same_owner(w.manager, "Apply", w.subresource))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let dropped = previous.difference(&applied_set);
    let mut dropped_paths = dropped.paths();
    // Remove deepest paths first so parents are still there to walk through.
    dropped_paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped_paths {
        let owned_elsewhere = list
            .iter()
            .any(|e| !e.same_owner(w.manager, "Apply", w.subresource) && e.set.contains(&p));
        if !owned_elsewhere {
            remove_at(&mut merged, &p);
            prune_empty_parents(&mut merged, &p, &list);
        }
    }

    match list
        .iter_mut()
        .find(|e| e.same_owner(w.manager, "Apply", w.subresource))
    {
        Some(e) => {
            if e.set != applied_set {
                e.time = w.time.to_string();
            }
            e.set = applied_set;
            e.api_version = w.api_version.to_string();
        }
        None => list.push(Entry {
            manager: w.manager.to_string(),
            operation: "Apply".into(),
            api_version: w.api_version.to_string(),
            time: w.time.to_string(),
            subresource: w.subresource.to_string(),
            set: applied_set,
        }),
    }
    store_entries(&mut merged, &list);
    Ok(merged)
}

/// After removing a field, drop maps that became empty and that nobody owns
/// as such (kube-apiserver does not keep `labels: {}` around).
fn prune_empty_parents(obj: &mut Value, path: &[PathEl], owners: &[Entry]) {
    let mut end = path.len();
    while end > 1 {
        end -= 1;
        let parent = &path[..end];
        let empty = value_at(obj, parent).is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
        if !empty || owners.iter().any(|e| e.set.contains(parent)) {
            return;
        }
        remove_at(obj, parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer<'a>(manager: &'a str) -> Writer<'a> {
        Writer {
            manager,
            api_version: "v1",
            subresource: "",
            time: "2024-01-01T00:00:00Z",
            schema: Schema::Builtin("ConfigMap"),
            scope: Scope::All,
        }
    }

    #[test]
    fn apply_removes_fields_the_manager_stops_applying() {
        let live = json!({"metadata": {"name": "c"}});
        let a1 = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let o1 = apply(&live, &a1, &writer("m"), false).expect("first apply");
        let a2 = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
        let o2 = apply(&o1, &a2, &writer("m"), false).expect("second apply");
        assert_eq!(o2["data"], json!({"a": "1"}));
    }

    #[test]
    fn second_manager_conflicts_unless_forced() {
        let live = json!({"metadata": {"name": "c"}});
        let o1 = apply(&live, &json!({"data": {"a": "1"}}), &writer("one"), false).expect("one");
        let err =
            apply(&o1, &json!({"data": {"a": "2"}}), &writer("two"), false).expect_err("conflict");
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"one\": .data.a"
        );
        // Same value: shared ownership, no conflict.
        apply(&o1, &json!({"data": {"a": "1"}}), &writer("two"), false).expect("shared");
        let forced = apply(&o1, &json!({"data": {"a": "2"}}), &writer("two"), true).expect("force");
        assert_eq!(forced["data"]["a"], "2");
        let owners = entries(&forced);
        assert_eq!(owners.len(), 1, "one lost its only field: {owners:?}");
    }

    #[test]
    fn update_moves_ownership() {
        let live = json!({"metadata": {"name": "c"}});
        let o1 = apply(&live, &json!({"data": {"a": "1"}}), &writer("one"), false).expect("one");
        let mut o2 = o1.clone();
        o2["data"]["a"] = json!("9");
        record_update(Some(&o1), &mut o2, &writer("editor"));
        let list = entries(&o2);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].manager, "editor");
        assert_eq!(list[0].operation, "Update");
    }
}
