//! The dynamic value model templates operate on, with Go's `fmt` printing rules.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

/// Nesting beyond which values are treated as cyclic.
pub const MAX_DEPTH: usize = 1000;

/// A map as Go templates see `map[string]interface{}`: shared and mutable (Sprig's `set` mutates).
pub type MapRef = Rc<RefCell<BTreeMap<String, Value>>>;
/// A list; shared so that `range` and `index` see the same storage.
pub type ListRef = Rc<RefCell<Vec<Value>>>;

/// A host object with fields and methods (`.Files`, `.Capabilities.APIVersions`, ...).
pub trait Object: std::fmt::Debug {
    /// Go type name used in error messages.
    fn type_name(&self) -> &'static str;
    /// A field or zero-argument method.
    fn field(&self, name: &str) -> Option<Value>;
    /// A method called with arguments; `None` when no such method exists.
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>>;
    /// What `fmt.Sprint` prints for it.
    fn display(&self) -> String;
    /// Key/value pairs when the Go type is a map (`range`, `len`, truth).
    fn entries(&self) -> Option<Vec<(Value, Value)>> {
        None
    }
}

/// One template value.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// Go's nil / missing value.
    #[default]
    Nil,
    /// bool
    Bool(bool),
    /// int / int64
    Int(i64),
    /// float64
    Float(f64),
    /// string
    Str(Rc<str>),
    /// []interface{}
    List(ListRef),
    /// `map[string]interface{}`
    Map(MapRef),
    /// A host object.
    Obj(Rc<dyn Object>),
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }
    /// A list value.
    pub fn list(v: Vec<Value>) -> Value {
        Value::List(Rc::new(RefCell::new(v)))
    }
    /// A map value.
    pub fn map(m: BTreeMap<String, Value>) -> Value {
        Value::Map(Rc::new(RefCell::new(m)))
    }
    /// An empty map.
    pub fn empty_map() -> Value {
        Value::map(BTreeMap::new())
    }
    /// Is this nil?
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }
    /// Go's template truth: false, 0, nil, and empty string/list/map are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.borrow().is_empty(),
            Value::Map(m) => !m.borrow().is_empty(),
            Value::Obj(o) => o.entries().is_none_or(|e| !e.is_empty()),
        }
    }
    /// Go-ish type name for messages and `typeOf`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Obj(o) => o.type_name(),
        }
    }
    /// Sprig's `kindOf`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Obj(_) => "struct",
        }
    }
    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// Deep copy (Sprig `deepCopy`, and values handed to each chart). Below
    /// [`MAX_DEPTH`] levels (only reachable through cycles built with `set`) storage is shared.
    pub fn deep_copy(&self) -> Value {
        self.deep_copy_at(0)
    }
    fn deep_copy_at(&self, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return self.clone();
        }
        match self {
            Value::List(l) => Value::list(
                l.borrow()
                    .iter()
                    .map(|v| v.deep_copy_at(depth + 1))
                    .collect(),
            ),
            Value::Map(m) => Value::map(
                m.borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.deep_copy_at(depth + 1)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    /// Is this value nested deeper than `limit` (e.g. a cycle made with `set`)?
    pub fn deeper_than(&self, limit: usize) -> bool {
        if limit == 0 {
            return matches!(self, Value::List(_) | Value::Map(_));
        }
        match self {
            Value::List(l) => l.borrow().iter().any(|v| v.deeper_than(limit - 1)),
            Value::Map(m) => m.borrow().values().any(|v| v.deeper_than(limit - 1)),
            _ => false,
        }
    }
    /// Go's `fmt.Sprint(v)` (`%v`).
    pub fn to_go_string(&self) -> String {
        let mut s = String::new();
        self.write_go(&mut s, 0);
        s
    }
    fn write_go(&self, out: &mut String, depth: usize) {
        if depth > MAX_DEPTH {
            out.push_str("...");
            return;
        }
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&format_float_g(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out, depth + 1);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_go(out, depth + 1);
                }
                out.push(']');
            }
            Value::Obj(o) => out.push_str(&o.display()),
        }
    }
    /// What a template action prints: like `%v` but nil prints `<no value>`.
    pub fn to_template_string(&self) -> String {
        match self {
            Value::Nil => "<no value>".to_string(),
            v => v.to_go_string(),
        }
    }
    /// Convert from JSON (numbers that are integral stay integers only if `ints`).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else {
                    Value::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            serde_json::Value::String(s) => Value::str(s.as_str()),
            serde_json::Value::Array(a) => Value::list(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
    /// Convert to JSON; host objects become their printed form (cycles become null).
    pub fn to_json(&self) -> serde_json::Value {
        self.to_json_at(0)
    }
    fn to_json_at(&self, depth: usize) -> serde_json::Value {
        if depth > MAX_DEPTH {
            return serde_json::Value::Null;
        }
        match self {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::List(l) => serde_json::Value::Array(
                l.borrow().iter().map(|v| v.to_json_at(depth + 1)).collect(),
            ),
            Value::Map(m) => serde_json::Value::Object(
                m.borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json_at(depth + 1)))
                    .collect(),
            ),
            Value::Obj(o) => serde_json::Value::String(o.display()),
        }
    }
    /// Map entries snapshot (so callers may mutate while iterating).
    pub fn map_entries(&self) -> Option<Vec<(String, Value)>> {
        match self {
            Value::Map(m) => Some(
                m.borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => None,
        }
    }
    /// List items snapshot.
    pub fn list_items(&self) -> Option<Vec<Value>> {
        match self {
            Value::List(l) => Some(l.borrow().clone()),
            _ => None,
        }
    }
    /// Look up a key in a map value.
    pub fn get(&self, key: &str) -> Option<Value> {
        match self {
            Value::Map(m) => m.borrow().get(key).cloned(),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::str(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

/// Split Rust's shortest round-trip representation into digits and decimal exponent:
/// the value is 0.d1d2d3... × 10^dp.
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0').to_string();
    let digits = if digits.is_empty() {
        "0".to_string()
    } else {
        digits
    };
    (digits, exp + 1)
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which is what `%v` prints.
pub fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (digits, dp) = shortest_digits(f);
    let exp = dp - 1;
    let neg = if f < 0.0 { "-" } else { "" };
    // Go's shortest %g switches to exponent form at exponent 6 (eprec = 6).
    if !(-4..6).contains(&exp) {
        format_e(neg, &digits, exp)
    } else {
        format!("{neg}{}", format_f_digits(&digits, dp))
    }
}

/// Go's `%e`-style exponent rendering with at least two exponent digits.
fn format_e(neg: &str, digits: &str, exp: i32) -> String {
    let mut s = String::from(neg);
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    s.push('e');
    s.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        s.push('0');
    }
    let _ = write!(s, "{e}");
    s
}

fn format_f_digits(digits: &str, dp: i32) -> String {
    let nd = digits.len() as i32;
    if dp <= 0 {
        format!("0.{}{}", "0".repeat((-dp) as usize), digits)
    } else if dp >= nd {
        format!("{}{}", digits, "0".repeat((dp - nd) as usize))
    } else {
        format!("{}.{}", &digits[..dp as usize], &digits[dp as usize..])
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub fn format_float_f(f: f64) -> String {
    if !f.is_finite() {
        return format_float_g(f);
    }
    if f == 0.0 {
        return "0".into();
    }
    let (digits, dp) = shortest_digits(f);
    let neg = if f < 0.0 { "-" } else { "" };
    format!("{neg}{}", format_f_digits(&digits, dp))
}

/// How `encoding/json` prints a float64 (also used by `toJson`).
pub fn format_float_json(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        // Go's json cleans e-07 to e-7.
        let s = format_e(
            if f < 0.0 { "-" } else { "" },
            &shortest_digits(f).0,
            shortest_digits(f).1 - 1,
        );
        return s.replace("e-0", "e-").replace("e+0", "e+");
    }
    format_float_f(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_printing() {
        assert_eq!(format_float_g(3.0), "3");
        assert_eq!(format_float_g(0.5), "0.5");
        assert_eq!(format_float_g(1_000_000.0), "1e+06");
        assert_eq!(format_float_g(123_456.0), "123456");
        assert_eq!(format_float_g(1_234_567.0), "1.234567e+06");
        assert_eq!(format_float_g(0.0001), "0.0001");
        assert_eq!(format_float_g(0.00001), "1e-05");
        assert_eq!(format_float_g(-2.5), "-2.5");
        assert_eq!(format_float_json(1_000_000.0), "1000000");
        assert_eq!(format_float_json(1e21), "1e+21");
    }

    #[test]
    fn go_composite_printing() {
        let m = Value::map(BTreeMap::from([
            ("b".to_string(), Value::Int(2)),
            (
                "a".to_string(),
                Value::list(vec![Value::str("x"), Value::Nil]),
            ),
        ]));
        assert_eq!(m.to_go_string(), "map[a:[x <nil>] b:2]");
        assert_eq!(Value::Nil.to_template_string(), "<no value>");
    }
}
