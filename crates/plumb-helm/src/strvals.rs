//! Helm's `--set` syntax (pkg/strvals): `a.b=c,d[0]=e,list={x,y}` with `\` escapes and
//! type inference (`true`, `false`, `null`, integers without leading zero).

use std::collections::BTreeMap;

use crate::value::{MapRef, Value};

/// How a `--set` family flag turns text into values.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `--set`: infer bools, null and integers.
    Typed,
    /// `--set-string`: everything is a string.
    String,
    /// `--set-json`: each value is one JSON document (numbers become float64).
    Json,
    /// `--set-literal`: the whole rest of the argument is one string value.
    Literal,
}

fn typed(s: &str, mode: Mode) -> Value {
    if mode != Mode::Typed {
        return Value::str(s);
    }
    if s.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if s.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if s.eq_ignore_ascii_case("null") {
        return Value::Nil;
    }
    if s == "0" {
        return Value::Int(0);
    }
    if !s.is_empty()
        && !s.starts_with('0')
        && let Ok(i) = s.parse::<i64>()
    {
        return Value::Int(i);
    }
    Value::str(s)
}

/// Reads a `--set-file` path.
pub type FileReader<'a> = dyn Fn(&str) -> Result<String, String> + 'a;

struct P<'a> {
    c: Vec<char>,
    i: usize,
    mode: Mode,
    raw: &'a str,
    /// `--set-file`: the value is a path whose content the callback returns.
    file: Option<&'a FileReader<'a>>,
}

/// Parse `s` into `into` (a map), as `strvals.ParseInto` does.
pub fn parse_into(s: &str, into: &Value, mode: Mode) -> Result<(), String> {
    let Value::Map(m) = into else {
        return Err("values are not a map".into());
    };
    let mut p = P {
        c: s.chars().collect(),
        i: 0,
        mode,
        raw: s,
        file: None,
    };
    while p.i < p.c.len() {
        p.key(m)?;
    }
    Ok(())
}

/// `--set-file key=path`: the value is the file's content (read by `read`).
pub fn parse_file_into(
    s: &str,
    into: &Value,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(), String> {
    let Value::Map(m) = into else {
        return Err("values are not a map".into());
    };
    let mut p = P {
        c: s.chars().collect(),
        i: 0,
        mode: Mode::String,
        raw: s,
        file: Some(read),
    };
    while p.i < p.c.len() {
        p.key(m)?;
    }
    Ok(())
}

impl P<'_> {
    /// Read until one of `stops` (unescaped); returns text and the stop char (None at end).
    fn until(&mut self, stops: &[char]) -> (String, Option<char>) {
        let mut out = String::new();
        while self.i < self.c.len() {
            let ch = self.c[self.i];
            self.i += 1;
            if ch == '\\' && self.i < self.c.len() {
                out.push(self.c[self.i]);
                self.i += 1;
                continue;
            }
            if stops.contains(&ch) {
                return (out, Some(ch));
            }
            out.push(ch);
        }
        (out, None)
    }

    fn value(&mut self, key: &str) -> Result<Value, String> {
        if let Some(read) = self.file {
            let (path, _) = self.until(&[',']);
            return read(&path).map(Value::str);
        }
        if self.mode == Mode::Json {
            let rest: String = self.c[self.i..].iter().collect();
            let mut it = serde_json::Deserializer::from_str(&rest).into_iter::<serde_json::Value>();
            let v = match it.next() {
                Some(Ok(v)) => v,
                // `key=` with nothing after it sets null.
                None => serde_json::Value::Null,
                Some(Err(_)) if rest.starts_with(',') => serde_json::Value::Null,
                Some(Err(e)) => {
                    return Err(format!("failed to parse JSON value for key {key:?}: {e}"));
                }
            };
            let used = if v.is_null() && rest.starts_with(',') {
                0
            } else {
                rest[..it.byte_offset()].chars().count()
            };
            self.i += used;
            while self.c.get(self.i).is_some_and(|c| c.is_whitespace()) {
                self.i += 1;
            }
            match self.c.get(self.i) {
                None => {}
                Some(',') => self.i += 1,
                Some(c) => {
                    return Err(format!("unexpected {c:?} after JSON value for key {key:?}"));
                }
            }
            return Ok(crate::yaml::json_to_value_float(&v));
        }
        if self.mode == Mode::Literal {
            let v: String = self.c[self.i..].iter().collect();
            self.i = self.c.len();
            return Ok(Value::str(v));
        }
        if self.c.get(self.i) == Some(&'{') {
            self.i += 1;
            let (body, stop) = self.until(&['}']);
            if stop != Some('}') {
                return Err(format!("list must terminate with '}}' in {key}"));
            }
            match self.c.get(self.i) {
                None => {}
                Some(',') => self.i += 1,
                Some(c) => return Err(format!("unexpected {c:?} after list value of {key:?}")),
            }
            let items = if body.is_empty() {
                Vec::new()
            } else {
                body.split(',').map(|x| typed(x, self.mode)).collect()
            };
            return Ok(Value::list(items));
        }
        let (v, _) = self.until(&[',']);
        Ok(typed(&v, self.mode))
    }

    fn key(&mut self, data: &MapRef) -> Result<(), String> {
        let (k, stop) = self.until(&['=', '[', ',', '.']);
        match stop {
            None => {
                if k.is_empty() {
                    return Ok(());
                }
                Err(format!("key {k:?} has no value"))
            }
            Some(',') => Err(format!("key {k:?} has no value (cannot end with ,)")),
            Some('=') => {
                if k.is_empty() {
                    return Err(format!("key {:?} has no name", self.raw));
                }
                let v = self.value(&k)?;
                let mut d = data.borrow_mut();
                if v.is_nil() {
                    d.remove(&k);
                    d.insert(k, Value::Nil);
                } else {
                    d.insert(k, v);
                }
                Ok(())
            }
            Some('.') => {
                if k.is_empty() {
                    return Err(format!("key {:?} has no value", self.raw));
                }
                let existing = data.borrow().get(&k).cloned();
                let inner = match existing {
                    Some(Value::Map(m)) => m,
                    _ => {
                        let m = Value::empty_map();
                        data.borrow_mut().insert(k.clone(), m.clone());
                        match m {
                            Value::Map(mm) => mm,
                            _ => return Err("internal: map expected".into()),
                        }
                    }
                };
                self.key(&inner)
            }
            Some('[') => {
                let existing = data.borrow().get(&k).cloned();
                let list = match existing {
                    Some(Value::List(l)) => l.borrow().clone(),
                    _ => Vec::new(),
                };
                let list = self.list_index(list, &k)?;
                data.borrow_mut().insert(k, Value::list(list));
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    fn list_index(&mut self, mut list: Vec<Value>, key: &str) -> Result<Vec<Value>, String> {
        let (idx, stop) = self.until(&[']']);
        if stop != Some(']') {
            return Err(format!("key {key:?} has no closing bracket"));
        }
        let i: usize = idx
            .trim()
            .parse()
            .map_err(|_| format!("failed to parse index {idx:?} of {key:?}"))?;
        if i > 65536 {
            return Err(format!(
                "index of {i} is greater than maximum supported index of 65536"
            ));
        }
        if self.c.get(self.i).is_none() {
            // `noval[0]` alone leaves the list as it is.
            return Ok(list);
        }
        while list.len() <= i {
            list.push(Value::Nil);
        }
        match self.c.get(self.i).copied() {
            Some('=') => {
                self.i += 1;
                list[i] = self.value(key)?;
            }
            Some('.') => {
                self.i += 1;
                let m = match &list[i] {
                    Value::Map(m) => m.clone(),
                    _ => {
                        let nm = Value::empty_map();
                        list[i] = nm.clone();
                        match nm {
                            Value::Map(m) => m,
                            _ => return Err("internal: map expected".into()),
                        }
                    }
                };
                self.key(&m)?;
            }
            Some('[') => {
                self.i += 1;
                let inner = match &list[i] {
                    Value::List(l) => l.borrow().clone(),
                    _ => Vec::new(),
                };
                list[i] = Value::list(self.list_index(inner, key)?);
            }
            _ => return Err(format!("key {key:?} has no value")),
        }
        Ok(list)
    }
}

/// Parse a whole `--set` argument into a fresh map (for tests and callers).
pub fn parse(s: &str, mode: Mode) -> Result<Value, String> {
    let v = Value::map(BTreeMap::new());
    parse_into(s, &v, mode)?;
    Ok(v)
}

#[cfg(test)]
mod helm_cases;

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str, mode: Mode) -> String {
        crate::funcs::to_json_string(&parse(s, mode).unwrap_or_default(), true, None)
    }

    #[test]
    fn helm_set_syntax() {
        assert_eq!(
            j("a.b=c,d=1,e=true,f=0.5,g=007", Mode::Typed),
            r#"{"a":{"b":"c"},"d":1,"e":true,"f":"0.5","g":"007"}"#
        );
        assert_eq!(
            j("l={x,y},m[1]=z", Mode::Typed),
            r#"{"l":["x","y"],"m":[null,"z"]}"#
        );
        assert_eq!(j("a[0].b=1", Mode::Typed), r#"{"a":[{"b":1}]}"#);
        assert_eq!(j(r"a\.b=c\,d", Mode::Typed), r#"{"a.b":"c,d"}"#);
        assert_eq!(j("a=1,b=null", Mode::String), r#"{"a":"1","b":"null"}"#);
        assert_eq!(j("a=null", Mode::Typed), r#"{"a":null}"#);
        assert!(parse("a", Mode::Typed).is_err());
        assert!(parse("a[x]=1", Mode::Typed).is_err());
        assert_eq!(
            j(r#"a.b={"c":[1,"x"]},d=true"#, Mode::Json),
            r#"{"a":{"b":{"c":[1,"x"]}},"d":true}"#
        );
        assert_eq!(j(r"a=x,y\z", Mode::Literal), r#"{"a":"x,y\\z"}"#);
    }
}
