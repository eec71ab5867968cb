//! The resumable progress of one operation, shaped like Argo CD's `status.operationState`.

use super::{Step, SyncPlanOptions, SyncTask};
use crate::hooks::{HookType, SyncPhase};
use crate::key::str_at;
use serde::{Deserialize, Serialize};

/// The state of an operation or of one task in it, as Argo CD names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OperationPhase {
    /// Under way.
    #[default]
    Running,
    /// Being stopped.
    Terminating,
    /// Finished and failed.
    Failed,
    /// Could not be carried out.
    Error,
    /// Finished and succeeded.
    Succeeded,
}

/// What applying one object did (Argo CD's `ResultCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultCode {
    /// Applied.
    Synced,
    /// Applying failed.
    SyncFailed,
    /// Deleted by prune.
    Pruned,
    /// Pruning was skipped.
    PruneSkipped,
}

/// The result of one task, shaped like an entry of Argo CD's
/// `status.operationState.syncResult.resources[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    /// API group.
    #[serde(default)]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Name.
    pub name: String,
    /// What applying did; absent until applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResultCode>,
    /// A human-readable account.
    #[serde(default)]
    pub message: String,
    /// The hook type, for hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_type: Option<HookType>,
    /// The state of the work attached to the object (hook completion or resource health).
    #[serde(default)]
    pub hook_phase: OperationPhase,
    /// The phase the task ran in.
    #[serde(default)]
    pub sync_phase: SyncPhase,
}

/// How a recorded task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; not yet healthy or completed.
    Running,
    /// Done and healthy or completed.
    Succeeded,
    /// Failed.
    Failed,
}

impl ResourceResult {
    /// A fresh result for `task`, with `hook_phase` Running.
    pub fn for_task(task: &SyncTask, status: ResultCode, message: impl Into<String>) -> Self {
        let api_version = str_at(&task.manifest.object, &["apiVersion"]);
        ResourceResult {
            group: task.key.group.clone(),
            version: crate::key::version_of(api_version).to_string(),
            kind: task.key.kind.clone(),
            namespace: task.key.namespace.clone(),
            name: task.key.name.clone(),
            status: Some(status),
            message: message.into(),
            hook_type: task.hook_type(),
            hook_phase: if status == ResultCode::SyncFailed {
                OperationPhase::Failed
            } else {
                OperationPhase::Running
            },
            sync_phase: task.phase,
        }
    }

    /// How the task stands.
    pub fn outcome(&self) -> Outcome {
        match (self.status, self.hook_phase) {
            (Some(ResultCode::SyncFailed), _) => Outcome::Failed,
            (_, OperationPhase::Failed | OperationPhase::Error) => Outcome::Failed,
            (_, OperationPhase::Succeeded) => Outcome::Succeeded,
            (Some(ResultCode::Pruned | ResultCode::PruneSkipped), _) => Outcome::Succeeded,
            _ => Outcome::Running,
        }
    }

    fn is_for(&self, task: &SyncTask) -> bool {
        self.sync_phase == task.phase
            && self.group == task.key.group
            && self.kind == task.key.kind
            && self.namespace == task.key.namespace
            && self.name == task.key.name
    }
}

/// The resumable progress of a sync, stored in `status.operationState` (phase, message) and
/// `status.operationState.syncResult.resources` (per-task results).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncProgress {
    /// The operation's state.
    #[serde(default)]
    pub phase: OperationPhase,
    /// A human-readable account of the last step.
    #[serde(default)]
    pub message: String,
    /// The phase being worked on.
    #[serde(default)]
    pub sync_phase: SyncPhase,
    /// The wave being worked on.
    #[serde(default)]
    pub wave: i64,
    /// The revision being synced; with `started_at_unix` it rebuilds the same plan (and the
    /// same `generateName` hook names) after a restart, see [`SyncProgress::plan_options`].
    #[serde(default)]
    pub revision: String,
    /// When the operation started, unix seconds.
    #[serde(default)]
    pub started_at_unix: i64,
    /// When it finished, unix seconds; absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_unix: Option<i64>,
    /// Retries done so far for this operation.
    #[serde(default)]
    pub retry_count: u32,
    /// One result per task applied so far.
    #[serde(default)]
    pub resources: Vec<ResourceResult>,
}

impl SyncProgress {
    /// Asks the operation to stop (`plumb app terminate-op`): [`SyncPlan::next_step`](super::SyncPlan::next_step) then
    /// answers [`Step::Done`] (failed) and [`SyncProgress::advance`] records "operation
    /// terminated"; [`SyncPlan::running`](super::SyncPlan::running) lists what to stop. A finished operation is left as is.
    pub fn terminate(&mut self) {
        if self.phase == OperationPhase::Running {
            self.phase = OperationPhase::Terminating;
            self.message = "terminating".into();
        }
    }

    /// A fresh progress for an operation on `revision` starting at `started_at_unix`.
    pub fn start(revision: impl Into<String>, started_at_unix: i64) -> SyncProgress {
        SyncProgress {
            revision: revision.into(),
            started_at_unix,
            ..SyncProgress::default()
        }
    }

    /// Plan options that reproduce this operation's plan: same revision and start time, so the
    /// same generated hook names; `default_namespace` and `skip_hooks` come from the caller.
    pub fn plan_options(&self, default_namespace: &str, skip_hooks: bool) -> SyncPlanOptions {
        SyncPlanOptions {
            revision: self.revision.clone(),
            started_at_unix: self.started_at_unix,
            default_namespace: default_namespace.to_string(),
            skip_hooks,
        }
    }

    /// The recorded result of `task`, if any.
    pub fn result_of(&self, task: &SyncTask) -> Option<&ResourceResult> {
        self.resources.iter().find(|r| r.is_for(task))
    }

    /// Records (or replaces) the result of one task.
    pub fn record(&mut self, result: ResourceResult) {
        let same = |r: &ResourceResult| {
            r.sync_phase == result.sync_phase
                && r.group == result.group
                && r.kind == result.kind
                && r.namespace == result.namespace
                && r.name == result.name
        };
        match self.resources.iter_mut().find(|r| same(r)) {
            Some(existing) => *existing = result,
            None => self.resources.push(result),
        }
    }

    /// Sets the task's `hook_phase` (e.g. Succeeded once healthy), keeping the rest. Returns
    /// false when the task has no recorded result.
    pub fn set_task_phase(
        &mut self,
        task: &SyncTask,
        phase: OperationPhase,
        message: &str,
    ) -> bool {
        match self.resources.iter_mut().find(|r| r.is_for(task)) {
            Some(result) => {
                result.hook_phase = phase;
                if !message.is_empty() {
                    result.message = message.to_string();
                }
                true
            }
            None => false,
        }
    }

    /// Brings `phase`, `sync_phase`, `wave` and `message` in line with `step`.
    pub fn advance(&mut self, step: &Step<'_>) {
        match step {
            Step::Apply { phase, wave, tasks } | Step::Wait { phase, wave, tasks } => {
                self.phase = OperationPhase::Running;
                self.sync_phase = *phase;
                self.wave = *wave;
                let verb = if matches!(step, Step::Apply { .. }) {
                    "applying"
                } else {
                    "waiting for"
                };
                self.message = format!("{phase} wave {wave}: {verb} {} object(s)", tasks.len());
            }
            Step::Done { succeeded: true } => {
                self.phase = OperationPhase::Succeeded;
                self.message = "successfully synced (all tasks run)".into();
            }
            Step::Done { succeeded: false } if self.phase == OperationPhase::Terminating => {
                self.phase = OperationPhase::Failed;
                self.message = "operation terminated".into();
            }
            Step::Done { succeeded: false } => {
                self.phase = OperationPhase::Failed;
                let failed: Vec<String> = self
                    .resources
                    .iter()
                    .filter(|r| {
                        r.outcome() == Outcome::Failed && r.sync_phase != SyncPhase::SyncFail
                    })
                    .map(|r| format!("{}/{} {}", r.kind, r.name, r.message))
                    .collect();
                self.message = format!("one or more tasks failed: {}", failed.join("; "));
            }
        }
    }
}
