//! A chart from an OCI registry: a loopback registry speaking the distribution API (`/v2/`
//! tags, manifests and blobs behind a Bearer token challenge) serves the podinfo chart, and
//! Applications in Argo CD's scheme-less form and in the `oci://` form install it; broken
//! registries give errors naming the repository and the chart.

mod common;

use common::Harness;
use common::charts::{chart_version, package, podinfo_chart, sha256};
use common::registry::{
    Answer, CHART_CONFIG, CHART_LAYER, PASSWORD, USER, manifest, registry, tags,
};
use plumb_core::application::API_VERSION;
use plumb_core::key::str_at;
use serde_json::{Value, json};
use std::collections::HashMap;

fn app(name: &str, repo_url: &str, chart: &str, constraint: &str) -> Value {
    json!({"apiVersion": API_VERSION, "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"project": "default",
            "source": {"repoURL": repo_url, "chart": chart, "targetRevision": constraint,
                "helm": {"releaseName": name}},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
            "syncPolicy": {"automated": {"prune": true}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_from_an_oci_registry_installs_and_broken_registries_say_what_is_wrong() {
    let chart = package(&podinfo_chart(), "podinfo");
    let version = chart_version(&podinfo_chart());
    let digest = format!("sha256:{}", sha256(&chart));
    let mut routes = HashMap::new();
    // Two tag pages: the newest 6.x is only on the second, reached through the Link header.
    routes.insert(
        "/v2/charts/podinfo/tags/list?n=1000".to_string(),
        tags(
            "charts/podinfo",
            &["5.0.0", "6.0.0"],
            Some("/v2/charts/podinfo/tags/list?n=1000&last=6.0.0"),
        ),
    );
    routes.insert(
        "/v2/charts/podinfo/tags/list?n=1000&last=6.0.0".to_string(),
        tags(
            "charts/podinfo",
            &[&version, "latest", "7.0.0-rc.1", "sha256-0123"],
            None,
        ),
    );
    for name in ["charts/podinfo", "charts/exact/podinfo"] {
        routes.insert(
            format!("/v2/{name}/manifests/{version}"),
            manifest(CHART_LAYER, CHART_CONFIG, &digest, chart.len()),
        );
        routes.insert(
            format!("/v2/{name}/blobs/{digest}"),
            Answer::ok(chart.clone()),
        );
    }
    // Listing the tags of this one fails: an exact version must not need the listing.
    routes.insert(
        "/v2/charts/exact/podinfo/tags/list?n=1000".to_string(),
        Answer {
            status: 500,
            ..Answer::ok(Vec::new())
        },
    );
    // An image, not a chart.
    routes.insert(
        "/v2/charts/notachart/manifests/1.0.0".to_string(),
        manifest(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.config.v1+json",
            &digest,
            chart.len(),
        ),
    );
    // A blob whose bytes are not the ones the manifest names.
    routes.insert(
        "/v2/charts/corrupt/manifests/1.0.0".to_string(),
        manifest(CHART_LAYER, CHART_CONFIG, &digest, chart.len()),
    );
    let mut tampered = chart.clone();
    tampered[100] ^= 0xff;
    routes.insert(
        format!("/v2/charts/corrupt/blobs/{digest}"),
        Answer::ok(tampered),
    );
    // A blob larger than the limit (16 MiB), sent without Content-Length and with a lying
    // manifest size, so only the streaming cap can stop it.
    let big_digest = format!("sha256:{}", "b".repeat(64));
    routes.insert(
        "/v2/charts/big/manifests/1.0.0".to_string(),
        manifest(CHART_LAYER, CHART_CONFIG, &big_digest, 1000),
    );
    routes.insert(
        format!("/v2/charts/big/blobs/{big_digest}"),
        Answer {
            length: false,
            ..Answer::ok(vec![0u8; 17 << 20])
        },
    );
    // A manifest declaring a huge layer: refused before downloading.
    routes.insert(
        "/v2/charts/huge/manifests/1.0.0".to_string(),
        manifest(CHART_LAYER, CHART_CONFIG, &big_digest, 1 << 40),
    );
    let (address, log) = registry(routes);

    let h = Harness::start(&[("unused/README.md", "x")]).await;
    // Argo CD's repository credential template for the registry, with the oci:// prefix.
    h.apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "registry", "namespace": "argocd",
            "labels": {"argocd.argoproj.io/secret-type": "repo-creds"}},
        "stringData": {"url": format!("oci://{address}/charts"), "type": "helm",
            "enableOCI": "true", "username": USER, "password": PASSWORD}}))
        .await;

    // Argo CD's form: a scheme-less repoURL and a chart, with a version range.
    h.apply(app(
        "podinfo",
        &format!("{address}/charts"),
        "podinfo",
        "^6.0",
    ))
    .await;
    let synced = h.wait_synced("podinfo", &version).await;
    assert_eq!(str_at(&synced, &["status", "sourceType"]), "Helm");
    let deployment = h
        .cluster
        .get("apps/v1", "Deployment", "apps", "podinfo")
        .await
        .expect("get")
        .expect("the chart's Deployment exists");
    assert_eq!(
        str_at(
            &deployment,
            &["metadata", "labels", "app.kubernetes.io/version"]
        ),
        version
    );
    {
        let log = log.lock().expect("log");
        assert!(
            log.iter()
                .any(|t| t == "/v2/charts/podinfo/tags/list?n=1000&last=6.0.0"),
            "the second tag page was read: {log:?}"
        );
        assert!(log.iter().any(|t| t.starts_with("/token?")), "{log:?}");
    }

    // The oci:// form naming the chart in the URL, with an exact version: fetched by its tag.
    h.apply(app(
        "podinfo-exact",
        &format!("oci://{address}/charts/exact/podinfo"),
        "",
        &version,
    ))
    .await;
    h.wait_synced("podinfo-exact", &version).await;
    assert!(
        h.cluster
            .get("apps/v1", "Deployment", "apps", "podinfo-exact")
            .await
            .expect("get")
            .is_some()
    );

    let repo = format!("oci://{address}/charts");
    // Bad input: no tag matches the range.
    h.apply(app(
        "too-new",
        &format!("{address}/charts"),
        "podinfo",
        ">=99",
    ))
    .await;
    let message = h.condition("too-new", "ComparisonError").await;
    assert!(
        message.contains(&format!("chart \"podinfo\" in repository {repo}"))
            && message.contains(">=99"),
        "{message}"
    );
    // A chart the registry does not have.
    h.apply(app("missing", &format!("{address}/charts"), "nope", "*"))
        .await;
    let message = h.condition("missing", "ComparisonError").await;
    assert!(
        message.contains(&format!("chart \"nope\" not found in repository {repo}")),
        "{message}"
    );
    // A manifest without a chart layer.
    h.apply(app("not-a-chart", &repo, "notachart", "1.0.0"))
        .await;
    let message = h.condition("not-a-chart", "ComparisonError").await;
    assert!(
        message.contains(&format!("{repo}/notachart:1.0.0: not a Helm chart"))
            && message.contains(CHART_LAYER),
        "{message}"
    );
    // A layer whose digest does not match.
    h.apply(app("corrupt", &repo, "corrupt", "1.0.0")).await;
    let message = h.condition("corrupt", "ComparisonError").await;
    assert!(
        message.contains(&format!("{repo}/corrupt:1.0.0: chart layer digest"))
            && message.contains(&digest),
        "{message}"
    );
    // An oversized blob, stopped while streaming, and one refused by its declared size.
    h.apply(app("big", &repo, "big", "1.0.0")).await;
    let message = h.condition("big", "ComparisonError").await;
    assert!(
        message.contains(&format!("{repo}/big:1.0.0")) && message.contains("larger than 16777216"),
        "{message}"
    );
    h.apply(app("huge", &repo, "huge", "1.0.0")).await;
    let message = h.condition("huge", "ComparisonError").await;
    assert!(
        message.contains(&format!("{repo}/huge:1.0.0")) && message.contains("larger than"),
        "{message}"
    );
    // A repository no credentials cover: the token service refuses.
    h.apply(app(
        "private",
        &format!("{address}/private"),
        "podinfo",
        "*",
    ))
    .await;
    let message = h.condition("private", "ComparisonError").await;
    assert!(
        message.contains(&format!(
            "chart \"podinfo\" in repository oci://{address}/private: access denied"
        )),
        "{message}"
    );
    // A repoURL the distribution spec does not allow.
    h.apply(app(
        "bad-url",
        &format!("oci://{address}/Charts"),
        "podinfo",
        "*",
    ))
    .await;
    let message = h.condition("bad-url", "InvalidSpecError").await;
    assert!(
        message.contains("spec.source.repoURL") && message.contains("\"Charts\""),
        "{message}"
    );
    // The chart-repository entry point takes a registry URL too (basic credentials).
    let cache = tempfile::tempdir().expect("cache");
    let sources = plumb_engine::git::GitSources::new(cache.path()).expect("sources");
    let url = format!("oci://{address}/charts");
    let pulled = tokio::task::spawn_blocking(move || {
        use plumb_engine::sources::{Freshness, Sources};
        let credentials = plumb_source::Credentials::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        };
        let denied = sources
            .chart(
                &url,
                "podinfo",
                "~6.14",
                &plumb_source::Credentials::None,
                Freshness::Now,
            )
            .map(|(version, _)| version)
            .map_err(|e| e.to_string());
        let pulled = sources
            .chart(&url, "podinfo", "~6.14", &credentials, Freshness::Now)
            .map(|(version, dir)| (version, dir.join("podinfo/Chart.yaml").is_file()))
            .map_err(|e| e.to_string());
        (denied, pulled)
    })
    .await
    .expect("pull");
    assert!(
        pulled
            .0
            .as_ref()
            .is_err_and(|e| e.contains("access denied")),
        "{:?}",
        pulled.0
    );
    assert_eq!(pulled.1, Ok((version.clone(), true)));

    // Flux: a HelmRepository of type oci and a HelmRelease install from the same registry,
    // with basic credentials from the repository's secretRef.
    h.apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "registry-auth", "namespace": "apps"},
        "stringData": {"username": USER, "password": PASSWORD}}))
        .await;
    h.apply(
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
        "metadata": {"name": "registry", "namespace": "apps"},
        "spec": {"type": "oci", "url": format!("oci://{address}/charts"), "interval": "1h",
            "secretRef": {"name": "registry-auth"}}}),
    )
    .await;
    h.apply(
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "flux-podinfo", "namespace": "apps"},
        "spec": {"interval": "1h", "chart": {"spec": {"chart": "podinfo", "version": "^6.0",
            "sourceRef": {"kind": "HelmRepository", "name": "registry"}}}}}),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let release = h
            .cluster
            .get(
                "helm.toolkit.fluxcd.io/v2",
                "HelmRelease",
                "apps",
                "flux-podinfo",
            )
            .await
            .expect("get")
            .unwrap_or(Value::Null);
        let ready = release
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == "Ready"))
            .cloned()
            .unwrap_or(Value::Null);
        if str_at(&ready, &["reason"]) == "InstallSucceeded" {
            assert_eq!(
                str_at(&release, &["status", "lastAttemptedRevision"]),
                version
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "HelmRelease from an OCI HelmRepository not installed: {}",
            release["status"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        h.cluster
            .get("apps/v1", "Deployment", "apps", "flux-podinfo")
            .await
            .expect("get")
            .is_some()
    );

    // Nothing of the broken charts was applied.
    for name in ["too-new", "not-a-chart", "corrupt", "big"] {
        assert!(
            h.cluster
                .get("apps/v1", "Deployment", "apps", name)
                .await
                .expect("get")
                .is_none()
        );
    }
}
