use super::*;
use proptest::prelude::*;
use serde_json::json;

fn config(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn widget(ready: &str) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "apps"},
        "status": {"conditions": [{"type": "Ready", "status": ready}], "phase": "Running"}})
}

#[test]
fn a_script_overrides_the_built_in_rules() {
    let rules = CustomHealth::from_config_map(&config(&[(
        "resource.customizations.health.example.com_Widget",
        "if obj.status.phase == 'Running' then return {status = 'Suspended', message = 'by script'} end return {status = 'Degraded'}",
    )]));
    let assessed = rules.assess(&widget("True"));
    assert_eq!(
        assessed.health,
        Some(Health {
            status: HealthStatus::Suspended,
            message: "by script".into()
        })
    );
    assert_eq!(assessed.failure, None);
    // Another kind keeps the built-in rules.
    let mut gadget = widget("False");
    gadget["kind"] = json!("Gadget");
    assert_eq!(
        rules.health(&gadget).map(|h| h.status),
        Some(HealthStatus::Degraded)
    );
    // Even a kind plumb-core knows can be overridden, as in Argo CD.
    let rules = CustomHealth::from_config_map(&config(&[(
        "resource.customizations.health.ConfigMap",
        "return {status = 'Degraded', message = 'no'}",
    )]));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(
        rules.health(&cm).map(|h| h.status),
        Some(HealthStatus::Degraded)
    );
}

#[test]
fn a_failing_script_is_unknown_and_names_its_key() {
    let rules = CustomHealth::with_limits(
        &config(&[
            (
                "resource.customizations.health.example.com_Widget",
                "while true do end",
            ),
            (
                "resource.customizations.health.example.com_Gadget",
                "return {",
            ),
        ]),
        Limits {
            time: std::time::Duration::from_millis(20),
            ..Limits::default()
        },
    );
    let assessed = rules.assess(&widget("True"));
    let failure = assessed.failure.expect("a failure");
    assert_eq!(
        failure.source,
        "resource.customizations.health.example.com_Widget"
    );
    assert_eq!(
        failure.error,
        ScriptError::Timeout {
            limit: std::time::Duration::from_millis(20)
        }
    );
    let health = assessed.health.unwrap();
    assert_eq!(health.status, HealthStatus::Unknown);
    assert_eq!(
        health.message,
        "argocd-cm key \"resource.customizations.health.example.com_Widget\": health.lua ran longer than 20 ms and was stopped"
    );
    let mut gadget = widget("True");
    gadget["kind"] = json!("Gadget");
    let failure = rules.assess(&gadget).failure.unwrap();
    assert!(matches!(failure.error, ScriptError::Syntax { .. }));
}

#[test]
fn built_in_order() {
    let rules = CustomHealth::default();
    // plumb-core's rule for a Deployment.
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"paused": true}});
    assert_eq!(
        rules.health(&deployment).map(|h| h.status),
        Some(HealthStatus::Suspended)
    );
    // A known custom resource before plumb-core's generic Ready rule.
    let cert = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"},
        "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Issuing", "status": "True"}]}});
    assert_eq!(
        rules.health(&cert).map(|h| h.status),
        Some(HealthStatus::Progressing)
    );
    // Deleting wins, as in plumb-core.
    let mut deleting = cert.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    assert_eq!(rules.health(&deleting).unwrap().message, "Pending deletion");
    // Available when nothing else reads the object.
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "status": {"conditions": [{"type": "Available", "status": "True"}]}});
    assert_eq!(
        rules.health(&widget).map(|h| h.status),
        Some(HealthStatus::Healthy)
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
    assert_eq!(rules.health(&secret), None);
}

#[test]
fn config_problems_are_listed() {
    let rules = CustomHealth::from_config_map(&config(&[(
        "resource.customizations.health.a_b_c",
        "return {}",
    )]));
    assert_eq!(rules.problems().len(), 1);
    assert!(rules.scripts().is_empty());
}

/// Random JSON objects, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9 ]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("True"),
            Just("False"),
            Just("Ready"),
            Just("Available"),
            Just("Issuing")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("status".to_string()),
                    Just("type".to_string()),
                    Just("conditions".to_string()),
                    Just("observedGeneration".to_string()),
                    Just("generation".to_string()),
                    Just("phase".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just("example.com/v1"),
            Just("cert-manager.io/v1"),
            Just("argoproj.io/v1alpha1"),
            Just("kustomize.toolkit.fluxcd.io/v1"),
            Just("s3.aws.upbound.io/v1beta1"),
            Just("apps/v1"),
            Just("v1"),
        ],
        prop_oneof![
            Just("Widget"),
            Just("Certificate"),
            Just("Rollout"),
            Just("Kustomization"),
            Just("Bucket"),
            Just("Deployment"),
            Just("Pod"),
        ],
        json_value(),
        json_value(),
        json_value(),
    )
        .prop_map(|(api_version, kind, metadata, spec, status)| {
            json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec, "status": status})
        })
}

/// Lua-looking source: fragments of real syntax glued at random, plus raw noise.
fn lua_source() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        prop::sample::select(vec![
            "return ",
            "{status = 'Healthy'}",
            "{status = ",
            "obj.status",
            ".conditions[1]",
            " if ",
            " then ",
            " end ",
            " for i, c in ipairs(obj.status.conditions or {}) do ",
            " while ",
            " true ",
            " do ",
            "local hs = {} ",
            "hs.status = 'Progressing' ",
            "return hs ",
            "string.find(tostring(obj), '.-.-') ",
            "error('x') ",
            "pcall(",
            "function() ",
            ")",
            "(",
            "'",
            "\"",
            "[[",
            "--",
            "..",
            "#",
        ])
        .prop_map(String::from),
        "[ -~]{0,8}",
    ];
    prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_lua_never_panics(source in lua_source(), object in object()) {
        let limits = Limits { time: std::time::Duration::from_millis(20), ..Limits::default() };
        let _ = lua::check(&source, &limits);
        let _ = lua::evaluate(&source, &object, &limits);
    }

    #[test]
    fn random_objects_never_panic(object in object()) {
        const SCRIPT: &str = "  health.lua: |\n    local hs = {status = 'Healthy'}\n    if obj.status ~= nil and type(obj.status) == 'table' then\n      for _, c in ipairs(obj.status.conditions or {}) do\n        if type(c) == 'table' and c.status == 'False' then hs.status = 'Degraded' end\n      end\n    end\n    return hs\n";
        let _ = builtin(&object);
        let rules = CustomHealth::from_config_map(&config(&[(
            "resource.customizations",
            // `*/*` for kinds with a group, `*` for the core group, as in Argo CD.
            &format!("\"*/*\":\n{SCRIPT}\"*\":\n{SCRIPT}"),
        )]));
        let assessed = rules.assess(&object);
        prop_assert!(assessed.health.is_some());
        let exprs = HealthCheckExprs::parse(Some(&json!([{
            "apiVersion": object["apiVersion"], "kind": object["kind"],
            "inProgress": "has(status.phase) && status.phase == 'Running'",
            "failed": "status.conditions.exists(c, c.status == 'False')",
            "current": "status.conditions.all(c, c.type != 'Ready' || c.status == 'True')"
        }]))).unwrap();
        let _ = exprs.assess(&object);
    }

    #[test]
    fn random_config_maps_never_panic(entries in prop::collection::btree_map(
        prop_oneof![
            Just("resource.customizations".to_string()),
            "resource\\.customizations\\.(health|useOpenLibs|actions|x)\\.[a-z_.*]{0,12}",
            "[a-z.]{0,20}",
        ],
        "[ -~\n]{0,60}",
        0..6,
    )) {
        let rules = CustomHealth::from_config_map(&entries);
        let _ = rules.health(&widget("True"));
    }

    #[test]
    fn random_cel_never_panics(source in "[ -~]{0,40}", object in object()) {
        if let Ok(exprs) = HealthCheckExprs::parse(Some(&json!([{
            "apiVersion": object["apiVersion"], "kind": object["kind"], "current": source,
        }]))) {
            let _ = exprs.assess(&object);
        }
    }
}
