//! Go's `fmt.Sprintf` verbs as templates use them (`printf`), including Go's
//! `%!d(string=x)` complaints for mismatched arguments.

use crate::value::{Value, format_float_g};

/// Widths and precisions beyond this are clamped (Go would try to allocate them).
const MAX_PAD: usize = 1 << 20;

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let mut argi = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        while i < chars.len() {
            match chars[i] {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                _ => break,
            }
            i += 1;
        }
        if i < chars.len() && chars[i] == '*' {
            i += 1;
            if let Some(Value::Int(w)) = args.get(argi) {
                spec.width = Some((w.unsigned_abs() as usize).min(MAX_PAD));
                if *w < 0 {
                    spec.minus = true;
                }
            }
            argi += 1;
        } else {
            let mut w = String::new();
            while i < chars.len() && chars[i].is_ascii_digit() {
                w.push(chars[i]);
                i += 1;
            }
            if !w.is_empty() {
                spec.width = w.parse::<usize>().ok().map(|w| w.min(MAX_PAD));
            }
        }
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            if i < chars.len() && chars[i] == '*' {
                i += 1;
                if let Some(Value::Int(p)) = args.get(argi) {
                    spec.prec = Some(((*p).max(0) as usize).min(MAX_PAD));
                }
                argi += 1;
            } else {
                let mut p = String::new();
                while i < chars.len() && chars[i].is_ascii_digit() {
                    p.push(chars[i]);
                    i += 1;
                }
                spec.prec = Some(p.parse::<usize>().unwrap_or(0).min(MAX_PAD));
            }
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        out.push_str(&format_one(arg, verb, spec));
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| match a {
                Value::Nil => "<nil>".to_string(),
                a => format!("{}={}", a.type_name(), a.to_go_string()),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn bad(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        v => format!("%!{verb}({}={})", v.type_name(), v.to_go_string()),
    }
}

fn pad(s: String, spec: Spec, numeric: bool) -> String {
    let Some(w) = spec.width else { return s };
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, rest) = if s.starts_with(['-', '+']) {
            s.split_at(1)
        } else {
            ("", s.as_str())
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else if spec.zero && !numeric {
        format!("{}{s}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn format_one(v: &Value, verb: char, spec: Spec) -> String {
    if verb == 'T' {
        return pad(
            match v {
                Value::Nil => "<nil>".into(),
                v => v.type_name().into(),
            },
            spec,
            false,
        );
    }
    match v {
        Value::List(l) => {
            let inner = Spec {
                width: spec.width,
                ..Spec::default()
            };
            let items: Vec<String> = l
                .borrow()
                .iter()
                .map(|x| format_one(x, verb, inner))
                .collect();
            format!("[{}]", items.join(" "))
        }
        Value::Map(m) => {
            let items: Vec<String> = m
                .borrow()
                .iter()
                .map(|(k, x)| {
                    format!(
                        "{}:{}",
                        format_one(&Value::str(k.as_str()), verb, Spec::default()),
                        format_one(x, verb, Spec::default())
                    )
                })
                .collect();
            format!("map[{}]", items.join(" "))
        }
        Value::Nil => match verb {
            'v' => pad("<nil>".into(), spec, false),
            _ => bad(verb, v),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad(b.to_string(), spec, false),
            _ => bad(verb, v),
        },
        Value::Int(n) => format_int(*n, verb, spec).unwrap_or_else(|| bad(verb, v)),
        Value::Float(f) => format_float(*f, verb, spec).unwrap_or_else(|| bad(verb, v)),
        Value::Str(s) => format_str(s, verb, spec).unwrap_or_else(|| bad(verb, v)),
        Value::Obj(o) => match verb {
            'v' | 's' => pad(o.display(), spec, false),
            'q' => pad(go_quote(&o.display()), spec, false),
            _ => bad(verb, v),
        },
    }
}

fn format_int(n: i64, verb: char, spec: Spec) -> Option<String> {
    let sign = if n < 0 {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let a = n.unsigned_abs();
    let body = match verb {
        'v' | 'd' => a.to_string(),
        'x' => format!("{}{a:x}", if spec.sharp { "0x" } else { "" }),
        'X' => format!("{}{a:X}", if spec.sharp { "0X" } else { "" }),
        'o' => format!("{}{a:o}", if spec.sharp { "0" } else { "" }),
        'O' => format!("0o{a:o}"),
        'b' => format!("{a:b}"),
        'c' => {
            return Some(pad(
                char::from_u32(n as u32).unwrap_or('\u{fffd}').to_string(),
                spec,
                false,
            ));
        }
        'q' => {
            return Some(pad(
                format!("'{}'", char::from_u32(n as u32).unwrap_or('\u{fffd}')),
                spec,
                false,
            ));
        }
        'U' => return Some(pad(format!("U+{a:04X}"), spec, false)),
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => return None,
        _ => return None,
    };
    let body = match spec.prec {
        Some(p) if body.len() < p => format!("{}{body}", "0".repeat(p - body.len())),
        _ => body,
    };
    Some(pad(format!("{sign}{body}"), spec, true))
}

fn format_float(f: f64, verb: char, spec: Spec) -> Option<String> {
    let s = match verb {
        'v' | 'g' | 'G' => match spec.prec {
            None => format_float_g(f),
            Some(p) => {
                let p = p.max(1);
                let e = if f == 0.0 {
                    0
                } else {
                    f.abs().log10().floor() as i64
                };
                if e < -4 || e >= p as i64 {
                    go_exp(format!("{:.*e}", p - 1, f))
                } else {
                    let s = format!("{:.*}", (p as i64 - 1 - e).max(0) as usize, f);
                    if s.contains('.') {
                        s.trim_end_matches('0').trim_end_matches('.').to_string()
                    } else {
                        s
                    }
                }
            }
        },
        'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), f),
        'e' => go_exp(format!("{:.*e}", spec.prec.unwrap_or(6), f)),
        'E' => go_exp(format!("{:.*e}", spec.prec.unwrap_or(6), f)).to_uppercase(),
        _ => return None,
    };
    let s = if spec.plus && f >= 0.0 {
        format!("+{s}")
    } else {
        s
    };
    Some(pad(s, spec, true))
}

/// Rust's `1.5e2` → Go's `1.5e+02`.
fn go_exp(s: String) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

fn format_str(s: &str, verb: char, spec: Spec) -> Option<String> {
    let s: String = match spec.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q') => s.chars().take(p).collect(),
        _ => s.to_string(),
    };
    let out = match verb {
        'v' | 's' => s,
        'q' => {
            if spec.sharp && !s.contains('`') {
                format!("`{s}`")
            } else {
                go_quote(&s)
            }
        }
        'x' => s.bytes().map(|b| format!("{b:02x}")).collect(),
        'X' => s.bytes().map(|b| format!("{b:02X}")).collect(),
        _ => return None,
    };
    Some(pad(out, spec, false))
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_verbs() {
        assert_eq!(sprintf("%s-%d", &[Value::str("a"), Value::Int(3)]), "a-3");
        assert_eq!(sprintf("%d", &[Value::Float(80.0)]), "%!d(float64=80)");
        assert_eq!(
            sprintf("%v %v", &[Value::Float(1.5), Value::Nil]),
            "1.5 <nil>"
        );
        assert_eq!(sprintf("%q", &[Value::str("a\"b")]), "\"a\\\"b\"");
        assert_eq!(sprintf("%s", &[]), "%!s(MISSING)");
        assert_eq!(sprintf("x", &[Value::Int(1)]), "x%!(EXTRA int=1)");
        assert_eq!(
            sprintf(
                "%05d|%-4s|%.2f",
                &[Value::Int(42), Value::str("ab"), Value::Float(1.23456)]
            ),
            "00042|ab  |1.23"
        );
        assert_eq!(
            sprintf("%s", &[Value::list(vec![Value::str("a"), Value::str("b")])]),
            "[a b]"
        );
        assert_eq!(sprintf("%e", &[Value::Float(1500.0)]), "1.500000e+03");
    }
}
