use super::*;
use crate::hooks::{HOOK_ANNOTATION, HOOK_DELETE_POLICY_ANNOTATION, SYNC_WAVE_ANNOTATION};
use crate::manifest::Origin;
use serde_json::json;

fn manifest(object: Value) -> Manifest {
    Manifest {
        object,
        origin: Origin::default(),
    }
}

fn obj(api_version: &str, kind: &str, name: &str, annotations: Value) -> Manifest {
    manifest(json!({"apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "annotations": annotations}}))
}

fn options() -> SyncPlanOptions {
    SyncPlanOptions {
        revision: "abcdef0123456789".into(),
        started_at_unix: 1_700_000_000,
        ..Default::default()
    }
}

/// The `sync-waves` example of argocd-example-apps, as JSON.
fn sync_waves_example() -> Vec<Manifest> {
    vec![
        manifest(json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": "upgrade-sql-schema",
                "annotations": {HOOK_ANNOTATION: "PreSync"}}})),
        obj(
            "apps/v1",
            "ReplicaSet",
            "backend",
            json!({SYNC_WAVE_ANNOTATION: "0"}),
        ),
        obj("v1", "Service", "backend", json!({})),
        obj(
            "batch/v1",
            "Job",
            "maint-page-up",
            json!({HOOK_ANNOTATION: "Sync", HOOK_DELETE_POLICY_ANNOTATION: "BeforeHookCreation",
                SYNC_WAVE_ANNOTATION: "1"}),
        ),
        obj(
            "apps/v1",
            "ReplicaSet",
            "frontend",
            json!({SYNC_WAVE_ANNOTATION: "2"}),
        ),
        obj(
            "v1",
            "Service",
            "frontend",
            json!({SYNC_WAVE_ANNOTATION: "2"}),
        ),
        obj(
            "batch/v1",
            "Job",
            "maint-page-down",
            json!({HOOK_ANNOTATION: "Sync", HOOK_DELETE_POLICY_ANNOTATION: "BeforeHookCreation",
                SYNC_WAVE_ANNOTATION: "3"}),
        ),
    ]
}

fn order(tasks: &[SyncTask]) -> Vec<String> {
    tasks
        .iter()
        .map(|t| format!("{}/{}/{}/{}", t.phase, t.wave, t.key.kind, t.key.name))
        .collect()
}

#[test]
fn sync_waves_example_runs_in_documented_order() {
    let plan = SyncPlan::build(&sync_waves_example(), &options()).unwrap();
    assert_eq!(
        order(&plan.tasks),
        [
            "PreSync/0/Job/upgrade-sql-schemaabcdef0-presync-1700000000",
            "Sync/0/Service/backend",
            "Sync/0/ReplicaSet/backend",
            "Sync/1/Job/maint-page-up",
            "Sync/2/Service/frontend",
            "Sync/2/ReplicaSet/frontend",
            "Sync/3/Job/maint-page-down",
        ]
    );
    let waves: Vec<(SyncPhase, i64, usize)> = plan
        .waves()
        .iter()
        .map(|w| (w.phase, w.wave, w.tasks.len()))
        .collect();
    assert_eq!(
        waves,
        [
            (SyncPhase::PreSync, 0, 1),
            (SyncPhase::Sync, 0, 2),
            (SyncPhase::Sync, 1, 1),
            (SyncPhase::Sync, 2, 2),
            (SyncPhase::Sync, 3, 1),
        ]
    );
    // The derived name is written into the object too.
    assert_eq!(
        plan.tasks[0].manifest.object["metadata"]["name"],
        "upgrade-sql-schemaabcdef0-presync-1700000000"
    );
    assert!(plan.tasks[0].is_hook());
    assert_eq!(plan.tasks[0].hook_type(), Some(HookType::PreSync));
    assert!(!plan.tasks[1].is_hook());
}

#[test]
fn helm_hooks_example_maps_weights_to_waves() {
    let desired = vec![
        manifest(json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": "upgrade-sql-schema",
                "annotations": {"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-2"}}})),
        obj(
            "batch/v1",
            "Job",
            "maint-page-up",
            json!({"helm.sh/hook": "pre-install", "helm.sh/hook-delete-policy": "before-hook-creation",
                "helm.sh/hook-weight": "-1"}),
        ),
        obj("apps/v1", "ReplicaSet", "frontend", json!({})),
        obj(
            "v1",
            "Service",
            "frontend",
            json!({"helm.sh/hook-weight": "2"}),
        ),
        obj(
            "batch/v1",
            "Job",
            "maint-page-down",
            json!({"helm.sh/hook": "post-install", "helm.sh/hook-delete-policy": "before-hook-creation"}),
        ),
    ];
    let plan = SyncPlan::build(&desired, &options()).unwrap();
    assert_eq!(
        order(&plan.tasks),
        [
            "PreSync/-2/Job/upgrade-sql-schemaabcdef0-presync-1700000000",
            "PreSync/-1/Job/maint-page-up",
            "Sync/0/ReplicaSet/frontend",
            "Sync/2/Service/frontend",
            "PostSync/0/Job/maint-page-down",
        ]
    );
}

#[test]
fn sync_fail_delete_hooks_and_skips_are_kept_aside() {
    let desired = vec![
        obj("v1", "ConfigMap", "a", json!({})),
        obj(
            "batch/v1",
            "Job",
            "cleanup",
            json!({HOOK_ANNOTATION: "SyncFail"}),
        ),
        obj(
            "batch/v1",
            "Job",
            "goodbye",
            json!({HOOK_ANNOTATION: "PostDelete"}),
        ),
        obj(
            "batch/v1",
            "Job",
            "backup",
            json!({"helm.sh/hook": "pre-delete"}),
        ),
        obj(
            "v1",
            "ConfigMap",
            "skip-me",
            json!({HOOK_ANNOTATION: "Skip"}),
        ),
        obj("v1", "Pod", "test", json!({"helm.sh/hook": "test"})),
    ];
    let plan = SyncPlan::build(&desired, &options()).unwrap();
    assert_eq!(order(&plan.tasks), ["Sync/0/ConfigMap/a"]);
    assert_eq!(order(&plan.sync_fail), ["SyncFail/0/Job/cleanup"]);
    assert_eq!(plan.post_delete[0].key.name, "goodbye");
    assert_eq!(plan.pre_delete[0].key.name, "backup");
    let skipped: Vec<&str> = plan.skipped.iter().map(|s| s.key.name.as_str()).collect();
    assert_eq!(skipped, ["skip-me", "test"]);
    assert!(plan.skipped[1].reason.contains("test"));
}

#[test]
fn skip_hooks_leaves_hooks_out() {
    let mut opts = options();
    opts.skip_hooks = true;
    let plan = SyncPlan::build(&sync_waves_example(), &opts).unwrap();
    assert!(plan.tasks.iter().all(|t| !t.is_hook()));
    assert_eq!(plan.tasks.len(), 4);
    assert_eq!(plan.skipped.len(), 3);
}

#[test]
fn hook_in_two_phases_gets_one_task_per_phase() {
    let desired = vec![manifest(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"generateName": "check-", "annotations": {HOOK_ANNOTATION: "PreSync,PostSync"}}}))];
    let plan = SyncPlan::build(&desired, &options()).unwrap();
    assert_eq!(
        order(&plan.tasks),
        [
            "PreSync/0/Job/check-abcdef0-presync-1700000000",
            "PostSync/0/Job/check-abcdef0-postsync-1700000000"
        ]
    );
}

#[test]
fn namespace_and_crd_move_before_their_first_user() {
    let desired = vec![
        manifest(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "early", "namespace": "team", "annotations": {SYNC_WAVE_ANNOTATION: "-1"}}})),
        manifest(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "team", "annotations": {SYNC_WAVE_ANNOTATION: "5"}}})),
        manifest(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "team", "annotations": {SYNC_WAVE_ANNOTATION: "-2"}}})),
        manifest(
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget"}}}),
        ),
    ];
    let plan = SyncPlan::build(&desired, &options()).unwrap();
    assert_eq!(
        order(&plan.tasks),
        [
            "Sync/-2/Namespace/team",
            "Sync/-2/CustomResourceDefinition/widgets.example.com",
            "Sync/-2/Widget/w",
            "Sync/-1/ConfigMap/early",
        ]
    );
}

#[test]
fn every_malformed_annotation_is_reported() {
    let desired = vec![
        obj("batch/v1", "Job", "a", json!({HOOK_ANNOTATION: "Bogus"})),
        obj("v1", "ConfigMap", "b", json!({SYNC_WAVE_ANNOTATION: "one"})),
        obj("v1", "ConfigMap", "c", json!({})),
    ];
    let error = SyncPlan::build(&desired, &options()).unwrap_err();
    assert_eq!(error.errors.len(), 2);
    let text = error.to_string();
    assert!(
        text.contains("batch/Job a") && text.contains("\"Bogus\""),
        "{text}"
    );
    assert!(
        text.contains("ConfigMap b") && text.contains("sync-wave"),
        "{text}"
    );
}

fn succeed(progress: &mut SyncProgress, tasks: &[&SyncTask]) {
    for task in tasks {
        progress.record(ResourceResult::for_task(
            task,
            ResultCode::Synced,
            "applied",
        ));
        assert!(progress.set_task_phase(task, OperationPhase::Succeeded, "healthy"));
    }
}

#[test]
fn state_machine_walks_waves_and_resumes_after_a_restart() {
    let plan = SyncPlan::build(&sync_waves_example(), &options()).unwrap();
    let mut progress = SyncProgress::default();
    let mut visited = Vec::new();
    loop {
        let step = plan.next_step(&progress);
        progress.advance(&step);
        match step {
            Step::Apply { phase, wave, tasks } => {
                visited.push((phase, wave));
                // Apply, then simulate a controller restart: the stored JSON is all that's kept.
                for task in &tasks {
                    progress.record(ResourceResult::for_task(
                        task,
                        ResultCode::Synced,
                        "applied",
                    ));
                }
                let stored = serde_json::to_value(&progress).unwrap();
                progress = serde_json::from_value(stored).unwrap();
                match plan.next_step(&progress) {
                    Step::Wait { tasks: waiting, .. } => assert_eq!(waiting.len(), tasks.len()),
                    other => panic!("expected to wait, got {other:?}"),
                }
            }
            Step::Wait { tasks, .. } => succeed(&mut progress, &tasks),
            Step::Done { succeeded } => {
                assert!(succeeded);
                break;
            }
        }
    }
    assert_eq!(progress.phase, OperationPhase::Succeeded);
    assert_eq!(
        visited,
        [
            (SyncPhase::PreSync, 0),
            (SyncPhase::Sync, 0),
            (SyncPhase::Sync, 1),
            (SyncPhase::Sync, 2),
            (SyncPhase::Sync, 3),
        ]
    );
    assert_eq!(progress.resources.len(), 7);
}

#[test]
fn a_failed_task_stops_later_waves_and_runs_sync_fail_hooks() {
    let mut desired = sync_waves_example();
    desired.push(obj(
        "batch/v1",
        "Job",
        "notify",
        json!({HOOK_ANNOTATION: "SyncFail"}),
    ));
    let plan = SyncPlan::build(&desired, &options()).unwrap();
    let mut progress = SyncProgress::default();
    // PreSync succeeds.
    let Step::Apply { tasks, .. } = plan.next_step(&progress) else {
        panic!("expected apply")
    };
    succeed(&mut progress, &tasks);
    // Sync wave 0: one object fails to apply.
    let Step::Apply { phase, wave, tasks } = plan.next_step(&progress) else {
        panic!("expected apply")
    };
    assert_eq!((phase, wave), (SyncPhase::Sync, 0));
    progress.record(ResourceResult::for_task(
        tasks[0],
        ResultCode::SyncFailed,
        "denied",
    ));
    succeed(&mut progress, &tasks[1..]);
    // Only the SyncFail hook is left to run.
    let Step::Apply { phase, tasks, .. } = plan.next_step(&progress) else {
        panic!("expected the SyncFail hook")
    };
    assert_eq!(phase, SyncPhase::SyncFail);
    assert_eq!(tasks[0].key.name, "notify");
    succeed(&mut progress, &tasks);
    let step = plan.next_step(&progress);
    assert_eq!(step, Step::Done { succeeded: false });
    progress.advance(&step);
    assert_eq!(progress.phase, OperationPhase::Failed);
    assert!(
        progress.message.contains("Service/backend denied"),
        "{}",
        progress.message
    );
}

#[test]
fn a_failed_hook_phase_fails_the_operation() {
    let plan = SyncPlan::build(&sync_waves_example(), &options()).unwrap();
    let mut progress = SyncProgress::default();
    let Step::Apply { tasks, .. } = plan.next_step(&progress) else {
        panic!("expected apply")
    };
    progress.record(ResourceResult::for_task(tasks[0], ResultCode::Synced, ""));
    progress.set_task_phase(tasks[0], OperationPhase::Failed, "job failed");
    assert_eq!(plan.next_step(&progress), Step::Done { succeeded: false });
}

#[test]
fn progress_serializes_like_argo_cd_sync_result() {
    let plan = SyncPlan::build(&sync_waves_example(), &options()).unwrap();
    let mut progress = SyncProgress::default();
    progress.record(ResourceResult::for_task(
        &plan.tasks[0],
        ResultCode::Synced,
        "created",
    ));
    let value = serde_json::to_value(&progress).unwrap();
    assert_eq!(
        value["resources"][0],
        json!({"group": "batch", "version": "v1", "kind": "Job", "namespace": "",
            "name": "upgrade-sql-schemaabcdef0-presync-1700000000", "status": "Synced",
            "message": "created", "hookType": "PreSync", "hookPhase": "Running", "syncPhase": "PreSync"})
    );
    assert_eq!(value["phase"], "Running");
    // Recording again replaces, never duplicates.
    progress.record(ResourceResult::for_task(
        &plan.tasks[0],
        ResultCode::Synced,
        "again",
    ));
    assert_eq!(progress.resources.len(), 1);
}

#[test]
fn empty_plan_is_done_at_once() {
    let plan = SyncPlan::build(&[], &options()).unwrap();
    assert_eq!(
        plan.next_step(&SyncProgress::default()),
        Step::Done { succeeded: true }
    );
}

#[test]
fn resumed_plan_has_the_same_generated_names() {
    let progress = SyncProgress::start("abcdef0123456789", 1_700_000_000);
    let stored = serde_json::to_string(&progress).unwrap();
    let restored: SyncProgress = serde_json::from_str(&stored).unwrap();
    let first = SyncPlan::build(&sync_waves_example(), &progress.plan_options("", false)).unwrap();
    let again = SyncPlan::build(&sync_waves_example(), &restored.plan_options("", false)).unwrap();
    assert_eq!(first, again);
    assert_eq!(
        first.tasks[0].key.name,
        "upgrade-sql-schemaabcdef0-presync-1700000000"
    );
    // Old stored progress without the new fields still reads.
    let legacy: SyncProgress =
        serde_json::from_value(json!({"phase": "Running", "resources": []})).unwrap();
    assert_eq!(legacy.retry_count, 0);
}

#[test]
fn hook_delete_policies_decide_cleanup() {
    let desired = vec![
        obj(
            "batch/v1",
            "Job",
            "a",
            json!({HOOK_ANNOTATION: "PreSync", HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded"}),
        ),
        obj("batch/v1", "Job", "b", json!({HOOK_ANNOTATION: "PreSync"})),
        obj(
            "batch/v1",
            "Job",
            "c",
            json!({HOOK_ANNOTATION: "PreSync", "helm.sh/hook-delete-policy": "hook-failed"}),
        ),
    ];
    let plan = SyncPlan::build(&desired, &options()).unwrap();
    let hook = |name: &str| {
        plan.tasks
            .iter()
            .find(|t| t.key.name == name)
            .and_then(|t| t.hook.clone())
            .unwrap()
    };
    assert!(hook("a").delete_after(Outcome::Succeeded));
    assert!(!hook("a").delete_after(Outcome::Failed));
    assert!(!hook("a").delete_before_creation());
    assert!(hook("b").delete_before_creation());
    assert!(!hook("b").delete_after(Outcome::Succeeded));
    assert!(hook("c").delete_after(Outcome::Failed));
    assert!(!hook("c").delete_after(Outcome::Running));
}

#[test]
fn terminate_stops_the_operation_and_lists_running_tasks() {
    let mut desired = sync_waves_example();
    desired.push(obj(
        "batch/v1",
        "Job",
        "notify",
        json!({HOOK_ANNOTATION: "SyncFail"}),
    ));
    let plan = SyncPlan::build(&desired, &options()).unwrap();
    let mut progress = SyncProgress::start("abcdef0123456789", 1_700_000_000);
    let Step::Apply { tasks, .. } = plan.next_step(&progress) else {
        panic!("expected apply")
    };
    progress.record(ResourceResult::for_task(
        tasks[0],
        ResultCode::Synced,
        "created",
    ));
    assert_eq!(plan.running(&progress).len(), 1);
    progress.terminate();
    assert_eq!(progress.phase, OperationPhase::Terminating);
    // Survives a restart, runs nothing more (not even SyncFail hooks).
    let mut progress: SyncProgress =
        serde_json::from_value(serde_json::to_value(&progress).unwrap()).unwrap();
    let step = plan.next_step(&progress);
    assert_eq!(step, Step::Done { succeeded: false });
    assert_eq!(plan.running(&progress)[0].key.kind, "Job");
    progress.advance(&step);
    assert_eq!(progress.phase, OperationPhase::Failed);
    assert_eq!(progress.message, "operation terminated");
    // Terminating a finished operation changes nothing.
    progress.terminate();
    assert_eq!(progress.phase, OperationPhase::Failed);
}
