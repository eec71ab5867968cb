//! `GitRepository`: resolve `spec.ref` to a commit through the shared [`Sources`] and record
//! it as `status.artifact.revision` (`<branch|tag|ref>@sha1:<sha>`, or `sha1:<sha>` for a bare
//! commit), the revision Kustomizations build from.
//!
//! There is no artifact storage: the commit's files are the engine's snapshot of it, so
//! `status.artifact` carries `revision` and `lastUpdateTime` but no `url` or `digest`.
//!
//! [`Sources`]: crate::sources::Sources

use super::conditions::{self, Condition};
use super::{Flux, FluxKind};
use crate::queue::AppId;
use crate::sources::{Freshness, Resolved, error_chain};
use crate::status::now;
use base64::Engine as _;
use plumb_core::application::parse_duration;
use plumb_core::key::str_at;
use plumb_core::semver::{Constraint, highest_match};
use plumb_source::Credentials;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Longest a failing repository waits before the next attempt.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Which commit `spec.ref` names, in Flux's precedence (commit, name, semver, tag, branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `ref.branch` (`master` when `ref` is absent, as in Flux).
    Branch(String),
    /// `ref.tag`.
    Tag(String),
    /// `ref.semver`: the highest tag in the range.
    Semver(String),
    /// `ref.name`: a full reference name such as `refs/heads/main`.
    Name(String),
    /// `ref.commit`, shown with `ref.branch` when given.
    Commit {
        /// The full SHA.
        sha: String,
        /// The branch it is on, for the revision string.
        branch: Option<String>,
    },
}

/// The parts of a `GitRepository` spec plumb acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRepositorySpec {
    /// `spec.url`.
    pub url: String,
    /// `spec.ref`.
    pub reference: Reference,
    /// `spec.interval`.
    pub interval: Duration,
    /// `spec.timeout` (60 s by default).
    pub timeout: Duration,
    /// `spec.secretRef.name`.
    pub secret_ref: Option<String>,
    /// `spec.suspend`.
    pub suspend: bool,
    /// `spec.include`, in order.
    pub include: Vec<Include>,
    /// Fields accepted but not acted on, with why; shown as a warning condition.
    pub not_acted_on: Vec<String>,
}

/// One `spec.include` entry: the artifact of another GitRepository of the same namespace,
/// its `from_path` subtree copied to `to_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// `repository.name`.
    pub repository: String,
    /// `fromPath`, cleaned (`""`: the whole artifact).
    pub from_path: String,
    /// `toPath`, cleaned (default: the repository's name).
    pub to_path: String,
}

/// A relative path inside an artifact: `./` and empty segments dropped; `..` or an absolute
/// path refused.
fn inner_path(field: &str, text: &str) -> Result<String, SpecError> {
    if text.starts_with('/') || text.contains('\\') {
        return Err(invalid(field, format!("{text:?} must be a relative path")));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(invalid(
                    field,
                    format!("{text:?} must stay inside the artifact (no '..')"),
                ));
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

fn includes(spec: &Value) -> Result<Vec<Include>, SpecError> {
    let entries = match spec.get("include") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(invalid("include", "must be a list")),
    };
    let mut out: Vec<Include> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let field = |name: &str| format!("include[{index}].{name}");
        let repository = entry
            .get("repository")
            .and_then(|r| text(r, "name"))
            .ok_or_else(|| invalid(field("repository.name"), "must be set"))?;
        let from_path = inner_path(
            &field("fromPath"),
            &text(entry, "fromPath").unwrap_or_default(),
        )?;
        let to_path = inner_path(
            &field("toPath"),
            &text(entry, "toPath").unwrap_or_else(|| repository.clone()),
        )?;
        if to_path.is_empty() {
            return Err(invalid(
                field("toPath"),
                "must name a directory (the root would replace the repository's own files)",
            ));
        }
        out.push(Include {
            repository,
            from_path,
            to_path,
        });
    }
    Ok(out)
}

/// A spec plumb cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: {problem}")]
pub struct SpecError {
    /// The field path under `spec`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A non-empty, trimmed string field.
pub(crate) fn text(value: &Value, field: &str) -> Option<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Parses a Go duration field; `None` when absent.
pub(crate) fn duration(spec: &Value, field: &str) -> Result<Option<Duration>, SpecError> {
    match spec.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_duration(s).map(Some).ok_or_else(|| {
            invalid(
                field,
                format!("{s:?} is not a duration such as 5m or 1h30m"),
            )
        }),
        Some(other) => Err(invalid(field, format!("{other} is not a duration string"))),
    }
}

const KNOWN_FIELDS: [&str; 13] = [
    "url",
    "ref",
    "interval",
    "timeout",
    "secretRef",
    "suspend",
    "ignore",
    "include",
    "recurseSubmodules",
    "verify",
    "proxySecretRef",
    "provider",
    "sparseCheckout",
];

impl GitRepositorySpec {
    /// Parses `spec`.
    ///
    /// **Errors**: a missing `url` or `interval`, a malformed duration or `ref`, an invalid
    /// `ref.semver` range, and fields whose absence of support would be unsafe to ignore
    /// (`verify`: commit signatures would not be checked; `provider` other than `generic`).
    pub fn parse(spec: &Value) -> Result<GitRepositorySpec, SpecError> {
        if !spec.is_object() {
            return Err(invalid("", "must be an object"));
        }
        let url = text(spec, "url").ok_or_else(|| invalid("url", "must be set"))?;
        let interval =
            duration(spec, "interval")?.ok_or_else(|| invalid("interval", "must be set"))?;
        if interval.is_zero() {
            return Err(invalid("interval", "must be greater than zero"));
        }
        let timeout = duration(spec, "timeout")?.unwrap_or(Duration::from_secs(60));
        let reference = match spec.get("ref").filter(|r| !r.is_null()) {
            None => Reference::Branch("master".into()),
            Some(r) if !r.is_object() => return Err(invalid("ref", "must be an object")),
            Some(r) => {
                if let Some(sha) = text(r, "commit") {
                    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(invalid(
                            "ref.commit",
                            format!("{sha:?} is not a full commit SHA"),
                        ));
                    }
                    Reference::Commit {
                        sha: sha.to_ascii_lowercase(),
                        branch: text(r, "branch"),
                    }
                } else if let Some(name) = text(r, "name") {
                    if !name.starts_with("refs/") {
                        return Err(invalid(
                            "ref.name",
                            format!(
                                "{name:?} must be a full reference name such as refs/heads/main"
                            ),
                        ));
                    }
                    Reference::Name(name)
                } else if let Some(range) = text(r, "semver") {
                    Constraint::parse(&range).map_err(|e| invalid("ref.semver", e.to_string()))?;
                    Reference::Semver(range)
                } else if let Some(tag) = text(r, "tag") {
                    Reference::Tag(tag)
                } else {
                    Reference::Branch(text(r, "branch").unwrap_or_else(|| "master".into()))
                }
            }
        };
        if spec.get("verify").is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                "verify",
                "commit signature verification is not supported yet; remove it or use Flux's source-controller",
            ));
        }
        if let Some(provider) = text(spec, "provider")
            && provider != "generic"
        {
            return Err(invalid(
                "provider",
                format!("{provider:?} authentication is not supported yet (only generic)"),
            ));
        }
        let mut not_acted_on = Vec::new();
        for (field, why) in [
            ("proxySecretRef", "no proxy is used"),
            ("sparseCheckout", "the whole commit is checked out"),
        ] {
            if spec.get(field).is_some_and(|v| !v.is_null()) {
                not_acted_on.push(format!("spec.{field} ({why})"));
            }
        }
        if spec.get("recurseSubmodules").and_then(Value::as_bool) == Some(true) {
            not_acted_on.push("spec.recurseSubmodules (submodules are not fetched)".into());
        }
        if let Some(fields) = spec.as_object() {
            for field in fields.keys() {
                if !KNOWN_FIELDS.contains(&field.as_str()) {
                    not_acted_on.push(format!("spec.{field} (unknown field)"));
                }
            }
        }
        Ok(GitRepositorySpec {
            url,
            reference,
            interval,
            timeout,
            secret_ref: spec.get("secretRef").and_then(|r| text(r, "name")),
            suspend: spec.get("suspend").and_then(Value::as_bool) == Some(true),
            include: includes(spec)?,
            not_acted_on,
        })
    }
}

fn secret_value(secret: &Value, key: &str) -> Option<String> {
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

/// Credentials from a Flux Git secret (`username`/`password`, `bearerToken`, or `identity` for
/// ssh), plus
/// warnings for keys that are not acted on. Values are never part of a message.
pub fn credentials_from_secret(
    secret: &Value,
    name: &str,
) -> Result<(Credentials, Vec<String>), String> {
    let mut warnings = Vec::new();
    for (key, why) in [
        ("known_hosts", "the controller's known hosts are used"),
        ("ca.crt", "the controller's trusted certificates are used"),
        ("caFile", "the controller's trusted certificates are used"),
    ] {
        if secret_value(secret, key).is_some() {
            warnings.push(format!("secret {name:?} key {key} ({why})"));
        }
    }
    if let Some(token) = secret_value(secret, "bearerToken") {
        return Ok((Credentials::Bearer(token), warnings));
    }
    if let Some(identity) = secret_value(secret, "identity") {
        return Ok((Credentials::SshPrivateKey(identity), warnings));
    }
    match (
        secret_value(secret, "username"),
        secret_value(secret, "password"),
    ) {
        (Some(username), Some(password)) if !username.is_empty() => {
            Ok((Credentials::Basic { username, password }, warnings))
        }
        (_, Some(password)) if !password.is_empty() => Ok((Credentials::Token(password), warnings)),
        _ => Err(format!(
            "secret {name:?}: expected keys username and password, bearerToken, or identity for ssh"
        )),
    }
}

/// What resolving the reference needs from [`Sources`](crate::sources::Sources), and the
/// revision string's prefix.
fn target(reference: &Reference) -> (String, String) {
    match reference {
        Reference::Branch(branch) => (format!("refs/heads/{branch}"), format!("{branch}@")),
        Reference::Tag(tag) => (format!("refs/tags/{tag}"), format!("{tag}@")),
        Reference::Name(name) => (name.clone(), format!("{name}@")),
        Reference::Commit { sha, branch } => (
            sha.clone(),
            branch.as_ref().map(|b| format!("{b}@")).unwrap_or_default(),
        ),
        Reference::Semver(_) => (String::new(), String::new()),
    }
}

/// The Flux revision string of a resolved commit.
pub fn revision_string(prefix: &str, sha: &str) -> String {
    format!("{prefix}sha1:{sha}")
}

/// The commit SHA of a Flux revision string (`main@sha1:<sha>`, `sha1:<sha>`, or a bare SHA).
pub fn sha_of(revision: &str) -> Option<&str> {
    let sha = revision
        .rsplit_once("sha1:")
        .map(|(_, sha)| sha)
        .unwrap_or(revision);
    (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sha)
}

/// Resolves the spec's reference (blocking): the revision string and the commit.
fn resolve(
    sources: &dyn crate::sources::Sources,
    spec: &GitRepositorySpec,
    credentials: &Credentials,
    freshness: Freshness,
) -> Result<(String, Resolved), String> {
    let (target, prefix) = match &spec.reference {
        Reference::Semver(range) => {
            let constraint = Constraint::parse(range).map_err(|e| e.to_string())?;
            let tags = sources
                .tags(&spec.url, credentials, freshness)
                .map_err(|e| error_chain(e.as_ref()))?;
            let (tag, _) = highest_match(&constraint, tags.iter().map(String::as_str))
                .ok_or_else(|| format!("no tag matches the semver range {range:?}"))?;
            (format!("refs/tags/{tag}"), format!("{tag}@"))
        }
        other => target(other),
    };
    let freshness = match spec.reference {
        // The tag list just fetched; do not fetch again for the tag.
        Reference::Semver(_) => Freshness::Within(Duration::MAX),
        _ => freshness,
    };
    let resolved = sources
        .resolve(&spec.url, &target, credentials, freshness)
        .map_err(|e| error_chain(e.as_ref()))?;
    Ok((revision_string(&prefix, &resolved.revision), resolved))
}

/// The status fields every outcome of a source writes (the last artifact kept).
pub(crate) fn base_status(object: &Value, previous: &Value) -> Map<String, Value> {
    let mut status = super::reconcile_fields(object, previous);
    if let Some(artifact) = previous.get("artifact").filter(|a| !a.is_null()) {
        status.insert("artifact".into(), artifact.clone());
    }
    status
}

/// A source's status with the conditions `list` (and `FieldsNotActedOn` for `warnings`).
pub(crate) fn finish(
    object: &Value,
    mut status: Map<String, Value>,
    mut list: Vec<Condition>,
    warnings: &[String],
) -> Value {
    if !warnings.is_empty() {
        list.push(Condition::new(
            conditions::FIELDS_NOT_ACTED_ON,
            "True",
            "NotSupportedYet",
            format!("accepted but not acted on: {}", warnings.join("; ")),
        ));
    }
    let generation = status
        .get("observedGeneration")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let previous = object
        .pointer("/status/conditions")
        .cloned()
        .unwrap_or(Value::Null);
    status.insert(
        "conditions".into(),
        conditions::to_json(&list, &previous, generation, &now()),
    );
    Value::Object(status)
}

/// Status after a failure: Ready=False with `reason`, the last artifact kept.
pub fn failure_status(
    object: &Value,
    reason: &str,
    message: &str,
    stalled: bool,
    warnings: &[String],
) -> Value {
    let previous = object.get("status").cloned().unwrap_or(Value::Null);
    let status = base_status(object, &previous);
    let mut list = Vec::new();
    if stalled {
        list.push(Condition::new(conditions::STALLED, "True", reason, message));
    }
    list.push(Condition::new(conditions::READY, "False", reason, message));
    if status.contains_key("artifact") {
        list.push(Condition::new(
            conditions::ARTIFACT_IN_STORAGE,
            "True",
            "Succeeded",
            format!(
                "stored artifact for revision '{}'",
                str_at(&previous, &["artifact", "revision"])
            ),
        ));
    }
    finish(object, status, list, warnings)
}

/// Status after resolving `revision`.
pub fn success_status(object: &Value, revision: &str, warnings: &[String]) -> Value {
    let previous = object.get("status").cloned().unwrap_or(Value::Null);
    let mut status = base_status(object, &previous);
    let unchanged = str_at(&previous, &["artifact", "revision"]) == revision;
    let updated = if unchanged {
        str_at(&previous, &["artifact", "lastUpdateTime"]).to_string()
    } else {
        now()
    };
    status.insert(
        "artifact".into(),
        json!({"revision": revision, "lastUpdateTime": updated}),
    );
    let message = format!("stored artifact for revision '{revision}'");
    let list = vec![
        Condition::new(
            conditions::ARTIFACT_IN_STORAGE,
            "True",
            "Succeeded",
            &message,
        ),
        Condition::new(conditions::READY, "True", "Succeeded", &message),
    ];
    finish(object, status, list, warnings)
}

/// The artifacts `spec.include` names, in order, as `status.includedArtifacts` records them:
/// each included GitRepository (of the same namespace) must exist and have an artifact for its
/// current spec.
///
/// **Errors**: Flux's reason and a message naming the include.
fn included_artifacts(
    flux: &Flux,
    id: &AppId,
    spec: &GitRepositorySpec,
) -> Result<Vec<Value>, (&'static str, String)> {
    let mut out = Vec::new();
    for (index, include) in spec.include.iter().enumerate() {
        let name = &include.repository;
        if *name == id.1 {
            return Err((
                "IncludeUnavailable",
                format!("spec.include[{index}]: a GitRepository cannot include itself"),
            ));
        }
        let Some(included) = flux.get(FluxKind::GitRepository, &(id.0.clone(), name.clone()))
        else {
            return Err((
                "IncludeUnavailable",
                format!(
                    "spec.include[{index}]: could not get resource for include '{name}': GitRepository '{}/{name}' not found",
                    id.0
                ),
            ));
        };
        let revision = str_at(&included, &["status", "artifact", "revision"]);
        if !super::is_ready(&included) || sha_of(revision).is_none() {
            return Err((
                "IncludeUnavailable",
                format!(
                    "spec.include[{index}]: GitRepository '{}/{name}' has no artifact yet",
                    id.0
                ),
            ));
        }
        out.push(json!({"revision": revision,
            "lastUpdateTime": str_at(&included, &["status", "artifact", "lastUpdateTime"])}));
    }
    Ok(out)
}

/// Reconciles the GitRepository `id`; returns when to look again.
pub(crate) async fn reconcile(flux: &Arc<Flux>, id: &AppId) -> Option<Duration> {
    let object = flux.get(FluxKind::GitRepository, id)?;
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return None;
    }
    let spec = match GitRepositorySpec::parse(object.get("spec").unwrap_or(&Value::Null)) {
        Ok(spec) => spec,
        Err(error) => {
            let status = failure_status(&object, "InvalidSpec", &error.to_string(), true, &[]);
            flux.write_status(FluxKind::GitRepository, &object, status)
                .await;
            return None;
        }
    };
    if spec.suspend {
        return None;
    }
    let retry = spec.interval.min(MAX_RETRY);
    let mut warnings = spec.not_acted_on.clone();
    let credentials = match &spec.secret_ref {
        None => Credentials::None,
        Some(name) => {
            let secret = flux.context.cluster.get("v1", "Secret", &id.0, name).await;
            let found = match secret {
                Ok(Some(secret)) => credentials_from_secret(&secret, name),
                Ok(None) => Err(format!(
                    "secret {:?} not found in namespace {:?}",
                    name, id.0
                )),
                Err(error) => Err(format!(
                    "cannot read secret {name:?}: {}",
                    error_chain(&error)
                )),
            };
            match found {
                Ok((credentials, secret_warnings)) => {
                    warnings.extend(secret_warnings);
                    credentials
                }
                Err(message) => {
                    let status =
                        failure_status(&object, "AuthenticationFailed", &message, false, &warnings);
                    flux.write_status(FluxKind::GitRepository, &object, status)
                        .await;
                    return Some(retry);
                }
            }
        }
    };
    let freshness = if super::wants_reconcile(&object) {
        Freshness::Now
    } else {
        Freshness::Within(spec.interval)
    };
    let sources = flux.context.sources.clone();
    let task_spec = spec.clone();
    let task = tokio::task::spawn_blocking(move || {
        resolve(sources.as_ref(), &task_spec, &credentials, freshness)
    });
    let outcome = match tokio::time::timeout(spec.timeout, task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => Err(format!("fetch task failed: {error}")),
        Err(_) => Err(format!("timed out after {:?}", spec.timeout)),
    };
    let status = match (outcome, included_artifacts(flux, id, &spec)) {
        (Ok(_), Err((reason, message))) => {
            failure_status(&object, reason, &message, false, &warnings)
        }
        (Ok((revision, _)), Ok(included)) => {
            let mut status = success_status(&object, &revision, &warnings);
            if !included.is_empty() {
                status["includedArtifacts"] = Value::Array(included);
            }
            status
        }
        (Err(message), _) => failure_status(
            &object,
            "GitOperationFailed",
            &format!("failed to checkout and determine revision: {message}"),
            false,
            &warnings,
        ),
    };
    let failed =
        conditions::status_of(&json!({"status": status}), conditions::READY) != Some("True");
    flux.write_status(FluxKind::GitRepository, &object, status)
        .await;
    Some(if failed { retry } else { spec.interval })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_follow_fluxs_precedence() {
        let parse = |r: Value| {
            GitRepositorySpec::parse(&json!({"url": "https://h/r", "interval": "1m", "ref": r}))
                .map(|s| s.reference)
        };
        assert_eq!(
            parse(json!({"branch": "main"})),
            Ok(Reference::Branch("main".into()))
        );
        assert_eq!(
            parse(json!({"branch": "main", "tag": "v1"})),
            Ok(Reference::Tag("v1".into()))
        );
        assert_eq!(
            parse(json!({"tag": "v1", "semver": ">=1.0"})),
            Ok(Reference::Semver(">=1.0".into()))
        );
        assert_eq!(
            parse(json!({"semver": ">=1.0", "name": "refs/heads/dev"})),
            Ok(Reference::Name("refs/heads/dev".into()))
        );
        let sha = "a".repeat(40);
        assert_eq!(
            parse(json!({"name": "refs/heads/dev", "commit": sha, "branch": "main"})),
            Ok(Reference::Commit {
                sha: sha.clone(),
                branch: Some("main".into())
            })
        );
        assert_eq!(parse(Value::Null), Ok(Reference::Branch("master".into())));
    }

    #[test]
    fn bad_specs_name_the_field() {
        let error = |spec: Value| {
            GitRepositorySpec::parse(&spec)
                .expect_err("invalid")
                .to_string()
        };
        assert!(error(json!({"interval": "1m"})).starts_with("spec.url:"));
        assert!(error(json!({"url": "https://h/r"})).starts_with("spec.interval:"));
        assert!(
            error(json!({"url": "https://h/r", "interval": "soon"})).starts_with("spec.interval:")
        );
        assert!(
            error(json!({"url": "https://h/r", "interval": "0s"})).starts_with("spec.interval:")
        );
        assert!(
            error(json!({"url": "https://h/r", "interval": "99999999999999999999999h"}))
                .starts_with("spec.interval:")
        );
        assert!(
            error(json!({"url": "u", "interval": "1m", "ref": {"semver": ">= >= 1"}}))
                .starts_with("spec.ref.semver:")
        );
        assert!(
            error(json!({"url": "u", "interval": "1m", "ref": {"commit": "abc"}}))
                .starts_with("spec.ref.commit:")
        );
        assert!(
            error(json!({"url": "u", "interval": "1m", "verify": {"mode": "HEAD"}}))
                .starts_with("spec.verify:")
        );
        assert!(
            error(json!({"url": "u", "interval": "1m", "provider": "azure"}))
                .starts_with("spec.provider:")
        );
    }

    #[test]
    fn fields_not_acted_on_are_listed() {
        let spec = GitRepositorySpec::parse(&json!({"url": "u", "interval": "1m",
            "proxySecretRef": {"name": "x"}, "recurseSubmodules": true, "colour": "blue"}))
        .expect("parses");
        assert_eq!(spec.not_acted_on.len(), 3, "{:?}", spec.not_acted_on);
        assert!(
            spec.not_acted_on
                .iter()
                .any(|w| w.contains("spec.colour (unknown field)"))
        );
    }

    #[test]
    fn revision_strings() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(revision_string("main@", sha), format!("main@sha1:{sha}"));
        assert_eq!(sha_of(&format!("main@sha1:{sha}")), Some(sha));
        assert_eq!(sha_of(&format!("sha1:{sha}")), Some(sha));
        assert_eq!(sha_of(sha), Some(sha));
        assert_eq!(sha_of("main@sha1:short"), None);
    }

    #[test]
    fn secrets_map_to_credentials_without_leaking() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let basic = json!({"data": {"username": b64("git"), "password": b64("hunter22")}});
        let (credentials, warnings) = credentials_from_secret(&basic, "auth").expect("basic");
        assert!(matches!(credentials, Credentials::Basic { .. }));
        assert!(warnings.is_empty());
        let bearer = json!({"data": {"bearerToken": b64("tok-123456")}});
        let (credentials, _) = credentials_from_secret(&bearer, "auth").expect("bearer");
        assert_eq!(credentials, Credentials::Bearer("tok-123456".into()));
        assert!(!format!("{credentials:?}").contains("tok-123456"));
        let empty = json!({"data": {}});
        assert!(credentials_from_secret(&empty, "auth").is_err());
    }
}
