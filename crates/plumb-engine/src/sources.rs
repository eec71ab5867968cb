//! Where the engine gets files from, and the render cache.
//!
//! The engine depends on the [`Sources`] trait rather than on Git directly, so tests and
//! benchmarks can count fetches; [`GitSources`] is the real implementation over
//! `plumb-source`. Renders are cached by (revision, source spec): a thousand applications
//! rendering the same path of the same commit render it once.

use plumb_core::application::Source;
use plumb_core::manifest::Manifest;
use plumb_render::{Limits, RenderContext, SourceType};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A boxed error from a source, shown to users as is.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// How fresh a resolution must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A fetch younger than this is good enough (polling).
    Within(std::time::Duration),
    /// Fetch now (refresh annotation, webhook).
    Now,
}

/// A resolved commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Full commit SHA.
    pub revision: String,
    /// First line of the commit message, for history and `app get`.
    pub message: String,
    /// Author, as `Name <email>`.
    pub author: String,
}

/// Source access used by the engine. Implementations are blocking; the engine calls them on
/// the blocking thread pool.
pub trait Sources: Send + Sync + 'static {
    /// Resolves `target_revision` of `url` to a commit.
    fn resolve(
        &self,
        url: &str,
        target_revision: &str,
        credentials: &plumb_source::Credentials,
        freshness: Freshness,
    ) -> Result<Resolved, SourceError>;
    /// A directory holding the commit's files; immutable once returned.
    fn snapshot(&self, url: &str, resolved: &Resolved) -> Result<PathBuf, SourceError>;
    /// The tag names of `url` (without `refs/tags/`), after fetching as `freshness` allows;
    /// used to pick a tag by version range. Sources that cannot list tags say so.
    fn tags(
        &self,
        url: &str,
        credentials: &plumb_source::Credentials,
        freshness: Freshness,
    ) -> Result<Vec<String>, SourceError> {
        let _ = (url, credentials, freshness);
        Err("this source cannot list tags".into())
    }
    /// Resolves Helm chart `chart` of the chart repository at `url` (`http(s)://`, or an OCI
    /// registry: `oci://…` or a URL without scheme) to the highest version matching
    /// `constraint` (Helm's syntax) and returns (version, a directory holding the unpacked
    /// chart as `<dir>/<chart>/`). Sources without chart repositories say so.
    fn chart(
        &self,
        url: &str,
        chart: &str,
        constraint: &str,
        credentials: &plumb_source::Credentials,
        freshness: Freshness,
    ) -> Result<(String, PathBuf), SourceError> {
        let _ = (url, chart, constraint, credentials, freshness);
        Err("this source cannot fetch Helm charts".into())
    }
    /// Resolves the Helm chart `reference` in an OCI registry to the highest version matching
    /// `constraint` and returns (version, a directory holding the unpacked chart as
    /// `<dir>/<chart>/`). Sources without OCI registries say so.
    fn oci_chart(
        &self,
        reference: &plumb_source::helm::oci::OciReference,
        constraint: &str,
        access: &plumb_source::helm::oci::OciAccess,
        freshness: Freshness,
    ) -> Result<(String, PathBuf), SourceError> {
        let _ = (reference, constraint, access, freshness);
        Err("this source cannot fetch Helm charts from OCI registries".into())
    }
    /// Pulls the OCI artifact `wanted` of the repository `reference` and unpacks the layer
    /// `selector` picks (Flux's `OCIRepository`); `cached` says whether a digest already
    /// pulled may be served without asking the registry. Sources without OCI registries say
    /// so.
    fn oci_artifact(
        &self,
        reference: &plumb_source::helm::oci::OciReference,
        wanted: &plumb_source::helm::oci::artifact::ArtifactReference,
        selector: &plumb_source::helm::oci::artifact::LayerSelector,
        access: &plumb_source::helm::oci::OciAccess,
        cached: plumb_source::helm::oci::artifact::CachedDigest,
    ) -> Result<plumb_source::helm::oci::artifact::PulledArtifact, SourceError> {
        let _ = (reference, wanted, selector, access, cached);
        Err("this source cannot pull OCI artifacts".into())
    }
    /// Fetches the index of the chart repository at `url`: its digest (`sha256:<hex>`) and
    /// size. Sources without chart repositories say so.
    fn chart_index(
        &self,
        url: &str,
        credentials: &plumb_source::Credentials,
    ) -> Result<(String, u64), SourceError> {
        let _ = (url, credentials);
        Err("this source cannot fetch Helm repository indexes".into())
    }
}

/// Rendered manifests of one source at one revision.
pub type Rendered = Arc<(SourceType, Vec<Manifest>)>;

/// Caches renders by (revision, source). Bounded: cleared when it grows past its capacity.
#[derive(Default)]
pub struct RenderCache {
    entries: Mutex<HashMap<(String, String), Result<Rendered, String>>>,
}

const RENDER_CACHE_CAPACITY: usize = 4096;

impl RenderCache {
    /// Renders `source` from `root` at `revision`, or returns the cached result.
    pub fn render(
        &self,
        revision: &str,
        root: &std::path::Path,
        source: &Source,
        context: &RenderContext,
        limits: &Limits,
    ) -> Result<Rendered, String> {
        self.render_with_refs(revision, root, source, context, limits, None)
    }

    /// [`RenderCache::render`] for one source of a multi-source application, whose Helm value
    /// files may name other sources' checkouts (`refs`). The checkouts are part of the key:
    /// each is a snapshot of one revision.
    pub fn render_with_refs(
        &self,
        revision: &str,
        root: &std::path::Path,
        source: &Source,
        context: &RenderContext,
        limits: &Limits,
        refs: Option<&plumb_render::ValueRefs>,
    ) -> Result<Rendered, String> {
        let key = (
            revision.to_string(),
            format!(
                "{}|{context:?}|{refs:?}",
                serde_json::to_string(source).unwrap_or_default()
            ),
        );
        if let Some(hit) = self.entries.lock().ok().and_then(|e| e.get(&key).cloned()) {
            return hit;
        }
        let result = plumb_render::render_with_refs(root, source, context, limits, refs)
            .map(Arc::new)
            .map_err(|e| error_chain(&e));
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= RENDER_CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(key, result.clone());
        }
        result
    }
}

/// An error with its causes, `: `-joined, the way conditions show them.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
