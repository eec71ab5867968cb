//! Rendering: files of a source snapshot in, desired objects out.
//!
//! [`render`] is the entry point. It is pure with respect to the cluster: it reads only files
//! under the snapshot root (after resolving symlinks), never runs a process, and bounds file
//! count, sizes and directory depth. A directory holding a `kustomization.yaml` is built with
//! the native Kustomize implementation, one holding `Chart.yaml` with the native Helm renderer;
//! anything else is a directory of YAML/JSON manifests. [`flux::render_flux`] builds a Flux
//! `Kustomization`'s path the way Flux's kustomize-controller does.

mod directory;
pub mod flux;
mod glob;
mod helm;
mod kustomize;
pub mod sourceignore;
mod yaml;

pub use directory::render_directory;
pub use helm::{TestHooks, merge_values, render_chart, render_chart_with_tests};
pub use yaml::{ParseError, parse_documents};

use plumb_core::application::Source;
use plumb_core::manifest::{InvalidManifest, Manifest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Other sources' checkouts a Helm source may read value files from: Argo CD's multi-source
/// `$<ref>/path` value files, by ref name (without `$`). Each file read stays confined to the
/// checkout it names.
pub type ValueRefs = BTreeMap<String, PathBuf>;

/// Bounds on what a render may read.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest single file.
    pub max_file_bytes: u64,
    /// Largest sum of all files read.
    pub max_total_bytes: u64,
    /// Most files read.
    pub max_files: usize,
    /// Deepest directory nesting when recursing.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 4 * 1024 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
            max_files: 10_000,
            max_depth: 32,
        }
    }
}

/// Facts about the application a renderer may need (Helm's release name and namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RenderContext {
    /// The application's name: Helm's default release name.
    pub app_name: String,
    /// The destination namespace: Helm's release namespace.
    pub namespace: String,
    /// The cluster's version for `.Capabilities.KubeVersion`, when known.
    pub kube_version: Option<String>,
}

/// Which renderer a source path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceType {
    /// YAML/JSON files.
    Directory,
    /// A kustomization.
    Kustomize,
    /// A Helm chart.
    Helm,
}

impl SourceType {
    /// The name Argo CD shows for it (`status.sourceType`).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceType::Directory => "Directory",
            SourceType::Kustomize => "Kustomize",
            SourceType::Helm => "Helm",
        }
    }
}

/// A render failure. Nothing is applied when rendering fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source path does not exist in the snapshot.
    #[error("path {path:?} does not exist in the repository")]
    PathNotFound {
        /// Path as given in the source.
        path: String,
    },
    /// A path or symlink leads outside the snapshot root.
    #[error("{path}: {what} leads outside the repository")]
    OutsideRoot {
        /// Path relative to the root, as found.
        path: String,
        /// `path` or `symlink`.
        what: &'static str,
    },
    /// A file is larger than allowed.
    #[error("{path}: file is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        /// Path relative to the root.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Too much in total.
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What overflowed.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A file could not be read.
    #[error("{path}: cannot read")]
    Read {
        /// Path relative to the root.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML/JSON.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A rendered object is not a valid Kubernetes object.
    #[error(transparent)]
    Invalid(#[from] InvalidManifest),
    /// A directory glob is malformed.
    #[error("spec.source.directory.{field}: invalid pattern {pattern:?}")]
    Pattern {
        /// `include` or `exclude`.
        field: &'static str,
        /// The pattern.
        pattern: String,
    },
    /// Kustomize refused the kustomization.
    #[error("kustomize build {path}")]
    Kustomize {
        /// Directory relative to the root.
        path: String,
        /// The cause, naming the file and field.
        #[source]
        source: plumb_kustomize::Error,
    },
    /// A `spec.source.kustomize` option is unusable.
    #[error("spec.source.kustomize.{field}: {problem}")]
    KustomizeOption {
        /// The option.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// A `spec.source.helm` option is unusable.
    #[error("spec.source.helm.{field}: {problem}")]
    HelmOption {
        /// The option.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// Helm rendering failed.
    #[error("helm template {path}")]
    Helm {
        /// Chart directory relative to the root.
        path: String,
        /// The cause, with file and line.
        #[source]
        source: plumb_helm::Error,
    },
    /// A renderer that is not available for this source.
    #[error("{path}: {what} sources are not supported yet")]
    Unsupported {
        /// Directory relative to the root.
        path: String,
        /// Which kind of source.
        what: &'static str,
    },
}

/// Detects which renderer the directory `dir` needs.
pub fn source_type(dir: &Path) -> SourceType {
    if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|f| dir.join(f).is_file())
    {
        SourceType::Kustomize
    } else if dir.join("Chart.yaml").is_file() {
        SourceType::Helm
    } else {
        SourceType::Directory
    }
}

/// Renders `source.path` of the snapshot at `root` into validated manifests.
///
/// **Errors**: any unreadable, oversized, escaping or malformed file, and any object missing
/// `apiVersion`, `kind` or `metadata.name`, fail the whole render; the error names the file.
pub fn render(
    root: &Path,
    source: &Source,
    context: &RenderContext,
    limits: &Limits,
) -> Result<(SourceType, Vec<Manifest>), Error> {
    render_with_refs(root, source, context, limits, None)
}

/// [`render`] for one source of a multi-source application: Helm value files and file
/// parameters written `$<ref>/path` read from the checkout of the source with that `ref`
/// (`refs`); `None` for a single-source application, where such paths are refused.
pub fn render_with_refs(
    root: &Path,
    source: &Source,
    context: &RenderContext,
    limits: &Limits,
    refs: Option<&ValueRefs>,
) -> Result<(SourceType, Vec<Manifest>), Error> {
    let root = root.canonicalize().map_err(|source| Error::Read {
        path: ".".into(),
        source,
    })?;
    let dir = confine(
        &root,
        Path::new(source.path.trim_start_matches('/')),
        &source.path,
    )?;
    if !dir.is_dir() {
        return Err(Error::PathNotFound {
            path: source.path.clone(),
        });
    }
    let kind = source_type(&dir);
    let manifests = match kind {
        SourceType::Directory => {
            let directory = source.directory.clone().unwrap_or_default();
            render_directory(&root, &dir, &directory, limits)?
        }
        SourceType::Kustomize => kustomize::build(&root, &dir, source.kustomize.as_ref())?,
        SourceType::Helm => helm::render_chart_with_refs(
            &root,
            &dir,
            source.helm.as_ref(),
            context,
            refs,
            helm::TestHooks::Drop,
        )?,
    };
    for manifest in &manifests {
        manifest.validate()?;
    }
    Ok((kind, manifests))
}

/// Resolves `path` under `root`, following symlinks, and refuses anything that ends outside.
pub(crate) fn confine(root: &Path, path: &Path, shown: &str) -> Result<PathBuf, Error> {
    let joined = root.join(path);
    let resolved = match joined.canonicalize() {
        Ok(resolved) => resolved,
        Err(_) => {
            return Err(Error::PathNotFound {
                path: shown.to_string(),
            });
        }
    };
    if !resolved.starts_with(root) {
        return Err(Error::OutsideRoot {
            path: shown.to_string(),
            what: "path",
        });
    }
    Ok(resolved)
}

/// Rendered objects as manifests that all came from `file`, numbered in order.
pub(crate) fn manifests_from(
    objects: impl IntoIterator<Item = serde_json::Value>,
    file: &str,
) -> Vec<Manifest> {
    objects
        .into_iter()
        .enumerate()
        .map(|(document, object)| Manifest {
            object,
            origin: plumb_core::manifest::Origin {
                file: file.to_string(),
                document,
            },
        })
        .collect()
}

/// `path` relative to `root`, `/`-separated, `.` for the root itself.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    if rel.is_empty() { ".".into() } else { rel }
}
