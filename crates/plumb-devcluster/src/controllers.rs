//! The controller loop: watches every store event, turns it into work items,
//! and runs the garbage collector, namespace, CRD and workload controllers.
//!
//! One task, sequential reconciles: each reconcile reads the store and
//! writes through compare-and-swap, and writes that change nothing emit no
//! event, so the loop settles.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::cluster::Cluster;
use crate::store::{Event, EventType, meta_str};
use crate::{gc, workloads};

/// A unit of work.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Key {
    Crd(String),
    Namespace(String),
    /// An object being deleted with foreground/orphan finalizers: (resource, ns, name).
    Finalize(String, String, String),
    /// Dependents of a deleted owner: (owner uid).
    Orphaned(String),
    Workload(String, String, String),
}

/// Object identity in the dependents index.
pub(crate) type ObjRef = (String, String, String);

/// Controller state that outlives one reconcile.
pub(crate) struct Controllers {
    pub cluster: Arc<Cluster>,
    delay_tx: mpsc::UnboundedSender<Key>,
    /// owner uid → dependents.
    pub dependents: HashMap<String, HashSet<ObjRef>>,
    /// pod uid → when the simulated kubelet first saw it.
    pub pod_seen: HashMap<String, Instant>,
    /// Pending timers, so each key has at most one (the earliest).
    scheduled: HashMap<Key, Instant>,
}

pub(crate) fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn obj_ref(resource: &str, obj: &Value) -> ObjRef {
    (
        resource.to_string(),
        meta_str(obj, "namespace").to_string(),
        meta_str(obj, "name").to_string(),
    )
}

impl Controllers {
    /// Re-runs `key` after `after`.
    pub fn requeue(&mut self, key: Key, after: Duration) {
        let due = Instant::now() + after;
        if self.scheduled.get(&key).is_some_and(|d| *d <= due) {
            return;
        }
        self.scheduled.insert(key.clone(), due);
        let tx = self.delay_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(key);
        });
    }

    /// A timer fired; stale timers (superseded by an earlier one) still run
    /// the key, which is harmless since reconciles are idempotent.
    fn fired(&mut self, key: Key, queue: &mut BTreeSet<Key>) {
        if self
            .scheduled
            .get(&key)
            .is_some_and(|d| *d <= Instant::now())
        {
            self.scheduled.remove(&key);
        }
        queue.insert(key);
    }

    fn index(&mut self, ev: &Event) {
        let r = obj_ref(&ev.resource, &ev.object);
        if let Some(old) = &ev.old {
            for uid in owner_uids(old) {
                if let Some(set) = self.dependents.get_mut(&uid) {
                    set.remove(&r);
                }
            }
        }
        if ev.kind != EventType::Deleted {
            for uid in owner_uids(&ev.object) {
                self.dependents.entry(uid).or_default().insert(r.clone());
            }
        }
    }

    fn observe(&mut self, ev: &Event, queue: &mut BTreeSet<Key>) {
        self.index(ev);
        let obj = &ev.object;
        let ns = meta_str(obj, "namespace").to_string();
        let name = meta_str(obj, "name").to_string();
        if ev.kind == EventType::Deleted {
            let uid = meta_str(obj, "uid").to_string();
            if self.dependents.get(&uid).is_some_and(|d| !d.is_empty()) {
                queue.insert(Key::Orphaned(uid.clone()));
            }
            self.pod_seen.remove(&uid);
        }
        if !meta_str(obj, "deletionTimestamp").is_empty() && ev.kind != EventType::Deleted {
            queue.insert(Key::Finalize(ev.resource.clone(), ns.clone(), name.clone()));
        }
        // A dependent went away: its owners may be waiting in foreground deletion.
        if ev.kind == EventType::Deleted || !meta_str(obj, "deletionTimestamp").is_empty() {
            for owner in gc::owners_of(&self.cluster, obj) {
                queue.insert(owner);
            }
        }
        match ev.resource.as_str() {
            "customresourcedefinitions.apiextensions.k8s.io" => {
                queue.insert(Key::Crd(name.clone()));
            }
            "namespaces" => {
                queue.insert(Key::Namespace(name.clone()));
            }
            _ => {}
        }
        if !ns.is_empty()
            && self
                .cluster
                .store
                .get("namespaces", "", &ns)
                .is_some_and(|n| !meta_str(&n, "deletionTimestamp").is_empty())
        {
            queue.insert(Key::Namespace(ns.clone()));
        }
        workloads::observe(self, ev, queue);
    }

    fn resync(&mut self, queue: &mut BTreeSet<Key>) {
        self.dependents.clear();
        for resource in self.cluster.store.resources() {
            let (items, _) = self.cluster.store.list(&resource, None);
            for obj in items {
                let r = obj_ref(&resource, &obj);
                for uid in owner_uids(&obj) {
                    self.dependents.entry(uid).or_default().insert(r.clone());
                }
                let (ns, name) = (r.1.clone(), r.2.clone());
                if !meta_str(&obj, "deletionTimestamp").is_empty() {
                    queue.insert(Key::Finalize(resource.clone(), ns.clone(), name.clone()));
                }
                match resource.as_str() {
                    "customresourcedefinitions.apiextensions.k8s.io" => {
                        queue.insert(Key::Crd(name));
                    }
                    "namespaces" => {
                        queue.insert(Key::Namespace(name));
                    }
                    r if workloads::is_workload(r) => {
                        queue.insert(Key::Workload(resource.clone(), ns, name));
                    }
                    _ => {}
                }
            }
        }
    }

    fn reconcile(&mut self, key: Key) {
        match key {
            Key::Crd(name) => gc::reconcile_crd(&self.cluster, &name),
            Key::Namespace(name) => gc::reconcile_namespace(&self.cluster, &name),
            Key::Finalize(resource, ns, name) => gc::finalize(self, &resource, &ns, &name),
            Key::Orphaned(uid) => gc::collect(self, &uid),
            Key::Workload(resource, ns, name) => workloads::reconcile(self, &resource, &ns, &name),
        }
    }
}

/// Runs the controllers until shutdown.
pub(crate) async fn run(cluster: Arc<Cluster>) {
    let mut events = cluster.store.subscribe();
    let (delay_tx, mut delay_rx) = mpsc::unbounded_channel::<Key>();
    let mut shutdown = cluster.shutdown.clone();
    let mut ctl = Controllers {
        cluster,
        delay_tx,
        dependents: HashMap::new(),
        pod_seen: HashMap::new(),
        scheduled: HashMap::new(),
    };
    let mut queue = BTreeSet::new();
    ctl.resync(&mut queue);
    loop {
        for key in std::mem::take(&mut queue) {
            ctl.reconcile(key);
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => ctl.observe(&ev, &mut queue),
                Err(broadcast::error::RecvError::Lagged(_)) => ctl.resync(&mut queue),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            Some(k) = delay_rx.recv() => ctl.fired(k, &mut queue),
            _ = shutdown.changed() => return,
        }
        // Batch whatever else is already waiting.
        loop {
            match events.try_recv() {
                Ok(ev) => ctl.observe(&ev, &mut queue),
                Err(broadcast::error::TryRecvError::Lagged(_)) => ctl.resync(&mut queue),
                Err(_) => break,
            }
        }
        while let Ok(k) = delay_rx.try_recv() {
            ctl.fired(k, &mut queue);
        }
    }
}
