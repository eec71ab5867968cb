//! Helm chart repositories over HTTP(S): the repository index, version resolution with Helm's
//! (Masterminds) constraints, and the chart archive, unpacked into a cache directory.
//!
//! **Guarantees**: the index and the archive are read with size caps ([`HelmLimits`]) and a
//! timeout; only the requested chart's entries of the index are kept while it is parsed (other
//! charts are skipped without being built); the archive's digest is checked when the index
//! gives one; unpacking refuses entries that leave the chart directory, links and oversized
//! content. A chart version once unpacked is served from the cache.
//!
//! Charts in OCI registries (`oci://…`) are in [`oci`]: [`HelmRepositories::oci_chart`]; any
//! OCI artifact (Flux's `OCIRepository`) is pulled by [`HelmRepositories::oci_artifact`].

pub mod oci;

use plumb_core::semver::{Constraint, Version};
use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use sha2::Digest;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Limits of a chart fetch.
#[derive(Debug, Clone)]
pub struct HelmLimits {
    /// Largest index.yaml read.
    pub max_index_bytes: u64,
    /// Largest chart archive read.
    pub max_chart_bytes: u64,
    /// Largest unpacked chart.
    pub max_unpacked_bytes: u64,
    /// Most files in a chart.
    pub max_files: usize,
    /// Time for one request.
    pub timeout: Duration,
}

impl Default for HelmLimits {
    fn default() -> Self {
        HelmLimits {
            max_index_bytes: 64 << 20,
            max_chart_bytes: 16 << 20,
            max_unpacked_bytes: 64 << 20,
            max_files: 10_000,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why a chart cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// A request failed.
    #[error("cannot fetch {url}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server answered with an error status.
    #[error("cannot fetch {url}: HTTP {status}")]
    Status {
        /// What was fetched.
        url: String,
        /// HTTP status.
        status: u16,
    },
    /// More bytes than allowed.
    #[error("{url}: larger than {limit} bytes")]
    TooLarge {
        /// What was fetched.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The index cannot be read.
    #[error("{url}: invalid repository index: {message}")]
    Index {
        /// The index URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The chart is not in the index.
    #[error("chart {chart:?} not found in repository {repo}")]
    NoChart {
        /// Repository URL.
        repo: String,
        /// Chart name.
        chart: String,
    },
    /// No version satisfies the constraint.
    #[error(
        "chart {chart:?} in repository {repo}: no version matches {constraint:?} (available: {available})"
    )]
    NoVersion {
        /// Repository URL.
        repo: String,
        /// Chart name.
        chart: String,
        /// The constraint.
        constraint: String,
        /// Some versions that exist.
        available: String,
    },
    /// The constraint cannot be parsed.
    #[error("targetRevision {constraint:?}: {message}")]
    Constraint {
        /// As written.
        constraint: String,
        /// What is wrong.
        message: String,
    },
    /// The archive's digest differs from the index's.
    #[error("{url}: digest {actual} does not match the index's {expected}")]
    Digest {
        /// Archive URL.
        url: String,
        /// From the index.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The archive cannot be unpacked safely.
    #[error("{url}: {message}")]
    Archive {
        /// Archive URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// An OCI chart reference cannot be used.
    #[error("repoURL {reference:?}: {message}")]
    Reference {
        /// As written.
        reference: String,
        /// What is wrong.
        message: String,
    },
    /// An OCI manifest is not a Helm chart's.
    #[error("{reference}: not a Helm chart: {reason}")]
    NotAChart {
        /// `oci://registry/repository/chart:tag`.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// An OCI chart layer's digest differs from its manifest's.
    #[error("{reference}: chart layer digest {actual} does not match the manifest's {expected}")]
    LayerDigest {
        /// `oci://registry/repository/chart:tag`.
        reference: String,
        /// From the manifest.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The registry refused access.
    #[error("chart {chart:?} in repository {repo}: access denied: {message}")]
    Auth {
        /// Repository URL.
        repo: String,
        /// Chart name.
        chart: String,
        /// What was refused.
        message: String,
    },
    /// The registry refused access to an OCI artifact.
    #[error("{reference}: access denied: {message}")]
    RegistryAuth {
        /// `oci://registry/repository`.
        reference: String,
        /// What was refused.
        message: String,
    },
    /// An OCI artifact cannot be used: no matching tag, no matching layer, a digest that
    /// does not match, an archive that cannot be unpacked safely.
    #[error("{reference}: {message}")]
    Artifact {
        /// `oci://registry/repository[:tag|@digest]`.
        reference: String,
        /// What is wrong.
        message: String,
    },
    /// The cache cannot be written.
    #[error("cannot write {path}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One version of a chart in the index.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChartVersion {
    /// The version.
    #[serde(default)]
    pub version: String,
    /// Archive URLs (relative to the repository or absolute).
    #[serde(default)]
    pub urls: Vec<String>,
    /// sha256 of the archive.
    #[serde(default)]
    pub digest: String,
}

/// The entries of one chart, read from an index without building the others.
struct OneChart<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for OneChart<'_> {
    type Value = Option<Vec<ChartVersion>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(IndexVisitor(self.0))
    }
}

struct IndexVisitor<'a>(&'a str);

impl<'de> Visitor<'de> for IndexVisitor<'_> {
    type Value = Option<Vec<ChartVersion>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Helm repository index")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "entries" {
                found = map.next_value_seed(EntriesSeed(self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

struct EntriesSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = Option<Vec<ChartVersion>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(EntriesVisitor(self.0))
    }
}

struct EntriesVisitor<'a>(&'a str);

impl<'de> Visitor<'de> for EntriesVisitor<'_> {
    type Value = Option<Vec<ChartVersion>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("index entries")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(name) = map.next_key::<String>()? {
            if name == self.0 {
                found = Some(map.next_value::<Vec<ChartVersion>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// The versions of `chart` in an index document.
///
/// **Errors**: the document is not a repository index.
pub fn chart_versions(index: &str, chart: &str) -> Result<Option<Vec<ChartVersion>>, String> {
    serde_saphyr::with_deserializer_from_str(index, |deserializer| {
        OneChart(chart).deserialize(deserializer)
    })
    .map_err(|e| e.to_string())
}

/// The highest version of `versions` matching `constraint` (Helm's syntax; empty or `*` for
/// the newest stable version).
///
/// **Errors**: an invalid constraint; no match.
pub fn pick<'a>(
    versions: &'a [ChartVersion],
    constraint: &str,
    repo: &str,
    chart: &str,
) -> Result<&'a ChartVersion, HelmError> {
    let text = if constraint.trim().is_empty() {
        "*"
    } else {
        constraint
    };
    let parsed = Constraint::parse(text).map_err(|e| HelmError::Constraint {
        constraint: constraint.to_string(),
        message: e.to_string(),
    })?;
    versions
        .iter()
        .filter_map(|v| Version::parse(&v.version).ok().map(|parsed| (parsed, v)))
        .filter(|(parsed_version, _)| parsed.matches(parsed_version))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, v)| v)
        .ok_or_else(|| HelmError::NoVersion {
            repo: repo.to_string(),
            chart: chart.to_string(),
            constraint: constraint.to_string(),
            available: versions
                .iter()
                .take(5)
                .map(|v| v.version.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Basic credentials for a repository.
#[derive(Clone, Default)]
pub struct HelmAuth {
    /// User name.
    pub username: String,
    /// Password (never logged).
    pub password: String,
}

impl fmt::Debug for HelmAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HelmAuth")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// A client for chart repositories with a cache of unpacked charts.
pub struct HelmRepositories {
    cache: PathBuf,
    limits: HelmLimits,
    client: reqwest::blocking::Client,
    tokens: oci::Tokens,
}

impl HelmRepositories {
    /// A client caching charts under `cache`.
    ///
    /// **Errors**: the HTTP client cannot be built.
    pub fn new(cache: &Path, limits: HelmLimits) -> Result<HelmRepositories, HelmError> {
        let client = reqwest::blocking::Client::builder()
            .timeout(limits.timeout)
            .connect_timeout(limits.timeout.min(Duration::from_secs(30)))
            .build()
            .map_err(|e| HelmError::Fetch {
                url: "(client)".into(),
                source: Box::new(e),
            })?;
        Ok(HelmRepositories {
            cache: cache.join("charts"),
            limits,
            client,
            tokens: oci::Tokens::default(),
        })
    }

    fn get(&self, url: &str, auth: Option<&HelmAuth>, limit: u64) -> Result<Vec<u8>, HelmError> {
        let mut request = self.client.get(url);
        if let Some(auth) = auth.filter(|a| !a.username.is_empty()) {
            request = request.basic_auth(&auth.username, Some(&auth.password));
        }
        let response = request.send().map_err(|e| HelmError::Fetch {
            url: url.to_string(),
            source: Box::new(e),
        })?;
        if !response.status().is_success() {
            return Err(HelmError::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let mut body = Vec::new();
        response
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| HelmError::Fetch {
                url: url.to_string(),
                source: Box::new(e),
            })?;
        if body.len() as u64 > limit {
            return Err(HelmError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        Ok(body)
    }

    /// Resolves `chart` at `constraint` in the repository at `repo` and returns the version
    /// and the directory holding the unpacked chart (`<dir>/<chart>/Chart.yaml`).
    ///
    /// **Errors**: see [`HelmError`].
    pub fn chart(
        &self,
        repo: &str,
        chart: &str,
        constraint: &str,
        auth: Option<&HelmAuth>,
    ) -> Result<(String, PathBuf), HelmError> {
        let base = repo.trim_end_matches('/');
        let index_url = format!("{base}/index.yaml");
        let index = self.get(&index_url, auth, self.limits.max_index_bytes)?;
        let text = String::from_utf8_lossy(&index);
        let versions = chart_versions(&text, chart)
            .map_err(|message| HelmError::Index {
                url: index_url.clone(),
                message,
            })?
            .ok_or_else(|| HelmError::NoChart {
                repo: repo.to_string(),
                chart: chart.to_string(),
            })?;
        let picked = pick(&versions, constraint, repo, chart)?;
        let dir = self.cache.join(hex(&sha2::Sha256::digest(
            format!("{base}\n{chart}\n{}", picked.version).as_bytes(),
        )));
        if dir.join(chart).join("Chart.yaml").is_file() {
            return Ok((picked.version.clone(), dir));
        }
        let url = picked.urls.first().ok_or_else(|| HelmError::Index {
            url: index_url.clone(),
            message: format!("{chart} {} has no urls", picked.version),
        })?;
        let url = if url.contains("://") {
            url.clone()
        } else {
            format!("{base}/{}", url.trim_start_matches('/'))
        };
        let archive = self.get(&url, auth, self.limits.max_chart_bytes)?;
        if !picked.digest.is_empty() {
            let actual = hex(&sha2::Sha256::digest(&archive));
            if !actual.eq_ignore_ascii_case(picked.digest.trim_start_matches("sha256:")) {
                return Err(HelmError::Digest {
                    url,
                    expected: picked.digest.clone(),
                    actual,
                });
            }
        }
        self.store(&archive, &dir, chart, &url)?;
        Ok((picked.version.clone(), dir))
    }

    /// Unpacks `archive` (fetched from `url`) and moves it into the cache as `dir/<chart>/`;
    /// concurrent stores of one chart leave one complete copy.
    fn store(&self, archive: &[u8], dir: &Path, chart: &str, url: &str) -> Result<(), HelmError> {
        // One staging directory per download: concurrent downloads must not share one.
        static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let staging = self.cache.join(format!(
            ".staging-{}-{}",
            std::process::id(),
            DOWNLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&staging);
        if let Err(message) = unpack(archive, &staging, chart, &self.limits) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(HelmError::Archive {
                url: url.to_string(),
                message,
            });
        }
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| HelmError::Io { path, source }
        };
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if std::fs::rename(&staging, dir).is_err() && !dir.join(chart).is_dir() {
            return Err(HelmError::Io {
                path: dir.display().to_string(),
                source: std::io::Error::other("cannot move the unpacked chart into the cache"),
            });
        }
        let _ = std::fs::remove_dir_all(&staging);
        Ok(())
    }
}

impl HelmRepositories {
    /// Fetches the repository's index and checks it parses: the sha256 digest of the index
    /// (Flux's artifact revision of a `HelmRepository`, `sha256:<hex>`) and its size.
    ///
    /// **Errors**: the index cannot be fetched, is too large, or is not a chart index.
    pub fn index_digest(
        &self,
        repo: &str,
        auth: Option<&HelmAuth>,
    ) -> Result<(String, u64), HelmError> {
        let index_url = format!("{}/index.yaml", repo.trim_end_matches('/'));
        let index = self.get(&index_url, auth, self.limits.max_index_bytes)?;
        let text = String::from_utf8_lossy(&index);
        // Parsing for a chart name no entry has checks the whole index's shape cheaply.
        chart_versions(&text, "\u{0}").map_err(|message| HelmError::Index {
            url: index_url.clone(),
            message,
        })?;
        Ok((
            format!("sha256:{}", hex(&sha2::Sha256::digest(&index))),
            index.len() as u64,
        ))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unpacks a chart archive into `into/<chart>/`: only regular files, each path inside the
/// chart's top directory, within the limits.
fn unpack(archive: &[u8], into: &Path, chart: &str, limits: &HelmLimits) -> Result<(), String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let (mut total, mut files) = (0u64, 0usize);
    for entry in tar
        .entries()
        .map_err(|e| format!("not a gzipped tar archive: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("cannot read the archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("invalid entry name: {e}"))?
            .to_string_lossy()
            .replace('\\', "/");
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") || path.starts_with('/') {
            return Err(format!("archive entry {path:?} leaves the chart"));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(format!("archive entry {path:?} is not a regular file"));
        }
        if parts.first() != Some(&chart) || parts.len() < 2 {
            return Err(format!(
                "archive entry {path:?} is outside the chart's directory {chart}/"
            ));
        }
        files += 1;
        total += entry.header().size().unwrap_or(0);
        if files > limits.max_files || total > limits.max_unpacked_bytes {
            return Err(format!(
                "the chart unpacks to more than {} files or {} bytes",
                limits.max_files, limits.max_unpacked_bytes
            ));
        }
        let target = into.join(parts.join("/"));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot write {path}: {e}"))?;
        }
        let mut content = Vec::new();
        (&mut entry)
            .take(limits.max_unpacked_bytes + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        std::fs::write(&target, content).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    if !into.join(chart).join("Chart.yaml").is_file() {
        return Err(format!("the archive has no {chart}/Chart.yaml"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "apiVersion: v1\nentries:\n  other:\n  - version: 9.9.9\n    urls: [other-9.9.9.tgz]\n  podinfo:\n  - version: 6.7.1\n    urls: [podinfo-6.7.1.tgz]\n    digest: abc\n  - version: 6.5.0\n    urls: [https://example.com/podinfo-6.5.0.tgz]\n  - version: 7.0.0-rc.1\n    urls: [podinfo-7.0.0-rc.1.tgz]\ngenerated: 2026-01-01T00:00:00Z\n";

    #[test]
    fn only_the_requested_chart_is_kept_and_versions_resolve_like_helm() {
        let versions = chart_versions(INDEX, "podinfo").unwrap().unwrap();
        assert_eq!(versions.len(), 3);
        assert_eq!(
            pick(&versions, "6.x", "r", "podinfo").unwrap().version,
            "6.7.1"
        );
        assert_eq!(
            pick(&versions, "~6.5", "r", "podinfo").unwrap().version,
            "6.5.0"
        );
        assert_eq!(
            pick(&versions, "", "r", "podinfo").unwrap().version,
            "6.7.1"
        );
        assert_eq!(
            pick(&versions, "6.5.0", "r", "podinfo").unwrap().version,
            "6.5.0"
        );
        assert!(matches!(
            pick(&versions, ">=8", "r", "podinfo"),
            Err(HelmError::NoVersion { .. })
        ));
        assert!(matches!(
            pick(&versions, "not a range!", "r", "podinfo"),
            Err(HelmError::Constraint { .. })
        ));
        assert!(chart_versions(INDEX, "missing").unwrap().is_none());
        assert!(chart_versions("- just a list", "podinfo").is_err());
    }

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // `append_data` refuses `..`; write the raw name to test what a hostile archive holds.
            let name = header.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unpacking_refuses_escapes_and_foreign_directories() {
        let dir = tempfile::tempdir().unwrap();
        let limits = HelmLimits::default();
        let good = archive(&[
            ("web/Chart.yaml", b"name: web\nversion: 1.0.0\n"),
            ("web/templates/a.yaml", b"a: 1\n"),
        ]);
        unpack(&good, &dir.path().join("ok"), "web", &limits).unwrap();
        assert!(dir.path().join("ok/web/templates/a.yaml").is_file());
        let escape = archive(&[("web/../../evil", b"x")]);
        let error = unpack(&escape, &dir.path().join("bad"), "web", &limits).unwrap_err();
        assert!(error.contains("leaves the chart"), "{error}");
        assert!(!dir.path().join("evil").exists());
        let foreign = archive(&[("other/Chart.yaml", b"name: other\n")]);
        let error = unpack(&foreign, &dir.path().join("bad2"), "web", &limits).unwrap_err();
        assert!(error.contains("outside the chart"), "{error}");
        let small = HelmLimits {
            max_unpacked_bytes: 4,
            ..HelmLimits::default()
        };
        let error = unpack(&good, &dir.path().join("bad3"), "web", &small).unwrap_err();
        assert!(error.contains("more than"), "{error}");
        assert!(unpack(b"not gzip", &dir.path().join("bad4"), "web", &limits).is_err());
    }
}
