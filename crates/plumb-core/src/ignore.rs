//! `spec.ignoreDifferences`: which parts of which objects never make an application OutOfSync.
//!
//! A rule applies to an object when its `group` and `kind` match as globs (Argo CD uses
//! gobwas/glob, so `*` matches any group; an empty or absent `group` means the core group) and
//! `name` / `namespace`, when set, are equal. The rule's `jsonPointers` (RFC 6901) and
//! `jqPathExpressions` (see [`crate::jq`]) are deleted from both the live and the desired
//! object; `managedFieldsManagers` deletes, from both, the fields the live object's
//! `metadata.managedFields` assigns to those managers where live and desired differ — the way
//! Argo CD's `managedfields.Normalize` does.
//!
//! **Guarantees**: [`IgnoreRules::compile`] checks every pointer, expression and glob up front;
//! [`IgnoreRules::normalize`] never panics, never hangs (jq is bounded), treats paths that do
//! not exist as no-ops, and leaves an object unchanged by an expression that fails on it.
//!
//! **Errors**: compile errors name the rule index and field; evaluation problems are returned
//! as a list (Argo CD skips such an expression and logs it; plumb reports it so the engine can
//! raise a condition).

use crate::glob::Glob;
use crate::jq::{JqError, PathExpression, PathSegment, delete_path};
use crate::key::ObjectKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One entry of `spec.ignoreDifferences`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreDifference {
    /// API group glob; empty is the core group.
    #[serde(default)]
    pub group: String,
    /// Kind glob.
    #[serde(default)]
    pub kind: String,
    /// Exact name; empty matches any.
    #[serde(default)]
    pub name: String,
    /// Exact namespace; empty matches any.
    #[serde(default)]
    pub namespace: String,
    /// RFC 6901 pointers to delete.
    #[serde(default)]
    pub json_pointers: Vec<String>,
    /// jq path expressions to delete.
    #[serde(default)]
    pub jq_path_expressions: Vec<String>,
    /// Field managers whose fields are ignored.
    #[serde(default)]
    pub managed_fields_managers: Vec<String>,
}

/// A rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A bad JSON pointer.
    #[error("ignoreDifferences[{rule}].jsonPointers[{index}] {pointer:?}: {problem}")]
    Pointer {
        /// Rule index.
        rule: usize,
        /// Pointer index.
        index: usize,
        /// The pointer.
        pointer: String,
        /// What is wrong.
        problem: String,
    },
    /// A jq expression that does not compile.
    #[error("ignoreDifferences[{rule}].jqPathExpressions[{index}] {expression:?}: {source}")]
    Jq {
        /// Rule index.
        rule: usize,
        /// Expression index.
        index: usize,
        /// The expression.
        expression: String,
        /// Why.
        #[source]
        source: JqError,
    },
    /// A bad group or kind glob.
    #[error("ignoreDifferences[{rule}].{field}: {source}")]
    Glob {
        /// Rule index.
        rule: usize,
        /// `group` or `kind`.
        field: &'static str,
        /// Why.
        #[source]
        source: crate::glob::GlobError,
    },
    /// A rule without a kind.
    #[error("ignoreDifferences[{rule}].kind: missing (use \"*\" for every kind)")]
    MissingKind {
        /// Rule index.
        rule: usize,
    },
}

/// A problem met while normalizing one object; the expression was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeProblem {
    /// A jq expression failed on this object.
    #[error(
        "{object}: ignoreDifferences[{rule}].jqPathExpressions[{index}] {expression:?}: {source}"
    )]
    Jq {
        /// The object.
        object: Box<ObjectKey>,
        /// Rule index.
        rule: usize,
        /// Expression index.
        index: usize,
        /// The expression.
        expression: String,
        /// Why.
        #[source]
        source: JqError,
    },
    /// `metadata.managedFields` of the live object could not be read.
    #[error("{object}: metadata.managedFields[{index}].fieldsV1: {problem}")]
    ManagedFields {
        /// The object.
        object: Box<ObjectKey>,
        /// Entry index.
        index: usize,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Debug, Clone)]
struct Rule {
    group: Glob,
    kind: Glob,
    name: String,
    namespace: String,
    pointers: Vec<Vec<String>>,
    expressions: Vec<PathExpression>,
    managers: Vec<String>,
}

/// Compiled `ignoreDifferences`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

impl IgnoreRules {
    /// Compiles the rules.
    ///
    /// **Errors**: the first invalid pointer, jq expression or glob, or a missing kind.
    pub fn compile(rules: &[IgnoreDifference]) -> Result<IgnoreRules, IgnoreError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for (rule_index, rule) in rules.iter().enumerate() {
            if rule.kind.is_empty() {
                return Err(IgnoreError::MissingKind { rule: rule_index });
            }
            let group = Glob::new(&rule.group).map_err(|source| IgnoreError::Glob {
                rule: rule_index,
                field: "group",
                source,
            })?;
            let kind = Glob::new(&rule.kind).map_err(|source| IgnoreError::Glob {
                rule: rule_index,
                field: "kind",
                source,
            })?;
            let mut pointers = Vec::new();
            for (index, pointer) in rule.json_pointers.iter().enumerate() {
                pointers.push(
                    parse_pointer(pointer).map_err(|problem| IgnoreError::Pointer {
                        rule: rule_index,
                        index,
                        pointer: pointer.clone(),
                        problem,
                    })?,
                );
            }
            let mut expressions = Vec::new();
            for (index, expression) in rule.jq_path_expressions.iter().enumerate() {
                expressions.push(PathExpression::parse(expression).map_err(|source| {
                    IgnoreError::Jq {
                        rule: rule_index,
                        index,
                        expression: expression.clone(),
                        source,
                    }
                })?);
            }
            compiled.push(Rule {
                group,
                kind,
                name: rule.name.clone(),
                namespace: rule.namespace.clone(),
                pointers,
                expressions,
                managers: rule.managed_fields_managers.clone(),
            });
        }
        Ok(IgnoreRules { rules: compiled })
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule applies to `key`.
    pub fn applies_to(&self, key: &ObjectKey) -> bool {
        self.rules.iter().any(|rule| rule.matches(key))
    }

    /// Deletes the ignored parts from `live` and `desired` (either may be absent: an object to
    /// create, or one to prune), so comparing them afterwards ignores those parts. The object is
    /// identified by `live` when present, else by `desired`.
    ///
    /// **Guarantees**: see the module documentation; problems are returned, not raised.
    pub fn normalize(
        &self,
        mut live: Option<&mut Value>,
        mut desired: Option<&mut Value>,
    ) -> Vec<NormalizeProblem> {
        let key = match (live.as_deref(), desired.as_deref()) {
            (Some(object), _) | (None, Some(object)) => ObjectKey::of(object),
            (None, None) => return Vec::new(),
        };
        let mut problems = Vec::new();
        // Managed fields are read from the live object before anything is deleted from it.
        let managed: Option<Vec<Value>> = live
            .as_deref()
            .and_then(|l| l.get("metadata"))
            .and_then(|m| m.get("managedFields"))
            .and_then(Value::as_array)
            .cloned();
        for (rule_index, rule) in self.rules.iter().enumerate() {
            if !rule.matches(&key) {
                continue;
            }
            for object in [live.as_deref_mut(), desired.as_deref_mut()]
                .into_iter()
                .flatten()
            {
                for pointer in &rule.pointers {
                    delete_pointer(object, pointer);
                }
                for (index, expression) in rule.expressions.iter().enumerate() {
                    if let Err(source) = expression.delete(object) {
                        let problem = NormalizeProblem::Jq {
                            object: Box::new(key.clone()),
                            rule: rule_index,
                            index,
                            expression: expression.source().to_string(),
                            source,
                        };
                        if !problems.contains(&problem) {
                            problems.push(problem);
                        }
                    }
                }
            }
            if !rule.managers.is_empty()
                && let (Some(source), Some(live), Some(desired)) = (
                    managed.as_ref(),
                    live.as_deref_mut(),
                    desired.as_deref_mut(),
                )
            {
                problems.extend(remove_managed_fields(
                    source,
                    live,
                    desired,
                    &rule.managers,
                    &key,
                ));
            }
        }
        problems
    }
}

impl IgnoreRules {
    /// Argo CD's `RespectIgnoreDifferences=true`: what to apply is `desired` with every ignored
    /// part taken from `live` instead, so a sync never changes what is ignored.
    pub fn respect(&self, live: &Value, desired: &Value) -> Value {
        let key = ObjectKey::of(desired);
        if !self.applies_to(&key) {
            return desired.clone();
        }
        let mut live_kept = live.clone();
        let mut desired_kept = desired.clone();
        let _ = self.normalize(Some(&mut live_kept), None);
        let _ = self.normalize(None, Some(&mut desired_kept));
        let ignored = removed_part(live, &live_kept);
        if let Some(ignored) = ignored {
            overlay(&mut desired_kept, &ignored);
        }
        desired_kept
    }
}

/// What `before` has that `after` (the same document with parts deleted) lacks; `None` when
/// nothing. Arrays of equal length are compared element by element (`null` where an element
/// lost nothing); an array that changed length is taken whole.
fn removed_part(before: &Value, after: &Value) -> Option<Value> {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut part = serde_json::Map::new();
            for (k, bv) in b {
                match a.get(k) {
                    None => {
                        part.insert(k.clone(), bv.clone());
                    }
                    Some(av) => {
                        if let Some(sub) = removed_part(bv, av) {
                            part.insert(k.clone(), sub);
                        }
                    }
                }
            }
            (!part.is_empty()).then_some(Value::Object(part))
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            let items: Vec<Value> = b
                .iter()
                .zip(a)
                .map(|(bv, av)| removed_part(bv, av).unwrap_or(Value::Null))
                .collect();
            items
                .iter()
                .any(|v| !v.is_null())
                .then_some(Value::Array(items))
        }
        (b, a) if b == a => None,
        (b, _) => Some(b.clone()),
    }
}

/// Lays `part` (from [`removed_part`]) over `target`.
fn overlay(target: &mut Value, part: &Value) {
    match (target, part) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, pv) in p {
                match t.get_mut(k) {
                    Some(tv) if tv.is_object() || tv.is_array() => overlay(tv, pv),
                    _ => {
                        t.insert(k.clone(), pv.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(p)) if t.len() == p.len() => {
            for (tv, pv) in t.iter_mut().zip(p) {
                if !pv.is_null() {
                    overlay(tv, pv);
                }
            }
        }
        (target, part) => *target = part.clone(),
    }
}

impl Rule {
    fn matches(&self, key: &ObjectKey) -> bool {
        self.group.is_match(&key.group)
            && self.kind.is_match(&key.kind)
            && (self.name.is_empty() || self.name == key.name)
            && (self.namespace.is_empty() || self.namespace == key.namespace)
    }
}

/// Parses an RFC 6901 pointer into unescaped reference tokens.
///
/// **Errors**: a pointer that is not empty and does not start with `/`, or a `~` not followed
/// by `0` or `1`.
pub fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err("must be empty or start with '/'".into());
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err("'~' must be followed by '0' or '1'".to_string()),
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

/// Deletes what `tokens` points at; a pointer to nothing is a no-op. The empty pointer (the
/// whole document) is ignored: deleting an object entirely is not a way to ignore it.
pub fn delete_pointer(value: &mut Value, tokens: &[String]) {
    let Some((last, parents)) = tokens.split_last() else {
        return;
    };
    let mut current = value;
    for token in parents {
        let next = match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => array_index(token).and_then(|i| items.get_mut(i)),
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    match current {
        Value::Object(map) => {
            map.shift_remove(last);
        }
        Value::Array(items) => {
            if let Some(i) = array_index(last)
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

/// RFC 6901 array index: `0` or digits without a leading zero (`-` never names an element).
fn array_index(token: &str) -> Option<usize> {
    let valid = token == "0"
        || (!token.is_empty()
            && !token.starts_with('0')
            && token.bytes().all(|b| b.is_ascii_digit()));
    if valid { token.parse().ok() } else { None }
}

// ---- managed fields ----

/// One element of a `fieldsV1` path.
#[derive(Debug, Clone, PartialEq)]
enum FieldElement {
    /// `f:name`: an object field.
    Field(String),
    /// `k:{...}`: the list element whose fields equal these.
    Key(Map<String, Value>),
    /// `v:value`: the set element equal to this.
    Value(Value),
    /// `i:n`: the list element at this index.
    Index(usize),
}

/// Most leaf paths read from one object's managed fields.
const MAX_MANAGED_PATHS: usize = 100_000;
/// Deepest `fieldsV1` nesting followed.
const MAX_MANAGED_DEPTH: usize = 128;

fn remove_managed_fields(
    entries: &[Value],
    live: &mut Value,
    desired: &mut Value,
    managers: &[String],
    key: &ObjectKey,
) -> Vec<NormalizeProblem> {
    let mut problems = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let manager = entry.get("manager").and_then(Value::as_str).unwrap_or("");
        if !managers.iter().any(|m| m == manager) {
            continue;
        }
        let Some(fields) = entry.get("fieldsV1") else {
            continue;
        };
        let mut paths = Vec::new();
        if let Err(problem) = leaf_paths(fields, &mut Vec::new(), &mut paths, 0) {
            problems.push(NormalizeProblem::ManagedFields {
                object: Box::new(key.clone()),
                index,
                problem,
            });
            continue;
        }
        // Only fields that differ are removed, as Argo CD intersects with the comparison's
        // modified set; resolve against the untouched objects first, then delete.
        let mut resolved = Vec::new();
        for path in &paths {
            let in_live = resolve(live, path);
            let in_desired = resolve(desired, path);
            let live_value = in_live.as_ref().and_then(|p| get(live, p));
            let desired_value = in_desired.as_ref().and_then(|p| get(desired, p));
            if live_value != desired_value {
                resolved.push((in_live, in_desired));
            }
        }
        let (mut live_paths, mut desired_paths): (Vec<_>, Vec<_>) = resolved.into_iter().unzip();
        for (object, paths) in [
            (&mut *live, &mut live_paths),
            (&mut *desired, &mut desired_paths),
        ] {
            let mut paths: Vec<Vec<PathSegment>> = paths.drain(..).flatten().collect();
            paths.sort_by(|a, b| compare_segments(b, a));
            paths.dedup();
            for path in paths {
                delete_path(object, &path);
            }
        }
    }
    problems
}

fn compare_segments(a: &[PathSegment], b: &[PathSegment]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for (x, y) in a.iter().zip(b) {
        let ordering = match (x, y) {
            (PathSegment::Index(i), PathSegment::Index(j)) => i.cmp(j),
            (PathSegment::Key(i), PathSegment::Key(j)) => i.cmp(j),
            (PathSegment::Index(_), PathSegment::Key(_)) => Ordering::Less,
            (PathSegment::Key(_), PathSegment::Index(_)) => Ordering::Greater,
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.len().cmp(&b.len())
}

/// Collects the leaf paths of a `fieldsV1` tree (a `{}` value is a leaf; `.` marks the
/// container itself and is not a field of its own).
fn leaf_paths(
    node: &Value,
    prefix: &mut Vec<FieldElement>,
    out: &mut Vec<Vec<FieldElement>>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_MANAGED_DEPTH {
        return Err(format!("nested deeper than {MAX_MANAGED_DEPTH} levels"));
    }
    let Some(map) = node.as_object() else {
        return Err(format!("expected a mapping, found {node}"));
    };
    if map.is_empty() || (map.len() == 1 && map.contains_key(".")) {
        if !prefix.is_empty() {
            if out.len() >= MAX_MANAGED_PATHS {
                return Err(format!("more than {MAX_MANAGED_PATHS} fields"));
            }
            out.push(prefix.clone());
        }
        return Ok(());
    }
    for (key, child) in map {
        if key == "." {
            continue;
        }
        prefix.push(parse_element(key)?);
        leaf_paths(child, prefix, out, depth + 1)?;
        prefix.pop();
    }
    Ok(())
}

fn parse_element(text: &str) -> Result<FieldElement, String> {
    let (kind, rest) = text
        .split_once(':')
        .ok_or_else(|| format!("path element {text:?} has no prefix"))?;
    match kind {
        "f" => Ok(FieldElement::Field(rest.to_string())),
        "k" => match serde_json::from_str::<Value>(rest) {
            Ok(Value::Object(map)) => Ok(FieldElement::Key(map)),
            _ => Err(format!("path element {text:?}: key must be a JSON object")),
        },
        "v" => serde_json::from_str(rest)
            .map(FieldElement::Value)
            .map_err(|e| format!("path element {text:?}: value is not JSON: {e}")),
        "i" => rest
            .parse()
            .map(FieldElement::Index)
            .map_err(|_| format!("path element {text:?}: bad index")),
        other => Err(format!("path element {text:?}: unknown prefix {other:?}")),
    }
}

/// Turns a `fieldsV1` path into a concrete path in `object`, or `None` when it names nothing.
fn resolve(object: &Value, path: &[FieldElement]) -> Option<Vec<PathSegment>> {
    let mut current = object;
    let mut out = Vec::with_capacity(path.len());
    for element in path {
        match (element, current) {
            (FieldElement::Field(name), Value::Object(map)) => {
                current = map.get(name)?;
                out.push(PathSegment::Key(name.clone()));
            }
            (FieldElement::Key(fields), Value::Array(items)) => {
                let (i, item) = items.iter().enumerate().find(|(_, item)| {
                    fields
                        .iter()
                        .all(|(k, v)| item.get(k).is_some_and(|found| found == v))
                })?;
                current = item;
                out.push(PathSegment::Index(i as i64));
            }
            (FieldElement::Value(value), Value::Array(items)) => {
                let i = items.iter().position(|item| item == value)?;
                current = &items[i];
                out.push(PathSegment::Index(i as i64));
            }
            (FieldElement::Index(i), Value::Array(items)) => {
                current = items.get(*i)?;
                out.push(PathSegment::Index(*i as i64));
            }
            _ => return None,
        }
    }
    Some(out)
}

fn get<'a>(object: &'a Value, path: &[PathSegment]) -> Option<&'a Value> {
    let mut current = object;
    for segment in path {
        current = match (segment, current) {
            (PathSegment::Key(key), Value::Object(map)) => map.get(key)?,
            (PathSegment::Index(i), Value::Array(items)) => items.get(usize::try_from(*i).ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
#[path = "ignore_tests.rs"]
mod tests;
