//! Writing a commit's tree to disk as an immutable snapshot directory.
//!
//! Two passes: the first walks the trees and reads only object headers, so
//! every limit is checked (and every unsafe name rejected) before a byte is
//! written; the second writes into a temporary directory that is renamed into
//! place, so a snapshot directory that exists is always complete.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use gix::bstr::{BStr, ByteSlice};
use gix::objs::tree::EntryKind;

use crate::fetch::mirror_error;
use crate::url::RepoUrl;
use crate::{Error, Options};

/// A commit's files on disk. The directory is never modified once it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The full commit SHA the files come from.
    pub revision: String,
    /// The directory holding the commit's tree.
    pub root: PathBuf,
}

#[derive(Debug)]
enum Item {
    Dir,
    File { id: gix::ObjectId, executable: bool },
    Link { id: gix::ObjectId },
}

/// The planned contents: repository-relative paths (as raw bytes) in creation order.
type Plan = Vec<(Vec<u8>, Item)>;

/// Check the limits of `sha`'s tree and list what to write.
fn plan(
    repo: &gix::Repository,
    url: &RepoUrl,
    sha: &str,
    commit: gix::ObjectId,
    limits: &Options,
) -> Result<Plan, Error> {
    let what = || format!("the tree of commit {sha}");
    let commit = repo
        .find_commit(commit)
        .map_err(|_| Error::RevisionNotFound {
            url: url.redacted.clone(),
            revision: sha.to_owned(),
        })?;
    let tree = commit
        .tree_id()
        .map_err(|err| mirror_error(url, &what(), &err))?
        .detach();

    let mut plan = Plan::new();
    let mut files = 0usize;
    let mut total = 0u64;
    let mut stack: Vec<(Vec<u8>, gix::ObjectId)> = vec![(Vec::new(), tree)];
    while let Some((dir, tree_id)) = stack.pop() {
        let tree = repo
            .find_tree(tree_id)
            .map_err(|err| mirror_error(url, &what(), &err))?;
        let decoded = tree
            .decode()
            .map_err(|err| mirror_error(url, &what(), &err))?;
        for entry in &decoded.entries {
            let path = join(&dir, entry.filename);
            check_name(entry.filename, &path, sha)?;
            let kind = entry.mode.kind();
            if kind == EntryKind::Commit {
                // Submodules are not fetched; the directory is left out, as a plain `git clone` does.
                tracing::debug!(url = %url.redacted, sha, path = %path.as_bstr(), "skipping submodule");
                continue;
            }
            files += 1;
            if files > limits.max_files {
                return Err(Error::TooManyFiles {
                    sha: sha.to_owned(),
                    path: path.to_str_lossy().into_owned(),
                    limit: limits.max_files,
                });
            }
            let id = entry.oid.to_owned();
            match kind {
                EntryKind::Tree => {
                    plan.push((path.clone(), Item::Dir));
                    stack.push((path, id));
                }
                EntryKind::Blob | EntryKind::BlobExecutable | EntryKind::Link => {
                    let header = repo.find_header(id).map_err(|err| {
                        mirror_error(url, &format!("{} in commit {sha}", path.as_bstr()), &err)
                    })?;
                    let size = header.size();
                    if size > limits.max_file_bytes {
                        return Err(Error::FileTooLarge {
                            sha: sha.to_owned(),
                            path: path.to_str_lossy().into_owned(),
                            size,
                            limit: limits.max_file_bytes,
                        });
                    }
                    total = total.saturating_add(size);
                    if total > limits.max_snapshot_bytes {
                        return Err(Error::SnapshotTooLarge {
                            sha: sha.to_owned(),
                            path: path.to_str_lossy().into_owned(),
                            limit: limits.max_snapshot_bytes,
                        });
                    }
                    let item = if kind == EntryKind::Link {
                        Item::Link { id }
                    } else {
                        Item::File {
                            id,
                            executable: kind == EntryKind::BlobExecutable,
                        }
                    };
                    plan.push((path, item));
                }
                EntryKind::Commit => {}
            }
        }
    }
    Ok(plan)
}

fn join(dir: &[u8], name: &BStr) -> Vec<u8> {
    let mut path = Vec::with_capacity(dir.len() + name.len() + 1);
    if !dir.is_empty() {
        path.extend_from_slice(dir);
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// Reject names that could escape the snapshot or that git itself refuses to check out.
fn check_name(name: &BStr, path: &[u8], sha: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("empty name")
    } else if name == "." || name == ".." {
        Some("relative path component")
    } else if name.contains(&b'/') || name.contains(&0) {
        Some("name contains '/' or NUL")
    } else if name.eq_ignore_ascii_case(b".git") {
        Some("names a .git directory")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::UnsafePath {
            sha: sha.to_owned(),
            path: path.to_str_lossy().into_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Write `sha`'s tree to `dest` unless it is there already; returns whether it was written.
pub(crate) fn write(
    repo: &gix::Repository,
    url: &RepoUrl,
    sha: &str,
    commit: gix::ObjectId,
    dest: &Path,
    limits: &Options,
) -> Result<bool, Error> {
    let plan = plan(repo, url, sha, commit, limits)?;
    let parent = dest.parent().unwrap_or(dest);
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(parent)
        .map_err(|err| Error::io("creating a temporary directory in", parent, err))?;
    for (path, item) in &plan {
        let target = tmp.path().join(os_path(path));
        write_item(repo, url, sha, path, item, &target)?;
    }
    set_mode(tmp.path(), 0o755)?;
    let tmp_path = tmp.keep();
    match std::fs::rename(&tmp_path, dest) {
        Ok(()) => Ok(true),
        Err(err) => {
            let _ = std::fs::remove_dir_all(&tmp_path);
            // Another process may have renamed an identical snapshot into place first.
            if dest.is_dir() {
                Ok(false)
            } else {
                Err(Error::io("renaming a snapshot to", dest, err))
            }
        }
    }
}

fn write_item(
    repo: &gix::Repository,
    url: &RepoUrl,
    sha: &str,
    path: &[u8],
    item: &Item,
    target: &Path,
) -> Result<(), Error> {
    let blob_data = |id: gix::ObjectId| {
        repo.find_blob(id)
            .map(|mut blob| blob.take_data())
            .map_err(|err| mirror_error(url, &format!("{} in commit {sha}", path.as_bstr()), &err))
    };
    // `create_dir` and `create_new` fail on anything already there, so a tree that lists a
    // name twice (a symlink and a directory, say) can never make us write through a symlink.
    let exists = |err: std::io::Error, action: &'static str| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            Error::UnsafePath {
                sha: sha.to_owned(),
                path: path.to_str_lossy().into_owned(),
                reason: "the name appears twice in its tree",
            }
        } else {
            Error::io(action, target, err)
        }
    };
    match item {
        Item::Dir => std::fs::create_dir(target).map_err(|err| exists(err, "creating directory")),
        Item::File { id, executable } => {
            let data = blob_data(*id)?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(target)
                .map_err(|err| exists(err, "creating file"))?;
            file.write_all(&data)
                .map_err(|err| Error::io("writing", target, err))?;
            if *executable {
                set_mode(target, 0o755)?;
            }
            Ok(())
        }
        Item::Link { id } => {
            let data = blob_data(*id)?;
            symlink(os_path(&data), target).map_err(|err| exists(err, "creating symlink"))
        }
    }
}

#[cfg(unix)]
fn os_path(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn os_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(unix)]
fn symlink(link_target: impl AsRef<Path>, at: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(link_target, at)
}

#[cfg(not(unix))]
fn symlink(_link_target: impl AsRef<Path>, _at: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "symlinks are only supported on unix",
    ))
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|err| Error::io("setting permissions of", path, err))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_rejected() {
        for name in ["", ".", "..", "a/b", ".git", ".GIT"] {
            let result = check_name(name.into(), name.as_bytes(), "0");
            assert!(matches!(result, Err(Error::UnsafePath { .. })), "{name:?}");
        }
        assert!(check_name("..a".into(), b"..a", "0").is_ok());
        assert!(check_name(".gitignore".into(), b".gitignore", "0").is_ok());
    }

    #[test]
    fn join_builds_relative_paths() {
        assert_eq!(join(b"", "a".into()), b"a");
        assert_eq!(join(b"a/b", "c".into()), b"a/b/c");
    }
}
