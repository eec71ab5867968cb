//! The registry of resource types the server serves: the built-in kinds and
//! those defined at run time by Established CustomResourceDefinitions.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

/// Where the scale subresource finds replicas and the selector.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// One served resource (a plural under a group), with every version it is served at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceType {
    pub group: String,
    /// Served versions, the preferred (storage) version first.
    pub versions: Vec<String>,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub has_status: bool,
    pub scale: Option<ScalePaths>,
    /// Whether `metadata.generation` is tracked.
    pub generation: bool,
    /// Built-in kinds accept strategic merge patch; custom resources do not.
    pub builtin: bool,
    /// CRD `additionalPrinterColumns` of the preferred version.
    pub printer_columns: Vec<Value>,
    /// CRD `openAPIV3Schema` of the preferred version, when given.
    pub schema: Option<Value>,
}

impl ResourceType {
    pub fn key(&self) -> String {
        group_resource(&self.group, &self.plural)
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    pub fn preferred_version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// The store key of a resource: `plural.group` (or `plural` for the core group).
pub(crate) fn group_resource(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
}

#[allow(clippy::too_many_arguments)]
const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short,
        all,
        status,
        scale,
    }
}

#[rustfmt::skip]
const BUILTINS: &[Builtin] = &[
    b("", "v1", "Namespace", "namespaces", false, &["ns"], false, true, false),
    b("", "v1", "ConfigMap", "configmaps", true, &["cm"], false, false, false),
    b("", "v1", "Secret", "secrets", true, &[], false, false, false),
    b("", "v1", "Service", "services", true, &["svc"], true, true, false),
    b("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"], false, false, false),
    b("", "v1", "Endpoints", "endpoints", true, &["ep"], false, false, false),
    b("", "v1", "Pod", "pods", true, &["po"], true, true, false),
    b("", "v1", "Event", "events", true, &["ev"], false, false, false),
    b("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"], false, true, false),
    b("", "v1", "PersistentVolume", "persistentvolumes", false, &["pv"], false, true, false),
    b("", "v1", "ResourceQuota", "resourcequotas", true, &["quota"], false, true, false),
    b("", "v1", "LimitRange", "limitranges", true, &["limits"], false, false, false),
    b("", "v1", "Node", "nodes", false, &["no"], false, true, false),
    b("apps", "v1", "Deployment", "deployments", true, &["deploy"], true, true, true),
    b("apps", "v1", "ReplicaSet", "replicasets", true, &["rs"], true, true, true),
    b("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"], true, true, true),
    b("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"], true, true, false),
    b("apps", "v1", "ControllerRevision", "controllerrevisions", true, &[], false, false, false),
    b("batch", "v1", "Job", "jobs", true, &[], true, true, false),
    b("batch", "v1", "CronJob", "cronjobs", true, &["cj"], true, true, false),
    b("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["ing"], false, true, false),
    b("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, &[], false, false, false),
    b("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"], false, false, false),
    b("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["hpa"], true, true, false),
    b("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"], false, true, false),
    b("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[], false, false, false),
    b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[], false, false, false),
    b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, &[], false, false, false),
    b("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, &[], false, false, false),
    b("coordination.k8s.io", "v1", "Lease", "leases", true, &[], false, false, false),
    b("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, &[], false, false, false),
    b("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, &["sc"], false, false, false),
    b("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, &["pc"], false, false, false),
    b("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, &["crd", "crds"], false, true, false),
    b("events.k8s.io", "v1", "Event", "events", true, &["ev"], false, false, false),
    b("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", false, &[], false, false, false),
    b("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", false, &[], false, false, false),
    b("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", false, &[], false, false, false),
    b("storage.k8s.io", "v1", "CSIDriver", "csidrivers", false, &[], false, false, false),
];

/// Groups whose kinds track `metadata.generation`.
const GENERATION_GROUPS: &[&str] = &[
    "apps",
    "batch",
    "networking.k8s.io",
    "policy",
    "autoscaling",
    "apiextensions.k8s.io",
];

fn builtin_types() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(|b| ResourceType {
            group: b.group.to_string(),
            versions: vec![b.version.to_string()],
            kind: b.kind.to_string(),
            plural: b.plural.to_string(),
            singular: b.kind.to_ascii_lowercase(),
            namespaced: b.namespaced,
            short_names: b.short.iter().map(|s| s.to_string()).collect(),
            categories: if b.all {
                vec!["all".to_string()]
            } else {
                vec![]
            },
            has_status: b.status,
            scale: b.scale.then(|| ScalePaths {
                spec_replicas: ".spec.replicas".into(),
                status_replicas: ".status.replicas".into(),
                label_selector: Some(".status.selector".into()),
            }),
            generation: GENERATION_GROUPS.contains(&b.group),
            builtin: true,
            printer_columns: vec![],
            schema: None,
        })
        .collect()
}

/// Thread-safe registry; CRDs add and remove entries at run time.
pub(crate) struct Registry {
    inner: RwLock<BTreeMap<String, Arc<ResourceType>>>,
}

impl Registry {
    pub fn new() -> Self {
        let map = builtin_types()
            .into_iter()
            .map(|t| (t.key(), Arc::new(t)))
            .collect();
        Registry {
            inner: RwLock::new(map),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ResourceType>>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The type served at `group/version` under `plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        let t = self.read().get(&group_resource(group, plural)).cloned()?;
        t.versions.iter().any(|v| v == version).then_some(t)
    }

    pub fn by_key(&self, key: &str) -> Option<Arc<ResourceType>> {
        self.read().get(key).cloned()
    }

    /// Finds the type for an `apiVersion` + `kind` pair.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = split_api_version(api_version);
        self.read()
            .values()
            .find(|t| t.group == group && t.kind == kind && t.versions.iter().any(|v| v == version))
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        self.read().values().cloned().collect()
    }

    pub fn insert(&self, t: ResourceType) {
        let mut w = self.inner.write().unwrap_or_else(|e| e.into_inner());
        w.insert(t.key(), Arc::new(t));
    }

    pub fn remove(&self, key: &str) {
        let mut w = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if w.get(key).is_some_and(|t| !t.builtin) {
            w.remove(key);
        }
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Builds the served type for a CRD object, or `None` when the CRD is malformed.
pub(crate) fn from_crd(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let group = spec.get("group")?.as_str()?.to_string();
    let plural = names.get("plural")?.as_str()?.to_string();
    let kind = names.get("kind")?.as_str()?.to_string();
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec.get("versions")?.as_array()?;
    let mut served: Vec<&Value> = versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .collect();
    served.sort_by_key(|v| !v.get("storage").and_then(Value::as_bool).unwrap_or(false));
    let preferred = *served.first()?;
    let sub = preferred.get("subresources");
    let scale = sub.and_then(|s| s.get("scale")).map(|s| ScalePaths {
        spec_replicas: s
            .get("specReplicasPath")
            .and_then(Value::as_str)
            .unwrap_or(".spec.replicas")
            .to_string(),
        status_replicas: s
            .get("statusReplicasPath")
            .and_then(Value::as_str)
            .unwrap_or(".status.replicas")
            .to_string(),
        label_selector: s
            .get("labelSelectorPath")
            .and_then(Value::as_str)
            .map(str::to_string),
    });
    Some(ResourceType {
        group,
        versions: served
            .iter()
            .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
            .collect(),
        kind,
        plural,
        singular,
        namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        has_status: sub.and_then(|s| s.get("status")).is_some(),
        scale,
        generation: true,
        builtin: false,
        printer_columns: preferred
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        schema: preferred
            .get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .cloned(),
    })
}
