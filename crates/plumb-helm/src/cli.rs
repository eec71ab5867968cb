//! `helm template` with helm's own argument list.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, TemplateOptions};

/// Settings the command line cannot express.
#[derive(Debug, Clone, Default)]
pub struct CliConfig {
    /// Kubernetes version when `--kube-version` is absent (None: [`crate::DEFAULT_KUBE_VERSION`]).
    pub default_kube_version: Option<String>,
    /// Helm major version to emulate.
    pub flavor: crate::Flavor,
    /// Sandbox root for every file read (None: the filesystem root, as helm itself).
    pub root: Option<PathBuf>,
}

/// What a run printed and how it ended (`--debug` can print output and still fail).
#[derive(Debug)]
pub struct CliOutput {
    /// Standard output.
    pub stdout: String,
    /// The error to print as `Error: {error}`.
    pub error: Option<Error>,
}

const USAGE: &str = "Usage:  helm template [NAME] [CHART] [flags]";

const BOOL_FLAGS: &[&str] = &[
    "include-crds",
    "skip-crds",
    "is-upgrade",
    "generate-name",
    "no-hooks",
    "skip-tests",
    "debug",
    "validate",
    "release-name",
    "dependency-update",
    "devel",
    "atomic",
    "wait",
    "wait-for-jobs",
    "create-namespace",
    "replace",
    "disable-openapi-validation",
    "verify",
    "insecure-skip-tls-verify",
    "plain-http",
    "pass-credentials",
    "skip-schema-validation",
    "hide-notes",
    "enable-dns",
    "render-subchart-notes",
    "force",
    "reset-values",
    "reuse-values",
    "dry-run",
];

const VALUE_FLAGS: &[&str] = &[
    "namespace",
    "set",
    "set-string",
    "set-file",
    "set-json",
    "set-literal",
    "values",
    "kube-version",
    "api-versions",
    "show-only",
    "name-template",
    "output-dir",
    "post-renderer",
    "post-renderer-args",
    "version",
    "repo",
    "description",
    "timeout",
    "username",
    "password",
    "ca-file",
    "cert-file",
    "key-file",
    "keyring",
    "labels",
    "kubeconfig",
    "kube-context",
    "registry-config",
    "repository-cache",
    "repository-config",
];

fn short(c: char) -> Option<&'static str> {
    Some(match c {
        'n' => "namespace",
        'f' => "values",
        'a' => "api-versions",
        's' => "show-only",
        'g' => "generate-name",
        _ => return None,
    })
}

/// Run `helm template ARGS` (the words after `template`) relative to `cwd`; returns stdout,
/// or the message to print as `Error: {msg}`.
pub fn template(args: &[String], cwd: &Path) -> Result<String, Error> {
    let out = run(args, cwd, &CliConfig::default());
    match out.error {
        Some(e) => Err(e),
        None => Ok(out.stdout),
    }
}

/// Like [`template`] with explicit settings, returning output and error together.
pub fn run(args: &[String], cwd: &Path, cfg: &CliConfig) -> CliOutput {
    match run_inner(args, cwd, cfg) {
        Ok(s) => CliOutput {
            stdout: s,
            error: None,
        },
        Err(Error::WithOutput { output, error }) => CliOutput {
            stdout: output,
            error: Some(*error),
        },
        Err(e) => CliOutput {
            stdout: String::new(),
            error: Some(e),
        },
    }
}

fn run_inner(args: &[String], cwd: &Path, cfg: &CliConfig) -> Result<String, Error> {
    let mut o = TemplateOptions {
        base_dir: Some(cwd.to_path_buf()),
        kube_version: cfg.default_kube_version.clone(),
        flavor: cfg.flavor,
        ..TemplateOptions::default()
    };
    let mut positional = Vec::new();
    let mut name_template = None;
    let mut generate_name = false;
    let mut i = 0;
    let mut only_positional = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if only_positional || !a.starts_with('-') || a == "-" {
            positional.push(a.clone());
            continue;
        }
        if a == "--" {
            only_positional = true;
            continue;
        }
        let (name, inline): (String, Option<String>) = if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            }
        } else {
            let body = &a[1..];
            let c = body.chars().next().unwrap_or('-');
            let n = short(c)
                .ok_or_else(|| Error::Usage(format!("unknown shorthand flag: '{c}' in {a}")))?;
            let rest = body[c.len_utf8()..].trim_start_matches('=');
            (
                n.to_string(),
                if rest.is_empty() {
                    None
                } else {
                    Some(rest.to_string())
                },
            )
        };
        if BOOL_FLAGS.contains(&name.as_str()) {
            let on = match inline.as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(v) => {
                    return Err(Error::Usage(format!(
                        "invalid argument {v:?} for \"--{name}\" flag"
                    )));
                }
            };
            match name.as_str() {
                "include-crds" => o.include_crds = on,
                "skip-crds" => o.skip_crds = on,
                "is-upgrade" => o.is_upgrade = on,
                "generate-name" => generate_name = on,
                "no-hooks" => o.no_hooks = on,
                "skip-tests" => o.skip_tests = on,
                "debug" => o.debug = on,
                "skip-schema-validation" => o.skip_schema_validation = on,
                "validate" if on => {
                    return Err(Error::Unsupported("--validate (needs a cluster)".into()));
                }
                "dependency-update" if on => {
                    return Err(Error::Unsupported(
                        "--dependency-update (vendor dependencies under charts/)".into(),
                    ));
                }
                _ => {}
            }
            continue;
        }
        if !VALUE_FLAGS.contains(&name.as_str()) {
            return Err(Error::Usage(format!("unknown flag: --{name}")));
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = args
                    .get(i)
                    .cloned()
                    .ok_or_else(|| Error::Usage(format!("flag needs an argument: --{name}")))?;
                i += 1;
                v
            }
        };
        match name.as_str() {
            "namespace" => o.namespace = value,
            "set" => o.set.push(value),
            "set-string" => o.set_string.push(value),
            "set-file" => o.set_file.push(value),
            "values" => o.values_files.extend(
                value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from),
            ),
            "kube-version" => o.kube_version = Some(value),
            "api-versions" if cfg.flavor == crate::Flavor::V4 => o
                .api_versions
                .extend(value.split(',').filter(|s| !s.is_empty()).map(String::from)),
            "api-versions" => o.api_versions.push(value),
            "show-only" => o.show_only.push(value),
            "name-template" => name_template = Some(value),
            "set-json" => o.set_json.push(value),
            "set-literal" => o.set_literal.push(value),
            "output-dir" | "post-renderer" | "repo" => {
                return Err(Error::Unsupported(format!("--{name}")));
            }
            "version" => {}
            _ => {}
        }
    }
    if positional.is_empty() {
        return Err(Error::Usage(format!(
            "\"helm template\" requires at least 1 argument\n\n{USAGE}"
        )));
    }
    if positional.len() > 2 {
        return Err(Error::Usage(format!(
            "expected at most two arguments, unexpected arguments: {}",
            positional[2..].join(", ")
        )));
    }
    let chart = if positional.len() == 2 {
        o.release_name = positional[0].clone();
        positional[1].clone()
    } else {
        let chart = positional[0].clone();
        if let Some(t) = &name_template {
            o.release_name = render_name_template(t)?;
        } else if generate_name {
            let base = Path::new(&chart)
                .file_name()
                .map(|b| b.to_string_lossy().to_string())
                .filter(|b| b != "." && !b.is_empty())
                .unwrap_or_else(|| "chart".into());
            let base = base.split('.').next().unwrap_or("chart").to_string();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            o.release_name = format!("{base}-{now}");
        }
        chart
    };
    if let Some(k) = &o.kube_version {
        crate::parse_kube_version(k)?;
    }
    let root = cfg.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let rendered = crate::template(&root, Path::new(&chart), &o)?;
    rendered.try_output()
}

fn render_name_template(t: &str) -> Result<String, Error> {
    let t = t.to_string();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let mut e = crate::tmpl::Engine::new();
            e.add("name-template", &t)
                .map_err(|e| Error::Render(e.to_string()))?;
            e.execute("name-template", &crate::value::Value::Nil)
                .map_err(|e| Error::Render(e.0))
        })
        .map_err(|e| Error::Render(format!("cannot start render thread: {e}")))?
        .join()
        .map_err(|_| Error::Render("name template failed".into()))?
}
