//! YAML in and out the way Helm does it: `toYaml` prints like sigs.k8s.io/yaml
//! (JSON round trip, then go-yaml v2's emitter), and parsed YAML numbers become
//! float64 as Go's `encoding/json` makes them.

use std::cmp::Ordering;
use std::sync::OnceLock;

use regex::Regex;

use crate::value::{Value, format_float_g, format_float_json};

const BEST_WIDTH: usize = 80;

/// Parse one YAML document into a value the way Helm reads values (numbers → float64).
pub fn parse_values(src: &str) -> Result<Value, String> {
    if src.trim().is_empty() {
        return Ok(Value::Nil);
    }
    let j: serde_json::Value = from_str(src)?;
    Ok(json_to_value_float(&j))
}

fn options() -> serde_saphyr::Options {
    // go-yaml v2 reads YAML 1.1: `0755` is octal.
    let mut o = serde_saphyr::Options::default();
    o.legacy_octal_numbers = true;
    o.emit_comments = false;
    // go-yaml v2 (non-strict) keeps the last of duplicate keys.
    o.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    o
}

/// Parse one YAML document with go-yaml v2's scalar rules.
pub fn from_str<T: serde::de::DeserializeOwned>(src: &str) -> Result<T, String> {
    serde_saphyr::from_str_with_options(src, options()).map_err(|e| e.to_string())
}

/// Parse every document of a YAML stream as JSON values.
pub fn parse_documents(src: &str) -> Result<Vec<serde_json::Value>, String> {
    serde_saphyr::from_multiple_with_options::<serde_json::Value>(src, options())
        .map_err(|e| e.to_string())
}

/// JSON → value with every number a float64, as `json.Unmarshal` into interface{} does.
pub fn json_to_value_float(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::Array(a) => Value::list(a.iter().map(json_to_value_float).collect()),
        serde_json::Value::Object(o) => Value::map(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_value_float(v)))
                .collect(),
        ),
        other => Value::from_json(other),
    }
}

/// Helm's `toYaml` (without the trailing-newline trim).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    if v.deeper_than(crate::value::MAX_DEPTH) {
        // sigs.k8s.io/yaml fails on cycles; Helm's toYaml then yields "".
        return out;
    }
    let v = normalize(v);
    match &v {
        Value::Map(m) if !m.borrow().is_empty() => emit_map(&mut out, &v, 0),
        Value::List(l) if !l.borrow().is_empty() => emit_list(&mut out, &v, 0),
        other => {
            // A root block scalar is indented like a mapping value.
            out.push_str(&scalar(other, 2, 0));
            out.push('\n');
        }
    }
    out
}

/// The JSON round trip: floats that print as integers become integers.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Float(f) => {
            let s = format_float_json(*f);
            match s.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Float(*f),
            }
        }
        Value::List(l) => Value::list(l.borrow().iter().map(normalize).collect()),
        Value::Map(m) => Value::map(
            m.borrow()
                .iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Obj(o) => Value::str(o.display()),
        other => other.clone(),
    }
}

fn sorted_entries(v: &Value) -> Vec<(String, Value)> {
    let mut e = v.map_entries().unwrap_or_default();
    e.sort_by(|a, b| yaml_v2_key_cmp(&a.0, &b.0));
    e
}

/// go-yaml v2's key order: letters after non-letters, digit runs compared numerically.
pub fn yaml_v2_key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let n = ar.len().min(br.len());
    for i in 0..n {
        if ar[i] == br[i] {
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

fn is_empty_collection(v: &Value) -> bool {
    match v {
        Value::Map(m) => m.borrow().is_empty(),
        Value::List(l) => l.borrow().is_empty(),
        _ => false,
    }
}

fn emit_map(out: &mut String, v: &Value, indent: usize) {
    let mut first = true;
    for (k, val) in sorted_entries(v) {
        if !first || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        first = false;
        out.push_str(&scalar(&Value::str(k.as_str()), indent, indent));
        out.push(':');
        emit_value_after_key(out, &val, indent);
    }
}

fn push_indent(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

fn emit_value_after_key(out: &mut String, val: &Value, indent: usize) {
    match val {
        Value::Map(_) if !is_empty_collection(val) => {
            out.push('\n');
            emit_map(out, val, indent + 2);
        }
        Value::List(_) if !is_empty_collection(val) => {
            out.push('\n');
            emit_list(out, val, indent);
        }
        other => {
            out.push(' ');
            let col = current_column(out);
            out.push_str(&scalar(other, indent + 2, col));
            out.push('\n');
        }
    }
}

fn current_column(out: &str) -> usize {
    match out.rfind('\n') {
        Some(i) => out.len() - i - 1,
        None => out.len(),
    }
}

fn emit_list(out: &mut String, v: &Value, indent: usize) {
    for item in v.list_items().unwrap_or_default() {
        if !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match &item {
            Value::Map(_) if !is_empty_collection(&item) => emit_map(out, &item, indent + 2),
            Value::List(_) if !is_empty_collection(&item) => emit_list(out, &item, indent + 2),
            other => {
                let col = current_column(out);
                out.push_str(&scalar(other, indent + 2, col));
                out.push('\n');
            }
        }
    }
}

/// Render a scalar (or empty collection) at `indent` (for continuation lines), starting
/// at output column `col`.
fn scalar(v: &Value, indent: usize, col: usize) -> String {
    match v {
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => {
            if f.is_nan() {
                ".nan".into()
            } else if f.is_infinite() {
                if *f > 0.0 {
                    "+.inf".into()
                } else {
                    "-.inf".into()
                }
            } else {
                format_float_g(*f)
            }
        }
        Value::Str(s) => string_scalar(s, indent, col),
        Value::List(_) => "[]".into(),
        Value::Map(_) => "{}".into(),
        Value::Obj(o) => string_scalar(&o.display(), indent, col),
    }
}

/// A constant regex; `None` only if the pattern were invalid, which tests rule out.
fn re(cell: &'static OnceLock<Option<Regex>>, pat: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pat).ok()).as_ref()
}

fn is_match(cell: &'static OnceLock<Option<Regex>>, pat: &str, s: &str) -> bool {
    re(cell, pat).is_some_and(|r| r.is_match(s))
}

/// Would go-yaml v2 resolve this plain scalar to something other than a string?
pub fn resolves_non_string(s: &str) -> bool {
    static FLOAT: OnceLock<Option<Regex>> = OnceLock::new();
    static BASE60: OnceLock<Option<Regex>> = OnceLock::new();
    static TS: OnceLock<Option<Regex>> = OnceLock::new();
    if matches!(
        s,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "y"
            | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
            | "<<"
    ) {
        return true;
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return false;
    }
    // go-yaml v2 drops underscores before trying strconv.ParseInt(s, 0, 64).
    if go_parse_int(&s.replace('_', "")).is_some() {
        return true;
    }
    if is_match(
        &FLOAT,
        r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$",
        s,
    ) {
        return true;
    }
    if is_match(
        &BASE60,
        r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$",
        s,
    ) {
        return true;
    }
    is_match(
        &TS,
        r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::?[0-9]{2})?))?)?$",
        s,
    )
}

/// Go's `strconv.ParseInt(s, 0, 64)` (with `0b` handled as yaml.v2 does).
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits, underscores_ok) =
        if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, h, true)
        } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, b, true)
        } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, o, true)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..], true)
        } else {
            (10, body, false)
        };
    if digits.is_empty() || (!underscores_ok && digits.contains('_')) {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || digits.starts_with('_') && radix == 10 {
        return None;
    }
    let v = i64::from_str_radix(&clean, radix).ok()?;
    Some(if neg { -v } else { v })
}

struct Analysis {
    multiline: bool,
    plain_ok: bool,
    single_ok: bool,
    block_ok: bool,
}

fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
        && c != '\u{feff}'
}

/// libyaml's `yaml_emitter_analyze_scalar`, reduced to block context.
fn analyze(s: &str) -> Analysis {
    let mut a = Analysis {
        multiline: false,
        plain_ok: true,
        single_ok: true,
        block_ok: true,
    };
    if s.is_empty() {
        a.plain_ok = false;
        a.block_ok = false;
        return a;
    }
    if s.starts_with("---") || s.starts_with("...") {
        a.plain_ok = false;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_ind = false;
    let mut special = false;
    let mut line_breaks = false;
    let mut space_break = false;
    let mut break_space = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut prev_space = false;
    let mut prev_break = false;
    let mut preceded_by_ws = true;
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let followed_by_ws = next.is_none_or(|n| matches!(n, ' ' | '\t' | '\n' | '\r'));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_ind = true,
                '?' | ':' | '-' if followed_by_ws => block_ind = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_ws => block_ind = true,
                '#' if preceded_by_ws => block_ind = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == '\n' || c == '\r' {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == chars.len() {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if c == '\n' || c == '\r' {
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == chars.len() {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = matches!(c, ' ' | '\t' | '\n' | '\r');
    }
    a.multiline = line_breaks;
    if leading_space || leading_break || trailing_space || trailing_break {
        a.plain_ok = false;
    }
    if trailing_space {
        a.block_ok = false;
    }
    if break_space {
        a.plain_ok = false;
        a.single_ok = false;
    }
    if space_break || special {
        a.plain_ok = false;
        a.single_ok = false;
        a.block_ok = false;
    }
    if line_breaks {
        a.plain_ok = false;
    }
    if block_ind {
        a.plain_ok = false;
    }
    a
}

fn string_scalar(s: &str, indent: usize, col: usize) -> String {
    let a = analyze(s);
    let want_plain = !resolves_non_string(s) && !is_base60(s);
    if s.contains('\n') {
        if a.block_ok {
            return literal(s, indent);
        }
        return double_quoted(s, indent, col);
    }
    if want_plain && a.plain_ok {
        return fold_plain(s, indent, col);
    }
    if want_plain && a.single_ok {
        return single_quoted(s, indent, col);
    }
    double_quoted(s, indent, col)
}

fn is_base60(s: &str) -> bool {
    static BASE60: OnceLock<Option<Regex>> = OnceLock::new();
    is_match(
        &BASE60,
        r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$",
        s,
    )
}

fn fold_plain(s: &str, indent: usize, col: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut column = col;
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_space = chars.get(i + 1) == Some(&' ');
            if !spaces && column > BEST_WIDTH && !next_space {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                column = indent;
            } else {
                out.push(c);
                column += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            column += 1;
            spaces = false;
        }
    }
    out
}

fn single_quoted(s: &str, indent: usize, col: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::from("'");
    let mut column = col + 1;
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_space = chars.get(i + 1) == Some(&' ');
            if !spaces && column > BEST_WIDTH && i != 0 && i + 1 != chars.len() && !next_space {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                column = indent;
            } else {
                out.push(c);
                column += 1;
            }
            spaces = true;
        } else {
            if c == '\'' {
                out.push('\'');
                column += 1;
            }
            out.push(c);
            column += 1;
            spaces = false;
        }
    }
    out.push('\'');
    out
}

fn double_quoted(s: &str, indent: usize, col: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::from("\"");
    let mut column = col + 1;
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if !is_printable(c) || c == '\n' || c == '\r' || c == '"' || c == '\\' || c == '\u{feff}' {
            let esc = match c {
                '\0' => "\\0".to_string(),
                '\x07' => "\\a".to_string(),
                '\x08' => "\\b".to_string(),
                '\t' => "\\t".to_string(),
                '\n' => "\\n".to_string(),
                '\x0b' => "\\v".to_string(),
                '\x0c' => "\\f".to_string(),
                '\r' => "\\r".to_string(),
                '\x1b' => "\\e".to_string(),
                '"' => "\\\"".to_string(),
                '\\' => "\\\\".to_string(),
                '\u{85}' => "\\N".to_string(),
                '\u{a0}' => "\\_".to_string(),
                '\u{2028}' => "\\L".to_string(),
                '\u{2029}' => "\\P".to_string(),
                c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                c => format!("\\U{:08X}", c as u32),
            };
            column += esc.len();
            out.push_str(&esc);
            spaces = false;
        } else if c == ' ' {
            if !spaces && column > BEST_WIDTH && i != 0 && i + 1 != chars.len() {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                column = indent;
                if chars.get(i + 1) == Some(&' ') {
                    out.push('\\');
                    column += 1;
                }
            } else {
                out.push(c);
                column += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            column += 1;
            spaces = false;
        }
    }
    out.push('"');
    out
}

fn literal(s: &str, indent: usize) -> String {
    let mut out = String::from("|");
    if s.starts_with(' ') || s.starts_with('\n') {
        out.push_str(&2.to_string());
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    if trailing == 0 {
        out.push('-');
    } else if trailing > 1 || s.chars().all(|c| c == '\n') {
        out.push('+');
    }
    let body = if trailing > 0 { &s[..s.len() - 1] } else { s };
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn m(pairs: &[(&str, Value)]) -> Value {
        Value::map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn yaml_v2_styles() {
        let v = m(&[
            (
                "b",
                Value::list(vec![
                    Value::str("x"),
                    m(&[("k", Value::Int(1)), ("a", Value::Bool(true))]),
                ]),
            ),
            ("a", Value::str("true")),
            ("c", Value::str("multi\nline")),
            ("d", Value::str("a: b")),
            ("e", Value::Float(3.0)),
            ("f", Value::empty_map()),
            ("g", Value::str("")),
            ("h", Value::Nil),
            ("i", Value::str("2024-01-01")),
        ]);
        assert_eq!(
            to_yaml(&v),
            "a: \"true\"\nb:\n- x\n- a: true\n  k: 1\nc: |-\n  multi\n  line\nd: 'a: b'\ne: 3\nf: {}\ng: \"\"\nh: null\ni: \"2024-01-01\"\n"
        );
    }

    #[test]
    fn quoting_follows_yaml_v2_resolution() {
        let q = |s: &str| to_yaml(&Value::str(s));
        assert_eq!(q("1_000"), "\"1_000\"\n");
        assert_eq!(q("0755"), "\"0755\"\n");
        assert_eq!(q("yes"), "\"yes\"\n");
        assert_eq!(q("1:20"), "\"1:20\"\n");
        assert_eq!(q("- x"), "'- x'\n");
        assert_eq!(q("it's"), "it's\n");
        assert_eq!(q("a\tb"), "\"a\\tb\"\n");
        assert_eq!(q("x #y"), "'x #y'\n");
        assert_eq!(q("line \nnext"), "\"line \\nnext\"\n");
        assert_eq!(q("  lead\nx\n"), "|2\n    lead\n  x\n");
    }

    #[test]
    fn key_order_is_go_yaml_v2() {
        let mut keys = vec!["b10", "b2", "B", "_x", "a"];
        keys.sort_by(|a, b| yaml_v2_key_cmp(a, b));
        assert_eq!(keys, vec!["_x", "B", "a", "b2", "b10"]);
    }

    #[test]
    fn long_plain_strings_fold_at_80() {
        let s = "word ".repeat(30);
        let s = s.trim_end();
        let out = to_yaml(&m(&[("k", Value::str(s))]));
        assert!(out.lines().count() > 1, "{out}");
        assert!(
            out.lines().nth(1).is_some_and(|l| l.starts_with("  word")),
            "{out}"
        );
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn values_parse_like_helm() {
        let v = parse_values("a: 1\na: 2\nb: yes\nc: 0755\nd: 1.0\n").unwrap_or_default();
        assert_eq!(
            crate::funcs::to_json_string(&v, true, None),
            r#"{"a":2,"b":true,"c":493,"d":1}"#
        );
        assert!(matches!(v.get("a"), Some(Value::Float(_))));
    }
}
