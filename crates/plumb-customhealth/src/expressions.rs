//! Flux's CEL health checks: a Kustomization's `spec.healthCheckExprs`.
//!
//! Each entry names an `apiVersion` and `kind` and holds up to three CEL expressions: `current`
//! (required), `inProgress` and `failed`. For an object of that group and kind (any version, as
//! Flux's status reader matches the group and kind), Flux's rules apply (RFC 0009): when
//! `status.observedGeneration` exists and differs from `metadata.generation` the object is in
//! progress; otherwise `inProgress`, `failed` and `current` are evaluated in that order and the
//! first that is true decides (Progressing, Degraded, Healthy); none true is in progress.
//!
//! Expressions see the object's top-level fields as variables (`metadata`, `spec`,
//! `status`...), as in Flux, and the whole object as `self` when it has no `self` field. The
//! standard library, the strings extension (except `replace`) and the encoders extension are
//! available.
//!
//! **Guarantees**: expressions are at most [`MAX_EXPRESSION_LEN`] bytes and
//! [`MAX_EXPRESSION_NODES`] nodes (the parser also caps nesting); `replace`, whose output can
//! grow without bound, is refused; before each evaluation its cost on that object is estimated
//! (each comprehension's body times the size of the list or map it ranges over, see
//! [`Estimate`]) and an evaluation above [`MAX_COST`] is refused with an error rather than run.
//! Errors name the entry and field.

use cel::common::ast::{EntryExpr, Expr};
use cel::{Context, Env, IdedExpr, Program};
use plumb_core::health::{Health, HealthStatus};
use plumb_core::key::{group_of, i64_at, str_at};
use serde_json::Value;
use std::sync::Arc;

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Most AST nodes an expression may have.
pub const MAX_EXPRESSION_NODES: usize = 1000;
/// Highest estimated cost of one evaluation.
pub const MAX_COST: f64 = 1.0e7;
/// Functions refused because their output is unbounded.
const REFUSED_FUNCTIONS: [&str; 1] = ["replace"];

/// A problem with `spec.healthCheckExprs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The field is not a list of entries.
    #[error("spec.healthCheckExprs: {message}")]
    Shape {
        /// What is wrong.
        message: String,
    },
    /// A required field is missing.
    #[error("spec.healthCheckExprs[{index}].{field} is required")]
    Missing {
        /// The entry.
        index: usize,
        /// The field.
        field: &'static str,
    },
    /// An expression cannot be used.
    #[error("spec.healthCheckExprs[{index}].{field}: {message}")]
    Invalid {
        /// The entry.
        index: usize,
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An expression failed on an object.
    #[error("spec.healthCheckExprs[{index}].{field} on {object}: {message}")]
    Evaluation {
        /// The entry.
        index: usize,
        /// The field.
        field: &'static str,
        /// `Kind/namespace/name` of the object.
        object: String,
        /// What went wrong.
        message: String,
    },
}

struct Expression {
    program: Program,
}

struct Check {
    index: usize,
    group: String,
    kind: String,
    in_progress: Option<Expression>,
    failed: Option<Expression>,
    current: Expression,
}

/// The parsed `spec.healthCheckExprs` of one Kustomization.
pub struct HealthCheckExprs {
    env: Arc<Env>,
    checks: Vec<Check>,
}

impl std::fmt::Debug for HealthCheckExprs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheckExprs")
            .field("checks", &self.checks.len())
            .finish()
    }
}

fn environment() -> Result<Env, String> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .map_err(|e| e.to_string())?;
    env.add_extension(cel::extensions::encoders)
        .map_err(|e| e.to_string())?;
    Ok(env)
}

impl HealthCheckExprs {
    /// Parses `spec.healthCheckExprs` (absent or `null` is an empty list).
    ///
    /// **Errors**: the first entry that is not an object with `apiVersion`, `kind` and
    /// `current`, or whose expression does not parse or passes the limits.
    pub fn parse(value: Option<&Value>) -> Result<HealthCheckExprs, ExprError> {
        let env = environment().map_err(|message| ExprError::Shape { message })?;
        let entries = match value {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(entries)) => entries.as_slice(),
            Some(_) => {
                return Err(ExprError::Shape {
                    message: "not a list".into(),
                });
            }
        };
        let mut checks = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            if !entry.is_object() {
                return Err(ExprError::Shape {
                    message: format!("entry {index} is not an object"),
                });
            }
            let text = |field: &'static str| -> Result<Option<&str>, ExprError> {
                match entry.get(field) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.as_str())),
                    Some(_) => Err(ExprError::Invalid {
                        index,
                        field,
                        message: "not a string".into(),
                    }),
                }
            };
            let required = |field: &'static str| -> Result<&str, ExprError> {
                text(field)?.ok_or(ExprError::Missing { index, field })
            };
            let api_version = required("apiVersion")?;
            let kind = required("kind")?.to_string();
            let compile = |field: &'static str, source: &str| {
                compile(&env, source).map_err(|message| ExprError::Invalid {
                    index,
                    field,
                    message,
                })
            };
            let current = compile("current", required("current")?)?;
            let in_progress = text("inProgress")?
                .map(|source| compile("inProgress", source))
                .transpose()?;
            let failed = text("failed")?
                .map(|source| compile("failed", source))
                .transpose()?;
            checks.push(Check {
                index,
                group: group_of(api_version).to_string(),
                kind,
                in_progress,
                failed,
                current,
            });
        }
        Ok(HealthCheckExprs {
            env: Arc::new(env),
            checks,
        })
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// The health of `object` by the first entry for its group and kind; `None` when no entry
    /// is for it.
    ///
    /// **Errors**: an expression that fails, is too costly for this object, or is not a bool.
    /// Flux keeps waiting on such an object until its timeout; callers may treat the error as
    /// health Unknown.
    pub fn assess(&self, object: &Value) -> Option<Result<Health, ExprError>> {
        let group = group_of(str_at(object, &["apiVersion"]));
        let kind = str_at(object, &["kind"]);
        let check = self
            .checks
            .iter()
            .find(|c| c.group == group && c.kind == kind)?;
        Some(self.evaluate(check, object))
    }

    fn evaluate(&self, check: &Check, object: &Value) -> Result<Health, ExprError> {
        if let (Some(observed), Some(generation)) = (
            i64_at(object, &["status", "observedGeneration"]),
            i64_at(object, &["metadata", "generation"]),
        ) && observed != generation
        {
            return Ok(Health {
                status: HealthStatus::Progressing,
                message: format!(
                    "Waiting for generation {generation} to be observed (observed {observed})"
                ),
            });
        }
        let describe = || {
            format!(
                "{}/{}/{}",
                str_at(object, &["kind"]),
                str_at(object, &["metadata", "namespace"]),
                str_at(object, &["metadata", "name"])
            )
        };
        let error = |field: &'static str, message: String| ExprError::Evaluation {
            index: check.index,
            field,
            object: describe(),
            message,
        };
        let largest = largest_collection(object, 0) as f64;
        let mut context = Context::with_env(self.env.clone());
        if let Value::Object(fields) = object {
            for (name, value) in fields {
                let value = cel::to_value(value).map_err(|e| error("current", e.to_string()))?;
                context.add_variable_from_value(name.as_str(), value);
            }
            if !fields.contains_key("self") {
                let value = cel::to_value(object).map_err(|e| error("current", e.to_string()))?;
                context.add_variable_from_value("self", value);
            }
        }
        for (field, expression, status) in [
            (
                "inProgress",
                check.in_progress.as_ref(),
                HealthStatus::Progressing,
            ),
            ("failed", check.failed.as_ref(), HealthStatus::Degraded),
            ("current", Some(&check.current), HealthStatus::Healthy),
        ] {
            let Some(expression) = expression else {
                continue;
            };
            let cost =
                Estimate { object, largest }.cost(expression.program.expression(), &mut Vec::new());
            if cost > MAX_COST {
                return Err(error(
                    field,
                    format!(
                        "evaluation would take about {cost:e} steps on this object, more than the {MAX_COST:e} allowed"
                    ),
                ));
            }
            match expression.program.execute(&context) {
                Ok(cel::Value::Bool(true)) => {
                    return Ok(Health {
                        status,
                        message: format!("spec.healthCheckExprs[{}].{field} is true", check.index),
                    });
                }
                Ok(cel::Value::Bool(false)) => {}
                Ok(other) => {
                    return Err(error(
                        field,
                        format!("evaluated to {}, not a bool", other.type_of()),
                    ));
                }
                Err(e) => return Err(error(field, e.to_string())),
            }
        }
        Ok(Health {
            status: HealthStatus::Progressing,
            message: "no healthCheckExprs expression is true yet".into(),
        })
    }
}

fn compile(env: &Env, source: &str) -> Result<Expression, String> {
    if source.len() > MAX_EXPRESSION_LEN {
        return Err(format!(
            "{} bytes long, more than the {MAX_EXPRESSION_LEN} allowed",
            source.len()
        ));
    }
    let program = env.compile(source).map_err(|e| e.to_string())?;
    let mut shape = Shape::default();
    shape.visit(program.expression());
    if shape.nodes > MAX_EXPRESSION_NODES {
        return Err(format!(
            "{} nodes, more than the {MAX_EXPRESSION_NODES} allowed",
            shape.nodes
        ));
    }
    if let Some(function) = shape.refused {
        return Err(format!(
            "{function}() is not available in plumb (its output can grow without bound)"
        ));
    }
    Ok(Expression { program })
}

/// Size and nesting of an expression.
#[derive(Default)]
struct Shape {
    nodes: usize,
    refused: Option<String>,
}

impl Shape {
    fn visit(&mut self, expr: &IdedExpr) {
        self.nodes += 1;
        if self.nodes > MAX_EXPRESSION_NODES {
            return;
        }
        match &expr.expr {
            Expr::Call(call) => {
                if REFUSED_FUNCTIONS.contains(&call.func_name.as_str()) {
                    self.refused = Some(call.func_name.clone());
                }
                if let Some(target) = &call.target {
                    self.visit(target);
                }
                for arg in &call.args {
                    self.visit(arg);
                }
            }
            Expr::Comprehension(c) => {
                for part in [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ] {
                    self.visit(part);
                }
            }
            Expr::List(list) => {
                for element in &list.elements {
                    self.visit(element);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(e) = &entry.expr {
                        self.visit(&e.key);
                        self.visit(&e.value);
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.visit(&f.value);
                    }
                }
            }
            Expr::Select(select) => self.visit(&select.operand),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
}

/// A worst-case estimate of the steps an expression takes on one object: every node once, and
/// a comprehension's condition and step once per item of its range. A range that is a path from
/// a top-level variable is measured on the object; a range built from another comprehension is
/// at most that one's range; any other range counts as the largest list or map of the object.
struct Estimate<'a> {
    object: &'a Value,
    largest: f64,
}

impl Estimate<'_> {
    fn cost(&self, expr: &IdedExpr, bound: &mut Vec<String>) -> f64 {
        match &expr.expr {
            Expr::Call(call) => {
                let mut sum = 1.0;
                if let Some(target) = &call.target {
                    sum += self.cost(target, bound);
                }
                for arg in &call.args {
                    sum += self.cost(arg, bound);
                }
                sum
            }
            Expr::Comprehension(c) => {
                let range = self.range(&c.iter_range, bound);
                let outer = 1.0 + self.cost(&c.iter_range, bound) + self.cost(&c.accu_init, bound);
                let names = [Some(&c.iter_var), c.iter_var2.as_ref(), Some(&c.accu_var)];
                let pushed = names.iter().flatten().count();
                bound.extend(names.into_iter().flatten().cloned());
                let per_item = self.cost(&c.loop_cond, bound) + self.cost(&c.loop_step, bound);
                let result = self.cost(&c.result, bound);
                bound.truncate(bound.len() - pushed);
                outer + range * per_item + result
            }
            Expr::List(list) => {
                1.0 + list
                    .elements
                    .iter()
                    .map(|e| self.cost(e, bound))
                    .sum::<f64>()
            }
            Expr::Map(map) => {
                1.0 + map
                    .entries
                    .iter()
                    .map(|entry| match &entry.expr {
                        EntryExpr::MapEntry(e) => {
                            self.cost(&e.key, bound) + self.cost(&e.value, bound)
                        }
                        EntryExpr::StructField(f) => self.cost(&f.value, bound),
                    })
                    .sum::<f64>()
            }
            Expr::Struct(s) => {
                1.0 + s
                    .entries
                    .iter()
                    .map(|entry| match &entry.expr {
                        EntryExpr::MapEntry(e) => {
                            self.cost(&e.key, bound) + self.cost(&e.value, bound)
                        }
                        EntryExpr::StructField(f) => self.cost(&f.value, bound),
                    })
                    .sum::<f64>()
            }
            Expr::Select(select) => 1.0 + self.cost(&select.operand, bound),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => 1.0,
        }
    }

    /// How many items a comprehension over `range` visits at most.
    fn range(&self, range: &IdedExpr, bound: &[String]) -> f64 {
        match &range.expr {
            Expr::Comprehension(inner) => self.range(&inner.iter_range, bound),
            Expr::List(list) => list.elements.len() as f64,
            _ => match path_of(range) {
                Some(path) if !bound.contains(&path[0]) => {
                    let mut value = if path[0] == "self" && self.object.get("self").is_none() {
                        Some(self.object)
                    } else {
                        self.object.get(&path[0])
                    };
                    for segment in &path[1..] {
                        value = value.and_then(|v| v.get(segment));
                    }
                    match value {
                        Some(Value::Array(items)) => items.len() as f64,
                        Some(Value::Object(fields)) => fields.len() as f64,
                        _ => 0.0,
                    }
                }
                _ => self.largest,
            },
        }
    }
}

/// `a.b.c` as `["a", "b", "c"]`.
fn path_of(expr: &IdedExpr) -> Option<Vec<String>> {
    match &expr.expr {
        Expr::Ident(name) => Some(vec![name.clone()]),
        Expr::Select(select) if !select.test => {
            let mut path = path_of(&select.operand)?;
            path.push(select.field.clone());
            Some(path)
        }
        _ => None,
    }
}

/// The most items of any list or map in `value`.
fn largest_collection(value: &Value, depth: usize) -> usize {
    if depth > 256 {
        return 0;
    }
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| largest_collection(v, depth + 1))
            .max()
            .unwrap_or(0)
            .max(items.len()),
        Value::Object(fields) => fields
            .values()
            .map(|v| largest_collection(v, depth + 1))
            .max()
            .unwrap_or(0)
            .max(fields.len()),
        _ => 0,
    }
}

#[cfg(test)]
#[path = "expressions_tests.rs"]
mod tests;
