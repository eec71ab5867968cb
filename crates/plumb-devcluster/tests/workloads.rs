//! Simulated workloads: rollout status, wait, fault injection, jobs.

mod common;

use common::Kube;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolls_out_and_becomes_available() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&[
        "create",
        "deploy",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
    ])
    .await;
    let out = k
        .ok(&["rollout", "status", "deploy/web", "--timeout=20s"])
        .await;
    assert!(
        out.contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );
    k.ok(&[
        "wait",
        "--for=condition=Available",
        "deploy/web",
        "--timeout=20s",
    ])
    .await;
    let j = k.json(&["get", "deploy", "web"]).await;
    assert_eq!(j["status"]["readyReplicas"], 2);
    assert_eq!(j["status"]["observedGeneration"], 1);
    let pods = k.ok(&["get", "pods", "-l", "app=web"]).await;
    assert_eq!(pods.matches("Running").count(), 2, "{pods}");
    // A new template rolls out a new ReplicaSet; the old one is scaled to 0.
    k.ok(&["set", "image", "deploy/web", "nginx=nginx:1.26"])
        .await;
    k.ok(&["rollout", "status", "deploy/web", "--timeout=20s"])
        .await;
    let rs = k.json(&["get", "rs", "-l", "app=web"]).await;
    let mut replicas: Vec<i64> = rs["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["spec"]["replicas"].as_i64().unwrap_or(-1))
        .collect();
    replicas.sort();
    assert_eq!(replicas, [0, 2]);
    let j = k.json(&["get", "deploy", "web"]).await;
    assert_eq!(
        j["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        j["metadata"]["generation"], 2,
        "controller annotations do not bump generation"
    );
    // Rolling back reuses the first replica set, which becomes revision 3.
    k.ok(&["rollout", "undo", "deploy/web"]).await;
    k.ok(&["rollout", "status", "deploy/web", "--timeout=20s"])
        .await;
    let rs = k.json(&["get", "rs", "-l", "app=web"]).await;
    assert_eq!(
        rs["items"].as_array().map(Vec::len),
        Some(2),
        "no third replica set: {rs}"
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_that_never_pulls_exceeds_progress_deadline() {
    require_kubectl!();
    let k = Kube::start().await;
    let d = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n  progressDeadlineSeconds: 1\n  selector:\n    matchLabels: {app: bad}\n  template:\n    metadata:\n      labels: {app: bad}\n    spec:\n      containers:\n      - name: c\n        image: example.com/fail-pull:1\n";
    k.apply(d, &[]).await;
    let e = k
        .fail(&["rollout", "status", "deploy/bad", "--timeout=20s"])
        .await;
    assert!(
        e.contains("deployment \"bad\" exceeded its progress deadline"),
        "{e}"
    );
    let pods = k.ok(&["get", "pods", "-l", "app=bad"]).await;
    assert!(pods.contains("ImagePullBackOff"), "{pods}");
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_settled_deployment_does_not_time_out() {
    require_kubectl!();
    let k = Kube::start().await;
    let d = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  progressDeadlineSeconds: 5\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: c\n        image: nginx:1\n";
    k.apply(d, &[]).await;
    k.ok(&["rollout", "status", "deploy/web", "--timeout=20s"])
        .await;
    // Longer than the deadline since the last progress, then a scale-up. (A deadline of a few
    // seconds, not one: on a loaded machine the scale-up itself may take longer than one.)
    tokio::time::sleep(std::time::Duration::from_millis(6000)).await;
    k.ok(&["scale", "deploy/web", "--replicas=2"]).await;
    let status = k
        .ok(&["rollout", "status", "deploy/web", "--timeout=20s"])
        .await;
    assert!(status.contains("successfully rolled out"), "{status}");
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_or_fail() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&["create", "job", "ok", "--image=busybox"]).await;
    k.ok(&[
        "wait",
        "--for=condition=Complete",
        "job/ok",
        "--timeout=20s",
    ])
    .await;
    let j = k.json(&["get", "job", "ok"]).await;
    assert_eq!(j["status"]["succeeded"], 1);
    let bad = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: bad\nspec:\n  backoffLimit: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: fail-job\n";
    k.apply(bad, &[]).await;
    k.ok(&["wait", "--for=condition=Failed", "job/bad", "--timeout=20s"])
        .await;
    let j = k.json(&["get", "job", "bad"]).await;
    assert_eq!(j["status"]["failed"], 2);
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_and_daemonset_roll_out() {
    require_kubectl!();
    let k = Kube::start().await;
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  replicas: 2\n  serviceName: db\n  selector:\n    matchLabels: {app: db}\n  template:\n    metadata:\n      labels: {app: db}\n    spec:\n      containers:\n      - name: c\n        image: postgres:16\n  volumeClaimTemplates:\n  - metadata:\n      name: data\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources:\n        requests:\n          storage: 1Gi\n";
    k.apply(sts, &[]).await;
    let out = k
        .ok(&["rollout", "status", "sts/db", "--timeout=20s"])
        .await;
    assert!(
        out.contains("partitioned roll out complete") || out.contains("rolling update complete"),
        "{out}"
    );
    k.ok(&["get", "pod", "db-0", "db-1"]).await;
    let pvc = k.json(&["get", "pvc", "data-db-1"]).await;
    assert_eq!(pvc["status"]["phase"], "Bound");
    let pod = k.json(&["get", "pod", "db-1"]).await;
    assert_eq!(
        pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "data-db-1"
    );
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  selector:\n    matchLabels: {app: agent}\n  template:\n    metadata:\n      labels: {app: agent}\n    spec:\n      containers:\n      - name: c\n        image: agent:1\n";
    k.apply(ds, &[]).await;
    let out = k
        .ok(&["rollout", "status", "ds/agent", "--timeout=20s"])
        .await;
    assert!(
        out.contains("daemon set \"agent\" successfully rolled out"),
        "{out}"
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_cluster_ips() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&["create", "service", "clusterip", "a", "--tcp=80:80"])
        .await;
    k.ok(&["create", "service", "clusterip", "b", "--tcp=80:80"])
        .await;
    let a = k.json(&["get", "svc", "a"]).await;
    let b = k.json(&["get", "svc", "b"]).await;
    assert!(
        a["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.96."))
    );
    assert_ne!(a["spec"]["clusterIP"], b["spec"]["clusterIP"]);
    // Re-applying without the IP keeps it.
    k.ok(&[
        "patch",
        "svc",
        "a",
        "-p",
        r#"{"metadata":{"labels":{"x":"y"}}}"#,
    ])
    .await;
    assert_eq!(
        k.json(&["get", "svc", "a"]).await["spec"]["clusterIP"],
        a["spec"]["clusterIP"]
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disruption_budgets_count_ready_pods() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&[
        "create",
        "deploy",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
    ])
    .await;
    k.ok(&[
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ])
    .await;
    k.ok(&["rollout", "status", "deploy/web", "--timeout=20s"])
        .await;
    k.eventually("budget status", || async {
        let j = k.json(&["get", "pdb", "web"]).await;
        j["status"]["currentHealthy"] == 2 && j["status"]["disruptionsAllowed"] == 1
    })
    .await;
    let table = k.ok(&["get", "pdb", "web"]).await;
    assert!(
        table.contains("MIN AVAILABLE") && table.contains("ALLOWED DISRUPTIONS"),
        "{table}"
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscalers_report_their_targets_scale() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&[
        "create",
        "deploy",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
    ])
    .await;
    let hpa = |name: &str, target: &str| {
        format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {name}\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: {target}\n  minReplicas: 3\n  maxReplicas: 5\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 80\n"
        )
    };
    k.apply(&hpa("web", "web"), &[]).await;
    k.eventually("autoscaler status", || async {
        let j = k.json(&["get", "hpa", "web"]).await;
        let able = j["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "AbleToScale" && c["status"] == "True")
        });
        able && j["status"]["currentReplicas"] == 2 && j["status"]["desiredReplicas"] == 3
    })
    .await;
    // A missing target is reported, as the real controller does.
    k.apply(&hpa("orphan", "absent"), &[]).await;
    k.eventually("missing target", || async {
        let j = k.json(&["get", "hpa", "orphan"]).await;
        j["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "AbleToScale" && c["reason"] == "FailedGetScale")
        })
    })
    .await;
    k.cluster.shutdown().await;
}
