//! Helm's values coalescing: chart defaults under user values, subchart scoping, globals,
//! `null` deleting keys, dependency conditions/tags/aliases and import-values.

use std::collections::BTreeMap;

use crate::Error;
use crate::chart::Chart;
use crate::value::{MapRef, Value};

fn as_map(v: &Value) -> Option<MapRef> {
    match v {
        Value::Map(m) => Some(m.clone()),
        _ => None,
    }
}

/// `coalesceTablesFullKey`: fill `dst` from `src`; dst wins; nil in dst deletes unless merging.
pub fn coalesce_tables(dst: &MapRef, src: &Value, merge: bool) {
    let Some(entries) = src.map_entries() else {
        return;
    };
    for (key, val) in entries {
        let existing = dst.borrow().get(&key).cloned();
        match existing {
            Some(Value::Nil) if !merge => {
                dst.borrow_mut().remove(&key);
            }
            None => {
                dst.borrow_mut().insert(key, val);
            }
            Some(Value::Map(dm)) => {
                if matches!(val, Value::Map(_)) {
                    coalesce_tables(&dm, &val, merge);
                }
            }
            Some(_) => {}
        }
    }
}

fn coalesce_values(c: &Chart, v: &MapRef, merge: bool) {
    let sub_names: Vec<&str> = c.charts.iter().map(|s| s.name.as_str()).collect();
    for (key, val) in c.values.deep_copy().map_entries().unwrap_or_default() {
        let existing = v.borrow().get(&key).cloned();
        match existing {
            Some(Value::Nil) if !merge => {
                v.borrow_mut().remove(&key);
            }
            Some(Value::Map(dm)) => {
                if matches!(val, Value::Map(_)) {
                    let m = merge || sub_names.contains(&key.as_str());
                    coalesce_tables(&dm, &val, m);
                }
            }
            Some(_) => {}
            None => {
                v.borrow_mut().insert(key, val);
            }
        }
    }
}

fn coalesce_globals(dest: &MapRef, src: &MapRef) {
    let dg = match dest.borrow().get("global").cloned() {
        None => Value::empty_map(),
        Some(g @ Value::Map(_)) => g,
        Some(_) => return,
    };
    let sg = match src.borrow().get("global").cloned() {
        None => Value::empty_map(),
        Some(g @ Value::Map(_)) => g,
        Some(_) => return,
    };
    let Some(dgm) = as_map(&dg) else { return };
    for (key, val) in sg.map_entries().unwrap_or_default() {
        if matches!(val, Value::Map(_)) {
            let vv = val.deep_copy();
            let existing = dgm.borrow().get(&key).cloned();
            match existing {
                None => {
                    dgm.borrow_mut().insert(key, vv);
                }
                Some(dv @ Value::Map(_)) => {
                    if let Some(vvm) = as_map(&vv) {
                        coalesce_tables(&vvm, &dv, true);
                    }
                    dgm.borrow_mut().insert(key, vv);
                }
                Some(_) => {}
            }
        } else if matches!(dgm.borrow().get(&key), Some(Value::Map(_))) {
            // A table in the destination is never replaced by a scalar.
        } else {
            dgm.borrow_mut().insert(key, val);
        }
    }
    dest.borrow_mut().insert("global".into(), dg);
}

fn coalesce_deps(c: &Chart, dest: &MapRef, merge: bool) -> Result<(), Error> {
    for sub in &c.charts {
        let existing = dest.borrow().get(&sub.name).cloned();
        let dv = match existing {
            None | Some(Value::Nil) => {
                let m = Value::empty_map();
                dest.borrow_mut().insert(sub.name.clone(), m.clone());
                m
            }
            Some(m @ Value::Map(_)) => m,
            Some(other) => {
                return Err(Error::Values(format!(
                    "type mismatch on {}: {}",
                    sub.name,
                    other.to_go_string()
                )));
            }
        };
        if let Some(dvm) = as_map(&dv) {
            coalesce_globals(&dvm, dest);
            coalesce(sub, &dvm, merge)?;
        }
    }
    Ok(())
}

fn coalesce(c: &Chart, v: &MapRef, merge: bool) -> Result<(), Error> {
    coalesce_values(c, v, merge);
    coalesce_deps(c, v, merge)
}

/// `chartutil.CoalesceValues` (or `MergeValues` when `merge`).
pub fn coalesce_values_root(c: &Chart, user: &Value, merge: bool) -> Result<Value, Error> {
    let v = match user {
        Value::Map(_) => user.deep_copy(),
        _ => Value::empty_map(),
    };
    if let Some(m) = as_map(&v) {
        coalesce(c, &m, merge)?;
    }
    Ok(v)
}

/// Look up a dotted path (`a.b.c`).
pub fn path_value(v: &Value, path: &str) -> Option<Value> {
    let mut cur = v.clone();
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// `processDependencyEnabled`: aliases, tags, conditions; drops disabled subcharts.
pub fn process_enabled(c: &mut Chart, v: &Value, path: &str) -> Result<(), Error> {
    if c.dependencies.is_empty() {
        return Ok(());
    }
    let mut charts: Vec<Chart> = c
        .charts
        .iter()
        .filter(|ch| !c.dependencies.iter().any(|d| d.name == ch.name))
        .cloned()
        .collect();
    for d in c.dependencies.iter_mut() {
        if let Some(found) = c.charts.iter().find(|ch| ch.name == d.name) {
            let mut ch = found.clone();
            if !d.alias.is_empty() {
                ch.name = d.alias.clone();
            }
            charts.push(ch);
        }
        if !d.alias.is_empty() {
            d.name = d.alias.clone();
        }
    }
    c.charts = charts;
    let cvals = coalesce_values_root(c, v, false)?;
    let tags = cvals.get("tags");
    let mut disabled = Vec::new();
    for d in &c.dependencies {
        let mut enabled = true;
        if let Some(t) = &tags {
            let (mut has_true, mut has_false) = (false, false);
            for k in &d.tags {
                match t.get(k) {
                    Some(Value::Bool(true)) => has_true = true,
                    Some(Value::Bool(false)) => has_false = true,
                    _ => {}
                }
            }
            if !has_true && has_false {
                enabled = false;
            }
        }
        for cond in d.condition.trim().split(',') {
            let cond = cond.trim();
            if cond.is_empty() {
                continue;
            }
            if let Some(Value::Bool(b)) = path_value(&cvals, &format!("{path}{cond}")) {
                enabled = b;
                break;
            }
        }
        if !enabled {
            disabled.push(d.name.clone());
        }
    }
    c.charts.retain(|ch| !disabled.contains(&ch.name));
    c.dependencies.retain(|d| !disabled.contains(&d.name));
    for sub in c.charts.iter_mut() {
        let subpath = format!("{path}{}.", sub.name);
        process_enabled(sub, &cvals, &subpath)?;
    }
    Ok(())
}

fn path_to_map(path: &str, data: Value) -> Value {
    if path == "." || path.is_empty() {
        return data;
    }
    let mut cur = data;
    for part in path.split('.').rev() {
        cur = Value::map(BTreeMap::from([(part.to_string(), cur)]));
    }
    cur
}

/// `processDependencyImportValues` (children first), with Helm 3's merge semantics.
pub fn process_imports(c: &mut Chart) -> Result<(), Error> {
    for sub in c.charts.iter_mut() {
        process_imports(sub)?;
    }
    if c.dependencies.is_empty() {
        return Ok(());
    }
    let cvals = coalesce_values_root(c, &Value::empty_map(), true)?;
    let b = Value::empty_map();
    let Some(bm) = as_map(&b) else { return Ok(()) };
    for d in &c.dependencies {
        for (child, parent) in &d.import_values {
            let Some(vv @ Value::Map(_)) = path_value(&cvals, &format!("{}.{child}", d.name))
            else {
                continue;
            };
            let src = path_to_map(parent, vv.deep_copy());
            coalesce_tables(&bm, &src, true);
        }
    }
    if let Some(cm) = as_map(&cvals) {
        coalesce_tables(&cm, &b, true);
    }
    c.values = cvals;
    Ok(())
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::map(
            m.borrow()
                .iter()
                .filter(|(_, x)| !x.is_nil())
                .map(|(k, x)| (k.clone(), strip_nulls(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Helm 4 ignores `null`s in charts' own values.yaml: they neither delete subchart
/// defaults nor appear in the values.
pub fn strip_chart_nulls(c: &mut Chart) {
    c.values = strip_nulls(&c.values);
    for sub in c.charts.iter_mut() {
        strip_chart_nulls(sub);
    }
}

/// Helm's `mergeMaps` for `-f` files: later files override, maps merge recursively.
pub fn merge_maps(base: &Value, over: &Value) -> Value {
    let out = base.deep_copy();
    let Some(om) = as_map(&out) else {
        return over.deep_copy();
    };
    for (k, v) in over.map_entries().unwrap_or_default() {
        let existing = om.borrow().get(&k).cloned();
        let merged = match (&existing, &v) {
            (Some(e @ Value::Map(_)), Value::Map(_)) => merge_maps(e, &v),
            _ => v.deep_copy(),
        };
        om.borrow_mut().insert(k, merged);
    }
    out
}
