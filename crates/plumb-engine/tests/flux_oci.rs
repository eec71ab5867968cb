//! Flux OCIRepository end to end against a loopback registry behind a Bearer challenge:
//! a Kustomization built from an artifact pushed as `flux push artifact` pushes it (new tags
//! picked up by the semver range, what left the artifact pruned), a HelmRelease installing a
//! chart through `chartRef`, and bad input reported with Flux's reasons, nothing applied.

mod common;

use common::Harness;
use common::charts::{chart_version, package, podinfo_chart, sha256};
use common::registry::{
    Answer, CHART_CONFIG, CHART_LAYER, PASSWORD, Routes, USER, shared_registry,
};
use plumb_core::key::str_at;
use plumb_engine::flux::{
    HELM_API_VERSION, KUSTOMIZE_API_VERSION, REQUESTED_AT_ANNOTATION, SOURCE_API_VERSION,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NS: &str = "apps";
const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";

async fn start() -> Harness {
    let h = Harness::start(&[("unused/README.md", "x")]).await;
    for (api_version, kind) in [
        (SOURCE_API_VERSION, "OCIRepository"),
        (KUSTOMIZE_API_VERSION, "Kustomization"),
        (HELM_API_VERSION, "HelmRelease"),
    ] {
        plumb_engine::crds::wait_established(&h.cluster, api_version, kind)
            .await
            .expect("Flux CRDs installed");
    }
    h.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .await;
    h
}

/// A docker-registry Secret with the registry's credentials (as `kubectl create secret
/// docker-registry` writes it).
async fn registry_secret(h: &Harness, name: &str, address: &str, password: &str) {
    let config = json!({"auths": {address: {"username": USER, "password": password}}});
    h.apply(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": NS},
        "stringData": {".dockerconfigjson": config.to_string()}}),
    )
    .await;
}

async fn oci_repository(h: &Harness, name: &str, spec: Value) {
    let mut full = json!({"interval": "1h", "secretRef": {"name": "regcred"}});
    for (key, value) in spec.as_object().cloned().unwrap_or_default() {
        full[key] = value;
    }
    h.apply(
        json!({"apiVersion": SOURCE_API_VERSION, "kind": "OCIRepository",
        "metadata": {"name": name, "namespace": NS}, "spec": full}),
    )
    .await;
}

async fn get(h: &Harness, api_version: &str, kind: &str, name: &str) -> Value {
    h.cluster
        .get(api_version, kind, NS, name)
        .await
        .expect("get")
        .unwrap_or(Value::Null)
}

fn condition(object: &Value, kind: &str) -> (String, String, String) {
    let found = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == kind))
        .cloned()
        .unwrap_or(Value::Null);
    (
        str_at(&found, &["status"]).to_string(),
        str_at(&found, &["reason"]).to_string(),
        str_at(&found, &["message"]).to_string(),
    )
}

/// Waits until `check` holds for the object; returns it.
async fn wait_for(
    h: &Harness,
    (api_version, kind): (&str, &str),
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let object = get(h, api_version, kind, name).await;
        if check(&object) {
            return object;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; {kind} {name}: {}",
            object.get("status").unwrap_or(&Value::Null)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const OCI: (&str, &str) = (SOURCE_API_VERSION, "OCIRepository");
const KS: (&str, &str) = (KUSTOMIZE_API_VERSION, "Kustomization");
const HR: (&str, &str) = (HELM_API_VERSION, "HelmRelease");

/// Waits for `Ready` with `status` and `reason`; returns the object.
async fn wait_ready(
    h: &Harness,
    kind: (&str, &str),
    name: &str,
    status: &str,
    reason: &str,
) -> Value {
    wait_for(h, kind, name, &format!("Ready={status} {reason}"), |o| {
        let (s, r, _) = condition(o, "Ready");
        s == status && r == reason
    })
    .await
}

/// `files` packed as `flux push artifact` packs a directory: a gzipped tarball of its
/// contents.
fn pack(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tmp");
    for (path, text) in files {
        let target = dir.path().join(path);
        std::fs::create_dir_all(target.parent().unwrap_or(Path::new("."))).expect("dir");
        std::fs::write(target, text).expect("write");
    }
    package(dir.path(), ".")
}

/// Pushes `layer` to `repository` at `tag` (listed with `tags`): the manifest by tag and by
/// digest, and the blob. Returns the manifest digest.
fn push(
    routes: &Routes,
    repository: &str,
    (tag, tags): (&str, &[&str]),
    (config_type, layer_type): (&str, &str),
    layer: &[u8],
) -> String {
    let layer_digest = format!("sha256:{}", sha256(layer));
    let manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config_type, "digest": format!("sha256:{}", sha256(b"{}")), "size": 2},
        "annotations": {"org.opencontainers.image.source": "https://github.com/example/site",
            "org.opencontainers.image.revision": format!("{tag}@sha1:0123456789abcdef")},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len()}]})
    .to_string()
    .into_bytes();
    let digest = format!("sha256:{}", sha256(&manifest));
    let mut routes = routes.lock().expect("routes");
    routes.insert(
        format!("/v2/{repository}/tags/list?n=1000"),
        Answer::ok(
            json!({"name": repository, "tags": tags})
                .to_string()
                .into_bytes(),
        ),
    );
    routes.insert(
        format!("/v2/{repository}/manifests/{tag}"),
        Answer::ok(manifest.clone()),
    );
    routes.insert(
        format!("/v2/{repository}/manifests/{digest}"),
        Answer::ok(manifest),
    );
    routes.insert(
        format!("/v2/{repository}/blobs/{layer_digest}"),
        Answer::ok(layer.to_vec()),
    );
    digest
}

fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {NS}\ndata:\n  value: \"{value}\"\n"
    )
}

async fn config_value(h: &Harness, name: &str) -> Option<String> {
    h.cluster
        .get("v1", "ConfigMap", NS, name)
        .await
        .expect("get")
        .map(|cm| str_at(&cm, &["data", "value"]).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kustomization_applies_an_oci_artifact_and_follows_new_tags() {
    let routes: Routes = Arc::new(Mutex::new(HashMap::new()));
    let first = pack(&[
        ("deploy/a.yaml", &config_map("site-a", "1")),
        ("deploy/b.yaml", &config_map("site-b", "1")),
        ("deploy/ignored.yaml", &config_map("site-ignored", "1")),
        ("README.md", "not a manifest"),
    ]);
    let flux = (FLUX_CONFIG, FLUX_CONTENT);
    let first_digest = push(&routes, "apps/site", ("1.0.0", &["1.0.0"]), flux, &first);
    let (address, log) = shared_registry(routes.clone());
    let h = start().await;
    registry_secret(&h, "regcred", &address, PASSWORD).await;
    // Written at the versions most repositories still use: served as Flux's CRDs serve them.
    h.apply(
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1beta2", "kind": "OCIRepository",
        "metadata": {"name": "site", "namespace": NS},
        "spec": {"interval": "1h", "secretRef": {"name": "regcred"}, "ignore": "ignored.yaml",
            "url": format!("oci://{address}/apps/site"), "ref": {"semver": ">=1.0.0"}}}),
    )
    .await;
    h.apply(
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1beta2", "kind": "Kustomization",
        "metadata": {"name": "site", "namespace": NS},
        "spec": {"interval": "1h", "prune": true, "path": "./deploy",
            "sourceRef": {"kind": "OCIRepository", "name": "site"},
            "patchesStrategicMerge": [{"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "site-a", "namespace": NS}, "data": {"patched": "smp"}}],
            "patchesJson6902": [{"target": {"version": "v1", "kind": "ConfigMap", "name": "site-b"},
                "patch": [{"op": "add", "path": "/data/patched", "value": "6902"}]}]}}),
    )
    .await;

    let revision = format!("1.0.0@{first_digest}");
    let source = wait_ready(&h, OCI, "site", "True", "Succeeded").await;
    assert_eq!(
        str_at(&source, &["status", "artifact", "revision"]),
        revision
    );
    assert_eq!(
        str_at(
            &source,
            &[
                "status",
                "artifact",
                "metadata",
                "org.opencontainers.image.source"
            ]
        ),
        "https://github.com/example/site"
    );
    let applied = wait_for(&h, KS, "site", "the first artifact applied", |o| {
        str_at(o, &["status", "lastAppliedRevision"]) == revision
    })
    .await;
    assert_eq!(condition(&applied, "Ready").0, "True", "{applied}");
    assert_eq!(config_value(&h, "site-a").await.as_deref(), Some("1"));
    assert_eq!(config_value(&h, "site-b").await.as_deref(), Some("1"));
    assert_eq!(config_value(&h, "site-ignored").await, None, "spec.ignore");
    for (name, patched) in [("site-a", "smp"), ("site-b", "6902")] {
        let object = h
            .cluster
            .get("v1", "ConfigMap", NS, name)
            .await
            .expect("get")
            .unwrap_or(Value::Null);
        assert_eq!(str_at(&object, &["data", "patched"]), patched, "{object}");
    }
    assert!(
        condition(&applied, "FieldsNotActedOn").0.is_empty(),
        "v1beta2's patch fields are acted on: {applied}"
    );
    assert!(
        log.lock()
            .expect("log")
            .iter()
            .any(|t| t.starts_with("/token?")),
        "the credentials of the docker-registry Secret were used"
    );

    // A new tag in range: picked up on the next reconcile; what left the artifact is pruned.
    let second = pack(&[("deploy/a.yaml", &config_map("site-a", "2"))]);
    let second_digest = push(
        &routes,
        "apps/site",
        ("1.1.0", &["1.0.0", "1.1.0", "2.0.0-rc.1"]),
        flux,
        &second,
    );
    h.cluster
        .merge_patch(
            SOURCE_API_VERSION,
            "OCIRepository",
            NS,
            "site",
            &json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: "1"}}}),
        )
        .await
        .expect("annotate");
    let revision = format!("1.1.0@{second_digest}");
    wait_for(&h, KS, "site", "the new tag applied", |o| {
        str_at(o, &["status", "lastAppliedRevision"]) == revision
    })
    .await;
    assert_eq!(config_value(&h, "site-a").await.as_deref(), Some("2"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while config_value(&h, "site-b").await.is_some() {
        assert!(Instant::now() < deadline, "site-b was not pruned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Pinned by digest: the older artifact again, revision `sha256:<digest>` as Flux writes it.
    h.cluster
        .merge_patch(
            SOURCE_API_VERSION,
            "OCIRepository",
            NS,
            "site",
            &json!({"spec": {"ref": {"digest": first_digest, "semver": null}}}),
        )
        .await
        .expect("pin");
    wait_for(&h, KS, "site", "the pinned digest applied", |o| {
        str_at(o, &["status", "lastAppliedRevision"]) == first_digest
    })
    .await;
    assert_eq!(config_value(&h, "site-b").await.as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_release_installs_a_chart_through_chart_ref() {
    let routes: Routes = Arc::new(Mutex::new(HashMap::new()));
    let chart = package(&podinfo_chart(), "podinfo");
    let version = chart_version(&podinfo_chart());
    let helm = (CHART_CONFIG, CHART_LAYER);
    let digest = push(
        &routes,
        "charts/podinfo",
        (&version, &[version.as_str(), "latest"]),
        helm,
        &chart,
    );
    // `latest` is the same manifest: a tag that is not the chart's version.
    let manifest = routes
        .lock()
        .expect("routes")
        .get(&format!("/v2/charts/podinfo/manifests/{version}"))
        .cloned()
        .expect("pushed");
    routes
        .lock()
        .expect("routes")
        .insert("/v2/charts/podinfo/manifests/latest".into(), manifest);
    let (address, _log) = shared_registry(routes.clone());
    let h = start().await;
    registry_secret(&h, "regcred", &address, PASSWORD).await;
    let selector = json!({"mediaType": CHART_LAYER, "operation": "copy"});
    for (name, tag) in [("podinfo", version.as_str()), ("podinfo-latest", "latest")] {
        oci_repository(
            &h,
            name,
            json!({"url": format!("oci://{address}/charts/podinfo"), "ref": {"tag": tag},
                "layerSelector": selector}),
        )
        .await;
    }
    let release = |name: &str, source: &str| {
        json!({"apiVersion": HELM_API_VERSION, "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"interval": "1h", "chartRef": {"kind": "OCIRepository", "name": source},
                "values": {"replicaCount": 2}}})
    };
    h.apply(release("podinfo", "podinfo")).await;

    let installed = wait_ready(&h, HR, "podinfo", "True", "InstallSucceeded").await;
    let short = &digest["sha256:".len().."sha256:".len() + 12];
    assert_eq!(
        str_at(&installed, &["status", "lastAttemptedRevision"]),
        format!("{version}+{short}"),
        "the chart version gets the digest as build metadata, as Flux's helm-controller does"
    );
    assert_eq!(
        str_at(&installed, &["status", "lastAttemptedRevisionDigest"]),
        digest
    );
    assert!(
        installed.pointer("/status/helmChart").is_none(),
        "{installed}"
    );
    let source = get(&h, SOURCE_API_VERSION, "OCIRepository", "podinfo").await;
    assert_eq!(
        str_at(&source, &["status", "artifact", "digest"]),
        format!("sha256:{}", sha256(&chart)),
        "with operation copy the stored artifact is the chart layer itself"
    );
    let deployment = h
        .cluster
        .get("apps/v1", "Deployment", NS, "podinfo")
        .await
        .expect("get")
        .expect("the chart's Deployment");
    assert_eq!(deployment.pointer("/spec/replicas"), Some(&json!(2)));

    // A tag that is not the chart's version: refused as Flux refuses it, nothing installed.
    wait_ready(&h, OCI, "podinfo-latest", "True", "Succeeded").await;
    h.apply(release("other", "podinfo-latest")).await;
    let refused = wait_for(&h, HR, "other", "a refusal", |o| {
        condition(o, "Ready").0 == "False"
    })
    .await;
    let message = condition(&refused, "Ready").2;
    assert!(
        message.contains("failed parsing artifact revision latest"),
        "{message}"
    );
    // A chartRef to an OCIRepository that does not exist.
    h.apply(release("ghost", "ghost")).await;
    let missing = wait_for(&h, HR, "ghost", "a missing source", |o| {
        condition(o, "Ready").0 == "False"
    })
    .await;
    let message = condition(&missing, "Ready").2;
    assert!(
        message.contains("OCIRepository 'apps/ghost' not found"),
        "{message}"
    );
    for name in ["other", "ghost"] {
        assert!(
            h.cluster
                .get("apps/v1", "Deployment", NS, &format!("{name}-podinfo"))
                .await
                .expect("get")
                .is_none(),
            "{name} installed nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_oci_repositories_say_why_with_fluxs_reasons_and_apply_nothing() {
    let routes: Routes = Arc::new(Mutex::new(HashMap::new()));
    let layer = pack(&[("cm.yaml", &config_map("never", "1"))]);
    push(
        &routes,
        "apps/site",
        ("1.0.0", &["1.0.0"]),
        (FLUX_CONFIG, FLUX_CONTENT),
        &layer,
    );
    let (address, _log) = shared_registry(routes.clone());
    let h = start().await;
    registry_secret(&h, "regcred", &address, PASSWORD).await;
    registry_secret(&h, "wrong", &address, "not-the-password").await;
    h.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "opaque", "namespace": NS},
        "stringData": {"username": USER, "password": PASSWORD}}))
        .await;
    let url = format!("oci://{address}/apps/site");
    let cases = [
        (
            "no-tag",
            json!({"url": url, "ref": {"tag": "9.9.9"}}),
            "OCIArtifactPullFailed",
            "9.9.9",
        ),
        (
            "no-match",
            json!({"url": url, "ref": {"semver": ">=5.0.0"}}),
            "ReadOperationFailed",
            ">=5.0.0",
        ),
        (
            "no-secret",
            json!({"url": url, "secretRef": {"name": "nope"}}),
            "AuthenticationFailed",
            "secret 'apps/nope'",
        ),
        (
            "not-docker",
            json!({"url": url, "secretRef": {"name": "opaque"}}),
            "AuthenticationFailed",
            ".dockerconfigjson",
        ),
        (
            "denied",
            json!({"url": url, "ref": {"tag": "1.0.0"}, "secretRef": {"name": "wrong"}}),
            "OCIArtifactPullFailed",
            "apps/site",
        ),
        (
            "no-layer",
            json!({"url": url, "ref": {"tag": "1.0.0"},
                "layerSelector": {"mediaType": "application/vnd.example.nothing"}}),
            "OCIArtifactLayerOperationFailed",
            "application/vnd.example.nothing",
        ),
    ];
    for (name, spec, _, _) in &cases {
        oci_repository(&h, name, spec.clone()).await;
    }
    oci_repository(
        &h,
        "bad-url",
        json!({"url": format!("https://{address}/apps/site")}),
    )
    .await;
    oci_repository(
        &h,
        "bad-digest",
        json!({"url": url, "ref": {"digest": "sha256:abc"}}),
    )
    .await;
    for (name, _, reason, fragment) in &cases {
        let object = wait_ready(&h, OCI, name, "False", reason).await;
        let message = condition(&object, "Ready").2;
        assert!(message.contains(fragment), "{name}: {message}");
        assert!(!message.contains(PASSWORD), "{name}: {message}");
        assert_eq!(condition(&object, "FetchFailed").0, "True", "{name}");
    }
    let stalled = wait_ready(&h, OCI, "bad-url", "False", "URLInvalid").await;
    assert_eq!(condition(&stalled, "Stalled").0, "True", "{stalled}");
    assert!(condition(&stalled, "Ready").2.contains("url"), "{stalled}");
    let stalled = wait_ready(&h, OCI, "bad-digest", "False", "InvalidSpec").await;
    assert!(
        condition(&stalled, "Ready").2.contains("ref.digest"),
        "{stalled}"
    );

    // Kustomizations over a failing or missing source wait and apply nothing.
    for (name, source) in [("waits", "no-tag"), ("ghost", "nowhere")] {
        h.apply(
            json!({"apiVersion": KUSTOMIZE_API_VERSION, "kind": "Kustomization",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"interval": "1h", "prune": true, "path": "./",
                "sourceRef": {"kind": "OCIRepository", "name": source}}}),
        )
        .await;
    }
    let waits = wait_for(&h, KS, "waits", "a not-ready source", |o| {
        condition(o, "Ready").2.contains("is not ready")
    })
    .await;
    assert_eq!(condition(&waits, "Ready").0, "False");
    let ghost = wait_for(&h, KS, "ghost", "a missing source", |o| {
        condition(o, "Ready")
            .2
            .contains("Source 'OCIRepository/apps/nowhere' not found")
    })
    .await;
    assert_eq!(condition(&ghost, "Ready").0, "False");
    assert_eq!(config_value(&h, "never").await, None);
}
