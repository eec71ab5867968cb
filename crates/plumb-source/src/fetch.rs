//! Keeping a bare mirror of a remote repository up to date with gix.
//!
//! The mirror holds the remote's branches under `refs/heads/*`, its tags under
//! `refs/tags/*` (both forced, so moved tags and rewritten branches follow the
//! remote, as Argo CD's `git fetch --force --prune` does) and the remote's
//! default branch as [`REMOTE_HEAD`]. Refs the remote no longer has are pruned.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use gix::bstr::ByteSlice;
use gix::remote::Direction;

use crate::error::GitError;
use crate::ssh::{self, SshSettings};
use crate::url::{RepoUrl, Transport};
use crate::{Credentials, Error};

/// The mirror's copy of the remote `HEAD`, i.e. its default branch tip.
pub(crate) const REMOTE_HEAD: &str = "refs/plumb/remote-head";

/// Branches and tags are mirrored as they are on the remote; `HEAD` becomes [`REMOTE_HEAD`].
const REFSPECS: [&str; 3] = [
    "+refs/heads/*:refs/heads/*",
    "+refs/tags/*:refs/tags/*",
    "+HEAD:refs/plumb/remote-head",
];

/// What a fetch asks the remote for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wanted<'a> {
    /// All branches, tags and `HEAD`, pruning refs the remote dropped.
    Everything,
    /// One commit by its full SHA, for commits no branch or tag reaches (anymore).
    /// Servers may refuse this; git's own upload-pack allows it with protocol v2.
    Commit(&'a str),
}

/// How each transport is set up, the same for every fetch.
pub(crate) struct TransportSettings {
    /// CA certificates trusted for https besides the platform's.
    pub extra_roots: Vec<reqwest::Certificate>,
    pub ssh: SshSettings,
}

/// Username sent with [`Credentials::Token`]; servers that accept tokens ignore it.
const TOKEN_USERNAME: &str = "x-access-token";

/// Config applied to every mirror, independent of the user's and system's git config.
///
/// A stalled HTTP server is bounded by gix's reqwest client itself (20 s to connect,
/// reqwest's 30 s per read); `http.lowSpeed*` would only apply to gix's curl backend.
fn config_overrides() -> Vec<&'static str> {
    // Never try to prompt: there is nobody at a terminal in a controller.
    vec!["core.askPass=", "credential.helper="]
}

/// Open the mirror at `dir`, creating it the first time.
pub(crate) fn open_or_init(dir: &Path, url: &RepoUrl) -> Result<gix::ThreadSafeRepository, Error> {
    let options = || gix::open::Options::isolated().config_overrides(config_overrides());
    if dir.join("HEAD").is_file() {
        match gix::open_opts(dir, options()) {
            Ok(repo) => return Ok(repo.into_sync()),
            // The mirror is only a cache of the remote: a broken one is replaced, not repaired.
            Err(err) => tracing::warn!(
                url = %url.redacted,
                dir = %dir.display(),
                error = %GitError::from_gix(&err, &[]),
                "the mirror cannot be opened; cloning it again"
            ),
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|err| Error::io("removing", dir, err))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|err| Error::io("creating", parent, err))?;
    }
    // Init into a sibling temp dir and rename, so a crash never leaves a mirror that looks valid.
    let parent = dir.parent().unwrap_or(dir);
    let tmp = tempfile::Builder::new()
        .prefix(".init-")
        .tempdir_in(parent)
        .map_err(|err| Error::io("creating a temporary directory in", parent, err))?;
    gix::init_bare(tmp.path()).map_err(|err| mirror_error(url, "a new mirror repository", &err))?;
    let tmp_path = tmp.keep();
    if let Err(err) = std::fs::rename(&tmp_path, dir) {
        let _ = std::fs::remove_dir_all(&tmp_path);
        return Err(Error::io("renaming a new mirror to", dir, err));
    }
    gix::open_opts(dir, options())
        .map(gix::Repository::into_sync)
        .map_err(|err| mirror_error(url, "the mirror repository", &err))
}

/// Fetch `wanted` into the mirror; for [`Wanted::Everything`] also prune refs the remote no longer has.
pub(crate) fn fetch(
    repo: &gix::Repository,
    url: &RepoUrl,
    credentials: &Credentials,
    wanted: Wanted<'_>,
    settings: &TransportSettings,
) -> Result<(), Error> {
    let secrets = secrets(url, credentials);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    // Held until the fetch is over: ssh reads the key when gix spawns it.
    let mut _key_file = None;
    let mut ssh_repo;
    let repo = match (url.transport, credentials) {
        (
            Transport::Ssh,
            Credentials::Basic { .. } | Credentials::Token(_) | Credentials::Bearer(_),
        ) => {
            return Err(Error::Unsupported {
                url: url.redacted.clone(),
                what: "username/password or token credentials over ssh (use an ssh private key)"
                    .into(),
            });
        }
        (Transport::Ssh, _) => {
            let key = match credentials {
                Credentials::SshPrivateKey(key) => Some(key.as_str()),
                _ => None,
            };
            ssh_repo = repo.clone();
            _key_file = ssh::configure(&mut ssh_repo, url, &settings.ssh, key)?;
            &ssh_repo
        }
        (_, Credentials::SshPrivateKey(_)) => {
            return Err(Error::Unsupported {
                url: url.redacted.clone(),
                what: "ssh private keys for a repository that is not reached over ssh".into(),
            });
        }
        _ => repo,
    };

    let refspecs: Vec<String> = match wanted {
        Wanted::Everything => REFSPECS.iter().map(|s| (*s).to_owned()).collect(),
        // Kept under a ref of its own so the commit stays in the mirror.
        Wanted::Commit(sha) => vec![format!("+{sha}:refs/plumb/commits/{sha}")],
    };
    let remote = repo
        .remote_at_without_url_rewrite(url.raw.as_str())
        .and_then(|remote| {
            remote.with_refspecs(refspecs.iter().map(String::as_str), Direction::Fetch)
        })
        .map(|remote| remote.with_fetch_tags(gix::remote::fetch::Tags::None))
        .map_err(|err| Error::InvalidUrl {
            url: url.redacted.clone(),
            reason: GitError::from_gix(&err, &secrets).to_string(),
        })?;

    let connection = remote
        .connect(Direction::Fetch)
        .map_err(|err| connect_error(url, credentials, &err, &secrets))?;
    let connection = match http_options(repo, url, &settings.extra_roots, credentials)? {
        Some(options) => connection.with_transport_options(options),
        None => connection,
    };
    let identity = credentials.account();
    let connection = connection.with_credentials(move |action| {
        use gix::credentials::helper::Action;
        match action {
            Action::Get(context) => {
                Ok(identity
                    .clone()
                    .map(|identity| gix::credentials::protocol::Outcome {
                        identity,
                        next: context.into(),
                    }))
            }
            // Nothing is stored: the caller owns the credentials.
            Action::Store(_) | Action::Erase(_) => Ok(None),
        }
    });
    let prepare = connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(|err| connect_error(url, credentials, &err, &secrets))?;
    let remote_refs: HashSet<Vec<u8>> = prepare
        .ref_map()
        .remote_refs
        .iter()
        .map(|r| r.unpack().0.to_vec())
        .collect();
    let interrupt = AtomicBool::new(false);
    prepare
        .receive(gix::progress::Discard, &interrupt)
        .map_err(|err| {
            if err.is_unauthenticated() {
                auth_error(url, credentials, &err, &secrets)
            } else {
                Error::Fetch {
                    url: url.redacted.clone(),
                    source: GitError::from_gix(&err, &secrets),
                }
            }
        })?;
    match wanted {
        Wanted::Everything => prune(repo, url, &remote_refs, &secrets),
        Wanted::Commit(_) => Ok(()),
    }
}

/// The repository's HTTP options plus `extra_roots` as trusted CAs, or `None` to keep gix's defaults.
fn http_options(
    repo: &gix::Repository,
    url: &RepoUrl,
    extra_roots: &[reqwest::Certificate],
    credentials: &Credentials,
) -> Result<Option<Box<dyn std::any::Any>>, Error> {
    use gix_transport::client::blocking_io::http;
    let bearer = match credentials {
        Credentials::Bearer(token) => Some(token),
        _ => None,
    };
    if url.transport != Transport::Http || (extra_roots.is_empty() && bearer.is_none()) {
        return Ok(None);
    }
    let Some(mut options) = repo
        .transport_options(url.raw.as_str(), None)
        .map_err(|err| mirror_error(url, "the http transport options", &err))?
    else {
        return Ok(None);
    };
    if let Some(http) = options.downcast_mut::<http::Options>() {
        if let Some(token) = bearer {
            http.extra_headers
                .push(format!("Authorization: Bearer {token}"));
        }
        if extra_roots.is_empty() {
            return Ok(Some(options));
        }
        let roots = extra_roots.to_vec();
        let configure: Box<http::reqwest::ConfigureClientFn> =
            Box::new(move |builder| Ok(builder.tls_certs_merge(roots.iter().cloned())));
        http.backend = Some(Arc::new(Mutex::new(http::reqwest::Options {
            configure_client: Some(configure),
            configure_request: None,
        })));
    }
    Ok(Some(options))
}

/// Delete mirrored branches and tags the remote no longer advertises.
fn prune(
    repo: &gix::Repository,
    url: &RepoUrl,
    remote_refs: &HashSet<Vec<u8>>,
    secrets: &[&str],
) -> Result<(), Error> {
    let prune_error = |err: &gix::Error| Error::Fetch {
        url: url.redacted.clone(),
        source: GitError::from_gix(err, secrets),
    };
    let platform = repo.references().map_err(|err| prune_error(&err))?;
    let mut stale = Vec::new();
    for prefix in ["refs/heads/", "refs/tags/"] {
        let refs = platform.prefixed(prefix).map_err(|err| prune_error(&err))?;
        for reference in refs {
            let reference = reference.map_err(|err| prune_error(&err))?;
            let name = reference.name().as_bstr();
            if !remote_refs.contains(name.as_bytes()) {
                stale.push(reference.detach());
            }
        }
    }
    if !remote_refs.contains(b"HEAD".as_slice())
        && let Some(head) = repo
            .try_find_reference(REMOTE_HEAD)
            .map_err(|err| prune_error(&err))?
    {
        stale.push(head.detach());
    }
    for reference in stale {
        tracing::debug!(url = %url.redacted, reference = %reference.name.as_bstr(), "pruning ref gone from remote");
        repo.find_reference(reference.name.as_ref())
            .and_then(|r| r.delete())
            .map_err(|err| prune_error(&err))?;
    }
    Ok(())
}

impl Credentials {
    fn account(&self) -> Option<gix::sec::identity::Account> {
        match self {
            // A bearer token goes in a header of its own (see `http_options`).
            Credentials::None | Credentials::SshPrivateKey(_) | Credentials::Bearer(_) => None,
            Credentials::Basic { username, password } => Some(gix::sec::identity::Account {
                username: username.clone(),
                password: password.clone(),
                oauth_refresh_token: None,
            }),
            Credentials::Token(token) => Some(gix::sec::identity::Account {
                username: TOKEN_USERNAME.into(),
                password: token.clone(),
                oauth_refresh_token: None,
            }),
        }
    }
}

/// Every string that must never show up in an error or log line.
fn secrets(url: &RepoUrl, credentials: &Credentials) -> Vec<String> {
    let mut secrets = url.embedded_secrets.clone();
    match credentials {
        Credentials::None => {}
        Credentials::Basic { password, .. } => secrets.push(password.clone()),
        Credentials::Token(token) | Credentials::Bearer(token) => secrets.push(token.clone()),
        Credentials::SshPrivateKey(key) => secrets.push(key.clone()),
    }
    secrets
}

fn connect_error(
    url: &RepoUrl,
    credentials: &Credentials,
    err: &gix::Error,
    secrets: &[&str],
) -> Error {
    // HTTP 401/403 and ssh's "Permission denied" both surface as PermissionDenied.
    let transport_auth = matches!(url.transport, Transport::Http | Transport::Ssh);
    if err.is_unauthenticated() || (transport_auth && is_auth_failure(err)) {
        auth_error(url, credentials, err, secrets)
    } else {
        Error::Unreachable {
            url: url.redacted.clone(),
            source: GitError::from_gix(err, secrets),
        }
    }
}

fn auth_error(
    url: &RepoUrl,
    credentials: &Credentials,
    err: &gix::Error,
    secrets: &[&str],
) -> Error {
    // gix words these as a broken credential helper; the real causes are simpler.
    let source = match (credentials, url.transport) {
        (Credentials::None, Transport::Ssh) => {
            GitError("the server refused ssh's own keys and no private key is configured".into())
        }
        (Credentials::None, _) => {
            GitError("the server requires credentials and none are configured".into())
        }
        (Credentials::SshPrivateKey(_), _) => {
            GitError("the server refused the ssh private key".into())
        }
        _ => GitError::from_gix(err, secrets),
    };
    Error::AuthFailed {
        url: url.redacted.clone(),
        source,
    }
}

/// Authentication failures surface as `PermissionDenied` I/O errors from the transport.
fn is_auth_failure(err: &gix::Error) -> bool {
    err.is_permission_denied()
        || err
            .iter_errors()
            .filter_map(|e| e.downcast_ref::<std::io::Error>())
            .any(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
}

pub(crate) fn mirror_error(url: &RepoUrl, what: &str, err: &gix::Error) -> Error {
    Error::Mirror {
        url: url.redacted.clone(),
        what: what.to_owned(),
        source: GitError::from_gix(err, &[]),
    }
}
