//! What part an object plays in a sync: hook types, delete policies and sync wave, read from
//! Argo CD's and Helm's annotations the way Argo CD (gitops-engine `pkg/sync/hook`) reads them.
//!
//! **Guarantees**:
//! - `argocd.argoproj.io/hook` wins: when it is present, `helm.sh/hook` types are ignored (but
//!   `helm.sh/hook-delete-policy` still adds to the policies, as in Argo CD).
//! - `Skip` alone means "never apply"; `Skip` with other types is ignored.
//! - Helm hooks map as Argo CD maps them: `pre-install`/`pre-upgrade` → PreSync,
//!   `post-install`/`post-upgrade` → PostSync, `pre-delete` → PreDelete, `post-delete` →
//!   PostDelete; `test`, `test-success`, `test-failure`, `pre-rollback`, `post-rollback` make the
//!   object a hook Argo CD never runs ([`SyncRole::unsupported_helm_types`]); `crd-install` alone is
//!   not a hook at all (the CRD is applied as a normal resource).
//! - A hook without a delete policy gets `BeforeHookCreation`, Argo CD's default.
//! - The wave is `argocd.argoproj.io/sync-wave`, else `helm.sh/hook-weight`, else 0 — for hooks
//!   and normal resources alike.
//!
//! **Errors**: where Argo CD silently ignores a value it does not know, plumb reports a
//! [`HookError`] naming the object and the annotation: unknown hook types, unknown delete
//! policies, empty hook annotations and waves that are not integers.

use crate::key::ObjectKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Argo CD's hook annotation (`PreSync`, `Sync`, `PostSync`, `SyncFail`, `PreDelete`,
/// `PostDelete`, `Skip`; comma-separated).
pub const HOOK_ANNOTATION: &str = "argocd.argoproj.io/hook";
/// Argo CD's hook delete policy annotation.
pub const HOOK_DELETE_POLICY_ANNOTATION: &str = "argocd.argoproj.io/hook-delete-policy";
/// Argo CD's sync wave annotation.
pub const SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";
/// Helm's hook annotation.
pub const HELM_HOOK_ANNOTATION: &str = "helm.sh/hook";
/// Helm's hook weight, used as the wave when there is no sync-wave.
pub const HELM_HOOK_WEIGHT_ANNOTATION: &str = "helm.sh/hook-weight";
/// Helm's hook delete policy annotation.
pub const HELM_HOOK_DELETE_POLICY_ANNOTATION: &str = "helm.sh/hook-delete-policy";

/// A phase of a sync operation, in execution order (`SyncFail` runs only after a failure).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub enum SyncPhase {
    /// Before any normal resource is applied.
    PreSync,
    /// With the normal resources.
    #[default]
    Sync,
    /// After every Sync wave is healthy.
    PostSync,
    /// Only when the sync failed.
    SyncFail,
}

impl SyncPhase {
    /// The name Argo CD uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncPhase::PreSync => "PreSync",
            SyncPhase::Sync => "Sync",
            SyncPhase::PostSync => "PostSync",
            SyncPhase::SyncFail => "SyncFail",
        }
    }
}

impl fmt::Display for SyncPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hook type, as written in `argocd.argoproj.io/hook` or mapped from `helm.sh/hook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HookType {
    /// Runs in the PreSync phase.
    PreSync,
    /// Runs in the Sync phase.
    Sync,
    /// Runs in the PostSync phase.
    PostSync,
    /// Runs when the sync fails.
    SyncFail,
    /// Runs when the application is deleted, before its resources are.
    PreDelete,
    /// Runs when the application is deleted, after its resources are.
    PostDelete,
    /// Never applied.
    Skip,
}

impl HookType {
    /// Parses Argo CD's spelling (case-sensitive, as Argo CD is).
    pub fn parse(text: &str) -> Option<HookType> {
        Some(match text {
            "PreSync" => HookType::PreSync,
            "Sync" => HookType::Sync,
            "PostSync" => HookType::PostSync,
            "SyncFail" => HookType::SyncFail,
            "PreDelete" => HookType::PreDelete,
            "PostDelete" => HookType::PostDelete,
            "Skip" => HookType::Skip,
            _ => return None,
        })
    }

    /// The sync phase this type runs in; `None` for delete-time hooks and `Skip`.
    pub fn sync_phase(self) -> Option<SyncPhase> {
        match self {
            HookType::PreSync => Some(SyncPhase::PreSync),
            HookType::Sync => Some(SyncPhase::Sync),
            HookType::PostSync => Some(SyncPhase::PostSync),
            HookType::SyncFail => Some(SyncPhase::SyncFail),
            HookType::PreDelete | HookType::PostDelete | HookType::Skip => None,
        }
    }
}

/// When a hook object is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DeletePolicy {
    /// After the hook succeeded.
    HookSucceeded,
    /// After the hook failed.
    HookFailed,
    /// Before the hook is created again (the default).
    BeforeHookCreation,
}

impl DeletePolicy {
    /// Parses Argo CD's spelling.
    pub fn parse(text: &str) -> Option<DeletePolicy> {
        Some(match text {
            "HookSucceeded" => DeletePolicy::HookSucceeded,
            "HookFailed" => DeletePolicy::HookFailed,
            "BeforeHookCreation" => DeletePolicy::BeforeHookCreation,
            _ => return None,
        })
    }

    /// Parses Helm's spelling.
    pub fn parse_helm(text: &str) -> Option<DeletePolicy> {
        Some(match text {
            "hook-succeeded" => DeletePolicy::HookSucceeded,
            "hook-failed" => DeletePolicy::HookFailed,
            "before-hook-creation" => DeletePolicy::BeforeHookCreation,
            _ => return None,
        })
    }
}

/// A malformed sync annotation on one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: annotation {annotation:?}: {problem}")]
pub struct HookError {
    /// The object carrying the annotation.
    pub object: Box<ObjectKey>,
    /// The annotation key.
    pub annotation: &'static str,
    /// What is wrong with its value.
    pub problem: String,
}

/// Helm hook types Argo CD recognises but never runs.
const UNSUPPORTED_HELM_TYPES: &[&str] = &[
    "test",
    "test-success",
    "test-failure",
    "pre-rollback",
    "post-rollback",
];

/// The part one object plays in a sync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncRole {
    /// Whether the object is a hook (created for the operation, not a managed resource).
    pub hook: bool,
    /// Whether the object is never applied (`Skip` alone).
    pub skip: bool,
    /// Hook types, deduplicated and sorted; empty for normal resources.
    pub types: Vec<HookType>,
    /// Helm types on a hook that Argo CD does not run (`test`, rollbacks).
    pub unsupported_helm_types: Vec<String>,
    /// Delete policies, deduplicated and sorted; `[BeforeHookCreation]` for hooks without one,
    /// empty for normal resources.
    pub delete_policies: Vec<DeletePolicy>,
    /// The sync wave.
    pub wave: i64,
}

impl SyncRole {
    /// Reads the role of `object` from its annotations.
    ///
    /// **Errors**: the first malformed annotation, see the module documentation.
    pub fn of(object: &Value) -> Result<SyncRole, HookError> {
        let key = Box::new(ObjectKey::of(object));
        let annotations = object
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object);
        let annotation = |name: &'static str| -> Result<Option<&str>, HookError> {
            match annotations.and_then(|a| a.get(name)) {
                None => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.as_str())),
                Some(other) => Err(HookError {
                    object: key.clone(),
                    annotation: name,
                    problem: format!("value must be a string, found {other}"),
                }),
            }
        };
        let fail = |annotation: &'static str, problem: String| HookError {
            object: key.clone(),
            annotation,
            problem,
        };

        let mut role = SyncRole::default();
        if let Some(text) = annotation(HOOK_ANNOTATION)? {
            let items = csv(text);
            if items.is_empty() {
                return Err(fail(HOOK_ANNOTATION, "value is empty".into()));
            }
            for item in items {
                let hook_type = HookType::parse(item).ok_or_else(|| {
                    fail(
                        HOOK_ANNOTATION,
                        format!(
                            "unknown hook type {item:?} (expected PreSync, Sync, PostSync, SyncFail, PreDelete, PostDelete or Skip)"
                        ),
                    )
                })?;
                role.types.push(hook_type);
            }
            role.types.sort();
            role.types.dedup();
            role.skip = role.types == [HookType::Skip];
            role.hook = !role.skip;
        } else if let Some(text) = annotation(HELM_HOOK_ANNOTATION)? {
            // Argo CD treats `crd-install` alone as a normal resource, anything else as a hook.
            role.hook = text != "crd-install";
            let items = csv(text);
            if items.is_empty() {
                return Err(fail(HELM_HOOK_ANNOTATION, "value is empty".into()));
            }
            for item in items {
                match item {
                    "pre-install" | "pre-upgrade" => role.types.push(HookType::PreSync),
                    "post-install" | "post-upgrade" => role.types.push(HookType::PostSync),
                    "pre-delete" => role.types.push(HookType::PreDelete),
                    "post-delete" => role.types.push(HookType::PostDelete),
                    "crd-install" => {}
                    other if UNSUPPORTED_HELM_TYPES.contains(&other) => {
                        role.unsupported_helm_types.push(other.to_string())
                    }
                    other => {
                        return Err(fail(
                            HELM_HOOK_ANNOTATION,
                            format!("unknown Helm hook type {other:?}"),
                        ));
                    }
                }
            }
            role.types.sort();
            role.types.dedup();
        }

        if let Some(text) = annotation(HOOK_DELETE_POLICY_ANNOTATION)? {
            for item in csv(text) {
                role.delete_policies.push(DeletePolicy::parse(item).ok_or_else(|| {
                    fail(
                        HOOK_DELETE_POLICY_ANNOTATION,
                        format!(
                            "unknown delete policy {item:?} (expected HookSucceeded, HookFailed or BeforeHookCreation)"
                        ),
                    )
                })?);
            }
        }
        if let Some(text) = annotation(HELM_HOOK_DELETE_POLICY_ANNOTATION)? {
            for item in csv(text) {
                role.delete_policies
                    .push(DeletePolicy::parse_helm(item).ok_or_else(|| {
                        fail(
                            HELM_HOOK_DELETE_POLICY_ANNOTATION,
                            format!(
                                "unknown Helm delete policy {item:?} (expected hook-succeeded, hook-failed or before-hook-creation)"
                            ),
                        )
                    })?);
            }
        }
        role.delete_policies.sort();
        role.delete_policies.dedup();
        if role.hook && role.delete_policies.is_empty() {
            role.delete_policies.push(DeletePolicy::BeforeHookCreation);
        }

        role.wave = if let Some(text) = annotation(SYNC_WAVE_ANNOTATION)? {
            parse_wave(text)
                .ok_or_else(|| fail(SYNC_WAVE_ANNOTATION, format!("{text:?} is not an integer")))?
        } else if let Some(text) = annotation(HELM_HOOK_WEIGHT_ANNOTATION)? {
            parse_wave(text).ok_or_else(|| {
                fail(
                    HELM_HOOK_WEIGHT_ANNOTATION,
                    format!("{text:?} is not an integer"),
                )
            })?
        } else {
            0
        };
        Ok(role)
    }

    /// The sync phases the object is applied in: `[Sync]` for a normal resource, the phases
    /// of its types for a hook (none for delete-time-only or unsupported hooks), none for
    /// `Skip`.
    pub fn sync_phases(&self) -> Vec<SyncPhase> {
        if self.skip {
            return Vec::new();
        }
        if !self.hook {
            return vec![SyncPhase::Sync];
        }
        let mut phases: Vec<SyncPhase> = self.types.iter().filter_map(|t| t.sync_phase()).collect();
        phases.sort();
        phases.dedup();
        phases
    }

    /// Whether the hook runs when the application is deleted, before its resources.
    pub fn is_pre_delete(&self) -> bool {
        self.hook && self.types.contains(&HookType::PreDelete)
    }

    /// Whether the hook runs when the application is deleted, after its resources.
    pub fn is_post_delete(&self) -> bool {
        self.hook && self.types.contains(&HookType::PostDelete)
    }

    /// Whether the hook object is deleted under `policy`.
    pub fn has_delete_policy(&self, policy: DeletePolicy) -> bool {
        self.delete_policies.contains(&policy)
    }
}

/// Whether a (live or desired) object is a hook, so never a pruning candidate: hooks are
/// cleaned up by their delete policies instead. Lenient, for filtering live objects: an object
/// whose annotations are malformed counts as a hook when it carries a hook annotation at all,
/// so a typo never gets it pruned.
pub fn is_hook(object: &Value) -> bool {
    if let Ok(role) = SyncRole::of(object) {
        return role.hook;
    }
    let annotation = |key: &str| {
        object
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(key))
    };
    match (
        annotation(HOOK_ANNOTATION),
        annotation(HELM_HOOK_ANNOTATION),
    ) {
        (Some(Value::String(text)), _) => csv(text) != ["Skip"],
        (Some(_), _) => true,
        (None, Some(helm)) => helm.as_str() != Some("crd-install"),
        (None, None) => false,
    }
}

/// Argo CD's `GetAnnotationCSVs`: split on commas, trim, drop empty items.
fn csv(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Go's `strconv.Atoi`: optional sign, ASCII digits, no spaces.
fn parse_wave(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The name Argo CD gives a hook declared with `metadata.generateName` instead of a name:
/// `generateName` + lower-case `<revision[..7]>-<phase>-<started at, unix seconds>`, so a
/// restarted controller derives the same name for the same operation.
///
/// **Guarantees**: deterministic; the result is cut to 253 bytes (the object name limit)
/// without ending in `-` or `.`.
pub fn generated_hook_name(
    generate_name: &str,
    revision: &str,
    phase: SyncPhase,
    started_at_unix: i64,
) -> String {
    // Argo CD keeps seven characters of revisions of at least eight. Only characters a name
    // may hold are kept (a multi-source revision key reads `1.2.3, abc…`).
    let short: String = if revision.chars().count() >= 8 {
        revision.chars().take(7).collect()
    } else {
        revision.to_string()
    };
    let short: String = short
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .collect();
    let postfix = format!("{short}-{}-{started_at_unix}", phase.as_str()).to_lowercase();
    let mut name = format!("{generate_name}{postfix}");
    if name.len() > 253 {
        let mut cut = 253;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        while name.ends_with(['-', '.']) {
            name.pop();
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(annotations: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "namespace": "db", "annotations": annotations}})
    }

    fn role(annotations: Value) -> SyncRole {
        SyncRole::of(&object(annotations)).unwrap()
    }

    #[test]
    fn plain_resource_syncs_in_wave_zero() {
        let r = SyncRole::of(&json!({"kind": "ConfigMap", "metadata": {"name": "a"}})).unwrap();
        assert!(!r.hook && !r.skip);
        assert_eq!(r.sync_phases(), [SyncPhase::Sync]);
        assert_eq!(r.wave, 0);
        assert!(r.delete_policies.is_empty());
    }

    #[test]
    fn argo_hook_list_and_default_policy() {
        let r = role(json!({HOOK_ANNOTATION: "PostSync, PreSync,PreSync"}));
        assert!(r.hook);
        assert_eq!(r.types, [HookType::PreSync, HookType::PostSync]);
        assert_eq!(r.sync_phases(), [SyncPhase::PreSync, SyncPhase::PostSync]);
        assert_eq!(r.delete_policies, [DeletePolicy::BeforeHookCreation]);
    }

    #[test]
    fn skip_alone_is_never_applied_but_skip_with_others_is_ignored() {
        let r = role(json!({HOOK_ANNOTATION: "Skip"}));
        assert!(r.skip && !r.hook);
        assert!(r.sync_phases().is_empty());
        let r = role(json!({HOOK_ANNOTATION: "Skip,Sync"}));
        assert!(r.hook && !r.skip);
        assert_eq!(r.sync_phases(), [SyncPhase::Sync]);
    }

    #[test]
    fn sync_fail_and_delete_hooks() {
        let r = role(json!({HOOK_ANNOTATION: "SyncFail"}));
        assert_eq!(r.sync_phases(), [SyncPhase::SyncFail]);
        let r = role(json!({HOOK_ANNOTATION: "PostDelete"}));
        assert!(r.hook && r.is_post_delete() && !r.is_pre_delete());
        assert!(r.sync_phases().is_empty());
        let r = role(json!({HOOK_ANNOTATION: "PreDelete"}));
        assert!(r.is_pre_delete());
    }

    #[test]
    fn helm_hooks_map_like_argo_cd() {
        let r = role(json!({HELM_HOOK_ANNOTATION: "pre-install,pre-upgrade"}));
        assert_eq!(r.types, [HookType::PreSync]);
        assert_eq!(r.sync_phases(), [SyncPhase::PreSync]);
        let r = role(json!({HELM_HOOK_ANNOTATION: "post-install,post-upgrade"}));
        assert_eq!(r.sync_phases(), [SyncPhase::PostSync]);
        let r = role(json!({HELM_HOOK_ANNOTATION: "post-delete"}));
        assert!(r.is_post_delete());
        let r = role(json!({HELM_HOOK_ANNOTATION: "pre-delete"}));
        assert!(r.is_pre_delete());
        // Test hooks are hooks Argo CD never runs.
        let r = role(json!({HELM_HOOK_ANNOTATION: "test"}));
        assert!(r.hook);
        assert!(r.sync_phases().is_empty());
        assert_eq!(r.unsupported_helm_types, ["test"]);
        // crd-install alone is a normal resource.
        let r = role(json!({HELM_HOOK_ANNOTATION: "crd-install"}));
        assert!(!r.hook);
        assert_eq!(r.sync_phases(), [SyncPhase::Sync]);
    }

    #[test]
    fn argo_annotation_wins_over_helm_types_but_policies_merge() {
        let r = role(
            json!({HOOK_ANNOTATION: "Sync", HELM_HOOK_ANNOTATION: "pre-install",
            HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded",
            HELM_HOOK_DELETE_POLICY_ANNOTATION: "hook-failed,before-hook-creation"}),
        );
        assert_eq!(r.types, [HookType::Sync]);
        assert_eq!(
            r.delete_policies,
            [
                DeletePolicy::HookSucceeded,
                DeletePolicy::HookFailed,
                DeletePolicy::BeforeHookCreation
            ]
        );
        assert!(r.has_delete_policy(DeletePolicy::HookFailed));
    }

    #[test]
    fn waves_from_sync_wave_then_helm_weight() {
        assert_eq!(role(json!({SYNC_WAVE_ANNOTATION: "-3"})).wave, -3);
        assert_eq!(role(json!({SYNC_WAVE_ANNOTATION: "+2"})).wave, 2);
        assert_eq!(role(json!({HELM_HOOK_WEIGHT_ANNOTATION: "5"})).wave, 5);
        assert_eq!(
            role(json!({SYNC_WAVE_ANNOTATION: "1", HELM_HOOK_WEIGHT_ANNOTATION: "5"})).wave,
            1
        );
    }

    #[test]
    fn malformed_annotations_name_object_and_annotation() {
        let cases = [
            (
                json!({HOOK_ANNOTATION: "PreSnyc"}),
                HOOK_ANNOTATION,
                "PreSnyc",
            ),
            (json!({HOOK_ANNOTATION: " , "}), HOOK_ANNOTATION, "empty"),
            (
                json!({HELM_HOOK_ANNOTATION: "pre-instal"}),
                HELM_HOOK_ANNOTATION,
                "pre-instal",
            ),
            (
                json!({HOOK_ANNOTATION: "Sync", HOOK_DELETE_POLICY_ANNOTATION: "Always"}),
                HOOK_DELETE_POLICY_ANNOTATION,
                "Always",
            ),
            (
                json!({HELM_HOOK_DELETE_POLICY_ANNOTATION: "hook-done"}),
                HELM_HOOK_DELETE_POLICY_ANNOTATION,
                "hook-done",
            ),
            (
                json!({SYNC_WAVE_ANNOTATION: "1.5"}),
                SYNC_WAVE_ANNOTATION,
                "1.5",
            ),
            (
                json!({SYNC_WAVE_ANNOTATION: " 1"}),
                SYNC_WAVE_ANNOTATION,
                "not an integer",
            ),
            (
                json!({HELM_HOOK_WEIGHT_ANNOTATION: "x"}),
                HELM_HOOK_WEIGHT_ANNOTATION,
                "not an integer",
            ),
            (
                json!({SYNC_WAVE_ANNOTATION: 3}),
                SYNC_WAVE_ANNOTATION,
                "must be a string",
            ),
            (
                json!({SYNC_WAVE_ANNOTATION: "99999999999999999999"}),
                SYNC_WAVE_ANNOTATION,
                "not an integer",
            ),
        ];
        for (annotations, annotation, needle) in cases {
            let error = SyncRole::of(&object(annotations)).unwrap_err();
            assert_eq!(error.annotation, annotation);
            let text = error.to_string();
            assert!(
                text.starts_with("batch/Job db/migrate: annotation"),
                "{text}"
            );
            assert!(text.contains(needle), "{text}");
        }
    }

    #[test]
    fn is_hook_is_lenient_for_live_objects() {
        assert!(is_hook(&object(json!({HOOK_ANNOTATION: "PreSync"}))));
        assert!(!is_hook(&object(json!({HOOK_ANNOTATION: "Skip"}))));
        assert!(!is_hook(&object(json!({}))));
        assert!(!is_hook(&object(
            json!({HELM_HOOK_ANNOTATION: "crd-install"})
        )));
        // Malformed, yet clearly meant as a hook: never treated as a prunable resource.
        assert!(is_hook(&object(json!({HOOK_ANNOTATION: "PreSnyc"}))));
        assert!(is_hook(&object(
            json!({HOOK_ANNOTATION: "PreSync", SYNC_WAVE_ANNOTATION: "x"})
        )));
        assert!(is_hook(&object(
            json!({HELM_HOOK_ANNOTATION: "pre-instal"})
        )));
        assert!(!is_hook(&object(
            json!({HOOK_ANNOTATION: "Skip", SYNC_WAVE_ANNOTATION: "x"})
        )));
    }

    #[test]
    fn generated_names_follow_argo_cd() {
        assert_eq!(
            generated_hook_name(
                "migrate-",
                "0123456789abcdef",
                SyncPhase::PreSync,
                1700000000
            ),
            "migrate-0123456-presync-1700000000"
        );
        assert_eq!(
            generated_hook_name("x-", "HEAD", SyncPhase::PostSync, 5),
            "x-head-postsync-5"
        );
        assert_eq!(
            generated_hook_name("x-", "1.2.3, 0123456789", SyncPhase::Sync, 5),
            "x-1.2.3-sync-5"
        );
        let long = "a".repeat(260);
        let name = generated_hook_name(&long, "abc", SyncPhase::Sync, 1);
        assert_eq!(name.len(), 253);
    }
}
