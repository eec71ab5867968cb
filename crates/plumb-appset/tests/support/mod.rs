//! A fake engine for the integration tests: repositories are local directories, cluster
//! Secrets are given as JSON.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use plumb_appset::GeneratorContext;
use serde_json::{Value, json};

#[derive(Default)]
pub struct Fake {
    pub repos: HashMap<String, PathBuf>,
    pub secrets: Vec<Value>,
    pub secrets_error: Option<String>,
}

impl GeneratorContext for Fake {
    fn repository_root(&self, repo_url: &str, _revision: &str) -> Result<PathBuf, String> {
        self.repos
            .get(repo_url)
            .cloned()
            .ok_or_else(|| format!("unknown repository {repo_url}"))
    }
    fn cluster_secrets(&self) -> Result<Vec<Value>, String> {
        match &self.secrets_error {
            Some(e) => Err(e.clone()),
            None => Ok(self.secrets.clone()),
        }
    }
}

pub fn with_repo(url: &str, root: &Path) -> Fake {
    let mut fake = Fake::default();
    fake.repos.insert(url.to_string(), root.to_path_buf());
    fake
}

/// An ApplicationSet named `set` in namespace `argocd` with the given spec.
pub fn appset(spec: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "set", "namespace": "argocd", "uid": "u-1"},
        "spec": spec,
    })
}

/// A cluster Secret as the API returns it (data base64-encoded).
pub fn cluster_secret(name: &str, server: &str, labels: Value) -> Value {
    use base64::Engine as _;
    let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut all_labels = json!({"argocd.argoproj.io/secret-type": "cluster"});
    if let (Value::Object(all), Value::Object(extra)) = (&mut all_labels, labels) {
        all.extend(extra);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": format!("cluster-{name}"), "namespace": "argocd", "labels": all_labels,
                     "annotations": {"note": "hi"}},
        "data": {"name": enc(name), "server": enc(server)},
    })
}

pub fn names(apps: &[Value]) -> Vec<String> {
    apps.iter()
        .map(|a| {
            a["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

pub fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, content).expect("write");
}

pub fn error_of(result: Result<Vec<Value>, plumb_appset::Error>) -> String {
    match result {
        Ok(apps) => panic!("expected an error, got {apps:?}"),
        Err(e) => e.to_string(),
    }
}
