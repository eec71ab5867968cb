//! The builtin transformers, run in kustomize's order for each kustomization: patches,
//! namespace, prefix, suffix, labels, annotations, JSON 6902 patches, replicas, images,
//! replacements.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::Error;
use crate::accumulate::{Acc, Target, run_patches, run_replacements};
use crate::error::field_err;
use crate::fieldspec::{Create, FieldSpec, NameBackRef, TransformerConfig, apply_specs};
use crate::kustomization::ImageArgs;

pub(crate) fn run_builtin(t: &Target<'_>, acc: &mut Acc) -> Result<(), Error> {
    // One builtin transformer per configured instance, in kustomize's order; with build metadata
    // each instance is recorded on every object.
    let k = &t.k;
    if let Some(p) = k.patches_strategic_merge.as_ref().filter(|p| !p.is_empty()) {
        let list = crate::patch::from_smp_list(p);
        track(t, acc, "PatchStrategicMergeTransformer", |acc| {
            run_patches(t, acc, "patchesStrategicMerge", &list, 0)
        })?;
    }
    for (i, p) in k.patches.iter().flatten().enumerate() {
        track(t, acc, "PatchTransformer", |acc| {
            run_patches(t, acc, "patches", std::slice::from_ref(p), i)
        })?;
    }
    if let Some(ns) = k.namespace.as_ref().filter(|n| !n.is_empty()) {
        track(t, acc, "NamespaceTransformer", |acc| {
            let specs = acc.config.namespace.clone();
            namespace(acc, ns, &specs).map_err(|m| field_err(&t.file, "namespace", m))
        })?;
    }
    if let Some(p) = k.name_prefix.as_ref().filter(|n| !n.is_empty()) {
        let specs = acc.config.name_prefix.clone();
        track(t, acc, "PrefixTransformer", |acc| {
            prefix_suffix(acc, p, "", &specs).map_err(|m| field_err(&t.file, "namePrefix", m))
        })?;
    }
    if let Some(s) = k.name_suffix.as_ref().filter(|n| !n.is_empty()) {
        let specs = acc.config.name_suffix.clone();
        track(t, acc, "SuffixTransformer", |acc| {
            prefix_suffix(acc, "", s, &specs).map_err(|m| field_err(&t.file, "nameSuffix", m))
        })?;
    }
    let label_entries = k.labels.clone().unwrap_or_default();
    let common_labels = k.common_labels.clone().unwrap_or_default();
    if !label_entries.is_empty() || !common_labels.is_empty() {
        for l in &label_entries {
            track(t, acc, "LabelTransformer", |acc| label_entry(t, acc, l))?;
        }
        let specs = acc.config.common_labels.clone();
        track(t, acc, "LabelTransformer", |acc| {
            if common_labels.is_empty() {
                // Configured (and recorded) by kustomize, but with nothing to set.
                return Ok(());
            }
            set_map_entries(acc, &common_labels, &specs)
                .map_err(|m| field_err(&t.file, "commonLabels", m))
        })?;
    }
    if let Some(a) = k.common_annotations.as_ref().filter(|a| !a.is_empty()) {
        let specs = acc.config.common_annotations.clone();
        track(t, acc, "AnnotationsTransformer", |acc| {
            set_map_entries(acc, a, &specs).map_err(|m| field_err(&t.file, "commonAnnotations", m))
        })?;
    }
    for (i, p) in k.patches_json6902.iter().flatten().enumerate() {
        track(t, acc, "PatchJson6902Transformer", |acc| {
            run_patches(t, acc, "patchesJson6902", std::slice::from_ref(p), i)
        })?;
    }
    for r in k.replicas.iter().flatten() {
        track(t, acc, "ReplicaCountTransformer", |acc| {
            let specs = acc.config.replicas.clone();
            replicas(acc, std::slice::from_ref(r), &specs)
                .map_err(|m| field_err(&t.file, "replicas", m))
        })?;
    }
    for img in k
        .images
        .iter()
        .flatten()
        .chain(k.image_tags.iter().flatten())
    {
        track(t, acc, "ImageTagTransformer", |acc| {
            let specs = acc.config.images.clone();
            images_transform(acc, img, &specs).map_err(|m| field_err(&t.file, "images", m))
        })?;
    }
    if let Some(r) = k.replacements.as_ref().filter(|r| !r.is_empty()) {
        track(t, acc, "ReplacementTransformer", |acc| {
            run_replacements(t, acc, r)
        })?;
    }
    for entry in k.transformers.clone().unwrap_or_default() {
        crate::plugins::run_transformer_config(t, acc, &entry)?;
    }
    Ok(())
}

/// Run a transformer and, when build metadata is on, record it on every resource.
fn track(
    t: &Target<'_>,
    acc: &mut Acc,
    kind: &str,
    f: impl FnOnce(&mut Acc) -> Result<(), Error>,
) -> Result<(), Error> {
    if !t.origins {
        return f(acc);
    }
    f(acc)?;
    let file = t
        .file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let configured_in = if t.rel.is_empty() {
        file
    } else {
        format!("{}/{}", t.rel, file)
    };
    // Kustomize records every configured transformer on every object it ran over, whether
    // or not it changed that object.
    for r in &mut acc.resources {
        r.transformations.push(json!({
            "configuredIn": configured_in,
            "configuredBy": {"apiVersion": "builtin", "kind": kind},
        }));
    }
    Ok(())
}

pub(crate) fn namespace(acc: &mut Acc, ns: &str, specs: &[FieldSpec]) -> Result<(), String> {
    let specs: Vec<FieldSpec> = specs
        .iter()
        .filter(|fs| fs.path != "metadata/namespace")
        .cloned()
        .collect();
    for r in &mut acc.resources {
        let gvk = r.gvk();
        if !gvk.is_cluster_scoped() {
            r.set_namespace(ns);
        }
        let api = r
            .obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let own: Vec<FieldSpec> = specs
            .iter()
            .filter(|fs| !(fs.path == "metadata/name" && api != "v1"))
            .filter(|fs| {
                !((gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding")
                    && fs.path == "subjects/namespace")
            })
            .cloned()
            .collect();
        let old = (r.name().to_string(), r.namespace().to_string());
        apply_specs(&mut r.obj, &gvk, &own, Create::Scalar, &mut |v| {
            *v = Value::String(ns.to_string());
            Ok(())
        })?;
        if r.name() != old.0 {
            r.history.push(old);
        }
        if gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding" {
            let subjects = r.obj.get_mut("subjects");
            if let Some(Value::Array(subjects)) = subjects {
                for s in subjects {
                    if s.get("name").and_then(Value::as_str) == Some("default")
                        && let Some(m) = s.as_object_mut()
                    {
                        m.insert("namespace".into(), Value::String(ns.to_string()));
                    }
                }
            }
        }
    }
    Ok(())
}

const PREFIX_SKIP: &[(&str, &str)] = &[
    ("", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("", "Namespace"),
];

pub(crate) fn prefix_suffix(
    acc: &mut Acc,
    prefix: &str,
    suffix: &str,
    specs: &[FieldSpec],
) -> Result<(), String> {
    for r in &mut acc.resources {
        let gvk = r.gvk();
        if PREFIX_SKIP
            .iter()
            .any(|(g, k)| gvk.kind == *k && (g.is_empty() || gvk.group == *g))
        {
            continue;
        }
        for fs in specs {
            if !fs.matches(&gvk) {
                continue;
            }
            if fs.path == "metadata/name" {
                let name = format!("{prefix}{}{suffix}", r.name());
                r.set_name(&name);
                continue;
            }
            crate::fieldspec::visit(&mut r.obj, &fs.segments(), None, &mut |v| {
                if let Value::String(s) = v {
                    *s = format!("{prefix}{s}{suffix}");
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

fn label_entry(
    t: &Target<'_>,
    acc: &mut Acc,
    l: &crate::kustomization::LabelArgs,
) -> Result<(), Error> {
    let mut specs: Vec<FieldSpec> = Vec::new();
    for f in &l.fields {
        let fs: FieldSpec = serde_json::from_value(f.clone())
            .map_err(|e| field_err(&t.file, "labels", format!("fields: {e}")))?;
        specs.push(fs);
    }
    specs.extend(acc.config.labels.iter().cloned());
    if l.include_selectors {
        specs.extend(acc.config.common_labels.iter().cloned());
    } else {
        if l.include_templates {
            specs.extend(acc.config.template_labels.iter().cloned());
        }
        specs.push(FieldSpec::new("metadata/labels", true));
    }
    set_map_entries(acc, &l.pairs, &specs).map_err(|m| field_err(&t.file, "labels", m))
}

pub(crate) fn set_map_entries(
    acc: &mut Acc,
    entries: &BTreeMap<String, String>,
    specs: &[FieldSpec],
) -> Result<(), String> {
    // The same path may be listed more than once (e.g. metadata/labels with and without a
    // kind); applying twice is harmless for map entries.
    for r in &mut acc.resources {
        let gvk = r.gvk();
        apply_specs(&mut r.obj, &gvk, specs, Create::Map, &mut |v| {
            if v.is_null() {
                *v = Value::Object(Map::new());
            }
            match v {
                Value::Object(m) => {
                    for (k, val) in entries {
                        m.insert(k.clone(), Value::String(val.clone()));
                    }
                    Ok(())
                }
                _ => Err("expected a map at a label/annotation field".into()),
            }
        })?;
    }
    Ok(())
}

pub(crate) fn replicas(
    acc: &mut Acc,
    list: &[crate::kustomization::ReplicaArgs],
    specs: &[FieldSpec],
) -> Result<(), String> {
    for rep in list {
        let mut found = false;
        for r in &mut acc.resources {
            if !r.all_ids().iter().any(|(n, _)| n == &rep.name) {
                continue;
            }
            let gvk = r.gvk();
            let matching: Vec<FieldSpec> = specs
                .iter()
                .filter(|fs| fs.matches(&gvk))
                .cloned()
                .collect();
            if matching.is_empty() {
                continue;
            }
            found = true;
            apply_specs(&mut r.obj, &gvk, &matching, Create::Scalar, &mut |v| {
                *v = json!(rep.count);
                Ok(())
            })?;
        }
        if !found {
            let kinds: Vec<String> = specs
                .iter()
                .map(|fs| {
                    crate::resource::Gvk {
                        group: fs.group.clone(),
                        version: fs.version.clone(),
                        kind: fs.kind.clone(),
                    }
                    .display()
                })
                .collect();
            return Err(format!(
                "resource with name {} does not match a config with the following GVK [{}]",
                rep.name,
                kinds.join(" ")
            ));
        }
    }
    Ok(())
}

/// Split an image reference into (name, tag-or-digest suffix including its `:`/`@`).
fn split_image(image: &str) -> (&str, &str) {
    if let Some(at) = image.find('@') {
        let name = &image[..at];
        let (n, _) = split_tag(name);
        return (n, &image[n.len()..]);
    }
    split_tag(image)
}

fn split_tag(image: &str) -> (&str, &str) {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].find(':') {
        Some(c) => (&image[..last_slash + c], &image[last_slash + c..]),
        None => (image, ""),
    }
}

fn update_image(value: &str, img: &ImageArgs) -> Option<String> {
    let (name, tag) = split_image(value);
    if name != img.name {
        return None;
    }
    let new_name = img
        .new_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(name);
    let new_tag = img.new_tag.as_deref().filter(|s| !s.is_empty());
    let digest = img.digest.as_deref().filter(|s| !s.is_empty());
    let mut tag = match (new_tag, digest) {
        (Some(t), Some(d)) => format!(":{t}@{d}"),
        (Some(t), None) => format!(":{t}"),
        (None, Some(d)) => format!("@{d}"),
        (None, None) => tag.to_string(),
    };
    if let Some(suffix) = img.tag_suffix.as_deref().filter(|s| !s.is_empty()) {
        tag.push_str(suffix);
    }
    Some(format!("{new_name}{tag}"))
}

pub(crate) fn images_transform(
    acc: &mut Acc,
    img: &ImageArgs,
    specs: &[FieldSpec],
) -> Result<(), String> {
    for r in &mut acc.resources {
        update_containers(&mut r.obj, img);
        let gvk = r.gvk();
        apply_specs(&mut r.obj, &gvk, specs, Create::Scalar, &mut |v| {
            if let Value::String(s) = v
                && let Some(n) = update_image(s, img)
            {
                *s = n;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Kustomize's legacy image filter: any `containers`/`initContainers` list at any depth.
fn update_containers(v: &mut Value, img: &ImageArgs) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if (k == "containers" || k == "initContainers")
                    && let Value::Array(items) = child
                {
                    for c in items.iter_mut() {
                        if let Some(Value::String(s)) = c.get_mut("image")
                            && let Some(n) = update_image(s, img)
                        {
                            *s = n;
                        }
                    }
                }
                update_containers(child, img);
            }
        }
        Value::Array(items) => {
            for i in items {
                update_containers(i, img);
            }
        }
        _ => {}
    }
}

/// Field specs derived from an OpenAPI definitions file listed under `crds:`.
pub(crate) fn config_from_crd(text: &str) -> Result<TransformerConfig, String> {
    let docs = crate::yaml::parse_raw(text).map_err(|e| e.to_string())?;
    let defs = docs.into_iter().next().unwrap_or(Value::Null);
    let Value::Object(defs) = defs else {
        return Err("expected a map of OpenAPI definitions".into());
    };
    let mut cfg = TransformerConfig::default();
    for (type_name, def) in &defs {
        let Some(props) = def.pointer("/Schema/properties").and_then(Value::as_object) else {
            continue;
        };
        if !(props.contains_key("kind")
            && props.contains_key("apiVersion")
            && props.contains_key("metadata"))
        {
            continue;
        }
        let kind = type_name.rsplit('.').next().unwrap_or("").to_string();
        crd_walk(&mut cfg, &kind, &defs, type_name, &mut Vec::new(), 0);
    }
    Ok(cfg)
}

fn crd_walk(
    cfg: &mut TransformerConfig,
    kind: &str,
    defs: &Map<String, Value>,
    type_name: &str,
    path: &mut Vec<String>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let Some(props) = defs
        .get(type_name)
        .and_then(|d| d.pointer("/Schema/properties"))
        .and_then(Value::as_object)
    else {
        return;
    };
    for (prop, p) in props {
        path.push(prop.clone());
        let fs = |extra: Option<&str>| {
            let mut parts = path.clone();
            if let Some(e) = extra {
                parts.push(e.to_string());
            }
            FieldSpec {
                kind: kind.to_string(),
                path: parts.join("/"),
                ..Default::default()
            }
        };
        if p.get("x-kubernetes-annotation").is_some() {
            cfg.common_annotations.push(fs(None));
        }
        if p.get("x-kubernetes-label-selector").is_some() {
            cfg.common_labels.push(fs(None));
        }
        if p.get("x-kubernetes-identity").is_some() {
            cfg.name_prefix.push(fs(None));
        }
        if let (Some(v), Some(k)) = (
            p.get("x-kubernetes-object-ref-api-version")
                .and_then(Value::as_str),
            p.get("x-kubernetes-object-ref-kind")
                .and_then(Value::as_str),
        ) {
            let key = p
                .get("x-kubernetes-object-ref-name-key")
                .and_then(Value::as_str)
                .unwrap_or("name");
            cfg.name_reference.push(NameBackRef {
                kind: k.to_string(),
                version: v.to_string(),
                group: String::new(),
                field_specs: vec![fs(Some(key))],
            });
        }
        if let Some(r) = p.get("$ref").and_then(Value::as_str) {
            let r = r.to_string();
            crd_walk(cfg, kind, defs, &r, path, depth + 1);
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(
        name: &str,
        new_name: Option<&str>,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> ImageArgs {
        ImageArgs {
            name: name.into(),
            new_name: new_name.map(Into::into),
            new_tag: tag.map(Into::into),
            digest: digest.map(Into::into),
            tag_suffix: None,
        }
    }

    #[test]
    fn image_updates() {
        assert_eq!(
            update_image("nginx:1.0", &img("nginx", None, Some("2"), None)),
            Some("nginx:2".into())
        );
        assert_eq!(
            update_image(
                "localhost:5000/app:1",
                &img("localhost:5000/app", Some("r/app"), None, None)
            ),
            Some("r/app:1".into())
        );
        assert_eq!(
            update_image(
                "nginx@sha256:abc",
                &img("nginx", None, Some("1"), Some("sha256:def"))
            ),
            Some("nginx:1@sha256:def".into())
        );
        assert_eq!(
            update_image("nginx-extra:1", &img("nginx", None, Some("2"), None)),
            None
        );
    }
}
