//! Drift detection: watches of the objects plumb manages, and nothing else.
//!
//! One watch per kind plumb has applied, selected by the `plumb.dev/instance` label, so the
//! controller's memory and the API server's load grow with what plumb manages, not with the
//! cluster. A change to a managed object enqueues its application at once; with `selfHeal` the
//! reconcile reverts it, without it the application turns OutOfSync.

use crate::queue::{AppId, Queue};
use futures::StreamExt;
use plumb_core::key::str_at;
use plumb_core::tracking::INSTANCE_LABEL;
use plumb_kube::{Cluster, WatchEvent};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// The set of running watches and the label value → application map.
#[derive(Clone, Default)]
pub struct DriftWatch {
    watched: Arc<Mutex<HashSet<(String, String)>>>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
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

    /// Ensures a watch of `kind` runs; returns at once.
    pub fn ensure(&self, cluster: &Cluster, queue: &Queue, api_version: &str, kind: &str) {
        let key = (api_version.to_string(), kind.to_string());
        {
            let Ok(mut watched) = self.watched.lock() else {
                return;
            };
            if !watched.insert(key.clone()) {
                return;
            }
        }
        let (cluster, queue, this) = (cluster.clone(), queue.clone(), self.clone());
        let task = tokio::spawn(async move {
            let stream = match cluster
                .watch(&key.0, &key.1, "", Some(INSTANCE_LABEL))
                .await
            {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(api_version = %key.0, kind = %key.1, error = %error, "cannot watch managed objects");
                    if let Ok(mut watched) = this.watched.lock() {
                        watched.remove(&key);
                    }
                    return;
                }
            };
            tracing::debug!(api_version = %key.0, kind = %key.1, "watching managed objects");
            let mut stream = Box::pin(stream);
            while let Some(event) = stream.next().await {
                let object = match event {
                    WatchEvent::Applied(object) | WatchEvent::Deleted(object) => object,
                    WatchEvent::Synced => continue,
                    WatchEvent::Error(error) => {
                        tracing::debug!(kind = %key.1, %error, "managed-object watch error; retrying");
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
            tasks.push(task.abort_handle());
        }
    }

    /// Stops every watch.
    pub fn stop(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }
}
