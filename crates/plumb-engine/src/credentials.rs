//! Repository credentials from Argo CD's repository Secrets.
//!
//! Secrets in the control-plane namespace labelled `argocd.argoproj.io/secret-type:
//! repository` (exact URL) or `repo-creds` (URL prefix, a credential template) with
//! `username`/`password` keys, as Argo CD reads them. An exact `repository` match wins over the
//! longest matching `repo-creds` prefix. The values never leave this module except as
//! [`plumb_source::Credentials`], whose `Debug` hides them. OCI Helm registries match by URL
//! with or without `oci://` ([`select_oci`]).

use crate::Context;
use base64::Engine as _;
use plumb_core::key::str_at;
use plumb_source::Credentials;
use plumb_source::helm::HelmAuth;
use plumb_source::helm::oci::{OciAccess, PlainHttp};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET_TYPE: &str = "argocd.argoproj.io/secret-type";
const CACHE_TTL: Duration = Duration::from_secs(10);

/// A short-lived cache of the repository Secrets, so a thousand reconciles do not list them a
/// thousand times.
#[derive(Default)]
pub(crate) struct CredentialCache {
    secrets: Mutex<Option<(Instant, Arc<Vec<Value>>)>>,
}

fn field(secret: &Value, key: &str) -> Option<String> {
    if let Some(text) = secret
        .pointer(&format!("/stringData/{key}"))
        .and_then(Value::as_str)
    {
        return Some(text.to_string());
    }
    let encoded = secret
        .pointer(&format!("/data/{key}"))
        .and_then(Value::as_str)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn normalize(url: &str) -> String {
    url.trim_end_matches('/')
        .trim_end_matches(".git")
        .to_lowercase()
}

/// Picks the credentials for `url` among repository Secrets.
pub(crate) fn select(secrets: &[Value], url: &str) -> Credentials {
    let wanted = normalize(url);
    let exact = secrets.iter().find(|s| {
        str_at(s, &["metadata", "labels", SECRET_TYPE]) == "repository"
            && field(s, "url").is_some_and(|u| normalize(&u) == wanted)
    });
    let template = || {
        secrets
            .iter()
            .filter(|s| str_at(s, &["metadata", "labels", SECRET_TYPE]) == "repo-creds")
            .filter_map(|s| field(s, "url").map(|u| (normalize(&u), s)))
            .filter(|(prefix, _)| wanted.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, s)| s)
    };
    let Some(secret) = exact.or_else(template) else {
        return Credentials::None;
    };
    match (field(secret, "username"), field(secret, "password")) {
        (Some(username), Some(password)) if !username.is_empty() => {
            Credentials::Basic { username, password }
        }
        (_, Some(password)) if !password.is_empty() => Credentials::Token(password),
        _ => Credentials::None,
    }
}

/// The credentials for `url`, from a cache refreshed every few seconds.
pub(crate) async fn for_url(context: &Arc<Context>, url: &str) -> Credentials {
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Credentials::None;
    }
    select(&repository_secrets(context).await, url)
}

/// Normalizes an OCI repository URL as written in an Application or a Secret
/// (`oci://host/path` or Argo CD's scheme-less `host/path`).
fn normalize_oci(url: &str) -> String {
    let url = url.trim();
    url.strip_prefix("oci://")
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_lowercase()
}

/// How to reach the OCI registry of an Application whose `repoURL` is `repo_url`: the
/// `username`/`password` and `insecureOCIForceHttp` of the `repository` Secret with this URL,
/// or else of the `repo-creds` Secret with the longest URL prefix (Argo CD writes both with
/// `type: helm` and `enableOCI: "true"`, or `type: oci`; URLs with or without `oci://`).
pub(crate) fn select_oci(secrets: &[Value], repo_url: &str) -> OciAccess {
    let wanted = normalize_oci(repo_url);
    let url_of = |s: &Value| {
        field(s, "url")
            .map(|u| normalize_oci(&u))
            .filter(|u| !u.contains("://"))
    };
    let exact = secrets.iter().find(|s| {
        str_at(s, &["metadata", "labels", SECRET_TYPE]) == "repository"
            && url_of(s).is_some_and(|u| u == wanted)
    });
    let template = || {
        secrets
            .iter()
            .filter(|s| str_at(s, &["metadata", "labels", SECRET_TYPE]) == "repo-creds")
            .filter_map(|s| url_of(s).map(|u| (u, s)))
            .filter(|(prefix, _)| !prefix.is_empty() && wanted.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, s)| s)
    };
    let Some(secret) = exact.or_else(template) else {
        return OciAccess::default();
    };
    let auth = match (field(secret, "username"), field(secret, "password")) {
        (username, Some(password)) if !password.is_empty() => Some(HelmAuth {
            username: username.unwrap_or_default(),
            password,
        }),
        _ => None,
    };
    let plain_http = if field(secret, "insecureOCIForceHttp").is_some_and(|v| v.trim() == "true") {
        PlainHttp::Allowed
    } else {
        PlainHttp::LoopbackOnly
    };
    OciAccess { auth, plain_http }
}

/// How to reach the OCI registry of `repo_url`, from the cached repository Secrets.
pub(crate) async fn for_oci(context: &Arc<Context>, repo_url: &str) -> OciAccess {
    select_oci(&repository_secrets(context).await, repo_url)
}

/// The repository Secrets, from a cache refreshed every few seconds.
async fn repository_secrets(context: &Arc<Context>) -> Arc<Vec<Value>> {
    let cached = context
        .credentials
        .secrets
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .filter(|(at, _)| at.elapsed() < CACHE_TTL);
    match cached {
        Some((_, secrets)) => secrets,
        None => {
            let namespace = context.options.control_namespace.clone();
            let listed = context
                .cluster
                .list("v1", "Secret", &namespace)
                .await
                .unwrap_or_default();
            let secrets: Vec<Value> = listed
                .into_iter()
                .filter(|s| {
                    matches!(
                        str_at(s, &["metadata", "labels", SECRET_TYPE]),
                        "repository" | "repo-creds"
                    )
                })
                .collect();
            let secrets = Arc::new(secrets);
            if let Ok(mut cache) = context.credentials.secrets.lock() {
                *cache = Some((Instant::now(), secrets.clone()));
            }
            secrets
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(kind: &str, url: &str, username: &str, password: &str) -> Value {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        json!({"metadata": {"labels": {SECRET_TYPE: kind}},
            "data": {"url": b64(url), "username": b64(username), "password": b64(password)}})
    }

    #[test]
    fn exact_repository_wins_over_templates() {
        let secrets = vec![
            secret("repo-creds", "https://git.example.com/", "tmpl", "t"),
            secret("repo-creds", "https://git.example.com/team/", "team", "t2"),
            secret(
                "repository",
                "https://git.example.com/team/app.git",
                "exact",
                "e",
            ),
        ];
        assert_eq!(
            select(&secrets, "https://git.example.com/team/app"),
            Credentials::Basic {
                username: "exact".into(),
                password: "e".into()
            }
        );
        assert_eq!(
            select(&secrets, "https://git.example.com/team/other"),
            Credentials::Basic {
                username: "team".into(),
                password: "t2".into()
            }
        );
        assert_eq!(
            select(&secrets, "https://git.example.com/x"),
            Credentials::Basic {
                username: "tmpl".into(),
                password: "t".into()
            }
        );
        assert_eq!(
            select(&secrets, "https://elsewhere.example.com/x"),
            Credentials::None
        );
    }

    #[test]
    fn token_only() {
        let secrets = vec![secret("repository", "https://h/r", "", "tok")];
        assert_eq!(
            select(&secrets, "https://h/r"),
            Credentials::Token("tok".into())
        );
    }

    #[test]
    fn oci_secrets_match_with_or_without_the_scheme() {
        let mut forced = secret("repository", "oci://127.0.0.1:5000/charts", "robot", "pw");
        forced["stringData"] =
            json!({"insecureOCIForceHttp": "true", "enableOCI": "true", "type": "helm"});
        let secrets = vec![
            forced,
            secret("repo-creds", "registry.example.com", "team", "t"),
            secret("repository", "https://registry.example.com/git", "git", "g"),
        ];
        let exact = select_oci(&secrets, "127.0.0.1:5000/charts/");
        assert_eq!(exact.plain_http, PlainHttp::Allowed);
        assert_eq!(
            exact.auth.as_ref().map(|a| a.username.as_str()),
            Some("robot")
        );
        let template = select_oci(&secrets, "oci://registry.example.com/charts");
        assert_eq!(template.plain_http, PlainHttp::LoopbackOnly);
        assert_eq!(
            template.auth.as_ref().map(|a| a.password.as_str()),
            Some("t")
        );
        let none = select_oci(&secrets, "ghcr.io/charts");
        assert!(none.auth.is_none() && none.plain_http == PlainHttp::LoopbackOnly);
        // A Git secret (with a scheme) never supplies OCI credentials.
        let git_only = vec![secret(
            "repo-creds",
            "https://registry.example.com/",
            "git",
            "g",
        )];
        assert!(
            select_oci(&git_only, "registry.example.com/charts")
                .auth
                .is_none()
        );
    }
}
