//! Identity of a Kubernetes object: (group, kind, namespace, name).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The identity used to match desired objects with live ones.
///
/// The API version is deliberately not part of the key: `apps/v1` and `apps/v1beta1` name the
/// same object, as gitops-engine also assumes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    /// API group, empty for the core group.
    pub group: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key from an object's `apiVersion`, `kind` and `metadata`. Missing fields become
    /// empty strings; validation is [`crate::manifest`]'s job.
    pub fn of(object: &Value) -> ObjectKey {
        let api_version = str_at(object, &["apiVersion"]);
        ObjectKey {
            group: group_of(api_version).to_string(),
            kind: str_at(object, &["kind"]).to_string(),
            namespace: str_at(object, &["metadata", "namespace"]).to_string(),
            name: str_at(object, &["metadata", "name"]).to_string(),
        }
    }

    /// `group/kind`, or just `kind` for the core group.
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}/{}", self.group, self.kind)
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.group_kind())?;
        if !self.namespace.is_empty() {
            write!(f, " {}/{}", self.namespace, self.name)
        } else {
            write!(f, " {}", self.name)
        }
    }
}

/// The group part of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

/// The version part of an `apiVersion` (`apps/v1` → `v1`, `v1` → `v1`).
pub fn version_of(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((_, version)) => version,
        None => api_version,
    }
}

/// The string at `path` in `value`, or `""` when absent or not a string.
pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path).and_then(Value::as_str).unwrap_or("")
}

/// The value at `path` in `value`, following object keys only.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut current = value;
    for segment in path {
        current = current.get(segment)?;
    }
    Some(current)
}

/// An integer at `path`, accepting JSON numbers only.
pub fn i64_at(value: &Value, path: &[&str]) -> Option<i64> {
    at(value, path).and_then(Value::as_i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_of_namespaced_and_core_objects() {
        let key = ObjectKey::of(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod"}}));
        assert_eq!(key.group, "apps");
        assert_eq!(key.to_string(), "apps/Deployment prod/web");
        let key = ObjectKey::of(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "prod"}}));
        assert_eq!(key.group, "");
        assert_eq!(key.to_string(), "Namespace prod");
    }

    #[test]
    fn versions_split() {
        assert_eq!(version_of("apps/v1"), "v1");
        assert_eq!(version_of("v1"), "v1");
        assert_eq!(
            group_of("rbac.authorization.k8s.io/v1"),
            "rbac.authorization.k8s.io"
        );
    }
}
