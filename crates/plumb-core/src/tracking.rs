//! Ownership tracking: which application applied an object.
//!
//! plumb writes Argo CD's `argocd.argoproj.io/tracking-id` annotation,
//! `<app>:<group>/<kind>:<namespace>/<name>`, on every object it applies. An object is owned by
//! an application only when the annotation names that application *and* the object's own
//! identity: a copy of a managed object (say, exported and re-created by hand under another
//! name) carries the annotation but is not owned, so it is never pruned.

use crate::key::{ObjectKey, str_at};
use serde_json::Value;

/// The annotation holding the tracking id.
pub const TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";

/// The label plumb puts on every object it applies, so watches can select managed objects
/// only. Its value is [`instance_label_value`] of the application instance.
pub const INSTANCE_LABEL: &str = "plumb.dev/instance";

/// A valid label value standing for an application instance: the instance itself when it is
/// a valid label value, otherwise a stable hash of it.
pub fn instance_label_value(instance: &str) -> String {
    let valid = !instance.is_empty()
        && instance.len() <= 63
        && instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && instance
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
        && instance
            .as_bytes()
            .last()
            .is_some_and(u8::is_ascii_alphanumeric);
    if valid {
        return instance.to_string();
    }
    // FNV-1a: stable across processes and versions, unlike std's hasher.
    let hash = instance
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("plumb-{hash:016x}")
}

/// The instance name Argo CD uses for an application: its name, prefixed with its namespace
/// when that is not the control-plane namespace.
pub fn app_instance(app_namespace: &str, app_name: &str, control_namespace: &str) -> String {
    if app_namespace.is_empty() || app_namespace == control_namespace {
        app_name.to_string()
    } else {
        format!("{app_namespace}_{app_name}")
    }
}

/// The tracking id for `key` applied by application instance `app`.
pub fn tracking_id(app: &str, key: &ObjectKey) -> String {
    format!(
        "{app}:{}/{}:{}/{}",
        key.group, key.kind, key.namespace, key.name
    )
}

/// Whether the live `object` is owned by application instance `app`.
pub fn is_owned_by(object: &Value, app: &str) -> bool {
    let id = str_at(object, &["metadata", "annotations", TRACKING_ANNOTATION]);
    !id.is_empty() && id == tracking_id(app, &ObjectKey::of(object))
}

/// The application instance named by the object's tracking id, if it has one.
pub fn owner_of(object: &Value) -> Option<&str> {
    let id = str_at(object, &["metadata", "annotations", TRACKING_ANNOTATION]);
    id.split_once(':')
        .map(|(app, _)| app)
        .filter(|app| !app.is_empty())
}

/// Sets the tracking annotation and the instance label on a desired object.
pub fn stamp(object: &mut Value, app: &str) {
    set_metadata_entry(object, "labels", INSTANCE_LABEL, instance_label_value(app));
    let id = tracking_id(app, &ObjectKey::of(object));
    set_metadata_entry(object, "annotations", TRACKING_ANNOTATION, id);
}

/// Sets `metadata.<field>.<key> = value`, creating the maps as needed.
pub fn set_metadata_entry(object: &mut Value, field: &str, key: &str, value: String) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    if !metadata.is_object() {
        *metadata = Value::Object(Default::default());
    }
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    let entries = metadata
        .entry(field)
        .or_insert_with(|| Value::Object(Default::default()));
    if !entries.is_object() {
        *entries = Value::Object(Default::default());
    }
    if let Some(entries) = entries.as_object_mut() {
        entries.insert(key.to_string(), Value::String(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamped_object_is_owned_and_copy_is_not() {
        let mut object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod"}});
        stamp(&mut object, "guestbook");
        assert_eq!(
            str_at(&object, &["metadata", "annotations", TRACKING_ANNOTATION]),
            "guestbook:apps/Deployment:prod/web"
        );
        assert!(is_owned_by(&object, "guestbook"));
        assert!(!is_owned_by(&object, "other"));
        assert_eq!(owner_of(&object), Some("guestbook"));
        let mut copy = object.clone();
        copy["metadata"]["name"] = json!("web-copy");
        assert!(!is_owned_by(&copy, "guestbook"));
    }

    #[test]
    fn label_values_are_valid_and_stable() {
        assert_eq!(instance_label_value("team-a_web"), "team-a_web");
        let long = "x".repeat(80);
        let value = instance_label_value(&long);
        assert_eq!(value, instance_label_value(&long));
        assert!(value.len() <= 63 && value.starts_with("plumb-"));
    }

    #[test]
    fn instance_names() {
        assert_eq!(app_instance("argocd", "web", "argocd"), "web");
        assert_eq!(app_instance("team-a", "web", "argocd"), "team-a_web");
    }
}
