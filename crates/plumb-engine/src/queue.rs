//! A work queue of applications: each key at most once in the queue, never reconciled by two
//! workers at once, and delayed requeues where only the latest one counts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Identity of an application: (namespace, name).
pub type AppId = (String, String);

#[derive(Default)]
struct State {
    queue: VecDeque<AppId>,
    queued: HashSet<AppId>,
    running: HashSet<AppId>,
    /// Keys that were added while running; requeued when the run ends.
    dirty: HashSet<AppId>,
    /// Generation of the latest delayed requeue per key.
    timers: HashMap<AppId, u64>,
    next_timer: u64,
}

/// The queue; cheap to clone.
#[derive(Clone, Default)]
pub struct Queue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl Queue {
    /// Adds `id` now.
    pub fn add(&self, id: AppId) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.running.contains(&id) {
            state.dirty.insert(id);
            return;
        }
        if state.queued.insert(id.clone()) {
            state.queue.push_back(id);
            drop(state);
            self.notify.notify_one();
        }
    }

    /// Adds `id` after `delay`, replacing any earlier delayed add of the same key.
    pub fn add_after(&self, id: AppId, delay: Duration) {
        let generation = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            state.next_timer += 1;
            let generation = state.next_timer;
            state.timers.insert(id.clone(), generation);
            generation
        };
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let current = queue
                .state
                .lock()
                .ok()
                .and_then(|s| s.timers.get(&id).copied());
            if current == Some(generation) {
                if let Ok(mut state) = queue.state.lock() {
                    state.timers.remove(&id);
                }
                queue.add(id);
            }
        });
    }

    /// Waits for the next key and marks it running.
    pub async fn next(&self) -> AppId {
        loop {
            let notified = self.notify.notified();
            if let Ok(mut state) = self.state.lock()
                && let Some(id) = state.queue.pop_front()
            {
                state.queued.remove(&id);
                state.running.insert(id.clone());
                if !state.queue.is_empty() {
                    self.notify.notify_one();
                }
                return id;
            }
            notified.await;
        }
    }

    /// Marks `id` done; requeues it if it was added while running.
    pub fn done(&self, id: &AppId) {
        let requeue = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            state.running.remove(id);
            state.dirty.remove(id)
        };
        if requeue {
            self.add(id.clone());
        }
    }

    /// Forgets any delayed requeue of `id` (the application was deleted).
    pub fn forget(&self, id: &AppId) {
        if let Ok(mut state) = self.state.lock() {
            state.timers.remove(id);
        }
    }

    /// Keys waiting plus running, for metrics and tests.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .map(|s| s.queue.len() + s.running.len())
            .unwrap_or(0)
    }

    /// Whether nothing is waiting or running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> AppId {
        ("argocd".into(), name.into())
    }

    #[tokio::test]
    async fn deduplicates_and_requeues_dirty_keys() {
        let queue = Queue::default();
        queue.add(id("a"));
        queue.add(id("a"));
        queue.add(id("b"));
        assert_eq!(queue.next().await, id("a"));
        queue.add(id("a")); // while running
        assert_eq!(queue.next().await, id("b"));
        queue.done(&id("b"));
        queue.done(&id("a"));
        assert_eq!(queue.next().await, id("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn latest_delayed_add_wins() {
        let queue = Queue::default();
        queue.add_after(id("a"), Duration::from_secs(10));
        queue.add_after(id("a"), Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(queue.next().await, id("a"));
        queue.done(&id("a"));
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(queue.is_empty());
    }
}
