//! Field sets as structured-merge-diff defines them: the set of paths a
//! field manager owns, and its `FieldsV1` JSON encoding.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::schema::{ListKind, Schema, item_key, list_kind};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PathEl {
    /// A map field: `f:name`.
    Field(String),
    /// A list-map item, by its key fields as canonical JSON: `k:{"name":"a"}`.
    Key(String),
    /// A set item, by its JSON value: `v:"a"`.
    Value(String),
}

impl PathEl {
    fn encode(&self) -> String {
        match self {
            PathEl::Field(f) => format!("f:{f}"),
            PathEl::Key(k) => format!("k:{k}"),
            PathEl::Value(v) => format!("v:{v}"),
        }
    }

    fn decode(s: &str) -> Option<PathEl> {
        if let Some(f) = s.strip_prefix("f:") {
            Some(PathEl::Field(f.to_string()))
        } else if let Some(k) = s.strip_prefix("k:") {
            Some(PathEl::Key(canonical_key(k)?))
        } else {
            s.strip_prefix("v:").map(|v| PathEl::Value(v.to_string()))
        }
    }
}

/// Re-encodes key JSON with sorted keys, so that equal keys compare equal.
fn canonical_key(json_text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json_text).ok()?;
    let obj = v.as_object()?;
    let sorted: BTreeMap<&String, &Value> = obj.iter().collect();
    serde_json::to_string(&sorted).ok()
}

fn key_el(key: &Map<String, Value>) -> PathEl {
    let sorted: BTreeMap<&String, &Value> = key.iter().collect();
    PathEl::Key(serde_json::to_string(&sorted).unwrap_or_default())
}

/// Renders a path the way conflict messages print it: `.spec.containers[name="a"].image`.
pub(crate) fn path_string(path: &[PathEl]) -> String {
    let mut out = String::new();
    for el in path {
        match el {
            PathEl::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            PathEl::Key(k) => {
                let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                out.push('[');
                out.push_str(&parts.join(","));
                out.push(']');
            }
            PathEl::Value(v) => {
                out.push_str("[=");
                out.push_str(v);
                out.push(']');
            }
        }
    }
    out
}

/// A set of paths, stored as a tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSet {
    members: BTreeSet<PathEl>,
    children: BTreeMap<PathEl, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    pub fn insert(&mut self, path: &[PathEl]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn contains(&self, path: &[PathEl]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Whether the path has owned descendants (it is an item or map with content).
    pub fn has_children(&self, path: &[PathEl]) -> bool {
        match path {
            [] => !self.is_empty(),
            [first, rest @ ..] => self
                .children
                .get(first)
                .is_some_and(|c| c.has_children(rest)),
        }
    }

    /// Every member path.
    pub fn paths(&self) -> Vec<Vec<PathEl>> {
        let mut out = vec![];
        self.collect(&mut vec![], &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<PathEl>, out: &mut Vec<Vec<PathEl>>) {
        for m in &self.members {
            prefix.push(m.clone());
            out.push(prefix.clone());
            prefix.pop();
        }
        for (el, child) in &self.children {
            prefix.push(el.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for p in other.paths() {
            out.insert(&p);
        }
        out
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::default();
        for p in self.paths() {
            if !other.contains(&p) {
                out.insert(&p);
            }
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::default();
        for p in self.paths() {
            if other.contains(&p) {
                out.insert(&p);
            }
        }
        out
    }

    /// The `FieldsV1` JSON form.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        let keys: BTreeSet<&PathEl> = self.members.iter().chain(self.children.keys()).collect();
        for el in keys {
            let mut inner = match self.children.get(el) {
                Some(c) => match c.to_fields_v1() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                None => Map::new(),
            };
            if self.members.contains(el) && !inner.is_empty() {
                let mut with_dot = Map::new();
                with_dot.insert(".".into(), json!({}));
                with_dot.extend(inner);
                inner = with_dot;
            }
            map.insert(el.encode(), Value::Object(inner));
        }
        Value::Object(map)
    }

    /// Parses `FieldsV1` JSON; unknown entries are skipped.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        let Some(map) = v.as_object() else {
            return set;
        };
        for (k, child) in map {
            if k == "." {
                continue;
            }
            let Some(el) = PathEl::decode(k) else {
                continue;
            };
            let child_map = child.as_object();
            let has_dot = child_map.is_some_and(|m| m.contains_key("."));
            let has_other = child_map.is_some_and(|m| m.keys().any(|k| k != "."));
            if has_dot || !has_other {
                set.members.insert(el.clone());
            }
            if has_other {
                set.children.insert(el, FieldSet::from_fields_v1(child));
            }
        }
        set
    }
}

/// Top-level metadata fields no manager owns.
const UNOWNED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The field set an object's content spans (what a manager owns once it has set it).
pub(crate) fn fields_of(obj: &Value, schema: Schema<'_>, skip_status: bool) -> FieldSet {
    let mut set = FieldSet::default();
    let Some(map) = obj.as_object() else {
        return set;
    };
    for (k, v) in map {
        if k == "apiVersion" || k == "kind" || (skip_status && k == "status") {
            continue;
        }
        if k == "metadata" {
            let Some(meta) = v.as_object() else { continue };
            let mut meta_set = FieldSet::default();
            for (mk, mv) in meta {
                if UNOWNED_META.contains(&mk.as_str()) {
                    continue;
                }
                add_field(&mut meta_set, mk, mv, schema, &mut vec!["metadata"]);
            }
            if !meta_set.is_empty() {
                set.children
                    .insert(PathEl::Field("metadata".into()), meta_set);
            }
            continue;
        }
        add_field(&mut set, k, v, schema, &mut vec![]);
    }
    set
}

fn add_field<'a>(
    set: &mut FieldSet,
    name: &'a str,
    value: &'a Value,
    schema: Schema<'_>,
    path: &mut Vec<&'a str>,
) {
    let el = PathEl::Field(name.to_string());
    path.push(name);
    match value {
        Value::Object(m) if !m.is_empty() => {
            let mut child = FieldSet::default();
            for (k, v) in m {
                add_field(&mut child, k, v, schema, path);
            }
            set.children.insert(el, child);
        }
        Value::Array(items) if !items.is_empty() => match list_kind(schema, path) {
            ListKind::Map(keys) if items.iter().all(|i| item_key(i, &keys).is_some()) => {
                let mut child = FieldSet::default();
                for item in items {
                    let Some(key) = item_key(item, &keys) else {
                        continue;
                    };
                    let kel = key_el(&key);
                    child.members.insert(kel.clone());
                    let mut item_set = FieldSet::default();
                    if let Some(m) = item.as_object() {
                        for (k, v) in m {
                            add_field(&mut item_set, k, v, schema, path);
                        }
                    }
                    if !item_set.is_empty() {
                        child.children.insert(kel, item_set);
                    }
                }
                set.children.insert(el, child);
            }
            ListKind::Set => {
                let mut child = FieldSet::default();
                for item in items {
                    child.members.insert(PathEl::Value(item.to_string()));
                }
                set.children.insert(el, child);
            }
            _ => {
                set.members.insert(el);
            }
        },
        _ => {
            set.members.insert(el);
        }
    }
    path.pop();
}

fn find_item<'v>(items: &'v [Value], el: &PathEl) -> Option<(usize, &'v Value)> {
    items.iter().enumerate().find(|(_, item)| match el {
        PathEl::Value(v) => item.to_string() == *v,
        PathEl::Key(k) => {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(k) else {
                return false;
            };
            let keys: Vec<String> = key.keys().cloned().collect();
            item_key(item, &keys).is_some_and(|ik| key_el(&ik) == *el)
        }
        PathEl::Field(_) => false,
    })
}

/// The value at a path, if present.
pub(crate) fn value_at<'v>(obj: &'v Value, path: &[PathEl]) -> Option<&'v Value> {
    let mut cur = obj;
    for el in path {
        cur = match (el, cur) {
            (PathEl::Field(f), Value::Object(m)) => m.get(f)?,
            (PathEl::Key(_) | PathEl::Value(_), Value::Array(items)) => find_item(items, el)?.1,
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the value at a path; returns whether something was removed.
pub(crate) fn remove_at(obj: &mut Value, path: &[PathEl]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let mut cur = obj;
    for el in parent_path {
        let next = match (el, cur) {
            (PathEl::Field(f), Value::Object(m)) => m.get_mut(f),
            (PathEl::Key(_) | PathEl::Value(_), Value::Array(items)) => {
                match find_item(items, el).map(|(i, _)| i) {
                    Some(i) => items.get_mut(i),
                    None => None,
                }
            }
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match (last, cur) {
        (PathEl::Field(f), Value::Object(m)) => m.shift_remove(f).is_some(),
        (PathEl::Key(_) | PathEl::Value(_), Value::Array(items)) => {
            match find_item(items, last).map(|(i, _)| i) {
                Some(i) => {
                    items.remove(i);
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({
            "metadata": {"name": "x", "labels": {"a": "1"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}
            ]}}}
        });
        let set = fields_of(&obj, Schema::Builtin("Deployment"), true);
        let v1 = set.to_fields_v1();
        let c = &v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert!(c.get(".").is_some());
        assert!(
            c["f:ports"]
                .get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
                .is_some()
        );
        assert!(v1["f:metadata"].get("f:name").is_none());
        assert_eq!(FieldSet::from_fields_v1(&v1), set);
    }

    #[test]
    fn path_rendering_and_removal() {
        let mut obj = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
        let path = vec![
            PathEl::Field("spec".into()),
            PathEl::Field("containers".into()),
            PathEl::Key("{\"name\":\"a\"}".into()),
            PathEl::Field("image".into()),
        ];
        assert_eq!(path_string(&path), ".spec.containers[name=\"a\"].image");
        assert_eq!(value_at(&obj, &path), Some(&json!("x")));
        assert!(remove_at(&mut obj, &path));
        assert_eq!(obj["spec"]["containers"][0], json!({"name": "a"}));
        assert!(remove_at(&mut obj, &path[..3]));
        assert_eq!(obj["spec"]["containers"], json!([{"name": "b"}]));
    }
}
