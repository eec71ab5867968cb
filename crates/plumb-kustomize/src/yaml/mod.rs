//! YAML in and out.
//!
//! Reading follows kyaml (go-yaml v3 resolution: only `true`/`false` are booleans, `0123` is an
//! octal int). Writing reproduces what `kustomize build` prints: every object goes through
//! `sigs.k8s.io/yaml.JSONToYAML`, i.e. go-yaml v2 marshalling a generic map, so keys are sorted
//! with go-yaml's natural order and scalars are styled by go-yaml v2's emitter rules.

mod emit;
mod resolve;
mod timestamps;

pub use emit::to_yaml_document;
pub(crate) use resolve::go_json_string;

use serde_json::Value;

/// Limits handed to the YAML parser (alias expansion, depth).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
}

/// Parse a YAML stream into documents; null documents are dropped and `kind: List` is expanded
/// into its items, like kustomize's resource reader does.
pub fn parse_stream(text: &str) -> Result<Vec<Value>, ParseError> {
    let docs = parse_raw(text)?;
    let mut out = Vec::new();
    for doc in docs {
        push_expanding_lists(doc, &mut out);
    }
    Ok(out)
}

/// Parse a YAML stream into documents without any kustomize interpretation (go-yaml v3
/// resolution, as kustomize reads resources and patches).
pub fn parse_raw(text: &str) -> Result<Vec<Value>, ParseError> {
    parse_with(text, true)
}

/// Parse with YAML 1.1 booleans (`yes`, `n`, `on` …), as kustomize reads kustomization files and
/// plugin configs (through `sigs.k8s.io/yaml`, i.e. go-yaml v2).
pub(crate) fn parse_yaml11(text: &str) -> Result<Vec<Value>, ParseError> {
    parse_with(text, false)
}

fn parse_with(text: &str, strict_booleans: bool) -> Result<Vec<Value>, ParseError> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = strict_booleans;
    options.legacy_octal_numbers = true;
    let mut docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| ParseError {
            message: e.to_string(),
        })?;
    if timestamps::may_contain_timestamps(text) {
        let found = timestamps::plain_timestamps(text);
        // Only when the event pass saw the same documents (it never should not).
        if found.len() == docs.len() {
            for (doc, paths) in docs.iter_mut().zip(&found) {
                timestamps::apply(doc, paths);
            }
        }
    }
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn push_expanding_lists(doc: Value, out: &mut Vec<Value>) {
    let is_list = doc
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    if is_list && let Some(items) = doc.get("items") {
        // `items:` present but empty or null expands to nothing.
        if let Value::Array(items) = items {
            for item in items.clone() {
                if !item.is_null() {
                    push_expanding_lists(item, out);
                }
            }
        }
        return;
    }
    out.push(doc);
}
