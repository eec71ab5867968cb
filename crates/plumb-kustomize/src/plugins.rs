//! Builtin transformer configs listed under `transformers:` (`apiVersion: builtin`). They run
//! the same code as the kustomization fields, but with exactly the field specs they carry.
//! Anything that is not a builtin (exec/Go/KRM-function plugins) is refused: plumb never runs
//! external code.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::Error;
use crate::accumulate::{Acc, Target, run_patches, run_replacements};
use crate::error::field_err;
use crate::fieldspec::FieldSpec;
use crate::kustomization::{ImageArgs, PatchArgs, ReplacementEntry, ReplicaArgs, Selector};
use crate::transformers;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    field_specs: Vec<FieldSpec>,
    prefix: Option<String>,
    suffix: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "string_map")]
    annotations: BTreeMap<String, String>,
    image_tag: Option<ImageArgs>,
    replica: Option<ReplicaArgs>,
    path: Option<String>,
    patch: Option<String>,
    target: Option<Selector>,
    #[serde(default)]
    options: BTreeMap<String, bool>,
    #[serde(default)]
    paths: Vec<String>,
    patches: Option<String>,
    json_op: Option<String>,
    #[serde(default)]
    replacements: Vec<ReplacementEntry>,
    value: Option<String>,
    #[serde(default)]
    targets: Vec<ValueAddTarget>,
    target_file_path: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct ValueAddTarget {
    selector: Option<Selector>,
    #[serde(default)]
    field_path: String,
    #[serde(default)]
    file_path_position: i64,
}

/// Plugin configs are decoded by go-yaml, which turns scalar values into strings (`area: 51`).
fn string_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: BTreeMap<String, Value> = BTreeMap::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, text)
        })
        .collect())
}

#[derive(Deserialize, Default)]
struct Meta {
    namespace: Option<String>,
}

pub(crate) fn run_transformer_config(
    t: &Target<'_>,
    acc: &mut Acc,
    entry: &str,
) -> Result<(), Error> {
    let path = t.loader.resolve(&t.dir, entry)?;
    let docs = if path.is_dir() {
        crate::accumulate::plugin_configs_from_dir(t, &path)?
    } else {
        t.loader.check_file_in(&t.dir, &path)?;
        let text = t.loader.read_string(&path)?;
        crate::yaml::parse_raw(&text).map_err(|source| Error::Yaml {
            path: path.clone(),
            source,
        })?
    };
    for doc in docs {
        let api = doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = doc
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if api != "builtin" {
            return Err(Error::Unsupported {
                path: t.file.clone(),
                field: "transformers".into(),
                reason: format!(
                    "{entry}: {api}/{kind} is a transformer plugin; plumb runs only builtin \
                     transformers and never external code"
                ),
            });
        }
        let c: Config = serde_json::from_value(doc)
            .map_err(|e| field_err(&t.file, "transformers", format!("{entry}: {kind}: {e}")))?;
        let field = format!("transformers ({entry}: {kind})");
        let err = |m: String| field_err(&t.file, &field, m);
        match kind.as_str() {
            "PrefixTransformer" | "SuffixTransformer" | "PrefixSuffixTransformer" => {
                transformers::prefix_suffix(
                    acc,
                    c.prefix.as_deref().unwrap_or(""),
                    c.suffix.as_deref().unwrap_or(""),
                    &c.field_specs,
                )
                .map_err(err)?;
            }
            "LabelTransformer" => {
                transformers::set_map_entries(acc, &c.labels, &c.field_specs).map_err(err)?;
            }
            "AnnotationsTransformer" => {
                transformers::set_map_entries(acc, &c.annotations, &c.field_specs).map_err(err)?;
            }
            "NamespaceTransformer" => {
                let ns = c.metadata.namespace.clone().unwrap_or_default();
                transformers::namespace(acc, &ns, &c.field_specs).map_err(err)?;
            }
            "ImageTagTransformer" => {
                let img = c
                    .image_tag
                    .clone()
                    .ok_or_else(|| err("missing imageTag".into()))?;
                transformers::images_transform(acc, &img, &c.field_specs).map_err(err)?;
            }
            "ReplicaCountTransformer" => {
                let rep = c
                    .replica
                    .clone()
                    .ok_or_else(|| err("missing replica".into()))?;
                transformers::replicas(acc, &[rep], &c.field_specs).map_err(err)?;
            }
            "PatchTransformer" => {
                let p = PatchArgs {
                    path: c.path.clone(),
                    patch: c.patch.clone(),
                    target: c.target.clone(),
                    options: c.options.clone(),
                };
                run_patches(t, acc, "patches", &[p], 0)?;
            }
            "PatchStrategicMergeTransformer" => {
                let mut list = crate::patch::from_smp_list(&c.paths);
                if let Some(inline) = &c.patches {
                    list.push(PatchArgs {
                        patch: Some(inline.clone()),
                        ..Default::default()
                    });
                }
                run_patches(t, acc, "patchesStrategicMerge", &list, 0)?;
            }
            "PatchJson6902Transformer" => {
                let p = PatchArgs {
                    path: c.path.clone(),
                    patch: c.json_op.clone(),
                    target: c.target.clone(),
                    options: BTreeMap::new(),
                };
                run_patches(t, acc, "patchesJson6902", &[p], 0)?;
            }
            "ReplacementTransformer" => {
                run_replacements(t, acc, &c.replacements)?;
            }
            "ValueAddTransformer" => value_add(t, acc, &c).map_err(|e| match e {
                Error::Field { .. } | Error::Load { .. } | Error::Escape { .. } => e,
                other => err(other.to_string()),
            })?,
            other => {
                return Err(Error::Unsupported {
                    path: t.file.clone(),
                    field: "transformers".into(),
                    reason: format!("{entry}: builtin {other} is not supported"),
                });
            }
        }
    }
    Ok(())
}

/// Kustomize's ValueAddTransformer: write a value (by default the kustomization directory's
/// name) into a field of the selected objects, or into one position of a path-like field.
fn value_add(t: &Target<'_>, acc: &mut Acc, c: &Config) -> Result<(), Error> {
    let field = "transformers (ValueAddTransformer)";
    let mut value = c.value.as_deref().unwrap_or("").trim().to_string();
    if value.is_empty() {
        value = t
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    let mut targets = c.targets.clone();
    if let Some(p) = &c.target_file_path {
        let path = t.loader.resolve_file(&t.dir, p)?;
        let text = t.loader.read_string(&path)?;
        let doc = crate::yaml::parse_raw(&text)
            .map_err(|source| Error::Yaml {
                path: path.clone(),
                source,
            })?
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        let more: Vec<ValueAddTarget> = doc
            .get("targets")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| field_err(&t.file, field, format!("{p}: {e}")))?
            .unwrap_or_default();
        targets.extend(more);
    }
    if targets.is_empty() {
        return Err(field_err(
            &t.file,
            field,
            "must specify at least one target",
        ));
    }
    for target in &targets {
        if target.field_path.is_empty() {
            return Err(field_err(&t.file, field, "fieldPath cannot be empty"));
        }
        if target.file_path_position < 0 {
            return Err(field_err(
                &t.file,
                field,
                "filePathPosition cannot be negative",
            ));
        }
        let matcher = target
            .selector
            .as_ref()
            .map(crate::resource::SelectorMatcher::new)
            .transpose()
            .map_err(|m| field_err(&t.file, field, m))?;
        let segs = crate::fieldspec::split_path(&target.field_path);
        for r in &mut acc.resources {
            if matcher.as_ref().is_some_and(|m| !m.matches(r)) {
                continue;
            }
            if target.field_path == "metadata/namespace" {
                if !r.gvk().is_cluster_scoped() {
                    r.set_namespace(&value);
                }
                continue;
            }
            let position = usize::try_from(target.file_path_position).unwrap_or(0);
            crate::fieldspec::visit(
                &mut r.obj,
                &segs,
                Some(crate::fieldspec::Create::Scalar),
                &mut |v| {
                    let current = v.as_str().unwrap_or("").to_string();
                    let new = if position > 0 {
                        insert_path_part(&current, position - 1, &value)
                    } else {
                        value.clone()
                    };
                    *v = Value::String(new);
                    Ok(())
                },
            )
            .map_err(|m| field_err(&t.file, field, m))?;
        }
    }
    Ok(())
}

/// Go kustomize's `filesys.InsertPathPart`.
fn insert_path_part(path: &str, pos: usize, part: &str) -> String {
    if part.is_empty() {
        return path.to_string();
    }
    let mut parts: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    let mut pos = pos.min(parts.len());
    if pos == 0 && parts.first() == Some(&"") {
        pos = 1;
    }
    parts.insert(pos.min(parts.len()), part);
    parts.join("/")
}
