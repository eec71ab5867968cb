use super::*;
use serde_json::json;

/// The cert-manager entry of Flux's CEL cheatsheet, in spirit: Issuing first, then Ready.
fn certificate_exprs() -> Value {
    json!([{
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "inProgress": "status.conditions.exists(e, e.type == 'Issuing' && e.observedGeneration == metadata.generation && e.status == 'True')",
        "failed": "status.conditions.filter(e, e.type == 'Ready').all(e, e.observedGeneration == metadata.generation && e.status == 'False')",
        "current": "status.conditions.filter(e, e.type == 'Ready').all(e, e.observedGeneration == metadata.generation && e.status == 'True')"
    }])
}

fn certificate(conditions: Value) -> Value {
    json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "apps", "generation": 2},
        "status": {"observedGeneration": 2, "conditions": conditions}})
}

fn status(exprs: &HealthCheckExprs, object: &Value) -> Result<HealthStatus, ExprError> {
    exprs
        .assess(object)
        .expect("an entry matches")
        .map(|h| h.status)
}

#[test]
fn in_progress_failed_and_current_in_flux_s_order() {
    let exprs = HealthCheckExprs::parse(Some(&certificate_exprs())).unwrap();
    let issuing = certificate(json!([
        {"type": "Issuing", "status": "True", "observedGeneration": 2},
        {"type": "Ready", "status": "False", "observedGeneration": 2}]));
    // inProgress wins over failed, which is true too.
    assert_eq!(status(&exprs, &issuing), Ok(HealthStatus::Progressing));
    let failed =
        certificate(json!([{"type": "Ready", "status": "False", "observedGeneration": 2}]));
    assert_eq!(status(&exprs, &failed), Ok(HealthStatus::Degraded));
    let ready = certificate(json!([{"type": "Ready", "status": "True", "observedGeneration": 2}]));
    assert_eq!(status(&exprs, &ready), Ok(HealthStatus::Healthy));
    // Observed generation behind: in progress without evaluating anything.
    let mut behind = ready.clone();
    behind["metadata"]["generation"] = json!(3);
    assert_eq!(status(&exprs, &behind), Ok(HealthStatus::Progressing));
    // A Ready condition of an older generation: none is true, so in progress.
    let stale = certificate(
        json!([{"type": "Ready", "status": "True", "observedGeneration": 1},
        {"type": "Issuing", "status": "False", "observedGeneration": 1}]),
    );
    let health = exprs.assess(&stale).unwrap().unwrap();
    assert_eq!(health.status, HealthStatus::Progressing, "{health:?}");
    assert_eq!(health.message, "no healthCheckExprs expression is true yet");
}

#[test]
fn only_the_named_group_and_kind_any_version() {
    let exprs = HealthCheckExprs::parse(Some(&certificate_exprs())).unwrap();
    let mut other_version =
        certificate(json!([{"type": "Ready", "status": "True", "observedGeneration": 2}]));
    other_version["apiVersion"] = json!("cert-manager.io/v1beta1");
    assert_eq!(status(&exprs, &other_version), Ok(HealthStatus::Healthy));
    let issuer =
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "i"}});
    assert!(exprs.assess(&issuer).is_none());
    assert!(HealthCheckExprs::parse(None).unwrap().is_empty());
    assert!(
        HealthCheckExprs::parse(Some(&Value::Null))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn current_alone_and_self() {
    let exprs = HealthCheckExprs::parse(Some(&json!([{
        "apiVersion": "example.com/v1", "kind": "Widget",
        "current": "self.status.phase == 'Ready' && has(status.phase) && kind == 'Widget'"
    }])))
    .unwrap();
    let mut widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "status": {"phase": "Pending"}});
    let health = exprs.assess(&widget).unwrap().unwrap();
    assert_eq!(health.status, HealthStatus::Progressing);
    widget["status"]["phase"] = json!("Ready");
    assert_eq!(status(&exprs, &widget), Ok(HealthStatus::Healthy));
}

#[test]
fn strings_extension_and_numbers() {
    let exprs = HealthCheckExprs::parse(Some(&json!([{
        "apiVersion": "example.com/v1", "kind": "Widget",
        "failed": "status.message.lowerAscii().contains('error')",
        "current": "status.readyReplicas >= spec.replicas && status.message.split(' ').size() == 2"
    }])))
    .unwrap();
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"replicas": 2}, "status": {"readyReplicas": 2, "message": "all good"}});
    assert_eq!(status(&exprs, &widget), Ok(HealthStatus::Healthy));
    let mut broken = widget.clone();
    broken["status"]["message"] = json!("An ERROR here");
    assert_eq!(status(&exprs, &broken), Ok(HealthStatus::Degraded));
}

#[test]
fn bad_expressions_name_entry_and_field() {
    let cases = [
        (json!("not a list"), "spec.healthCheckExprs: not a list"),
        (
            json!([3]),
            "spec.healthCheckExprs: entry 0 is not an object",
        ),
        (
            json!([{"apiVersion": "v1", "kind": "Widget"}]),
            "spec.healthCheckExprs[0].current is required",
        ),
        (
            json!([{"kind": "Widget", "current": "true"}]),
            "spec.healthCheckExprs[0].apiVersion is required",
        ),
        (
            json!([{"apiVersion": "v1", "current": "true"}]),
            "spec.healthCheckExprs[0].kind is required",
        ),
        (
            json!([{"apiVersion": "v1", "kind": "Widget", "current": "true"},
                   {"apiVersion": "v1", "kind": "Gadget", "current": "true", "failed": "status.("}]),
            "spec.healthCheckExprs[1].failed: ",
        ),
        (
            json!([{"apiVersion": "v1", "kind": "W", "current": 3}]),
            "spec.healthCheckExprs[0].current: not a string",
        ),
        (
            json!([{"apiVersion": "v1", "kind": "W", "current": "status.m.replace('a', status.m) == ''"}]),
            "spec.healthCheckExprs[0].current: replace() is not available",
        ),
        (
            json!([{"apiVersion": "v1", "kind": "W", "current": format!("true{}", " && true".repeat(600))}]),
            "spec.healthCheckExprs[0].current: ",
        ),
    ];
    for (value, expected) in cases {
        let error = HealthCheckExprs::parse(Some(&value)).unwrap_err();
        assert!(error.to_string().starts_with(expected), "{value}: {error}");
    }
}

#[test]
fn evaluation_errors_name_the_object() {
    let exprs = HealthCheckExprs::parse(Some(&json!([{
        "apiVersion": "example.com/v1", "kind": "Widget",
        "inProgress": "status.phase == 'Pending'",
        "current": "status.phase"
    }])))
    .unwrap();
    let missing = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "apps"}});
    let error = exprs.assess(&missing).unwrap().unwrap_err();
    assert_eq!(
        error.to_string(),
        "spec.healthCheckExprs[0].inProgress on Widget/apps/w: Undeclared reference to 'status'"
    );
    let not_bool = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "apps"}, "status": {"phase": "Running"}});
    let error = exprs.assess(&not_bool).unwrap().unwrap_err();
    assert!(
        error
            .to_string()
            .contains("current on Widget/apps/w: evaluated to string, not a bool"),
        "{error}"
    );
}

#[test]
fn costly_evaluations_are_refused_before_running() {
    let exprs = HealthCheckExprs::parse(Some(&json!([{
        "apiVersion": "example.com/v1", "kind": "Widget",
        "current": "spec.items.all(a, spec.items.all(b, spec.items.all(c, a + b + c >= 0)))"
    }])))
    .unwrap();
    let small = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"items": [1, 2, 3]}});
    assert_eq!(status(&exprs, &small), Ok(HealthStatus::Healthy));
    let items: Vec<i64> = (0..1000).collect();
    let large = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"items": items}});
    let started = std::time::Instant::now();
    let error = exprs.assess(&large).unwrap().unwrap_err();
    assert!(error.to_string().contains("more than the"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // A large list the expression does not range over does not count against it.
    let filter = HealthCheckExprs::parse(Some(&json!([{
        "apiVersion": "example.com/v1", "kind": "Widget",
        "current": "status.conditions.filter(e, e.type == 'Ready').all(e, status.conditions.exists(f, f.status == e.status))"
    }])))
    .unwrap();
    let mut object = large.clone();
    object["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
    assert_eq!(status(&filter, &object), Ok(HealthStatus::Healthy));
}
