//! `OCIRepository`: resolve `spec.ref` (digest, else semver range, else tag, else `latest`) in
//! the registry, pull the manifest's layer `spec.layerSelector` picks (the first layer by
//! default) through the shared [`Sources`], unpack it into the engine's cache, and record
//! Flux's revision (`<tag>@sha256:<manifest digest>`, or `sha256:<digest>` for a digest
//! reference) as `status.artifact.revision`. Kustomizations build from the unpacked content
//! and HelmReleases (`spec.chartRef`) install the chart it holds.
//!
//! Reasons on `Ready=False` are Flux's: `ReadOperationFailed` (no tag in the range, tags
//! unreadable), `OCIArtifactPullFailed` (unreachable registry, unknown tag, access denied,
//! digest mismatch), `OCIArtifactLayerOperationFailed` (no such layer, oversized layer, bad
//! archive), `AuthenticationFailed` (secret missing or unusable), `URLInvalid` and
//! `InvalidSpec` (with `Stalled`).
//!
//! [`Sources`]: crate::sources::Sources

use super::conditions::{self, Condition};
use super::git_repository::{SpecError, base_status, duration, finish, invalid, text};
use super::{Flux, FluxKind};
use crate::queue::AppId;
use crate::sources::{SourceError, error_chain};
use crate::status::now;
use plumb_core::key::str_at;
use plumb_core::semver::Constraint;
use plumb_source::helm::oci::artifact::{
    ArtifactError, ArtifactReference, ArtifactStage, CachedDigest, LayerOperation, LayerSelector,
    PulledArtifact, docker_config_auth, is_sha256_digest, semver_filter,
};
use plumb_source::helm::oci::{OciAccess, OciReference, PlainHttp};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Longest a failing repository waits before the next attempt.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The parts of an `OCIRepository` spec plumb acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRepositorySpec {
    /// `spec.url` as written.
    pub url: String,
    /// The registry and repository of `spec.url`.
    pub reference: OciReference,
    /// `spec.ref`, in Flux's precedence.
    pub wanted: ArtifactReference,
    /// `spec.layerSelector`.
    pub selector: LayerSelector,
    /// `spec.interval`.
    pub interval: Duration,
    /// `spec.timeout` (60 s by default).
    pub timeout: Duration,
    /// `spec.secretRef.name`: a docker-registry Secret.
    pub secret_ref: Option<String>,
    /// `spec.insecure`: plain HTTP allowed.
    pub insecure: bool,
    /// `spec.suspend`.
    pub suspend: bool,
    /// `spec.ignore`: exclusions over the layer's files (with Flux's defaults and the
    /// `.sourceignore` files it holds).
    pub ignore: Option<String>,
    /// Fields accepted but not acted on, with why.
    pub not_acted_on: Vec<String>,
}

const KNOWN_FIELDS: [&str; 15] = [
    "url",
    "ref",
    "layerSelector",
    "interval",
    "timeout",
    "secretRef",
    "insecure",
    "suspend",
    "ignore",
    "provider",
    "serviceAccountName",
    "certSecretRef",
    "proxySecretRef",
    "verify",
    "insecureSkipVerify",
];

impl OciRepositorySpec {
    /// Parses `spec`.
    ///
    /// **Errors**: a missing or invalid `url` (field `url`: the `URLInvalid` reason), a
    /// missing `interval`, a malformed duration, `ref.digest` that is not `sha256:<64 hex>`,
    /// an invalid `ref.semver` or `ref.semverFilter`, a `layerSelector.operation` other than
    /// `extract` or `copy`, and fields whose absence of support would be unsafe to ignore
    /// (`verify`: signatures would not be checked; `provider` other than `generic`).
    pub fn parse(spec: &Value) -> Result<OciRepositorySpec, SpecError> {
        if !spec.is_object() {
            return Err(invalid("", "must be an object"));
        }
        let url = text(spec, "url").ok_or_else(|| invalid("url", "must be set"))?;
        if !url.starts_with("oci://") {
            return Err(invalid(
                "url",
                format!("{url:?}: URL must be in format 'oci://<domain>/<org>/<repo>'"),
            ));
        }
        let reference = OciReference::parse(&url, "").map_err(|error| {
            invalid(
                "url",
                match error {
                    plumb_source::helm::HelmError::Reference { message, .. } => {
                        format!("{url:?}: {message}")
                    }
                    other => other.to_string(),
                },
            )
        })?;
        let interval =
            duration(spec, "interval")?.ok_or_else(|| invalid("interval", "must be set"))?;
        if interval.is_zero() {
            return Err(invalid("interval", "must be greater than zero"));
        }
        let timeout = duration(spec, "timeout")?.unwrap_or(Duration::from_secs(60));
        let reference_spec = spec.get("ref").filter(|r| !r.is_null());
        if reference_spec.is_some_and(|r| !r.is_object()) {
            return Err(invalid("ref", "must be an object"));
        }
        let wanted = match reference_spec {
            None => ArtifactReference::Tag("latest".into()),
            Some(r) => {
                if let Some(digest) = text(r, "digest") {
                    if !is_sha256_digest(&digest) {
                        return Err(invalid(
                            "ref.digest",
                            format!("{digest:?} is not a digest such as sha256:<64 hex>"),
                        ));
                    }
                    ArtifactReference::Digest(digest)
                } else if let Some(range) = text(r, "semver") {
                    Constraint::parse(&range).map_err(|e| invalid("ref.semver", e.to_string()))?;
                    let filter = text(r, "semverFilter");
                    if let Some(pattern) = &filter {
                        semver_filter(pattern).map_err(|e| invalid("ref.semverFilter", e))?;
                    }
                    ArtifactReference::Semver { range, filter }
                } else {
                    ArtifactReference::Tag(text(r, "tag").unwrap_or_else(|| "latest".into()))
                }
            }
        };
        let selector = match spec.get("layerSelector").filter(|s| !s.is_null()) {
            None => LayerSelector::default(),
            Some(s) if !s.is_object() => return Err(invalid("layerSelector", "must be an object")),
            Some(s) => LayerSelector {
                media_type: text(s, "mediaType"),
                operation: match text(s, "operation").as_deref() {
                    None | Some("extract") => LayerOperation::Extract,
                    Some("copy") => LayerOperation::Copy,
                    Some(other) => {
                        return Err(invalid(
                            "layerSelector.operation",
                            format!("{other:?} is not extract or copy"),
                        ));
                    }
                },
            },
        };
        if spec.get("verify").is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                "verify",
                "signature verification (cosign, notation) is not supported yet; remove it or use Flux's source-controller",
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
            (
                "serviceAccountName",
                "its image pull secrets are not read; use secretRef",
            ),
            (
                "certSecretRef",
                "the controller's trusted certificates are used",
            ),
            ("proxySecretRef", "no proxy is used"),
        ] {
            if spec.get(field).is_some_and(|v| !v.is_null()) {
                not_acted_on.push(format!("spec.{field} ({why})"));
            }
        }
        if let Some(fields) = spec.as_object() {
            for field in fields.keys() {
                if !KNOWN_FIELDS.contains(&field.as_str()) {
                    not_acted_on.push(format!("spec.{field} (unknown field)"));
                }
            }
        }
        let insecure = spec.get("insecure").and_then(Value::as_bool) == Some(true);
        Ok(OciRepositorySpec {
            url,
            reference,
            wanted,
            selector,
            interval,
            timeout,
            secret_ref: spec.get("secretRef").and_then(|r| text(r, "name")),
            insecure,
            suspend: spec.get("suspend").and_then(Value::as_bool) == Some(true),
            ignore: spec
                .get("ignore")
                .and_then(Value::as_str)
                .map(str::to_string),
            not_acted_on,
        })
    }

    /// How to reach the registry, given credentials from the secret.
    pub fn access(&self, auth: Option<plumb_source::helm::HelmAuth>) -> OciAccess {
        OciAccess {
            auth,
            plain_http: if self.insecure {
                PlainHttp::Allowed
            } else {
                PlainHttp::LoopbackOnly
            },
        }
    }
}

/// Basic credentials for `registry` from a docker-registry Secret (`.dockerconfigjson`, or
/// the older `.dockercfg`); `None` when it has no entry for the registry (anonymous, as Flux).
/// Messages never hold secret values.
pub fn credentials_from_docker_secret(
    secret: &Value,
    name: &str,
    registry: &str,
) -> Result<Option<plumb_source::helm::HelmAuth>, String> {
    let mut values = super::kustomization::secret_or_configmap_values(secret);
    let config = values
        .remove(".dockerconfigjson")
        .or_else(|| values.remove(".dockercfg"))
        .ok_or_else(|| {
            format!("secret {name:?} has no .dockerconfigjson key (create it with kubectl create secret docker-registry)")
        })?;
    docker_config_auth(&config, registry)
        .map_err(|problem| format!("secret {name:?}: docker config {problem}"))
}

/// The registry access of an OCIRepository object: its spec's transport settings and the
/// credentials of its `secretRef`.
pub(crate) async fn access_of(
    flux: &Flux,
    namespace: &str,
    spec: &OciRepositorySpec,
) -> Result<OciAccess, String> {
    let Some(name) = &spec.secret_ref else {
        return Ok(spec.access(None));
    };
    let secret = flux
        .context
        .cluster
        .get("v1", "Secret", namespace, name)
        .await
        .map_err(|error| {
            format!(
                "failed to get secret '{namespace}/{name}': {}",
                error_chain(&error)
            )
        })?
        .ok_or_else(|| format!("failed to get secret '{namespace}/{name}': not found"))?;
    let auth = credentials_from_docker_secret(&secret, name, &spec.reference.registry)?;
    Ok(spec.access(auth))
}

/// Flux's reason and message for a failed pull.
pub fn failure_of(error: &SourceError, url: &str) -> (&'static str, String) {
    let chain = error_chain(error.as_ref());
    match error.downcast_ref::<ArtifactError>().map(|e| e.stage) {
        Some(ArtifactStage::Resolve) => (
            "ReadOperationFailed",
            chain.replacen(
                "failed to determine the artifact tag",
                &format!("failed to determine the artifact tag for '{url}'"),
                1,
            ),
        ),
        Some(ArtifactStage::Pull) => ("OCIArtifactPullFailed", chain),
        Some(ArtifactStage::Layer) | None => ("OCIArtifactLayerOperationFailed", chain),
    }
}

/// `FetchFailed`: a negative-polarity condition Flux sets while fetching fails.
pub const FETCH_FAILED: &str = "FetchFailed";

/// Status after a failure: `Ready=False` (and `FetchFailed=True`) with `reason`, the last
/// artifact kept.
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
    } else {
        list.push(Condition::new(
            conditions::RECONCILING,
            "True",
            "ProgressingWithRetry",
            message,
        ));
        list.push(Condition::new(FETCH_FAILED, "True", reason, message));
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

/// Status after pulling `pulled`.
pub fn success_status(
    object: &Value,
    pulled: &PulledArtifact,
    selector: &LayerSelector,
    warnings: &[String],
) -> Value {
    let previous = object.get("status").cloned().unwrap_or(Value::Null);
    let mut status = super::reconcile_fields(object, &previous);
    let unchanged = str_at(&previous, &["artifact", "revision"]) == pulled.revision;
    let updated = if unchanged {
        str_at(&previous, &["artifact", "lastUpdateTime"]).to_string()
    } else {
        now()
    };
    let mut artifact = json!({"revision": pulled.revision, "lastUpdateTime": updated,
        "size": pulled.layer_size});
    if selector.operation == LayerOperation::Copy {
        // The stored artifact is the layer itself, so its digest is Flux's.
        artifact["digest"] = json!(pulled.layer_digest);
    }
    if !pulled.annotations.is_empty() {
        artifact["metadata"] = json!(pulled.annotations);
    }
    status.insert("artifact".into(), artifact);
    let mut observed = json!({"operation": match selector.operation {
        LayerOperation::Extract => "extract",
        LayerOperation::Copy => "copy",
    }});
    if let Some(media_type) = &selector.media_type {
        observed["mediaType"] = json!(media_type);
    }
    status.insert("observedLayerSelector".into(), observed);
    let message = format!("stored artifact for revision '{}'", pulled.revision);
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

/// Reconciles the OCIRepository `id`; returns when to look again.
pub(crate) async fn reconcile(flux: &Arc<Flux>, id: &AppId) -> Option<Duration> {
    let object = flux.get(FluxKind::OciRepository, id)?;
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return None;
    }
    let spec = match OciRepositorySpec::parse(object.get("spec").unwrap_or(&Value::Null)) {
        Ok(spec) => spec,
        Err(error) => {
            let reason = if error.field == "url" {
                "URLInvalid"
            } else {
                "InvalidSpec"
            };
            let status = failure_status(&object, reason, &error.to_string(), true, &[]);
            flux.write_status(FluxKind::OciRepository, &object, status)
                .await;
            return None;
        }
    };
    if spec.suspend {
        return None;
    }
    let retry = spec.interval.min(MAX_RETRY);
    let warnings = spec.not_acted_on.clone();
    let access = match access_of(flux, &id.0, &spec).await {
        Ok(access) => access,
        Err(message) => {
            let status =
                failure_status(&object, "AuthenticationFailed", &message, false, &warnings);
            flux.write_status(FluxKind::OciRepository, &object, status)
                .await;
            return Some(retry);
        }
    };
    let sources = flux.context.sources.clone();
    let task_spec = spec.clone();
    let task = tokio::task::spawn_blocking(move || {
        // A pinned digest is confirmed with the registry, so these credentials are checked
        // even when another object pulled the same artifact.
        sources.oci_artifact(
            &task_spec.reference,
            &task_spec.wanted,
            &task_spec.selector,
            &access,
            CachedDigest::Confirm,
        )
    });
    let outcome = match tokio::time::timeout(spec.timeout, task).await {
        Ok(Ok(Ok(pulled))) => Ok(pulled),
        Ok(Ok(Err(error))) => Err(failure_of(&error, &spec.url)),
        Ok(Err(error)) => Err((
            "OCIArtifactPullFailed",
            format!("pull task failed: {error}"),
        )),
        Err(_) => Err((
            "OCIArtifactPullFailed",
            format!(
                "failed to pull artifact from '{}': timed out after {:?}",
                spec.url, spec.timeout
            ),
        )),
    };
    let (status, failed) = match outcome {
        Ok(pulled) => (
            success_status(&object, &pulled, &spec.selector, &warnings),
            false,
        ),
        Err((reason, message)) => (
            failure_status(&object, reason, &message, false, &warnings),
            true,
        ),
    };
    flux.write_status(FluxKind::OciRepository, &object, status)
        .await;
    Some(if failed { retry } else { spec.interval })
}

/// The spec and the last recorded revision of the OCIRepository object `repository`, when it
/// is ready for its current generation: what a Kustomization or HelmRelease pulls by digest.
pub(crate) fn ready_artifact(repository: &Value) -> Result<(OciRepositorySpec, String), String> {
    let name = format!(
        "OCIRepository '{}/{}'",
        str_at(repository, &["metadata", "namespace"]),
        str_at(repository, &["metadata", "name"])
    );
    let spec = OciRepositorySpec::parse(repository.get("spec").unwrap_or(&Value::Null))
        .map_err(|error| format!("{name} is not ready: {error}"))?;
    let revision = str_at(repository, &["status", "artifact", "revision"]).to_string();
    if !super::is_ready(repository) {
        let message = repository
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == conditions::READY))
            .map(|c| str_at(c, &["message"]).to_string())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "latest generation of object has not been reconciled".into());
        return Err(format!("{name} is not ready: {message}"));
    }
    if digest_of(&revision).is_none() {
        return Err(format!("{name} is not ready: does not have an artifact"));
    }
    Ok((spec, revision))
}

/// The recorded artifact `digest` of an OCIRepository whose spec is `spec`, as a Kustomization
/// or HelmRelease reads it (blocking): from the cache the repository's own pull filled, or
/// from the registry with the repository's credentials.
///
/// **Errors**: the pull's failure, as one line.
pub(crate) fn pull_recorded(
    sources: &dyn crate::sources::Sources,
    spec: &OciRepositorySpec,
    access: &OciAccess,
    digest: &str,
) -> Result<PulledArtifact, String> {
    sources
        .oci_artifact(
            &spec.reference,
            &ArtifactReference::Digest(digest.to_string()),
            &spec.selector,
            access,
            CachedDigest::Trust,
        )
        .map_err(|e| error_chain(e.as_ref()))
}

/// The manifest digest of a Flux OCI revision (`<tag>@sha256:<hex>` or `sha256:<hex>`).
pub fn digest_of(revision: &str) -> Option<&str> {
    let digest = revision.rsplit_once('@').map_or(revision, |(_, d)| d);
    is_sha256_digest(digest).then_some(digest)
}

/// The tag of a Flux OCI revision, if it has one.
pub fn tag_of(revision: &str) -> Option<&str> {
    revision.rsplit_once('@').map(|(tag, _)| tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn parse(spec: Value) -> Result<OciRepositorySpec, SpecError> {
        OciRepositorySpec::parse(&spec)
    }

    #[test]
    fn references_follow_fluxs_precedence() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let wanted = |r: Value| {
            parse(json!({"url": "oci://ghcr.io/org/app", "interval": "5m", "ref": r}))
                .map(|s| s.wanted)
        };
        assert_eq!(
            wanted(Value::Null),
            Ok(ArtifactReference::Tag("latest".into()))
        );
        assert_eq!(
            wanted(json!({"tag": "v1"})),
            Ok(ArtifactReference::Tag("v1".into()))
        );
        assert_eq!(
            wanted(json!({"tag": "v1", "semver": ">=1", "semverFilter": "^v"})),
            Ok(ArtifactReference::Semver {
                range: ">=1".into(),
                filter: Some("^v".into())
            })
        );
        assert_eq!(
            wanted(json!({"tag": "v1", "semver": ">=1", "digest": digest})),
            Ok(ArtifactReference::Digest(digest.clone()))
        );
        let spec = parse(json!({"url": "oci://127.0.0.1:5000/apps/site", "interval": "1m",
            "layerSelector": {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "operation": "copy"},
            "insecure": true}))
        .expect("valid");
        assert_eq!(spec.reference.name(), "apps/site");
        assert_eq!(spec.selector.operation, LayerOperation::Copy);
        assert_eq!(spec.access(None).plain_http, PlainHttp::Allowed);
        assert_eq!(spec.timeout, Duration::from_secs(60));
    }

    #[test]
    fn bad_specs_name_the_field() {
        let field = |spec: Value| parse(spec).expect_err("invalid").field;
        assert_eq!(field(json!({"interval": "1m"})), "url");
        assert_eq!(
            field(json!({"url": "https://ghcr.io/x", "interval": "1m"})),
            "url"
        );
        assert_eq!(
            field(json!({"url": "oci://ghcr.io/x:v1", "interval": "1m"})),
            "url"
        );
        assert_eq!(field(json!({"url": "oci://ghcr.io/x"})), "interval");
        let base = |extra: Value| {
            let mut spec = json!({"url": "oci://ghcr.io/x", "interval": "1m"});
            if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
                spec.extend(extra.clone());
            }
            field(spec)
        };
        assert_eq!(base(json!({"ref": {"digest": "sha256:abc"}})), "ref.digest");
        assert_eq!(base(json!({"ref": {"semver": ">= >= 1"}})), "ref.semver");
        assert_eq!(
            base(json!({"ref": {"semver": ">=1", "semverFilter": "("}})),
            "ref.semverFilter"
        );
        assert_eq!(
            base(json!({"layerSelector": {"operation": "move"}})),
            "layerSelector.operation"
        );
        assert_eq!(base(json!({"verify": {"provider": "cosign"}})), "verify");
        assert_eq!(base(json!({"provider": "aws"})), "provider");
        let spec = parse(
            json!({"url": "oci://ghcr.io/x", "interval": "1m", "ignore": "*.md",
            "certSecretRef": {"name": "ca"}, "colour": "blue"}),
        )
        .expect("valid");
        assert_eq!(spec.not_acted_on.len(), 2, "{:?}", spec.not_acted_on);
        assert_eq!(spec.ignore.as_deref(), Some("*.md"));
    }

    #[test]
    fn revisions_split_into_tag_and_digest() {
        let digest = format!("sha256:{}", "b".repeat(64));
        assert_eq!(
            digest_of(&format!("v1.2.0@{digest}")),
            Some(digest.as_str())
        );
        assert_eq!(digest_of(&digest), Some(digest.as_str()));
        assert_eq!(digest_of("main@sha1:abc"), None);
        assert_eq!(tag_of(&format!("v1.2.0@{digest}")), Some("v1.2.0"));
        assert_eq!(tag_of(&digest), None);
    }

    #[test]
    fn docker_secrets_give_credentials_without_leaking() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config =
            json!({"auths": {"127.0.0.1:5000": {"username": "robot", "password": "s3cret"}}});
        let secret = json!({"kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": b64(&config.to_string())}});
        let auth = credentials_from_docker_secret(&secret, "regcred", "127.0.0.1:5000")
            .expect("valid")
            .expect("an entry");
        assert_eq!(auth.username, "robot");
        assert!(
            credentials_from_docker_secret(&secret, "regcred", "ghcr.io")
                .expect("valid")
                .is_none()
        );
        let opaque = json!({"kind": "Secret",
            "data": {"username": b64("robot"), "password": b64("s3cret")}});
        let error = credentials_from_docker_secret(&opaque, "regcred", "ghcr.io").unwrap_err();
        assert!(
            error.contains(".dockerconfigjson") && !error.contains("s3cret"),
            "{error}"
        );
    }
}
