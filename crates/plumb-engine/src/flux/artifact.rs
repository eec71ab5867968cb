//! The artifact of a GitRepository or OCIRepository: its commit's (or layer's) files with Flux's
//! exclusions applied (the defaults, the tree's `.sourceignore` files and `spec.ignore`), as
//! source-controller would archive them. plumb keeps no archives: the artifact is written once per (commit, rules),
//! hard-linked from the immutable snapshot, next to the snapshots in the cache, and
//! Kustomizations build from it.

use plumb_render::{Limits, sourceignore};
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped when what goes into an artifact changes, so old directories are not reused.
const LAYOUT: &str = "plumb-artifact-v1";

/// The artifact directory of the immutable tree at `snapshot` (a Git snapshot or an unpacked
/// OCI layer) with `ignore` (`spec.ignore`) rules (blocking; written on first use).
///
/// **Errors**: the snapshot cannot be read, a `.sourceignore` is unreadable or too large, or
/// the artifact cannot be written; as one line naming the path.
pub(crate) fn artifact_of(
    snapshot: &Path,
    ignore: Option<&str>,
    limits: &Limits,
) -> Result<PathBuf, String> {
    let mut hasher = sha2::Sha256::new();
    for part in [
        LAYOUT,
        &snapshot.to_string_lossy(),
        ignore.unwrap_or("\0none"),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let key: String = hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let base = snapshot
        .parent()
        .and_then(Path::parent)
        .unwrap_or(snapshot)
        .join("artifacts");
    store(&base, &key, |staging| {
        let matcher = sourceignore::load(snapshot, ignore, limits).map_err(|e| e.to_string())?;
        sourceignore::materialize(snapshot, staging, &matcher, limits).map_err(|e| e.to_string())
    })
}

/// One `spec.include` of a GitRepository, resolved: the included repository's artifact and
/// where its files go.
pub(crate) struct Included {
    /// The included GitRepository's artifact directory.
    pub artifact: PathBuf,
    /// The subtree of it that is copied (`""`: all).
    pub from_path: String,
    /// Where in the including artifact it goes.
    pub to_path: String,
}

/// The artifact of a GitRepository with `spec.include`: its own artifact `main` with each
/// included artifact's `from_path` copied to `to_path`, later includes over earlier ones
/// (blocking; written once per combination).
///
/// **Errors**: a `fromPath` that is not a directory of the included artifact, or the tree
/// cannot be written.
pub(crate) fn composed_artifact(
    main: &Path,
    includes: &[Included],
    limits: &Limits,
) -> Result<PathBuf, String> {
    if includes.is_empty() {
        return Ok(main.to_path_buf());
    }
    let mut hasher = sha2::Sha256::new();
    hasher.update(LAYOUT.as_bytes());
    hasher.update(main.to_string_lossy().as_bytes());
    for include in includes {
        for part in [
            include.artifact.to_string_lossy().as_ref(),
            &include.from_path,
            &include.to_path,
        ] {
            hasher.update([0]);
            hasher.update(part.as_bytes());
        }
    }
    let key: String = hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let base = main.parent().unwrap_or(main).to_path_buf();
    let everything = sourceignore::Matcher::default();
    store(&base, &format!("with-includes-{key}"), |staging| {
        sourceignore::materialize(main, staging, &everything, limits).map_err(|e| e.to_string())?;
        for (index, include) in includes.iter().enumerate() {
            let from = include.artifact.join(&include.from_path);
            if !from.is_dir() {
                return Err(format!(
                    "spec.include[{index}].fromPath: {:?} is not a directory of the included artifact",
                    include.from_path
                ));
            }
            sourceignore::materialize(&from, &staging.join(&include.to_path), &everything, limits)
                .map_err(|e| format!("spec.include[{index}]: {e}"))?;
        }
        Ok(())
    })
}

/// `base/key`, written by `write` into a staging directory first (so a reader never sees a
/// half-written tree, and concurrent writers leave one complete copy).
fn store(
    base: &Path,
    key: &str,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<PathBuf, String> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let dest = base.join(key);
    if dest.is_dir() {
        return Ok(dest);
    }
    let staging = base.join(format!(
        ".staging-{key}-{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&staging);
    if let Err(message) = write(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(message);
    }
    if std::fs::rename(&staging, &dest).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
        if !dest.is_dir() {
            return Err(format!("cannot store the artifact at {}", dest.display()));
        }
    }
    Ok(dest)
}
