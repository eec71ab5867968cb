//! The ordered steps of one sync operation, and the resumable progress through them.
//!
//! [`SyncPlan::build`] turns desired manifests into tasks ordered the way gitops-engine orders
//! them: phase (PreSync → Sync → PostSync), then wave (ascending), then kind
//! ([`crate::order::kind_rank`]), then name. Afterwards a Namespace, or a CRD, that a task earlier
//! in the order depends on is moved (with that task's phase and wave) right before it, as
//! gitops-engine's `adjustDeps` does. SyncFail hooks and PreDelete/PostDelete hooks are kept
//! aside. [`SyncPlan::next_step`] is the state machine: given the stored [`SyncProgress`] it says
//! what to do next, so a restarted controller resumes where the last one stopped.
//!
//! **Guarantees**: pure and deterministic — the same manifests, revision and start time give the
//! same plan, including the names of `generateName` hooks; a wave starts only when every task of
//! the previous wave has succeeded; one failed task fails the operation and moves to the SyncFail
//! hooks.
//!
//! **Errors**: [`SyncPlanError`] lists every malformed sync annotation of the manifests.

use crate::hooks::{DeletePolicy, HookError, HookType, SyncPhase, SyncRole, generated_hook_name};
use crate::key::{ObjectKey, str_at};
use crate::manifest::Manifest;
use crate::order::kind_rank;
use serde_json::Value;

mod progress;

pub use progress::{OperationPhase, Outcome, ResourceResult, ResultCode, SyncProgress};

/// Inputs of a plan besides the manifests.
#[derive(Debug, Clone, Default)]
pub struct SyncPlanOptions {
    /// The revision being synced; part of generated hook names.
    pub revision: String,
    /// When the operation started (unix seconds); part of generated hook names.
    pub started_at_unix: i64,
    /// The destination namespace, assumed for objects without one when ordering Namespaces
    /// before what they contain.
    pub default_namespace: String,
    /// Leave every hook out (selective sync, dry run).
    pub skip_hooks: bool,
}

/// One object to apply in one phase and wave.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncTask {
    /// The phase it runs in.
    pub phase: SyncPhase,
    /// Its wave, after any Namespace/CRD adjustment.
    pub wave: i64,
    /// The object to apply; a `generateName` hook has its derived name set.
    pub manifest: Manifest,
    /// The object's identity (with the derived name for `generateName` hooks).
    pub key: ObjectKey,
    /// Set for hooks: their types and delete policies.
    pub hook: Option<HookRole>,
}

/// What a hook task needs beyond the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRole {
    /// The hook types declared.
    pub types: Vec<HookType>,
    /// When to delete the hook object.
    pub delete_policies: Vec<DeletePolicy>,
}

impl HookRole {
    /// Whether the hook object is deleted once it has finished with `outcome` (policies
    /// `HookSucceeded` and `HookFailed`); `Running` never deletes.
    pub fn delete_after(&self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Succeeded => self.delete_policies.contains(&DeletePolicy::HookSucceeded),
            Outcome::Failed => self.delete_policies.contains(&DeletePolicy::HookFailed),
            Outcome::Running => false,
        }
    }

    /// Whether an existing object of the same name is deleted before the hook is created
    /// (`BeforeHookCreation`, the default).
    pub fn delete_before_creation(&self) -> bool {
        self.delete_policies
            .contains(&DeletePolicy::BeforeHookCreation)
    }
}

impl SyncTask {
    /// Whether this task is a hook.
    pub fn is_hook(&self) -> bool {
        self.hook.is_some()
    }

    /// The hook type recorded for this task: the type that put it in its phase.
    pub fn hook_type(&self) -> Option<HookType> {
        self.hook.as_ref().map(|_| match self.phase {
            SyncPhase::PreSync => HookType::PreSync,
            SyncPhase::Sync => HookType::Sync,
            SyncPhase::PostSync => HookType::PostSync,
            SyncPhase::SyncFail => HookType::SyncFail,
        })
    }
}

/// An object that is not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its identity.
    pub key: ObjectKey,
    /// Why it is left out.
    pub reason: String,
}

/// Every malformed sync annotation found while planning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid sync annotations: {}", .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct SyncPlanError {
    /// One entry per object and annotation.
    pub errors: Vec<HookError>,
}

/// The tasks of one sync operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncPlan {
    /// PreSync, Sync and PostSync tasks in execution order.
    pub tasks: Vec<SyncTask>,
    /// SyncFail hooks, in order, run only when the operation fails.
    pub sync_fail: Vec<SyncTask>,
    /// PreDelete hooks, run when the application is deleted (phase is meaningless here).
    pub pre_delete: Vec<SyncTask>,
    /// PostDelete hooks, run after the application's resources are deleted.
    pub post_delete: Vec<SyncTask>,
    /// Objects never applied: `Skip`, hooks when hooks are skipped, Helm hooks Argo CD does
    /// not run.
    pub skipped: Vec<Skipped>,
}

/// One phase and wave of tasks, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Wave<'a> {
    /// The phase.
    pub phase: SyncPhase,
    /// The wave number.
    pub wave: i64,
    /// Its tasks, in apply order.
    pub tasks: Vec<&'a SyncTask>,
}

impl SyncPlan {
    /// Builds the plan from the desired manifests.
    ///
    /// **Errors**: every malformed sync annotation ([`SyncPlanError`]); nothing is planned then.
    pub fn build(
        desired: &[Manifest],
        options: &SyncPlanOptions,
    ) -> Result<SyncPlan, SyncPlanError> {
        let mut plan = SyncPlan::default();
        let mut errors = Vec::new();
        let mut fail_tasks = Vec::new();
        for manifest in desired {
            let role = match SyncRole::of(&manifest.object) {
                Ok(role) => role,
                Err(error) => {
                    errors.push(error);
                    continue;
                }
            };
            let key = manifest.key();
            if role.skip {
                plan.skipped.push(Skipped {
                    key,
                    reason: "annotated argocd.argoproj.io/hook: Skip".into(),
                });
                continue;
            }
            if !role.hook {
                plan.tasks.push(SyncTask {
                    phase: SyncPhase::Sync,
                    wave: role.wave,
                    manifest: manifest.clone(),
                    key,
                    hook: None,
                });
                continue;
            }
            if options.skip_hooks {
                plan.skipped.push(Skipped {
                    key,
                    reason: "hooks are skipped for this operation".into(),
                });
                continue;
            }
            let hook = HookRole {
                types: role.types.clone(),
                delete_policies: role.delete_policies.clone(),
            };
            let phases = role.sync_phases();
            if phases.is_empty() && !role.is_pre_delete() && !role.is_post_delete() {
                plan.skipped.push(Skipped {
                    key,
                    reason: format!(
                        "Helm hook type {} is not run by Argo CD-compatible syncs",
                        role.unsupported_helm_types.join(",")
                    ),
                });
                continue;
            }
            for phase in phases {
                let task = hook_task(manifest, phase, role.wave, &hook, options);
                if phase == SyncPhase::SyncFail {
                    fail_tasks.push(task);
                } else {
                    plan.tasks.push(task);
                }
            }
            // Delete-time hooks keep the Sync phase as a placeholder; their names are derived
            // like PostSync ones are by Argo CD's deletion path, from the same inputs.
            if role.is_pre_delete() {
                plan.pre_delete.push(hook_task(
                    manifest,
                    SyncPhase::Sync,
                    role.wave,
                    &hook,
                    options,
                ));
            }
            if role.is_post_delete() {
                plan.post_delete.push(hook_task(
                    manifest,
                    SyncPhase::Sync,
                    role.wave,
                    &hook,
                    options,
                ));
            }
        }
        if !errors.is_empty() {
            return Err(SyncPlanError { errors });
        }
        sort_tasks(&mut plan.tasks);
        adjust_dependencies(&mut plan.tasks, &options.default_namespace);
        sort_tasks(&mut fail_tasks);
        plan.sync_fail = fail_tasks;
        sort_tasks(&mut plan.pre_delete);
        sort_tasks(&mut plan.post_delete);
        Ok(plan)
    }

    /// The tasks grouped by phase and wave, in execution order.
    pub fn waves(&self) -> Vec<Wave<'_>> {
        group(&self.tasks)
    }

    /// The SyncFail hooks grouped by wave.
    pub fn sync_fail_waves(&self) -> Vec<Wave<'_>> {
        group(&self.sync_fail)
    }

    /// What to do next given the progress recorded so far.
    ///
    /// **Guarantees**: tasks whose result is recorded are never returned to be applied again;
    /// a wave is returned only when every earlier wave has succeeded; after a failure only the
    /// SyncFail hooks are returned, then [`Step::Done`] with `succeeded: false`.
    pub fn next_step<'a>(&'a self, progress: &SyncProgress) -> Step<'a> {
        // A terminated operation runs nothing more, SyncFail hooks included, as in Argo CD.
        if progress.phase == OperationPhase::Terminating {
            return Step::Done { succeeded: false };
        }
        let mut failed = Vec::new();
        for wave in self.waves() {
            match wave_state(&wave, progress) {
                WaveState::Pending(tasks) => {
                    return Step::Apply {
                        phase: wave.phase,
                        wave: wave.wave,
                        tasks,
                    };
                }
                WaveState::Running(tasks) => {
                    return Step::Wait {
                        phase: wave.phase,
                        wave: wave.wave,
                        tasks,
                    };
                }
                WaveState::Failed(tasks) => {
                    failed = tasks;
                    break;
                }
                WaveState::Succeeded => {}
            }
        }
        if failed.is_empty() {
            return Step::Done { succeeded: true };
        }
        for wave in self.sync_fail_waves() {
            match wave_state(&wave, progress) {
                WaveState::Pending(tasks) => {
                    return Step::Apply {
                        phase: wave.phase,
                        wave: wave.wave,
                        tasks,
                    };
                }
                WaveState::Running(tasks) => {
                    return Step::Wait {
                        phase: wave.phase,
                        wave: wave.wave,
                        tasks,
                    };
                }
                // A failing SyncFail hook ends the operation; nothing more to run.
                WaveState::Failed(_) => break,
                WaveState::Succeeded => {}
            }
        }
        Step::Done { succeeded: false }
    }
}

impl SyncPlan {
    /// Tasks applied but not finished (hooks still running, resources not yet healthy): what a
    /// terminating engine stops or deletes.
    pub fn running<'a>(&'a self, progress: &SyncProgress) -> Vec<&'a SyncTask> {
        self.tasks
            .iter()
            .chain(&self.sync_fail)
            .filter(|task| {
                progress.result_of(task).map(ResourceResult::outcome) == Some(Outcome::Running)
            })
            .collect()
    }
}

fn hook_task(
    manifest: &Manifest,
    phase: SyncPhase,
    wave: i64,
    hook: &HookRole,
    options: &SyncPlanOptions,
) -> SyncTask {
    let mut manifest = manifest.clone();
    let name = str_at(&manifest.object, &["metadata", "name"]);
    let generate_name = str_at(&manifest.object, &["metadata", "generateName"]);
    if name.is_empty() && !generate_name.is_empty() {
        let derived = generated_hook_name(
            generate_name,
            &options.revision,
            phase,
            options.started_at_unix,
        );
        if let Some(metadata) = manifest
            .object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            metadata.insert("name".into(), Value::String(derived));
        }
    }
    let key = manifest.key();
    SyncTask {
        phase,
        wave,
        manifest,
        key,
        hook: Some(hook.clone()),
    }
}

fn sort_tasks(tasks: &mut [SyncTask]) {
    tasks.sort_by(|a, b| {
        (a.phase, a.wave, kind_rank(&a.key.kind), &a.key.name).cmp(&(
            b.phase,
            b.wave,
            kind_rank(&b.key.kind),
            &b.key.name,
        ))
    });
}

/// Moves each Namespace and CRD right before the first task that needs it, taking that task's
/// phase and wave, so a low wave never waits on a high-wave Namespace or CRD.
fn adjust_dependencies(tasks: &mut Vec<SyncTask>, default_namespace: &str) {
    let namespace_of = |task: &SyncTask| -> Option<String> {
        let ns = if task.key.namespace.is_empty() {
            default_namespace
        } else {
            task.key.namespace.as_str()
        };
        (!ns.is_empty()).then(|| ns.to_string())
    };
    bubble(
        tasks,
        |task| {
            (task.key.kind == "Namespace" && task.key.group.is_empty())
                .then(|| task.key.name.clone())
        },
        |task| {
            // Cluster-scoped kinds do not live in a namespace, but without discovery we cannot
            // tell; only an explicit namespace counts, plus the default for namespaced-looking
            // objects Argo CD would have stamped with it.
            if task.key.kind == "Namespace" {
                None
            } else {
                namespace_of(task)
            }
        },
    );
    bubble(
        tasks,
        |task| {
            if task.key.kind != "CustomResourceDefinition" {
                return None;
            }
            let group = str_at(&task.manifest.object, &["spec", "group"]);
            let kind = str_at(&task.manifest.object, &["spec", "names", "kind"]);
            (!group.is_empty() && !kind.is_empty()).then(|| format!("{group}/{kind}"))
        },
        |task| Some(format!("{}/{}", task.key.group, task.key.kind)),
    );
}

fn bubble(
    tasks: &mut Vec<SyncTask>,
    provides: impl Fn(&SyncTask) -> Option<String>,
    needs: impl Fn(&SyncTask) -> Option<String>,
) {
    let mut first_user: std::collections::BTreeMap<String, usize> = Default::default();
    for i in 0..tasks.len() {
        if let Some(dep) = provides(&tasks[i]) {
            if let Some(&index) = first_user.get(&dep) {
                let (phase, wave) = (tasks[index].phase, tasks[index].wave);
                let mut task = tasks.remove(i);
                task.phase = phase;
                task.wave = wave;
                tasks.insert(index, task);
                for position in first_user.values_mut() {
                    if *position >= index {
                        *position += 1;
                    }
                }
            }
        } else if let Some(dep) = needs(&tasks[i]) {
            first_user.entry(dep).or_insert(i);
        }
    }
}

fn group(tasks: &[SyncTask]) -> Vec<Wave<'_>> {
    let mut waves: Vec<Wave<'_>> = Vec::new();
    for task in tasks {
        match waves.last_mut() {
            Some(last) if last.phase == task.phase && last.wave == task.wave => {
                last.tasks.push(task)
            }
            _ => waves.push(Wave {
                phase: task.phase,
                wave: task.wave,
                tasks: vec![task],
            }),
        }
    }
    waves
}

enum WaveState<'a> {
    Pending(Vec<&'a SyncTask>),
    Running(Vec<&'a SyncTask>),
    Failed(Vec<&'a SyncTask>),
    Succeeded,
}

fn wave_state<'a>(wave: &Wave<'a>, progress: &SyncProgress) -> WaveState<'a> {
    let mut pending = Vec::new();
    let mut running = Vec::new();
    let mut failed = Vec::new();
    for task in &wave.tasks {
        match progress.result_of(task).map(ResourceResult::outcome) {
            None => pending.push(*task),
            Some(Outcome::Running) => running.push(*task),
            Some(Outcome::Failed) => failed.push(*task),
            Some(Outcome::Succeeded) => {}
        }
    }
    if !failed.is_empty() {
        WaveState::Failed(failed)
    } else if !pending.is_empty() {
        WaveState::Pending(pending)
    } else if !running.is_empty() {
        WaveState::Running(running)
    } else {
        WaveState::Succeeded
    }
}

/// What the engine should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<'a> {
    /// Apply these tasks (those of the wave with no result yet), then record a result for each.
    Apply {
        /// The phase.
        phase: SyncPhase,
        /// The wave.
        wave: i64,
        /// The tasks to apply.
        tasks: Vec<&'a SyncTask>,
    },
    /// Every task of the wave is applied; wait until these are healthy (resources) or
    /// completed (hooks), then update their results.
    Wait {
        /// The phase.
        phase: SyncPhase,
        /// The wave.
        wave: i64,
        /// The tasks still running.
        tasks: Vec<&'a SyncTask>,
    },
    /// The operation is over.
    Done {
        /// Whether every PreSync, Sync and PostSync task succeeded.
        succeeded: bool,
    },
}

#[cfg(test)]
mod tests;
