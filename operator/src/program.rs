//! What each connected Envoy has applied, from the ADS server's ACK and NACK
//! events: the ground truth behind every `Programmed` condition.

use std::collections::BTreeMap;
use std::sync::Arc;

use legate_xds::cache::Snapshot;
use legate_xds::ir::ObjectRef;
use legate_xds::resource::ResourceType;
use legate_xds::server::{ProxyStatus, ProxyTracker, XdsEvent};

/// The last NACK that blamed an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub generation: i64,
    pub message: String,
    pub proxy: String,
}

/// Where one object stands on one Gateway's Envoys.
#[derive(Debug, Clone, PartialEq)]
pub enum Programmed {
    /// Every connected proxy runs this generation.
    Yes { proxies: usize },
    /// No proxy of the Gateway is connected.
    NoProxies,
    /// Some proxies have not applied it yet.
    Pending { waiting: usize, proxies: usize },
    /// A proxy refused it (and keeps its previous configuration).
    Rejected(Rejected),
    /// No resource of the Gateway's snapshot carries it (yet).
    NotCarried,
}

/// ACK and NACK state for every Gateway: what each proxy applied (the xDS
/// server's [`ProxyTracker`], which also copes with a proxy reconnecting
/// before its old stream is gone) and which objects a proxy refused.
#[derive(Debug, Default)]
pub struct ProgramState {
    tracker: ProxyTracker,
    rejections: BTreeMap<String, BTreeMap<String, Rejected>>,
}

impl ProgramState {
    pub fn on_event(&mut self, event: &XdsEvent) {
        self.tracker.observe(event);
        match event {
            XdsEvent::Connected(_) | XdsEvent::Disconnected(_) => {}
            XdsEvent::Acked(ack) => {
                // An object this proxy now runs at a newer generation is no longer rejected.
                if let Some(rejections) = self.rejections.get_mut(&ack.proxy.gateway) {
                    for object in &ack.programmed {
                        if rejections
                            .get(&object.key())
                            .is_some_and(|r| r.generation <= object.generation())
                        {
                            rejections.remove(&object.key());
                        }
                    }
                }
            }
            XdsEvent::Rejected(rejection) => {
                let rejections = self
                    .rejections
                    .entry(rejection.proxy.gateway.clone())
                    .or_default();
                for object in &rejection.objects {
                    rejections.insert(
                        object.key(),
                        Rejected {
                            generation: object.generation(),
                            message: rejection.message.clone(),
                            proxy: rejection.proxy.node.clone(),
                        },
                    );
                }
            }
        }
    }

    /// Every object some proxy refused, with the refused generation.
    pub fn quarantine(&self) -> legate_model::Quarantine {
        let mut out = legate_model::Quarantine::new();
        for rejections in self.rejections.values() {
            for (key, r) in rejections {
                let g = out.entry(key.clone()).or_insert(r.generation);
                *g = (*g).max(r.generation);
            }
        }
        out
    }

    /// Proxies connected for a Gateway.
    pub fn proxies(&self, gateway: &str) -> usize {
        self.tracker.proxies_of(gateway).count()
    }

    /// Whether every connected proxy of `gateway` runs `object` at its generation,
    /// as `snapshot` (the Gateway's current one) carries it.
    pub fn programmed(&self, gateway: &str, object: &ObjectRef, snapshot: Option<&Snapshot>) -> Programmed {
        if let Some(rejected) = self.rejections.get(gateway).and_then(|r| r.get(&object.key()))
            && rejected.generation >= object.generation()
        {
            return Programmed::Rejected(rejected.clone());
        }
        let proxies: Vec<&ProxyStatus> = self.tracker.proxies_of(gateway).map(|(_, s)| s).collect();
        if proxies.is_empty() {
            return Programmed::NoProxies;
        }
        let Some(snapshot) = snapshot else {
            return Programmed::Pending {
                waiting: proxies.len(),
                proxies: proxies.len(),
            };
        };
        let needed = resources_of(snapshot, &object.key());
        if needed.is_empty() {
            return Programmed::NotCarried;
        }
        let waiting = proxies
            .iter()
            .filter(|status| {
                !needed
                    .iter()
                    .all(|(kind, name, version)| has(status, *kind, name, version))
            })
            .count();
        if waiting == 0 {
            Programmed::Yes {
                proxies: proxies.len(),
            }
        } else {
            Programmed::Pending {
                waiting,
                proxies: proxies.len(),
            }
        }
    }

    /// Whether every connected proxy of `gateway` has applied `snapshot` in
    /// full: nothing it routes is older than the snapshot.
    pub fn in_sync(&self, gateway: &str, snapshot: &Snapshot) -> bool {
        self.tracker.proxies_of(gateway).all(|(_, status)| {
            [ResourceType::Listener, ResourceType::Route].iter().all(|kind| {
                snapshot
                    .resources(*kind)
                    .iter()
                    .all(|(name, r)| has(status, *kind, name, &r.version))
            })
        })
    }
}

fn has(status: &ProxyStatus, kind: ResourceType, name: &str, version: &str) -> bool {
    status
        .applied
        .get(&kind)
        .and_then(|m| m.get(name))
        .is_some_and(|v| &**v == version)
}

/// `(type, name, version)` of every resource in `snapshot` that `object` contributed to.
fn resources_of(snapshot: &Snapshot, object_key: &str) -> Vec<(ResourceType, Arc<str>, Arc<str>)> {
    let mut out = Vec::new();
    for kind in ResourceType::ALL {
        for (name, resource) in snapshot.resources(kind).iter() {
            if resource.origins().any(|o| o.object.key() == object_key) {
                out.push((kind, name.clone(), resource.version.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use legate_xds::server::{Ack, ProxyId, Rejection};

    use super::*;

    fn proxy() -> ProxyId {
        ProxyId {
            node: "edge-1".into(),
            gateway: "shop/edge".into(),
        }
    }

    #[test]
    fn a_proxy_that_reconnects_before_its_old_stream_closes_stays_connected() {
        let mut state = ProgramState::default();
        state.on_event(&XdsEvent::Connected(proxy()));
        state.on_event(&XdsEvent::Connected(proxy()));
        state.on_event(&XdsEvent::Disconnected(proxy()));
        assert_eq!(state.proxies("shop/edge"), 1, "the new stream is still open");
        state.on_event(&XdsEvent::Disconnected(proxy()));
        assert_eq!(state.proxies("shop/edge"), 0);
    }

    #[test]
    fn a_rejection_quarantines_the_generation_until_a_newer_one_is_applied() {
        let mut state = ProgramState::default();
        let object = ObjectRef::new("Mapping", "shop", "quote", 2);
        state.on_event(&XdsEvent::Connected(proxy()));
        state.on_event(&XdsEvent::Rejected(Rejection {
            proxy: proxy(),
            kind: ResourceType::Route,
            version: "v2".into(),
            message: "invalid regex".into(),
            resources: vec![Arc::from("http")],
            objects: vec![object.clone()],
        }));
        assert_eq!(state.quarantine().get("Mapping/shop/quote"), Some(&2));
        assert!(matches!(
            state.programmed("shop/edge", &object, None),
            Programmed::Rejected(Rejected { generation: 2, .. })
        ));
        state.on_event(&XdsEvent::Acked(Ack {
            proxy: proxy(),
            kind: ResourceType::Route,
            version: "v3".into(),
            resources: Vec::new(),
            removed: Vec::new(),
            serial: 3,
            complete: false,
            programmed: vec![object.at_generation(3)],
        }));
        assert!(state.quarantine().is_empty(), "generation 3 was applied");
    }
}
