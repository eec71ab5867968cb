//! Upgrade remediation by rollback (`spec.upgrade.remediation.strategy: rollback`, Flux's
//! default): after a failed upgrade, while retries remain (or for the last failure when
//! `remediateLastFailure`), the release goes back to its last successful revision the way
//! `helm rollback` does it — the old manifest applied again, what only the failed revision had
//! deleted, and a new revision recorded as `deployed` with "Rollback to N".

use super::apply::{self, ApplySettings};
use super::helm_release::{entries_of, owner, supersede};
use super::helm_spec::HelmReleaseSpec;
use super::helm_storage::Release;
use crate::queue::AppId;
use crate::status::now;
use plumb_core::key::str_at;
use plumb_core::manifest::{Manifest, Origin};
use serde_json::{Value, json};

/// Whether a failed upgrade, the `failures`-th in a row, is remediated now (Flux: between
/// retries, and after the last one only with `remediateLastFailure`), by either strategy.
pub fn due(spec: &HelmReleaseSpec, failures: i64) -> bool {
    let retries_remain = spec.upgrade_retries < 0 || failures <= spec.upgrade_retries;
    retries_remain || spec.remediate_last_upgrade_failure
}

/// A finished rollback.
pub struct RolledBack {
    /// The revision rolled back to.
    pub to: u64,
    /// The revision recorded for the rollback.
    pub version: u64,
    /// `name@version` of the chart rolled back to.
    pub chart: String,
    /// The history entry of the new revision.
    pub snapshot: Value,
}

/// Rolls the release back to its last successful revision.
///
/// **Errors**: no earlier successful revision, the cluster refusing the old objects, the
/// objects not becoming healthy (when waiting), or the record not being written.
pub async fn rollback(
    cluster: &plumb_kube::Cluster,
    id: &AppId,
    spec: &HelmReleaseSpec,
    records: &[Value],
) -> Result<RolledBack, String> {
    let mut releases: Vec<Release> = records
        .iter()
        .filter_map(|secret| Release::from_secret(secret).ok())
        .collect();
    releases.sort_by_key(|r| r.version);
    let current = releases.last().ok_or("the release has no records")?;
    let target = releases
        .iter()
        .rev()
        .filter(|r| r.version < current.version)
        .find(|r| matches!(r.status.as_str(), "deployed" | "superseded"))
        .ok_or_else(|| {
            format!(
                "release {}.v{} has no earlier successful revision to roll back to",
                spec.release_name, current.version
            )
        })?;
    let manifests: Vec<Manifest> = plumb_render::parse_documents("manifest.yaml", &target.manifest)
        .map_err(|e| format!("revision {}: {e}", target.version))?
        .into_iter()
        .filter(|(_, object)| object.is_object())
        .map(|(document, object)| Manifest {
            object,
            origin: Origin {
                file: format!("{}.v{} manifest", spec.release_name, target.version),
                document,
            },
        })
        .collect();
    let applied = apply::apply_all(
        cluster,
        manifests,
        &ApplySettings {
            force: true,
            default_namespace: Some(spec.target_namespace.clone()),
        },
    )
    .await?;
    let problems: Vec<String> = applied
        .errors
        .into_iter()
        .chain(applied.conflicts)
        .collect();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let stale = apply::stale(
        &entries_of(&current.objects()),
        &entries_of(&applied.objects),
    );
    apply::prune(cluster, &stale, &owner(id)).await?;
    if spec.rollback_wait && !applied.objects.is_empty() {
        apply::wait_healthy(cluster, &applied.objects, spec.rollback_timeout).await?;
    }
    let time = now();
    let version = current.version + 1;
    let release = Release {
        version,
        status: "deployed".into(),
        description: format!("Rollback to {}", target.version),
        last_deployed: time.clone(),
        ..target.clone()
    };
    let secret = release.to_secret(&spec.storage_namespace)?;
    cluster.create(&secret).await.map_err(|e| {
        format!(
            "cannot record the rollback: {}",
            crate::sources::error_chain(&e)
        )
    })?;
    // Everything before the rollback is history now.
    for old in releases
        .iter()
        .filter(|r| r.status == "deployed" || r.status == "failed")
    {
        supersede(cluster, &spec.storage_namespace, old.clone()).await;
    }
    let chart = format!(
        "{}@{}",
        str_at(&target.chart_metadata, &["name"]),
        str_at(&target.chart_metadata, &["version"])
    );
    let snapshot = json!({
        "name": spec.release_name,
        "namespace": spec.target_namespace,
        "version": version,
        "status": "deployed",
        "chartName": str_at(&target.chart_metadata, &["name"]),
        "chartVersion": str_at(&target.chart_metadata, &["version"]),
        "appVersion": str_at(&target.chart_metadata, &["appVersion"]),
        "configDigest": super::helm_release::digest_of(&target.config),
        "firstDeployed": target.first_deployed,
        "lastDeployed": time,
    });
    Ok(RolledBack {
        to: target.version,
        version,
        chart,
        snapshot,
    })
}
