//! Parameter sets: what one generator run yields for one Application, and the ways Argo CD
//! prints, flattens and merges them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One parameter set. In the default (fasttemplate) mode every value is a string under a
/// flat key (`path.basename`); in goTemplate mode values nest (`.path.basename`).
pub(crate) type Params = Map<String, Value>;

/// Go's `fmt.Sprintf("%v", v)` for a value decoded from JSON (numbers are float64 there).
pub(crate) fn go_sprint(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => plumb_helm::value::format_float_g(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_sprint).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) => {
            // Go prints map keys sorted.
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            let parts: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_sprint(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Flatten nested maps and lists into dotted keys (`a.b`, `list.0`) as jeremywohl/flatten's
/// DotStyle does; empty maps and lists vanish.
pub(crate) fn flatten(params: &Params) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (k, v) in params {
        flatten_into(&mut out, k, v);
    }
    out
}

fn flatten_into(out: &mut BTreeMap<String, Value>, key: &str, v: &Value) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                flatten_into(out, &format!("{key}.{k}"), inner);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                flatten_into(out, &format!("{key}.{i}"), inner);
            }
        }
        other => {
            out.insert(key.to_string(), other.clone());
        }
    }
}

/// Flattened parameters printed as strings: what generator `selector`s match against.
pub(crate) fn flatten_strings(params: &Params) -> BTreeMap<String, String> {
    flatten(params)
        .into_iter()
        .map(|(k, v)| (k, go_sprint(&v)))
        .collect()
}

/// Go's notion of an empty value, which `mergo` never copies over a present one.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// `mergo.Merge(dst, src, mergo.WithOverride)` on `map[string]any`: nested maps merge,
/// other values from `src` replace those in `dst` unless they are empty.
pub(crate) fn merge_override(dst: &mut Params, src: &Params) {
    for (k, v) in src {
        match (dst.get_mut(k), v) {
            (Some(Value::Object(d)), Value::Object(s)) => merge_override(d, s),
            (Some(existing), v) => {
                if !is_empty(v) {
                    *existing = v.clone();
                }
            }
            (None, v) => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}

/// `mergo.Merge(dst, src)` without override: fill what `dst` leaves empty from `src`.
pub(crate) fn merge_fill(dst: &mut Params, src: &Params) {
    for (k, v) in src {
        match (dst.get_mut(k), v) {
            (Some(Value::Object(d)), Value::Object(s)) => merge_fill(d, s),
            (Some(existing), v) => {
                if is_empty(existing) {
                    *existing = v.clone();
                }
            }
            (None, v) => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Argo CD's `CombineStringMaps`: both sets printed as strings (`%v`), then their union,
/// refusing a key with two values.
pub(crate) fn combine_strict(a: &Params, b: &Params) -> Result<Params, String> {
    let as_strings = |p: &Params| -> Params {
        p.iter()
            .map(|(k, v)| (k.clone(), Value::String(go_sprint(v))))
            .collect()
    };
    let mut out = as_strings(a);
    for (k, v) in as_strings(b) {
        if let Some(current) = out.get(&k)
            && *current != v
        {
            return Err(format!(
                "found duplicate key {k} with different value, a: {} ,b: {}",
                go_sprint(current),
                go_sprint(&v)
            ));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// Argo CD's `SanitizeName` (the `normalize` template function and every `*Normalized`
/// parameter): lowercase, anything but `-a-z0-9.` becomes `-`, at most 253 bytes, no
/// leading or trailing `-` or `.`.
pub(crate) fn sanitize_name(name: &str) -> String {
    let lowered = name.to_lowercase();
    let mut out = String::with_capacity(lowered.len());
    for c in lowered.chars() {
        if c == '-' || c == '.' || c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else {
            out.push('-');
        }
    }
    // Every character is ASCII now, so byte truncation cannot split one.
    out.truncate(253);
    out.trim_matches(|c| c == '-' || c == '.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Params {
        match v {
            Value::Object(m) => m,
            _ => Params::new(),
        }
    }

    #[test]
    fn sanitize_name_matches_argo() {
        assert_eq!(sanitize_name("My_App.Name"), "my-app.name");
        assert_eq!(sanitize_name("--a--"), "a");
        assert_eq!(sanitize_name(".x."), "x");
        assert_eq!(sanitize_name("Ünïcode"), "n-code");
        assert_eq!(sanitize_name(&"a".repeat(300)).len(), 253);
    }

    #[test]
    fn go_sprint_prints_like_go() {
        assert_eq!(go_sprint(&json!(3)), "3");
        assert_eq!(go_sprint(&json!(1000000)), "1e+06");
        assert_eq!(go_sprint(&json!(1.5)), "1.5");
        assert_eq!(go_sprint(&json!(null)), "<nil>");
        assert_eq!(go_sprint(&json!([1, "a"])), "[1 a]");
        assert_eq!(go_sprint(&json!({"b": 1, "a": true})), "map[a:true b:1]");
    }

    #[test]
    fn flatten_uses_dots_for_maps_and_lists() {
        let p = obj(json!({"a": {"b": "x", "c": [1, {"d": false}]}, "e": {}, "f": "g"}));
        let flat = flatten_strings(&p);
        let expected: BTreeMap<String, String> = [
            ("a.b", "x"),
            ("a.c.0", "1"),
            ("a.c.1.d", "false"),
            ("f", "g"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(flat, expected);
    }

    #[test]
    fn merge_override_merges_nested_and_ignores_empty() {
        let mut dst = obj(json!({"a": {"x": 1, "y": 2}, "b": "keep", "c": "old"}));
        merge_override(
            &mut dst,
            &obj(json!({"a": {"y": 3, "z": 4}, "b": "", "c": "new", "d": ""})),
        );
        assert_eq!(
            Value::Object(dst),
            json!({"a": {"x": 1, "y": 3, "z": 4}, "b": "keep", "c": "new", "d": ""})
        );
    }

    #[test]
    fn merge_fill_keeps_present_values() {
        let mut dst = obj(json!({"a": "mine", "b": ""}));
        merge_fill(
            &mut dst,
            &obj(json!({"a": "theirs", "b": "filled", "c": "new"})),
        );
        assert_eq!(
            Value::Object(dst),
            json!({"a": "mine", "b": "filled", "c": "new"})
        );
    }

    #[test]
    fn combine_strict_refuses_conflicts() {
        let a = obj(json!({"k": "1", "same": "s"}));
        assert!(combine_strict(&a, &obj(json!({"same": "s", "n": "2"}))).is_ok());
        let printed = combine_strict(&a, &obj(json!({"num": 3, "l": [1, 2]}))).unwrap_or_default();
        assert_eq!(printed.get("num"), Some(&json!("3")));
        assert_eq!(printed.get("l"), Some(&json!("[1 2]")));
        let err = combine_strict(&a, &obj(json!({"k": "2"})))
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "found duplicate key k with different value, a: 1 ,b: 2"
        );
    }
}
