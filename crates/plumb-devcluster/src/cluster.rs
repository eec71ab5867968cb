//! The shared state of one running server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::resources::Registry;
use crate::store::Store;

/// Everything handlers and controllers share.
pub(crate) struct Cluster {
    pub store: Store,
    pub registry: Registry,
    pub pod_ready_delay: Duration,
    pub addr: SocketAddr,
    next_ip: AtomicU32,
    next_node_port: AtomicU32,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Cluster {
    pub fn new(
        store: Store,
        pod_ready_delay: Duration,
        addr: SocketAddr,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Cluster {
            store,
            registry: Registry::new(),
            pod_ready_delay,
            addr,
            next_ip: AtomicU32::new(10),
            next_node_port: AtomicU32::new(30000),
            shutdown,
        }
    }

    /// The next service cluster IP in 10.96.0.0/12.
    pub fn allocate_ip(&self) -> String {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff)
    }

    /// The next node port in 30000-32767.
    pub fn allocate_node_port(&self) -> u32 {
        30000 + (self.next_node_port.fetch_add(1, Ordering::Relaxed) - 30000) % 2768
    }

    /// Moves the allocators past values already in use (after a restart).
    pub fn reserve_ip(&self, ip: &str) {
        let parts: Vec<u32> = ip.split('.').filter_map(|p| p.parse().ok()).collect();
        if let [10, 96, a, b] = parts.as_slice() {
            self.next_ip
                .fetch_max(((a << 8) | b) + 1, Ordering::Relaxed);
        }
    }
}
