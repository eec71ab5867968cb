//! The classic flux2-kustomize-helm example for one cluster (staging), unchanged except that its
//! remote Helm repositories point at a loopback chart repository: podinfo's own chart, the
//! podinfo chart renamed `ingress-nginx`, and a small `cert-manager` chart that installs the
//! ClusterIssuer CRD the `infra-configs` Kustomization needs. The three Kustomizations become
//! Ready in `dependsOn` order (checked at every observation, not by timing).

mod common;

use common::Harness;
use common::charts::{chart_version, package, podinfo_chart, repository};
use plumb_core::key::str_at;
use plumb_engine::flux::{HELM_API_VERSION, KUSTOMIZE_API_VERSION, SOURCE_API_VERSION};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn example_dir() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/flux2-kustomize-helm-example-classic");
    if beside.is_dir() {
        beside
    } else {
        PathBuf::from("/work/shared/corpus/flux2-kustomize-helm-example-classic")
    }
}

/// Every file of `dir` as (relative path, text).
fn files_of(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                let relative = path
                    .strip_prefix(dir)
                    .expect("inside")
                    .to_string_lossy()
                    .to_string();
                out.push((relative, text));
            }
        }
    }
    out.sort();
    out
}

/// A chart directory written from (path, text) pairs.
fn chart_dir(root: &Path, files: &[(&str, &str)]) -> PathBuf {
    for (path, text) in files {
        let target = root.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, text).expect("write");
    }
    root.to_path_buf()
}

const CERT_MANAGER_CRD: &str = r#"{{- if .Values.crds.enabled }}
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: clusterissuers.cert-manager.io
  {{- if .Values.crds.keep }}
  annotations:
    helm.sh/resource-policy: keep
  {{- end }}
spec:
  group: cert-manager.io
  names:
    kind: ClusterIssuer
    listKind: ClusterIssuerList
    plural: clusterissuers
    singular: clusterissuer
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
{{- end }}
"#;

const CERT_MANAGER_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      containers:
        - name: controller
          image: "quay.io/jetstack/cert-manager-controller:{{ .Chart.AppVersion }}"
"#;

fn ready(object: &Value) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_classic_flux_helm_example_reconciles_in_dependency_order() {
    // The loopback chart repository.
    let scratch = tempfile::tempdir().expect("tempdir");
    let cert_manager = chart_dir(
        &scratch.path().join("cert-manager"),
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: cert-manager\nversion: 1.16.2\nappVersion: v1.16.2\n",
            ),
            (
                "values.yaml",
                "replicaCount: 1\ncrds:\n  enabled: false\n  keep: true\n",
            ),
            ("templates/crds.yaml", CERT_MANAGER_CRD),
            ("templates/deployment.yaml", CERT_MANAGER_DEPLOYMENT),
        ],
    );
    let ingress_nginx = scratch.path().join("ingress-nginx");
    for (path, text) in files_of(&podinfo_chart()) {
        let text = if path == "Chart.yaml" {
            text.replace("name: podinfo", "name: ingress-nginx")
        } else {
            text
        };
        chart_dir(&ingress_nginx, &[(path.as_str(), text.as_str())]);
    }
    let podinfo_version = chart_version(&podinfo_chart());
    let url = repository(vec![
        (
            "podinfo".into(),
            podinfo_version.clone(),
            package(&podinfo_chart(), "podinfo"),
        ),
        (
            "ingress-nginx".into(),
            podinfo_version.clone(),
            package(&ingress_nginx, "ingress-nginx"),
        ),
        (
            "cert-manager".into(),
            "1.16.2".into(),
            package(&cert_manager, "cert-manager"),
        ),
    ]);

    // The example's files, its remote repositories replaced by the loopback one.
    let files: Vec<(String, String)> = files_of(&example_dir())
        .into_iter()
        .map(|(path, text)| {
            let text = text
                .replace("https://charts.jetstack.io", &url)
                .replace("https://kubernetes.github.io/ingress-nginx", &url)
                .replace("https://stefanprodan.github.io/podinfo", &url);
            (path, text)
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let h = Harness::start(&borrowed).await;
    for (api_version, kind) in [
        (SOURCE_API_VERSION, "GitRepository"),
        (KUSTOMIZE_API_VERSION, "Kustomization"),
        (HELM_API_VERSION, "HelmRelease"),
    ] {
        plumb_engine::crds::wait_established(&h.cluster, api_version, kind)
            .await
            .expect("Flux CRDs installed");
    }
    // What `flux bootstrap` would have put in place: the namespace, the GitRepository, and
    // the cluster's Kustomizations as written in clusters/staging.
    h.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}))
        .await;
    h.apply(json!({
        "apiVersion": SOURCE_API_VERSION, "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {"url": h.url(), "interval": "1m", "ref": {"branch": "main"}}
    }))
    .await;
    for file in [
        "clusters/staging/infrastructure.yaml",
        "clusters/staging/apps.yaml",
    ] {
        let text = std::fs::read_to_string(example_dir().join(file)).expect("cluster file");
        for (_, object) in plumb_render::parse_documents(file, &text).expect("yaml") {
            h.apply(object).await;
        }
    }

    // dependsOn holds at every observation: apps ⇒ infra-configs ⇒ infra-controllers.
    let deadline = Instant::now() + Duration::from_secs(120);
    let get_ks = |name: &'static str| {
        let cluster = h.cluster.clone();
        async move {
            cluster
                .get(KUSTOMIZE_API_VERSION, "Kustomization", "flux-system", name)
                .await
                .expect("get")
                .unwrap_or(Value::Null)
        }
    };
    let (controllers, configs, apps) = loop {
        let controllers = get_ks("infra-controllers").await;
        let configs = get_ks("infra-configs").await;
        let apps = get_ks("apps").await;
        assert!(
            !ready(&configs) || ready(&controllers),
            "infra-configs ready before infra-controllers"
        );
        assert!(
            !ready(&apps) || ready(&configs),
            "apps ready before infra-configs"
        );
        let issuer = h
            .cluster
            .get("cert-manager.io/v1", "ClusterIssuer", "", "letsencrypt")
            .await
            .ok()
            .flatten();
        assert!(
            issuer.is_none() || ready(&controllers),
            "infra-configs applied before infra-controllers was ready"
        );
        if ready(&controllers) && ready(&configs) && ready(&apps) {
            break (controllers, configs, apps);
        }
        if Instant::now() >= deadline {
            let mut releases = String::new();
            for (namespace, name) in [
                ("cert-manager", "cert-manager"),
                ("ingress-nginx", "ingress-nginx"),
                ("podinfo", "podinfo"),
            ] {
                let release = h
                    .cluster
                    .get(HELM_API_VERSION, "HelmRelease", namespace, name)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(Value::Null);
                releases.push_str(&format!("\nHelmRelease {name}: {}", release["status"]));
            }
            panic!(
                "not all ready:\ninfra-controllers {}\ninfra-configs {}\napps {}{releases}",
                controllers["status"], configs["status"], apps["status"]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let commit = common::git(&h.repo, &["rev-parse", "HEAD"]);
    for ks in [&controllers, &configs, &apps] {
        assert_eq!(
            str_at(ks, &["status", "lastAppliedRevision"]),
            format!("main@sha1:{}", commit.trim())
        );
    }

    // The HelmReleases installed their charts with the example's values.
    let podinfo = h
        .cluster
        .get(HELM_API_VERSION, "HelmRelease", "podinfo", "podinfo")
        .await
        .expect("get")
        .expect("HelmRelease podinfo");
    assert!(ready(&podinfo), "{podinfo}");
    assert_eq!(
        str_at(&podinfo, &["status", "lastAttemptedRevision"]),
        podinfo_version
    );
    let ingress = h
        .cluster
        .get("networking.k8s.io/v1", "Ingress", "podinfo", "podinfo")
        .await
        .expect("get")
        .expect("the staging overlay's ingress");
    assert_eq!(
        ingress.pointer("/spec/rules/0/host"),
        Some(&json!("podinfo.staging"))
    );
    assert!(
        h.cluster
            .get("apps/v1", "Deployment", "podinfo", "podinfo-redis")
            .await
            .expect("get")
            .is_some(),
        "the base values enable redis"
    );
    let issuer = h
        .cluster
        .get("cert-manager.io/v1", "ClusterIssuer", "", "letsencrypt")
        .await
        .expect("get")
        .expect("ClusterIssuer");
    assert_eq!(
        issuer.pointer("/spec/acme/server"),
        Some(&json!(
            "https://acme-staging-v02.api.letsencrypt.org/directory"
        ))
    );
    for (namespace, name) in [
        ("cert-manager", "cert-manager"),
        ("ingress-nginx", "ingress-nginx"),
    ] {
        let release = h
            .cluster
            .get(HELM_API_VERSION, "HelmRelease", namespace, name)
            .await
            .expect("get")
            .expect("HelmRelease");
        assert!(ready(&release), "{release}");
    }
}
