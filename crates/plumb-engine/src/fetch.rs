//! Fetching one source: a Git commit, a chart from a Helm repository or an OCI registry,
//! brought to an immutable snapshot directory. Single-source applications fetch one; each entry
//! of `spec.sources` is fetched the same way.

use crate::Context;
use crate::sources::{Freshness, Resolved, error_chain};
use plumb_core::application::Source;
use std::path::PathBuf;
use std::sync::Arc;

/// A source at a resolved revision.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// The commit, or the chart version (as Argo CD reports it).
    pub revision: Resolved,
    /// The snapshot: the repository checkout, or the directory holding the unpacked chart.
    pub root: PathBuf,
    /// The source to render from `root`: for a chart, `path` points at the unpacked chart.
    pub source: Source,
}

/// Why a fetch failed.
#[derive(Debug, Clone)]
pub(crate) enum FetchError {
    /// A field of the source is unusable; the message starts with the field, relative to the
    /// source (`repoURL: …`).
    Field(String),
    /// The repository, registry or chart could not be read; the message is the cause chain.
    Source(String),
}

impl FetchError {
    /// The message a condition shows, fields named under `prefix` (`spec.source`).
    pub(crate) fn shown(&self, prefix: &str) -> String {
        match self {
            FetchError::Field(message) => format!("{prefix}.{message}"),
            FetchError::Source(message) => message.clone(),
        }
    }
}

/// Resolves `source` at `target` (branch, tag, commit, chart version range) and brings its
/// files to a snapshot, fetching no more often than `freshness` asks.
///
/// **Errors**: an unusable OCI reference ([`FetchError::Field`]); a repository, registry or
/// chart that cannot be read or has no match for `target` ([`FetchError::Source`]).
pub(crate) async fn fetch(
    context: &Arc<Context>,
    source: &Source,
    target: &str,
    freshness: Freshness,
) -> Result<Fetched, FetchError> {
    let sources = context.sources.clone();
    let (url, target_owned) = (source.repo_url.clone(), target.to_string());
    let source_clone = source.clone();
    let credentials = crate::credentials::for_url(context, &source.repo_url).await;
    let oci_chart = match crate::reconcile::oci_chart_of(source) {
        Some(Ok(reference)) => {
            let access = crate::credentials::for_oci(context, &source.repo_url).await;
            Some((reference, access))
        }
        Some(Err(error)) => return Err(FetchError::Field(error.to_string())),
        None => None,
    };
    tokio::task::spawn_blocking(move || -> Result<Fetched, String> {
        let mut source_clone = source_clone;
        let (revision, root) = if let Some((reference, access)) = &oci_chart {
            // A chart from an OCI registry: as for a chart repository, the revision is the
            // chart version and the chart renders from its unpacked directory.
            let (version, root) = sources
                .oci_chart(reference, &target_owned, access, freshness)
                .map_err(|e| error_chain(e.as_ref()))?;
            let path = source_clone.path.trim_matches('/');
            source_clone.path = if source_clone.chart.is_empty() && !matches!(path, "" | ".") {
                format!("{}/{path}", reference.chart)
            } else {
                reference.chart.clone()
            };
            let revision = Resolved {
                revision: version,
                message: String::new(),
                author: String::new(),
            };
            (revision, root)
        } else if source_clone.chart.is_empty() {
            let revision = sources
                .resolve(&url, &target_owned, &credentials, freshness)
                .map_err(|e| error_chain(e.as_ref()))?;
            let root = sources
                .snapshot(&url, &revision)
                .map_err(|e| error_chain(e.as_ref()))?;
            (revision, root)
        } else {
            // A chart from a Helm repository: the revision is the chart version, as Argo CD
            // reports it, and the chart is rendered from its unpacked directory.
            let (version, root) = sources
                .chart(
                    &url,
                    &source_clone.chart,
                    &target_owned,
                    &credentials,
                    freshness,
                )
                .map_err(|e| error_chain(e.as_ref()))?;
            let revision = Resolved {
                revision: version,
                message: String::new(),
                author: String::new(),
            };
            (revision, root)
        };
        if oci_chart.is_none() && !source_clone.chart.is_empty() {
            source_clone.path = source_clone.chart.clone();
        }
        Ok(Fetched {
            revision,
            root,
            source: source_clone,
        })
    })
    .await
    .map_err(|e| FetchError::Source(format!("fetch task failed: {e}")))?
    .map_err(FetchError::Source)
}
