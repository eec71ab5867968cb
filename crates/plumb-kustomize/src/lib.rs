//! plumb-kustomize: a native Rust implementation of `kustomize build` (Kustomize v5.5.0).
//!
//! Start at [`build`]. It reads files only through the sandboxed loader (`loader.rs`: every read
//! confined to a root after symlink resolution, kustomize's load restrictor, size/count/depth/time
//! limits), then `accumulate.rs` walks the kustomization tree: resources and bases, generators
//! (`generators.rs`), components, and the builtin transformers in kustomize's order
//! (`transformers.rs`, `patch.rs` with `smp.rs`, `replacements.rs`, `plugins.rs`). The top level
//! finally adds generator hash suffixes (`hash.rs`), fixes name references (`nameref.rs`),
//! resolves vars (`vars.rs`) and sorts (`sort.rs`). [`to_yaml`] prints the result byte for byte
//! like `kustomize build` (go-yaml v2 styling, see the [`yaml`] module).
//!
//! The strategic-merge-patch list table for built-in kinds lives in [`merge_keys`] so that other
//! code can reuse it. [`build_with_overrides`] applies Argo CD's `spec.source.kustomize` overrides.

mod accumulate;
mod error;
mod fieldspec;
mod generators;
mod hash;
mod kustomization;
mod loader;
pub mod merge_keys;
mod nameref;
mod openapi;
mod overrides;
mod patch;
mod plugins;
mod replacements;
mod resource;
mod smp;
mod sort;
mod transformers;
mod vars;
pub mod yaml;

use std::path::Path;
use std::time::Duration;

pub use error::Error;
pub use overrides::{Image, Overrides, Patch, PatchTarget};

/// Limits and switches for a build. The default allows no network access.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest single file that may be read, in bytes.
    pub max_file_size: u64,
    /// Largest total number of bytes read over the whole build.
    pub max_total_bytes: u64,
    /// Largest number of files read over the whole build.
    pub max_files: usize,
    /// Deepest nesting of kustomizations (resources/components referring to directories).
    pub max_depth: usize,
    /// Wall-clock budget for the build.
    pub timeout: Duration,
    /// Where a kustomization may read files from (kustomize's `--load-restrictor`).
    pub load_restrictor: LoadRestrictor,
}

/// Kustomize's load restrictor. Either way nothing is read outside the build root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadRestrictor {
    /// Kustomize's default (`LoadRestrictionsRootOnly`): a kustomization reads files only in or
    /// below its own directory; other kustomization directories may be referenced anywhere
    /// inside the root. This is what `kustomize build` and Argo CD do by default.
    #[default]
    RootOnly,
    /// `LoadRestrictionsNone` (what Flux uses): any file inside the build root.
    None,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_file_size: 16 * 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
            max_files: 20_000,
            max_depth: 64,
            timeout: Duration::from_secs(60),
            load_restrictor: LoadRestrictor::RootOnly,
        }
    }
}

/// Build the kustomization in `dir`; every file read must stay inside `root` after symlink
/// resolution. `root` is the Git snapshot root in the controller; for a CLI, pass a directory
/// that contains every base the overlay refers to (e.g. the repository top level), since bases
/// such as `../base` outside `root` are refused.
pub fn build(root: &Path, dir: &Path, options: &Options) -> Result<Vec<serde_json::Value>, Error> {
    build_with_overrides(root, dir, options, &Overrides::default())
}

/// [`build`], with Argo CD-style overrides (`spec.source.kustomize`) applied to the top-level
/// kustomization first, as `kustomize edit` would.
pub fn build_with_overrides(
    root: &Path,
    dir: &Path,
    options: &Options,
    overrides: &Overrides,
) -> Result<Vec<serde_json::Value>, Error> {
    let loader = loader::Loader::new(root, options)?;
    accumulate::build_top(&loader, dir, overrides, None)
}

/// [`build_with_overrides`] for a directory without a kustomization file, built as if it held
/// one listing `resources` (paths relative to `dir`), as Flux's kustomize-controller generates
/// it. A kustomization file in `dir` is ignored.
pub fn build_generated(
    root: &Path,
    dir: &Path,
    options: &Options,
    overrides: &Overrides,
    resources: &[String],
) -> Result<Vec<serde_json::Value>, Error> {
    let loader = loader::Loader::new(root, options)?;
    accumulate::build_top(&loader, dir, overrides, Some(resources))
}

/// Serialize objects exactly as `kustomize build` prints them (documents separated by `---\n`).
pub fn to_yaml(objects: &[serde_json::Value]) -> String {
    let mut out = String::new();
    for (i, obj) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&yaml::to_yaml_document(obj));
    }
    out
}
