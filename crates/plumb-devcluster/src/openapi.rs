//! `/openapi/v3`: the root index and one document per group/version with a
//! PATCH operation per kind that declares the `fieldValidation` parameter.
//!
//! That is what kubectl's query-parameter verifier looks for before it
//! sends `fieldValidation=Strict` instead of validating client-side; full
//! schemas are not served (kubectl then uses its built-in types for
//! strategic merge patch).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::cluster::Cluster;
use crate::errors::ApiError;
use crate::resources::ResourceType;
use crate::server::json_response;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn group_versions(types: &[Arc<ResourceType>]) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for t in types {
        for v in &t.versions {
            out.insert(gv_path(&t.group, v), (t.group.clone(), v.clone()));
        }
    }
    out
}

/// A cheap content hash so clients' caches see changes when CRDs come and go.
fn hash(types: &[Arc<ResourceType>], group: &str, version: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in types.iter().filter(|t| t.group == group) {
        for b in t
            .kind
            .bytes()
            .chain(version.bytes())
            .chain(t.plural.bytes())
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016X}")
}

fn param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn document(types: &[Arc<ResourceType>], group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
    {
        let prefix = format!("/{}", gv_path(group, version));
        let path = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        let gvk = json!({"group": group, "version": version, "kind": t.kind});
        let op = json!({
            "description": format!("partially update the specified {}", t.kind),
            "operationId": format!("patch{}", t.kind),
            "parameters": [
                param("dryRun", "When present, indicates that modifications should not be persisted."),
                param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
                param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields."),
                param("force", "Force is going to \"force\" Apply requests."),
            ],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
        });
        paths.insert(path, json!({"patch": op}));
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::server::version()["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

pub(crate) fn serve(cluster: &Arc<Cluster>, path: &str) -> Result<Response, ApiError> {
    let types = cluster.registry.all();
    let gvs = group_versions(&types);
    let rest = path.trim_start_matches("/openapi/v3").trim_matches('/');
    if rest.is_empty() {
        let mut paths = Map::new();
        for (p, (g, v)) in &gvs {
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&types, g, v))}),
            );
        }
        return Ok(json_response(StatusCode::OK, &json!({"paths": paths})));
    }
    let (g, v) = gvs.get(rest).ok_or_else(ApiError::path_not_found)?;
    Ok(json_response(StatusCode::OK, &document(&types, g, v)))
}
