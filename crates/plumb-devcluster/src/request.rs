//! Request parsing: the URL path into a resource target, the query string,
//! and the body in whichever encoding the client sent.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::Value;

use crate::errors::ApiError;
use crate::resources::{Registry, ResourceType};

/// What a resource URL addresses.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub rt: Arc<ResourceType>,
    pub version: String,
    /// The namespace in the URL (`None` for cluster-scoped or all-namespaces requests).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path prefix was used.
    pub watch_prefix: bool,
}

impl Target {
    pub fn api_version(&self) -> String {
        self.rt.api_version(&self.version)
    }

    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

/// Resolves a path under `/api` or `/apis`; `Ok(None)` means it is not a
/// resource path (discovery handles it).
pub(crate) fn parse_path(registry: &Registry, path: &str) -> Result<Option<Target>, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Ok(None),
    };
    let (watch_prefix, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let resolve = |plural: &str| registry.lookup(group, version, plural);
    let (namespace, rest): (Option<String>, &[&str]) = match rest {
        ["namespaces", ns, plural, tail @ ..] if resolve(plural).is_some_and(|t| t.namespaced) => {
            (Some((*ns).to_string()), {
                // Re-slice to start at the plural.
                let start = rest.len() - tail.len() - 1;
                &rest[start..]
            })
        }
        r => (None, r),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(*n), None),
        [p, n, s] => (*p, Some(*n), Some(*s)),
        _ => return Err(ApiError::path_not_found()),
    };
    let rt = resolve(plural).ok_or_else(ApiError::path_not_found)?;
    if let Some(s) = sub {
        let ok = match s {
            "status" => rt.has_status,
            "scale" => rt.scale.is_some(),
            "finalize" => rt.kind == "Namespace",
            _ => false,
        };
        if !ok {
            return Err(ApiError::path_not_found());
        }
    }
    if rt.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::path_not_found());
    }
    Ok(Some(Target {
        rt,
        version: version.to_string(),
        namespace,
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
        watch_prefix,
    }))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `application/x-www-form-urlencoded` text.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string as a map (the last value of a repeated key wins, except
/// `dryRun`, where any `All` counts).
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pub params: HashMap<String, String>,
    pub dry_run: bool,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let mut params = HashMap::new();
        let mut dry_run = false;
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (percent_decode(k), percent_decode(v));
            if k == "dryRun" && v == "All" {
                dry_run = true;
            }
            params.insert(k, v);
        }
        Query { params, dry_run }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.params
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }
}

/// The body encodings the server accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BodyFormat {
    Json,
    Yaml,
    Protobuf,
}

pub(crate) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string()
}

/// Parses a body as JSON or YAML into a value; bad input is a 400 naming the problem.
pub(crate) fn decode_body(bytes: &[u8], format: BodyFormat) -> Result<Value, ApiError> {
    match format {
        BodyFormat::Json => serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type object): {e}"
            ))
        }),
        BodyFormat::Yaml => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| ApiError::bad_request(format!("body is not UTF-8: {e}")))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        }
        BodyFormat::Protobuf => crate::protobuf::decode(bytes),
    }
}

/// Detects the body format from the content type of a non-PATCH write.
pub(crate) fn body_format(ct: &str) -> Result<BodyFormat, ApiError> {
    let base = ct.split(';').next().unwrap_or("").trim();
    match base {
        "application/json" | "" | "*/*" => Ok(BodyFormat::Json),
        "application/yaml" => Ok(BodyFormat::Yaml),
        "application/vnd.kubernetes.protobuf" => Ok(BodyFormat::Protobuf),
        _ => Err(ApiError::unsupported_media_type(ct)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve() {
        let r = Registry::new();
        let t = parse_path(&r, "/api/v1/namespaces/default/configmaps/x")
            .expect("ok")
            .expect("target");
        assert_eq!(t.rt.plural, "configmaps");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("x"));
        let t = parse_path(&r, "/api/v1/namespaces/default")
            .expect("ok")
            .expect("ns");
        assert_eq!(t.rt.plural, "namespaces");
        assert_eq!(t.name.as_deref(), Some("default"));
        let t = parse_path(&r, "/apis/apps/v1/namespaces/a/deployments/d/scale")
            .expect("ok")
            .expect("scale");
        assert_eq!(t.subresource.as_deref(), Some("scale"));
        assert!(parse_path(&r, "/api/v1/nothings").is_err());
        assert!(parse_path(&r, "/api/v1").expect("ok").is_none());
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&dryRun=All"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.dry_run);
    }
}
