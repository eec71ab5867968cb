//! Custom health end to end: Argo CD Lua scripts from `argocd-cm` decide an Application's
//! resource health (and wave progress), Flux `healthCheckExprs` decide a Kustomization's wait;
//! runaway scripts and bad expressions are stopped and reported.

mod common;

use common::{Harness, automated, cm};
use plumb_core::key::str_at;
use plumb_engine::flux::{KUSTOMIZE_API_VERSION, SOURCE_API_VERSION};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const GROUP: &str = "example.com";
const WIDGET_KEY: &str = "resource.customizations.health.example.com_Widget";

/// Installs a namespaced CRD `kind` of `example.com/v1` with a status subresource.
async fn install_crd(h: &Harness, kind: &str) {
    let plural = format!("{}s", kind.to_lowercase());
    h.apply(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {"group": GROUP, "scope": "Namespaced",
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural, "singular": kind.to_lowercase()},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .await;
    plumb_engine::crds::wait_established(&h.cluster, &format!("{GROUP}/v1"), kind)
        .await
        .expect("CRD established");
}

fn custom(kind: &str, name: &str) -> String {
    format!("apiVersion: {GROUP}/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n  size: 1\n")
}

async fn argocd_cm(h: &Harness, data: Value) {
    h.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": "argocd"}, "data": data}))
        .await;
}

async fn set_status(h: &Harness, kind: &str, name: &str, namespace: &str, status: Value) {
    h.cluster
        .merge_patch_status(
            &format!("{GROUP}/v1"),
            kind,
            namespace,
            name,
            &json!({ "status": status }),
        )
        .await
        .expect("status patched");
}

/// The `status.resources` entry of `kind`/`name` of the application.
fn resource<'a>(app: &'a Value, kind: &str, name: &str) -> &'a Value {
    app.pointer("/status/resources")
        .and_then(Value::as_array)
        .and_then(|r| {
            r.iter()
                .find(|r| str_at(r, &["kind"]) == kind && str_at(r, &["name"]) == name)
        })
        .unwrap_or(&Value::Null)
}

fn resource_health(app: &Value, kind: &str, name: &str) -> (String, String) {
    let r = resource(app, kind, name);
    (
        str_at(r, &["health", "status"]).to_string(),
        str_at(r, &["health", "message"]).to_string(),
    )
}

const WIDGET_SCRIPT: &str = r#"local hs = {}
if obj.status ~= nil and obj.status.phase == "Ready" then
  hs.status = "Healthy"
  hs.message = "widget is ready"
elseif obj.status ~= nil and obj.status.phase == "Broken" then
  hs.status = "Degraded"
  hs.message = "widget broke: " .. (obj.status.reason or "no reason")
else
  hs.status = "Progressing"
  hs.message = "waiting for the widget"
end
return hs
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_script_from_argocd_cm_decides_health_of_a_custom_resource() {
    let h = Harness::start(&[]).await;
    install_crd(&h, "Widget").await;
    argocd_cm(&h, json!({ WIDGET_KEY: WIDGET_SCRIPT })).await;
    h.commit(
        &[
            ("widgets/widget.yaml", &custom("Widget", "w1")),
            (
                "widgets/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n  annotations:\n    argocd.argoproj.io/sync-wave: \"1\"\ndata:\n  value: x\n",
            ),
        ],
        "widget",
    );
    h.create_app("widgets", "widgets", automated(false)).await;

    // Without a status the script says Progressing, and the sync waits for it.
    let app = h
        .wait_app("widgets", "the widget Progressing by its script", |a| {
            resource_health(a, "Widget", "w1").0 == "Progressing"
        })
        .await;
    assert_eq!(
        resource_health(&app, "Widget", "w1").1,
        "waiting for the widget"
    );
    // (The application is Missing: wave 1's ConfigMap is not there yet.)
    assert_eq!(str_at(&app, &["status", "health", "status"]), "Missing");
    // The next wave waits for the script to call wave 0 healthy.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.configmap("plain").await.is_none(), "wave 1 waits");
    assert_eq!(
        str_at(
            &h.app("widgets").await,
            &["status", "operationState", "phase"]
        ),
        "Running"
    );

    set_status(&h, "Widget", "w1", "apps", json!({"phase": "Ready"})).await;
    h.refresh("widgets").await;
    let app = h
        .wait_app("widgets", "Healthy from the script", |a| {
            str_at(a, &["status", "health", "status"]) == "Healthy"
                && str_at(a, &["status", "operationState", "phase"]) == "Succeeded"
        })
        .await;
    assert_eq!(
        resource_health(&app, "Widget", "w1"),
        ("Healthy".to_string(), "widget is ready".to_string())
    );
    assert!(h.configmap("plain").await.is_some(), "wave 1 applied");

    set_status(
        &h,
        "Widget",
        "w1",
        "apps",
        json!({"phase": "Broken", "reason": "disk full"}),
    )
    .await;
    h.refresh("widgets").await;
    let app = h
        .wait_app("widgets", "Degraded from the script", |a| {
            str_at(a, &["status", "health", "status"]) == "Degraded"
        })
        .await;
    assert_eq!(
        resource_health(&app, "Widget", "w1"),
        (
            "Degraded".to_string(),
            "widget broke: disk full".to_string()
        )
    );
    // A script that works raises no condition.
    assert!(
        app.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_none_or(|c| c.iter().all(|c| str_at(c, &["type"]) != "ComparisonError")),
        "{app}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_scripts_are_stopped_reported_and_the_controller_keeps_working() {
    let h = Harness::start(&[]).await;
    install_crd(&h, "Widget").await;
    install_crd(&h, "Gadget").await;
    argocd_cm(
        &h,
        json!({
            WIDGET_KEY: "while true do end",
            "resource.customizations": "example.com/Gadget:\n  health.lua: |\n    local s = 'x'\n    local keep = {}\n    while true do\n      s = s .. s\n      keep[#keep + 1] = s\n    end\n",
        }),
    )
    .await;
    h.commit(
        &[
            ("runaway/widget.yaml", &custom("Widget", "spin")),
            ("runaway/gadget.yaml", &custom("Gadget", "hog")),
            ("plain/cm.yaml", &cm("plain", "x")),
        ],
        "runaway",
    );
    h.create_app("runaway", "runaway", automated(false)).await;

    let app = h
        .wait_app("runaway", "both resources Unknown", |a| {
            resource_health(a, "Widget", "spin").0 == "Unknown"
                && resource_health(a, "Gadget", "hog").0 == "Unknown"
        })
        .await;
    let (_, widget) = resource_health(&app, "Widget", "spin");
    assert!(widget.contains(WIDGET_KEY), "{widget}");
    assert!(widget.contains("ran longer than 100 ms"), "{widget}");
    let (_, gadget) = resource_health(&app, "Gadget", "hog");
    assert!(
        gadget.contains("resource.customizations: example.com/Gadget"),
        "{gadget}"
    );
    assert!(gadget.contains("allocated more than"), "{gadget}");
    assert_eq!(str_at(&app, &["status", "health", "status"]), "Unknown");
    let condition = h.condition("runaway", "ComparisonError").await;
    assert!(
        condition.starts_with("error setting app health: failed to get resource health for "),
        "{condition}"
    );
    assert!(condition.contains("1 more"), "{condition}");

    // The controller goes on: another application syncs meanwhile.
    h.create_app("plain", "plain", automated(false)).await;
    let revision = common::git(&h.repo, &["rev-parse", "HEAD"]);
    h.wait_synced("plain", &revision).await;

    // A fixed script takes effect at once, without a restart or a refresh (argocd-cm is
    // watched).
    argocd_cm(
        &h,
        json!({
            WIDGET_KEY: "return {status = 'Healthy', message = 'fixed'}",
            "resource.customizations": "example.com/Gadget:\n  health.lua: |\n    return {status = 'Suspended'}\n",
        }),
    )
    .await;
    let app = h
        .wait_app("runaway", "the fixed scripts' health", |a| {
            resource_health(a, "Widget", "spin").0 == "Healthy"
                && resource_health(a, "Gadget", "hog").0 == "Suspended"
        })
        .await;
    assert!(
        app.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_none_or(|c| c.iter().all(|c| str_at(c, &["type"]) != "ComparisonError")),
        "{app}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_with_a_syntax_error_is_unknown_naming_key_and_line() {
    let h = Harness::start(&[]).await;
    install_crd(&h, "Widget").await;
    argocd_cm(
        &h,
        json!({ WIDGET_KEY: "local hs = {}\nif obj.status then\nreturn hs" }),
    )
    .await;
    h.commit(&[("bad/widget.yaml", &custom("Widget", "w"))], "widget");
    h.create_app("bad", "bad", automated(false)).await;
    let app = h
        .wait_app("bad", "the widget Unknown", |a| {
            resource_health(a, "Widget", "w").0 == "Unknown"
        })
        .await;
    let (_, message) = resource_health(&app, "Widget", "w");
    assert!(
        message.starts_with(&format!(
            "argocd-cm key {WIDGET_KEY:?}: health.lua does not parse: health.lua:3:"
        )),
        "{message}"
    );
    let condition = h.condition("bad", "ComparisonError").await;
    assert!(condition.contains(WIDGET_KEY), "{condition}");
    assert!(
        condition.contains("\"Widget\" with name \"w\""),
        "{condition}"
    );
}

// ---- Flux ----

const NS: &str = "flux-system";

async fn start_flux() -> Harness {
    let h = Harness::start(&[]).await;
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

/// The GitRepository `repo` (after the commit it should serve).
async fn git_repository(h: &Harness) {
    h.apply(json!({
        "apiVersion": SOURCE_API_VERSION, "kind": "GitRepository",
        "metadata": {"name": "repo", "namespace": NS},
        "spec": {"url": h.url(), "interval": "1h", "ref": {"branch": "main"}}
    }))
    .await;
}

async fn kustomization(h: &Harness, name: &str, spec: Value) {
    let mut full = json!({"interval": "1h", "prune": true, "targetNamespace": "apps",
        "sourceRef": {"kind": "GitRepository", "name": "repo"}});
    for (key, value) in spec.as_object().cloned().unwrap_or_default() {
        full[key] = value;
    }
    h.apply(json!({
        "apiVersion": KUSTOMIZE_API_VERSION, "kind": "Kustomization",
        "metadata": {"name": name, "namespace": NS}, "spec": full
    }))
    .await;
}

fn condition_of(object: &Value, kind: &str) -> (String, String, String) {
    let c = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| str_at(c, &["type"]) == kind))
        .cloned()
        .unwrap_or(Value::Null);
    (
        str_at(&c, &["status"]).to_string(),
        str_at(&c, &["reason"]).to_string(),
        str_at(&c, &["message"]).to_string(),
    )
}

async fn wait_kustomization(
    h: &Harness,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let object = h
            .cluster
            .get(KUSTOMIZE_API_VERSION, "Kustomization", NS, name)
            .await
            .expect("get")
            .unwrap_or(Value::Null);
        if check(&object) {
            return object;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            serde_json::to_string_pretty(&object).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn widget_exprs() -> Value {
    json!([{"apiVersion": format!("{GROUP}/v1"), "kind": "Widget",
        "inProgress": "has(status.phase) && status.phase == 'Provisioning'",
        "failed": "has(status.phase) && status.phase == 'Broken'",
        "current": "has(status.phase) && status.phase == 'Ready'"}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_exprs_wait_until_a_custom_resource_is_current() {
    let h = start_flux().await;
    install_crd(&h, "Widget").await;
    h.commit(
        &[
            ("flux/widget.yaml", &custom("Widget", "w1")),
            ("flux/cm.yaml", &cm("plain", "x")),
        ],
        "widget",
    );
    git_repository(&h).await;
    kustomization(
        &h,
        "widgets",
        json!({"path": "./flux", "wait": true, "timeout": "30s", "healthCheckExprs": widget_exprs()}),
    )
    .await;
    // Applied, then waiting: built-in rules would call a Widget without conditions healthy.
    let waiting = wait_kustomization(&h, "widgets", "health check in progress", |k| {
        condition_of(k, "Ready").1 == "Progressing"
            && condition_of(k, "Ready")
                .2
                .starts_with("Health check in progress")
    })
    .await;
    assert_eq!(condition_of(&waiting, "Ready").0, "Unknown");
    set_status(&h, "Widget", "w1", "apps", json!({"phase": "Provisioning"})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let still = wait_kustomization(&h, "widgets", "still in progress", |_| true).await;
    assert_eq!(condition_of(&still, "Ready").1, "Progressing", "{still}");
    set_status(&h, "Widget", "w1", "apps", json!({"phase": "Ready"})).await;
    let done = wait_kustomization(&h, "widgets", "Ready=True", |k| {
        condition_of(k, "Ready").0 == "True"
    })
    .await;
    assert_eq!(condition_of(&done, "Ready").1, "ReconciliationSucceeded");
    let healthy = condition_of(&done, "Healthy");
    assert_eq!(
        (healthy.0.as_str(), healthy.1.as_str()),
        ("True", "Succeeded")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_exprs_failed_fails_the_health_check_at_once() {
    let h = start_flux().await;
    install_crd(&h, "Widget").await;
    h.commit(&[("flux/widget.yaml", &custom("Widget", "w1"))], "widget");
    git_repository(&h).await;
    kustomization(
        &h,
        "widgets",
        json!({"path": "./flux", "timeout": "60s", "healthCheckExprs": widget_exprs(),
            "healthChecks": [{"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "name": "w1", "namespace": "apps"}]}),
    )
    .await;
    wait_kustomization(&h, "widgets", "health check in progress", |k| {
        condition_of(k, "Ready")
            .2
            .starts_with("Health check in progress")
    })
    .await;
    let started = Instant::now();
    set_status(&h, "Widget", "w1", "apps", json!({"phase": "Broken"})).await;
    let failed = wait_kustomization(&h, "widgets", "HealthCheckFailed", |k| {
        condition_of(k, "Ready").1 == "HealthCheckFailed"
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(20), "failed fast");
    let (status, _, message) = condition_of(&failed, "Ready");
    assert_eq!(status, "False");
    assert!(message.contains("Widget/apps/w1: Degraded"), "{message}");
    assert!(
        message.contains("spec.healthCheckExprs[0].failed"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cel_compile_error_stalls_the_kustomization_naming_the_field() {
    let h = start_flux().await;
    h.commit(&[("flux/cm.yaml", &cm("plain", "x"))], "cm");
    git_repository(&h).await;
    kustomization(
        &h,
        "bad-cel",
        json!({"path": "./flux", "healthCheckExprs": [
            {"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "current": "status.phase == 'Ready'"},
            {"apiVersion": format!("{GROUP}/v1"), "kind": "Gadget", "current": "status.phase ==", "failed": "true"}
        ]}),
    )
    .await;
    let stalled = wait_kustomization(&h, "bad-cel", "InvalidCELExpression", |k| {
        condition_of(k, "Ready").1 == "InvalidCELExpression"
    })
    .await;
    let (status, _, message) = condition_of(&stalled, "Ready");
    assert_eq!(status, "False");
    assert!(
        message.starts_with("spec.healthCheckExprs[1].current: "),
        "{message}"
    );
    assert_eq!(condition_of(&stalled, "Stalled").0, "True");
    assert_eq!(condition_of(&stalled, "Stalled").1, "InvalidCELExpression");
    // Nothing was applied.
    assert!(h.configmap("plain").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expression_failing_on_an_object_keeps_waiting_and_is_named_at_the_timeout() {
    let h = start_flux().await;
    install_crd(&h, "Widget").await;
    h.commit(&[("flux/widget.yaml", &custom("Widget", "w1"))], "widget");
    git_repository(&h).await;
    // No `has()`: on a Widget without status the expression cannot be evaluated.
    kustomization(
        &h,
        "widgets",
        json!({"path": "./flux", "wait": true, "timeout": "2s", "healthCheckExprs": [
            {"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "current": "status.phase == 'Ready'"}]}),
    )
    .await;
    let failed = wait_kustomization(&h, "widgets", "HealthCheckFailed", |k| {
        condition_of(k, "Ready").1 == "HealthCheckFailed"
    })
    .await;
    let message = condition_of(&failed, "Ready").2;
    assert!(message.contains("timeout waiting for"), "{message}");
    assert!(
        message.contains("spec.healthCheckExprs[0].current on Widget/apps/w1"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_argocd_cm_entries_are_a_condition_naming_the_key_and_the_rest_applies() {
    let h = Harness::start(&[]).await;
    install_crd(&h, "Widget").await;
    argocd_cm(
        &h,
        json!({
            WIDGET_KEY: "return {status = 'Suspended', message = 'still read'}",
            "resource.customizations.useOpenLibs.example.com_Widget": "maybe",
            "resource.customizations": "example.com/Gadget: [not, a, map",
        }),
    )
    .await;
    h.commit(&[("cfg/widget.yaml", &custom("Widget", "w"))], "widget");
    h.create_app("cfg", "cfg", automated(false)).await;
    let app = h
        .wait_app("cfg", "the widget assessed by its script", |a| {
            resource_health(a, "Widget", "w").0 == "Suspended"
        })
        .await;
    assert_eq!(resource_health(&app, "Widget", "w").1, "still read");
    let condition = h.condition("cfg", "ComparisonError").await;
    assert!(
        condition.starts_with("health customizations ignored: "),
        "{condition}"
    );
    assert!(
        condition.contains(
            "argocd-cm key \"resource.customizations.useOpenLibs.example.com_Widget\": \"maybe\" is not a boolean"
        ),
        "{condition}"
    );
    assert!(
        condition.contains("argocd-cm key \"resource.customizations\": not valid YAML"),
        "{condition}"
    );
}
