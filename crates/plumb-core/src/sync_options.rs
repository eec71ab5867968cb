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

/// What deleting the application may do with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteOption {
    /// Delete it with the application.
    #[default]
    Allowed,
    /// `Delete=false`: keep it.
    Disabled,
    /// `Delete=confirm`: delete it only after a manual confirmation.
    Confirm,
}

/// The Application annotation that confirms `Prune=confirm` prunes and `Delete=confirm`
/// deletions: an RFC 3339 time, later than the start of the operation it confirms.
pub const DELETION_APPROVED_ANNOTATION: &str = "argocd.argoproj.io/deletion-approved";

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
    /// `Prune=true|false|confirm`; unset when not given (an object's setting overrides the
    /// application's, see [`SyncOptions::over`]).
    pub prune: Option<PruneOption>,
    /// `Delete=true|false|confirm`; unset when not given.
    pub delete: Option<DeleteOption>,
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

    /// The options in force for an object: its own, over the application's `app`. `Prune`
    /// and `Delete` set on the object win (Argo CD: "setting a Prune sync option on the
    /// resource will always override" the application's); switches set on either apply.
    pub fn over(&self, app: &SyncOptions) -> SyncOptions {
        SyncOptions {
            prune: self.prune.or(app.prune),
            delete: self.delete.or(app.delete),
            replace: self.replace || app.replace,
            force: self.force || app.force,
            server_side_apply: self.server_side_apply || app.server_side_apply,
            validate_disabled: self.validate_disabled || app.validate_disabled,
            skip_dry_run_on_missing_resource: self.skip_dry_run_on_missing_resource
                || app.skip_dry_run_on_missing_resource,
            prune_last: self.prune_last || app.prune_last,
            ..self.clone()
        }
    }

    /// What prune may do (allowed unless set).
    pub fn prune(&self) -> PruneOption {
        self.prune.unwrap_or_default()
    }

    /// What deleting the application may do (allowed unless set).
    pub fn delete(&self) -> DeleteOption {
        self.delete.unwrap_or_default()
    }

    fn apply(&mut self, option: &str) {
        let (key, value) = option.split_once('=').unwrap_or((option, "true"));
        let value = value.trim();
        let truthy = value.eq_ignore_ascii_case("true");
        let falsy = value.eq_ignore_ascii_case("false");
        match key.trim() {
            "Prune" if falsy => self.prune = Some(PruneOption::Disabled),
            "Prune" if value.eq_ignore_ascii_case("confirm") => {
                self.prune = Some(PruneOption::Confirm)
            }
            "Prune" if truthy => self.prune = Some(PruneOption::Allowed),
            "Delete" if falsy => self.delete = Some(DeleteOption::Disabled),
            "Delete" if value.eq_ignore_ascii_case("confirm") => {
                self.delete = Some(DeleteOption::Confirm)
            }
            "Delete" if truthy => self.delete = Some(DeleteOption::Allowed),
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
        assert_eq!(o.prune(), PruneOption::Disabled);
        assert!(o.replace);
        assert_eq!(SyncOptions::of_object(&json!({})), SyncOptions::default());
    }

    #[test]
    fn an_objects_prune_and_delete_override_the_applications() {
        let app = SyncOptions::parse(["Prune=confirm", "Delete=false", "PruneLast=true"]);
        let plain = SyncOptions::default().over(&app);
        assert_eq!(plain.prune(), PruneOption::Confirm);
        assert_eq!(plain.delete(), DeleteOption::Disabled);
        assert!(plain.prune_last);
        let object = SyncOptions::parse(["Prune=true", "Delete=confirm"]).over(&app);
        assert_eq!(object.prune(), PruneOption::Allowed);
        assert_eq!(object.delete(), DeleteOption::Confirm);
        assert_eq!(SyncOptions::default().prune(), PruneOption::Allowed);
        assert_eq!(SyncOptions::default().delete(), DeleteOption::Allowed);
    }
}
