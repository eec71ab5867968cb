//! Directories of YAML/JSON manifests (Argo CD's "Directory" source type).

use crate::glob::Glob;
use crate::yaml::parse_documents;
use crate::{Error, Limits, relative};
use plumb_core::application::Directory;
use plumb_core::manifest::{Manifest, Origin};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Renders the manifests in `dir` (already confined to `root`).
///
/// Files are read in path order, so the result is deterministic. Hidden files and directories
/// (starting with `.`) are skipped, as Argo CD does.
pub fn render_directory(
    root: &Path,
    dir: &Path,
    options: &Directory,
    limits: &Limits,
) -> Result<Vec<Manifest>, Error> {
    let include = compile("include", &options.include)?;
    let exclude = compile("exclude", &options.exclude)?;
    let mut files = Vec::new();
    let mut visited = BTreeSet::new();
    collect(
        root,
        dir,
        "",
        options.recurse,
        0,
        limits,
        &mut visited,
        &mut files,
    )?;
    files.sort();
    let mut manifests = Vec::new();
    let mut total = 0u64;
    for (shown, path) in files {
        if include.as_ref().is_some_and(|g| !g.is_match(&shown))
            || exclude.as_ref().is_some_and(|g| g.is_match(&shown))
        {
            continue;
        }
        let file = relative(root, &dir.join(&shown));
        let size = std::fs::metadata(&path)
            .map_err(|source| Error::Read {
                path: file.clone(),
                source,
            })?
            .len();
        if size > limits.max_file_bytes {
            return Err(Error::FileTooLarge {
                path: file,
                size,
                limit: limits.max_file_bytes,
            });
        }
        total += size;
        if total > limits.max_total_bytes {
            return Err(Error::LimitExceeded {
                what: "total size of manifest files",
                limit: limits.max_total_bytes,
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: file.clone(),
            source,
        })?;
        for (document, object) in parse_documents(&file, &text)? {
            manifests.push(Manifest {
                object,
                origin: Origin {
                    file: file.clone(),
                    document,
                },
            });
        }
    }
    Ok(manifests)
}

fn compile(field: &'static str, pattern: &str) -> Result<Option<Glob>, Error> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Glob::new(pattern).map(Some).ok_or_else(|| Error::Pattern {
        field,
        pattern: pattern.to_string(),
    })
}

/// Collects `(path relative to the app dir, resolved path)` of manifest files.
#[allow(clippy::too_many_arguments)]
fn collect(
    root: &Path,
    dir: &Path,
    prefix: &str,
    recurse: bool,
    depth: usize,
    limits: &Limits,
    visited: &mut BTreeSet<PathBuf>,
    files: &mut Vec<(String, PathBuf)>,
) -> Result<(), Error> {
    if depth > limits.max_depth {
        return Err(Error::LimitExceeded {
            what: "directory depth",
            limit: limits.max_depth as u64,
        });
    }
    if !visited.insert(dir.to_path_buf()) {
        return Ok(()); // a symlink loop: already walked
    }
    let shown_dir = relative(root, dir);
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: shown_dir.clone(),
        source,
    })?;
    let mut entries: Vec<_> =
        entries
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::Read {
                path: shown_dir.clone(),
                source,
            })?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let shown = relative(root, &path);
        let file_type = entry.file_type().map_err(|source| Error::Read {
            path: shown.clone(),
            source,
        })?;
        let resolved = if file_type.is_symlink() {
            match path.canonicalize() {
                Ok(target) if target.starts_with(root) => target,
                Ok(_) => {
                    return Err(Error::OutsideRoot {
                        path: shown,
                        what: "symlink",
                    });
                }
                Err(_) => continue, // dangling symlink: nothing to read
            }
        } else {
            path.clone()
        };
        if resolved.is_dir() {
            if recurse {
                collect(
                    root,
                    &resolved,
                    &format!("{prefix}{name}/"),
                    recurse,
                    depth + 1,
                    limits,
                    visited,
                    files,
                )?;
            }
            continue;
        }
        let is_manifest = Path::new(&name)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        if !is_manifest {
            continue;
        }
        if files.len() >= limits.max_files {
            return Err(Error::LimitExceeded {
                what: "number of manifest files",
                limit: limits.max_files as u64,
            });
        }
        files.push((format!("{prefix}{name}"), resolved));
    }
    Ok(())
}
