//! Repository URLs: validation, transport choice, redaction and mirror directory names.

use gix::bstr::ByteSlice;
use sha2::{Digest, Sha256};

use crate::Error;

/// How a repository is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `file://` or a plain path; gix spawns `git-upload-pack`.
    File,
    /// `http://` or `https://`, smart HTTP inside gix.
    Http,
    /// `ssh://` or `user@host:path`; gix spawns `ssh`.
    Ssh,
    /// `git://`, the unauthenticated daemon protocol.
    Git,
}

/// A repository URL as given by the user, checked once.
#[derive(Debug, Clone)]
pub(crate) struct RepoUrl {
    /// The URL as given, trimmed; this is what gix connects to.
    pub raw: String,
    /// The URL without userinfo, safe for errors and logs.
    pub redacted: String,
    /// The password or token embedded in the URL, if any, to scrub from messages.
    pub embedded_secrets: Vec<String>,
    pub transport: Transport,
}

impl RepoUrl {
    pub(crate) fn parse(input: &str) -> Result<Self, Error> {
        let raw = input.trim().trim_end_matches('/').to_owned();
        let redacted = redact(&raw);
        if raw.is_empty() {
            return Err(Error::InvalidUrl {
                url: redacted,
                reason: "the url is empty".into(),
            });
        }
        let parsed =
            gix::url::parse(raw.as_bytes().as_bstr()).map_err(|err| Error::InvalidUrl {
                // The parser quotes its input, which may carry userinfo.
                reason: crate::error::GitError::scrubbed(&err, &[])
                    .to_string()
                    .replace(&raw, &redacted),
                url: redacted.clone(),
            })?;
        let mut embedded_secrets = Vec::new();
        if let Some(password) = parsed.password() {
            embedded_secrets.push(password.to_owned());
        }
        if let Some(user) = parsed.user() {
            // Tokens are often passed as the user part (`https://<token>@host/`).
            embedded_secrets.push(user.to_owned());
        }
        let transport = match parsed.scheme {
            gix::url::Scheme::File => Transport::File,
            gix::url::Scheme::Http | gix::url::Scheme::Https => Transport::Http,
            gix::url::Scheme::Ssh => Transport::Ssh,
            gix::url::Scheme::Git => Transport::Git,
            // `ext::` runs a local command and helpers run arbitrary programs: never from a manifest.
            gix::url::Scheme::Ext => {
                return Err(Error::Unsupported {
                    url: redacted,
                    what: "the ext:: transport".into(),
                });
            }
            gix::url::Scheme::Helper(ref helper) | gix::url::Scheme::HelperUrl(ref helper) => {
                return Err(Error::Unsupported {
                    url: redacted,
                    what: format!("the {helper:?} remote helper"),
                });
            }
        };
        Ok(Self {
            raw,
            redacted,
            embedded_secrets,
            transport,
        })
    }

    /// The directory name of this repository's mirror: readable, and unique through a hash.
    pub(crate) fn mirror_dir_name(&self) -> String {
        let readable = self
            .redacted
            .split_once("://")
            .map_or(self.redacted.as_str(), |(_, rest)| rest);
        let mut name = String::with_capacity(80);
        let mut last_was_sep = true;
        for c in readable.chars() {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                name.push(c);
                last_was_sep = false;
            } else if !last_was_sep {
                name.push('_');
                last_was_sep = true;
            }
            if name.len() >= 60 {
                break;
            }
        }
        let name = name.trim_matches(|c| c == '_' || c == '.');
        let digest = Sha256::digest(self.raw.as_bytes());
        let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        if name.is_empty() {
            hash
        } else {
            format!("{name}-{hash}")
        }
    }
}

/// `url` without its userinfo (`https://user:pw@host/x` → `https://***@host/x`).
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // scp-like `user@host:path` carries only a user name, which is not secret.
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_userinfo_only() {
        assert_eq!(
            redact("https://bob:hunter22@example.com/org/repo.git"),
            "https://***@example.com/org/repo.git"
        );
        assert_eq!(
            redact("https://example.com/a@b/repo"),
            "https://example.com/a@b/repo"
        );
        assert_eq!(redact("/srv/git/repo"), "/srv/git/repo");
    }

    #[test]
    fn parse_classifies_transports() -> Result<(), Error> {
        assert_eq!(RepoUrl::parse("/tmp/x")?.transport, Transport::File);
        assert_eq!(RepoUrl::parse("file:///tmp/x")?.transport, Transport::File);
        assert_eq!(
            RepoUrl::parse("https://example.com/r.git")?.transport,
            Transport::Http
        );
        assert_eq!(
            RepoUrl::parse("ssh://git@example.com/r.git")?.transport,
            Transport::Ssh
        );
        assert_eq!(
            RepoUrl::parse("git@example.com:org/r.git")?.transport,
            Transport::Ssh
        );
        Ok(())
    }

    #[test]
    fn parse_rejects_empty_and_unknown_schemes() {
        assert!(matches!(
            RepoUrl::parse("  "),
            Err(Error::InvalidUrl { .. })
        ));
        for url in [
            "s3://bucket/repo",
            "ext::sh -c touch% /tmp/pwned",
            "foo::https://x/y",
        ] {
            assert!(
                matches!(RepoUrl::parse(url), Err(Error::Unsupported { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn invalid_urls_do_not_echo_credentials() {
        for input in [
            "https://bob:hunter22@example.com:99999999/x",
            "https://bob:hunter22@exa mple.com:notaport/x",
        ] {
            match RepoUrl::parse(input) {
                Err(err @ Error::InvalidUrl { .. }) => {
                    let shown = format!("{err} {err:?}");
                    assert!(!shown.contains("hunter22"), "{shown}");
                    assert!(shown.contains("https://***@"), "{shown}");
                }
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn embedded_credentials_are_secrets_and_not_in_dir_name() -> Result<(), Error> {
        let url = RepoUrl::parse("https://bob:hunter22@example.com/org/repo.git")?;
        assert!(url.embedded_secrets.iter().any(|s| s == "hunter22"));
        let name = url.mirror_dir_name();
        assert!(
            !name.contains("hunter22") && !name.contains("bob"),
            "{name}"
        );
        assert!(name.starts_with("example.com_org_repo.git-"), "{name}");
        Ok(())
    }

    #[test]
    fn dir_names_differ_by_hash() -> Result<(), Error> {
        let a = RepoUrl::parse("https://example.com/a-b")?.mirror_dir_name();
        let b = RepoUrl::parse("https://example.com/a_b")?.mirror_dir_name();
        assert_ne!(a, b);
        let trailing = RepoUrl::parse("https://example.com/a-b/")?.mirror_dir_name();
        assert_eq!(a, trailing);
        Ok(())
    }
}
