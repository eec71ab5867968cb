//! Timings for the controller's hot paths, on a repository shaped like the
//! 1,000-Application benchmark (1,000 directories of 4 manifests each).
//!
//! Ignored by default; run with
//! `cargo test -p plumb-source --release --test timing -- --ignored --nocapture`.
//! Results are recorded in `crates/plumb-source/TIMING.md`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Origin, repositories};
use plumb_source::{Credentials, FetchPolicy};

#[test]
#[ignore = "timing run, not a check"]
fn timing_one_repository_of_1000_apps() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Origin::new(tmp.path());
    for app in 0..1000 {
        let dir = origin.dir.join(format!("apps/app-{app:04}"));
        std::fs::create_dir_all(&dir).unwrap();
        for kind in ["deployment", "service", "configmap", "serviceaccount"] {
            let body = format!(
                "apiVersion: v1\nkind: {kind}\nmetadata:\n  name: app-{app:04}\n  labels:\n    app: app-{app:04}\n"
            );
            std::fs::write(dir.join(format!("{kind}.yaml")), body).unwrap();
        }
    }
    origin.commit(&[], "1000 apps");
    let cache = tempfile::tempdir().unwrap();
    let repos = repositories(cache.path());
    let url = origin.url();
    let window = FetchPolicy::IfOlderThan(Duration::from_secs(180));

    let start = Instant::now();
    let revision = repos
        .resolve(&url, "main", &Credentials::None, window)
        .unwrap();
    println!("clone + resolve (4,000 files): {:?}", start.elapsed());

    let start = Instant::now();
    for _ in 0..1000 {
        repos
            .resolve(&url, "main", &Credentials::None, window)
            .unwrap();
    }
    println!(
        "1,000 resolves sharing one fetch: {:?} total",
        start.elapsed()
    );

    let start = Instant::now();
    repos
        .resolve(&url, "main", &Credentials::None, FetchPolicy::Always)
        .unwrap();
    println!("fetch with nothing new: {:?}", start.elapsed());

    origin.commit(
        &[("apps/app-0000/configmap.yaml", "changed: true\n")],
        "one change",
    );
    let start = Instant::now();
    let changed = repos
        .resolve(&url, "main", &Credentials::None, FetchPolicy::Always)
        .unwrap();
    println!("fetch of one new commit: {:?}", start.elapsed());

    let start = Instant::now();
    repos.snapshot(&url, &revision).unwrap();
    println!("snapshot write (4,000 files): {:?}", start.elapsed());
    let start = Instant::now();
    repos.snapshot(&url, &changed).unwrap();
    println!("snapshot write of the next commit: {:?}", start.elapsed());

    let start = Instant::now();
    for _ in 0..1000 {
        repos.snapshot(&url, &changed).unwrap();
    }
    println!("1,000 snapshot reuses: {:?} total", start.elapsed());
    println!("stats: {:?}", repos.stats());
}
