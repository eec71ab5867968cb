//! Generators of generators: matrix (cartesian product of two children, the second
//! interpolated with each parameter set of the first) and merge (the first child's sets
//! overridden by later children's sets with the same merge keys).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::{MAX_PARAM_SETS, Nesting, Run, list_field, run as run_entry};
use crate::error::Error;
use crate::params::{Params, combine_strict, merge_override};

pub(super) fn matrix(
    spec: &Value,
    field: &str,
    run: &Run<'_>,
    nesting: Nesting,
) -> Result<Vec<Params>, Error> {
    let children = list_field(spec, "generators", field)?;
    let children_field = format!("{field}.generators");
    if children.len() < 2 {
        return Err(Error::invalid(
            children_field,
            "found less than two generators, Matrix support only two",
        ));
    }
    if children.len() > 2 {
        return Err(Error::invalid(
            children_field,
            "found more than two generators, Matrix support only two",
        ));
    }
    let first = child_params(
        &children[0],
        &format!("{children_field}[0]"),
        run,
        nesting,
        None,
    )?;
    let mut out = Vec::new();
    for a in &first {
        let second = child_params(
            &children[1],
            &format!("{children_field}[1]"),
            run,
            nesting,
            Some(a),
        )?;
        for b in &second {
            let combined = if run.renderer.is_go_template() {
                let mut tmp = Params::new();
                merge_override(&mut tmp, b);
                merge_override(&mut tmp, a);
                tmp
            } else {
                combine_strict(a, b).map_err(|e| {
                    Error::invalid(
                        field,
                        format!("failed to combine string maps with merging params for the matrix generator: {e}"),
                    )
                })?
            };
            out.push(combined);
            if out.len() > MAX_PARAM_SETS {
                return Err(Error::invalid(
                    field,
                    format!("yields more than {MAX_PARAM_SETS} parameter sets"),
                ));
            }
        }
    }
    Ok(out)
}

pub(super) fn merge(
    spec: &Value,
    field: &str,
    run: &Run<'_>,
    nesting: Nesting,
) -> Result<Vec<Params>, Error> {
    let children = list_field(spec, "generators", field)?;
    let children_field = format!("{field}.generators");
    if children.len() < 2 {
        return Err(Error::invalid(
            children_field,
            "found less than two generators, Merge requires two or more",
        ));
    }
    let mut keys: Vec<String> = Vec::new();
    for (i, key) in list_field(spec, "mergeKeys", field)?.iter().enumerate() {
        let Value::String(key) = key else {
            return Err(Error::invalid(
                format!("{field}.mergeKeys[{i}]"),
                "must be a string",
            ));
        };
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    if keys.is_empty() {
        return Err(Error::invalid(
            format!("{field}.mergeKeys"),
            "no merge keys were specified, Merge requires at least one",
        ));
    }
    let mut base: Option<Vec<(String, Params)>> = None;
    for (i, child) in children.iter().enumerate() {
        let child_field = format!("{children_field}[{i}]");
        let sets = child_params(child, &child_field, run, nesting, None)?;
        let keyed = by_merge_key(&keys, sets, &child_field)?;
        match &mut base {
            None => base = Some(keyed),
            Some(base) => {
                let overrides: HashMap<String, Params> = keyed.into_iter().collect();
                for (key, params) in base.iter_mut() {
                    if let Some(over) = overrides.get(key) {
                        if run.renderer.is_go_template() {
                            merge_override(params, over);
                        } else {
                            params.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
                        }
                    }
                }
            }
        }
    }
    Ok(base
        .unwrap_or_default()
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

/// Parameter sets keyed by the JSON of their merge-key values, refusing duplicates.
fn by_merge_key(
    keys: &[String],
    sets: Vec<Params>,
    field: &str,
) -> Result<Vec<(String, Params)>, Error> {
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(sets.len());
    for params in sets {
        // Go marshals the key map with sorted keys.
        let key_map: BTreeMap<&str, &Value> = keys
            .iter()
            .map(|k| (k.as_str(), params.get(k).unwrap_or(&Value::Null)))
            .collect();
        let key = serde_json::to_string(&key_map).unwrap_or_default();
        if seen.insert(key.clone(), ()).is_some() {
            return Err(Error::invalid(
                field,
                format!(
                    "the parameters from a generator were not unique by the given mergeKeys, Merge requires all param sets to be unique. Duplicate key was {key}"
                ),
            ));
        }
        out.push((key, params));
    }
    Ok(out)
}

/// The parameter sets of one child, which must name exactly one generator.
fn child_params(
    child: &Value,
    field: &str,
    run: &Run<'_>,
    nesting: Nesting,
    inherited: Option<&Params>,
) -> Result<Vec<Params>, Error> {
    let mut generated = run_entry(child, field, run, nesting, inherited)?;
    match generated.len() {
        0 => Err(Error::invalid(
            field,
            "child generator generated no parameters",
        )),
        1 => Ok(generated.pop().map(|g| g.params).unwrap_or_default()),
        _ => Err(Error::invalid(
            field,
            "found more than one generator in matrix.Generators",
        )),
    }
}
