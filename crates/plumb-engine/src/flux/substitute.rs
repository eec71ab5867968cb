//! Flux's post-build variable substitution (`spec.postBuild.substitute` and `substituteFrom`).
//!
//! Runs over the YAML text of each built object, as Flux does, so `replicas: ${count}` becomes
//! a number. Supported: `${var}` (empty when unset), `${var:=default}` and `${var:-default}`
//! (default when unset or empty), `${var=default}` and `${var-default}` (default when unset),
//! and `$${var}`, which prints `${var}` literally. A `$` not followed by `{` is left alone, so
//! shell scripts using `$var` keep working. Other bash forms (`${var:1:2}`, `${var/a/b}`,
//! `${#var}`, case changes) are refused with an error naming the expression, not guessed at.

use std::collections::BTreeMap;

/// Why substitution failed; the caller adds which object it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError {
    /// A `${` without its `}`.
    #[error("unclosed variable expression starting at {snippet:?}")]
    Unclosed {
        /// The text from `${` on, cut short.
        snippet: String,
    },
    /// A variable name Flux would refuse.
    #[error(
        "invalid variable name {name:?} in ${{{expression}}} (names match [_a-zA-Z][_a-zA-Z0-9]*)"
    )]
    InvalidName {
        /// The name.
        name: String,
        /// The whole expression between the braces.
        expression: String,
    },
    /// The result would be larger than [`MAX_OUTPUT_BYTES`].
    #[error("the substituted object would be larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A bash expansion plumb does not implement.
    #[error(
        "unsupported substitution ${{{expression}}} (supported: ${{var}}, ${{var:=default}}, ${{var:-default}}, ${{var=default}}, ${{var-default}})"
    )]
    Unsupported {
        /// The whole expression between the braces.
        expression: String,
    },
}

/// The largest text substitution may produce for one object, so a large value used many
/// times cannot exhaust memory.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

/// Whether `name` is a valid variable name (`^[_a-zA-Z][_a-zA-Z0-9]*$`).
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// Whether `text` has anything to substitute (Flux skips objects without `${`).
pub fn has_variables(text: &str) -> bool {
    text.contains("${")
}

/// Substitutes the variables of `text`.
///
/// **Errors**: an unclosed `${`, an invalid name or an unsupported expression.
pub fn substitute(
    text: &str,
    variables: &BTreeMap<String, String>,
) -> Result<String, SubstituteError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find('$') {
        out.push_str(&rest[..index]);
        let after = &rest[index..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(body_start) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = body_start.find('}') else {
            return Err(SubstituteError::Unclosed {
                snippet: after.chars().take(40).collect(),
            });
        };
        let expression = &body_start[..end];
        out.push_str(&expand(expression, variables)?);
        if out.len() > MAX_OUTPUT_BYTES {
            return Err(SubstituteError::TooLarge {
                limit: MAX_OUTPUT_BYTES,
            });
        }
        rest = &body_start[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand(
    expression: &str,
    variables: &BTreeMap<String, String>,
) -> Result<String, SubstituteError> {
    let name_end = expression
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(expression.len());
    let (name, operator) = expression.split_at(name_end);
    if !is_valid_name(name) {
        return Err(if name.is_empty() && !operator.is_empty() {
            SubstituteError::Unsupported {
                expression: expression.to_string(),
            }
        } else {
            SubstituteError::InvalidName {
                name: name.to_string(),
                expression: expression.to_string(),
            }
        });
    }
    let value = variables.get(name);
    let unsupported = || SubstituteError::Unsupported {
        expression: expression.to_string(),
    };
    if operator.is_empty() {
        return Ok(value.cloned().unwrap_or_default());
    }
    if let Some(default) = operator
        .strip_prefix(":=")
        .or_else(|| operator.strip_prefix(":-"))
    {
        return Ok(match value {
            Some(value) if !value.is_empty() => value.clone(),
            _ => default.to_string(),
        });
    }
    if let Some(default) = operator
        .strip_prefix('=')
        .or_else(|| operator.strip_prefix('-'))
    {
        return Ok(value.cloned().unwrap_or_else(|| default.to_string()));
    }
    Err(unsupported())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("cluster_env".to_string(), "prod".to_string()),
            ("empty".to_string(), String::new()),
            ("replicas".to_string(), "3".to_string()),
        ])
    }

    #[test]
    fn plain_and_default_forms() {
        let v = vars();
        assert_eq!(
            substitute("env: ${cluster_env}", &v).as_deref(),
            Ok("env: prod")
        );
        assert_eq!(substitute("x: ${missing}", &v).as_deref(), Ok("x: "));
        assert_eq!(substitute("${missing:=dev}", &v).as_deref(), Ok("dev"));
        assert_eq!(substitute("${empty:=dev}", &v).as_deref(), Ok("dev"));
        assert_eq!(substitute("${empty:-dev}", &v).as_deref(), Ok("dev"));
        assert_eq!(substitute("${empty=dev}", &v).as_deref(), Ok(""));
        assert_eq!(substitute("${missing-dev}", &v).as_deref(), Ok("dev"));
        assert_eq!(substitute("${replicas:=1}", &v).as_deref(), Ok("3"));
        assert_eq!(
            substitute("${cluster_env}-${replicas}", &v).as_deref(),
            Ok("prod-3")
        );
    }

    #[test]
    fn escapes_and_shell_variables_are_kept() {
        let v = vars();
        assert_eq!(
            substitute("echo $${cluster_env} $HOME $1 cost: 5$", &v).as_deref(),
            Ok("echo ${cluster_env} $HOME $1 cost: 5$")
        );
        assert!(!has_variables("echo $HOME"));
        assert!(has_variables("a: ${b}"));
    }

    #[test]
    fn bad_expressions_are_errors() {
        let v = vars();
        assert!(matches!(
            substitute("a: ${unclosed", &v),
            Err(SubstituteError::Unclosed { .. })
        ));
        assert!(matches!(
            substitute("a: ${1abc}", &v),
            Err(SubstituteError::InvalidName { .. })
        ));
        assert!(matches!(
            substitute("a: ${ name }", &v),
            Err(SubstituteError::Unsupported { .. } | SubstituteError::InvalidName { .. })
        ));
        for unsupported in [
            "${replicas:1}",
            "${replicas/3/4}",
            "${#replicas}",
            "${replicas^^}",
        ] {
            assert!(
                matches!(
                    substitute(unsupported, &v),
                    Err(SubstituteError::Unsupported { .. })
                ),
                "{unsupported}"
            );
        }
    }

    #[test]
    fn output_is_bounded() {
        let variables = BTreeMap::from([("big".to_string(), "x".repeat(1024 * 1024))]);
        let text = "${big}".repeat(20);
        assert!(matches!(
            substitute(&text, &variables),
            Err(SubstituteError::TooLarge { .. })
        ));
    }

    #[test]
    fn names_follow_flux_rules() {
        assert!(is_valid_name("_a1"));
        assert!(is_valid_name("cluster_env"));
        assert!(!is_valid_name("1a"));
        assert!(!is_valid_name("a-b"));
        assert!(!is_valid_name(""));
    }
}
