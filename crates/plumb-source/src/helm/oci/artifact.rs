//! Any OCI artifact (Flux's `OCIRepository`): which manifest a reference names, which layer
//! of it is wanted, how its tar+gzip content is unpacked, and registry credentials from a
//! Docker config. The pure parts; [`HelmRepositories::oci_artifact`] does the pull.
//!
//! **Guarantees**: unpacking writes only regular files and directories below the target
//! (symbolic and hard links and special files are skipped, as Flux skips them; an absolute
//! path or a `..` component fails the whole archive), counts the bytes it actually writes
//! against [`ArtifactLimits::max_unpacked_bytes`] and the entries against
//! [`ArtifactLimits::max_files`].
//!
//! [`HelmRepositories::oci_artifact`]: crate::helm::HelmRepositories::oci_artifact

use super::super::HelmAuth;
use super::Descriptor;
use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Flux's artifact layer (`flux push artifact`).
pub const FLUX_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";

/// Which manifest of a repository to pull, in Flux's precedence (digest, semver, tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactReference {
    /// `ref.tag` (`latest` when nothing is given).
    Tag(String),
    /// `ref.semver`: the highest tag in the range, among the tags `filter` (a regular
    /// expression, `ref.semverFilter`) matches.
    Semver {
        /// A Masterminds range.
        range: String,
        /// Only tags this regular expression matches are candidates.
        filter: Option<String>,
    },
    /// `ref.digest`: `sha256:<64 hex>`.
    Digest(String),
}

/// What to do with the selected layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LayerOperation {
    /// Unpack it (Flux's default).
    #[default]
    Extract,
    /// Keep it as it is (the blob is kept as `layer.tar.gz` beside the unpacked content).
    Copy,
}

/// Which layer of the manifest (`layerSelector`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LayerSelector {
    /// The first layer of this media type; the first layer when `None`.
    pub media_type: Option<String>,
    /// Extract or copy.
    pub operation: LayerOperation,
}

/// Whether a digest reference already in the cache is served without asking the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachedDigest {
    /// Serve it from the cache: the caller's source pulled it with its own credentials (a
    /// Kustomization or HelmRelease reading its OCIRepository's artifact).
    Trust,
    /// Read the manifest from the registry first, so the registry checks this caller's
    /// credentials and that the digest still exists there (an OCIRepository pinned to a
    /// digest).
    Confirm,
}

/// Bounds of one artifact pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLimits {
    /// Largest layer (compressed) downloaded.
    pub max_layer_bytes: u64,
    /// Largest sum of unpacked file sizes.
    pub max_unpacked_bytes: u64,
    /// Most entries (files and directories) unpacked.
    pub max_files: usize,
}

impl Default for ArtifactLimits {
    /// 64 MiB per layer, 256 MiB and 20,000 entries unpacked.
    fn default() -> Self {
        ArtifactLimits {
            max_layer_bytes: 64 << 20,
            max_unpacked_bytes: 256 << 20,
            max_files: 20_000,
        }
    }
}

/// Which step of a pull failed; Flux names each with its own condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactStage {
    /// Choosing the tag (listing tags, the semver range, the filter): Flux's
    /// `ReadOperationFailed`.
    Resolve,
    /// Reading the manifest (unreachable registry, unknown tag, access denied, a digest that
    /// does not match): Flux's `OCIArtifactPullFailed`.
    Pull,
    /// Selecting, downloading and unpacking the layer: Flux's
    /// `OCIArtifactLayerOperationFailed`.
    Layer,
}

/// Why an artifact cannot be pulled, with the step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{}", match .stage {
    ArtifactStage::Resolve => "failed to determine the artifact tag",
    ArtifactStage::Pull => "failed to determine artifact digest",
    ArtifactStage::Layer => "failed to extract layer contents from artifact",
})]
pub struct ArtifactError {
    /// The step.
    pub stage: ArtifactStage,
    /// What went wrong.
    #[source]
    pub source: super::super::HelmError,
}

/// A pulled artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledArtifact {
    /// Flux's revision: `<tag>@sha256:<manifest digest>`, or `sha256:<digest>` for a digest
    /// reference.
    pub revision: String,
    /// The manifest digest (`sha256:<hex>`).
    pub digest: String,
    /// The selected layer's digest.
    pub layer_digest: String,
    /// The selected layer's media type.
    pub layer_media_type: String,
    /// The selected layer's size in bytes.
    pub layer_size: u64,
    /// The manifest's annotations (`org.opencontainers.image.*`).
    pub annotations: BTreeMap<String, String>,
    /// The unpacked content; read-only, shared by every user of this digest and selector.
    pub root: PathBuf,
    /// The layer as downloaded, with [`LayerOperation::Copy`].
    pub archive: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The layer a [`LayerSelector`] picks from a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedLayer {
    /// `sha256:<64 hex>`.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Declared size.
    pub size: u64,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// `ref.semverFilter` compiled: a regular expression of bounded size.
///
/// **Errors**: the pattern does not compile, or compiles too large.
pub fn semver_filter(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|err| err.to_string())
}

/// Whether `text` is `sha256:<64 lowercase hex>`.
pub fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The layer of `body` (a manifest) that `selector` picks, as Flux picks it: the first layer
/// of the media type, or the first layer when no media type is given.
///
/// **Errors**: invalid JSON, an index, a schema other than 2, no layers, no layer of the
/// media type, a digest that is not `sha256:<64 hex>`.
pub fn select_layer(body: &[u8], selector: &LayerSelector) -> Result<SelectedLayer, String> {
    let manifest: Manifest =
        serde_json::from_slice(body).map_err(|err| format!("invalid manifest: {err}"))?;
    if manifest.media_type.contains("image.index")
        || manifest.media_type.contains("list.v2")
        || manifest.manifests.is_some()
    {
        return Err(format!(
            "the manifest is an index ({}), not an artifact manifest",
            manifest.media_type
        ));
    }
    if manifest.schema_version != 2 {
        return Err(format!(
            "manifest schemaVersion {} (expected 2)",
            manifest.schema_version
        ));
    }
    if manifest.layers.is_empty() {
        return Err("no layers found in artifact".into());
    }
    let layer = match &selector.media_type {
        Some(wanted) => manifest
            .layers
            .into_iter()
            .find(|layer| layer.media_type == *wanted)
            .ok_or_else(|| {
                format!("failed to find layer with media type '{wanted}' in artifact")
            })?,
        None => manifest
            .layers
            .into_iter()
            .next()
            .ok_or_else(|| "no layers found in artifact".to_string())?,
    };
    if !is_sha256_digest(&layer.digest) {
        return Err(format!(
            "layer digest {:?} is not sha256:<64 lowercase hex>",
            layer.digest.chars().take(80).collect::<String>()
        ));
    }
    Ok(SelectedLayer {
        digest: layer.digest,
        media_type: layer.media_type,
        size: layer.size,
        annotations: manifest.annotations,
    })
}

/// Unpacks a tar+gzip `archive` into `into` (created): regular files and directories only,
/// within `limits`; links and special files are skipped. Returns how many files were written.
///
/// **Errors**: not a gzipped tar, an absolute path or a `..` component, more entries or bytes
/// than the limits allow, a write that fails.
pub fn unpack_tree(archive: &[u8], into: &Path, limits: &ArtifactLimits) -> Result<usize, String> {
    std::fs::create_dir_all(into).map_err(|e| format!("cannot create {}: {e}", into.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let (mut total, mut entries, mut files) = (0u64, 0usize, 0usize);
    let too_many = || {
        format!(
            "the layer unpacks to more than {} entries or {} bytes",
            limits.max_files, limits.max_unpacked_bytes
        )
    };
    for entry in tar
        .entries()
        .map_err(|e| format!("the layer is not a gzipped tar archive: {e}"))?
    {
        let mut entry =
            entry.map_err(|e| format!("cannot read the layer as a gzipped tar archive: {e}"))?;
        let raw = entry.path_bytes();
        let path = String::from_utf8_lossy(&raw).replace('\\', "/");
        if path.starts_with('/') {
            return Err(format!("archive entry {path:?} is an absolute path"));
        }
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") {
            return Err(format!("archive entry {path:?} leaves the artifact"));
        }
        entries += 1;
        if entries > limits.max_files {
            return Err(too_many());
        }
        let kind = entry.header().entry_type();
        if parts.is_empty() {
            continue;
        }
        let target = into.join(parts.join("/"));
        if kind.is_dir() {
            create_dir_inside(into, &target)?;
            continue;
        }
        if !kind.is_file() {
            // Symbolic and hard links, devices, fifos: skipped, as Flux skips links.
            continue;
        }
        if let Some(parent) = target.parent() {
            create_dir_inside(into, parent)?;
        }
        if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_file()) {
            return Err(format!("archive entry {path:?} replaces a directory"));
        }
        let left = limits.max_unpacked_bytes.saturating_sub(total);
        let mut content = Vec::new();
        (&mut entry)
            .take(left + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        total += content.len() as u64;
        if total > limits.max_unpacked_bytes {
            return Err(too_many());
        }
        std::fs::write(&target, content).map_err(|e| format!("cannot write {path}: {e}"))?;
        files += 1;
    }
    Ok(files)
}

/// Creates `dir`, which must lie inside `root` (no component of it may be a link: only
/// [`unpack_tree`] writes there, and it writes no links).
fn create_dir_inside(root: &Path, dir: &Path) -> Result<(), String> {
    if !dir.starts_with(root) {
        return Err(format!("{} leaves the artifact", dir.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Basic credentials for `registry` (`host` or `host:port`) from a Docker config: the
/// `.dockerconfigjson` form (`{"auths": {...}}`) or the older `.dockercfg` form (the map
/// itself). An entry matches by host, with or without scheme and path
/// (`https://ghcr.io/v1/` matches `ghcr.io`). `Ok(None)` when no entry matches.
///
/// **Errors**: the text is not a Docker config, or the matching entry has neither
/// `username`/`password` nor a decodable `auth`. Messages never hold credentials.
pub fn docker_config_auth(config: &str, registry: &str) -> Result<Option<HelmAuth>, String> {
    let value: serde_json::Value =
        serde_json::from_str(config).map_err(|_| "is not valid JSON".to_string())?;
    let auths = match value.get("auths") {
        Some(auths) => auths,
        None => &value,
    };
    let auths = auths
        .as_object()
        .ok_or_else(|| "has no \"auths\" map".to_string())?;
    let wanted = registry.to_ascii_lowercase();
    let host_of = |key: &str| {
        let key = key.trim().to_ascii_lowercase();
        let key = key
            .strip_prefix("https://")
            .or_else(|| key.strip_prefix("http://"))
            .unwrap_or(&key)
            .to_string();
        key.split('/').next().unwrap_or_default().to_string()
    };
    let Some((_, entry)) = auths.iter().find(|(key, _)| host_of(key) == wanted) else {
        return Ok(None);
    };
    let text = |field: &str| {
        entry
            .get(field)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let (Some(username), Some(password)) = (text("username"), text("password")) {
        return Ok(Some(HelmAuth { username, password }));
    }
    let decoded = text("auth")
        .and_then(|auth| base64::engine::general_purpose::STANDARD.decode(auth).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded.as_deref().and_then(|pair| pair.split_once(':')) {
        Some((username, password)) if !username.is_empty() => Ok(Some(HelmAuth {
            username: username.to_string(),
            password: password.to_string(),
        })),
        _ => Err(format!(
            "entry for {registry} has neither username and password nor a valid auth"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layers: &[(&str, &str)]) -> Vec<u8> {
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|(media_type, digest)| {
                serde_json::json!({"mediaType": media_type, "digest": digest, "size": 10})
            })
            .collect();
        serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "annotations": {"org.opencontainers.image.revision": "main@sha1:abc"},
            "layers": layers})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn layers_are_selected_as_flux_selects_them() {
        let (a, b) = (
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        );
        let body = manifest(&[("text/plain", &a), (FLUX_CONTENT_MEDIA_TYPE, &b)]);
        let first = select_layer(&body, &LayerSelector::default()).unwrap();
        assert_eq!(first.digest, a);
        assert_eq!(
            first.annotations["org.opencontainers.image.revision"],
            "main@sha1:abc"
        );
        let typed = LayerSelector {
            media_type: Some(FLUX_CONTENT_MEDIA_TYPE.into()),
            ..LayerSelector::default()
        };
        assert_eq!(select_layer(&body, &typed).unwrap().digest, b);
        let missing = LayerSelector {
            media_type: Some("application/x-nope".into()),
            ..LayerSelector::default()
        };
        assert!(
            select_layer(&body, &missing)
                .unwrap_err()
                .contains("failed to find layer with media type 'application/x-nope'")
        );
        assert!(
            select_layer(&manifest(&[]), &LayerSelector::default())
                .unwrap_err()
                .contains("no layers")
        );
        let bad = manifest(&[("text/plain", "sha256:../../x")]);
        assert!(
            select_layer(&bad, &LayerSelector::default())
                .unwrap_err()
                .contains("not sha256")
        );
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(
            select_layer(index, &LayerSelector::default())
                .unwrap_err()
                .contains("index")
        );
        assert!(select_layer(b"[]", &LayerSelector::default()).is_err());
        assert!(is_sha256_digest(&a) && !is_sha256_digest("sha256:AB") && !is_sha256_digest(""));
    }

    fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(*kind);
            if kind.is_symlink() || kind.is_hard_link() {
                header.set_size(0);
                let link = header.as_old_mut().linkname.as_mut();
                link[..data.len()].copy_from_slice(data);
            }
            // Raw names: `append_data` refuses `..`, and a hostile archive holds anything.
            let name = header.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            let body: &[u8] = if kind.is_symlink() || kind.is_hard_link() {
                &[]
            } else {
                data
            };
            builder.append(&header, body).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unpacking_writes_only_files_inside_and_within_limits() {
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let dir = tempfile::tempdir().unwrap();
        let limits = ArtifactLimits::default();
        let good = archive(&[
            ("./", Directory, b""),
            ("./deploy/", Directory, b""),
            ("./deploy/a.yaml", Regular, b"a: 1\n"),
            ("./deploy/link", Symlink, b"/etc/passwd"),
            ("./deploy/hard", Link, b"deploy/a.yaml"),
            ("README.md", Regular, b"hi"),
        ]);
        let written = unpack_tree(&good, &dir.path().join("ok"), &limits).unwrap();
        assert_eq!(written, 2);
        assert!(dir.path().join("ok/deploy/a.yaml").is_file());
        assert!(std::fs::symlink_metadata(dir.path().join("ok/deploy/link")).is_err());
        assert!(std::fs::symlink_metadata(dir.path().join("ok/deploy/hard")).is_err());

        let escape = archive(&[("deploy/../../evil", Regular, b"x")]);
        let error = unpack_tree(&escape, &dir.path().join("bad"), &limits).unwrap_err();
        assert!(error.contains("leaves the artifact"), "{error}");
        assert!(!dir.path().join("evil").exists());
        let absolute = archive(&[("/tmp/evil", Regular, b"x")]);
        let error = unpack_tree(&absolute, &dir.path().join("bad2"), &limits).unwrap_err();
        assert!(error.contains("absolute"), "{error}");

        let small = ArtifactLimits {
            max_unpacked_bytes: 4,
            ..ArtifactLimits::default()
        };
        let error = unpack_tree(&good, &dir.path().join("bad3"), &small).unwrap_err();
        assert!(error.contains("more than"), "{error}");
        let few = ArtifactLimits {
            max_files: 2,
            ..ArtifactLimits::default()
        };
        let error = unpack_tree(&good, &dir.path().join("bad4"), &few).unwrap_err();
        assert!(error.contains("more than 2 entries"), "{error}");
        let error = unpack_tree(b"not gzip", &dir.path().join("bad5"), &limits).unwrap_err();
        assert!(error.contains("gzipped tar"), "{error}");
    }

    #[test]
    fn docker_configs_give_credentials_for_the_registry_only() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config = serde_json::json!({"auths": {
            "https://ghcr.io/v1/": {"auth": b64("robot:s3cret")},
            "127.0.0.1:5000": {"username": "u", "password": "p"},
            "broken.example.com": {"auth": "!!"}}})
        .to_string();
        let ghcr = docker_config_auth(&config, "ghcr.io").unwrap().unwrap();
        assert_eq!(
            (ghcr.username.as_str(), ghcr.password.as_str()),
            ("robot", "s3cret")
        );
        let local = docker_config_auth(&config, "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        assert_eq!(local.username, "u");
        assert!(docker_config_auth(&config, "quay.io").unwrap().is_none());
        let error = docker_config_auth(&config, "broken.example.com").unwrap_err();
        assert!(!error.contains("!!"), "{error}");
        let legacy = serde_json::json!({"quay.io": {"auth": b64("a:b")}}).to_string();
        assert!(docker_config_auth(&legacy, "quay.io").unwrap().is_some());
        assert!(docker_config_auth("not json", "x").is_err());
        assert!(docker_config_auth("[1]", "x").is_err());
    }
}
