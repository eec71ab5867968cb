//! `Kustomization`: build `spec.path` of its source's revision, apply, prune, check health,
//! and write Flux's status (`Ready` with Flux's reasons, `lastAppliedRevision`,
//! `lastAttemptedRevision`, `inventory`).
//!
//! Reasons written on `Ready=False`: `InvalidSpec` (with `Stalled`), `DependencyNotReady`,
//! `ArtifactFailed`, `BuildFailed`, `ReconciliationFailed`, `PruneFailed`,
//! `HealthCheckFailed`; `Ready=Unknown` with `Progressing` while health checks run; and
//! `ReconciliationSucceeded` on success.

use super::apply::{self, ApplySettings};
use super::conditions::{self, Condition};
use super::git_repository::{self, duration};
use super::inventory::{self, Entry};
use super::post_build::{PostBuild, post_build};
use super::substitute::is_valid_name;
use super::{Flux, FluxKind, REQUESTED_AT_ANNOTATION, is_ready};
use crate::queue::AppId;
use crate::sources::{Resolved, error_chain};
use crate::status::now;
use base64::Engine as _;
use plumb_core::key::{ObjectKey, str_at};
use plumb_render::flux::{FluxBuild, KustomizeImage, KustomizePatch, KustomizePatchTarget};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How soon a Kustomization waiting for a dependency looks again (Flux's default
/// `--requeue-dependency`); a dependency becoming ready wakes it sooner.
const REQUEUE_DEPENDENCY: Duration = Duration::from_secs(30);

/// `spec.sourceRef`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// `GitRepository` (the only kind served yet), `OCIRepository`, `Bucket`...
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace, defaulting to the Kustomization's.
    pub namespace: String,
}

/// One `spec.postBuild.substituteFrom` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstituteFrom {
    /// `ConfigMap` or `Secret`.
    pub kind: String,
    /// Name, in the Kustomization's namespace.
    pub name: String,
    /// A missing object is not an error.
    pub optional: bool,
}

/// The parts of a Kustomization spec plumb acts on.
#[derive(Debug, Clone)]
pub struct KustomizationSpec {
    /// `spec.sourceRef`.
    pub source: SourceRef,
    /// `spec.path` (`./` by default).
    pub path: String,
    /// `spec.interval`.
    pub interval: Duration,
    /// `spec.retryInterval` (the interval by default).
    pub retry_interval: Duration,
    /// `spec.timeout` (the interval by default).
    pub timeout: Duration,
    /// `spec.prune`.
    pub prune: bool,
    /// `spec.wait`.
    pub wait: bool,
    /// `spec.force`.
    pub force: bool,
    /// `spec.suspend`.
    pub suspend: bool,
    /// `spec.healthChecks`: (apiVersion, key).
    pub health_checks: Vec<(String, ObjectKey)>,
    /// `spec.dependsOn`: (namespace, name).
    pub depends_on: Vec<AppId>,
    /// Target namespace, prefix, suffix, images, patches, components.
    pub build: FluxBuild,
    /// `spec.commonMetadata.labels`.
    pub common_labels: BTreeMap<String, String>,
    /// `spec.commonMetadata.annotations`.
    pub common_annotations: BTreeMap<String, String>,
    /// Whether `spec.postBuild` is set.
    pub post_build: bool,
    /// `spec.postBuild.substitute`.
    pub substitute: BTreeMap<String, String>,
    /// `spec.postBuild.substituteFrom`.
    pub substitute_from: Vec<SubstituteFrom>,
    /// Fields accepted but not acted on, with why.
    pub not_acted_on: Vec<String>,
}

/// A spec plumb cannot work with, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: {problem}")]
pub struct SpecError {
    /// Field path under `spec`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        problem: problem.into(),
    }
}

fn text(value: &Value, field: &str) -> Option<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn flag(value: &Value, field: &str) -> bool {
    value.get(field).and_then(Value::as_bool) == Some(true)
}

fn entries<'a>(value: &'a Value, field: &str) -> Result<&'a [Value], SpecError> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(invalid(field, "must be a list")),
    }
}

fn string_map(value: &Value, field: &str) -> Result<BTreeMap<String, String>, SpecError> {
    let mut map = BTreeMap::new();
    match value.get(field) {
        None | Some(Value::Null) => {}
        Some(Value::Object(entries)) => {
            for (key, entry) in entries {
                let entry = match entry {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(invalid(format!("{field}.{key}"), "must be a string")),
                };
                map.insert(key.clone(), entry);
            }
        }
        Some(_) => return Err(invalid(field, "must be a map of strings")),
    }
    Ok(map)
}

/// `spec.sourceRef` of a Kustomization object, read leniently (for routing events).
pub fn source_ref(object: &Value, own_namespace: &str) -> SourceRef {
    let source = object.pointer("/spec/sourceRef").unwrap_or(&Value::Null);
    SourceRef {
        kind: text(source, "kind").unwrap_or_default(),
        name: text(source, "name").unwrap_or_default(),
        namespace: text(source, "namespace").unwrap_or_else(|| own_namespace.to_string()),
    }
}

/// `spec.dependsOn` of a Kustomization object as (namespace, name), read leniently.
pub fn depends_on(object: &Value, own_namespace: &str) -> Vec<AppId> {
    object
        .pointer("/spec/dependsOn")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let name = text(d, "name")?;
            Some((
                text(d, "namespace").unwrap_or_else(|| own_namespace.to_string()),
                name,
            ))
        })
        .collect()
}

/// The first dependency cycle through `start`, as a path `a -> b -> a`, among `objects`.
pub fn dependency_cycle(start: &AppId, objects: &[Value]) -> Option<Vec<AppId>> {
    let graph: BTreeMap<AppId, Vec<AppId>> = objects
        .iter()
        .map(|o| {
            let id = crate::app_id(o);
            let deps = depends_on(o, &id.0);
            (id, deps)
        })
        .collect();
    // Iterative depth-first search for a path back to `start`.
    let mut stack: Vec<(AppId, usize)> = vec![(start.clone(), 0)];
    let mut path: Vec<AppId> = vec![start.clone()];
    let mut visited: BTreeSet<AppId> = BTreeSet::new();
    while let Some((node, index)) = stack.pop() {
        let deps = graph.get(&node).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(next) = deps.get(index) {
            stack.push((node, index + 1));
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.clone());
                return Some(cycle);
            }
            if visited.insert(next.clone()) {
                stack.push((next.clone(), 0));
                path.push(next.clone());
            }
        } else {
            path.pop();
        }
    }
    None
}

const KNOWN_FIELDS: [&str; 25] = [
    "commonMetadata",
    "components",
    "decryption",
    "deletionPolicy",
    "dependsOn",
    "force",
    "healthChecks",
    "healthCheckExprs",
    "ignoreMissingComponents",
    "images",
    "interval",
    "kubeConfig",
    "namePrefix",
    "nameSuffix",
    "patches",
    "path",
    "postBuild",
    "prune",
    "retryInterval",
    "serviceAccountName",
    "sourceRef",
    "suspend",
    "targetNamespace",
    "timeout",
    "wait",
];

impl KustomizationSpec {
    /// Parses `spec` of the Kustomization in `namespace`.
    ///
    /// **Errors**: missing `interval` or `sourceRef`, malformed fields, and fields whose
    /// absence of support would change what is applied or with which rights (`decryption`,
    /// `kubeConfig`, `serviceAccountName`).
    pub fn parse(spec: &Value, namespace: &str) -> Result<KustomizationSpec, SpecError> {
        if !spec.is_object() {
            return Err(invalid("", "must be an object"));
        }
        let interval = duration(spec, "interval")
            .map_err(|e| invalid(e.field, e.problem))?
            .ok_or_else(|| invalid("interval", "must be set"))?;
        let retry_interval = duration(spec, "retryInterval")
            .map_err(|e| invalid(e.field, e.problem))?
            .unwrap_or(interval);
        let timeout = duration(spec, "timeout")
            .map_err(|e| invalid(e.field, e.problem))?
            .unwrap_or(interval);
        let source = spec
            .get("sourceRef")
            .filter(|s| s.is_object())
            .ok_or_else(|| invalid("sourceRef", "must be set"))?;
        let source = SourceRef {
            kind: text(source, "kind").ok_or_else(|| invalid("sourceRef.kind", "must be set"))?,
            name: text(source, "name").ok_or_else(|| invalid("sourceRef.name", "must be set"))?,
            namespace: text(source, "namespace").unwrap_or_else(|| namespace.to_string()),
        };
        for (field, why) in [
            ("decryption", "SOPS decryption is not supported yet"),
            ("kubeConfig", "remote clusters are not supported yet"),
            (
                "serviceAccountName",
                "impersonation is not supported yet; nothing is applied rather than applied with the controller's rights",
            ),
        ] {
            if spec.get(field).is_some_and(|v| !v.is_null()) {
                return Err(invalid(field, why));
            }
        }
        let mut health_checks = Vec::new();
        for (index, check) in entries(spec, "healthChecks")?.iter().enumerate() {
            let field = |f: &str| format!("healthChecks[{index}].{f}");
            let kind = text(check, "kind").ok_or_else(|| invalid(field("kind"), "must be set"))?;
            let name = text(check, "name").ok_or_else(|| invalid(field("name"), "must be set"))?;
            let api_version = text(check, "apiVersion").unwrap_or_else(|| "v1".into());
            health_checks.push((
                api_version.clone(),
                ObjectKey {
                    group: plumb_core::key::group_of(&api_version).to_string(),
                    kind,
                    namespace: text(check, "namespace").unwrap_or_default(),
                    name,
                },
            ));
        }
        let mut depends = Vec::new();
        for (index, dependency) in entries(spec, "dependsOn")?.iter().enumerate() {
            let name = text(dependency, "name")
                .ok_or_else(|| invalid(format!("dependsOn[{index}].name"), "must be set"))?;
            depends.push((
                text(dependency, "namespace").unwrap_or_else(|| namespace.to_string()),
                name,
            ));
        }
        let mut build = FluxBuild {
            target_namespace: text(spec, "targetNamespace"),
            name_prefix: text(spec, "namePrefix"),
            name_suffix: text(spec, "nameSuffix"),
            ..Default::default()
        };
        for (index, image) in entries(spec, "images")?.iter().enumerate() {
            let name = text(image, "name")
                .ok_or_else(|| invalid(format!("images[{index}].name"), "must be set"))?;
            build.images.push(KustomizeImage {
                name,
                new_name: text(image, "newName"),
                new_tag: text(image, "newTag"),
                digest: text(image, "digest"),
            });
        }
        for (index, patch) in entries(spec, "patches")?.iter().enumerate() {
            let body = text(patch, "patch")
                .ok_or_else(|| invalid(format!("patches[{index}].patch"), "must be set"))?;
            let target =
                patch
                    .get("target")
                    .filter(|t| t.is_object())
                    .map(|t| KustomizePatchTarget {
                        group: text(t, "group"),
                        version: text(t, "version"),
                        kind: text(t, "kind"),
                        name: text(t, "name"),
                        namespace: text(t, "namespace"),
                        label_selector: text(t, "labelSelector"),
                        annotation_selector: text(t, "annotationSelector"),
                    });
            build.patches.push(KustomizePatch {
                patch: Some(body),
                path: None,
                target,
                options: Default::default(),
            });
        }
        for (index, component) in entries(spec, "components")?.iter().enumerate() {
            let component = component
                .as_str()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| invalid(format!("components[{index}]"), "must be a path"))?;
            build.components.push(component.to_string());
        }
        let metadata = spec.get("commonMetadata").unwrap_or(&Value::Null);
        let common_labels = string_map(metadata, "labels")
            .map_err(|e| invalid(format!("commonMetadata.{}", e.field), e.problem))?;
        let common_annotations = string_map(metadata, "annotations")
            .map_err(|e| invalid(format!("commonMetadata.{}", e.field), e.problem))?;
        let post = spec.get("postBuild").filter(|p| !p.is_null());
        let mut substitute = BTreeMap::new();
        let mut substitute_from = Vec::new();
        if let Some(post) = post {
            substitute = string_map(post, "substitute")
                .map_err(|e| invalid(format!("postBuild.{}", e.field), e.problem))?;
            for name in substitute.keys() {
                if !is_valid_name(name) {
                    return Err(invalid(
                        "postBuild.substitute",
                        format!(
                            "{name:?} is not a valid variable name (names match [_a-zA-Z][_a-zA-Z0-9]*)"
                        ),
                    ));
                }
            }
            for (index, from) in entries(post, "substituteFrom")
                .map_err(|e| invalid(format!("postBuild.{}", e.field), e.problem))?
                .iter()
                .enumerate()
            {
                let field = |f: &str| format!("postBuild.substituteFrom[{index}].{f}");
                let kind =
                    text(from, "kind").ok_or_else(|| invalid(field("kind"), "must be set"))?;
                if kind != "ConfigMap" && kind != "Secret" {
                    return Err(invalid(
                        field("kind"),
                        format!("{kind:?} must be ConfigMap or Secret"),
                    ));
                }
                substitute_from.push(SubstituteFrom {
                    kind,
                    name: text(from, "name")
                        .ok_or_else(|| invalid(field("name"), "must be set"))?,
                    optional: flag(from, "optional"),
                });
            }
        }
        let mut not_acted_on = Vec::new();
        for (field, why) in [
            (
                "healthCheckExprs",
                "CEL health expressions are not evaluated; built-in health rules apply",
            ),
            (
                "deletionPolicy",
                "deleting the Kustomization leaves its objects in place",
            ),
            ("ignoreMissingComponents", "a missing component is an error"),
        ] {
            if spec.get(field).is_some_and(|v| !v.is_null()) {
                not_acted_on.push(format!("spec.{field} ({why})"));
            }
        }
        if let Some(fields) = spec.as_object() {
            for field in fields.keys() {
                if !KNOWN_FIELDS.contains(&field.as_str()) {
                    not_acted_on.push(format!("spec.{field} (unknown field)"));
                }
            }
        }
        Ok(KustomizationSpec {
            source,
            path: text(spec, "path").unwrap_or_else(|| "./".into()),
            interval,
            retry_interval,
            timeout,
            prune: flag(spec, "prune"),
            wait: flag(spec, "wait"),
            force: flag(spec, "force"),
            suspend: flag(spec, "suspend"),
            health_checks,
            depends_on: depends,
            build,
            common_labels,
            common_annotations,
            post_build: post.is_some(),
            substitute,
            substitute_from,
            not_acted_on,
        })
    }
}

/// How a reconcile ended, for the status.
struct Outcome {
    ready: &'static str,
    reason: &'static str,
    message: String,
    stalled: bool,
    /// The revision attempted, when known.
    attempted: Option<String>,
    /// Set on success: the revision now applied.
    applied: Option<String>,
    /// The new inventory, when objects were applied.
    inventory: Option<Vec<Entry>>,
    /// `Healthy` condition, when health was checked.
    healthy: Option<Condition>,
}

impl Outcome {
    fn failed(reason: &'static str, message: impl Into<String>) -> Outcome {
        Outcome {
            ready: "False",
            reason,
            message: message.into(),
            stalled: false,
            attempted: None,
            applied: None,
            inventory: None,
            healthy: None,
        }
    }

    fn attempted(mut self, revision: &str) -> Outcome {
        self.attempted = Some(revision.to_string());
        self
    }
}

/// The status for `outcome`, keeping what it does not change from the previous status.
fn status_for(object: &Value, outcome: &Outcome, warnings: &[String]) -> Value {
    let previous = object.get("status").cloned().unwrap_or(Value::Null);
    let mut status = Map::new();
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    status.insert("observedGeneration".into(), json!(generation));
    let requested = str_at(
        object,
        &["metadata", "annotations", REQUESTED_AT_ANNOTATION],
    );
    let handled = if requested.is_empty() {
        str_at(&previous, &["lastHandledReconcileAt"])
    } else {
        requested
    };
    if !handled.is_empty() {
        status.insert("lastHandledReconcileAt".into(), json!(handled));
    }
    let applied = outcome
        .applied
        .clone()
        .unwrap_or_else(|| str_at(&previous, &["lastAppliedRevision"]).to_string());
    if !applied.is_empty() {
        status.insert("lastAppliedRevision".into(), json!(applied));
    }
    let attempted = outcome
        .attempted
        .clone()
        .unwrap_or_else(|| str_at(&previous, &["lastAttemptedRevision"]).to_string());
    if !attempted.is_empty() {
        status.insert("lastAttemptedRevision".into(), json!(attempted));
    }
    match &outcome.inventory {
        Some(entries) => {
            status.insert("inventory".into(), inventory::to_json(entries));
        }
        None => {
            if let Some(old) = previous.get("inventory").filter(|i| !i.is_null()) {
                status.insert("inventory".into(), old.clone());
            }
        }
    }
    let mut list = Vec::new();
    if outcome.stalled {
        list.push(Condition::new(
            conditions::STALLED,
            "True",
            outcome.reason,
            &outcome.message,
        ));
    }
    if outcome.ready == "Unknown" {
        list.push(Condition::new(
            conditions::RECONCILING,
            "True",
            "Progressing",
            &outcome.message,
        ));
    }
    list.push(Condition::new(
        conditions::READY,
        outcome.ready,
        outcome.reason,
        &outcome.message,
    ));
    if let Some(healthy) = &outcome.healthy {
        list.push(healthy.clone());
    }
    if !warnings.is_empty() {
        list.push(Condition::new(
            conditions::FIELDS_NOT_ACTED_ON,
            "True",
            "NotSupportedYet",
            format!("accepted but not acted on: {}", warnings.join("; ")),
        ));
    }
    let old_conditions = previous.get("conditions").cloned().unwrap_or(Value::Null);
    status.insert(
        "conditions".into(),
        conditions::to_json(&list, &old_conditions, generation, &now()),
    );
    Value::Object(status)
}

fn secret_or_configmap_values(object: &Value) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let is_secret = str_at(object, &["kind"]) == "Secret";
    if let Some(data) = object.get("data").and_then(Value::as_object) {
        for (key, value) in data {
            let Some(text) = value.as_str() else { continue };
            let decoded = if is_secret {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
            } else {
                Some(text.to_string())
            };
            if let Some(decoded) = decoded {
                values.insert(key.clone(), decoded);
            }
        }
    }
    if let Some(data) = object.get("stringData").and_then(Value::as_object) {
        for (key, value) in data {
            if let Some(text) = value.as_str() {
                values.insert(key.clone(), text.to_string());
            }
        }
    }
    values
}

/// The variables of `spec.postBuild`: each `substituteFrom` in order, then `substitute` over
/// them. Values are never part of an error.
async fn variables(
    flux: &Flux,
    namespace: &str,
    spec: &KustomizationSpec,
) -> Result<BTreeMap<String, String>, String> {
    let mut variables = BTreeMap::new();
    for (index, from) in spec.substitute_from.iter().enumerate() {
        let found = flux
            .context
            .cluster
            .get("v1", &from.kind, namespace, &from.name)
            .await
            .map_err(|e| {
                format!(
                    "spec.postBuild.substituteFrom[{index}]: cannot read {} {:?}: {}",
                    from.kind,
                    from.name,
                    error_chain(&e)
                )
            })?;
        match found {
            Some(object) => {
                for (key, value) in secret_or_configmap_values(&object) {
                    if !is_valid_name(&key) {
                        return Err(format!(
                            "spec.postBuild.substituteFrom[{index}]: {} {:?}: key {key:?} is not a valid variable name (names match [_a-zA-Z][_a-zA-Z0-9]*)",
                            from.kind, from.name
                        ));
                    }
                    variables.insert(key, value);
                }
            }
            None if from.optional => {}
            None => {
                return Err(format!(
                    "spec.postBuild.substituteFrom[{index}]: {} '{namespace}/{}' not found",
                    from.kind, from.name
                ));
            }
        }
    }
    variables.extend(spec.substitute.clone());
    Ok(variables)
}

/// Reconciles the Kustomization `id`; returns when to look again.
pub(crate) async fn reconcile(flux: &Arc<Flux>, id: &AppId) -> Option<Duration> {
    let object = flux.get(FluxKind::Kustomization, id)?;
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return None;
    }
    let spec = match KustomizationSpec::parse(object.get("spec").unwrap_or(&Value::Null), &id.0) {
        Ok(spec) => spec,
        Err(error) => {
            let mut outcome = Outcome::failed("InvalidSpec", error.to_string());
            outcome.stalled = true;
            let status = status_for(&object, &outcome, &[]);
            flux.write_status(FluxKind::Kustomization, &object, status)
                .await;
            return None;
        }
    };
    if spec.suspend {
        return None;
    }
    let warnings = spec.not_acted_on.clone();
    let (outcome, requeue) = run(flux, id, &object, &spec).await;
    let status = status_for(&object, &outcome, &warnings);
    flux.write_status(FluxKind::Kustomization, &object, status)
        .await;
    Some(requeue)
}

/// Dependencies, source, build, apply, prune, health: the outcome and when to look again.
async fn run(
    flux: &Arc<Flux>,
    id: &AppId,
    object: &Value,
    spec: &KustomizationSpec,
) -> (Outcome, Duration) {
    let retry = spec.retry_interval;
    if let Some(cycle) = dependency_cycle(id, &flux.kustomizations()) {
        let path: Vec<String> = cycle
            .iter()
            .map(|(ns, name)| format!("{ns}/{name}"))
            .collect();
        let mut outcome = Outcome::failed(
            "DependencyNotReady",
            format!("spec.dependsOn: dependency cycle: {}", path.join(" -> ")),
        );
        outcome.stalled = true;
        return (outcome, retry);
    }
    for (namespace, name) in &spec.depends_on {
        let dependency = (namespace.clone(), name.clone());
        match flux.get(FluxKind::Kustomization, &dependency) {
            None => {
                return (
                    Outcome::failed(
                        "DependencyNotReady",
                        format!("dependency '{namespace}/{name}' not found"),
                    ),
                    REQUEUE_DEPENDENCY,
                );
            }
            Some(d) if !is_ready(&d) => {
                return (
                    Outcome::failed(
                        "DependencyNotReady",
                        format!("dependency '{namespace}/{name}' is not ready"),
                    ),
                    REQUEUE_DEPENDENCY,
                );
            }
            Some(_) => {}
        }
    }
    let source = &spec.source;
    if source.kind != "GitRepository" {
        return (
            Outcome::failed(
                "ArtifactFailed",
                format!(
                    "spec.sourceRef.kind: {} sources are not supported yet (only GitRepository)",
                    source.kind
                ),
            ),
            retry,
        );
    }
    let source_id = (source.namespace.clone(), source.name.clone());
    let Some(repository) = flux.get(FluxKind::GitRepository, &source_id) else {
        return (
            Outcome::failed(
                "ArtifactFailed",
                format!(
                    "Source 'GitRepository/{}/{}' not found",
                    source.namespace, source.name
                ),
            ),
            retry,
        );
    };
    let revision = str_at(&repository, &["status", "artifact", "revision"]).to_string();
    let sha = git_repository::sha_of(&revision).map(str::to_string);
    let (Some(sha), true) = (
        sha,
        conditions::status_of(&repository, conditions::READY) == Some("True"),
    ) else {
        return (
            Outcome::failed(
                "ArtifactFailed",
                format!(
                    "Source 'GitRepository/{}/{}' is not ready, artifact not found",
                    source.namespace, source.name
                ),
            ),
            retry,
        );
    };
    let url = str_at(&repository, &["spec", "url"]).to_string();

    // Snapshot and build, off the async threads.
    let sources = flux.context.sources.clone();
    let limits = flux.context.options.limits.clone();
    let (path, build) = (spec.path.clone(), spec.build.clone());
    let resolved = Resolved {
        revision: sha,
        message: String::new(),
        author: String::new(),
    };
    let built = tokio::task::spawn_blocking(move || {
        let root = sources.snapshot(&url, &resolved).map_err(|e| {
            (
                "ArtifactFailed",
                format!(
                    "cannot read revision {}: {}",
                    resolved.revision,
                    error_chain(e.as_ref())
                ),
            )
        })?;
        plumb_render::flux::render_flux(&root, &path, &build, &limits).map_err(|e| {
            (
                "BuildFailed",
                format!("kustomize build failed: {}", error_chain(&e)),
            )
        })
    })
    .await
    .unwrap_or_else(|e| Err(("BuildFailed", format!("build task failed: {e}"))));
    let manifests = match built {
        Ok(manifests) => manifests,
        Err((reason, message)) => {
            return (Outcome::failed(reason, message).attempted(&revision), retry);
        }
    };
    let variables = if spec.post_build {
        match variables(flux, &id.0, spec).await {
            Ok(variables) => Some(variables),
            Err(message) => {
                return (
                    Outcome::failed("BuildFailed", message).attempted(&revision),
                    retry,
                );
            }
        }
    } else {
        None
    };
    let options = PostBuild {
        labels: spec.common_labels.clone(),
        annotations: spec.common_annotations.clone(),
        variables,
        owner_name: id.1.clone(),
        owner_namespace: id.0.clone(),
    };
    let objects = match post_build(manifests, &options) {
        Ok(objects) => objects,
        Err(message) => {
            return (
                Outcome::failed("BuildFailed", message).attempted(&revision),
                retry,
            );
        }
    };

    let cluster = &flux.context.cluster;
    let applied =
        match apply::apply_all(cluster, objects, &ApplySettings { force: spec.force }).await {
            Ok(applied) => applied,
            Err(message) => {
                return (
                    Outcome::failed(
                        "ReconciliationFailed",
                        format!("validation failed, nothing applied: {message}"),
                    )
                    .attempted(&revision),
                    retry,
                );
            }
        };
    let previous_status = object.get("status").cloned().unwrap_or(Value::Null);
    let old_inventory = inventory::read(&previous_status);
    // Objects that failed to apply stay in the inventory, so a later prune still finds them.
    let mut new_inventory = applied.inventory.clone();
    if !applied.errors.is_empty() {
        let message = format!("apply failed: {}", applied.errors.join("; "));
        let kept: Vec<Entry> = old_inventory
            .iter()
            .cloned()
            .chain(new_inventory.drain(..))
            .collect();
        let mut outcome = Outcome::failed("ReconciliationFailed", message).attempted(&revision);
        outcome.inventory = Some(kept);
        return (outcome, retry);
    }
    if spec.prune {
        let stale = apply::stale(&old_inventory, &new_inventory);
        if let Err(message) = apply::prune(cluster, &stale, (&id.1, &id.0)).await {
            let kept: Vec<Entry> = new_inventory.iter().cloned().chain(stale).collect();
            let mut outcome = Outcome::failed("PruneFailed", format!("prune failed: {message}"))
                .attempted(&revision);
            outcome.inventory = Some(kept);
            return (outcome, retry);
        }
    }
    let mut healthy = None;
    let targets: Vec<(String, ObjectKey)> = if spec.wait {
        applied.objects.clone()
    } else {
        spec.health_checks
            .iter()
            .map(|(api_version, key)| {
                let mut key = key.clone();
                if key.namespace.is_empty() {
                    key.namespace = id.0.clone();
                }
                (api_version.clone(), key)
            })
            .collect()
    };
    if !targets.is_empty() {
        let started = Instant::now();
        let progressing = Outcome {
            ready: "Unknown",
            reason: "Progressing",
            message: format!("Health check in progress for revision {revision}"),
            stalled: false,
            attempted: Some(revision.clone()),
            applied: None,
            inventory: Some(new_inventory.clone()),
            healthy: None,
        };
        let status = status_for(object, &progressing, &spec.not_acted_on);
        flux.write_status(FluxKind::Kustomization, object, status)
            .await;
        match apply::wait_healthy(cluster, &targets, spec.timeout).await {
            Ok(()) => {
                healthy = Some(Condition::new(
                    conditions::HEALTHY,
                    "True",
                    "Succeeded",
                    format!(
                        "Health check passed in {:.1}s",
                        started.elapsed().as_secs_f64()
                    ),
                ));
            }
            Err(message) => {
                let mut outcome = Outcome::failed(
                    "HealthCheckFailed",
                    format!(
                        "health check failed after {:.1}s: {message}",
                        started.elapsed().as_secs_f64()
                    ),
                )
                .attempted(&revision);
                outcome.healthy = Some(Condition::new(
                    conditions::HEALTHY,
                    "False",
                    "HealthCheckFailed",
                    &outcome.message,
                ));
                outcome.inventory = Some(new_inventory);
                return (outcome, retry);
            }
        }
    }
    if !applied.conflicts.is_empty() {
        let mut outcome = Outcome::failed(
            "ReconciliationFailed",
            format!(
                "not applied, owned elsewhere: {}",
                applied.conflicts.join("; ")
            ),
        )
        .attempted(&revision);
        outcome.inventory = Some(new_inventory);
        outcome.healthy = healthy;
        return (outcome, retry);
    }
    new_inventory.sort();
    let outcome = Outcome {
        ready: "True",
        reason: "ReconciliationSucceeded",
        message: format!("Applied revision: {revision}"),
        stalled: false,
        attempted: Some(revision.clone()),
        applied: Some(revision),
        inventory: Some(new_inventory),
        healthy,
    };
    (outcome, spec.interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(namespace: &str, name: &str, depends: &[&str]) -> Value {
        json!({"metadata": {"namespace": namespace, "name": name},
            "spec": {"dependsOn": depends.iter().map(|d| json!({"name": d})).collect::<Vec<_>>()}})
    }

    #[test]
    fn finds_dependency_cycles() {
        let objects = vec![
            ks("flux-system", "a", &["b"]),
            ks("flux-system", "b", &["c"]),
            ks("flux-system", "c", &["a"]),
            ks("flux-system", "d", &["a"]),
        ];
        let id = |n: &str| ("flux-system".to_string(), n.to_string());
        let cycle = dependency_cycle(&id("a"), &objects).expect("a cycle");
        assert_eq!(cycle, vec![id("a"), id("b"), id("c"), id("a")]);
        assert!(
            dependency_cycle(&id("d"), &objects).is_none(),
            "d only waits on a cycle"
        );
        let own = vec![ks("flux-system", "self", &["self"])];
        assert!(dependency_cycle(&id("self"), &own).is_some());
        let chain = vec![ks("x", "a", &["b"]), ks("x", "b", &[])];
        assert!(dependency_cycle(&("x".into(), "a".into()), &chain).is_none());
    }

    #[test]
    fn parses_a_typical_kustomization() {
        let spec = json!({
            "interval": "10m", "retryInterval": "1m", "path": "./kustomize", "prune": true, "wait": true,
            "sourceRef": {"kind": "GitRepository", "name": "podinfo"},
            "targetNamespace": "apps", "namePrefix": "p-",
            "images": [{"name": "ghcr.io/stefanprodan/podinfo", "newTag": "6.5.0"}],
            "patches": [{"patch": "- op: add\n  path: /metadata/labels/x\n  value: y", "target": {"kind": "Deployment"}}],
            "dependsOn": [{"name": "infra"}, {"name": "crds", "namespace": "other"}],
            "commonMetadata": {"labels": {"team": "a"}},
            "postBuild": {"substitute": {"cluster_env": "prod"},
                "substituteFrom": [{"kind": "ConfigMap", "name": "vars", "optional": true}]},
            "healthCheckExprs": [{"apiVersion": "x/v1", "kind": "X", "current": "true"}]
        });
        let parsed = KustomizationSpec::parse(&spec, "flux-system").expect("parses");
        assert_eq!(parsed.source.namespace, "flux-system");
        assert_eq!(parsed.timeout, Duration::from_secs(600));
        assert_eq!(parsed.retry_interval, Duration::from_secs(60));
        assert_eq!(
            parsed.depends_on[1],
            ("other".to_string(), "crds".to_string())
        );
        assert_eq!(parsed.build.images[0].new_tag.as_deref(), Some("6.5.0"));
        assert!(parsed.post_build && parsed.substitute_from[0].optional);
        assert_eq!(parsed.not_acted_on.len(), 1, "{:?}", parsed.not_acted_on);
    }

    #[test]
    fn bad_specs_name_the_field() {
        let error = |spec: Value| {
            KustomizationSpec::parse(&spec, "ns")
                .expect_err("invalid")
                .to_string()
        };
        let base = json!({"interval": "5m", "sourceRef": {"kind": "GitRepository", "name": "r"}});
        let with = |field: &str, value: Value| {
            let mut spec = base.clone();
            spec[field] = value;
            spec
        };
        assert!(
            error(json!({"sourceRef": {"kind": "GitRepository", "name": "r"}}))
                .starts_with("spec.interval:")
        );
        assert!(error(json!({"interval": "5m"})).starts_with("spec.sourceRef:"));
        assert!(error(with("timeout", json!("later"))).starts_with("spec.timeout:"));
        assert!(
            error(with("decryption", json!({"provider": "sops"}))).starts_with("spec.decryption:")
        );
        assert!(
            error(with("serviceAccountName", json!("deployer")))
                .starts_with("spec.serviceAccountName:")
        );
        assert!(
            error(with("postBuild", json!({"substitute": {"bad-name": "x"}})))
                .starts_with("spec.postBuild.substitute:")
        );
        assert!(
            error(with(
                "postBuild",
                json!({"substituteFrom": [{"kind": "Pod", "name": "x"}]})
            ))
            .starts_with("spec.postBuild.substituteFrom[0].kind:")
        );
        assert!(
            error(with("images", json!([{"newTag": "1"}]))).starts_with("spec.images[0].name:")
        );
        assert!(
            error(with("healthChecks", json!([{"kind": "Deployment"}])))
                .starts_with("spec.healthChecks[0].name:")
        );
    }

    #[test]
    fn failure_keeps_the_last_applied_revision_and_inventory() {
        let object = json!({"metadata": {"generation": 2},
            "status": {"lastAppliedRevision": "main@sha1:aaa", "inventory": {"entries": [{"id": "a_b__ConfigMap", "v": "v1"}]}}});
        let outcome = Outcome::failed("BuildFailed", "bad yaml").attempted("main@sha1:bbb");
        let status = status_for(&object, &outcome, &[]);
        assert_eq!(status["lastAppliedRevision"], "main@sha1:aaa");
        assert_eq!(status["lastAttemptedRevision"], "main@sha1:bbb");
        assert_eq!(status["inventory"]["entries"][0]["id"], "a_b__ConfigMap");
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(status["conditions"][0]["type"], "Ready");
        assert_eq!(status["conditions"][0]["reason"], "BuildFailed");
    }
}
