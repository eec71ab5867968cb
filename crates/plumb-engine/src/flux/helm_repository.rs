//! `HelmRepository`: fetch the repository's index (streaming, size-capped, through the shared
//! [`Sources`]) at every `spec.interval` and record its digest as `status.artifact.revision`
//! (`sha256:<hex>`), the way source-controller names an index artifact. HelmReleases using the
//! repository are woken when the digest changes.
//!
//! There is no artifact storage: `status.artifact` carries `revision`, `digest`, `size` and
//! `lastUpdateTime` but no `url`. Repositories of `type: oci` have no index: as in Flux, they
//! are ready once their credentials can be read, and HelmReleases pull charts from the
//! registry.
//!
//! [`Sources`]: crate::sources::Sources

use super::git_repository::{credentials_from_secret, failure_status, success_status};
use super::helm_spec::HelmRepositorySpec;
use super::{Flux, FluxKind};
use crate::queue::AppId;
use crate::sources::error_chain;
use plumb_source::Credentials;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The longest wait before retrying a failed fetch.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Credentials of a Flux source's `secretRef` in `namespace`: the credentials, or the reason
/// they cannot be had (values are never part of it).
pub(crate) async fn secret_credentials(
    flux: &Flux,
    namespace: &str,
    secret_ref: Option<&str>,
) -> Result<(Credentials, Vec<String>), String> {
    let Some(name) = secret_ref else {
        return Ok((Credentials::None, Vec::new()));
    };
    match flux
        .context
        .cluster
        .get("v1", "Secret", namespace, name)
        .await
    {
        Ok(Some(secret)) => credentials_from_secret(&secret, name),
        Ok(None) => Err(format!(
            "secret {name:?} not found in namespace {namespace:?}"
        )),
        Err(error) => Err(format!(
            "cannot read secret {name:?}: {}",
            error_chain(&error)
        )),
    }
}

/// The status of a usable OCI repository: `Ready` with no artifact.
fn oci_ready_status(object: &Value, warnings: &[String]) -> Value {
    let previous = object.get("status").cloned().unwrap_or(Value::Null);
    let status = super::reconcile_fields(object, &previous);
    let list =
        super::conditions::ready_conditions("True", "Succeeded", "Helm repository is ready", false);
    super::git_repository::finish(object, status, list, warnings)
}

/// Reconciles the HelmRepository `id`; returns when to look again.
pub(crate) async fn reconcile(flux: &Arc<Flux>, id: &AppId) -> Option<Duration> {
    let object = flux.get(FluxKind::HelmRepository, id)?;
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return None;
    }
    let spec = match HelmRepositorySpec::parse(object.get("spec").unwrap_or(&Value::Null)) {
        Ok(spec) => spec,
        Err(error) => {
            let status = failure_status(&object, "InvalidSpec", &error.to_string(), true, &[]);
            flux.write_status(FluxKind::HelmRepository, &object, status)
                .await;
            return None;
        }
    };
    if spec.suspend {
        return None;
    }
    let mut warnings = spec.not_acted_on.clone();
    if spec.oci {
        // As in Flux, an OCI repository has no index and no artifact: charts are pulled from
        // the registry by the HelmReleases that use it. Only its credentials are checked here.
        let status = match secret_credentials(flux, &id.0, spec.secret_ref.as_deref()).await {
            Ok((_, secret_warnings)) => {
                warnings.extend(secret_warnings);
                oci_ready_status(&object, &warnings)
            }
            Err(message) => {
                failure_status(&object, "AuthenticationFailed", &message, false, &warnings)
            }
        };
        flux.write_status(FluxKind::HelmRepository, &object, status)
            .await;
        return Some(spec.interval);
    }
    let retry = spec.interval.min(MAX_RETRY);
    let credentials = match secret_credentials(flux, &id.0, spec.secret_ref.as_deref()).await {
        Ok((credentials, secret_warnings)) => {
            warnings.extend(secret_warnings);
            credentials
        }
        Err(message) => {
            let status =
                failure_status(&object, "AuthenticationFailed", &message, false, &warnings);
            flux.write_status(FluxKind::HelmRepository, &object, status)
                .await;
            return Some(retry);
        }
    };
    let sources = flux.context.sources.clone();
    let url = spec.url.clone();
    let task = tokio::task::spawn_blocking(move || {
        sources
            .chart_index(&url, &credentials)
            .map_err(|e| error_chain(e.as_ref()))
    });
    let outcome = match tokio::time::timeout(spec.timeout, task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => Err(format!("fetch task failed: {error}")),
        Err(_) => Err(format!("timed out after {:?}", spec.timeout)),
    };
    let status = match outcome {
        Ok((digest, size)) => {
            let mut status = success_status(&object, &digest, &warnings);
            if let Some(artifact) = status.get_mut("artifact").and_then(Value::as_object_mut) {
                artifact.insert("digest".into(), Value::String(digest.clone()));
                artifact.insert("size".into(), Value::from(size));
            }
            status
        }
        Err(message) => failure_status(
            &object,
            "IndexationFailed",
            &format!("failed to fetch Helm repository index: {message}"),
            false,
            &warnings,
        ),
    };
    let failed = super::conditions::status_of(
        &serde_json::json!({"status": status}),
        super::conditions::READY,
    ) != Some("True");
    flux.write_status(FluxKind::HelmRepository, &object, status)
        .await;
    Some(if failed { retry } else { spec.interval })
}
