//! Deletion semantics shared by the DELETE handler and the controllers:
//! preconditions, finalizers, propagation policies and namespace termination.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::errors::ApiError;
use crate::meta::{metadata_mut, now};
use crate::objects::write_error;
use crate::resources::ResourceType;
use crate::store::{WriteError, meta_str, object_rv};

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

pub(crate) const FOREGROUND: &str = "foregroundDeletion";
pub(crate) const ORPHAN: &str = "orphan";

/// Parsed `DeleteOptions`.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn parse(body: &Value, query: &crate::request::Query) -> Result<Self, ApiError> {
        let policy = body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .or_else(|| query.get("propagationPolicy"));
        let mut propagation = match policy {
            None => None,
            Some("Background") => Some(Propagation::Background),
            Some("Foreground") => Some(Propagation::Foreground),
            Some("Orphan") => Some(Propagation::Orphan),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                )));
            }
        };
        let orphan = body
            .get("orphanDependents")
            .and_then(Value::as_bool)
            .or_else(|| query.get("orphanDependents").map(|v| v == "true"));
        if propagation.is_none() && orphan == Some(true) {
            propagation = Some(Propagation::Orphan);
        }
        let dry_run = query.dry_run
            || body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        let pre = body.get("preconditions");
        let s = |k: &str| {
            pre.and_then(|p| p.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Ok(DeleteOptions {
            propagation,
            precondition_uid: s("uid"),
            precondition_rv: s("resourceVersion"),
            dry_run,
        })
    }
}

/// What a delete did.
pub(crate) enum Deleted {
    /// Removed from the store.
    Gone(Arc<Value>),
    /// Marked for deletion; finalizers still pending.
    Pending(Arc<Value>),
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes an object as kube-apiserver would.
pub(crate) fn delete(
    cluster: &Cluster,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    loop {
        let old = cluster
            .store
            .get(&rt.key(), namespace, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if let Some(uid) = &opts.precondition_uid
            && uid != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid")
                ),
            ));
        }
        if let Some(rv) = &opts.precondition_rv
            && rv != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion")
                ),
            ));
        }
        let mut fins = finalizers(&old);
        let deleting = !meta_str(&old, "deletionTimestamp").is_empty();
        match opts.propagation {
            Some(Propagation::Foreground) if !fins.iter().any(|f| f == FOREGROUND) => {
                fins.retain(|f| f != ORPHAN);
                fins.push(FOREGROUND.into());
            }
            Some(Propagation::Orphan) if !fins.iter().any(|f| f == ORPHAN) => {
                fins.retain(|f| f != FOREGROUND);
                fins.push(ORPHAN.into());
            }
            _ => {}
        }
        let is_namespace = rt.kind == "Namespace";
        if fins.is_empty() && !is_namespace {
            if opts.dry_run {
                return Ok(Deleted::Gone(old));
            }
            match cluster
                .store
                .remove(&rt.key(), namespace, name, object_rv(&old))
            {
                Ok(gone) => return Ok(Deleted::Gone(gone)),
                Err(WriteError::Conflict) => continue,
                Err(e) => return Err(write_error(rt, name, e)),
            }
        }
        if deleting && fins == finalizers(&old) {
            return Ok(Deleted::Pending(old));
        }
        let mut new = (*old).clone();
        let meta = metadata_mut(&mut new);
        if !deleting {
            meta.insert("deletionTimestamp".into(), json!(now()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if rt.generation {
                let g = meta.get("generation").and_then(Value::as_i64).unwrap_or(0);
                meta.insert("generation".into(), json!(g + 1));
            }
        }
        if fins.is_empty() {
            meta.shift_remove("finalizers");
        } else {
            meta.insert("finalizers".into(), json!(fins));
        }
        if is_namespace && let Some(m) = new.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Terminating"}));
        }
        if opts.dry_run {
            return Ok(Deleted::Pending(Arc::new(new)));
        }
        match cluster.store.update(&rt.key(), new, object_rv(&old)) {
            Ok(o) => return Ok(Deleted::Pending(o)),
            Err(WriteError::Conflict) => continue,
            Err(e) => return Err(write_error(rt, name, e)),
        }
    }
}

/// Removes one finalizer; removes the object when it was the last one on a
/// deleting object. Returns whether the object changed.
pub(crate) fn remove_finalizer(
    cluster: &Cluster,
    rt: &ResourceType,
    obj: &Value,
    finalizer: &str,
) -> bool {
    let ns = meta_str(obj, "namespace").to_string();
    let name = meta_str(obj, "name").to_string();
    loop {
        let Some(cur) = cluster.store.get(&rt.key(), &ns, &name) else {
            return false;
        };
        let mut fins = finalizers(&cur);
        if !fins.iter().any(|f| f == finalizer) {
            return false;
        }
        fins.retain(|f| f != finalizer);
        let mut new = (*cur).clone();
        let meta = metadata_mut(&mut new);
        if fins.is_empty() {
            meta.shift_remove("finalizers");
        } else {
            meta.insert("finalizers".into(), json!(fins));
        }
        match crate::objects::commit_update(cluster, rt, &cur, new, false) {
            Ok(_) => return true,
            Err(WriteError::Conflict) => continue,
            Err(_) => return false,
        }
    }
}
