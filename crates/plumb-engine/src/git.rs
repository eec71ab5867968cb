//! [`Sources`] over Git, through `plumb-source`.

use crate::sources::{Freshness, Resolved, SourceError, Sources};
use plumb_source::{Credentials, FetchPolicy, Repositories, Revision};
use std::path::{Path, PathBuf};

/// Git repositories cached under one directory; one fetch per repository serves every
/// application that uses it.
pub struct GitSources {
    repositories: Repositories,
}

impl GitSources {
    /// Opens (or creates) the cache in `cache_dir`.
    pub fn new(cache_dir: &Path) -> Result<GitSources, plumb_source::Error> {
        Ok(GitSources {
            repositories: Repositories::new(plumb_source::Options::new(cache_dir))?,
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

    fn snapshot(&self, url: &str, resolved: &Resolved) -> Result<PathBuf, SourceError> {
        Ok(self
            .repositories
            .snapshot(url, &revision_of(resolved))?
            .root)
    }
}
