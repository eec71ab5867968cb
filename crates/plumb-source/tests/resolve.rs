//! Fetching and resolving revisions from `file://` repositories.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Origin, repositories};
use plumb_source::{Credentials, Error, FetchPolicy};

const HOUR: FetchPolicy = FetchPolicy::IfOlderThan(Duration::from_secs(3600));

#[test]
fn resolves_branch_tag_sha_and_head() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let first = origin.commit(&[("app/a.yaml", "a: 1\n")], "first commit\n\nwith a body");
    origin.git(&["tag", "-a", "v1", "-m", "release 1"]);
    origin.git(&["tag", "light"]);
    origin.git(&["checkout", "-q", "-b", "feature"]);
    let feature = origin.commit(&[("app/b.yaml", "b: 1\n")], "feature commit");
    origin.git(&["checkout", "-q", "main"]);
    let main = origin.commit(&[("app/a.yaml", "a: 2\n")], "second commit");
    assert_ne!(first, main);

    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let url = origin.url();
    let resolve = |rev: &str| repos.resolve(&url, rev, &Credentials::None, HOUR).unwrap();

    let head = resolve("HEAD");
    assert_eq!(head.sha, main);
    assert_eq!(head.reference.as_deref(), Some("HEAD"));
    assert_eq!(head.summary(), "second commit");
    assert_eq!(head.author_name, "Ada Author");
    assert_eq!(head.author_email, "ada@example.com");
    assert!(head.author_time > 1_600_000_000, "{}", head.author_time);
    assert_eq!(resolve("").sha, main);

    let branch = resolve("main");
    assert_eq!(branch.sha, main);
    assert_eq!(branch.reference.as_deref(), Some("refs/heads/main"));
    assert_eq!(resolve("feature").sha, feature);
    assert_eq!(resolve("refs/heads/feature").sha, feature);

    let annotated = resolve("v1");
    assert_eq!(annotated.sha, first, "annotated tags peel to their commit");
    assert_eq!(annotated.reference.as_deref(), Some("refs/tags/v1"));
    assert_eq!(annotated.message, "first commit\n\nwith a body\n");
    assert_eq!(resolve("light").sha, first);
    assert_eq!(resolve("refs/tags/v1").sha, first);

    let by_sha = resolve(&feature);
    assert_eq!(by_sha.sha, feature);
    assert_eq!(by_sha.reference, None);
    assert_eq!(resolve(&feature[..7]).sha, feature);
    assert_eq!(resolve(&feature.to_uppercase()).sha, feature);

    // A plain path works like file://.
    let plain = repos
        .resolve(
            origin.dir.to_str().unwrap(),
            "feature",
            &Credentials::None,
            HOUR,
        )
        .unwrap();
    assert_eq!(plain.sha, feature);
}

#[test]
fn new_commits_are_seen_after_a_refetch_and_fetches_are_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let first = origin.commit(&[("a.yaml", "a: 1\n")], "one");
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let url = origin.url();

    assert_eq!(
        repos
            .resolve(&url, "main", &Credentials::None, HOUR)
            .unwrap()
            .sha,
        first
    );
    assert_eq!(repos.stats().fetches, 1);

    let second = origin.commit(&[("a.yaml", "a: 2\n")], "two");
    // Within the window the earlier fetch is reused, for any revision.
    assert_eq!(
        repos
            .resolve(&url, "main", &Credentials::None, HOUR)
            .unwrap()
            .sha,
        first
    );
    assert_eq!(
        repos
            .resolve(&url, "HEAD", &Credentials::None, HOUR)
            .unwrap()
            .sha,
        first
    );
    assert_eq!(repos.stats().fetches, 1);

    // A hard refresh fetches.
    assert_eq!(
        repos
            .resolve(&url, "main", &Credentials::None, FetchPolicy::Always)
            .unwrap()
            .sha,
        second
    );
    assert_eq!(repos.stats().fetches, 2);

    // An expired window fetches too.
    let third = origin.commit(&[("a.yaml", "a: 3\n")], "three");
    let zero = FetchPolicy::IfOlderThan(Duration::ZERO);
    assert_eq!(
        repos
            .resolve(&url, "main", &Credentials::None, zero)
            .unwrap()
            .sha,
        third
    );
    assert_eq!(repos.stats().fetches, 3);
}

#[test]
fn refs_follow_the_remote_moved_tags_and_deleted_branches() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let first = origin.commit(&[("a.yaml", "a: 1\n")], "one");
    origin.git(&["tag", "stable"]);
    origin.git(&["branch", "old"]);
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let url = origin.url();
    let always = |rev: &str| repos.resolve(&url, rev, &Credentials::None, FetchPolicy::Always);

    assert_eq!(always("stable").unwrap().sha, first);
    assert_eq!(always("old").unwrap().sha, first);

    let second = origin.commit(&[("a.yaml", "a: 2\n")], "two");
    origin.git(&["tag", "-f", "stable"]);
    origin.git(&["branch", "-D", "old"]);
    assert_eq!(
        always("stable").unwrap().sha,
        second,
        "a moved tag is followed"
    );
    assert!(
        matches!(always("old"), Err(Error::RevisionNotFound { .. })),
        "a branch deleted on the remote is pruned"
    );
    // The commit itself is still in the mirror and stays reachable by SHA.
    assert_eq!(always(&first).unwrap().sha, first);
}

#[test]
fn default_branch_change_on_the_remote_is_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    origin.commit(&[("a.yaml", "a: 1\n")], "one");
    origin.git(&["checkout", "-q", "-b", "trunk"]);
    let trunk = origin.commit(&[("a.yaml", "a: 2\n")], "on trunk");
    origin.git(&["checkout", "-q", "main"]);
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let url = origin.url();
    let head = || {
        repos
            .resolve(&url, "HEAD", &Credentials::None, FetchPolicy::Always)
            .unwrap()
            .sha
    };
    assert_eq!(head(), origin.rev("main"));
    origin.git(&["symbolic-ref", "HEAD", "refs/heads/trunk"]);
    assert_eq!(head(), trunk);
}

#[test]
fn unknown_revision_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let sha = origin.commit(&[("a.yaml", "a: 1\n")], "one");
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let url = origin.url();

    let err = repos
        .resolve(&url, "nope", &Credentials::None, HOUR)
        .unwrap_err();
    assert!(matches!(err, Error::RevisionNotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("revision \"nope\" not found in {url}")
    );
    assert_eq!(err.url(), Some(url.as_str()));

    // Unknown SHAs, invalid ref names and odd input are "not found" too, never a panic.
    let missing_sha = "0123456789012345678901234567890123456789";
    for rev in [
        missing_sha,
        "abc1234",
        "a..b",
        "refs/heads/",
        "../../etc",
        "main~1",
        "ma in",
        "\u{0}",
    ] {
        let err = repos
            .resolve(&url, rev, &Credentials::None, HOUR)
            .unwrap_err();
        assert!(
            matches!(err, Error::RevisionNotFound { .. }),
            "{rev:?}: {err:?}"
        );
    }

    // A tree SHA is a revision of the wrong kind.
    let tree = origin.git(&["rev-parse", &format!("{sha}^{{tree}}")]);
    let err = repos
        .resolve(&url, &tree, &Credentials::None, HOUR)
        .unwrap_err();
    assert!(matches!(err, Error::NotACommit { .. }), "{err:?}");
    // One full fetch plus one attempt to fetch the unknown full SHA by itself.
    assert_eq!(repos.stats().fetches, 2);
}

#[test]
fn unreachable_repositories_are_reported_and_the_failure_is_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let missing = tmp.path().join("does-not-exist");
    let urls = [
        format!("file://{}", missing.display()),
        missing.display().to_string(),
        // Port 1 on loopback: refused at once, no network involved.
        "http://127.0.0.1:1/repo.git".to_owned(),
    ];
    for url in &urls {
        let err = repos
            .resolve(url, "main", &Credentials::None, HOUR)
            .unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{url}: {err:?}");
        assert!(err.to_string().contains("is unreachable"), "{err}");
    }
    let fetches = repos.stats().fetches;
    assert_eq!(fetches, 3);
    // Within the window the failure is answered without asking the server again.
    let again = repos
        .resolve(&urls[0], "main", &Credentials::None, HOUR)
        .unwrap_err();
    assert!(matches!(again, Error::Unreachable { .. }), "{again:?}");
    assert_eq!(repos.stats().fetches, fetches);
    // A hard refresh asks again.
    repos
        .resolve(&urls[0], "main", &Credentials::None, FetchPolicy::Always)
        .unwrap_err();
    assert_eq!(repos.stats().fetches, fetches + 1);
}

#[test]
fn a_repository_that_appears_later_is_picked_up() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let url = format!("file://{}", tmp.path().join("origin").display());
    assert!(
        repos
            .resolve(&url, "main", &Credentials::None, FetchPolicy::Always)
            .is_err()
    );
    let origin = Origin::new(tmp.path());
    let sha = origin.commit(&[("a.yaml", "a: 1\n")], "one");
    assert_eq!(
        repos
            .resolve(&url, "main", &Credentials::None, FetchPolicy::Always)
            .unwrap()
            .sha,
        sha
    );
}

#[test]
fn credentials_in_urls_never_show_in_errors() {
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let err = repos
        .resolve(
            "http://bob:hunter2-secret@127.0.0.1:1/repo.git",
            "main",
            &Credentials::Basic {
                username: "alice".into(),
                password: "other-secret-pw".into(),
            },
            HOUR,
        )
        .unwrap_err();
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(!text.contains("other-secret-pw"), "{text}");
    assert!(text.contains("http://***@127.0.0.1:1/repo.git"), "{text}");
}

#[test]
fn unsupported_transports_are_refused() {
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    for url in ["ext::sh -c touch% /tmp/plumb-pwned", "s3://bucket/repo"] {
        let err = repos
            .resolve(url, "main", &Credentials::None, HOUR)
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{url}: {err:?}");
        assert!(err.to_string().starts_with("not supported yet: "), "{err}");
    }
    let err = repos
        .resolve(
            "ssh://git@127.0.0.1:1/repo.git",
            "main",
            &Credentials::Token("t0k3n-value".into()),
            HOUR,
        )
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    let err = repos
        .resolve("", "main", &Credentials::None, HOUR)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    assert_eq!(
        repos.stats().fetches,
        1,
        "only the ssh attempt counted as a fetch"
    );
}

#[test]
fn concurrent_callers_share_one_fetch() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let sha = origin.commit(&[("a.yaml", "a: 1\n")], "one");
    let cache = tempfile::tempdir().unwrap();
    let repos = Arc::new(repositories(cache.path()));
    let url = origin.url();

    let threads: Vec<_> = (0..8)
        .map(|i| {
            let repos = Arc::clone(&repos);
            let url = url.clone();
            std::thread::spawn(move || {
                let rev = if i % 2 == 0 { "main" } else { "HEAD" };
                repos.resolve(&url, rev, &Credentials::None, HOUR).unwrap()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().sha, sha);
    }
    assert_eq!(repos.stats().fetches, 1);

    // Concurrent hard refreshes: each fetches unless one started after it was called,
    // and all agree on the result.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let repos = Arc::clone(&repos);
            let url = url.clone();
            std::thread::spawn(move || {
                repos
                    .resolve(&url, "main", &Credentials::None, FetchPolicy::Always)
                    .unwrap()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().sha, sha);
    }
    let fetches = repos.stats().fetches;
    assert!((2..=5).contains(&fetches), "{fetches}");
}

#[test]
fn a_new_instance_reuses_the_mirror_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let sha = origin.commit(&[("a.yaml", "a: 1\n")], "one");
    let cache = tempfile::tempdir().unwrap();
    let url = origin.url();
    let revision = {
        let repos = repositories(cache.path());
        repos
            .resolve(&url, "main", &Credentials::None, HOUR)
            .unwrap()
    };
    assert_eq!(revision.sha, sha);
    let repos = repositories(cache.path());
    let mirror = repos.mirror_dir(&url).unwrap();
    assert!(mirror.join("HEAD").is_file(), "{}", mirror.display());
    assert!(!mirror.to_string_lossy().contains("://"));
    // The remote is gone: fetching fails, but the last good commit can still be snapshotted.
    std::fs::remove_dir_all(&origin.dir).unwrap();
    let err = repos
        .resolve(&url, "main", &Credentials::None, HOUR)
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    let snapshot = repos.snapshot(&url, &revision).unwrap();
    assert_eq!(
        std::fs::read_to_string(snapshot.root.join("a.yaml")).unwrap(),
        "a: 1\n"
    );
}

#[test]
fn an_empty_repository_has_no_revisions() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    for rev in ["HEAD", "main"] {
        let err = repos
            .resolve(&origin.url(), rev, &Credentials::None, HOUR)
            .unwrap_err();
        assert!(
            matches!(err, Error::RevisionNotFound { .. }),
            "{rev}: {err:?}"
        );
    }
}

#[test]
fn commits_no_ref_reaches_are_fetched_by_sha_once_per_window() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    origin.commit(&[("a.yaml", "a: 1\n")], "one");
    origin.git(&["checkout", "-q", "-b", "pr-42"]);
    let dangling = origin.commit(&[("a.yaml", "a: 2\n")], "from a deleted branch");
    origin.git(&["checkout", "-q", "main"]);
    origin.git(&["branch", "-D", "pr-42"]);
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let url = origin.url();

    let revision = repos
        .resolve(&url, &dangling, &Credentials::None, HOUR)
        .unwrap();
    assert_eq!(revision.sha, dangling);
    assert_eq!(revision.summary(), "from a deleted branch");
    assert_eq!(
        repos.stats().fetches,
        2,
        "one full fetch, one for the commit"
    );
    // Now in the mirror: no more fetching.
    repos
        .resolve(&url, &dangling, &Credentials::None, HOUR)
        .unwrap();
    assert_eq!(repos.stats().fetches, 2);

    // A SHA the server does not have is asked for once per window, not per caller.
    let missing = "0123456789abcdef0123456789abcdef01234567";
    for _ in 0..3 {
        let err = repos
            .resolve(&url, missing, &Credentials::None, HOUR)
            .unwrap_err();
        assert!(matches!(err, Error::RevisionNotFound { .. }), "{err:?}");
    }
    assert_eq!(repos.stats().fetches, 3);
    repos
        .resolve(&url, missing, &Credentials::None, FetchPolicy::Always)
        .unwrap_err();
    assert_eq!(
        repos.stats().fetches,
        5,
        "a new full fetch allows one more try"
    );
}

#[test]
fn a_broken_mirror_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let sha = origin.commit(&[("a.yaml", "a: 1\n")], "one");
    let cache = tempfile::tempdir().unwrap();
    let url = origin.url();
    let mirror = {
        let repos = repositories(cache.path());
        repos
            .resolve(&url, "main", &Credentials::None, HOUR)
            .unwrap();
        repos.mirror_dir(&url).unwrap()
    };
    // Garbage where the config should be makes the mirror unopenable.
    std::fs::write(mirror.join("config"), "[core\n\0garbage").unwrap();
    let repos = repositories(cache.path());
    assert_eq!(
        repos
            .resolve(&url, "main", &Credentials::None, HOUR)
            .unwrap()
            .sha,
        sha
    );
}

#[test]
fn unused_mirrors_are_removed_and_cloned_again_on_demand() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Origin::new(&tmp.path().join("a"));
    let b = Origin::new(&tmp.path().join("b"));
    let a_sha = a.commit(&[("a.yaml", "a: 1\n")], "a");
    let b_sha = b.commit(&[("b.yaml", "b: 1\n")], "b");
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    repos
        .resolve(&a.url(), "main", &Credentials::None, HOUR)
        .unwrap();
    repos
        .resolve(&b.url(), "main", &Credentials::None, HOUR)
        .unwrap();

    assert_eq!(repos.remove_mirrors_except(&[&a.url()]).unwrap(), 1);
    assert!(repos.mirror_dir(&a.url()).unwrap().exists());
    assert!(!repos.mirror_dir(&b.url()).unwrap().exists());
    assert_eq!(repos.remove_mirrors_except(&[&a.url()]).unwrap(), 0);

    // Within the window `a` is still served without a fetch; `b` is cloned again.
    let fetches = repos.stats().fetches;
    assert_eq!(
        repos
            .resolve(&a.url(), "main", &Credentials::None, HOUR)
            .unwrap()
            .sha,
        a_sha
    );
    assert_eq!(repos.stats().fetches, fetches);
    assert_eq!(
        repos
            .resolve(&b.url(), "main", &Credentials::None, HOUR)
            .unwrap()
            .sha,
        b_sha
    );
    assert_eq!(repos.stats().fetches, fetches + 1);
}
