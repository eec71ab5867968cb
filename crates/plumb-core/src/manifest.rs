//! Rendered manifests and their validation.
//!
//! A renderer turns files into [`Manifest`]s, each remembering where it came from, so any
//! problem found later names the file and the object.

use crate::key::{ObjectKey, str_at};
use serde_json::Value;
use std::fmt;

/// One desired object and where it was rendered from.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The object as rendered.
    pub object: Value,
    /// Where it came from.
    pub origin: Origin,
}

/// The file (relative to the snapshot root) and document index a manifest came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// Path relative to the source root, `/`-separated.
    pub file: String,
    /// Zero-based index of the YAML document in the file.
    pub document: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.document == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{} (document {})", self.file, self.document + 1)
        }
    }
}

/// Why a rendered object cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {problem}")]
pub struct InvalidManifest {
    /// Where the object came from.
    pub origin: String,
    /// What is wrong, naming the field.
    pub problem: String,
}

impl Manifest {
    /// The object's identity.
    pub fn key(&self) -> ObjectKey {
        ObjectKey::of(&self.object)
    }

    /// Checks the fields every object needs: a mapping with `apiVersion`, `kind` and
    /// `metadata.name` (or `metadata.generateName`) that are valid names.
    pub fn validate(&self) -> Result<(), InvalidManifest> {
        let fail = |problem: String| InvalidManifest {
            origin: self.origin.to_string(),
            problem,
        };
        if !self.object.is_object() {
            return Err(fail("document is not a mapping".into()));
        }
        let api_version = str_at(&self.object, &["apiVersion"]);
        let kind = str_at(&self.object, &["kind"]);
        let name = str_at(&self.object, &["metadata", "name"]);
        let what = if kind.is_empty() {
            "object".to_string()
        } else {
            format!("{kind} {name:?}")
        };
        if api_version.is_empty() {
            return Err(fail(format!("{what}: missing field \"apiVersion\"")));
        }
        if kind.is_empty() {
            return Err(fail(format!("object {name:?}: missing field \"kind\"")));
        }
        let generate_name = str_at(&self.object, &["metadata", "generateName"]);
        if name.is_empty() && generate_name.is_empty() {
            return Err(fail(format!("{kind}: missing field \"metadata.name\"")));
        }
        if !name.is_empty()
            && let Some(problem) = name_problem(name)
        {
            return Err(fail(format!(
                "{what}: invalid field \"metadata.name\": {problem}"
            )));
        }
        let namespace = str_at(&self.object, &["metadata", "namespace"]);
        if !namespace.is_empty() && !is_dns_label(namespace) {
            return Err(fail(format!(
                "{what}: invalid field \"metadata.namespace\": {namespace:?} is not a valid DNS-1123 label"
            )));
        }
        Ok(())
    }
}

/// Why `name` is not a valid object name (DNS-1123 subdomain, as most kinds require).
pub fn name_problem(name: &str) -> Option<String> {
    if name.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    let valid = name.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !part.starts_with('-')
            && !part.ends_with('-')
    });
    let colon_ok = name.contains(':'); // RBAC names like system:controller are allowed
    if valid || colon_ok && !name.contains('/') {
        None
    } else {
        Some(format!(
            "{name:?} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

/// Whether `value` is a DNS-1123 label (namespaces).
pub fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(object: Value) -> Manifest {
        Manifest {
            object,
            origin: Origin {
                file: "apps/web.yaml".into(),
                document: 1,
            },
        }
    }

    #[test]
    fn valid_object_passes() {
        let m = manifest(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a.b-c"}}),
        );
        assert!(m.validate().is_ok());
    }

    #[test]
    fn missing_kind_names_file_and_field() {
        let m = manifest(json!({"apiVersion": "v1", "metadata": {"name": "x"}}));
        let error = m.validate().unwrap_err().to_string();
        assert_eq!(
            error,
            "apps/web.yaml (document 2): object \"x\": missing field \"kind\""
        );
    }

    #[test]
    fn missing_name_and_bad_name() {
        let m = manifest(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}));
        assert!(
            m.validate()
                .unwrap_err()
                .to_string()
                .contains("metadata.name")
        );
        let m = manifest(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}),
        );
        assert!(
            m.validate()
                .unwrap_err()
                .to_string()
                .contains("invalid field \"metadata.name\"")
        );
    }

    #[test]
    fn non_mapping_document() {
        let m = manifest(json!(["a"]));
        assert!(
            m.validate()
                .unwrap_err()
                .to_string()
                .contains("not a mapping")
        );
    }
}
