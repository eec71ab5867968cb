//! Dependencies between applications: Argo CD's `spec.dependsOn` (beta), its graph, cycles
//! and the order in which applications may sync.
//!
//! `spec.dependsOn.selectors[]` each pick applications by `labelSelector` (Kubernetes
//! semantics: `matchLabels` and `matchExpressions` with `In`, `NotIn`, `Exists`,
//! `DoesNotExist`) and/or `namePattern` (globs, any may match); when a selector has both, both
//! must match. An application depends on the union of what its selectors pick, among the
//! applications of its own namespace, never itself. `blockOnEmpty` makes an application wait
//! while its selectors pick nothing.
//!
//! **Guarantees**: graph building, cycle detection and ordering are iterative (no recursion,
//! so thousands of applications cannot overflow the stack) and deterministic (ties broken by
//! namespace, then name). A cycle is reported as an error carrying the cycle's path, never as
//! a deadlock.
//!
//! **Errors**: [`DependencyError`]: an invalid selector (naming the application and the field)
//! or a cycle.

use crate::glob::Glob;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// `spec.dependsOn`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependsOn {
    /// Each selector picks zero or more applications.
    #[serde(default)]
    pub selectors: Vec<DependencySelector>,
    /// Wait while the selectors pick no application at all.
    #[serde(default)]
    pub block_on_empty: bool,
    /// Seconds to wait for dependencies before giving up on the sync (the engine enforces it).
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// One entry of `spec.dependsOn.selectors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencySelector {
    /// Labels the application must carry.
    #[serde(default)]
    pub label_selector: Option<LabelSelector>,
    /// Name globs; any may match.
    #[serde(default)]
    pub name_pattern: Vec<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Exact label values.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One set-based requirement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In` / `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Checks the operators and their values.
    ///
    /// **Errors**: an unknown operator, `In`/`NotIn` without values, `Exists`/`DoesNotExist`
    /// with values; the message names `matchExpressions[i]`.
    pub fn validate(&self) -> Result<(), String> {
        for (i, requirement) in self.match_expressions.iter().enumerate() {
            let fail = |problem: &str| format!("matchExpressions[{i}]: {problem}");
            match requirement.operator.as_str() {
                "In" | "NotIn" if requirement.values.is_empty() => {
                    return Err(fail(&format!(
                        "operator {} needs values",
                        requirement.operator
                    )));
                }
                "Exists" | "DoesNotExist" if !requirement.values.is_empty() => {
                    return Err(fail(&format!(
                        "operator {} takes no values",
                        requirement.operator
                    )));
                }
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => {
                    return Err(fail(&format!(
                        "unknown operator {other:?} (expected In, NotIn, Exists or DoesNotExist)"
                    )));
                }
            }
            if requirement.key.is_empty() {
                return Err(fail("key is empty"));
            }
        }
        Ok(())
    }

    /// Whether `labels` satisfy the selector (an empty selector matches everything, as in
    /// Kubernetes). Assumes [`LabelSelector::validate`] passed; unknown operators never match.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => value.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// An application's identity in the graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppRef {
    /// The Application's namespace.
    pub namespace: String,
    /// The Application's name.
    pub name: String,
}

impl fmt::Display for AppRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the graph needs to know about one application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppNode {
    /// Namespace of the Application object.
    pub namespace: String,
    /// Name of the Application object.
    pub name: String,
    /// Its `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// Its `spec.dependsOn`.
    pub depends_on: Option<DependsOn>,
}

/// Why dependencies cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DependencyError {
    /// A selector that cannot be used.
    #[error("application {app}: spec.dependsOn.selectors[{index}]: {problem}")]
    InvalidSelector {
        /// The application declaring it.
        app: AppRef,
        /// Selector index.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// Two applications with the same namespace and name.
    #[error("application {app} is listed twice")]
    Duplicate {
        /// The application.
        app: AppRef,
    },
    /// The dependencies form a cycle; `path` starts and ends with the same application.
    #[error("dependency cycle: {}", .path.iter().map(ToString::to_string).collect::<Vec<_>>().join(" -> "))]
    Cycle {
        /// The applications on the cycle, each depending on the next.
        path: Vec<AppRef>,
    },
}

/// Whether an application may sync as far as its dependencies are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every dependency is ready (or there are none).
    Ready,
    /// These dependencies are not ready yet.
    Waiting(Vec<AppRef>),
    /// `blockOnEmpty` is set and the selectors pick no application.
    WaitingForAny,
}

/// The dependency graph of a set of applications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyGraph {
    /// Each application and what it depends on (sorted).
    edges: BTreeMap<AppRef, BTreeSet<AppRef>>,
    /// Applications with `blockOnEmpty`.
    block_on_empty: BTreeSet<AppRef>,
}

struct CompiledSelector {
    labels: Option<LabelSelector>,
    names: Vec<Glob>,
}

impl DependencyGraph {
    /// Resolves every application's selectors against the others.
    ///
    /// **Errors**: an invalid selector or a duplicate application. Cycles are not an error
    /// here; see [`DependencyGraph::find_cycle`] and [`DependencyGraph::order`].
    pub fn build(apps: &[AppNode]) -> Result<DependencyGraph, DependencyError> {
        let mut graph = DependencyGraph::default();
        let mut by_namespace: BTreeMap<&str, Vec<&AppNode>> = BTreeMap::new();
        for app in apps {
            let key = AppRef {
                namespace: app.namespace.clone(),
                name: app.name.clone(),
            };
            if graph.edges.insert(key.clone(), BTreeSet::new()).is_some() {
                return Err(DependencyError::Duplicate { app: key });
            }
            by_namespace.entry(&app.namespace).or_default().push(app);
        }
        for app in apps {
            let Some(depends_on) = &app.depends_on else {
                continue;
            };
            let key = AppRef {
                namespace: app.namespace.clone(),
                name: app.name.clone(),
            };
            let selectors = compile_selectors(&key, depends_on)?;
            if depends_on.block_on_empty {
                graph.block_on_empty.insert(key.clone());
            }
            let candidates = by_namespace
                .get(app.namespace.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let mut dependencies = BTreeSet::new();
            for candidate in candidates {
                if candidate.name == app.name {
                    continue;
                }
                if selectors.iter().any(|s| s.matches(candidate)) {
                    dependencies.insert(AppRef {
                        namespace: candidate.namespace.clone(),
                        name: candidate.name.clone(),
                    });
                }
            }
            graph.edges.insert(key, dependencies);
        }
        Ok(graph)
    }

    /// What `app` depends on, sorted; empty for unknown applications.
    pub fn dependencies_of(&self, app: &AppRef) -> Vec<AppRef> {
        self.edges
            .get(app)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// What depends on `app`, sorted.
    pub fn dependents_of(&self, app: &AppRef) -> Vec<AppRef> {
        self.edges
            .iter()
            .filter(|(_, deps)| deps.contains(app))
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Whether `app` may sync, given which applications are ready (Argo CD: Synced and
    /// Healthy).
    pub fn readiness(&self, app: &AppRef, is_ready: impl Fn(&AppRef) -> bool) -> Readiness {
        let dependencies = self.edges.get(app);
        let empty = dependencies.is_none_or(BTreeSet::is_empty);
        if empty {
            return if self.block_on_empty.contains(app) {
                Readiness::WaitingForAny
            } else {
                Readiness::Ready
            };
        }
        let waiting: Vec<AppRef> = dependencies
            .into_iter()
            .flatten()
            .filter(|d| !is_ready(d))
            .cloned()
            .collect();
        if waiting.is_empty() {
            Readiness::Ready
        } else {
            Readiness::Waiting(waiting)
        }
    }

    /// A cycle, if any: its path starts and ends with the same application and each element
    /// depends on the next. The first cycle found in namespace/name order is returned.
    pub fn find_cycle(&self) -> Option<Vec<AppRef>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let mut marks: BTreeMap<&AppRef, Mark> =
            self.edges.keys().map(|k| (k, Mark::New)).collect();
        for root in self.edges.keys() {
            if marks.get(root) != Some(&Mark::New) {
                continue;
            }
            // Explicit stack of (node, its dependencies still to visit).
            let mut stack: Vec<(&AppRef, std::collections::btree_set::Iter<'_, AppRef>)> =
                Vec::new();
            marks.insert(root, Mark::OnPath);
            stack.push((root, self.edges[root].iter()));
            while let Some((node, children)) = stack.last_mut() {
                let node = *node;
                match children.next() {
                    Some(child) => match marks.get(child).copied().unwrap_or(Mark::Done) {
                        Mark::New => {
                            marks.insert(child, Mark::OnPath);
                            let grandchildren =
                                self.edges.get(child).map(|s| s.iter()).unwrap_or_default();
                            stack.push((child, grandchildren));
                        }
                        Mark::OnPath => {
                            let start = stack.iter().position(|(n, _)| *n == child).unwrap_or(0);
                            let mut path: Vec<AppRef> =
                                stack[start..].iter().map(|(n, _)| (*n).clone()).collect();
                            path.push(child.clone());
                            return Some(path);
                        }
                        Mark::Done => {}
                    },
                    None => {
                        marks.insert(node, Mark::Done);
                        stack.pop();
                    }
                }
            }
        }
        None
    }

    /// Every application, dependencies before their dependents; among applications whose
    /// dependencies are all placed, namespace/name order.
    ///
    /// **Errors**: [`DependencyError::Cycle`] with the cycle's path.
    pub fn order(&self) -> Result<Vec<AppRef>, DependencyError> {
        if let Some(path) = self.find_cycle() {
            return Err(DependencyError::Cycle { path });
        }
        let mut remaining: BTreeMap<&AppRef, usize> = self
            .edges
            .iter()
            .map(|(app, deps)| (app, deps.len()))
            .collect();
        let mut dependents: BTreeMap<&AppRef, Vec<&AppRef>> = BTreeMap::new();
        for (app, deps) in &self.edges {
            for dep in deps {
                dependents.entry(dep).or_default().push(app);
            }
        }
        let mut ready: BTreeSet<&AppRef> = remaining
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(a, _)| *a)
            .collect();
        let mut order = Vec::with_capacity(self.edges.len());
        while let Some(next) = ready.pop_first() {
            order.push(next.clone());
            for dependent in dependents.get(next).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(count) = remaining.get_mut(dependent) {
                    *count -= 1;
                    if *count == 0 {
                        ready.insert(dependent);
                    }
                }
            }
        }
        Ok(order)
    }
}

fn compile_selectors(
    app: &AppRef,
    depends_on: &DependsOn,
) -> Result<Vec<CompiledSelector>, DependencyError> {
    let mut compiled = Vec::with_capacity(depends_on.selectors.len());
    for (index, selector) in depends_on.selectors.iter().enumerate() {
        let fail = |problem: String| DependencyError::InvalidSelector {
            app: app.clone(),
            index,
            problem,
        };
        if selector.label_selector.is_none() && selector.name_pattern.is_empty() {
            return Err(fail(
                "selects nothing: set labelSelector or namePattern".into(),
            ));
        }
        if let Some(labels) = &selector.label_selector {
            labels
                .validate()
                .map_err(|p| fail(format!("labelSelector.{p}")))?;
        }
        let mut names = Vec::with_capacity(selector.name_pattern.len());
        for (i, pattern) in selector.name_pattern.iter().enumerate() {
            names.push(Glob::new(pattern).map_err(|e| fail(format!("namePattern[{i}]: {e}")))?);
        }
        compiled.push(CompiledSelector {
            labels: selector.label_selector.clone(),
            names,
        });
    }
    Ok(compiled)
}

impl CompiledSelector {
    fn matches(&self, app: &AppNode) -> bool {
        let labels_match = self.labels.as_ref().is_none_or(|s| s.matches(&app.labels));
        let name_matches =
            self.names.is_empty() || self.names.iter().any(|g| g.is_match(&app.name));
        labels_match && name_matches
    }
}

#[cfg(test)]
#[path = "dependencies_tests.rs"]
mod tests;
