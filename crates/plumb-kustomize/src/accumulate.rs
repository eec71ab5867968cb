//! The build itself: load a kustomization, accumulate its resources (recursing into bases and
//! components), run generators and transformers in kustomize's order, then the final steps that
//! only the top level does (hash suffixes, name references, vars, sorting, build metadata).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::field_err;
use crate::fieldspec::TransformerConfig;
use crate::kustomization::{self, Kustomization, VarArgs};
use crate::loader::Loader;
use crate::resource::Resource;
use crate::{Error, generators, hash, nameref, patch, replacements, sort, transformers, vars};

pub(crate) struct Acc {
    pub resources: Vec<Resource>,
    pub config: TransformerConfig,
    pub vars: Vec<VarArgs>,
}

/// Where a kustomization sits, for error messages and origin annotations.
pub(crate) struct Target<'a> {
    pub dir: PathBuf,
    pub file: PathBuf,
    pub k: Kustomization,
    /// Path of `dir` relative to the top build directory (for origin annotations).
    pub rel: String,
    pub loader: &'a Loader,
    pub origins: bool,
}

pub(crate) fn build_top(
    loader: &Loader,
    dir: &Path,
    overrides: &crate::Overrides,
    generated: Option<&[String]>,
) -> Result<Vec<Value>, Error> {
    let dir = loader.resolve_dir(dir)?;
    let (mut k, file) = match generated {
        // What Flux does for a path without a kustomization file: one listing the resources.
        Some(resources) => (
            Kustomization {
                resources: Some(resources.to_vec()),
                ..Default::default()
            },
            dir.join(kustomization::FILE_NAMES[0]),
        ),
        None => load_kustomization(loader, &dir)?,
    };
    overrides.apply(&mut k, &file)?;
    if let Some(openapi) = &k.openapi {
        match openapi.get("path").and_then(Value::as_str) {
            Some(p) => {
                let path = loader.resolve_file(&dir, p)?;
                let text = loader.read_string(&path)?;
                let schema = crate::openapi::CustomSchema::parse(&text)
                    .map_err(|m| field_err(&file, "openapi", format!("{p}: {m}")))?;
                loader.set_custom_schema(schema);
            }
            None if openapi.get("version").is_some() => {}
            None => {
                return Err(field_err(
                    &file,
                    "openapi",
                    "expected `path:` (or `version:`)",
                ));
            }
        }
    }
    let build_meta = k.build_metadata.clone().unwrap_or_default();
    for b in &build_meta {
        if !matches!(
            b.as_str(),
            "originAnnotations" | "transformerAnnotations" | "managedByLabel"
        ) {
            return Err(field_err(
                &file,
                "buildMetadata",
                format!("unknown option {b:?}"),
            ));
        }
    }
    let origins = !build_meta.is_empty();
    let sort_options = k.sort_options.clone();
    let mut stack = vec![dir.clone()];
    let target = Target {
        dir: dir.clone(),
        file: file.clone(),
        k,
        rel: String::new(),
        loader,
        origins,
    };
    let mut acc = Acc {
        resources: Vec::new(),
        config: TransformerConfig::defaults().map_err(|m| Error::Load {
            path: file.clone(),
            message: m,
        })?,
        vars: Vec::new(),
    };
    accumulate(&target, &mut acc, &mut stack)?;
    hash::add_hash_suffixes(&mut acc.resources)?;
    nameref::fix(&mut acc.resources, &acc.config)?;
    vars::resolve(&mut acc.resources, &acc.vars, &acc.config)?;
    sort::sort(&mut acc.resources, sort_options.as_ref(), &file)?;
    let want_origin = build_meta.iter().any(|b| b == "originAnnotations");
    let want_transform = build_meta.iter().any(|b| b == "transformerAnnotations");
    let mut out = Vec::with_capacity(acc.resources.len());
    for r in acc.resources {
        out.push(finish(
            r,
            want_origin,
            want_transform,
            build_meta.iter().any(|b| b == "managedByLabel"),
        ));
    }
    Ok(out)
}

fn finish(mut r: Resource, origin: bool, transform: bool, managed: bool) -> Value {
    let origin_text = r.origin.as_ref().map(origin_yaml);
    let transform_text = if r.transformations.is_empty() {
        None
    } else {
        let mut text = String::new();
        for t in &r.transformations {
            let item = origin_yaml(t);
            for (i, line) in item.lines().enumerate() {
                text.push_str(if i == 0 { "- " } else { "  " });
                text.push_str(line);
                text.push('\n');
            }
        }
        Some(text)
    };
    if let Some(meta) = r.metadata_mut() {
        // Kustomize rewrites annotations at the end (removing its internal ones), which drops
        // an empty or null annotations map.
        if meta
            .get("annotations")
            .is_some_and(|a| a.is_null() || a.as_object().is_some_and(|m| m.is_empty()))
        {
            meta.remove("annotations");
        }
        if origin && let Some(text) = origin_text {
            insert_annotation(meta, "config.kubernetes.io/origin", text);
        }
        if transform && let Some(text) = transform_text {
            insert_annotation(meta, "alpha.config.kubernetes.io/transformations", text);
        }
        if managed {
            let labels = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(l) = labels {
                l.insert(
                    "app.kubernetes.io/managed-by".into(),
                    Value::String("kustomize-v5.5.0".into()),
                );
            }
        }
    }
    r.obj
}

fn insert_annotation(meta: &mut serde_json::Map<String, Value>, key: &str, value: String) {
    let a = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    if !a.is_object() {
        *a = Value::Object(Default::default());
    }
    if let Value::Object(m) = a {
        m.insert(key.to_string(), Value::String(value));
    }
}

/// The origin annotation keeps kustomize's field order (path/repo/ref, configuredIn, configuredBy).
fn origin_yaml(origin: &Value) -> String {
    let mut out = String::new();
    if let Some(p) = origin.get("path").and_then(Value::as_str) {
        out.push_str(&format!("path: {p}\n"));
    }
    if let Some(p) = origin.get("configuredIn").and_then(Value::as_str) {
        out.push_str(&format!("configuredIn: {p}\n"));
    }
    if let Some(by) = origin.get("configuredBy") {
        out.push_str("configuredBy:\n");
        for key in ["apiVersion", "kind", "name"] {
            if let Some(v) = by.get(key).and_then(Value::as_str) {
                out.push_str(&format!("  {key}: {v}\n"));
            }
        }
    }
    out
}

/// Build a kustomization directory listed under `generators:`/`transformers:`; its resources
/// are plugin configs. Cycles through such directories are refused.
pub(crate) fn plugin_configs_from_dir(t: &Target<'_>, dir: &Path) -> Result<Vec<Value>, Error> {
    let _guard = t.loader.enter_plugin_dir(dir)?;
    let (k, file) = load_kustomization(t.loader, dir)?;
    let sub = Target {
        dir: dir.to_path_buf(),
        file,
        k,
        rel: String::new(),
        loader: t.loader,
        origins: false,
    };
    let mut acc = Acc {
        resources: Vec::new(),
        config: TransformerConfig::defaults().map_err(|m| Error::Load {
            path: dir.to_path_buf(),
            message: m,
        })?,
        vars: Vec::new(),
    };
    accumulate(&sub, &mut acc, &mut vec![dir.to_path_buf()])?;
    Ok(acc.resources.into_iter().map(|r| r.obj).collect())
}

pub(crate) fn load_kustomization(
    loader: &Loader,
    dir: &Path,
) -> Result<(Kustomization, PathBuf), Error> {
    for name in kustomization::FILE_NAMES {
        let candidate = dir.join(name);
        if candidate.is_file() {
            let file = loader.resolve_file(dir, name)?;
            let text = loader.read_string(&file)?;
            let k = kustomization::parse(&candidate, &text)?;
            return Ok((k, candidate));
        }
    }
    Err(Error::Load {
        path: dir.to_path_buf(),
        message: "unable to find one of 'kustomization.yaml', 'kustomization.yml' or \
                  'Kustomization' in directory"
            .into(),
    })
}

fn accumulate(t: &Target<'_>, acc: &mut Acc, stack: &mut Vec<PathBuf>) -> Result<(), Error> {
    t.loader.check_time()?;
    if stack.len() > t.loader.options().max_depth {
        return Err(Error::Limit(format!(
            "kustomizations nested deeper than {} levels at {}",
            t.loader.options().max_depth,
            t.dir.display()
        )));
    }
    check_unsupported(t)?;
    let mut resources = t.k.resources.clone().unwrap_or_default();
    resources.extend(t.k.bases.clone().unwrap_or_default());
    for entry in &resources {
        accumulate_entry(t, acc, stack, entry, false)
            .map_err(|e| e.context(format!("accumulating resources from '{entry}'")))?;
    }
    for c in t.k.configurations.clone().unwrap_or_default() {
        let path = t.loader.resolve_file(&t.dir, &c)?;
        let text = t.loader.read_string(&path)?;
        let doc = crate::yaml::parse_raw(&text)
            .map_err(|source| Error::Yaml {
                path: path.clone(),
                source,
            })?
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        let cfg: TransformerConfig = serde_json::from_value(doc)
            .map_err(|e| field_err(&t.file, "configurations", format!("{c}: {e}")))?;
        acc.config.merge(cfg);
    }
    for c in t.k.crds.clone().unwrap_or_default() {
        let path = t.loader.resolve_file(&t.dir, &c)?;
        let text = t.loader.read_string(&path)?;
        let cfg = transformers::config_from_crd(&text)
            .map_err(|m| field_err(&t.file, "crds", format!("{c}: {m}")))?;
        acc.config.merge(cfg);
    }
    generators::run(t, acc)?;
    // Kustomize applies components after this kustomization's generators and before its
    // transformers.
    for entry in t.k.components.clone().unwrap_or_default() {
        accumulate_entry(t, acc, stack, &entry, true)
            .map_err(|e| e.context(format!("accumulating components from '{entry}'")))?;
    }
    transformers::run_builtin(t, acc)?;
    for v in t.k.vars.clone().unwrap_or_default() {
        if acc.vars.iter().any(|x| x.name == v.name) {
            return Err(field_err(
                &t.file,
                "vars",
                format!("var '{}' already encountered", v.name),
            ));
        }
        acc.vars.push(v);
    }
    Ok(())
}

fn check_unsupported(t: &Target<'_>) -> Result<(), Error> {
    let k = &t.k;
    let unsupported = [
        (
            "helmCharts",
            k.helm_charts.is_some(),
            "Helm chart inflation is not available in plumb's kustomize yet",
        ),
        (
            "helmChartInflationGenerator",
            k.helm_chart_inflation_generator.is_some(),
            "Helm chart inflation is not available in plumb's kustomize yet",
        ),
        (
            "helmGlobals",
            k.helm_globals.is_some(),
            "Helm chart inflation is not available in plumb's kustomize yet",
        ),
        (
            "validators",
            k.validators.as_ref().is_some_and(|v| !v.is_empty()),
            "validator plugins would run external code",
        ),
    ];
    for (field, present, reason) in unsupported {
        if present {
            return Err(Error::Unsupported {
                path: t.file.clone(),
                field: field.into(),
                reason: reason.into(),
            });
        }
    }
    Ok(())
}

fn accumulate_entry(
    t: &Target<'_>,
    acc: &mut Acc,
    stack: &mut Vec<PathBuf>,
    entry: &str,
    component: bool,
) -> Result<(), Error> {
    let path = t.loader.resolve(&t.dir, entry)?;
    let rel = join_rel(&t.rel, entry);
    if path.is_dir() {
        if let Some(pos) = stack.iter().position(|p| p == &path) {
            let chain: Vec<String> = stack[pos..]
                .iter()
                .chain(std::iter::once(&path))
                .map(|p| p.display().to_string())
                .collect();
            return Err(Error::Cycle {
                path: path.clone(),
                chain: chain.join(" -> "),
            });
        }
        let (k, file) = load_kustomization(t.loader, &path)?;
        let is_component = k.kind.as_deref() == Some("Component");
        if component && !is_component {
            return Err(field_err(
                &t.file,
                "components",
                format!("{entry}: expected kind Component, found a Kustomization"),
            ));
        }
        if !component && is_component {
            return Err(field_err(
                &t.file,
                "resources",
                format!("{entry}: a Component must be listed under components, not resources"),
            ));
        }
        let sub = Target {
            dir: path.clone(),
            file,
            k,
            rel,
            loader: t.loader,
            origins: t.origins,
        };
        stack.push(path);
        let result = if component {
            accumulate(&sub, acc, stack)
        } else {
            let mut sub_acc = Acc {
                resources: Vec::new(),
                config: acc.config.clone(),
                vars: Vec::new(),
            };
            accumulate(&sub, &mut sub_acc, stack).and_then(|()| {
                append_all(acc, sub_acc.resources, &t.file, entry)?;
                acc.config.merge(sub_acc.config);
                for v in sub_acc.vars {
                    if acc.vars.iter().any(|x| x.name == v.name) {
                        return Err(field_err(
                            &t.file,
                            "vars",
                            format!("var '{}' already encountered", v.name),
                        ));
                    }
                    acc.vars.push(v);
                }
                Ok(())
            })
        };
        stack.pop();
        return result;
    }
    if component {
        return Err(field_err(
            &t.file,
            "components",
            format!("{entry}: components must be directories"),
        ));
    }
    t.loader.check_file_in(&t.dir, &path)?;
    let text = t.loader.read_string(&path)?;
    let docs = crate::yaml::parse_stream(&text).map_err(|source| Error::Yaml {
        path: path.clone(),
        source,
    })?;
    let mut batch = Vec::with_capacity(docs.len());
    for doc in docs {
        batch.push(new_resource(doc, &path, t.origins.then(|| rel.clone()))?);
    }
    append_all(acc, batch, &t.file, entry)
}

pub(crate) fn new_resource(
    doc: Value,
    path: &Path,
    origin_path: Option<String>,
) -> Result<Resource, Error> {
    if !doc.is_object() {
        return Err(Error::Load {
            path: path.to_path_buf(),
            message: "expected each YAML document to be a mapping".into(),
        });
    }
    if doc
        .get("kind")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(Error::Load {
            path: path.to_path_buf(),
            message: "missing kind in a resource".into(),
        });
    }
    let mut r = Resource::new(doc);
    if r.name().is_empty() {
        return Err(Error::Load {
            path: path.to_path_buf(),
            message: format!("missing metadata.name in a {} resource", r.gvk().kind),
        });
    }
    if let Some(p) = origin_path {
        r.origin = Some(serde_json::json!({ "path": p }));
    }
    Ok(r)
}

/// Add resources, refusing any whose current id is already present (one id set per batch).
pub(crate) fn append_all(
    acc: &mut Acc,
    batch: Vec<Resource>,
    file: &Path,
    entry: &str,
) -> Result<(), Error> {
    let key = |r: &Resource| {
        let g = r.gvk();
        (
            g.group,
            g.version,
            g.kind,
            r.name().to_string(),
            r.namespace().to_string(),
        )
    };
    let mut seen: std::collections::HashSet<_> = acc.resources.iter().map(key).collect();
    for r in batch {
        if !seen.insert(key(&r)) {
            return Err(duplicate(&r, file, entry));
        }
        acc.resources.push(r);
    }
    Ok(())
}

fn duplicate(r: &Resource, file: &Path, entry: &str) -> Error {
    field_err(
        file,
        "resources",
        format!(
            "merging resources from '{entry}': may not add resource with an already \
             registered id: {}",
            r.id_display()
        ),
    )
}

/// Add a resource, refusing a second one with the same current id.
pub(crate) fn append(acc: &mut Acc, r: Resource, file: &Path, entry: &str) -> Result<(), Error> {
    let gvk = r.gvk();
    if acc
        .resources
        .iter()
        .any(|x| x.gvk() == gvk && x.name() == r.name() && x.namespace() == r.namespace())
    {
        return Err(field_err(
            file,
            "resources",
            format!(
                "merging resources from '{entry}': may not add resource with an already \
                 registered id: {}",
                r.id_display()
            ),
        ));
    }
    acc.resources.push(r);
    Ok(())
}

pub(crate) fn join_rel(base: &str, entry: &str) -> String {
    let joined = if base.is_empty() {
        PathBuf::from(entry)
    } else {
        Path::new(base).join(entry)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                if parts.last().is_some_and(|p| p != "..") {
                    parts.pop();
                } else {
                    parts.push("..".into());
                }
            }
            std::path::Component::CurDir => {}
            other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    parts.join("/")
}

pub(crate) use patch::run_patches;
pub(crate) use replacements::run as run_replacements;
