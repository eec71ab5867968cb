//! The Application template: both modes, finalizers, owner references, templatePatch,
//! generator-level templates, name validation and bad input.

mod support;

use plumb_appset::{RESOURCES_FINALIZER, generate};
use serde_json::{Value, json};
use support::*;

fn one(spec: Value) -> Value {
    let mut apps = generate(&appset(spec), &Fake::default()).expect("generate");
    assert_eq!(apps.len(), 1);
    apps.remove(0)
}

#[test]
fn application_shape_owner_and_default_finalizer() {
    let app = one(json!({
        "generators": [{"list": {"elements": [{"n": "a"}]}}],
        "template": {"metadata": {"name": "{{n}}", "namespace": "elsewhere", "labels": {"l": "{{n}}"}, "generateName": "dropped"},
                     "spec": {"project": "default"}}
    }));
    assert_eq!(
        app,
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {
                "name": "a",
                "namespace": "argocd",
                "labels": {"l": "a"},
                "finalizers": [RESOURCES_FINALIZER],
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "name": "set",
                                     "controller": true, "blockOwnerDeletion": true, "uid": "u-1"}]
            },
            "spec": {"project": "default"}
        })
    );
}

#[test]
fn preserve_resources_on_deletion_and_own_finalizers() {
    let app = one(json!({
        "syncPolicy": {"preserveResourcesOnDeletion": true},
        "generators": [{"list": {"elements": [{"n": "a"}]}}],
        "template": {"metadata": {"name": "{{n}}"}, "spec": {"project": "default"}}
    }));
    assert!(app["metadata"].get("finalizers").is_none(), "{app}");
    let app = one(json!({
        "generators": [{"list": {"elements": [{"n": "a"}]}}],
        "template": {"metadata": {"name": "{{n}}", "finalizers": ["resources-finalizer.argocd.argoproj.io/background"]}, "spec": {"project": "default"}}
    }));
    assert_eq!(
        app["metadata"]["finalizers"],
        json!(["resources-finalizer.argocd.argoproj.io/background"])
    );
}

#[test]
fn template_patch_go_template() {
    let spec = json!({
        "goTemplate": true,
        "generators": [{"list": {"elements": [{"n": "a", "auto": true}, {"n": "b", "auto": false}]}}],
        "template": {"metadata": {"name": "{{.n}}", "labels": {"keep": "yes"}}, "spec": {"project": "default", "source": {"path": "p"}}},
        "templatePatch": "metadata:\n  labels:\n    patched: \"{{ .n }}\"\n  finalizers: [extra]\nspec:\n  project: hijacked\n{{- if .auto }}\n  syncPolicy:\n    automated: {prune: true}\n{{- end }}\n"
    });
    let apps = generate(&appset(spec), &Fake::default()).expect("generate");
    assert_eq!(
        apps[0]["metadata"]["labels"],
        json!({"keep": "yes", "patched": "a"})
    );
    assert_eq!(
        apps[0]["spec"]["syncPolicy"],
        json!({"automated": {"prune": true}})
    );
    assert!(apps[1]["spec"].get("syncPolicy").is_none());
    // The project cannot be changed by a patch; finalizers are added to, not replaced.
    assert_eq!(apps[0]["spec"]["project"], "default");
    assert_eq!(
        apps[0]["metadata"]["finalizers"],
        json!([RESOURCES_FINALIZER, "extra"])
    );
    assert_eq!(apps[0]["spec"]["source"]["path"], "p");
}

#[test]
fn template_patch_default_mode_json_and_errors() {
    let app = one(json!({
        "generators": [{"list": {"elements": [{"n": "a"}]}}],
        "template": {"metadata": {"name": "{{n}}"}, "spec": {"project": "default", "source": {"path": "old", "helm": {"valueFiles": ["x"]}}}},
        "templatePatch": "{\"spec\": {\"source\": {\"path\": \"{{n}}/new\", \"helm\": null}}}"
    }));
    assert_eq!(app["spec"]["source"], json!({"path": "a/new"}));
    let bad = appset(json!({
        "generators": [{"list": {"elements": [{"n": "a"}]}}],
        "template": {"metadata": {"name": "{{n}}"}},
        "templatePatch": "- just\n- a list\n"
    }));
    assert_eq!(
        error_of(generate(&bad, &Fake::default())),
        "spec.templatePatch: invalid templatePatch: must render to a map"
    );
}

#[test]
fn generator_template_overrides_the_set_template() {
    let spec = json!({
        "generators": [
            {"list": {"elements": [{"n": "a"}], "template": {"metadata": {"labels": {"from": "gen"}}, "spec": {"source": {"path": "gen/{{n}}"}}}}},
            {"list": {"elements": [{"n": "b"}]}}
        ],
        "template": {"metadata": {"name": "{{n}}", "labels": {"from": "set", "base": "1"}}, "spec": {"project": "default", "source": {"path": "set/{{n}}", "repoURL": "u"}}}
    });
    let apps = generate(&appset(spec), &Fake::default()).expect("generate");
    assert_eq!(
        apps[0]["metadata"]["labels"],
        json!({"from": "gen", "base": "1"})
    );
    assert_eq!(
        apps[0]["spec"]["source"],
        json!({"path": "gen/a", "repoURL": "u"})
    );
    assert_eq!(
        apps[1]["spec"]["source"],
        json!({"path": "set/b", "repoURL": "u"})
    );
}

#[test]
fn duplicate_and_missing_names_are_refused() {
    let dup = appset(json!({
        "generators": [{"list": {"elements": [{"n": "a", "m": "1"}, {"n": "a", "m": "2"}]}}],
        "template": {"metadata": {"name": "{{n}}"}, "spec": {"project": "default"}}
    }));
    assert_eq!(
        error_of(generate(&dup, &Fake::default())),
        "ApplicationSet set contains applications with duplicate name: a"
    );
    let unnamed = appset(
        json!({"generators": [{"list": {"elements": [{"n": "a"}]}}], "template": {"spec": {"project": "default"}}}),
    );
    assert!(error_of(generate(&unnamed, &Fake::default())).starts_with(
        "spec.template.metadata.name: ApplicationSet set contains an application with no name"
    ));
}

#[test]
fn template_errors_name_the_field() {
    let set = appset(json!({
        "goTemplate": true,
        "goTemplateOptions": ["missingkey=error"],
        "generators": [{"list": {"elements": [{"n": "a"}]}}],
        "template": {"metadata": {"name": "{{.n}}"}, "spec": {"project": "default", "sources": [{"path": "{{.nope}}"}]}}
    }));
    let err = error_of(generate(&set, &Fake::default()));
    assert!(
        err.starts_with("spec.template: template error at spec.sources[0].path: failed to execute go template {{.nope}}: template: base:1:2: executing \"base\" at <.nope>: map has no entry for key \"nope\""),
        "{err}"
    );
    let set = appset(json!({
        "goTemplate": true,
        "generators": [{"list": {"elements": [{"n": "a"}]}}],
        "template": {"metadata": {"name": "{{ env \"HOME\" }}"}}
    }));
    let err = error_of(generate(&set, &Fake::default()));
    assert!(
        err.contains("template error at metadata.name: failed to parse template")
            && err.contains("function \"env\" not defined"),
        "{err}"
    );
    let set = appset(
        json!({"goTemplate": true, "goTemplateOptions": ["missingkey=maybe"], "generators": []}),
    );
    assert_eq!(
        error_of(generate(&set, &Fake::default())),
        "spec.goTemplateOptions[0]: unrecognized option: missingkey=maybe"
    );
}

#[test]
fn default_mode_leaves_go_syntax_alone_and_go_mode_prints_no_value() {
    let app = one(json!({
        "generators": [{"list": {"elements": [{"n": "a"}]}}],
        "template": {"metadata": {"name": "{{n}}", "annotations": {"x": "{{ .n }}"}}, "spec": {"project": "default"}}
    }));
    assert_eq!(app["metadata"]["annotations"]["x"], "{{ .n }}");
    let app = one(json!({
        "goTemplate": true,
        "generators": [{"list": {"elements": [{"n": "a"}]}}],
        "template": {"metadata": {"name": "{{.n}}", "annotations": {"x": "{{ .missing }}"}}, "spec": {"project": "default"}}
    }));
    assert_eq!(app["metadata"]["annotations"]["x"], "<no value>");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let fake = Fake::default();
    let cases = [
        (json!("nope"), ".: an ApplicationSet must be an object"),
        (
            json!({"kind": "Application"}),
            "kind: expected ApplicationSet, got \"Application\"",
        ),
        (
            json!({"metadata": {"namespace": "n"}}),
            "metadata.name: is required and must be a non-empty string",
        ),
        (
            json!({"metadata": {"name": "n"}}),
            "metadata.namespace: is required and must be a non-empty string",
        ),
        (
            json!({"metadata": {"name": "n", "namespace": "n"}}),
            "spec: is required and must be an object",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(error_of(generate(&input, &fake)), expected);
    }
    let specs = [
        (
            json!({"goTemplate": "yes"}),
            "spec.goTemplate: must be a boolean",
        ),
        (
            json!({"generators": {"list": {}}}),
            "spec.generators: must be a list",
        ),
        (
            json!({"generators": ["list"]}),
            "spec.generators[0]: a generator must be an object",
        ),
        (
            json!({"generators": [{"list": []}]}),
            "spec.generators[0].list: must be an object",
        ),
        (
            json!({"generators": [{"list": {"elements": "x"}}]}),
            "spec.generators[0].list.elements: must be a list",
        ),
        (
            json!({"generators": [{"list": {"elements": [1]}}]}),
            "spec.generators[0].list.elements[0]: error unmarshling list element: must be an object",
        ),
        (
            json!({"templatePatch": 3}),
            "spec.templatePatch: must be a string",
        ),
        (json!({"template": []}), "spec.template: must be an object"),
        (
            json!({"syncPolicy": {"preserveResourcesOnDeletion": "no"}}),
            "spec.syncPolicy.preserveResourcesOnDeletion: must be a boolean",
        ),
        (
            json!({"generators": [{"git": {"directories": [{"path": "*"}]}}]}),
            "spec.generators[0].git.repoURL: is required",
        ),
        (
            json!({"generators": [{"clusters": {"selector": {"matchLabels": "x"}}}]}),
            "spec.generators[0].clusters.selector.matchLabels: must be a map of strings",
        ),
        (
            json!({"generators": [{"list": {"elements": [{"a": "b"}]}}], "template": {"metadata": {"name": 5}}}),
            "spec.template.metadata.name: ApplicationSet set contains an application with no name; a name must be set in the template's metadata.name or via a templatePatch",
        ),
    ];
    for (spec, expected) in specs {
        assert_eq!(error_of(generate(&appset(spec), &fake)), expected);
    }
}

#[test]
fn arbitrary_shapes_never_panic() {
    let fake = Fake::default();
    let shapes = [
        json!(null),
        json!(1),
        json!("s"),
        json!([]),
        json!({}),
        json!([{}]),
        json!({"a": null}),
        json!([null, 1, "x"]),
    ];
    let keys = [
        "goTemplate",
        "goTemplateOptions",
        "generators",
        "template",
        "templatePatch",
        "syncPolicy",
    ];
    for key in keys {
        for shape in &shapes {
            let _ = generate(&appset(json!({ key: shape.clone() })), &fake);
            for kind in ["list", "clusters", "git", "matrix", "merge", "selector"] {
                let _ = generate(
                    &appset(json!({"generators": [{ kind: shape.clone() }], key: shape.clone()})),
                    &fake,
                );
                let _ = generate(
                    &appset(
                        json!({"generators": [{ kind: { "elements": shape.clone(), "generators": shape.clone(), "directories": shape.clone(),
                        "files": shape.clone(), "values": shape.clone(), "selector": shape.clone(), "mergeKeys": shape.clone(), "repoURL": "r" } }]}),
                    ),
                    &fake,
                );
            }
        }
    }
}

#[test]
fn ignored_fields_come_back_as_warnings() {
    let set = appset(json!({
        "strategy": {"type": "RollingSync"},
        "generators": [{"list": {"elements": [{"n": "a"}]}}],
        "template": {"metadata": {"name": "{{n}}"}, "spec": {"project": "default"}}
    }));
    let generation =
        plumb_appset::generate_with_warnings(&set, &Fake::default()).expect("generate");
    assert_eq!(generation.applications.len(), 1);
    assert_eq!(
        generation.warnings,
        [plumb_appset::Warning {
            field: "spec.strategy".into(),
            message:
                "progressive syncs (RollingSync) are not acted on by ApplicationSet generation"
                    .into()
        }]
    );
}
