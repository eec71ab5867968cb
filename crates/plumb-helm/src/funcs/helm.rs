//! Helm's own template functions: `include`, `tpl`, `required`, `fail`, `lookup`, and the
//! YAML/JSON/TOML converters.

use std::collections::{BTreeMap, HashMap};

use super::{Func, s, want};
use crate::tmpl::Engine;
use crate::value::{Value, format_float_json};
use crate::yaml;

/// Marker Helm wraps `required` messages in so that the final error can be shortened.
pub const WARN_START: &str = "HELM_ERR_START";
/// End marker (see [`WARN_START`]).
pub const WARN_END: &str = "HELM_ERR_END";

fn include(e: &mut Engine, a: &[Value]) -> Result<Value, String> {
    if a.is_empty() || a.len() > 2 {
        return Err(format!(
            "wrong number of args for include: want 2 got {}",
            a.len()
        ));
    }
    let name = s(&a[0]);
    if e.depth() + 1 >= e.limits.max_depth {
        return Err(format!(
            "rendering template has a nested reference name: {name}: unable to execute template"
        ));
    }
    let data = a.get(1).cloned().unwrap_or_default();
    e.execute(&name, &data).map(Value::str).map_err(|x| x.0)
}

fn tpl(e: &mut Engine, a: &[Value]) -> Result<Value, String> {
    want(a, 2)?;
    let text = s(&a[0]);
    let vals = &a[1];
    let tmpl = vals.get("Template");
    let name = tmpl.as_ref().and_then(|t| t.get("Name")).map(|n| s(&n));
    let Some(name) = name else {
        return Err(format!(
            "cannot retrieve Template.Name from values inside tpl function: {text}: no Template.Name"
        ));
    };
    if e.depth() + 1 >= e.limits.max_depth {
        return Err(format!(
            "rendering template has a nested reference name: {name}: unable to execute template"
        ));
    }
    match e.execute_text(&name, &text, vals) {
        Ok(out) => Ok(Value::str(out.replace("<no value>", ""))),
        Err(err) => Err(format!(
            "error during tpl function execution for {}: {err}",
            super::fmt::go_quote(&text)
        )),
    }
}

/// Go's `encoding/json` output (HTML-escaped unless `raw`), optionally indented.
pub fn to_json_string(v: &Value, raw: bool, indent: Option<&str>) -> String {
    let mut out = String::new();
    if v.deeper_than(crate::value::MAX_DEPTH) {
        // encoding/json reports a cycle; Helm's toJson then yields "".
        return out;
    }
    write_json(&mut out, v, raw, indent, 0);
    out
}

fn json_str(out: &mut String, x: &str, raw: bool) {
    out.push('"');
    for c in x.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if !raw => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_json(out: &mut String, v: &Value, raw: bool, indent: Option<&str>, level: usize) {
    let nl = |out: &mut String, lvl: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            for _ in 0..lvl {
                out.push_str(ind);
            }
        }
    };
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&format_float_json(*f)),
        Value::Str(x) => json_str(out, x, raw),
        Value::Obj(o) => json_str(out, &o.display(), raw),
        Value::List(l) => {
            let l = l.borrow();
            if l.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, level + 1);
                write_json(out, x, raw, indent, level + 1);
            }
            nl(out, level);
            out.push(']');
        }
        Value::Map(m) => {
            let m = m.borrow();
            if m.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, level + 1);
                json_str(out, k, raw);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(out, x, raw, indent, level + 1);
            }
            nl(out, level);
            out.push('}');
        }
    }
}

fn parse_json(x: &str) -> Result<Value, String> {
    let j: serde_json::Value = serde_json::from_str(x).map_err(|e| e.to_string())?;
    Ok(yaml::json_to_value_float(&j))
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        super::fmt::go_quote(k)
    }
}

fn toml_scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => {
            let s = format_float_json(*f);
            if s.contains(['.', 'e']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        Value::Str(x) => super::fmt::go_quote(x),
        Value::List(l) => {
            let items: Option<Vec<String>> = l.borrow().iter().map(toml_scalar).collect();
            format!("[{}]", items?.join(", "))
        }
        _ => return None,
    })
}

fn write_toml(out: &mut String, v: &Value, path: &[String]) {
    let entries = v.map_entries().unwrap_or_default();
    let ind = "  ".repeat(path.len().saturating_sub(1));
    for (k, x) in &entries {
        if matches!(x, Value::Map(_)) || x.is_nil() {
            continue;
        }
        if let Some(sv) = toml_scalar(x) {
            out.push_str(&format!("{ind}{} = {sv}\n", toml_key(k)));
        }
    }
    for (k, x) in &entries {
        if let Value::Map(_) = x {
            let mut p = path.to_vec();
            p.push(toml_key(k));
            let ind2 = "  ".repeat(p.len() - 1);
            out.push_str(&format!("\n{ind2}[{}]\n", p.join(".")));
            write_toml(out, x, &p);
        }
    }
}

pub(super) fn register(m: &mut HashMap<&'static str, Func>) {
    m.insert("include", include);
    m.insert("tpl", tpl);
    m.insert("required", |_, a| {
        want(a, 2)?;
        match &a[1] {
            Value::Nil => Err(format!("{WARN_START}{}{WARN_END}", s(&a[0]))),
            Value::Str(x) if x.is_empty() => Err(format!("{WARN_START}{}{WARN_END}", s(&a[0]))),
            v => Ok(v.clone()),
        }
    });
    m.insert("fail", |_, a| {
        want(a, 1)?;
        // Helm wraps fail's message like required's, so that only the message is reported.
        Err(format!("{WARN_START}{}{WARN_END}", s(&a[0])))
    });
    m.insert("lookup", |e, a| {
        want(a, 4)?;
        match &e.lookup {
            // Offline rendering (helm template) has no cluster: lookup yields an empty map.
            None => Ok(Value::map(BTreeMap::new())),
            Some(l) => match (l.0)(&s(&a[0]), &s(&a[1]), &s(&a[2]), &s(&a[3]))? {
                serde_json::Value::Null => Ok(Value::map(BTreeMap::new())),
                j => Ok(Value::from_json(&j)),
            },
        }
    });
    m.insert("toYaml", |_, a| {
        want(a, 1)?;
        Ok(Value::str(yaml::to_yaml(&a[0]).trim_end_matches('\n')))
    });
    m.insert("mustToYaml", |_, a| {
        want(a, 1)?;
        Ok(Value::str(yaml::to_yaml(&a[0]).trim_end_matches('\n')))
    });
    m.insert("toYamlPretty", |_, a| {
        want(a, 1)?;
        Ok(Value::str(yaml::to_yaml(&a[0]).trim_end_matches('\n')))
    });
    m.insert("fromYaml", |_, a| {
        want(a, 1)?;
        Ok(match yaml::parse_values(&s(&a[0])) {
            Ok(Value::Map(m)) => Value::Map(m),
            Ok(Value::Nil) => Value::empty_map(),
            Ok(other) => {
                let mut e = BTreeMap::new();
                e.insert(
                    "Error".to_string(),
                    Value::str(format!(
                        "error unmarshaling JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                        other.kind()
                    )),
                );
                Value::map(e)
            }
            Err(err) => {
                let mut e = BTreeMap::new();
                e.insert("Error".to_string(), Value::str(err));
                Value::map(e)
            }
        })
    });
    m.insert("fromYamlArray", |_, a| {
        want(a, 1)?;
        Ok(match yaml::parse_values(&s(&a[0])) {
            Ok(Value::List(l)) => Value::List(l),
            Ok(Value::Nil) => Value::list(Vec::new()),
            Ok(_) => Value::list(vec![Value::str("error unmarshaling JSON: not an array")]),
            Err(err) => Value::list(vec![Value::str(err)]),
        })
    });
    m.insert("toJson", |_, a| {
        want(a, 1)?;
        Ok(Value::str(to_json_string(&a[0], false, None)))
    });
    m.insert("mustToJson", |_, a| {
        want(a, 1)?;
        Ok(Value::str(to_json_string(&a[0], false, None)))
    });
    m.insert("toRawJson", |_, a| {
        want(a, 1)?;
        Ok(Value::str(to_json_string(&a[0], true, None)))
    });
    m.insert("mustToRawJson", |_, a| {
        want(a, 1)?;
        Ok(Value::str(to_json_string(&a[0], true, None)))
    });
    m.insert("toPrettyJson", |_, a| {
        want(a, 1)?;
        Ok(Value::str(to_json_string(&a[0], false, Some("  "))))
    });
    m.insert("mustToPrettyJson", |_, a| {
        want(a, 1)?;
        Ok(Value::str(to_json_string(&a[0], false, Some("  "))))
    });
    m.insert("fromJson", |_, a| {
        want(a, 1)?;
        Ok(match parse_json(&s(&a[0])) {
            Ok(v @ Value::Map(_)) => v,
            Ok(_) => Value::empty_map(),
            Err(err) => {
                let mut e = BTreeMap::new();
                e.insert("Error".to_string(), Value::str(err));
                Value::map(e)
            }
        })
    });
    m.insert("mustFromJson", |_, a| {
        want(a, 1)?;
        parse_json(&s(&a[0]))
    });
    m.insert("fromJsonArray", |_, a| {
        want(a, 1)?;
        Ok(match parse_json(&s(&a[0])) {
            Ok(v @ Value::List(_)) => v,
            Ok(_) => Value::list(Vec::new()),
            Err(err) => Value::list(vec![Value::str(err)]),
        })
    });
    m.insert("fromToml", |_, _| {
        Err("not supported yet: fromToml".to_string())
    });
    m.insert("toToml", |_, a| {
        want(a, 1)?;
        let mut out = String::new();
        write_toml(&mut out, &a[0], &[]);
        Ok(Value::str(out.trim_start_matches('\n')))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_like_go() {
        let v = Value::map(BTreeMap::from([
            ("b".to_string(), Value::Float(1e6)),
            ("a".to_string(), Value::str("<x>")),
        ]));
        assert_eq!(
            to_json_string(&v, false, None),
            r#"{"a":"\u003cx\u003e","b":1000000}"#
        );
        assert_eq!(
            to_json_string(&v, true, Some("  ")),
            "{\n  \"a\": \"<x>\",\n  \"b\": 1000000\n}"
        );
    }
}
