//! Name reference fixing: after prefixes, suffixes and hashes changed names, rewrite every field
//! that refers to a renamed object (the `nameReference` field specs) to its final name.

use serde_json::Value;

use crate::Error;
use crate::fieldspec::{NameBackRef, TransformerConfig, visit};
use crate::patch::ns_equal;
use crate::resource::{Gvk, Resource};

struct Candidate {
    ids: Vec<(String, String)>,
    name: String,
    namespace: String,
    cluster_scoped: bool,
}

fn referenced_matches(nb: &NameBackRef, gvk: &Gvk) -> bool {
    (nb.kind.is_empty() || nb.kind == gvk.kind)
        && (nb.group.is_empty()
            || nb.group == gvk.group
            || nb.group.split('/').next() == Some(gvk.group.as_str()))
        && (nb.version.is_empty() || nb.version == gvk.version || nb.group.contains('/'))
}

pub(crate) fn fix(resources: &mut [Resource], config: &TransformerConfig) -> Result<(), Error> {
    for nb in &config.name_reference {
        let candidates: Vec<Candidate> = resources
            .iter()
            .filter(|r| {
                (referenced_matches(nb, &r.gvk()) || referenced_matches(nb, &r.orig_gvk))
                    && !r.history.is_empty()
            })
            .map(|r| Candidate {
                ids: r.all_ids(),
                name: r.name().to_string(),
                namespace: r.namespace().to_string(),
                cluster_scoped: r.gvk().is_cluster_scoped(),
            })
            .collect();
        if candidates.is_empty() {
            continue;
        }
        for r in resources.iter_mut() {
            let gvk = r.gvk();
            let id = r.id_display();
            let referrer_ns: Vec<String> = r.all_ids().into_iter().map(|(_, ns)| ns).collect();
            let referrer_cluster = gvk.is_cluster_scoped();
            for fs in &nb.field_specs {
                if !fs.matches(&gvk) {
                    continue;
                }
                let segs = fs.segments();
                let pick = |name: &str, ns: Option<&str>| -> Option<&Candidate> {
                    let matching: Vec<&Candidate> = candidates
                        .iter()
                        .filter(|c| c.ids.iter().any(|(n, _)| n == name))
                        .filter(|c| {
                            if c.cluster_scoped || referrer_cluster && ns.is_none() {
                                return true;
                            }
                            match ns {
                                Some(ns) => c.ids.iter().any(|(_, cns)| ns_equal(cns, ns)),
                                None => c.ids.iter().any(|(_, cns)| {
                                    referrer_ns.iter().any(|rns| ns_equal(cns, rns))
                                }),
                            }
                        })
                        .collect();
                    // Sibling bases may hold same-named objects; prefer the one that ended up in
                    // the referrer's namespace.
                    let current_ns = referrer_ns.last().map(String::as_str).unwrap_or("");
                    let wanted = ns.unwrap_or(current_ns);
                    matching
                        .iter()
                        .find(|c| ns_equal(&c.namespace, wanted))
                        .or_else(|| matching.first())
                        .copied()
                };
                visit(&mut r.obj, &segs, None, &mut |v| {
                    rewrite(v, nb, &pick);
                    Ok(())
                })
                .map_err(|message| Error::Object {
                    id: id.clone(),
                    message: format!("fixing name references: {message}"),
                })?;
            }
        }
    }
    Ok(())
}

fn rewrite<'c>(
    v: &mut Value,
    nb: &NameBackRef,
    pick: &dyn Fn(&str, Option<&str>) -> Option<&'c Candidate>,
) {
    match v {
        Value::String(s) => {
            if let Some(c) = pick(s, None) {
                *s = c.name.clone();
            }
        }
        Value::Array(items) => {
            for item in items {
                rewrite(item, nb, pick);
            }
        }
        Value::Object(m) => {
            if let Some(kind) = m.get("kind").and_then(Value::as_str)
                && kind != nb.kind
            {
                return;
            }
            let Some(name) = m.get("name").and_then(Value::as_str).map(str::to_string) else {
                return;
            };
            let ns = m
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(c) = pick(&name, ns.as_deref()) {
                m.insert("name".into(), Value::String(c.name.clone()));
                if !c.namespace.is_empty() && (ns.is_some() || nb.kind == "ServiceAccount") {
                    m.insert("namespace".into(), Value::String(c.namespace.clone()));
                }
            }
        }
        _ => {}
    }
}
