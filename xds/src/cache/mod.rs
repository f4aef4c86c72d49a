//! The snapshot cache: one [`Snapshot`] per Gateway, updated incrementally,
//! watched by any number of ADS streams.
//!
//! Envoy's `node.cluster` names the Gateway (`namespace/name`). Streams watch
//! a Gateway before it has any resources; they see an empty snapshot and then
//! every change.

mod snapshot;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

pub use snapshot::{Resources, Snapshot};

use crate::resource::ResourceUpdate;

#[derive(Debug, Default)]
pub struct SnapshotCache {
    gateways: Mutex<HashMap<String, watch::Sender<Arc<Snapshot>>>>,
}

impl SnapshotCache {
    pub fn new() -> Arc<SnapshotCache> {
        Arc::new(SnapshotCache::default())
    }

    /// Applies `updates` to `gateway`'s snapshot and notifies its watchers when
    /// anything changed. Returns the current snapshot.
    pub fn update(&self, gateway: &str, updates: &[ResourceUpdate]) -> Arc<Snapshot> {
        let mut gateways = self.lock();
        let sender = gateways
            .entry(gateway.to_owned())
            .or_insert_with(|| watch::Sender::new(Arc::new(Snapshot::empty(gateway))));
        let current = sender.borrow().clone();
        match current.with(updates) {
            Some(next) => {
                let next = Arc::new(next);
                sender.send_replace(next.clone());
                next
            }
            None => current,
        }
    }

    /// Marks `gateway`'s snapshot as its translation (a Gateway whose
    /// translation changed nothing in an empty snapshot), so that streams
    /// waiting on it answer.
    pub fn publish(&self, gateway: &str) {
        let mut gateways = self.lock();
        let sender = gateways
            .entry(gateway.to_owned())
            .or_insert_with(|| watch::Sender::new(Arc::new(Snapshot::empty(gateway))));
        let current = sender.borrow().clone();
        if let Some(next) = current.publish() {
            sender.send_replace(Arc::new(next));
        }
    }

    /// Follows `gateway`'s snapshot (empty until the Gateway gets resources).
    pub fn watch(&self, gateway: &str) -> watch::Receiver<Arc<Snapshot>> {
        self.lock()
            .entry(gateway.to_owned())
            .or_insert_with(|| watch::Sender::new(Arc::new(Snapshot::empty(gateway))))
            .subscribe()
    }

    pub fn snapshot(&self, gateway: &str) -> Option<Arc<Snapshot>> {
        self.lock().get(gateway).map(|s| s.borrow().clone())
    }

    /// Forgets a Gateway. Its watchers see the sender close.
    pub fn remove(&self, gateway: &str) {
        self.lock().remove(gateway);
    }

    pub fn gateways(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        names
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Arc<Snapshot>>>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (every mutation is a single insert or replace), so a poisoned lock
        // is still consistent.
        self.gateways
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::resource::ResourceType;
    use crate::sample;
    use crate::translate::{Change, Translator};

    #[tokio::test]
    async fn watchers_see_changes_of_their_gateway_only() {
        let cache = SnapshotCache::new();
        let mut a = cache.watch("default/a");
        let mut a2 = cache.watch("default/a");
        let b = cache.watch("default/b");
        assert!(a.borrow_and_update().is_empty());

        let mut t = Translator::new();
        let updates = t.translate(sample::gateway(
            8080,
            3,
            2,
            2,
            SocketAddr::from(([127, 0, 0, 1], 9000)),
        ));
        cache.update("default/a", &updates);

        a.changed().await.expect("the cache is alive");
        a2.changed().await.expect("the cache is alive");
        let snap = a.borrow_and_update().clone();
        assert_eq!(snap.resources(ResourceType::Cluster).len(), 2);
        assert_eq!(snap.resources(ResourceType::Listener).len(), 1);
        assert!(!b.has_changed().expect("the cache is alive"));
    }

    #[tokio::test]
    async fn an_endpoints_change_moves_only_the_eds_serial() {
        let cache = SnapshotCache::new();
        let mut t = Translator::new();
        let before = cache.update(
            "g",
            &t.translate(sample::gateway(
                8080,
                10,
                3,
                2,
                SocketAddr::from(([127, 0, 0, 1], 9000)),
            )),
        );
        let after = cache.update(
            "g",
            &t.translate([sample::endpoints(
                "default/svc-0:8080",
                &[SocketAddr::from(([127, 0, 0, 9], 9000))],
            )]),
        );
        assert_eq!(after.serial(), before.serial() + 1);
        for kind in ResourceType::ALL {
            let moved = after.type_serial(kind) != before.type_serial(kind);
            assert_eq!(moved, kind == ResourceType::Endpoints, "{kind}");
        }
        let old = before
            .get(ResourceType::Endpoints, "default/svc-0:8080")
            .expect("known");
        let new = after
            .get(ResourceType::Endpoints, "default/svc-0:8080")
            .expect("known");
        assert_ne!(old.version, new.version);
        let untouched = |s: &Snapshot| s.get(ResourceType::Endpoints, "default/svc-1:8080").cloned();
        assert_eq!(untouched(&before), untouched(&after));
    }

    #[tokio::test]
    async fn a_no_op_update_notifies_nobody() {
        let cache = SnapshotCache::new();
        let mut t = Translator::new();
        let updates = t.translate([Change::UpsertListener(sample::listener("http", 8080))]);
        cache.update("g", &updates);
        let mut w = cache.watch("g");
        w.borrow_and_update();
        cache.update("g", &updates);
        assert!(!w.has_changed().expect("the cache is alive"));
    }
}
