//! One Application from the template and one parameter set: rendering, the deletion
//! finalizer, `templatePatch`, then namespace and owner reference.

use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::params::Params;
use crate::template::Renderer;

/// Finalizer that makes Argo CD delete an Application's resources with it.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// Metadata fields an ApplicationSet template may set (Argo CD's ApplicationSetTemplateMeta).
const TEMPLATE_METADATA: &[&str] = &["name", "namespace", "labels", "annotations", "finalizers"];

/// What every Application of one set shares.
pub(crate) struct SetInfo<'a> {
    pub(crate) name: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) uid: Option<&'a str>,
    pub(crate) preserve_resources_on_deletion: bool,
    pub(crate) template_patch: Option<&'a str>,
}

/// The Application for `params`, from a template already merged with its generator's.
pub(crate) fn render(
    set: &SetInfo<'_>,
    template: &Value,
    params: &Params,
    renderer: &Renderer,
) -> Result<Value, Error> {
    let mut app = template_application(template)?;
    // Argo CD returns the template untouched (and without the finalizer) for an empty set.
    if !params.is_empty() {
        app = renderer
            .render_tree(&app, params)
            .map_err(|(at, message)| Error::Template {
                field: "spec.template".to_string(),
                at,
                message,
            })?;
        let has_finalizers = app
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if !set.preserve_resources_on_deletion
            && !has_finalizers
            && let Some(metadata) = section(&mut app, "metadata")
        {
            metadata.insert("finalizers".into(), json!([RESOURCES_FINALIZER]));
        }
    }
    if let Some(patch) = set.template_patch {
        apply_template_patch(&mut app, patch, params, renderer)?;
    }
    let Value::Object(mut body) = app else {
        return Err(Error::invalid("spec.template", "must be an object"));
    };
    let mut metadata = match body.remove("metadata") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    metadata.insert("namespace".into(), json!(set.namespace));
    let mut owner = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "name": set.name,
        "controller": true,
        "blockOwnerDeletion": true,
    });
    if let (Some(uid), Value::Object(o)) = (set.uid, &mut owner) {
        o.insert("uid".into(), json!(uid));
    }
    metadata.insert("ownerReferences".into(), json!([owner]));
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("argoproj.io/v1alpha1"));
    out.insert("kind".into(), json!("Application"));
    out.insert("metadata".into(), Value::Object(metadata));
    out.insert(
        "spec".into(),
        body.remove("spec").unwrap_or_else(|| json!({})),
    );
    Ok(Value::Object(out))
}

/// `{metadata, spec}` from the template, keeping only the metadata Argo CD templates.
fn template_application(template: &Value) -> Result<Value, Error> {
    let empty = Map::new();
    let template = match template {
        Value::Null => &empty,
        Value::Object(t) => t,
        _ => return Err(Error::invalid("spec.template", "must be an object")),
    };
    let mut metadata = Map::new();
    match template.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for key in TEMPLATE_METADATA {
                if let Some(v) = m.get(*key).filter(|v| !v.is_null()) {
                    metadata.insert((*key).to_string(), v.clone());
                }
            }
        }
        Some(_) => {
            return Err(Error::invalid(
                "spec.template.metadata",
                "must be an object",
            ));
        }
    }
    let spec = match template.get("spec") {
        None | Some(Value::Null) => json!({}),
        Some(s @ Value::Object(_)) => s.clone(),
        Some(_) => return Err(Error::invalid("spec.template.spec", "must be an object")),
    };
    Ok(json!({ "metadata": metadata, "spec": spec }))
}

/// `v[section]` as a mutable object, made one if it is anything else.
fn section<'v>(v: &'v mut Value, section: &str) -> Option<&'v mut Map<String, Value>> {
    if !v.is_object() {
        *v = json!({});
    }
    let slot = v
        .as_object_mut()?
        .entry(section.to_string())
        .or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut()
}

/// Render `templatePatch`, read it as YAML or JSON and apply it as Kubernetes applies a
/// strategic merge patch to an Application (whose fields have no list merge keys: maps
/// merge, lists are replaced, `null` removes, finalizers are unioned). `spec.project`
/// cannot be changed by a patch.
fn apply_template_patch(
    app: &mut Value,
    patch: &str,
    params: &Params,
    renderer: &Renderer,
) -> Result<(), Error> {
    let field = "spec.templatePatch";
    let rendered = renderer
        .render_str(patch, params)
        .map_err(|message| Error::Template {
            field: field.to_string(),
            at: ".".to_string(),
            message: format!("error replacing values in templatePatch: {message}"),
        })?;
    let parsed = if rendered.trim_start().starts_with('{') {
        serde_json::from_str::<Value>(&rendered).map_err(|e| e.to_string())
    } else {
        plumb_helm::yaml::parse_documents(&rendered)
            .map(|docs| docs.into_iter().next().unwrap_or(Value::Null))
    }
    .map_err(|e| {
        Error::invalid(
            field,
            format!("error while converting template to json: {e}"),
        )
    })?;
    let patch = match parsed {
        Value::Object(p) => p,
        Value::Null => Map::new(),
        _ => {
            return Err(Error::invalid(
                field,
                "invalid templatePatch: must render to a map",
            ));
        }
    };
    let project = app.get("spec").and_then(|s| s.get("project")).cloned();
    let finalizers_before = app
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .cloned();
    merge_patch(app, &Value::Object(patch.clone()));
    // ObjectMeta.finalizers has patchStrategy merge: a patch adds to them.
    if let (Some(Value::Array(before)), Some(Value::Array(added))) = (
        finalizers_before,
        patch.get("metadata").and_then(|m| m.get("finalizers")),
    ) {
        let mut union = before;
        for f in added {
            if !union.contains(f) {
                union.push(f.clone());
            }
        }
        if let Some(metadata) = section(app, "metadata") {
            metadata.insert("finalizers".into(), Value::Array(union));
        }
    }
    if let Some(spec) = section(app, "spec") {
        match project {
            Some(p) => {
                spec.insert("project".into(), p);
            }
            None => {
                spec.remove("project");
            }
        }
    }
    Ok(())
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(target) = target {
        for (k, v) in patch {
            if v.is_null() {
                target.remove(k);
            } else {
                merge_patch(target.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}
