//! The cluster generator: one parameter set per Argo CD cluster Secret, plus the in-cluster
//! cluster unless a selector is given or a Secret already stands for it.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Run, append_values, bool_field};
use crate::error::Error;
use crate::params::{Params, sanitize_name};
use crate::selector::{Selector, labels_of};

/// Label that marks a Secret as an Argo CD cluster.
pub(crate) const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";
/// Name Argo CD gives the cluster it runs in.
pub(crate) const IN_CLUSTER_NAME: &str = "in-cluster";
/// Server address of the cluster Argo CD runs in.
pub(crate) const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";

/// A cluster as the generator sees it.
struct Cluster {
    name: String,
    server: String,
    project: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

pub(super) fn generate(spec: &Value, field: &str, run: &Run<'_>) -> Result<Vec<Params>, Error> {
    let selector = match spec.get("selector") {
        None | Some(Value::Null) => Selector::default(),
        Some(s) => Selector::parse(s, &format!("{field}.selector"))?,
    };
    let flat_list = bool_field(spec, "flatList", field)?;
    let secrets = run
        .context
        .cluster_secrets()
        .map_err(|message| Error::Context {
            field: field.to_string(),
            message: format!("cannot list cluster secrets: {message}"),
        })?;
    // Keyed by cluster name like Argo CD (a later Secret with the same name wins), which
    // also gives a stable order.
    let mut clusters: BTreeMap<String, Cluster> = BTreeMap::new();
    for (i, secret) in secrets.iter().enumerate() {
        let labels = labels_of(secret, "labels");
        if labels.get(SECRET_TYPE_LABEL).map(String::as_str) != Some("cluster")
            || !selector.matches(&labels)
        {
            continue;
        }
        let cluster = decode(secret, labels).map_err(|message| Error::Context {
            field: field.to_string(),
            message: format!("cluster secret {}: {message}", secret_name(secret, i)),
        })?;
        clusters.insert(cluster.name.clone(), cluster);
    }
    let go_template = run.renderer.is_go_template();
    let mut out = Vec::new();
    let has_in_cluster = clusters.values().any(|c| c.server == IN_CLUSTER_SERVER);
    for cluster in clusters.values() {
        let mut params = cluster_params(cluster, go_template);
        append_values(spec, field, &mut params, run.renderer)?;
        out.push(params);
    }
    if selector.is_empty() && !has_in_cluster {
        let mut params = Params::new();
        params.insert("name".into(), json!(IN_CLUSTER_NAME));
        params.insert("nameNormalized".into(), json!(IN_CLUSTER_NAME));
        params.insert("server".into(), json!(IN_CLUSTER_SERVER));
        params.insert("project".into(), json!(""));
        append_values(spec, field, &mut params, run.renderer)?;
        out.push(params);
    }
    if flat_list {
        let mut params = Params::new();
        params.insert(
            "clusters".into(),
            Value::Array(out.into_iter().map(Value::Object).collect()),
        );
        return Ok(vec![params]);
    }
    Ok(out)
}

fn cluster_params(cluster: &Cluster, go_template: bool) -> Params {
    let mut params = Params::new();
    params.insert("name".into(), json!(cluster.name));
    params.insert("nameNormalized".into(), json!(sanitize_name(&cluster.name)));
    params.insert("server".into(), json!(cluster.server));
    params.insert(
        "project".into(),
        json!(cluster.project.clone().unwrap_or_default()),
    );
    if go_template {
        let mut meta = serde_json::Map::new();
        if !cluster.annotations.is_empty() {
            meta.insert("annotations".into(), json!(cluster.annotations));
        }
        if !cluster.labels.is_empty() {
            meta.insert("labels".into(), json!(cluster.labels));
        }
        params.insert("metadata".into(), Value::Object(meta));
    } else {
        for (k, v) in &cluster.annotations {
            params.insert(format!("metadata.annotations.{k}"), json!(v));
        }
        for (k, v) in &cluster.labels {
            params.insert(format!("metadata.labels.{k}"), json!(v));
        }
    }
    params
}

fn secret_name(secret: &Value, index: usize) -> String {
    secret
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("#{index}"))
}

/// Read `name`, `server` and `project` from `data` (base64) or `stringData` (plain, as in
/// a manifest not yet stored).
fn decode(secret: &Value, labels: BTreeMap<String, String>) -> Result<Cluster, String> {
    let field = |key: &str| -> Result<Option<String>, String> {
        if let Some(v) = secret.get("stringData").and_then(|d| d.get(key)) {
            return v
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| format!("stringData.{key} is not a string"));
        }
        match secret.get("data").and_then(|d| d.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(encoded)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|e| format!("data.{key} is not valid base64: {e}"))?;
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| format!("data.{key} is not UTF-8"))
            }
            Some(_) => Err(format!("data.{key} is not a string")),
        }
    };
    Ok(Cluster {
        name: field("name")?.unwrap_or_default(),
        server: field("server")?.unwrap_or_default(),
        project: field("project")?,
        labels,
        annotations: labels_of(secret, "annotations"),
    })
}
