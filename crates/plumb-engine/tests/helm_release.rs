//! Flux HelmRepository + HelmRelease end to end: a loopback chart repository serving the
//! podinfo chart, install, upgrade, prune, uninstall, Helm's release records, bad input.

mod common;

use common::Harness;
use common::charts::{chart_version, package, podinfo_chart, repository};
use plumb_core::key::str_at;
use plumb_engine::flux::{HELM_API_VERSION, SOURCE_API_VERSION};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const NS: &str = "apps";

async fn start() -> Harness {
    let h = Harness::start(&[("unused/README.md", "x")]).await;
    for (api_version, kind) in [
        (SOURCE_API_VERSION, "HelmRepository"),
        (HELM_API_VERSION, "HelmRelease"),
    ] {
        plumb_engine::crds::wait_established(&h.cluster, api_version, kind)
            .await
            .expect("Flux CRDs installed");
    }
    h
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

async fn get(h: &Harness, api_version: &str, kind: &str, name: &str) -> Option<Value> {
    h.cluster
        .get(api_version, kind, NS, name)
        .await
        .expect("get")
}

/// Waits until the HelmRelease `name` satisfies `check`.
async fn wait_release(
    h: &Harness,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let object = get(h, HELM_API_VERSION, "HelmRelease", name)
            .await
            .unwrap_or(Value::Null);
        if check(&object) {
            return object;
        }
        assert!(
            Instant::now() < deadline,
            "HelmRelease {name}: timed out waiting for {what}; status: {}",
            object.get("status").unwrap_or(&Value::Null)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_gone(h: &Harness, api_version: &str, kind: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(h, api_version, kind, name).await.is_some() {
        assert!(Instant::now() < deadline, "{kind} {name} still exists");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn helm_repository(h: &Harness, name: &str, url: &str) {
    h.apply(json!({
        "apiVersion": SOURCE_API_VERSION, "kind": "HelmRepository",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"url": url, "interval": "1h"}
    }))
    .await;
}

async fn helm_release(h: &Harness, name: &str, spec: Value) {
    let mut full = json!({"interval": "1h",
        "chart": {"spec": {"chart": "podinfo", "version": ">=1.0.0",
            "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}});
    for (key, value) in spec.as_object().cloned().unwrap_or_default() {
        full[key] = value;
    }
    h.apply(json!({
        "apiVersion": HELM_API_VERSION, "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": NS},
        "spec": full
    }))
    .await;
}

fn env_value(deployment: &Value, name: &str) -> String {
    deployment
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .and_then(|env| env.iter().find(|e| str_at(e, &["name"]) == name))
        .map(|e| str_at(e, &["value"]).to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_release_installs_upgrades_prunes_and_uninstalls() {
    let version = chart_version(&podinfo_chart());
    let url = repository(vec![(
        "podinfo".into(),
        version.clone(),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;
    let repo = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let object = get(&h, SOURCE_API_VERSION, "HelmRepository", "podinfo")
                .await
                .unwrap_or(Value::Null);
            if ready(&object).0 == "True" {
                break object;
            }
            assert!(
                Instant::now() < deadline,
                "HelmRepository not ready: {object}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(
        str_at(&repo, &["status", "artifact", "revision"]).starts_with("sha256:"),
        "{repo}"
    );

    // Install, with values from a ConfigMap under spec.values.
    h.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "podinfo-values", "namespace": NS},
        "data": {"values.yaml": "ui:\n  color: \"#ff0000\"\n  message: from-configmap\nreplicaCount: 3\n"}}))
        .await;
    helm_release(
        &h,
        "podinfo",
        json!({"valuesFrom": [{"kind": "ConfigMap", "name": "podinfo-values"}],
            "values": {"replicaCount": 2}}),
    )
    .await;
    let installed = wait_release(&h, "podinfo", "an install", |o| {
        ready(o).0 == "True" && ready(o).1 == "InstallSucceeded"
    })
    .await;
    assert_eq!(
        ready(&installed).2,
        format!("Helm install succeeded for release {NS}/podinfo.v1 with chart podinfo@{version}")
    );
    assert_eq!(
        str_at(&installed, &["status", "lastAttemptedRevision"]),
        version
    );
    assert_eq!(
        str_at(&installed, &["status", "lastAttemptedReleaseAction"]),
        "install"
    );
    assert_eq!(
        installed.pointer("/status/history/0/chartVersion"),
        Some(&json!(version))
    );
    assert_eq!(
        installed.pointer("/status/history/0/status"),
        Some(&json!("deployed"))
    );
    let deployment = get(&h, "apps/v1", "Deployment", "podinfo")
        .await
        .expect("the chart's Deployment");
    assert_eq!(
        deployment.pointer("/spec/replicas"),
        Some(&json!(2)),
        "values win over valuesFrom"
    );
    assert_eq!(env_value(&deployment, "PODINFO_UI_COLOR"), "#ff0000");
    assert_eq!(
        str_at(
            &deployment,
            &["metadata", "labels", "helm.toolkit.fluxcd.io/name"]
        ),
        "podinfo"
    );
    assert_eq!(
        str_at(
            &deployment,
            &["metadata", "annotations", "meta.helm.sh/release-name"]
        ),
        "podinfo"
    );
    let record = get(&h, "v1", "Secret", "sh.helm.release.v1.podinfo.v1")
        .await
        .expect("Helm's release record");
    assert_eq!(str_at(&record, &["type"]), "helm.sh/release.v1");
    assert_eq!(
        str_at(&record, &["metadata", "labels", "status"]),
        "deployed"
    );

    // Upgrade: a HorizontalPodAutoscaler appears.
    helm_release(&h, "podinfo", json!({"values": {"hpa": {"enabled": true}}})).await;
    let upgraded = wait_release(&h, "podinfo", "an upgrade", |o| {
        ready(o).1 == "UpgradeSucceeded"
    })
    .await;
    assert!(ready(&upgraded).2.contains("podinfo.v2"), "{upgraded}");
    assert!(
        get(&h, "autoscaling/v2", "HorizontalPodAutoscaler", "podinfo")
            .await
            .is_some()
    );
    let first = get(&h, "v1", "Secret", "sh.helm.release.v1.podinfo.v1")
        .await
        .expect("first record kept");
    assert_eq!(
        str_at(&first, &["metadata", "labels", "status"]),
        "superseded"
    );
    assert_eq!(
        upgraded.pointer("/status/history/1/status"),
        Some(&json!("superseded"))
    );

    // The chart no longer renders the HPA: it is pruned.
    helm_release(
        &h,
        "podinfo",
        json!({"values": {"hpa": {"enabled": false}}}),
    )
    .await;
    wait_release(&h, "podinfo", "a second upgrade", |o| {
        ready(o).2.contains("podinfo.v3")
    })
    .await;
    wait_gone(&h, "autoscaling/v2", "HorizontalPodAutoscaler", "podinfo").await;

    // Uninstall: objects and records go; nothing else does.
    h.cluster
        .delete(
            HELM_API_VERSION,
            "HelmRelease",
            NS,
            "podinfo",
            plumb_kube::Propagation::Background,
        )
        .await
        .expect("delete");
    wait_gone(&h, HELM_API_VERSION, "HelmRelease", "podinfo").await;
    wait_gone(&h, "apps/v1", "Deployment", "podinfo").await;
    wait_gone(&h, "v1", "Secret", "sh.helm.release.v1.podinfo.v3").await;
    assert!(get(&h, "v1", "ConfigMap", "podinfo-values").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_helm_releases_say_what_is_wrong() {
    let version = chart_version(&podinfo_chart());
    let url = repository(vec![(
        "podinfo".into(),
        version.clone(),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;

    // No such repository.
    helm_release(
        &h,
        "no-repo",
        json!({"chart": {"spec": {"chart": "podinfo",
            "sourceRef": {"kind": "HelmRepository", "name": "missing"}}}}),
    )
    .await;
    let object = wait_release(&h, "no-repo", "ArtifactFailed", |o| {
        ready(o).1 == "ArtifactFailed"
    })
    .await;
    assert!(
        ready(&object)
            .2
            .contains("HelmRepository 'apps/missing' not found"),
        "{object}"
    );

    // No version matches.
    helm_release(
        &h,
        "too-new",
        json!({"chart": {"spec": {"chart": "podinfo", "version": ">=99",
            "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}}),
    )
    .await;
    let object = wait_release(&h, "too-new", "ArtifactFailed naming the range", |o| {
        ready(o).1 == "ArtifactFailed" && ready(o).2.contains(">=99")
    })
    .await;
    assert!(ready(&object).2.contains("podinfo"), "{object}");

    // A missing valuesFrom object, not optional.
    helm_release(
        &h,
        "no-values",
        json!({"valuesFrom": [{"kind": "Secret", "name": "absent"}]}),
    )
    .await;
    let object = wait_release(&h, "no-values", "InitFailed", |o| {
        ready(o).1 == "InitFailed"
    })
    .await;
    assert!(
        ready(&object).2.contains("spec.valuesFrom[0]") && ready(&object).2.contains("apps/absent"),
        "{object}"
    );
    assert!(
        get(&h, "v1", "Secret", "sh.helm.release.v1.no-values.v1")
            .await
            .is_none()
    );

    // A chartRef to a HelmChart is not supported yet (OCIRepository is): stalled, with the
    // field named.
    h.apply(json!({
        "apiVersion": HELM_API_VERSION, "kind": "HelmRelease",
        "metadata": {"name": "chart-ref", "namespace": NS},
        "spec": {"interval": "1h", "chartRef": {"kind": "HelmChart", "name": "podinfo"}}
    }))
    .await;
    let object = wait_release(&h, "chart-ref", "InvalidSpec", |o| {
        ready(o).1 == "InvalidSpec"
    })
    .await;
    assert!(ready(&object).2.contains("spec.chartRef.kind"), "{object}");

    // A chart that fails to apply: nothing applied, the failure counted, then stalled.
    helm_release(&h, "bad-apply", json!({"values": {"replicaCount": "many"}})).await;
    let object = wait_release(&h, "bad-apply", "a failed install", |o| {
        ready(o).1 == "InstallFailed" || ready(o).1 == "RetriesExceeded"
    })
    .await;
    assert_eq!(
        object.pointer("/status/installFailures"),
        Some(&json!(1)),
        "{object}"
    );
    assert!(
        get(&h, "apps/v1", "Deployment", "bad-apply-podinfo")
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_hooks_run_around_the_release() {
    let version = chart_version(&podinfo_chart());
    let url = repository(vec![(
        "podinfo".into(),
        version.clone(),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;
    // podinfo's own test hooks: a pre-install Job kept (before-hook-creation) and a
    // post-install Job deleted once it succeeded.
    helm_release(
        &h,
        "hooked",
        json!({"values": {"hooks": {
            "preInstall": {"job": {"enabled": true, "hookDeletePolicy": "before-hook-creation"}},
            "postInstall": {"job": {"enabled": true, "hookDeletePolicy": "hook-succeeded"}}}}}),
    )
    .await;
    wait_release(&h, "hooked", "an install", |o| {
        ready(o).1 == "InstallSucceeded"
    })
    .await;
    let job = get(&h, "batch/v1", "Job", "hooked-podinfo-pre-install")
        .await
        .expect("the pre-install hook ran and was kept");
    let completed = str_at(&job, &["status", "completionTime"]).to_string();
    assert!(!completed.is_empty(), "{job}");
    let deployment = get(&h, "apps/v1", "Deployment", "hooked-podinfo")
        .await
        .expect("Deployment");
    assert!(
        completed.as_str() <= str_at(&deployment, &["metadata", "creationTimestamp"]),
        "the pre-install hook finished before the release's objects were created"
    );
    assert!(
        get(&h, "batch/v1", "Job", "hooked-podinfo-post-install")
            .await
            .is_none(),
        "hook-succeeded deletes the post-install hook"
    );
    // A reconcile that changes nothing runs no hook: the kept Job is the same object.
    let uid = str_at(&job, &["metadata", "uid"]).to_string();
    h.cluster
        .merge_patch(
            HELM_API_VERSION,
            "HelmRelease",
            NS,
            "hooked",
            &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}}),
        )
        .await
        .expect("request a reconcile");
    wait_release(&h, "hooked", "the requested reconcile", |o| {
        str_at(o, &["status", "lastHandledReconcileAt"]) == "now"
    })
    .await;
    let again = get(&h, "batch/v1", "Job", "hooked-podinfo-pre-install")
        .await
        .expect("kept");
    assert_eq!(str_at(&again, &["metadata", "uid"]), uid);
}

/// Requests a reconcile and waits until it has been handled.
async fn reconcile_now(h: &Harness, name: &str, token: &str) -> Value {
    h.cluster
        .merge_patch(
            HELM_API_VERSION,
            "HelmRelease",
            NS,
            name,
            &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        )
        .await
        .expect("request a reconcile");
    wait_release(h, name, "the requested reconcile", |o| {
        str_at(o, &["status", "lastHandledReconcileAt"]) == token
    })
    .await
}

async fn events(h: &Harness, reason: &str) -> Vec<String> {
    h.cluster
        .list("v1", "Event", NS)
        .await
        .expect("events")
        .iter()
        .filter(|e| str_at(e, &["reason"]) == reason)
        .map(|e| str_at(e, &["message"]).to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_detection_modes_leave_warn_about_or_correct_hand_edits() {
    let version = chart_version(&podinfo_chart());
    let url = repository(vec![(
        "podinfo".into(),
        version.clone(),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;
    let installed = |o: &Value| ready(o).0 == "True" && ready(o).1 == "InstallSucceeded";
    helm_release(&h, "quiet", json!({})).await;
    helm_release(&h, "warned", json!({"driftDetection": {"mode": "warn"}})).await;
    helm_release(
        &h,
        "fixed",
        json!({"driftDetection": {"mode": "enabled", "ignore": [
            {"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}]}}),
    )
    .await;
    for name in ["quiet", "warned", "fixed"] {
        wait_release(&h, name, "an install", installed).await;
    }
    // By hand: a Service deleted, the Deployment scaled and one of its chart's labels changed.
    for name in ["quiet", "warned", "fixed"] {
        let release = format!("{name}-podinfo");
        h.cluster
            .delete(
                "v1",
                "Service",
                NS,
                &release,
                plumb_kube::Propagation::Background,
            )
            .await
            .expect("delete service");
        h.cluster
            .merge_patch(
                "apps/v1",
                "Deployment",
                NS,
                &release,
                &json!({"metadata": {"labels": {"app.kubernetes.io/version": "by-hand"}},
                    "spec": {"replicas": 5}}),
            )
            .await
            .expect("edit deployment");
    }
    for name in ["quiet", "warned", "fixed"] {
        let after = reconcile_now(&h, name, &format!("{name}-1")).await;
        assert_eq!(ready(&after).0, "True", "{name}: {after}");
        assert_eq!(ready(&after).1, "InstallSucceeded", "{name}");
        assert_eq!(
            after
                .pointer("/status/history")
                .and_then(Value::as_array)
                .map(Vec::len),
            Some(1),
            "{name}: no new release is recorded"
        );
    }
    let deployment = |name: &str| {
        let h = &h;
        let release = format!("{name}-podinfo");
        async move {
            get(h, "apps/v1", "Deployment", &release)
                .await
                .expect("deployment")
        }
    };
    let edited =
        |d: &Value| str_at(d, &["metadata", "labels", "app.kubernetes.io/version"]) == "by-hand";
    // disabled (the default): left as it is.
    assert!(get(&h, "v1", "Service", "quiet-podinfo").await.is_none());
    assert!(edited(&deployment("quiet").await));
    // warn: left as it is, and said.
    assert!(get(&h, "v1", "Service", "warned-podinfo").await.is_none());
    assert!(edited(&deployment("warned").await));
    let warned = events(&h, "DriftDetected").await;
    assert!(
        warned
            .iter()
            .any(|m| m.contains(&format!("release {NS}/warned.v1"))
                && m.contains(&format!("Service {NS}/warned-podinfo missing"))
                && m.contains(&format!("Deployment {NS}/warned-podinfo changed"))),
        "{warned:?}"
    );
    // enabled: corrected, except the ignored replicas.
    assert!(get(&h, "v1", "Service", "fixed-podinfo").await.is_some());
    let fixed = deployment("fixed").await;
    assert!(!edited(&fixed), "{fixed}");
    assert_eq!(
        fixed.pointer("/spec/replicas"),
        Some(&json!(5)),
        "ignored path kept"
    );
    let corrected = events(&h, "DriftCorrected").await;
    assert!(
        corrected
            .iter()
            .any(|m| m.contains(&format!("release {NS}/fixed.v1 has been corrected"))),
        "{corrected:?}"
    );
    assert!(
        events(&h, "DriftDetected")
            .await
            .iter()
            .all(|m| !m.contains("fixed"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_drift_detection_mode_is_named() {
    let h = start().await;
    helm_release(&h, "odd", json!({"driftDetection": {"mode": "sometimes"}})).await;
    let stalled = wait_release(&h, "odd", "a refusal", |o| ready(o).0 == "False").await;
    assert!(
        ready(&stalled).2.contains("driftDetection.mode"),
        "{stalled}"
    );
}

fn records_by_version(secrets: &[Value], release: &str) -> Vec<(u64, String)> {
    let mut found: Vec<(u64, String)> = secrets
        .iter()
        .filter(|s| str_at(s, &["metadata", "labels", "name"]) == release)
        .filter(|s| str_at(s, &["metadata", "labels", "owner"]) == "helm")
        .map(|s| {
            (
                str_at(s, &["metadata", "labels", "version"])
                    .parse()
                    .unwrap_or(0),
                str_at(s, &["metadata", "labels", "status"]).to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

fn condition_of(object: &Value, kind: &str) -> (String, String, String) {
    let condition = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == kind))
        .cloned()
        .unwrap_or(Value::Null);
    (
        str_at(&condition, &["status"]).to_string(),
        str_at(&condition, &["reason"]).to_string(),
        str_at(&condition, &["message"]).to_string(),
    )
}

async fn image_of(h: &Harness, deployment: &str) -> String {
    let deployment = get(h, "apps/v1", "Deployment", deployment)
        .await
        .expect("deployment");
    let image = deployment
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    assert!(!image.is_empty(), "{deployment}");
    image
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upgrade_is_rolled_back_between_retries_then_stalls() {
    let version = chart_version(&podinfo_chart());
    let url = repository(vec![(
        "podinfo".into(),
        version.clone(),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;
    let spec = |image: &str| {
        json!({"interval": "2s", "timeout": "3s",
            "upgrade": {"remediation": {"retries": 1}},
            "values": {"image": {"repository": image}}})
    };
    helm_release(&h, "web", spec("ghcr.io/stefanprodan/podinfo")).await;
    wait_release(&h, "web", "an install", |o| ready(o).0 == "True").await;
    let good = image_of(&h, "web-podinfo").await;
    assert!(good.starts_with("ghcr.io/stefanprodan/podinfo"), "{good}");
    // An image that never pulls: the upgrade's wait fails.
    helm_release(&h, "web", spec("example.com/fail-pull")).await;
    let remediated = wait_release(&h, "web", "a rollback", |o| {
        condition_of(o, "Remediated").1 == "RollbackSucceeded"
    })
    .await;
    assert_eq!(
        condition_of(&remediated, "Remediated").2,
        format!(
            "Helm rollback to previous release {NS}/web.v1 with chart podinfo@{version} succeeded"
        )
    );
    // The retry fails too; the last failure is remediated (retries > 0), then it stalls.
    let stalled = wait_release(&h, "web", "RetriesExceeded", |o| {
        ready(o).1 == "RetriesExceeded"
    })
    .await;
    assert_eq!(
        stalled.pointer("/status/upgradeFailures"),
        Some(&json!(2)),
        "{stalled}"
    );
    assert_eq!(condition_of(&stalled, "Stalled").0, "True");
    assert_eq!(image_of(&h, "web-podinfo").await, good);
    let secrets = h.cluster.list("v1", "Secret", NS).await.expect("secrets");
    let records = records_by_version(&secrets, "web");
    let statuses: Vec<&str> = records.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "superseded",
            "superseded",
            "superseded",
            "superseded",
            "deployed"
        ],
        "{records:?}"
    );
    let history = stalled
        .pointer("/status/history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert_eq!(history[0]["version"], json!(5), "{history:?}");
    assert_eq!(history[0]["status"], json!("deployed"));
}

/// `upgrade.strategy.name: RetryOnFailure`: a failed upgrade is not remediated and is tried
/// again every `retryInterval`, beyond the remediation retries, without stalling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_on_failure_retries_without_remediation() {
    let version = chart_version(&podinfo_chart());
    let url = repository(vec![(
        "podinfo".into(),
        version,
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;
    let spec = |image: &str| {
        json!({"interval": "1h", "timeout": "2s",
            "upgrade": {"remediation": {"retries": 1},
                "strategy": {"name": "RetryOnFailure", "retryInterval": "1s"}},
            "values": {"image": {"repository": image}}})
    };
    helm_release(&h, "web", spec("ghcr.io/stefanprodan/podinfo")).await;
    wait_release(&h, "web", "an install", |o| ready(o).0 == "True").await;
    helm_release(&h, "web", spec("example.com/fail-pull")).await;
    let retried = wait_release(&h, "web", "three failed upgrades", |o| {
        o.pointer("/status/upgradeFailures")
            .and_then(Value::as_i64)
            .is_some_and(|n| n >= 3)
    })
    .await;
    assert!(
        condition_of(&retried, "Remediated").0.is_empty(),
        "no remediation: {retried}"
    );
    assert_ne!(ready(&retried).1, "RetriesExceeded", "{retried}");
    assert_eq!(condition_of(&retried, "Stalled").0, "", "{retried}");
    // A bad strategy name is refused.
    helm_release(
        &h,
        "bad-strategy",
        json!({"upgrade": {"strategy": {"name": "Sometimes"}}}),
    )
    .await;
    let stalled = wait_release(&h, "bad-strategy", "InvalidSpec", |o| {
        ready(o).1 == "InvalidSpec"
    })
    .await;
    assert!(
        ready(&stalled).2.contains("spec.upgrade.strategy.name"),
        "{stalled}"
    );
}

/// `upgrade.remediation.strategy: uninstall`: a failed upgrade uninstalls the release
/// (objects and records), so the next attempt is an install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upgrade_is_uninstalled_with_the_uninstall_strategy() {
    let version = chart_version(&podinfo_chart());
    let url = repository(vec![(
        "podinfo".into(),
        version.clone(),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;
    let spec = |image: &str| {
        json!({"interval": "1h", "timeout": "3s",
            "upgrade": {"remediation": {"retries": 1, "strategy": "uninstall"}},
            "values": {"image": {"repository": image}}})
    };
    helm_release(&h, "web", spec("ghcr.io/stefanprodan/podinfo")).await;
    let installed = wait_release(&h, "web", "an install", |o| ready(o).0 == "True").await;
    assert!(
        installed
            .pointer("/status/conditions")
            .is_some_and(|c| !c.to_string().contains("FieldsNotActedOn")),
        "the strategy is acted on: {installed}"
    );
    // An image that never pulls: the upgrade's wait fails, and the release is uninstalled.
    helm_release(&h, "web", spec("example.com/fail-pull")).await;
    let remediated = wait_release(&h, "web", "an uninstall", |o| {
        condition_of(o, "Remediated").1 == "UninstallSucceeded"
    })
    .await;
    assert_eq!(condition_of(&remediated, "Remediated").0, "True");
    assert!(
        condition_of(&remediated, "Remediated")
            .2
            .contains(&format!("Helm uninstall for release {NS}/web.v2")),
        "{remediated}"
    );
    assert_eq!(ready(&remediated).0, "False");
    // The records of v1 and v2 are gone (a retry installs afresh, as v1).
    let secrets = h.cluster.list("v1", "Secret", NS).await.expect("secrets");
    let records = records_by_version(&secrets, "web");
    assert!(
        records.iter().all(|(version, _)| *version == 1) && records.len() <= 1,
        "{records:?}"
    );
    assert_eq!(
        remediated.pointer("/status/upgradeFailures"),
        Some(&json!(1)),
        "{remediated}"
    );
}

/// `spec.uninstall.keepHistory`: deleting the HelmRelease uninstalls the objects and keeps
/// the release records, the latest marked `uninstalled` (as `helm uninstall --keep-history`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_keep_history_keeps_the_records() {
    let url = repository(vec![(
        "podinfo".into(),
        chart_version(&podinfo_chart()),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;
    helm_release(
        &h,
        "kept",
        json!({"uninstall": {"keepHistory": true, "disableHooks": true, "timeout": "30s"}}),
    )
    .await;
    let installed = wait_release(&h, "kept", "an install", |o| ready(o).0 == "True").await;
    assert!(
        !installed.to_string().contains("spec.uninstall"),
        "spec.uninstall is acted on: {installed}"
    );
    h.cluster
        .delete(
            HELM_API_VERSION,
            "HelmRelease",
            NS,
            "kept",
            plumb_kube::Propagation::Background,
        )
        .await
        .expect("delete");
    wait_gone(&h, HELM_API_VERSION, "HelmRelease", "kept").await;
    assert!(
        get(&h, "apps/v1", "Deployment", "kept-podinfo")
            .await
            .is_none()
    );
    let secrets = h.cluster.list("v1", "Secret", NS).await.expect("secrets");
    assert_eq!(
        records_by_version(&secrets, "kept"),
        [(1, "uninstalled".to_string())]
    );
}

/// A chart of one ConfigMap and two test hooks (Pods); `testImage` decides whether `check`
/// passes on the embedded cluster (`fail-job` images fail).
fn chart_with_tests() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tmp");
    let write = |path: &str, text: &str| {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("dir");
        std::fs::write(file, text).expect("write");
    };
    write(
        "Chart.yaml",
        "apiVersion: v2\nname: tested\nversion: 0.1.0\n",
    );
    write("values.yaml", "testImage: busybox\n");
    write(
        "templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  a: \"1\"\n",
    );
    let test_pod = |name: &str, image: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{{{ .Release.Name }}}}-{name}\n  annotations:\n    helm.sh/hook: test\n    helm.sh/hook-delete-policy: before-hook-creation\nspec:\n  restartPolicy: Never\n  containers:\n  - name: check\n    image: {image}\n"
        )
    };
    write(
        "templates/tests/check.yaml",
        &test_pod("check", "{{ .Values.testImage }}"),
    );
    write(
        "templates/tests/broken.yaml",
        &test_pod("broken", "example.com/fail-job"),
    );
    package(dir.path(), "tested")
}

/// `spec.test`: Helm's test hooks run after a release that changed something; a failure
/// fails the release (`TestFailed`, `Released` stays true) unless ignored; filters pick tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_tests_run_after_a_release_and_decide_readiness() {
    let url = repository(vec![("tested".into(), "0.1.0".into(), chart_with_tests())]);
    let h = start().await;
    helm_repository(&h, "tested", &url).await;
    let release = |name: &str, test: Value, image: &str| {
        json!({"apiVersion": HELM_API_VERSION, "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"interval": "1h", "timeout": "10s", "test": test,
                "chart": {"spec": {"chart": "tested",
                    "sourceRef": {"kind": "HelmRepository", "name": "tested"}}},
                "values": {"testImage": image}}})
    };
    let only_check = json!({"enable": true, "timeout": "3s", "filters": [{"name": "strict-broken", "exclude": true}]});
    h.apply(release("strict", only_check.clone(), "busybox"))
        .await;
    let passed = wait_release(&h, "strict", "tests passed", |o| ready(o).0 == "True").await;
    let (status, reason, message) = condition_of(&passed, "TestSuccess");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "TestSucceeded"),
        "{passed}"
    );
    assert!(
        message.contains("1 test hooks completed successfully"),
        "{message}"
    );
    assert!(
        get(&h, "v1", "Pod", "strict-check").await.is_some(),
        "the test pod ran"
    );
    assert!(
        get(&h, "v1", "Pod", "strict-broken").await.is_none(),
        "an excluded test does not run"
    );

    // An upgrade whose test fails: Ready=False/TestFailed, the release itself succeeded.
    h.apply(release("strict", only_check, "example.com/fail-job"))
        .await;
    let failed = wait_release(&h, "strict", "a failed test", |o| {
        ready(o).1 == "TestFailed"
    })
    .await;
    assert_eq!(ready(&failed).0, "False");
    assert_eq!(condition_of(&failed, "TestSuccess").0, "False");
    assert_eq!(condition_of(&failed, "Released").0, "True", "{failed}");
    assert_eq!(failed.pointer("/status/upgradeFailures"), Some(&json!(1)));

    // ignoreFailures: the failed test is reported, the release stays ready.
    h.apply(release(
        "lenient",
        json!({"enable": true, "ignoreFailures": true, "timeout": "3s"}),
        "busybox",
    ))
    .await;
    let lenient = wait_release(&h, "lenient", "an install with a failed test", |o| {
        condition_of(o, "TestSuccess").0 == "False"
    })
    .await;
    assert_eq!(ready(&lenient).0, "True", "{lenient}");
    assert!(
        condition_of(&lenient, "TestSuccess")
            .2
            .contains("lenient-broken"),
        "{lenient}"
    );

    // Without test.enable no test runs.
    h.apply(release("untested", json!({}), "busybox")).await;
    let untested = wait_release(&h, "untested", "an install", |o| ready(o).0 == "True").await;
    assert!(
        condition_of(&untested, "TestSuccess").0.is_empty(),
        "{untested}"
    );
    assert!(get(&h, "v1", "Pod", "untested-check").await.is_none());
}

/// `spec.postRenderers` (Kustomize patches and images) and `spec.commonMetadata` change what
/// is installed and recorded; changing them is an upgrade; a patch that cannot apply fails
/// the release with the field named and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_renderers_and_common_metadata_shape_the_release() {
    let url = repository(vec![(
        "podinfo".into(),
        chart_version(&podinfo_chart()),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;
    let renderers = |tag: &str| {
        json!([{"kustomize": {
            "patches": [{"target": {"kind": "Deployment", "name": "podinfo"},
                "patch": "- op: add\n  path: /spec/template/metadata/labels/patched\n  value: \"yes\""}],
            "images": [{"name": "ghcr.io/stefanprodan/podinfo", "newName": "registry.example.com/podinfo", "newTag": tag}]}}])
    };
    helm_release(
        &h,
        "podinfo",
        json!({"postRenderers": renderers("6.0.0"),
            "commonMetadata": {"labels": {"team": "platform"}, "annotations": {"owner": "sre"}}}),
    )
    .await;
    let installed = wait_release(&h, "podinfo", "an install", |o| {
        ready(o).0 == "True" && ready(o).1 == "InstallSucceeded"
    })
    .await;
    assert!(
        str_at(&installed, &["status", "observedPostRenderersDigest"]).starts_with("sha256:"),
        "{installed}"
    );
    let deployment = get(&h, "apps/v1", "Deployment", "podinfo")
        .await
        .expect("installed");
    assert_eq!(
        str_at(
            &deployment,
            &["spec", "template", "metadata", "labels", "patched"]
        ),
        "yes"
    );
    assert_eq!(
        deployment.pointer("/spec/template/spec/containers/0/image"),
        Some(&json!("registry.example.com/podinfo:6.0.0"))
    );
    assert_eq!(
        str_at(&deployment, &["metadata", "labels", "team"]),
        "platform"
    );
    let service = get(&h, "v1", "Service", "podinfo").await.expect("service");
    assert_eq!(
        str_at(&service, &["metadata", "annotations", "owner"]),
        "sre"
    );
    let record = get(&h, "v1", "Secret", "sh.helm.release.v1.podinfo.v1")
        .await
        .expect("the release record");
    assert!(record.is_object());

    // A new image tag in the post-renderer is an upgrade (release v2).
    h.cluster
        .merge_patch(
            HELM_API_VERSION,
            "HelmRelease",
            NS,
            "podinfo",
            &json!({"spec": {"postRenderers": renderers("6.1.0")}}),
        )
        .await
        .expect("patch");
    wait_release(&h, "podinfo", "an upgrade", |o| {
        ready(o).0 == "True" && ready(o).1 == "UpgradeSucceeded"
    })
    .await;
    let deployment = get(&h, "apps/v1", "Deployment", "podinfo")
        .await
        .expect("upgraded");
    assert_eq!(
        deployment.pointer("/spec/template/spec/containers/0/image"),
        Some(&json!("registry.example.com/podinfo:6.1.0"))
    );
    assert!(
        get(&h, "v1", "Secret", "sh.helm.release.v1.podinfo.v2")
            .await
            .is_some()
    );

    // A patch that cannot apply: the upgrade fails naming the field; nothing changes.
    h.cluster
        .merge_patch(
            HELM_API_VERSION,
            "HelmRelease",
            NS,
            "podinfo",
            &json!({"spec": {"postRenderers": [{"kustomize": {"patches": [
                {"target": {"kind": "Deployment"},
                 "patch": "- op: replace\n  path: /spec/nothing/here\n  value: 1"}]}}]}}),
        )
        .await
        .expect("patch");
    let failed = wait_release(&h, "podinfo", "a failed upgrade", |o| ready(o).0 == "False").await;
    let (_, reason, message) = ready(&failed);
    assert_eq!(reason, "UpgradeFailed", "{message}");
    assert!(message.contains("spec.postRenderers[0]"), "{message}");
    let deployment = get(&h, "apps/v1", "Deployment", "podinfo")
        .await
        .expect("still there");
    assert_eq!(
        deployment.pointer("/spec/template/spec/containers/0/image"),
        Some(&json!("registry.example.com/podinfo:6.1.0")),
        "nothing applied"
    );

    // Bad input in the spec: stalled with the field named.
    helm_release(
        &h,
        "bad-renderer",
        json!({"postRenderers": [{"kustomize": {"images": [{"newTag": "x"}]}}]}),
    )
    .await;
    let stalled = wait_release(&h, "bad-renderer", "InvalidSpec", |o| {
        ready(o).1 == "InvalidSpec"
    })
    .await;
    assert!(
        ready(&stalled)
            .2
            .contains("spec.postRenderers[0].kustomize.images[0].name"),
        "{stalled}"
    );
}

/// `spec.kubeConfig` installs into (and keeps the release records in) a remote cluster;
/// `spec.serviceAccountName` installs as that account, refused by RBAC without a grant; the
/// lockdown refuses a chart source of another namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_config_service_account_and_lockdown_decide_where_and_as_whom() {
    let url = repository(vec![(
        "podinfo".into(),
        chart_version(&podinfo_chart()),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = common::Harness::start_with(
        &[("unused/README.md", "x")],
        common::Setup {
            flux_tenancy: plumb_engine::flux::Tenancy {
                cross_namespace_refs: plumb_engine::flux::CrossNamespaceRefs::Denied,
                default_service_account: None,
            },
            ..common::Setup::default()
        },
    )
    .await;
    for (api_version, kind) in [
        (SOURCE_API_VERSION, "HelmRepository"),
        (HELM_API_VERSION, "HelmRelease"),
    ] {
        plumb_engine::crds::wait_established(&h.cluster, api_version, kind)
            .await
            .expect("Flux CRDs installed");
    }
    helm_repository(&h, "podinfo", &url).await;
    let remote = plumb_devcluster::DevCluster::start(plumb_devcluster::Options {
        pod_ready_delay: Duration::from_millis(100),
        ..Default::default()
    })
    .await
    .expect("second devcluster starts");
    let remote_cluster = plumb_kube::Cluster::from_kubeconfig_text(
        &remote.kubeconfig(),
        "test",
        plumb_kube::Timeouts::default(),
    )
    .await
    .expect("client");
    h.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "remote", "namespace": NS},
        "stringData": {"value": remote.kubeconfig()}}))
        .await;
    helm_release(
        &h,
        "far",
        json!({"kubeConfig": {"secretRef": {"name": "remote"}},
            "install": {"createNamespace": true}}),
    )
    .await;
    helm_release(&h, "limited", json!({"serviceAccountName": "deployer"})).await;
    h.apply(
        json!({"apiVersion": HELM_API_VERSION, "kind": "HelmRelease",
        "metadata": {"name": "borrower", "namespace": "default"},
        "spec": {"interval": "1h", "targetNamespace": NS,
            "chart": {"spec": {"chart": "podinfo",
                "sourceRef": {"kind": "HelmRepository", "name": "podinfo", "namespace": NS}}}}}),
    )
    .await;

    wait_release(&h, "far", "an install in the remote cluster", |o| {
        ready(o).0 == "True"
    })
    .await;
    let remote_get = |kind: &'static str, name: String| {
        let cluster = remote_cluster.clone();
        async move {
            cluster
                .get(
                    if kind == "Deployment" {
                        "apps/v1"
                    } else {
                        "v1"
                    },
                    kind,
                    NS,
                    &name,
                )
                .await
                .expect("get")
        }
    };
    assert!(
        remote_get("Deployment", "far-podinfo".into())
            .await
            .is_some()
    );
    assert!(
        remote_get("Secret", "sh.helm.release.v1.far.v1".into())
            .await
            .is_some(),
        "the release record is kept where the release is"
    );
    assert!(
        get(&h, "apps/v1", "Deployment", "far-podinfo")
            .await
            .is_none(),
        "nothing installed in the controller's cluster"
    );

    let limited = wait_release(&h, "limited", "a refusal", |o| {
        ready(o).0 == "False" && ready(o).2.contains("forbidden")
    })
    .await;
    let message = ready(&limited).2;
    assert!(
        message.contains("forbidden") && message.contains("system:serviceaccount:apps:deployer"),
        "{message}"
    );
    assert!(
        get(&h, "apps/v1", "Deployment", "limited-podinfo")
            .await
            .is_none()
    );

    let borrower = h
        .wait_object(
            (HELM_API_VERSION, "HelmRelease"),
            ("default", "borrower"),
            |o| ready(o).0 == "False",
        )
        .await;
    assert_eq!(ready(&borrower).1, "AccessDenied", "{borrower}");

    // Deleting the remote release uninstalls it there.
    h.cluster
        .delete(
            HELM_API_VERSION,
            "HelmRelease",
            NS,
            "far",
            plumb_kube::Propagation::Background,
        )
        .await
        .expect("delete");
    wait_gone(&h, HELM_API_VERSION, "HelmRelease", "far").await;
    assert!(
        remote_get("Deployment", "far-podinfo".into())
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_a_failed_upgrade_stays_failed_and_the_last_good_release_deployed() {
    let version = chart_version(&podinfo_chart());
    let url = repository(vec![(
        "podinfo".into(),
        version.clone(),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;
    let spec = |image: &str| json!({"interval": "1h", "timeout": "3s", "values": {"image": {"repository": image}}});
    helm_release(&h, "web", spec("ghcr.io/stefanprodan/podinfo")).await;
    wait_release(&h, "web", "an install", |o| ready(o).0 == "True").await;
    helm_release(&h, "web", spec("example.com/fail-pull")).await;
    let failed = wait_release(&h, "web", "a failed upgrade", |o| {
        ready(o).1 == "UpgradeFailed"
    })
    .await;
    assert!(condition_of(&failed, "Remediated").0.is_empty(), "{failed}");
    let image = image_of(&h, "web-podinfo").await;
    assert!(image.contains("fail-pull"), "{image} {failed}");
    let secrets = h.cluster.list("v1", "Secret", NS).await.expect("secrets");
    assert_eq!(
        records_by_version(&secrets, "web"),
        [(1, "deployed".to_string()), (2, "failed".to_string())],
        "Helm keeps the last good release deployed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_install_is_uninstalled_between_retries() {
    let version = chart_version(&podinfo_chart());
    let url = repository(vec![(
        "podinfo".into(),
        version.clone(),
        package(&podinfo_chart(), "podinfo"),
    )]);
    let h = start().await;
    helm_repository(&h, "podinfo", &url).await;
    helm_release(
        &h,
        "web",
        json!({"interval": "2s", "timeout": "3s",
            "install": {"remediation": {"retries": 1}},
            "values": {"image": {"repository": "example.com/fail-pull"}}}),
    )
    .await;
    let remediated = wait_release(&h, "web", "an uninstall", |o| {
        condition_of(o, "Remediated").1 == "UninstallSucceeded"
    })
    .await;
    assert_eq!(
        condition_of(&remediated, "Remediated").2,
        format!("Helm uninstall for release {NS}/web.v1 with chart podinfo@{version} succeeded")
    );
    // The second attempt fails as well; with no retry left and remediateLastFailure unset it
    // is kept for debugging, and the release stalls.
    let stalled = wait_release(&h, "web", "RetriesExceeded", |o| {
        ready(o).1 == "RetriesExceeded"
    })
    .await;
    assert_eq!(
        stalled.pointer("/status/installFailures"),
        Some(&json!(2)),
        "{stalled}"
    );
    assert!(image_of(&h, "web-podinfo").await.contains("fail-pull"));
    let secrets = h.cluster.list("v1", "Secret", NS).await.expect("secrets");
    assert_eq!(
        records_by_version(&secrets, "web"),
        [(1, "failed".to_string())],
        "the uninstall removed the first attempt's record; the second is kept"
    );
}
