//! Flux kinds end to end: GitRepository + Kustomization against an in-process devcluster and a
//! temporary Git repository — apply, prune, dependsOn, substitution, ownership, bad input.

mod common;

use common::{Harness, Setup, cm, git};
use plumb_core::key::str_at;
use plumb_engine::flux::{
    KUSTOMIZE_API_VERSION, NAME_LABEL, NAMESPACE_LABEL, REQUESTED_AT_ANNOTATION, SOURCE_API_VERSION,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const NS: &str = "flux-system";

async fn start(files: &[(&str, &str)]) -> Harness {
    start_with_workers(files, 4).await
}

async fn start_with_workers(files: &[(&str, &str)], workers: usize) -> Harness {
    start_with(
        files,
        Setup {
            workers,
            ..Setup::default()
        },
    )
    .await
}

async fn start_with(files: &[(&str, &str)], setup: Setup) -> Harness {
    let h = Harness::start_with(files, setup).await;
    for (api_version, kind) in [
        (SOURCE_API_VERSION, "GitRepository"),
        (KUSTOMIZE_API_VERSION, "Kustomization"),
    ] {
        plumb_engine::crds::wait_established(&h.cluster, api_version, kind)
            .await
            .expect("Flux CRDs installed");
    }
    h.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .await;
    h
}

async fn git_repository(h: &Harness, name: &str, reference: Value) {
    h.apply(json!({
        "apiVersion": SOURCE_API_VERSION, "kind": "GitRepository",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"url": h.url(), "interval": "1h", "ref": reference}
    }))
    .await;
}

async fn kustomization(h: &Harness, name: &str, spec: Value) {
    let mut full = json!({"interval": "1h", "prune": true,
        "sourceRef": {"kind": "GitRepository", "name": "repo"}});
    for (key, value) in spec.as_object().cloned().unwrap_or_default() {
        full[key] = value;
    }
    h.apply(json!({
        "apiVersion": KUSTOMIZE_API_VERSION, "kind": "Kustomization",
        "metadata": {"name": name, "namespace": NS},
        "spec": full
    }))
    .await;
}

async fn get(h: &Harness, api_version: &str, kind: &str, name: &str) -> Value {
    h.cluster
        .get(api_version, kind, NS, name)
        .await
        .expect("get")
        .unwrap_or(Value::Null)
}

fn ready(object: &Value) -> (String, String, String) {
    let condition = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == "Ready"))
        .cloned()
        .unwrap_or(Value::Null);
    (
        str_at(&condition, &["status"]).to_string(),
        str_at(&condition, &["reason"]).to_string(),
        str_at(&condition, &["message"]).to_string(),
    )
}

/// Waits until `check` holds for the Kustomization (or GitRepository) `name`.
async fn wait_for(
    h: &Harness,
    kind: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let api_version = if kind == "GitRepository" {
        SOURCE_API_VERSION
    } else {
        KUSTOMIZE_API_VERSION
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let object = get(h, api_version, kind, name).await;
        if check(&object) {
            return object;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}; {kind} {name}: {}",
                serde_json::to_string_pretty(&object).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for Ready with `status` and `reason`; returns the Ready message.
async fn wait_ready(h: &Harness, name: &str, status: &str, reason: &str) -> String {
    let object = wait_for(
        h,
        "Kustomization",
        name,
        &format!("Ready={status} {reason}"),
        |o| {
            let (s, r, _) = ready(o);
            s == status && r == reason
        },
    )
    .await;
    ready(&object).2
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("corpus dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

async fn request_reconcile(h: &Harness, api_version: &str, kind: &str, name: &str, at: &str) {
    h.cluster
        .merge_patch(
            api_version,
            kind,
            NS,
            name,
            &json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: at}}}),
        )
        .await
        .expect("annotate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podinfo_kustomize_through_git_repository_and_kustomization() {
    let h = start(&[]).await;
    // `../shared` next to the checkout (a worktree sits one level deeper).
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = ["../../../shared", "../../../../shared"]
        .iter()
        .map(|up| manifest.join(up).join("corpus/podinfo/kustomize"))
        .find(|p| p.is_dir())
        .expect("the shared corpus");
    copy_dir(&corpus, &h.repo.join("kustomize"));
    let first = h.commit(&[], "podinfo");
    h.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "podinfo"}}))
        .await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    kustomization(
        &h,
        "podinfo",
        // The devcluster runs no HPA controller, so `wait: true` would wait on the HPA
        // (plumb's health rule wants it scaled); check the Deployment's health instead.
        json!({"path": "./kustomize", "targetNamespace": "podinfo", "timeout": "20s",
            "healthChecks": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo", "namespace": "podinfo"}]}),
    )
    .await;
    let revision = format!("main@sha1:{first}");
    let repo = wait_for(&h, "GitRepository", "repo", "artifact", |o| {
        str_at(o, &["status", "artifact", "revision"]) == revision
    })
    .await;
    assert_eq!(ready(&repo).0, "True");
    assert_eq!(ready(&repo).1, "Succeeded");
    let message = wait_ready(&h, "podinfo", "True", "ReconciliationSucceeded").await;
    assert_eq!(message, format!("Applied revision: {revision}"));
    let ks = get(&h, KUSTOMIZE_API_VERSION, "Kustomization", "podinfo").await;
    assert_eq!(str_at(&ks, &["status", "lastAppliedRevision"]), revision);
    assert_eq!(str_at(&ks, &["status", "lastAttemptedRevision"]), revision);
    assert_eq!(ks.pointer("/status/observedGeneration"), Some(&json!(1)));
    let ids: Vec<&str> = ks
        .pointer("/status/inventory/entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "podinfo_podinfo__Service",
            "podinfo_podinfo_apps_Deployment",
            "podinfo_podinfo_autoscaling_HorizontalPodAutoscaler"
        ]
    );
    let deployment = h
        .cluster
        .get("apps/v1", "Deployment", "podinfo", "podinfo")
        .await
        .expect("get")
        .expect("deployment applied");
    assert_eq!(
        str_at(&deployment, &["metadata", "labels", NAME_LABEL]),
        "podinfo"
    );
    assert_eq!(
        str_at(&deployment, &["metadata", "labels", NAMESPACE_LABEL]),
        NS
    );
    assert!(
        h.cluster
            .get("v1", "Service", "podinfo", "podinfo")
            .await
            .expect("get")
            .is_some()
    );

    // A commit drops the HPA: the next revision prunes it.
    let kustomization_file = h.repo.join("kustomize/kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization_file).expect("read");
    std::fs::write(&kustomization_file, text.replace("  - hpa.yaml\n", "")).expect("write");
    let second = h.commit(&[("kustomize/hpa.yaml", "")], "drop the hpa");
    request_reconcile(&h, SOURCE_API_VERSION, "GitRepository", "repo", "1").await;
    let revision = format!("main@sha1:{second}");
    let ks = wait_for(
        &h,
        "Kustomization",
        "podinfo",
        "second revision applied",
        |o| str_at(o, &["status", "lastAppliedRevision"]) == revision,
    )
    .await;
    assert_eq!(ready(&ks).0, "True");
    assert!(
        h.cluster
            .get(
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                "podinfo",
                "podinfo"
            )
            .await
            .expect("get")
            .is_none(),
        "hpa pruned"
    );
    assert!(
        h.cluster
            .get("apps/v1", "Deployment", "podinfo", "podinfo")
            .await
            .expect("get")
            .is_some()
    );
    let repo = get(&h, SOURCE_API_VERSION, "GitRepository", "repo").await;
    assert_eq!(str_at(&repo, &["status", "lastHandledReconcileAt"]), "1");
    let events = h.cluster.list("v1", "Event", NS).await.expect("events");
    let applied: Vec<&Value> = events
        .iter()
        .filter(|e| {
            str_at(e, &["involvedObject", "kind"]) == "Kustomization"
                && str_at(e, &["reason"]) == "ReconciliationSucceeded"
        })
        .collect();
    assert_eq!(
        applied.len(),
        2,
        "one event per applied revision: {applied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depends_on_waits_for_the_dependency() {
    let h = start(&[
        (
            "infra/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
        ),
        ("app/cm.yaml", &cm("app-config", "1")),
    ])
    .await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    kustomization(
        &h,
        "app",
        json!({"path": "./app", "targetNamespace": "team", "dependsOn": [{"name": "infra"}]}),
    )
    .await;
    let message = wait_ready(&h, "app", "False", "DependencyNotReady").await;
    assert_eq!(message, "dependency 'flux-system/infra' not found");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        h.cluster
            .get("v1", "ConfigMap", "team", "app-config")
            .await
            .expect("get")
            .is_none(),
        "nothing applied before the dependency is ready"
    );
    kustomization(&h, "infra", json!({"path": "./infra"})).await;
    wait_ready(&h, "infra", "True", "ReconciliationSucceeded").await;
    wait_ready(&h, "app", "True", "ReconciliationSucceeded").await;
    assert!(
        h.cluster
            .get("v1", "ConfigMap", "team", "app-config")
            .await
            .expect("get")
            .is_some()
    );

    // A new commit: the app applies it only after infra has.
    let second = h.commit(&[("app/cm.yaml", &cm("app-config", "2"))], "change");
    request_reconcile(&h, SOURCE_API_VERSION, "GitRepository", "repo", "1").await;
    let revision = format!("main@sha1:{second}");
    wait_for(&h, "Kustomization", "app", "new revision", |o| {
        str_at(o, &["status", "lastAppliedRevision"]) == revision
    })
    .await;
    let infra = get(&h, KUSTOMIZE_API_VERSION, "Kustomization", "infra").await;
    assert_eq!(
        str_at(&infra, &["status", "lastAppliedRevision"]),
        revision,
        "the dependency applied the revision first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_build_substitution_metadata_and_apply_annotations() {
    let h = start(&[
        (
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  env: ${cluster_env}\n  region: ${region:=eu-west-1}\n  literal: $${cluster_env}\n  shell: echo $HOME\n",
        ),
        (
            "app/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${replicas}\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n",
        ),
        (
            "app/keep.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n",
        ),
        (
            "app/once.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: once\n  annotations:\n    kustomize.toolkit.fluxcd.io/ssa: IfNotPresent\ndata:\n  v: from-git\n",
        ),
    ])
    .await;
    h.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-vars", "namespace": NS},
        "data": {"cluster_env": "staging", "replicas": "1"}}))
        .await;
    h.apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cluster-secret-vars", "namespace": NS},
        "stringData": {"replicas": "2"}}))
        .await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    kustomization(
        &h,
        "app",
        json!({"path": "./app", "targetNamespace": "apps", "wait": true, "timeout": "20s",
        "commonMetadata": {"labels": {"team": "blue"}, "annotations": {"owner": "ops"}},
        "postBuild": {
            "substitute": {"cluster_env": "prod"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "cluster-vars"},
                {"kind": "Secret", "name": "cluster-secret-vars"},
                {"kind": "ConfigMap", "name": "absent", "optional": true}
            ]}}),
    )
    .await;
    wait_ready(&h, "app", "True", "ReconciliationSucceeded").await;
    let ks = get(&h, KUSTOMIZE_API_VERSION, "Kustomization", "app").await;
    assert!(
        ks.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c
                .iter()
                .any(|c| c["type"] == "Healthy" && c["status"] == "True")),
        "wait: true checked health: {ks}"
    );
    let settings = h.configmap("settings").await.expect("settings applied");
    assert_eq!(settings["data"]["env"], "prod", "substitute wins");
    assert_eq!(settings["data"]["region"], "eu-west-1");
    assert_eq!(settings["data"]["literal"], "${cluster_env}");
    assert_eq!(settings["data"]["shell"], "echo $HOME");
    assert_eq!(settings["metadata"]["labels"]["team"], "blue");
    assert_eq!(settings["metadata"]["annotations"]["owner"], "ops");
    let web = h
        .cluster
        .get("apps/v1", "Deployment", "apps", "web")
        .await
        .expect("get")
        .expect("web applied");
    assert_eq!(
        web["spec"]["replicas"],
        json!(2),
        "a number, from the Secret"
    );
    assert_eq!(
        web["spec"]["selector"]["matchLabels"],
        json!({"app": "web"}),
        "selectors untouched by commonMetadata"
    );

    // IfNotPresent: a change made in the cluster stays.
    h.cluster
        .merge_patch(
            "v1",
            "ConfigMap",
            "apps",
            "once",
            &json!({"data": {"v": "edited"}}),
        )
        .await
        .expect("edit");
    // Remove keep.yaml and reconcile: prune skips the object marked prune: disabled.
    let second = h.commit(&[("app/keep.yaml", "")], "drop keep");
    request_reconcile(&h, SOURCE_API_VERSION, "GitRepository", "repo", "a").await;
    let revision = format!("main@sha1:{second}");
    wait_for(&h, "Kustomization", "app", "second revision", |o| {
        str_at(o, &["status", "lastAppliedRevision"]) == revision
    })
    .await;
    assert!(
        h.configmap("keep").await.is_some(),
        "prune: disabled is kept"
    );
    assert_eq!(
        h.configmap("once").await.expect("once")["data"]["v"],
        "edited"
    );

    // requestedAt on the Kustomization is handled and recorded.
    request_reconcile(&h, KUSTOMIZE_API_VERSION, "Kustomization", "app", "now-1").await;
    wait_for(&h, "Kustomization", "app", "lastHandledReconcileAt", |o| {
        str_at(o, &["status", "lastHandledReconcileAt"]) == "now-1"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semver_reference_picks_the_highest_matching_tag() {
    let h = start(&[("app/cm.yaml", &cm("version", "1.0.0"))]).await;
    git(&h.repo, &["tag", "v1.0.0"]);
    let v11 = h.commit(&[("app/cm.yaml", &cm("version", "1.1.0"))], "1.1");
    git(&h.repo, &["tag", "v1.1.0"]);
    h.commit(&[("app/cm.yaml", &cm("version", "2.0.0"))], "2.0");
    git(&h.repo, &["tag", "v2.0.0"]);
    git(&h.repo, &["tag", "not-a-version"]);
    git_repository(&h, "repo", json!({"semver": ">=1.0.0 <2.0.0"})).await;
    let expected = format!("v1.1.0@sha1:{v11}");
    wait_for(&h, "GitRepository", "repo", "semver artifact", |o| {
        str_at(o, &["status", "artifact", "revision"]) == expected
    })
    .await;
    kustomization(
        &h,
        "app",
        json!({"path": "./app", "targetNamespace": "apps"}),
    )
    .await;
    wait_ready(&h, "app", "True", "ReconciliationSucceeded").await;
    assert_eq!(
        h.configmap("version").await.expect("applied")["data"]["value"],
        "1.1.0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_reported_and_nothing_is_applied() {
    let h = start(&[
        ("good/cm.yaml", &cm("good", "1")),
        ("broken/good.yaml", &cm("broken-good", "1")),
        ("broken/x.yaml", "kind: [unclosed\n"),
        ("vars/cm.yaml", &cm("vars-cm", "${x:1}")),
        ("needs/cm.yaml", &cm("needs-cm", "${a}")),
        ("owned/cm.yaml", &cm("argo-owned", "from-flux")),
        (
            "unknown/x.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
        ),
    ])
    .await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    git_repository(&h, "missing-branch", json!({"branch": "nope"})).await;
    h.apply(json!({
        "apiVersion": SOURCE_API_VERSION, "kind": "GitRepository",
        "metadata": {"name": "no-secret", "namespace": NS},
        "spec": {"url": "https://git.example.invalid/r.git", "interval": "1h",
            "secretRef": {"name": "absent-auth"}}
    }))
    .await;
    h.apply(json!({
        "apiVersion": SOURCE_API_VERSION, "kind": "GitRepository",
        "metadata": {"name": "bad-range", "namespace": NS},
        "spec": {"url": h.url(), "interval": "1h", "ref": {"semver": ">= >= 1"}}
    }))
    .await;

    let cases: Vec<(&str, Value, &str, &[&str])> = vec![
        (
            "no-source",
            json!({"path": "./good", "sourceRef": {"kind": "GitRepository", "name": "absent"}}),
            "ArtifactFailed",
            &["GitRepository/flux-system/absent", "not found"],
        ),
        (
            "bucket-source",
            json!({"path": "./good", "sourceRef": {"kind": "Bucket", "name": "x"}}),
            "ArtifactFailed",
            &["Bucket", "not supported yet"],
        ),
        (
            "branch-missing",
            json!({"path": "./good", "sourceRef": {"kind": "GitRepository", "name": "missing-branch"}}),
            "ArtifactFailed",
            &["is not ready"],
        ),
        (
            "bad-path",
            json!({"path": "./nowhere"}),
            "BuildFailed",
            &["spec.path:", "nowhere", "does not exist"],
        ),
        (
            "bad-yaml",
            json!({"path": "./broken", "targetNamespace": "apps"}),
            "BuildFailed",
            &["x.yaml"],
        ),
        (
            "bad-substitution",
            json!({"path": "./vars", "targetNamespace": "apps", "postBuild": {"substitute": {"x": "1"}}}),
            "BuildFailed",
            &["ConfigMap/apps/vars-cm", "unsupported substitution"],
        ),
        (
            "missing-vars",
            json!({"path": "./needs", "postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "nope"}]}}),
            "BuildFailed",
            &[
                "substituteFrom[0]",
                "ConfigMap 'flux-system/nope' not found",
            ],
        ),
        (
            "cycle-a",
            json!({"path": "./good", "dependsOn": [{"name": "cycle-b"}]}),
            "DependencyNotReady",
            &[
                "dependency cycle",
                "flux-system/cycle-a -> flux-system/cycle-b -> flux-system/cycle-a",
            ],
        ),
        (
            "cycle-b",
            json!({"path": "./good", "dependsOn": [{"name": "cycle-a"}]}),
            "DependencyNotReady",
            &["dependency cycle"],
        ),
        (
            "no-interval",
            json!({"interval": null, "path": "./good"}),
            "InvalidSpec",
            &["spec.interval: must be set"],
        ),
        (
            "unknown-kind",
            json!({"path": "./unknown", "targetNamespace": "apps"}),
            "ReconciliationFailed",
            &["example.com/v1 Widget", "is its CRD installed"],
        ),
        (
            "argo-owned",
            json!({"path": "./owned", "targetNamespace": "apps"}),
            "ReconciliationFailed",
            &["ConfigMap/apps/argo-owned is managed by Argo CD application guestbook"],
        ),
    ];
    h.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argo-owned", "namespace": "apps",
            "annotations": {"argocd.argoproj.io/tracking-id": "guestbook:/ConfigMap:apps/argo-owned"}},
        "data": {"value": "from-argo"}}))
        .await;
    for (name, spec, _, _) in &cases {
        kustomization(&h, name, spec.clone()).await;
    }
    for (name, _, reason, expected) in &cases {
        let message = wait_ready(&h, name, "False", reason).await;
        for part in *expected {
            assert!(
                message.contains(part),
                "{name}: Ready message {message:?} should mention {part:?}"
            );
        }
    }
    let stalled = get(&h, KUSTOMIZE_API_VERSION, "Kustomization", "no-interval").await;
    assert!(
        stalled
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c
                .iter()
                .any(|c| c["type"] == "Stalled" && c["status"] == "True")),
        "an invalid spec stalls"
    );
    let repo = wait_for(
        &h,
        "GitRepository",
        "missing-branch",
        "fetch failure",
        |o| ready(o).1 == "GitOperationFailed",
    )
    .await;
    assert!(ready(&repo).2.contains("nope"), "{:?}", ready(&repo));
    let repo = wait_for(&h, "GitRepository", "no-secret", "auth failure", |o| {
        ready(o).1 == "AuthenticationFailed"
    })
    .await;
    assert!(ready(&repo).2.contains("absent-auth"), "{:?}", ready(&repo));
    let repo = wait_for(&h, "GitRepository", "bad-range", "invalid spec", |o| {
        ready(o).1 == "InvalidSpec"
    })
    .await;
    assert!(
        ready(&repo).2.starts_with("spec.ref.semver:"),
        "{:?}",
        ready(&repo)
    );
    assert!(
        h.configmap("broken-good").await.is_none(),
        "nothing applied when the build fails"
    );
    assert_eq!(
        h.configmap("argo-owned").await.expect("still there")["data"]["value"],
        "from-argo",
        "an object Argo CD manages is not fought over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_fields_give_a_warning_condition() {
    let h = start(&[("good/cm.yaml", &cm("good", "1"))]).await;
    h.apply(json!({
        "apiVersion": SOURCE_API_VERSION, "kind": "GitRepository",
        "metadata": {"name": "repo", "namespace": NS},
        "spec": {"url": h.url(), "interval": "1h", "ref": {"branch": "main"},
            "ignore": "/*\n!/good\n", "proxySecretRef": {"name": "proxy"}}
    }))
    .await;
    kustomization(
        &h,
        "app",
        json!({"path": "./good", "targetNamespace": "apps", "colour": "blue",
            "healthCheckExprs": [{"apiVersion": "example.com/v1", "kind": "Widget", "current": "true"}]}),
    )
    .await;
    let ks = wait_for(&h, "Kustomization", "app", "warning", |o| {
        ready(o).0 == "True"
            && o.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c["type"] == "FieldsNotActedOn"))
    })
    .await;
    let warning = ks["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "FieldsNotActedOn"))
        .cloned()
        .unwrap_or_default();
    let message = str_at(&warning, &["message"]);
    // healthCheckExprs are acted on now (tests/custom_health.rs).
    assert!(!message.contains("spec.healthCheckExprs"), "{message}");
    assert!(message.contains("spec.colour (unknown field)"), "{message}");
    let repo = get(&h, SOURCE_API_VERSION, "GitRepository", "repo").await;
    assert!(
        serde_json::to_string(&repo["status"]["conditions"])
            .unwrap_or_default()
            .contains("spec.proxySecretRef"),
        "{repo}"
    );
}

/// `spec.include`: another GitRepository's files copied into the artifact, a commit there
/// re-applies; bad includes are refused with the field named and nothing applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn included_repositories_are_part_of_the_artifact() {
    let h = start(&[
        (
            "app/kustomization.yaml",
            "resources:\n- base/cm.yaml\n- own.yaml\n",
        ),
        ("app/own.yaml", &cm("own", "1")),
    ])
    .await;
    let library = h.dir.path().join("library");
    common::commit_to(
        &library,
        &[
            ("deploy/cm.yaml", &cm("shared", "1")),
            ("README.md", "not copied: outside fromPath"),
        ],
        "library",
    );
    let library_url = format!("file://{}", library.display());
    h.apply(
        json!({"apiVersion": SOURCE_API_VERSION, "kind": "GitRepository",
        "metadata": {"name": "library", "namespace": NS},
        "spec": {"url": library_url, "interval": "1h", "ref": {"branch": "main"}}}),
    )
    .await;
    let including = |name: &str, include: Value| {
        json!({"apiVersion": SOURCE_API_VERSION, "kind": "GitRepository",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"url": h.url(), "interval": "1h", "ref": {"branch": "main"},
                "include": include}})
    };
    h.apply(including(
        "repo",
        json!([{"repository": {"name": "library"}, "fromPath": "deploy", "toPath": "app/base"}]),
    ))
    .await;
    kustomization(
        &h,
        "app",
        json!({"path": "./app", "targetNamespace": "apps"}),
    )
    .await;
    wait_ready(&h, "app", "True", "ReconciliationSucceeded").await;
    assert_eq!(
        h.configmap("shared").await.expect("included")["data"]["value"],
        "1"
    );
    assert!(h.configmap("own").await.is_some());
    let repo = get(&h, SOURCE_API_VERSION, "GitRepository", "repo").await;
    assert!(
        repo.pointer("/status/includedArtifacts/0/revision")
            .and_then(Value::as_str)
            .is_some_and(|r| r.starts_with("main@sha1:")),
        "{repo}"
    );

    // A commit to the included repository reaches the cluster through the including one.
    common::commit_to(&library, &[("deploy/cm.yaml", &cm("shared", "2"))], "v2");
    request_reconcile(&h, SOURCE_API_VERSION, "GitRepository", "library", "1").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.configmap("shared").await.expect("still there")["data"]["value"] != "2" {
        assert!(
            Instant::now() < deadline,
            "the included change was not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Bad input.
    h.apply(including(
        "escape",
        json!([{"repository": {"name": "library"}, "toPath": "../outside"}]),
    ))
    .await;
    h.apply(including(
        "ghost",
        json!([{"repository": {"name": "nowhere"}}]),
    ))
    .await;
    let escape = wait_for(&h, "GitRepository", "escape", "InvalidSpec", |o| {
        ready(o).1 == "InvalidSpec"
    })
    .await;
    assert!(
        ready(&escape).2.contains("spec.include[0].toPath"),
        "{escape}"
    );
    let ghost = wait_for(&h, "GitRepository", "ghost", "IncludeUnavailable", |o| {
        ready(o).1 == "IncludeUnavailable"
    })
    .await;
    assert!(
        ready(&ghost)
            .2
            .contains("GitRepository 'flux-system/nowhere' not found"),
        "{ghost}"
    );
    h.apply(
        json!({"apiVersion": KUSTOMIZE_API_VERSION, "kind": "Kustomization",
        "metadata": {"name": "ghostly", "namespace": NS},
        "spec": {"interval": "1h", "path": "./app", "targetNamespace": "other-apps",
            "sourceRef": {"kind": "GitRepository", "name": "ghost"}}}),
    )
    .await;
    let waiting = wait_for(&h, "Kustomization", "ghostly", "a source not ready", |o| {
        ready(o).0 == "False"
    })
    .await;
    assert_eq!(ready(&waiting).1, "ArtifactFailed", "{waiting}");
}

/// `spec.ignore` and `.sourceignore` files decide which files of the commit a Kustomization
/// sees, as Flux's artifact would hold them; changing the rules re-applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_rules_and_sourceignore_files_shape_the_artifact() {
    let h = start(&[
        ("deploy/keep.yaml", &cm("kept", "1")),
        ("deploy/drop.yaml", &cm("dropped", "1")),
        ("deploy/extra/more.yaml", &cm("extra", "1")),
        ("deploy/.sourceignore", "drop.yaml\n"),
        ("deploy/logo.png", "not yaml, excluded by Flux's defaults"),
        ("kz/kustomization.yaml", "resources:\n- ignored.yaml\n"),
        ("kz/ignored.yaml", &cm("never", "1")),
    ])
    .await;
    h.apply(json!({
        "apiVersion": SOURCE_API_VERSION, "kind": "GitRepository",
        "metadata": {"name": "repo", "namespace": NS},
        "spec": {"url": h.url(), "interval": "1h", "ref": {"branch": "main"},
            "ignore": "deploy/extra/\nkz/ignored.yaml\n"}
    }))
    .await;
    kustomization(
        &h,
        "deploy",
        json!({"path": "./deploy", "targetNamespace": "apps"}),
    )
    .await;
    kustomization(&h, "kz", json!({"path": "./kz", "targetNamespace": "apps"})).await;
    wait_ready(&h, "deploy", "True", "ReconciliationSucceeded").await;
    assert!(h.configmap("kept").await.is_some());
    assert!(h.configmap("dropped").await.is_none(), ".sourceignore");
    assert!(h.configmap("extra").await.is_none(), "spec.ignore");
    let ks = get(&h, KUSTOMIZE_API_VERSION, "Kustomization", "deploy").await;
    assert!(
        !ks.to_string().contains("FieldsNotActedOn"),
        "spec.ignore is acted on: {ks}"
    );
    // A kustomization naming an ignored file fails as Flux's build does: the file is not in
    // the artifact.
    let message = wait_ready(&h, "kz", "False", "BuildFailed").await;
    assert!(message.contains("ignored.yaml"), "{message}");
    assert!(h.configmap("never").await.is_none());

    // New rules: the same revision, a new artifact, applied at once.
    h.cluster
        .merge_patch(
            SOURCE_API_VERSION,
            "GitRepository",
            NS,
            "repo",
            &json!({"spec": {"ignore": "kz/ignored.yaml\n"}}),
        )
        .await
        .expect("patch");
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.configmap("extra").await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the un-ignored file was not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(h.configmap("dropped").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_kustomization_prunes_its_objects_unless_orphaned() {
    let h = start(&[
        ("one/cm.yaml", &cm("one-cm", "1")),
        ("two/cm.yaml", &cm("two-cm", "1")),
    ])
    .await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    kustomization(
        &h,
        "one",
        json!({"path": "./one", "targetNamespace": "apps"}),
    )
    .await;
    kustomization(
        &h,
        "two",
        json!({"path": "./two", "targetNamespace": "apps", "deletionPolicy": "Orphan"}),
    )
    .await;
    wait_ready(&h, "one", "True", "ReconciliationSucceeded").await;
    wait_ready(&h, "two", "True", "ReconciliationSucceeded").await;
    wait_for(&h, "Kustomization", "one", "finalizer", |o| {
        o.pointer("/metadata/finalizers")
            .is_some_and(|f| f.to_string().contains("finalizers.fluxcd.io"))
    })
    .await;
    assert!(h.configmap("one-cm").await.is_some());
    for name in ["one", "two"] {
        h.cluster
            .delete(
                KUSTOMIZE_API_VERSION,
                "Kustomization",
                NS,
                name,
                plumb_kube::Propagation::Background,
            )
            .await
            .expect("delete");
    }
    for name in ["one", "two"] {
        wait_for(&h, "Kustomization", name, "deletion", Value::is_null).await;
    }
    assert!(h.configmap("one-cm").await.is_none(), "pruned on deletion");
    assert!(
        h.configmap("two-cm").await.is_some(),
        "Orphan keeps objects"
    );
}

/// `spec.kubeConfig.secretRef`: a second in-process devcluster is the remote cluster; its
/// objects are applied, health-checked and pruned there, never in the controller's cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_config_applies_to_a_remote_cluster_and_refuses_unsafe_kubeconfigs() {
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n";
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: remote-cm\n  namespace: team\ndata:\n  a: \"1\"\n";
    let h = start(&[
        ("remote/ns.yaml", namespace),
        ("remote/cm.yaml", config_map),
    ])
    .await;
    let remote = plumb_devcluster::DevCluster::start(plumb_devcluster::Options::default())
        .await
        .expect("second devcluster starts");
    let remote_cluster = plumb_kube::Cluster::from_kubeconfig_text(
        &remote.kubeconfig(),
        "test",
        plumb_kube::Timeouts::default(),
    )
    .await
    .expect("client");
    let secret = |name: &str, data: Value| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
            "stringData": data})
    };
    h.apply(secret("remote", json!({"value": remote.kubeconfig()})))
        .await;
    let exec = remote.kubeconfig().replace(
        "  user: {}",
        "  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [\"-c\", \"touch /tmp/plumb-pwned\"]",
    );
    assert!(exec.contains("exec:"), "{exec}");
    h.apply(secret("exec", json!({"value.yaml": exec}))).await;
    let token_file = remote.kubeconfig().replace(
        "  user: {}",
        "  user:\n    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
    );
    h.apply(secret("token-file", json!({"value": token_file})))
        .await;
    h.apply(secret(
        "garbage",
        json!({"value": "users:\n- name: x\n  user: {token: s3cr3t-token]\n"}),
    ))
    .await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    kustomization(
        &h,
        "remote",
        json!({"path": "./remote", "wait": true, "kubeConfig": {"secretRef": {"name": "remote"}}}),
    )
    .await;
    wait_ready(&h, "remote", "True", "ReconciliationSucceeded").await;
    let remote_cm = remote_cluster
        .get("v1", "ConfigMap", "team", "remote-cm")
        .await
        .expect("get")
        .expect("applied in the remote cluster");
    assert_eq!(
        str_at(&remote_cm, &["metadata", "labels", NAME_LABEL]),
        "remote"
    );
    assert!(
        h.cluster
            .get("v1", "Namespace", "", "team")
            .await
            .expect("get")
            .is_none(),
        "nothing in the controller's cluster"
    );

    // Bad input: each refused with the field named, nothing applied anywhere.
    let cases = [
        (
            "exec",
            json!({"secretRef": {"name": "exec"}}),
            "exec is not allowed",
        ),
        (
            "token-file",
            json!({"secretRef": {"name": "token-file"}}),
            "tokenFile is not allowed",
        ),
        (
            "no-secret",
            json!({"secretRef": {"name": "nope"}}),
            "secret 'flux-system/nope' not found",
        ),
        (
            "garbage",
            json!({"secretRef": {"name": "garbage"}}),
            "not a valid kubeconfig",
        ),
        (
            "no-key",
            json!({"secretRef": {"name": "remote", "key": "config"}}),
            "has no key 'config'",
        ),
    ];
    for (name, kube_config, _) in &cases {
        kustomization(
            &h,
            name,
            json!({"path": "./remote", "kubeConfig": kube_config}),
        )
        .await;
    }
    for (name, _, fragment) in &cases {
        let object = wait_for(&h, "Kustomization", name, "a refusal", |o| {
            ready(o).0 == "False"
        })
        .await;
        let (_, reason, message) = ready(&object);
        assert_eq!(reason, "ReconciliationFailed", "{name}: {message}");
        assert!(
            message.contains("spec.kubeConfig.secretRef") && message.contains(fragment),
            "{name}: {message}"
        );
        assert!(!message.contains("s3cr3t"), "{name}: {message}");
    }
    assert!(!Path::new("/tmp/plumb-pwned").exists(), "exec never ran");
    kustomization(
        &h,
        "workload-identity",
        json!({"path": "./remote", "kubeConfig": {"configMapRef": {"name": "aws"}}}),
    )
    .await;
    let stalled = wait_for(&h, "Kustomization", "workload-identity", "a refusal", |o| {
        ready(o).0 == "False"
    })
    .await;
    assert!(
        ready(&stalled).2.contains("kubeConfig.configMapRef"),
        "{stalled}"
    );

    // Deleting the Kustomization prunes in the remote cluster.
    h.cluster
        .delete(
            KUSTOMIZE_API_VERSION,
            "Kustomization",
            NS,
            "remote",
            plumb_kube::Propagation::Background,
        )
        .await
        .expect("delete");
    wait_for(&h, "Kustomization", "remote", "deletion", Value::is_null).await;
    assert!(
        remote_cluster
            .get("v1", "ConfigMap", "team", "remote-cm")
            .await
            .expect("get")
            .is_none(),
        "pruned in the remote cluster"
    );
}

/// `spec.serviceAccountName`: the Kustomization acts as its service account, so the
/// cluster's RBAC (the devcluster's, for impersonated requests) decides what it may change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_name_applies_with_the_accounts_rights_only() {
    let in_namespace = |namespace: &str, name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  a: \"1\"\n"
        )
    };
    let h = start(&[
        ("team/cm.yaml", &in_namespace("apps", "team-cm")),
        ("escalate/cm.yaml", &in_namespace("kube-system", "sneaky")),
    ])
    .await;
    h.apply(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "deployer", "namespace": NS}}))
        .await;
    h.apply(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "configmaps", "namespace": "apps"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]}),
    )
    .await;
    h.apply(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "deployer", "namespace": "apps"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmaps"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": NS}]}),
    )
    .await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    kustomization(
        &h,
        "team",
        json!({"path": "./team", "wait": true, "serviceAccountName": "deployer"}),
    )
    .await;
    kustomization(
        &h,
        "escalate",
        json!({"path": "./escalate", "serviceAccountName": "deployer"}),
    )
    .await;
    wait_ready(&h, "team", "True", "ReconciliationSucceeded").await;
    assert!(h.configmap("team-cm").await.is_some());

    let refused = wait_for(&h, "Kustomization", "escalate", "a refusal", |o| {
        ready(o).0 == "False" && ready(o).2.contains("forbidden")
    })
    .await;
    let message = ready(&refused).2;
    assert!(
        message.contains("forbidden")
            && message.contains("system:serviceaccount:flux-system:deployer")
            && message.contains("kube-system"),
        "{message}"
    );
    assert!(
        h.cluster
            .get("v1", "ConfigMap", "kube-system", "sneaky")
            .await
            .expect("get")
            .is_none(),
        "nothing applied with the controller's rights"
    );
    kustomization(
        &h,
        "bad-account",
        json!({"path": "./team", "serviceAccountName": "Not A Name"}),
    )
    .await;
    let message = wait_ready(&h, "bad-account", "False", "InvalidSpec").await;
    assert!(message.contains("spec.serviceAccountName"), "{message}");

    // Pruned as the account on deletion.
    h.cluster
        .delete(
            KUSTOMIZE_API_VERSION,
            "Kustomization",
            NS,
            "team",
            plumb_kube::Propagation::Background,
        )
        .await
        .expect("delete");
    wait_for(&h, "Kustomization", "team", "deletion", Value::is_null).await;
    assert!(h.configmap("team-cm").await.is_none(), "pruned");
}

/// The controller's lockdown flags (Flux's `--no-cross-namespace-refs` and
/// `--default-service-account`): a tenant cannot use another namespace's source, and a
/// Kustomization naming no service account acts as the default one, never as the controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockdown_blocks_cross_namespace_sources_and_impersonates_the_default_account() {
    let h = start_with(
        &[("team/cm.yaml", &cm("locked-cm", "1"))],
        Setup {
            flux_tenancy: plumb_engine::flux::Tenancy {
                cross_namespace_refs: plumb_engine::flux::CrossNamespaceRefs::Denied,
                default_service_account: Some("flux-applier".into()),
            },
            ..Setup::default()
        },
    )
    .await;
    h.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant"}}))
        .await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    h.apply(
        json!({"apiVersion": KUSTOMIZE_API_VERSION, "kind": "Kustomization",
        "metadata": {"name": "borrower", "namespace": "tenant"},
        "spec": {"interval": "1h", "path": "./team", "targetNamespace": "apps",
            "sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": NS}}}),
    )
    .await;
    kustomization(
        &h,
        "team",
        json!({"path": "./team", "targetNamespace": "apps"}),
    )
    .await;
    let borrower = h
        .wait_object(
            (KUSTOMIZE_API_VERSION, "Kustomization"),
            ("tenant", "borrower"),
            |o| ready(o).0 == "False",
        )
        .await;
    let (_, reason, message) = ready(&borrower);
    assert_eq!(reason, "AccessDenied", "{message}");
    assert!(
        message.contains(
            "can't access 'GitRepository/flux-system/repo', cross-namespace references have been blocked"
        ),
        "{message}"
    );
    // No RBAC for the default account yet: refused as that account.
    let refused = wait_for(
        &h,
        "Kustomization",
        "team",
        "a refusal as the account",
        |o| ready(o).2.contains("forbidden"),
    )
    .await;
    assert_eq!(ready(&refused).0, "False");
    assert!(
        ready(&refused)
            .2
            .contains("system:serviceaccount:flux-system:flux-applier"),
        "{refused}"
    );
    assert!(h.configmap("locked-cm").await.is_none());
    h.apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "flux-applier", "namespace": "apps"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit-configmaps"},
        "subjects": [{"kind": "ServiceAccount", "name": "flux-applier", "namespace": NS}]}))
        .await;
    h.apply(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "edit-configmaps"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]}),
    )
    .await;
    request_reconcile(&h, KUSTOMIZE_API_VERSION, "Kustomization", "team", "1").await;
    wait_ready(&h, "team", "True", "ReconciliationSucceeded").await;
    assert!(h.configmap("locked-cm").await.is_some());
}

/// Scale probe, not a correctness test: `cargo test -p plumb-engine --test flux -- --ignored
/// --nocapture many_kustomizations`. Prints how long N Kustomizations of one repository take to
/// become Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn many_kustomizations() {
    let count: usize = std::env::var("PLUMB_FLUX_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    // The controller's default: 16 workers, half of them for each Flux kind.
    let workers: usize = std::env::var("PLUMB_FLUX_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n";
    let h = start_with_workers(
        &[
        ("app/cm.yaml", &cm("settings", "1")),
        ("app/deploy.yaml", deployment),
        ("app/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n"),
        ],
        workers,
    )
    .await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    let started = Instant::now();
    for index in 0..count {
        kustomization(
            &h,
            &format!("app-{index}"),
            json!({"path": "./app", "targetNamespace": "apps", "namePrefix": format!("a{index}-")}),
        )
        .await;
    }
    let created = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let all = h
            .cluster
            .list(KUSTOMIZE_API_VERSION, "Kustomization", NS)
            .await
            .expect("list");
        let ready_count = all.iter().filter(|k| ready(k).0 == "True").count();
        if ready_count == count {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {ready_count}/{count} ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{count} Kustomizations (3 objects each), {workers} workers: Ready in {:.1}s (created in {:.1}s)",
        started.elapsed().as_secs_f64(),
        created.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_recreates_objects_whose_immutable_fields_changed() {
    let immutable = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  value: \"{value}\"\n"
        )
    };
    let h = start(&[("app/cm.yaml", &immutable("1"))]).await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    kustomization(
        &h,
        "app",
        json!({"path": "./app", "targetNamespace": "apps"}),
    )
    .await;
    wait_ready(&h, "app", "True", "ReconciliationSucceeded").await;
    h.commit(&[("app/cm.yaml", &immutable("2"))], "change a frozen value");
    request_reconcile(&h, SOURCE_API_VERSION, "GitRepository", "repo", "1").await;
    let message = wait_ready(&h, "app", "False", "ReconciliationFailed").await;
    assert!(
        message.contains("ConfigMap/apps/frozen") && message.contains("immutable"),
        "{message}"
    );
    assert_eq!(
        h.configmap("frozen").await.expect("kept")["data"]["value"],
        "1"
    );
    kustomization(
        &h,
        "app",
        json!({"path": "./app", "targetNamespace": "apps", "force": true}),
    )
    .await;
    wait_ready(&h, "app", "True", "ReconciliationSucceeded").await;
    assert_eq!(
        h.configmap("frozen").await.expect("recreated")["data"]["value"],
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_name_and_commit_references_and_their_revision_strings() {
    let h = start(&[("app/cm.yaml", &cm("version", "1"))]).await;
    let first = git(&h.repo, &["rev-parse", "HEAD"]);
    git(&h.repo, &["tag", "v1"]);
    let second = h.commit(&[("app/cm.yaml", &cm("version", "2"))], "two");
    git(&h.repo, &["branch", "release"]);
    for (name, reference, expected) in [
        ("by-tag", json!({"tag": "v1"}), format!("v1@sha1:{first}")),
        (
            "by-name",
            json!({"name": "refs/heads/release"}),
            format!("refs/heads/release@sha1:{second}"),
        ),
        (
            "by-commit",
            json!({"commit": first}),
            format!("sha1:{first}"),
        ),
        (
            "by-commit-on-branch",
            json!({"commit": first, "branch": "main"}),
            format!("main@sha1:{first}"),
        ),
    ] {
        git_repository(&h, name, reference).await;
        wait_for(&h, "GitRepository", name, &expected, |o| {
            str_at(o, &["status", "artifact", "revision"]) == expected
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_kustomization_applies_nothing_new() {
    let h = start(&[("app/cm.yaml", &cm("settings", "1"))]).await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    kustomization(
        &h,
        "app",
        json!({"path": "./app", "targetNamespace": "apps"}),
    )
    .await;
    wait_ready(&h, "app", "True", "ReconciliationSucceeded").await;
    kustomization(
        &h,
        "app",
        json!({"path": "./app", "targetNamespace": "apps", "suspend": true}),
    )
    .await;
    let second = h.commit(&[("app/cm.yaml", &cm("settings", "2"))], "two");
    request_reconcile(&h, SOURCE_API_VERSION, "GitRepository", "repo", "1").await;
    wait_for(&h, "GitRepository", "repo", "new artifact", |o| {
        str_at(o, &["status", "artifact", "revision"]).ends_with(&second)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        h.configmap("settings").await.expect("applied")["data"]["value"],
        "1",
        "suspended: the new revision is not applied"
    );
    kustomization(
        &h,
        "app",
        json!({"path": "./app", "targetNamespace": "apps"}),
    )
    .await;
    let revision = format!("main@sha1:{second}");
    wait_for(&h, "Kustomization", "app", "resumed", |o| {
        str_at(o, &["status", "lastAppliedRevision"]) == revision
    })
    .await;
    assert_eq!(
        h.configmap("settings").await.expect("applied")["data"]["value"],
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_keep_the_failure_status() {
    let h = start(&[("good/cm.yaml", &cm("good", "1"))]).await;
    git_repository(&h, "repo", json!({"branch": "main"})).await;
    kustomization(
        &h,
        "retrying",
        json!({"path": "./nowhere", "retryInterval": "1s"}),
    )
    .await;
    wait_ready(&h, "retrying", "False", "BuildFailed").await;
    // Several retries later the failure is still what the status says.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let ks = get(&h, KUSTOMIZE_API_VERSION, "Kustomization", "retrying").await;
    assert_eq!(ready(&ks).1, "BuildFailed", "{ks}");
}
