//! Argo CD's `spec.source.kustomize` overrides. Argo CD applies them by running
//! `kustomize edit set/add …` on the top kustomization before building; here they edit the parsed
//! top-level kustomization the same way, without touching the file.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Error;
use crate::error::field_err;
use crate::kustomization::{ImageArgs, Kustomization, PatchArgs, ReplicaArgs, Selector};

/// An image override, as in `kustomize edit set image`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    /// The image name to match in resources.
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
}

impl Image {
    /// Parse Argo CD's image syntax: `[old=]name[:tag|@digest]`, e.g. `nginx=registry/nginx:1.2`,
    /// `nginx:1.25`, `app@sha256:…`.
    pub fn parse(spec: &str) -> Result<Image, String> {
        let (old, new) = match spec.split_once('=') {
            Some((o, n)) => (Some(o.to_string()), n),
            None => (None, spec),
        };
        if new.is_empty() {
            return Err(format!("invalid image override {spec:?}"));
        }
        let (name, tag, digest) = if let Some((n, d)) = new.split_once('@') {
            (n.to_string(), None, Some(d.to_string()))
        } else {
            let slash = new.rfind('/').map_or(0, |i| i + 1);
            match new[slash..].find(':') {
                Some(c) => (
                    new[..slash + c].to_string(),
                    Some(new[slash + c + 1..].to_string()),
                    None,
                ),
                None => (new.to_string(), None, None),
            }
        };
        Ok(match old {
            Some(old) => Image {
                name: old,
                new_name: Some(name),
                new_tag: tag,
                digest,
            },
            None => Image {
                name,
                new_name: None,
                new_tag: tag,
                digest,
            },
        })
    }
}

/// A patch override (Argo CD `spec.source.kustomize.patches`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// Inline patch (strategic merge or JSON 6902).
    pub patch: Option<String>,
    /// Patch file, relative to the kustomization directory.
    pub path: Option<String>,
    pub target: Option<PatchTarget>,
    pub options: BTreeMap<String, bool>,
}

/// Selects the objects a [`Patch`] applies to (regular expressions, like kustomize).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchTarget {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

/// Overrides applied on top of the kustomization being built.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub namespace: Option<String>,
    pub images: Vec<Image>,
    pub common_labels: BTreeMap<String, String>,
    /// Overwrite labels already set by the kustomization instead of failing.
    pub force_common_labels: bool,
    pub common_annotations: BTreeMap<String, String>,
    /// Overwrite annotations already set by the kustomization instead of failing.
    pub force_common_annotations: bool,
    /// (name, count) pairs, like `kustomize edit set replicas`.
    pub replicas: Vec<(String, i64)>,
    pub patches: Vec<Patch>,
    /// Component directories, relative to the kustomization directory.
    pub components: Vec<String>,
}

impl Overrides {
    pub(crate) fn apply(&self, k: &mut Kustomization, file: &Path) -> Result<(), Error> {
        if let Some(p) = &self.name_prefix {
            k.name_prefix = Some(p.clone());
        }
        if let Some(s) = &self.name_suffix {
            k.name_suffix = Some(s.clone());
        }
        if let Some(ns) = &self.namespace {
            k.namespace = Some(ns.clone());
        }
        for img in &self.images {
            let images = k.images.get_or_insert_with(Vec::new);
            let args = ImageArgs {
                name: img.name.clone(),
                new_name: img.new_name.clone(),
                new_tag: img.new_tag.clone(),
                digest: img.digest.clone(),
                tag_suffix: None,
            };
            match images.iter_mut().find(|i| i.name == img.name) {
                Some(existing) => *existing = args,
                None => images.push(args),
            }
        }
        merge_map(
            &mut k.common_labels,
            &self.common_labels,
            self.force_common_labels,
            file,
            "commonLabels",
        )?;
        merge_map(
            &mut k.common_annotations,
            &self.common_annotations,
            self.force_common_annotations,
            file,
            "commonAnnotations",
        )?;
        for (name, count) in &self.replicas {
            let replicas = k.replicas.get_or_insert_with(Vec::new);
            match replicas.iter_mut().find(|r| &r.name == name) {
                Some(r) => r.count = *count,
                None => replicas.push(ReplicaArgs {
                    name: name.clone(),
                    count: *count,
                }),
            }
        }
        for p in &self.patches {
            k.patches.get_or_insert_with(Vec::new).push(PatchArgs {
                path: p.path.clone(),
                patch: p.patch.clone(),
                target: p.target.as_ref().map(|t| Selector {
                    group: t.group.clone(),
                    version: t.version.clone(),
                    kind: t.kind.clone(),
                    name: t.name.clone(),
                    namespace: t.namespace.clone(),
                    label_selector: t.label_selector.clone(),
                    annotation_selector: t.annotation_selector.clone(),
                }),
                options: p.options.clone(),
            });
        }
        for c in &self.components {
            let components = k.components.get_or_insert_with(Vec::new);
            if !components.contains(c) {
                components.push(c.clone());
            }
        }
        Ok(())
    }
}

fn merge_map(
    into: &mut Option<BTreeMap<String, String>>,
    from: &BTreeMap<String, String>,
    force: bool,
    file: &Path,
    field: &str,
) -> Result<(), Error> {
    if from.is_empty() {
        return Ok(());
    }
    let map = into.get_or_insert_with(BTreeMap::new);
    for (key, value) in from {
        if !force && map.get(key).is_some_and(|v| v != value) {
            return Err(field_err(
                file,
                field,
                format!(
                    "override {key:?} is already set by the kustomization (force it to overwrite)"
                ),
            ));
        }
        map.insert(key.clone(), value.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_argo_image_overrides() {
        assert_eq!(
            Image::parse("nginx=registry:5000/nginx:1.2"),
            Ok(Image {
                name: "nginx".into(),
                new_name: Some("registry:5000/nginx".into()),
                new_tag: Some("1.2".into()),
                digest: None
            })
        );
        assert_eq!(
            Image::parse("app@sha256:abc"),
            Ok(Image {
                name: "app".into(),
                new_name: None,
                new_tag: None,
                digest: Some("sha256:abc".into())
            })
        );
        assert!(Image::parse("x=").is_err());
    }
}
