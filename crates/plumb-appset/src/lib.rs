//! plumb-appset: Argo CD ApplicationSets turned into Applications, without I/O of its own.
//!
//! The crate owns what Argo CD's ApplicationSet controller computes before it talks to the
//! API server: the list, clusters, git (directories and files), matrix and merge generators,
//! generator `selector`s, both templating modes (the default fasttemplate `{{param}}` and
//! `goTemplate` with Sprig and `goTemplateOptions`), generator-level templates,
//! `templatePatch`, the deletion finalizer of `syncPolicy.preserveResourcesOnDeletion`, and
//! the owner reference to the set. What it reads (repository snapshots, cluster Secrets)
//! comes through [`GeneratorContext`], which the engine implements.
//!
//! Start at [`generate`]. Generators live in `generators`, substitution in `template`,
//! assembling one Application in `application`.

mod application;
mod error;
mod generators;
mod glob;
mod params;
mod policy;
mod selector;
mod template;
mod warnings;

use std::collections::HashSet;

use serde_json::Value;

pub use application::RESOURCES_FINALIZER;
pub use error::Error;
pub use policy::{ApplicationsSync, applications_sync};
pub use warnings::Warning;

use application::SetInfo;
use generators::{Nesting, Run};
use template::Renderer;

/// What generators may read: implemented by the engine over Git snapshots and cluster Secrets.
pub trait GeneratorContext {
    /// Files of `repo_url` at `revision` under the snapshot root (the engine resolves and
    /// snapshots); return the root directory. `revision` is the generator's field as written
    /// (possibly empty, `HEAD`, a branch, tag or commit); for a matrix's second child it may
    /// have been templated from the first child's parameters.
    fn repository_root(&self, repo_url: &str, revision: &str)
    -> Result<std::path::PathBuf, String>;
    /// Argo CD cluster Secrets (label argocd.argoproj.io/secret-type=cluster) as JSON
    /// objects; the in-cluster cluster is added by the crate itself as Argo CD does (name
    /// in-cluster, server `https://kubernetes.default.svc`) unless a Secret overrides it.
    fn cluster_secrets(&self) -> Result<Vec<serde_json::Value>, String>;
}

/// Generate the Applications an ApplicationSet (its full JSON object) declares, in a stable
/// order, each with metadata.name/namespace set and an ownerReference to the set.
///
/// Same as [`generate_with_warnings`] without the warnings.
pub fn generate(appset: &Value, context: &dyn GeneratorContext) -> Result<Vec<Value>, Error> {
    generate_with_warnings(appset, context).map(|g| g.applications)
}

/// Applications of a set plus the fields it accepted without acting on them.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The Applications, as [`generate`] returns them.
    pub applications: Vec<Value>,
    /// Fields accepted but not acted on (for a warning condition on the set).
    pub warnings: Vec<Warning>,
    /// When Argo CD would run the generators again without an event: the smallest
    /// `requeueAfterSeconds` of the Git generators (180 when unset), `None` when no
    /// generator polls (list and clusters are event-driven).
    pub requeue_after_seconds: Option<u64>,
}

/// Controller-wide settings Argo CD takes as flags rather than from the ApplicationSet.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Argo CD's `--enable-new-git-file-globbing`: Git file generator paths use doublestar
    /// globs (`*` stays within a directory, `**` spans directories, `{a,b}` alternatives)
    /// instead of `git ls-files` pathspecs (where `*` also matches `/`).
    pub new_git_file_globbing: bool,
}

/// Generate the Applications of an ApplicationSet and list the fields it ignored, with the
/// default [`Options`].
pub fn generate_with_warnings(
    appset: &Value,
    context: &dyn GeneratorContext,
) -> Result<Generation, Error> {
    generate_with(appset, context, &Options::default())
}

/// Generate the Applications of an ApplicationSet and list the fields it ignored.
///
/// **Order**: generators in `spec.generators` order; within one, the generator's own order
/// (list elements as written, clusters by name then `in-cluster`, directories depth-first
/// by name, files sorted by path, a merge in its first child's order).
///
/// **Errors**: the first problem found, naming the field (`spec.generators[1].git...`,
/// `spec.template: template error at metadata.name: ...`); unsupported generators give
/// [`Error::Unsupported`]; two Applications with one name give [`Error::DuplicateName`].
/// Nothing is returned partially.
///
/// **Guarantees**: never panics on any input; reads only through `context` and, for the Git
/// generator, only inside the returned repository root (symlinks that leave it are refused,
/// files over 1 MiB refused).
///
/// **Caveats**: goTemplate strings run on plumb-helm's engine, which bounds output (4 MiB a
/// string) and nesting but not the work or memory of a single Sprig call: a hostile template
/// (`until`, `repeat`, `indent` with huge counts) can still exhaust CPU or memory, as it can
/// in Argo CD. A function that panics is turned into a template error.
pub fn generate_with(
    appset: &Value,
    context: &dyn GeneratorContext,
    options: &Options,
) -> Result<Generation, Error> {
    if !appset.is_object() {
        return Err(Error::invalid(".", "an ApplicationSet must be an object"));
    }
    if let Some(kind) = appset.get("kind").filter(|k| !k.is_null())
        && kind != "ApplicationSet"
    {
        return Err(Error::invalid(
            "kind",
            format!("expected ApplicationSet, got {kind}"),
        ));
    }
    let name = required_string(appset, "/metadata/name", "metadata.name")?;
    let namespace = required_string(appset, "/metadata/namespace", "metadata.namespace")?;
    let uid = appset.pointer("/metadata/uid").and_then(Value::as_str);
    let spec = match appset.get("spec") {
        Some(s @ Value::Object(_)) => s,
        _ => return Err(Error::invalid("spec", "is required and must be an object")),
    };
    let go_template = generators::bool_field(spec, "goTemplate", "spec")?;
    let mut template_options = Vec::new();
    for (i, option) in generators::list_field(spec, "goTemplateOptions", "spec")?
        .iter()
        .enumerate()
    {
        let Value::String(option) = option else {
            return Err(Error::invalid(
                format!("spec.goTemplateOptions[{i}]"),
                "must be a string",
            ));
        };
        template_options.push(option.clone());
    }
    let renderer = Renderer::new(go_template, &template_options)
        .map_err(|(i, message)| Error::invalid(format!("spec.goTemplateOptions[{i}]"), message))?;
    let template_patch = match spec.get("templatePatch") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.as_str()),
        Some(_) => return Err(Error::invalid("spec.templatePatch", "must be a string")),
    };
    let preserve = match spec.pointer("/syncPolicy/preserveResourcesOnDeletion") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Error::invalid(
                "spec.syncPolicy.preserveResourcesOnDeletion",
                "must be a boolean",
            ));
        }
    };
    let base_template = match spec.get("template") {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(t @ Value::Object(_)) => t.clone(),
        Some(_) => return Err(Error::invalid("spec.template", "must be an object")),
    };
    let set = SetInfo {
        name,
        namespace,
        uid,
        preserve_resources_on_deletion: preserve,
        template_patch,
    };
    let run = Run {
        renderer: &renderer,
        context,
        options,
    };
    let mut apps = Vec::new();
    for (i, entry) in generators::list_field(spec, "generators", "spec")?
        .iter()
        .enumerate()
    {
        let field = format!("spec.generators[{i}]");
        for generated in generators::run(entry, &field, &run, Nesting::Top, None)? {
            let template = match &generated.template {
                Some(Value::Object(own)) => {
                    let mut merged = own.clone();
                    if let Value::Object(base) = &base_template {
                        params::merge_fill(&mut merged, base);
                    }
                    Value::Object(merged)
                }
                Some(_) => {
                    return Err(Error::invalid(
                        format!("{field}: template"),
                        "must be an object",
                    ));
                }
                None => base_template.clone(),
            };
            for p in &generated.params {
                apps.push(application::render(&set, &template, p, &renderer)?);
            }
        }
    }
    let mut seen = HashSet::new();
    for app in &apps {
        let app_name = app
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if app_name.is_empty() {
            return Err(Error::invalid(
                "spec.template.metadata.name",
                format!(
                    "ApplicationSet {name} contains an application with no name; a name must be set in the template's metadata.name or via a templatePatch"
                ),
            ));
        }
        if !seen.insert(app_name.to_string()) {
            return Err(Error::DuplicateName {
                set: name.to_string(),
                name: app_name.to_string(),
            });
        }
    }
    Ok(Generation {
        applications: apps,
        warnings: warnings::of(appset),
        requeue_after_seconds: generators::requeue_after_seconds(spec),
    })
}

fn required_string<'v>(v: &'v Value, pointer: &str, field: &str) -> Result<&'v str, Error> {
    match v.pointer(pointer) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(Error::invalid(
            field,
            "is required and must be a non-empty string",
        )),
    }
}
