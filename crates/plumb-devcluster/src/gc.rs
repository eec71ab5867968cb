//! Garbage collection (ownerReferences with Background, Foreground and
//! Orphan propagation), namespace termination, and CRD establishment.

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::controllers::{Controllers, Key, owner_uids};
use crate::lifecycle::{self, DeleteOptions, FOREGROUND, ORPHAN, Propagation};
use crate::meta::{metadata_mut, now};
use crate::objects::commit_update;
use crate::resources::{from_crd, group_resource};
use crate::store::{WriteError, meta_str};

/// Finalize keys for the owners of an object.
pub(crate) fn owners_of(cluster: &Cluster, obj: &Value) -> Vec<Key> {
    let ns = meta_str(obj, "namespace");
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let av = r.get("apiVersion").and_then(Value::as_str)?;
            let kind = r.get("kind").and_then(Value::as_str)?;
            let name = r.get("name").and_then(Value::as_str)?;
            let rt = cluster.registry.by_kind(av, kind)?;
            let owner_ns = if rt.namespaced { ns } else { "" };
            Some(Key::Finalize(
                rt.key(),
                owner_ns.to_string(),
                name.to_string(),
            ))
        })
        .collect()
}

fn background() -> DeleteOptions {
    DeleteOptions {
        propagation: Some(Propagation::Background),
        ..DeleteOptions::default()
    }
}

/// Deletes a dependent, or drops the owner reference when other owners remain.
fn release(
    cluster: &Cluster,
    resource: &str,
    ns: &str,
    name: &str,
    owner_uid: &str,
    delete: bool,
    policy: Propagation,
) {
    let Some(rt) = cluster.registry.by_key(resource) else {
        return;
    };
    loop {
        let Some(obj) = cluster.store.get(resource, ns, name) else {
            return;
        };
        let others: Vec<String> = owner_uids(&obj)
            .into_iter()
            .filter(|u| u != owner_uid)
            .collect();
        let others_alive = others.iter().any(|u| uid_exists(cluster, &obj, u));
        if delete && !others_alive {
            if meta_str(&obj, "deletionTimestamp").is_empty() {
                let opts = DeleteOptions {
                    propagation: Some(policy),
                    ..DeleteOptions::default()
                };
                let _ = lifecycle::delete(cluster, &rt, ns, name, &opts);
            }
            return;
        }
        let mut new = (*obj).clone();
        if let Some(refs) = new
            .pointer_mut("/metadata/ownerReferences")
            .and_then(Value::as_array_mut)
        {
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
            if refs.is_empty() {
                metadata_mut(&mut new).shift_remove("ownerReferences");
            }
        }
        match commit_update(cluster, &rt, &obj, new, false) {
            Err(WriteError::Conflict) => continue,
            _ => return,
        }
    }
}

/// Whether an owner with this uid still exists (owners live in the
/// dependent's namespace or are cluster-scoped).
fn uid_exists(cluster: &Cluster, dependent: &Value, uid: &str) -> bool {
    let ns = meta_str(dependent, "namespace");
    dependent
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
        .any(|r| {
            let (Some(av), Some(kind), Some(name)) = (
                r.get("apiVersion").and_then(Value::as_str),
                r.get("kind").and_then(Value::as_str),
                r.get("name").and_then(Value::as_str),
            ) else {
                return false;
            };
            let Some(rt) = cluster.registry.by_kind(av, kind) else {
                return false;
            };
            let owner_ns = if rt.namespaced { ns } else { "" };
            cluster
                .store
                .get(&rt.key(), owner_ns, name)
                .is_some_and(|o| meta_str(&o, "uid") == uid)
        })
}

/// The owner with `uid` is gone: delete its dependents (background).
pub(crate) fn collect(ctl: &mut Controllers, uid: &str) {
    let deps: Vec<_> = ctl
        .dependents
        .get(uid)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    for (resource, ns, name) in deps {
        release(
            &ctl.cluster,
            &resource,
            &ns,
            &name,
            uid,
            true,
            Propagation::Background,
        );
    }
}

/// Progresses foreground and orphan deletion of one object.
pub(crate) fn finalize(ctl: &mut Controllers, resource: &str, ns: &str, name: &str) {
    let cluster = ctl.cluster.clone();
    let Some(rt) = cluster.registry.by_key(resource) else {
        return;
    };
    let Some(obj) = cluster.store.get(resource, ns, name) else {
        return;
    };
    if meta_str(&obj, "deletionTimestamp").is_empty() {
        return;
    }
    let fins: Vec<String> = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let uid = meta_str(&obj, "uid").to_string();
    let deps: Vec<_> = ctl
        .dependents
        .get(&uid)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    if fins.iter().any(|f| f == ORPHAN) {
        for (r, dns, dname) in &deps {
            release(&cluster, r, dns, dname, &uid, false, Propagation::Orphan);
        }
        lifecycle::remove_finalizer(&cluster, &rt, &obj, ORPHAN);
        return;
    }
    if fins.iter().any(|f| f == FOREGROUND) {
        let mut remaining = false;
        for (r, dns, dname) in &deps {
            if cluster.store.get(r, dns, dname).is_some() {
                remaining = true;
                release(&cluster, r, dns, dname, &uid, true, Propagation::Foreground);
            }
        }
        if !remaining {
            lifecycle::remove_finalizer(&cluster, &rt, &obj, FOREGROUND);
        }
    }
}

/// Empties a terminating namespace, then removes it.
pub(crate) fn reconcile_namespace(cluster: &Cluster, name: &str) {
    let Some(ns) = cluster.store.get("namespaces", "", name) else {
        return;
    };
    if meta_str(&ns, "deletionTimestamp").is_empty() {
        return;
    }
    for rt in cluster.registry.all().into_iter().filter(|t| t.namespaced) {
        let (items, _) = cluster.store.list(&rt.key(), Some(name));
        for obj in items {
            if meta_str(&obj, "deletionTimestamp").is_empty() {
                let _ =
                    lifecycle::delete(cluster, &rt, name, meta_str(&obj, "name"), &background());
            }
        }
    }
    if !cluster.store.namespace_is_empty(name) {
        return;
    }
    let Some(rt) = cluster.registry.by_key("namespaces") else {
        return;
    };
    let has_meta_finalizers = ns
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let mut new = (*ns).clone();
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("finalizers".into(), json!([]));
    }
    if has_meta_finalizers {
        let _ = commit_update(cluster, &rt, &ns, new, false);
        return;
    }
    let _ = cluster
        .store
        .remove("namespaces", "", name, crate::store::object_rv(&ns));
}

/// Registers (or unregisters) a CRD's resource and marks it Established.
pub(crate) fn reconcile_crd(cluster: &Cluster, name: &str) {
    let crd = cluster
        .store
        .get("customresourcedefinitions.apiextensions.k8s.io", "", name);
    let Some(crd) = crd.filter(|c| meta_str(c, "deletionTimestamp").is_empty()) else {
        // Deleted (or deleting): drop the resource and its objects.
        if let Some((plural, group)) = name.split_once('.') {
            let key = group_resource(group, plural);
            if let Some(rt) = cluster.registry.by_key(&key) {
                let (items, _) = cluster.store.list(&key, None);
                for obj in items {
                    let _ = lifecycle::delete(
                        cluster,
                        &rt,
                        meta_str(&obj, "namespace"),
                        meta_str(&obj, "name"),
                        &background(),
                    );
                }
            }
            cluster.registry.remove(&key);
        }
        return;
    };
    let Some(rt) = from_crd(&crd) else {
        return;
    };
    if cluster.registry.by_key(&rt.key()).as_deref() != Some(&rt) {
        cluster.registry.insert(rt.clone());
    }
    let established = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("type") == Some(&json!("Established"))
                    && c.get("status") == Some(&json!("True"))
            })
        });
    let mut names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    if let Some(n) = names.as_object_mut() {
        n.entry("singular").or_insert(json!(rt.singular));
        n.entry("listKind")
            .or_insert(json!(format!("{}List", rt.kind)));
    }
    if established && crd.pointer("/status/acceptedNames") == Some(&names) {
        return;
    }
    let Some(crd_rt) = cluster
        .registry
        .by_key("customresourcedefinitions.apiextensions.k8s.io")
    else {
        return;
    };
    let t = now();
    let mut new = (*crd).clone();
    if let Some(m) = new.as_object_mut() {
        m.insert(
            "status".into(),
            json!({
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t, "reason": "NoConflicts", "message": "no conflicts found"},
                    {"type": "Established", "status": "True", "lastTransitionTime": t, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
                ],
                "acceptedNames": names,
                "storedVersions": [rt.preferred_version()],
            }),
        );
    }
    let _ = commit_update(cluster, &crd_rt, &crd, new, false);
}
