//! Dependencies between applications (`spec.dependsOn`): an operation starts only when every
//! application it depends on is Synced and Healthy.
//!
//! The graph comes from the Applications the controller already holds, so the check costs no
//! request. A cycle through the application is an error named in a condition, never a wait
//! that cannot end.

use crate::Context;
use crate::queue::AppId;
use plumb_core::application::ApplicationSpec;
use plumb_core::dependencies::{AppNode, AppRef, DependencyGraph, DependsOn, Readiness};
use plumb_core::key::str_at;
use serde_json::Value;
use std::collections::BTreeMap;

/// Whether an application's operation may start, as far as its dependencies go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    /// No dependencies, or all are Synced and Healthy.
    Open,
    /// Some dependencies are not ready; the message names them.
    Waiting(String),
    /// The dependencies cannot be resolved (a cycle, an invalid selector).
    Invalid(String),
}

fn node(app: &Value) -> AppNode {
    let labels: BTreeMap<String, String> = app
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    AppNode {
        namespace: str_at(app, &["metadata", "namespace"]).to_string(),
        name: str_at(app, &["metadata", "name"]).to_string(),
        labels,
        depends_on: app
            .pointer("/spec/dependsOn")
            .filter(|d| !d.is_null())
            .and_then(|d| serde_json::from_value::<DependsOn>(d.clone()).ok()),
    }
}

fn is_ready(app: &Value) -> bool {
    str_at(app, &["status", "sync", "status"]) == "Synced"
        && str_at(app, &["status", "health", "status"]) == "Healthy"
}

/// Decides whether `id` (whose spec is `spec`) may start an operation now.
pub(crate) fn check(context: &Context, id: &AppId, spec: &ApplicationSpec) -> Gate {
    if spec.depends_on.is_none() {
        return Gate::Open;
    }
    let me = AppRef {
        namespace: id.0.clone(),
        name: id.1.clone(),
    };
    let (nodes, ready): (Vec<AppNode>, BTreeMap<AppRef, bool>) = context.with_apps(|apps| {
        apps.values()
            .map(|app| {
                let node = node(app);
                let key = AppRef {
                    namespace: node.namespace.clone(),
                    name: node.name.clone(),
                };
                (node, (key, is_ready(app)))
            })
            .unzip()
    });
    decide(&nodes, &me, |app| ready.get(app).copied().unwrap_or(false))
}

/// The pure decision over a set of applications.
fn decide(nodes: &[AppNode], me: &AppRef, ready: impl Fn(&AppRef) -> bool) -> Gate {
    let graph = match DependencyGraph::build(nodes) {
        Ok(graph) => graph,
        Err(error) => return Gate::Invalid(error.to_string()),
    };
    if let Some(cycle) = graph.find_cycle().filter(|cycle| cycle.contains(me)) {
        let path: Vec<String> = cycle.iter().map(ToString::to_string).collect();
        return Gate::Invalid(format!(
            "spec.dependsOn: dependency cycle: {}",
            path.join(" -> ")
        ));
    }
    match graph.readiness(me, ready) {
        Readiness::Ready => Gate::Open,
        Readiness::WaitingForAny => Gate::Waiting(
            "waiting for dependencies: spec.dependsOn selects no application yet (blockOnEmpty)"
                .into(),
        ),
        Readiness::Waiting(apps) => {
            let names: Vec<String> = apps.iter().map(ToString::to_string).collect();
            Gate::Waiting(format!(
                "waiting for dependencies to be Synced and Healthy: {}",
                names.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(name: &str, labels: Value, depends_on: Value) -> AppNode {
        node(
            &json!({"metadata": {"namespace": "argocd", "name": name, "labels": labels},
            "spec": {"dependsOn": depends_on}}),
        )
    }

    fn me(name: &str) -> AppRef {
        AppRef {
            namespace: "argocd".into(),
            name: name.into(),
        }
    }

    #[test]
    fn waits_for_what_the_selectors_pick_until_it_is_ready() {
        let nodes = [
            app("db", json!({"tier": "data"}), Value::Null),
            app(
                "web",
                json!({}),
                json!({"selectors": [{"labelSelector": {"matchLabels": {"tier": "data"}}}]}),
            ),
        ];
        assert_eq!(
            decide(&nodes, &me("web"), |_| false),
            Gate::Waiting("waiting for dependencies to be Synced and Healthy: argocd/db".into())
        );
        assert_eq!(decide(&nodes, &me("web"), |_| true), Gate::Open);
        assert_eq!(decide(&nodes, &me("db"), |_| false), Gate::Open);
    }

    #[test]
    fn a_cycle_is_an_error_for_the_applications_on_it_only() {
        let nodes = [
            app(
                "a",
                json!({}),
                json!({"selectors": [{"namePattern": ["b"]}]}),
            ),
            app(
                "b",
                json!({}),
                json!({"selectors": [{"namePattern": ["a"]}]}),
            ),
            app(
                "c",
                json!({}),
                json!({"selectors": [{"namePattern": ["a"]}]}),
            ),
        ];
        match decide(&nodes, &me("a"), |_| true) {
            Gate::Invalid(message) => assert!(
                message.contains("dependency cycle: argocd/a -> argocd/b -> argocd/a"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(&nodes, &me("c"), |_| false),
            Gate::Waiting("waiting for dependencies to be Synced and Healthy: argocd/a".into())
        );
    }

    #[test]
    fn block_on_empty_waits_while_nothing_matches() {
        let nodes = [app(
            "web",
            json!({}),
            json!({"selectors": [{"namePattern": ["db-*"]}], "blockOnEmpty": true}),
        )];
        assert!(matches!(
            decide(&nodes, &me("web"), |_| true),
            Gate::Waiting(_)
        ));
    }

    #[test]
    fn an_invalid_selector_is_named() {
        let nodes = [app(
            "web",
            json!({}),
            json!({"selectors": [{"labelSelector": {"matchExpressions": [{"key": "x", "operator": "Near"}]}}]}),
        )];
        match decide(&nodes, &me("web"), |_| true) {
            Gate::Invalid(message) => {
                assert!(message.contains("spec.dependsOn.selectors[0]"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
