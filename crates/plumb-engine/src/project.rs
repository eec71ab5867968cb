//! AppProject restrictions enforced at render and apply time.
//!
//! Projects are read from the control namespace through a short-lived cache (one read per
//! project every [`PROJECT_TTL`], shared by all its applications), so a change to a project
//! takes effect within that time without a request per reconcile.

use crate::Context;
use crate::clusters::Target;
use crate::sources::error_chain;
use plumb_core::application::{API_VERSION, ApplicationSpec};
use plumb_core::project::ProjectSpec;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long a project read serves reconciles.
pub(crate) const PROJECT_TTL: Duration = Duration::from_secs(2);

/// The project an application uses, and what it restricts.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    /// Its name.
    pub name: String,
    /// Its restrictions.
    pub spec: ProjectSpec,
}

/// The project named in `spec` (`default` when empty).
///
/// **Errors** (the message a condition shows): the project does not exist (except `default`,
/// which permits everything until it is created), cannot be read, or its spec is malformed.
pub(crate) async fn load(context: &Context, spec: &ApplicationSpec) -> Result<Project, String> {
    let name = if spec.project.is_empty() {
        "default".to_string()
    } else {
        spec.project.clone()
    };
    let cached = context
        .projects
        .lock()
        .ok()
        .and_then(|cache| cache.get(&name).cloned())
        .filter(|(read, _)| read.elapsed() < PROJECT_TTL);
    let object = match cached {
        Some((_, object)) => object,
        None => {
            let namespace = &context.options.control_namespace;
            let object = context
                .cluster
                .get(API_VERSION, "AppProject", namespace, &name)
                .await
                .map_err(|e| format!("cannot read AppProject {name}: {}", error_chain(&e)))?;
            if let Ok(mut cache) = context.projects.lock() {
                cache.insert(name.clone(), (Instant::now(), object.clone()));
            }
            object
        }
    };
    let spec = match object {
        Some(project) => ProjectSpec::of_project(&project)
            .map_err(|e| format!("AppProject {name}: spec: {e}"))?,
        None if name == "default" => permit_all(),
        None => {
            return Err(format!(
                "Application referencing project {name} which does not exist"
            ));
        }
    };
    Ok(Project { name, spec })
}

/// The `default` project as Argo CD creates it.
fn permit_all() -> ProjectSpec {
    serde_json::from_value(serde_json::json!({"sourceRepos": ["*"],
        "destinations": [{"server": "*", "name": "*", "namespace": "*"}],
        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}))
    .unwrap_or_default()
}

/// Why the project refuses the application as a whole (source, destination, namespace of the
/// Application), in Argo CD's words; `None` when it does not.
pub(crate) fn refusal(
    project: &Project,
    app: &Value,
    spec: &ApplicationSpec,
    target: &Target,
    control_namespace: &str,
) -> Option<String> {
    let p = &project.name;
    let app_namespace = plumb_core::key::str_at(app, &["metadata", "namespace"]);
    let app_name = plumb_core::key::str_at(app, &["metadata", "name"]);
    if !project
        .spec
        .permits_app_namespace(app_namespace, control_namespace)
    {
        return Some(format!(
            "application '{app_name}' in namespace '{app_namespace}' is not permitted to use project '{p}' (spec.sourceNamespaces)"
        ));
    }
    for source in spec.all_sources() {
        if !project.spec.permits_source(&source.repo_url) {
            return Some(format!(
                "application repo {} is not permitted in project '{p}' (spec.sourceRepos)",
                source.repo_url
            ));
        }
    }
    let destination = &spec.destination;
    let (server, name) = (&target.server, &target.name);
    if !project
        .spec
        .permits_destination(server, name, &destination.namespace)
    {
        return Some(format!(
            "application destination server '{server}' and namespace '{}' do not match any of the allowed destinations in project '{p}' (spec.destinations)",
            destination.namespace
        ));
    }
    if project.spec.permit_only_project_scoped_clusters && target.project != project.name {
        return Some(format!(
            "application destination cluster '{name}' is not scoped to project '{p}', which permits only project-scoped clusters (spec.permitOnlyProjectScopedClusters; the cluster Secret's project)"
        ));
    }
    None
}

/// Why the project refuses one object (its kind, or the namespace it goes to).
pub(crate) fn object_refusal(
    project: &Project,
    target: &Target,
    group: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Option<String> {
    let p = &project.name;
    let shown_group = if group.is_empty() { "" } else { group };
    if !project.spec.permits_kind(group, kind, namespace.is_some()) {
        let list = if namespace.is_some() {
            "namespaceResourceWhitelist/namespaceResourceBlacklist"
        } else {
            "clusterResourceWhitelist/clusterResourceBlacklist"
        };
        return Some(format!(
            "resource {shown_group}:{kind} is not permitted in project {p} (spec.{list})"
        ));
    }
    if let Some(namespace) = namespace
        && !project
            .spec
            .permits_destination(&target.server, &target.name, namespace)
    {
        return Some(format!(
            "namespace {namespace} is not permitted in project '{p}' (spec.destinations)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project(spec: Value) -> Project {
        Project {
            name: "team".into(),
            spec: serde_json::from_value(spec).expect("project spec"),
        }
    }

    fn target(name: &str, server: &str, project: &str) -> Target {
        Target {
            name: name.into(),
            server: server.into(),
            namespaces: Vec::new(),
            cluster_resources: false,
            project: project.into(),
            secret: Some(name.into()),
        }
    }

    fn app_spec() -> ApplicationSpec {
        ApplicationSpec::parse(&json!({"project": "team",
            "source": {"repoURL": "https://git.example/x", "path": "."},
            "destination": {"name": "prod", "namespace": "apps"}}))
        .expect("spec")
    }

    #[test]
    fn destinations_match_the_resolved_cluster_name_and_server() {
        let app = json!({"metadata": {"name": "web", "namespace": "argocd"}});
        let by_server = project(json!({"sourceRepos": ["*"],
            "destinations": [{"server": "https://prod:6443", "namespace": "apps"}]}));
        let prod = target("prod", "https://prod:6443", "");
        assert_eq!(
            refusal(&by_server, &app, &app_spec(), &prod, "argocd"),
            None
        );
        let other = target("prod", "https://other", "");
        assert!(refusal(&by_server, &app, &app_spec(), &other, "argocd").is_some());
        assert!(object_refusal(&by_server, &prod, "", "ConfigMap", Some("apps")).is_none());
        assert!(object_refusal(&by_server, &prod, "", "ConfigMap", Some("kube-system")).is_some());
    }

    #[test]
    fn only_project_scoped_clusters_when_the_project_says_so() {
        let app = json!({"metadata": {"name": "web", "namespace": "argocd"}});
        let scoped = project(json!({"sourceRepos": ["*"],
            "destinations": [{"name": "*", "server": "*", "namespace": "*"}],
            "permitOnlyProjectScopedClusters": true}));
        let own = target("prod", "https://prod", "team");
        assert_eq!(refusal(&scoped, &app, &app_spec(), &own, "argocd"), None);
        let shared = target("prod", "https://prod", "");
        let refused = refusal(&scoped, &app, &app_spec(), &shared, "argocd").expect("refused");
        assert!(
            refused.contains("permitOnlyProjectScopedClusters"),
            "{refused}"
        );
    }
}
