//! Evaluation with a step budget: paths for deletion, values inside `select`.

use super::lexer::CompareOp;
use super::syntax::{Call, Expr, Head, Suffix, Term, number};
use super::{JqError, MAX_OUTPUTS, MAX_STEPS, PathSegment};
use serde_json::Value;
use std::cmp::Ordering;

pub(super) type Path = Vec<PathSegment>;

pub(super) struct Eval {
    pub(super) steps: usize,
}

pub(super) fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None | Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

pub(super) fn truthy(value: &Value) -> bool {
    !matches!(value, Value::Null | Value::Bool(false))
}

impl Eval {
    fn tick(&mut self) -> Result<(), JqError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(JqError::Limit(format!(
                "evaluation took more than {MAX_STEPS} steps"
            )));
        }
        Ok(())
    }

    fn emit<'a>(
        out: &mut Vec<(Path, Option<&'a Value>)>,
        item: (Path, Option<&'a Value>),
    ) -> Result<(), JqError> {
        if out.len() >= MAX_OUTPUTS {
            return Err(JqError::Limit(format!(
                "expression selects more than {MAX_OUTPUTS} paths"
            )));
        }
        out.push(item);
        Ok(())
    }

    pub(super) fn paths<'a>(
        &mut self,
        expr: &Expr,
        path: Path,
        value: Option<&'a Value>,
        out: &mut Vec<(Path, Option<&'a Value>)>,
    ) -> Result<(), JqError> {
        self.tick()?;
        match expr {
            Expr::Pipe(a, b) => {
                let mut left = Vec::new();
                self.paths(a, path, value, &mut left)?;
                for (p, v) in left {
                    self.paths(b, p, v, out)?;
                }
                Ok(())
            }
            Expr::Comma(items) => {
                for item in items {
                    self.paths(item, path.clone(), value, out)?;
                }
                Ok(())
            }
            Expr::Or(..) | Expr::And(..) | Expr::Compare(..) => {
                Err(JqError::Runtime("invalid path expression".into()))
            }
            Expr::Term(term) => self.term_paths(term, path, value, out),
        }
    }

    fn term_paths<'a>(
        &mut self,
        term: &Term,
        path: Path,
        value: Option<&'a Value>,
        out: &mut Vec<(Path, Option<&'a Value>)>,
    ) -> Result<(), JqError> {
        let mut current = Vec::new();
        match &term.head {
            Head::Identity => current.push((path, value)),
            Head::Paren(inner) => self.paths(inner, path, value, &mut current)?,
            Head::Call(Call::Select(condition)) => {
                let input = value.unwrap_or(&Value::Null);
                let mut results = Vec::new();
                self.values(condition, input, &mut results)?;
                for result in results {
                    if truthy(&result) {
                        Eval::emit(&mut current, (path.clone(), value))?;
                    }
                }
            }
            Head::Call(Call::Empty) => {}
            Head::Call(_) | Head::Literal(_) => {
                return Err(JqError::Runtime("invalid path expression".into()));
            }
        }
        for suffix in &term.suffixes {
            let mut next = Vec::new();
            for (p, v) in current {
                self.suffix_paths(suffix, p, v, value, &mut next)?;
            }
            current = next;
        }
        for item in current {
            Eval::emit(out, item)?;
        }
        Ok(())
    }

    fn suffix_paths<'a>(
        &mut self,
        suffix: &Suffix,
        path: Path,
        value: Option<&'a Value>,
        term_input: Option<&'a Value>,
        out: &mut Vec<(Path, Option<&'a Value>)>,
    ) -> Result<(), JqError> {
        self.tick()?;
        match suffix {
            Suffix::Field(name, optional) => match value {
                None | Some(Value::Null) => {
                    Eval::emit(out, (with(&path, PathSegment::Key(name.clone())), None))
                }
                Some(Value::Object(map)) => Eval::emit(
                    out,
                    (with(&path, PathSegment::Key(name.clone())), map.get(name)),
                ),
                Some(_) if *optional => Ok(()),
                other => Err(JqError::Runtime(format!(
                    "cannot index {} with {name:?}",
                    type_name(other)
                ))),
            },
            Suffix::Iterate(optional) => match value {
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        self.tick()?;
                        Eval::emit(out, (with(&path, PathSegment::Index(i as i64)), Some(item)))?;
                    }
                    Ok(())
                }
                Some(Value::Object(map)) => {
                    for (key, item) in map {
                        self.tick()?;
                        Eval::emit(
                            out,
                            (with(&path, PathSegment::Key(key.clone())), Some(item)),
                        )?;
                    }
                    Ok(())
                }
                _ if *optional => Ok(()),
                other => Err(JqError::Runtime(format!(
                    "cannot iterate over {}",
                    type_name(other)
                ))),
            },
            Suffix::Index(index, optional) => {
                let mut indices = Vec::new();
                self.values(index, term_input.unwrap_or(&Value::Null), &mut indices)?;
                for index in indices {
                    match (&index, value) {
                        (Value::String(key), None | Some(Value::Null)) => {
                            Eval::emit(out, (with(&path, PathSegment::Key(key.clone())), None))?
                        }
                        (Value::String(key), Some(Value::Object(map))) => Eval::emit(
                            out,
                            (with(&path, PathSegment::Key(key.clone())), map.get(key)),
                        )?,
                        (Value::Number(n), None | Some(Value::Null)) => {
                            let i = integer(n)?;
                            Eval::emit(out, (with(&path, PathSegment::Index(i)), None))?
                        }
                        (Value::Number(n), Some(Value::Array(items))) => {
                            let mut i = integer(n)?;
                            if i < 0 {
                                i += items.len() as i64;
                            }
                            let item = usize::try_from(i).ok().and_then(|i| items.get(i));
                            if i < 0 {
                                // jq: a negative index past the start is out of range.
                                if !optional {
                                    return Err(JqError::Runtime(
                                        "out of bounds negative array index".into(),
                                    ));
                                }
                                continue;
                            }
                            Eval::emit(out, (with(&path, PathSegment::Index(i)), item))?
                        }
                        _ if *optional => {}
                        (index, other) => {
                            return Err(JqError::Runtime(format!(
                                "cannot index {} with {}",
                                type_name(other),
                                type_name(Some(index))
                            )));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Evaluates `expr` for its values (used inside `select` and indices).
    fn values(&mut self, expr: &Expr, input: &Value, out: &mut Vec<Value>) -> Result<(), JqError> {
        self.tick()?;
        if out.len() >= MAX_OUTPUTS {
            return Err(JqError::Limit(format!(
                "expression produces more than {MAX_OUTPUTS} values"
            )));
        }
        match expr {
            Expr::Pipe(a, b) => {
                let mut left = Vec::new();
                self.values(a, input, &mut left)?;
                for value in left {
                    self.values(b, &value, out)?;
                }
                Ok(())
            }
            Expr::Comma(items) => {
                for item in items {
                    self.values(item, input, out)?;
                }
                Ok(())
            }
            Expr::Or(items) | Expr::And(items) => {
                // jq's left-associative `a or b or c`, short-circuiting per output of the left.
                let is_or = matches!(expr, Expr::Or(..));
                let Some((first, rest)) = items.split_first() else {
                    return Ok(());
                };
                let mut left = Vec::new();
                self.values(first, input, &mut left)?;
                for operand in rest {
                    let mut next = Vec::new();
                    for l in left {
                        self.tick()?;
                        if truthy(&l) == is_or {
                            next.push(Value::Bool(is_or));
                            continue;
                        }
                        let mut right = Vec::new();
                        self.values(operand, input, &mut right)?;
                        next.extend(right.iter().map(|r| Value::Bool(truthy(r))));
                    }
                    left = next;
                }
                out.extend(left);
                Ok(())
            }
            Expr::Compare(op, a, b) => {
                let mut right = Vec::new();
                self.values(b, input, &mut right)?;
                let mut left = Vec::new();
                self.values(a, input, &mut left)?;
                for r in &right {
                    for l in &left {
                        self.tick()?;
                        let ordering = compare_values(l, r);
                        let result = match op {
                            CompareOp::Eq => ordering == Ordering::Equal,
                            CompareOp::Ne => ordering != Ordering::Equal,
                            CompareOp::Lt => ordering == Ordering::Less,
                            CompareOp::Le => ordering != Ordering::Greater,
                            CompareOp::Gt => ordering == Ordering::Greater,
                            CompareOp::Ge => ordering != Ordering::Less,
                        };
                        out.push(Value::Bool(result));
                    }
                }
                Ok(())
            }
            Expr::Term(term) => {
                let mut current: Vec<Value> = Vec::new();
                match &term.head {
                    Head::Identity => {
                        if term.suffixes.is_empty() {
                            out.push(input.clone());
                            return Ok(());
                        }
                        // Walk the suffixes by reference and clone only the results.
                        let mut paths = Vec::new();
                        self.term_paths(term, Vec::new(), Some(input), &mut paths)?;
                        out.extend(
                            paths
                                .into_iter()
                                .map(|(_, v)| v.cloned().unwrap_or(Value::Null)),
                        );
                        return Ok(());
                    }
                    Head::Literal(value) => current.push(value.clone()),
                    Head::Paren(inner) => self.values(inner, input, &mut current)?,
                    Head::Call(call) => self.call(call, input, &mut current)?,
                }
                for suffix in &term.suffixes {
                    let mut next = Vec::new();
                    for value in &current {
                        let mut paths = Vec::new();
                        self.suffix_paths(
                            suffix,
                            Vec::new(),
                            Some(value),
                            Some(input),
                            &mut paths,
                        )?;
                        next.extend(
                            paths
                                .into_iter()
                                .map(|(_, v)| v.cloned().unwrap_or(Value::Null)),
                        );
                    }
                    current = next;
                }
                out.extend(current);
                Ok(())
            }
        }
    }

    fn call(&mut self, call: &Call, input: &Value, out: &mut Vec<Value>) -> Result<(), JqError> {
        let string_argument =
            |eval: &mut Eval, argument: &Expr, name: &str| -> Result<Vec<String>, JqError> {
                let mut values = Vec::new();
                eval.values(argument, input, &mut values)?;
                values
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        other => Err(JqError::Runtime(format!(
                            "{name}() needs a string, got {}",
                            type_name(Some(&other))
                        ))),
                    })
                    .collect()
            };
        let input_string = |name: &str| -> Result<&str, JqError> {
            input.as_str().ok_or_else(|| {
                JqError::Runtime(format!(
                    "{name}() needs a string input, got {}",
                    type_name(Some(input))
                ))
            })
        };
        match call {
            Call::Select(condition) => {
                let mut results = Vec::new();
                self.values(condition, input, &mut results)?;
                for result in results {
                    if truthy(&result) {
                        out.push(input.clone());
                    }
                }
            }
            Call::Not => out.push(Value::Bool(!truthy(input))),
            Call::Empty => {}
            Call::Length => out.push(match input {
                Value::Null => Value::from(0),
                Value::Bool(_) => return Err(JqError::Runtime("boolean has no length".into())),
                Value::Number(n) => number(n.as_f64().unwrap_or(0.0).abs()),
                Value::String(s) => Value::from(s.chars().count()),
                Value::Array(items) => Value::from(items.len()),
                Value::Object(map) => Value::from(map.len()),
            }),
            Call::AsciiDowncase => out.push(Value::String(
                input_string("ascii_downcase")?.to_ascii_lowercase(),
            )),
            Call::AsciiUpcase => out.push(Value::String(
                input_string("ascii_upcase")?.to_ascii_uppercase(),
            )),
            Call::Has(argument) => {
                let mut keys = Vec::new();
                self.values(argument, input, &mut keys)?;
                for key in keys {
                    out.push(Value::Bool(match (input, &key) {
                        (Value::Object(map), Value::String(k)) => map.contains_key(k),
                        (Value::Array(items), Value::Number(n)) => {
                            integer(n).is_ok_and(|i| i >= 0 && (i as usize) < items.len())
                        }
                        _ => {
                            return Err(JqError::Runtime(format!(
                                "cannot check whether {} has a {} key",
                                type_name(Some(input)),
                                type_name(Some(&key))
                            )));
                        }
                    }));
                }
            }
            Call::StartsWith(argument) => {
                let text = input_string("startswith")?;
                for prefix in string_argument(self, argument, "startswith")? {
                    out.push(Value::Bool(text.starts_with(&prefix)));
                }
            }
            Call::EndsWith(argument) => {
                let text = input_string("endswith")?;
                for suffix in string_argument(self, argument, "endswith")? {
                    out.push(Value::Bool(text.ends_with(&suffix)));
                }
            }
            Call::Contains(argument) => {
                let text = input_string("contains")?;
                for part in string_argument(self, argument, "contains")? {
                    out.push(Value::Bool(text.contains(&part)));
                }
            }
            Call::Test(regex) => out.push(Value::Bool(regex.is_match(input_string("test")?))),
        }
        Ok(())
    }
}

pub(super) fn with(path: &Path, segment: PathSegment) -> Path {
    let mut path = path.clone();
    path.push(segment);
    path
}

pub(super) fn integer(n: &serde_json::Number) -> Result<i64, JqError> {
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.is_finite() && f.abs() < 9.0e15 {
        // jq floors fractional indices.
        Ok(f.floor() as i64)
    } else {
        Err(JqError::Runtime(format!("index {n} is out of range")))
    }
}

pub(super) fn type_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(false) => 1,
        Value::Bool(true) => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Array(_) => 5,
        Value::Object(_) => 6,
    }
}

/// jq's total order: null < false < true < numbers < strings < arrays < objects.
pub(super) fn compare_values(a: &Value, b: &Value) -> Ordering {
    let rank = type_rank(a).cmp(&type_rank(b));
    if rank != Ordering::Equal {
        return rank;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let ordering = compare_values(p, q);
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xk: Vec<&String> = x.keys().collect();
            let mut yk: Vec<&String> = y.keys().collect();
            xk.sort();
            yk.sort();
            let keys = xk.cmp(&yk);
            if keys != Ordering::Equal {
                return keys;
            }
            for key in xk {
                let ordering = match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => compare_values(p, q),
                    _ => Ordering::Equal,
                };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            Ordering::Equal
        }
        _ => Ordering::Equal,
    }
}
