//! `patches`, `patchesStrategicMerge` and `patchesJson6902`: load each patch (file or inline),
//! decide strategic merge vs JSON 6902, select targets and apply.

use serde_json::Value;

use crate::Error;
use crate::accumulate::{Acc, Target};
use crate::error::field_err;
use crate::kustomization::PatchArgs;
use crate::resource::{Gvk, gvk_of, id_display};
use crate::smp::{Ctx, Outcome, merge_object};

/// `patchesStrategicMerge` entries are file paths or inline YAML.
pub(crate) fn from_smp_list(list: &[String]) -> Vec<PatchArgs> {
    list.iter()
        .map(|entry| {
            let inline = entry.contains('\n') || entry.trim_start().starts_with('{');
            if inline {
                PatchArgs {
                    patch: Some(entry.clone()),
                    ..Default::default()
                }
            } else {
                PatchArgs {
                    path: Some(entry.clone()),
                    ..Default::default()
                }
            }
        })
        .collect()
}

pub(crate) fn run_patches(
    t: &Target<'_>,
    acc: &mut Acc,
    field: &str,
    patches: &[PatchArgs],
    first_index: usize,
) -> Result<(), Error> {
    for (i, p) in patches.iter().enumerate() {
        let label = format!("{field}[{}]", first_index + i);
        let text = match (&p.path, &p.patch) {
            (Some(path), None) => {
                let resolved = t.loader.resolve_file(&t.dir, path)?;
                t.loader.read_string(&resolved)?
            }
            (None, Some(inline)) => inline.clone(),
            (Some(_), Some(_)) => {
                return Err(field_err(
                    &t.file,
                    &label,
                    "patch and path cannot both be set",
                ));
            }
            (None, None) => {
                return Err(field_err(&t.file, &label, "must specify a patch or a path"));
            }
        };
        let docs = crate::yaml::parse_raw(&text).map_err(|source| Error::Yaml {
            path: p
                .path
                .as_ref()
                .map_or_else(|| t.file.clone(), |x| t.dir.join(x)),
            source,
        })?;
        let is_6902 = field == "patchesJson6902"
            || (docs.len() == 1 && docs.first().is_some_and(Value::is_array));
        if is_6902 {
            let ops = match docs.into_iter().next() {
                Some(Value::Array(ops)) => ops,
                Some(Value::Null) | None => Vec::new(),
                Some(_) => {
                    return Err(field_err(
                        &t.file,
                        &label,
                        "a JSON 6902 patch must be a list of operations",
                    ));
                }
            };
            let Some(target) = &p.target else {
                return Err(field_err(
                    &t.file,
                    &label,
                    "a JSON 6902 patch requires a target",
                ));
            };
            let matcher = crate::resource::SelectorMatcher::new(target)
                .map_err(|m| field_err(&t.file, &label, m))?;
            let mut matched = false;
            for r in &mut acc.resources {
                if !matcher.matches(r) {
                    continue;
                }
                matched = true;
                let (name, ns) = (r.name().to_string(), r.namespace().to_string());
                // Kustomize keeps bookkeeping annotations on every object while building, so
                // `metadata.annotations` always exists for a JSON patch.
                let added = match r.metadata_mut() {
                    Some(meta) if !meta.get("annotations").is_some_and(Value::is_object) => {
                        meta.insert("annotations".into(), Value::Object(Default::default()));
                        true
                    }
                    _ => false,
                };
                let result = apply_json6902(&mut r.obj, &ops);
                if added
                    && let Some(meta) = r.metadata_mut()
                    && meta
                        .get("annotations")
                        .and_then(Value::as_object)
                        .is_some_and(|m| m.is_empty())
                {
                    meta.remove("annotations");
                }
                result
                    .map_err(|m| field_err(&t.file, &label, format!("{}: {m}", r.id_display())))?;
                let new_name = r.name().to_string();
                if new_name != name {
                    r.history.push((name, ns));
                }
            }
            let _ = matched;
            continue;
        }
        for patch in docs {
            if !patch.is_object() {
                return Err(field_err(
                    &t.file,
                    &label,
                    "a strategic merge patch must be a mapping",
                ));
            }
            apply_smp(t, acc, &label, p, &patch)?;
        }
    }
    Ok(())
}

fn apply_smp(
    t: &Target<'_>,
    acc: &mut Acc,
    label: &str,
    p: &PatchArgs,
    patch: &Value,
) -> Result<(), Error> {
    let allow_name = p.options.get("allowNameChange").copied().unwrap_or(false);
    let allow_kind = p.options.get("allowKindChange").copied().unwrap_or(false);
    let targets: Vec<usize> = if let Some(sel) = &p.target {
        let matcher =
            crate::resource::SelectorMatcher::new(sel).map_err(|m| field_err(&t.file, label, m))?;
        (0..acc.resources.len())
            .filter(|&i| acc.resources.get(i).is_some_and(|r| matcher.matches(r)))
            .collect()
    } else {
        let gvk = gvk_of(patch);
        let name = patch
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let ns = patch
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let v: Vec<usize> = acc
            .resources
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                let same_gvk = r.gvk() == gvk || r.orig_gvk == gvk;
                same_gvk
                    && r.all_ids()
                        .iter()
                        .any(|(n, s)| n == name && ns_equal(s, ns))
            })
            .map(|(i, _)| i)
            .collect();
        if v.is_empty() {
            let id = id_display(&gvk, name, ns);
            return Err(field_err(
                &t.file,
                label,
                format!("no resource matches strategic merge patch \"{id}\""),
            ));
        }
        if v.len() > 1 {
            let id = id_display(&gvk, name, ns);
            return Err(field_err(
                &t.file,
                label,
                format!("multiple resources match strategic merge patch \"{id}\""),
            ));
        }
        v
    };
    let mut deleted = Vec::new();
    for i in targets {
        let Some(r) = acc.resources.get_mut(i) else {
            continue;
        };
        let (name, ns) = (r.name().to_string(), r.namespace().to_string());
        let gvk: Gvk = r.gvk();
        let mut patch = patch.clone();
        if p.target.is_some()
            && let Some(m) = patch.as_object_mut()
        {
            // A targeted patch applies to each target whatever name/kind it carries.
            if !allow_kind {
                m.remove("kind");
                m.remove("apiVersion");
            }
            if let Some(Value::Object(meta)) = m.get_mut("metadata") {
                if !allow_name {
                    meta.remove("name");
                }
                meta.remove("namespace");
            }
        }
        let ctx = Ctx {
            group: &gvk.group,
            version: &gvk.version,
            kind: &gvk.kind,
            schema: t.loader.custom_schema(),
        };
        let outcome = merge_object(&mut r.obj, &patch, &ctx)
            .map_err(|m| field_err(&t.file, label, format!("{}: {m}", r.id_display())))?;
        let empty = r.obj.as_object().is_none_or(|m| m.is_empty());
        if outcome == Outcome::Deleted || empty {
            deleted.push(i);
            continue;
        }
        if !allow_kind && let Some(o) = r.obj.as_object_mut() {
            o.insert("kind".into(), Value::String(gvk.kind.clone()));
        }
        let new_name = r.name().to_string();
        if !allow_name {
            if new_name != name
                && let Some(meta) = r.metadata_mut()
            {
                meta.insert("name".into(), Value::String(name.clone()));
            }
        } else if new_name != name {
            r.history.push((name.clone(), ns.clone()));
        }
        if let Some(meta) = r.metadata_mut() {
            if ns.is_empty() {
                meta.remove("namespace");
            } else {
                meta.insert("namespace".into(), Value::String(ns));
            }
        }
    }
    for i in deleted.into_iter().rev() {
        acc.resources.remove(i);
    }
    Ok(())
}

/// Namespaces compare equal when both are empty or "default".
pub(crate) fn ns_equal(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        if s.is_empty() {
            "default".to_string()
        } else {
            s.to_string()
        }
    };
    norm(a) == norm(b)
}

/// Apply JSON 6902 operations in order.
pub(crate) fn apply_json6902(obj: &mut Value, ops: &[Value]) -> Result<(), String> {
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("operation {kind:?} is missing a path"))?;
        match kind {
            "add" => {
                let v = op
                    .get("value")
                    .cloned()
                    .ok_or("add operation is missing a value")?;
                add(obj, path, v)?;
            }
            "remove" => {
                remove(obj, path)?;
            }
            "replace" => {
                let v = op
                    .get("value")
                    .cloned()
                    .ok_or("replace operation is missing a value")?;
                remove(obj, path)?;
                add(obj, path, v)?;
            }
            "move" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("move operation is missing from")?;
                let v = remove(obj, from)?;
                add(obj, path, v)?;
            }
            "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("copy operation is missing from")?;
                let v = obj
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| format!("copy: path {from:?} does not exist"))?;
                add(obj, path, v)?;
            }
            "test" => {
                let v = op.get("value").cloned().unwrap_or(Value::Null);
                if obj.pointer(path) != Some(&v) {
                    return Err(format!("test operation failed at {path:?}"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    if path.is_empty() {
        return Err("the root document cannot be patched".into());
    }
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    let last = last.replace("~1", "/").replace("~0", "~");
    Ok((parent.to_string(), last))
}

fn add(obj: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let (parent, last) = split_pointer(path)?;
    let target = obj
        .pointer_mut(&parent)
        .ok_or_else(|| format!("add: parent path {parent:?} of {path:?} does not exist"))?;
    match target {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("add: invalid index in {path:?}"))?;
            if i > a.len() {
                return Err(format!("add: index out of range in {path:?}"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("add: parent of {path:?} is not a container")),
    }
}

fn remove(obj: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let target = obj
        .pointer_mut(&parent)
        .ok_or_else(|| format!("path {path:?} does not exist"))?;
    match target {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("path {path:?} does not exist")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid index in {path:?}"))?;
            if i >= a.len() {
                return Err(format!("index out of range in {path:?}"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("path {path:?} does not exist")),
    }
}
