//! The `argoproj.io/v1alpha1` Application schema, as far as plumb acts on it.
//!
//! Fields are read leniently the way Argo CD reads them (unknown fields ignored, everything
//! optional), and a type mismatch is reported with the path of the field, e.g.
//! `spec.syncPolicy.automated.prune: invalid type: string "yes", expected a boolean`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// API group of Argo CD's kinds.
pub const GROUP: &str = "argoproj.io";
/// API version of Argo CD's kinds.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";
/// The annotation that asks for an immediate refresh (`normal` or `hard`).
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";
/// The in-cluster destination server.
pub const IN_CLUSTER: &str = "https://kubernetes.default.svc";

/// The parts of an Application plumb reads.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// Project name; `default` when empty.
    #[serde(default)]
    pub project: String,
    /// The single source.
    #[serde(default)]
    pub source: Option<Source>,
    /// Multiple sources (`spec.sources[]`).
    #[serde(default)]
    pub sources: Vec<Source>,
    /// Where objects go.
    #[serde(default)]
    pub destination: Destination,
    /// Automation, options and retries.
    #[serde(default)]
    pub sync_policy: Option<SyncPolicy>,
    /// How many history entries to keep (Argo CD's default is 10).
    #[serde(default)]
    pub revision_history_limit: Option<i64>,
    /// Parts of objects that never make the application OutOfSync; compile them with
    /// [`crate::ignore::IgnoreRules::compile`].
    #[serde(default)]
    pub ignore_differences: Vec<crate::ignore::IgnoreDifference>,
    /// Applications this one waits for; resolve with
    /// [`crate::dependencies::DependencyGraph::build`].
    #[serde(default)]
    pub depends_on: Option<crate::dependencies::DependsOn>,
}

/// A source of manifests.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Git URL (or Helm repository URL with `chart`).
    #[serde(rename = "repoURL", default)]
    pub repo_url: String,
    /// Branch, tag, commit or `HEAD`.
    #[serde(default)]
    pub target_revision: String,
    /// Directory inside the repository.
    #[serde(default)]
    pub path: String,
    /// Helm chart name, for Helm repository sources.
    #[serde(default)]
    pub chart: String,
    /// Plain-directory options.
    #[serde(default)]
    pub directory: Option<Directory>,
    /// Kustomize overrides, kept raw for the renderer.
    #[serde(default)]
    pub kustomize: Option<Value>,
    /// Helm options, kept raw for the renderer.
    #[serde(default)]
    pub helm: Option<Value>,
    /// `ref` name for multi-source `$ref/...` value files.
    #[serde(default, rename = "ref")]
    pub reference: String,
    /// A name for the source of a multi-source application, shown in messages (Argo CD's
    /// `sources[].name`); written back only when set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Plain-directory options.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// Descend into subdirectories.
    #[serde(default)]
    pub recurse: bool,
    /// Glob of files to include (`{a.yaml,b.yaml}` alternatives allowed).
    #[serde(default)]
    pub include: String,
    /// Glob of files to exclude.
    #[serde(default)]
    pub exclude: String,
    /// Jsonnet options (not acted on yet).
    #[serde(default)]
    pub jsonnet: Option<Value>,
}

/// Where objects are applied.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// API server URL.
    #[serde(default)]
    pub server: String,
    /// Cluster name, instead of the server.
    #[serde(default)]
    pub name: String,
    /// Namespace for namespaced objects that do not set one.
    #[serde(default)]
    pub namespace: String,
}

/// `spec.syncPolicy`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    /// Automated sync; absent means manual.
    #[serde(default)]
    pub automated: Option<Automated>,
    /// Application-level sync options.
    #[serde(default)]
    pub sync_options: Vec<String>,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<Retry>,
}

/// `spec.syncPolicy.automated`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Automated {
    /// Delete objects Git no longer declares.
    #[serde(default)]
    pub prune: bool,
    /// Revert changes made in the cluster.
    #[serde(default)]
    pub self_heal: bool,
    /// Allow the application to become empty.
    #[serde(default)]
    pub allow_empty: bool,
    /// `enabled: false` turns automation off while keeping the block (Argo CD 3.x).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `spec.syncPolicy.retry`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Attempts; -1 is unbounded, 0 none.
    #[serde(default)]
    pub limit: i64,
    /// Backoff between attempts.
    #[serde(default)]
    pub backoff: Option<Backoff>,
}

/// Retry backoff, durations in Go syntax (`5s`, `3m`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// First delay (default `5s`).
    #[serde(default)]
    pub duration: Option<Value>,
    /// Multiplier (default 2).
    #[serde(default)]
    pub factor: Option<i64>,
    /// Cap (default `3m`).
    #[serde(default)]
    pub max_duration: Option<Value>,
}

/// A field of the Application that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.{path}: {message}")]
pub struct SpecError {
    /// Dotted path below `spec`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ApplicationSpec {
    /// Reads `spec`, naming the offending field on error.
    pub fn parse(spec: &Value) -> Result<ApplicationSpec, SpecError> {
        serde_path_to_error::deserialize(spec).map_err(|error| SpecError {
            path: error.path().to_string(),
            message: error.inner().to_string(),
        })
    }

    /// The sources, whichever form was used.
    pub fn all_sources(&self) -> Vec<&Source> {
        if self.sources.is_empty() {
            self.source.iter().collect()
        } else {
            self.sources.iter().collect()
        }
    }

    /// Whether automated sync is on.
    pub fn is_automated(&self) -> bool {
        self.sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref())
            .is_some_and(|a| a.enabled != Some(false))
    }

    /// The automated block when automation is on.
    pub fn automated(&self) -> Option<&Automated> {
        if self.is_automated() {
            self.sync_policy.as_ref().and_then(|p| p.automated.as_ref())
        } else {
            None
        }
    }

    /// Application-level sync options.
    pub fn sync_options(&self) -> crate::sync_options::SyncOptions {
        let options = self
            .sync_policy
            .as_ref()
            .map(|p| p.sync_options.as_slice())
            .unwrap_or(&[]);
        crate::sync_options::SyncOptions::parse(options.iter().map(String::as_str))
    }

    /// History entries to keep.
    pub fn history_limit(&self) -> usize {
        self.revision_history_limit
            .map(|l| l.clamp(0, 1000) as usize)
            .unwrap_or(10)
    }
}

/// Parses a Go duration such as `5s`, `1m30s`, `2h`, `250ms`; Argo CD also accepts a bare
/// number of seconds.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(std::time::Duration::from_secs(seconds));
    }
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * factor;
        rest = &rest[unit_end..];
    }
    // `from_secs_f64` panics on overflow (`"99999999999999999999h"`); such a duration is invalid.
    std::time::Duration::try_from_secs_f64(total).ok()
}

/// Fields of an Application `spec` that neither plumb nor Argo CD knows (a typo such as
/// `targetRevison`), as paths like `spec.source.targetRevison`; sorted.
///
/// Argo CD's CRD schema would drop them silently; plumb names them in a warning instead.
pub fn unknown_spec_fields(spec: &Value) -> Vec<String> {
    const SPEC: &[&str] = &[
        "project",
        "source",
        "sources",
        "destination",
        "syncPolicy",
        "ignoreDifferences",
        "info",
        "revisionHistoryLimit",
        "dependsOn",
    ];
    const SOURCE: &[&str] = &[
        "repoURL",
        "targetRevision",
        "path",
        "chart",
        "directory",
        "kustomize",
        "helm",
        "plugin",
        "ref",
        "name",
    ];
    const DESTINATION: &[&str] = &["server", "name", "namespace"];
    const SYNC_POLICY: &[&str] = &[
        "automated",
        "syncOptions",
        "retry",
        "managedNamespaceMetadata",
    ];
    const AUTOMATED: &[&str] = &["prune", "selfHeal", "allowEmpty", "enabled"];
    const RETRY: &[&str] = &["limit", "backoff", "refresh"];
    const BACKOFF: &[&str] = &["duration", "factor", "maxDuration"];
    const DIRECTORY: &[&str] = &["recurse", "include", "exclude", "jsonnet"];
    fn check(value: Option<&Value>, path: &str, known: &[&str], out: &mut Vec<String>) {
        if let Some(map) = value.and_then(Value::as_object) {
            out.extend(
                map.keys()
                    .filter(|k| !known.contains(&k.as_str()))
                    .map(|k| format!("{path}.{k}")),
            );
        }
    }
    let mut unknown = Vec::new();
    check(Some(spec), "spec", SPEC, &mut unknown);
    let mut sources: Vec<(String, &Value)> = Vec::new();
    if let Some(source) = spec.get("source") {
        sources.push(("spec.source".into(), source));
    }
    if let Some(list) = spec.get("sources").and_then(Value::as_array) {
        sources.extend(
            list.iter()
                .enumerate()
                .map(|(i, s)| (format!("spec.sources[{i}]"), s)),
        );
    }
    for (path, source) in sources {
        check(Some(source), &path, SOURCE, &mut unknown);
        check(
            source.get("directory"),
            &format!("{path}.directory"),
            DIRECTORY,
            &mut unknown,
        );
    }
    check(
        spec.get("destination"),
        "spec.destination",
        DESTINATION,
        &mut unknown,
    );
    let policy = spec.get("syncPolicy");
    check(policy, "spec.syncPolicy", SYNC_POLICY, &mut unknown);
    let automated = policy.and_then(|p| p.get("automated"));
    check(
        automated,
        "spec.syncPolicy.automated",
        AUTOMATED,
        &mut unknown,
    );
    let retry = policy.and_then(|p| p.get("retry"));
    check(retry, "spec.syncPolicy.retry", RETRY, &mut unknown);
    let backoff = retry.and_then(|r| r.get("backoff"));
    check(
        backoff,
        "spec.syncPolicy.retry.backoff",
        BACKOFF,
        &mut unknown,
    );
    unknown.sort();
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_spec_fields_are_named_by_path() {
        let spec = serde_json::json!({"project": "default", "sourc": {},
            "source": {"repoURL": "x", "targetRevison": "main", "directory": {"recursive": true}},
            "destination": {"server": "x", "namepsace": "a"},
            "syncPolicy": {"automated": {"prune": true, "selfheal": true}, "retry": {"backoff": {"factr": 2}}}});
        assert_eq!(
            unknown_spec_fields(&spec),
            [
                "spec.destination.namepsace",
                "spec.sourc",
                "spec.source.directory.recursive",
                "spec.source.targetRevison",
                "spec.syncPolicy.automated.selfheal",
                "spec.syncPolicy.retry.backoff.factr",
            ]
        );
        assert!(unknown_spec_fields(&serde_json::json!({"source": {"repoURL": "x"}})).is_empty());
    }
    use serde_json::json;

    #[test]
    fn huge_durations_are_invalid_not_a_panic() {
        assert_eq!(parse_duration("99999999999999999999999h"), None);
        assert_eq!(
            parse_duration("1m30s"),
            Some(std::time::Duration::from_secs(90))
        );
    }

    #[test]
    fn parses_a_typical_application() {
        let spec = json!({"project": "default",
            "source": {"repoURL": "https://example.com/repo.git", "targetRevision": "HEAD", "path": "guestbook",
                "directory": {"recurse": true}},
            "destination": {"server": IN_CLUSTER, "namespace": "guestbook"},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]}});
        let spec = ApplicationSpec::parse(&spec).unwrap();
        assert!(spec.is_automated());
        assert!(spec.automated().unwrap().self_heal);
        assert!(spec.sync_options().create_namespace);
        assert_eq!(spec.all_sources()[0].path, "guestbook");
        assert_eq!(spec.history_limit(), 10);
        assert!(spec.ignore_differences.is_empty());
    }

    #[test]
    fn reads_ignore_differences() {
        let spec = json!({"ignoreDifferences": [{"group": "apps", "kind": "Deployment",
            "jsonPointers": ["/spec/replicas"]}]});
        let spec = ApplicationSpec::parse(&spec).unwrap();
        assert_eq!(spec.ignore_differences[0].json_pointers, ["/spec/replicas"]);
        let error =
            ApplicationSpec::parse(&json!({"ignoreDifferences": [{"kind": 1}]})).unwrap_err();
        assert_eq!(error.path, "ignoreDifferences[0].kind");
    }

    #[test]
    fn reads_depends_on() {
        let spec =
            json!({"dependsOn": {"selectors": [{"namePattern": ["db-*"]}], "blockOnEmpty": true}});
        let spec = ApplicationSpec::parse(&spec).unwrap();
        let depends_on = spec.depends_on.unwrap();
        assert!(depends_on.block_on_empty);
        assert_eq!(depends_on.selectors[0].name_pattern, ["db-*"]);
        let error =
            ApplicationSpec::parse(&json!({"dependsOn": {"selectors": [{"namePattern": "db"}]}}))
                .unwrap_err();
        assert_eq!(error.path, "dependsOn.selectors[0].namePattern");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let spec = json!({"syncPolicy": {"automated": {"prune": "yes"}}});
        let error = ApplicationSpec::parse(&spec).unwrap_err();
        assert_eq!(error.path, "syncPolicy.automated.prune");
        assert!(
            error
                .to_string()
                .starts_with("spec.syncPolicy.automated.prune: invalid type")
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_duration("5s"),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(
            parse_duration("1m30s"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("250ms"),
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(parse_duration("3"), Some(std::time::Duration::from_secs(3)));
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_duration(""), None);
    }
}
