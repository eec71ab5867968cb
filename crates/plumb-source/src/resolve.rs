//! Turning a `targetRevision` into a commit of the local mirror.

use gix::bstr::ByteSlice;

use crate::Error;
use crate::error::GitError;
use crate::fetch::{REMOTE_HEAD, mirror_error};
use crate::url::RepoUrl;

/// A resolved commit, with what a sync history entry shows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The full 40-hex commit SHA.
    pub sha: String,
    /// The full ref name the target revision matched (`refs/heads/main`, `refs/tags/v1`),
    /// `HEAD` for the remote default branch, or `None` when a SHA was given.
    pub reference: Option<String>,
    /// The full commit message.
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    /// Author time in seconds since the Unix epoch.
    pub author_time: i64,
}

impl Revision {
    /// The first line of the commit message.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

/// Resolve `target` in the mirror: `""`/`HEAD`, a full ref name, a branch, a tag, or a (short) SHA.
///
/// Branches win over tags and both win over SHAs, the order Argo CD uses, so a
/// branch called `deadbeef` is still a branch.
pub(crate) fn resolve(
    repo: &gix::Repository,
    url: &RepoUrl,
    target: &str,
) -> Result<Revision, Error> {
    let target = target.trim();
    let not_found = || Error::RevisionNotFound {
        url: url.redacted.clone(),
        revision: target.to_owned(),
    };
    let candidates: Vec<(String, String)> = if target.is_empty() || target == "HEAD" {
        vec![(REMOTE_HEAD.to_owned(), "HEAD".to_owned())]
    } else if target.starts_with("refs/") {
        vec![(target.to_owned(), target.to_owned())]
    } else {
        ["refs/heads/", "refs/tags/"]
            .iter()
            .map(|prefix| {
                let name = format!("{prefix}{target}");
                (name.clone(), name)
            })
            .collect()
    };
    for (local, shown) in candidates {
        if gix::refs::FullName::try_from(local.as_str()).is_err() {
            // Not a valid ref name, so no such ref can exist.
            continue;
        }
        let found = repo
            .try_find_reference(local.as_str())
            .map_err(|err| mirror_error(url, &format!("reference {shown}"), &err))?;
        if let Some(mut reference) = found {
            let id = match reference.peel_to_id() {
                Ok(id) => id.detach(),
                // A symbolic ref to a branch that does not exist yet: an empty repository.
                Err(err) if err.is_not_found() => return Err(not_found()),
                Err(err) => return Err(mirror_error(url, &format!("reference {shown}"), &err)),
            };
            return commit_info(repo, url, target, id, Some(shown));
        }
    }
    if is_sha_like(target) {
        let id = lookup_sha(repo, url, target)?.ok_or_else(not_found)?;
        return commit_info(repo, url, target, id, None);
    }
    Err(not_found())
}

/// Names of the mirror's tags, without `refs/tags/`, sorted; names that are not UTF-8 are
/// skipped.
pub(crate) fn tags(repo: &gix::Repository, url: &RepoUrl) -> Result<Vec<String>, Error> {
    let references = repo
        .references()
        .map_err(|err| mirror_error(url, "tags", &err))?;
    let mut names = Vec::new();
    for reference in references
        .tags()
        .map_err(|err| mirror_error(url, "tags", &err))?
    {
        let reference = reference.map_err(|err| mirror_error(url, "tags", &err))?;
        let name = reference.name().as_bstr();
        if let Some(tag) = name.strip_prefix(b"refs/tags/".as_slice())
            && let Ok(tag) = tag.to_str()
        {
            names.push(tag.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn is_sha_like(s: &str) -> bool {
    (4..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn lookup_sha(
    repo: &gix::Repository,
    url: &RepoUrl,
    target: &str,
) -> Result<Option<gix::ObjectId>, Error> {
    let lower = target.to_ascii_lowercase();
    if lower.len() == 40 {
        let id = gix::ObjectId::from_hex(lower.as_bytes()).map_err(|err| Error::Mirror {
            url: url.redacted.clone(),
            what: format!("revision {target:?}"),
            source: GitError::scrubbed(&err, &[]),
        })?;
        return Ok(repo.has_object(id).then_some(id));
    }
    let prefix = gix::hash::Prefix::from_hex(&lower).map_err(|err| Error::Mirror {
        url: url.redacted.clone(),
        what: format!("revision {target:?}"),
        source: GitError::scrubbed(&err, &[]),
    })?;
    match repo
        .objects
        .lookup_prefix(prefix, None)
        .map_err(|err| mirror_error(url, &format!("revision {target:?}"), &err))?
    {
        None => Ok(None),
        Some(Ok(id)) => Ok(Some(id)),
        Some(Err(())) => Err(Error::AmbiguousRevision {
            url: url.redacted.clone(),
            revision: target.to_owned(),
        }),
    }
}

fn commit_info(
    repo: &gix::Repository,
    url: &RepoUrl,
    target: &str,
    id: gix::ObjectId,
    reference: Option<String>,
) -> Result<Revision, Error> {
    let what = || format!("commit of revision {target:?}");
    let object = repo
        .find_object(id)
        .map_err(|err| mirror_error(url, &what(), &err))?;
    let kind = object.kind;
    let commit = object.peel_to_commit().map_err(|_| Error::NotACommit {
        url: url.redacted.clone(),
        revision: target.to_owned(),
        kind: kind.to_string(),
    })?;
    let author = commit
        .author()
        .map_err(|err| mirror_error(url, &what(), &err))?;
    Ok(Revision {
        sha: commit.id.to_string(),
        reference,
        message: commit.message_raw_sloppy().to_str_lossy().into_owned(),
        author_name: author.name.trim().to_str_lossy().into_owned(),
        author_email: author.email.trim().to_str_lossy().into_owned(),
        author_time: author.seconds(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_like_needs_hex_and_length() {
        assert!(is_sha_like("abcd"));
        assert!(is_sha_like("ABCDEF0123"));
        assert!(!is_sha_like("abc"));
        assert!(!is_sha_like("main"));
        assert!(!is_sha_like(&"a".repeat(41)));
    }
}
