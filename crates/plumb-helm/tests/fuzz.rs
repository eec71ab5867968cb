//! Randomised inputs (a fixed-seed generator, so failures reproduce) for the template
//! parser/executor, the `--set` parser and values coalescing: nothing may panic.

use plumb_helm::strvals::{Mode, parse};
use plumb_helm::tmpl::Engine;
use plumb_helm::value::Value;
use plumb_helm::yaml::parse_values;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const TEMPLATE_TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    " ",
    "\n",
    ".",
    ".Values",
    ".a",
    ".b",
    "$",
    "$x",
    ":=",
    "=",
    "|",
    "(",
    ")",
    ",",
    "if",
    "else",
    "end",
    "range",
    "with",
    "define",
    "template",
    "block",
    "break",
    "continue",
    "\"s\"",
    "`r`",
    "'c'",
    "1",
    "-2",
    "3.5",
    "0x1f",
    "nil",
    "true",
    "false",
    "/*",
    "*/",
    "printf",
    "\"%d %s %v\"",
    "include",
    "tpl",
    "toYaml",
    "default",
    "dict",
    "list",
    "set",
    "index",
    "len",
    "eq",
    "and",
    "or",
    "not",
    "quote",
    "required",
    "fail",
    "fromYaml",
    "toJson",
    "nindent",
    "trunc",
    "\"x\"",
    "text",
    "}",
    "{",
];

fn run_big_stack<F: FnOnce() + Send + 'static>(f: F) {
    let h = std::thread::Builder::new().stack_size(256 << 20).spawn(f);
    match h {
        Ok(h) => {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(e) => panic!("spawn: {e}"),
    }
}

#[test]
fn template_engine_never_panics() {
    run_big_stack(|| {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let data = parse_values("a: 1\nb: [x, y]\nValues: {a: {b: c}}\n").unwrap_or_default();
        for _ in 0..4000 {
            let n = 1 + rng.next() % 40;
            let src: String = (0..n).map(|_| rng.pick(TEMPLATE_TOKENS)).collect();
            let mut e = Engine::new();
            if e.add("t", &src).is_ok() {
                let _ = e.execute("t", &data);
            }
        }
    });
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    run_big_stack(|| {
        let mut e = Engine::new();
        let src = format!("{{{{ {}1{} }}}}", "(".repeat(20000), ")".repeat(20000));
        let err = e
            .add("t", &src)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("max expression depth exceeded"), "{err}");
        let src = "{{ if true }}".repeat(20000) + &"{{ end }}".repeat(20000);
        assert!(e.add("u", &src).is_err());
        // A cycle built with `set` cannot hang toYaml/toJson.
        let src = "{{ $d := dict }}{{ $_ := set $d \"self\" $d }}[{{ toJson $d }}][{{ len (toYaml $d) }}]";
        assert!(e.add("v", src).is_ok());
        assert_eq!(
            e.execute("v", &Value::Nil).map_err(|e| e.0).as_deref(),
            Ok("[][0]")
        );
    });
}

const SET_TOKENS: &[&str] = &[
    "a", "b", ".", ",", "=", "[", "]", "0", "1", "{", "}", "\\", "x", "null", "true", " ",
];

#[test]
fn set_parser_never_panics() {
    let mut rng = Rng(42);
    for _ in 0..20000 {
        let n = 1 + rng.next() % 16;
        let s: String = (0..n).map(|_| rng.pick(SET_TOKENS)).collect();
        let _ = parse(&s, Mode::Typed);
        let _ = parse(&s, Mode::String);
    }
    assert!(parse("a[99999999]=1", Mode::Typed).is_err());
}

const YAML_TOKENS: &[&str] = &[
    "a:", "b:", " ", "\n", "  ", "- ", "null", "1", "x", "{", "}", "[", "]", ",", "~", "global:",
    "c: 2",
];

#[test]
fn values_coalescing_never_panics() {
    use plumb_helm::TemplateOptions;
    let mut rng = Rng(7);
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let chart = root.path().join("c");
    std::fs::create_dir_all(chart.join("charts/sub/templates")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(chart.join("templates")).unwrap_or_else(|e| panic!("{e}"));
    let w = |p: &str, s: &str| std::fs::write(chart.join(p), s).unwrap_or_else(|e| panic!("{e}"));
    w(
        "Chart.yaml",
        "apiVersion: v2\nname: c\nversion: 1.0.0\ndependencies:\n- name: sub\n  condition: sub.on\n  import-values: [x]\n",
    );
    w(
        "charts/sub/Chart.yaml",
        "apiVersion: v2\nname: sub\nversion: 1.0.0\n",
    );
    w("charts/sub/templates/t.yaml", "v: {{ toJson .Values }}\n");
    w("templates/t.yaml", "v: {{ toJson .Values }}\n");
    for i in 0..150 {
        let make = |rng: &mut Rng| -> String {
            (0..(1 + rng.next() % 24))
                .map(|_| rng.pick(YAML_TOKENS))
                .collect()
        };
        w("values.yaml", &make(&mut rng));
        w("charts/sub/values.yaml", &make(&mut rng));
        let o = TemplateOptions {
            set: vec![
                (0..(1 + rng.next() % 8))
                    .map(|_| rng.pick(SET_TOKENS))
                    .collect(),
            ],
            kube_version: Some("1.30.0".into()),
            ..TemplateOptions::default()
        };
        // Errors are fine; panics are not.
        let r = plumb_helm::template(root.path(), &chart, &o);
        if i == 0 {
            let _ = r.map(|r| r.to_output());
        }
    }
}
