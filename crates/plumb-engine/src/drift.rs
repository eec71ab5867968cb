//! Drift detection and the cache of managed objects.
//!
//! One watch per kind plumb has applied, selected by the `plumb.dev/instance` label, so the
//! controller's memory and the API server's load grow with what plumb manages, not with the
//! cluster. A change to a managed object enqueues its application at once; with `selfHeal` the
//! reconcile reverts it, without it the application turns OutOfSync.
//!
//! The same watches fill a cache of the managed objects, so a reconcile reads live state from
//! memory instead of one GET per object. The cache answers only what it knows: an object it does
//! not hold (not labelled, not yet listed) is read from the API server.

use crate::queue::{AppId, Queue};
use crate::resource_version;
use futures::StreamExt;
use plumb_core::key::str_at;
use plumb_core::tracking::INSTANCE_LABEL;
use plumb_kube::{Cluster, WatchEvent};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// (cluster, apiVersion, kind, namespace) of a watch; the cluster is its server URL, so the
/// same object name in two clusters never mixes; the namespace is empty for a watch of all
/// namespaces (a cluster whose Secret sets `namespaces` is watched in each of them).
type KindKey = (String, String, String, String);
/// (namespace, name) of an object.
type NameKey = (String, String);

/// The managed objects of one kind, as compact JSON (a parsed tree costs several times more).
#[derive(Default)]
struct KindCache {
    /// Whether the initial list is complete; until then every lookup goes to the server.
    synced: bool,
    objects: HashMap<NameKey, (u64, Box<str>)>,
    /// Objects of a relist in progress, which replace `objects` when it completes.
    relist: Option<HashMap<NameKey, (u64, Box<str>)>>,
}

/// What the cache knows of one object.
#[derive(Debug)]
pub enum Cached {
    /// The labelled object as last seen.
    Found(Value),
    /// No object of that name carries the label (it may exist unlabelled).
    NotManaged,
    /// The kind is not cached (yet); ask the server.
    Unknown,
}

fn name_key(object: &Value) -> NameKey {
    (
        str_at(object, &["metadata", "namespace"]).to_string(),
        str_at(object, &["metadata", "name"]).to_string(),
    )
}

impl KindCache {
    fn apply(&mut self, object: &Value) {
        let (key, version) = (name_key(object), resource_version(object));
        let target = self.relist.as_mut().unwrap_or(&mut self.objects);
        if target.get(&key).is_some_and(|(known, _)| *known > version) {
            return;
        }
        target.insert(key, (version, object.to_string().into_boxed_str()));
    }

    fn delete(&mut self, object: &Value) {
        let (key, version) = (name_key(object), resource_version(object));
        let target = self.relist.as_mut().unwrap_or(&mut self.objects);
        if target.get(&key).is_some_and(|(known, _)| *known > version) {
            return;
        }
        target.remove(&key);
    }
}

/// The set of running watches and the label value → application map.
#[derive(Clone, Default)]
pub struct DriftWatch {
    watched: Arc<Mutex<HashSet<KindKey>>>,
    cache: Arc<RwLock<HashMap<KindKey, KindCache>>>,
    tasks: Arc<Mutex<Vec<(String, tokio::task::AbortHandle)>>>,
    instances: Arc<RwLock<HashMap<String, AppId>>>,
}

impl DriftWatch {
    /// Remembers which application a label value stands for.
    pub fn register(&self, label_value: String, id: AppId) {
        if let Ok(mut instances) = self.instances.write() {
            instances.insert(label_value, id);
        }
    }

    /// Forgets an application.
    pub fn unregister(&self, id: &AppId) {
        if let Ok(mut instances) = self.instances.write() {
            instances.retain(|_, v| v != id);
        }
    }

    /// Ensures watches of `kind` run in the cluster `cluster_key` (its server URL) reaches
    /// through `cluster`: one of all namespaces when `namespaces` is empty, else one per
    /// namespace; returns at once.
    pub fn ensure(
        &self,
        cluster_key: &str,
        cluster: &Cluster,
        queue: &Queue,
        api_version: &str,
        kind: &str,
        namespaces: &[String],
    ) {
        let all = [String::new()];
        let scopes = if namespaces.is_empty() {
            &all[..]
        } else {
            namespaces
        };
        for scope in scopes {
            let key = (
                cluster_key.to_string(),
                api_version.to_string(),
                kind.to_string(),
                scope.clone(),
            );
            self.start(key, cluster, queue);
        }
    }

    fn start(&self, key: KindKey, cluster: &Cluster, queue: &Queue) {
        {
            let Ok(mut watched) = self.watched.lock() else {
                return;
            };
            if !watched.insert(key.clone()) {
                return;
            }
        }
        let key_of_task = key.0.clone();
        let (cluster, queue, this) = (cluster.clone(), queue.clone(), self.clone());
        let task = tokio::spawn(async move {
            let stream = match cluster
                .watch(&key.1, &key.2, &key.3, Some(INSTANCE_LABEL))
                .await
            {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(cluster = %key.0, api_version = %key.1, kind = %key.2, error = %error, "cannot watch managed objects");
                    if let Ok(mut watched) = this.watched.lock() {
                        watched.remove(&key);
                    }
                    return;
                }
            };
            tracing::debug!(cluster = %key.0, api_version = %key.1, kind = %key.2, "watching managed objects");
            let mut stream = Box::pin(stream);
            while let Some(event) = stream.next().await {
                let object = match event {
                    WatchEvent::Applied(mut object) => {
                        // Items of a list carry no apiVersion and kind; readers expect them.
                        if let Some(map) = object.as_object_mut() {
                            map.entry("apiVersion")
                                .or_insert_with(|| key.1.clone().into());
                            map.entry("kind").or_insert_with(|| key.2.clone().into());
                        }
                        this.with_kind(&key, |cache| cache.apply(&object));
                        object
                    }
                    WatchEvent::Deleted(object) => {
                        this.with_kind(&key, |cache| cache.delete(&object));
                        object
                    }
                    WatchEvent::Restarted => {
                        this.with_kind(&key, |cache| cache.relist = Some(HashMap::new()));
                        continue;
                    }
                    WatchEvent::Synced => {
                        this.with_kind(&key, |cache| {
                            if let Some(objects) = cache.relist.take() {
                                cache.objects = objects;
                            }
                            cache.synced = true;
                        });
                        continue;
                    }
                    WatchEvent::Error(error) => {
                        tracing::debug!(cluster = %key.0, kind = %key.2, %error, "managed-object watch error; retrying");
                        continue;
                    }
                };
                let label = str_at(&object, &["metadata", "labels", INSTANCE_LABEL]);
                let id = this
                    .instances
                    .read()
                    .ok()
                    .and_then(|i| i.get(label).cloned());
                if let Some(id) = id {
                    queue.add(id);
                }
            }
        });
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push((key_of_task, task.abort_handle()));
        }
    }

    fn with_kind(&self, key: &KindKey, change: impl FnOnce(&mut KindCache)) {
        if let Ok(mut cache) = self.cache.write() {
            change(cache.entry(key.clone()).or_default());
        }
    }

    /// What the cache knows of an object in the cluster `cluster_key`.
    pub fn lookup(
        &self,
        cluster_key: &str,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Cached {
        let Ok(cache) = self.cache.read() else {
            return Cached::Unknown;
        };
        let key = |scope: &str| {
            (
                cluster_key.to_string(),
                api_version.to_string(),
                kind.to_string(),
                scope.to_string(),
            )
        };
        let Some(kind) = cache.get(&key("")).or_else(|| cache.get(&key(namespace))) else {
            return Cached::Unknown;
        };
        if !kind.synced {
            return Cached::Unknown;
        }
        match kind.objects.get(&(namespace.to_string(), name.to_string())) {
            Some((_, json)) => match serde_json::from_str(json) {
                Ok(object) => Cached::Found(object),
                Err(_) => Cached::Unknown,
            },
            None => Cached::NotManaged,
        }
    }

    /// Records an object plumb just wrote (the server's answer), so a read that comes before
    /// the watch event does not see the old state. Unlabelled objects are not cached.
    pub fn observe(&self, cluster_key: &str, object: &Value) {
        if object
            .pointer("/metadata/labels")
            .and_then(|l| l.get(INSTANCE_LABEL))
            .is_none()
        {
            return;
        }
        let key = |scope: &str| {
            (
                cluster_key.to_string(),
                str_at(object, &["apiVersion"]).to_string(),
                str_at(object, &["kind"]).to_string(),
                scope.to_string(),
            )
        };
        let namespace = str_at(object, &["metadata", "namespace"]);
        if let Ok(mut cache) = self.cache.write() {
            for scope in ["", namespace] {
                if let Some(kind) = cache.get_mut(&key(scope)) {
                    kind.apply(object);
                    break;
                }
            }
        }
    }

    /// Stops every watch.
    pub fn stop(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for (_, task) in tasks.drain(..) {
                task.abort();
            }
        }
    }

    /// Stops the watches of one cluster and forgets what they saw (its connection changed or
    /// it is gone); the next comparison starts them again.
    pub fn forget_cluster(&self, cluster_key: &str) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|(cluster, task)| {
                if cluster == cluster_key {
                    task.abort();
                }
                cluster != cluster_key
            });
        }
        if let Ok(mut watched) = self.watched.lock() {
            watched.retain(|key| key.0 != cluster_key);
        }
        if let Ok(mut cache) = self.cache.write() {
            cache.retain(|key, _| key.0 != cluster_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(name: &str, version: &str, value: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": version,
                "labels": {INSTANCE_LABEL: "app"}},
            "data": {"value": value}})
    }

    const C: &str = "https://kubernetes.default.svc";

    fn watch_with(objects: &[Value]) -> (DriftWatch, KindKey) {
        let watch = DriftWatch::default();
        let key = (
            C.to_string(),
            "v1".to_string(),
            "ConfigMap".to_string(),
            String::new(),
        );
        watch.with_kind(&key, |cache| cache.relist = Some(HashMap::new()));
        for o in objects {
            watch.with_kind(&key, |cache| cache.apply(o));
        }
        watch.with_kind(&key, |cache| {
            cache.objects = cache.relist.take().unwrap_or_default();
            cache.synced = true;
        });
        (watch, key)
    }

    fn value_of(watch: &DriftWatch, name: &str) -> Option<String> {
        match watch.lookup(C, "v1", "ConfigMap", "ns", name) {
            Cached::Found(o) => Some(str_at(&o, &["data", "value"]).to_string()),
            Cached::NotManaged => None,
            Cached::Unknown => Some("unknown".into()),
        }
    }

    #[test]
    fn unknown_until_the_first_list_completes() {
        let watch = DriftWatch::default();
        let key = (
            C.to_string(),
            "v1".to_string(),
            "ConfigMap".to_string(),
            String::new(),
        );
        watch.with_kind(&key, |cache| cache.relist = Some(HashMap::new()));
        watch.with_kind(&key, |cache| cache.apply(&object("a", "5", "x")));
        assert_eq!(value_of(&watch, "a").as_deref(), Some("unknown"));
        assert!(matches!(
            watch.lookup(C, "v1", "Secret", "ns", "a"),
            Cached::Unknown
        ));
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let (watch, _) = watch_with(&[object("a", "5", "new")]);
        watch.observe(C, &object("a", "3", "old"));
        assert_eq!(value_of(&watch, "a").as_deref(), Some("new"));
        watch.observe(C, &object("a", "9", "newer"));
        assert_eq!(value_of(&watch, "a").as_deref(), Some("newer"));
        assert_eq!(value_of(&watch, "b"), None);
    }

    #[test]
    fn a_relist_drops_what_disappeared_meanwhile() {
        let (watch, key) = watch_with(&[object("a", "1", "x"), object("b", "2", "y")]);
        watch.with_kind(&key, |cache| cache.relist = Some(HashMap::new()));
        watch.with_kind(&key, |cache| cache.apply(&object("b", "7", "z")));
        // Until the relist completes, the previous state answers.
        assert_eq!(value_of(&watch, "a").as_deref(), Some("x"));
        watch.with_kind(&key, |cache| {
            if let Some(objects) = cache.relist.take() {
                cache.objects = objects;
            }
        });
        assert_eq!(value_of(&watch, "a"), None);
        assert_eq!(value_of(&watch, "b").as_deref(), Some("z"));
    }

    #[test]
    fn a_stale_delete_keeps_the_recreated_object() {
        let (watch, key) = watch_with(&[object("a", "4", "x")]);
        watch.observe(C, &object("a", "8", "recreated"));
        watch.with_kind(&key, |cache| cache.delete(&object("a", "6", "x")));
        assert_eq!(value_of(&watch, "a").as_deref(), Some("recreated"));
        watch.with_kind(&key, |cache| cache.delete(&object("a", "9", "x")));
        assert_eq!(value_of(&watch, "a"), None);
    }

    #[test]
    fn the_same_object_in_two_clusters_is_cached_apart() {
        let (watch, _) = watch_with(&[object("a", "5", "one")]);
        let other = "http://127.0.0.1:8080";
        assert!(matches!(
            watch.lookup(other, "v1", "ConfigMap", "ns", "a"),
            Cached::Unknown
        ));
        let key = (
            other.to_string(),
            "v1".to_string(),
            "ConfigMap".to_string(),
            String::new(),
        );
        watch.with_kind(&key, |cache| {
            cache.apply(&object("a", "9", "two"));
            cache.synced = true;
        });
        watch.observe(other, &object("a", "10", "two again"));
        assert_eq!(value_of(&watch, "a").as_deref(), Some("one"));
        match watch.lookup(other, "v1", "ConfigMap", "ns", "a") {
            Cached::Found(o) => assert_eq!(str_at(&o, &["data", "value"]), "two again"),
            other => panic!("{other:?}"),
        }
        watch.forget_cluster(other);
        assert!(matches!(
            watch.lookup(other, "v1", "ConfigMap", "ns", "a"),
            Cached::Unknown
        ));
        assert_eq!(value_of(&watch, "a").as_deref(), Some("one"));
    }

    #[test]
    fn a_namespace_watch_answers_for_its_namespace_only() {
        let watch = DriftWatch::default();
        let key = (
            C.to_string(),
            "v1".to_string(),
            "ConfigMap".to_string(),
            "ns".to_string(),
        );
        watch.with_kind(&key, |cache| {
            cache.apply(&object("a", "1", "x"));
            cache.synced = true;
        });
        assert_eq!(value_of(&watch, "a").as_deref(), Some("x"));
        assert!(matches!(
            watch.lookup(C, "v1", "ConfigMap", "other", "a"),
            Cached::Unknown
        ));
        watch.observe(C, &object("a", "2", "y"));
        assert_eq!(value_of(&watch, "a").as_deref(), Some("y"));
    }

    #[test]
    fn unlabelled_objects_are_not_cached() {
        let (watch, _) = watch_with(&[]);
        let mut unlabelled = object("a", "3", "x");
        unlabelled["metadata"]["labels"] = json!({});
        watch.observe(C, &unlabelled);
        assert_eq!(value_of(&watch, "a"), None);
    }
}
