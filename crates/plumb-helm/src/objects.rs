//! Host objects templates see: `.Files`, `.Capabilities.APIVersions`, `.Capabilities.KubeVersion`.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;

use crate::chart::glob_match;
use crate::value::{Object, Value};

/// `.Files`: the chart's non-template files.
#[derive(Debug)]
pub struct Files(pub BTreeMap<String, Vec<u8>>);

impl Object for Files {
    fn type_name(&self) -> &'static str {
        "engine.files"
    }
    fn field(&self, name: &str) -> Option<Value> {
        // `.Files` is a map in Go: `.Files.name` reads a top-level file.
        self.0
            .get(name)
            .map(|b| Value::str(String::from_utf8_lossy(b).to_string()))
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let arg = || args.first().map(crate::funcs_s).unwrap_or_default();
        Some(Ok(match name {
            "Get" => Value::str(
                self.0
                    .get(&arg())
                    .map(|b| String::from_utf8_lossy(b).to_string())
                    .unwrap_or_default(),
            ),
            "GetBytes" => Value::str(
                self.0
                    .get(&arg())
                    .map(|b| String::from_utf8_lossy(b).to_string())
                    .unwrap_or_default(),
            ),
            "Lines" => {
                let Some(b) = self.0.get(&arg()) else {
                    return Some(Ok(Value::list(Vec::new())));
                };
                let s = String::from_utf8_lossy(b).to_string();
                let s = s.strip_suffix('\n').unwrap_or(&s);
                Value::list(s.split('\n').map(Value::str).collect())
            }
            "Glob" => {
                let p = arg();
                Value::Obj(Rc::new(Files(
                    self.0
                        .iter()
                        .filter(|(k, _)| glob_match(&p, k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                )))
            }
            "AsConfig" => {
                let m: BTreeMap<String, Value> = self
                    .0
                    .iter()
                    .map(|(k, v)| (base(k), Value::str(String::from_utf8_lossy(v).to_string())))
                    .collect();
                if m.is_empty() {
                    return Some(Ok(Value::str("")));
                }
                Value::str(crate::yaml::to_yaml(&Value::map(m)).trim_end_matches('\n'))
            }
            "AsSecrets" => {
                let m: BTreeMap<String, Value> = self
                    .0
                    .iter()
                    .map(|(k, v)| {
                        (
                            base(k),
                            Value::str(base64::engine::general_purpose::STANDARD.encode(v)),
                        )
                    })
                    .collect();
                if m.is_empty() {
                    return Some(Ok(Value::str("")));
                }
                Value::str(crate::yaml::to_yaml(&Value::map(m)).trim_end_matches('\n'))
            }
            _ => return None,
        }))
    }
    fn display(&self) -> String {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| {
                let bytes: Vec<String> = v.iter().map(|b| b.to_string()).collect();
                format!("{k}:[{}]", bytes.join(" "))
            })
            .collect();
        format!("map[{}]", items.join(" "))
    }
    fn entries(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .map(|(k, v)| {
                    (
                        Value::str(k.as_str()),
                        Value::str(String::from_utf8_lossy(v).to_string()),
                    )
                })
                .collect(),
        )
    }
}

fn base(p: &str) -> String {
    p.rsplit('/').next().unwrap_or(p).to_string()
}

/// `.Capabilities.APIVersions`.
#[derive(Debug)]
pub struct ApiVersions(pub Vec<String>);

impl Object for ApiVersions {
    fn type_name(&self) -> &'static str {
        "chartutil.VersionSet"
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match name {
            "Has" => {
                let want = args.first().map(crate::funcs_s).unwrap_or_default();
                Some(Ok(Value::Bool(self.0.contains(&want))))
            }
            _ => None,
        }
    }
    fn display(&self) -> String {
        format!("[{}]", self.0.join(" "))
    }
}

/// `.Capabilities.KubeVersion`.
#[derive(Debug)]
pub struct KubeVersion {
    pub version: String,
    pub major: String,
    pub minor: String,
}

impl Object for KubeVersion {
    fn type_name(&self) -> &'static str {
        "chartutil.KubeVersion"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Version" | "GitVersion" | "String" => Some(Value::str(self.version.as_str())),
            "Major" => Some(Value::str(self.major.as_str())),
            "Minor" => Some(Value::str(self.minor.as_str())),
            _ => None,
        }
    }
    fn call(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }
    fn display(&self) -> String {
        self.version.clone()
    }
}

/// Kinds per group/version that `APIVersions.Has "group/version/Kind"` reports.
pub const DEFAULT_KINDS: &[(&str, &[&str])] = &[
    (
        "v1",
        &[
            "Binding",
            "ConfigMap",
            "Endpoints",
            "Event",
            "LimitRange",
            "Namespace",
            "Node",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "Pod",
            "PodTemplate",
            "ReplicationController",
            "ResourceQuota",
            "Secret",
            "Service",
            "ServiceAccount",
        ],
    ),
    (
        "admissionregistration.k8s.io/v1",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ],
    ),
    ("apiextensions.k8s.io/v1", &["CustomResourceDefinition"]),
    ("apiregistration.k8s.io/v1", &["APIService"]),
    (
        "apps/v1",
        &[
            "ControllerRevision",
            "DaemonSet",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
        ],
    ),
    ("autoscaling/v1", &["HorizontalPodAutoscaler"]),
    ("autoscaling/v2", &["HorizontalPodAutoscaler"]),
    ("batch/v1", &["CronJob", "Job"]),
    ("certificates.k8s.io/v1", &["CertificateSigningRequest"]),
    ("coordination.k8s.io/v1", &["Lease"]),
    ("discovery.k8s.io/v1", &["EndpointSlice"]),
    ("events.k8s.io/v1", &["Event"]),
    (
        "flowcontrol.apiserver.k8s.io/v1",
        &["FlowSchema", "PriorityLevelConfiguration"],
    ),
    (
        "networking.k8s.io/v1",
        &["Ingress", "IngressClass", "NetworkPolicy"],
    ),
    ("node.k8s.io/v1", &["RuntimeClass"]),
    ("policy/v1", &["PodDisruptionBudget"]),
    (
        "rbac.authorization.k8s.io/v1",
        &["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"],
    ),
    ("scheduling.k8s.io/v1", &["PriorityClass"]),
    (
        "storage.k8s.io/v1",
        &[
            "CSIDriver",
            "CSINode",
            "CSIStorageCapacity",
            "StorageClass",
            "VolumeAttachment",
        ],
    ),
];

/// API versions a fresh cluster serves (Helm's DefaultVersionSet, group/version form).
pub const DEFAULT_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
    "apiextensions.k8s.io/v1beta1",
    "apiregistration.k8s.io/v1",
    "apiregistration.k8s.io/v1beta1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "autoscaling/v2beta1",
    "autoscaling/v2beta2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "coordination.k8s.io/v1beta1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "scheduling.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1beta1",
];
