//! Output order: kustomize's "legacy" kind order by default, or input order with
//! `sortOptions.order: fifo`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::Path;

use crate::Error;
use crate::error::field_err;
use crate::kustomization::SortOptions;
use crate::resource::{Gvk, Resource};

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

pub(crate) fn sort(
    resources: &mut [Resource],
    options: Option<&SortOptions>,
    file: &Path,
) -> Result<(), Error> {
    let order = options
        .and_then(|o| o.order.clone())
        .unwrap_or_else(|| "legacy".into());
    match order.as_str() {
        "fifo" => {
            if options.is_some_and(|o| o.legacy_sort_options.is_some()) {
                return Err(field_err(
                    file,
                    "sortOptions",
                    "legacySortOptions is set but the selected sort order is 'fifo', not 'legacy'",
                ));
            }
            Ok(())
        }
        "legacy" => {
            let (first, last): (Vec<String>, Vec<String>) =
                match options.and_then(|o| o.legacy_sort_options.clone()) {
                    Some(l) => (l.order_first, l.order_last),
                    None => (
                        ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
                        ORDER_LAST.iter().map(|s| s.to_string()).collect(),
                    ),
                };
            let mut ranks: HashMap<String, i64> = HashMap::new();
            let n = first.len() as i64;
            for (i, k) in first.iter().enumerate() {
                ranks.insert(k.clone(), -n + i as i64);
            }
            for (i, k) in last.iter().enumerate() {
                ranks.insert(k.clone(), 1 + i as i64);
            }
            resources.sort_by(|a, b| compare(a, b, &ranks));
            Ok(())
        }
        other => Err(field_err(
            file,
            "sortOptions.order",
            format!("unknown sort order {other:?}, expected legacy or fifo"),
        )),
    }
}

fn gvk_sort_string(g: &Gvk) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(&g.group, "~G"),
        or(&g.version, "~V"),
        or(&g.kind, "~K")
    )
}

fn compare(a: &Resource, b: &Resource, ranks: &HashMap<String, i64>) -> Ordering {
    let (ga, gb) = (a.gvk(), b.gvk());
    if ga != gb {
        let (ra, rb) = (
            ranks.get(&ga.kind).copied().unwrap_or(0),
            ranks.get(&gb.kind).copied().unwrap_or(0),
        );
        if ra != rb {
            return ra.cmp(&rb);
        }
        if ga.kind == "Namespace"
            && gb.kind == "Namespace"
            && (ga.group.is_empty() || gb.group.is_empty())
        {
            return gvk_sort_string(&gb).cmp(&gvk_sort_string(&ga));
        }
        return gvk_sort_string(&ga).cmp(&gvk_sort_string(&gb));
    }
    let key = |r: &Resource| {
        let ns = if r.namespace().is_empty() {
            "~X"
        } else {
            r.namespace()
        };
        let nm = if r.name().is_empty() { "~N" } else { r.name() };
        format!("{}|{}|{}", r.gvk().display(), ns, nm)
    };
    key(a).cmp(&key(b))
}
