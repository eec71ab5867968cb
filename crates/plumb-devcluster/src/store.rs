//! The object store: every object keyed by resource, namespace and name, one
//! global resourceVersion counter, an event log for watch replay and a
//! broadcast channel for live watchers.
//!
//! The store only does compare-and-swap writes; API semantics (defaulting,
//! validation, managedFields) live in the handlers above it. Every write
//! happens under one lock, so the event order equals the resourceVersion order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::persist::Journal;

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as seen by watchers.
#[derive(Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub kind: EventType,
    /// The resource key (`plural.group`).
    pub resource: String,
    pub object: Arc<Value>,
    /// The object before the change, for selector transitions.
    pub old: Option<Arc<Value>>,
    /// The object serialized once, shared by every watcher that needs it as stored.
    pub json: std::sync::OnceLock<bytes::Bytes>,
}

/// Why a compare-and-swap write was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteError {
    Exists,
    NotFound,
    Conflict,
}

type Bucket = BTreeMap<(String, String), Arc<Value>>;

struct Inner {
    rv: u64,
    objects: HashMap<String, Bucket>,
    log: VecDeque<Arc<Event>>,
    /// The oldest resourceVersion a watch may resume from.
    oldest: u64,
}

/// How many events are kept for watch replay.
const LOG_CAPACITY: usize = 20_000;

pub(crate) struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Event>>,
    journal: Option<Journal>,
}

/// The result of starting a watch: history to replay, then live events.
pub(crate) struct WatchStart {
    pub replay: Vec<Arc<Event>>,
    pub live: broadcast::Receiver<Arc<Event>>,
    pub rv: u64,
}

pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The resourceVersion of an object as a number (0 when absent or malformed).
pub(crate) fn object_rv(obj: &Value) -> u64 {
    meta_str(obj, "resourceVersion").parse().unwrap_or(0)
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
    }
}

impl Store {
    pub fn new(journal: Option<Journal>, initial: Vec<(String, Value)>, rv: u64) -> Self {
        let mut objects: HashMap<String, Bucket> = HashMap::new();
        for (resource, obj) in initial {
            let key = (
                meta_str(&obj, "namespace").to_string(),
                meta_str(&obj, "name").to_string(),
            );
            objects
                .entry(resource)
                .or_default()
                .insert(key, Arc::new(obj));
        }
        let (events, _) = broadcast::channel(65_536);
        Store {
            inner: Mutex::new(Inner {
                rv,
                objects,
                log: VecDeque::new(),
                oldest: rv,
            }),
            events,
            journal,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.lock()
            .objects
            .get(resource)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of a resource (in one namespace, or all when `None`), sorted by
    /// namespace then name, with the list resourceVersion.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let items = match inner.objects.get(resource) {
            None => vec![],
            Some(bucket) => match namespace {
                None => bucket.values().cloned().collect(),
                Some(ns) => bucket
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, v)| v.clone())
                    .collect(),
            },
        };
        (items, inner.rv)
    }

    /// Counts the objects in a namespace across all resources.
    pub fn namespace_is_empty(&self, namespace: &str) -> bool {
        let inner = self.lock();
        inner.objects.values().all(|bucket| {
            bucket
                .range((namespace.to_string(), String::new())..)
                .next()
                .is_none_or(|((n, _), _)| n != namespace)
        })
    }

    /// Every resource key that currently holds objects.
    pub fn resources(&self) -> Vec<String> {
        self.lock()
            .objects
            .iter()
            .filter(|(_, b)| !b.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn record(&self, inner: &mut Inner, event: Event) {
        let event = Arc::new(event);
        if let Some(journal) = &self.journal {
            journal.record(&event);
        }
        inner.log.push_back(event.clone());
        while inner.log.len() > LOG_CAPACITY {
            if let Some(e) = inner.log.pop_front() {
                inner.oldest = e.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    /// Inserts a new object; fails when one with the same name exists.
    pub fn create(&self, resource: &str, mut obj: Value) -> Result<Arc<Value>, WriteError> {
        let key = (
            meta_str(&obj, "namespace").to_string(),
            meta_str(&obj, "name").to_string(),
        );
        let mut inner = self.lock();
        if inner
            .objects
            .get(resource)
            .is_some_and(|b| b.contains_key(&key))
        {
            return Err(WriteError::Exists);
        }
        inner.rv += 1;
        let rv = inner.rv;
        set_rv(&mut obj, rv);
        let obj = Arc::new(obj);
        inner
            .objects
            .entry(resource.to_string())
            .or_default()
            .insert(key, obj.clone());
        self.record(
            &mut inner,
            Event {
                rv,
                kind: EventType::Added,
                resource: resource.to_string(),
                object: obj.clone(),
                old: None,
                json: std::sync::OnceLock::new(),
            },
        );
        Ok(obj)
    }

    /// Replaces an object if its stored resourceVersion is still `expected_rv`.
    pub fn update(
        &self,
        resource: &str,
        mut obj: Value,
        expected_rv: u64,
    ) -> Result<Arc<Value>, WriteError> {
        let key = (
            meta_str(&obj, "namespace").to_string(),
            meta_str(&obj, "name").to_string(),
        );
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(resource)
            .and_then(|b| b.get(&key))
            .cloned()
            .ok_or(WriteError::NotFound)?;
        if object_rv(&old) != expected_rv {
            return Err(WriteError::Conflict);
        }
        inner.rv += 1;
        let rv = inner.rv;
        set_rv(&mut obj, rv);
        let obj = Arc::new(obj);
        inner
            .objects
            .entry(resource.to_string())
            .or_default()
            .insert(key, obj.clone());
        self.record(
            &mut inner,
            Event {
                rv,
                kind: EventType::Modified,
                resource: resource.to_string(),
                object: obj.clone(),
                old: Some(old),
                json: std::sync::OnceLock::new(),
            },
        );
        Ok(obj)
    }

    /// Removes an object if its resourceVersion is still `expected_rv`; the
    /// returned object carries the deletion's resourceVersion.
    pub fn remove(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        expected_rv: u64,
    ) -> Result<Arc<Value>, WriteError> {
        let key = (namespace.to_string(), name.to_string());
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(resource)
            .and_then(|b| b.get(&key))
            .cloned()
            .ok_or(WriteError::NotFound)?;
        if object_rv(&old) != expected_rv {
            return Err(WriteError::Conflict);
        }
        if let Some(b) = inner.objects.get_mut(resource) {
            b.remove(&key);
        }
        inner.rv += 1;
        let rv = inner.rv;
        let mut gone = (*old).clone();
        set_rv(&mut gone, rv);
        let gone = Arc::new(gone);
        self.record(
            &mut inner,
            Event {
                rv,
                kind: EventType::Deleted,
                resource: resource.to_string(),
                object: gone.clone(),
                old: Some(old),
                json: std::sync::OnceLock::new(),
            },
        );
        Ok(gone)
    }

    /// Starts a watch after `since`: the logged events newer than it, then a
    /// live receiver. `None` when `since` is older than the log holds.
    pub fn watch_from(&self, resource: Option<&str>, since: u64) -> Option<WatchStart> {
        let inner = self.lock();
        if since < inner.oldest {
            return None;
        }
        let replay = inner
            .log
            .iter()
            .filter(|e| e.rv > since && resource.is_none_or(|r| e.resource == r))
            .cloned()
            .collect();
        Some(WatchStart {
            replay,
            live: self.events.subscribe(),
            rv: inner.rv,
        })
    }

    /// Subscribes to live events only, atomically with a snapshot of the
    /// current objects of a resource.
    pub fn snapshot_and_subscribe(
        &self,
        resource: &str,
        namespace: Option<&str>,
    ) -> (Vec<Arc<Value>>, WatchStart) {
        let inner = self.lock();
        let items = match inner.objects.get(resource) {
            None => vec![],
            Some(bucket) => bucket
                .iter()
                .filter(|((n, _), _)| namespace.is_none_or(|ns| ns == n))
                .map(|(_, v)| v.clone())
                .collect(),
        };
        (
            items,
            WatchStart {
                replay: vec![],
                live: self.events.subscribe(),
                rv: inner.rv,
            },
        )
    }

    /// The oldest resourceVersion a watch can resume from.
    pub fn oldest_rv(&self) -> u64 {
        self.lock().oldest
    }

    /// A live receiver of every event (for the controllers).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "data": {}})
    }

    #[test]
    fn create_then_conflicting_update() {
        let s = Store::new(None, vec![], 0);
        let a = s.create("configmaps", cm("a")).expect("create");
        assert_eq!(object_rv(&a), 1);
        assert_eq!(s.create("configmaps", cm("a")), Err(WriteError::Exists));
        let b = s.update("configmaps", cm("a"), 1).expect("update");
        assert_eq!(object_rv(&b), 2);
        assert_eq!(
            s.update("configmaps", cm("a"), 1).map(|_| ()),
            Err(WriteError::Conflict)
        );
    }

    #[test]
    fn watch_replays_newer_events_only() {
        let s = Store::new(None, vec![], 0);
        s.create("configmaps", cm("a")).expect("a");
        s.create("configmaps", cm("b")).expect("b");
        let w = s.watch_from(Some("configmaps"), 1).expect("watch");
        assert_eq!(w.replay.len(), 1);
        assert_eq!(meta_str(&w.replay[0].object, "name"), "b");
    }
}
