//! Kustomize sources, with Argo CD's `spec.source.kustomize` overrides applied on top
//! (namePrefix, nameSuffix, namespace, images, commonLabels, commonAnnotations, their `force`
//! variants, replicas, patches, components).

use crate::{Error, relative};
use plumb_core::manifest::Manifest;
use plumb_kustomize::{Image, Overrides, Patch, PatchTarget};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn invalid(field: &str, problem: String) -> Error {
    Error::KustomizeOption {
        field: field.to_string(),
        problem,
    }
}

fn text(value: &Value, field: &str) -> Option<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn string_map(value: &Value, field: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut map = BTreeMap::new();
    if let Some(entries) = value.get(field).filter(|v| !v.is_null()) {
        let entries = entries
            .as_object()
            .ok_or_else(|| invalid(field, "must be a map of strings".into()))?;
        for (key, entry) in entries {
            let entry = entry
                .as_str()
                .ok_or_else(|| invalid(field, format!("{key}: must be a string")))?;
            map.insert(key.clone(), entry.to_string());
        }
    }
    Ok(map)
}

/// Reads Argo CD's kustomize block into overrides.
pub(crate) fn overrides(kustomize: &Value) -> Result<Overrides, Error> {
    let mut overrides = Overrides {
        name_prefix: text(kustomize, "namePrefix"),
        name_suffix: text(kustomize, "nameSuffix"),
        namespace: text(kustomize, "namespace"),
        common_labels: string_map(kustomize, "commonLabels")?,
        force_common_labels: kustomize.get("forceCommonLabels").and_then(Value::as_bool)
            == Some(true),
        common_annotations: string_map(kustomize, "commonAnnotations")?,
        force_common_annotations: kustomize
            .get("forceCommonAnnotations")
            .and_then(Value::as_bool)
            == Some(true),
        ..Default::default()
    };
    for (index, image) in kustomize
        .get("images")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let spec = image
            .as_str()
            .ok_or_else(|| invalid("images", format!("[{index}]: must be a string")))?;
        overrides.images.push(
            Image::parse(spec)
                .map_err(|e| invalid("images", format!("[{index}] {spec:?}: {e}")))?,
        );
    }
    for (index, replica) in kustomize
        .get("replicas")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = text(replica, "name")
            .ok_or_else(|| invalid("replicas", format!("[{index}].name: must be set")))?;
        let count = match replica.get("count") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| invalid("replicas", format!("[{index}].count: must be an integer")))?;
        overrides.replicas.push((name, count));
    }
    for patch in kustomize
        .get("patches")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let target = patch.get("target").map(|t| PatchTarget {
            group: text(t, "group"),
            version: text(t, "version"),
            kind: text(t, "kind"),
            name: text(t, "name"),
            namespace: text(t, "namespace"),
            label_selector: text(t, "labelSelector"),
            annotation_selector: text(t, "annotationSelector"),
        });
        let options = patch
            .get("options")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| v.as_bool().map(|b| (k.clone(), b)))
                    .collect()
            })
            .unwrap_or_default();
        overrides.patches.push(Patch {
            patch: text(patch, "patch"),
            path: text(patch, "path"),
            target,
            options,
        });
    }
    for component in kustomize
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(component) = component.as_str() {
            overrides.components.push(component.to_string());
        }
    }
    Ok(overrides)
}

/// Builds the kustomization in `dir` (already confined to `root`).
pub(crate) fn build(
    root: &Path,
    dir: &Path,
    kustomize: Option<&Value>,
) -> Result<Vec<Manifest>, Error> {
    let options = plumb_kustomize::Options::default();
    let shown = relative(root, dir);
    let objects = match kustomize.filter(|k| k.as_object().is_some_and(|m| !m.is_empty())) {
        Some(kustomize) => {
            plumb_kustomize::build_with_overrides(root, dir, &options, &overrides(kustomize)?)
        }
        None => plumb_kustomize::build(root, dir, &options),
    }
    .map_err(|source| Error::Kustomize {
        path: shown.clone(),
        source,
    })?;
    let file = format!("{shown}/kustomization.yaml");
    Ok(crate::manifests_from(objects, &file))
}
