//! Multiple sources (`spec.sources`), as Argo CD has them.
//!
//! An application with a non-empty `spec.sources` is a multi-source application, even with one
//! entry, and `spec.source` is ignored (Argo CD's rule). Each source is fetched at its own
//! `targetRevision` and rendered with its own settings; the manifests are concatenated in
//! order (a later source's object replaces an earlier one's, with a `RepeatedResourceWarning`).
//! A source with `ref` and neither `path` nor `chart` only provides files: another source's
//! Helm `valueFiles` (and `fileParameters`) entry `$<ref>/path` reads `path` from the root of
//! its checkout, confined to it.
//!
//! Status is written in Argo CD's multi-source shape: `sync.revisions` and
//! `sync.comparedTo.sources`, `sourceTypes`, history entries and sync results with `revisions`
//! and `sources`. Inside the controller the revisions, joined with `", "`, are the one revision
//! key automated sync and operations compare (Argo CD names them the same way in messages).

use crate::Context;
use crate::fetch::{Fetched, fetch};
use crate::sources::{Freshness, Rendered, Resolved};
use plumb_core::application::{ApplicationSpec, Source};
use plumb_core::key::str_at;
use plumb_core::manifest::Manifest;
use plumb_render::{RenderContext, SourceType, ValueRefs};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// What a comparison compares: one source, or every source of `spec.sources`, each at the
/// revision wanted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// `spec.source` (or the source an operation pins) at `revision`.
    One {
        source: Box<Source>,
        revision: String,
    },
    /// `spec.sources` (or the sources an operation pins), `revisions[i]` for `sources[i]`.
    Many {
        sources: Vec<Source>,
        revisions: Vec<String>,
    },
}

impl Target {
    /// What to compare for `spec`, with what a pending `operation` pins: `sync.sources` and
    /// `sync.revisions` (a rollback, `sync` to given revisions) for a multi-source application,
    /// `sync.source` and `sync.revision` for a single-source one. An empty pinned revision means
    /// the source's `targetRevision`.
    pub(crate) fn of(spec: &ApplicationSpec, operation: Option<&Value>) -> Target {
        let sync = operation.and_then(|o| o.get("sync"));
        let pinned_sources: Vec<Source> = sync
            .and_then(|s| s.get("sources"))
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        let pinned_source = operation.and_then(crate::operation::pinned_source);
        let multi =
            !pinned_sources.is_empty() || (!spec.sources.is_empty() && pinned_source.is_none());
        if multi {
            let sources = if pinned_sources.is_empty() {
                spec.sources.clone()
            } else {
                pinned_sources
            };
            let pinned: Vec<String> = sync
                .and_then(|s| s.get("revisions"))
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .map(|r| r.as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            let revisions = sources
                .iter()
                .enumerate()
                .map(|(i, source)| {
                    pinned
                        .get(i)
                        .filter(|r| !r.is_empty())
                        .cloned()
                        .unwrap_or_else(|| source.target_revision.clone())
                })
                .collect();
            return Target::Many { sources, revisions };
        }
        let source = pinned_source.unwrap_or_else(|| {
            spec.all_sources()
                .first()
                .map(|s| (*s).clone())
                .unwrap_or_default()
        });
        let revision = operation
            .and_then(crate::operation::pinned_revision)
            .unwrap_or_else(|| source.target_revision.clone());
        Target::One {
            source: Box::new(source),
            revision,
        }
    }

    /// The same sources at the revisions `comparison` resolved, so a second look sees exactly
    /// what was compared.
    pub(crate) fn resolved(comparison: &crate::reconcile::Comparison) -> Target {
        match &comparison.multi {
            Some(multi) => Target::Many {
                sources: multi.sources.clone(),
                revisions: multi.revisions.clone(),
            },
            None => Target::One {
                source: Box::new(comparison.source.clone()),
                revision: comparison.revision.revision.clone(),
            },
        }
    }

    /// What `spec` compares at the revisions last synced (`status.sync.revisions` of a
    /// multi-source application, `status.sync.revision` of a single-source one), falling back
    /// to each `targetRevision`.
    pub(crate) fn last_compared(spec: &ApplicationSpec, app: &Value) -> Target {
        let revisions = app
            .pointer("/status/sync/revisions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let revision = str_at(app, &["status", "sync", "revision"]).to_string();
        let operation = json!({"sync": {"revisions": revisions, "revision": revision}});
        Target::of(spec, Some(&operation))
    }
}

/// What a multi-source comparison found, beyond the single-source fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MultiSource {
    /// The sources compared, in order, as declared (or as an operation pinned them).
    pub sources: Vec<Source>,
    /// Each source's resolved revision (commit SHA, chart version), in order.
    pub revisions: Vec<String>,
    /// Each source's type as Argo CD reports it (`Directory`, `Kustomize`, `Helm`); empty for
    /// a source that only provides files.
    pub source_types: Vec<String>,
}

impl MultiSource {
    /// The revisions as one key (`a, b`): what automated sync and operations compare.
    pub(crate) fn key(&self) -> String {
        key_of(&self.revisions)
    }

    /// Rewrites the single-source fields of `status` (`sync.revision`,
    /// `sync.comparedTo.source`, `sourceType`) into Argo CD's multi-source ones.
    pub(crate) fn write_status(&self, status: &mut Map<String, Value>) {
        if let Some(sync) = status.get_mut("sync").and_then(Value::as_object_mut) {
            sync.remove("revision");
            sync.insert("revisions".into(), json!(self.revisions));
            if let Some(compared) = sync.get_mut("comparedTo").and_then(Value::as_object_mut) {
                compared.remove("source");
                compared.insert("sources".into(), json!(self.sources));
            }
        }
        status.remove("sourceType");
        status.insert("sourceTypes".into(), json!(self.source_types));
    }

    /// Rewrites a history entry (`revision`, `source`) into Argo CD's multi-source shape
    /// (`revisions`, `sources`).
    pub(crate) fn write_history_entry(&self, entry: &mut Value) {
        if let Some(entry) = entry.as_object_mut() {
            entry.remove("revision");
            entry.remove("source");
            entry.insert("revisions".into(), json!(self.revisions));
            entry.insert("sources".into(), json!(self.sources));
        }
    }

    /// Rewrites `syncResult` of an operation state into Argo CD's multi-source shape: an empty
    /// `revision`, and `revisions` and `sources`.
    pub(crate) fn write_sync_result(&self, state: &mut Value) {
        if let Some(result) = state.get_mut("syncResult").and_then(Value::as_object_mut) {
            result.insert("revision".into(), json!(""));
            result.remove("source");
            result.insert("revisions".into(), json!(self.revisions));
            result.insert("sources".into(), json!(self.sources));
        }
    }

    /// The `sync` of an automated operation, as Argo CD starts one for a multi-source
    /// application: every source at the revision just compared.
    pub(crate) fn automated_sync(&self, prune: bool) -> Value {
        json!({"revisions": self.revisions, "sources": self.sources, "prune": prune})
    }
}

/// Revisions as one key.
fn key_of(revisions: &[String]) -> String {
    revisions.join(", ")
}

/// The revision key an operation state's `syncResult` was made for: its `revisions` (a
/// multi-source application), else its `revision`.
pub(crate) fn result_key(state: &Value) -> String {
    match state
        .pointer("/syncResult/revisions")
        .and_then(Value::as_array)
    {
        Some(revisions) if !revisions.is_empty() => {
            let revisions: Vec<String> = revisions
                .iter()
                .map(|r| r.as_str().unwrap_or_default().to_string())
                .collect();
            key_of(&revisions)
        }
        _ => str_at(state, &["syncResult", "revision"]).to_string(),
    }
}

/// Whether the last sync (`state`) was made with the sources `spec` declares now; Argo CD
/// syncs a multi-source application again when they changed, even at the same revisions.
/// Single-source applications compare revisions only.
pub(crate) fn same_sources(spec: &ApplicationSpec, state: &Value) -> bool {
    if spec.sources.is_empty() {
        return true;
    }
    let synced: Option<Vec<Source>> = state
        .pointer("/syncResult/sources")
        .and_then(|s| serde_json::from_value(s.clone()).ok());
    synced.is_some_and(|synced| synced == spec.sources)
}

/// Whether a source only provides files to other sources: `ref` set, and neither `path` nor
/// `chart` (nor an OCI artifact) to render. A `ref` source with a `path` renders too.
pub(crate) fn is_ref_only(source: &Source) -> bool {
    !source.reference.is_empty()
        && source.path.is_empty()
        && source.chart.is_empty()
        && !source.repo_url.trim().starts_with("oci://")
}

/// Problems with `spec.sources` that parsing cannot see, the field named: a source without
/// `repoURL`, or with none of `path`, `chart` and `ref`; a `ref` that is malformed, repeated or
/// on a chart; a `$<ref>/…` value file naming no source or leading out of its checkout.
pub(crate) fn problem(sources: &[Source]) -> Option<String> {
    let mut refs: Vec<(&str, usize)> = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let at = format!("spec.sources[{i}]");
        if source.repo_url.trim().is_empty() {
            return Some(format!("{at}.repoURL: must be set"));
        }
        if let Some(Err(error)) = crate::reconcile::oci_chart_of(source) {
            return Some(format!("{at}.{error}"));
        }
        let oci = source.repo_url.trim().starts_with("oci://");
        if source.path.is_empty() && source.chart.is_empty() && source.reference.is_empty() && !oci
        {
            return Some(format!(
                "{at}: one of path, chart or ref must be set (repoURL {})",
                source.repo_url
            ));
        }
        if source.reference.is_empty() {
            continue;
        }
        let name = source.reference.as_str();
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Some(format!(
                "{at}.ref: {name:?} may contain only letters, digits, '_' and '-'"
            ));
        }
        if !source.chart.is_empty() {
            return Some(format!(
                "{at}: a source with ref cannot have chart (value files come from Git sources, not from a Helm chart)"
            ));
        }
        if let Some((_, first)) = refs.iter().find(|(r, _)| *r == name) {
            return Some(format!(
                "{at}.ref: {name:?} is also the ref of spec.sources[{first}]; multiple sources had the same ref key"
            ));
        }
        refs.push((name, i));
    }
    for (i, source) in sources.iter().enumerate() {
        let Some(helm) = &source.helm else { continue };
        let value_files = helm
            .get("valueFiles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| ("valueFiles", v.as_str().unwrap_or_default()));
        let file_parameters = helm
            .get("fileParameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| ("fileParameters", str_at(p, &["path"])));
        let mut index = std::collections::HashMap::<&str, usize>::new();
        for (field, given) in value_files.chain(file_parameters) {
            let j = index.entry(field).or_insert(0);
            let at = if field == "valueFiles" {
                format!("spec.sources[{i}].helm.valueFiles[{j}]")
            } else {
                format!("spec.sources[{i}].helm.fileParameters[{j}].path")
            };
            *j += 1;
            let Some(rest) = given.strip_prefix('$') else {
                continue;
            };
            let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
            if !refs.iter().any(|(r, _)| *r == name) {
                let known: Vec<String> = refs.iter().map(|(r, _)| format!("${r}")).collect();
                let known = if known.is_empty() {
                    "no source has a ref".to_string()
                } else {
                    format!("refs are {}", known.join(", "))
                };
                return Some(format!(
                    "{at}: {given:?} names ${name}, but no source has ref {name:?} ({known})"
                ));
            }
            if escapes(path) {
                return Some(format!(
                    "{at}: {given:?} leads outside the source with ref {name:?}"
                ));
            }
        }
    }
    None
}

/// Whether a relative path climbs above its root by its `..` components.
fn escapes(path: &str) -> bool {
    let mut depth: i64 = 0;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// How fresh a fetch of `url` must be when several sources share it: a refresh fetches each
/// repository once, the sources after the first use what that fetch brought.
fn once_per_repository(
    seen: &mut std::collections::HashSet<String>,
    url: &str,
    freshness: Freshness,
) -> Freshness {
    const JUST_FETCHED: std::time::Duration = std::time::Duration::from_secs(30);
    if seen.insert(url.trim().to_string()) {
        freshness
    } else {
        match freshness {
            Freshness::Now => Freshness::Within(JUST_FETCHED),
            within => within,
        }
    }
}

/// The checkouts `source`'s Helm value files and file parameters name (`$<ref>/…`): only
/// those are part of its render, so a new commit of an unrelated ref source does not render
/// it again.
fn refs_used(source: &Source, refs: &ValueRefs) -> ValueRefs {
    let Some(helm) = &source.helm else {
        return ValueRefs::new();
    };
    let value_files = helm
        .get("valueFiles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let file_parameters = helm
        .get("fileParameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| str_at(p, &["path"]));
    value_files
        .chain(file_parameters)
        .filter_map(|given| given.strip_prefix('$'))
        .filter_map(|rest| {
            let name = rest.split('/').next().unwrap_or_default();
            refs.get_key_value(name)
                .map(|(name, root)| (name.clone(), root.clone()))
        })
        .collect()
}

/// A source as messages name it: its repository, after its name when it has one.
fn described(source: &Source) -> String {
    if source.name.is_empty() {
        source.repo_url.clone()
    } else {
        format!("source {:?}, {}", source.name, source.repo_url)
    }
}

/// What rendering every source produced.
pub(crate) struct Render {
    /// The revision key, as one resolved revision (no message or author).
    pub revision: Resolved,
    /// The first source that renders (what single-source fields would show).
    pub first: Source,
    /// The sources' manifests, concatenated in order, with the first rendering source's type.
    pub rendered: Rendered,
    /// Revisions, sources and types.
    pub multi: MultiSource,
}

/// Fetches every source at its revision and renders each that renders, `$<ref>` value files
/// reading from the ref sources' checkouts.
///
/// **Errors**: the first source that cannot be fetched or rendered, named `spec.sources[i]`
/// with its repository; nothing is rendered from the others then.
pub(crate) async fn render(
    context: &Arc<Context>,
    render_context: &RenderContext,
    sources: &[Source],
    revisions: &[String],
    freshness: Freshness,
) -> Result<Render, String> {
    let mut fetched: Vec<Fetched> = Vec::with_capacity(sources.len());
    let mut seen = std::collections::HashSet::new();
    for (i, source) in sources.iter().enumerate() {
        let revision = revisions.get(i).map(String::as_str).unwrap_or_default();
        let freshness = once_per_repository(&mut seen, &source.repo_url, freshness);
        let one = fetch(context, source, revision, freshness)
            .await
            .map_err(|error| {
                let at = format!("spec.sources[{i}]");
                format!("{at} ({}): {}", described(source), error.shown(&at))
            })?;
        fetched.push(one);
    }
    let refs: ValueRefs = sources
        .iter()
        .zip(&fetched)
        .filter(|(source, _)| !source.reference.is_empty())
        .map(|(source, one)| (source.reference.clone(), one.root.clone()))
        .collect();
    let declared = sources.to_vec();
    let render_context = render_context.clone();
    let limits = context.options.limits.clone();
    let renders = context.clone();
    tokio::task::spawn_blocking(move || -> Result<Render, String> {
        let mut manifests: Vec<Manifest> = Vec::new();
        let mut source_types = Vec::with_capacity(declared.len());
        let mut first: Option<(Source, SourceType)> = None;
        for (i, (source, one)) in declared.iter().zip(&fetched).enumerate() {
            if is_ref_only(source) {
                source_types.push(String::new());
                continue;
            }
            let used = refs_used(source, &refs);
            let rendered = renders
                .renders
                .render_with_refs(
                    &one.revision.revision,
                    &one.root,
                    &one.source,
                    &render_context,
                    &limits,
                    Some(&used),
                )
                .map_err(|error| {
                    let at = format!("spec.sources[{i}]");
                    let error = error.replace("spec.source.", &format!("{at}."));
                    if error.starts_with(&at) {
                        error
                    } else {
                        format!("{at} ({}): {error}", described(source))
                    }
                })?;
            source_types.push(rendered.0.as_str().to_string());
            if first.is_none() {
                first = Some((source.clone(), rendered.0));
            }
            manifests.extend(rendered.1.iter().cloned());
        }
        let revisions: Vec<String> = fetched
            .iter()
            .map(|f| f.revision.revision.clone())
            .collect();
        let (first, source_type) = first.unwrap_or_else(|| {
            (
                declared.first().cloned().unwrap_or_default(),
                SourceType::Directory,
            )
        });
        let multi = MultiSource {
            sources: declared,
            revisions,
            source_types,
        };
        Ok(Render {
            revision: Resolved {
                revision: multi.key(),
                message: String::new(),
                author: String::new(),
            },
            first,
            rendered: Arc::new((source_type, manifests)),
            multi,
        })
    })
    .await
    .map_err(|e| format!("render task failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(value: Value) -> Source {
        serde_json::from_value(value).expect("source")
    }

    fn spec(value: Value) -> ApplicationSpec {
        ApplicationSpec::parse(&value).expect("spec")
    }

    #[test]
    fn sources_win_over_source_and_operations_pin_revisions() {
        let spec = spec(json!({
            "source": {"repoURL": "https://ignored", "path": "x"},
            "sources": [
                {"repoURL": "https://charts", "chart": "web", "targetRevision": "1.x"},
                {"repoURL": "https://git/values", "targetRevision": "main", "ref": "values"}]}));
        let Target::Many { sources, revisions } = Target::of(&spec, None) else {
            panic!("multi-source")
        };
        assert_eq!(sources.len(), 2);
        assert_eq!(revisions, ["1.x", "main"]);
        // An operation's revisions pin each source; an empty one keeps the targetRevision.
        let operation = json!({"sync": {"revisions": ["1.2.0", ""]}});
        assert_eq!(
            Target::of(&spec, Some(&operation)),
            Target::Many {
                sources: spec.sources.clone(),
                revisions: vec!["1.2.0".into(), "main".into()]
            }
        );
        // A rollback pins the sources it deployed too.
        let operation = json!({"sync": {"revisions": ["abc"], "sources": [{"repoURL": "https://old", "path": "p"}]}});
        let Target::Many { sources, revisions } = Target::of(&spec, Some(&operation)) else {
            panic!("multi-source")
        };
        assert_eq!(sources[0].repo_url, "https://old");
        assert_eq!(revisions, ["abc"]);
    }

    #[test]
    fn a_single_source_keeps_its_pinned_revision() {
        let spec = spec(
            json!({"source": {"repoURL": "https://git", "path": "x", "targetRevision": "main"}}),
        );
        let operation = json!({"sync": {"revision": "abc"}});
        assert_eq!(
            Target::of(&spec, Some(&operation)),
            Target::One {
                source: Box::new(spec.source.clone().expect("source")),
                revision: "abc".into()
            }
        );
    }

    #[test]
    fn ref_only_sources_are_told_apart() {
        assert!(is_ref_only(&source(
            json!({"repoURL": "https://git", "ref": "values"})
        )));
        assert!(!is_ref_only(&source(
            json!({"repoURL": "https://git", "ref": "values", "path": "manifests"})
        )));
        assert!(!is_ref_only(&source(
            json!({"repoURL": "https://git", "path": "manifests"})
        )));
    }

    #[test]
    fn bad_sources_are_named() {
        let check = |sources: Value| {
            let sources: Vec<Source> = serde_json::from_value(sources).expect("sources");
            problem(&sources).unwrap_or_default()
        };
        assert_eq!(
            check(json!([{"repoURL": "https://a", "path": "x"}, {"path": "y"}])),
            "spec.sources[1].repoURL: must be set"
        );
        assert!(
            check(json!([{"repoURL": "https://a"}])).starts_with("spec.sources[0]: one of path")
        );
        assert!(
            check(json!([{"repoURL": "https://a", "ref": "a b"}]))
                .starts_with("spec.sources[0].ref: \"a b\"")
        );
        let duplicate = check(json!([
            {"repoURL": "https://a", "ref": "values"},
            {"repoURL": "https://b", "ref": "values"}]));
        assert!(
            duplicate
                .starts_with("spec.sources[1].ref: \"values\" is also the ref of spec.sources[0]"),
            "{duplicate}"
        );
        assert!(
            check(json!([{"repoURL": "https://charts", "chart": "c", "ref": "v"}]))
                .contains("cannot have chart")
        );
        let unknown = check(json!([
            {"repoURL": "https://charts", "chart": "c", "targetRevision": "1",
                "helm": {"valueFiles": ["values.yaml", "$vals/prod.yaml"]}},
            {"repoURL": "https://git", "ref": "values"}]));
        assert_eq!(
            unknown,
            "spec.sources[0].helm.valueFiles[1]: \"$vals/prod.yaml\" names $vals, but no source has ref \"vals\" (refs are $values)"
        );
        let escape = check(json!([
            {"repoURL": "https://charts", "chart": "c",
                "helm": {"fileParameters": [{"name": "a", "path": "$values/a/../../etc/passwd"}]}},
            {"repoURL": "https://git", "ref": "values"}]));
        assert_eq!(
            escape,
            "spec.sources[0].helm.fileParameters[0].path: \"$values/a/../../etc/passwd\" leads outside the source with ref \"values\""
        );
        assert_eq!(
            check(json!([
                {"repoURL": "https://charts", "chart": "c",
                    "helm": {"valueFiles": ["$values/a/../b.yaml"]}},
                {"repoURL": "https://git", "ref": "values", "path": "also-renders"}])),
            ""
        );
    }

    #[test]
    fn status_takes_argo_cds_multi_source_shape() {
        let multi = MultiSource {
            sources: vec![source(json!({"repoURL": "https://a", "path": "x"}))],
            revisions: vec!["abc".into(), "1.0.0".into()],
            source_types: vec!["Helm".into(), String::new()],
        };
        let mut status = json!({"sync": {"status": "Synced", "revision": "abc, 1.0.0",
            "comparedTo": {"source": {}, "destination": {"namespace": "apps"}}},
            "sourceType": "Helm"});
        multi.write_status(status.as_object_mut().expect("object"));
        assert_eq!(
            status,
            json!({"sync": {"status": "Synced", "revisions": ["abc", "1.0.0"],
                "comparedTo": {"destination": {"namespace": "apps"},
                    "sources": [{"repoURL": "https://a", "path": "x", "targetRevision": "",
                        "chart": "", "directory": null, "kustomize": null, "helm": null, "ref": ""}]}},
                "sourceTypes": ["Helm", ""]})
        );
        let mut state =
            json!({"syncResult": {"revision": "abc, 1.0.0", "source": {}, "resources": []}});
        multi.write_sync_result(&mut state);
        assert_eq!(result_key(&state), "abc, 1.0.0");
        assert_eq!(state["syncResult"]["revision"], "");
        assert_eq!(
            result_key(&json!({"syncResult": {"revision": "abc"}})),
            "abc"
        );
    }

    #[test]
    fn a_change_of_sources_is_a_new_sync() {
        let spec = spec(json!({"sources": [{"repoURL": "https://a", "path": "x"}]}));
        let state = json!({"syncResult": {"sources": [{"repoURL": "https://a", "path": "x", "helm": null}]}});
        assert!(same_sources(&spec, &state));
        let state = json!({"syncResult": {"sources": [{"repoURL": "https://a", "path": "y"}]}});
        assert!(!same_sources(&spec, &state));
        assert!(!same_sources(
            &spec,
            &json!({"syncResult": {"revision": "abc"}})
        ));
    }

    #[test]
    fn a_refresh_fetches_a_repository_once_for_all_its_sources() {
        let mut seen = std::collections::HashSet::new();
        let hour = Freshness::Within(std::time::Duration::from_secs(3600));
        assert_eq!(
            once_per_repository(&mut seen, "https://a", Freshness::Now),
            Freshness::Now
        );
        assert_eq!(
            once_per_repository(&mut seen, "https://b", Freshness::Now),
            Freshness::Now
        );
        assert_eq!(
            once_per_repository(&mut seen, "https://a", Freshness::Now),
            Freshness::Within(std::time::Duration::from_secs(30))
        );
        assert_eq!(once_per_repository(&mut seen, "https://a", hour), hour);
    }

    #[test]
    fn a_source_renders_with_the_checkouts_it_names_only() {
        let refs: ValueRefs = [
            ("values".to_string(), "/snap/a".into()),
            ("other".to_string(), "/snap/b".into()),
        ]
        .into_iter()
        .collect();
        let chart = source(json!({"repoURL": "https://c", "chart": "c",
            "helm": {"valueFiles": ["values.yaml", "$values/x.yaml"],
                "fileParameters": [{"name": "f", "path": "$values/f.txt"}]}}));
        assert_eq!(
            refs_used(&chart, &refs).keys().collect::<Vec<_>>(),
            ["values"]
        );
        let plain = source(json!({"repoURL": "https://g", "path": "p"}));
        assert!(refs_used(&plain, &refs).is_empty());
    }

    #[test]
    fn lexical_escapes_are_seen() {
        assert!(escapes("../x"));
        assert!(escapes("a/../../x"));
        assert!(!escapes("a/../x"));
        assert!(!escapes("./a/b.yaml"));
    }
}
