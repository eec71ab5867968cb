//! The `Kustomization` spec (`kustomize.toolkit.fluxcd.io/v1`) as plumb reads it: every field
//! parsed once into types, errors naming the field, fields that are accepted but not acted on
//! listed, and the dependency graph's cycle check. Pure.

use super::git_repository::duration;
use super::substitute::is_valid_name;
use crate::queue::AppId;
use plumb_core::key::ObjectKey;
use plumb_customhealth::{ExprError, HealthCheckExprs};
use plumb_render::flux::{FluxBuild, KustomizeImage, KustomizePatch, KustomizePatchTarget};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

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

/// What deleting the Kustomization does to its objects (`spec.deletionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete them when `spec.prune` is true (Flux's default).
    MirrorPrune,
    /// Delete them.
    Delete,
    /// Delete them and wait until they are gone (up to `spec.timeout`).
    WaitForTermination,
    /// Leave them.
    Orphan,
}

impl DeletionPolicy {
    /// Whether deleting a Kustomization with `prune` deletes its objects.
    pub fn deletes_objects(self, prune: bool) -> bool {
        match self {
            DeletionPolicy::MirrorPrune => prune,
            DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
            DeletionPolicy::Orphan => false,
        }
    }
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
    /// `spec.healthCheckExprs`, compiled.
    pub health_check_exprs: Arc<HealthCheckExprs>,
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
    /// `spec.deletionPolicy`.
    pub deletion_policy: DeletionPolicy,
    /// `spec.kubeConfig.secretRef`: apply to the cluster that kubeconfig names instead.
    pub kube_config: Option<KubeConfigRef>,
    /// `spec.serviceAccountName`: apply as this ServiceAccount of the Kustomization's
    /// namespace (impersonated), not with the controller's rights.
    pub service_account: Option<String>,
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

impl SpecError {
    /// Flux's reason for `Ready=False`: `InvalidCELExpression` for `spec.healthCheckExprs`,
    /// else `InvalidSpec`.
    pub fn reason(&self) -> &'static str {
        if self.field.starts_with("healthCheckExprs") {
            "InvalidCELExpression"
        } else {
            "InvalidSpec"
        }
    }
}

/// A `spec.healthCheckExprs` problem as a [`SpecError`] naming the entry and field.
fn expr_error(error: ExprError) -> SpecError {
    match error {
        ExprError::Shape { message } => invalid("healthCheckExprs", message),
        ExprError::Missing { index, field } => {
            invalid(format!("healthCheckExprs[{index}].{field}"), "must be set")
        }
        ExprError::Invalid {
            index,
            field,
            message,
        }
        | ExprError::Evaluation {
            index,
            field,
            message,
            ..
        } => invalid(format!("healthCheckExprs[{index}].{field}"), message),
    }
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

/// The first dependency cycle through `start`, as a path `a -> b -> a`, in `graph`
/// (Kustomization → the Kustomizations it depends on).
pub fn dependency_cycle(start: &AppId, graph: &BTreeMap<AppId, Vec<AppId>>) -> Option<Vec<AppId>> {
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

/// `spec.kubeConfig.secretRef{name, key}`: a Secret of the object's namespace holding a
/// kubeconfig, under `key` or else `value`, then `value.yaml` (Flux's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeConfigRef {
    /// The Secret's name.
    pub secret: String,
    /// The key, when set.
    pub key: Option<String>,
}

impl KubeConfigRef {
    /// Reads `spec.kubeConfig` of a Kustomization or HelmRelease spec.
    ///
    /// **Errors**: `kubeConfig.configMapRef` (cloud workload identity, not supported yet) and
    /// a `kubeConfig` without `secretRef.name`.
    pub fn parse(spec: &Value) -> Result<Option<KubeConfigRef>, SpecError> {
        let Some(config) = spec.get("kubeConfig").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        if config.get("configMapRef").is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                "kubeConfig.configMapRef",
                "cloud provider workload identity is not supported yet; use secretRef with a kubeconfig",
            ));
        }
        let secret_ref = config.get("secretRef").unwrap_or(&Value::Null);
        let secret = text(secret_ref, "name")
            .ok_or_else(|| invalid("kubeConfig.secretRef.name", "must be set"))?;
        Ok(Some(KubeConfigRef {
            secret,
            key: text(secret_ref, "key"),
        }))
    }
}

/// `spec.serviceAccountName` of a Kustomization or HelmRelease.
///
/// **Errors**: a value that is not a ServiceAccount name.
pub fn service_account_name(spec: &Value) -> Result<Option<String>, SpecError> {
    match spec.get("serviceAccountName") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name))
            if !name.contains(':') && plumb_core::manifest::name_problem(name).is_none() =>
        {
            Ok(Some(name.clone()))
        }
        Some(_) => Err(invalid(
            "serviceAccountName",
            "must be the name of a ServiceAccount",
        )),
    }
}

/// `images`, `patches` and the older `patchesStrategicMerge`/`patchesJson6902` of `spec` (a
/// Kustomization's spec, or a HelmRelease post-renderer's `kustomize`), in that order;
/// `prefix` is the field path of `spec` in errors (`postRenderers[0].kustomize.`).
///
/// **Errors**: an entry without its required field, named.
pub fn patches_and_images(
    spec: &Value,
    prefix: &str,
) -> Result<plumb_render::flux::PostRenderer, SpecError> {
    let field = |name: String| format!("{prefix}{name}");
    let list = |name: &str| entries(spec, name).map_err(|e| invalid(field(e.field), e.problem));
    let mut overlay = plumb_render::flux::PostRenderer::default();
    for (index, image) in list("images")?.iter().enumerate() {
        let name = text(image, "name")
            .ok_or_else(|| invalid(field(format!("images[{index}].name")), "must be set"))?;
        overlay.images.push(KustomizeImage {
            name,
            new_name: text(image, "newName"),
            new_tag: text(image, "newTag"),
            digest: text(image, "digest"),
        });
    }
    for (index, patch) in list("patches")?.iter().enumerate() {
        let body = text(patch, "patch")
            .ok_or_else(|| invalid(field(format!("patches[{index}].patch")), "must be set"))?;
        overlay
            .patches
            .push(patch_with_target(body, patch.get("target")));
    }
    // v1beta2's forms, still written in many repositories: the same patches, kept in order.
    for (index, patch) in list("patchesStrategicMerge")?.iter().enumerate() {
        if !patch.is_object() {
            return Err(invalid(
                field(format!("patchesStrategicMerge[{index}]")),
                "must be an object (a partial Kubernetes object)",
            ));
        }
        overlay
            .patches
            .push(patch_with_target(patch.to_string(), None));
    }
    for (index, patch) in list("patchesJson6902")?.iter().enumerate() {
        let target = patch
            .get("target")
            .filter(|t| t.is_object())
            .ok_or_else(|| {
                invalid(
                    field(format!("patchesJson6902[{index}].target")),
                    "must be set",
                )
            })?;
        let operations = patch.get("patch").filter(|p| p.is_array()).ok_or_else(|| {
            invalid(
                field(format!("patchesJson6902[{index}].patch")),
                "must be a list of JSON 6902 operations",
            )
        })?;
        overlay
            .patches
            .push(patch_with_target(operations.to_string(), Some(target)));
    }
    Ok(overlay)
}

/// A Kustomize patch of `body` (strategic merge or JSON 6902, as Kustomize tells them apart)
/// with Flux's `target` selector.
fn patch_with_target(body: String, target: Option<&Value>) -> KustomizePatch {
    let target = target
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
    KustomizePatch {
        patch: Some(body),
        path: None,
        target,
        options: Default::default(),
    }
}

const KNOWN_FIELDS: [&str; 27] = [
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
    "patchesJson6902",
    "patchesStrategicMerge",
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
    /// Where and as whom its objects are applied.
    pub(crate) fn target(&self) -> super::remote::Target<'_> {
        super::remote::Target {
            kube_config: self.kube_config.as_ref(),
            service_account: self.service_account.as_deref(),
        }
    }

    /// Parses `spec` of the Kustomization in `namespace`.
    ///
    /// **Errors**: missing `interval` or `sourceRef`, malformed fields, and fields whose
    /// absence of support would change what is applied or with which rights (`decryption`,
    /// `kubeConfig.configMapRef`).
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
        if interval.is_zero() || retry_interval.is_zero() {
            return Err(invalid(
                if interval.is_zero() {
                    "interval"
                } else {
                    "retryInterval"
                },
                "must be greater than zero",
            ));
        }
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
        let kube_config = KubeConfigRef::parse(spec)?;
        if spec.get("decryption").is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                "decryption",
                "SOPS decryption is not supported yet",
            ));
        }
        let service_account = service_account_name(spec)?;
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
        let overlay = patches_and_images(spec, "")?;
        build.images = overlay.images;
        build.patches = overlay.patches;
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
        let deletion_policy = match text(spec, "deletionPolicy").as_deref() {
            None | Some("MirrorPrune") => DeletionPolicy::MirrorPrune,
            Some("Delete") => DeletionPolicy::Delete,
            Some("WaitForTermination") => DeletionPolicy::WaitForTermination,
            Some("Orphan") => DeletionPolicy::Orphan,
            Some(other) => {
                return Err(invalid(
                    "deletionPolicy",
                    format!("{other:?} must be MirrorPrune, Delete, WaitForTermination or Orphan"),
                ));
            }
        };
        let mut not_acted_on = Vec::new();
        let health_check_exprs =
            HealthCheckExprs::parse(spec.get("healthCheckExprs")).map_err(expr_error)?;
        for (field, why) in [("ignoreMissingComponents", "a missing component is an error")] {
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
            health_check_exprs: Arc::new(health_check_exprs),
            depends_on: depends,
            build,
            common_labels,
            common_annotations,
            post_build: post.is_some(),
            substitute,
            substitute_from,
            deletion_policy,
            kube_config,
            service_account,
            not_acted_on,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ks(namespace: &str, name: &str, depends: &[&str]) -> Value {
        json!({"metadata": {"namespace": namespace, "name": name},
            "spec": {"dependsOn": depends.iter().map(|d| json!({"name": d})).collect::<Vec<_>>()}})
    }

    fn graph(objects: &[Value]) -> BTreeMap<AppId, Vec<AppId>> {
        objects
            .iter()
            .map(|o| {
                let id = crate::app_id(o);
                let deps = depends_on(o, &id.0);
                (id, deps)
            })
            .collect()
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
        let cycle = dependency_cycle(&id("a"), &graph(&objects)).expect("a cycle");
        assert_eq!(cycle, vec![id("a"), id("b"), id("c"), id("a")]);
        assert!(
            dependency_cycle(&id("d"), &graph(&objects)).is_none(),
            "d only waits on a cycle"
        );
        let own = vec![ks("flux-system", "self", &["self"])];
        assert!(dependency_cycle(&id("self"), &graph(&own)).is_some());
        let chain = vec![ks("x", "a", &["b"]), ks("x", "b", &[])];
        assert!(dependency_cycle(&("x".into(), "a".into()), &graph(&chain)).is_none());
    }

    #[test]
    fn v1beta2_patch_fields_become_patches_and_bad_ones_are_named() {
        let base = json!({"interval": "1m", "sourceRef": {"kind": "GitRepository", "name": "r"}});
        let with = |field: &str, value: Value| {
            let mut spec = base.clone();
            spec[field] = value;
            KustomizationSpec::parse(&spec, "ns")
        };
        let parsed = with(
            "patchesJson6902",
            json!([{"target": {"kind": "Deployment", "name": "web"},
                "patch": [{"op": "remove", "path": "/spec/replicas"}]}]),
        )
        .expect("valid");
        let patch = &parsed.build.patches[0];
        assert_eq!(
            patch.target.as_ref().and_then(|t| t.name.as_deref()),
            Some("web")
        );
        assert!(patch.patch.as_deref().is_some_and(|p| p.starts_with('[')));
        let field = |field: &str, value: Value| with(field, value).expect_err("invalid").field;
        assert_eq!(
            field("patchesStrategicMerge", json!(["kind: ConfigMap"])),
            "patchesStrategicMerge[0]"
        );
        assert_eq!(
            field("patchesJson6902", json!([{"patch": []}])),
            "patchesJson6902[0].target"
        );
        assert_eq!(
            field(
                "patchesJson6902",
                json!([{"target": {"kind": "X"}, "patch": "op: add"}])
            ),
            "patchesJson6902[0].patch"
        );
        assert_eq!(field("patchesJson6902", json!({})), "patchesJson6902");
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
        assert!(parsed.not_acted_on.is_empty(), "{:?}", parsed.not_acted_on);
        assert!(!parsed.health_check_exprs.is_empty());
    }

    #[test]
    fn bad_health_check_exprs_are_invalid_cel_naming_entry_and_field() {
        let base = json!({"interval": "5m", "sourceRef": {"kind": "GitRepository", "name": "r"}});
        let error = |exprs: Value| {
            let mut spec = base.clone();
            spec["healthCheckExprs"] = exprs;
            KustomizationSpec::parse(&spec, "ns").expect_err("invalid")
        };
        let syntax = error(json!([
            {"apiVersion": "x/v1", "kind": "X", "current": "true"},
            {"apiVersion": "y/v1", "kind": "Y", "current": "true", "failed": "status.phase =="}
        ]));
        assert_eq!(syntax.reason(), "InvalidCELExpression");
        assert!(
            syntax
                .to_string()
                .starts_with("spec.healthCheckExprs[1].failed: "),
            "{syntax}"
        );
        let missing = error(json!([{"apiVersion": "x/v1", "kind": "X"}]));
        assert_eq!(
            missing.to_string(),
            "spec.healthCheckExprs[0].current: must be set"
        );
        assert_eq!(missing.reason(), "InvalidCELExpression");
        assert!(
            error(json!("current"))
                .to_string()
                .starts_with("spec.healthCheckExprs: ")
        );
        let other =
            KustomizationSpec::parse(&json!({"interval": "5m"}), "ns").expect_err("invalid");
        assert_eq!(other.reason(), "InvalidSpec");
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
        assert!(error(with("retryInterval", json!("0s"))).starts_with("spec.retryInterval:"));
        assert!(
            error(with("serviceAccountName", json!("system:deployer")))
                .starts_with("spec.serviceAccountName:")
        );
        assert!(
            error(with("kubeConfig", json!({"configMapRef": {"name": "aws"}})))
                .starts_with("spec.kubeConfig.configMapRef:")
        );
        assert!(
            error(with("kubeConfig", json!({"secretRef": {}})))
                .starts_with("spec.kubeConfig.secretRef.name:")
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
}
