//! HTTP entry point: one fallback handler routes every request by path and
//! method, since Kubernetes paths nest resources under dynamic groups.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::errors::ApiError;
use crate::request::{Query, Target, parse_path};
use crate::{authz, discovery, handlers, openapi, watch};

/// The largest request body accepted (kube-apiserver's limit).
pub(crate) const MAX_BODY: usize = 3 * 1024 * 1024;

pub(crate) fn router(cluster: Arc<Cluster>) -> Router {
    Router::new().fallback(dispatch).with_state(cluster)
}

/// A JSON response with a status code.
pub(crate) fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn dispatch(State(cluster): State<Arc<Cluster>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let query = Query::parse(parts.uri.query());
    tracing::debug!(method = %parts.method, %path, "request");
    match route(&cluster, &parts.method, path, &query, &parts.headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::too_large())
}

async fn route(
    cluster: &Arc<Cluster>,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    match path {
        "/healthz" | "/readyz" | "/livez" | "/healthz/ping" | "/readyz/ping" | "/livez/ping" => {
            return Ok((StatusCode::OK, [("content-type", "text/plain")], "ok").into_response());
        }
        "/version" => return Ok(json_response(StatusCode::OK, &version())),
        _ => {}
    }
    if path == "/openapi/v3" || path.starts_with("/openapi/v3/") {
        return openapi::serve(cluster, path);
    }
    if method == Method::GET
        && let Some(resp) = discovery::serve(cluster, path, headers)
    {
        return Ok(resp);
    }
    let Some(target) = parse_path(&cluster.registry, path)? else {
        return Err(ApiError::path_not_found());
    };
    resource(cluster, method, target, query, headers, body).await
}

async fn resource(
    cluster: &Arc<Cluster>,
    method: &Method,
    t: Target,
    q: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(user) = authz::impersonated(headers) {
        authz::authorize(cluster, &user, &authz::Attributes::of(method, &t, q))?;
    }
    let is_watch = t.watch_prefix || q.flag("watch");
    match (method.as_str(), &t.name) {
        ("GET", _) if is_watch => {
            let view = handlers::read::view(headers);
            watch::serve(cluster.clone(), t, q, view).await
        }
        ("GET", Some(_)) => handlers::read::get(cluster, &t, q, headers),
        ("GET", None) => handlers::read::list(cluster, &t, q, headers),
        ("POST", None) => {
            let bytes = read_body(body).await?;
            handlers::write::create(cluster, &t, q, headers, &bytes)
        }
        ("PUT", Some(_)) => {
            let bytes = read_body(body).await?;
            handlers::write::update(cluster, &t, q, headers, &bytes)
        }
        ("PATCH", Some(_)) => {
            let bytes = read_body(body).await?;
            handlers::patch::patch(cluster, &t, q, headers, &bytes)
        }
        ("DELETE", Some(_)) => {
            let bytes = read_body(body).await?;
            handlers::delete::delete(cluster, &t, q, &bytes)
        }
        ("DELETE", None) => {
            let bytes = read_body(body).await?;
            handlers::delete::delete_collection(cluster, &t, q, &bytes)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The reported server version. 1.31 keeps the machine's kubectl dispatcher
/// on a kubectl that sends JSON bodies.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.0",
        "gitCommit": "plumb-devcluster",
        "gitTreeState": "clean",
        "buildDate": "2024-08-13T00:00:00Z",
        "goVersion": "go1.22.5",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}
