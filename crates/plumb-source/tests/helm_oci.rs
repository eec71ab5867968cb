//! OCI Helm charts against a loopback registry: the `Basic` and `Bearer` challenges, token
//! reuse, tags with build metadata, the cache by layer digest, and the time a pull takes.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use plumb_source::helm::oci::{OciAccess, OciReference};
use plumb_source::helm::{HelmAuth, HelmError, HelmLimits, HelmRepositories};
use sha2::Digest;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Copy, PartialEq)]
enum Challenge {
    Basic,
    Bearer,
}

/// A registry on loopback serving `files` (target → body) behind `challenge`; returns its
/// address and the log of (target, whether it was authorized).
fn registry(
    files: HashMap<String, Vec<u8>>,
    challenge: Challenge,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (files, shared_log, realm) = (
        Arc::new(files),
        log.clone(),
        format!("http://{address}/token"),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (files, log, realm) = (files.clone(), shared_log.clone(), realm.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let mut authorization = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorization = value.trim().to_string();
                    }
                }
                let target = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.lock().unwrap().push(target.clone());
                let basic = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode("robot:pw")
                );
                let (status, header, body) = if target.starts_with("/token") {
                    if authorization == basic {
                        (200, String::new(), br#"{"access_token":"t1"}"#.to_vec())
                    } else {
                        (401, String::new(), Vec::new())
                    }
                } else if (challenge == Challenge::Basic && authorization != basic)
                    || (challenge == Challenge::Bearer && authorization != "Bearer t1")
                {
                    let header = match challenge {
                        Challenge::Basic => "WWW-Authenticate: Basic realm=\"r\"\r\n".to_string(),
                        Challenge::Bearer => {
                            format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"s\"\r\n")
                        }
                    };
                    (401, header, Vec::new())
                } else {
                    match files.get(&target) {
                        Some(body) => (200, String::new(), body.clone()),
                        None => (404, String::new(), Vec::new()),
                    }
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{header}\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            });
        }
    });
    (address, log)
}

fn pack(dir: &Path, name: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    builder.append_dir_all(name, dir).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

fn digest(bytes: &[u8]) -> String {
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The registry files of chart `name` (under repository `charts`) at `tags`, all the same
/// archive.
fn chart_files(name: &str, archive: &[u8], tags: &[&str]) -> HashMap<String, Vec<u8>> {
    let layer = digest(archive);
    let manifest = serde_json::json!({"schemaVersion": 2,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": digest(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": layer, "size": archive.len()}]});
    let mut files = HashMap::new();
    files.insert(
        format!("/v2/charts/{name}/tags/list?n=1000"),
        serde_json::json!({"tags": tags}).to_string().into_bytes(),
    );
    for tag in tags {
        files.insert(
            format!("/v2/charts/{name}/manifests/{tag}"),
            manifest.to_string().into_bytes(),
        );
    }
    files.insert(format!("/v2/charts/{name}/blobs/{layer}"), archive.to_vec());
    files
}

fn small_chart(root: &Path) -> Vec<u8> {
    let dir = root.join("web");
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        "apiVersion: v2\nname: web\nversion: 1.1.0+build.7\n",
    )
    .unwrap();
    std::fs::write(dir.join("templates/cm.yaml"), "kind: ConfigMap\n").unwrap();
    pack(&dir, "web")
}

fn robot() -> OciAccess {
    OciAccess {
        auth: Some(HelmAuth {
            username: "robot".into(),
            password: "pw".into(),
        }),
        ..OciAccess::default()
    }
}

#[test]
fn basic_challenge_build_metadata_tags_and_the_digest_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = small_chart(tmp.path());
    let (address, log) = registry(
        chart_files(
            "web",
            &archive,
            &["1.0.0", "1.1.0_build.7", "2.0.0-rc.1", "latest"],
        ),
        Challenge::Basic,
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = HelmRepositories::new(&tmp.path().join("cache"), HelmLimits::default()).unwrap();
    let reference = OciReference::parse(&format!("{address}/charts"), "web").unwrap();

    // Without credentials the registry's challenge cannot be answered.
    let error = client
        .oci_chart(&reference, "1.x", &OciAccess::default())
        .unwrap_err();
    assert!(matches!(error, HelmError::Auth { .. }), "{error}");
    assert!(error.to_string().contains("no credentials"), "{error}");

    let (version, dir) = client.oci_chart(&reference, "1.x", &robot()).unwrap();
    assert_eq!(version, "1.1.0+build.7");
    assert!(dir.join("web/templates/cm.yaml").is_file());
    // The same layer again: served from the cache, the blob is not downloaded twice.
    let (again, same) = client
        .oci_chart(&reference, "1.1.0+build.7", &robot())
        .unwrap();
    assert_eq!((again.as_str(), &same), ("1.1.0+build.7", &dir));
    let log = log.lock().unwrap();
    let blobs = log.iter().filter(|t| t.contains("/blobs/")).count();
    assert_eq!(blobs, 1, "{log:?}");
    // Challenged once with credentials (the tag list); later requests send them at once.
    let challenged = log.iter().filter(|t| t.contains("/tags/list")).count();
    assert_eq!(
        challenged, 3,
        "one refused without credentials, one challenged, one answered: {log:?}"
    );
    assert!(
        log.iter()
            .any(|t| t == "/v2/charts/web/manifests/1.1.0_build.7"),
        "exact version fetched by its tag: {log:?}"
    );
}

#[test]
fn bearer_tokens_are_reused_and_pulls_are_fast() {
    let tmp = tempfile::tempdir().unwrap();
    let podinfo =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/podinfo/charts/podinfo");
    let podinfo = if podinfo.is_dir() {
        podinfo
    } else {
        Path::new("/work/shared/corpus/podinfo/charts/podinfo").to_path_buf()
    };
    let archive = pack(&podinfo, "podinfo");
    let (address, log) = registry(
        chart_files("podinfo", &archive, &["6.0.0", "6.14.1"]),
        Challenge::Bearer,
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = HelmRepositories::new(&tmp.path().join("cache"), HelmLimits::default()).unwrap();
    let reference = OciReference::parse(&format!("oci://{address}/charts"), "podinfo").unwrap();
    let started = Instant::now();
    let (version, dir) = client.oci_chart(&reference, "^6", &robot()).unwrap();
    let first = started.elapsed();
    assert_eq!(version, "6.14.1");
    assert!(dir.join("podinfo/Chart.yaml").is_file());
    let started = Instant::now();
    client.oci_chart(&reference, "^6", &robot()).unwrap();
    let cached = started.elapsed();
    let tokens = log
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t.starts_with("/token"))
        .count();
    assert_eq!(tokens, 1, "one token serves both pulls");
    eprintln!(
        "podinfo ({} bytes) from a loopback registry: first pull {first:?}, cached {cached:?}",
        archive.len()
    );
}

/// A Flux artifact (`flux push artifact`): manifests in `apps/site` at `tags`, one layer of
/// Flux's content type after a config-like first layer.
fn artifact_files(archive: &[u8], tags: &[&str]) -> (HashMap<String, Vec<u8>>, String) {
    let layer = digest(archive);
    let manifest = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.flux.config.v1+json", "digest": digest(b"{}"), "size": 2},
        "annotations": {"org.opencontainers.image.revision": "main@sha1:0123"},
        "layers": [{"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip", "digest": layer, "size": archive.len()}]})
    .to_string()
    .into_bytes();
    let manifest_digest = digest(&manifest);
    let mut files = HashMap::new();
    files.insert(
        "/v2/apps/site/tags/list?n=1000".to_string(),
        serde_json::json!({"tags": tags}).to_string().into_bytes(),
    );
    for tag in tags {
        files.insert(format!("/v2/apps/site/manifests/{tag}"), manifest.clone());
    }
    files.insert(
        format!("/v2/apps/site/manifests/{manifest_digest}"),
        manifest,
    );
    files.insert(format!("/v2/apps/site/blobs/{layer}"), archive.to_vec());
    (files, manifest_digest)
}

#[test]
fn artifacts_resolve_by_tag_semver_and_digest_and_are_cached_by_digest() {
    use plumb_source::helm::oci::artifact::{
        ArtifactLimits, ArtifactReference, ArtifactStage, CachedDigest, LayerOperation,
        LayerSelector,
    };
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(site.join("deploy")).unwrap();
    std::fs::write(site.join("deploy/cm.yaml"), "kind: ConfigMap\n").unwrap();
    let archive = pack(&site, ".");
    let (files, manifest_digest) =
        artifact_files(&archive, &["v1.0.0", "v1.2.0", "v2.0.0-rc.1", "latest"]);
    let (address, log) = registry(files, Challenge::Bearer);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = HelmRepositories::new(&tmp.path().join("cache"), HelmLimits::default()).unwrap();
    let reference = OciReference::parse(&format!("oci://{address}/apps/site"), "").unwrap();
    let limits = ArtifactLimits::default();
    let pull = |wanted: ArtifactReference, selector: &LayerSelector| {
        client.oci_artifact(
            &reference,
            &wanted,
            selector,
            &robot(),
            &limits,
            CachedDigest::Trust,
        )
    };
    let extract = LayerSelector::default();

    let latest = pull(ArtifactReference::Tag("latest".into()), &extract).unwrap();
    assert_eq!(latest.revision, format!("latest@{manifest_digest}"));
    assert_eq!(latest.digest, manifest_digest);
    assert!(latest.root.join("deploy/cm.yaml").is_file());
    assert_eq!(
        latest.annotations["org.opencontainers.image.revision"],
        "main@sha1:0123"
    );
    let ranged = pull(
        ArtifactReference::Semver {
            range: ">=1.0.0".into(),
            filter: Some("^v1".into()),
        },
        &extract,
    )
    .unwrap();
    assert_eq!(ranged.revision, format!("v1.2.0@{manifest_digest}"));
    assert_eq!(ranged.root, latest.root, "same manifest, same cache entry");
    let before = log.lock().unwrap().len();
    let pinned = pull(ArtifactReference::Digest(manifest_digest.clone()), &extract).unwrap();
    assert_eq!(pinned.revision, manifest_digest);
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "a cached digest needs no request"
    );
    let copy = LayerSelector {
        media_type: Some("application/vnd.cncf.flux.content.v1.tar+gzip".into()),
        operation: LayerOperation::Copy,
    };
    let copied = pull(ArtifactReference::Tag("v1.0.0".into()), &copy).unwrap();
    assert_eq!(
        std::fs::read(copied.archive.as_ref().unwrap()).unwrap(),
        archive
    );
    let blobs = log
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t.contains("/blobs/"))
        .count();
    assert_eq!(blobs, 2, "one download per (digest, selector)");

    // Bad input names the step that failed.
    let none = pull(
        ArtifactReference::Semver {
            range: ">=3".into(),
            filter: None,
        },
        &extract,
    )
    .unwrap_err();
    assert_eq!(none.stage, ArtifactStage::Resolve);
    assert!(
        plumb_source_chain(&none).contains("no match found for semver: >=3"),
        "{}",
        plumb_source_chain(&none)
    );
    let missing = pull(ArtifactReference::Tag("v9".into()), &extract).unwrap_err();
    assert_eq!(missing.stage, ArtifactStage::Pull);
    let wrong_layer = LayerSelector {
        media_type: Some("application/x-other".into()),
        ..LayerSelector::default()
    };
    let error = pull(ArtifactReference::Tag("latest".into()), &wrong_layer).unwrap_err();
    assert_eq!(error.stage, ArtifactStage::Layer);
    assert!(
        plumb_source_chain(&error).contains("application/x-other"),
        "{}",
        plumb_source_chain(&error)
    );
    let anonymous = |wanted: ArtifactReference, cached: CachedDigest| {
        client.oci_artifact(
            &reference,
            &wanted,
            &extract,
            &OciAccess::default(),
            &limits,
            cached,
        )
    };
    let denied =
        anonymous(ArtifactReference::Tag("latest".into()), CachedDigest::Trust).unwrap_err();
    assert_eq!(denied.stage, ArtifactStage::Pull);
    assert!(matches!(denied.source, HelmError::RegistryAuth { .. }));
    // A digest in the cache is still confirmed with the registry when asked to, so a caller
    // without credentials does not get what another caller's credentials pulled.
    let denied = anonymous(
        ArtifactReference::Digest(manifest_digest.clone()),
        CachedDigest::Confirm,
    )
    .unwrap_err();
    assert!(matches!(denied.source, HelmError::RegistryAuth { .. }));
    // Nor is it served for another repository of the registry.
    let elsewhere = OciReference::parse(&format!("oci://{address}/apps/other"), "").unwrap();
    let missing = client
        .oci_artifact(
            &elsewhere,
            &ArtifactReference::Digest(manifest_digest.clone()),
            &extract,
            &robot(),
            &limits,
            CachedDigest::Trust,
        )
        .unwrap_err();
    assert_eq!(missing.stage, ArtifactStage::Pull);
}

fn plumb_source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
