//! Reading YAML and JSON manifest files into objects.

use serde_json::Value;

/// A file that is not valid YAML or JSON.
#[derive(Debug, thiserror::Error)]
#[error("{file}: invalid {format}: {message}")]
pub struct ParseError {
    /// Path relative to the root.
    pub file: String,
    /// `YAML` or `JSON`.
    pub format: &'static str,
    /// The parser's message, with line and column.
    pub message: String,
}

/// Parses every document of `text`; empty documents are skipped and `kind: List` (and any
/// `*List` kind with `items`) is flattened into its items. Returns `(document index, object)`.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<(usize, Value)>, ParseError> {
    let documents: Vec<Value> = if file.ends_with(".json") {
        let value = serde_json::from_str(text).map_err(|error| ParseError {
            file: file.to_string(),
            format: "JSON",
            message: error.to_string(),
        })?;
        vec![value]
    } else {
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! { max_documents: 10_000, max_nodes: 2_000_000, max_anchors: 10_000 },
        };
        serde_saphyr::from_multiple_with_options::<Option<Value>>(text, options)
            .map_err(|error| ParseError {
                file: file.to_string(),
                format: "YAML",
                message: one_line(&error.to_string()),
            })?
            .into_iter()
            .map(|doc| doc.unwrap_or(Value::Null))
            .collect()
    };
    let mut objects = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        match document {
            Value::Null => {}
            Value::Object(ref map) if is_list(map) => {
                if let Some(Value::Array(items)) = map.get("items") {
                    objects.extend(items.iter().cloned().map(|item| (index, item)));
                }
            }
            other => objects.push((index, other)),
        }
    }
    Ok(objects)
}

fn is_list(map: &serde_json::Map<String, Value>) -> bool {
    map.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.ends_with("List"))
        && map.get("items").is_some_and(Value::is_array)
        && map
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v == "v1" || v.ends_with("/v1"))
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_with_empty_documents_and_lists() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: b\n";
        let objects = parse_documents("x.yaml", text).unwrap();
        let names: Vec<_> = objects
            .iter()
            .map(|(_, o)| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn yaml_1_1_booleans_are_strings_when_quoted() {
        let objects = parse_documents("x.yaml", "a: \"yes\"\nb: 1\nc: true\n").unwrap();
        assert_eq!(objects[0].1["a"], "yes");
        assert_eq!(objects[0].1["b"], 1);
    }

    #[test]
    fn invalid_yaml_names_file_and_line() {
        let error = parse_documents("apps/bad.yaml", "a: [1, 2\nb: c\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("apps/bad.yaml: invalid YAML"), "{error}");
    }

    #[test]
    fn invalid_json() {
        let error = parse_documents("x.json", "{\"a\": ")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("x.json: invalid JSON"), "{error}");
    }
}
