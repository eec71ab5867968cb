//! Generators: each turns one entry of `spec.generators` into parameter sets, the way Argo
//! CD's `Transform` does (generator, then interpolation for a matrix's second child, then
//! the entry's `selector`).

mod cluster;
mod combine;
mod git;
mod list;

use serde_json::Value;

use crate::GeneratorContext;
use crate::error::Error;
use crate::params::{Params, flatten_strings};
use crate::selector::Selector;
use crate::template::Renderer;

/// Most parameter sets one generator entry may yield (a matrix multiplies quickly).
pub(crate) const MAX_PARAM_SETS: usize = 10_000;

/// Generator kinds in the order of Argo CD's `ApplicationSetGenerator` fields.
const KINDS: &[&str] = &[
    "list",
    "clusters",
    "git",
    "scmProvider",
    "clusterDecisionResource",
    "pullRequest",
    "matrix",
    "merge",
    "plugin",
];

const UNSUPPORTED: &[(&str, &str)] = &[
    ("scmProvider", "the SCM provider generator"),
    (
        "clusterDecisionResource",
        "the cluster decision resource generator",
    ),
    ("pullRequest", "the pull request generator"),
    ("plugin", "the plugin generator"),
];

/// Where a generator entry sits, which decides whether it may contain a matrix or merge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Nesting {
    /// Directly under `spec.generators`.
    Top,
    /// A child of a top-level matrix or merge (may itself be a matrix or merge).
    Child,
    /// A child of a nested matrix or merge: list, clusters or git only.
    Terminal,
}

/// What generators need besides their own spec.
pub(crate) struct Run<'a> {
    pub(crate) renderer: &'a Renderer,
    pub(crate) context: &'a dyn GeneratorContext,
    pub(crate) options: &'a crate::Options,
}

/// Parameter sets of one generator kind of an entry, with that generator's `template`.
pub(crate) struct Generated {
    pub(crate) params: Vec<Params>,
    pub(crate) template: Option<Value>,
}

/// Run the generator entry `entry` found at `field`. `inherited` carries the parameters of a
/// matrix's first child, interpolated into this (second) child before it runs.
pub(crate) fn run(
    entry: &Value,
    field: &str,
    run: &Run<'_>,
    nesting: Nesting,
    inherited: Option<&Params>,
) -> Result<Vec<Generated>, Error> {
    let Value::Object(map) = entry else {
        return Err(Error::invalid(field, "a generator must be an object"));
    };
    for key in map.keys() {
        if key != "selector" && !KINDS.contains(&key.as_str()) {
            return Err(Error::unsupported(
                format!("{field}.{key}"),
                format!(
                    "unknown generator {key:?} (supported: list, clusters, git, matrix, merge)"
                ),
            ));
        }
    }
    let selector = match map.get("selector") {
        None | Some(Value::Null) => None,
        Some(s) => Some(Selector::parse(s, &format!("{field}.selector"))?),
    };
    let interpolated;
    let map = match inherited {
        Some(params) if !params.is_empty() => {
            interpolated = interpolate(map, params, run.renderer, field)?;
            &interpolated
        }
        _ => map,
    };
    let present: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| map.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if present.is_empty() {
        return Err(Error::invalid(
            field,
            "no generator given (expected one of list, clusters, git, matrix, merge)",
        ));
    }
    if nesting != Nesting::Top && present.len() > 1 {
        return Err(Error::invalid(
            field,
            "found more than one generator in matrix.Generators",
        ));
    }
    let mut out = Vec::new();
    for kind in present {
        let kind_field = format!("{field}.{kind}");
        if let Some((_, feature)) = UNSUPPORTED.iter().find(|(k, _)| *k == kind) {
            return Err(Error::unsupported(kind_field, *feature));
        }
        let spec = map.get(kind).unwrap_or(&Value::Null);
        if !spec.is_object() {
            return Err(Error::invalid(kind_field, "must be an object"));
        }
        let params = match kind {
            "list" => list::generate(spec, &kind_field, run)?,
            "clusters" => cluster::generate(spec, &kind_field, run)?,
            "git" => git::generate(spec, &kind_field, run)?,
            "matrix" | "merge" => {
                let child = match nesting {
                    Nesting::Top => Nesting::Child,
                    Nesting::Child => Nesting::Terminal,
                    Nesting::Terminal => {
                        return Err(Error::unsupported(
                            kind_field,
                            "a matrix or merge nested more than two levels deep (Argo CD allows one nested level)",
                        ));
                    }
                };
                if kind == "matrix" {
                    combine::matrix(spec, &kind_field, run, child)?
                } else {
                    combine::merge(spec, &kind_field, run, child)?
                }
            }
            _ => {
                return Err(Error::unsupported(
                    kind_field,
                    format!("the {kind} generator"),
                ));
            }
        };
        let params = match &selector {
            Some(sel) => params
                .into_iter()
                .filter(|p| sel.matches(&flatten_strings(p)))
                .collect(),
            None => params,
        };
        if params.len() > MAX_PARAM_SETS {
            return Err(Error::invalid(
                kind_field,
                format!("yields more than {MAX_PARAM_SETS} parameter sets"),
            ));
        }
        let template = spec.get("template").filter(|t| !t.is_null()).cloned();
        out.push(Generated { params, template });
    }
    Ok(out)
}

/// Argo CD's `InterpolateGenerator`: every string of the entry rendered with the first
/// child's parameters; `values` maps are pre-resolved with missing keys left as written,
/// since they may refer to parameters this generator produces itself.
fn interpolate(
    map: &serde_json::Map<String, Value>,
    params: &Params,
    renderer: &Renderer,
    field: &str,
) -> Result<serde_json::Map<String, Value>, Error> {
    let template_error = |at: String, message: String| Error::Template {
        field: field.to_string(),
        at,
        message,
    };
    let mut stripped = map.clone();
    let mut saved_values = Vec::new();
    for (kind, spec) in stripped.iter_mut() {
        if let Value::Object(generator) = spec
            && let Some(values) = generator.remove("values")
        {
            saved_values.push((kind.clone(), values));
        }
    }
    let rendered = renderer
        .render_tree(&Value::Object(stripped), params)
        .map_err(|(at, e)| template_error(at, e))?;
    let Value::Object(mut rendered) = rendered else {
        return Err(Error::invalid(field, "a generator must be an object"));
    };
    let strict = renderer.strict();
    for (kind, values) in saved_values {
        let resolved = match values {
            Value::Object(values) => {
                let mut out = serde_json::Map::new();
                for (k, v) in values {
                    let Value::String(s) = &v else {
                        out.insert(k, v);
                        continue;
                    };
                    let value = match strict.render_str(s, params) {
                        Ok(r) => r,
                        Err(e)
                            if e.contains("map has no entry for key")
                                || e.contains("can't evaluate field") =>
                        {
                            s.clone()
                        }
                        Err(e) => return Err(template_error(format!("{kind}.values.{k}"), e)),
                    };
                    out.insert(k, Value::String(value));
                }
                Value::Object(out)
            }
            other => other,
        };
        if let Some(Value::Object(generator)) = rendered.get_mut(&kind) {
            generator.insert("values".to_string(), resolved);
        }
    }
    Ok(rendered)
}

/// A generator's `values`: a map of strings rendered with the parameters so far and added
/// under `values` (goTemplate) or `values.<key>` (default mode).
pub(crate) fn append_values(
    spec: &Value,
    field: &str,
    params: &mut Params,
    renderer: &Renderer,
) -> Result<(), Error> {
    let values = match spec.get("values") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(v)) => v,
        Some(_) => {
            return Err(Error::invalid(
                format!("{field}.values"),
                "must be a map of strings",
            ));
        }
    };
    let mut rendered = serde_json::Map::new();
    for (k, v) in values {
        let Value::String(s) = v else {
            return Err(Error::invalid(
                format!("{field}.values.{k}"),
                "must be a string",
            ));
        };
        let r = renderer
            .render_str(s, params)
            .map_err(|message| Error::Template {
                field: format!("{field}.values.{k}"),
                at: ".".to_string(),
                message,
            })?;
        rendered.insert(k.clone(), Value::String(r));
    }
    if rendered.is_empty() {
        return Ok(());
    }
    if renderer.is_go_template() {
        params.insert("values".to_string(), Value::Object(rendered));
    } else {
        for (k, v) in rendered {
            params.insert(format!("values.{k}"), v);
        }
    }
    Ok(())
}

/// Argo CD's default for a Git generator without `requeueAfterSeconds`.
const DEFAULT_GIT_REQUEUE_SECONDS: u64 = 180;

/// The smallest requeue interval of the polling generators of `spec.generators`, nested
/// ones included.
pub(crate) fn requeue_after_seconds(spec: &Value) -> Option<u64> {
    fn walk(entries: &Value, best: &mut Option<u64>) {
        for entry in entries.as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(git) = entry.get("git").filter(|g| g.is_object()) {
                let seconds = git
                    .get("requeueAfterSeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(DEFAULT_GIT_REQUEUE_SECONDS);
                if seconds > 0 {
                    *best = Some(best.map_or(seconds, |b| b.min(seconds)));
                }
            }
            for kind in ["matrix", "merge"] {
                if let Some(children) = entry.get(kind).and_then(|k| k.get("generators")) {
                    walk(children, best);
                }
            }
        }
    }
    let mut best = None;
    if let Some(entries) = spec.get("generators") {
        walk(entries, &mut best);
    }
    best
}

/// An optional string field; `""` when absent.
pub(crate) fn string_field(spec: &Value, key: &str, field: &str) -> Result<String, Error> {
    match spec.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Error::invalid(format!("{field}.{key}"), "must be a string")),
    }
}

/// An optional boolean field; `false` when absent.
pub(crate) fn bool_field(spec: &Value, key: &str, field: &str) -> Result<bool, Error> {
    match spec.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Error::invalid(
            format!("{field}.{key}"),
            "must be a boolean",
        )),
    }
}

/// An optional list field; empty when absent.
pub(crate) fn list_field<'v>(
    spec: &'v Value,
    key: &str,
    field: &str,
) -> Result<&'v [Value], Error> {
    match spec.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Error::invalid(format!("{field}.{key}"), "must be a list")),
    }
}
