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
                run_patches(t, acc, "patches", &[p])?;
            }
            "PatchStrategicMergeTransformer" => {
                let mut list = crate::patch::from_smp_list(&c.paths);
                if let Some(inline) = &c.patches {
                    list.push(PatchArgs {
                        patch: Some(inline.clone()),
                        ..Default::default()
                    });
                }
                run_patches(t, acc, "patchesStrategicMerge", &list)?;
            }
            "PatchJson6902Transformer" => {
                let p = PatchArgs {
                    path: c.path.clone(),
                    patch: c.json_op.clone(),
                    target: c.target.clone(),
                    options: BTreeMap::new(),
                };
                run_patches(t, acc, "patchesJson6902", &[p])?;
            }
            "ReplacementTransformer" => {
                run_replacements(t, acc, &c.replacements)?;
            }
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
