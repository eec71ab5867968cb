//! Errors of the Git source layer.
//!
//! Every variant that concerns a repository carries its URL with any userinfo
//! removed; messages coming from gix are rendered once into [`GitError`] and
//! scrubbed of the caller's secrets, so neither errors nor logs can leak them.

use std::path::PathBuf;

/// An error of [`crate::Repositories`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be parsed or is empty.
    #[error("invalid repository url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The URL uses a transport this crate does not handle.
    #[error("not supported yet: {what} (repository {url})")]
    Unsupported { url: String, what: String },

    /// The repository could not be reached or read (DNS, connection, missing path, server error).
    #[error("repository {url} is unreachable")]
    Unreachable {
        url: String,
        #[source]
        source: GitError,
    },

    /// The server refused the credentials, or asked for credentials and none were given.
    #[error("authentication failed for repository {url}")]
    AuthFailed {
        url: String,
        #[source]
        source: GitError,
    },

    /// The connection worked but receiving objects or updating the mirror failed.
    #[error("fetching from {url} failed")]
    Fetch {
        url: String,
        #[source]
        source: GitError,
    },

    /// The target revision names no branch, tag or commit of the repository.
    #[error("revision {revision:?} not found in {url}")]
    RevisionNotFound { url: String, revision: String },

    /// A short SHA matched more than one object.
    #[error("revision {revision:?} is ambiguous in {url}")]
    AmbiguousRevision { url: String, revision: String },

    /// The target revision exists but names a tree or blob, not a commit.
    #[error("revision {revision:?} in {url} is a {kind}, not a commit")]
    NotACommit {
        url: String,
        revision: String,
        kind: String,
    },

    /// Reading the local mirror failed (missing object, corrupt data).
    #[error("reading {what} from the mirror of {url} failed")]
    Mirror {
        url: String,
        what: String,
        #[source]
        source: GitError,
    },

    /// A [`crate::Revision`] passed in does not carry a full commit SHA.
    #[error("invalid commit sha {sha:?}: expected 40 hexadecimal characters")]
    InvalidSha { sha: String },

    /// A file of the commit is larger than [`crate::Options::max_file_bytes`].
    #[error("file {path:?} in commit {sha} is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        sha: String,
        path: String,
        size: u64,
        limit: u64,
    },

    /// The commit's files add up to more than [`crate::Options::max_snapshot_bytes`].
    #[error("commit {sha} exceeds the snapshot size limit of {limit} bytes at file {path:?}")]
    SnapshotTooLarge {
        sha: String,
        path: String,
        limit: u64,
    },

    /// The commit has more entries than [`crate::Options::max_files`].
    #[error("commit {sha} exceeds the limit of {limit} files at {path:?}")]
    TooManyFiles {
        sha: String,
        path: String,
        limit: usize,
    },

    /// A tree entry name that cannot be written safely (`..`, `/`, NUL, duplicates).
    #[error("commit {sha} has an unsafe path {path:?}: {reason}")]
    UnsafePath {
        sha: String,
        path: String,
        reason: &'static str,
    },

    /// [`crate::Options::extra_ca_certificates_pem`] is not a PEM bundle of certificates.
    #[error("invalid extra ca certificates")]
    InvalidCaCertificates {
        #[source]
        source: GitError,
    },

    /// A local file system operation failed.
    #[error("{action} {path:?} failed")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: IoError,
    },
}

/// A rendered error from gix, free of secrets.
///
/// gix errors are neither `Clone` nor guaranteed to keep credentials out of
/// their text, so they are rendered (with their causes) and scrubbed once.
/// Being `Clone` lets a failed fetch be reported to every caller that shared it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GitError(pub(crate) String);

impl GitError {
    /// Render `err` and its causes, replacing each of `secrets` with `***`.
    pub(crate) fn scrubbed(err: &(dyn std::error::Error + 'static), secrets: &[&str]) -> Self {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        Self(scrub(text, secrets))
    }

    /// Render a gix error with its chain of causes.
    pub(crate) fn from_gix(err: &gix::Error, secrets: &[&str]) -> Self {
        Self::scrubbed(err, secrets)
    }
}

fn scrub(mut text: String, secrets: &[&str]) -> String {
    for secret in secrets {
        // Very short secrets would blank out ordinary words; they are still never
        // formatted into our own messages, which is what keeps them out.
        if secret.len() >= 4 {
            text = text.replace(secret, "***");
        }
    }
    text
}

/// A cloneable I/O error (kind and text), so [`Error`] stays `Clone`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IoError {
    pub kind: std::io::ErrorKind,
    pub message: String,
}

impl From<std::io::Error> for IoError {
    fn from(err: std::io::Error) -> Self {
        Self {
            kind: err.kind(),
            message: err.to_string(),
        }
    }
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source: err.into(),
        }
    }

    /// The (redacted) repository URL this error is about, if any.
    pub fn url(&self) -> Option<&str> {
        match self {
            Error::InvalidUrl { url, .. }
            | Error::Unsupported { url, .. }
            | Error::Unreachable { url, .. }
            | Error::AuthFailed { url, .. }
            | Error::Fetch { url, .. }
            | Error::RevisionNotFound { url, .. }
            | Error::AmbiguousRevision { url, .. }
            | Error::NotACommit { url, .. }
            | Error::Mirror { url, .. } => Some(url),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_every_secret() {
        let err = std::io::Error::other("token s3cr3t-token rejected for s3cr3t-token");
        let rendered = GitError::scrubbed(&err, &["s3cr3t-token"]);
        assert_eq!(rendered.0, "token *** rejected for ***");
    }

    #[test]
    fn scrubbed_includes_causes_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("inner pw1234"));
        assert_eq!(GitError::scrubbed(&err, &["pw1234"]).0, "outer: inner ***");
    }
}
