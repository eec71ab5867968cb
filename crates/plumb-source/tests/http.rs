//! Smart HTTP through gix against `git http-backend` on 127.0.0.1, with basic auth.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::http::{Auth, GitHttpServer, tls_fixture};
use common::{Origin, repositories};
use plumb_source::{Credentials, Error, FetchPolicy, Options, Repositories};

const HOUR: FetchPolicy = FetchPolicy::IfOlderThan(Duration::from_secs(3600));

fn basic(username: &str, password: &str) -> Credentials {
    Credentials::Basic {
        username: username.into(),
        password: password.into(),
    }
}

/// Every message in `err`'s chain, for checking what a user would see.
fn full_text(err: &Error) -> String {
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(" | ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[test]
fn clone_fetch_and_snapshot_over_http_with_basic_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let first = origin.commit(&[("app/cm.yaml", "kind: ConfigMap\n")], "one");
    origin.git(&["tag", "v1"]);
    let server = GitHttpServer::start(
        tmp.path().to_owned(),
        Auth::Basic {
            username: "deployer".into(),
            password: "correct-horse-1".into(),
        },
    );
    let url = format!("{}/origin", server.base_url);
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let creds = basic("deployer", "correct-horse-1");

    let head = repos.resolve(&url, "HEAD", &creds, HOUR).unwrap();
    assert_eq!(head.sha, first);
    assert_eq!(repos.resolve(&url, "v1", &creds, HOUR).unwrap().sha, first);
    assert!(
        server.served.load(Ordering::SeqCst) >= 2,
        "the backend answered"
    );
    let served = server.served.load(Ordering::SeqCst);

    // The window also holds for HTTP: no request reaches the server.
    repos.resolve(&url, "main", &creds, HOUR).unwrap();
    assert_eq!(server.served.load(Ordering::SeqCst), served);

    let second = origin.commit(&[("app/cm.yaml", "kind: ConfigMap\ndata: {}\n")], "two");
    let revision = repos
        .resolve(&url, "main", &creds, FetchPolicy::Always)
        .unwrap();
    assert_eq!(revision.sha, second);
    assert_eq!(repos.stats().fetches, 2);

    let snapshot = repos.snapshot(&url, &revision).unwrap();
    assert_eq!(
        std::fs::read_to_string(snapshot.root.join("app/cm.yaml")).unwrap(),
        "kind: ConfigMap\ndata: {}\n"
    );
}

#[test]
fn tokens_are_sent_as_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let sha = origin.commit(&[("a.yaml", "a: 1\n")], "one");
    let server = GitHttpServer::start(
        tmp.path().to_owned(),
        Auth::Password("ghp_token_value_42".into()),
    );
    let url = format!("{}/origin", server.base_url);
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let revision = repos
        .resolve(
            &url,
            "main",
            &Credentials::Token("ghp_token_value_42".into()),
            HOUR,
        )
        .unwrap();
    assert_eq!(revision.sha, sha);
}

#[test]
fn bearer_tokens_are_sent_in_the_authorization_header() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let sha = origin.commit(&[("a.yaml", "a: 1\n")], "one");
    let server = GitHttpServer::start(tmp.path().to_owned(), Auth::Bearer("bearer-42".into()));
    let url = format!("{}/origin", server.base_url);
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let revision = repos
        .resolve(&url, "main", &Credentials::Bearer("bearer-42".into()), HOUR)
        .unwrap();
    assert_eq!(revision.sha, sha);
    let cache = tempfile::tempdir().unwrap();
    let err = repositories(cache.path())
        .resolve(
            &url,
            "main",
            &Credentials::Bearer("wrong-token".into()),
            HOUR,
        )
        .unwrap_err();
    let text = full_text(&err);
    assert!(!text.contains("wrong-token"), "{text}");
}

#[test]
fn wrong_or_missing_credentials_are_an_auth_failure_without_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    origin.commit(&[("a.yaml", "a: 1\n")], "one");
    let server = GitHttpServer::start(
        tmp.path().to_owned(),
        Auth::Basic {
            username: "deployer".into(),
            password: "correct-horse-1".into(),
        },
    );
    let url = format!("{}/origin", server.base_url);
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());

    let always = FetchPolicy::Always;
    let wrong = repos
        .resolve(&url, "main", &basic("deployer", "wrong-password-9"), always)
        .unwrap_err();
    assert!(matches!(wrong, Error::AuthFailed { .. }), "{wrong:?}");
    assert_eq!(
        wrong.to_string(),
        format!("authentication failed for repository {url}")
    );
    let text = full_text(&wrong);
    assert!(!text.contains("wrong-password-9"), "{text}");

    let token = repos
        .resolve(
            &url,
            "main",
            &Credentials::Token("tok-not-valid-77".into()),
            always,
        )
        .unwrap_err();
    assert!(matches!(token, Error::AuthFailed { .. }), "{token:?}");
    assert!(!full_text(&token).contains("tok-not-valid-77"));

    let none = repos
        .resolve(&url, "main", &Credentials::None, always)
        .unwrap_err();
    assert!(matches!(none, Error::AuthFailed { .. }), "{none:?}");
    assert!(full_text(&none).contains("the server requires credentials and none are configured"));
    assert!(server.rejected.load(Ordering::SeqCst) >= 3);
    assert_eq!(server.served.load(Ordering::SeqCst), 0);

    // Fixing the credentials works on the same mirror.
    repos
        .resolve(&url, "main", &basic("deployer", "correct-horse-1"), always)
        .unwrap();
}

#[test]
fn a_missing_repository_on_the_server_is_unreachable() {
    let tmp = tempfile::tempdir().unwrap();
    let server = GitHttpServer::start(tmp.path().to_owned(), Auth::Open);
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let url = format!("{}/no-such-repo", server.base_url);
    let err = repos
        .resolve(&url, "main", &Credentials::None, HOUR)
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
}

#[test]
fn https_with_a_private_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let sha = origin.commit(&[("a.yaml", "a: 1\n")], "one");
    let certs = tempfile::tempdir().unwrap();
    let (tls, ca_pem) = tls_fixture(certs.path());
    let server = GitHttpServer::start_tls(
        tmp.path().to_owned(),
        Auth::Basic {
            username: "deployer".into(),
            password: "correct-horse-1".into(),
        },
        tls,
    );
    let url = format!("{}/origin", server.base_url);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let creds = basic("deployer", "correct-horse-1");

    // Without the CA the server's certificate is not trusted.
    let cache = tempfile::tempdir().unwrap();
    let untrusting = repositories(cache.path());
    let err = untrusting.resolve(&url, "main", &creds, HOUR).unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(
        full_text(&err).to_lowercase().contains("certificate"),
        "{}",
        full_text(&err)
    );
    assert_eq!(server.served.load(Ordering::SeqCst), 0);

    let cache = tempfile::tempdir().unwrap();
    let mut options = Options::new(cache.path());
    options.extra_ca_certificates_pem = ca_pem;
    let repos = Repositories::new(options).unwrap();
    assert_eq!(repos.resolve(&url, "main", &creds, HOUR).unwrap().sha, sha);

    let wrong = repos
        .resolve(
            &url,
            "main",
            &basic("deployer", "nope-nope-nope"),
            FetchPolicy::Always,
        )
        .unwrap_err();
    assert!(matches!(wrong, Error::AuthFailed { .. }), "{wrong:?}");
}

#[test]
fn invalid_extra_ca_certificates_are_refused() {
    let cache = tempfile::tempdir().unwrap();
    for pem in [
        b"not a pem at all".to_vec(),
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_vec(),
    ] {
        let mut options = Options::new(cache.path());
        options.extra_ca_certificates_pem = pem;
        let err = Repositories::new(options).err().unwrap();
        assert!(
            matches!(err, Error::InvalidCaCertificates { .. }),
            "{err:?}"
        );
    }
}
