//! Helm's own engine tests (pkg/engine/engine_test.go), rebuilt as charts on disk.

use std::path::Path;

use plumb_helm::{TemplateOptions, template};

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(p, body).unwrap_or_else(|e| panic!("{e}"));
}

fn chart_yaml(name: &str) -> String {
    format!("apiVersion: v2\nname: {name}\nversion: 1.2.3\n")
}

/// Render and return (source, content) of every document.
fn render(root: &Path, chart: &str, o: &TemplateOptions) -> Vec<(String, String)> {
    let r = template(root, &root.join(chart), o).unwrap_or_else(|e| panic!("{e}"));
    r.manifests
        .into_iter()
        .map(|m| (m.source, m.content))
        .collect()
}

fn get<'a>(docs: &'a [(String, String)], source: &str) -> &'a str {
    docs.iter()
        .find(|(s, _)| s == source)
        .map(|(_, c)| c.as_str())
        .unwrap_or("<missing>")
}

fn opts(name: &str) -> TemplateOptions {
    TemplateOptions {
        release_name: name.into(),
        kube_version: Some("1.30.0".into()),
        ..TemplateOptions::default()
    }
}

// Templates render YAML comments so that each output is a valid (empty) document.
#[test]
fn render_nested_values() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let r = t.path();
    write(r, "top/Chart.yaml", &chart_yaml("top"));
    write(
        r,
        "top/values.yaml",
        "what: stinkweed\nwho: me\nherrick: {who: time, what: Sun}\n",
    );
    write(
        r,
        "top/templates/outer.yaml",
        "# Gather ye {{.Values.what}} while ye may",
    );
    write(
        r,
        "top/templates/subcharts.yaml",
        "# The glorious Lamp of {{.Subcharts.herrick.Subcharts.deepest.Values.where}}, the {{.Subcharts.herrick.Values.what}}",
    );
    write(r, "top/charts/herrick/Chart.yaml", &chart_yaml("herrick"));
    write(
        r,
        "top/charts/herrick/values.yaml",
        "who: Robert\nwhat: glasses\n",
    );
    write(
        r,
        "top/charts/herrick/templates/inner.yaml",
        "# Old {{.Values.who}} is still a-flyin'",
    );
    write(
        r,
        "top/charts/herrick/charts/deepest/Chart.yaml",
        &chart_yaml("deepest"),
    );
    write(
        r,
        "top/charts/herrick/charts/deepest/values.yaml",
        "what: milkshake\nwhere: here\n",
    );
    write(
        r,
        "top/charts/herrick/charts/deepest/templates/inner.yaml",
        "# And this same {{.Values.what}} that smiles {{.Values.global.when}}",
    );
    write(
        r,
        "top/charts/herrick/charts/deepest/templates/release.yaml",
        "# Tomorrow will be {{default \"happy\" .Release.Name }}",
    );
    let o = TemplateOptions {
        set: vec!["what=rosebuds,herrick.deepest.what=flower,herrick.deepest.where=Heaven,global.when=to-day".into()],
        ..opts("dyin")
    };
    let d = render(r, "top", &o);
    assert_eq!(
        get(&d, "top/templates/outer.yaml"),
        "# Gather ye rosebuds while ye may"
    );
    assert_eq!(
        get(&d, "top/charts/herrick/templates/inner.yaml"),
        "# Old time is still a-flyin'"
    );
    assert_eq!(
        get(&d, "top/charts/herrick/charts/deepest/templates/inner.yaml"),
        "# And this same flower that smiles to-day"
    );
    assert_eq!(
        get(
            &d,
            "top/charts/herrick/charts/deepest/templates/release.yaml"
        ),
        "# Tomorrow will be dyin"
    );
    assert_eq!(
        get(&d, "top/templates/subcharts.yaml"),
        "# The glorious Lamp of Heaven, the Sun"
    );
}

#[test]
fn render_builtin_values_and_dependency_defines() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let r = t.path();
    write(r, "Troy/Chart.yaml", &chart_yaml("Troy"));
    write(
        r,
        "Troy/templates/Aeneas",
        "# {{.Template.Name}}{{.Chart.Name}}{{.Release.Name}}",
    );
    write(
        r,
        "Troy/templates/Amata",
        "# {{.Subcharts.Latium.Chart.Name}} {{.Subcharts.Latium.Files.author | printf \"%s\"}}",
    );
    write(
        r,
        "Troy/templates/outer",
        "# Hello {{template \"myblock\"}} {{ .Chart.IsRoot }}",
    );
    write(r, "Troy/charts/Latium/Chart.yaml", &chart_yaml("Latium"));
    write(
        r,
        "Troy/charts/Latium/templates/Lavinia",
        "# {{.Template.Name}}{{.Chart.Name}}{{.Release.Name}} {{ .Chart.IsRoot }}",
    );
    write(
        r,
        "Troy/charts/Latium/templates/From",
        "# {{.Files.author | printf \"%s\"}} {{.Files.Get \"book/title.txt\"}}",
    );
    write(
        r,
        "Troy/charts/Latium/templates/inner",
        "{{define \"myblock\"}}World{{end}}",
    );
    write(r, "Troy/charts/Latium/author", "Virgil");
    write(r, "Troy/charts/Latium/book/title.txt", "Aeneid");
    let d = render(r, "Troy", &opts("aeneid"));
    assert_eq!(
        get(&d, "Troy/charts/Latium/templates/Lavinia"),
        "# Troy/charts/Latium/templates/LaviniaLatiumaeneid false"
    );
    assert_eq!(
        get(&d, "Troy/templates/Aeneas"),
        "# Troy/templates/AeneasTroyaeneid"
    );
    assert_eq!(get(&d, "Troy/templates/Amata"), "# Latium Virgil");
    assert_eq!(
        get(&d, "Troy/charts/Latium/templates/From"),
        "# Virgil Aeneid"
    );
    assert_eq!(get(&d, "Troy/templates/outer"), "# Hello World true");
}

#[test]
fn include_tpl_and_recursion() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let r = t.path();
    write(r, "conrad/Chart.yaml", &chart_yaml("conrad"));
    write(
        r,
        "conrad/values.yaml",
        "value: myvalue\nfilename: test\nfilename2: test2\n",
    );
    write(
        r,
        "conrad/templates/quote",
        "# {{include \"conrad/templates/_partial\" . | indent 2}} dead.",
    );
    write(r, "conrad/templates/_partial", "{{.Release.Name}} - he");
    write(
        r,
        "conrad/templates/tpl",
        "# Evaluate tpl {{tpl \"Value: {{ .Values.value | quote}}\" .}}",
    );
    write(
        r,
        "conrad/templates/tplinclude",
        "# {{ tpl \"{{include `conrad/templates/_name` .  | quote }}\" .}}",
    );
    write(r, "conrad/templates/_name", "{{.Template.Name}}");
    write(
        r,
        "conrad/templates/fromfile",
        "# {{ tpl (.Files.Get .Values.filename) . }}",
    );
    write(
        r,
        "conrad/templates/_function",
        "{{define \"test-function\"}}test-function{{end}}",
    );
    write(
        r,
        "conrad/test",
        "{{ tpl (.Files.Get .Values.filename2) .}}",
    );
    write(
        r,
        "conrad/test2",
        "{{include \"test-function\" .}}{{define \"nested-define\"}}nested-define-content{{end}} {{include \"nested-define\" .}}",
    );
    write(
        r,
        "conrad/templates/empty",
        "# [{{tpl \"\" .}}{{tpl \"{{ \\\"\\\"}}\" .}}{{tpl \"{{define \\\"not-invoked\\\"}}not-rendered{{end}}\" .}}]",
    );
    let d = render(r, "conrad", &opts("mistah-kurtz"));
    assert_eq!(
        get(&d, "conrad/templates/quote"),
        "#   mistah-kurtz - he dead."
    );
    assert_eq!(
        get(&d, "conrad/templates/tpl"),
        "# Evaluate tpl Value: \"myvalue\""
    );
    assert_eq!(
        get(&d, "conrad/templates/tplinclude"),
        "# \"conrad/templates/tplinclude\""
    );
    assert_eq!(
        get(&d, "conrad/templates/fromfile"),
        "# test-function nested-define-content"
    );
    assert_eq!(get(&d, "conrad/templates/empty"), "# []");

    write(r, "bad/Chart.yaml", &chart_yaml("bad"));
    write(r, "bad/templates/base", "{{include \"recursion\" . }}");
    write(
        r,
        "bad/templates/recursion",
        "{{define \"recursion\"}}{{include \"recursion\" . }}{{end}}",
    );
    let err = template(r, &r.join("bad"), &opts("x"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.ends_with(
            "rendering template has a nested reference name: recursion: unable to execute template"
        ),
        "{err}"
    );

    let phrase = "All work and no play makes Jack a dull boy";
    write(r, "overlook/Chart.yaml", &chart_yaml("overlook"));
    write(
        r,
        "overlook/templates/_function",
        &format!("{{{{define \"overlook\"}}}}{{{{printf \"# {phrase}\\n\"}}}}{{{{end}}}}"),
    );
    write(
        r,
        "overlook/templates/quote",
        &"{{include \"overlook\" . }}".repeat(4000),
    );
    let d = render(r, "overlook", &opts("x"));
    assert_eq!(
        get(&d, "overlook/templates/quote"),
        format!("# {phrase}\n").repeat(4000).trim()
    );
}

/// Helm's TestCoalesceValues (pkg/chartutil/coalesce_test.go) as a chart with subcharts.
#[test]
fn coalesce_values_like_helm() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let r = t.path();
    write(r, "moby/Chart.yaml", &chart_yaml("moby"));
    write(
        r,
        "moby/values.yaml",
        "back: exists\nbottom: exists\nfront: exists\nleft: exists\nname: moby\nnested: {boat: true}\noverride: bad\nright: exists\nscope: moby\ntop: nope\n",
    );
    write(r, "moby/charts/pequod/Chart.yaml", &chart_yaml("pequod"));
    write(
        r,
        "moby/charts/pequod/values.yaml",
        "name: pequod\nscope: pequod\n",
    );
    write(
        r,
        "moby/charts/pequod/charts/ahab/Chart.yaml",
        &chart_yaml("ahab"),
    );
    write(
        r,
        "moby/charts/pequod/charts/ahab/values.yaml",
        "scope: ahab\nname: ahab\nboat: true\nnested: {foo: false, bar: true}\n",
    );
    write(r, "moby/charts/spouter/Chart.yaml", &chart_yaml("spouter"));
    write(r, "moby/charts/spouter/values.yaml", "scope: spouter\n");
    write(
        r,
        "user.yaml",
        "top: yup\nbottom: null\nright: Null\nleft: NULL\nfront: ~\nback: \"\"\nnested:\n  boat: null\n\nglobal:\n  name: Ishmael\n  subject: Queequeg\n  nested:\n    boat: true\n\npequod:\n  global:\n    name: Stinky\n    harpooner: Tashtego\n    nested:\n      boat: false\n      sail: true\n  ahab:\n    scope: whale\n    boat: null\n    nested:\n      foo: true\n      bar: null\n",
    );
    let cases = [
        (".top", "yup"),
        (".back", ""),
        (".name", "moby"),
        (".global.name", "Ishmael"),
        (".global.subject", "Queequeg"),
        (".global.harpooner", ""),
        (".pequod.name", "pequod"),
        (".pequod.ahab.name", "ahab"),
        (".pequod.ahab.scope", "whale"),
        (".pequod.ahab.nested.foo", "true"),
        (".pequod.ahab.global.name", "Ishmael"),
        (".pequod.ahab.global.subject", "Queequeg"),
        (".pequod.ahab.global.harpooner", "Tashtego"),
        (".pequod.global.name", "Ishmael"),
        (".pequod.global.subject", "Queequeg"),
        (".spouter.global.name", "Ishmael"),
        (".spouter.global.harpooner", ""),
        (".global.nested.boat", "true"),
        (".pequod.global.nested.boat", "true"),
        (".spouter.global.nested.boat", "true"),
        (".pequod.global.nested.sail", "true"),
        (".spouter.global.nested.sail", ""),
    ];
    let mut tpl = String::new();
    for (expr, _) in &cases {
        tpl.push_str(&format!("# {expr}={{{{ .Values{expr} }}}}\n"));
    }
    tpl.push_str("# removed={{ hasKey .Values \"bottom\" }}{{ hasKey .Values \"right\" }}{{ hasKey .Values \"left\" }}{{ hasKey .Values \"front\" }}{{ hasKey .Values.nested \"boat\" }}{{ hasKey .Values.pequod.ahab \"boat\" }}{{ hasKey .Values.pequod.ahab.nested \"bar\" }}\n");
    write(r, "moby/templates/values.yaml", &tpl);
    let o = TemplateOptions {
        values_files: vec![r.join("user.yaml")],
        ..opts("x")
    };
    let d = render(r, "moby", &o);
    let out = get(&d, "moby/templates/values.yaml");
    for (expr, want) in cases {
        assert!(
            out.contains(&format!("# {expr}={want}\n"))
                || out.ends_with(&format!("# {expr}={want}")),
            "{expr}: {out}"
        );
    }
    assert!(
        out.contains("# removed=falsefalsefalsefalsefalsefalsefalse"),
        "{out}"
    );
}
