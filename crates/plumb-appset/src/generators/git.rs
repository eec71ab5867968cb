//! The Git generator: directories (Go `path.Match` over every directory of the repository)
//! and files (`git ls-files` pathspecs; each JSON/YAML file yields one or more parameter
//! sets). Every read stays inside the repository root after symlinks are resolved.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Run, append_values, bool_field, list_field, string_field};
use crate::error::Error;
use crate::glob::Glob;
use crate::params::{Params, flatten, go_sprint, sanitize_name};

/// Largest file the files generator reads.
pub(crate) const MAX_FILE_BYTES: u64 = 1 << 20;
/// Most bytes the files generator reads for one generator.
pub(crate) const MAX_TOTAL_BYTES: usize = 64 << 20;
/// Most directory entries walked in one repository.
pub(crate) const MAX_ENTRIES: usize = 200_000;

pub(super) fn generate(spec: &Value, field: &str, run: &Run<'_>) -> Result<Vec<Params>, Error> {
    let repo_url = string_field(spec, "repoURL", field)?;
    if repo_url.is_empty() {
        return Err(Error::invalid(format!("{field}.repoURL"), "is required"));
    }
    let revision = string_field(spec, "revision", field)?;
    let prefix = string_field(spec, "pathParamPrefix", field)?;
    let directories = list_field(spec, "directories", field)?;
    let files = list_field(spec, "files", field)?;
    if directories.is_empty() && files.is_empty() {
        return Err(Error::invalid(field, "needs directories or files"));
    }
    let root = run
        .context
        .repository_root(&repo_url, &revision)
        .map_err(|message| Error::Context {
            field: format!("{field}.repoURL"),
            message: format!("cannot get {repo_url} at revision {revision:?}: {message}"),
        })?;
    let go_template = run.renderer.is_go_template();
    let mut out = Vec::new();
    if !directories.is_empty() {
        let patterns = patterns(
            directories,
            &format!("{field}.directories"),
            Glob::path_match,
        )?;
        let mut all = Vec::new();
        walk(&root, &root, &mut all, Walk::Directories, field)?;
        for dir in all.iter().filter(|d| selected(&patterns, d)) {
            let mut params = directory_params(dir, &prefix, go_template);
            append_values(spec, field, &mut params, run.renderer)?;
            out.push(params);
        }
        return Ok(out);
    }
    let files_field = format!("{field}.files");
    let dialect = if run.options.new_git_file_globbing {
        Glob::doublestar
    } else {
        Glob::pathspec
    };
    let patterns = patterns(files, &files_field, dialect)?;
    let mut all = Vec::new();
    walk(&root, &root, &mut all, Walk::Files, field)?;
    // Argo CD unions the includes, removes the excludes and sorts the paths.
    let chosen: BTreeSet<&String> = all.iter().filter(|f| selected(&patterns, f)).collect();
    let canonical_root = root.canonicalize().map_err(|source| Error::Io {
        field: field.to_string(),
        path: ".".into(),
        source,
    })?;
    let mut total = 0usize;
    for path in chosen {
        let content = read_confined(&canonical_root, &root, path, &files_field)?;
        total += content.len();
        if total > MAX_TOTAL_BYTES {
            return Err(Error::invalid(
                &files_field,
                format!("matched files exceed {MAX_TOTAL_BYTES} bytes in total"),
            ));
        }
        let objects = parse_file(&content).map_err(|e| {
            Error::invalid(
                &files_field,
                format!("unable to process file '{path}' from repository '{repo_url}': {e}"),
            )
        })?;
        for object in objects {
            let mut params = file_params(&object, path, &prefix, go_template);
            append_values(spec, field, &mut params, run.renderer)?;
            out.push(params);
        }
    }
    Ok(out)
}

struct Pattern {
    glob: Glob,
    exclude: bool,
}

fn patterns(
    items: &[Value],
    field: &str,
    compile: fn(&str) -> Result<Glob, String>,
) -> Result<Vec<Pattern>, Error> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{i}]");
        if !item.is_object() {
            return Err(Error::invalid(
                item_field,
                "must be an object with path (and exclude)",
            ));
        }
        let path = string_field(item, "path", &item_field)?;
        if path.is_empty() {
            return Err(Error::invalid(format!("{item_field}.path"), "is required"));
        }
        let glob = compile(&path).map_err(|e| Error::invalid(format!("{item_field}.path"), e))?;
        out.push(Pattern {
            glob,
            exclude: bool_field(item, "exclude", &item_field)?,
        });
    }
    Ok(out)
}

/// Included by some pattern and excluded by none.
fn selected(patterns: &[Pattern], path: &str) -> bool {
    let mut include = false;
    for p in patterns {
        if p.glob.matches(path) {
            if p.exclude {
                return false;
            }
            include = true;
        }
    }
    include
}

#[derive(Clone, Copy, PartialEq)]
enum Walk {
    /// Every directory but the root, hidden ones (and what is under them) skipped.
    Directories,
    /// Every file or symlink, `.git` skipped.
    Files,
}

/// Depth-first, in byte order of names, like Go's `filepath.WalkDir`; symlinked
/// directories are not followed.
fn walk(
    root: &Path,
    dir: &Path,
    out: &mut Vec<String>,
    mode: Walk,
    field: &str,
) -> Result<(), Error> {
    let relative = |p: &Path| -> String {
        let joined = p
            .strip_prefix(root)
            .unwrap_or(p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if joined.is_empty() {
            ".".to_string()
        } else {
            joined
        }
    };
    let io_error = |p: &Path, source| Error::Io {
        field: field.to_string(),
        path: relative(p),
        source,
    };
    let mut entries: Vec<(String, PathBuf, std::fs::FileType)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let file_type = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
        entries.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
            file_type,
        ));
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, path, file_type) in entries {
        if out.len() >= MAX_ENTRIES {
            return Err(Error::invalid(
                field,
                format!("repository has more than {MAX_ENTRIES} entries to walk"),
            ));
        }
        if file_type.is_dir() {
            let skip = match mode {
                Walk::Directories => name.starts_with('.'),
                Walk::Files => name == ".git",
            };
            if skip {
                continue;
            }
            if mode == Walk::Directories {
                out.push(relative(&path));
            }
            walk(root, &path, out, mode, field)?;
        } else if mode == Walk::Files && (file_type.is_file() || file_type.is_symlink()) {
            out.push(relative(&path));
        }
    }
    Ok(())
}

/// Read a repository file, refusing one that resolves outside the root or is too large.
fn read_confined(
    canonical_root: &Path,
    root: &Path,
    path: &str,
    field: &str,
) -> Result<String, Error> {
    let io_error = |source| Error::Io {
        field: field.to_string(),
        path: path.to_string(),
        source,
    };
    let real = root.join(path).canonicalize().map_err(io_error)?;
    if !real.starts_with(canonical_root) {
        return Err(Error::invalid(
            field,
            format!("{path} resolves outside the repository"),
        ));
    }
    let meta = std::fs::metadata(&real).map_err(io_error)?;
    if !meta.is_file() {
        return Err(Error::invalid(
            field,
            format!("{path} is not a regular file"),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Error::invalid(
            field,
            format!("{path} exceeds the size limit of {MAX_FILE_BYTES} bytes"),
        ));
    }
    let bytes = std::fs::read(&real).map_err(io_error)?;
    String::from_utf8(bytes).map_err(|_| Error::invalid(field, format!("{path} is not UTF-8 text")))
}

/// A file holds one object or a list of objects; an empty file is one empty object.
fn parse_file(content: &str) -> Result<Vec<serde_json::Map<String, Value>>, String> {
    let first = plumb_helm::yaml::parse_documents(content)
        .map_err(|e| format!("unable to parse file: {e}"))?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    match first {
        Value::Null => Ok(vec![serde_json::Map::new()]),
        Value::Object(m) => Ok(vec![m]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(m) => Ok(m),
                other => Err(format!(
                    "unable to parse file: list item {} is not a map",
                    go_sprint(&other)
                )),
            })
            .collect(),
        other => Err(format!(
            "unable to parse file: {} is neither a map nor a list of maps",
            go_sprint(&other)
        )),
    }
}

fn base(path: &str) -> String {
    // Go's path.Base on the relative, slash-separated paths handled here.
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() {
            ".".into()
        } else {
            "/".into()
        };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) if i > 0 => path[..i].to_string(),
        Some(_) => "/".into(),
        None => ".".into(),
    }
}

fn directory_params(path: &str, prefix: &str, go_template: bool) -> Params {
    let basename = base(path);
    let mut params = Params::new();
    if go_template {
        let mut p = serde_json::Map::new();
        p.insert("path".into(), json!(path));
        p.insert("basename".into(), json!(basename));
        p.insert("basenameNormalized".into(), json!(sanitize_name(&basename)));
        p.insert(
            "segments".into(),
            json!(path.split('/').collect::<Vec<_>>()),
        );
        insert_path(&mut params, prefix, p);
    } else {
        let name = path_param_name(prefix);
        params.insert(name.clone(), json!(path));
        params.insert(format!("{name}.basename"), json!(basename));
        params.insert(
            format!("{name}.basenameNormalized"),
            json!(sanitize_name(&basename)),
        );
        insert_segments(&mut params, &name, path);
    }
    params
}

fn file_params(
    object: &serde_json::Map<String, Value>,
    file: &str,
    prefix: &str,
    go_template: bool,
) -> Params {
    let path = dir(file);
    let basename = base(&path);
    let filename = base(file);
    let mut params = Params::new();
    if go_template {
        params.extend(object.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut p = serde_json::Map::new();
        p.insert("path".into(), json!(path));
        p.insert("basename".into(), json!(basename));
        p.insert("filename".into(), json!(filename));
        p.insert("basenameNormalized".into(), json!(sanitize_name(&basename)));
        p.insert("filenameNormalized".into(), json!(sanitize_name(&filename)));
        p.insert(
            "segments".into(),
            json!(path.split('/').collect::<Vec<_>>()),
        );
        insert_path(&mut params, prefix, p);
    } else {
        for (k, v) in flatten(object) {
            params.insert(k, Value::String(go_sprint(&v)));
        }
        let name = path_param_name(prefix);
        params.insert(name.clone(), json!(path));
        params.insert(format!("{name}.basename"), json!(basename));
        params.insert(format!("{name}.filename"), json!(filename));
        params.insert(
            format!("{name}.basenameNormalized"),
            json!(sanitize_name(&basename)),
        );
        params.insert(
            format!("{name}.filenameNormalized"),
            json!(sanitize_name(&filename)),
        );
        insert_segments(&mut params, &name, &path);
    }
    params
}

fn insert_path(params: &mut Params, prefix: &str, path: serde_json::Map<String, Value>) {
    if prefix.is_empty() {
        params.insert("path".into(), Value::Object(path));
    } else {
        params.insert(prefix.to_string(), json!({ "path": path }));
    }
}

fn path_param_name(prefix: &str) -> String {
    if prefix.is_empty() {
        "path".into()
    } else {
        format!("{prefix}.path")
    }
}

fn insert_segments(params: &mut Params, name: &str, path: &str) {
    for (i, segment) in path.split('/').enumerate() {
        if !segment.is_empty() {
            params.insert(format!("{name}[{i}]"), json!(segment));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_and_dir_follow_go_path() {
        assert_eq!(base("a/b"), "b");
        assert_eq!(base("a"), "a");
        assert_eq!(dir("a/b/c.json"), "a/b");
        assert_eq!(dir("c.json"), ".");
        assert_eq!(base(&dir("c.json")), ".");
    }

    #[test]
    fn parse_file_accepts_object_list_and_empty() {
        assert_eq!(parse_file("a: 1").map(|v| v.len()), Ok(1));
        assert_eq!(parse_file("- a: 1\n- b: 2").map(|v| v.len()), Ok(2));
        assert_eq!(parse_file("").map(|v| v.len()), Ok(1));
        assert_eq!(parse_file("[]").map(|v| v.len()), Ok(0));
        assert!(parse_file("just a string").is_err());
        assert!(parse_file("- 1").is_err());
        assert!(parse_file("a: [").is_err());
    }
}
