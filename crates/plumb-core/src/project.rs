//! AppProject restrictions (`argoproj.io/v1alpha1` AppProject `spec`): which repositories an
//! application may use, where it may deploy, which kinds it may manage, and from which
//! namespaces Applications may use the project.
//!
//! Matching follows Argo CD: patterns are globs ([`crate::glob`]); a pattern starting with `!`
//! denies what it matches and a deny always wins; an empty `clusterResourceWhitelist` permits
//! no cluster-scoped kind, an empty `namespaceResourceWhitelist` permits every namespaced kind.
//!
//! **Guarantees**: pure, never panics; every refusal names the project and the field.

use crate::glob;
use serde::{Deserialize, Serialize};

/// The parts of an AppProject's `spec` that restrict applications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSpec {
    /// Repository URL patterns.
    #[serde(default)]
    pub source_repos: Vec<String>,
    /// Permitted destinations.
    #[serde(default)]
    pub destinations: Vec<ProjectDestination>,
    /// Cluster-scoped kinds permitted (none when empty).
    #[serde(default)]
    pub cluster_resource_whitelist: Vec<GroupKind>,
    /// Cluster-scoped kinds refused.
    #[serde(default)]
    pub cluster_resource_blacklist: Vec<GroupKind>,
    /// Namespaced kinds permitted (all when empty).
    #[serde(default)]
    pub namespace_resource_whitelist: Vec<GroupKind>,
    /// Namespaced kinds refused.
    #[serde(default)]
    pub namespace_resource_blacklist: Vec<GroupKind>,
    /// Namespaces (besides the control namespace) whose Applications may use the project.
    #[serde(default)]
    pub source_namespaces: Vec<String>,
    /// Only clusters scoped to this project (a cluster Secret's `project`) are destinations.
    #[serde(default)]
    pub permit_only_project_scoped_clusters: bool,
}

/// One entry of `spec.destinations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectDestination {
    /// API server URL pattern.
    #[serde(default)]
    pub server: String,
    /// Cluster name pattern.
    #[serde(default)]
    pub name: String,
    /// Namespace pattern.
    #[serde(default)]
    pub namespace: String,
}

/// A `{group, kind}` pattern pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupKind {
    /// API group pattern (empty: the core group).
    #[serde(default)]
    pub group: String,
    /// Kind pattern.
    #[serde(default)]
    pub kind: String,
}

/// Whether `text` is permitted by `patterns`: some positive pattern matches and no `!`
/// pattern does.
fn permitted(patterns: &[String], text: &str) -> bool {
    let mut allowed = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(denied) if glob::matches(denied, text) => return false,
            Some(_) => {}
            None => allowed |= glob::matches(pattern, text),
        }
    }
    allowed
}

fn kind_listed(list: &[GroupKind], group: &str, kind: &str) -> bool {
    list.iter().any(|gk| {
        let group_matches = if gk.group.is_empty() {
            group.is_empty()
        } else {
            glob::matches(&gk.group, group)
        };
        group_matches && glob::matches(&gk.kind, kind)
    })
}

impl ProjectSpec {
    /// Reads an AppProject object's `spec`.
    ///
    /// **Errors**: a field of the wrong type, named.
    pub fn of_project(project: &serde_json::Value) -> Result<ProjectSpec, String> {
        match project.get("spec") {
            None | Some(serde_json::Value::Null) => Ok(ProjectSpec::default()),
            Some(spec) => serde_json::from_value(spec.clone()).map_err(|e| e.to_string()),
        }
    }

    /// Whether the project lets an application use `repo_url`.
    pub fn permits_source(&self, repo_url: &str) -> bool {
        let normalized = normalize_repo(repo_url);
        let patterns: Vec<String> = self
            .source_repos
            .iter()
            .map(|p| match p.strip_prefix('!') {
                Some(denied) => format!("!{}", normalize_repo(denied)),
                None => normalize_repo(p),
            })
            .collect();
        permitted(&patterns, &normalized)
    }

    /// Whether the project lets an application deploy to `namespace` of the cluster named
    /// `cluster_name` at `server` (either may match a destination). As Argo CD decides: some
    /// destination matches, and no destination with a `!` pattern is violated.
    pub fn permits_destination(&self, server: &str, cluster_name: &str, namespace: &str) -> bool {
        let matches = |pattern: &str, value: &str| match pattern.strip_prefix('!') {
            Some(denied) => !glob::matches(denied, value),
            None => glob::matches(pattern, value),
        };
        let (mut any_matched, mut deny_violated) = (false, false);
        for destination in &self.destinations {
            let name_ok = !cluster_name.is_empty() && matches(&destination.name, cluster_name);
            let server_ok = !server.is_empty() && matches(&destination.server, server);
            let namespace_ok = matches(&destination.namespace, namespace);
            if (server_ok || name_ok) && namespace_ok {
                any_matched = true;
            } else if (!name_ok && destination.name.starts_with('!'))
                || (!server_ok && destination.server.starts_with('!'))
                || (!namespace_ok && destination.namespace.starts_with('!'))
            {
                deny_violated = true;
            }
        }
        any_matched && !deny_violated
    }

    /// Whether the project lets an application manage objects of `group`/`kind`.
    pub fn permits_kind(&self, group: &str, kind: &str, namespaced: bool) -> bool {
        if namespaced {
            (self.namespace_resource_whitelist.is_empty()
                || kind_listed(&self.namespace_resource_whitelist, group, kind))
                && !kind_listed(&self.namespace_resource_blacklist, group, kind)
        } else {
            kind_listed(&self.cluster_resource_whitelist, group, kind)
                && !kind_listed(&self.cluster_resource_blacklist, group, kind)
        }
    }

    /// Whether Applications in `namespace` may use the project (the control namespace always
    /// may).
    pub fn permits_app_namespace(&self, namespace: &str, control_namespace: &str) -> bool {
        namespace == control_namespace || permitted(&self.source_namespaces, namespace)
    }
}

/// Repository URLs compare without a trailing `/` or `.git`, case-insensitively in the host,
/// as Argo CD normalizes them.
fn normalize_repo(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix(".git").unwrap_or(trimmed);
    trimmed.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> ProjectSpec {
        ProjectSpec::of_project(&json!({ "spec": value })).unwrap()
    }

    #[test]
    fn sources_match_globs_and_denials_win() {
        let p = spec(
            json!({"sourceRepos": ["https://github.com/acme/*", "!https://github.com/acme/secret"]}),
        );
        assert!(p.permits_source("https://github.com/acme/apps.git"));
        assert!(p.permits_source("https://github.com/ACME/apps/"));
        assert!(!p.permits_source("https://github.com/acme/secret"));
        assert!(!p.permits_source("https://gitlab.com/acme/apps"));
        assert!(!spec(json!({})).permits_source("https://github.com/acme/apps"));
    }

    #[test]
    fn destinations_by_server_or_name_and_namespace() {
        let p = spec(json!({"destinations": [
            {"server": "https://kubernetes.default.svc", "namespace": "team-*"},
            {"name": "prod", "namespace": "shop"}]}));
        assert!(p.permits_destination("https://kubernetes.default.svc", "in-cluster", "team-a"));
        assert!(!p.permits_destination(
            "https://kubernetes.default.svc",
            "in-cluster",
            "kube-system"
        ));
        assert!(p.permits_destination("", "prod", "shop"));
        assert!(!p.permits_destination("https://other", "other", "shop"));
        let p = spec(json!({"destinations": [
            {"server": "*", "namespace": "*"},
            {"server": "*", "namespace": "!kube-system"}]}));
        assert!(p.permits_destination("https://x", "x", "apps"));
        assert!(!p.permits_destination("https://x", "x", "kube-system"));
    }

    #[test]
    fn kinds_cluster_scoped_need_a_whitelist_namespaced_do_not() {
        let p = spec(
            json!({"namespaceResourceBlacklist": [{"group": "", "kind": "ResourceQuota"}],
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}]}),
        );
        assert!(p.permits_kind("", "ConfigMap", true));
        assert!(!p.permits_kind("", "ResourceQuota", true));
        assert!(p.permits_kind("", "Namespace", false));
        assert!(!p.permits_kind("rbac.authorization.k8s.io", "ClusterRole", false));
        let p = spec(
            json!({"namespaceResourceWhitelist": [{"group": "apps", "kind": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            "clusterResourceBlacklist": [{"group": "apiextensions.k8s.io", "kind": "*"}]}),
        );
        assert!(p.permits_kind("apps", "Deployment", true));
        assert!(!p.permits_kind("", "ConfigMap", true));
        assert!(p.permits_kind("", "Namespace", false));
        assert!(!p.permits_kind("apiextensions.k8s.io", "CustomResourceDefinition", false));
    }

    #[test]
    fn app_namespaces() {
        let p = spec(json!({"sourceNamespaces": ["team-*"]}));
        assert!(p.permits_app_namespace("argocd", "argocd"));
        assert!(p.permits_app_namespace("team-a", "argocd"));
        assert!(!p.permits_app_namespace("other", "argocd"));
    }

    #[test]
    fn a_malformed_spec_is_named() {
        let error =
            ProjectSpec::of_project(&json!({"spec": {"sourceRepos": "not-a-list"}})).unwrap_err();
        assert!(error.contains("sequence"), "{error}");
    }
}
