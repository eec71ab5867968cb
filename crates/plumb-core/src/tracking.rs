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

/// Sets the tracking annotation on a desired object.
pub fn stamp(object: &mut Value, app: &str) {
    let key = ObjectKey::of(object);
    let id = tracking_id(app, &key);
    if let Some(map) = object.as_object_mut() {
        let metadata = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(metadata) = metadata.as_object_mut() {
            let annotations = metadata
                .entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()));
            if !annotations.is_object() {
                *annotations = Value::Object(Default::default());
            }
            if let Some(annotations) = annotations.as_object_mut() {
                annotations.insert(TRACKING_ANNOTATION.to_string(), Value::String(id));
            }
        }
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
    fn instance_names() {
        assert_eq!(app_instance("argocd", "web", "argocd"), "web");
        assert_eq!(app_instance("team-a", "web", "argocd"), "team-a_web");
    }
}
