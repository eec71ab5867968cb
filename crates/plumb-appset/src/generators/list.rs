//! The list generator: `elements` (and `elementsYaml`) as parameter sets.

use serde_json::Value;

use super::{Run, list_field, string_field};
use crate::error::Error;
use crate::params::Params;

pub(super) fn generate(spec: &Value, field: &str, run: &Run<'_>) -> Result<Vec<Params>, Error> {
    let go_template = run.renderer.is_go_template();
    let mut out = Vec::new();
    for (i, element) in list_field(spec, "elements", field)?.iter().enumerate() {
        let element_field = format!("{field}.elements[{i}]");
        let Value::Object(element) = element else {
            return Err(Error::invalid(
                element_field,
                "error unmarshling list element: must be an object",
            ));
        };
        if go_template {
            out.push(element.clone());
        } else {
            out.push(flat_element(element, &element_field)?);
        }
    }
    let elements_yaml = string_field(spec, "elementsYaml", field)?;
    if !elements_yaml.is_empty() {
        let yaml_field = format!("{field}.elementsYaml");
        let docs = plumb_helm::yaml::parse_documents(&elements_yaml).map_err(|e| {
            Error::invalid(
                &yaml_field,
                format!("error unmarshling decoded ElementsYaml: {e}"),
            )
        })?;
        match docs.into_iter().next() {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::Object(m) => out.push(m),
                        Value::Null => out.push(Params::new()),
                        _ => {
                            return Err(Error::invalid(
                                format!("{yaml_field}[{i}]"),
                                "must be a map",
                            ));
                        }
                    }
                }
            }
            Some(_) => return Err(Error::invalid(yaml_field, "must be a YAML list of maps")),
        }
    }
    Ok(out)
}

/// Default mode: every value must be a string; `values` is a map of strings turned into
/// `values.<key>` parameters.
fn flat_element(element: &serde_json::Map<String, Value>, field: &str) -> Result<Params, Error> {
    let mut params = Params::new();
    for (key, value) in element {
        match (key.as_str(), value) {
            ("values", Value::Object(values)) => {
                for (k, v) in values {
                    let Value::String(s) = v else {
                        return Err(Error::invalid(
                            format!("{field}.values.{k}"),
                            "error parsing value as string (use goTemplate for non-string values)",
                        ));
                    };
                    params.insert(format!("values.{k}"), Value::String(s.clone()));
                }
            }
            ("values", _) => {
                return Err(Error::invalid(
                    format!("{field}.values"),
                    "error parsing values map",
                ));
            }
            (_, Value::String(s)) => {
                params.insert(key.clone(), Value::String(s.clone()));
            }
            _ => {
                return Err(Error::invalid(
                    format!("{field}.{key}"),
                    "error parsing value as string (use goTemplate for non-string values)",
                ));
            }
        }
    }
    Ok(params)
}
