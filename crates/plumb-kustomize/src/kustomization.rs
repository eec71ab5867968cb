//! The `kustomization.yaml` schema (Kustomize v5.5.0 field names), parsed strictly: unknown
//! fields and mistyped values are errors naming the field, like kustomize's
//! "invalid Kustomization: json: unknown field".

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::Error;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // every field is parsed so unknown ones can be refused
pub(crate) struct Kustomization {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<Value>,
    pub openapi: Option<Value>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub namespace: Option<String>,
    pub common_labels: Option<BTreeMap<String, String>>,
    pub labels: Option<Vec<LabelArgs>>,
    pub common_annotations: Option<BTreeMap<String, String>>,
    pub patches_strategic_merge: Option<Vec<String>>,
    pub patches_json6902: Option<Vec<PatchArgs>>,
    pub patches: Option<Vec<PatchArgs>>,
    pub images: Option<Vec<ImageArgs>>,
    pub image_tags: Option<Vec<ImageArgs>>,
    pub replacements: Option<Vec<ReplacementEntry>>,
    pub replicas: Option<Vec<ReplicaArgs>>,
    pub vars: Option<Vec<VarArgs>>,
    pub sort_options: Option<SortOptions>,
    pub resources: Option<Vec<String>>,
    pub components: Option<Vec<String>>,
    pub crds: Option<Vec<String>>,
    pub bases: Option<Vec<String>>,
    pub config_map_generator: Option<Vec<GeneratorArgs>>,
    pub secret_generator: Option<Vec<GeneratorArgs>>,
    pub helm_globals: Option<Value>,
    pub helm_charts: Option<Value>,
    pub helm_chart_inflation_generator: Option<Value>,
    pub generator_options: Option<GeneratorOptions>,
    pub configurations: Option<Vec<String>>,
    pub generators: Option<Vec<String>>,
    pub transformers: Option<Vec<String>>,
    pub validators: Option<Vec<String>>,
    pub build_metadata: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LabelArgs {
    #[serde(default)]
    pub pairs: BTreeMap<String, String>,
    #[serde(default)]
    pub include_selectors: bool,
    #[serde(default)]
    pub include_templates: bool,
    #[serde(default)]
    pub fields: Vec<Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PatchArgs {
    pub path: Option<String>,
    pub patch: Option<String>,
    pub target: Option<Selector>,
    #[serde(default)]
    pub options: BTreeMap<String, bool>,
}

#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Selector {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ImageArgs {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
    pub tag_suffix: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ReplicaArgs {
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VarArgs {
    pub name: String,
    #[serde(rename = "objref")]
    pub obj_ref: VarTarget,
    #[serde(rename = "fieldref")]
    pub field_ref: Option<FieldRef>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VarTarget {
    pub api_version: Option<String>,
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FieldRef {
    #[serde(alias = "fieldpath")]
    pub field_path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ReplacementEntry {
    Path { path: String },
    Inline(Value),
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SortOptions {
    pub order: Option<String>,
    pub legacy_sort_options: Option<LegacySortOptions>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LegacySortOptions {
    #[serde(default)]
    pub order_first: Vec<String>,
    #[serde(default)]
    pub order_last: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GeneratorArgs {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub behavior: Option<String>,
    #[serde(default)]
    pub literals: Vec<String>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub envs: Vec<String>,
    pub env: Option<String>,
    pub options: Option<GeneratorOptions>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GeneratorOptions {
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub disable_name_suffix_hash: Option<bool>,
    pub immutable: Option<bool>,
}

const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "vars",
    "sortOptions",
    "resources",
    "components",
    "crds",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "helmGlobals",
    "helmCharts",
    "helmChartInflationGenerator",
    "generatorOptions",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
];

pub(crate) const FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Parse a kustomization document; on failure, find the offending top-level field so the
/// error names it.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Kustomization, Error> {
    let docs = crate::yaml::parse_yaml11(text).map_err(|source| Error::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    let doc = match docs.len() {
        0 => {
            return Err(Error::Kustomization {
                path: path.to_path_buf(),
                message: "the kustomization file is empty".into(),
            });
        }
        1 => docs.into_iter().next().unwrap_or(Value::Null),
        n => {
            return Err(Error::Kustomization {
                path: path.to_path_buf(),
                message: format!("expected one YAML document, found {n}"),
            });
        }
    };
    let Value::Object(raw) = doc else {
        return Err(Error::Kustomization {
            path: path.to_path_buf(),
            message: "expected a mapping at the top level".into(),
        });
    };
    // Kustomize decodes with Go's encoding/json, which matches field names case-insensitively
    // (`patchesJSON6902` is `patchesJson6902`).
    let mut map = serde_json::Map::new();
    for (key, value) in raw {
        let canonical = KNOWN_FIELDS
            .iter()
            .find(|f| f.eq_ignore_ascii_case(&key))
            .map_or(key, |f| (*f).to_string());
        map.insert(canonical, value);
    }
    let doc = Value::Object(map.clone());
    let map = &map;
    match serde_json::from_value::<Kustomization>(doc.clone()) {
        Ok(k) => {
            if let Some(kind) = &k.kind
                && kind != "Kustomization"
                && kind != "Component"
            {
                return Err(crate::error::field_err(
                    path,
                    "kind",
                    format!("unexpected kind {kind:?}, expected Kustomization or Component"),
                ));
            }
            let (kind, want) = match k.kind.as_deref() {
                Some("Component") => ("Component", "kustomize.config.k8s.io/v1alpha1"),
                _ => ("Kustomization", "kustomize.config.k8s.io/v1beta1"),
            };
            if let Some(api) = k.api_version.as_deref()
                && !api.is_empty()
                && api != want
            {
                return Err(crate::error::field_err(
                    path,
                    "apiVersion",
                    format!("apiVersion for {kind} should be {want}, found {api:?}"),
                ));
            }
            Ok(k)
        }
        Err(whole) => {
            for (key, value) in map {
                let mut single = serde_json::Map::new();
                single.insert(key.clone(), value.clone());
                if let Err(e) = serde_json::from_value::<Kustomization>(Value::Object(single)) {
                    let message = e.to_string();
                    let mut probe = serde_json::Map::new();
                    probe.insert(key.clone(), Value::Null);
                    let known =
                        serde_json::from_value::<Kustomization>(Value::Object(probe)).is_ok();
                    if !known {
                        return Err(Error::Kustomization {
                            path: path.to_path_buf(),
                            message: format!("unknown field {key:?}"),
                        });
                    }
                    return Err(crate::error::field_err(path, key, message));
                }
            }
            Err(Error::Kustomization {
                path: path.to_path_buf(),
                message: whole.to_string(),
            })
        }
    }
}
