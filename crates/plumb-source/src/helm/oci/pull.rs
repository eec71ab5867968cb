//! Pulling any OCI artifact: resolve the reference to a manifest, select a layer, download it
//! (size-capped, digest-checked) and unpack it into a cache keyed by the manifest digest and
//! the selector. The registry conversation is the chart pull's ([`super::registry`]).

use super::super::{HelmError, HelmRepositories, hex};
use super::artifact::{
    ArtifactError, ArtifactLimits, ArtifactReference, ArtifactStage, CachedDigest, LayerOperation,
    LayerSelector, PulledArtifact, is_sha256_digest, select_layer, semver_filter, unpack_tree,
};
use super::registry::{ANY_MANIFEST_ACCEPT, Session, Subject};
use super::{OciAccess, OciReference, is_tag};
use plumb_core::semver::{Constraint, highest_match};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What is kept beside the unpacked content, so a cached pull answers without the registry.
#[derive(Serialize, Deserialize)]
struct Stored {
    layer_digest: String,
    layer_media_type: String,
    layer_size: u64,
    annotations: BTreeMap<String, String>,
}

const STORED_FILE: &str = "artifact.json";
const CONTENT_DIR: &str = "content";
const LAYER_FILE: &str = "layer.tar.gz";

fn fail(stage: ArtifactStage) -> impl Fn(HelmError) -> ArtifactError {
    move |source| ArtifactError { stage, source }
}

fn artifact_error(stage: ArtifactStage, reference: String, message: String) -> ArtifactError {
    ArtifactError {
        stage,
        source: HelmError::Artifact { reference, message },
    }
}

impl HelmRepositories {
    fn artifacts_dir(&self) -> PathBuf {
        self.cache.with_file_name("oci-artifacts")
    }

    /// The cache directory of manifest `digest` of repository `reference` unpacked with
    /// `selector`. Keyed by repository too, so a digest pulled from one repository is never
    /// served to a reference naming another.
    fn artifact_dir(
        &self,
        reference: &OciReference,
        digest: &str,
        selector: &LayerSelector,
    ) -> PathBuf {
        let key = format!(
            "{}/{}\n{digest}\n{}\n{:?}",
            reference.registry,
            reference.name(),
            selector.media_type.as_deref().unwrap_or(""),
            selector.operation
        );
        self.artifacts_dir()
            .join(hex(&sha2::Sha256::digest(key.as_bytes())))
    }

    /// The cached pull of `digest` with `selector`, if there is one.
    fn cached_artifact(
        &self,
        reference: &OciReference,
        revision: &str,
        digest: &str,
        selector: &LayerSelector,
    ) -> Option<PulledArtifact> {
        let dir = self.artifact_dir(reference, digest, selector);
        let stored: Stored =
            serde_json::from_slice(&std::fs::read(dir.join(STORED_FILE)).ok()?).ok()?;
        let root = dir.join(CONTENT_DIR);
        if !root.is_dir() {
            return None;
        }
        let archive = match selector.operation {
            LayerOperation::Copy => Some(dir.join(LAYER_FILE)).filter(|p| p.is_file()),
            LayerOperation::Extract => None,
        };
        if selector.operation == LayerOperation::Copy && archive.is_none() {
            return None;
        }
        Some(PulledArtifact {
            revision: revision.to_string(),
            digest: digest.to_string(),
            layer_digest: stored.layer_digest,
            layer_media_type: stored.layer_media_type,
            layer_size: stored.layer_size,
            annotations: stored.annotations,
            root,
            archive,
        })
    }

    /// Pulls the artifact `wanted` of the repository `reference` (`oci://host/path`: the
    /// chart field of the reference is the last path component) and unpacks the layer
    /// `selector` picks. A manifest digest once unpacked with a selector is served from the
    /// cache; a [`ArtifactReference::Digest`] found there needs no request at all when
    /// `cached` is [`CachedDigest::Trust`].
    ///
    /// **Errors**: an [`ArtifactError`] naming the step (resolve the tag, read the manifest,
    /// the layer), with the registry's or the archive's problem as its source.
    pub fn oci_artifact(
        &self,
        reference: &OciReference,
        wanted: &ArtifactReference,
        selector: &LayerSelector,
        access: &OciAccess,
        limits: &ArtifactLimits,
        cached: CachedDigest,
    ) -> Result<PulledArtifact, ArtifactError> {
        let shown = reference.to_string();
        let session = Session::new(self, reference, access, Subject::Artifact);
        let (tag, manifest_reference) = match wanted {
            ArtifactReference::Digest(digest) => {
                if !is_sha256_digest(digest) {
                    return Err(artifact_error(
                        ArtifactStage::Resolve,
                        shown,
                        format!("digest {digest:?} is not sha256:<64 lowercase hex>"),
                    ));
                }
                if cached == CachedDigest::Trust
                    && let Some(found) = self.cached_artifact(reference, digest, digest, selector)
                {
                    return Ok(found);
                }
                (None, digest.clone())
            }
            ArtifactReference::Tag(tag) => {
                if !is_tag(tag) {
                    return Err(artifact_error(
                        ArtifactStage::Resolve,
                        shown,
                        format!("{tag:?} is not a valid tag"),
                    ));
                }
                (Some(tag.clone()), tag.clone())
            }
            ArtifactReference::Semver { range, filter } => {
                let tag = resolve_semver(&session, &shown, range, filter.as_deref())?;
                (Some(tag.clone()), tag)
            }
        };
        let pulled = match &tag {
            Some(tag) => format!("{shown}:{tag}"),
            None => format!("{shown}@{manifest_reference}"),
        };
        let body = session
            .manifest_body(&manifest_reference, ANY_MANIFEST_ACCEPT)
            .map_err(fail(ArtifactStage::Pull))?
            .ok_or_else(|| {
                artifact_error(
                    ArtifactStage::Pull,
                    pulled.clone(),
                    "manifest not found".into(),
                )
            })?;
        let digest = format!("sha256:{}", hex(&sha2::Sha256::digest(&body)));
        if let ArtifactReference::Digest(expected) = wanted
            && *expected != digest
        {
            return Err(artifact_error(
                ArtifactStage::Pull,
                pulled,
                format!("manifest digest {digest} does not match the requested one"),
            ));
        }
        let revision = match &tag {
            Some(tag) => format!("{tag}@{digest}"),
            None => digest.clone(),
        };
        if let Some(found) = self.cached_artifact(reference, &revision, &digest, selector) {
            return Ok(found);
        }
        let layer = select_layer(&body, selector)
            .map_err(|message| artifact_error(ArtifactStage::Layer, pulled.clone(), message))?;
        let (blob, actual) = session
            .blob_bytes(
                &layer.digest,
                layer.size,
                limits.max_layer_bytes,
                &format!("{pulled} layer {}", layer.digest),
            )
            .map_err(fail(ArtifactStage::Layer))?;
        if actual != layer.digest {
            return Err(artifact_error(
                ArtifactStage::Layer,
                pulled,
                format!(
                    "layer digest {actual} does not match the manifest's {}",
                    layer.digest
                ),
            ));
        }
        let dir = self.artifact_dir(reference, &digest, selector);
        let stored = Stored {
            layer_digest: layer.digest.clone(),
            layer_media_type: layer.media_type.clone(),
            layer_size: blob.len() as u64,
            annotations: layer.annotations.clone(),
        };
        self.store_artifact(&blob, &dir, &stored, selector, limits)
            .map_err(|message| artifact_error(ArtifactStage::Layer, pulled.clone(), message))?;
        self.cached_artifact(reference, &revision, &digest, selector)
            .ok_or_else(|| {
                artifact_error(
                    ArtifactStage::Layer,
                    pulled,
                    "the unpacked artifact is not in the cache".into(),
                )
            })
    }

    /// Unpacks `blob` into a staging directory and moves it to `dir`; concurrent stores of one
    /// artifact leave one complete copy.
    fn store_artifact(
        &self,
        blob: &[u8],
        dir: &Path,
        stored: &Stored,
        selector: &LayerSelector,
        limits: &ArtifactLimits,
    ) -> Result<(), String> {
        static PULLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let parent = self.artifacts_dir();
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let staging = parent.join(format!(
            ".staging-{}-{}",
            std::process::id(),
            PULLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&staging);
        let result = (|| {
            unpack_tree(blob, &staging.join(CONTENT_DIR), limits)?;
            if selector.operation == LayerOperation::Copy {
                std::fs::write(staging.join(LAYER_FILE), blob)
                    .map_err(|e| format!("cannot keep the layer: {e}"))?;
            }
            let json = serde_json::to_vec(stored).map_err(|e| e.to_string())?;
            std::fs::write(staging.join(STORED_FILE), json)
                .map_err(|e| format!("cannot write the artifact record: {e}"))
        })();
        if let Err(message) = result {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(message);
        }
        if std::fs::rename(&staging, dir).is_err() && !dir.join(STORED_FILE).is_file() {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(format!(
                "cannot move the unpacked artifact into the cache at {}",
                dir.display()
            ));
        }
        let _ = std::fs::remove_dir_all(&staging);
        Ok(())
    }
}

/// The highest tag of the repository in `range`, among those `filter` matches.
fn resolve_semver(
    session: &Session<'_>,
    shown: &str,
    range: &str,
    filter: Option<&str>,
) -> Result<String, ArtifactError> {
    let resolve_error =
        |message: String| artifact_error(ArtifactStage::Resolve, shown.into(), message);
    let constraint = Constraint::parse(range)
        .map_err(|err| resolve_error(format!("semver '{range}' parse error: {err}")))?;
    let filter = filter
        .map(|pattern| {
            semver_filter(pattern)
                .map_err(|err| resolve_error(format!("semverFilter {pattern:?}: {err}")))
        })
        .transpose()?;
    let tags = session
        .tags()
        .map_err(fail(ArtifactStage::Resolve))?
        .ok_or_else(|| resolve_error("repository not found".into()))?;
    let candidates = tags
        .iter()
        .map(String::as_str)
        .filter(|tag| is_tag(tag))
        .filter(|tag| filter.as_ref().is_none_or(|f| f.is_match(tag)));
    highest_match(&constraint, candidates)
        .map(|(tag, _)| tag.to_string())
        .ok_or_else(|| {
            let mut some: Vec<&str> = tags.iter().map(String::as_str).take(10).collect();
            if tags.len() > some.len() {
                some.push("…");
            }
            resolve_error(format!(
                "no match found for semver: {range} (tags: {})",
                if some.is_empty() {
                    "none".to_string()
                } else {
                    some.join(", ")
                }
            ))
        })
}
