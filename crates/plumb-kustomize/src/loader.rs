//! Sandboxed file access: kustomize's load restrictor plus limits. Every path is resolved
//! (symlinks included) and must stay inside the root; sizes, file counts and time are bounded.

use std::cell::{Cell, OnceCell, RefCell};
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use crate::{Error, Options};

pub(crate) struct Loader {
    root: PathBuf,
    options: Options,
    files: Cell<usize>,
    bytes: Cell<u64>,
    started: Instant,
    /// Generator/transformer kustomization directories being built, to refuse cycles.
    plugin_dirs: RefCell<Vec<PathBuf>>,
    /// The top kustomization's `openapi` schema, when it has one.
    schema: OnceCell<crate::openapi::CustomSchema>,
}

/// Leaves a plugin directory when dropped.
pub(crate) struct PluginDirGuard<'a> {
    loader: &'a Loader,
}

impl Drop for PluginDirGuard<'_> {
    fn drop(&mut self) {
        self.loader.plugin_dirs.borrow_mut().pop();
    }
}

impl Loader {
    pub(crate) fn new(root: &Path, options: &Options) -> Result<Self, Error> {
        let root = root.canonicalize().map_err(|e| Error::Load {
            path: root.to_path_buf(),
            message: format!("cannot resolve build root: {e}"),
        })?;
        Ok(Self {
            root,
            options: options.clone(),
            files: Cell::new(0),
            bytes: Cell::new(0),
            started: Instant::now(),
            plugin_dirs: RefCell::new(Vec::new()),
            schema: OnceCell::new(),
        })
    }

    pub(crate) fn enter_plugin_dir(&self, dir: &Path) -> Result<PluginDirGuard<'_>, Error> {
        let mut dirs = self.plugin_dirs.borrow_mut();
        if dirs.iter().any(|d| d == dir) || dirs.len() >= self.options.max_depth {
            let chain: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            return Err(Error::Cycle {
                path: dir.to_path_buf(),
                chain: format!("{} -> {}", chain.join(" -> "), dir.display()),
            });
        }
        dirs.push(dir.to_path_buf());
        Ok(PluginDirGuard { loader: self })
    }

    pub(crate) fn set_custom_schema(&self, schema: crate::openapi::CustomSchema) {
        let _ = self.schema.set(schema);
    }

    pub(crate) fn custom_schema(&self) -> Option<&crate::openapi::CustomSchema> {
        self.schema.get()
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    pub(crate) fn check_time(&self) -> Result<(), Error> {
        if self.started.elapsed() > self.options.timeout {
            return Err(Error::Limit(format!(
                "build took longer than {:?}",
                self.options.timeout
            )));
        }
        Ok(())
    }

    /// Resolve `rel` against `base` (a directory), following symlinks, and require the result
    /// to be inside the root. Remote references are refused.
    pub(crate) fn resolve(&self, base: &Path, rel: &str) -> Result<PathBuf, Error> {
        if is_remote(rel) {
            return Err(Error::Load {
                path: base.join(rel),
                message: "remote resources (Git/HTTP URLs) are not supported; vendor them into \
                          the repository or use a plumb Git source"
                    .into(),
            });
        }
        let joined = base.join(rel);
        let lexical = normalize(&joined);
        let resolved = joined.canonicalize().map_err(|e| Error::Load {
            path: lexical.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "no such file or directory".to_string()
            } else {
                format!("cannot resolve path: {e}")
            },
        })?;
        if !resolved.starts_with(&self.root) {
            return Err(Error::Escape {
                path: lexical,
                root: self.root.clone(),
            });
        }
        Ok(resolved)
    }

    /// Resolve a path that must be a file of the kustomization in `dir` (resources, patches,
    /// generator sources, configurations, ...): with the root-only restrictor it must also be in
    /// or below `dir`.
    pub(crate) fn resolve_file(&self, dir: &Path, rel: &str) -> Result<PathBuf, Error> {
        let resolved = self.resolve(dir, rel)?;
        self.check_file_in(dir, &resolved)?;
        Ok(resolved)
    }

    /// The root-only restrictor's check for a resolved file read by the kustomization in `dir`.
    pub(crate) fn check_file_in(&self, dir: &Path, resolved: &Path) -> Result<(), Error> {
        if self.options.load_restrictor == crate::LoadRestrictor::RootOnly
            && !resolved.starts_with(dir)
        {
            return Err(Error::Load {
                path: resolved.to_path_buf(),
                message: format!(
                    "security: file is not in or below the kustomization directory {} (kustomize's \
                     default load restrictor; files may be shared through a base kustomization)",
                    dir.display()
                ),
            });
        }
        Ok(())
    }

    /// Check a directory handed in by the caller (the build directory itself).
    pub(crate) fn resolve_dir(&self, dir: &Path) -> Result<PathBuf, Error> {
        let resolved = dir.canonicalize().map_err(|e| Error::Load {
            path: dir.to_path_buf(),
            message: format!("cannot resolve directory: {e}"),
        })?;
        if !resolved.starts_with(&self.root) {
            return Err(Error::Escape {
                path: dir.to_path_buf(),
                root: self.root.clone(),
            });
        }
        Ok(resolved)
    }

    /// Read a file already resolved by [`Loader::resolve`], within the limits.
    pub(crate) fn read_bytes(&self, path: &Path) -> Result<Vec<u8>, Error> {
        self.check_time()?;
        let meta = std::fs::metadata(path).map_err(|e| Error::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if meta.is_dir() {
            return Err(Error::Load {
                path: path.to_path_buf(),
                message: "is a directory, expected a file".into(),
            });
        }
        if meta.len() > self.options.max_file_size {
            return Err(Error::Limit(format!(
                "{}: file is {} bytes, larger than the limit of {} bytes",
                path.display(),
                meta.len(),
                self.options.max_file_size
            )));
        }
        let files = self.files.get() + 1;
        if files > self.options.max_files {
            return Err(Error::Limit(format!(
                "more than {} files read",
                self.options.max_files
            )));
        }
        self.files.set(files);
        let total = self.bytes.get() + meta.len();
        if total > self.options.max_total_bytes {
            return Err(Error::Limit(format!(
                "more than {} bytes read in total",
                self.options.max_total_bytes
            )));
        }
        self.bytes.set(total);
        let data = std::fs::read(path).map_err(|e| Error::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        // The file may have grown between stat and read.
        if data.len() as u64 > self.options.max_file_size {
            return Err(Error::Limit(format!(
                "{}: file larger than the limit of {} bytes",
                path.display(),
                self.options.max_file_size
            )));
        }
        Ok(data)
    }

    pub(crate) fn read_string(&self, path: &Path) -> Result<String, Error> {
        let bytes = self.read_bytes(path)?;
        String::from_utf8(bytes).map_err(|_| Error::Load {
            path: path.to_path_buf(),
            message: "file is not valid UTF-8".into(),
        })
    }
}

pub(crate) fn is_remote(rel: &str) -> bool {
    rel.contains("://")
        || rel.starts_with("git@")
        || rel.starts_with("github.com/")
        || rel.starts_with("gitlab.com/")
        || rel.starts_with("bitbucket.org/")
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}
