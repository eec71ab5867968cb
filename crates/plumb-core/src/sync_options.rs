//! Sync options, parsed once at the edge into types.
//!
//! Two places carry them in Argo CD: `spec.syncPolicy.syncOptions` on the Application and the
//! `argocd.argoproj.io/sync-options` annotation on an object (comma-separated `Key=value`).
//! Unknown options are kept in [`SyncOptions::unknown`] so the caller can warn about them.

use crate::key::str_at;
use serde_json::Value;

/// The per-object annotation carrying sync options.
pub const SYNC_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/sync-options";

/// What prune may do with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruneOption {
    /// Prune when Git no longer declares it.
    #[default]
    Allowed,
    /// `Prune=false`: never prune.
    Disabled,
    /// `Prune=confirm`: prune only after a manual confirmation.
    Confirm,
}

/// How deletion propagates to dependents when pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PropagationPolicy {
    /// Kubernetes' foreground cascading (Argo CD's default for prune).
    #[default]
    Foreground,
    /// Background cascading.
    Background,
    /// Leave dependents behind.
    Orphan,
}

impl PropagationPolicy {
    /// The value the Kubernetes API expects.
    pub fn as_str(self) -> &'static str {
        match self {
            PropagationPolicy::Foreground => "Foreground",
            PropagationPolicy::Background => "Background",
            PropagationPolicy::Orphan => "Orphan",
        }
    }
}

/// Sync options of an application or an object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncOptions {
    /// `Prune=false|confirm`.
    pub prune: PruneOption,
    /// `Delete=false`: keep the object when the application is deleted.
    pub delete_disabled: bool,
    /// `Replace=true`.
    pub replace: bool,
    /// `Force=true`.
    pub force: bool,
    /// `ServerSideApply=true` (plumb always applies server-side; accepted for compatibility).
    pub server_side_apply: bool,
    /// `Validate=false`.
    pub validate_disabled: bool,
    /// `SkipDryRunOnMissingResource=true`.
    pub skip_dry_run_on_missing_resource: bool,
    /// `PruneLast=true`.
    pub prune_last: bool,
    /// `CreateNamespace=true`.
    pub create_namespace: bool,
    /// `ApplyOutOfSyncOnly=true`.
    pub apply_out_of_sync_only: bool,
    /// `PrunePropagationPolicy=foreground|background|orphan`.
    pub prune_propagation_policy: PropagationPolicy,
    /// `FailOnSharedResource=true`.
    pub fail_on_shared_resource: bool,
    /// `RespectIgnoreDifferences=true`.
    pub respect_ignore_differences: bool,
    /// `AllowMassPrune=true` (plumb): let an automated sync prune more than half of the
    /// application's objects at once.
    pub allow_mass_prune: bool,
    /// Options this version does not understand, verbatim.
    pub unknown: Vec<String>,
}

impl SyncOptions {
    /// Parses a list of `Key=value` strings (the Application form).
    pub fn parse<'a>(options: impl IntoIterator<Item = &'a str>) -> SyncOptions {
        let mut parsed = SyncOptions::default();
        for option in options {
            parsed.apply(option.trim());
        }
        parsed
    }

    /// Parses the annotation of an object; empty when absent.
    pub fn of_object(object: &Value) -> SyncOptions {
        let annotation = str_at(
            object,
            &["metadata", "annotations", SYNC_OPTIONS_ANNOTATION],
        );
        SyncOptions::parse(annotation.split(',').filter(|s| !s.trim().is_empty()))
    }

    fn apply(&mut self, option: &str) {
        let (key, value) = option.split_once('=').unwrap_or((option, "true"));
        let value = value.trim();
        let truthy = value.eq_ignore_ascii_case("true");
        let falsy = value.eq_ignore_ascii_case("false");
        match key.trim() {
            "Prune" if falsy => self.prune = PruneOption::Disabled,
            "Prune" if value.eq_ignore_ascii_case("confirm") => self.prune = PruneOption::Confirm,
            "Prune" if truthy => self.prune = PruneOption::Allowed,
            "Delete" if falsy => self.delete_disabled = true,
            "Delete" if truthy || value.eq_ignore_ascii_case("confirm") => {}
            "Replace" => self.replace = truthy,
            "Force" => self.force = truthy,
            "ServerSideApply" => self.server_side_apply = truthy,
            "Validate" => self.validate_disabled = falsy,
            "SkipDryRunOnMissingResource" => self.skip_dry_run_on_missing_resource = truthy,
            "PruneLast" => self.prune_last = truthy,
            "CreateNamespace" => self.create_namespace = truthy,
            "ApplyOutOfSyncOnly" => self.apply_out_of_sync_only = truthy,
            "FailOnSharedResource" => self.fail_on_shared_resource = truthy,
            "RespectIgnoreDifferences" => self.respect_ignore_differences = truthy,
            "AllowMassPrune" => self.allow_mass_prune = truthy,
            "PrunePropagationPolicy" => match value.to_ascii_lowercase().as_str() {
                "foreground" => self.prune_propagation_policy = PropagationPolicy::Foreground,
                "background" => self.prune_propagation_policy = PropagationPolicy::Background,
                "orphan" => self.prune_propagation_policy = PropagationPolicy::Orphan,
                _ => self.unknown.push(option.to_string()),
            },
            _ => self.unknown.push(option.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn application_options() {
        let o = SyncOptions::parse([
            "CreateNamespace=true",
            "PrunePropagationPolicy=background",
            "Bogus=1",
        ]);
        assert!(o.create_namespace);
        assert_eq!(o.prune_propagation_policy, PropagationPolicy::Background);
        assert_eq!(o.unknown, vec!["Bogus=1".to_string()]);
    }

    #[test]
    fn object_annotation() {
        let object = json!({"metadata": {"annotations": {SYNC_OPTIONS_ANNOTATION: "Prune=false, Replace=true"}}});
        let o = SyncOptions::of_object(&object);
        assert_eq!(o.prune, PruneOption::Disabled);
        assert!(o.replace);
        assert_eq!(SyncOptions::of_object(&json!({})), SyncOptions::default());
    }
}
