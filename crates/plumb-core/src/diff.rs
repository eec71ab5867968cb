//! Comparing desired and live objects, and masking Secret values.
//!
//! The engine compares the *result of a server-side apply dry-run* with the live object, both
//! passed through [`normalize`]. The dry-run result carries every default the API server adds,
//! so defaulted fields never show as differences — the false "out of sync" both Argo CD and
//! Flux users report most.
//!
//! [`mask_secrets`] is the single place Secret values are hidden; every output (CLI diff, status,
//! events, logs) goes through it.

use crate::key::{group_of, str_at};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Metadata fields the server owns; they never make an object out of sync.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
];

/// The annotation `kubectl apply` keeps; irrelevant to server-side apply.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Strips what the server owns (metadata bookkeeping and `status`), so two objects compare
/// equal when their declared state is equal.
pub fn normalize(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in SERVER_METADATA {
                metadata.remove(*field);
            }
            let mut drop_annotations = false;
            if let Some(annotations) = metadata
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
            {
                annotations.remove(LAST_APPLIED);
                drop_annotations = annotations.is_empty();
            }
            if drop_annotations {
                metadata.remove("annotations");
            }
        }
    }
    object
}

/// Whether the dry-run result of applying the desired object equals the live object.
pub fn is_in_sync(dry_run: &Value, live: &Value) -> bool {
    normalize(dry_run) == normalize(live)
}

fn is_secret(object: &Value) -> bool {
    str_at(object, &["kind"]) == "Secret" && group_of(str_at(object, &["apiVersion"])).is_empty()
}

/// Replaces every value under `data` and `stringData` of Secrets with a mask, in all objects
/// given at once: equal values get equal masks, so a diff still shows *that* a value changed
/// without showing *what* it is. Also drops `last-applied-configuration`, which would carry the
/// values in clear. Non-Secret objects are left alone.
pub fn mask_secrets(objects: &mut [&mut Value]) {
    let mut masks: BTreeMap<String, String> = BTreeMap::new();
    for object in objects.iter_mut() {
        if !is_secret(object) {
            continue;
        }
        let Some(map) = object.as_object_mut() else {
            continue;
        };
        if let Some(annotations) = map
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
            .and_then(Value::as_object_mut)
        {
            annotations.remove(LAST_APPLIED);
        }
        for field in ["data", "stringData"] {
            if let Some(values) = map.get_mut(field).and_then(Value::as_object_mut) {
                mask_values(values, &mut masks);
            }
        }
    }
}

fn mask_values(values: &mut Map<String, Value>, masks: &mut BTreeMap<String, String>) {
    for value in values.values_mut() {
        let clear = match &*value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let next = masks.len();
        let mask = masks
            .entry(clear)
            .or_insert_with(|| "+".repeat(8 + next))
            .clone();
        *value = Value::String(mask);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_fields_and_status_do_not_count() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "uid": "1", "resourceVersion": "7", "managedFields": [],
                "annotations": {LAST_APPLIED: "{}"}},
            "data": {"k": "v"}, "status": {"x": 1}});
        let dry_run = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "uid": "1", "resourceVersion": "8"}, "data": {"k": "v"}});
        assert!(is_in_sync(&dry_run, &live));
        let changed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "w"}});
        assert!(!is_in_sync(&changed, &live));
    }

    #[test]
    fn secret_values_are_masked_consistently() {
        let mut desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "c2VjcmV0", "b": "c2FtZQ=="}});
        let mut live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s",
            "annotations": {LAST_APPLIED: "{\"data\":{\"a\":\"c2VjcmV0\"}}"}},
            "data": {"a": "b2xk", "b": "c2FtZQ=="}, "stringData": {"c": "plain"}});
        mask_secrets(&mut [&mut desired, &mut live]);
        let text = format!("{desired}{live}");
        assert!(!text.contains("c2VjcmV0") && !text.contains("b2xk") && !text.contains("plain"));
        assert_eq!(desired["data"]["b"], live["data"]["b"]);
        assert_ne!(desired["data"]["a"], live["data"]["a"]);
    }

    #[test]
    fn other_kinds_are_not_masked() {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "x"}});
        mask_secrets(&mut [&mut cm]);
        assert_eq!(cm["data"]["a"], "x");
    }
}
