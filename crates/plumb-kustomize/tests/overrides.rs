//! Argo CD-style overrides applied on top of a kustomization.

use std::collections::BTreeMap;

use plumb_kustomize::{
    Image, Options, Overrides, Patch, PatchTarget, build_with_overrides, to_yaml,
};

#[test]
fn overrides_apply_like_kustomize_edit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("kustomization.yaml"),
        "namePrefix: a-\ncommonLabels:\n  team: x\nresources:\n- d.yaml\n",
    )
    .expect("write");
    std::fs::write(
        tmp.path().join("d.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.0\n",
    )
    .expect("write");
    let overrides = Overrides {
        name_prefix: Some("p-".into()),
        namespace: Some("prod".into()),
        images: vec![Image::parse("nginx=mirror/nginx:2.0").expect("image")],
        common_labels: BTreeMap::from([("team".to_string(), "y".to_string())]),
        force_common_labels: true,
        replicas: vec![("web".into(), 3)],
        patches: vec![Patch {
            patch: Some(
                "- op: add\n  path: /metadata/annotations/patched\n  value: \"yes\"\n".into(),
            ),
            target: Some(PatchTarget {
                kind: Some("Deployment".into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let out = to_yaml(
        &build_with_overrides(tmp.path(), tmp.path(), &Options::default(), &overrides)
            .expect("builds"),
    );
    for want in [
        "name: p-web",
        "namespace: prod",
        "image: mirror/nginx:2.0",
        "team: \"y\"",
        "replicas: 3",
        "patched: \"yes\"",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }

    let clash = Overrides {
        common_labels: BTreeMap::from([("team".to_string(), "y".to_string())]),
        ..Default::default()
    };
    let err = build_with_overrides(tmp.path(), tmp.path(), &Options::default(), &clash)
        .expect_err("clash");
    assert!(err.chain().contains("commonLabels"), "{}", err.chain());
}
