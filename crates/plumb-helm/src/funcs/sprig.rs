//! Sprig's string, list, dict, math, default and type functions.

use std::collections::{BTreeMap, HashMap};

use super::{Func, float, int, is_empty, s, want, want_min};
use crate::value::Value;

fn st(v: impl Into<String>) -> Result<Value, String> {
    Ok(Value::str(v.into()))
}

fn title(x: &str) -> String {
    let mut out = String::new();
    let mut prev_letter = false;
    for c in x.chars() {
        if !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_';
    }
    out
}

fn words(x: &str) -> Vec<String> {
    // Split on case changes, digits and separators the way strcase/xstrings do.
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = x.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_uppercase() && !cur.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn check_indent(n: i64, text: &str) -> Result<(), String> {
    let lines = text.matches('\n').count() as u128 + 1;
    super::check_size("indent", n.max(0) as u128 * lines + text.len() as u128)
}

fn indent_str(n: i64, text: &str) -> String {
    let pad = " ".repeat(n.max(0) as usize);
    format!("{pad}{}", text.replace('\n', &format!("\n{pad}")))
}

fn trunc(n: i64, x: &str) -> String {
    let len = x.len() as i64;
    if n < 0 {
        let start = (len + n).max(0) as usize;
        x.get(start..).unwrap_or(x).to_string()
    } else if n < len {
        x.get(..n as usize).unwrap_or(x).to_string()
    } else {
        x.to_string()
    }
}

fn list_of(v: &Value) -> Vec<Value> {
    v.list_items().unwrap_or_default()
}

pub(super) fn register(m: &mut HashMap<&'static str, Func>) {
    // strings
    m.insert("upper", |_, a| {
        want(a, 1)?;
        st(s(&a[0]).to_uppercase())
    });
    m.insert("lower", |_, a| {
        want(a, 1)?;
        st(s(&a[0]).to_lowercase())
    });
    m.insert("title", |_, a| {
        want(a, 1)?;
        st(title(&s(&a[0])))
    });
    m.insert("untitle", |_, a| {
        want(a, 1)?;
        let x = s(&a[0]);
        let mut out = String::new();
        let mut prev_space = true;
        for c in x.chars() {
            if prev_space {
                out.extend(c.to_lowercase())
            } else {
                out.push(c)
            }
            prev_space = c.is_whitespace();
        }
        st(out)
    });
    m.insert("trim", |_, a| {
        want(a, 1)?;
        st(s(&a[0]).trim())
    });
    m.insert("trimAll", |_, a| {
        want(a, 2)?;
        let cut: Vec<char> = s(&a[0]).chars().collect();
        st(s(&a[1]).trim_matches(|c| cut.contains(&c)))
    });
    m.insert("trimall", |e, a| {
        super::get("trimAll").ok_or("trimAll")?(e, a)
    });
    m.insert("hello", |_, _| st("Hello!"));
    m.insert("trimPrefix", |_, a| {
        want(a, 2)?;
        let x = s(&a[1]);
        st(x.strip_prefix(s(&a[0]).as_str()).unwrap_or(&x))
    });
    m.insert("trimSuffix", |_, a| {
        want(a, 2)?;
        let x = s(&a[1]);
        st(x.strip_suffix(s(&a[0]).as_str()).unwrap_or(&x))
    });
    m.insert("trunc", |_, a| {
        want(a, 2)?;
        st(trunc(int(&a[0]), &s(&a[1])))
    });
    m.insert("substr", |_, a| {
        want(a, 3)?;
        let x = s(&a[2]);
        let (start, end) = (int(&a[0]), int(&a[1]));
        let len = x.len() as i64;
        let r = if start < 0 {
            x.get(..end.clamp(0, len) as usize)
        } else if end < 0 || end > len {
            x.get(start.min(len) as usize..)
        } else {
            x.get(start.min(end) as usize..end as usize)
        };
        st(r.unwrap_or(""))
    });
    m.insert("repeat", |_, a| {
        want(a, 2)?;
        let (n, x) = (int(&a[0]).max(0) as u128, s(&a[1]));
        super::check_size("repeat", n * x.len() as u128)?;
        st(x.repeat(n as usize))
    });
    m.insert("nospace", |_, a| {
        want(a, 1)?;
        st(s(&a[0])
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>())
    });
    m.insert("initials", |_, a| {
        want(a, 1)?;
        st(s(&a[0])
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .collect::<String>())
    });
    m.insert("contains", |_, a| {
        want(a, 2)?;
        Ok(Value::Bool(s(&a[1]).contains(s(&a[0]).as_str())))
    });
    m.insert("hasPrefix", |_, a| {
        want(a, 2)?;
        Ok(Value::Bool(s(&a[1]).starts_with(s(&a[0]).as_str())))
    });
    m.insert("hasSuffix", |_, a| {
        want(a, 2)?;
        Ok(Value::Bool(s(&a[1]).ends_with(s(&a[0]).as_str())))
    });
    m.insert("quote", |_, a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !v.is_nil())
            .map(|v| super::fmt::go_quote(&s(v)))
            .collect();
        st(parts.join(" "))
    });
    m.insert("squote", |_, a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !v.is_nil())
            .map(|v| format!("'{}'", s(v)))
            .collect();
        st(parts.join(" "))
    });
    m.insert("cat", |_, a| {
        let parts: Vec<String> = a.iter().filter(|v| !v.is_nil()).map(s).collect();
        st(parts.join(" "))
    });
    m.insert("indent", |_, a| {
        want(a, 2)?;
        let x = s(&a[1]);
        check_indent(int(&a[0]), &x)?;
        st(indent_str(int(&a[0]), &x))
    });
    m.insert("nindent", |_, a| {
        want(a, 2)?;
        let x = s(&a[1]);
        check_indent(int(&a[0]), &x)?;
        st(format!("\n{}", indent_str(int(&a[0]), &x)))
    });
    m.insert("replace", |_, a| {
        want(a, 3)?;
        st(s(&a[2]).replace(s(&a[0]).as_str(), &s(&a[1])))
    });
    m.insert("plural", |_, a| {
        want(a, 3)?;
        Ok(if int(&a[2]) == 1 {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    m.insert("snakecase", |_, a| {
        want(a, 1)?;
        st(words(&s(&a[0]))
            .iter()
            .map(|w| w.to_lowercase())
            .collect::<Vec<_>>()
            .join("_"))
    });
    m.insert("kebabcase", |_, a| {
        want(a, 1)?;
        st(words(&s(&a[0]))
            .iter()
            .map(|w| w.to_lowercase())
            .collect::<Vec<_>>()
            .join("-"))
    });
    m.insert("camelcase", |_, a| {
        want(a, 1)?;
        let x = s(&a[0]);
        st(x.split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<String>())
    });
    m.insert("swapcase", |_, a| {
        want(a, 1)?;
        st(s(&a[0])
            .chars()
            .map(|c| {
                if c.is_uppercase() {
                    c.to_lowercase().collect::<String>()
                } else {
                    c.to_uppercase().collect()
                }
            })
            .collect::<String>())
    });
    m.insert("abbrevboth", |_, a| {
        want(a, 3)?;
        let (left, width, x) = (int(&a[0]), int(&a[1]), s(&a[2]));
        let n = x.chars().count() as i64;
        if width < 4 || n <= width {
            return st(x);
        }
        let left = left.clamp(0, n);
        let body: String = x.chars().skip(left as usize).collect();
        let body = if left > 0 { format!("...{body}") } else { body };
        let blen = body.chars().count() as i64;
        if blen <= width {
            return st(body);
        }
        st(format!(
            "{}...",
            body.chars()
                .take((width - 3).max(0) as usize)
                .collect::<String>()
        ))
    });
    m.insert("abbrev", |_, a| {
        want(a, 2)?;
        let (w, x) = (int(&a[0]), s(&a[1]));
        if w < 4 || x.len() as i64 <= w {
            return st(x);
        }
        st(format!("{}...", x.get(..(w - 3) as usize).unwrap_or("")))
    });
    m.insert("wrap", |_, a| {
        want(a, 2)?;
        st(wrap(&s(&a[1]), int(&a[0]) as usize, "\n"))
    });
    m.insert("wrapWith", |_, a| {
        want(a, 3)?;
        st(wrap(&s(&a[2]), int(&a[0]) as usize, &s(&a[1])))
    });
    m.insert("toString", |_, a| {
        want(a, 1)?;
        st(s(&a[0]))
    });
    m.insert("toStrings", |_, a| {
        want(a, 1)?;
        Ok(Value::list(
            list_of(&a[0]).iter().map(|v| Value::str(s(v))).collect(),
        ))
    });
    m.insert("join", |_, a| {
        want(a, 2)?;
        let parts: Vec<String> = match &a[1] {
            Value::List(l) => l.borrow().iter().filter(|v| !v.is_nil()).map(s).collect(),
            other => vec![s(other)],
        };
        st(parts.join(&s(&a[0])))
    });
    m.insert("split", |_, a| {
        want(a, 2)?;
        let x = s(&a[1]);
        let mut out = BTreeMap::new();
        for (i, p) in x.split(s(&a[0]).as_str()).enumerate() {
            out.insert(format!("_{i}"), Value::str(p));
        }
        Ok(Value::map(out))
    });
    m.insert("splitn", |_, a| {
        want(a, 3)?;
        let x = s(&a[2]);
        let mut out = BTreeMap::new();
        for (i, p) in x
            .splitn(int(&a[1]).max(0) as usize, s(&a[0]).as_str())
            .enumerate()
        {
            out.insert(format!("_{i}"), Value::str(p));
        }
        Ok(Value::map(out))
    });
    m.insert("splitList", |_, a| {
        want(a, 2)?;
        let sep = s(&a[0]);
        let x = s(&a[1]);
        if sep.is_empty() {
            return Ok(Value::list(
                x.chars().map(|c| Value::str(c.to_string())).collect(),
            ));
        }
        Ok(Value::list(x.split(sep.as_str()).map(Value::str).collect()))
    });
    m.insert("sortAlpha", |_, a| {
        want(a, 1)?;
        let mut v: Vec<String> = match &a[0] {
            Value::List(l) => l.borrow().iter().map(s).collect(),
            other => vec![s(other)],
        };
        v.sort();
        Ok(Value::list(v.into_iter().map(Value::str).collect()))
    });

    // defaults and flow
    m.insert("default", |_, a| {
        want_min(a, 1)?;
        match a.get(1) {
            Some(v) if !is_empty(v) => Ok(v.clone()),
            _ => Ok(a[0].clone()),
        }
    });
    m.insert("empty", |_, a| {
        want(a, 1)?;
        Ok(Value::Bool(is_empty(&a[0])))
    });
    m.insert("coalesce", |_, a| {
        Ok(a.iter().find(|v| !is_empty(v)).cloned().unwrap_or_default())
    });
    m.insert("all", |_, a| {
        Ok(Value::Bool(a.iter().all(|v| !is_empty(v))))
    });
    m.insert("any", |_, a| {
        Ok(Value::Bool(a.iter().any(|v| !is_empty(v))))
    });
    m.insert("ternary", |_, a| {
        want(a, 3)?;
        Ok(if a[2].truthy() {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    m.insert("deepCopy", |_, a| {
        want(a, 1)?;
        Ok(a[0].deep_copy())
    });
    m.insert("mustDeepCopy", |_, a| {
        want(a, 1)?;
        Ok(a[0].deep_copy())
    });

    // types
    m.insert("typeOf", |_, a| {
        want(a, 1)?;
        st(a[0].type_name())
    });
    m.insert("typeIs", |_, a| {
        want(a, 2)?;
        Ok(Value::Bool(s(&a[0]) == a[1].type_name()))
    });
    m.insert("typeIsLike", |_, a| {
        want(a, 2)?;
        let t = s(&a[0]);
        Ok(Value::Bool(
            t == a[1].type_name() || t == format!("*{}", a[1].type_name()),
        ))
    });
    m.insert("kindOf", |_, a| {
        want(a, 1)?;
        st(a[0].kind())
    });
    m.insert("kindIs", |_, a| {
        want(a, 2)?;
        Ok(Value::Bool(s(&a[0]) == a[1].kind()))
    });
    m.insert("deepEqual", |_, a| {
        want(a, 2)?;
        Ok(Value::Bool(
            a[0].to_json() == a[1].to_json() && a[0].type_name() == a[1].type_name(),
        ))
    });

    // math (int64 unless the name ends in f)
    m.insert("add", |_, a| {
        Ok(Value::Int(a.iter().map(int).fold(0i64, i64::wrapping_add)))
    });
    m.insert("add1", |_, a| {
        want(a, 1)?;
        Ok(Value::Int(int(&a[0]).wrapping_add(1)))
    });
    m.insert("sub", |_, a| {
        want(a, 2)?;
        Ok(Value::Int(int(&a[0]).wrapping_sub(int(&a[1]))))
    });
    m.insert("mul", |_, a| {
        want_min(a, 1)?;
        Ok(Value::Int(a.iter().map(int).fold(1i64, i64::wrapping_mul)))
    });
    m.insert("div", |_, a| {
        want(a, 2)?;
        let d = int(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::Int(int(&a[0]).wrapping_div(d)))
    });
    m.insert("mod", |_, a| {
        want(a, 2)?;
        let d = int(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::Int(int(&a[0]).wrapping_rem(d)))
    });
    m.insert("max", |_, a| {
        want_min(a, 1)?;
        Ok(Value::Int(a.iter().map(int).max().unwrap_or(0)))
    });
    m.insert("min", |_, a| {
        want_min(a, 1)?;
        Ok(Value::Int(a.iter().map(int).min().unwrap_or(0)))
    });
    m.insert("biggest", |_, a| {
        want_min(a, 1)?;
        Ok(Value::Int(a.iter().map(int).max().unwrap_or(0)))
    });
    m.insert("addf", |_, a| Ok(Value::Float(a.iter().map(float).sum())));
    m.insert("add1f", |_, a| {
        want(a, 1)?;
        Ok(Value::Float(float(&a[0]) + 1.0))
    });
    m.insert("subf", |_, a| {
        want_min(a, 1)?;
        Ok(Value::Float(
            a[1..].iter().map(float).fold(float(&a[0]), |x, y| x - y),
        ))
    });
    m.insert("mulf", |_, a| {
        Ok(Value::Float(a.iter().map(float).product()))
    });
    m.insert("divf", |_, a| {
        want_min(a, 1)?;
        Ok(Value::Float(
            a[1..].iter().map(float).fold(float(&a[0]), |x, y| x / y),
        ))
    });
    m.insert("maxf", |_, a| {
        want_min(a, 1)?;
        Ok(Value::Float(a.iter().map(float).fold(f64::MIN, f64::max)))
    });
    m.insert("minf", |_, a| {
        want_min(a, 1)?;
        Ok(Value::Float(a.iter().map(float).fold(f64::MAX, f64::min)))
    });
    m.insert("floor", |_, a| {
        want(a, 1)?;
        Ok(Value::Float(float(&a[0]).floor()))
    });
    m.insert("ceil", |_, a| {
        want(a, 1)?;
        Ok(Value::Float(float(&a[0]).ceil()))
    });
    m.insert("round", |_, a| {
        want_min(a, 2)?;
        let p = 10f64.powi(int(&a[1]) as i32);
        let x = float(&a[0]) * p;
        let r = if x.fract().abs() >= 0.5 {
            x.trunc() + x.signum()
        } else {
            x.trunc()
        };
        Ok(Value::Float(r / p))
    });
    m.insert("int", |_, a| {
        want(a, 1)?;
        Ok(Value::Int(int(&a[0])))
    });
    m.insert("int64", |_, a| {
        want(a, 1)?;
        Ok(Value::Int(int(&a[0])))
    });
    m.insert("float64", |_, a| {
        want(a, 1)?;
        Ok(Value::Float(float(&a[0])))
    });
    m.insert("atoi", |_, a| {
        want(a, 1)?;
        Ok(Value::Int(s(&a[0]).trim().parse().unwrap_or(0)))
    });
    m.insert("until", |_, a| {
        want(a, 1)?;
        let n = int(&a[0]);
        super::check_size("until", u128::from(n.unsigned_abs()))?;
        Ok(Value::list(if n >= 0 {
            (0..n).map(Value::Int).collect()
        } else {
            (n + 1..=0).rev().map(Value::Int).collect()
        }))
    });
    m.insert("untilStep", |_, a| {
        want(a, 3)?;
        let (start, stop, step) = (int(&a[0]), int(&a[1]), int(&a[2]));
        let mut v = Vec::new();
        let mut i = start;
        if step > 0 {
            while i < stop && v.len() < 1_000_000 {
                v.push(Value::Int(i));
                i += step
            }
        }
        if step < 0 {
            while i > stop && v.len() < 1_000_000 {
                v.push(Value::Int(i));
                i += step
            }
        }
        Ok(Value::list(v))
    });
    m.insert("seq", |_, a| {
        let n: Vec<i64> = a.iter().map(int).collect();
        let (start, step, end) = match n.as_slice() {
            [e] => (1, 1, *e),
            [s0, e] => (*s0, if s0 <= e { 1 } else { -1 }, *e),
            [s0, st0, e] => (*s0, *st0, *e),
            _ => return st(""),
        };
        let mut out = Vec::new();
        let mut i = start;
        if step == 0 {
            return st("");
        }
        while (step > 0 && i <= end || step < 0 && i >= end) && out.len() < 1_000_000 {
            out.push(i.to_string());
            i += step
        }
        st(out.join(" "))
    });
}

fn wrap(x: &str, width: usize, nl: &str) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for (i, w) in x.split(' ').enumerate() {
        if i > 0 {
            if line_len + 1 + w.len() > width.max(1) {
                out.push_str(nl);
                line_len = 0;
            } else {
                out.push(' ');
                line_len += 1;
            }
        }
        out.push_str(w);
        line_len += w.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(title("hello world-foo"), "Hello World-Foo");
        assert_eq!(trunc(3, "abcdef"), "abc");
        assert_eq!(trunc(-2, "abcdef"), "ef");
        assert_eq!(indent_str(2, "a\nb"), "  a\n  b");
        assert_eq!(words("fooBarBAZQux"), vec!["foo", "Bar", "BAZ", "Qux"]);
    }
}
