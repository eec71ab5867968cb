//! Bad input never panics or corrupts the store; pagination; concurrency.

mod common;

use common::Kube;

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_bodies() {
    let k = Kube::start().await;
    let (code, out) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[JSON],
            b"{not json",
        )
        .await;
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("\"reason\":\"BadRequest\""), "{out}");
    let (code, _) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[("Content-Type", "application/yaml")],
            b"a: [unclosed",
        )
        .await;
    assert_eq!(code, 400);
    let (code, _) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[JSON],
            b"[1,2]",
        )
        .await;
    assert_eq!(code, 400);
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"x":"{}"}}}}"#,
        "a".repeat(3 * 1024 * 1024 + 10)
    );
    let (code, _) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[JSON],
            big.as_bytes(),
        )
        .await;
    assert_eq!(code, 413);
    let (code, _) = k
        .http("GET", "/api/v1/namespaces/default/widgets", &[], b"")
        .await;
    assert_eq!(code, 404);
    let (code, out) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[("Content-Type", "text/plain")],
            b"x",
        )
        .await;
    assert_eq!(code, 415, "{out}");
    let (code, _) = k
        .http(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/none",
            &[("Content-Type", "application/merge-patch+json")],
            b"{}",
        )
        .await;
    assert_eq!(code, 404);
    // The server still works.
    let (code, _) = k
        .http("GET", "/api/v1/namespaces/default/configmaps", &[], b"")
        .await;
    assert_eq!(code, 200);
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_resource_versions_under_concurrent_writers() {
    let k = Kube::start().await;
    let (code, out) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[JSON],
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"n":"0"}}"#,
        )
        .await;
    assert_eq!(code, 201);
    let created: serde_json::Value = serde_json::from_str(&out).expect("json");
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    // Every writer changes the data: a no-op write that read the object
    // before the winner committed would legitimately succeed too.
    let mut tasks = vec![];
    for i in 0..16 {
        let addr = k.cluster.addr();
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"c","resourceVersion":"{rv}"}},"data":{{"n":"v{i}"}}}}"#
        );
        tasks.push(tokio::spawn(async move {
            common::http(
                addr,
                "PUT",
                "/api/v1/namespaces/default/configmaps/c",
                &[JSON],
                body.as_bytes(),
                None,
            )
            .await
        }));
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for t in tasks {
        let (code, out) = t.await.expect("task");
        match code {
            200 => ok += 1,
            409 => {
                assert!(out.contains("the object has been modified"), "{out}");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {out}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 15));
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_and_deletecollection() {
    let k = Kube::start().await;
    for i in 0..5 {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"c{i}","labels":{{"batch":"1"}}}}}}"#
        );
        let (code, _) = k
            .http(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                &[JSON],
                body.as_bytes(),
            )
            .await;
        assert_eq!(code, 201);
    }
    let (_, out) = k
        .http(
            "GET",
            "/api/v1/namespaces/default/configmaps?limit=2",
            &[],
            b"",
        )
        .await;
    let page: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["metadata"]["remainingItemCount"], 3);
    let token = page["metadata"]["continue"].as_str().expect("continue");
    let (_, out) = k
        .http(
            "GET",
            &format!("/api/v1/namespaces/default/configmaps?limit=10&continue={token}"),
            &[],
            b"",
        )
        .await;
    let rest: serde_json::Value = serde_json::from_str(&out).expect("json");
    let names: Vec<&str> = rest["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["c2", "c3", "c4"]);
    let (code, _) = k
        .http(
            "DELETE",
            "/api/v1/namespaces/default/configmaps?labelSelector=batch%3D1",
            &[],
            b"",
        )
        .await;
    assert_eq!(code, 200);
    let (_, out) = k
        .http("GET", "/api/v1/namespaces/default/configmaps", &[], b"")
        .await;
    let after: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(after["items"].as_array().map(Vec::len), Some(0));
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_op_updates_keep_resource_version() {
    let k = Kube::start().await;
    let body =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"},"data":{"a":"1"}}"#;
    let (_, out) = k
        .http(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[JSON],
            body,
        )
        .await;
    let created: serde_json::Value = serde_json::from_str(&out).expect("json");
    let (code, out) = k
        .http(
            "PUT",
            "/api/v1/namespaces/default/configmaps/n",
            &[JSON],
            body,
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let updated: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        updated["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    k.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_or_huge_replicas_are_invalid() {
    let k = Kube::start().await;
    for replicas in ["-1", "99999999999"] {
        let body = format!(
            r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"d"}},"spec":{{"replicas":{replicas},"selector":{{"matchLabels":{{"a":"b"}}}},"template":{{"metadata":{{"labels":{{"a":"b"}}}},"spec":{{"containers":[{{"name":"c","image":"x"}}]}}}}}}}}"#
        );
        let (code, out) = k
            .http(
                "POST",
                "/apis/apps/v1/namespaces/default/deployments",
                &[JSON],
                body.as_bytes(),
            )
            .await;
        assert_eq!(code, 422, "{out}");
        assert!(
            out.contains(r#"Deployment.apps \"d\" is invalid: spec.replicas: Invalid value: "#),
            "{out}"
        );
    }
    k.cluster.shutdown().await;
}
