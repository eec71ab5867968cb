//! Impersonation and RBAC. The embedded cluster has no authentication: a request is the
//! cluster admin unless it carries `Impersonate-User` (and `Impersonate-Group`) headers, as a
//! controller acting for a service account sends them; it is then authorized as that user
//! against the Roles, ClusterRoles and their bindings in the store, the way kube-apiserver's
//! RBAC authorizer does — verbs, API groups, resources and `resource/subresource`,
//! `resourceNames`, `*` wildcards, subjects of kind User, Group and ServiceAccount — and
//! refused with kube-apiserver's Forbidden message. Discovery, OpenAPI and `/version` stay
//! open to every user, as the `system:discovery` binding makes them on a real cluster.
//! Not simulated: ClusterRole `aggregationRule` (only a role's own `rules` count),
//! `nonResourceURLs` rules, and `Impersonate-Extra-*`/`Impersonate-Uid`.

use axum::http::{HeaderMap, Method};
use serde_json::Value;

use crate::cluster::Cluster;
use crate::errors::ApiError;
use crate::request::{Query, Target};
use crate::store::meta_str;

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub name: String,
    pub groups: Vec<String>,
}

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// The impersonated user of a request, if it names one; a service account user gets the
/// groups kube-apiserver gives it when none are named.
pub(crate) fn impersonated(headers: &HeaderMap) -> Option<User> {
    let name = headers
        .get("impersonate-user")?
        .to_str()
        .ok()?
        .trim()
        .to_string();
    let mut groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if groups.is_empty()
        && let Some((namespace, _)) = name
            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
    {
        groups.push("system:serviceaccounts".into());
        groups.push(format!("system:serviceaccounts:{namespace}"));
    }
    groups.push("system:authenticated".into());
    Some(User { name, groups })
}

/// What a resource request asks to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub verb: &'static str,
    pub group: String,
    /// The plural, with `/subresource` when there is one.
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Attributes {
    /// The attributes of a request to `target`.
    pub(crate) fn of(method: &Method, target: &Target, query: &Query) -> Attributes {
        let watch = target.watch_prefix || query.flag("watch");
        let verb = match (method.as_str(), target.name.is_some()) {
            ("GET", _) if watch => "watch",
            ("GET", true) => "get",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "unknown",
        };
        let mut resource = target.rt.plural.clone();
        if let Some(sub) = &target.subresource {
            resource = format!("{resource}/{sub}");
        }
        Attributes {
            verb,
            group: target.rt.group.clone(),
            resource,
            namespace: target.ns().to_string(),
            name: target.name.clone().unwrap_or_default(),
        }
    }
}

/// Refuses the request unless `user` may do it.
pub(crate) fn authorize(
    cluster: &Cluster,
    user: &User,
    attributes: &Attributes,
) -> Result<(), ApiError> {
    if allowed(cluster, user, attributes) {
        return Ok(());
    }
    let scope = if attributes.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", attributes.namespace)
    };
    let why = format!(
        "User \"{}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        user.name, attributes.verb, attributes.resource, attributes.group
    );
    let plural = attributes
        .resource
        .split('/')
        .next()
        .unwrap_or(&attributes.resource);
    Err(ApiError::rbac_forbidden(
        &attributes.group,
        plural,
        &attributes.name,
        &why,
    ))
}

fn allowed(cluster: &Cluster, user: &User, attributes: &Attributes) -> bool {
    let (bindings, _) = cluster
        .store
        .list("clusterrolebindings.rbac.authorization.k8s.io", None);
    for binding in &bindings {
        if binds(binding, user, "")
            && role_rules(cluster, binding, "")
                .iter()
                .any(|rule| rule_allows(rule, attributes))
        {
            return true;
        }
    }
    if attributes.namespace.is_empty() {
        return false;
    }
    let (bindings, _) = cluster.store.list(
        "rolebindings.rbac.authorization.k8s.io",
        Some(&attributes.namespace),
    );
    bindings.iter().any(|binding| {
        binds(binding, user, &attributes.namespace)
            && role_rules(cluster, binding, &attributes.namespace)
                .iter()
                .any(|rule| rule_allows(rule, attributes))
    })
}

/// Whether one of the binding's subjects is `user` (`namespace`: the RoleBinding's, the
/// default of a ServiceAccount subject's).
fn binds(binding: &Value, user: &User, namespace: &str) -> bool {
    let subjects = binding
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    subjects.iter().any(|subject| {
        let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
        match subject.get("kind").and_then(Value::as_str) {
            Some("User") => name == user.name,
            Some("Group") => user.groups.iter().any(|g| g == name),
            Some("ServiceAccount") => {
                let account_namespace = subject
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(namespace);
                user.name == format!("{SERVICE_ACCOUNT_PREFIX}{account_namespace}:{name}")
            }
            _ => false,
        }
    })
}

/// The rules of the role a binding refers to (empty when it does not exist).
fn role_rules(cluster: &Cluster, binding: &Value, namespace: &str) -> Vec<Value> {
    let reference = binding.get("roleRef").unwrap_or(&Value::Null);
    let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
    let role = match reference.get("kind").and_then(Value::as_str) {
        Some("ClusterRole") => {
            cluster
                .store
                .get("clusterroles.rbac.authorization.k8s.io", "", name)
        }
        Some("Role") if !namespace.is_empty() => {
            cluster
                .store
                .get("roles.rbac.authorization.k8s.io", namespace, name)
        }
        _ => None,
    };
    role.filter(|r| meta_str(r, "deletionTimestamp").is_empty())
        .and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn strings(rule: &Value, field: &str) -> Vec<String> {
    rule.get(field)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a policy rule allows the request, by kube-apiserver's matching rules.
fn rule_allows(rule: &Value, attributes: &Attributes) -> bool {
    let verbs = strings(rule, "verbs");
    if !verbs.iter().any(|v| v == "*" || v == attributes.verb) {
        return false;
    }
    let groups = strings(rule, "apiGroups");
    if !groups.iter().any(|g| g == "*" || *g == attributes.group) {
        return false;
    }
    let resources = strings(rule, "resources");
    let (plural, sub) = match attributes.resource.split_once('/') {
        Some((plural, sub)) => (plural, Some(sub)),
        None => (attributes.resource.as_str(), None),
    };
    let resource_matches = resources.iter().any(|r| {
        r == "*"
            || *r == attributes.resource
            || sub.is_some_and(|sub| *r == format!("*/{sub}") || *r == format!("{plural}/*"))
    });
    if !resource_matches {
        return false;
    }
    let names = strings(rule, "resourceNames");
    names.is_empty() || names.contains(&attributes.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attributes(verb: &'static str, group: &str, resource: &str, name: &str) -> Attributes {
        Attributes {
            verb,
            group: group.into(),
            resource: resource.into(),
            namespace: "apps".into(),
            name: name.into(),
        }
    }

    #[test]
    fn rules_match_as_kube_apiserver_matches_them() {
        let rule = json!({"apiGroups": ["", "apps"], "resources": ["configmaps", "deployments/scale"],
            "verbs": ["get", "patch"]});
        assert!(rule_allows(
            &rule,
            &attributes("get", "", "configmaps", "x")
        ));
        assert!(rule_allows(
            &rule,
            &attributes("patch", "apps", "deployments/scale", "x")
        ));
        assert!(!rule_allows(
            &rule,
            &attributes("patch", "apps", "deployments", "x")
        ));
        assert!(!rule_allows(
            &rule,
            &attributes("delete", "", "configmaps", "x")
        ));
        assert!(!rule_allows(
            &rule,
            &attributes("get", "batch", "configmaps", "x")
        ));
        let wild = json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]});
        assert!(rule_allows(
            &wild,
            &attributes("update", "apps", "deployments/status", "x")
        ));
        assert!(!rule_allows(
            &wild,
            &attributes("update", "apps", "deployments", "x")
        ));
        let named = json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"],
            "resourceNames": ["token"]});
        assert!(rule_allows(
            &named,
            &attributes("get", "", "secrets", "token")
        ));
        assert!(!rule_allows(
            &named,
            &attributes("get", "", "secrets", "other")
        ));
        assert!(
            !rule_allows(&named, &attributes("list", "", "secrets", "")),
            "resourceNames never allow a list"
        );
    }

    #[test]
    fn service_account_users_get_their_groups_and_match_their_subjects() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "impersonate-user",
            "system:serviceaccount:apps:deployer".parse().unwrap(),
        );
        let user = impersonated(&headers).expect("impersonated");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:apps",
                "system:authenticated"
            ]
        );
        let binding = |subject: Value| json!({"subjects": [subject]});
        assert!(binds(
            &binding(json!({"kind": "ServiceAccount", "name": "deployer"})),
            &user,
            "apps"
        ));
        assert!(!binds(
            &binding(json!({"kind": "ServiceAccount", "name": "deployer", "namespace": "other"})),
            &user,
            "apps"
        ));
        assert!(binds(
            &binding(json!({"kind": "Group", "name": "system:serviceaccounts:apps"})),
            &user,
            "x"
        ));
        assert!(!binds(
            &binding(json!({"kind": "User", "name": "deployer"})),
            &user,
            "apps"
        ));
        assert!(impersonated(&HeaderMap::new()).is_none());
    }
}
