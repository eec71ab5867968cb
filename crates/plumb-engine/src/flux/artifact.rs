//! The artifact of a GitRepository: its commit's files with Flux's exclusions applied (the
//! defaults, the tree's `.sourceignore` files and `spec.ignore`), as source-controller would
//! archive them. plumb keeps no archives: the artifact is written once per (commit, rules),
//! hard-linked from the immutable snapshot, next to the snapshots in the cache, and
//! Kustomizations build from it.

use plumb_render::{Limits, sourceignore};
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped when what goes into an artifact changes, so old directories are not reused.
const LAYOUT: &str = "plumb-artifact-v1";

/// The artifact directory of the snapshot at `snapshot` with `ignore` (`spec.ignore`) rules
/// (blocking; written on first use).
///
/// **Errors**: the snapshot cannot be read, a `.sourceignore` is unreadable or too large, or
/// the artifact cannot be written; as one line naming the path.
pub(crate) fn git_artifact(
    snapshot: &Path,
    ignore: Option<&str>,
    limits: &Limits,
) -> Result<PathBuf, String> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
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
    let dest = base.join(&key);
    if dest.is_dir() {
        return Ok(dest);
    }
    let matcher = sourceignore::load(snapshot, ignore, limits).map_err(|e| e.to_string())?;
    let staging = base.join(format!(
        ".staging-{key}-{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&staging);
    if let Err(error) = sourceignore::materialize(snapshot, &staging, &matcher, limits) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error.to_string());
    }
    if std::fs::rename(&staging, &dest).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
        if !dest.is_dir() {
            return Err(format!("cannot store the artifact at {}", dest.display()));
        }
    }
    Ok(dest)
}
