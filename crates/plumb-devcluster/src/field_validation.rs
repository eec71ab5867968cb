//! `fieldValidation` for built-in kinds: fields the kind's type does not
//! declare are always dropped; `Strict` refuses the write, `Warn` (the
//! default) answers with `Warning` headers, `Ignore` says nothing.
//!
//! The refusal is worded per verb as kube-apiserver words it:
//! - create and update: 400, `Kind in version "v1" cannot be handled as a
//!   Kind: strict decoding error: unknown field "spec.x", ...` (document order);
//! - JSON, merge and strategic merge patch: 422 with one `patch` cause,
//!   `Invalid value: "<patched object or patch>": strict decoding error: ...`
//!   (fields in sorted-key order, as the patched document is re-encoded);
//! - server-side apply: 500 without a reason, `failed to create typed patch
//!   object (ns/name; apps/v1, Kind=Deployment): .spec.x: field not declared
//!   in schema`, whatever `fieldValidation` says (the typed converter is
//!   always strict).
//!
//! Duplicate keys are not detected (the body is parsed into a map first);
//! custom resources are pruned against their CRD schema in `objects.rs`.

use std::fmt::Write as _;

use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::resources::ResourceType;
use crate::schema::{ListKind, Schema, item_key, list_kind};
use crate::typed::{Decoded, FieldPath, Segment, prune, unknown_fields};

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum FieldValidation {
    Ignore,
    /// kube-apiserver's default since 1.27 when the parameter is absent.
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    /// Parses the parameter; absent or empty means `Warn`.
    pub(crate) fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// How the object reached the server, which decides how a refusal reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin<'a> {
    /// The body of a create or an update.
    Body,
    /// A JSON patch (`ops` is the patch, checked for unknown op fields) or
    /// a merge patch (`ops` is `None`).
    JsonOrMergePatch { ops: Option<&'a Value> },
    /// A strategic merge patch.
    StrategicPatch { patch: &'a Value },
}

/// Drops the fields `obj`'s built-in type does not declare and returns the
/// warnings to send; under `Strict` refuses instead.
///
/// **Errors**: `Strict` and at least one unknown field (or unknown JSON
/// patch operation field), worded for `origin`.
/// **Caveats**: custom resources and objects whose known fields have the
/// wrong JSON type pass untouched.
pub(crate) fn admit(
    rt: &ResourceType,
    version: &str,
    obj: &mut Value,
    validation: FieldValidation,
    origin: Origin<'_>,
) -> Result<Vec<String>, ApiError> {
    if !rt.builtin {
        return Ok(Vec::new());
    }
    let mut messages = match (origin, validation) {
        (Origin::JsonOrMergePatch { ops: Some(ops) }, v) if v != FieldValidation::Ignore => {
            json_patch_op_errors(ops)
        }
        _ => Vec::new(),
    };
    match unknown_fields(&rt.api_version(version), &rt.kind, obj) {
        Decoded::Unknown(mut paths) => {
            if !paths.is_empty() && validation != FieldValidation::Ignore {
                if !matches!(origin, Origin::Body) {
                    // A patched document is re-encoded with sorted keys
                    // before it is decoded.
                    paths.sort();
                }
                for p in &paths {
                    let m = format!("unknown field \"{p}\"");
                    if !messages.contains(&m) {
                        messages.push(m);
                    }
                }
            }
            if validation != FieldValidation::Strict || messages.is_empty() {
                prune(obj, &paths);
            }
        }
        Decoded::Undecodable(why) => {
            tracing::debug!(kind = %rt.kind, %why, "object does not decode into its type; fields not checked");
        }
        Decoded::Untyped => {}
    }
    if validation != FieldValidation::Strict || messages.is_empty() {
        return Ok(if validation == FieldValidation::Warn {
            messages
        } else {
            Vec::new()
        });
    }
    let decoding = format!("strict decoding error: {}", messages.join(", "));
    Err(match origin {
        Origin::Body => ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {decoding}",
            kind = rt.kind
        )),
        Origin::JsonOrMergePatch { .. } => invalid_patch(&go_json(obj), &decoding),
        Origin::StrategicPatch { patch } => invalid_patch(&go_map(patch), &decoding),
    })
}

/// Unknown fields of JSON patch operations (`[0].foo`), which the real
/// server reports before those of the patched object.
fn json_patch_op_errors(ops: &Value) -> Vec<String> {
    let Some(ops) = ops.as_array() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(m) = op.as_object() {
            for k in m.keys() {
                if !matches!(k.as_str(), "op" | "path" | "from" | "value") {
                    out.push(format!("json patch unknown field \"[{i}].{k}\""));
                }
            }
        }
    }
    out
}

/// The 422 kube-apiserver returns for a patch whose result does not decode
/// strictly: an `Invalid` status for an unnamed object with one cause on
/// the field `patch`.
fn invalid_patch(shown: &str, decoding: &str) -> ApiError {
    let cause = format!("Invalid value: {}: {decoding}", go_quote(shown));
    ApiError::new(422, "Invalid", format!(" \"\" is invalid: patch: {cause}")).with_details(
        json!({"causes": [{"reason": "FieldValueInvalid", "message": cause, "field": "patch"}]}),
    )
}

/// Refuses a server-side apply configuration holding a field its type does
/// not declare, as the structured-merge typed converter does (always, and
/// with HTTP 500: kube-apiserver does not classify this error).
///
/// Like the converter, it reports only the first unknown field of each map.
pub(crate) fn check_apply(rt: &ResourceType, version: &str, body: &Value) -> Result<(), ApiError> {
    if !rt.builtin {
        return Ok(());
    }
    let api_version = rt.api_version(version);
    let Decoded::Unknown(paths) = unknown_fields(&api_version, &rt.kind, body) else {
        return Ok(());
    };
    let mut reported: Vec<&FieldPath> = Vec::new();
    for p in &paths {
        if !reported.iter().any(|r| r.parent() == p.parent()) {
            reported.push(p);
        }
    }
    if reported.is_empty() {
        return Ok(());
    }
    let errors: Vec<String> = reported
        .iter()
        .map(|p| {
            format!(
                "{}: field not declared in schema",
                apply_path(&rt.kind, body, p)
            )
        })
        .collect();
    let joined = if errors.len() == 1 {
        errors[0].clone()
    } else {
        format!("errors:\n  {}", errors.join("\n  "))
    };
    let meta = |k: &str| {
        body.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (group, v) = crate::resources::split_api_version(&api_version);
    Err(ApiError::unclassified(format!(
        "failed to create typed patch object ({}/{}; {group}/{v}, Kind={}): {joined}",
        meta("namespace"),
        meta("name"),
        rt.kind
    )))
}

/// A path as structured-merge-diff prints it: `.spec.containers[name="c"].foo`
/// (list-map items by their keys, set items by value, other lists by index).
fn apply_path(kind: &str, body: &Value, path: &FieldPath) -> String {
    let mut out = String::new();
    let mut names: Vec<&str> = Vec::new();
    let mut cur = Some(body);
    for seg in &path.0 {
        match seg {
            Segment::Key(k) => {
                let _ = write!(out, ".{k}");
                names.push(k);
                cur = cur.and_then(|c| c.get(k.as_str()));
            }
            Segment::Index(i) => {
                let item = cur.and_then(|c| c.get(*i));
                let shown = match (list_kind(Schema::Builtin(kind), &names), item) {
                    (ListKind::Map(keys), Some(item)) => item_key(item, &keys).map(|key| {
                        let mut fields: Vec<(&String, &Value)> = key.iter().collect();
                        fields.sort_by(|a, b| a.0.cmp(b.0));
                        let parts: Vec<String> = fields
                            .iter()
                            .map(|(k, v)| format!("{k}={}", smd_value(v)))
                            .collect();
                        format!("[{}]", parts.join(","))
                    }),
                    (ListKind::Set, Some(item)) => Some(format!("[={}]", smd_value(item))),
                    _ => None,
                };
                out.push_str(&shown.unwrap_or_else(|| format!("[{i}]")));
                cur = item;
            }
        }
    }
    out
}

/// A key value as structured-merge-diff prints it (strings quoted).
fn smd_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        other => other.to_string(),
    }
}

/// Adds `Warning` headers (`299 - "text"`), as kube-apiserver sends them;
/// kubectl prints each as `Warning: text`.
pub(crate) fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    let mut seen: Vec<&String> = Vec::new();
    for w in warnings {
        if seen.contains(&w) {
            continue;
        }
        seen.push(w);
        let mut quoted = String::from("299 - \"");
        for c in w.chars() {
            match c {
                '"' | '\\' => {
                    quoted.push('\\');
                    quoted.push(c);
                }
                c if c.is_control() => quoted.push(' '),
                c => quoted.push(c),
            }
        }
        quoted.push('"');
        if let Ok(v) = HeaderValue::from_str(&quoted) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

/// Go's `strconv.Quote` for the text kube-apiserver quotes in messages.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON as Go's `encoding/json` writes a map: compact, keys sorted, `<`,
/// `>` and `&` escaped.
fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(k, out);
                out.push(':');
                if let Some(v) = m.get(k.as_str()) {
                    write_go_json(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_go_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A decoded JSON value as Go's `fmt.Sprintf("%+v")` prints it:
/// `map[a:1 b:[x y]]`, keys sorted.
fn go_map(v: &Value) -> String {
    let mut out = String::new();
    write_go_map(v, &mut out);
    out
}

fn write_go_map(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                if let Some(v) = m.get(k.as_str()) {
                    write_go_map(v, out);
                }
            }
            out.push(']');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go_map(item, out);
            }
            out.push(']');
        }
        Value::String(s) => out.push_str(s),
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&go_float(u as f64)),
            (None, None, Some(f)) => out.push_str(&go_float(f)),
            _ => out.push_str(&n.to_string()),
        },
    }
}

/// Go's `%v` of a float64: shortest form, exponent from 1e21 and below 1e-4.
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let exp = f.abs().log10().floor();
    if (-4.0..21.0).contains(&exp) {
        let s = format!("{f}");
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    } else {
        let s = format!("{f:e}");
        // Rust writes `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-07`.
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                format!("{mantissa}e{sign}{digits:0>2}")
            }
            None => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn deployments() -> std::sync::Arc<ResourceType> {
        Registry::new()
            .lookup("apps", "v1", "deployments")
            .expect("deployments")
    }

    fn deployment(extra_spec: Value) -> Value {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
        if let (Some(spec), Some(extra)) = (d["spec"].as_object_mut(), extra_spec.as_object()) {
            for (k, v) in extra {
                spec.insert(k.clone(), v.clone());
            }
        }
        d
    }

    #[test]
    fn parse_defaults_to_warn_and_rejects_other_values() {
        assert_eq!(
            FieldValidation::parse(None).expect("ok"),
            FieldValidation::Warn
        );
        assert_eq!(
            FieldValidation::parse(Some("Strict")).expect("ok"),
            FieldValidation::Strict
        );
        let e = FieldValidation::parse(Some("strict")).expect_err("case matters");
        assert_eq!(e.code, 400);
        assert!(
            e.message.contains("Unsupported value: \"strict\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn strict_create_is_refused_with_every_unknown_field_in_document_order() {
        let rt = deployments();
        let mut d = deployment(json!({"replica": 3, "zzz": true}));
        d["metadata"]["what"] = json!(1);
        let e = admit(&rt, "v1", &mut d, FieldValidation::Strict, Origin::Body)
            .expect_err("strict refuses");
        assert_eq!(e.code, 400);
        assert_eq!(e.reason, "BadRequest");
        assert_eq!(
            e.message,
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: \
             unknown field \"metadata.what\", unknown field \"spec.replica\", unknown field \"spec.zzz\""
        );
    }

    #[test]
    fn warn_drops_and_warns_ignore_drops_silently() {
        let rt = deployments();
        let clean = deployment(json!({}));
        let mut d = deployment(json!({"replica": 3}));
        let w = admit(&rt, "v1", &mut d, FieldValidation::Warn, Origin::Body).expect("ok");
        assert_eq!(w, ["unknown field \"spec.replica\""]);
        assert_eq!(d, clean);
        let mut d = deployment(json!({"replica": 3}));
        let w = admit(&rt, "v1", &mut d, FieldValidation::Ignore, Origin::Body).expect("ok");
        assert!(w.is_empty());
        assert_eq!(d, clean);
    }

    #[test]
    fn strict_patches_are_invalid_with_the_patch_shown_and_sorted_fields() {
        let rt = deployments();
        let mut d = deployment(json!({"zzz": 1, "aaa": {"b": "<&>"}}));
        let e = admit(
            &rt,
            "v1",
            &mut d,
            FieldValidation::Strict,
            Origin::JsonOrMergePatch {
                ops: Some(&json!([{"op": "add", "path": "/spec/zzz", "value": 1, "foo": 2}])),
            },
        )
        .expect_err("strict refuses");
        assert_eq!(e.code, 422);
        let tail = "strict decoding error: json patch unknown field \"[0].foo\", \
                    unknown field \"spec.aaa\", unknown field \"spec.zzz\"";
        assert!(
            e.message.starts_with(
                " \"\" is invalid: patch: Invalid value: \"{\\\"apiVersion\\\":\\\"apps/v1\\\""
            ),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("\\\"b\\\":\\\"\\\\u003c\\\\u0026\\\\u003e\\\""),
            "{}",
            e.message
        );
        assert!(e.message.ends_with(tail), "{}", e.message);
        let details = e.details.expect("details");
        assert_eq!(details["causes"][0]["field"], "patch");
        let patch = json!({"spec": {"replica": 3, "template": {"spec": {"containers": [{"name": "c", "x": 1.5}]}}}});
        let mut d = deployment(json!({"replica": 3}));
        let e = admit(
            &rt,
            "v1",
            &mut d,
            FieldValidation::Strict,
            Origin::StrategicPatch { patch: &patch },
        )
        .expect_err("strict refuses");
        assert_eq!(
            e.message,
            " \"\" is invalid: patch: Invalid value: \"map[spec:map[replica:3 template:map[spec:map[containers:[map[name:c x:1.5]]]]]]\": \
             strict decoding error: unknown field \"spec.replica\""
        );
    }

    #[test]
    fn apply_reports_one_field_per_map_with_list_keys_and_status_500() {
        let rt = deployments();
        let mut d = deployment(json!({"replica": 3, "other": 1}));
        d["spec"]["template"]["spec"]["containers"][0]["foo"] = json!(1);
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["bar"] = json!(1);
        let e = check_apply(&rt, "v1", &d).expect_err("refused");
        assert_eq!(e.code, 500);
        assert_eq!(e.reason, "");
        assert_eq!(
            e.message,
            "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): errors:\n  \
             .spec.template.spec.containers[name=\"c\"].ports[containerPort=80,protocol=\"TCP\"].bar: field not declared in schema\n  \
             .spec.template.spec.containers[name=\"c\"].foo: field not declared in schema\n  \
             .spec.replica: field not declared in schema"
        );
        assert!(check_apply(&rt, "v1", &deployment(json!({}))).is_ok());
        let cms = Registry::new().lookup("", "v1", "configmaps").expect("cm");
        let e = check_apply(&cms, "v1", &json!({"metadata": {"name": "c"}, "date": {}}))
            .expect_err("refused");
        assert_eq!(
            e.message,
            "failed to create typed patch object (/c; /v1, Kind=ConfigMap): .date: field not declared in schema"
        );
    }

    #[test]
    fn warnings_become_quoted_headers_once_each() {
        let resp = with_warnings(
            Response::new(axum::body::Body::empty()),
            &["unknown field \"a\"".into(), "unknown field \"a\"".into()],
        );
        let all: Vec<_> = resp.headers().get_all("warning").iter().collect();
        assert_eq!(all, ["299 - \"unknown field \\\"a\\\"\""]);
    }

    #[test]
    fn go_formatting_of_floats_and_quotes() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(2.0), "2");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1.5e-7), "1.5e-07");
        assert_eq!(go_quote("a\"b\\\u{1}"), "\"a\\\"b\\\\\\x01\"");
        assert_eq!(
            go_map(&json!({"b": null, "a": [true, "x"]})),
            "map[a:[true x] b:<nil>]"
        );
    }
}
