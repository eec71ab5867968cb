//! Parameter substitution in both of Argo CD's modes: fasttemplate's `{{param}}` (the
//! default) and Go `text/template` with Sprig (`goTemplate: true`), applied to every
//! string and map key of a JSON tree.
//!
//! Go templates run on plumb-helm's engine. Its function table is Helm's, so the
//! differences with Argo CD's table are handled here, before parsing: functions Argo CD
//! does not offer (`env`, `expandenv`, `getHostByName`, and Helm's own such as `include`
//! or `tpl`) are refused as undefined, and `normalize`/`slugify` are routed to helper
//! templates written with Sprig functions.

use plumb_helm::tmpl::lex::{Tok, lex, line_of};
use plumb_helm::tmpl::parse::{Arg, ArgKind, Node, Pipe, parse};
use plumb_helm::tmpl::{Engine, exec::Limits};
use serde_json::Value;

use crate::params::Params;

/// Argo CD parses every string as a template named `base`; errors carry that name.
const TEMPLATE_NAME: &str = "base";

/// Functions plumb-helm knows but Argo CD's ApplicationSet templates do not.
const UNDEFINED_FUNCTIONS: &[&str] = &[
    "env",
    "expandenv",
    "getHostByName",
    "include",
    "tpl",
    "required",
    "lookup",
    "toToml",
    "toYamlPretty",
    "mustToYaml",
    "fromJsonArray",
];

const HELPERS_NAME: &str = "__plumb_appset_helpers";
const NORMALIZE: &str = "__plumb_normalize";
const SLUGIFY: &str = "__plumb_slugify";

const SLUGIFY_OPTIONS: &str = "__plumb_slugify_options";

/// `normalize` is Argo CD's SanitizeName. `slugify` is SanitizeName followed by
/// gosimple/slug: `[maxSize [smartTruncate]] name` (defaults 50 and true); smart truncation
/// cuts at the last dash within `maxSize`, plain truncation happens before dashes collapse.
const HELPERS: &str = concat!(
    r#"{{define "__plumb_normalize"}}{{trimAll "-." (trunc 253 (regexReplaceAll "[^-a-z0-9.]" (lower (toString .)) "-"))}}{{end}}"#,
    r#"{{define "__plumb_slugify"}}{{include "__plumb_slugify_options" (list 50 true .)}}{{end}}"#,
    r#"{{define "__plumb_slugify_options"}}{{$n := len .}}{{$max := int (index . 0)}}{{$smart := true}}"#,
    r#"{{if eq $n 3}}{{$smart = index . 1}}{{end}}{{$s := include "__plumb_normalize" (index . (sub $n 1))}}"#,
    r#"{{if and (not $smart) (ge (len $s) $max)}}{{$s = trunc $max $s}}{{end}}"#,
    r#"{{$s = trimAll "-_" (regexReplaceAll "-+" (regexReplaceAll "[^a-zA-Z0-9-_]" $s "-") "-")}}"#,
    r#"{{if or (not $smart) (le $max 0) (le (len $s) $max)}}{{$s}}{{else}}{{$p := trunc (add1 $max) $s}}"#,
    r#"{{if contains "-" $p}}{{regexReplaceAll "-[^-]*$" $p ""}}{{else}}{{trunc $max $s}}{{end}}{{end}}{{end}}"#,
);

/// Most output one templated string may produce.
const MAX_OUTPUT: usize = 4 << 20;

/// Substitutes parameters into strings the way the ApplicationSet's settings ask.
#[derive(Debug, Clone)]
pub(crate) struct Renderer {
    go_template: bool,
    missing_key_error: bool,
}

impl Renderer {
    /// A renderer for `goTemplate` and `goTemplateOptions`; an option Go's `Option` does not
    /// know is reported with its index.
    pub(crate) fn new(go_template: bool, options: &[String]) -> Result<Renderer, (usize, String)> {
        let mut missing_key_error = false;
        for (i, option) in options.iter().enumerate() {
            match option.as_str() {
                "missingkey=error" => missing_key_error = true,
                "missingkey=default" | "missingkey=invalid" | "missingkey=zero" => {
                    missing_key_error = false
                }
                other => return Err((i, format!("unrecognized option: {other}"))),
            }
        }
        Ok(Renderer {
            go_template,
            missing_key_error,
        })
    }

    pub(crate) fn is_go_template(&self) -> bool {
        self.go_template
    }

    /// The same renderer with `missingkey=error` forced on (Argo CD pre-resolves generator
    /// `values` that way).
    pub(crate) fn strict(&self) -> Renderer {
        Renderer {
            go_template: self.go_template,
            missing_key_error: true,
        }
    }

    /// Argo CD's `Render.Replace`: one string, one parameter set.
    pub(crate) fn render_str(&self, src: &str, params: &Params) -> Result<String, String> {
        if self.go_template {
            self.go(src, params)
        } else {
            fast(src, params)
        }
    }

    /// Every string value and map key of `tree`, rendered; `null` map entries are dropped as
    /// Argo CD's reflection walk drops nil values. Errors carry the path inside `tree`.
    pub(crate) fn render_tree(
        &self,
        tree: &Value,
        params: &Params,
    ) -> Result<Value, (String, String)> {
        let mut at = String::new();
        self.render_at(tree, params, &mut at)
    }

    fn render_at(
        &self,
        v: &Value,
        params: &Params,
        at: &mut String,
    ) -> Result<Value, (String, String)> {
        let here = |at: &String| {
            if at.is_empty() {
                ".".to_string()
            } else {
                at.clone()
            }
        };
        Ok(match v {
            Value::String(s) => {
                Value::String(self.render_str(s, params).map_err(|e| (here(at), e))?)
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = at.len();
                    at.push_str(&format!("[{i}]"));
                    out.push(self.render_at(item, params, at)?);
                    at.truncate(len);
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, item) in map {
                    if item.is_null() {
                        continue;
                    }
                    let len = at.len();
                    if !at.is_empty() {
                        at.push('.');
                    }
                    at.push_str(k);
                    let value = self.render_at(item, params, at)?;
                    let key = self.render_str(k, params).map_err(|e| (here(at), e))?;
                    at.truncate(len);
                    out.insert(key, value);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn go(&self, src: &str, params: &Params) -> Result<String, String> {
        if !src.contains("{{") {
            return Ok(src.to_string());
        }
        let parse_failed = |e: String| format!("failed to parse template {src}: {e}");
        let rewritten = rewrite_functions(src).map_err(parse_failed)?;
        let rewritten = rewrite_slugify_options(&rewritten).map_err(parse_failed)?;
        let mut engine = Engine::new();
        engine.limits = Limits {
            max_depth: 100,
            max_output: MAX_OUTPUT,
            ..Limits::default()
        };
        engine
            .add(HELPERS_NAME, HELPERS)
            .map_err(|e| parse_failed(e.to_string()))?;
        engine
            .add(TEMPLATE_NAME, &rewritten)
            .map_err(|e| parse_failed(e.to_string()))?;
        let data_json = Value::Object(params.clone());
        let exec_failed = |e: String| format!("failed to execute go template {src}: {e}");
        if self.missing_key_error {
            check_missing_keys(&rewritten, &data_json).map_err(exec_failed)?;
        }
        let data = plumb_helm::yaml::json_to_value_float(&data_json);
        // A function of the shared engine that panics on some argument (for example a huge
        // `repeat` count) must fail this template, not the controller.
        let run = std::panic::AssertUnwindSafe(|| engine.execute(TEMPLATE_NAME, &data));
        match std::panic::catch_unwind(run) {
            Ok(result) => result.map_err(|e| exec_failed(e.0)),
            Err(_) => Err(exec_failed(
                "a template function failed on its arguments".to_string(),
            )),
        }
    }
}

/// fasttemplate with Argo CD's tag function: `{{ key }}` becomes the string parameter `key`,
/// any other tag stays as written.
fn fast(src: &str, params: &Params) -> Result<String, String> {
    // Argo CD only hands strings with `{{...}}` on one line to fasttemplate.
    if !src.lines().any(|line| {
        line.find("{{")
            .is_some_and(|i| line[i + 2..].contains("}}"))
    }) {
        return Ok(src.to_string());
    }
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!(
                "invalid template: Cannot find end tag=\"}}}}\" in the template={src:?} starting from {after:?}"
            ));
        };
        let tag = &after[..end];
        let trimmed = tag.trim();
        match params.get(trimmed) {
            Some(Value::String(replacement)) if !trimmed.is_empty() => out.push_str(replacement),
            _ => {
                out.push_str("{{");
                out.push_str(tag);
                out.push_str("}}");
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Refuse functions Argo CD does not define and route `normalize`/`slugify` to helpers.
/// A source that does not lex is returned unchanged: the parser reports it properly.
fn rewrite_functions(src: &str) -> Result<String, String> {
    let Ok(tokens) = lex(TEMPLATE_NAME, src) else {
        return Ok(src.to_string());
    };
    let mut out = String::with_capacity(src.len());
    let mut copied = 0;
    for token in &tokens {
        let Tok::Ident(name) = &token.tok else {
            continue;
        };
        if UNDEFINED_FUNCTIONS.contains(&name.as_str()) {
            return Err(format!(
                "template: {TEMPLATE_NAME}:{}: function {name:?} not defined",
                line_of(src, token.off)
            ));
        }
        let helper = match name.as_str() {
            "normalize" => NORMALIZE,
            "slugify" => SLUGIFY,
            _ => continue,
        };
        let Some(end) = token
            .off
            .checked_add(name.len())
            .filter(|&e| token.off >= copied && src.get(token.off..e) == Some(name.as_str()))
        else {
            continue;
        };
        out.push_str(&src[copied..token.off]);
        out.push_str(&format!("include {helper:?}"));
        copied = end;
    }
    out.push_str(&src[copied..]);
    Ok(out)
}

/// `slugify` with options became `include "__plumb_slugify" A B C`, which `include` cannot
/// take: turn each such command into `include "__plumb_slugify_options" (list A B C)`.
fn rewrite_slugify_options(src: &str) -> Result<String, String> {
    let mut out = src.to_string();
    // Innermost calls first, one nesting level per pass, so edits never overlap.
    for _ in 0..16 {
        let edits = slugify_option_edits(&out)?;
        if edits.is_empty() {
            return Ok(out);
        }
        let mut innermost: Vec<&(usize, usize, String)> = edits
            .iter()
            .filter(|e| {
                !edits
                    .iter()
                    .any(|f| !std::ptr::eq(*e, f) && e.0 <= f.0 && f.1 <= e.1)
            })
            .collect();
        innermost.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (start, end, text) in innermost {
            if out.get(*start..*end).is_none() {
                return Err(format!(
                    "template: {TEMPLATE_NAME}: slugify with options is not supported here"
                ));
            }
            out.replace_range(*start..*end, text);
        }
    }
    Err(format!(
        "template: {TEMPLATE_NAME}: slugify calls nested too deeply"
    ))
}

/// Byte ranges of `include "__plumb_slugify" A B [C]` commands and their replacements.
fn slugify_option_edits(src: &str) -> Result<Vec<(usize, usize, String)>, String> {
    if !src.contains(SLUGIFY) {
        return Ok(Vec::new());
    }
    let Ok(trees) = parse(TEMPLATE_NAME, src, &plumb_helm::funcs::exists) else {
        return Ok(Vec::new());
    };
    let mut cmds = Vec::new();
    for tree in &trees {
        collect_cmds(&tree.root, &mut cmds);
    }
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(src.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut edits = Vec::new();
    for cmd in cmds {
        let is_slugify = matches!(cmd.args.first().map(|a| &a.kind), Some(ArgKind::Func(f)) if f == "include")
            && matches!(cmd.args.get(1).map(|a| &a.kind), Some(ArgKind::Str(s)) if s == SLUGIFY);
        if !is_slugify || cmd.args.len() <= 3 {
            continue;
        }
        if cmd.args.len() > 5 {
            return Err(format!(
                "template: {TEMPLATE_NAME}:{}: slugify takes at most 3 arguments",
                cmd.pos.line
            ));
        }
        let start = line_starts
            .get(cmd.pos.line.saturating_sub(1))
            .map(|s| s + cmd.pos.col);
        let Some(start) =
            start.filter(|&s| src.get(s..).is_some_and(|rest| rest.starts_with(&cmd.src)))
        else {
            return Err(format!(
                "template: {TEMPLATE_NAME}:{}: slugify with options is not supported here",
                cmd.pos.line
            ));
        };
        let args: Vec<&str> = cmd.args[2..].iter().map(|a| a.src.as_str()).collect();
        edits.push((
            start,
            start + cmd.src.len(),
            format!("include {SLUGIFY_OPTIONS:?} (list {})", args.join(" ")),
        ));
    }
    Ok(edits)
}

fn collect_cmds<'t>(nodes: &'t [Node], out: &mut Vec<&'t plumb_helm::tmpl::parse::Cmd>) {
    for node in nodes {
        match node {
            Node::Action(pipe)
            | Node::Template {
                pipe: Some(pipe), ..
            } => collect_pipe(pipe, out),
            Node::If(c) | Node::With(c) | Node::Range(c) => {
                collect_pipe(&c.pipe, out);
                collect_cmds(&c.list, out);
                if let Some(e) = &c.else_list {
                    collect_cmds(e, out);
                }
            }
            _ => {}
        }
    }
}

fn collect_pipe<'t>(pipe: &'t Pipe, out: &mut Vec<&'t plumb_helm::tmpl::parse::Cmd>) {
    for cmd in &pipe.cmds {
        out.push(cmd);
        for arg in &cmd.args {
            if let ArgKind::Chain(inner, _) = &arg.kind {
                collect_pipe(inner, out);
            }
        }
    }
}

/// `missingkey=error` for the field references whose dot is known without running the
/// template: those outside `if`/`with`/`range` bodies and `$`-rooted ones in the main
/// template. References inside those bodies are not checked (a guarded `{{ .x }}` after
/// `hasKey` would otherwise be refused where Go accepts it).
fn check_missing_keys(src: &str, data: &Value) -> Result<(), String> {
    let Ok(trees) = parse(TEMPLATE_NAME, src, &plumb_helm::funcs::exists) else {
        return Ok(());
    };
    let Some(main) = trees.iter().find(|t| t.name == TEMPLATE_NAME) else {
        return Ok(());
    };
    for node in &main.root {
        match node {
            Node::Action(pipe) => check_pipe(pipe, data)?,
            Node::If(c) | Node::With(c) | Node::Range(c) => check_pipe(&c.pipe, data)?,
            Node::Template {
                pipe: Some(pipe), ..
            } => check_pipe(pipe, data)?,
            _ => {}
        }
    }
    Ok(())
}

fn check_pipe(pipe: &Pipe, data: &Value) -> Result<(), String> {
    for cmd in &pipe.cmds {
        for arg in &cmd.args {
            check_arg(arg, data)?;
        }
    }
    Ok(())
}

fn check_arg(arg: &Arg, data: &Value) -> Result<(), String> {
    match &arg.kind {
        ArgKind::Field(idents) => walk_fields(arg, data, idents),
        ArgKind::Var(name, idents) if name == "$" => walk_fields(arg, data, idents),
        ArgKind::Chain(pipe, _) => check_pipe(pipe, data),
        _ => Ok(()),
    }
}

fn walk_fields(arg: &Arg, data: &Value, idents: &[String]) -> Result<(), String> {
    let mut current = data;
    for ident in idents {
        let Value::Object(map) = current else {
            // Not a map: the executor itself reports what Go reports.
            return Ok(());
        };
        match map.get(ident) {
            Some(next) => current = next,
            None => {
                return Err(format!(
                    "template: {TEMPLATE_NAME}:{}:{}: executing \"{TEMPLATE_NAME}\" at <{}>: map has no entry for key {ident:?}",
                    arg.pos.line, arg.pos.col, arg.src
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Params {
        match v {
            Value::Object(m) => m,
            _ => Params::new(),
        }
    }

    fn fast_renderer() -> Renderer {
        Renderer::new(false, &[]).unwrap_or(Renderer {
            go_template: false,
            missing_key_error: false,
        })
    }

    fn go_renderer(options: &[&str]) -> Renderer {
        let options: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        Renderer::new(true, &options).unwrap_or(Renderer {
            go_template: true,
            missing_key_error: false,
        })
    }

    #[test]
    fn fasttemplate_replaces_known_string_params_only() {
        let p = params(json!({"path.basename": "guestbook", "n": "x", "num": 3}));
        let r = fast_renderer();
        assert_eq!(
            r.render_str("app-{{path.basename}}-{{ n }}", &p).ok(),
            Some("app-guestbook-x".into())
        );
        assert_eq!(
            r.render_str("{{missing}}/{{num}}/{{ }}", &p).ok(),
            Some("{{missing}}/{{num}}/{{ }}".into())
        );
        assert_eq!(
            r.render_str("no tags {{ here", &p).ok(),
            Some("no tags {{ here".into())
        );
        let err = r
            .render_str("{{n}} and {{broken", &p)
            .err()
            .unwrap_or_default();
        assert!(
            err.starts_with("invalid template: Cannot find end tag"),
            "{err}"
        );
    }

    #[test]
    fn go_template_renders_nested_params_and_sprig() {
        let p = params(
            json!({"path": {"basename": "Guest_Book", "segments": ["a", "b"]}, "replicas": 3}),
        );
        let r = go_renderer(&[]);
        assert_eq!(
            r.render_str("{{.path.basename | lower}}", &p).ok(),
            Some("guest_book".into())
        );
        assert_eq!(
            r.render_str("{{index .path.segments 1}}", &p).ok(),
            Some("b".into())
        );
        assert_eq!(r.render_str("{{.replicas}}", &p).ok(), Some("3".into()));
        assert_eq!(
            r.render_str("{{.nope}}", &p).ok(),
            Some("<no value>".into())
        );
        assert_eq!(
            r.render_str("{{normalize .path.basename}}", &p).ok(),
            Some("guest-book".into())
        );
        assert_eq!(
            r.render_str("{{.path.basename | normalize | upper}}", &p)
                .ok(),
            Some("GUEST-BOOK".into())
        );
        assert_eq!(
            r.render_str("{{ toYaml .path.segments }}", &p).ok(),
            Some("- a\n- b".into())
        );
    }

    #[test]
    fn normalize_helper_agrees_with_sanitize_name() {
        let r = go_renderer(&[]);
        for input in [
            "My_App.Name",
            "--a--",
            ".x.",
            "Ünïcode Name",
            "plain",
            "UPPER/slash",
        ] {
            let p = params(json!({ "v": input }));
            assert_eq!(
                r.render_str("{{normalize .v}}", &p).ok(),
                Some(crate::params::sanitize_name(input)),
                "{input}"
            );
        }
    }

    #[test]
    fn slugify_truncates_at_a_dash() {
        let r = go_renderer(&[]);
        let p = params(
            json!({"short": "Hello World.Again", "long": "aaaaaaaaaa-bbbbbbbbbb-cccccccccc-dddddddddd-eeeeeeeeee-ffff", "word": "x".repeat(60)}),
        );
        assert_eq!(
            r.render_str("{{slugify .short}}", &p).ok(),
            Some("hello-world-again".into())
        );
        assert_eq!(
            r.render_str("{{slugify .long}}", &p).ok(),
            Some("aaaaaaaaaa-bbbbbbbbbb-cccccccccc-dddddddddd".into())
        );
        assert_eq!(
            r.render_str("{{slugify .word}}", &p).ok(),
            Some("x".repeat(50))
        );
        assert_eq!(
            r.render_str("{{slugify 20 false .long}}", &p).ok(),
            Some("aaaaaaaaaa-bbbbbbbbb".into())
        );
        assert_eq!(
            r.render_str("{{slugify 25 true .long}}", &p).ok(),
            Some("aaaaaaaaaa-bbbbbbbbbb".into())
        );
        assert_eq!(
            r.render_str("{{ slugify 12 .short | upper }}", &p).ok(),
            Some("HELLO-WORLD".into())
        );
        assert_eq!(
            r.render_str("{{ if true }}{{ (slugify 5 false .short) }}{{ end }}", &p)
                .ok(),
            Some("hello".into())
        );
        assert_eq!(
            r.render_str("{{ slugify 11 true (slugify 30 false .long | upper) }}", &p)
                .ok(),
            Some("aaaaaaaaaa".into())
        );
        let err = r
            .render_str("{{slugify 1 2 3 4}}", &p)
            .err()
            .unwrap_or_default();
        assert!(err.contains("slugify takes at most 3 arguments"), "{err}");
    }

    #[test]
    fn go_template_refuses_functions_argo_does_not_define() {
        let r = go_renderer(&[]);
        for f in ["env", "expandenv", "include", "tpl"] {
            let err = r
                .render_str(&format!("x\n{{{{ {f} \"HOME\" }}}}"), &Params::new())
                .err()
                .unwrap_or_default();
            assert!(
                err.contains(&format!("template: base:2: function \"{f}\" not defined")),
                "{err}"
            );
        }
    }

    #[test]
    fn missingkey_error_reports_the_key() {
        let r = go_renderer(&["missingkey=error"]);
        let p = params(json!({"path": {"basename": "a"}}));
        assert_eq!(
            r.render_str("{{.path.basename}}", &p).ok(),
            Some("a".into())
        );
        let err = r
            .render_str("x-{{.path.nope}}", &p)
            .err()
            .unwrap_or_default();
        assert!(err.contains("map has no entry for key \"nope\""), "{err}");
        assert!(
            err.starts_with("failed to execute go template x-{{.path.nope}}"),
            "{err}"
        );
        let err = r
            .render_str("{{ if .flag }}y{{ end }}", &p)
            .err()
            .unwrap_or_default();
        assert!(err.contains("\"flag\""), "{err}");
        // Guarded references inside bodies are left to Go's semantics.
        assert_eq!(
            r.render_str("{{ if hasKey . \"flag\" }}{{ .flag }}{{ end }}ok", &p)
                .ok(),
            Some("ok".into())
        );
        assert!(Renderer::new(true, &["bogus".to_string()]).is_err());
    }

    #[test]
    fn engine_panics_become_errors() {
        let r = go_renderer(&[]);
        let err = r
            .render_str("{{ repeat 9223372036854775807 \"xx\" }}", &Params::new())
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("failed to execute go template"), "{err}");
    }

    #[test]
    fn go_template_parse_errors_are_reported() {
        let r = go_renderer(&[]);
        let err = r
            .render_str("{{ .a ", &Params::new())
            .err()
            .unwrap_or_default();
        assert!(
            err.starts_with("failed to parse template {{ .a : template: base:1:"),
            "{err}"
        );
    }

    #[test]
    fn render_tree_templates_keys_and_values_and_names_the_path() {
        let p = params(json!({"env": "prod"}));
        let r = fast_renderer();
        let tree = json!({"metadata": {"labels": {"{{env}}": "{{env}}-x", "gone": null}}, "n": 1, "l": ["{{env}}"]});
        let out = r.render_tree(&tree, &p).ok();
        assert_eq!(
            out,
            Some(json!({"metadata": {"labels": {"prod": "prod-x"}}, "n": 1, "l": ["prod"]}))
        );
        let bad = json!({"spec": {"sources": [{"path": "{{env}}-{{x"}]}});
        let (at, _) = r.render_tree(&bad, &p).err().unwrap_or_default();
        assert_eq!(at, "spec.sources[0].path");
    }
}
