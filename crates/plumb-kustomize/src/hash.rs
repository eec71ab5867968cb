//! The content hash kustomize appends to generated ConfigMap/Secret names: SHA-256 over a Go
//! `json.Marshal` of selected fields, first ten hex digits with a few letters swapped.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::resource::Resource;
use crate::yaml::go_json_string;

pub(crate) fn add_hash_suffixes(resources: &mut [Resource]) -> Result<(), Error> {
    for r in resources.iter_mut() {
        if !r.generator.as_ref().is_some_and(|g| g.needs_hash) {
            continue;
        }
        let h = hash_of(&r.obj);
        let name = format!("{}-{h}", r.name());
        r.set_name(&name);
    }
    Ok(())
}

pub(crate) fn hash_of(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    // Kustomize looks the name up as a single field literally called "metadata/name", which
    // never exists, so the name always hashes as "" (the hash depends on content only).
    let name = Value::String(String::new());
    let field = |k: &str| match obj.get(k) {
        None => Value::String(String::new()),
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(other) => Value::String(scalar_text(other)),
    };
    let mut m = Map::new();
    match kind {
        "ConfigMap" => {
            m.insert("kind".into(), Value::String("ConfigMap".into()));
            m.insert("name".into(), name);
            m.insert("data".into(), field("data"));
            if let Some(Value::Object(b)) = obj.get("binaryData") {
                m.insert("binaryData".into(), Value::Object(b.clone()));
            }
        }
        "Secret" => {
            m.insert("kind".into(), Value::String("Secret".into()));
            m.insert("type".into(), field("type"));
            m.insert("name".into(), name);
            m.insert("data".into(), field("data"));
            if let Some(Value::Object(b)) = obj.get("stringData") {
                m.insert("stringData".into(), Value::Object(b.clone()));
            }
        }
        _ => return encode(&hex(&go_json(obj))),
    }
    encode(&hex(&go_json(&Value::Object(m))))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn hex(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode(hex: &str) -> String {
    hex.chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

/// Go `encoding/json` output for a generic value: map keys sorted, HTML characters escaped.
fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => go_json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                if let Some(x) = m.get(k) {
                    write_go_json(x, out);
                }
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_kustomize_for_a_simple_config_map() {
        // `configMapGenerator: [{name: a, literals: [K=v]}]` is named a-276ch85d82 by kustomize.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"K": "v"}});
        assert_eq!(hash_of(&cm), "276ch85d82");
        // The name does not take part in the hash.
        let renamed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"K": "v"}});
        assert_eq!(hash_of(&renamed), "276ch85d82");
    }

    #[test]
    fn go_json_sorts_keys_and_escapes_html() {
        assert_eq!(
            go_json(&json!({"b": 1, "a": "<&>"})),
            r#"{"a":"\u003c\u0026\u003e","b":1}"#
        );
    }
}
