use super::*;
use proptest::prelude::*;
use serde_json::json;

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"x": "1", "a.b/c": "2"}, "labels": {"app": "web"}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "istio-proxy", "image": "istio:1"},
            {"name": "sidecar", "image": "side:1"}
        ]}}}
    })
}

fn delete(expression: &str) -> Value {
    let mut value = deployment();
    PathExpression::parse(expression)
        .unwrap()
        .delete(&mut value)
        .unwrap();
    value
}

fn images(value: &Value) -> Vec<Value> {
    value["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.get("image").cloned().unwrap_or(Value::Null))
        .collect()
}

#[test]
fn field_paths_delete_fields() {
    let value = delete(".spec.replicas");
    assert!(value["spec"].get("replicas").is_none());
    assert!(value["spec"].get("template").is_some());
    let value = delete(r#".metadata.annotations["a.b/c"]"#);
    assert_eq!(value["metadata"]["annotations"], json!({"x": "1"}));
    let value = delete(r#".metadata."labels""#);
    assert!(value["metadata"].get("labels").is_none());
    let value = delete(r#".metadata | .annotations.x"#);
    assert_eq!(value["metadata"]["annotations"], json!({"a.b/c": "2"}));
}

#[test]
fn select_by_name_deletes_only_that_image() {
    let value =
        delete(r#".spec.template.spec.containers[] | select(.name == "istio-proxy") | .image"#);
    assert_eq!(
        images(&value),
        [json!("app:1"), Value::Null, json!("side:1")]
    );
    let value =
        delete(r#".spec.template.spec.containers[] | select(.name | test("^(istio|side)"))"#);
    assert_eq!(images(&value), [json!("app:1")]);
    let value = delete(
        r#".spec.template.spec.containers[] | select(.name != "app" and (.name | startswith("s")))"#,
    );
    assert_eq!(images(&value), [json!("app:1"), json!("istio:1")]);
    let value = delete(r#".spec.template.spec.containers[] | select(has("env") | not) | .image"#);
    assert_eq!(images(&value), [json!("app:1"), Value::Null, Value::Null]);
}

#[test]
fn iterate_index_comma_and_negative_index() {
    let value = delete(".spec.template.spec.containers[].image");
    assert_eq!(images(&value), [Value::Null, Value::Null, Value::Null]);
    let value = delete(".spec.template.spec.containers[0], .spec.template.spec.containers[2]");
    assert_eq!(images(&value), [json!("istio:1")]);
    let value = delete(".spec.template.spec.containers[-1]");
    assert_eq!(images(&value), [json!("app:1"), json!("istio:1")]);
    let value = delete(".metadata.annotations[]");
    assert_eq!(value["metadata"]["annotations"], json!({}));
}

#[test]
fn missing_paths_are_no_ops_and_optional_silences_type_errors() {
    assert_eq!(delete(".spec.nothing.here"), deployment());
    assert_eq!(delete(".spec.nothing[]?"), deployment());
    assert_eq!(delete(".spec.replicas[]?"), deployment());
    assert_eq!(delete(".metadata.name.x?"), deployment());
    let mut value = deployment();
    let error = PathExpression::parse(".metadata.name.x")
        .unwrap()
        .delete(&mut value)
        .unwrap_err();
    assert_eq!(
        error,
        JqError::Runtime("cannot index string with \"x\"".into())
    );
    assert_eq!(value, deployment(), "a failed deletion changes nothing");
    let error = PathExpression::parse(".spec.nothing[]")
        .unwrap()
        .paths(&deployment())
        .unwrap_err();
    assert_eq!(error, JqError::Runtime("cannot iterate over null".into()));
}

#[test]
fn paths_are_reported_like_jq() {
    let paths = PathExpression::parse(
        ".spec.template.spec.containers[] | select(.name == \"sidecar\") | .image",
    )
    .unwrap()
    .paths(&deployment())
    .unwrap();
    assert_eq!(
        paths,
        [vec![
            PathSegment::Key("spec".into()),
            PathSegment::Key("template".into()),
            PathSegment::Key("spec".into()),
            PathSegment::Key("containers".into()),
            PathSegment::Index(2),
            PathSegment::Key("image".into()),
        ]]
    );
}

#[test]
fn comparisons_follow_jq_ordering() {
    let value = json!([null, false, true, 1, 2.5, "a", "b", [1], {"a": 1}, "c"]);
    let expression = PathExpression::parse(".[] | select(. >= 2 and . < \"b\")").unwrap();
    let paths = expression.paths(&value).unwrap();
    assert_eq!(
        paths,
        [vec![PathSegment::Index(4)], vec![PathSegment::Index(5)]]
    );
    let paths = PathExpression::parse(r#".[] | select(. == null or . > "b")"#)
        .unwrap()
        .paths(&value)
        .unwrap();
    assert_eq!(
        paths,
        [
            vec![PathSegment::Index(0)],
            vec![PathSegment::Index(7)],
            vec![PathSegment::Index(8)],
            vec![PathSegment::Index(9)]
        ]
    );
}

#[test]
fn unsupported_and_invalid_expressions_are_clear_errors() {
    let cases = [
        ("..", "recursive descent"),
        (".a |= 1", "update-assignment"),
        (".a + 1", "arithmetic"),
        ("$x", "variables"),
        ("def f: .; f", "'def'"),
        ("path(.a)", "function 'path'"),
        (".a == 1", "not a path expression"),
        ("1", "not a path expression"),
        ("length", "not a path expression"),
        (".a[1:2]", "slices"),
        ("{a: 1}", "object construction"),
        ("[.a]", "array construction"),
        (".a // .b", "alternative operator"),
        ("\"\\(1)\"", "string interpolation"),
        ("select(.a | test(.b))", "string literal"),
    ];
    for (expression, needle) in cases {
        let error = PathExpression::parse(expression).unwrap_err();
        assert!(error.to_string().contains(needle), "{expression}: {error}");
    }
    let parse_errors = [
        ".a[",
        ".a)",
        "select(",
        ".\"abc",
        ".a | ",
        "select(.a == 1 == 2)",
        ".a.",
        "test(\"(\")",
    ];
    for expression in parse_errors {
        let error = PathExpression::parse(expression).unwrap_err();
        assert!(
            matches!(error, JqError::Parse { .. }),
            "{expression}: {error:?}"
        );
    }
}

#[test]
fn limits_stop_hostile_expressions() {
    let long = ".a".repeat(MAX_EXPRESSION_LEN);
    assert!(matches!(
        PathExpression::parse(&long),
        Err(JqError::Limit(_))
    ));
    let deep = format!("{}.{}", "(".repeat(100), ")".repeat(100));
    assert!(matches!(
        PathExpression::parse(&deep),
        Err(JqError::Limit(_))
    ));
    // Each `(.,.)` doubles the outputs: 2^40 paths if nothing stopped it.
    let explosive = vec!["(.,.)"; 40].join(" | ");
    let error = PathExpression::parse(&explosive)
        .unwrap()
        .paths(&json!({}))
        .unwrap_err();
    assert!(matches!(error, JqError::Limit(_)), "{error:?}");
    // A wide fan-out inside select is bounded too.
    let big = Value::Array((0..2000).map(Value::from).collect());
    let nested = ".[] | select(. as_is)";
    assert!(PathExpression::parse(nested).is_err());
    let quadratic = ".[] | select([.[]] | length > 0)";
    assert!(PathExpression::parse(quadratic).is_err());
    let fan = ".[] | select((.,.,.,.,.,.,.,.) | (.,.,.,.,.,.,.,.) | (.,.,.,.,.,.,.,.) | . > 5)";
    let error = PathExpression::parse(fan).unwrap().paths(&big).unwrap_err();
    assert!(matches!(error, JqError::Limit(_)), "{error:?}");
}

#[test]
fn long_chains_do_not_deepen_recursion() {
    let commas = vec![".a"; 1300].join(",");
    let paths = PathExpression::parse(&commas)
        .unwrap()
        .paths(&json!({"a": 1}))
        .unwrap();
    assert_eq!(paths.len(), 1300);
    let ors = format!(".[] | select({})", vec![". == 1"; 350].join(" or "));
    let paths = PathExpression::parse(&ors)
        .unwrap()
        .paths(&json!([0, 1]))
        .unwrap();
    assert_eq!(paths, [vec![PathSegment::Index(1)]]);
    let pipes = vec![".a"; 100].join(" | ");
    assert!(matches!(
        PathExpression::parse(&pipes),
        Err(JqError::Limit(_))
    ));
}

#[test]
fn expressions_argo_cd_users_write() {
    let value = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now", "keep": "1"},
            "labels": {"app.kubernetes.io/version": "1.2"}},
        "webhooks": [{"name": "a", "clientConfig": {"caBundle": "x", "url": "u"}}, {"name": "b"}],
        "spec": {"template": {"spec": {
            "initContainers": [{"name": "istio-init", "image": "i"}],
            "containers": [{"name": "app", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]}}}
    });
    let cases = [
        r#".metadata.annotations."kubectl.kubernetes.io/restartedAt""#,
        r#".metadata.labels["app.kubernetes.io/version"]"#,
        ".webhooks[]?.clientConfig.caBundle",
        r#".spec.template.spec.initContainers[] | select(.name == "istio-init")"#,
        r#".spec.template.spec.containers[].env[]? | select(.name == "X")"#,
        r#".spec.template.spec.containers[] | select(.name | startswith("ap")) | .env[] | select(.value == "2") | .value"#,
    ];
    let mut copy = value.clone();
    for expression in cases {
        PathExpression::parse(expression)
            .unwrap()
            .delete(&mut copy)
            .unwrap();
    }
    assert_eq!(copy["metadata"]["annotations"], json!({"keep": "1"}));
    assert_eq!(copy["metadata"]["labels"], json!({}));
    assert_eq!(
        copy["webhooks"],
        json!([{"name": "a", "clientConfig": {"url": "u"}}, {"name": "b"}])
    );
    assert_eq!(
        copy["spec"]["template"]["spec"]["initContainers"],
        json!([])
    );
    assert_eq!(
        copy["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "Y"}])
    );
}

#[test]
fn delete_whole_document_and_dedup() {
    let mut value = json!({"a": [1, 2, 3]});
    PathExpression::parse(".a[0], .a[0], .a[2]")
        .unwrap()
        .delete(&mut value)
        .unwrap();
    assert_eq!(value, json!({"a": [2]}));
    let mut value = json!({"a": 1});
    PathExpression::parse(".")
        .unwrap()
        .delete(&mut value)
        .unwrap();
    assert_eq!(value, Value::Null);
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn expression_fragments() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just(".".to_string()),
        Just(".a".to_string()),
        Just(".b".to_string()),
        Just("[]".to_string()),
        Just("[]?".to_string()),
        Just("[0]".to_string()),
        Just("[-1]".to_string()),
        Just("[\"a\"]".to_string()),
        Just(" | ".to_string()),
        Just(", ".to_string()),
        Just("select(".to_string()),
        Just(")".to_string()),
        Just("(".to_string()),
        Just(" == ".to_string()),
        Just(" and ".to_string()),
        Just(" or ".to_string()),
        Just("not".to_string()),
        Just("\"a\"".to_string()),
        Just("1".to_string()),
        Just("?".to_string()),
        Just("..".to_string()),
        Just("has(\"a\")".to_string()),
        Just("test(\"a+\")".to_string()),
        Just("length".to_string()),
        Just("empty".to_string()),
        "[ -~]{0,3}".prop_map(|s: String| s),
    ];
    prop::collection::vec(fragment, 0..16).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_expressions_never_panic(expression in expression_fragments(), value in arbitrary_json()) {
        if let Ok(compiled) = PathExpression::parse(&expression) {
            let mut copy = value.clone();
            let _ = compiled.delete(&mut copy);
        }
    }

    #[test]
    fn random_bytes_never_panic(expression in "\\PC{0,64}", value in arbitrary_json()) {
        if let Ok(compiled) = PathExpression::parse(&expression) {
            let _ = compiled.paths(&value);
        }
    }
}
