//! Go text/template semantics, checked against outputs Go produces.

use std::collections::BTreeMap;

use crate::tmpl::Engine;
use crate::value::Value;

fn data() -> Value {
    let v = crate::yaml::parse_values(
        "name: web\nreplicas: 3\nlist: [a, b, c]\nmap: {x: 1, y: two}\nempty: \"\"\nflag: false\nnested: {inner: {deep: v}}\n",
    )
    .unwrap_or_default();
    Value::map(BTreeMap::from([("Values".to_string(), v)]))
}

fn render(src: &str) -> String {
    let mut e = Engine::new();
    if let Err(err) = e.add("t", src) {
        return format!("PARSE: {err}");
    }
    match e.execute("t", &data()) {
        Ok(s) => s,
        Err(err) => format!("EXEC: {err}"),
    }
}

#[test]
fn trim_markers() {
    assert_eq!(render("a  {{- \"b\" -}}  c"), "abc");
    assert_eq!(render("a\n{{- /* comment */ -}}\nb"), "ab");
    assert_eq!(render("{{-3}}"), "-3");
    assert_eq!(render("x {{/* c */}} y"), "x  y");
    assert_eq!(
        render("  {{- if true }}\n  yes\n  {{- end }}\n"),
        "\n  yes\n"
    );
}

#[test]
fn pipelines_and_printing() {
    assert_eq!(render("{{ .Values.name | upper | quote }}"), "\"WEB\"");
    assert_eq!(render("{{ .Values.replicas }}"), "3");
    assert_eq!(render("{{ .Values.missing }}"), "<no value>");
    assert_eq!(render("{{ .Values.list }}"), "[a b c]");
    assert_eq!(render("{{ .Values.map }}"), "map[x:1 y:two]");
    assert_eq!(
        render("{{ printf \"%s-%d-%v-%q\" \"a\" 1 2.5 \"q\" }}"),
        "a-1-2.5-\"q\""
    );
    assert_eq!(
        render("{{ printf \"%d\" .Values.replicas }}"),
        "%!d(float64=3)"
    );
    assert_eq!(render("{{ print 1 2 \"a\" 3 }}"), "1 2a3");
    assert_eq!(render("{{ (.Values.nested).inner.deep }}"), "v");
}

#[test]
fn control_flow() {
    assert_eq!(
        render("{{ if .Values.flag }}a{{ else if .Values.name }}b{{ else }}c{{ end }}"),
        "b"
    );
    assert_eq!(
        render("{{ range $i, $v := .Values.list }}{{ $i }}={{ $v }},{{ end }}"),
        "0=a,1=b,2=c,"
    );
    assert_eq!(
        render("{{ range $k, $v := .Values.map }}{{ $k }}:{{ $v }} {{ end }}"),
        "x:1 y:two "
    );
    assert_eq!(
        render("{{ range .Values.none }}x{{ else }}empty{{ end }}"),
        "empty"
    );
    assert_eq!(
        render("{{ range .Values.list }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}"),
        "a"
    );
    assert_eq!(
        render(
            "{{ range .Values.list }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}"
        ),
        "ac"
    );
    assert_eq!(
        render("{{ with .Values.nested.inner }}{{ .deep }}{{ end }}"),
        "v"
    );
    assert_eq!(render("{{ with .Values.empty }}x{{ else }}y{{ end }}"), "y");
    assert_eq!(render("{{ range 3 }}{{ . }}{{ end }}"), "012");
}

#[test]
fn variables_and_scope() {
    assert_eq!(
        render("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert_eq!(
        render("{{ $x := 1 }}{{ if true }}{{ $x := 5 }}{{ end }}{{ $x }}"),
        "1"
    );
    assert_eq!(
        render("{{ range .Values.list }}{{ $.Values.name }}{{ end }}"),
        "webwebweb"
    );
    assert!(render("{{ $y }}").starts_with("PARSE: template: t:1: undefined variable \"$y\""));
}

#[test]
fn define_template_block() {
    assert_eq!(
        render("{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" \"a\" }}"),
        "[a]"
    );
    assert_eq!(render("{{ block \"b\" . }}B{{ end }}"), "B");
    assert_eq!(
        render("{{ define \"x\" }}{{ .Values.name }}{{ end }}{{ include \"x\" . | upper }}"),
        "WEB"
    );
}

#[test]
fn and_or_short_circuit_and_eq() {
    assert_eq!(render("{{ and .Values.flag (fail \"boom\") }}"), "false");
    assert_eq!(render("{{ or .Values.name (fail \"boom\") }}"), "web");
    assert_eq!(render("{{ or .Values.empty .Values.flag }}"), "false");
    assert_eq!(render("{{ eq .Values.name \"x\" \"web\" }}"), "true");
    assert_eq!(render("{{ eq .Values.missing \"x\" }}"), "false");
    assert!(render("{{ eq .Values.replicas 3 }}").contains("incompatible types for comparison"));
    assert_eq!(render("{{ lt 1 2 }}"), "true");
}

#[test]
fn nil_handling_and_errors() {
    assert_eq!(
        render("{{ .Values.missing.key }}"),
        "EXEC: template: t:1:10: executing \"t\" at <.Values.missing.key>: nil pointer evaluating interface {}.key"
    );
    assert_eq!(
        render("{{ $x := .Values.missing }}{{ $x.foo }}"),
        "<no value>"
    );
    assert_eq!(render("{{ default \"d\" .Values.missing }}"), "d");
    assert!(render("{{ nosuchfunc }}").contains("function \"nosuchfunc\" not defined"));
    assert!(render("{{ if }}").starts_with("PARSE: template: t:1: missing value for if"));
    assert!(render("{{ end }}").contains("unexpected {{end}}"));
    assert!(render("{{ if true }}").contains("unexpected EOF"));
}

#[test]
fn recursion_is_limited() {
    let out = std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(|| render("{{ define \"r\" }}{{ include \"r\" . }}{{ end }}{{ include \"r\" . }}"))
        .and_then(|h| h.join().map_err(|_| std::io::Error::other("panic")))
        .unwrap_or_default();
    assert!(out.contains("nested reference name: r"), "{out}");
}
