//! Writing commits to snapshot directories.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Origin, repositories};
use plumb_source::{Credentials, Error, FetchPolicy, Options, Repositories, Revision};

const HOUR: FetchPolicy = FetchPolicy::IfOlderThan(Duration::from_secs(3600));

fn resolve(repos: &Repositories, origin: &Origin, rev: &str) -> Revision {
    repos
        .resolve(&origin.url(), rev, &Credentials::None, FetchPolicy::Always)
        .unwrap()
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// Every path under `root`, relative, sorted, directories marked with a trailing `/`.
fn listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if entry.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn snapshot_holds_the_commit_tree_and_is_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    origin.commit(
        &[
            ("apps/web/deploy.yaml", "kind: Deployment\n"),
            ("apps/web/svc.yaml", "kind: Service\n"),
            ("README.md", "hello\n"),
        ],
        "one",
    );
    std::fs::write(origin.dir.join("run.sh"), "#!/bin/sh\n").unwrap();
    origin.git(&["add", "run.sh"]);
    origin.git(&["update-index", "--chmod=+x", "run.sh"]);
    origin.git(&["commit", "-q", "-m", "script"]);
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let revision = resolve(&repos, &origin, "main");

    let snapshot = repos.snapshot(&origin.url(), &revision).unwrap();
    assert_eq!(snapshot.revision, revision.sha);
    assert_eq!(
        snapshot.root,
        cache.path().join("snapshots").join(&revision.sha)
    );
    assert_eq!(
        listing(&snapshot.root),
        [
            "README.md",
            "apps/",
            "apps/web/",
            "apps/web/deploy.yaml",
            "apps/web/svc.yaml",
            "run.sh"
        ]
    );
    assert_eq!(
        read(&snapshot.root, "apps/web/deploy.yaml"),
        "kind: Deployment\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(snapshot.root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o111
        };
        assert_ne!(mode("run.sh"), 0, "executable bit kept");
        assert_eq!(mode("README.md"), 0);
    }
    assert_eq!(repos.stats().snapshots_written, 1);

    // Reused: same directory, nothing rewritten (a marker file we drop survives).
    std::fs::write(snapshot.root.join(".marker"), "x").unwrap();
    let again = repos.snapshot(&origin.url(), &revision).unwrap();
    assert_eq!(again, snapshot);
    assert!(again.root.join(".marker").exists());
    assert_eq!(repos.stats().snapshots_written, 1);
    assert_eq!(repos.stats().snapshots_reused, 1);

    // A later commit gets its own snapshot; the old one is untouched.
    origin.commit(
        &[("apps/web/deploy.yaml", "kind: Deployment\nv: 2\n")],
        "two",
    );
    let newer = resolve(&repos, &origin, "main");
    let newer_snapshot = repos.snapshot(&origin.url(), &newer).unwrap();
    assert_ne!(newer_snapshot.root, snapshot.root);
    assert_eq!(
        read(&newer_snapshot.root, "apps/web/deploy.yaml"),
        "kind: Deployment\nv: 2\n"
    );
    assert_eq!(
        read(&snapshot.root, "apps/web/deploy.yaml"),
        "kind: Deployment\n"
    );

    // Garbage collection keeps what it is told to keep.
    assert_eq!(repos.remove_snapshots_except(&[&newer.sha]).unwrap(), 1);
    assert!(!snapshot.root.exists());
    assert!(newer_snapshot.root.exists());
}

#[cfg(unix)]
#[test]
fn symlinks_are_kept_as_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    std::fs::write(origin.dir.join("a.yaml"), "a: 1\n").unwrap();
    std::os::unix::fs::symlink("a.yaml", origin.dir.join("link.yaml")).unwrap();
    std::os::unix::fs::symlink("../../../../etc/passwd", origin.dir.join("escape.yaml")).unwrap();
    origin.commit(&[], "links");
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let revision = resolve(&repos, &origin, "main");
    let snapshot = repos.snapshot(&origin.url(), &revision).unwrap();

    let link = snapshot.root.join("link.yaml");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("a.yaml"));
    assert_eq!(read(&snapshot.root, "link.yaml"), "a: 1\n");
    // Kept verbatim: confining reads is the renderer's job.
    let escape = snapshot.root.join("escape.yaml");
    assert_eq!(
        std::fs::read_link(&escape).unwrap(),
        Path::new("../../../../etc/passwd")
    );
}

fn limited(cache: &Path, change: impl FnOnce(&mut Options)) -> Repositories {
    let mut options = Options::new(cache);
    change(&mut options);
    Repositories::new(options).unwrap()
}

#[test]
fn an_oversized_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let big = "x".repeat(2000);
    origin.commit(&[("ok.yaml", "a: 1\n"), ("deep/dir/big.yaml", &big)], "big");
    let cache = tempfile::tempdir().unwrap();
    let repos = limited(cache.path(), |o| o.max_file_bytes = 1024);
    let revision = resolve(&repos, &origin, "main");

    let err = repos.snapshot(&origin.url(), &revision).unwrap_err();
    match &err {
        Error::FileTooLarge {
            path,
            size,
            limit,
            sha,
        } => {
            assert_eq!(path, "deep/dir/big.yaml");
            assert_eq!((*size, *limit), (2000, 1024));
            assert_eq!(sha, &revision.sha);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("\"deep/dir/big.yaml\""), "{err}");
    // Nothing was left behind: neither the snapshot nor a temporary directory.
    let leftovers: Vec<_> = std::fs::read_dir(cache.path().join("snapshots"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(repos.stats().snapshots_written, 0);

    // Exactly at the limit is fine.
    let repos = limited(cache.path(), |o| o.max_file_bytes = 2000);
    repos.snapshot(&origin.url(), &revision).unwrap();
}

#[test]
fn total_size_and_file_count_limits_are_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let kb = "y".repeat(1000);
    origin.commit(
        &[("a/1.yaml", &kb), ("a/2.yaml", &kb), ("b/3.yaml", &kb)],
        "three",
    );
    let cache = tempfile::tempdir().unwrap();
    let url = origin.url();

    let repos = limited(cache.path(), |o| o.max_snapshot_bytes = 2500);
    let revision = resolve(&repos, &origin, "main");
    let err = repos.snapshot(&url, &revision).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotTooLarge { limit: 2500, .. }),
        "{err:?}"
    );

    // Two directories and three files: five entries.
    let repos = limited(cache.path(), |o| o.max_files = 4);
    let err = repos.snapshot(&url, &revision).unwrap_err();
    assert!(
        matches!(err, Error::TooManyFiles { limit: 4, .. }),
        "{err:?}"
    );
    let repos = limited(cache.path(), |o| o.max_files = 5);
    repos.snapshot(&url, &revision).unwrap();
}

#[test]
fn bad_revisions_are_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let revision = {
        origin.commit(&[("a.yaml", "a: 1\n")], "one");
        let cache = tempfile::tempdir().unwrap();
        let repos = repositories(cache.path());
        resolve(&repos, &origin, "main")
    };
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    for sha in ["../../etc", "", "HEAD", &revision.sha.to_uppercase()] {
        let bad = Revision {
            sha: sha.to_owned(),
            ..revision.clone()
        };
        let err = repos.snapshot(&origin.url(), &bad).unwrap_err();
        assert!(matches!(err, Error::InvalidSha { .. }), "{sha:?}: {err:?}");
    }
    // A well-formed SHA the (never fetched) mirror does not have.
    let err = repos.snapshot(&origin.url(), &revision).unwrap_err();
    assert!(matches!(err, Error::RevisionNotFound { .. }), "{err:?}");
}

#[test]
fn concurrent_snapshots_of_one_commit_write_once() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    let files: Vec<(String, String)> = (0..200)
        .map(|i| (format!("d{}/f{i}.yaml", i % 10), format!("n: {i}\n")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    origin.commit(&refs, "many");
    let cache = tempfile::tempdir().unwrap();
    let repos = Arc::new(repositories(cache.path()));
    let url = origin.url();
    let revision = repos
        .resolve(&url, "main", &Credentials::None, HOUR)
        .unwrap();

    let threads: Vec<_> = (0..6)
        .map(|_| {
            let repos = Arc::clone(&repos);
            let url = url.clone();
            let revision = revision.clone();
            std::thread::spawn(move || repos.snapshot(&url, &revision).unwrap())
        })
        .collect();
    let roots: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().unwrap().root)
        .collect();
    assert!(roots.iter().all(|r| r == &roots[0]));
    assert_eq!(read(&roots[0], "d3/f123.yaml"), "n: 123\n");
    let stats = repos.stats();
    assert_eq!(stats.snapshots_written, 1);
    assert_eq!(stats.snapshots_reused, 5);
}

/// Write a raw tree object from `(mode, name, hex id)` entries, bypassing git's checks.
fn raw_tree(origin: &Origin, entries: &[(&str, &[u8], &str)]) -> String {
    let mut data = Vec::new();
    for (mode, name, id) in entries {
        data.extend_from_slice(mode.as_bytes());
        data.push(b' ');
        data.extend_from_slice(name);
        data.push(0);
        let id: Vec<u8> = (0..20)
            .map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        data.extend_from_slice(&id);
    }
    common::git_stdin(
        &origin.dir,
        &["hash-object", "-t", "tree", "-w", "--literally", "--stdin"],
        &data,
    )
}

#[cfg(unix)]
#[test]
fn hostile_trees_cannot_write_outside_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    origin.commit(&[("a.yaml", "a: 1\n")], "base");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();

    let blob = common::git_stdin(&origin.dir, &["hash-object", "-w", "--stdin"], b"pwned\n");
    let link_target = outside.to_str().unwrap().as_bytes().to_vec();
    let link = common::git_stdin(&origin.dir, &["hash-object", "-w", "--stdin"], &link_target);
    let inner = raw_tree(&origin, &[("100644", b"pwned", &blob)]);
    // The same name twice: first a symlink out of the snapshot, then a directory through it.
    let twice = raw_tree(&origin, &[("120000", b"a", &link), ("40000", b"a", &inner)]);
    let dotdot = raw_tree(&origin, &[("40000", b"..", &inner)]);
    let slash = raw_tree(&origin, &[("100644", b"x/../../y", &blob)]);

    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    for (name, tree) in [("twice", twice), ("dotdot", dotdot), ("slash", slash)] {
        let commit = origin.git(&["commit-tree", &tree, "-m", name]);
        origin.git(&["update-ref", &format!("refs/heads/{name}"), &commit]);
        let revision = resolve(&repos, &origin, name);
        let err = repos.snapshot(&origin.url(), &revision).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{name}: {err:?}");
        assert!(!outside.join("pwned").exists(), "{name} wrote outside");
        assert!(!cache.path().join("snapshots").join(&revision.sha).exists());
    }
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
}
