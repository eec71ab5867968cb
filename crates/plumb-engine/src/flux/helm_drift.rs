//! `spec.driftDetection` of a HelmRelease: what happens to the cluster between releases.
//!
//! Flux's rules: with `mode: disabled` (the default) a release whose chart and values did not
//! change is left alone — objects edited or deleted by hand stay so; `warn` compares the
//! release's objects with the cluster and reports the drift in an event without touching
//! anything; `enabled` also corrects it, object by object, without recording a new release.
//! `ignore[]{paths, target}` names JSON pointers whose differences are not drift; when an object
//! is corrected those fields keep their live values.

use super::git_repository::{SpecError, invalid, text};
use plumb_core::ignore::{IgnoreDifference, IgnoreRules};
use plumb_core::key::{ObjectKey, str_at};
use plumb_core::manifest::Manifest;
use serde_json::Value;

/// `spec.driftDetection.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriftMode {
    /// Unchanged releases are not looked at again.
    #[default]
    Disabled,
    /// Drift is reported, not corrected.
    Warn,
    /// Drift is reported and corrected.
    Enabled,
}

/// `spec.driftDetection`, compiled.
#[derive(Debug, Clone, Default)]
pub struct DriftDetection {
    /// The mode.
    pub mode: DriftMode,
    /// The `ignore` rules: which objects (`target`) and which paths.
    ignores: Vec<(Target, IgnoreDifference)>,
    /// The field as written (for comparing specs).
    raw: Value,
}

impl PartialEq for DriftDetection {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

/// An ignore rule's `target`: anchored regular expressions, as Flux matches them.
#[derive(Debug, Clone, Default)]
struct Target {
    group: Option<regex::Regex>,
    version: Option<regex::Regex>,
    kind: Option<regex::Regex>,
    name: Option<regex::Regex>,
    namespace: Option<regex::Regex>,
}

impl Target {
    fn parse(target: &Value, field: &str) -> Result<Target, SpecError> {
        let pattern = |name: &str| -> Result<Option<regex::Regex>, SpecError> {
            let Some(text) = text(target, name) else {
                return Ok(None);
            };
            regex::RegexBuilder::new(&format!("^(?:{text})$"))
                .size_limit(1 << 20)
                .build()
                .map(Some)
                .map_err(|e| invalid(format!("{field}.target.{name}"), e.to_string()))
        };
        Ok(Target {
            group: pattern("group")?,
            version: pattern("version")?,
            kind: pattern("kind")?,
            name: pattern("name")?,
            namespace: pattern("namespace")?,
        })
    }

    fn matches(&self, object: &Value) -> bool {
        let api_version = str_at(object, &["apiVersion"]);
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let fits = |pattern: &Option<regex::Regex>, value: &str| {
            pattern.as_ref().is_none_or(|p| p.is_match(value))
        };
        fits(&self.group, group)
            && fits(&self.version, version)
            && fits(&self.kind, str_at(object, &["kind"]))
            && fits(&self.name, str_at(object, &["metadata", "name"]))
            && fits(&self.namespace, str_at(object, &["metadata", "namespace"]))
    }
}

/// The label or annotation that takes an object out of drift detection.
pub const DISABLED_MARK: &str = "helm.toolkit.fluxcd.io/driftDetection";

impl DriftDetection {
    /// Reads `spec.driftDetection`; fields it cannot honour go to `not_acted_on`.
    ///
    /// **Errors**: an unknown mode, a malformed ignore rule, pattern or JSON pointer.
    pub fn parse(
        spec: &Value,
        not_acted_on: &mut Vec<String>,
    ) -> Result<DriftDetection, SpecError> {
        let Some(drift) = spec.get("driftDetection").filter(|d| !d.is_null()) else {
            return Ok(DriftDetection::default());
        };
        let mode = match text(drift, "mode").as_deref() {
            None | Some("disabled") => DriftMode::Disabled,
            Some("warn") => DriftMode::Warn,
            Some("enabled") => DriftMode::Enabled,
            Some(other) => {
                return Err(invalid(
                    "driftDetection.mode",
                    format!("{other:?} is not a mode (enabled, warn or disabled)"),
                ));
            }
        };
        let mut ignores = Vec::new();
        let entries = drift.get("ignore").and_then(Value::as_array);
        for (index, entry) in entries.into_iter().flatten().enumerate() {
            let field = format!("driftDetection.ignore[{index}]");
            let paths: Vec<String> = entry
                .get("paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    p.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid(format!("{field}.paths"), "must be strings"))
                })
                .collect::<Result<_, _>>()?;
            if paths.is_empty() {
                return Err(invalid(
                    format!("{field}.paths"),
                    "must name at least one path",
                ));
            }
            let target_spec = entry.get("target").unwrap_or(&Value::Null);
            for selector in ["labelSelector", "annotationSelector"] {
                if target_spec.get(selector).is_some() {
                    not_acted_on.push(format!(
                        "spec.{field}.target.{selector} (the rule applies to every object its other fields select)"
                    ));
                }
            }
            let target = Target::parse(target_spec, &field)?;
            let rule = IgnoreDifference {
                group: "*".into(),
                kind: "*".into(),
                json_pointers: paths,
                ..IgnoreDifference::default()
            };
            IgnoreRules::compile(std::slice::from_ref(&rule)).map_err(|error| {
                invalid(
                    format!("{field}.paths"),
                    error
                        .to_string()
                        .replace("ignoreDifferences[0].jsonPointers", "paths"),
                )
            })?;
            ignores.push((target, rule));
        }
        Ok(DriftDetection {
            mode,
            ignores,
            raw: drift.clone(),
        })
    }

    /// The ignore rules that apply to `object`.
    fn rules_for(&self, object: &Value) -> IgnoreRules {
        let rules: Vec<IgnoreDifference> = self
            .ignores
            .iter()
            .filter(|(target, _)| target.matches(object))
            .map(|(_, rule)| rule.clone())
            .collect();
        // Every rule compiled on its own when parsed.
        IgnoreRules::compile(&rules).unwrap_or_default()
    }
}

/// Whether the object carries `helm.toolkit.fluxcd.io/driftDetection: disabled`.
fn excluded(object: &Value) -> bool {
    ["labels", "annotations"]
        .iter()
        .any(|place| str_at(object, &["metadata", place, DISABLED_MARK]) == "disabled")
}

/// One object of the release that differs from the cluster.
#[derive(Debug, Clone)]
pub struct Drifted {
    /// The object as it should be (ignored fields set to their live values).
    pub manifest: Manifest,
    /// Its identity.
    pub key: ObjectKey,
    /// `missing` or `changed`.
    pub what: &'static str,
}

/// Compares the release's objects with the cluster through server-side apply dry-runs.
///
/// **Errors**: the cluster cannot be read, or a dry-run is refused.
pub async fn detect(
    cluster: &plumb_kube::Cluster,
    manifests: &[Manifest],
    default_namespace: &str,
    drift: &DriftDetection,
) -> Result<Vec<Drifted>, String> {
    let mut drifted = Vec::new();
    for manifest in manifests {
        let mut manifest = manifest.clone();
        let api_version = str_at(&manifest.object, &["apiVersion"]).to_string();
        let kind = str_at(&manifest.object, &["kind"]).to_string();
        let resolved = cluster
            .kind(&api_version, &kind)
            .await
            .map_err(|e| format!("{kind} {api_version}: {}", crate::sources::error_chain(&e)))?;
        if resolved.namespaced
            && str_at(&manifest.object, &["metadata", "namespace"]).is_empty()
            && let Some(metadata) = manifest
                .object
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
        {
            metadata.insert("namespace".into(), Value::from(default_namespace));
        }
        if excluded(&manifest.object) {
            continue;
        }
        let key = manifest.key();
        let live = cluster
            .get(&api_version, &kind, &key.namespace, &key.name)
            .await
            .map_err(|e| format!("{key}: {}", crate::sources::error_chain(&e)))?;
        let Some(live) = live else {
            drifted.push(Drifted {
                manifest,
                key,
                what: "missing",
            });
            continue;
        };
        if excluded(&live) {
            continue;
        }
        let rules = drift.rules_for(&manifest.object);
        if !rules.is_empty() {
            manifest.object = rules.respect(&live, &manifest.object);
        }
        let options = plumb_kube::ApplyOptions {
            dry_run: plumb_kube::DryRun::Server,
            force: true,
        };
        let dry_run = cluster
            .apply(&manifest.object, &options)
            .await
            .map_err(|e| format!("{key}: {}", crate::sources::error_chain(&e)))?;
        let (mut live_view, mut desired_view) = (live, dry_run);
        if !rules.is_empty() {
            let _ = rules.normalize(Some(&mut live_view), Some(&mut desired_view));
        }
        if !plumb_core::diff::is_in_sync(&desired_view, &live_view) {
            drifted.push(Drifted {
                manifest,
                key,
                what: "changed",
            });
        }
    }
    Ok(drifted)
}

/// "Kind/namespace/name changed, …" for events.
pub fn describe(drifted: &[Drifted]) -> String {
    drifted
        .iter()
        .map(|d| {
            let place = if d.key.namespace.is_empty() {
                d.key.name.clone()
            } else {
                format!("{}/{}", d.key.namespace, d.key.name)
            };
            format!("{} {place} {}", d.key.kind, d.what)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes_and_ignore_rules_parse_as_flux_writes_them() {
        let mut notes = Vec::new();
        let none = DriftDetection::parse(&json!({}), &mut notes).unwrap();
        assert_eq!(none.mode, DriftMode::Disabled);
        let spec = json!({"driftDetection": {"mode": "enabled", "ignore": [
            {"paths": ["/spec/replicas"], "target": {"kind": "Deploy.*", "group": "apps"}},
            {"paths": ["/metadata/annotations/x"], "target": {"labelSelector": "a=b"}}]}});
        let drift = DriftDetection::parse(&spec, &mut notes).unwrap();
        assert_eq!(drift.mode, DriftMode::Enabled);
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns"}, "spec": {"replicas": 1}});
        let service = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns"}});
        assert_eq!(drift.ignores.len(), 2);
        assert!(drift.ignores[0].0.matches(&deployment));
        assert!(!drift.ignores[0].0.matches(&service));
        // Anchored: "Deploy" alone does not match "Deployment".
        let anchored = json!({"driftDetection": {"ignore": [
            {"paths": ["/spec"], "target": {"kind": "Deploy"}}]}});
        let anchored = DriftDetection::parse(&anchored, &mut Vec::new()).unwrap();
        assert!(!anchored.ignores[0].0.matches(&deployment));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("ignore[1].target.labelSelector"));
        let marked = json!({"metadata": {"annotations": {DISABLED_MARK: "disabled"}}});
        assert!(excluded(&marked));
        assert!(!excluded(&deployment));
    }

    #[test]
    fn bad_drift_settings_name_the_field() {
        let mut notes = Vec::new();
        let bad_mode = json!({"driftDetection": {"mode": "sometimes"}});
        let error = DriftDetection::parse(&bad_mode, &mut notes).unwrap_err();
        assert!(error.to_string().contains("driftDetection.mode"), "{error}");
        let no_paths = json!({"driftDetection": {"mode": "warn", "ignore": [{"target": {}}]}});
        let error = DriftDetection::parse(&no_paths, &mut notes).unwrap_err();
        assert!(error.to_string().contains("ignore[0].paths"), "{error}");
        let bad_pointer = json!({"driftDetection": {"ignore": [{"paths": ["spec/replicas"]}]}});
        let error = DriftDetection::parse(&bad_pointer, &mut notes).unwrap_err();
        assert!(
            error.to_string().contains("driftDetection.ignore[0].paths"),
            "{error}"
        );
        let bad_regex =
            json!({"driftDetection": {"ignore": [{"paths": ["/spec"], "target": {"name": "("}}]}});
        let error = DriftDetection::parse(&bad_regex, &mut notes).unwrap_err();
        assert!(
            error.to_string().contains("ignore[0].target.name"),
            "{error}"
        );
    }
}
