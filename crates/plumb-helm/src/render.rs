//! Rendering a processed chart tree and ordering the result as `helm template` prints it.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::OnceLock;

use regex::Regex;

use crate::chart::Chart;
use crate::objects::{ApiVersions, Files, KubeVersion};
use crate::tmpl::Engine;
use crate::value::Value;
use crate::{Error, Hook, Manifest};

/// Helm's InstallOrder.
pub const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Everything the top-level render needs besides the chart.
pub struct Context {
    /// What `.Capabilities.HelmVersion.Version` reports.
    pub helm_version: &'static str,
    pub lookup: Option<crate::Lookup>,
    pub limits: crate::tmpl::exec::Limits,
    pub release: Value,
    pub kube: Rc<KubeVersion>,
    pub api_versions: Vec<String>,
}

struct Tpl {
    name: String,
    src: String,
    ctx: Value,
    base_path: String,
}

fn chart_ctx(c: &Chart, values: Value, ctx: &Context, is_root: bool) -> Value {
    let mut m = BTreeMap::new();
    let chart = c.metadata_value();
    if let Value::Map(cm) = &chart {
        cm.borrow_mut()
            .insert("IsRoot".to_string(), Value::Bool(is_root));
    }
    m.insert("Chart".to_string(), chart);
    m.insert(
        "Files".to_string(),
        Value::Obj(Rc::new(Files(c.files.clone()))),
    );
    m.insert("Release".to_string(), ctx.release.clone());
    let mut caps = BTreeMap::new();
    caps.insert("KubeVersion".to_string(), Value::Obj(ctx.kube.clone()));
    caps.insert(
        "APIVersions".to_string(),
        Value::Obj(Rc::new(ApiVersions(ctx.api_versions.clone()))),
    );
    caps.insert(
        "HelmVersion".to_string(),
        Value::map(BTreeMap::from([
            ("Version".to_string(), Value::str(ctx.helm_version)),
            ("GitCommit".to_string(), Value::str("")),
            ("GitTreeState".to_string(), Value::str("")),
            ("GoVersion".to_string(), Value::str("")),
        ])),
    );
    m.insert("Capabilities".to_string(), Value::map(caps));
    m.insert("Values".to_string(), values);
    Value::map(m)
}

fn collect(c: &Chart, full: &str, values: Value, ctx: &Context, out: &mut Vec<Tpl>) -> Value {
    let me = chart_ctx(c, values.clone(), ctx, !full.contains('/'));
    let mut subs = BTreeMap::new();
    for sub in &c.charts {
        let sv = match values.get(&sub.name) {
            Some(v @ Value::Map(_)) => v,
            _ => Value::empty_map(),
        };
        let sctx = collect(sub, &format!("{full}/charts/{}", sub.name), sv, ctx, out);
        subs.insert(sub.name.clone(), sctx);
    }
    if let Value::Map(m) = &me {
        m.borrow_mut()
            .insert("Subcharts".to_string(), Value::map(subs));
    }
    for (name, src) in &c.templates {
        let base = name.rsplit('/').next().unwrap_or(name);
        if c.is_library() && !base.starts_with('_') {
            continue;
        }
        out.push(Tpl {
            name: format!("{full}/{name}"),
            src: src.clone(),
            ctx: me.clone(),
            base_path: format!("{full}/templates"),
        });
    }
    me
}

/// Render every template; returns file name → output (partials excluded).
pub fn render_templates(
    c: &Chart,
    values: Value,
    ctx: &Context,
) -> Result<BTreeMap<String, String>, Error> {
    let mut tpls = Vec::new();
    collect(c, &c.name, values, ctx, &mut tpls);
    // Parse deeper paths first so that parent charts' defines win (Helm's sortTemplates).
    tpls.sort_by(|a, b| {
        let (ca, cb) = (a.name.matches('/').count(), b.name.matches('/').count());
        cb.cmp(&ca).then_with(|| b.name.cmp(&a.name))
    });
    let mut engine = Engine::new();
    engine.lookup = ctx.lookup.clone();
    engine.limits = ctx.limits.clone();
    for t in &tpls {
        engine.add(&t.name, &t.src).map_err(|e| {
            let s = e.to_string();
            let parts: Vec<&str> = s.split(": ").collect();
            let loc = parts.get(1).copied().unwrap_or(&t.name);
            let msg = parts.last().copied().unwrap_or("");
            Error::Render(format!("parse error at ({loc}): {msg}"))
        })?;
    }
    let mut out = BTreeMap::new();
    for t in &tpls {
        let base = t.name.rsplit('/').next().unwrap_or(&t.name);
        if base.starts_with('_') {
            continue;
        }
        let data = t.ctx.deep_copy_shallow();
        if let Value::Map(m) = &data {
            m.borrow_mut().insert(
                "Template".to_string(),
                Value::map(BTreeMap::from([
                    ("Name".to_string(), Value::str(t.name.as_str())),
                    ("BasePath".to_string(), Value::str(t.base_path.as_str())),
                ])),
            );
        }
        let rendered = engine
            .execute(&t.name, &data)
            .map_err(|e| Error::Render(cleanup_exec_error(&e.0)))?;
        out.insert(t.name.clone(), rendered.replace("<no value>", ""));
    }
    Ok(out)
}

/// Helm 4's multi-line wording of Go template execution errors.
pub fn v4_error(m: &str) -> String {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r#"^template: ([^ ]+:\d+:\d+): (executing "[^"]*" at <.*?>): (.*)$"#).ok()
    });
    match re.as_ref().and_then(|r| r.captures(m)) {
        Some(c) => format!(
            "{}\n  {}:\n    {}",
            c.get(1).map_or("", |x| x.as_str()),
            c.get(2).map_or("", |x| x.as_str()),
            c.get(3).map_or("", |x| x.as_str())
        ),
        None => m.to_string(),
    }
}

fn cleanup_exec_error(s: &str) -> String {
    static WARN: OnceLock<Option<Regex>> = OnceLock::new();
    let parts: Vec<&str> = s.splitn(3, ": ").collect();
    if parts.len() != 3 || !s.starts_with("template: ") {
        return s.to_string();
    }
    let re = WARN.get_or_init(|| Regex::new("(?s)HELM_ERR_START(.*)HELM_ERR_END").ok());
    if let Some(c) = re.as_ref().and_then(|r| r.captures(parts[2]))
        && let Some(m) = c.get(1)
    {
        return format!("execution error at ({}): {}", parts[1], m.as_str());
    }
    s.to_string()
}

/// Helm 4's document split: separators end a document but its trailing whitespace stays.
pub fn split_manifests_v4(s: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in s.split_inclusive('\n') {
        let t = line.trim_end();
        if t.starts_with("---") && t[3..].trim().is_empty() {
            if !cur.trim().is_empty() {
                docs.push(std::mem::take(&mut cur));
            }
            cur.clear();
            continue;
        }
        if cur.is_empty() && line.trim().is_empty() {
            continue;
        }
        cur.push_str(line);
    }
    if !cur.trim().is_empty() {
        docs.push(cur);
    }
    docs
}

/// Split a YAML stream into documents as the given Helm flavor does.
pub fn split_for(flavor: crate::Flavor, s: &str) -> Vec<String> {
    match flavor {
        crate::Flavor::V3 => split_manifests(s),
        crate::Flavor::V4 => split_manifests_v4(s),
    }
}

/// Helm's `SplitManifests`.
pub fn split_manifests(s: &str) -> Vec<String> {
    static SEP: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = SEP
        .get_or_init(|| Regex::new(r"(?:^|\s*\n)---\s*").ok())
        .as_ref()
    else {
        return vec![s.trim().to_string()];
    };
    re.split(s.trim())
        .filter(|d| !d.is_empty())
        .map(|d| d.trim().to_string())
        .collect()
}

fn kind_rank(kind: &str) -> Option<usize> {
    INSTALL_ORDER.iter().position(|k| *k == kind)
}

fn by_kind<T>(v: &mut [T], kind: impl Fn(&T) -> String) {
    v.sort_by(|a, b| {
        let (ka, kb) = (kind(a), kind(b));
        match (kind_rank(&ka), kind_rank(&kb)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => ka.cmp(&kb),
        }
    });
}

const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

/// Helm's `SortManifests`: split, parse heads, separate hooks, order by kind.
pub fn sort_manifests(
    flavor: crate::Flavor,
    files: &BTreeMap<String, String>,
) -> Result<(Vec<Manifest>, Vec<Manifest>), Error> {
    let mut generic = Vec::new();
    let mut hooks = Vec::new();
    for (path, content) in files {
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        for doc in split_for(flavor, content) {
            let parsed = crate::yaml::parse_documents(&doc).map_err(|e| Error::Yaml {
                file: path.clone(),
                msg: crate::yamlerr::go_style(&doc, &e),
            })?;
            let head = parsed.into_iter().next().unwrap_or(serde_json::Value::Null);
            let kind = head
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or("")
                .to_string();
            let hook = head
                .pointer("/metadata/annotations/helm.sh~1hook")
                .and_then(|h| h.as_str())
                .map(String::from);
            let m = Manifest {
                source: path.clone(),
                content: doc,
                kind,
                hook: None,
            };
            match hook {
                None => generic.push(m),
                Some(h) => {
                    let events: Vec<String> =
                        h.split(',').map(|e| e.trim().to_lowercase()).collect();
                    if events.iter().any(|e| !HOOK_EVENTS.contains(&e.as_str())) {
                        continue;
                    }
                    let weight = head
                        .pointer("/metadata/annotations/helm.sh~1hook-weight")
                        .and_then(|w| w.as_str())
                        .and_then(|w| w.trim().parse().ok())
                        .unwrap_or(0);
                    let delete_policies = head
                        .pointer("/metadata/annotations/helm.sh~1hook-delete-policy")
                        .and_then(|w| w.as_str())
                        .map(|w| {
                            w.split(',')
                                .map(|x| x.trim().to_string())
                                .filter(|x| !x.is_empty())
                                .collect()
                        })
                        .unwrap_or_default();
                    hooks.push(Manifest {
                        hook: Some(Hook {
                            events,
                            weight,
                            delete_policies,
                        }),
                        ..m
                    });
                }
            }
        }
    }
    by_kind(&mut generic, |m| m.kind.clone());
    by_kind(&mut hooks, |m| m.kind.clone());
    Ok((generic, hooks))
}

trait ShallowCopy {
    fn deep_copy_shallow(&self) -> Value;
}

impl ShallowCopy for Value {
    /// A new top-level map sharing its children (each template gets its own `.Template`).
    fn deep_copy_shallow(&self) -> Value {
        match self.map_entries() {
            Some(e) => Value::map(e.into_iter().collect()),
            None => self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Helm's engine tests (TestParseErrors, TestExecErrors, TestFailErrors).
    fn helm_error(name: &str, src: &str) -> String {
        let mut e = Engine::new();
        if let Err(err) = e.add(name, src) {
            let s = err.to_string();
            let parts: Vec<&str> = s.split(": ").collect();
            return format!("parse error at ({}): {}", parts[1], parts[parts.len() - 1]);
        }
        let data = Value::map(BTreeMap::from([("Values".to_string(), Value::empty_map())]));
        match e.execute(name, &data) {
            Ok(out) => out,
            Err(err) => cleanup_exec_error(&err.0),
        }
    }

    #[test]
    fn helm_engine_error_cases() {
        assert_eq!(
            helm_error("undefined_function", "{{foo}}"),
            "parse error at (undefined_function:1): function \"foo\" not defined"
        );
        assert_eq!(
            helm_error(
                "missing_required",
                "{{required \"foo is required\" .Values.foo}}"
            ),
            "execution error at (missing_required:1:2): foo is required"
        );
        assert_eq!(
            helm_error(
                "c",
                "{{required \":this: message: has many: colons:\" .Values.foo}}"
            ),
            "execution error at (c:1:2): :this: message: has many: colons:"
        );
        assert_eq!(
            helm_error(
                "issue6044",
                "{{ $someEmptyValue := \"\" }}\n{{ $myvar := \"abc\" }}\n{{- required (printf \"%s: something is missing\" $myvar) $someEmptyValue | repeat 0 }}"
            ),
            "execution error at (issue6044:3:4): abc: something is missing"
        );
        assert_eq!(
            helm_error(
                "issue9981",
                "{{required \"foo is required\\nmore info after the break\" .Values.foo}}"
            ),
            "execution error at (issue9981:1:2): foo is required\nmore info after the break"
        );
        assert_eq!(
            helm_error(
                "failtpl",
                "All your base are belong to us{{ fail \"This is an error\" }}"
            ),
            "execution error at (failtpl:1:33): This is an error"
        );
        assert_eq!(helm_error("t", "{{ getHostByName \"helm.sh\" }}"), "");
    }
}
