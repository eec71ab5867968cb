//! plumb-source: the Git source layer of plumb.
//!
//! It owns everything between a repository URL plus `targetRevision` and a
//! directory of files the renderer can read:
//!
//! - one bare mirror per repository URL under [`Options::cache_dir`], fetched
//!   with gix: `file://` and plain paths (gix runs `git-upload-pack`),
//!   `http(s)://` with basic or token credentials and optional private CAs,
//!   `ssh://` and `user@host:path` with a private key and known hosts (gix runs
//!   OpenSSH `ssh`);
//! - resolution of branches, tags, full or short SHAs and `HEAD` to a commit
//!   ([`Revision`]);
//! - immutable per-commit snapshots of the tree on disk ([`Snapshot`]), with
//!   size and file-count limits and symlinks kept as symlinks.
//!
//! Start at [`Repositories`]: create one per controller with
//! [`Repositories::new`], call [`Repositories::resolve`] on each reconcile and
//! [`Repositories::snapshot`] with the revision it returns. The API is
//! blocking (call it from `spawn_blocking`) and `Repositories` is
//! `Send + Sync`: concurrent callers for one URL wait for and share a single
//! fetch.
//!
//! Credentials are never written into errors or logs; URLs in errors have
//! their userinfo replaced by `***`.

mod error;
mod fetch;
pub mod helm;
mod resolve;
mod snapshot;
mod ssh;
mod url;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use error::{Error, GitError, IoError};
pub use resolve::Revision;
pub use snapshot::Snapshot;

use fetch::{TransportSettings, Wanted};
use ssh::SshSettings;
use url::RepoUrl;

/// Limits and locations for [`Repositories`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Holds `repos/<mirror>` and `snapshots/<sha>`; created when missing. One
    /// [`Repositories`] at a time owns it: creating one removes temporary directories
    /// left there by a crash.
    pub cache_dir: PathBuf,
    /// The largest single file (or symlink target) a snapshot accepts.
    pub max_file_bytes: u64,
    /// The largest sum of file sizes a snapshot accepts.
    pub max_snapshot_bytes: u64,
    /// The most files, symlinks and directories a snapshot accepts.
    pub max_files: usize,
    /// PEM bundle of CA certificates trusted for `https://` in addition to the
    /// platform's roots (self-signed or private Git servers; Argo CD's
    /// `argocd-tls-certs-cm` certificates concatenated). Empty for none.
    pub extra_ca_certificates_pem: Vec<u8>,
    /// Lines of an OpenSSH `known_hosts` file (Argo CD's `argocd-ssh-known-hosts-cm`).
    /// When given, ssh checks host keys strictly against exactly these; when empty,
    /// ssh's own defaults apply (`~/.ssh/known_hosts`, unknown hosts refused).
    pub ssh_known_hosts: Vec<u8>,
    /// The OpenSSH client to run; `ssh` from `PATH` by default.
    pub ssh_program: PathBuf,
}

impl Options {
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
    pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 512 * 1024 * 1024;
    pub const DEFAULT_MAX_FILES: usize = 100_000;

    /// Options with the default limits (10 MiB per file, 512 MiB and 100,000 entries per snapshot).
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            max_snapshot_bytes: Self::DEFAULT_MAX_SNAPSHOT_BYTES,
            max_files: Self::DEFAULT_MAX_FILES,
            extra_ca_certificates_pem: Vec::new(),
            ssh_known_hosts: Vec::new(),
            ssh_program: PathBuf::from("ssh"),
        }
    }
}

/// How to authenticate to a repository. Ignored for `file://` and local paths.
///
/// Credentials belong to a URL, as in Argo CD's repository secrets: callers sharing
/// a fetch within a [`FetchPolicy::IfOlderThan`] window share its result.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    /// HTTP basic authentication.
    Basic {
        username: String,
        password: String,
    },
    /// A personal access or app token, sent as the basic-auth password (GitHub, GitLab,
    /// Gitea and Bitbucket accept this form).
    Token(String),
    /// A token sent as `Authorization: Bearer <token>` over `http(s)://` (Flux's
    /// `bearerToken`).
    Bearer(String),
    /// An OpenSSH private key (PEM/OpenSSH text, no passphrase) for `ssh://` and
    /// `user@host:path` URLs, like Argo CD's `sshPrivateKey`.
    SshPrivateKey(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"***")
                .finish(),
            Credentials::Token(_) => f.write_str("Token(***)"),
            Credentials::Bearer(_) => f.write_str("Bearer(***)"),
            Credentials::SshPrivateKey(_) => f.write_str("SshPrivateKey(***)"),
        }
    }
}

/// When [`Repositories::resolve`] talks to the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPolicy {
    /// Fetch unless a fetch that started after this call began already finished (hard refresh).
    Always,
    /// Reuse the outcome of a fetch started less than this long ago (normal polling:
    /// every Application on one repository shares one fetch per window). A failed
    /// fetch is reused too, so an unreachable server is asked once per window.
    IfOlderThan(Duration),
}

/// Counters for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Fetches attempted (the first one of a URL is the clone), failed ones included.
    pub fetches: u64,
    /// Snapshots written to disk.
    pub snapshots_written: u64,
    /// Snapshot calls answered by an existing directory.
    pub snapshots_reused: u64,
}

/// The Git source of one controller: mirrors, fetch sharing and snapshots.
pub struct Repositories {
    options: Options,
    repos_dir: PathBuf,
    snapshots_dir: PathBuf,
    mirrors: Mutex<HashMap<String, Arc<Mutex<MirrorState>>>>,
    snapshot_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    fetches: AtomicU64,
    snapshots_written: AtomicU64,
    snapshots_reused: AtomicU64,
    transport: TransportSettings,
}

#[derive(Default)]
struct MirrorState {
    repo: Option<gix::ThreadSafeRepository>,
    /// When the last fetch began and how it ended.
    last_fetch: Option<(Instant, Result<(), Error>)>,
    /// Whether sending credentials over plain `http://` was logged for this URL.
    warned_cleartext: bool,
    /// Full SHAs fetched one by one since the last full fetch, so that a SHA the
    /// server does not have is asked for once per fetch, not once per caller.
    commits_tried: HashSet<String>,
}

impl Repositories {
    /// Create the cache directories; no repository is touched yet.
    pub fn new(options: Options) -> Result<Self, Error> {
        // gix's HTTP client uses rustls without a built-in provider; a binary that already
        // installed one keeps it (the call then fails harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let repos_dir = options.cache_dir.join("repos");
        let snapshots_dir = options.cache_dir.join("snapshots");
        for dir in [&repos_dir, &snapshots_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|err| Error::io("creating", dir.as_path(), err))?;
        }
        let extra_roots = if options.extra_ca_certificates_pem.is_empty() {
            Vec::new()
        } else {
            let roots = reqwest::Certificate::from_pem_bundle(&options.extra_ca_certificates_pem)
                .map_err(|err| Error::InvalidCaCertificates {
                source: GitError::scrubbed(&err, &[]),
            })?;
            if roots.is_empty() {
                return Err(Error::InvalidCaCertificates {
                    source: GitError("no PEM certificate found".into()),
                });
            }
            roots
        };
        let ssh_dir = options.cache_dir.join("ssh");
        let ssh_program = options.ssh_program.clone();
        create_private_dir(&ssh_dir)?;
        remove_stale_temp_dirs(&snapshots_dir);
        remove_stale_temp_dirs(&repos_dir);
        remove_stale_key_files(&ssh_dir);
        let known_hosts = if options.ssh_known_hosts.is_empty() {
            None
        } else {
            let path = ssh_dir.join("known_hosts");
            std::fs::write(&path, &options.ssh_known_hosts)
                .map_err(|err| Error::io("writing", path.as_path(), err))?;
            Some(path)
        };
        Ok(Self {
            options,
            repos_dir,
            snapshots_dir,
            mirrors: Mutex::default(),
            snapshot_locks: Mutex::default(),
            fetches: AtomicU64::new(0),
            snapshots_written: AtomicU64::new(0),
            snapshots_reused: AtomicU64::new(0),
            transport: TransportSettings {
                extra_roots,
                ssh: SshSettings {
                    program: ssh_program,
                    known_hosts,
                    key_dir: ssh_dir,
                },
            },
        })
    }

    /// The options this instance was created with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Counters since creation.
    pub fn stats(&self) -> Stats {
        Stats {
            fetches: self.fetches.load(Ordering::Relaxed),
            snapshots_written: self.snapshots_written.load(Ordering::Relaxed),
            snapshots_reused: self.snapshots_reused.load(Ordering::Relaxed),
        }
    }

    /// Fetch the repository (cloning it the first time) as `policy` allows and resolve
    /// `target_revision`: a branch, a tag, a full ref name, a full or short commit SHA, or
    /// `""`/`"HEAD"` for the remote's default branch.
    pub fn resolve(
        &self,
        url: &str,
        target_revision: &str,
        credentials: &Credentials,
        policy: FetchPolicy,
    ) -> Result<Revision, Error> {
        let called = Instant::now();
        let url = RepoUrl::parse(url)?;
        let entry = self.mirror_entry(&url);
        let mut state = lock(&entry);
        let repo = self.open_mirror(&mut state, &url)?;

        let reuse = match (&state.last_fetch, policy) {
            (None, _) => false,
            (Some((started, _)), FetchPolicy::Always) => *started >= called,
            (Some((started, _)), FetchPolicy::IfOlderThan(window)) => started.elapsed() < window,
        };
        if reuse {
            if let Some((_, Err(err))) = &state.last_fetch {
                return Err(err.clone());
            }
        } else {
            if url.transport == url::Transport::Http
                && url.raw.starts_with("http://")
                && *credentials != Credentials::None
                && !state.warned_cleartext
            {
                state.warned_cleartext = true;
                tracing::warn!(url = %url.redacted, "sending credentials over plain http; use https");
            }
            let started = Instant::now();
            self.fetches.fetch_add(1, Ordering::Relaxed);
            let outcome = fetch::fetch(
                &repo.to_thread_local(),
                &url,
                credentials,
                Wanted::Everything,
                &self.transport,
            );
            state.commits_tried.clear();
            match &outcome {
                Ok(()) => {
                    tracing::debug!(url = %url.redacted, elapsed = ?started.elapsed(), "fetched")
                }
                Err(err) => tracing::warn!(url = %url.redacted, error = %err, "fetch failed"),
            }
            state.last_fetch = Some((started, outcome.clone()));
            outcome?;
        }
        let local = repo.to_thread_local();
        match resolve::resolve(&local, &url, target_revision) {
            Err(Error::RevisionNotFound { .. })
                if parse_full_sha(&target_revision.trim().to_ascii_lowercase()).is_ok()
                    && state
                        .commits_tried
                        .insert(target_revision.trim().to_ascii_lowercase()) =>
            {
                // A commit no branch or tag reaches, e.g. on a deleted or pull-request branch.
                let sha = target_revision.trim().to_ascii_lowercase();
                self.fetches.fetch_add(1, Ordering::Relaxed);
                if let Err(err) = fetch::fetch(
                    &local,
                    &url,
                    credentials,
                    Wanted::Commit(&sha),
                    &self.transport,
                ) {
                    tracing::debug!(url = %url.redacted, sha, error = %err, "fetching a single commit failed");
                }
                resolve::resolve(&local, &url, target_revision)
            }
            other => other,
        }
    }

    /// The repository's tag names (without `refs/tags/`), sorted, after fetching as `policy`
    /// allows; the fetch is the one [`Self::resolve`] makes and shares. Used to pick a tag by
    /// a version range (Flux's `ref.semver`).
    pub fn tags(
        &self,
        url: &str,
        credentials: &Credentials,
        policy: FetchPolicy,
    ) -> Result<Vec<String>, Error> {
        match self.resolve(url, "HEAD", credentials, policy) {
            // A repository without a default branch may still have tags.
            Ok(_) | Err(Error::RevisionNotFound { .. }) => {}
            Err(err) => return Err(err),
        }
        let url = RepoUrl::parse(url)?;
        let repo = {
            let entry = self.mirror_entry(&url);
            let mut state = lock(&entry);
            self.open_mirror(&mut state, &url)?
        };
        resolve::tags(&repo.to_thread_local(), &url)
    }

    /// The files of `revision` (as returned by [`Self::resolve`] for `url`), written once to
    /// `cache_dir/snapshots/<sha>/` and reused afterwards. Fails, naming the path, when a file
    /// or the whole tree is over the limits of [`Options`].
    pub fn snapshot(&self, url: &str, revision: &Revision) -> Result<Snapshot, Error> {
        let sha = revision.sha.as_str();
        let commit = parse_full_sha(sha)?;
        let dest = self.snapshots_dir.join(sha);
        let done = |written: bool| {
            let counter = if written {
                &self.snapshots_written
            } else {
                &self.snapshots_reused
            };
            counter.fetch_add(1, Ordering::Relaxed);
            Snapshot {
                revision: sha.to_owned(),
                root: dest.clone(),
            }
        };
        if dest.is_dir() {
            return Ok(done(false));
        }

        let url = RepoUrl::parse(url)?;
        let repo = {
            let entry = self.mirror_entry(&url);
            let mut state = lock(&entry);
            self.open_mirror(&mut state, &url)?
        };
        let sha_lock = {
            let mut locks = lock(&self.snapshot_locks);
            Arc::clone(locks.entry(sha.to_owned()).or_default())
        };
        let result = {
            let _writing = lock(&sha_lock);
            if dest.is_dir() {
                Ok(false)
            } else {
                let started = Instant::now();
                let written = snapshot::write(
                    &repo.to_thread_local(),
                    &url,
                    sha,
                    commit,
                    &dest,
                    &self.options,
                );
                tracing::debug!(url = %url.redacted, sha, elapsed = ?started.elapsed(), ok = written.is_ok(), "snapshot");
                written
            }
        };
        lock(&self.snapshot_locks).remove(sha);
        result.map(done)
    }

    /// Delete every snapshot whose SHA is not in `keep`; returns how many were removed.
    ///
    /// Only call this when no renderer is reading a snapshot that is not kept.
    pub fn remove_snapshots_except(&self, keep: &[&str]) -> Result<usize, Error> {
        let entries = std::fs::read_dir(&self.snapshots_dir)
            .map_err(|err| Error::io("listing", self.snapshots_dir.as_path(), err))?;
        let mut removed = 0;
        for entry in entries {
            let entry =
                entry.map_err(|err| Error::io("listing", self.snapshots_dir.as_path(), err))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if parse_full_sha(name).is_err() || keep.contains(&name) {
                continue;
            }
            std::fs::remove_dir_all(entry.path())
                .map_err(|err| Error::io("removing", entry.path(), err))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Delete the mirror of every repository not in `keep` (URLs as passed to
    /// [`Self::resolve`]); returns how many were removed. A removed repository is
    /// cloned again if it is resolved later.
    ///
    /// Call it when no resolve of a repository that is not kept is running. Invalid
    /// URLs in `keep` are ignored: they have no mirror.
    pub fn remove_mirrors_except(&self, keep: &[&str]) -> Result<usize, Error> {
        let keep: HashSet<String> = keep
            .iter()
            .filter_map(|url| RepoUrl::parse(url).ok())
            .map(|url| url.mirror_dir_name())
            .collect();
        // Forget cached handles first so no caller keeps using a deleted directory.
        lock(&self.mirrors).retain(|url, _| {
            RepoUrl::parse(url).is_ok_and(|url| keep.contains(&url.mirror_dir_name()))
        });
        let entries = std::fs::read_dir(&self.repos_dir)
            .map_err(|err| Error::io("listing", self.repos_dir.as_path(), err))?;
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|err| Error::io("listing", self.repos_dir.as_path(), err))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') || keep.contains(name) {
                continue;
            }
            std::fs::remove_dir_all(entry.path())
                .map_err(|err| Error::io("removing", entry.path(), err))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// The on-disk mirror directory of `url` (for diagnostics).
    pub fn mirror_dir(&self, url: &str) -> Result<PathBuf, Error> {
        Ok(self.repos_dir.join(RepoUrl::parse(url)?.mirror_dir_name()))
    }

    fn mirror_entry(&self, url: &RepoUrl) -> Arc<Mutex<MirrorState>> {
        let mut mirrors = lock(&self.mirrors);
        Arc::clone(mirrors.entry(url.raw.clone()).or_default())
    }

    fn open_mirror(
        &self,
        state: &mut MirrorState,
        url: &RepoUrl,
    ) -> Result<gix::ThreadSafeRepository, Error> {
        if let Some(repo) = &state.repo {
            return Ok(repo.clone());
        }
        let dir = self.repos_dir.join(url.mirror_dir_name());
        let repo = fetch::open_or_init(&dir, url)?;
        state.repo = Some(repo.clone());
        Ok(repo)
    }
}

/// Lock, ignoring poisoning: the guarded state stays consistent because every
/// update is a single assignment after the fallible work is done.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn parse_full_sha(sha: &str) -> Result<gix::ObjectId, Error> {
    let invalid = || Error::InvalidSha {
        sha: sha.to_owned(),
    };
    if sha.len() != 40
        || !sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid());
    }
    gix::ObjectId::from_hex(sha.as_bytes()).map_err(|_| invalid())
}

/// A directory only this user can enter: it holds private keys while ssh runs.
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|err| Error::io("creating", dir, err))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|err| Error::io("setting permissions of", dir, err))?;
    }
    Ok(())
}

/// Private keys left behind by a crash during an ssh fetch.
fn remove_stale_key_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("key-")
            && let Err(err) = std::fs::remove_file(entry.path())
        {
            tracing::warn!(path = %entry.path().display(), error = %err, "could not remove a stale key file");
        }
    }
}

/// Leftovers of a crash between creating a temp dir and renaming it.
fn remove_stale_temp_dirs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if (name.starts_with(".tmp-") || name.starts_with(".init-"))
            && let Err(err) = std::fs::remove_dir_all(entry.path())
        {
            tracing::warn!(path = %entry.path().display(), error = %err, "could not remove a stale temporary directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sha_must_be_lowercase_hex_of_40() {
        assert!(parse_full_sha(&"a".repeat(40)).is_ok());
        assert!(parse_full_sha(&"A".repeat(40)).is_err());
        assert!(parse_full_sha("../../etc").is_err());
        assert!(parse_full_sha(&"a".repeat(39)).is_err());
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let basic = Credentials::Basic {
            username: "bob".into(),
            password: "hunter22".into(),
        };
        let shown = format!("{basic:?} {:?}", Credentials::Token("tok-123456".into()));
        assert!(
            !shown.contains("hunter22") && !shown.contains("tok-123456"),
            "{shown}"
        );
        assert!(shown.contains("bob"));
    }

    #[test]
    fn repositories_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Repositories>();
    }
}
