//! Custom health checks as Argo CD reads them from the `argocd-cm` ConfigMap.
//!
//! Two forms, merged the way Argo CD merges them (a split key overrides the same field of the
//! block):
//!
//! - split keys: `resource.customizations.health.<group>_<kind>` holds a script, and
//!   `resource.customizations.useOpenLibs.<group>_<kind>` a boolean. The core group is written
//!   as the bare kind (`resource.customizations.health.ConfigMap`), and `all` stands for `*/*`
//!   (which, as in Argo CD, matches every kind with a group, not core kinds such as `Pod`,
//!   whose key has no `/`).
//! - the `resource.customizations` YAML block, keyed by `<group>/<kind>` (or the bare kind), each
//!   with `health.lua` and `health.lua.useOpenLibs`. Only here may a key hold globs
//!   (`ec2.aws.crossplane.io/*`, `"*.aws.crossplane.io/*"`), since ConfigMap keys cannot hold
//!   `*`.
//!
//! An object's script is the one under its exact key; failing that, the first key (in sorted
//! order; Argo CD takes Go's map order, which is random) whose glob matches `<group>/<kind>`.
//!
//! **Guarantees**: parsing is pure and never fails as a whole: a bad entry becomes a
//! [`ConfigProblem`] naming its key and is left out, the others stay in force. Scripts are
//! checked for syntax once, here.

use crate::lua::{self, Limits, ScriptError};
use plumb_core::glob::Glob;
use serde_json::Value;
use std::collections::BTreeMap;

/// The ConfigMap's name.
pub const CONFIG_MAP: &str = "argocd-cm";
/// The key of the YAML block.
pub const BLOCK_KEY: &str = "resource.customizations";
/// The prefix of split keys.
pub const SPLIT_PREFIX: &str = "resource.customizations.";

/// Customization types Argo CD knows besides health; plumb reads them elsewhere or not at all.
const OTHER_TYPES: [&str; 4] = [
    "actions",
    "ignoreDifferences",
    "ignoreResourceUpdates",
    "knownTypeFields",
];

/// One health script and where it came from.
#[derive(Debug, Clone)]
pub struct HealthScript {
    /// Where it is written: the split key, or `resource.customizations` and the block's key.
    pub source: String,
    /// `<group>/<kind>` (bare kind for the core group), possibly a glob.
    pub group_kind: String,
    /// The script, or why it cannot run (syntax, size).
    pub script: Result<String, ScriptError>,
    /// Argo CD's `useOpenLibs`. Accepted; plumb's sandbox is the same either way (see
    /// [`crate::lua`]).
    pub use_open_libs: bool,
    glob: Option<Glob>,
}

/// An entry of the ConfigMap that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The ConfigMap key.
    pub key: String,
    /// What is wrong, lowercase.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{CONFIG_MAP} key {:?}: {}", self.key, self.message)
    }
}

/// The health scripts of one `argocd-cm`.
#[derive(Debug, Clone, Default)]
pub struct HealthScripts {
    scripts: BTreeMap<String, HealthScript>,
    problems: Vec<ConfigProblem>,
}

#[derive(Default)]
struct Override {
    source: String,
    health: Option<String>,
    use_open_libs: bool,
}

impl HealthScripts {
    /// Reads the ConfigMap's `data`.
    pub fn parse(data: &BTreeMap<String, String>, limits: &Limits) -> HealthScripts {
        let mut problems = Vec::new();
        let mut overrides: BTreeMap<String, Override> = BTreeMap::new();
        if let Some(block) = data.get(BLOCK_KEY).filter(|b| !b.trim().is_empty()) {
            read_block(block, &mut overrides, &mut problems);
        }
        for (key, value) in data {
            let Some(rest) = key.strip_prefix(SPLIT_PREFIX) else {
                continue;
            };
            let Some((kind_of_customization, group_kind)) = rest.split_once('.') else {
                continue;
            };
            let problem = |message: String| ConfigProblem {
                key: key.clone(),
                message,
            };
            if OTHER_TYPES.contains(&kind_of_customization) {
                continue;
            }
            if kind_of_customization != "health" && kind_of_customization != "useOpenLibs" {
                problems.push(problem(format!(
                    "unknown customization type {kind_of_customization:?}"
                )));
                continue;
            }
            let override_key = match override_key(group_kind) {
                Ok(key) => key,
                Err(message) => {
                    problems.push(problem(message));
                    continue;
                }
            };
            let entry = overrides.entry(override_key).or_default();
            if kind_of_customization == "health" {
                entry.health = Some(value.clone());
                entry.source = key.clone();
            } else {
                match parse_bool(value) {
                    Some(open) => entry.use_open_libs = open,
                    None => problems.push(problem(format!(
                        "{value:?} is not a boolean (true or false)"
                    ))),
                }
            }
        }
        let mut scripts = BTreeMap::new();
        for (group_kind, entry) in overrides {
            let Some(health) = entry.health.filter(|h| !h.trim().is_empty()) else {
                continue;
            };
            let glob = if group_kind.contains(['*', '?', '[', '{']) {
                match Glob::new(&group_kind) {
                    Ok(glob) => Some(glob),
                    Err(error) => {
                        problems.push(ConfigProblem {
                            key: entry.source.clone(),
                            message: error.to_string(),
                        });
                        continue;
                    }
                }
            } else {
                None
            };
            let script = lua::check(&health, limits).map(|()| health);
            scripts.insert(
                group_kind.clone(),
                HealthScript {
                    source: entry.source,
                    group_kind,
                    script,
                    use_open_libs: entry.use_open_libs,
                    glob,
                },
            );
        }
        HealthScripts { scripts, problems }
    }

    /// Entries left out.
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }

    /// Every script, by `<group>/<kind>` key.
    pub fn scripts(&self) -> impl Iterator<Item = &HealthScript> {
        self.scripts.values()
    }

    /// Whether there are no scripts.
    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    /// The script for objects of `group` and `kind`, if any.
    pub fn script_for(&self, group: &str, kind: &str) -> Option<&HealthScript> {
        let key = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{group}/{kind}")
        };
        self.scripts.get(&key).or_else(|| {
            self.scripts
                .values()
                .find(|script| script.glob.as_ref().is_some_and(|g| g.is_match(&key)))
        })
    }
}

/// Argo CD's `convertToOverrideKey`: `group_Kind` → `group/Kind`, `Kind` → `Kind`, `all` →
/// `*/*`.
fn override_key(group_kind: &str) -> Result<String, String> {
    if group_kind == "all" {
        return Ok("*/*".into());
    }
    let parts: Vec<&str> = group_kind.split('_').collect();
    match parts.as_slice() {
        [group, kind] if !kind.is_empty() => Ok(format!("{group}/{kind}")),
        [kind] if !kind.is_empty() => Ok((*kind).to_string()),
        _ => Err(format!(
            "{group_kind:?} is not <group>_<kind> or <kind> (write the core group as the bare kind)"
        )),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn read_block(
    block: &str,
    overrides: &mut BTreeMap<String, Override>,
    problems: &mut Vec<ConfigProblem>,
) {
    let parsed: Value = match serde_saphyr::from_str(block) {
        Ok(value) => value,
        Err(error) => {
            problems.push(ConfigProblem {
                key: BLOCK_KEY.into(),
                message: format!("not valid YAML: {error}"),
            });
            return;
        }
    };
    let entries = match parsed {
        Value::Object(entries) => entries,
        Value::Null => return,
        _ => {
            problems.push(ConfigProblem {
                key: BLOCK_KEY.into(),
                message: "not a map of <group>/<kind> to customizations".into(),
            });
            return;
        }
    };
    for (group_kind, entry) in entries {
        let source = format!("{BLOCK_KEY}: {group_kind}");
        let problem = |message: String| ConfigProblem {
            key: BLOCK_KEY.into(),
            message: format!("{group_kind}: {message}"),
        };
        let Value::Object(fields) = entry else {
            problems.push(problem("not a map of customizations".into()));
            continue;
        };
        let health = match fields.get("health.lua") {
            None | Some(Value::Null) => None,
            Some(Value::String(script)) => Some(script.clone()),
            Some(_) => {
                problems.push(problem("health.lua is not a string".into()));
                continue;
            }
        };
        let use_open_libs = match fields.get("health.lua.useOpenLibs") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(open)) => *open,
            Some(Value::String(text)) => match parse_bool(text) {
                Some(open) => open,
                None => {
                    problems.push(problem("health.lua.useOpenLibs is not a boolean".into()));
                    continue;
                }
            },
            Some(_) => {
                problems.push(problem("health.lua.useOpenLibs is not a boolean".into()));
                continue;
            }
        };
        overrides.insert(
            group_kind,
            Override {
                source,
                health,
                use_open_libs,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const SCRIPT: &str = "return {status = 'Healthy'}";

    #[test]
    fn split_keys_name_group_and_kind() {
        let scripts = HealthScripts::parse(
            &data(&[
                (
                    "resource.customizations.health.cert-manager.io_Certificate",
                    SCRIPT,
                ),
                (
                    "resource.customizations.useOpenLibs.cert-manager.io_Certificate",
                    "true",
                ),
                ("resource.customizations.health.ConfigMap", SCRIPT),
                (
                    "resource.customizations.ignoreDifferences.apps_Deployment",
                    "x",
                ),
                ("url", "https://example.com"),
            ]),
            &Limits::default(),
        );
        assert!(scripts.problems().is_empty(), "{:?}", scripts.problems());
        let cert = scripts
            .script_for("cert-manager.io", "Certificate")
            .unwrap();
        assert_eq!(cert.group_kind, "cert-manager.io/Certificate");
        assert_eq!(
            cert.source,
            "resource.customizations.health.cert-manager.io_Certificate"
        );
        assert!(cert.use_open_libs);
        assert_eq!(
            scripts.script_for("", "ConfigMap").unwrap().group_kind,
            "ConfigMap"
        );
        assert!(scripts.script_for("apps", "Deployment").is_none());
        assert!(scripts.script_for("cert-manager.io", "Issuer").is_none());
    }

    #[test]
    fn block_form_with_globs_and_split_keys_override_it() {
        let block = "\
cert-manager.io/Certificate:
  health.lua: |
    return {status = 'Degraded'}
\"*.aws.crossplane.io/*\":
  health.lua: |
    return {status = 'Progressing'}
  health.lua.useOpenLibs: true
";
        let scripts = HealthScripts::parse(
            &data(&[
                ("resource.customizations", block),
                (
                    "resource.customizations.health.cert-manager.io_Certificate",
                    SCRIPT,
                ),
            ]),
            &Limits::default(),
        );
        assert!(scripts.problems().is_empty(), "{:?}", scripts.problems());
        let cert = scripts
            .script_for("cert-manager.io", "Certificate")
            .unwrap();
        assert_eq!(cert.script.as_deref(), Ok(SCRIPT));
        let bucket = scripts
            .script_for("s3.aws.crossplane.io", "Bucket")
            .unwrap();
        assert_eq!(bucket.group_kind, "*.aws.crossplane.io/*");
        assert_eq!(
            bucket.source,
            "resource.customizations: *.aws.crossplane.io/*"
        );
        assert!(bucket.use_open_libs);
        assert!(scripts.script_for("gcp.crossplane.io", "Bucket").is_none());
    }

    #[test]
    fn all_matches_every_kind() {
        let scripts = HealthScripts::parse(
            &data(&[("resource.customizations.health.all", SCRIPT)]),
            &Limits::default(),
        );
        assert!(scripts.script_for("example.com", "Widget").is_some());
        // As in Argo CD, `*/*` is matched against `Pod` (the core group has no `/`).
        assert!(scripts.script_for("", "Pod").is_none());
    }

    #[test]
    fn bad_entries_are_problems_and_the_rest_stays() {
        let scripts = HealthScripts::parse(
            &data(&[
                ("resource.customizations", "a: [unclosed"),
                ("resource.customizations.health.a_b_c", SCRIPT),
                (
                    "resource.customizations.useOpenLibs.example.com_Widget",
                    "yes please",
                ),
                ("resource.customizations.colour.example.com_Widget", "blue"),
                ("resource.customizations.health.example.com_Widget", SCRIPT),
                (
                    "resource.customizations.health.example.com_Broken",
                    "return {",
                ),
            ]),
            &Limits::default(),
        );
        let keys: Vec<&str> = scripts.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "resource.customizations",
                "resource.customizations.colour.example.com_Widget",
                "resource.customizations.health.a_b_c",
                "resource.customizations.useOpenLibs.example.com_Widget",
            ]
        );
        assert!(scripts.problems()[0].to_string().contains("argocd-cm key"));
        assert!(
            scripts
                .script_for("example.com", "Widget")
                .unwrap()
                .script
                .is_ok()
        );
        let broken = scripts.script_for("example.com", "Broken").unwrap();
        assert!(matches!(broken.script, Err(ScriptError::Syntax { .. })));
    }

    #[test]
    fn block_entries_of_the_wrong_shape_are_problems() {
        for block in [
            "- a list",
            "example.com/Widget: 3",
            "example.com/Widget: {health.lua: 3}",
            "example.com/Widget: {health.lua: x, health.lua.useOpenLibs: maybe}",
            "\"[/Widget\": {health.lua: x}",
        ] {
            let scripts = HealthScripts::parse(
                &data(&[("resource.customizations", block)]),
                &Limits::default(),
            );
            assert_eq!(
                scripts.problems().len(),
                1,
                "{block}: {:?}",
                scripts.problems()
            );
            assert!(scripts.is_empty(), "{block}");
        }
    }
}
