//! What each connected Envoy has applied, from the ADS server's ACK and NACK
//! events: the ground truth behind every `Programmed` condition.

use std::collections::BTreeMap;
use std::sync::Arc;

use legate_xds::cache::Snapshot;
use legate_xds::ir::ObjectRef;
use legate_xds::resource::ResourceType;
use legate_xds::server::{ProxyId, XdsEvent};

/// One proxy's applied resources: name → version, per type.
#[derive(Debug, Default, Clone)]
struct Applied {
    by_type: BTreeMap<ResourceType, BTreeMap<Arc<str>, Arc<str>>>,
}

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

/// ACK and NACK state for every Gateway.
#[derive(Debug, Default)]
pub struct ProgramState {
    proxies: BTreeMap<String, BTreeMap<ProxyId, Applied>>,
    rejections: BTreeMap<String, BTreeMap<String, Rejected>>,
}

impl ProgramState {
    pub fn on_event(&mut self, event: &XdsEvent) {
        match event {
            XdsEvent::Connected(proxy) => {
                self.proxies
                    .entry(proxy.gateway.clone())
                    .or_default()
                    .insert(proxy.clone(), Applied::default());
            }
            XdsEvent::Disconnected(proxy) => {
                if let Some(proxies) = self.proxies.get_mut(&proxy.gateway) {
                    proxies.remove(proxy);
                }
            }
            XdsEvent::Acked(ack) => {
                let applied = self
                    .proxies
                    .entry(ack.proxy.gateway.clone())
                    .or_default()
                    .entry(ack.proxy.clone())
                    .or_default();
                let of_type = applied.by_type.entry(ack.kind).or_default();
                for name in &ack.removed {
                    of_type.remove(name);
                }
                for (name, version) in &ack.resources {
                    of_type.insert(name.clone(), version.clone());
                }
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
    pub fn quarantine(&self) -> crate::model::Quarantine {
        let mut out = crate::model::Quarantine::new();
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
        self.proxies.get(gateway).map_or(0, BTreeMap::len)
    }

    /// Whether every connected proxy of `gateway` runs `object` at its generation,
    /// as `snapshot` (the Gateway's current one) carries it.
    pub fn programmed(&self, gateway: &str, object: &ObjectRef, snapshot: Option<&Snapshot>) -> Programmed {
        if let Some(rejected) = self.rejections.get(gateway).and_then(|r| r.get(&object.key()))
            && rejected.generation >= object.generation()
        {
            return Programmed::Rejected(rejected.clone());
        }
        let proxies = match self.proxies.get(gateway) {
            Some(p) if !p.is_empty() => p,
            _ => return Programmed::NoProxies,
        };
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
            .values()
            .filter(|applied| {
                !needed
                    .iter()
                    .all(|(kind, name, version)| applied.has(*kind, name, version))
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
        let Some(proxies) = self.proxies.get(gateway) else {
            return true;
        };
        proxies.values().all(|applied| {
            [ResourceType::Listener, ResourceType::Route].iter().all(|kind| {
                snapshot
                    .resources(*kind)
                    .iter()
                    .all(|(name, r)| applied.has(*kind, name, &r.version))
            })
        })
    }
}

impl Applied {
    fn has(&self, kind: ResourceType, name: &str, version: &str) -> bool {
        self.by_type
            .get(&kind)
            .and_then(|m| m.get(name))
            .is_some_and(|v| &**v == version)
    }
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
