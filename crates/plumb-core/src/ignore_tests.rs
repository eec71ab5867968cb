use super::*;
use serde_json::json;

fn rule(group: &str, kind: &str) -> IgnoreDifference {
    IgnoreDifference {
        group: group.into(),
        kind: kind.into(),
        ..Default::default()
    }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "annotations": {"a/b": "1", "keep": "x"}},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [
            {"name": "app", "image": image}, {"name": "proxy", "image": "proxy:1"}]}}}})
}

#[test]
fn parses_the_application_form() {
    let spec = json!([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"],
        "jqPathExpressions": [".spec.template"], "managedFieldsManagers": ["kube-controller-manager"]},
        {"kind": "ConfigMap", "name": "c", "namespace": "n"}]);
    let rules: Vec<IgnoreDifference> = serde_json::from_value(spec).unwrap();
    assert_eq!(rules[0].json_pointers, ["/spec/replicas"]);
    assert_eq!(
        rules[0].managed_fields_managers,
        ["kube-controller-manager"]
    );
    assert_eq!(rules[1].group, "");
    assert!(IgnoreRules::compile(&rules).is_ok());
}

#[test]
fn json_pointers_are_removed_from_both_sides() {
    let mut r = rule("apps", "Deployment");
    r.json_pointers = vec![
        "/spec/replicas".into(),
        "/metadata/annotations/a~1b".into(),
        "/spec/nope/x".into(),
    ];
    let rules = IgnoreRules::compile(&[r]).unwrap();
    let mut live = deployment(5, "app:1");
    let mut desired = deployment(3, "app:1");
    assert!(
        rules
            .normalize(Some(&mut live), Some(&mut desired))
            .is_empty()
    );
    assert_eq!(live, desired);
    assert!(live["spec"].get("replicas").is_none());
    assert_eq!(live["metadata"]["annotations"], json!({"keep": "x"}));
}

#[test]
fn pointer_into_arrays_and_rfc6901_escapes() {
    assert_eq!(parse_pointer("/a~0b/c~1d/0").unwrap(), ["a~b", "c/d", "0"]);
    assert_eq!(parse_pointer("").unwrap(), Vec::<String>::new());
    assert!(parse_pointer("a/b").is_err());
    assert!(parse_pointer("/a~2").is_err());
    let mut value = json!({"a": [1, 2, 3]});
    delete_pointer(&mut value, &parse_pointer("/a/1").unwrap());
    assert_eq!(value, json!({"a": [1, 3]}));
    // Leading zeros and `-` never name an element.
    delete_pointer(&mut value, &parse_pointer("/a/01").unwrap());
    delete_pointer(&mut value, &parse_pointer("/a/-").unwrap());
    assert_eq!(value, json!({"a": [1, 3]}));
}

#[test]
fn jq_expressions_select_container_images() {
    let mut r = rule("apps", "Deployment");
    r.jq_path_expressions =
        vec![r#".spec.template.spec.containers[] | select(.name == "app") | .image"#.into()];
    let rules = IgnoreRules::compile(&[r]).unwrap();
    let mut live = deployment(3, "app:2");
    let mut desired = deployment(3, "app:1");
    assert!(
        rules
            .normalize(Some(&mut live), Some(&mut desired))
            .is_empty()
    );
    assert_eq!(live, desired);
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][1]["image"],
        "proxy:1"
    );
}

#[test]
fn matching_uses_globs_for_group_and_kind_and_exact_name_namespace() {
    let key = |group: &str, kind: &str, ns: &str, name: &str| ObjectKey {
        group: group.into(),
        kind: kind.into(),
        namespace: ns.into(),
        name: name.into(),
    };
    let rules = IgnoreRules::compile(&[rule("*", "*")]).unwrap();
    assert!(rules.applies_to(&key("", "ConfigMap", "a", "b")));
    assert!(rules.applies_to(&key("apps", "Deployment", "a", "b")));
    // An empty group is the core group only.
    let rules = IgnoreRules::compile(&[rule("", "ConfigMap")]).unwrap();
    assert!(rules.applies_to(&key("", "ConfigMap", "a", "b")));
    assert!(!rules.applies_to(&key("example.com", "ConfigMap", "a", "b")));
    let rules = IgnoreRules::compile(&[rule("*.example.com", "Widget*")]).unwrap();
    assert!(rules.applies_to(&key("x.example.com", "WidgetSet", "", "w")));
    assert!(!rules.applies_to(&key("example.org", "WidgetSet", "", "w")));
    let mut exact = rule("apps", "Deployment");
    exact.name = "web".into();
    exact.namespace = "prod".into();
    let rules = IgnoreRules::compile(&[exact]).unwrap();
    assert!(rules.applies_to(&key("apps", "Deployment", "prod", "web")));
    assert!(!rules.applies_to(&key("apps", "Deployment", "prod", "web2")));
    assert!(!rules.applies_to(&key("apps", "Deployment", "dev", "web")));
}

#[test]
fn rules_for_other_objects_change_nothing() {
    let mut r = rule("", "ConfigMap");
    r.json_pointers = vec!["/spec/replicas".into()];
    let rules = IgnoreRules::compile(&[r]).unwrap();
    let mut live = deployment(5, "a");
    rules.normalize(Some(&mut live), None);
    assert_eq!(live, deployment(5, "a"));
}

#[test]
fn compile_errors_name_rule_and_field() {
    let mut r = rule("apps", "Deployment");
    r.json_pointers = vec!["/ok".into(), "spec".into()];
    let error = IgnoreRules::compile(&[rule("", "ConfigMap"), r])
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("ignoreDifferences[1].jsonPointers[1] \"spec\""),
        "{error}"
    );
    let mut r = rule("apps", "Deployment");
    r.jq_path_expressions = vec!["..".into()];
    let error = IgnoreRules::compile(&[r]).unwrap_err().to_string();
    assert!(
        error.starts_with("ignoreDifferences[0].jqPathExpressions[0] \"..\": not supported"),
        "{error}"
    );
    let error = IgnoreRules::compile(&[rule("[apps", "Deployment")])
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("ignoreDifferences[0].group: invalid glob"),
        "{error}"
    );
    let error = IgnoreRules::compile(&[rule("apps", "")])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("ignoreDifferences[0].kind: missing"),
        "{error}"
    );
}

#[test]
fn failing_expression_is_reported_and_skipped() {
    let mut r = rule("apps", "Deployment");
    r.jq_path_expressions = vec![".metadata.name.x".into(), ".spec.replicas".into()];
    let rules = IgnoreRules::compile(&[r]).unwrap();
    let mut live = deployment(5, "a");
    let mut desired = deployment(3, "a");
    let problems = rules.normalize(Some(&mut live), Some(&mut desired));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .to_string()
            .starts_with("apps/Deployment prod/web: ignoreDifferences[0].jqPathExpressions[0]")
    );
    // The other expression still applied.
    assert_eq!(live, desired);
}

fn with_managed_fields(mut object: Value, entries: Value) -> Value {
    object["metadata"]["managedFields"] = entries;
    object
}

#[test]
fn managed_fields_of_listed_managers_are_ignored_where_they_differ() {
    let live = with_managed_fields(
        deployment(7, "app:2"),
        json!([
            {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {
                "f:spec": {"f:replicas": {}}}},
            {"manager": "mutator", "operation": "Update", "fieldsV1": {
                "f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {".": {}, "f:image": {}}}}}}}},
            {"manager": "plumb", "operation": "Apply", "fieldsV1": {
                "f:metadata": {"f:annotations": {"f:keep": {}}}}}
        ]),
    );
    let mut r = rule("apps", "Deployment");
    r.managed_fields_managers = vec!["kube-controller-manager".into(), "mutator".into()];
    let rules = IgnoreRules::compile(&[r]).unwrap();
    let mut live_copy = live.clone();
    let mut desired = deployment(3, "app:1");
    desired["metadata"]["annotations"]["keep"] = json!("changed");
    let problems = rules.normalize(Some(&mut live_copy), Some(&mut desired));
    assert!(problems.is_empty(), "{problems:?}");
    // replicas and the app image are gone from both; the plumb-owned annotation still differs.
    assert!(live_copy["spec"].get("replicas").is_none());
    assert!(desired["spec"].get("replicas").is_none());
    assert!(
        live_copy["spec"]["template"]["spec"]["containers"][0]
            .get("image")
            .is_none()
    );
    assert!(
        desired["spec"]["template"]["spec"]["containers"][0]
            .get("image")
            .is_none()
    );
    assert_eq!(
        desired["spec"]["template"]["spec"]["containers"][1]["image"],
        "proxy:1"
    );
    assert_ne!(
        live_copy["metadata"]["annotations"],
        desired["metadata"]["annotations"]
    );
}

#[test]
fn managed_fields_equal_values_and_set_elements() {
    let live = with_managed_fields(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a", "b"]},
            "data": {"same": "1"}}),
        json!([{"manager": "other", "fieldsV1": {
            "f:data": {"f:same": {}}, "f:metadata": {"f:finalizers": {"v:\"b\"": {}}}}}]),
    );
    let mut r = rule("", "ConfigMap");
    r.managed_fields_managers = vec!["other".into()];
    let rules = IgnoreRules::compile(&[r]).unwrap();
    let mut live_copy = live.clone();
    let mut desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "finalizers": ["a"]}, "data": {"same": "1"}});
    assert!(
        rules
            .normalize(Some(&mut live_copy), Some(&mut desired))
            .is_empty()
    );
    // Equal fields stay; the `b` finalizer only live has is removed.
    assert_eq!(live_copy["data"]["same"], "1");
    assert_eq!(live_copy["metadata"]["finalizers"], json!(["a"]));
}

#[test]
fn malformed_managed_fields_are_reported() {
    let live = with_managed_fields(
        deployment(1, "a"),
        json!([{"manager": "m", "fieldsV1": {"x:spec": {}}}, {"manager": "m", "fieldsV1": {"f:spec": 3}}]),
    );
    let mut r = rule("apps", "Deployment");
    r.managed_fields_managers = vec!["m".into()];
    let rules = IgnoreRules::compile(&[r]).unwrap();
    let mut live_copy = live.clone();
    let mut desired = deployment(1, "a");
    let problems = rules.normalize(Some(&mut live_copy), Some(&mut desired));
    assert_eq!(problems.len(), 2);
    assert!(
        problems[0]
            .to_string()
            .contains("metadata.managedFields[0].fieldsV1"),
        "{}",
        problems[0]
    );
    assert!(
        problems[0].to_string().contains("unknown prefix"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].to_string().contains("expected a mapping"),
        "{}",
        problems[1]
    );
}

#[test]
fn respect_keeps_the_live_value_of_ignored_fields() {
    let rules = IgnoreRules::compile(&[serde_json::from_value(serde_json::json!({
        "group": "apps", "kind": "Deployment",
        "jsonPointers": ["/spec/replicas", "/spec/template/spec/containers/0/image"]}))
    .unwrap()])
    .unwrap();
    let live = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "a", "image": "live:2"}]}}}});
    let desired = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps", "labels": {"x": "y"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "git:1"}]}}}});
    let applied = rules.respect(&live, &desired);
    assert_eq!(applied["spec"]["replicas"], 5);
    assert_eq!(
        applied["spec"]["template"]["spec"]["containers"][0]["image"],
        "live:2"
    );
    assert_eq!(
        applied["metadata"]["labels"]["x"], "y",
        "the rest comes from Git"
    );
    // Another kind: untouched.
    let cm =
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(rules.respect(&live, &cm), cm);
}
