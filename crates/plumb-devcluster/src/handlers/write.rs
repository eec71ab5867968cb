//! POST (create) and PUT (update, status, finalize, scale).

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::write_ctx;
use crate::cluster::Cluster;
use crate::errors::{ApiError, field_invalid};
use crate::field_validation::{Origin, admit, with_warnings};
use crate::objects::{
    Managed, check_type, commit_create, commit_update, prepare_create, prepare_update, present,
    write_error,
};
use crate::request::{Query, Target, body_format, content_type, decode_body};
use crate::server::json_response;
use crate::store::{WriteError, meta_str};

pub(crate) fn create(
    cluster: &Arc<Cluster>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    if t.rt.namespaced && t.namespace.is_none() {
        return Err(ApiError::method_not_allowed());
    }
    let mut body = decode_body(bytes, body_format(&content_type(headers))?)?;
    check_type(&body, &t.rt, &t.version)?;
    let ctx = write_ctx(t, q, headers)?;
    let warnings = admit(&t.rt, &t.version, &mut body, ctx.validation, Origin::Body)?;
    let obj = prepare_create(cluster, &t.rt, t.ns(), body, &ctx)?;
    let created = commit_create(cluster, &t.rt, obj, ctx.dry_run)?;
    Ok(with_warnings(
        json_response(StatusCode::CREATED, &present(&created, &t.rt, &t.version)),
        &warnings,
    ))
}

pub(crate) fn update(
    cluster: &Arc<Cluster>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let mut body = decode_body(bytes, body_format(&content_type(headers))?)?;
    if t.subresource.as_deref() == Some("scale") {
        return super::scale::update(cluster, t, q, headers, body);
    }
    check_type(&body, &t.rt, &t.version)?;
    let ctx = write_ctx(t, q, headers)?;
    let warnings = admit(&t.rt, &t.version, &mut body, ctx.validation, Origin::Body)?;
    let name = t.name.clone().unwrap_or_default();
    let body_rv = meta_str(&body, "resourceVersion").to_string();
    if body_rv.is_empty() && !t.rt.builtin {
        return Err(ApiError::invalid(
            &t.rt.group,
            &t.rt.kind,
            &name,
            vec![field_invalid(
                "metadata.resourceVersion",
                &json!("0x0"),
                "must be specified for an update",
            )],
        ));
    }
    let sub = t.subresource.clone().unwrap_or_default();
    loop {
        let old = cluster
            .store
            .get(&t.rt.key(), t.ns(), &name)
            .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, &name))?;
        if !body_rv.is_empty() && body_rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::modified(&t.rt.group, &t.rt.plural, &name));
        }
        let (incoming, sub) = if sub == "finalize" {
            let mut n = (*old).clone();
            if let Some(spec) = n.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert(
                    "finalizers".into(),
                    body.pointer("/spec/finalizers")
                        .cloned()
                        .unwrap_or(json!([])),
                );
            }
            (n, "")
        } else {
            (body.clone(), sub.as_str())
        };
        let new = prepare_update(&t.rt, sub, &old, incoming, &ctx, Managed::Keep)?;
        match commit_update(cluster, &t.rt, &old, new, ctx.dry_run) {
            Ok(c) => {
                return Ok(with_warnings(
                    json_response(StatusCode::OK, &present(&c.object(), &t.rt, &t.version)),
                    &warnings,
                ));
            }
            Err(WriteError::Conflict) if body_rv.is_empty() => continue,
            Err(e) => return Err(write_error(&t.rt, &name, e)),
        }
    }
}
