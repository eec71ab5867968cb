//! Template functions: Go's builtins, the Sprig library as Helm ships it, and Helm's own.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::tmpl::Engine;
use crate::value::Value;

pub mod fmt;
mod helm;
mod misc;
/// Masterminds-style semantic versions and constraints.
pub mod semver {
    pub use super::misc::{Version, parse_version, semver_matches};
}
mod collections;
mod dates;
mod sprig;

pub use helm::to_json_string;

/// A template function. Errors are plain messages; the executor adds
/// `error calling NAME:` and the template location.
pub type Func = fn(&mut Engine, &[Value]) -> Result<Value, String>;

fn table() -> &'static HashMap<&'static str, Func> {
    static T: OnceLock<HashMap<&'static str, Func>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m: HashMap<&'static str, Func> = HashMap::new();
        builtins(&mut m);
        sprig::register(&mut m);
        collections::register(&mut m);
        dates::register(&mut m);
        misc::register(&mut m);
        helm::register(&mut m);
        m
    })
}

/// Is `name` a known function (checked at parse time, as Go does)?
pub fn exists(name: &str) -> bool {
    name == "and" || name == "or" || table().contains_key(name)
}

/// Look a function up.
pub fn get(name: &str) -> Option<Func> {
    table().get(name).copied()
}

/// Every function name, sorted (for documentation and tests).
pub fn names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = table().keys().copied().collect();
    v.push("and");
    v.push("or");
    v.sort_unstable();
    v
}

/// Positions of `string` parameters: Go rejects a nil argument there
/// (`invalid value; expected string`).
pub fn string_params(name: &str) -> &'static [usize] {
    match name {
        "b64enc" | "b64dec" | "upper" | "lower" | "title" | "untitle" | "trim" | "sha256sum"
        | "sha1sum" | "adler32sum" | "nospace" | "snakecase" | "camelcase" | "kebabcase"
        | "swapcase" | "initials" => &[0],
        "trimAll" | "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix" | "hasSuffix"
        | "splitList" | "split" | "regexMatch" | "regexFind" | "regexSplit" => &[0, 1],
        "trunc" | "indent" | "nindent" | "repeat" | "abbrev" | "wrap" => &[1],
        "replace" | "regexReplaceAll" | "regexReplaceAllLiteral" => &[0, 1, 2],
        "substr" => &[2],
        _ => &[],
    }
}

/// Largest string or list a single function may build (guards `repeat 1e12`-style input).
pub(crate) const MAX_BUILD: usize = 64 << 20;

/// Refuse to build something larger than [`MAX_BUILD`].
pub(crate) fn check_size(what: &str, n: u128) -> Result<(), String> {
    if n > MAX_BUILD as u128 {
        return Err(format!(
            "{what}: result of {n} elements/bytes exceeds the limit of {MAX_BUILD}"
        ));
    }
    Ok(())
}

// ---- argument helpers ----

pub(crate) fn want(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("wrong number of args: want {n} got {}", args.len()));
    }
    Ok(())
}

pub(crate) fn want_min(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() < n {
        return Err(format!(
            "wrong number of args: want at least {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// Sprig's `strval`: strings as-is, nil as empty, the rest via `%v`.
pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::Nil => String::new(),
        v => v.to_go_string(),
    }
}

/// Sprig's `toInt64` (spf13/cast semantics).
pub(crate) fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| parse_int_base0(t))
                .or_else(|| t.parse::<f64>().ok().map(|f| f as i64))
                .unwrap_or(0)
        }
        _ => 0,
    }
}

fn parse_int_base0(t: &str) -> Option<i64> {
    let (neg, b) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = if let Some(h) = b.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = b.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(bin) = b.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if b.len() > 1 && b.starts_with('0') {
        i64::from_str_radix(&b[1..], 8).ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// Sprig's `toFloat64`.
pub(crate) fn float(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's `empty`.
pub(crate) fn is_empty(v: &Value) -> bool {
    !v.truthy() && !matches!(v, Value::Obj(_))
}

/// Items of a list-like value (Sprig accepts slices; nil is empty).
pub(crate) fn items(v: &Value, func: &str) -> Result<Vec<Value>, String> {
    match v {
        Value::List(l) => Ok(l.borrow().clone()),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!("cannot {func} on type {}", other.type_name())),
    }
}

// ---- Go text/template builtins ----

fn builtins(m: &mut HashMap<&'static str, Func>) {
    m.insert("not", |_, a| {
        want(a, 1)?;
        Ok(Value::Bool(!a[0].truthy()))
    });
    m.insert("len", |_, a| {
        want(a, 1)?;
        Ok(Value::Int(match &a[0] {
            Value::Str(s) => s.len() as i64,
            Value::List(l) => l.borrow().len() as i64,
            Value::Map(m) => m.borrow().len() as i64,
            Value::Obj(o) if o.entries().is_some() => o.entries().map_or(0, |e| e.len()) as i64,
            Value::Nil => return Err("len of nil pointer".into()),
            other => return Err(format!("len of type {}", other.type_name())),
        }))
    });
    m.insert("index", |_, a| {
        want_min(a, 1)?;
        let mut cur = a[0].clone();
        for k in &a[1..] {
            cur = match &cur {
                Value::Map(m) => m.borrow().get(&s(k)).cloned().unwrap_or_default(),
                Value::List(l) => {
                    let i = match k {
                        Value::Int(i) => *i,
                        Value::Float(f) => *f as i64,
                        other => {
                            return Err(format!(
                                "cannot index slice/array with type {}",
                                other.type_name()
                            ));
                        }
                    };
                    let l = l.borrow();
                    if i < 0 || i as usize >= l.len() {
                        return Err(format!("error calling index: index out of range: {i}"));
                    }
                    l[i as usize].clone()
                }
                Value::Str(st) => {
                    let i = int(k);
                    match st.as_bytes().get(i.max(0) as usize) {
                        Some(b) if i >= 0 => Value::Int(i64::from(*b)),
                        _ => return Err(format!("error calling index: index out of range: {i}")),
                    }
                }
                Value::Nil => return Err("index of untyped nil".into()),
                other => return Err(format!("can't index item of type {}", other.type_name())),
            };
        }
        Ok(cur)
    });
    m.insert("print", |_, a| Ok(Value::str(go_sprint(a))));
    m.insert("println", |_, a| {
        let parts: Vec<String> = a.iter().map(Value::to_go_string).collect();
        Ok(Value::str(format!("{}\n", parts.join(" "))))
    });
    m.insert("printf", |_, a| {
        want_min(a, 1)?;
        Ok(Value::str(fmt::sprintf(&s(&a[0]), &a[1..])))
    });
    m.insert("eq", |_, a| {
        want_min(a, 2)?;
        for b in &a[1..] {
            if go_eq(&a[0], b)? {
                return Ok(Value::Bool(true));
            }
        }
        Ok(Value::Bool(false))
    });
    m.insert("ne", |_, a| {
        want(a, 2)?;
        Ok(Value::Bool(!go_eq(&a[0], &a[1])?))
    });
    m.insert("lt", |_, a| cmp(a, |o| o.is_lt()));
    m.insert("le", |_, a| cmp(a, |o| o.is_le()));
    m.insert("gt", |_, a| cmp(a, |o| o.is_gt()));
    m.insert("ge", |_, a| cmp(a, |o| o.is_ge()));
    m.insert("html", |_, a| {
        let t = go_sprint(a);
        Ok(Value::str(
            t.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;"),
        ))
    });
    m.insert("js", |_, a| {
        let t = go_sprint(a);
        let mut o = String::new();
        for c in t.chars() {
            match c {
                '\\' => o.push_str("\\\\"),
                '\'' => o.push_str("\\'"),
                '"' => o.push_str("\\\""),
                '<' => o.push_str("\\u003C"),
                '>' => o.push_str("\\u003E"),
                '&' => o.push_str("\\u0026"),
                '=' => o.push_str("\\u003D"),
                '\n' => o.push_str("\\n"),
                '\r' => o.push_str("\\r"),
                '\t' => o.push_str("\\t"),
                c => o.push(c),
            }
        }
        Ok(Value::str(o))
    });
    m.insert("urlquery", |_, a| {
        Ok(Value::str(misc::query_escape(&go_sprint(a))))
    });
}

/// Go's `fmt.Sprint`: spaces only between operands when neither is a string.
pub(crate) fn go_sprint(a: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !matches!(v, Value::Str(_)) && !matches!(a[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&v.to_go_string());
    }
    out
}

/// Go's template `eq` for one pair.
pub(crate) fn go_eq(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(_), _) | (Value::Map(_), _) | (_, Value::List(_)) | (_, Value::Map(_)) => {
            return Err(format!(
                "non-comparable types {}: {}, {}",
                a.to_go_string(),
                a.type_name(),
                b.type_name()
            ));
        }
        (Value::Obj(x), Value::Obj(y)) => x.display() == y.display(),
        _ => return Err("incompatible types for comparison".into()),
    })
}

fn cmp(a: &[Value], f: fn(std::cmp::Ordering) -> bool) -> Result<Value, String> {
    want(a, 2)?;
    let o = match (&a[0], &a[1]) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).ok_or("invalid comparison")?,
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Nil, _) | (_, Value::Nil) => return Err("invalid type for comparison".into()),
        (Value::Bool(_), _) | (Value::List(_), _) | (Value::Map(_), _) => {
            return Err("invalid type for comparison".into());
        }
        _ => return Err("incompatible types for comparison".into()),
    };
    Ok(Value::Bool(f(o)))
}
