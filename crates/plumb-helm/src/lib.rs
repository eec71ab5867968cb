//! plumb-helm: renders Helm charts natively (what `helm template` prints), with no `helm`
//! binary and no Go runtime. Output follows Helm v3 (what Argo CD and Flux run today).
//!
//! Start at [`template`] (library entry) or [`cli::template`] (helm's own argument list).
//! The Go `text/template` engine lives in [`tmpl`], the function library in [`funcs`],
//! chart loading in [`chart`], value merging in [`values`] and [`strvals`], and output
//! ordering in [`render`]. Every file read is confined to a root directory.

pub mod chart;
pub mod cli;
pub mod funcs;
pub mod objects;
pub mod render;
pub mod strvals;
pub mod tmpl;
pub mod value;
pub mod values;
pub mod yaml;
mod yamlerr;

#[cfg(test)]
mod funcs_tests;
#[cfg(test)]
mod tmpl_tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use value::Value;

/// Kubernetes version `.Capabilities.KubeVersion` reports unless told otherwise.
pub const DEFAULT_KUBE_VERSION: &str = "v1.35.0";

/// Errors from loading, merging values and rendering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A path resolved outside the allowed root (sandbox).
    #[error("path {path} resolves outside the allowed root {root}")]
    OutsideRoot { path: String, root: String },
    /// A file or archive exceeds the size limit.
    #[error("{path} exceeds the size limit of {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    /// The chart is malformed.
    #[error("chart {chart}: {msg}")]
    Chart { chart: String, msg: String },
    /// Dependencies listed in Chart.yaml are not vendored under `charts/`.
    #[error(
        "An error occurred while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: {0}"
    )]
    MissingDependencies(String),
    /// Chart.yaml failed Helm's validation.
    #[error("validation: {0}")]
    Validation(String),
    /// Values could not be read or merged.
    #[error("{0}")]
    Values(String),
    /// A template failed to parse or execute (message worded as Helm words it).
    #[error("{0}")]
    Render(String),
    /// A rendered manifest is not valid YAML.
    #[error("YAML parse error on {file}: {msg}")]
    Yaml { file: String, msg: String },
    /// Bad command-line usage.
    #[error("{0}")]
    Usage(String),
    /// Rendering produced output but failed afterwards (`--debug` prints the output first).
    #[error("{error}")]
    WithOutput {
        output: String,
        #[source]
        error: Box<Error>,
    },
    /// A feature this renderer does not have yet.
    #[error("not supported yet: {0}")]
    Unsupported(String),
}

/// A cluster reader for the `lookup` function: `(apiVersion, kind, namespace, name)` to
/// the object (or, with an empty name, the list); `Null` when absent.
pub type LookupFn =
    dyn Fn(&str, &str, &str, &str) -> Result<serde_json::Value, String> + Send + Sync;

/// Enables `lookup` against a cluster (off by default, as in `helm template`).
#[derive(Clone)]
pub struct Lookup(pub std::sync::Arc<LookupFn>);

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lookup(..)")
    }
}

/// Which Helm major version's output and value semantics to reproduce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flavor {
    /// Helm 3 (what Argo CD and Flux run today).
    #[default]
    V3,
    /// Helm 4: blank line between documents, chart-default `null`s do not delete subchart
    /// defaults, `--api-versions` splits on commas, multi-line template errors.
    V4,
}

/// Options of `helm template`.
#[derive(Debug, Clone)]
pub struct TemplateOptions {
    /// Release name (`.Release.Name`).
    pub release_name: String,
    /// Release namespace.
    pub namespace: String,
    /// `-f` value files, in order (paths; relative ones resolve against `base_dir`).
    pub values_files: Vec<PathBuf>,
    /// `--set` arguments.
    pub set: Vec<String>,
    /// `--set-string` arguments.
    pub set_string: Vec<String>,
    /// `--set-file` arguments (`key=path`).
    pub set_file: Vec<String>,
    /// `--set-json` arguments (`key=JSON`).
    pub set_json: Vec<String>,
    /// `--set-literal` arguments (`key=value`, taken verbatim).
    pub set_literal: Vec<String>,
    /// Inline values merged after the files and before `--set` (Argo CD `valuesObject`).
    pub values: Option<serde_json::Value>,
    /// `--kube-version` (None: [`DEFAULT_KUBE_VERSION`]).
    pub kube_version: Option<String>,
    /// `--api-versions` added to the default set.
    pub api_versions: Vec<String>,
    /// `--include-crds`.
    pub include_crds: bool,
    /// `--skip-crds` (affects installation only; `helm template` output is unchanged).
    pub skip_crds: bool,
    /// `--show-only` patterns.
    pub show_only: Vec<String>,
    /// `--is-upgrade`.
    pub is_upgrade: bool,
    /// `--no-hooks`.
    pub no_hooks: bool,
    /// `--skip-tests`.
    pub skip_tests: bool,
    /// `--debug`: on a YAML error, still print what was rendered.
    pub debug: bool,
    /// Helm major version to emulate.
    pub flavor: Flavor,
    /// Cluster access for `lookup` (None: offline, empty results).
    pub lookup: Option<Lookup>,
    /// Skip `-f` files that do not exist (Argo CD `ignoreMissingValueFiles`).
    pub ignore_missing_value_files: bool,
    /// `--skip-schema-validation`.
    pub skip_schema_validation: bool,
    /// Directory relative value-file paths resolve against.
    pub base_dir: Option<PathBuf>,
    /// Other directories value files (`-f`, `--set-file`) may be read from besides `root`
    /// (Argo CD's multi-source `$ref` value files live in another source's checkout); each
    /// file stays confined to the one root it lies under.
    pub value_roots: Vec<PathBuf>,
    /// Template execution limits.
    pub limits: tmpl::exec::Limits,
}

impl Default for TemplateOptions {
    fn default() -> Self {
        TemplateOptions {
            release_name: "release-name".into(),
            namespace: "default".into(),
            values_files: Vec::new(),
            set: Vec::new(),
            set_string: Vec::new(),
            set_file: Vec::new(),
            set_json: Vec::new(),
            set_literal: Vec::new(),
            values: None,
            kube_version: None,
            api_versions: Vec::new(),
            include_crds: false,
            skip_crds: false,
            show_only: Vec::new(),
            is_upgrade: false,
            no_hooks: false,
            skip_tests: false,
            debug: false,
            skip_schema_validation: false,
            flavor: Flavor::V3,
            ignore_missing_value_files: false,
            lookup: None,
            base_dir: None,
            value_roots: Vec::new(),
            limits: tmpl::exec::Limits::default(),
        }
    }
}

/// Helm hook data of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// `helm.sh/hook` events (lower-case).
    pub events: Vec<String>,
    /// `helm.sh/hook-weight`.
    pub weight: i64,
    /// `helm.sh/hook-delete-policy`.
    pub delete_policies: Vec<String>,
}

/// One rendered YAML document.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Template path, e.g. `mychart/templates/svc.yaml`.
    pub source: String,
    /// The document text.
    pub content: String,
    /// Its `kind`.
    pub kind: String,
    /// Hook data when annotated with `helm.sh/hook`.
    pub hook: Option<Hook>,
}

/// The result of rendering a chart.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// CRDs from `crds/` (printed only with `include_crds`).
    pub crds: Vec<Manifest>,
    /// Ordered non-hook manifests.
    pub manifests: Vec<Manifest>,
    /// Hooks in Helm's order.
    pub hooks: Vec<Manifest>,
    /// The root chart's NOTES.txt, rendered.
    pub notes: Option<String>,
    /// Options that affect printing.
    include_crds: bool,
    no_hooks: bool,
    skip_tests: bool,
    show_only: Vec<String>,
    flavor: Flavor,
}

impl Rendered {
    fn is_test(m: &Manifest) -> bool {
        m.hook
            .as_ref()
            .is_some_and(|h| h.events.iter().any(|e| e == "test" || e == "test-success"))
    }

    /// The manifest text before `--show-only` filtering.
    fn full_output(&self) -> String {
        let mut body = String::new();
        if self.include_crds {
            for c in &self.crds {
                body.push_str(&format!("---\n# Source: {}\n{}\n", c.source, c.content));
            }
        }
        for m in &self.manifests {
            body.push_str(&format!("---\n# Source: {}\n{}\n", m.source, m.content));
        }
        let mut out = format!("{}\n", body.trim());
        if !self.no_hooks {
            for h in &self.hooks {
                if self.skip_tests && Self::is_test(h) {
                    continue;
                }
                out.push_str(&format!("---\n# Source: {}\n{}\n", h.source, h.content));
            }
        }
        out
    }

    /// Exactly what `helm template` prints on stdout.
    pub fn to_output(&self) -> String {
        self.try_output()
            .unwrap_or_else(|e| format!("Error: {e}\n"))
    }

    /// Like [`Rendered::to_output`], but `--show-only` misses are errors.
    pub fn try_output(&self) -> Result<String, Error> {
        let full = self.full_output();
        if self.show_only.is_empty() {
            return Ok(full);
        }
        let docs = render::split_for(self.flavor, &full);
        let mut out = String::new();
        for pat in &self.show_only {
            let pat = pat.replace('\\', "/");
            let mut missing = true;
            for d in &docs {
                let Some(rest) = d.lines().find_map(|l| l.strip_prefix("# Source: ")) else {
                    continue;
                };
                let Some((_, p)) = rest.split_once('/') else {
                    continue;
                };
                if chart::glob_match(&pat, p) {
                    out.push_str(&format!("---\n{d}\n"));
                    missing = false;
                }
            }
            if missing {
                return Err(Error::Render(format!(
                    "could not find template {pat} in chart"
                )));
            }
        }
        Ok(out)
    }

    /// Parsed documents (hooks included, their annotations kept), CRDs first when included.
    pub fn objects(&self) -> Result<Vec<serde_json::Value>, Error> {
        let mut out = Vec::new();
        let crds = if self.include_crds {
            self.crds.as_slice()
        } else {
            &[]
        };
        for m in crds.iter().chain(&self.manifests).chain(if self.no_hooks {
            &[][..]
        } else {
            &self.hooks
        }) {
            if self.skip_tests && Self::is_test(m) {
                continue;
            }
            let docs = yaml::parse_documents(&m.content).map_err(|e| Error::Yaml {
                file: m.source.clone(),
                msg: e,
            })?;
            out.extend(docs.into_iter().filter(|d| !d.is_null()));
        }
        Ok(out)
    }
}

fn resolve(base: &Option<PathBuf>, p: &Path) -> PathBuf {
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    }
}

/// Parse `--kube-version` as Helm does (`1.20`, `v1.20.0`).
pub fn parse_kube_version(v: &str) -> Result<objects::KubeVersion, Error> {
    let sv = funcs_semver_parse(v).map_err(|_| {
        Error::Usage(format!(
            "invalid kube version '{v}': Invalid Semantic Version"
        ))
    })?;
    // Masterminds' String(): prerelease and build metadata are kept.
    let t = v.trim().trim_start_matches('v');
    let suffix = t.find(['-', '+']).map(|i| &t[i..]).unwrap_or("");
    Ok(objects::KubeVersion {
        version: format!("v{}.{}.{}{suffix}", sv.major, sv.minor, sv.patch),
        major: sv.major.to_string(),
        minor: sv.minor.to_string(),
    })
}

pub(crate) fn funcs_semver_parse(v: &str) -> Result<funcs_semver::Version, String> {
    funcs_semver::parse_version(v)
}

pub(crate) fn funcs_s(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::Nil => String::new(),
        v => v.to_go_string(),
    }
}

mod funcs_semver {
    pub use crate::funcs::semver::{Version, parse_version};
}

/// Reads a value file confined to `root`, or to the one of `value_roots` it lies under.
fn read_value_file(root: &Path, value_roots: &[PathBuf], p: &Path) -> Result<Vec<u8>, Error> {
    let other = value_roots.iter().find(|r| {
        p.canonicalize()
            .is_ok_and(|c| r.canonicalize().is_ok_and(|r| c.starts_with(r)))
    });
    match other {
        Some(value_root) => {
            let value_root = value_root
                .canonicalize()
                .unwrap_or_else(|_| value_root.clone());
            chart::read_confined(&value_root, p)
        }
        None => chart::read_confined(root, p),
    }
}

/// User-supplied values: `-f` files, inline values, `--set`, `--set-string`, `--set-file`.
pub fn user_values(root: &Path, o: &TemplateOptions) -> Result<Value, Error> {
    let mut base = Value::empty_map();
    for f in &o.values_files {
        let p = resolve(&o.base_dir, f);
        if o.ignore_missing_value_files && !p.exists() {
            continue;
        }
        let data = read_value_file(root, &o.value_roots, &p)?;
        let v = yaml::parse_values(&String::from_utf8_lossy(&data))
            .map_err(|e| Error::Values(format!("failed to parse {}: {e}", f.display())))?;
        let v = match v {
            Value::Nil => Value::empty_map(),
            m @ Value::Map(_) => m,
            _ => {
                return Err(Error::Values(format!(
                    "failed to parse {}: not a map",
                    f.display()
                )));
            }
        };
        base = values::merge_maps(&base, &v);
    }
    if let Some(j) = &o.values {
        base = values::merge_maps(&base, &yaml::json_to_value_float(j));
    }
    for s in &o.set_json {
        strvals::parse_into(s, &base, strvals::Mode::Json)
            .map_err(|e| Error::Values(format!("failed parsing --set-json data: {e}")))?;
    }
    for s in &o.set {
        strvals::parse_into(s, &base, strvals::Mode::Typed)
            .map_err(|e| Error::Values(format!("failed parsing --set data: {e}")))?;
    }
    for s in &o.set_string {
        strvals::parse_into(s, &base, strvals::Mode::String)
            .map_err(|e| Error::Values(format!("failed parsing --set-string data: {e}")))?;
    }
    for s in &o.set_literal {
        strvals::parse_into(s, &base, strvals::Mode::Literal)
            .map_err(|e| Error::Values(format!("failed parsing --set-literal data: {e}")))?;
    }
    for s in &o.set_file {
        let read = |p: &str| -> Result<String, String> {
            let path = resolve(&o.base_dir, Path::new(p));
            read_value_file(root, &o.value_roots, &path)
                .map(|b| String::from_utf8_lossy(&b).to_string())
                .map_err(|e| e.to_string())
        };
        strvals::parse_file_into(s, &base, &read)
            .map_err(|e| Error::Values(format!("failed parsing --set-file data: {e}")))?;
    }
    Ok(base)
}

/// Render a chart directory or .tgz. Every file read (chart, value files, `.Files`) is
/// confined to `root` after symlink resolution.
pub fn template(root: &Path, chart: &Path, options: &TemplateOptions) -> Result<Rendered, Error> {
    // Deep template recursion needs more stack than a default thread has.
    let (root, chart, options) = (root.to_path_buf(), chart.to_path_buf(), options.clone());
    std::thread::Builder::new()
        .name("plumb-helm-render".into())
        .stack_size(256 << 20)
        .spawn(move || template_inner(&root, &chart, &options))
        .map_err(|e| Error::Render(format!("cannot start render thread: {e}")))?
        .join()
        .map_err(|_| Error::Render("rendering template failed: internal error".into()))?
}

fn template_inner(root: &Path, chart_path: &Path, o: &TemplateOptions) -> Result<Rendered, Error> {
    let root = root.canonicalize().map_err(|e| Error::Io {
        path: root.display().to_string(),
        source: e,
    })?;
    let shown = chart_path.display().to_string();
    let chart_path = resolve(&o.base_dir, chart_path);
    if !chart_path.exists() {
        return Err(Error::Usage(format!("path {shown:?} not found")));
    }
    if !valid_release_name(&o.release_name) {
        return Err(Error::Usage(format!(
            "release name {:?}: invalid release name, must match regex ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ and the length must not be longer than 53",
            o.release_name
        )));
    }
    let mut chart = chart::load(&root, &chart_path)?;
    if chart.is_library() {
        return Err(Error::Render("library charts are not installable".into()));
    }
    let kube = match &o.kube_version {
        Some(v) => parse_kube_version(v)?,
        None => parse_kube_version(DEFAULT_KUBE_VERSION)?,
    };
    if !chart.kube_version.is_empty()
        && !funcs::semver::semver_matches(&chart.kube_version, &kube.version).unwrap_or(false)
    {
        return Err(Error::Render(format!(
            "chart requires kubeVersion: {} which is incompatible with Kubernetes {}",
            chart.kube_version, kube.version
        )));
    }
    if o.flavor == Flavor::V4 {
        values::strip_chart_nulls(&mut chart);
    }
    let missing: Vec<&str> = chart
        .dependencies
        .iter()
        .filter(|d| !chart.charts.iter().any(|c| c.name == d.name))
        .map(|d| d.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingDependencies(missing.join(", ")));
    }
    let user = user_values(&root, o)?;
    values::process_enabled(&mut chart, &user, "")?;
    values::process_imports(&mut chart)?;
    let vals = values::coalesce_values_root(&chart, &user, false)?;
    if !o.skip_schema_validation {
        schema::validate_tree(&chart, &vals)?;
    }
    let release = Value::map(BTreeMap::from([
        ("Name".to_string(), Value::str(o.release_name.as_str())),
        ("Namespace".to_string(), Value::str(o.namespace.as_str())),
        ("IsUpgrade".to_string(), Value::Bool(o.is_upgrade)),
        ("IsInstall".to_string(), Value::Bool(!o.is_upgrade)),
        ("Revision".to_string(), Value::Int(1)),
        ("Service".to_string(), Value::str("Helm")),
    ]));
    let mut api_versions: Vec<String> = objects::DEFAULT_API_VERSIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (gv, kinds) in objects::DEFAULT_KINDS {
        api_versions.extend(kinds.iter().map(|k| format!("{gv}/{k}")));
    }
    api_versions.extend(o.api_versions.iter().cloned());
    let ctx = render::Context {
        helm_version: match o.flavor {
            Flavor::V3 => "v3.21.4",
            Flavor::V4 => "v4.2.4",
        },
        lookup: o.lookup.clone(),
        limits: o.limits.clone(),
        release,
        kube: Rc::new(kube),
        api_versions,
    };
    let mut files =
        render::render_templates(&chart, vals, &ctx).map_err(|e| match (o.flavor, e) {
            (Flavor::V4, Error::Render(m)) => Error::Render(render::v4_error(&m)),
            (_, e) => e,
        })?;
    let notes_key = format!("{}/templates/NOTES.txt", chart.name);
    let notes = files.get(&notes_key).cloned();
    files.retain(|k, _| !k.ends_with("NOTES.txt"));
    let mut crds = Vec::new();
    collect_crds(&chart, &chart.name, &mut crds);
    let (manifests, hooks) = match render::sort_manifests(o.flavor, &files) {
        Ok(x) => x,
        Err(e) => {
            if o.debug {
                let mut blob = String::new();
                for (name, content) in &files {
                    if content.trim().is_empty() {
                        continue;
                    }
                    blob.push_str(&format!("---\n# Source: {name}\n{content}\n"));
                }
                return Err(Error::WithOutput {
                    output: format!("{}\n", blob.trim()),
                    error: Box::new(e),
                });
            }
            return Err(Error::Render(format!(
                "{e}\n\nUse --debug flag to render out invalid YAML"
            )));
        }
    };
    Ok(Rendered {
        crds,
        manifests,
        hooks,
        notes,
        include_crds: o.include_crds,
        no_hooks: o.no_hooks,
        skip_tests: o.skip_tests,
        show_only: o.show_only.clone(),
        flavor: o.flavor,
    })
}

/// Helm's `ValidateReleaseName`: DNS-1123 subdomain labels, at most 53 characters.
fn valid_release_name(n: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !n.is_empty() && n.len() <= 53 && n.split('.').all(label_ok)
}

fn collect_crds(c: &chart::Chart, full: &str, out: &mut Vec<Manifest>) {
    for (path, content) in c.crds() {
        out.push(Manifest {
            source: format!("{full}/{path}"),
            content,
            kind: "CustomResourceDefinition".into(),
            hook: None,
        });
    }
    for sub in &c.charts {
        collect_crds(sub, &format!("{full}/charts/{}", sub.name), out);
    }
}

mod schema;
