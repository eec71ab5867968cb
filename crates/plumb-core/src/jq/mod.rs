//! A small, bounded jq evaluator for the path expressions of `ignoreDifferences`
//! (`jqPathExpressions`), which Argo CD evaluates as `del(<expression>)`.
//!
//! Supported: `.`, `.a`, `."a"`, `.["a"]`, `.[0]`, `.[-1]`, `.[]`, the `?` suffix, `|`, `,`,
//! parentheses, and inside `select(…)`: literals, `==`, `!=`, `<`, `<=`, `>`, `>=`, `and`, `or`,
//! `not`, `has`, `test` (a literal regular expression), `startswith`, `endswith`, `contains`
//! (strings), `length`, `ascii_downcase`, `ascii_upcase`, `empty`.
//!
//! **Guarantees**: parsing and evaluation never panic and never hang: an expression is at most
//! [`MAX_EXPRESSION_LEN`] bytes and [`MAX_NESTING`] levels deep, an evaluation takes at most
//! [`MAX_STEPS`] steps and yields at most [`MAX_OUTPUTS`] paths; there is no recursion (`..`),
//! no function definitions and no variables, so the cost is bounded by the expression and the
//! object. Regular expressions use the `regex` crate (linear time) with a size limit.
//!
//! **Errors**: [`JqError::Parse`] / [`JqError::Unsupported`] when compiling (naming the
//! offending construct and its byte offset), [`JqError::Runtime`] and [`JqError::Limit`] when
//! evaluating.

mod eval;
mod lexer;
mod syntax;

use eval::Eval;
use lexer::tokenize;
use serde_json::Value;
use std::cmp::Ordering;
use syntax::{Expr, Parser, check_path};

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Deepest nesting of parentheses, brackets and calls.
pub const MAX_NESTING: usize = 64;
/// Most evaluation steps for one expression on one object.
pub const MAX_STEPS: usize = 200_000;
/// Most paths one expression may yield on one object.
pub const MAX_OUTPUTS: usize = 100_000;
/// Largest compiled regular expression, in bytes.
const MAX_REGEX_SIZE: usize = 1 << 20;

/// Why an expression cannot be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JqError {
    /// The text is not valid jq.
    #[error("syntax error at byte {offset}: {message}")]
    Parse {
        /// Byte offset in the expression.
        offset: usize,
        /// What was expected or found.
        message: String,
    },
    /// Valid jq this evaluator does not implement.
    #[error("not supported at byte {offset}: {feature}")]
    Unsupported {
        /// Byte offset in the expression.
        offset: usize,
        /// The construct.
        feature: String,
    },
    /// The expression failed on this object (e.g. indexing a string).
    #[error("{0}")]
    Runtime(String),
    /// A limit was reached.
    #[error("limit reached: {0}")]
    Limit(String),
}

/// One step of a path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// Object key.
    Key(String),
    /// Array index (non-negative once resolved against an array).
    Index(i64),
}

/// A compiled path expression.
#[derive(Debug, Clone)]
pub struct PathExpression {
    source: String,
    expr: Expr,
}

impl PathExpression {
    /// Compiles `source`.
    ///
    /// **Errors**: syntax errors, unsupported constructs, limits, and expressions that are
    /// valid jq but not paths (e.g. `.a == 1`).
    pub fn parse(source: &str) -> Result<PathExpression, JqError> {
        if source.len() > MAX_EXPRESSION_LEN {
            return Err(JqError::Limit(format!(
                "expression is {} bytes long, at most {MAX_EXPRESSION_LEN} allowed",
                source.len()
            )));
        }
        let tokens = tokenize(source)?;
        let mut parser = Parser {
            tokens,
            position: 0,
            depth: 0,
            end: source.len(),
        };
        let expr = parser.pipe()?;
        if let Some((token, offset)) = parser.tokens.get(parser.position) {
            return Err(JqError::Parse {
                offset: *offset,
                message: format!("unexpected {}", token.describe()),
            });
        }
        check_path(&expr)?;
        Ok(PathExpression {
            source: source.to_string(),
            expr,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The paths the expression selects in `value`, as `path(<expression>)` would yield them.
    ///
    /// **Errors**: runtime type errors not silenced by `?`, and limits.
    pub fn paths(&self, value: &Value) -> Result<Vec<Vec<PathSegment>>, JqError> {
        let mut eval = Eval { steps: 0 };
        let mut out = Vec::new();
        eval.paths(&self.expr, Vec::new(), Some(value), &mut out)?;
        Ok(out.into_iter().map(|(path, _)| path).collect())
    }

    /// Deletes what the expression selects, as `del(<expression>)` does.
    ///
    /// **Errors**: as [`PathExpression::paths`]; `value` is unchanged then.
    pub fn delete(&self, value: &mut Value) -> Result<(), JqError> {
        let mut paths = self.paths(value)?;
        // Delete the last paths first so array indices stay valid, as jq's delpaths does.
        paths.sort_by(|a, b| compare_paths(b, a));
        paths.dedup();
        for path in paths {
            delete_path(value, &path);
        }
        Ok(())
    }
}

fn compare_paths(a: &[PathSegment], b: &[PathSegment]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ordering = match (x, y) {
            (PathSegment::Index(i), PathSegment::Index(j)) => i.cmp(j),
            (PathSegment::Key(i), PathSegment::Key(j)) => i.cmp(j),
            (PathSegment::Index(_), PathSegment::Key(_)) => Ordering::Less,
            (PathSegment::Key(_), PathSegment::Index(_)) => Ordering::Greater,
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.len().cmp(&b.len())
}

/// Removes the value at `path`; a path that does not exist is a no-op.
pub fn delete_path(value: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        // `del(.)` makes the document null, as in jq.
        *value = Value::Null;
        return;
    };
    let mut current = value;
    for segment in parents {
        let next = match (segment, current) {
            (PathSegment::Key(key), Value::Object(map)) => map.get_mut(key),
            (PathSegment::Index(index), Value::Array(items)) => {
                usize::try_from(*index).ok().and_then(|i| items.get_mut(i))
            }
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    match (last, current) {
        (PathSegment::Key(key), Value::Object(map)) => {
            map.shift_remove(key);
        }
        (PathSegment::Index(index), Value::Array(items)) => {
            if let Ok(i) = usize::try_from(*index)
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
