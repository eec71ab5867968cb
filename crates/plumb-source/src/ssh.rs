//! Running OpenSSH for `ssh://` and `user@host:path` repositories.
//!
//! gix spawns the ssh client itself; this module only builds the command it
//! runs (`core.sshCommand`): never interactive, with the caller's private key
//! in a short-lived 0600 file and, when configured, plumb's own known-hosts
//! file with strict host key checking.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::error::GitError;
use crate::url::RepoUrl;

/// How every ssh fetch runs.
#[derive(Debug, Clone)]
pub(crate) struct SshSettings {
    pub program: PathBuf,
    /// plumb's known-hosts file, if [`crate::Options::ssh_known_hosts`] was given.
    pub known_hosts: Option<PathBuf>,
    /// Where private keys are written for the duration of one fetch.
    pub key_dir: PathBuf,
}

/// A private key on disk for one fetch; the file is removed on drop.
pub(crate) struct KeyFile(#[allow(dead_code)] tempfile::NamedTempFile);

/// Point `repo`'s ssh at `settings` (and `private_key`, if any).
pub(crate) fn configure(
    repo: &mut gix::Repository,
    url: &RepoUrl,
    settings: &SshSettings,
    private_key: Option<&str>,
) -> Result<Option<KeyFile>, Error> {
    let mut command = vec![quote(&settings.program), "-o BatchMode=yes".to_owned()];
    if let Some(known_hosts) = &settings.known_hosts {
        command.push(format!(
            "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
            quote(known_hosts)
        ));
    }
    let key_file = match private_key {
        None => None,
        Some(key) => {
            // tempfile creates files readable by the owner only, which ssh insists on.
            let mut file = tempfile::Builder::new()
                .prefix("key-")
                .tempfile_in(&settings.key_dir)
                .map_err(|err| {
                    Error::io("creating a key file in", settings.key_dir.as_path(), err)
                })?;
            let mut key = key.trim_end().to_owned();
            key.push('\n');
            file.write_all(key.as_bytes())
                .map_err(|err| Error::io("writing", file.path(), err))?;
            command.push(format!("-i {} -o IdentitiesOnly=yes", quote(file.path())));
            Some(KeyFile(file))
        }
    };
    let overrides = [
        format!("core.sshCommand={}", command.join(" ")),
        // The command is not named `ssh`, so say which argument dialect it speaks.
        "ssh.variant=ssh".to_owned(),
    ];
    let mut config = repo.config_snapshot_mut();
    config
        .append_config(
            overrides.iter().map(String::as_str),
            gix::config::Source::Api,
        )
        .map_err(|err| Error::Mirror {
            url: url.redacted.clone(),
            what: "the ssh configuration".into(),
            source: GitError::from_gix(&err, &[]),
        })?;
    config.commit().map_err(|err| Error::Mirror {
        url: url.redacted.clone(),
        what: "the ssh configuration".into(),
        source: GitError::from_gix(&err, &[]),
    })?;
    Ok(key_file)
}

/// Quote `path` for the POSIX shell gix runs `core.sshCommand` with.
fn quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_survives_spaces_and_quotes() {
        assert_eq!(quote(Path::new("/a b/c")), "'/a b/c'");
        assert_eq!(quote(Path::new("/it's")), r"'/it'\''s'");
    }
}
