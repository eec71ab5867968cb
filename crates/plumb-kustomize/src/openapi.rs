//! A custom OpenAPI schema given with the kustomization's `openapi: {path: …}` field. Like
//! kustomize, it replaces the built-in schema for strategic merges: list merge keys and
//! strategies come from its `x-kubernetes-patch-merge-key` / `x-kubernetes-patch-strategy` /
//! `x-kubernetes-list-map-keys` extensions.

use serde_json::{Map, Value};

#[derive(Debug, Default)]
pub(crate) struct CustomSchema {
    definitions: Map<String, Value>,
}

/// How a list merges according to the custom schema.
pub(crate) struct ListInfo {
    pub keys: Vec<String>,
    pub merge: bool,
}

impl CustomSchema {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let docs = crate::yaml::parse_raw(text).map_err(|e| e.to_string())?;
        let doc = docs.into_iter().next().unwrap_or(Value::Null);
        let definitions = doc
            .get("definitions")
            .and_then(Value::as_object)
            .cloned()
            .ok_or("expected a `definitions` map")?;
        Ok(CustomSchema { definitions })
    }

    fn resolve<'a>(&'a self, mut node: &'a Value) -> Option<&'a Value> {
        for _ in 0..32 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let name = r.strip_prefix("#/definitions/").unwrap_or(r);
                    node = self.definitions.get(name)?;
                }
                None => return Some(node),
            }
        }
        None
    }

    fn root(&self, group: &str, version: &str, kind: &str) -> Option<&Value> {
        self.definitions.values().find(|d| {
            d.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .is_some_and(|gvks| {
                    gvks.iter().any(|g| {
                        g.get("group").and_then(Value::as_str).unwrap_or("") == group
                            && g.get("version").and_then(Value::as_str).unwrap_or("") == version
                            && g.get("kind").and_then(Value::as_str).unwrap_or("") == kind
                    })
                })
        })
    }

    /// The merge behaviour of the list at `path` (field names, list indices left out).
    pub(crate) fn list(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        path: &[&str],
    ) -> Option<ListInfo> {
        let mut node = self.resolve(self.root(group, version, kind)?)?;
        let (last, parents) = path.split_last()?;
        for seg in parents {
            node = self.resolve(node.get("properties")?.get(*seg)?)?;
            if node.get("type").and_then(Value::as_str) == Some("array") {
                node = self.resolve(node.get("items")?)?;
            }
        }
        let field = node.get("properties")?.get(*last)?;
        let strategy = field
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut keys: Vec<String> = field
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if keys.is_empty()
            && let Some(k) = field
                .get("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str)
        {
            keys.push(k.to_string());
        }
        let merge = strategy.split(',').any(|s| s == "merge");
        Some(ListInfo { keys, merge })
    }
}
