//! Helm chart sources, with Argo CD's `spec.source.helm` options.
//!
//! Value files and file parameters are resolved relative to the chart and must stay inside the
//! repository after symlink resolution (Argo CD's CVE-2022-24348 read files outside through
//! `valueFiles`). In a multi-source application, `$<ref>/path` names a file of the source with
//! that `ref`, relative to its root and confined to its checkout. Remote value files are not
//! supported yet and say so.

use crate::{Error, RenderContext, ValueRefs, relative};
use plumb_core::manifest::Manifest;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn invalid(field: &str, problem: String) -> Error {
    Error::HelmOption {
        field: field.to_string(),
        problem,
    }
}

/// Resolves a path given in the Application relative to the chart, confined to the root; a
/// `$<ref>/path` relative to the root of the source with that ref, confined to its checkout.
fn confined(
    root: &Path,
    chart: &Path,
    field: &str,
    given: &str,
    refs: Option<&ValueRefs>,
) -> Result<Option<PathBuf>, Error> {
    if given.contains("://") {
        return Err(invalid(
            field,
            format!("{given:?}: remote value files are not supported yet"),
        ));
    }
    if let Some(rest) = given.strip_prefix('$') {
        let Some(refs) = refs else {
            return Err(invalid(
                field,
                format!(
                    "{given:?}: $ref value files need spec.sources (a multi-source application)"
                ),
            ));
        };
        let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(ref_root) = refs.get(name) else {
            return Err(invalid(
                field,
                format!("{given:?}: no source has ref {name:?}"),
            ));
        };
        let ref_root = ref_root.canonicalize().map_err(|source| Error::Read {
            path: format!("${name}"),
            source,
        })?;
        return match ref_root.join(path.trim_start_matches('/')).canonicalize() {
            Ok(resolved) if resolved.starts_with(&ref_root) => Ok(Some(resolved)),
            Ok(_) => Err(invalid(
                field,
                format!("{given:?} leads outside the source with ref {name:?}"),
            )),
            Err(_) => Ok(None),
        };
    }
    let path = if Path::new(given).is_absolute() {
        root.join(given.trim_start_matches('/'))
    } else {
        chart.join(given)
    };
    match path.canonicalize() {
        Ok(resolved) if resolved.starts_with(root) => Ok(Some(resolved)),
        Ok(_) => Err(invalid(
            field,
            format!("{given:?} leads outside the repository"),
        )),
        Err(_) => Ok(None),
    }
}

fn strings(helm: &Value, field: &str) -> Vec<String> {
    helm.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Deep-merges `overlay` into `base` (maps merge, everything else replaces): how Helm merges
/// values.
pub fn merge_values(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_values(existing, value)
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Builds `helm template` options from `spec.source.helm`.
fn options(
    root: &Path,
    chart: &Path,
    helm: &Value,
    context: &RenderContext,
    refs: Option<&ValueRefs>,
) -> Result<plumb_helm::TemplateOptions, Error> {
    let mut options = plumb_helm::TemplateOptions {
        release_name: helm
            .get("releaseName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or(Some(context.app_name.as_str()).filter(|s| !s.is_empty()))
            .unwrap_or("release-name")
            .to_string(),
        namespace: helm
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or(Some(context.namespace.as_str()).filter(|s| !s.is_empty()))
            .unwrap_or("default")
            .to_string(),
        include_crds: helm.get("skipCrds").and_then(Value::as_bool) != Some(true),
        skip_tests: helm.get("skipTests").and_then(Value::as_bool) == Some(true),
        kube_version: helm
            .get("kubeVersion")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(context.kube_version.clone()),
        api_versions: strings(helm, "apiVersions"),
        base_dir: Some(chart.to_path_buf()),
        value_roots: refs.into_iter().flat_map(|r| r.values().cloned()).collect(),
        ..Default::default()
    };
    let ignore_missing = helm.get("ignoreMissingValueFiles").and_then(Value::as_bool) == Some(true);
    for file in strings(helm, "valueFiles") {
        match confined(root, chart, "valueFiles", &file, refs)? {
            Some(path) => options.values_files.push(path),
            None if ignore_missing => {}
            None => {
                return Err(invalid(
                    "valueFiles",
                    format!("{file:?} does not exist in the repository"),
                ));
            }
        }
    }
    let mut values = Value::Null;
    match helm.get("values") {
        Some(Value::String(text)) if !text.trim().is_empty() => {
            let parsed: Value = serde_saphyr::from_str(text)
                .map_err(|e| invalid("values", format!("invalid YAML: {e}")))?;
            merge_values(&mut values, parsed);
        }
        Some(object @ Value::Object(_)) => merge_values(&mut values, object.clone()),
        _ => {}
    }
    if let Some(object) = helm.get("valuesObject").filter(|v| v.is_object()) {
        merge_values(&mut values, object.clone());
    }
    if !values.is_null() {
        options.values = Some(values);
    }
    for parameter in helm
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = parameter.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            return Err(invalid("parameters", "a parameter needs a name".into()));
        }
        let value = match parameter.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        if parameter.get("forceString").and_then(Value::as_bool) == Some(true) {
            options.set_string.push(format!("{name}={value}"));
        } else {
            options.set.push(format!("{name}={value}"));
        }
    }
    for parameter in helm
        .get("fileParameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = parameter.get("name").and_then(Value::as_str).unwrap_or("");
        let path = parameter.get("path").and_then(Value::as_str).unwrap_or("");
        let resolved = confined(root, chart, "fileParameters", path, refs)?.ok_or_else(|| {
            invalid(
                "fileParameters",
                format!("{path:?} does not exist in the repository"),
            )
        })?;
        options
            .set_file
            .push(format!("{name}={}", resolved.display()));
    }
    Ok(options)
}

fn is_test_hook(object: &Value) -> bool {
    let hooks = object
        .pointer("/metadata/annotations/helm.sh~1hook")
        .and_then(Value::as_str)
        .unwrap_or("");
    !hooks.is_empty() && hooks.split(',').all(|h| h.trim().starts_with("test"))
}

/// What happens to a chart's test hooks (`helm.sh/hook: test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestHooks {
    /// Left out, as Argo CD leaves them out.
    Drop,
    /// Kept, for a controller that runs `helm test` (Flux's `spec.test`).
    Keep,
}

/// Renders the chart in `chart` (already confined to `root`), without its test hooks.
pub fn render_chart(
    root: &Path,
    chart: &Path,
    helm: Option<&Value>,
    context: &RenderContext,
) -> Result<Vec<Manifest>, Error> {
    render_chart_with_refs(root, chart, helm, context, None, TestHooks::Drop)
}

/// [`render_chart`], keeping or dropping the test hooks as `tests` says.
pub fn render_chart_with_tests(
    root: &Path,
    chart: &Path,
    helm: Option<&Value>,
    context: &RenderContext,
    tests: TestHooks,
) -> Result<Vec<Manifest>, Error> {
    render_chart_with_refs(root, chart, helm, context, None, tests)
}

/// [`render_chart`] with the checkouts `$<ref>/path` value files may name.
pub(crate) fn render_chart_with_refs(
    root: &Path,
    chart: &Path,
    helm: Option<&Value>,
    context: &RenderContext,
    refs: Option<&ValueRefs>,
    tests: TestHooks,
) -> Result<Vec<Manifest>, Error> {
    let empty = Value::Object(Default::default());
    let options = options(root, chart, helm.unwrap_or(&empty), context, refs)?;
    let shown = relative(root, chart);
    let rendered = plumb_helm::template(root, chart, &options).map_err(|source| Error::Helm {
        path: shown.clone(),
        source,
    })?;
    let objects = rendered.objects().map_err(|source| Error::Helm {
        path: shown.clone(),
        source,
    })?;
    let file = format!("{shown}/Chart.yaml");
    Ok(crate::manifests_from(
        objects
            .into_iter()
            .filter(|object| tests == TestHooks::Keep || !is_test_hook(object)),
        &file,
    ))
}
