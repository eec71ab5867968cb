//! Fields of an ApplicationSet that generation accepts but does not act on, reported so the
//! engine can show them in a warning condition instead of ignoring them silently.

use serde_json::Value;

/// A field that was accepted but not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Path of the field inside the ApplicationSet.
    pub field: String,
    /// Why it has no effect.
    pub message: String,
}

const SPEC_ACTED_ON: &[&str] = &[
    "goTemplate",
    "goTemplateOptions",
    "generators",
    "template",
    "templatePatch",
    "syncPolicy",
    "applyNestedSelectors",
];

const SPEC_NOT_ACTED_ON: &[(&str, &str)] = &[
    (
        "strategy",
        "progressive syncs (RollingSync) are not acted on by ApplicationSet generation",
    ),
    (
        "preservedFields",
        "preserving fields of existing Applications is left to the engine's apply step",
    ),
    (
        "ignoreApplicationDifferences",
        "ignoring differences of existing Applications is left to the engine's apply step",
    ),
];

const TEMPLATE_METADATA: &[&str] = &["name", "namespace", "labels", "annotations", "finalizers"];

/// Warnings about `appset`'s spec, in field order.
pub(crate) fn of(appset: &Value) -> Vec<Warning> {
    let mut out = Vec::new();
    let Some(spec) = appset.get("spec").and_then(Value::as_object) else {
        return out;
    };
    for key in spec.keys() {
        if SPEC_ACTED_ON.contains(&key.as_str()) {
            continue;
        }
        let message = match SPEC_NOT_ACTED_ON.iter().find(|(k, _)| k == key) {
            Some((_, m)) => (*m).to_string(),
            None => "unknown field, ignored".to_string(),
        };
        out.push(Warning {
            field: format!("spec.{key}"),
            message,
        });
    }
    if let Some(policy) = spec.get("syncPolicy").and_then(Value::as_object) {
        for key in policy.keys() {
            let message = match key.as_str() {
                "preserveResourcesOnDeletion" => continue,
                "applicationsSync" => {
                    "not acted on by generation: the engine's apply step reads it through applications_sync()"
                }
                _ => "unknown field, ignored",
            };
            out.push(Warning {
                field: format!("spec.syncPolicy.{key}"),
                message: message.to_string(),
            });
        }
    }
    if let Some(metadata) = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(Value::as_object)
    {
        for key in metadata.keys() {
            if !TEMPLATE_METADATA.contains(&key.as_str()) {
                out.push(Warning {
                    field: format!("spec.template.metadata.{key}"),
                    message: "not part of an ApplicationSet template's metadata (name, namespace, labels, annotations, finalizers), ignored"
                        .to_string(),
                });
            }
        }
    }
    if spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("namespace"))
        .is_some()
    {
        out.push(Warning {
            field: "spec.template.metadata.namespace".to_string(),
            message: "Applications are always created in the ApplicationSet's namespace"
                .to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_ignored_fields() {
        let w = of(&json!({"spec": {
            "generators": [], "strategy": {}, "bogus": 1,
            "syncPolicy": {"preserveResourcesOnDeletion": true, "applicationsSync": "create-only"},
            "template": {"metadata": {"name": "x", "generateName": "y"}}
        }}));
        let fields: Vec<&str> = w.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.strategy",
                "spec.bogus",
                "spec.syncPolicy.applicationsSync",
                "spec.template.metadata.generateName"
            ]
        );
        assert!(of(&json!({"spec": {"generators": [], "goTemplate": true}})).is_empty());
    }
}
