//! Matrix and merge generators.

mod support;

use plumb_appset::generate;
use serde_json::json;
use support::*;

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for d in ["apps/one", "apps/two"] {
        std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
    }
    dir
}

#[test]
fn matrix_of_git_directories_and_clusters() {
    let repo = repo();
    let mut fake = with_repo("r", repo.path());
    fake.secrets.push(cluster_secret(
        "staging",
        "https://staging.example",
        json!({}),
    ));
    let set = appset(json!({
        "generators": [{"matrix": {"generators": [
            {"git": {"repoURL": "r", "revision": "HEAD", "directories": [{"path": "apps/*"}]}},
            {"clusters": {"values": {"dir": "{{path.basename}}"}}}
        ]}}],
        "template": {"metadata": {"name": "{{path.basename}}-{{name}}"}, "spec": {"project": "default", "source": {"path": "{{path}}"}, "x": "{{values.dir}}"}}
    }));
    let apps = generate(&set, &fake).expect("generate");
    assert_eq!(
        names(&apps),
        [
            "one-staging",
            "one-in-cluster",
            "two-staging",
            "two-in-cluster"
        ]
    );
    assert_eq!(apps[2]["spec"]["x"], "two");
}

#[test]
fn matrix_second_child_is_interpolated_with_the_first() {
    let repo = tempfile::tempdir().expect("tempdir");
    write(repo.path(), "envs/dev/config.yaml", "replicas: 1\n");
    write(repo.path(), "envs/prod/config.yaml", "replicas: 3\n");
    let set = appset(json!({
        "goTemplate": true,
        "generators": [{"matrix": {"generators": [
            {"list": {"elements": [{"env": "dev"}, {"env": "prod"}]}},
            {"git": {"repoURL": "r", "revision": "HEAD", "files": [{"path": "envs/{{.env}}/config.yaml"}],
                     "values": {"later": "{{.path.basename}}"}}}
        ]}}],
        "template": {"metadata": {"name": "{{.env}}-{{.replicas}}"}, "spec": {"project": "default", "x": "{{.values.later}}"}}
    }));
    let apps = generate(&set, &with_repo("r", repo.path())).expect("generate");
    assert_eq!(names(&apps), ["dev-1", "prod-3"]);
    // values referring to the second child's own parameters survive interpolation.
    assert_eq!(apps[1]["spec"]["x"], "prod");
}

#[test]
fn matrix_go_template_first_child_wins_and_default_mode_refuses_conflicts() {
    let mk = |go: bool| {
        appset(json!({
            "goTemplate": go,
            "generators": [{"matrix": {"generators": [
                {"list": {"elements": [{"k": "a", "shared": "first"}]}},
                {"list": {"elements": [{"n": "b", "shared": "second"}]}}
            ]}}],
            "template": {"metadata": {"name": "x"}, "spec": {"project": "default", "v": if go { "{{.shared}}" } else { "{{shared}}" }}}
        }))
    };
    let apps = generate(&mk(true), &Fake::default()).expect("generate");
    assert_eq!(apps[0]["spec"]["v"], "first");
    assert_eq!(
        error_of(generate(&mk(false), &Fake::default())),
        "spec.generators[0].matrix: failed to combine string maps with merging params for the matrix generator: found duplicate key shared with different value, a: first ,b: second"
    );
}

#[test]
fn matrix_needs_exactly_two_children_with_one_generator_each() {
    let one =
        appset(json!({"generators": [{"matrix": {"generators": [{"list": {"elements": []}}]}}]}));
    assert_eq!(
        error_of(generate(&one, &Fake::default())),
        "spec.generators[0].matrix.generators: found less than two generators, Matrix support only two"
    );
    let three = appset(
        json!({"generators": [{"matrix": {"generators": [{"list": {}}, {"list": {}}, {"list": {}}]}}]}),
    );
    assert_eq!(
        error_of(generate(&three, &Fake::default())),
        "spec.generators[0].matrix.generators: found more than two generators, Matrix support only two"
    );
    let two_kinds = appset(json!({"generators": [{"matrix": {"generators": [
        {"list": {"elements": [{"a": "b"}]}, "clusters": {}}, {"list": {"elements": [{"c": "d"}]}}
    ]}}]}));
    assert_eq!(
        error_of(generate(&two_kinds, &Fake::default())),
        "spec.generators[0].matrix.generators[0]: found more than one generator in matrix.Generators"
    );
}

#[test]
fn nested_matrix_one_level_allowed_two_refused() {
    let inner = json!({"matrix": {"generators": [
        {"list": {"elements": [{"a": "1"}, {"a": "2"}]}},
        {"list": {"elements": [{"b": "x"}]}}
    ]}});
    let set = appset(json!({
        "generators": [{"matrix": {"generators": [inner, {"list": {"elements": [{"c": "y"}]}}]}}],
        "template": {"metadata": {"name": "{{a}}-{{b}}-{{c}}"}, "spec": {"project": "default"}}
    }));
    assert_eq!(
        names(&generate(&set, &Fake::default()).expect("generate")),
        ["1-x-y", "2-x-y"]
    );
    let too_deep = appset(json!({
        "generators": [{"matrix": {"generators": [
            {"matrix": {"generators": [{"matrix": {"generators": []}}, {"list": {}}]}},
            {"list": {"elements": [{"c": "y"}]}}
        ]}}]
    }));
    let err = error_of(generate(&too_deep, &Fake::default()));
    assert!(
        err.starts_with(
            "spec.generators[0].matrix.generators[0].matrix.generators[0].matrix: not supported yet"
        ),
        "{err}"
    );
}

#[test]
fn merge_overrides_by_merge_keys_in_base_order() {
    let mut fake = Fake::default();
    for name in ["c1", "c2", "c3"] {
        fake.secrets
            .push(cluster_secret(name, &format!("https://{name}"), json!({})));
    }
    let set = appset(json!({
        "generators": [{"merge": {"mergeKeys": ["server"], "generators": [
            {"clusters": {"values": {"kafka": "true", "redis": "false"}}},
            {"clusters": {"selector": {"matchLabels": {"argocd.argoproj.io/secret-type": "cluster"}}, "values": {"redis": "true"}}},
            {"list": {"elements": [{"server": "https://c2", "values.redis": "maybe"}]}}
        ]}}],
        "template": {"metadata": {"name": "{{name}}-{{values.kafka}}-{{values.redis}}"}, "spec": {"project": "default"}}
    }));
    let apps = generate(&set, &fake).expect("generate");
    assert_eq!(
        names(&apps),
        [
            "c1-true-true",
            "c2-true-maybe",
            "c3-true-true",
            "in-cluster-true-false"
        ]
    );
}

#[test]
fn merge_go_template_deep_merges() {
    let set = appset(json!({
        "goTemplate": true,
        "generators": [{"merge": {"mergeKeys": ["id"], "generators": [
            {"list": {"elements": [{"id": 1, "cfg": {"a": "base", "b": "base"}}, {"id": 2, "cfg": {"a": "two", "b": "two"}}]}},
            {"list": {"elements": [{"id": 1, "cfg": {"b": "over"}}]}}
        ]}}],
        "template": {"metadata": {"name": "app-{{.id}}-{{.cfg.a}}-{{.cfg.b}}"}, "spec": {"project": "default"}}
    }));
    assert_eq!(
        names(&generate(&set, &Fake::default()).expect("generate")),
        ["app-1-base-over", "app-2-two-two"]
    );
}

#[test]
fn merge_errors() {
    let no_keys = appset(
        json!({"generators": [{"merge": {"generators": [{"list": {"elements": []}}, {"list": {"elements": []}}]}}]}),
    );
    assert_eq!(
        error_of(generate(&no_keys, &Fake::default())),
        "spec.generators[0].merge.mergeKeys: no merge keys were specified, Merge requires at least one"
    );
    let one = appset(
        json!({"generators": [{"merge": {"mergeKeys": ["a"], "generators": [{"list": {"elements": []}}]}}]}),
    );
    assert_eq!(
        error_of(generate(&one, &Fake::default())),
        "spec.generators[0].merge.generators: found less than two generators, Merge requires two or more"
    );
    let dup = appset(
        json!({"generators": [{"merge": {"mergeKeys": ["a"], "generators": [
            {"list": {"elements": [{"a": "1"}, {"a": "1"}]}}, {"list": {"elements": []}}
        ]}}]}),
    );
    assert_eq!(
        error_of(generate(&dup, &Fake::default())),
        "spec.generators[0].merge.generators[0]: the parameters from a generator were not unique by the given mergeKeys, Merge requires all param sets to be unique. Duplicate key was {\"a\":\"1\"}"
    );
}

#[test]
fn matrix_product_is_bounded() {
    let elements: Vec<_> = (0..200).map(|i| json!({ "i": i.to_string() })).collect();
    let other: Vec<_> = (0..200).map(|j| json!({ "j": j.to_string() })).collect();
    let set = appset(
        json!({"generators": [{"matrix": {"generators": [{"list": {"elements": elements}}, {"list": {"elements": other}}]}}],
        "template": {"metadata": {"name": "{{i}}-{{j}}"}}}),
    );
    assert_eq!(
        error_of(generate(&set, &Fake::default())),
        "spec.generators[0].matrix: yields more than 10000 parameter sets"
    );
}

#[test]
fn requeue_interval_comes_from_git_generators() {
    let repo = repo();
    let fake = with_repo("r", repo.path());
    let git = |seconds: Option<u64>| {
        let mut g = json!({"git": {"repoURL": "r", "revision": "HEAD", "directories": [{"path": "apps/*"}]}});
        if let Some(s) = seconds {
            g["git"]["requeueAfterSeconds"] = json!(s);
        }
        g
    };
    let mk = |generators: serde_json::Value| {
        appset(
            json!({"generators": generators, "template": {"metadata": {"name": "{{path.basename}}-{{n}}"}, "spec": {"project": "default"}}}),
        )
    };
    let list = json!({"list": {"elements": [{"n": "x"}]}});
    let requeue = |set| {
        plumb_appset::generate_with_warnings(&set, &fake)
            .expect("generate")
            .requeue_after_seconds
    };
    assert_eq!(requeue(mk(json!([list.clone()]))), None);
    assert_eq!(
        requeue(mk(
            json!([{"matrix": {"generators": [git(None), list.clone()]}}])
        )),
        Some(180)
    );
    assert_eq!(
        requeue(mk(
            json!([{"matrix": {"generators": [git(Some(30)), list.clone()]}}])
        )),
        Some(30)
    );
}
