//! Field specs: "this path in objects of this kind" — the configuration that tells each builtin
//! transformer where to act. Defaults come from Kustomize's tables (data/default_fieldspecs.yaml);
//! `configurations:` and `crds:` add to them.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::resource::Gvk;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FieldSpec {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub create: bool,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NameBackRef {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub field_specs: Vec<FieldSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TransformerConfig {
    #[serde(default)]
    pub name_prefix: Vec<FieldSpec>,
    #[serde(default)]
    pub name_suffix: Vec<FieldSpec>,
    #[serde(default)]
    pub name_space: Vec<FieldSpec>,
    #[serde(default, alias = "namespace")]
    pub namespace: Vec<FieldSpec>,
    #[serde(default)]
    pub common_labels: Vec<FieldSpec>,
    #[serde(default)]
    pub template_labels: Vec<FieldSpec>,
    #[serde(default)]
    pub labels: Vec<FieldSpec>,
    #[serde(default)]
    pub common_annotations: Vec<FieldSpec>,
    #[serde(default)]
    pub name_reference: Vec<NameBackRef>,
    #[serde(default)]
    pub var_reference: Vec<FieldSpec>,
    #[serde(default)]
    pub images: Vec<FieldSpec>,
    #[serde(default)]
    pub replicas: Vec<FieldSpec>,
}

const DEFAULTS: &str = include_str!("data/default_fieldspecs.yaml");

impl TransformerConfig {
    pub(crate) fn defaults() -> Result<Self, String> {
        let docs = crate::yaml::parse_raw(DEFAULTS).map_err(|e| e.to_string())?;
        let doc = docs.into_iter().next().unwrap_or(Value::Null);
        serde_json::from_value(doc).map_err(|e| format!("builtin field specs: {e}"))
    }

    /// Kustomize's config merge: append specs not already present; name references to the same
    /// kind get their field specs merged.
    pub(crate) fn merge(&mut self, other: TransformerConfig) {
        fn add(to: &mut Vec<FieldSpec>, from: Vec<FieldSpec>) {
            for fs in from {
                if !to.contains(&fs) {
                    to.push(fs);
                }
            }
        }
        add(&mut self.name_prefix, other.name_prefix);
        add(&mut self.name_suffix, other.name_suffix);
        add(&mut self.namespace, other.name_space);
        add(&mut self.namespace, other.namespace);
        add(&mut self.common_labels, other.common_labels);
        add(&mut self.template_labels, other.template_labels);
        add(&mut self.labels, other.labels);
        add(&mut self.common_annotations, other.common_annotations);
        add(&mut self.var_reference, other.var_reference);
        add(&mut self.images, other.images);
        add(&mut self.replicas, other.replicas);
        for nb in other.name_reference {
            if let Some(existing) = self
                .name_reference
                .iter_mut()
                .find(|e| e.kind == nb.kind && e.group == nb.group && e.version == nb.version)
            {
                add(&mut existing.field_specs, nb.field_specs);
            } else {
                self.name_reference.push(nb);
            }
        }
    }
}

impl FieldSpec {
    pub(crate) fn new(path: &str, create: bool) -> Self {
        FieldSpec {
            path: path.into(),
            create,
            ..Default::default()
        }
    }

    pub(crate) fn matches(&self, gvk: &Gvk) -> bool {
        (self.group.is_empty() || self.group == gvk.group)
            && (self.version.is_empty() || self.version == gvk.version)
            && (self.kind.is_empty() || self.kind == gvk.kind)
    }

    pub(crate) fn segments(&self) -> Vec<String> {
        split_path(&self.path)
    }
}

/// Split a kustomize field path on `/`, honouring `\/` escapes.
pub(crate) fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'/') {
            cur.push('/');
            chars.next();
        } else if c == '/' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// What to put at a missing final field when the spec says `create`.
#[derive(Clone, Copy)]
pub(crate) enum Create {
    Map,
    Scalar,
}

/// Visit every field `segments` addresses in `obj` (sequences are walked element by element),
/// creating missing maps along the way when `create` is set.
pub(crate) fn visit(
    obj: &mut Value,
    segments: &[String],
    create: Option<Create>,
    f: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let Some((first, rest)) = segments.split_first() else {
        return f(obj);
    };
    let (key, is_seq) = match first.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (first.as_str(), false),
    };
    match obj {
        Value::Array(items) => {
            for item in items {
                visit(item, segments, create, f)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            let missing = map.get(key).is_none_or(Value::is_null);
            if missing {
                let Some(kind) = create else { return Ok(()) };
                if is_seq || rest.iter().any(|r| r.ends_with("[]")) {
                    return Ok(());
                }
                let fresh = if rest.is_empty() {
                    match kind {
                        Create::Map => Value::Object(Map::new()),
                        Create::Scalar => Value::Null,
                    }
                } else {
                    Value::Object(Map::new())
                };
                map.insert(key.to_string(), fresh);
            }
            let Some(child) = map.get_mut(key) else {
                return Ok(());
            };
            visit(child, rest, create, f)
        }
        _ => Ok(()),
    }
}

/// Apply `f` to every field any of `specs` addresses in a resource of kind `gvk`.
pub(crate) fn apply_specs(
    obj: &mut Value,
    gvk: &Gvk,
    specs: &[FieldSpec],
    create_kind: Create,
    f: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    for fs in specs {
        if !fs.matches(gvk) {
            continue;
        }
        let create = fs.create.then_some(create_kind);
        visit(obj, &fs.segments(), create, f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_split_on_unescaped_slashes() {
        assert_eq!(
            split_path("metadata/annotations/a\\/b"),
            vec!["metadata", "annotations", "a/b"]
        );
    }

    #[test]
    fn visit_walks_lists_and_creates_maps() {
        let mut obj = json!({"spec": {"containers": [{"image": "a"}, {"image": "b"}]}});
        let mut seen = Vec::new();
        let segs = split_path("spec/containers[]/image");
        let r = visit(&mut obj, &segs, None, &mut |v| {
            seen.push(v.clone());
            Ok(())
        });
        assert_eq!(r, Ok(()));
        assert_eq!(seen, vec![json!("a"), json!("b")]);
        let r = visit(
            &mut obj,
            &split_path("metadata/labels"),
            Some(Create::Map),
            &mut |_| Ok(()),
        );
        assert_eq!(r, Ok(()));
        assert_eq!(obj.pointer("/metadata/labels"), Some(&json!({})));
    }

    #[test]
    fn defaults_load() {
        let cfg = TransformerConfig::defaults();
        assert!(
            cfg.as_ref()
                .is_ok_and(|c| !c.name_reference.is_empty() && !c.common_labels.is_empty())
        );
    }
}
