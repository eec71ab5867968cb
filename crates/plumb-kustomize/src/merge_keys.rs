//! Strategic-merge-patch list strategies of built-in Kubernetes kinds (the
//! `x-kubernetes-patch-merge-key` / `x-kubernetes-patch-strategy` facts from the Kubernetes
//! OpenAPI schema), as one table shared by everything in plumb that merges.
//!
//! Lists not in the table are atomic (replaced by a patch), which is also what happens for every
//! list of a custom resource, whose schema kustomize does not know.

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListStrategy {
    /// Key identifying elements of a list of maps; `None` for a list of scalars merged as a set.
    pub merge_key: Option<&'static str>,
    /// The field also carries the `retainKeys` strategy.
    pub retain_keys: bool,
}

/// API groups whose kinds come with a schema (built into Kubernetes).
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
    "extensions",
];

/// Whether objects of this API group have a built-in schema.
pub fn is_builtin_group(group: &str) -> bool {
    BUILTIN_GROUPS.contains(&group)
}

const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// The strategy of the list at `path` (field names from the object root, list indices left out)
/// in an object of `kind` in `group`, or `None` when the list is atomic.
pub fn list_strategy(group: &str, kind: &str, path: &[&str]) -> Option<ListStrategy> {
    if !is_builtin_group(group) {
        return None;
    }
    let (&field, parents) = path.split_last()?;
    let parent = parents.last().copied().unwrap_or("");
    let keyed = |k: &'static str| {
        Some(ListStrategy {
            merge_key: Some(k),
            retain_keys: false,
        })
    };
    match field {
        "containers" | "initContainers" | "ephemeralContainers" => keyed("name"),
        "env" | "imagePullSecrets" | "resourceClaims" | "schedulingGates" => keyed("name"),
        "volumeMounts" => keyed("mountPath"),
        "volumeDevices" => keyed("devicePath"),
        "hostAliases" => keyed("ip"),
        "resizePolicy" => keyed("resourceName"),
        "topologySpreadConstraints" => keyed("topologyKey"),
        "conditions" => keyed("type"),
        "ownerReferences" => keyed("uid"),
        "volumes" if parent == "spec" => Some(ListStrategy {
            merge_key: Some("name"),
            retain_keys: true,
        }),
        "ports" => {
            let in_container = parents.last().is_some_and(|p| CONTAINER_LISTS.contains(p));
            if in_container {
                keyed("containerPort")
            } else if kind == "Service" && parents == ["spec"] {
                keyed("port")
            } else {
                None
            }
        }
        "webhooks"
            if kind == "MutatingWebhookConfiguration"
                || kind == "ValidatingWebhookConfiguration" =>
        {
            keyed("name")
        }
        "finalizers" if parent == "metadata" => Some(ListStrategy {
            merge_key: None,
            retain_keys: false,
        }),
        _ => None,
    }
}

/// Compound list-map keys (`x-kubernetes-list-map-keys`) where the schema has more than one:
/// container ports are keyed by (containerPort, protocol), Service ports by (port, protocol).
pub fn list_map_keys(group: &str, kind: &str, path: &[&str]) -> Option<&'static [&'static str]> {
    let s = list_strategy(group, kind, path)?;
    match s.merge_key {
        Some("containerPort") => Some(&["containerPort", "protocol"]),
        Some("port") => Some(&["port", "protocol"]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ports_merge_by_container_port() {
        let s = list_strategy(
            "apps",
            "Deployment",
            &["spec", "template", "spec", "containers", "ports"],
        );
        assert_eq!(s.and_then(|s| s.merge_key), Some("containerPort"));
        let s = list_strategy("", "Service", &["spec", "ports"]);
        assert_eq!(s.and_then(|s| s.merge_key), Some("port"));
        assert_eq!(
            list_strategy("example.com", "Foo", &["spec", "containers"]),
            None
        );
        assert_eq!(
            list_strategy(
                "apps",
                "Deployment",
                &["spec", "template", "spec", "tolerations"]
            ),
            None
        );
    }
}
