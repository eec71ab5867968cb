//! `spec.kubeConfig.secretRef` and `spec.serviceAccountName`: the cluster a Kustomization
//! applies to, and as whom. With a service account, every request (apply, prune, health
//! checks) impersonates `system:serviceaccount:<namespace>:<name>`, so the cluster's RBAC
//! decides what the Kustomization may change, as with Flux. Without `kubeConfig` the cluster is
//! the controller's own. The kubeconfig is read from a Secret of the Kustomization's namespace
//! (key `secretRef.key`, else `value`, else `value.yaml`, as Flux reads it) and connected to
//! with [`Cluster::from_kubeconfig_text`], which refuses settings that would run commands or
//! read the controller's files. Clients are kept per kubeconfig text, so a reconcile does not
//! rediscover the remote API each time.

use super::Flux;
use super::kustomization_spec::KubeConfigRef;
use plumb_kube::{Cluster, Timeouts};
use sha2::Digest as _;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most remote clusters kept connected at once; beyond it the cache starts afresh.
const MAX_CLUSTERS: usize = 256;

/// Connected remote clusters, by sha256 of their kubeconfig text.
#[derive(Default)]
pub(crate) struct RemoteClusters {
    clusters: Mutex<HashMap<String, Cluster>>,
}

/// Why the target cluster is not available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetError {
    /// The Secret does not exist (a deleted Kustomization then orphans its objects rather
    /// than waiting forever).
    SecretMissing(String),
    /// The Secret lacks the key, or its kubeconfig cannot be used.
    Unusable(String),
}

impl TargetError {
    /// The message for a condition.
    pub(crate) fn message(&self) -> &str {
        match self {
            TargetError::SecretMissing(message) | TargetError::Unusable(message) => message,
        }
    }
}

/// Where and as whom an object's changes are made.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Target<'a> {
    /// `spec.kubeConfig.secretRef`.
    pub kube_config: Option<&'a KubeConfigRef>,
    /// `spec.serviceAccountName`.
    pub service_account: Option<&'a str>,
}

/// The cluster to apply to for an object of `namespace`: its kubeconfig's cluster (else the
/// controller's own), impersonating its service account when it names one.
pub(crate) async fn target_cluster(
    flux: &Flux,
    namespace: &str,
    target: Target<'_>,
) -> Result<Cluster, TargetError> {
    let cluster = connected_cluster(flux, namespace, target.kube_config).await?;
    // The controller's `--default-service-account` stands in for a missing one on its own
    // cluster, so nothing there is applied with the controller's rights.
    let default = flux
        .context
        .options
        .flux_tenancy
        .default_service_account
        .as_deref()
        .filter(|_| target.kube_config.is_none());
    let Some(account) = target.service_account.or(default) else {
        return Ok(cluster);
    };
    let user = format!("system:serviceaccount:{namespace}:{account}");
    cluster.impersonating(&user, &[]).map_err(|error| {
        TargetError::Unusable(format!(
            "spec.serviceAccountName: cannot act as {user}: {}",
            crate::sources::error_chain(&error)
        ))
    })
}

/// The cluster of `reference`'s kubeconfig, or the controller's own.
async fn connected_cluster(
    flux: &Flux,
    namespace: &str,
    reference: Option<&KubeConfigRef>,
) -> Result<Cluster, TargetError> {
    let Some(reference) = reference else {
        return Ok(flux.context.cluster.clone());
    };
    let shown = format!("secret '{namespace}/{}'", reference.secret);
    let secret = flux
        .context
        .cluster
        .get("v1", "Secret", namespace, &reference.secret)
        .await
        .map_err(|error| {
            TargetError::Unusable(format!(
                "spec.kubeConfig.secretRef: cannot read {shown}: {}",
                crate::sources::error_chain(&error)
            ))
        })?
        .ok_or_else(|| {
            TargetError::SecretMissing(format!("spec.kubeConfig.secretRef: {shown} not found"))
        })?;
    let values = super::kustomization::secret_or_configmap_values(&secret);
    let (key, text) = match &reference.key {
        Some(key) => (key.as_str(), values.get(key)),
        None => ["value", "value.yaml"]
            .into_iter()
            .find_map(|key| values.get(key).map(|text| (key, Some(text))))
            .unwrap_or(("value", None)),
    };
    let text = text.ok_or_else(|| {
        TargetError::Unusable(format!(
            "spec.kubeConfig.secretRef: {shown} has no key '{key}' with a kubeconfig"
        ))
    })?;
    let fingerprint: String = sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(cluster) = flux
        .remote_clusters
        .clusters
        .lock()
        .ok()
        .and_then(|clusters| clusters.get(&fingerprint).cloned())
    {
        return Ok(cluster);
    }
    let origin = format!("{shown} key '{key}'");
    let cluster = Cluster::from_kubeconfig_text(text, &origin, Timeouts::default())
        .await
        .map_err(|error| {
            TargetError::Unusable(format!(
                "spec.kubeConfig.secretRef: {}",
                crate::sources::error_chain(&error)
            ))
        })?;
    if let Ok(mut clusters) = flux.remote_clusters.clusters.lock() {
        if clusters.len() >= MAX_CLUSTERS {
            clusters.clear();
        }
        clusters.insert(fingerprint, cluster.clone());
    }
    Ok(cluster)
}

/// What the cleanup of a deleted Kustomization or HelmRelease can do in its target cluster.
pub(crate) enum Cleanup {
    /// Reach it with this connection.
    Reach(Box<Cluster>),
    /// Its kubeconfig Secret is gone: nothing can reach the objects, so they are left in place
    /// (orphaned) rather than a finalizer holding the object forever.
    Orphan,
    /// Try again shortly (the cluster or its Secret cannot be used right now).
    Retry,
}

/// The cluster the cleanup of the deleted `kind` `id` works in (logged when it cannot).
pub(crate) async fn cleanup_cluster(
    flux: &Flux,
    id: &crate::queue::AppId,
    target: Target<'_>,
    kind: &str,
) -> Cleanup {
    match target_cluster(flux, &id.0, target).await {
        Ok(cluster) => Cleanup::Reach(Box::new(cluster)),
        Err(TargetError::SecretMissing(message)) => {
            tracing::warn!(namespace = %id.0, name = %id.1, kind, %message, "objects of a deleted object left in their cluster");
            Cleanup::Orphan
        }
        Err(TargetError::Unusable(message)) => {
            tracing::warn!(namespace = %id.0, name = %id.1, kind, %message, "cannot reach a deleted object's cluster; retrying");
            Cleanup::Retry
        }
    }
}
