//! Helm charts stored in OCI registries (`helm push oci://…`), read through the OCI
//! distribution API.
//!
//! A chart `podinfo` in `oci://ghcr.io/stefanprodan/charts` is the registry repository
//! `stefanprodan/charts/podinfo` on `ghcr.io`; its versions are tags (Helm writes a `+` of build
//! metadata as `_`, since tags cannot hold `+`), and each tag's manifest carries the chart
//! archive as one layer of type [`CHART_LAYER_MEDIA_TYPE`].
//!
//! **Guarantees**: every request has the client's timeout; JSON answers (tag pages, manifests,
//! tokens) are capped at [`MAX_JSON_BYTES`], tag listing at [`MAX_TAG_PAGES`] pages, and the
//! chart layer at [`super::HelmLimits::max_chart_bytes`] (checked against the manifest's
//! declared size before downloading, and while reading); the layer's sha256 digest is checked
//! before unpacking; unpacked charts are cached by layer digest. Plain `http://` is used only
//! for loopback registries or when [`PlainHttp::Allowed`] says so (Argo CD's
//! `insecureOCIForceHttp`). Credentials go only to the registry and the token service its
//! challenge names, never over plain HTTP to a host that is not allowed plain HTTP.
//!
//! **Authentication** answers the registry's `WWW-Authenticate` challenge: `Basic` with the
//! credentials, or `Bearer` by asking the named token service (anonymously, or with the
//! credentials as basic auth) for a pull token, cached until shortly before it expires.
//!
//! Start at [`OciReference::parse`], then [`super::HelmRepositories::oci_chart`]. This module
//! holds the pure parts (references, tags, manifests); `registry` talks to the registry.

use super::{HelmAuth, HelmError};
use plumb_core::semver::Version;
use serde::Deserialize;
use std::fmt;

pub mod artifact;
mod pull;
mod registry;

pub(in crate::helm) use registry::Tokens;

/// The layer holding the chart archive.
pub const CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Helm's chart config; a manifest with another config is not a chart.
pub const CHART_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// Largest tag page, manifest or token answer read.
pub const MAX_JSON_BYTES: u64 = 4 << 20;
/// Most tag pages followed (1000 tags a page).
pub const MAX_TAG_PAGES: usize = 100;

/// A chart in an OCI registry: `oci://{registry}/{repository}/{chart}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciReference {
    /// `host` or `host:port`.
    pub registry: String,
    /// The path below the registry, without the chart; may be empty.
    pub repository: String,
    /// The chart name, the last path component.
    pub chart: String,
}

impl OciReference {
    /// Whether an Application's `repoURL` with a `chart` names an OCI registry: `oci://…`, or
    /// no scheme at all, which is how Argo CD writes OCI Helm repositories
    /// (`registry-1.docker.io/bitnamicharts`).
    pub fn is_oci(repo_url: &str) -> bool {
        let url = repo_url.trim();
        url.starts_with("oci://") || !url.contains("://")
    }

    /// The chart `chart` of the OCI repository `repo_url` (`oci://host[:port]/path` or
    /// `host[:port]/path`). With an empty `chart`, the last path component of `repo_url` is the
    /// chart (`oci://ghcr.io/stefanprodan/charts/podinfo`).
    ///
    /// **Errors**: [`HelmError::Reference`] for another scheme, userinfo, a tag or digest in the
    /// URL, or path components the distribution spec does not allow.
    pub fn parse(repo_url: &str, chart: &str) -> Result<OciReference, HelmError> {
        let invalid = |message: &str| HelmError::Reference {
            reference: repo_url.to_string(),
            message: message.to_string(),
        };
        let trimmed = repo_url.trim();
        let rest = match trimmed.strip_prefix("oci://") {
            Some(rest) => rest,
            None if trimmed.contains("://") => {
                return Err(invalid(
                    "an OCI chart repository is oci://host/path or host/path",
                ));
            }
            None => trimmed,
        };
        let rest = rest.trim_end_matches('/');
        let (registry, path) = rest.split_once('/').unwrap_or((rest, ""));
        if registry.is_empty() || !registry.bytes().all(is_host_byte) {
            return Err(invalid("expected a registry host[:port] after oci://"));
        }
        if path.contains('@') || path.contains(':') {
            return Err(invalid(
                "a tag or digest does not belong in repoURL; put the version in targetRevision",
            ));
        }
        let mut components: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect()
        };
        let chart = chart.trim();
        if chart.is_empty() {
            match components.pop() {
                Some(last) => {
                    let repository = components.join("/");
                    return OciReference::checked(registry, &repository, last, repo_url);
                }
                None => return Err(invalid("no chart: the path below the registry is empty")),
            }
        }
        OciReference::checked(registry, &components.join("/"), chart, repo_url)
    }

    fn checked(
        registry: &str,
        repository: &str,
        chart: &str,
        shown: &str,
    ) -> Result<OciReference, HelmError> {
        let bad = repository
            .split('/')
            .filter(|_| !repository.is_empty())
            .chain([chart])
            .find(|component| !is_path_component(component));
        if let Some(component) = bad {
            return Err(HelmError::Reference {
                reference: shown.to_string(),
                message: format!(
                    "{component:?} is not a valid repository name component (lowercase letters, digits and single separators . _ __ -)"
                ),
            });
        }
        Ok(OciReference {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_string(),
            chart: chart.to_string(),
        })
    }

    /// `oci://{registry}/{repository}`: the chart repository, as errors name it.
    pub fn repository_url(&self) -> String {
        if self.repository.is_empty() {
            format!("oci://{}", self.registry)
        } else {
            format!("oci://{}/{}", self.registry, self.repository)
        }
    }

    /// The registry repository name of the chart (`{repository}/{chart}`).
    pub fn name(&self) -> String {
        if self.repository.is_empty() {
            self.chart.clone()
        } else {
            format!("{}/{}", self.repository, self.chart)
        }
    }

    /// Whether the registry is on this machine (`localhost`, `127.0.0.0/8`, `::1`).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => self.registry.split(':').next().unwrap_or_default(),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.name())
    }
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the distribution spec's path component.
fn is_path_component(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &text[start..index];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn is_tag(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The chart version a tag stands for (Helm writes `+` as `_` in tags).
pub fn tag_version(tag: &str) -> String {
    tag.replace('_', "+")
}

/// The tag a chart version is stored under.
pub fn version_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// Whether `constraint` names one exact version (`1.2.3`, `v1.2.3-rc.1+b`) rather than a range:
/// such a version is fetched by its tag without listing tags, as Helm does.
fn exact_version(constraint: &str) -> Option<&str> {
    let text = constraint.trim();
    Version::parse(text).ok()?;
    let core = text.split(['-', '+']).next().unwrap_or_default();
    (core.matches('.').count() == 2).then_some(text)
}

/// When plain `http://` may be used for a registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// Only for loopback registries; every other registry is spoken to over `https://`.
    #[default]
    LoopbackOnly,
    /// Use `http://` (Argo CD's `insecureOCIForceHttp: "true"`, Helm's `--plain-http`).
    Allowed,
}

/// How to reach one OCI repository.
#[derive(Debug, Clone, Default)]
pub struct OciAccess {
    /// Basic credentials, sent when the registry or its token service challenges.
    pub auth: Option<HelmAuth>,
    /// When plain HTTP is used.
    pub plain_http: PlainHttp,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: u64,
}

/// The chart layer of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartLayer {
    /// `sha256:<64 hex>`.
    pub digest: String,
    /// Declared size in bytes.
    pub size: u64,
}

/// The chart layer of the manifest `body`, or why `body` is not a chart manifest.
///
/// **Errors**: invalid JSON, an image index, a schema other than 2, no or several chart
/// layers, a digest that is not `sha256:<64 hex>`.
pub fn chart_layer(body: &[u8]) -> Result<ChartLayer, String> {
    let manifest: Manifest =
        serde_json::from_slice(body).map_err(|err| format!("invalid manifest: {err}"))?;
    if manifest.media_type.contains("image.index") || manifest.media_type.contains("list.v2") {
        return Err(format!(
            "the manifest is an index ({}), not a chart manifest",
            manifest.media_type
        ));
    }
    if manifest.schema_version != 2 {
        return Err(format!(
            "manifest schemaVersion {} (expected 2)",
            manifest.schema_version
        ));
    }
    let mut charts = manifest
        .layers
        .into_iter()
        .filter(|layer| layer.media_type == CHART_LAYER_MEDIA_TYPE);
    let layer = match (charts.next(), charts.next()) {
        (Some(layer), None) => layer,
        (None, _) => {
            let config = manifest.config.map(|c| c.media_type).unwrap_or_default();
            let hint = if config == CHART_CONFIG_MEDIA_TYPE {
                String::new()
            } else {
                format!(
                    " (config media type {config:?}; a Helm chart has {CHART_CONFIG_MEDIA_TYPE:?})"
                )
            };
            return Err(format!(
                "the manifest has no layer of type {CHART_LAYER_MEDIA_TYPE}{hint}"
            ));
        }
        (Some(_), Some(_)) => {
            return Err(format!(
                "the manifest has more than one layer of type {CHART_LAYER_MEDIA_TYPE}"
            ));
        }
    };
    let hex = layer.digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "chart layer digest {:?} is not sha256:<64 lowercase hex>",
            layer.digest.chars().take(80).collect::<String>()
        ));
    }
    Ok(ChartLayer {
        digest: layer.digest,
        size: layer.size,
    })
}

/// Whether `reference` is reached over `http://`: only loopback registries, or when `access`
/// allows it explicitly.
pub fn uses_plain_http(reference: &OciReference, access: &OciAccess) -> bool {
    reference.is_loopback() || access.plain_http == PlainHttp::Allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_in_argo_cd_and_helm_forms() {
        let argo = OciReference::parse("registry-1.docker.io/bitnamicharts", "nginx").unwrap();
        assert_eq!(argo.registry, "registry-1.docker.io");
        assert_eq!(argo.name(), "bitnamicharts/nginx");
        assert_eq!(
            argo.to_string(),
            "oci://registry-1.docker.io/bitnamicharts/nginx"
        );
        let helm = OciReference::parse("oci://ghcr.io/stefanprodan/charts/", "podinfo").unwrap();
        assert_eq!(helm.repository_url(), "oci://ghcr.io/stefanprodan/charts");
        assert_eq!(helm.name(), "stefanprodan/charts/podinfo");
        let whole = OciReference::parse("oci://ghcr.io/stefanprodan/charts/podinfo", "").unwrap();
        assert_eq!(whole, helm);
        let bare = OciReference::parse("oci://localhost:5000", "podinfo").unwrap();
        assert_eq!(bare.name(), "podinfo");
        assert!(bare.is_loopback());
        assert!(
            OciReference::parse("127.0.0.1:5000/charts", "podinfo")
                .unwrap()
                .is_loopback()
        );
        assert!(
            OciReference::parse("oci://[::1]:5000/charts", "podinfo")
                .unwrap()
                .is_loopback()
        );
        assert!(!helm.is_loopback());
        assert!(
            !OciReference::parse("oci://localhost.evil.com/c", "x")
                .unwrap()
                .is_loopback()
        );
        assert!(OciReference::is_oci("registry-1.docker.io/bitnamicharts"));
        assert!(OciReference::is_oci("oci://ghcr.io/x"));
        assert!(!OciReference::is_oci("https://charts.example.com"));
    }

    #[test]
    fn plain_http_only_for_loopback_or_when_allowed() {
        let access = OciAccess::default();
        let allowed = OciAccess {
            plain_http: PlainHttp::Allowed,
            ..OciAccess::default()
        };
        for (url, loopback) in [
            ("localhost:5000/c", true),
            ("127.0.0.2/c", true),
            ("[::1]:5000/c", true),
            ("ghcr.io/c", false),
            ("10.0.0.1:5000/c", false),
            ("localhost.example.com/c", false),
            ("127.0.0.1.nip.io/c", false),
        ] {
            let reference = OciReference::parse(url, "chart").unwrap();
            assert_eq!(uses_plain_http(&reference, &access), loopback, "{url}");
            assert!(uses_plain_http(&reference, &allowed), "{url}");
        }
    }

    #[test]
    fn bad_references_are_refused_with_the_reason() {
        for (url, chart, expected) in [
            ("https://ghcr.io/charts", "podinfo", "oci://host/path"),
            ("oci://", "podinfo", "registry host"),
            ("oci://ghcr.io", "", "path below the registry is empty"),
            ("oci://user:pw@ghcr.io/charts", "podinfo", "registry host"),
            ("oci://ghcr.io/charts/podinfo:6.0.0", "", "targetRevision"),
            (
                "oci://ghcr.io/charts/podinfo@sha256:ab",
                "",
                "targetRevision",
            ),
            ("oci://ghcr.io/charts/../x", "podinfo", "\"..\""),
            ("oci://ghcr.io/Charts", "podinfo", "\"Charts\""),
            ("oci://ghcr.io/charts", "pod/../info", "not a valid"),
            ("oci://ghcr.io//charts", "podinfo", "\"\""),
        ] {
            let error = OciReference::parse(url, chart).unwrap_err().to_string();
            assert!(error.contains(expected), "{url} {chart}: {error}");
        }
    }

    #[test]
    fn tags_map_to_versions_as_helm_writes_them() {
        assert_eq!(tag_version("1.2.3_build.5"), "1.2.3+build.5");
        assert_eq!(version_tag("1.2.3+build.5"), "1.2.3_build.5");
        assert_eq!(exact_version(" 6.7.1 "), Some("6.7.1"));
        assert_eq!(exact_version("v1.2.3-rc.1+b"), Some("v1.2.3-rc.1+b"));
        for range in ["6", "6.7", "^6.0", ">=1.0.0", "*", "", "6.x", "1.2.3 - 1.4"] {
            assert_eq!(exact_version(range), None, "{range}");
        }
        let tags = [
            "6.5.0",
            "6.7.1",
            "latest",
            "7.0.0-rc.1",
            "6.7.1_build.2",
            "sha256-abc",
        ];
        let versions: Vec<crate::helm::ChartVersion> = tags
            .iter()
            .map(|t| crate::helm::ChartVersion {
                version: tag_version(t),
                ..Default::default()
            })
            .collect();
        let pick = |c: &str| {
            crate::helm::pick(&versions, c, "oci://r/c", "podinfo").map(|v| v.version.clone())
        };
        assert_eq!(pick("~6.5").unwrap(), "6.5.0");
        assert!(pick("^6.0").unwrap().starts_with("6.7.1"));
        assert_eq!(pick(">=7.0.0-0").unwrap(), "7.0.0-rc.1");
        let error = pick(">=8").unwrap_err().to_string();
        assert!(
            error.contains("chart \"podinfo\" in repository oci://r/c") && error.contains(">=8"),
            "{error}"
        );
        assert!(is_tag("6.7.1_build.2") && !is_tag("../x") && !is_tag("") && !is_tag("a/b"));
    }

    fn manifest(layers: &str, config: &str) -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"{config}","digest":"sha256:{z}","size":2}},"layers":[{layers}]}}"#,
            z = "0".repeat(64)
        )
        .into_bytes()
    }

    fn layer(media_type: &str, digest: &str) -> String {
        format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":10}}"#)
    }

    #[test]
    fn chart_manifests_yield_their_layer_and_others_say_why_not() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let good = manifest(
            &layer(CHART_LAYER_MEDIA_TYPE, &digest),
            CHART_CONFIG_MEDIA_TYPE,
        );
        assert_eq!(
            chart_layer(&good).unwrap(),
            ChartLayer {
                digest: digest.clone(),
                size: 10
            }
        );
        let image = manifest(
            &layer("application/vnd.oci.image.layer.v1.tar+gzip", &digest),
            "application/vnd.oci.image.config.v1+json",
        );
        let error = chart_layer(&image).unwrap_err();
        assert!(
            error.contains("no layer of type") && error.contains("image.config"),
            "{error}"
        );
        let two = manifest(
            &format!(
                "{},{}",
                layer(CHART_LAYER_MEDIA_TYPE, &digest),
                layer(CHART_LAYER_MEDIA_TYPE, &digest)
            ),
            CHART_CONFIG_MEDIA_TYPE,
        );
        assert!(chart_layer(&two).unwrap_err().contains("more than one"));
        for bad_digest in ["sha512:abc", "sha256:XYZ", "sha256:../../etc/passwd", ""] {
            let bad = manifest(
                &layer(CHART_LAYER_MEDIA_TYPE, bad_digest),
                CHART_CONFIG_MEDIA_TYPE,
            );
            assert!(
                chart_layer(&bad).unwrap_err().contains("not sha256"),
                "{bad_digest}"
            );
        }
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(chart_layer(index).unwrap_err().contains("index"));
        assert!(
            chart_layer(b"{\"schemaVersion\":1}")
                .unwrap_err()
                .contains("schemaVersion 1")
        );
        assert!(
            chart_layer(b"not json")
                .unwrap_err()
                .contains("invalid manifest")
        );
        assert!(chart_layer(b"[]").is_err());
    }
}
