//! Object metadata rules: system fields, names, timestamps and uids.

use rand::Rng;
use serde_json::{Map, Value, json};

use crate::errors::{Cause, field_invalid, field_required};

/// The current time as kube-apiserver prints it (RFC 3339, seconds, UTC).
pub(crate) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A random RFC 4122 version 4 uid.
pub(crate) fn new_uid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The 5-character suffix `generateName` appends (same alphabet as the real server).
pub(crate) fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub(crate) fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// The metadata map of an object, created if missing.
pub(crate) fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let Some(map) = obj.as_object_mut() else {
        unreachable!("object was just made an object")
    };
    let entry = map.entry("metadata").or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry.as_object_mut() {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Which name rule a kind follows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    /// RBAC and a few others accept any path segment name.
    PathSegment,
}

pub(crate) fn name_rule(kind: &str) -> NameRule {
    match kind {
        "Namespace" => NameRule::Label,
        "Service" => NameRule::Dns1035,
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// Checks a name; returns the cause to report when it is not valid.
pub(crate) fn validate_name(kind: &str, name: &str) -> Option<Cause> {
    if name.is_empty() {
        return Some(field_required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    let v = Value::String(name.to_string());
    match name_rule(kind) {
        NameRule::Subdomain if !is_subdomain(name) => {
            Some(field_invalid("metadata.name", &v, DNS1123_SUBDOMAIN_MSG))
        }
        NameRule::Label if !is_label(name) => Some(field_invalid(
            "metadata.name",
            &v,
            if name.len() > 63 {
                "must be no more than 63 characters"
            } else {
                DNS1123_LABEL_MSG
            },
        )),
        NameRule::Dns1035 if !is_label(name) || !name.as_bytes()[0].is_ascii_lowercase() => {
            Some(field_invalid("metadata.name", &v, DNS1035_LABEL_MSG))
        }
        NameRule::PathSegment
            if name == "." || name == ".." || name.contains('/') || name.contains('%') =>
        {
            Some(field_invalid(
                "metadata.name",
                &v,
                "may not contain '/' or '%' and may not be '.' or '..'",
            ))
        }
        _ => None,
    }
}

/// Checks label keys and values the way the real server does (the common cases).
pub(crate) fn validate_labels(obj: &Value) -> Vec<Cause> {
    let mut causes = vec![];
    let Some(labels) = metadata(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
    else {
        return causes;
    };
    for (k, v) in labels {
        let Some(s) = v.as_str() else {
            causes.push(field_invalid(
                &format!("metadata.labels.{k}"),
                v,
                "label values must be strings",
            ));
            continue;
        };
        let ok = s.is_empty()
            || (s.len() <= 63
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
                && s.as_bytes()[0].is_ascii_alphanumeric()
                && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric());
        if !ok {
            causes.push(field_invalid(
                "metadata.labels",
                v,
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("ConfigMap", "a.b-c").is_none());
        assert!(validate_name("ConfigMap", "Bad").is_some());
        assert!(validate_name("Namespace", "a.b").is_some());
        assert!(validate_name("Service", "1abc").is_some());
        assert!(validate_name("ClusterRole", "system:admin").is_none());
    }

    #[test]
    fn uid_shape() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
