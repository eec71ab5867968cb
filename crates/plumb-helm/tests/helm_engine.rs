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
