//! The `scale` subresource (`autoscaling/v1` Scale) of workloads and CRs.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::write_ctx;
use crate::cluster::Cluster;
use crate::errors::{ApiError, field_invalid};
use crate::objects::{Managed, commit_update, prepare_update, write_error};
use crate::request::{Query, Target};
use crate::resources::ResourceType;
use crate::selectors::LabelSelector;
use crate::server::json_response;
use crate::store::{WriteError, meta_str};

fn pointer(path: &str) -> String {
    path.replace('.', "/")
}

fn selector_string(sel: &Value) -> String {
    if let Some(s) = sel.as_str() {
        return s.to_string();
    }
    let _ = LabelSelector::from_object(sel);
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                _ => format!("!{key}"),
            },
        );
    }
    parts.join(",")
}

/// The Scale view of an object.
pub(crate) fn scale_of(rt: &ResourceType, obj: &Value) -> Result<Value, ApiError> {
    let paths = rt.scale.as_ref().ok_or_else(ApiError::path_not_found)?;
    let spec = obj
        .pointer(&pointer(&paths.spec_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status = obj
        .pointer(&pointer(&paths.status_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector = if rt.builtin {
        obj.pointer("/spec/selector").map(selector_string)
    } else {
        paths
            .label_selector
            .as_ref()
            .and_then(|p| obj.pointer(&pointer(p)))
            .map(selector_string)
    };
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut m = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    let mut status_obj = json!({"replicas": status});
    if let Some(s) = selector {
        status_obj["selector"] = json!(s);
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": spec},
        "status": status_obj,
    }))
}

/// The object with its replicas set.
pub(crate) fn with_replicas(rt: &ResourceType, obj: &Value, replicas: i64) -> Value {
    let mut out = obj.clone();
    let Some(paths) = &rt.scale else { return out };
    let mut cur = &mut out;
    let segs: Vec<&str> = paths
        .spec_replicas
        .split('.')
        .filter(|s| !s.is_empty())
        .collect();
    for (i, seg) in segs.iter().enumerate() {
        let Some(m) = cur.as_object_mut() else {
            return out.clone();
        };
        if i + 1 == segs.len() {
            m.insert((*seg).to_string(), json!(replicas));
            break;
        }
        cur = m.entry(*seg).or_insert_with(|| json!({}));
    }
    out
}

/// Reads and checks `spec.replicas` of a Scale body.
pub(crate) fn replicas_of(scale: &Value, name: &str) -> Result<i64, ApiError> {
    let r = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    match r.as_i64() {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![field_invalid(
                "spec.replicas",
                &r,
                "must be greater than or equal to 0",
            )],
        )),
    }
}

/// Writes new replicas through the main object, retrying on races.
pub(crate) fn write_replicas(
    cluster: &Arc<Cluster>,
    t: &Target,
    ctx: &crate::objects::WriteCtx,
    expected_rv: Option<&str>,
    replicas: impl Fn(&Value) -> Result<i64, ApiError>,
) -> Result<Response, ApiError> {
    let name = t.name.clone().unwrap_or_default();
    loop {
        let old = cluster
            .store
            .get(&t.rt.key(), t.ns(), &name)
            .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, &name))?;
        if let Some(rv) = expected_rv
            && rv != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::modified(&t.rt.group, &t.rt.plural, &name));
        }
        let n = replicas(&old)?;
        let incoming = with_replicas(&t.rt, &old, n);
        let new = prepare_update(&t.rt, "scale", &old, incoming, ctx, Managed::Keep)?;
        match commit_update(cluster, &t.rt, &old, new, ctx.dry_run) {
            Ok(c) => {
                return Ok(json_response(
                    StatusCode::OK,
                    &scale_of(&t.rt, &c.object())?,
                ));
            }
            Err(WriteError::Conflict) if expected_rv.is_none() => continue,
            Err(e) => return Err(write_error(&t.rt, &name, e)),
        }
    }
}

pub(crate) fn update(
    cluster: &Arc<Cluster>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: Value,
) -> Result<Response, ApiError> {
    let ctx = write_ctx(t, q, headers)?;
    let name = t.name.clone().unwrap_or_default();
    let n = replicas_of(&body, &name)?;
    let rv = meta_str(&body, "resourceVersion").to_string();
    write_replicas(
        cluster,
        t,
        &ctx,
        (!rv.is_empty()).then_some(rv.as_str()),
        |_| Ok(n),
    )
}
