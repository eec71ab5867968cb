//! Object semantics shared by every write path: what a create or update may
//! change, system metadata, generation, defaulting, validation, status
//! handling, and the compare-and-swap commit.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::apply::{Scope, Writer, record_update};
use crate::cluster::Cluster;
use crate::defaults;
use crate::errors::{ApiError, Cause, field_forbidden, field_invalid, field_required};
use crate::field_validation::FieldValidation;
use crate::meta::{
    metadata, metadata_mut, new_uid, now, random_suffix, validate_labels, validate_name,
};
use crate::resources::ResourceType;
use crate::schema::Schema;
use crate::selectors::LabelSelector;
use crate::store::{WriteError, meta_str, object_rv};

/// Who writes and how, for one request.
#[derive(Debug, Clone)]
pub(crate) struct WriteCtx {
    pub manager: String,
    pub dry_run: bool,
    pub now: String,
    pub api_version: String,
    /// The `fieldValidation` parameter.
    pub validation: FieldValidation,
}

impl WriteCtx {
    pub fn internal(manager: &str, api_version: &str) -> Self {
        WriteCtx {
            manager: manager.to_string(),
            dry_run: false,
            now: now(),
            api_version: api_version.to_string(),
            validation: FieldValidation::Ignore,
        }
    }
}

pub(crate) fn schema_of(rt: &ResourceType) -> Schema<'_> {
    if rt.builtin {
        Schema::Builtin(&rt.kind)
    } else {
        Schema::Custom(rt.schema.as_ref())
    }
}

pub(crate) fn writer<'a>(rt: &'a ResourceType, ctx: &'a WriteCtx, sub: &'a str) -> Writer<'a> {
    Writer {
        manager: &ctx.manager,
        api_version: &ctx.api_version,
        subresource: sub,
        time: &ctx.now,
        schema: schema_of(rt),
        scope: match (rt.has_status, sub) {
            (true, "status") => Scope::StatusOnly,
            (true, _) => Scope::NoStatus,
            _ => Scope::All,
        },
    }
}

/// Renders a stored object at the requested version (no conversion beyond
/// `apiVersion`, as with a CRD's `None` strategy).
pub(crate) fn present<'a>(obj: &'a Value, rt: &ResourceType, version: &str) -> Cow<'a, Value> {
    if is_presented(obj, rt, version) {
        return Cow::Borrowed(obj);
    }
    let mut out = obj.clone();
    set_type(&mut out, rt, version);
    Cow::Owned(out)
}

/// Whether a stored object already carries the requested type (the common
/// case: reads at the storage version need no copy).
pub(crate) fn is_presented(obj: &Value, rt: &ResourceType, version: &str) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some(rt.kind.as_str())
        && obj.get("apiVersion").and_then(Value::as_str) == Some(rt.api_version(version).as_str())
}

pub(crate) fn set_type(obj: &mut Value, rt: &ResourceType, version: &str) {
    if let Some(m) = obj.as_object_mut() {
        let mut ordered = serde_json::Map::new();
        ordered.insert("apiVersion".into(), json!(rt.api_version(version)));
        ordered.insert("kind".into(), json!(rt.kind));
        for (k, v) in std::mem::take(m) {
            if k != "apiVersion" && k != "kind" {
                ordered.insert(k, v);
            }
        }
        *m = ordered;
    }
}

/// Checks the body's apiVersion and kind against the endpoint.
pub(crate) fn check_type(body: &Value, rt: &ResourceType, version: &str) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is unrecognized (must be of type object)",
        ));
    }
    let want = rt.api_version(version);
    if let Some(av) = body.get("apiVersion").and_then(Value::as_str)
        && av != want
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({want})"
        )));
    }
    if let Some(k) = body.get("kind").and_then(Value::as_str)
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

/// What `generation` tracks: everything but metadata, and but status when
/// status is a subresource (without one, status is ordinary content).
fn spec_view(obj: &Value, has_status: bool) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.shift_remove("metadata");
        if has_status {
            m.shift_remove("status");
        }
    }
    v
}

/// Kind-specific validation (the common cases clients hit).
fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = validate_labels(obj);
    let spec = obj.get("spec");
    if rt.builtin
        && let Some(r) = spec.and_then(|s| s.get("replicas"))
        && !r
            .as_i64()
            .is_some_and(|n| (0..=i64::from(i32::MAX)).contains(&n))
    {
        causes.push(field_invalid(
            "spec.replicas",
            r,
            "must be greater than or equal to 0",
        ));
    }
    match rt.kind.as_str() {
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            let selector = spec.and_then(|s| s.get("selector"));
            match selector {
                None => causes.push(field_required("spec.selector", "")),
                Some(sel) => {
                    let labels = spec
                        .and_then(|s| s.pointer("/template/metadata/labels"))
                        .and_then(Value::as_object);
                    let s = LabelSelector::from_object(sel);
                    if s.is_empty() {
                        causes.push(field_invalid(
                            "spec.selector",
                            sel,
                            "empty selector is invalid for deployment",
                        ));
                    } else if !s.matches_labels(labels) {
                        causes.push(field_invalid(
                            "spec.template.metadata.labels",
                            &labels.cloned().map(Value::Object).unwrap_or(Value::Null),
                            "`selector` does not match template `labels`",
                        ));
                    }
                    if let Some(old_sel) = old.and_then(|o| o.pointer("/spec/selector"))
                        && old_sel != sel
                    {
                        causes.push(field_invalid("spec.selector", sel, "field is immutable"));
                    }
                }
            }
        }
        "Pod"
            if spec
                .and_then(|s| s.get("containers"))
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty) =>
        {
            causes.push(field_required("spec.containers", ""));
        }
        "Job" => {
            let rp = spec
                .and_then(|s| s.pointer("/template/spec/restartPolicy"))
                .and_then(Value::as_str)
                .unwrap_or("Always");
            if rp != "Never" && rp != "OnFailure" {
                causes.push(Cause {
                    reason: "FieldValueNotSupported",
                    message: format!(
                        "Unsupported value: \"{rp}\": supported values: \"OnFailure\", \"Never\""
                    ),
                    field: "spec.template.spec.restartPolicy".into(),
                });
            }
            if let Some(o) = old
                && o.pointer("/spec/template") != spec.and_then(|s| s.get("template"))
            {
                causes.push(field_invalid(
                    "spec.template",
                    spec.and_then(|s| s.get("template")).unwrap_or(&Value::Null),
                    "field is immutable",
                ));
            }
        }
        "ConfigMap" | "Secret" => {
            if let Some(o) = old
                && o.get("immutable") == Some(&json!(true))
                && (o.get("data") != obj.get("data")
                    || o.get("binaryData") != obj.get("binaryData"))
            {
                causes.push(field_forbidden(
                    "data",
                    "field is immutable when `immutable` is set",
                ));
            }
        }
        "CustomResourceDefinition" => {
            let group = spec
                .and_then(|s| s.get("group"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let plural = spec
                .and_then(|s| s.pointer("/names/plural"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let name = meta_str(obj, "name");
            if name != format!("{plural}.{group}") {
                causes.push(field_invalid(
                    "metadata.name",
                    &json!(name),
                    "must be spec.names.plural+\".\"+spec.group",
                ));
            }
        }
        "Service" => {
            if let (Some(o), Some(ip)) = (old, spec.and_then(|s| s.get("clusterIP")))
                && let Some(old_ip) = o.pointer("/spec/clusterIP")
                && old_ip != ip
                && !ip.is_null()
            {
                causes.push(field_invalid(
                    "spec.clusterIPs[0]",
                    ip,
                    "may not change once set",
                ));
            }
        }
        _ => {}
    }
    causes
}

fn invalid(rt: &ResourceType, obj: &Value, causes: Vec<Cause>) -> ApiError {
    ApiError::invalid(&rt.group, &rt.kind, meta_str(obj, "name"), causes)
}

/// Under `fieldValidation=Strict`, fields the CRD schema does not declare
/// are an error instead of being dropped.
fn strict_check(rt: &ResourceType, removed: Vec<String>, ctx: &WriteCtx) -> Result<(), ApiError> {
    if ctx.validation != FieldValidation::Strict || removed.is_empty() {
        return Ok(());
    }
    let fields: Vec<String> = removed
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    let version = crate::resources::split_api_version(&ctx.api_version).1;
    Err(ApiError::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
        fields.join(", "),
        kind = rt.kind
    )))
}

/// Turns a request body into the object to insert.
pub(crate) fn prepare_create(
    cluster: &Cluster,
    rt: &ResourceType,
    namespace: &str,
    mut obj: Value,
    ctx: &WriteCtx,
) -> Result<Value, ApiError> {
    let meta = metadata_mut(&mut obj);
    for k in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "selfLink",
        "managedFields",
    ] {
        meta.shift_remove(k);
    }
    if rt.namespaced {
        let body_ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
        if !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta.insert("namespace".into(), json!(namespace));
    } else {
        meta.shift_remove("namespace");
    }
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty()
        && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
    {
        let generated = format!("{prefix}{}", random_suffix(5));
        meta.insert("name".into(), json!(generated));
    }
    let name = meta_str(&obj, "name").to_string();
    if let Some(cause) = validate_name(&rt.kind, &name) {
        return Err(invalid(rt, &obj, vec![cause]));
    }
    if rt.namespaced {
        check_namespace_open(cluster, rt, namespace, &name)?;
    }
    if rt.has_status
        && let Some(m) = obj.as_object_mut()
    {
        m.shift_remove("status");
    }
    let meta = metadata_mut(&mut obj);
    meta.insert("uid".into(), json!(new_uid()));
    meta.insert("creationTimestamp".into(), json!(ctx.now));
    if rt.generation {
        meta.insert("generation".into(), json!(1));
    }
    defaults::apply(&rt.kind, &mut obj);
    if let Some(schema) = &rt.schema {
        strict_check(rt, crate::prune::prune_object(&mut obj, schema), ctx)?;
    }
    crate::workloads::on_create(cluster, rt, &mut obj);
    let causes = validate(rt, &obj, None);
    if !causes.is_empty() {
        return Err(invalid(rt, &obj, causes));
    }
    record_update(None, &mut obj, &writer(rt, ctx, ""));
    set_type(&mut obj, rt, rt.preferred_version());
    Ok(obj)
}

/// Refuses writes into a missing or terminating namespace.
pub(crate) fn check_namespace_open(
    cluster: &Cluster,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    match cluster.store.get("namespaces", "", namespace) {
        None => Err(ApiError::not_found("", "namespaces", namespace)),
        Some(ns) if !meta_str(&ns, "deletionTimestamp").is_empty() => Err(ApiError::forbidden(
            &rt.group,
            &rt.plural,
            name,
            &format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Inserts a prepared object (or, for a dry run, returns it as it would be).
pub(crate) fn commit_create(
    cluster: &Cluster,
    rt: &ResourceType,
    obj: Value,
    dry_run: bool,
) -> Result<Arc<Value>, ApiError> {
    let name = meta_str(&obj, "name").to_string();
    let ns = meta_str(&obj, "namespace").to_string();
    if dry_run {
        if cluster.store.get(&rt.key(), &ns, &name).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        return Ok(Arc::new(obj));
    }
    cluster.store.create(&rt.key(), obj).map_err(|e| match e {
        WriteError::Exists => ApiError::already_exists(&rt.group, &rt.plural, &name),
        _ => ApiError::internal("unexpected store state on create"),
    })
}

/// Merges an incoming full object over the stored one, keeping what the
/// caller may not change, and records field ownership.
pub(crate) fn prepare_update(
    rt: &ResourceType,
    sub: &str,
    old: &Value,
    incoming: Value,
    ctx: &WriteCtx,
    managed: Managed,
) -> Result<Value, ApiError> {
    let name = meta_str(old, "name").to_string();
    let incoming_name = meta_str(&incoming, "name");
    if !incoming_name.is_empty() && incoming_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({incoming_name}) does not match the name on the URL ({name})"
        )));
    }
    let mut new = if sub == "status" {
        // The status subresource changes status only.
        let mut n = old.clone();
        if let Some(m) = n.as_object_mut() {
            match incoming.get("status") {
                Some(s) => m.insert("status".into(), s.clone()),
                None => m.shift_remove("status"),
            };
        }
        n
    } else {
        let mut n = incoming;
        if rt.has_status
            && let Some(m) = n.as_object_mut()
        {
            match old.get("status") {
                Some(s) => m.insert("status".into(), s.clone()),
                None => m.shift_remove("status"),
            };
        }
        n
    };
    let old_meta = metadata(old).cloned().unwrap_or_default();
    let meta = metadata_mut(&mut new);
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(k) {
            Some(v) => meta.insert(k.to_string(), v.clone()),
            None => meta.shift_remove(k),
        };
    }
    if managed == Managed::Keep {
        match old_meta.get("managedFields") {
            Some(v) => meta.insert("managedFields".into(), v.clone()),
            None => meta.shift_remove("managedFields"),
        };
    }
    if sub != "status" {
        defaults::apply(&rt.kind, &mut new);
    }
    if let Some(schema) = &rt.schema {
        strict_check(rt, crate::prune::prune_object(&mut new, schema), ctx)?;
    }
    if rt.kind == "Service"
        && new.pointer("/spec/clusterIP").is_none()
        && let (Some(ip), Some(spec)) = (
            old.pointer("/spec/clusterIP").cloned(),
            new.get_mut("spec").and_then(Value::as_object_mut),
        )
    {
        spec.insert("clusterIP".into(), ip);
        if let Some(ips) = old.pointer("/spec/clusterIPs") {
            spec.insert("clusterIPs".into(), ips.clone());
        }
    }
    let causes = validate(rt, &new, Some(old));
    if !causes.is_empty() {
        return Err(invalid(rt, &new, causes));
    }
    if rt.generation && spec_view(old, rt.has_status) != spec_view(&new, rt.has_status) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        metadata_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    if managed == Managed::Keep {
        record_update(Some(old), &mut new, &writer(rt, ctx, sub));
    }
    set_type(&mut new, rt, rt.preferred_version());
    if let Some(rv) = old.pointer("/metadata/resourceVersion").cloned() {
        metadata_mut(&mut new).insert("resourceVersion".into(), rv);
    }
    Ok(new)
}

/// Whether managedFields were already computed (apply) or must be recorded
/// as an Update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Managed {
    Keep,
    Computed,
}

/// The outcome of committing an update.
pub(crate) enum Committed {
    Written(Arc<Value>),
    /// Nothing changed: the stored object is returned untouched.
    Unchanged(Arc<Value>),
}

impl Committed {
    pub fn object(self) -> Arc<Value> {
        match self {
            Committed::Written(o) | Committed::Unchanged(o) => o,
        }
    }
}

/// Writes an updated object unless nothing changed; removes it when the
/// last finalizer of a deleting object was dropped.
pub(crate) fn commit_update(
    cluster: &Cluster,
    rt: &ResourceType,
    old: &Arc<Value>,
    new: Value,
    dry_run: bool,
) -> Result<Committed, WriteError> {
    if **old == new {
        return Ok(Committed::Unchanged(old.clone()));
    }
    if dry_run {
        return Ok(Committed::Written(Arc::new(new)));
    }
    let finished = !meta_str(&new, "deletionTimestamp").is_empty()
        && new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        && rt.kind != "Namespace";
    let written = cluster.store.update(&rt.key(), new, object_rv(old))?;
    if finished {
        let ns = meta_str(&written, "namespace").to_string();
        let name = meta_str(&written, "name").to_string();
        return cluster
            .store
            .remove(&rt.key(), &ns, &name, object_rv(&written))
            .map(Committed::Written);
    }
    Ok(Committed::Written(written))
}

/// Maps a store refusal to the API error kube-apiserver returns.
pub(crate) fn write_error(rt: &ResourceType, name: &str, e: WriteError) -> ApiError {
    match e {
        WriteError::NotFound => ApiError::not_found(&rt.group, &rt.plural, name),
        WriteError::Exists => ApiError::already_exists(&rt.group, &rt.plural, name),
        WriteError::Conflict => ApiError::modified(&rt.group, &rt.plural, name),
    }
}
