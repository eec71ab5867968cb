//! GET of one object and LIST with selectors and pagination.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::cluster::Cluster;
use crate::errors::ApiError;
use crate::objects::present;
use crate::request::{Query, Target};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::json_response;
use crate::store::meta_str;
use crate::table;

/// The representation the client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum View {
    Full,
    /// `as=Table` (kubectl get).
    Table,
    /// `as=PartialObjectMetadata[List]` (metadata-only clients).
    Metadata,
}

pub(crate) fn view(headers: &HeaderMap) -> View {
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("as=Table") {
        View::Table
    } else if accept.contains("as=PartialObjectMetadata") {
        View::Metadata
    } else {
        View::Full
    }
}

/// The `PartialObjectMetadata` form of an object.
pub(crate) fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

pub(crate) fn get(
    cluster: &Arc<Cluster>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let name = t.name.as_deref().unwrap_or("");
    let obj = cluster
        .store
        .get(&t.rt.key(), t.ns(), name)
        .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, name))?;
    if t.subresource.as_deref() == Some("scale") {
        return Ok(json_response(
            StatusCode::OK,
            &super::scale::scale_of(&t.rt, &obj)?,
        ));
    }
    let obj = present(&obj, &t.rt, &t.version);
    if view(headers) == View::Metadata {
        return Ok(json_response(StatusCode::OK, &partial(&obj)));
    }
    if view(headers) == View::Table {
        let rv = meta_str(&obj, "resourceVersion").to_string();
        return Ok(json_response(
            StatusCode::OK,
            &table::table(&t.rt, &[obj.into_owned()], &rv, q),
        ));
    }
    Ok(json_response(StatusCode::OK, &obj))
}

/// The selectors of a list or watch request.
pub(crate) struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub namespace: Option<String>,
}

impl Filter {
    pub fn from_query(t: &Target, q: &Query) -> Result<Self, ApiError> {
        Ok(Filter {
            labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), &t.rt.kind)?,
            namespace: t.namespace.clone(),
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| meta_str(obj, "namespace") == ns)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"rv": rv, "start": [ns, name]}).to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let start = v.get("start").and_then(Value::as_array).ok_or_else(bad)?;
    let s = |i: usize| {
        start
            .get(i)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ok((s(0), s(1)))
}

/// Items of a list request after selectors and pagination, with the list metadata.
pub(crate) fn list_items(
    cluster: &Cluster,
    t: &Target,
    q: &Query,
) -> Result<(Vec<Value>, Map<String, Value>), ApiError> {
    let filter = Filter::from_query(t, q)?;
    let (all, rv) = cluster.store.list(&t.rt.key(), t.namespace.as_deref());
    let after = q.get("continue").map(decode_continue).transpose()?;
    let limit: usize = match q.get("limit") {
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("limit: Invalid value: \"{l}\"")))?,
        None => 0,
    };
    let mut items = vec![];
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    let mut remaining = 0usize;
    let mut last: Option<(String, String)> = None;
    for obj in all.iter().filter(|o| filter.matches(o)) {
        let key = (
            meta_str(obj, "namespace").to_string(),
            meta_str(obj, "name").to_string(),
        );
        if after.as_ref().is_some_and(|a| &key <= a) {
            continue;
        }
        if limit > 0 && items.len() >= limit {
            remaining += 1;
            continue;
        }
        last = Some(key);
        items.push(present(obj, &t.rt, &t.version).into_owned());
    }
    if remaining > 0
        && let Some((ns, name)) = last
    {
        meta.insert("continue".into(), json!(encode_continue(rv, &ns, &name)));
        meta.insert("remainingItemCount".into(), json!(remaining));
    }
    Ok((items, meta))
}

pub(crate) fn list(
    cluster: &Arc<Cluster>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let (mut items, meta) = list_items(cluster, t, q)?;
    if view(headers) == View::Metadata {
        let items: Vec<Value> = items.iter().map(partial).collect();
        return Ok(json_response(
            StatusCode::OK,
            &json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": items,
            }),
        ));
    }
    if view(headers) == View::Table {
        let rv = meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut tbl = table::table(&t.rt, &items, &rv, q);
        if let (Some(c), Some(m)) = (
            meta.get("continue"),
            tbl.get_mut("metadata").and_then(Value::as_object_mut),
        ) {
            m.insert("continue".into(), c.clone());
        }
        return Ok(json_response(StatusCode::OK, &tbl));
    }
    if t.rt.builtin {
        // Built-in lists carry the type on the list only.
        for i in &mut items {
            if let Some(m) = i.as_object_mut() {
                m.shift_remove("apiVersion");
                m.shift_remove("kind");
            }
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", t.rt.kind),
            "apiVersion": t.api_version(),
            "metadata": meta,
            "items": items,
        }),
    ))
}
