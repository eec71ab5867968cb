//! A resource under construction: the object plus what kustomize tracks beside it (the names
//! it had before prefixes/suffixes/hashes, generator settings, build metadata).

use serde_json::{Map, Value};

use crate::kustomization::Selector;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub(crate) fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }

    /// Kustomize's `Gvk.String()`: `Kind.version.group` with `[noVer]`/`[noGrp]` placeholders.
    pub(crate) fn display(&self) -> String {
        let v = if self.version.is_empty() {
            "[noVer]"
        } else {
            &self.version
        };
        let g = if self.group.is_empty() {
            "[noGrp]"
        } else {
            &self.group
        };
        format!("{}.{}.{}", self.kind, v, g)
    }

    pub(crate) fn is_cluster_scoped(&self) -> bool {
        CLUSTER_SCOPED.contains(&self.kind.as_str())
    }
}

/// Built-in kinds without a namespace (kyaml's openapi-derived list, common subset).
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "FlowSchema",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PodSecurityPolicy",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "StorageClass",
    "SubjectAccessReview",
    "TokenReview",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

#[derive(Debug, Clone, Default)]
pub(crate) struct GeneratorInfo {
    /// Whether a content hash is appended to the name at the end of the build.
    pub needs_hash: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub obj: Value,
    /// Earlier (name, namespace) pairs, oldest first; the current one is in `obj`.
    pub history: Vec<(String, String)>,
    /// The GVK when the resource was loaded (patches may change the kind).
    pub orig_gvk: Gvk,
    pub generator: Option<GeneratorInfo>,
    /// `config.kubernetes.io/origin` content when buildMetadata asks for it.
    pub origin: Option<Value>,
    /// Transformers that touched the resource (buildMetadata: transformerAnnotations).
    pub transformations: Vec<Value>,
}

impl Resource {
    pub(crate) fn new(obj: Value) -> Self {
        let gvk = gvk_of(&obj);
        Resource {
            obj,
            history: Vec::new(),
            orig_gvk: gvk,
            generator: None,
            origin: None,
            transformations: Vec::new(),
        }
    }

    pub(crate) fn gvk(&self) -> Gvk {
        gvk_of(&self.obj)
    }

    pub(crate) fn name(&self) -> &str {
        self.obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub(crate) fn namespace(&self) -> &str {
        self.obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Rename, remembering the old name for reference fixing.
    pub(crate) fn set_name(&mut self, name: &str) {
        let old = (self.name().to_string(), self.namespace().to_string());
        if old.0 == name {
            return;
        }
        self.history.push(old);
        if let Some(meta) = self.metadata_mut() {
            meta.insert("name".into(), Value::String(name.to_string()));
        }
    }

    pub(crate) fn set_namespace(&mut self, ns: &str) {
        let old = (self.name().to_string(), self.namespace().to_string());
        if old.1 == ns {
            return;
        }
        self.history.push(old);
        if let Some(meta) = self.metadata_mut() {
            meta.insert("namespace".into(), Value::String(ns.to_string()));
        }
    }

    pub(crate) fn metadata_mut(&mut self) -> Option<&mut Map<String, Value>> {
        let obj = self.obj.as_object_mut()?;
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        meta.as_object_mut()
    }

    /// Every (name, namespace) this resource has had, including the current one.
    pub(crate) fn all_ids(&self) -> Vec<(String, String)> {
        let mut v = self.history.clone();
        v.push((self.name().to_string(), self.namespace().to_string()));
        v
    }

    /// Kustomize's resource id display: `Kind.version.group/name.namespace`.
    pub(crate) fn id_display(&self) -> String {
        id_display(&self.gvk(), self.name(), self.namespace())
    }

    pub(crate) fn labels(&self) -> Map<String, Value> {
        self.obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn annotations(&self) -> Map<String, Value> {
        self.obj
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }
}

/// A selector with its regular expressions compiled once, for matching many resources.
pub(crate) struct SelectorMatcher {
    group: Option<regex::Regex>,
    version: Option<regex::Regex>,
    kind: Option<regex::Regex>,
    name: Option<regex::Regex>,
    namespace: Option<regex::Regex>,
    label_selector: Option<String>,
    annotation_selector: Option<String>,
}

impl SelectorMatcher {
    pub(crate) fn new(sel: &Selector) -> Result<Self, String> {
        let compile = |p: &Option<String>| -> Result<Option<regex::Regex>, String> {
            p.as_ref()
                .map(|pattern| {
                    regex::Regex::new(&format!("^(?:{pattern})$"))
                        .map_err(|e| format!("invalid regex {pattern:?}: {e}"))
                })
                .transpose()
        };
        for s in [&sel.label_selector, &sel.annotation_selector]
            .into_iter()
            .flatten()
        {
            label_selector_matches(s, &Map::new())?;
        }
        Ok(SelectorMatcher {
            group: compile(&sel.group)?,
            version: compile(&sel.version)?,
            kind: compile(&sel.kind)?,
            name: compile(&sel.name)?,
            namespace: compile(&sel.namespace)?,
            label_selector: sel.label_selector.clone(),
            annotation_selector: sel.annotation_selector.clone(),
        })
    }

    pub(crate) fn matches(&self, r: &Resource) -> bool {
        let gvk = r.gvk();
        let ok = |re: &Option<regex::Regex>, v: &str| re.as_ref().is_none_or(|re| re.is_match(v));
        if !ok(&self.group, &gvk.group)
            || !ok(&self.version, &gvk.version)
            || !ok(&self.kind, &gvk.kind)
        {
            return false;
        }
        if self.name.is_some() || self.namespace.is_some() {
            let ids = r.all_ids();
            if self.name.is_some() && !ids.iter().any(|(n, _)| ok(&self.name, n)) {
                return false;
            }
            if self.namespace.is_some() && !ids.iter().any(|(_, ns)| ok(&self.namespace, ns)) {
                return false;
            }
        }
        if let Some(ls) = &self.label_selector
            && !label_selector_matches(ls, &r.labels()).unwrap_or(false)
        {
            return false;
        }
        if let Some(a) = &self.annotation_selector
            && !label_selector_matches(a, &r.annotations()).unwrap_or(false)
        {
            return false;
        }
        true
    }
}

pub(crate) fn id_display(gvk: &Gvk, name: &str, ns: &str) -> String {
    let ns = if ns.is_empty() { "[noNs]" } else { ns };
    format!("{}/{}.{}", gvk.display(), name, ns)
}

pub(crate) fn gvk_of(obj: &Value) -> Gvk {
    let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    Gvk::from_api_version(api, kind)
}

/// Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`,
/// `!a`, comma separated.
pub(crate) fn label_selector_matches(
    sel: &str,
    labels: &Map<String, Value>,
) -> Result<bool, String> {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    for term in split_terms(sel) {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        let ok = if let Some((k, rest)) = term.split_once(" notin ") {
            let set = parse_set(rest)?;
            get(k.trim()).is_none_or(|v| !set.iter().any(|s| s == v))
        } else if let Some((k, rest)) = term.split_once(" in ") {
            let set = parse_set(rest)?;
            get(k.trim()).is_some_and(|v| set.iter().any(|s| s == v))
        } else if let Some((k, v)) = term.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==") {
            get(k.trim()) == Some(v.trim())
        } else if let Some((k, v)) = term.split_once('=') {
            get(k.trim()) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            get(k.trim()).is_none()
        } else {
            get(term).is_some()
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn split_terms(sel: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in sel.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("invalid label selector set {rest:?}"))?;
    Ok(inner.split(',').map(|s| s.trim().to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let labels = json!({"app": "web", "tier": "front"});
        let labels = labels.as_object().cloned().unwrap_or_default();
        assert_eq!(label_selector_matches("app=web", &labels), Ok(true));
        assert_eq!(
            label_selector_matches("app=web,tier!=front", &labels),
            Ok(false)
        );
        assert_eq!(
            label_selector_matches("tier in (back, front)", &labels),
            Ok(true)
        );
        assert_eq!(
            label_selector_matches("tier notin (front)", &labels),
            Ok(false)
        );
        assert_eq!(label_selector_matches("!missing,app", &labels), Ok(true));
        assert!(label_selector_matches("tier in front", &labels).is_err());
    }

    #[test]
    fn selector_matcher_uses_anchored_regexes_and_old_names() {
        let mut r = Resource::new(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
        );
        r.set_name("prod-web");
        let sel = |name: &str| Selector {
            kind: Some("Deploy.*".into()),
            name: Some(name.into()),
            ..Default::default()
        };
        assert!(SelectorMatcher::new(&sel("web")).is_ok_and(|m| m.matches(&r)));
        assert!(SelectorMatcher::new(&sel("prod-.*")).is_ok_and(|m| m.matches(&r)));
        assert!(SelectorMatcher::new(&sel("we")).is_ok_and(|m| !m.matches(&r)));
        assert!(SelectorMatcher::new(&sel("(")).is_err());
    }

    #[test]
    fn id_display_matches_kustomize() {
        let gvk = Gvk::from_api_version("v1", "Service");
        assert_eq!(id_display(&gvk, "web", ""), "Service.v1.[noGrp]/web.[noNs]");
    }
}
