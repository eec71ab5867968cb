//! API discovery: the legacy per-group documents (`/api`, `/apis`,
//! `/apis/{group}/{version}`) and the aggregated v2/v2beta1 form kubectl asks
//! for first.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::resources::ResourceType;
use crate::server::json_response;

/// Serves a discovery path, or `None` when the path is not one.
pub(crate) fn serve(cluster: &Arc<Cluster>, path: &str, headers: &HeaderMap) -> Option<Response> {
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let is_discovery = matches!(
        segs.as_slice(),
        ["api"] | ["apis"] | ["api", _] | ["apis", _] | ["apis", _, _]
    );
    if !is_discovery {
        return None;
    }
    let types = cluster.registry.all();
    match segs.as_slice() {
        ["api"] | ["apis"] => {
            let core = segs[0] == "api";
            if let Some(version) = aggregated_version(accept) {
                return Some(aggregated(&types, core, version));
            }
            if core {
                Some(json_response(
                    StatusCode::OK,
                    &json!({
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [
                            {"clientCIDR": "0.0.0.0/0", "serverAddress": cluster.addr.to_string()}
                        ]
                    }),
                ))
            } else {
                let groups: Vec<Value> = groups(&types)
                    .iter()
                    .map(|(g, vs)| group_doc(g, vs))
                    .collect();
                Some(json_response(
                    StatusCode::OK,
                    &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                ))
            }
        }
        ["api", version] => Some(resource_list(&types, "", version)),
        ["apis", group] => {
            let all = groups(&types);
            let vs = all.get(*group)?;
            let mut doc = group_doc(group, vs);
            if let Some(m) = doc.as_object_mut() {
                m.insert("kind".into(), json!("APIGroup"));
                m.insert("apiVersion".into(), json!("v1"));
            }
            Some(json_response(StatusCode::OK, &doc))
        }
        ["apis", group, version] => Some(resource_list(&types, group, version)),
        _ => None,
    }
}

/// Which aggregated discovery version the Accept header asks for, if any.
fn aggregated_version(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        if !part.contains("as=APIGroupDiscoveryList") {
            continue;
        }
        if part.contains("v=v2beta1") {
            return Some("v2beta1");
        }
        if part.contains("v=v2") {
            return Some("v2");
        }
    }
    None
}

/// Non-core groups with their served versions (preferred first).
fn groups(types: &[Arc<ResourceType>]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        let vs = out.entry(t.group.clone()).or_default();
        for v in &t.versions {
            if !vs.contains(v) {
                vs.push(v.clone());
            }
        }
    }
    out
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

fn served_at<'a>(
    types: &'a [Arc<ResourceType>],
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'a Arc<ResourceType>> {
    types
        .iter()
        .filter(move |t| t.group == group && t.versions.iter().any(|v| v == version))
}

fn resource_list(types: &[Arc<ResourceType>], group: &str, version: &str) -> Response {
    let mut resources = vec![];
    for t in served_at(types, group, version) {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": t.verbs(),
        });
        if let Some(m) = r.as_object_mut() {
            if !t.short_names.is_empty() {
                m.insert("shortNames".into(), json!(t.short_names));
            }
            if !t.categories.is_empty() {
                m.insert("categories".into(), json!(t.categories));
            }
        }
        resources.push(r);
        for (sub, kind, g, v, verbs) in subresources(t, version) {
            let mut s = json!({
                "name": format!("{}/{sub}", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if (g != group || v != version)
                && let Some(m) = s.as_object_mut()
            {
                m.insert("group".into(), json!(g));
                m.insert("version".into(), json!(v));
            }
            resources.push(s);
        }
    }
    if resources.is_empty() {
        return crate::errors::ApiError::path_not_found().into_response();
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// (subresource, kind, group, version, verbs) of a type's subresources.
fn subresources(
    t: &ResourceType,
    version: &str,
) -> Vec<(&'static str, String, String, String, Vec<&'static str>)> {
    let mut out = vec![];
    if t.has_status {
        out.push((
            "status",
            t.kind.clone(),
            t.group.clone(),
            version.to_string(),
            vec!["get", "patch", "update"],
        ));
    }
    if t.scale.is_some() {
        out.push((
            "scale",
            "Scale".to_string(),
            "autoscaling".to_string(),
            "v1".to_string(),
            vec!["get", "patch", "update"],
        ));
    }
    if t.kind == "Namespace" {
        out.push((
            "finalize",
            "Namespace".to_string(),
            String::new(),
            "v1".to_string(),
            vec!["update"],
        ));
    }
    out
}

fn aggregated(types: &[Arc<ResourceType>], core: bool, version: &str) -> Response {
    let mut items = vec![];
    let group_list: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        groups(types).into_iter().collect()
    };
    for (group, versions) in group_list {
        let mut vdocs = vec![];
        for v in &versions {
            let resources: Vec<Value> = served_at(types, &group, v)
                .map(|t| {
                    let mut r = json!({
                        "resource": t.plural,
                        "responseKind": {"group": t.group, "version": v, "kind": t.kind},
                        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": t.singular,
                        "verbs": t.verbs(),
                    });
                    if let Some(m) = r.as_object_mut() {
                        if !t.short_names.is_empty() {
                            m.insert("shortNames".into(), json!(t.short_names));
                        }
                        if !t.categories.is_empty() {
                            m.insert("categories".into(), json!(t.categories));
                        }
                        let subs: Vec<Value> = subresources(t, v)
                            .into_iter()
                            .map(|(sub, kind, g, sv, verbs)| {
                                json!({
                                    "subresource": sub,
                                    "responseKind": {"group": g, "version": sv, "kind": kind},
                                    "verbs": verbs,
                                })
                            })
                            .collect();
                        if !subs.is_empty() {
                            m.insert("subresources".into(), Value::Array(subs));
                        }
                    }
                    r
                })
                .collect();
            vdocs.push(json!({"version": v, "resources": resources, "freshness": "Current"}));
        }
        items.push(json!({
            "metadata": {"name": group, "creationTimestamp": null},
            "versions": vdocs,
        }));
    }
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    });
    let ct = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    (StatusCode::OK, [("content-type", ct)], body.to_string()).into_response()
}
