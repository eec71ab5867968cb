//! The specs of `source.toolkit.fluxcd.io/v1` `HelmRepository` and `helm.toolkit.fluxcd.io/v2`
//! `HelmRelease`, read as Flux users write them: defaults as Flux's, every field plumb does not
//! act on listed so the user sees it in a condition.

use super::git_repository::{SpecError, duration, invalid, text};
use crate::queue::AppId;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

fn flag(value: &Value, field: &str) -> bool {
    value.get(field).and_then(Value::as_bool) == Some(true)
}

fn unknown_fields(spec: &Value, known: &[&str], prefix: &str, out: &mut Vec<String>) {
    if let Some(fields) = spec.as_object() {
        for field in fields.keys() {
            if !known.contains(&field.as_str()) {
                out.push(format!("{prefix}{field} (unknown field)"));
            }
        }
    }
}

/// A `HelmRepository`'s spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmRepositorySpec {
    /// The repository URL (`http(s)://`, or `oci://` with `type: oci`).
    pub url: String,
    /// `type: oci`.
    pub oci: bool,
    /// `spec.interval`.
    pub interval: Duration,
    /// `spec.timeout` (default 60s).
    pub timeout: Duration,
    /// `spec.secretRef.name`: basic-auth credentials.
    pub secret_ref: Option<String>,
    /// `spec.suspend`.
    pub suspend: bool,
    /// Fields accepted but not acted on.
    pub not_acted_on: Vec<String>,
}

const REPOSITORY_FIELDS: [&str; 13] = [
    "url",
    "type",
    "interval",
    "timeout",
    "secretRef",
    "suspend",
    "provider",
    "passCredentials",
    "insecure",
    "certSecretRef",
    "accessFrom",
    "proxySecretRef",
    "insecureSkipVerify",
];

impl HelmRepositorySpec {
    /// Reads a `HelmRepository`'s `spec`.
    ///
    /// **Errors**: a missing or malformed URL, interval or timeout.
    pub fn parse(spec: &Value) -> Result<HelmRepositorySpec, SpecError> {
        let url = text(spec, "url").ok_or_else(|| invalid("url", "must be set"))?;
        let oci = match text(spec, "type").as_deref() {
            None | Some("default") => false,
            Some("oci") => true,
            Some(other) => {
                return Err(invalid(
                    "type",
                    format!("{other:?} is not a repository type (default or oci)"),
                ));
            }
        };
        if oci != url.starts_with("oci://") {
            return Err(invalid(
                "url",
                format!(
                    "{url:?}: a repository of type {} needs an {} URL",
                    if oci { "oci" } else { "default" },
                    if oci { "oci://" } else { "http(s)://" }
                ),
            ));
        }
        if !(oci || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("url", format!("{url:?} is not an http(s):// URL")));
        }
        let interval = duration(spec, "interval")?
            .ok_or_else(|| invalid("interval", "must be set (for example 10m)"))?;
        let timeout = duration(spec, "timeout")?.unwrap_or(Duration::from_secs(60));
        let mut not_acted_on = Vec::new();
        for field in ["certSecretRef", "proxySecretRef", "accessFrom"] {
            if spec.get(field).is_some_and(|v| !v.is_null()) {
                not_acted_on.push(format!("spec.{field}"));
            }
        }
        if text(spec, "provider").is_some_and(|p| p != "generic") {
            not_acted_on.push("spec.provider (only generic credentials)".into());
        }
        unknown_fields(spec, &REPOSITORY_FIELDS, "spec.", &mut not_acted_on);
        Ok(HelmRepositorySpec {
            url,
            oci,
            interval,
            timeout,
            secret_ref: spec.get("secretRef").and_then(|r| text(r, "name")),
            suspend: flag(spec, "suspend"),
            not_acted_on,
        })
    }
}

/// Where a `HelmRelease`'s chart comes from (`spec.chart.spec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartTemplate {
    /// The chart's name in the repository.
    pub chart: String,
    /// A version or semver range (`*` when unset).
    pub version: String,
    /// The source: kind, namespace, name.
    pub source_kind: String,
    /// The source's namespace (the release's when unset).
    pub source_namespace: String,
    /// The source's name.
    pub source_name: String,
    /// Value files inside the chart, in order (replacing the chart's `values.yaml`).
    pub values_files: Vec<String>,
}

/// One `spec.valuesFrom` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesReference {
    /// `ConfigMap` or `Secret`.
    pub kind: String,
    /// Its name (in the release's namespace).
    pub name: String,
    /// The data key (default `values.yaml`).
    pub values_key: String,
    /// Where the value goes (a dotted path), or empty to merge a YAML document at the root.
    pub target_path: String,
    /// A missing object or key is not an error.
    pub optional: bool,
}

/// How CRDs of the chart's `crds/` directory are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrdPolicy {
    /// Not applied.
    Skip,
    /// Applied (plumb applies server-side, so creating and replacing are one).
    Apply,
}

/// What remediates a failed upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRemediation {
    /// Roll back to the last successful release (Flux's default).
    Rollback,
    /// Uninstall the release, so the next attempt installs it afresh.
    Uninstall,
}

/// A `HelmRelease`'s spec.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmReleaseSpec {
    /// `spec.chart.spec`.
    pub chart: ChartTemplate,
    /// `spec.interval`.
    pub interval: Duration,
    /// `spec.releaseName`, or Flux's default.
    pub release_name: String,
    /// Where the chart's objects go (`spec.targetNamespace`, else the release's namespace).
    pub target_namespace: String,
    /// Where the release record is kept (`spec.storageNamespace`, else the release's).
    pub storage_namespace: String,
    /// `spec.values`.
    pub values: Value,
    /// `spec.valuesFrom`.
    pub values_from: Vec<ValuesReference>,
    /// `spec.dependsOn` as (namespace, name).
    pub depends_on: Vec<AppId>,
    /// `spec.suspend`.
    pub suspend: bool,
    /// `spec.timeout` (default 5m): how long to wait for the objects to be ready.
    pub timeout: Duration,
    /// Wait for readiness after installing.
    pub install_wait: bool,
    /// Wait for readiness after upgrading.
    pub upgrade_wait: bool,
    /// `spec.install.createNamespace`.
    pub create_namespace: bool,
    /// CRDs on install.
    pub install_crds: CrdPolicy,
    /// CRDs on upgrade.
    pub upgrade_crds: CrdPolicy,
    /// `spec.install.remediation.retries` (0: no retry after a failed install).
    pub install_retries: i64,
    /// `spec.upgrade.remediation.retries`.
    pub upgrade_retries: i64,
    /// `spec.upgrade.force`: recreate objects whose immutable fields changed.
    pub force: bool,
    /// `spec.maxHistory` (default 5; 0 is unlimited).
    pub max_history: usize,
    /// `spec.upgrade.remediation.strategy`.
    pub upgrade_remediation: UpgradeRemediation,
    /// `spec.install.remediation.remediateLastFailure` (default false).
    pub remediate_last_install_failure: bool,
    /// `spec.upgrade.remediation.remediateLastFailure` (default: retries > 0).
    pub remediate_last_upgrade_failure: bool,
    /// Not `spec.rollback.disableWait`.
    pub rollback_wait: bool,
    /// `spec.rollback.timeout` (default: `spec.timeout`).
    pub rollback_timeout: Duration,
    /// `spec.driftDetection`.
    pub drift: super::helm_drift::DriftDetection,
    /// `spec.test`.
    pub test: HelmTests,
    /// `spec.uninstall`.
    pub uninstall: UninstallSettings,
    /// `spec.install.strategy`.
    pub install_strategy: ReleaseStrategy,
    /// `spec.upgrade.strategy`.
    pub upgrade_strategy: ReleaseStrategy,
    /// `spec.install.remediation.ignoreTestFailures` (default: `test.ignoreFailures`).
    pub install_ignore_test_failures: bool,
    /// `spec.upgrade.remediation.ignoreTestFailures` (default: `test.ignoreFailures`).
    pub upgrade_ignore_test_failures: bool,
    /// `spec.postRenderers[].kustomize`, in order.
    pub post_renderers: Vec<plumb_render::flux::PostRenderer>,
    /// `spec.commonMetadata`: labels and annotations put on every rendered object.
    pub common_metadata: CommonMetadata,
    /// `spec.kubeConfig.secretRef`: install into the cluster that kubeconfig names.
    pub kube_config: Option<super::kustomization_spec::KubeConfigRef>,
    /// `spec.serviceAccountName`: install as this ServiceAccount of the HelmRelease's
    /// namespace (impersonated).
    pub service_account: Option<String>,
    /// Fields accepted but not acted on.
    pub not_acted_on: Vec<String>,
}

const RELEASE_FIELDS: [&str; 24] = [
    "chart",
    "chartRef",
    "interval",
    "releaseName",
    "targetNamespace",
    "storageNamespace",
    "values",
    "valuesFrom",
    "dependsOn",
    "suspend",
    "timeout",
    "install",
    "upgrade",
    "rollback",
    "uninstall",
    "test",
    "maxHistory",
    "serviceAccountName",
    "kubeConfig",
    "postRenderers",
    "driftDetection",
    "persistentClient",
    "commonMetadata",
    "requeueDependency",
];

/// Flux's default release name: `[targetNamespace-]name`, shortened to Helm's 53 characters
/// with a hash suffix when longer.
pub fn default_release_name(name: &str, target_namespace: Option<&str>) -> String {
    use sha2::Digest as _;
    let full = match target_namespace {
        Some(namespace) if !namespace.is_empty() => format!("{namespace}-{name}"),
        _ => name.to_string(),
    };
    if full.len() <= 53 {
        return full;
    }
    let digest = sha2::Sha256::digest(full.as_bytes());
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let keep: String = full.chars().take(40).collect();
    format!("{}-{}", keep.trim_end_matches('-'), &hash[..12])
}

fn crd_policy(value: &Value, field: &str, default: CrdPolicy) -> Result<CrdPolicy, SpecError> {
    match text(value, "crds").as_deref() {
        None => Ok(if flag(value, "skipCRDs") {
            CrdPolicy::Skip
        } else {
            default
        }),
        Some("Skip") => Ok(CrdPolicy::Skip),
        Some("Create") | Some("CreateReplace") => Ok(CrdPolicy::Apply),
        Some(other) => Err(invalid(
            format!("{field}.crds"),
            format!("{other:?} is not one of Skip, Create, CreateReplace"),
        )),
    }
}

fn retries(value: &Value, field: &str) -> Result<i64, SpecError> {
    match value.pointer("/remediation/retries") {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            invalid(
                format!("{field}.remediation.retries"),
                "must be a whole number",
            )
        }),
        Some(other) => Err(invalid(
            format!("{field}.remediation.retries"),
            format!("{other} is not a number"),
        )),
    }
}

impl HelmReleaseSpec {
    /// Reads a `HelmRelease`'s `spec`; `name` and `namespace` are the object's.
    ///
    /// **Errors**: a missing chart, interval, or a malformed field, named.
    pub fn parse(spec: &Value, name: &str, namespace: &str) -> Result<HelmReleaseSpec, SpecError> {
        let mut not_acted_on = Vec::new();
        let chart_ref = spec.get("chartRef").filter(|v| !v.is_null());
        let has_template = spec.get("chart").is_some_and(|v| !v.is_null());
        let template = match (chart_ref, has_template) {
            (Some(_), true) => {
                return Err(invalid(
                    "chartRef",
                    "only one of chart and chartRef may be set",
                ));
            }
            (Some(reference), false) => chart_from_ref(reference, namespace)?,
            (None, _) => chart_from_template(spec, namespace, &mut not_acted_on)?,
        };
        let interval = duration(spec, "interval")?
            .ok_or_else(|| invalid("interval", "must be set (for example 10m)"))?;
        let target = text(spec, "targetNamespace");
        let release_name = text(spec, "releaseName")
            .unwrap_or_else(|| default_release_name(name, target.as_deref()));
        if release_name.len() > 53 {
            return Err(invalid(
                "releaseName",
                format!("{release_name:?} is longer than 53 characters"),
            ));
        }
        let values = match spec.get("values") {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(object @ Value::Object(_)) => object.clone(),
            Some(other) => return Err(invalid("values", format!("{other} is not a map"))),
        };
        let mut values_from = Vec::new();
        for (index, entry) in spec
            .get("valuesFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("valuesFrom[{index}]");
            let kind = text(entry, "kind").unwrap_or_default();
            if kind != "ConfigMap" && kind != "Secret" {
                return Err(invalid(
                    format!("{field}.kind"),
                    format!("{kind:?} is not ConfigMap or Secret"),
                ));
            }
            values_from.push(ValuesReference {
                kind,
                name: text(entry, "name")
                    .ok_or_else(|| invalid(format!("{field}.name"), "must be set"))?,
                values_key: text(entry, "valuesKey").unwrap_or_else(|| "values.yaml".into()),
                target_path: text(entry, "targetPath").unwrap_or_default(),
                optional: flag(entry, "optional"),
            });
        }
        let depends_on = spec
            .get("dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some((
                    text(d, "namespace").unwrap_or_else(|| namespace.to_string()),
                    text(d, "name")?,
                ))
            })
            .collect();
        let install = spec.get("install").unwrap_or(&Value::Null);
        let upgrade = spec.get("upgrade").unwrap_or(&Value::Null);
        let timeout = duration(spec, "timeout")?.unwrap_or(Duration::from_secs(300));
        let max_history = match spec.get("maxHistory") {
            None | Some(Value::Null) => 5,
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| invalid("maxHistory", "must be a whole number ≥ 0"))?,
            Some(other) => return Err(invalid("maxHistory", format!("{other} is not a number"))),
        };
        let rollback = spec.get("rollback").unwrap_or(&Value::Null);
        for field in ["cleanupOnFail", "force", "recreate", "disableWaitForJobs"] {
            if flag(rollback, field) {
                not_acted_on.push(format!("spec.rollback.{field}"));
            }
        }
        let upgrade_retries = retries(upgrade, "upgrade")?;
        let remediation = match upgrade
            .pointer("/remediation/strategy")
            .and_then(Value::as_str)
        {
            None | Some("rollback") => UpgradeRemediation::Rollback,
            Some("uninstall") => UpgradeRemediation::Uninstall,
            Some(other) => {
                return Err(invalid(
                    "upgrade.remediation.strategy",
                    format!("{other:?} is not a strategy (rollback or uninstall)"),
                ));
            }
        };
        let remediate_last_failure = upgrade
            .pointer("/remediation/remediateLastFailure")
            .and_then(Value::as_bool)
            .unwrap_or(upgrade_retries > 0);
        let uninstall = UninstallSettings::parse(spec, &mut not_acted_on)?;
        let install_strategy = ReleaseStrategy::parse(install, "install")?;
        let upgrade_strategy = ReleaseStrategy::parse(upgrade, "upgrade")?;
        let test = HelmTests::parse(spec)?;
        let drift = super::helm_drift::DriftDetection::parse(spec, &mut not_acted_on)?;
        let post_renderers = post_renderers(spec)?;
        let common_metadata = common_metadata(spec)?;
        let kube_config = super::kustomization_spec::KubeConfigRef::parse(spec)
            .map_err(|e| invalid(e.field, e.problem))?;
        let service_account = super::kustomization_spec::service_account_name(spec)
            .map_err(|e| invalid(e.field, e.problem))?;
        unknown_fields(spec, &RELEASE_FIELDS, "spec.", &mut not_acted_on);
        Ok(HelmReleaseSpec {
            chart: template,
            interval,
            release_name,
            target_namespace: target.unwrap_or_else(|| namespace.to_string()),
            storage_namespace: text(spec, "storageNamespace")
                .unwrap_or_else(|| namespace.to_string()),
            values,
            values_from,
            depends_on,
            suspend: flag(spec, "suspend"),
            timeout,
            install_wait: !flag(install, "disableWait"),
            upgrade_wait: !flag(upgrade, "disableWait"),
            create_namespace: flag(install, "createNamespace"),
            install_crds: crd_policy(install, "install", CrdPolicy::Apply)?,
            upgrade_crds: crd_policy(upgrade, "upgrade", CrdPolicy::Skip)?,
            install_retries: retries(install, "install")?,
            upgrade_retries,
            upgrade_remediation: remediation,
            remediate_last_install_failure: install
                .pointer("/remediation/remediateLastFailure")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            remediate_last_upgrade_failure: remediate_last_failure,
            rollback_wait: !flag(rollback, "disableWait"),
            rollback_timeout: duration(rollback, "timeout")?.unwrap_or(timeout),
            force: flag(upgrade, "force"),
            max_history,
            drift,
            kube_config,
            service_account,
            post_renderers,
            common_metadata,
            uninstall,
            install_strategy,
            upgrade_strategy,
            install_ignore_test_failures: install
                .pointer("/remediation/ignoreTestFailures")
                .and_then(Value::as_bool)
                .unwrap_or(test.ignore_failures),
            upgrade_ignore_test_failures: upgrade
                .pointer("/remediation/ignoreTestFailures")
                .and_then(Value::as_bool)
                .unwrap_or(test.ignore_failures),
            test,
            not_acted_on,
        })
    }

    /// Where and as whom the release is installed (and its records kept).
    pub(crate) fn target(&self) -> super::remote::Target<'_> {
        super::remote::Target {
            kube_config: self.kube_config.as_ref(),
            service_account: self.service_account.as_deref(),
        }
    }
}

/// `spec.test` of a HelmRelease: Helm's test hooks, run after a successful install or upgrade.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HelmTests {
    /// `enable`.
    pub enable: bool,
    /// `ignoreFailures`: a failed test does not fail the release.
    pub ignore_failures: bool,
    /// `timeout` (default: the release's).
    pub timeout: Option<Duration>,
    /// `filters[]{name, exclude}`.
    pub filters: Vec<(String, bool)>,
}

impl HelmTests {
    fn parse(spec: &Value) -> Result<HelmTests, SpecError> {
        let test = spec.get("test").unwrap_or(&Value::Null);
        let filters = match test.get("filters") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(entries)) => entries
                .iter()
                .enumerate()
                .map(|(index, entry)| {
                    let name = text(entry, "name").ok_or_else(|| {
                        invalid(format!("test.filters[{index}].name"), "must be set")
                    })?;
                    Ok((
                        name,
                        entry.get("exclude").and_then(Value::as_bool) == Some(true),
                    ))
                })
                .collect::<Result<_, SpecError>>()?,
            Some(_) => return Err(invalid("test.filters", "must be a list")),
        };
        Ok(HelmTests {
            enable: test.get("enable").and_then(Value::as_bool) == Some(true),
            ignore_failures: test.get("ignoreFailures").and_then(Value::as_bool) == Some(true),
            timeout: duration(test, "timeout")
                .map_err(|e| invalid(format!("test.{}", e.field), e.problem))?,
            filters,
        })
    }

    /// Whether the test hook `name` runs: filters that include name the only tests run;
    /// filters that exclude skip theirs.
    pub fn selects(&self, name: &str) -> bool {
        let includes: Vec<&String> = self
            .filters
            .iter()
            .filter(|(_, exclude)| !exclude)
            .map(|(n, _)| n)
            .collect();
        if self
            .filters
            .iter()
            .any(|(n, exclude)| *exclude && n == name)
        {
            return false;
        }
        includes.is_empty() || includes.iter().any(|n| *n == name)
    }
}

/// `spec.install.strategy` / `spec.upgrade.strategy`: what follows a failed release.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReleaseStrategy {
    /// Remediate (rollback or uninstall) within the retries, then stall (Flux's default).
    #[default]
    RemediateOnFailure,
    /// No remediation: try the release again every `retry_interval`, without a limit.
    RetryOnFailure {
        /// `retryInterval` (default 5m).
        retry_interval: Duration,
    },
}

impl ReleaseStrategy {
    fn parse(settings: &Value, field: &str) -> Result<ReleaseStrategy, SpecError> {
        let strategy = settings.get("strategy").unwrap_or(&Value::Null);
        match strategy.get("name").and_then(Value::as_str) {
            None | Some("RemediateOnFailure") => Ok(ReleaseStrategy::RemediateOnFailure),
            Some("RetryOnFailure") => Ok(ReleaseStrategy::RetryOnFailure {
                retry_interval: duration(strategy, "retryInterval")
                    .map_err(|e| invalid(format!("{field}.strategy.{}", e.field), e.problem))?
                    .unwrap_or(Duration::from_secs(300)),
            }),
            Some(other) => Err(invalid(
                format!("{field}.strategy.name"),
                format!("{other:?} is not RemediateOnFailure or RetryOnFailure"),
            )),
        }
    }
}

/// `spec.uninstall` of a HelmRelease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UninstallSettings {
    /// `keepHistory`: the release records stay, the latest marked `uninstalled`.
    pub keep_history: bool,
    /// `disableHooks`: no pre- and post-delete hooks.
    pub disable_hooks: bool,
    /// `timeout` of the hooks (default: the release's).
    pub timeout: Option<Duration>,
}

impl UninstallSettings {
    fn parse(spec: &Value, not_acted_on: &mut Vec<String>) -> Result<Self, SpecError> {
        let uninstall = spec.get("uninstall").unwrap_or(&Value::Null);
        for field in ["disableWait", "deletionPropagation"] {
            if uninstall.get(field).is_some_and(|v| !v.is_null()) {
                not_acted_on.push(format!(
                    "spec.uninstall.{field} (objects are deleted in the background, not waited for)"
                ));
            }
        }
        Ok(UninstallSettings {
            keep_history: uninstall.get("keepHistory").and_then(Value::as_bool) == Some(true),
            disable_hooks: uninstall.get("disableHooks").and_then(Value::as_bool) == Some(true),
            timeout: duration(uninstall, "timeout")
                .map_err(|e| invalid(format!("uninstall.{}", e.field), e.problem))?,
        })
    }
}

/// `spec.commonMetadata` of a HelmRelease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonMetadata {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

fn post_renderers(spec: &Value) -> Result<Vec<plumb_render::flux::PostRenderer>, SpecError> {
    let list = match spec.get("postRenderers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("postRenderers", "must be a list")),
    };
    let mut renderers = Vec::new();
    for (index, entry) in list.iter().enumerate() {
        let Some(kustomize) = entry.get("kustomize").filter(|k| k.is_object()) else {
            return Err(invalid(
                format!("postRenderers[{index}]"),
                "only kustomize post-renderers exist; set kustomize",
            ));
        };
        renderers.push(
            super::kustomization_spec::patches_and_images(
                kustomize,
                &format!("postRenderers[{index}].kustomize."),
            )
            .map_err(|e| invalid(e.field, e.problem))?,
        );
    }
    Ok(renderers)
}

fn common_metadata(spec: &Value) -> Result<CommonMetadata, SpecError> {
    let metadata = spec.get("commonMetadata").unwrap_or(&Value::Null);
    let map = |field: &str| -> Result<BTreeMap<String, String>, SpecError> {
        match metadata.get(field) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(key, value)| match value {
                    Value::String(text) => Ok((key.clone(), text.clone())),
                    _ => Err(invalid(
                        format!("commonMetadata.{field}.{key}"),
                        "must be a string",
                    )),
                })
                .collect(),
            Some(_) => Err(invalid(
                format!("commonMetadata.{field}"),
                "must be a map of strings",
            )),
        }
    };
    Ok(CommonMetadata {
        labels: map("labels")?,
        annotations: map("annotations")?,
    })
}

/// `spec.chart.spec`: a chart of a HelmRepository.
fn chart_from_template(
    spec: &Value,
    namespace: &str,
    not_acted_on: &mut Vec<String>,
) -> Result<ChartTemplate, SpecError> {
    let template = spec
        .pointer("/chart/spec")
        .filter(|v| v.is_object())
        .ok_or_else(|| invalid("chart.spec", "must be set (or chartRef)"))?;
    let chart =
        text(template, "chart").ok_or_else(|| invalid("chart.spec.chart", "must be set"))?;
    let source = template.get("sourceRef").unwrap_or(&Value::Null);
    let source_kind =
        text(source, "kind").ok_or_else(|| invalid("chart.spec.sourceRef.kind", "must be set"))?;
    if source_kind != "HelmRepository" {
        return Err(invalid(
            "chart.spec.sourceRef.kind",
            format!("{source_kind} sources are not supported yet (only HelmRepository)"),
        ));
    }
    let source_name =
        text(source, "name").ok_or_else(|| invalid("chart.spec.sourceRef.name", "must be set"))?;
    let mut values_files: Vec<String> = template
        .get("valuesFiles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if let Some(file) = text(template, "valuesFile") {
        values_files.insert(0, file);
    }
    for field in ["verify", "reconcileStrategy", "ignoreMissingValuesFiles"] {
        if template.get(field).is_some_and(|v| !v.is_null()) {
            not_acted_on.push(format!("spec.chart.spec.{field}"));
        }
    }
    Ok(ChartTemplate {
        version: text(template, "version").unwrap_or_else(|| "*".into()),
        source_namespace: text(source, "namespace").unwrap_or_else(|| namespace.to_string()),
        chart,
        source_kind,
        source_name,
        values_files,
    })
}

/// `spec.chartRef`: the chart is the artifact of an OCIRepository (a HelmChart is not
/// served by plumb yet). The chart's name and version are known once the artifact is read.
fn chart_from_ref(reference: &Value, namespace: &str) -> Result<ChartTemplate, SpecError> {
    if !reference.is_object() {
        return Err(invalid("chartRef", "must be an object"));
    }
    let kind = text(reference, "kind").ok_or_else(|| invalid("chartRef.kind", "must be set"))?;
    match kind.as_str() {
        "OCIRepository" => {}
        "HelmChart" => {
            return Err(invalid(
                "chartRef.kind",
                "HelmChart sources are not supported yet (plumb does not serve HelmCharts); use an OCIRepository, or chart.spec with a HelmRepository",
            ));
        }
        other => {
            return Err(invalid(
                "chartRef.kind",
                format!("{other:?} is not OCIRepository or HelmChart"),
            ));
        }
    }
    Ok(ChartTemplate {
        chart: String::new(),
        version: "*".into(),
        source_kind: kind,
        source_namespace: text(reference, "namespace").unwrap_or_else(|| namespace.to_string()),
        source_name: text(reference, "name")
            .ok_or_else(|| invalid("chartRef.name", "must be set"))?,
        values_files: Vec::new(),
    })
}

/// `spec.chartRef` of a HelmRelease object as (kind, (namespace, name)), read leniently.
pub fn chart_ref_of(object: &Value, own_namespace: &str) -> Option<(String, AppId)> {
    let reference = object.pointer("/spec/chartRef")?;
    Some((
        text(reference, "kind")?,
        (
            text(reference, "namespace").unwrap_or_else(|| own_namespace.to_string()),
            text(reference, "name")?,
        ),
    ))
}

/// `spec.dependsOn` of a HelmRelease object as (namespace, name), read leniently.
pub fn depends_on(object: &Value, own_namespace: &str) -> Vec<AppId> {
    super::kustomization_spec::depends_on(object, own_namespace)
}

/// `spec.chart.spec.sourceRef` of a HelmRelease object as (namespace, name), read leniently.
pub fn repository_of(object: &Value, own_namespace: &str) -> Option<AppId> {
    let source = object.pointer("/spec/chart/spec/sourceRef")?;
    if text(source, "kind").as_deref() != Some("HelmRepository") {
        return None;
    }
    Some((
        text(source, "namespace").unwrap_or_else(|| own_namespace.to_string()),
        text(source, "name")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn release(spec: Value) -> Result<HelmReleaseSpec, SpecError> {
        HelmReleaseSpec::parse(&spec, "podinfo", "apps")
    }

    #[test]
    fn defaults_are_fluxs() {
        let spec = release(
            json!({"interval": "5m", "chart": {"spec": {"chart": "podinfo",
            "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}}),
        )
        .expect("valid");
        assert_eq!(spec.chart.version, "*");
        assert_eq!(spec.chart.source_namespace, "apps");
        assert_eq!(spec.release_name, "podinfo");
        assert_eq!(spec.target_namespace, "apps");
        assert_eq!(spec.timeout, Duration::from_secs(300));
        assert_eq!(spec.max_history, 5);
        assert!(spec.install_wait && spec.upgrade_wait);
        assert_eq!(spec.install_crds, CrdPolicy::Apply);
        assert_eq!(spec.upgrade_crds, CrdPolicy::Skip);
        let targeted = release(json!({"interval": "5m", "targetNamespace": "web",
            "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "p"}}}}))
        .expect("valid");
        assert_eq!(targeted.release_name, "web-podinfo");
        assert_eq!(targeted.target_namespace, "web");
    }

    #[test]
    fn long_release_names_are_shortened_as_flux_does() {
        let name = default_release_name(&"a".repeat(40), Some(&"b".repeat(30)));
        assert!(name.len() <= 53, "{name}");
        assert_ne!(
            name,
            default_release_name(&"a".repeat(41), Some(&"b".repeat(30)))
        );
    }

    #[test]
    fn bad_specs_name_the_field() {
        let error = release(json!({"interval": "5m"})).expect_err("no chart");
        assert_eq!(error.field, "chart.spec");
        let error =
            release(json!({"interval": "5m", "chartRef": {"kind": "HelmChart", "name": "x"}}))
                .expect_err("HelmChart chartRef");
        assert_eq!(error.field, "chartRef.kind");
        assert!(error.to_string().contains("not supported yet"), "{error}");
        let error = release(json!({"interval": "5m", "chartRef": {"kind": "OCIRepository", "name": "x"},
            "chart": {"spec": {"chart": "x", "sourceRef": {"kind": "HelmRepository", "name": "x"}}}}))
        .expect_err("both");
        assert_eq!(error.field, "chartRef");
        let error = release(json!({"interval": "5m", "chartRef": {"kind": "OCIRepository"}}))
            .expect_err("no name");
        assert_eq!(error.field, "chartRef.name");
        let spec = release(
            json!({"interval": "5m", "chartRef": {"kind": "OCIRepository", "name": "podinfo"}}),
        )
        .expect("chartRef to an OCIRepository");
        assert_eq!(
            (
                spec.chart.source_kind.as_str(),
                spec.chart.source_namespace.as_str()
            ),
            ("OCIRepository", "apps")
        );
        let error = release(json!({"interval": "5m", "chart": {"spec": {"chart": "x",
            "sourceRef": {"kind": "GitRepository", "name": "x"}}}}))
        .expect_err("git source");
        assert_eq!(error.field, "chart.spec.sourceRef.kind");
        let error = release(json!({"interval": "5m", "chart": {"spec": {"chart": "x",
            "sourceRef": {"kind": "HelmRepository", "name": "x"}}}, "values": [1]}))
        .expect_err("values list");
        assert_eq!(error.field, "values");
        let error = release(json!({"interval": "5m", "chart": {"spec": {"chart": "x",
            "sourceRef": {"kind": "HelmRepository", "name": "x"}}}, "valuesFrom": [{"kind": "Pod", "name": "x"}]}))
        .expect_err("valuesFrom kind");
        assert_eq!(error.field, "valuesFrom[0].kind");
        let error = release(json!({"interval": "5m", "chart": {"spec": {"chart": "x",
            "sourceRef": {"kind": "HelmRepository", "name": "x"}}}, "install": {"crds": "Maybe"}}))
        .expect_err("crds policy");
        assert_eq!(error.field, "install.crds");
    }

    #[test]
    fn repositories_need_matching_url_and_type() {
        assert!(
            HelmRepositorySpec::parse(
                &json!({"url": "https://charts.example.com", "interval": "1h"})
            )
            .is_ok()
        );
        let error = HelmRepositorySpec::parse(&json!({"url": "oci://ghcr.io/x", "interval": "1h"}))
            .expect_err("oci url without type");
        assert_eq!(error.field, "url");
        let error = HelmRepositorySpec::parse(&json!({"url": "ftp://x", "interval": "1h"}))
            .expect_err("scheme");
        assert_eq!(error.field, "url");
        let error = HelmRepositorySpec::parse(&json!({"url": "https://x"})).expect_err("interval");
        assert_eq!(error.field, "interval");
    }
}
