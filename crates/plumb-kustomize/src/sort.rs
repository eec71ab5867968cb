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
    resources: &mut Vec<Resource>,
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
            // Compute each resource's keys once; comparisons then only touch strings.
            let keys: Vec<Key> = resources.iter().map(|r| Key::new(r, &ranks)).collect();
            let mut order: Vec<usize> = (0..resources.len()).collect();
            order.sort_by(|&a, &b| match (keys.get(a), keys.get(b)) {
                (Some(x), Some(y)) => compare(x, y),
                _ => Ordering::Equal,
            });
            let mut slots: Vec<Option<Resource>> =
                std::mem::take(resources).into_iter().map(Some).collect();
            *resources = order
                .into_iter()
                .filter_map(|i| slots.get_mut(i).and_then(Option::take))
                .collect();
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

struct Key {
    gvk: Gvk,
    rank: i64,
    gvk_sort: String,
    id: String,
}

impl Key {
    fn new(r: &Resource, ranks: &HashMap<String, i64>) -> Self {
        let gvk = r.gvk();
        let ns = if r.namespace().is_empty() {
            "~X"
        } else {
            r.namespace()
        };
        let nm = if r.name().is_empty() { "~N" } else { r.name() };
        Key {
            rank: ranks.get(&gvk.kind).copied().unwrap_or(0),
            gvk_sort: gvk_sort_string(&gvk),
            id: format!("{}|{}|{}", gvk.display(), ns, nm),
            gvk,
        }
    }
}

fn compare(a: &Key, b: &Key) -> Ordering {
    if a.gvk != b.gvk {
        if a.rank != b.rank {
            return a.rank.cmp(&b.rank);
        }
        if a.gvk.kind == "Namespace"
            && b.gvk.kind == "Namespace"
            && (a.gvk.group.is_empty() || b.gvk.group.is_empty())
        {
            return b.gvk_sort.cmp(&a.gvk_sort);
        }
        return a.gvk_sort.cmp(&b.gvk_sort);
    }
    a.id.cmp(&b.id)
}
