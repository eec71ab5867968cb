//! [`Sources`] over Git, through `plumb-source`.

use crate::sources::{Freshness, Resolved, SourceError, Sources};
use plumb_source::{Credentials, FetchPolicy, Repositories, Revision};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Git repositories cached under one directory; one fetch per repository serves every
/// application that uses it.
pub struct GitSources {
    repositories: Repositories,
    /// The chart repository client, made on first use.
    charts: Mutex<Option<Arc<plumb_source::helm::HelmRepositories>>>,
    cache_dir: PathBuf,
    /// (repo, chart, constraint) → when resolved, version, directory.
    resolved_charts: ChartCache,
}

type ChartCache = Mutex<HashMap<(String, String, String), (Instant, String, PathBuf)>>;

impl GitSources {
    /// Opens (or creates) the cache in `cache_dir`.
    pub fn new(cache_dir: &Path) -> Result<GitSources, plumb_source::Error> {
        Ok(GitSources {
            repositories: Repositories::new(plumb_source::Options::new(cache_dir))?,
            charts: Mutex::default(),
            cache_dir: cache_dir.to_path_buf(),
            resolved_charts: Mutex::default(),
        })
    }

    /// Fetch and snapshot counters.
    pub fn stats(&self) -> plumb_source::Stats {
        self.repositories.stats()
    }
}

fn revision_of(resolved: &Resolved) -> Revision {
    Revision {
        sha: resolved.revision.clone(),
        reference: None,
        message: resolved.message.clone(),
        author_name: resolved.author.clone(),
        author_email: String::new(),
        author_time: 0,
    }
}

/// Basic credentials for a chart repository (the only kind chart repositories take).
fn helm_auth(credentials: &Credentials) -> Option<plumb_source::helm::HelmAuth> {
    match credentials {
        Credentials::Basic { username, password } => Some(plumb_source::helm::HelmAuth {
            username: username.clone(),
            password: password.clone(),
        }),
        _ => None,
    }
}

impl GitSources {
    /// The chart repository client, made on first use.
    fn chart_client(&self) -> Result<Arc<plumb_source::helm::HelmRepositories>, SourceError> {
        let mut charts = self
            .charts
            .lock()
            .map_err(|_| "chart client lock poisoned")?;
        if let Some(client) = charts.as_ref() {
            return Ok(client.clone());
        }
        let client = Arc::new(plumb_source::helm::HelmRepositories::new(
            &self.cache_dir,
            Default::default(),
        )?);
        *charts = Some(client.clone());
        Ok(client)
    }
}

impl Sources for GitSources {
    fn resolve(
        &self,
        url: &str,
        target_revision: &str,
        credentials: &Credentials,
        freshness: Freshness,
    ) -> Result<Resolved, SourceError> {
        let policy = match freshness {
            Freshness::Now => FetchPolicy::Always,
            Freshness::Within(age) => FetchPolicy::IfOlderThan(age),
        };
        let revision = self
            .repositories
            .resolve(url, target_revision, credentials, policy)?;
        Ok(Resolved {
            revision: revision.sha.clone(),
            message: revision.summary().to_string(),
            author: format!("{} <{}>", revision.author_name, revision.author_email),
        })
    }

    fn tags(
        &self,
        url: &str,
        credentials: &Credentials,
        freshness: Freshness,
    ) -> Result<Vec<String>, SourceError> {
        let policy = match freshness {
            Freshness::Now => FetchPolicy::Always,
            Freshness::Within(age) => FetchPolicy::IfOlderThan(age),
        };
        Ok(self.repositories.tags(url, credentials, policy)?)
    }

    fn chart(
        &self,
        url: &str,
        chart: &str,
        constraint: &str,
        credentials: &Credentials,
        freshness: Freshness,
    ) -> Result<(String, PathBuf), SourceError> {
        let key = (url.to_string(), chart.to_string(), constraint.to_string());
        if let Freshness::Within(age) = freshness
            && let Some((at, version, dir)) = self
                .resolved_charts
                .lock()
                .ok()
                .and_then(|c| c.get(&key).cloned())
            && at.elapsed() < age
        {
            return Ok((version, dir));
        }
        let client = self.chart_client()?;
        let (version, dir) = if plumb_source::helm::oci::OciReference::is_oci(url) {
            // A registry URL given where a chart repository is expected: pulled the same way
            // as an Application's OCI chart, with these credentials and https (or loopback).
            let reference = plumb_source::helm::oci::OciReference::parse(url, chart)?;
            let access = plumb_source::helm::oci::OciAccess {
                auth: helm_auth(credentials),
                ..Default::default()
            };
            client.oci_chart(&reference, constraint, &access)?
        } else {
            client.chart(url, chart, constraint, helm_auth(credentials).as_ref())?
        };
        if let Ok(mut cache) = self.resolved_charts.lock() {
            cache.insert(key, (Instant::now(), version.clone(), dir.clone()));
        }
        Ok((version, dir))
    }

    fn oci_chart(
        &self,
        reference: &plumb_source::helm::oci::OciReference,
        constraint: &str,
        access: &plumb_source::helm::oci::OciAccess,
        freshness: Freshness,
    ) -> Result<(String, PathBuf), SourceError> {
        let key = (reference.to_string(), String::new(), constraint.to_string());
        if let Freshness::Within(age) = freshness
            && let Some((at, version, dir)) = self
                .resolved_charts
                .lock()
                .ok()
                .and_then(|c| c.get(&key).cloned())
            && at.elapsed() < age
        {
            return Ok((version, dir));
        }
        let (version, dir) = self
            .chart_client()?
            .oci_chart(reference, constraint, access)?;
        if let Ok(mut cache) = self.resolved_charts.lock() {
            cache.insert(key, (Instant::now(), version.clone(), dir.clone()));
        }
        Ok((version, dir))
    }

    fn oci_artifact(
        &self,
        reference: &plumb_source::helm::oci::OciReference,
        wanted: &plumb_source::helm::oci::artifact::ArtifactReference,
        selector: &plumb_source::helm::oci::artifact::LayerSelector,
        access: &plumb_source::helm::oci::OciAccess,
        cached: plumb_source::helm::oci::artifact::CachedDigest,
    ) -> Result<plumb_source::helm::oci::artifact::PulledArtifact, SourceError> {
        Ok(self.chart_client()?.oci_artifact(
            reference,
            wanted,
            selector,
            access,
            &Default::default(),
            cached,
        )?)
    }

    fn chart_index(
        &self,
        url: &str,
        credentials: &Credentials,
    ) -> Result<(String, u64), SourceError> {
        Ok(self
            .chart_client()?
            .index_digest(url, helm_auth(credentials).as_ref())?)
    }

    fn snapshot(&self, url: &str, resolved: &Resolved) -> Result<PathBuf, SourceError> {
        Ok(self
            .repositories
            .snapshot(url, &revision_of(resolved))?
            .root)
    }
}
