//! PATCH: JSON patch, merge patch, strategic merge patch and server-side apply.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::write_ctx;
use crate::apply::{self, conflict_message};
use crate::cluster::Cluster;
use crate::errors::{ApiError, field_required};
use crate::field_validation::{Origin, admit, check_apply, with_warnings};
use crate::objects::{
    Managed, WriteCtx, check_type, commit_create, commit_update, prepare_create, prepare_update,
    present, write_error, writer,
};
use crate::patch::{PatchError, json_patch, merge_patch, strategic};
use crate::request::{BodyFormat, Query, Target, content_type, decode_body};
use crate::server::json_response;
use crate::store::{WriteError, meta_str};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Json,
    Merge,
    Strategic,
    Apply,
}

fn patch_kind(ct: &str, builtin: bool) -> Result<Kind, ApiError> {
    let base = ct.split(';').next().unwrap_or("").trim();
    let accepted = if builtin {
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
    } else {
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    };
    match base {
        "application/json-patch+json" => Ok(Kind::Json),
        "application/merge-patch+json" => Ok(Kind::Merge),
        "application/strategic-merge-patch+json" if builtin => Ok(Kind::Strategic),
        "application/apply-patch+yaml" => Ok(Kind::Apply),
        _ => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {accepted}"
            ),
        )),
    }
}

fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::BadJsonPatch(_) => ApiError::bad_request(e.to_string()),
        _ => ApiError::new(422, "Invalid", e.to_string()),
    }
}

fn run_engine(
    kind: Kind,
    base: &Value,
    patch: &Value,
    builtin_kind: &str,
) -> Result<Value, ApiError> {
    match kind {
        Kind::Json => json_patch(base, patch).map_err(patch_error),
        Kind::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "the merge patch must be a JSON object",
                ));
            }
            Ok(merge_patch(base, patch))
        }
        Kind::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "the strategic merge patch must be a JSON object",
                ));
            }
            strategic(base, patch, builtin_kind).map_err(patch_error)
        }
        Kind::Apply => Err(ApiError::internal("apply is not a patch engine")),
    }
}

pub(crate) fn patch(
    cluster: &Arc<Cluster>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let kind = patch_kind(&content_type(headers), t.rt.builtin)?;
    let format = if kind == Kind::Apply {
        BodyFormat::Yaml
    } else {
        BodyFormat::Json
    };
    let body = decode_body(bytes, format)?;
    let ctx = write_ctx(t, q, headers)?;
    if kind == Kind::Apply {
        return server_side_apply(cluster, t, q, &ctx, body);
    }
    let name = t.name.clone().unwrap_or_default();
    let sub = t.subresource.clone().unwrap_or_default();
    if sub == "scale" {
        let expected = body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        return super::scale::write_replicas(cluster, t, &ctx, expected.as_deref(), |old| {
            let scale = super::scale::scale_of(&t.rt, old)?;
            let patched = run_engine(kind, &scale, &body, "Scale")?;
            super::scale::replicas_of(&patched, &name)
        });
    }
    loop {
        let old = cluster
            .store
            .get(&t.rt.key(), t.ns(), &name)
            .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, &name))?;
        let base = present(&old, &t.rt, &t.version);
        let mut patched = run_engine(kind, &base, &body, &t.rt.kind)?;
        check_type(&patched, &t.rt, &t.version)?;
        let origin = match kind {
            Kind::Strategic => Origin::StrategicPatch { patch: &body },
            Kind::Json => Origin::JsonOrMergePatch { ops: Some(&body) },
            _ => Origin::JsonOrMergePatch { ops: None },
        };
        let warnings = admit(&t.rt, &t.version, &mut patched, ctx.validation, origin)?;
        let wanted_rv = meta_str(&patched, "resourceVersion").to_string();
        let precondition = !wanted_rv.is_empty() && wanted_rv != meta_str(&base, "resourceVersion");
        if precondition {
            return Err(ApiError::modified(&t.rt.group, &t.rt.plural, &name));
        }
        let pinned = kind != Kind::Json && body.pointer("/metadata/resourceVersion").is_some();
        let new = prepare_update(&t.rt, &sub, &old, patched, &ctx, Managed::Keep)?;
        match commit_update(cluster, &t.rt, &old, new, ctx.dry_run) {
            Ok(c) => {
                return Ok(with_warnings(
                    json_response(StatusCode::OK, &present(&c.object(), &t.rt, &t.version)),
                    &warnings,
                ));
            }
            Err(WriteError::Conflict) if !pinned => continue,
            Err(e) => return Err(write_error(&t.rt, &name, e)),
        }
    }
}

fn conflict_error(t: &Target, name: &str, conflicts: &[apply::Conflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.owner), "field": c.path}))
        .collect();
    let mut details = json!({"causes": causes});
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    if !t.rt.group.is_empty() {
        details["group"] = json!(t.rt.group);
    }
    details["kind"] = json!(t.rt.plural);
    ApiError::new(409, "Conflict", conflict_message(conflicts)).with_details(details)
}

fn server_side_apply(
    cluster: &Arc<Cluster>,
    t: &Target,
    q: &Query,
    ctx: &WriteCtx,
    body: Value,
) -> Result<Response, ApiError> {
    let name = t.name.clone().unwrap_or_default();
    if q.get("fieldManager").is_none() {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![field_required(
                "fieldManager",
                "is required for apply patch",
            )],
        ));
    }
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    }
    for (field, what) in [("apiVersion", "apiVersion"), ("kind", "kind")] {
        if body
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(format!("{what} must be set")));
        }
    }
    check_type(&body, &t.rt, &t.version)?;
    check_apply(&t.rt, &t.version, &body)?;
    let body_name = meta_str(&body, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let force = q.flag("force");
    let sub = t.subresource.clone().unwrap_or_default();
    let w = writer(&t.rt, ctx, &sub);
    loop {
        let Some(old) = cluster.store.get(&t.rt.key(), t.ns(), &name) else {
            if !sub.is_empty() {
                return Err(ApiError::not_found(&t.rt.group, &t.rt.plural, &name));
            }
            let mut live = json!({"apiVersion": t.api_version(), "kind": t.rt.kind, "metadata": {"name": name}});
            if t.rt.namespaced {
                live["metadata"]["namespace"] = json!(t.ns());
            }
            let merged =
                apply::apply(&live, &body, &w, force).map_err(|c| conflict_error(t, &name, &c))?;
            let obj = prepare_create(cluster, &t.rt, t.ns(), merged, ctx)?;
            let obj = restore_apply_entry(obj, &live, &body, &w);
            match commit_create(cluster, &t.rt, obj, ctx.dry_run) {
                Ok(created) => {
                    return Ok(json_response(
                        StatusCode::CREATED,
                        &present(&created, &t.rt, &t.version),
                    ));
                }
                Err(e) if e.reason == "AlreadyExists" => continue,
                Err(e) => return Err(e),
            }
        };
        let base = present(&old, &t.rt, &t.version);
        let merged =
            apply::apply(&base, &body, &w, force).map_err(|c| conflict_error(t, &name, &c))?;
        let new = prepare_update(&t.rt, &sub, &old, merged, ctx, Managed::Computed)?;
        match commit_update(cluster, &t.rt, &old, new, ctx.dry_run) {
            Ok(c) => {
                return Ok(json_response(
                    StatusCode::OK,
                    &present(&c.object(), &t.rt, &t.version),
                ));
            }
            Err(WriteError::Conflict) => continue,
            Err(e) => return Err(write_error(&t.rt, &name, e)),
        }
    }
}

/// `prepare_create` records an Update entry for whoever created the object;
/// for an apply-create the owner is the applier, with an Apply entry.
fn restore_apply_entry(mut obj: Value, live: &Value, body: &Value, w: &apply::Writer<'_>) -> Value {
    if let Ok(applied) = apply::apply(live, body, w, true) {
        let entries = apply::entries(&applied);
        apply::store_entries(&mut obj, &entries);
    }
    obj
}
