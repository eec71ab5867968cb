//! Kubernetes label selectors (`matchLabels`, `matchExpressions`) as generators use them:
//! on cluster Secret labels and on flattened parameter sets.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::Error;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed `metav1.LabelSelector`; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parse a selector object found at `field`.
    pub(crate) fn parse(v: &Value, field: &str) -> Result<Selector, Error> {
        let Value::Object(map) = v else {
            return Err(Error::invalid(
                field,
                "must be an object with matchLabels and/or matchExpressions",
            ));
        };
        let mut requirements = Vec::new();
        for key in map.keys() {
            if key != "matchLabels" && key != "matchExpressions" {
                return Err(Error::invalid(
                    format!("{field}.{key}"),
                    "unknown field of a label selector",
                ));
            }
        }
        match map.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    let Value::String(s) = v else {
                        return Err(Error::invalid(
                            format!("{field}.matchLabels.{k}"),
                            "must be a string",
                        ));
                    };
                    requirements.push(Requirement::In(k.clone(), vec![s.clone()]));
                }
            }
            Some(_) => {
                return Err(Error::invalid(
                    format!("{field}.matchLabels"),
                    "must be a map of strings",
                ));
            }
        }
        match map.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    requirements.push(parse_expression(
                        item,
                        &format!("{field}.matchExpressions[{i}]"),
                    )?);
                }
            }
            Some(_) => {
                return Err(Error::invalid(
                    format!("{field}.matchExpressions"),
                    "must be a list",
                ));
            }
        }
        Ok(Selector { requirements })
    }

    /// Does it select nothing in particular (no requirement at all)?
    pub(crate) fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Do `labels` satisfy every requirement?
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

fn parse_expression(item: &Value, field: &str) -> Result<Requirement, Error> {
    let key = match item.get("key") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        _ => {
            return Err(Error::invalid(
                format!("{field}.key"),
                "must be a non-empty string",
            ));
        }
    };
    let values: Vec<String> = match item.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(vs)) => {
            let mut out = Vec::new();
            for (i, v) in vs.iter().enumerate() {
                let Value::String(s) = v else {
                    return Err(Error::invalid(
                        format!("{field}.values[{i}]"),
                        "must be a string",
                    ));
                };
                out.push(s.clone());
            }
            out
        }
        Some(_) => {
            return Err(Error::invalid(
                format!("{field}.values"),
                "must be a list of strings",
            ));
        }
    };
    let operator = item
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let needs_values = matches!(operator, "In" | "NotIn");
    if needs_values && values.is_empty() {
        return Err(Error::invalid(
            format!("{field}.values"),
            format!("must be non-empty for operator {operator}"),
        ));
    }
    if !needs_values && !values.is_empty() {
        return Err(Error::invalid(
            format!("{field}.values"),
            format!("must be empty for operator {operator}"),
        ));
    }
    Ok(match operator {
        "In" => Requirement::In(key, values),
        "NotIn" => Requirement::NotIn(key, values),
        "Exists" => Requirement::Exists(key),
        "DoesNotExist" => Requirement::DoesNotExist(key),
        other => {
            return Err(Error::invalid(
                format!("{field}.operator"),
                format!(
                    "{other:?} is not a valid label selector operator (In, NotIn, Exists, DoesNotExist)"
                ),
            ));
        }
    })
}

/// Labels of an object (`metadata.labels`), non-string values ignored.
pub(crate) fn labels_of(object: &Value, which: &str) -> BTreeMap<String, String> {
    object
        .get("metadata")
        .and_then(|m| m.get(which))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn match_labels_and_expressions() {
        let s = Selector::parse(
            &json!({"matchLabels": {"env": "prod"}, "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "skip", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["x"]},
                {"key": "env", "operator": "Exists"}
            ]}),
            "sel",
        );
        let Ok(s) = s else { panic!("{s:?}") };
        assert!(s.matches(&labels(&[("env", "prod"), ("tier", "a")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("tier", "c")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("tier", "a"), ("skip", "")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("tier", "a"), ("zone", "x")])));
        assert!(!s.matches(&labels(&[("tier", "a")])));
        assert!(Selector::default().matches(&labels(&[])));
    }

    #[test]
    fn bad_selectors_name_the_field() {
        let err = Selector::parse(
            &json!({"matchExpressions": [{"key": "a", "operator": "Is"}]}),
            "s",
        )
        .err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("s.matchExpressions[0].operator: \"Is\" is not a valid label selector operator (In, NotIn, Exists, DoesNotExist)".to_string())
        );
        assert!(
            Selector::parse(
                &json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                "s"
            )
            .is_err()
        );
        assert!(Selector::parse(&json!({"matchLabels": {"a": 1}}), "s").is_err());
        assert!(Selector::parse(&json!("x"), "s").is_err());
        assert!(Selector::parse(&json!({"matchLabel": {}}), "s").is_err());
    }
}
