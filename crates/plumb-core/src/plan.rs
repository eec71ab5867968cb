//! The sync plan: what to apply and what to prune, as a pure function of desired and live.
//!
//! **Guarantees**: only live objects owned by the application (see [`crate::tracking`]) are ever
//! planned for pruning; a render that yields nothing never prunes unless `allow_empty`; an
//! automated sync never prunes more than half of the application's objects unless
//! `allow_mass_prune`. When a guard trips, the plan still applies what is declared but prunes
//! nothing, and says why in [`Plan::prune_blocked`].

use crate::key::ObjectKey;
use crate::manifest::Manifest;
use crate::order::{apply_order, sort_for_apply};
use crate::sync_options::{PruneOption, SyncOptions};
use crate::tracking::is_owned_by;
use serde_json::Value;
use std::collections::BTreeSet;

/// Who asked for the sync; automated syncs are held to stricter guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    /// A person (`plumb app sync`, rollback).
    #[default]
    Manual,
    /// The controller, on a new revision or drift.
    Automated,
}

/// Inputs that shape a plan besides the objects.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Whether pruning is enabled at all.
    pub prune: bool,
    /// Allow pruning every object when the render is empty.
    pub allow_empty: bool,
    /// Allow an automated sync to prune more than half of the objects.
    pub allow_mass_prune: bool,
    /// Manual or automated.
    pub trigger: Trigger,
    /// The application instance name used in tracking ids.
    pub app: String,
    /// The application's sync options, under each object's own.
    pub app_options: SyncOptions,
}

/// Why pruning was held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneBlocked {
    /// The render produced no objects and `allowEmpty` is not set.
    EmptyRender {
        /// How many objects would have been deleted.
        would_prune: usize,
    },
    /// An automated sync would delete more than half of the application's objects.
    MassPrune {
        /// How many objects would have been deleted.
        would_prune: usize,
        /// How many objects the application owns now.
        owned: usize,
    },
}

impl std::fmt::Display for PruneBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PruneBlocked::EmptyRender { would_prune } => write!(
                f,
                "the source rendered no objects; refusing to prune {would_prune} object(s) (set syncPolicy.automated.allowEmpty to allow an empty application)"
            ),
            PruneBlocked::MassPrune { would_prune, owned } => write!(
                f,
                "automated sync would prune {would_prune} of {owned} objects; refusing to prune more than half at once (sync manually, or set the sync option AllowMassPrune=true)"
            ),
        }
    }
}

/// One object to prune.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneItem {
    /// Its identity.
    pub key: ObjectKey,
    /// Its `apiVersion`, needed to address it.
    pub api_version: String,
    /// The sync options in force for it (its own over the application's).
    pub options: SyncOptions,
}

/// The plan of one sync.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Desired objects in apply order.
    pub apply: Vec<Manifest>,
    /// Owned objects Git no longer declares, in reverse apply order.
    pub prune: Vec<PruneItem>,
    /// Owned objects Git no longer declares that are kept because of `Prune=false` or because
    /// pruning is off; they make the application OutOfSync.
    pub orphaned: Vec<ObjectKey>,
    /// Set when a guard held pruning back.
    pub prune_blocked: Option<PruneBlocked>,
}

impl Plan {
    /// Builds the plan. `live` may contain any objects; only those owned by `options.app`
    /// are considered for pruning.
    pub fn build(desired: &[Manifest], live: &[Value], options: &PlanOptions) -> Plan {
        let mut apply = desired.to_vec();
        apply.sort_by(|a, b| apply_order(&a.key()).cmp(&apply_order(&b.key())));
        let declared: BTreeSet<ObjectKey> = desired.iter().map(Manifest::key).collect();
        let owned: Vec<&Value> = live
            .iter()
            .filter(|object| is_owned_by(object, &options.app))
            .collect();
        let mut candidates: Vec<PruneItem> = Vec::new();
        let mut orphaned = Vec::new();
        for object in &owned {
            let key = ObjectKey::of(object);
            if declared.contains(&key) {
                continue;
            }
            let object_options = SyncOptions::of_object(object).over(&options.app_options);
            if !options.prune || object_options.prune() == PruneOption::Disabled {
                orphaned.push(key);
                continue;
            }
            candidates.push(PruneItem {
                key,
                api_version: crate::key::str_at(object, &["apiVersion"]).to_string(),
                options: object_options,
            });
        }
        let mut prune_blocked = None;
        if !candidates.is_empty() {
            if desired.is_empty() && !options.allow_empty {
                prune_blocked = Some(PruneBlocked::EmptyRender {
                    would_prune: candidates.len(),
                });
            } else if options.trigger == Trigger::Automated
                && !options.allow_mass_prune
                && owned.len() >= 2
                && candidates.len() * 2 > owned.len()
            {
                prune_blocked = Some(PruneBlocked::MassPrune {
                    would_prune: candidates.len(),
                    owned: owned.len(),
                });
            }
        }
        if prune_blocked.is_some() {
            orphaned.extend(candidates.drain(..).map(|item| item.key));
        }
        // Reverse apply order, with PruneLast objects after all others.
        candidates.sort_by(|a, b| {
            (a.options.prune_last, std::cmp::Reverse(apply_order(&a.key)))
                .cmp(&(b.options.prune_last, std::cmp::Reverse(apply_order(&b.key))))
        });
        sort_for_apply(&mut orphaned);
        Plan {
            apply,
            prune: candidates,
            orphaned,
            prune_blocked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Origin;
    use crate::tracking::stamp;
    use serde_json::json;

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}})
    }
    fn manifest(object: Value) -> Manifest {
        Manifest {
            object,
            origin: Origin::default(),
        }
    }
    fn owned(name: &str) -> Value {
        let mut object = cm(name);
        stamp(&mut object, "app");
        object
    }
    fn options(trigger: Trigger) -> PlanOptions {
        PlanOptions {
            prune: true,
            app: "app".into(),
            trigger,
            ..Default::default()
        }
    }

    #[test]
    fn prunes_only_owned_undeclared_objects() {
        let live = vec![owned("a"), owned("b"), cm("unmanaged")];
        let plan = Plan::build(&[manifest(cm("a"))], &live, &options(Trigger::Manual));
        let pruned: Vec<_> = plan.prune.iter().map(|p| p.key.name.as_str()).collect();
        assert_eq!(pruned, ["b"]);
        assert!(plan.prune_blocked.is_none());
    }

    #[test]
    fn empty_render_never_prunes_without_allow_empty() {
        let live = vec![owned("a")];
        let plan = Plan::build(&[], &live, &options(Trigger::Manual));
        assert!(plan.prune.is_empty());
        assert_eq!(
            plan.prune_blocked,
            Some(PruneBlocked::EmptyRender { would_prune: 1 })
        );
        let mut allow = options(Trigger::Manual);
        allow.allow_empty = true;
        assert_eq!(Plan::build(&[], &live, &allow).prune.len(), 1);
    }

    #[test]
    fn automated_sync_refuses_mass_prune() {
        let live = vec![owned("a"), owned("b"), owned("c"), owned("d")];
        let desired = [manifest(cm("a"))];
        let plan = Plan::build(&desired, &live, &options(Trigger::Automated));
        assert!(matches!(
            plan.prune_blocked,
            Some(PruneBlocked::MassPrune {
                would_prune: 3,
                owned: 4
            })
        ));
        assert!(plan.prune.is_empty());
        assert_eq!(plan.orphaned.len(), 3);
        // A manual sync may.
        assert_eq!(
            Plan::build(&desired, &live, &options(Trigger::Manual))
                .prune
                .len(),
            3
        );
    }

    #[test]
    fn prune_false_and_prune_disabled_keep_objects() {
        let mut keep = owned("keep");
        keep["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] = json!("Prune=false");
        let live = vec![owned("a"), keep];
        let plan = Plan::build(&[manifest(cm("a"))], &live, &options(Trigger::Manual));
        assert!(plan.prune.is_empty());
        assert_eq!(plan.orphaned[0].name, "keep");
        let mut off = options(Trigger::Manual);
        off.prune = false;
        let plan = Plan::build(&[manifest(cm("a"))], &[owned("a"), owned("b")], &off);
        assert!(plan.prune.is_empty());
        assert_eq!(plan.orphaned.len(), 1);
    }

    #[test]
    fn apply_in_kind_order() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
        let deploy =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        let plan = Plan::build(
            &[manifest(deploy), manifest(ns)],
            &[],
            &options(Trigger::Manual),
        );
        assert_eq!(plan.apply[0].key().kind, "Namespace");
    }
}
