//! The order in which kinds are applied. Defined here once; the sync and the CLI use it.
//!
//! Argo CD's order (gitops-engine `kindOrder`): namespaces and cluster plumbing first, then
//! configuration, then workloads, then what routes to them. Kinds not listed (custom resources)
//! come after every listed kind, so their CRDs exist before them.

use crate::key::ObjectKey;

const KIND_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

/// The rank of a kind: lower applies first; unknown kinds share the highest rank.
pub fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|known| *known == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// Sort key for applying: kind rank, then group, namespace and name, so the order is stable.
pub fn apply_order(key: &ObjectKey) -> (usize, &str, &str, &str) {
    (kind_rank(&key.kind), &key.group, &key.namespace, &key.name)
}

/// Sort keys in apply order. Pruning uses the reverse.
pub fn sort_for_apply(keys: &mut [ObjectKey]) {
    keys.sort_by(|a, b| apply_order(a).cmp(&apply_order(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: String::new(),
            kind: kind.into(),
            namespace: String::new(),
            name: name.into(),
        }
    }

    #[test]
    fn namespaces_and_crds_before_workloads_and_custom_resources_last() {
        let mut keys = vec![
            key("Widget", "a"),
            key("Deployment", "web"),
            key("CustomResourceDefinition", "widgets"),
            key("Namespace", "prod"),
            key("ConfigMap", "b"),
            key("ConfigMap", "a"),
        ];
        sort_for_apply(&mut keys);
        let kinds: Vec<_> = keys
            .iter()
            .map(|k| format!("{}/{}", k.kind, k.name))
            .collect();
        assert_eq!(
            kinds,
            [
                "Namespace/prod",
                "ConfigMap/a",
                "ConfigMap/b",
                "CustomResourceDefinition/widgets",
                "Deployment/web",
                "Widget/a"
            ]
        );
    }
}
