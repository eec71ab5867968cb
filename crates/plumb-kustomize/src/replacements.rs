//! `replacements`: copy a field from one source object into fields of selected targets.
//! Field paths are kustomize's dotted form with `[key=value]` list selectors, indices and `*`.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::Error;
use crate::accumulate::{Acc, Target};
use crate::error::field_err;
use crate::kustomization::{ReplacementEntry, Selector};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Replacement {
    source: Option<SourceSel>,
    #[serde(default)]
    targets: Vec<TargetSel>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SourceSel {
    group: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    field_path: Option<String>,
    options: Option<Opts>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Opts {
    delimiter: Option<String>,
    #[serde(default)]
    index: i64,
    #[serde(default)]
    create: bool,
    /// Accepted and, like Kustomize v5.5.0, without effect.
    #[serde(default, rename = "encoding")]
    _encoding: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TargetSel {
    select: Option<Selector>,
    #[serde(default)]
    reject: Vec<Selector>,
    #[serde(default)]
    field_paths: Vec<String>,
    options: Option<Opts>,
}

pub(crate) fn run(
    t: &Target<'_>,
    acc: &mut Acc,
    entries: &[ReplacementEntry],
) -> Result<(), Error> {
    let mut list: Vec<Value> = Vec::new();
    for e in entries {
        match e {
            ReplacementEntry::Path { path } => {
                let p = t.loader.resolve_file(&t.dir, path)?;
                let text = t.loader.read_string(&p)?;
                let docs = crate::yaml::parse_raw(&text).map_err(|source| Error::Yaml {
                    path: p.clone(),
                    source,
                })?;
                for d in docs {
                    match d {
                        Value::Array(items) => list.extend(items),
                        other => list.push(other),
                    }
                }
            }
            ReplacementEntry::Inline(v) => list.push(v.clone()),
        }
    }
    for (i, raw) in list.into_iter().enumerate() {
        let r: Replacement = serde_json::from_value(raw)
            .map_err(|e| field_err(&t.file, &format!("replacements[{i}]"), e.to_string()))?;
        apply(acc, &r).map_err(|m| field_err(&t.file, &format!("replacements[{i}]"), m))?;
    }
    Ok(())
}

fn selector_of(s: &SourceSel) -> Selector {
    Selector {
        group: s.group.clone(),
        version: s.version.clone(),
        kind: s.kind.clone(),
        name: s.name.clone(),
        namespace: s.namespace.clone(),
        ..Default::default()
    }
}

fn describe(sel: &Selector, field: &str) -> String {
    let g = crate::resource::Gvk {
        group: sel.group.clone().unwrap_or_default(),
        version: sel.version.clone().unwrap_or_default(),
        kind: sel.kind.clone().unwrap_or_default(),
    };
    format!(
        "{}:{field}",
        crate::resource::id_display(
            &g,
            sel.name.as_deref().unwrap_or(""),
            sel.namespace.as_deref().unwrap_or("")
        )
    )
}

fn apply(acc: &mut Acc, r: &Replacement) -> Result<(), String> {
    let source = r
        .source
        .as_ref()
        .ok_or("a replacement must have a source")?;
    let sel = selector_of(source);
    let field = source
        .field_path
        .clone()
        .unwrap_or_else(|| "metadata.name".into());
    let mut found = Vec::new();
    for res in &acc.resources {
        if exact_match(res, &sel)? {
            found.push(res);
        }
    }
    if found.len() > 1 {
        return Err(format!(
            "multiple matches for selector {}",
            describe(&sel, &field)
        ));
    }
    let Some(src) = found.first() else {
        return Err(format!("nothing selected by {}", describe(&sel, &field)));
    };
    let segs = parse_path(&field)?;
    let mut values = Vec::new();
    let mut obj = src.obj.clone();
    walk(&mut obj, &segs, false, &mut |v| {
        values.push(v.clone());
        Ok(())
    })?;
    let Some(mut value) = values.into_iter().next() else {
        return Err(format!(
            "fieldPath `{field}` is missing for replacement source {}",
            src.id_display()
        ));
    };
    if let Some(o) = &source.options
        && let Some(d) = o.delimiter.as_ref().filter(|d| !d.is_empty())
    {
        let s = value.as_str().unwrap_or("").to_string();
        let parts: Vec<&str> = s.split(d.as_str()).collect();
        let idx = usize::try_from(o.index).map_err(|_| "options.index must not be negative")?;
        let part = parts
            .get(idx)
            .ok_or("options.index out of bounds for the source value")?;
        value = Value::String((*part).to_string());
    }
    for target in &r.targets {
        let Some(tsel) = &target.select else {
            return Err("target must specify a select".into());
        };
        let opts = target.options.clone().unwrap_or_default();
        let select = crate::resource::SelectorMatcher::new(tsel)?;
        let rejects = target
            .reject
            .iter()
            .map(crate::resource::SelectorMatcher::new)
            .collect::<Result<Vec<_>, _>>()?;
        for res in &mut acc.resources {
            if !select.matches(res) || rejects.iter().any(|r| r.matches(res)) {
                continue;
            }
            for fp in &target.field_paths {
                let segs = parse_path(fp)?;
                let id = res.id_display();
                let mut hit = false;
                walk(&mut res.obj, &segs, opts.create, &mut |v| {
                    hit = true;
                    set_value(v, &value, &opts)
                })?;
                if !hit && !opts.create {
                    return Err(format!(
                        "unable to find field `{fp}` in replacement target {id}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Replacement sources use exact (non-regex) matching on the current or an earlier name.
fn exact_match(res: &crate::resource::Resource, sel: &Selector) -> Result<bool, String> {
    let gvk = res.gvk();
    let eq =
        |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w.is_empty() || w == have);
    if !eq(&sel.group, &gvk.group) || !eq(&sel.version, &gvk.version) || !eq(&sel.kind, &gvk.kind) {
        return Ok(false);
    }
    let ids = res.all_ids();
    if let Some(n) = &sel.name
        && !ids.iter().any(|(name, _)| name == n)
    {
        return Ok(false);
    }
    if let Some(ns) = &sel.namespace
        && !ids.iter().any(|(_, x)| crate::patch::ns_equal(x, ns))
    {
        return Ok(false);
    }
    Ok(true)
}

fn set_value(target: &mut Value, value: &Value, opts: &Opts) -> Result<(), String> {
    if let Some(d) = opts.delimiter.as_ref().filter(|d| !d.is_empty()) {
        let cur = target.as_str().unwrap_or("").to_string();
        let mut parts: Vec<String> = cur.split(d.as_str()).map(str::to_string).collect();
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if opts.index < 0 {
            parts.insert(0, text);
        } else {
            let idx = usize::try_from(opts.index).unwrap_or(0);
            if idx >= parts.len() {
                parts.push(text);
            } else {
                parts[idx] = text;
            }
        }
        *target = Value::String(parts.join(d));
        return Ok(());
    }
    // A string field stays a string (kustomize keeps the target node's tag).
    *target = match (&*target, value) {
        (Value::String(_), Value::Number(n)) => Value::String(n.to_string()),
        (Value::String(_), Value::Bool(b)) => Value::String(b.to_string()),
        _ => value.clone(),
    };
    Ok(())
}

#[derive(Debug)]
enum Seg {
    Key(String),
    Index(usize),
    Match(String, String),
    All,
}

fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            '.' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    let mut out = Vec::new();
    for p in parts.into_iter().filter(|p| !p.is_empty()) {
        if let Some(inner) = p.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            match inner.split_once('=') {
                Some((k, v)) => out.push(Seg::Match(k.to_string(), v.to_string())),
                None => {
                    return Err(format!(
                        "invalid field path {path:?}: list path element must contain \
                         fieldName=fieldValue for element to match"
                    ));
                }
            }
        } else if p == "*" {
            out.push(Seg::All);
        } else if let Ok(i) = p.parse::<usize>() {
            out.push(Seg::Index(i));
        } else if let Some(pos) = p.find('[') {
            out.push(Seg::Key(p[..pos].to_string()));
            let inner = p[pos + 1..].trim_end_matches(']');
            match inner.split_once('=') {
                Some((k, v)) => out.push(Seg::Match(k.to_string(), v.to_string())),
                None => match inner.parse::<usize>() {
                    Ok(i) => out.push(Seg::Index(i)),
                    Err(_) => out.push(Seg::Key(inner.to_string())),
                },
            }
        } else {
            out.push(Seg::Key(p));
        }
    }
    Ok(out)
}

fn walk(
    v: &mut Value,
    segs: &[Seg],
    create: bool,
    f: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let Some((first, rest)) = segs.split_first() else {
        return f(v);
    };
    match first {
        Seg::Key(k) => {
            if v.is_null() && create {
                *v = Value::Object(Map::new());
            }
            let Value::Object(m) = v else { return Ok(()) };
            if !m.contains_key(k) {
                if !create {
                    return Ok(());
                }
                let fresh = match rest.first() {
                    Some(Seg::Match(..)) | Some(Seg::Index(_)) => Value::Array(Vec::new()),
                    Some(_) => Value::Object(Map::new()),
                    None => Value::Null,
                };
                m.insert(k.clone(), fresh);
            }
            match m.get_mut(k) {
                Some(child) => walk(child, rest, create, f),
                None => Ok(()),
            }
        }
        Seg::Index(i) => match v {
            Value::Array(a) => match a.get_mut(*i) {
                Some(child) => walk(child, rest, create, f),
                None => Ok(()),
            },
            _ => Ok(()),
        },
        Seg::Match(k, val) => {
            let Value::Array(a) = v else { return Ok(()) };
            let mut any = false;
            for item in a.iter_mut() {
                let matches = match item.get(k) {
                    Some(Value::String(s)) => s == val,
                    Some(other) => val.as_str() == other.to_string().as_str(),
                    None => false,
                };
                if matches {
                    any = true;
                    walk(item, rest, create, f)?;
                }
            }
            if !any && create {
                let mut m = Map::new();
                m.insert(k.clone(), Value::String(val.clone()));
                a.push(Value::Object(m));
                if let Some(last) = a.last_mut() {
                    walk(last, rest, create, f)?;
                }
            }
            Ok(())
        }
        Seg::All => match v {
            Value::Array(a) => {
                for item in a {
                    walk(item, rest, create, f)?;
                }
                Ok(())
            }
            Value::Object(m) => {
                for (_, item) in m.iter_mut() {
                    walk(item, rest, create, f)?;
                }
                Ok(())
            }
            _ => Ok(()),
        },
    }
}
