//! Unknown fields of built-in kinds: dropped from what is stored, refused
//! under `fieldValidation=Strict` (kubectl's default), warned about under
//! `Warn` (the server's default), as kube-apiserver does.

mod common;

use common::Kube;
use serde_json::{Value, json};

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx:1.25
        ports:
        - containerPort: 80
        resources:
          limits: {cpu: 1, memory: 64Mi}
";

/// The Deployment with `spec.replica` (a typo) and an unknown container field.
fn with_typos() -> String {
    DEPLOY
        .replace("  replicas: 1\n", "  replicas: 1\n  replica: 3\n")
        .replace(
            "        image: nginx:1.25\n",
            "        image: nginx:1.25\n        imagePullPolicyy: Always\n",
        )
}

fn has_no_typos(j: &Value) {
    assert!(j["spec"].get("replica").is_none(), "{j}");
    let c = &j["spec"]["template"]["spec"]["containers"][0];
    assert!(c.get("imagePullPolicyy").is_none(), "{c}");
    assert_eq!(c["image"], "nginx:1.25");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_refuses_unknown_fields_of_a_builtin_kind() {
    require_kubectl!();
    let k = Kube::start().await;
    let f = k.write("d.yaml", &with_typos());
    let e = k.fail(&["apply", "-f", &f]).await;
    assert!(
        e.contains(
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: \
             unknown field \"spec.replica\", unknown field \"spec.template.spec.containers[0].imagePullPolicyy\""
        ),
        "{e}"
    );
    assert!(e.contains("Error from server (BadRequest)"), "{e}");
    // Nothing was created.
    k.fail(&["get", "deploy", "web"]).await;
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_false_stores_the_object_without_unknown_fields() {
    require_kubectl!();
    let k = Kube::start().await;
    let f = k.write("d.yaml", &with_typos());
    let out = k.run(&["apply", "--validate=false", "-f", &f]).await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Warning"), "{stderr}");
    let yaml = k.ok(&["get", "deploy", "web", "-o", "yaml"]).await;
    let j = k.json(&["get", "deploy", "web"]).await;
    has_no_typos(&j);
    // Only the last-applied annotation still holds what the user sent, as
    // with the real server.
    let annotation =
        j["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    assert!(annotation.contains("\"replica\":3"), "{annotation}");
    let rest = yaml.replace(&annotation.replace('\n', ""), "");
    assert!(
        !rest.contains("replica:") && !rest.contains("imagePullPolicyy"),
        "{yaml}"
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_warn_prints_the_server_warnings_and_drops_the_fields() {
    require_kubectl!();
    let k = Kube::start().await;
    let f = k.write("d.yaml", &with_typos());
    let out = k.run(&["apply", "--validate=warn", "-f", &f]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: unknown field \"spec.replica\""),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "Warning: unknown field \"spec.template.spec.containers[0].imagePullPolicyy\""
        ),
        "{stderr}"
    );
    has_no_typos(&k.json(&["get", "deploy", "web"]).await);
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_to_an_existing_object_refuses_the_patch_and_replace_the_body() {
    require_kubectl!();
    let k = Kube::start().await;
    k.apply(DEPLOY, &[]).await;
    let f = k.write("d.yaml", &with_typos());
    // Client-side apply patches (strategic merge): an Invalid `patch`.
    let e = k.fail(&["apply", "-f", &f]).await;
    assert!(
        e.contains("strict decoding error: unknown field \"spec.replica\""),
        "{e}"
    );
    assert!(e.contains("patch: Invalid value: \"map["), "{e}");
    // replace sends the object: the create/update wording.
    let e = k.fail(&["replace", "-f", &f]).await;
    assert!(
        e.contains("Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replica\""),
        "{e}"
    );
    k.ok(&["replace", "--validate=false", "-f", &f]).await;
    has_no_typos(&k.json(&["get", "deploy", "web"]).await);
    // kubectl patch sends no fieldValidation: the server's default warns.
    let out = k
        .run(&[
            "patch",
            "deploy",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"paused":false,"pause":true}}"#,
        ])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: unknown field \"spec.pause\""),
        "{stderr}"
    );
    let j = k.json(&["get", "deploy", "web"]).await;
    assert!(j["spec"].get("pause").is_none(), "{j}");
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_refuses_unknown_fields_whatever_the_validation() {
    require_kubectl!();
    let k = Kube::start().await;
    let f = k.write("d.yaml", &with_typos());
    for extra in [&[][..], &["--validate=false"][..]] {
        let mut args = vec!["apply", "--server-side", "-f", f.as_str()];
        args.extend_from_slice(extra);
        let e = k.fail(&args).await;
        assert!(
            e.contains(
                "Error from server: failed to create typed patch object (default/web; apps/v1, Kind=Deployment): errors:\n  \
                 .spec.replica: field not declared in schema\n  \
                 .spec.template.spec.containers[name=\"c\"].imagePullPolicyy: field not declared in schema"
            ),
            "{e}"
        );
    }
    k.fail(&["get", "deploy", "web"]).await;
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_manifests_and_generators_are_unaffected() {
    require_kubectl!();
    let k = Kube::start().await;
    let out = k
        .run(&["create", "configmap", "plain", "--from-literal=a=b"])
        .await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
    let manifests = r#"apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {password: hunter2}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: [sh, -c, "true"]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, annotations: {a: b}}
spec:
  rules:
  - host: example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;
    let f = k.write("all.yaml", &format!("{DEPLOY}---\n{manifests}"));
    let out = k.run(&["apply", "-f", &f]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Warning"), "{stderr}");
    // Server-side apply of the same manifests is fine too.
    k.ok(&["apply", "--server-side", "--force-conflicts", "-f", &f])
        .await;
    k.cluster.shutdown().await;
}

/// Objects the server itself wrote (defaults, controllers' status, owned
/// ReplicaSets and Pods) must decode strictly, or every strict patch of
/// them would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_written_by_the_server_have_no_unknown_fields() {
    require_kubectl!();
    let k = Kube::start().await;
    k.apply(DEPLOY, &[]).await;
    k.ok(&["rollout", "status", "deploy/web", "--timeout=20s"])
        .await;
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  serviceName: db\n  replicas: 1\n  selector:\n    matchLabels: {app: db}\n  template:\n    metadata:\n      labels: {app: db}\n    spec:\n      containers: [{name: c, image: postgres}]\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources: {requests: {storage: 1Gi}}\n";
    k.apply(sts, &[]).await;
    k.ok(&["rollout", "status", "sts/db", "--timeout=20s"])
        .await;
    k.ok(&["create", "job", "j", "--image=busybox"]).await;
    k.ok(&["create", "service", "loadbalancer", "lb", "--tcp=80:8080"])
        .await;
    k.ok(&["wait", "--for=condition=Complete", "job/j", "--timeout=20s"])
        .await;
    for kind in [
        "deployments.apps",
        "replicasets.apps",
        "statefulsets.apps",
        "pods",
        "persistentvolumeclaims",
        "jobs.batch",
        "services",
        "namespaces",
        "nodes",
        "serviceaccounts",
        "configmaps",
    ] {
        let list = k.json(&["get", kind, "-A"]).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        assert!(
            !items.is_empty() || kind == "serviceaccounts" || kind == "configmaps",
            "{kind}"
        );
        for item in items {
            let name = item["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut args = vec![
                "patch",
                kind,
                name.as_str(),
                "--type=merge",
                "-p",
                r#"{"metadata":{"labels":{"checked":"yes"}}}"#,
            ];
            let ns = item["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !ns.is_empty() {
                args.extend_from_slice(&["-n", ns.as_str()]);
            }
            let out = k.run(&args).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{kind}/{name}: {stderr}");
            assert!(!stderr.contains("Warning"), "{kind}/{name}: {stderr}");
        }
    }
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_requests_get_kube_apiserver_statuses_and_warning_headers() {
    let k = Kube::start().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labelz": {"a": "b"}}, "data": {"k": "v"}, "dta": {}});
    let body = cm.to_string();
    let ct = [("content-type", "application/json")];
    // Strict create: 400 with every field.
    let (code, text) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
            &ct,
            body.as_bytes(),
        )
        .await;
    assert_eq!(code, 400, "{text}");
    let status: Value = serde_json::from_str(&text).expect("status");
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: \
         unknown field \"metadata.labelz\", unknown field \"dta\""
    );
    // No parameter: created, fields dropped, one Warning header each.
    let (code, head, text) = common::http_with_head(
        k.cluster.addr(),
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &ct,
        body.as_bytes(),
    )
    .await;
    assert_eq!(code, 201, "{text}");
    let warnings: Vec<&str> = head
        .lines()
        .filter_map(|l| {
            l.strip_prefix("warning: ")
                .or_else(|| l.strip_prefix("Warning: "))
        })
        .collect();
    assert_eq!(
        warnings,
        [
            r#"299 - "unknown field \"metadata.labelz\"""#,
            r#"299 - "unknown field \"dta\"""#
        ]
    );
    let stored: Value = serde_json::from_str(&text).expect("object");
    assert!(
        stored.get("dta").is_none() && stored["metadata"].get("labelz").is_none(),
        "{stored}"
    );
    // Strict JSON patch: 422 Invalid on `patch`, op fields first.
    let ops = r#"[{"op":"add","path":"/extra","value":1,"note":"x"}]"#;
    let (code, text) = k
        .http(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c?fieldValidation=Strict",
            &[("content-type", "application/json-patch+json")],
            ops.as_bytes(),
        )
        .await;
    assert_eq!(code, 422, "{text}");
    let status: Value = serde_json::from_str(&text).expect("status");
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["causes"][0]["field"], "patch");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(" \"\" is invalid: patch: Invalid value: \"{"),
        "{message}"
    );
    assert!(
        message.ends_with(
            "strict decoding error: json patch unknown field \"[0].note\", unknown field \"extra\""
        ),
        "{message}"
    );
    // Ignore: silently dropped.
    let (code, text) = k
        .http(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c?fieldValidation=Ignore",
            &[("content-type", "application/merge-patch+json")],
            br#"{"extra":1,"data":{"k":"w"}}"#,
        )
        .await;
    assert_eq!(code, 200, "{text}");
    let stored: Value = serde_json::from_str(&text).expect("object");
    assert_eq!(stored["data"], json!({"k": "w"}));
    assert!(stored.get("extra").is_none(), "{stored}");
    // Server-side apply: 500 without a reason, as the typed converter fails.
    let (code, text) = k
        .http(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c?fieldManager=m&fieldValidation=Ignore",
            &[("content-type", "application/apply-patch+yaml")],
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: default\ndata:\n  k: v\nextra: 1\n",
        )
        .await;
    assert_eq!(code, 500, "{text}");
    let status: Value = serde_json::from_str(&text).expect("status");
    assert!(status.get("reason").is_none(), "{status}");
    assert_eq!(
        status["message"],
        "failed to create typed patch object (default/c; /v1, Kind=ConfigMap): .extra: field not declared in schema"
    );
    // A bad parameter value is refused.
    let (code, _) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps?fieldValidation=Loose",
            &ct,
            body.as_bytes(),
        )
        .await;
    assert_eq!(code, 400);
    k.cluster.shutdown().await;
}
