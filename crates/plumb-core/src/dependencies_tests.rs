use super::*;
use serde_json::json;

fn app(name: &str, labels: &[(&str, &str)], depends_on: Option<DependsOn>) -> AppNode {
    AppNode {
        namespace: "argocd".into(),
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        depends_on,
    }
}

fn on_names(patterns: &[&str]) -> Option<DependsOn> {
    Some(DependsOn {
        selectors: vec![DependencySelector {
            label_selector: None,
            name_pattern: patterns.iter().map(|p| p.to_string()).collect(),
        }],
        ..Default::default()
    })
}

fn r(name: &str) -> AppRef {
    AppRef {
        namespace: "argocd".into(),
        name: name.into(),
    }
}

fn names(refs: &[AppRef]) -> Vec<&str> {
    refs.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn parses_argo_cd_depends_on() {
    let value = json!({"selectors": [
        {"labelSelector": {"matchLabels": {"tier": "db"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}},
        {"namePattern": ["cert-manager", "ingress-*"]}],
        "blockOnEmpty": true, "timeout": 120});
    let depends_on: DependsOn = serde_json::from_value(value).unwrap();
    assert!(depends_on.block_on_empty);
    assert_eq!(depends_on.timeout, Some(120));
    assert_eq!(
        depends_on.selectors[1].name_pattern,
        ["cert-manager", "ingress-*"]
    );
}

#[test]
fn selectors_pick_by_name_and_labels_within_the_namespace() {
    let selector = DependencySelector {
        label_selector: Some(LabelSelector {
            match_labels: [("tier".to_string(), "db".to_string())].into(),
            match_expressions: vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: "NotIn".into(),
                values: vec!["dev".into()],
            }],
        }),
        name_pattern: vec![],
    };
    let backend = app(
        "backend",
        &[("tier", "api")],
        Some(DependsOn {
            selectors: vec![
                selector,
                DependencySelector {
                    label_selector: None,
                    name_pattern: vec!["cache-*".into()],
                },
            ],
            ..Default::default()
        }),
    );
    let mut elsewhere = app("postgres-other", &[("tier", "db")], None);
    elsewhere.namespace = "team-b".into();
    let apps = vec![
        backend,
        app("postgres", &[("tier", "db"), ("env", "prod")], None),
        app("postgres-dev", &[("tier", "db"), ("env", "dev")], None),
        app("mysql", &[("tier", "db")], None),
        app("cache-redis", &[], None),
        app("frontend", &[("tier", "web")], None),
        elsewhere,
    ];
    let graph = DependencyGraph::build(&apps).unwrap();
    assert_eq!(
        names(&graph.dependencies_of(&r("backend"))),
        ["cache-redis", "mysql", "postgres"]
    );
    assert_eq!(names(&graph.dependents_of(&r("mysql"))), ["backend"]);
}

#[test]
fn both_matchers_of_one_selector_must_match_and_self_is_excluded() {
    let selector = DependencySelector {
        label_selector: Some(LabelSelector {
            match_labels: [("tier".into(), "db".into())].into(),
            ..Default::default()
        }),
        name_pattern: vec!["pg-*".into()],
    };
    let apps = vec![
        app(
            "pg-main",
            &[("tier", "db")],
            Some(DependsOn {
                selectors: vec![selector],
                ..Default::default()
            }),
        ),
        app("pg-replica", &[("tier", "db")], None),
        app("pg-tools", &[("tier", "ops")], None),
        app("mysql", &[("tier", "db")], None),
    ];
    let graph = DependencyGraph::build(&apps).unwrap();
    assert_eq!(names(&graph.dependencies_of(&r("pg-main"))), ["pg-replica"]);
}

#[test]
fn readiness_waits_for_dependencies_and_block_on_empty() {
    let mut blocking = on_names(&["missing-*"]);
    if let Some(d) = blocking.as_mut() {
        d.block_on_empty = true;
    }
    let apps = vec![
        app("db", &[], None),
        app("api", &[], on_names(&["db"])),
        app("web", &[], on_names(&["missing-*"])),
        app("strict", &[], blocking),
    ];
    let graph = DependencyGraph::build(&apps).unwrap();
    assert_eq!(
        graph.readiness(&r("api"), |_| false),
        Readiness::Waiting(vec![r("db")])
    );
    assert_eq!(
        graph.readiness(&r("api"), |a| a.name == "db"),
        Readiness::Ready
    );
    assert_eq!(graph.readiness(&r("web"), |_| false), Readiness::Ready);
    assert_eq!(
        graph.readiness(&r("strict"), |_| true),
        Readiness::WaitingForAny
    );
}

#[test]
fn order_puts_dependencies_first_deterministically() {
    let apps = vec![
        app("web", &[], on_names(&["api"])),
        app("api", &[], on_names(&["db", "cache"])),
        app("db", &[], None),
        app("cache", &[], None),
        app("docs", &[], None),
    ];
    let order = DependencyGraph::build(&apps).unwrap().order().unwrap();
    assert_eq!(names(&order), ["cache", "db", "api", "docs", "web"]);
}

#[test]
fn cycles_are_errors_with_their_path() {
    let apps = vec![
        app("a", &[], on_names(&["b"])),
        app("b", &[], on_names(&["c"])),
        app("c", &[], on_names(&["a"])),
        app("d", &[], on_names(&["a"])),
    ];
    let graph = DependencyGraph::build(&apps).unwrap();
    let cycle = graph.find_cycle().unwrap();
    assert_eq!(names(&cycle), ["a", "b", "c", "a"]);
    let error = graph.order().unwrap_err();
    assert_eq!(
        error.to_string(),
        "dependency cycle: argocd/a -> argocd/b -> argocd/c -> argocd/a"
    );
    // A two-application cycle through labels.
    let by_label = |value: &str| {
        Some(DependsOn {
            selectors: vec![DependencySelector {
                label_selector: Some(LabelSelector {
                    match_labels: [("role".into(), value.into())].into(),
                    ..Default::default()
                }),
                name_pattern: vec![],
            }],
            ..Default::default()
        })
    };
    let apps = vec![
        app("x", &[("role", "x")], by_label("y")),
        app("y", &[("role", "y")], by_label("x")),
    ];
    let cycle = DependencyGraph::build(&apps).unwrap().find_cycle().unwrap();
    assert_eq!(names(&cycle), ["x", "y", "x"]);
}

#[test]
fn long_chains_do_not_overflow_the_stack() {
    let count = 20_000;
    let apps: Vec<AppNode> = (0..count)
        .map(|i| {
            let name = format!("app-{i:05}");
            let depends_on = (i > 0).then(|| DependsOn {
                selectors: vec![DependencySelector {
                    label_selector: Some(LabelSelector {
                        match_labels: [("index".into(), format!("{}", i - 1))].into(),
                        ..Default::default()
                    }),
                    name_pattern: vec![],
                }],
                ..Default::default()
            });
            let mut node = app(&name, &[], depends_on);
            node.labels.insert("index".into(), i.to_string());
            node
        })
        .collect();
    // Label matching is linear per application; keep the build itself to a smaller slice.
    let graph = DependencyGraph::build(&apps[..500]).unwrap();
    let order = graph.order().unwrap();
    assert_eq!(order.first().map(|a| a.name.as_str()), Some("app-00000"));
    assert_eq!(order.last().map(|a| a.name.as_str()), Some("app-00499"));
    // A deep chain for the cycle search, built directly.
    let mut deep = DependencyGraph::default();
    for i in 0..count {
        let deps = if i + 1 < count {
            [r(&format!("n{}", i + 1))].into()
        } else {
            BTreeSet::new()
        };
        deep.edges.insert(r(&format!("n{i}")), deps);
    }
    assert!(deep.find_cycle().is_none());
    assert_eq!(deep.order().unwrap().len(), count);
}

#[test]
fn invalid_selectors_name_the_application_and_field() {
    let bad = |selector: DependencySelector| {
        DependencyGraph::build(&[app(
            "api",
            &[],
            Some(DependsOn {
                selectors: vec![selector],
                ..Default::default()
            }),
        )])
        .unwrap_err()
        .to_string()
    };
    let error = bad(DependencySelector::default());
    assert_eq!(
        error,
        "application argocd/api: spec.dependsOn.selectors[0]: selects nothing: set labelSelector or namePattern"
    );
    let error = bad(DependencySelector {
        label_selector: Some(LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "Equals".into(),
                values: vec![],
            }],
            ..Default::default()
        }),
        name_pattern: vec![],
    });
    assert!(
        error.contains("labelSelector.matchExpressions[0]: unknown operator \"Equals\""),
        "{error}"
    );
    let error = bad(DependencySelector {
        label_selector: Some(LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "In".into(),
                values: vec![],
            }],
            ..Default::default()
        }),
        name_pattern: vec![],
    });
    assert!(error.contains("operator In needs values"), "{error}");
    let error = bad(DependencySelector {
        label_selector: None,
        name_pattern: vec!["ok".into(), "{a".into()],
    });
    assert!(error.contains("namePattern[1]: invalid glob"), "{error}");
    let error = DependencyGraph::build(&[app("a", &[], None), app("a", &[], None)]).unwrap_err();
    assert_eq!(error, DependencyError::Duplicate { app: r("a") });
}

#[test]
fn label_selector_semantics() {
    let labels: BTreeMap<String, String> = [("a".into(), "1".into())].into();
    let selector = |operator: &str, values: &[&str]| LabelSelector {
        match_expressions: vec![LabelSelectorRequirement {
            key: "a".into(),
            operator: operator.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }],
        ..Default::default()
    };
    assert!(LabelSelector::default().matches(&labels));
    assert!(selector("In", &["1", "2"]).matches(&labels));
    assert!(!selector("NotIn", &["1"]).matches(&labels));
    assert!(selector("NotIn", &["1"]).matches(&BTreeMap::new()));
    assert!(selector("Exists", &[]).matches(&labels));
    assert!(selector("DoesNotExist", &[]).matches(&BTreeMap::new()));
}
