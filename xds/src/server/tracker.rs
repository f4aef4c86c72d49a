//! What every proxy has applied, folded from the event stream: the input of
//! the `Programmed` condition ("every Envoy of the Gateway applied it").

use std::collections::BTreeMap;
use std::sync::Arc;

use super::events::{ProxyId, Rejection, XdsEvent};
use crate::cache::Snapshot;
use crate::resource::ResourceType;

/// One connected proxy's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProxyStatus {
    /// Per type: the applied version of each resource.
    pub applied: BTreeMap<ResourceType, BTreeMap<Arc<str>, Arc<str>>>,
    /// Per type: the last rejection, until a later ACK of that type.
    pub rejected: BTreeMap<ResourceType, Rejection>,
    /// Open streams of this node: a reconnecting Envoy may open the new
    /// stream before the server notices that the old one is gone.
    streams: usize,
}

/// Folds [`XdsEvent`]s into the state of every connected proxy.
#[derive(Clone, Debug, Default)]
pub struct ProxyTracker {
    proxies: BTreeMap<ProxyId, ProxyStatus>,
}

impl ProxyTracker {
    pub fn new() -> ProxyTracker {
        ProxyTracker::default()
    }

    pub fn observe(&mut self, event: &XdsEvent) {
        match event {
            XdsEvent::Connected(p) => {
                // A new stream starts from nothing: the proxy reports again.
                let streams = self.proxies.get(p).map_or(0, |s| s.streams);
                self.proxies.insert(
                    p.clone(),
                    ProxyStatus {
                        streams: streams + 1,
                        ..ProxyStatus::default()
                    },
                );
            }
            XdsEvent::Disconnected(p) => {
                if let Some(status) = self.proxies.get_mut(p) {
                    status.streams = status.streams.saturating_sub(1);
                    if status.streams == 0 {
                        self.proxies.remove(p);
                    }
                }
            }
            XdsEvent::Acked(ack) => {
                let status = self.proxies.entry(ack.proxy.clone()).or_default();
                let applied = status.applied.entry(ack.kind).or_default();
                if ack.complete {
                    applied.clear();
                }
                for name in &ack.removed {
                    applied.remove(name);
                }
                applied.extend(ack.resources.iter().cloned());
                status.rejected.remove(&ack.kind);
            }
            XdsEvent::Rejected(r) => {
                let status = self.proxies.entry(r.proxy.clone()).or_default();
                status.rejected.insert(r.kind, r.clone());
            }
        }
    }

    pub fn proxies(&self) -> impl Iterator<Item = (&ProxyId, &ProxyStatus)> {
        self.proxies.iter()
    }

    pub fn proxies_of<'a>(
        &'a self,
        gateway: &'a str,
    ) -> impl Iterator<Item = (&'a ProxyId, &'a ProxyStatus)> {
        // Status asks this per object: a range, not a scan of every proxy.
        let first = ProxyId {
            gateway: gateway.to_owned(),
            node: String::new(),
        };
        self.proxies
            .range(first..)
            .take_while(move |(p, _)| p.gateway == gateway)
    }

    /// For every object (by `Kind/namespace/name`) in `snapshot`: has every
    /// connected proxy of the Gateway applied every resource the object is
    /// part of, at the snapshot's version? That is the `Programmed` condition.
    /// An edit that changed no Envoy resource keeps the answer it had.
    pub fn programmed(&self, snapshot: &Snapshot) -> BTreeMap<String, bool> {
        let mut out: BTreeMap<String, bool> = BTreeMap::new();
        for kind in ResourceType::ALL {
            for (name, r) in snapshot.resources(kind) {
                let applied = self.applied_everywhere(snapshot.gateway(), kind, name, &r.version);
                for origin in r.origins() {
                    *out.entry(origin.object.key()).or_insert(true) &= applied;
                }
            }
        }
        out
    }

    /// Has every connected proxy of `gateway` applied `version` of `name`?
    /// (False while none is connected: nothing is programmed then.)
    pub fn applied_everywhere(&self, gateway: &str, kind: ResourceType, name: &str, version: &str) -> bool {
        let mut any = false;
        for (_, status) in self.proxies_of(gateway) {
            any = true;
            let has = status
                .applied
                .get(&kind)
                .and_then(|m| m.get(name))
                .is_some_and(|v| **v == *version);
            if !has {
                return false;
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Ack;

    fn proxy(node: &str) -> ProxyId {
        ProxyId {
            node: node.into(),
            gateway: "default/gw".into(),
        }
    }

    fn ack(node: &str, resources: &[(&str, &str)], removed: &[&str], complete: bool) -> XdsEvent {
        XdsEvent::Acked(Ack {
            proxy: proxy(node),
            kind: ResourceType::Cluster,
            version: "v".into(),
            resources: resources
                .iter()
                .map(|(n, v)| (Arc::from(*n), Arc::from(*v)))
                .collect(),
            removed: removed.iter().map(|n| Arc::from(*n)).collect(),
            serial: 1,
            complete,
            programmed: vec![],
        })
    }

    #[test]
    fn applied_everywhere_means_every_connected_proxy() {
        let mut t = ProxyTracker::new();
        assert!(!t.applied_everywhere("default/gw", ResourceType::Cluster, "a", "1"));
        t.observe(&XdsEvent::Connected(proxy("e1")));
        t.observe(&XdsEvent::Connected(proxy("e2")));
        t.observe(&ack("e1", &[("a", "1"), ("b", "1")], &[], false));
        assert!(!t.applied_everywhere("default/gw", ResourceType::Cluster, "a", "1"));
        t.observe(&ack("e2", &[("a", "1")], &[], false));
        assert!(t.applied_everywhere("default/gw", ResourceType::Cluster, "a", "1"));
        assert!(!t.applied_everywhere("default/gw", ResourceType::Cluster, "b", "1"));
        // A proxy that leaves no longer holds the others back, once its last
        // stream is gone.
        t.observe(&XdsEvent::Connected(proxy("e2")));
        t.observe(&XdsEvent::Disconnected(proxy("e2")));
        assert!(!t.applied_everywhere("default/gw", ResourceType::Cluster, "b", "1"));
        t.observe(&XdsEvent::Disconnected(proxy("e2")));
        assert!(t.applied_everywhere("default/gw", ResourceType::Cluster, "b", "1"));
    }

    #[test]
    fn an_object_is_programmed_when_every_proxy_applied_all_its_resources() {
        use crate::sample;
        use crate::translate::{Change, Translator};
        use std::net::SocketAddr;

        let mut t = Translator::new();
        let updates = t.translate(sample::gateway(
            8080,
            2,
            1,
            1,
            SocketAddr::from(([127, 0, 0, 1], 1)),
        ));
        let snapshot = Snapshot::empty("default/gw").with(&updates).expect("a change");
        let mut tracker = ProxyTracker::new();
        tracker.observe(&XdsEvent::Connected(proxy("e1")));
        let apply_all = |tracker: &mut ProxyTracker, snapshot: &Snapshot, kinds: &[ResourceType]| {
            for kind in kinds {
                tracker.observe(&XdsEvent::Acked(Ack {
                    proxy: proxy("e1"),
                    kind: *kind,
                    version: "v".into(),
                    resources: snapshot
                        .resources(*kind)
                        .values()
                        .map(|r| (r.name.clone(), r.version.clone()))
                        .collect(),
                    removed: vec![],
                    serial: snapshot.serial(),
                    complete: false,
                    programmed: vec![],
                }));
            }
        };
        // The Service's cluster is applied, its endpoints not yet.
        apply_all(
            &mut tracker,
            &snapshot,
            &[ResourceType::Cluster, ResourceType::Route],
        );
        let programmed = tracker.programmed(&snapshot);
        assert!(programmed["Mapping/default/route-0"]);
        assert!(!programmed["Service/default/svc-0"]);
        apply_all(&mut tracker, &snapshot, &[ResourceType::Endpoints]);
        assert!(tracker.programmed(&snapshot)["Service/default/svc-0"]);

        // A new version of a route is not programmed until applied.
        let next = snapshot
            .with(&t.translate([Change::UpsertRoute(sample::route(
                "route-0",
                "host-0.example.com",
                "/new",
                "default/svc-0:8080",
            ))]))
            .expect("a change");
        assert!(!tracker.programmed(&next)["Mapping/default/route-0"]);
    }

    #[test]
    fn complete_responses_replace_and_delta_removals_remove() {
        let mut t = ProxyTracker::new();
        t.observe(&ack("e1", &[("a", "1"), ("b", "1")], &[], false));
        t.observe(&ack("e1", &[("c", "1")], &["a"], false));
        let names = |t: &ProxyTracker| -> Vec<String> {
            let (_, s) = t.proxies().next().expect("one proxy");
            s.applied[&ResourceType::Cluster]
                .keys()
                .map(|k| k.to_string())
                .collect()
        };
        assert_eq!(names(&t), ["b", "c"]);
        t.observe(&ack("e1", &[("d", "1")], &[], true));
        assert_eq!(names(&t), ["d"]);
    }
}
