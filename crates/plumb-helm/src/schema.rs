//! `values.schema.json` validation (the JSON Schema keywords charts use), with
//! gojsonschema's wording as Helm prints it.

use serde_json::Value as J;

use crate::Error;
use crate::chart::Chart;
use crate::value::Value;

fn type_name(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "boolean",
        J::Number(n) => {
            if n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                "integer"
            } else {
                "number"
            }
        }
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn type_ok(want: &str, v: &J) -> bool {
    let got = type_name(v);
    want == got || (want == "number" && got == "integer")
}

fn field(path: &str) -> String {
    if path.is_empty() {
        "(root)".into()
    } else {
        path.to_string()
    }
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn check(schema: &J, v: &J, path: &str, errs: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            J::String(x) => vec![x.as_str()],
            J::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| type_ok(t, v)) {
            errs.push(format!(
                "{}: Invalid type. Expected: {}, given: {}",
                field(path),
                types.join(", "),
                type_name(v)
            ));
            return;
        }
    }
    if let Some(J::Array(e)) = s.get("enum")
        && !e.contains(v)
    {
        let opts: Vec<String> = e.iter().map(|x| x.to_string()).collect();
        errs.push(format!(
            "{}: {} must be one of the following: {}",
            field(path),
            field(path),
            opts.join(", ")
        ));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errs.push(format!(
            "{}: {} does not match: {}",
            field(path),
            field(path),
            c
        ));
    }
    if let J::Number(n) = v {
        let f = n.as_f64().unwrap_or(0.0);
        if let Some(m) = s.get("minimum").and_then(|m| m.as_f64())
            && f < m
        {
            errs.push(format!(
                "{}: Must be greater than or equal to {}",
                field(path),
                crate::value::format_float_g(m)
            ));
        }
        if let Some(m) = s.get("maximum").and_then(|m| m.as_f64())
            && f > m
        {
            errs.push(format!(
                "{}: Must be less than or equal to {}",
                field(path),
                crate::value::format_float_g(m)
            ));
        }
    }
    if let J::String(x) = v {
        let n = x.chars().count() as u64;
        if let Some(m) = s.get("minLength").and_then(|m| m.as_u64())
            && n < m
        {
            errs.push(format!(
                "{}: String length must be greater than or equal to {m}",
                field(path)
            ));
        }
        if let Some(m) = s.get("maxLength").and_then(|m| m.as_u64())
            && n > m
        {
            errs.push(format!(
                "{}: String length must be less than or equal to {m}",
                field(path)
            ));
        }
        if let Some(p) = s.get("pattern").and_then(|m| m.as_str())
            && let Ok(re) = regex::Regex::new(p)
            && !re.is_match(x)
        {
            errs.push(format!("{}: Does not match pattern '{p}'", field(path)));
        }
    }
    if let J::Object(o) = v {
        if let Some(J::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(|r| r.as_str()) {
                if !o.contains_key(r) {
                    errs.push(format!("{}: {r} is required", field(path)));
                }
            }
        }
        let props = s.get("properties").and_then(|p| p.as_object());
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(ps, x, &join(path, k), errs),
                None => match s.get("additionalProperties") {
                    Some(J::Bool(false)) => errs.push(format!(
                        "{}: Additional property {k} is not allowed",
                        field(path)
                    )),
                    Some(ap @ J::Object(_)) => check(ap, x, &join(path, k), errs),
                    _ => {}
                },
            }
        }
    }
    if let (J::Array(a), Some(items)) = (v, s.get("items")) {
        for (i, x) in a.iter().enumerate() {
            check(items, x, &join(path, &i.to_string()), errs);
        }
    }
}

fn walk(c: &Chart, vals: &Value, out: &mut String) {
    if let Some(schema) = &c.schema {
        let mut errs = Vec::new();
        check(schema, &vals.to_json(), "", &mut errs);
        if !errs.is_empty() {
            out.push_str(&format!("{}:\n", c.name));
            for e in errs {
                out.push_str(&format!("- {e}\n"));
            }
        }
    }
    for sub in &c.charts {
        let sv = vals.get(&sub.name).unwrap_or_else(Value::empty_map);
        walk(sub, &sv, out);
    }
}

/// Validate the chart tree's values against each chart's schema.
pub fn validate_tree(c: &Chart, vals: &Value) -> Result<(), Error> {
    let mut out = String::new();
    walk(c, vals, &mut out);
    if out.is_empty() {
        return Ok(());
    }
    Err(Error::Values(format!(
        "values don't meet the specifications of the schema(s) in the following chart(s):\n{out}"
    )))
}
