//! The CustomResourceDefinitions plumb serves, installed when missing.
//!
//! Flux's kinds ([`flux_definitions`]) have a status subresource, as Flux's own CRDs do, so
//! either set of CRDs works with plumb.
//!
//! The schemas mirror Argo CD's published CRDs at the level plumb needs: no status
//! subresource (Argo CD writes status with ordinary patches, and so does plumb, so either set
//! of CRDs works), unknown fields preserved, and the printer columns `kubectl get` shows.

use plumb_kube::Cluster;
use serde_json::{Value, json};

/// One CRD per Argo CD and Flux kind plumb reads.
pub fn definitions() -> Vec<Value> {
    let mut all = argo_definitions();
    all.extend(flux_definitions());
    all
}

/// Flux's `GitRepository`, `OCIRepository`, `Kustomization`, `HelmRepository` and `HelmRelease`: permissive schemas (unknown fields kept) with a
/// status subresource and the short names and printer columns Flux's own CRDs have.
pub fn flux_definitions() -> Vec<Value> {
    let ready = ".status.conditions[?(@.type==\"Ready\")].status";
    let message = ".status.conditions[?(@.type==\"Ready\")].message";
    vec![
        flux_crd(
            ("source.toolkit.fluxcd.io", &["v1", "v1beta2"]),
            "gitrepositories",
            "GitRepository",
            "gitrepo",
            vec![
                json!({"name": "URL", "type": "string", "jsonPath": ".spec.url"}),
                json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
                json!({"name": "Ready", "type": "string", "jsonPath": ready}),
                json!({"name": "Status", "type": "string", "jsonPath": message}),
            ],
        ),
        flux_crd(
            ("source.toolkit.fluxcd.io", &["v1", "v1beta2"]),
            "ocirepositories",
            "OCIRepository",
            "ocirepo",
            vec![
                json!({"name": "URL", "type": "string", "jsonPath": ".spec.url"}),
                json!({"name": "Ready", "type": "string", "jsonPath": ready}),
                json!({"name": "Status", "type": "string", "jsonPath": message}),
                json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
            ],
        ),
        flux_crd(
            ("kustomize.toolkit.fluxcd.io", &["v1", "v1beta2"]),
            "kustomizations",
            "Kustomization",
            "ks",
            vec![
                json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
                json!({"name": "Ready", "type": "string", "jsonPath": ready}),
                json!({"name": "Status", "type": "string", "jsonPath": message}),
            ],
        ),
        flux_crd(
            ("source.toolkit.fluxcd.io", &["v1", "v1beta2"]),
            "helmrepositories",
            "HelmRepository",
            "helmrepo",
            vec![
                json!({"name": "URL", "type": "string", "jsonPath": ".spec.url"}),
                json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
                json!({"name": "Ready", "type": "string", "jsonPath": ready}),
                json!({"name": "Status", "type": "string", "jsonPath": message}),
            ],
        ),
        flux_crd(
            ("helm.toolkit.fluxcd.io", &["v2", "v2beta2", "v2beta1"]),
            "helmreleases",
            "HelmRelease",
            "hr",
            vec![
                json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
                json!({"name": "Ready", "type": "string", "jsonPath": ready}),
                json!({"name": "Status", "type": "string", "jsonPath": message}),
            ],
        ),
    ]
}

/// A Flux CRD served at `versions`, the first stored. Older versions are served with the
/// `None` conversion strategy, as Flux's own CRDs serve them: their fields are a subset of the
/// stored version's or are reported as not acted on.
fn flux_crd(
    (group, versions): (&str, &[&str]),
    plural: &str,
    kind: &str,
    short_name: &str,
    columns: Vec<Value>,
) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}"),
            "labels": {"app.kubernetes.io/part-of": "plumb"}},
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                "singular": kind.to_lowercase(), "shortNames": [short_name]},
            "scope": "Namespaced",
            "conversion": {"strategy": "None"},
            "versions": versions.iter().enumerate().map(|(index, version)| {
                let mut served = json!({
                    "name": version,
                    "served": true,
                    "storage": index == 0,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                        }
                    }}
                });
                if index > 0 {
                    served["deprecated"] = json!(true);
                    served["deprecationWarning"] = json!(format!(
                        "{group}/{version} {kind} is deprecated, upgrade to {}",
                        versions[0]
                    ));
                }
                served
            }).collect::<Vec<_>>()
        }
    })
}

/// One CRD per Argo CD kind plumb reads.
fn argo_definitions() -> Vec<Value> {
    vec![
        crd(
            "applications",
            "Application",
            &["app", "apps"],
            vec![
                column("Sync Status", ".status.sync.status"),
                column("Health Status", ".status.health.status"),
                column("Revision", ".status.sync.revision").with_priority(10),
            ],
        ),
        crd(
            "appprojects",
            "AppProject",
            &["appproj", "appprojs"],
            vec![],
        ),
        crd(
            "applicationsets",
            "ApplicationSet",
            &["appset", "appsets"],
            vec![],
        ),
    ]
}

struct Column(Value);

impl Column {
    fn with_priority(mut self, priority: i64) -> Column {
        self.0["priority"] = json!(priority);
        self
    }
}

fn column(name: &str, path: &str) -> Column {
    Column(json!({"name": name, "type": "string", "jsonPath": path}))
}

fn crd(plural: &str, kind: &str, short_names: &[&str], columns: Vec<Column>) -> Value {
    let singular = kind.to_lowercase();
    let mut version = json!({
        "name": "v1alpha1",
        "served": true,
        "storage": true,
        "schema": {"openAPIV3Schema": {
            "type": "object",
            "required": ["metadata", "spec"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "operation": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        }}
    });
    if !columns.is_empty() {
        let mut all =
            vec![json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})];
        all.splice(0..0, columns.into_iter().map(|c| c.0));
        version["additionalPrinterColumns"] = Value::Array(all);
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.argoproj.io"),
            "labels": {"app.kubernetes.io/part-of": "plumb"}},
        "spec": {
            "group": "argoproj.io",
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                "singular": singular, "shortNames": short_names},
            "scope": "Namespaced",
            "versions": [version]
        }
    })
}

/// Creates every CRD that does not exist yet and waits until each is served.
pub async fn install_missing(cluster: &Cluster) -> Result<Vec<String>, plumb_kube::Error> {
    let mut installed = Vec::new();
    for definition in definitions() {
        let name = definition["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let existing = cluster
            .get(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "",
                &name,
            )
            .await?;
        if existing.is_none() {
            match cluster.create(&definition).await {
                Ok(_) => installed.push(name.clone()),
                Err(plumb_kube::Error::Api { code: 409, .. }) => {}
                Err(error) => return Err(error),
            }
        }
    }
    for definition in definitions() {
        let kind = definition["spec"]["names"]["kind"]
            .as_str()
            .unwrap_or_default();
        let api_version = format!(
            "{}/{}",
            definition["spec"]["group"].as_str().unwrap_or_default(),
            definition["spec"]["versions"][0]["name"]
                .as_str()
                .unwrap_or_default()
        );
        wait_established(cluster, &api_version, kind).await?;
    }
    Ok(installed)
}

/// Waits (up to 30 s) until discovery serves `kind`, i.e. its CRD is Established.
pub async fn wait_established(
    cluster: &Cluster,
    api_version: &str,
    kind: &str,
) -> Result<(), plumb_kube::Error> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        cluster.forget_kinds();
        match cluster.kind(api_version, kind).await {
            Ok(_) => return Ok(()),
            Err(plumb_kube::Error::UnknownKind { .. })
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Creates the `default` AppProject (any source, any destination, any kind) when it is missing,
/// as Argo CD does, so Applications with `project: default` work out of the box. Best effort:
/// the control-plane namespace may not exist yet.
pub async fn ensure_default_project(cluster: &Cluster, namespace: &str) -> bool {
    let exists = cluster
        .get("argoproj.io/v1alpha1", "AppProject", namespace, "default")
        .await;
    match exists {
        Ok(Some(_)) => return true,
        Ok(None) => {}
        Err(_) => return false,
    }
    let project = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}
    });
    match cluster.create(&project).await {
        Ok(_) => true,
        Err(error) => {
            tracing::debug!(%error, "cannot create the default AppProject");
            false
        }
    }
}
