//! DELETE of one object and deletecollection.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::read::list_items;
use crate::cluster::Cluster;
use crate::errors::ApiError;
use crate::lifecycle::{DeleteOptions, Deleted, delete as delete_object};
use crate::objects::present;
use crate::request::{Query, Target};
use crate::server::json_response;
use crate::store::meta_str;

fn options(bytes: &[u8], q: &Query) -> Result<DeleteOptions, ApiError> {
    let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    DeleteOptions::parse(&body, q)
}

pub(crate) fn delete(
    cluster: &Arc<Cluster>,
    t: &Target,
    q: &Query,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    if t.subresource.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    let opts = options(bytes, q)?;
    let name = t.name.clone().unwrap_or_default();
    match delete_object(cluster, &t.rt, t.ns(), &name, &opts)? {
        Deleted::Pending(obj) => Ok(json_response(
            StatusCode::OK,
            &present(&obj, &t.rt, &t.version),
        )),
        Deleted::Gone(obj) if !t.rt.builtin => Ok(json_response(
            StatusCode::OK,
            &present(&obj, &t.rt, &t.version),
        )),
        Deleted::Gone(obj) => {
            let mut details =
                json!({"name": name, "kind": t.rt.plural, "uid": meta_str(&obj, "uid")});
            if !t.rt.group.is_empty() {
                details["group"] = json!(t.rt.group);
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }),
            ))
        }
    }
}

pub(crate) fn delete_collection(
    cluster: &Arc<Cluster>,
    t: &Target,
    q: &Query,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    if t.rt.kind == "Namespace" {
        return Err(ApiError::method_not_allowed());
    }
    let opts = options(bytes, q)?;
    let (items, meta) = list_items(cluster, t, q)?;
    let mut out = vec![];
    for item in items {
        let ns = meta_str(&item, "namespace").to_string();
        let name = meta_str(&item, "name").to_string();
        match delete_object(cluster, &t.rt, &ns, &name, &opts) {
            Ok(Deleted::Gone(o)) | Ok(Deleted::Pending(o)) => {
                out.push(present(&o, &t.rt, &t.version).into_owned());
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", t.rt.kind),
            "apiVersion": t.api_version(),
            "metadata": meta,
            "items": out,
        }),
    ))
}
