//! Property tests of the patch and apply engines over random JSON documents.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::apply::{Scope, Writer, apply, entries};
use crate::patch::{json_patch, merge_patch, strategic};
use crate::schema::Schema;

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d", "e"]).prop_map(str::to_string)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(|n| json!(n)),
        "[a-z]{0,3}".prop_map(Value::String),
    ]
}

/// Random JSON: objects with a small key alphabet, arrays, scalars.
fn doc() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Random JSON made of objects and scalars only.
fn tree() -> impl Strategy<Value = Value> {
    let nested = leaf().prop_recursive(4, 32, 4, |inner| {
        prop::collection::btree_map(key(), prop_oneof![inner, Just(Value::Null)], 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
    });
    prop::collection::btree_map(key(), nested, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), doc(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
}

/// Objects without nulls (apply treats null as removal, so round trips need none).
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

fn writer(manager: &str) -> Writer<'_> {
    Writer {
        manager,
        api_version: "v1",
        subresource: "",
        time: "2024-01-01T00:00:00Z",
        schema: Schema::Builtin("ConfigMap"),
        scope: Scope::All,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_patch_from_diff_reaches_target(a in doc(), b in doc()) {
        let p = serde_json::to_value(json_patch::diff(&a, &b)).expect("patch serializes");
        prop_assert_eq!(json_patch(&a, &p).expect("diff applies"), b);
    }

    #[test]
    fn strategic_equals_merge_without_lists_or_directives(a in tree(), p in tree()) {
        prop_assert_eq!(strategic(&a, &p, "ConfigMap").expect("smp"), merge_patch(&a, &p));
    }

    #[test]
    fn engines_never_panic(a in doc(), p in doc()) {
        let _ = json_patch(&a, &p);
        let _ = strategic(&a, &p, "Deployment");
        let _ = merge_patch(&a, &p);
        let _ = apply(&a, &p, &writer("m"), false);
    }

    #[test]
    fn apply_is_idempotent_and_owns_what_it_applied(live in object(), cfg in object()) {
        let cfg = strip_nulls(&cfg);
        let once = apply(&live, &cfg, &writer("m"), true).expect("forced apply");
        let twice = apply(&once, &cfg, &writer("m"), true).expect("forced apply");
        prop_assert_eq!(&once, &twice);
        let owned = entries(&once).into_iter().find(|e| e.manager == "m").map(|e| e.set);
        let expected = crate::fieldset::fields_of(&cfg, Schema::Builtin("ConfigMap"), false);
        prop_assert_eq!(owned.unwrap_or_default(), expected);
    }

    #[test]
    fn reapplying_a_subset_removes_the_rest(base in object(), extra in object()) {
        let base = strip_nulls(&base);
        let extra = strip_nulls(&extra);
        let mut full = base.clone();
        if let (Some(f), Some(e)) = (full.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                f.entry(k.clone()).or_insert(v.clone());
            }
        }
        let start = json!({});
        let applied = apply(&start, &full, &writer("m"), true).expect("apply full");
        let reduced = apply(&applied, &base, &writer("m"), true).expect("apply base");
        let mut content = reduced.clone();
        if let Some(m) = content.as_object_mut() {
            m.shift_remove("metadata");
        }
        let mut want = base.clone();
        if let Some(m) = want.as_object_mut() {
            m.shift_remove("metadata");
        }
        prop_assert_eq!(content, want);
    }
}

fn k8s_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "replicas",
        "selector",
        "matchLabels",
        "template",
        "spec",
        "metadata",
        "labels",
        "containers",
        "name",
        "image",
        "ports",
        "containerPort",
        "protocol",
        "resources",
        "limits",
        "cpu",
        "status",
        "conditions",
        "type",
        "foo",
        "replica",
    ])
    .prop_map(str::to_string)
}

/// Random JSON whose keys are often real Deployment field names.
fn k8s_doc() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(k8s_key(), prop_oneof![inner, Just(Value::Null)], 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn field_validation_never_panics_and_pruning_leaves_nothing_unknown(
        spec in k8s_doc(),
        meta in k8s_doc(),
        status in k8s_doc(),
        extra in k8s_doc(),
    ) {
        use crate::field_validation::{FieldValidation, Origin, admit, check_apply};
        use crate::typed::{Decoded, unknown_fields};
        let rt = crate::resources::Registry::new()
            .lookup("apps", "v1", "deployments")
            .expect("deployments");
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta, "spec": spec, "status": status, "foo": extra});
        let _ = check_apply(&rt, "v1", &obj);
        for validation in [FieldValidation::Ignore, FieldValidation::Warn, FieldValidation::Strict] {
            for origin in [
                Origin::Body,
                Origin::JsonOrMergePatch { ops: Some(&obj) },
                Origin::StrategicPatch { patch: &obj },
            ] {
                let mut o = obj.clone();
                let _ = admit(&rt, "v1", &mut o, validation, origin);
            }
        }
        let mut pruned = obj.clone();
        let before = unknown_fields("apps/v1", "Deployment", &obj);
        let admitted = admit(&rt, "v1", &mut pruned, FieldValidation::Ignore, Origin::Body);
        prop_assert!(admitted.is_ok());
        match before {
            Decoded::Unknown(_) => {
                prop_assert_eq!(unknown_fields("apps/v1", "Deployment", &pruned), Decoded::Unknown(vec![]));
            }
            Decoded::Undecodable(_) => prop_assert_eq!(pruned, obj),
            Decoded::Untyped => prop_assert!(false, "deployments are typed"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any JSON under unknown keys of a valid Deployment is reported at its
    /// path and pruned, and the rest of the object is kept as it was.
    #[test]
    fn random_json_under_unknown_keys_is_found_and_pruned(
        a in k8s_doc(), b in k8s_doc(), c in k8s_doc(), d in k8s_doc(),
    ) {
        use crate::typed::{Decoded, prune, unknown_fields};
        let clean = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "x"}},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 1}]}]}}}});
        let mut o = clean.clone();
        o["metadata"]["zz"] = a;
        o["spec"]["zz"] = b;
        o["spec"]["template"]["spec"]["containers"][0]["zz"] = c;
        o["spec"]["template"]["spec"]["containers"][0]["ports"][0]["zz"] = d;
        let Decoded::Unknown(paths) = unknown_fields("apps/v1", "Deployment", &o) else {
            return Err(TestCaseError::fail("a valid deployment decodes"));
        };
        let shown: Vec<String> = paths.iter().map(ToString::to_string).collect();
        prop_assert_eq!(shown, vec![
            "metadata.zz",
            "spec.template.spec.containers[0].ports[0].zz",
            "spec.template.spec.containers[0].zz",
            "spec.zz",
        ]);
        prune(&mut o, &paths);
        prop_assert_eq!(o, clean);
    }
}
