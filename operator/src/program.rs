//! What each connected Envoy has applied, from the ADS server's ACK and NACK
//! events: the ground truth behind every `Programmed` condition.

mod index;

use std::collections::{BTreeMap, BTreeSet};

use legate_xds::cache::Snapshot;
use legate_xds::ir::ObjectRef;
use legate_xds::resource::{ResourceType, ResourceUpdate};
use legate_xds::server::{ProxyStatus, ProxyTracker, XdsEvent};

use index::{Applied, GatewayIndex};

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
    /// Every connected proxy runs a configuration that carries this generation.
    Yes,
    /// No proxy of the Gateway is connected.
    NoProxies,
    /// Some proxies have not applied it yet.
    Pending,
    /// A proxy refused it (and keeps its previous configuration).
    Rejected(Rejected),
    /// No resource of the Gateway's snapshot carries it (yet).
    NotCarried,
}

/// ACK and NACK state for every Gateway: what each proxy applied (the xDS
/// server's [`ProxyTracker`], which also copes with a proxy reconnecting
/// before its old stream is gone), which objects a proxy refused, and which
/// resources carry which object since when.
#[derive(Debug, Default)]
pub struct ProgramState {
    tracker: ProxyTracker,
    rejections: BTreeMap<String, BTreeMap<String, Rejected>>,
    index: BTreeMap<String, GatewayIndex>,
    /// Per Gateway, the objects its snapshot carried and no longer does:
    /// until its proxies apply that, they may still route them.
    released: BTreeMap<String, BTreeSet<String>>,
    /// Per Gateway, how many proxies the previous leader counted. After
    /// taking the lead, until that many have reconnected (or the grace is
    /// over), the missing ones cannot be judged: nothing is Programmed on
    /// that Gateway and nothing it released is unrouted yet.
    reconnect_floors: BTreeMap<String, usize>,
}

/// What an xDS event may have changed.
#[derive(Debug, Default, PartialEq)]
pub struct Affected {
    /// Objects (`Kind/namespace/name`) whose `Programmed` may have moved.
    pub objects: BTreeSet<String>,
    /// Whether the Gateway's own state (its proxies, in sync) may have moved.
    pub gateway: bool,
}

impl Applied for ProxyStatus {
    fn version(&self, kind: ResourceType, name: &str) -> Option<&str> {
        self.applied.get(&kind).and_then(|m| m.get(name)).map(|v| &**v)
    }
}

impl ProgramState {
    /// Records that `gateway`'s snapshot `serial` came from `updates`; returns
    /// the objects whose part of the configuration changed.
    pub fn on_snapshot(
        &mut self,
        gateway: &str,
        serial: u64,
        updates: &[ResourceUpdate],
    ) -> BTreeSet<String> {
        let index = self.index.entry(gateway.to_string()).or_default();
        let moved = index.apply(serial, updates);
        let released = self.released.entry(gateway.to_string()).or_default();
        for object in &moved {
            if index.carries(object) {
                released.remove(object);
            } else {
                released.insert(object.clone());
            }
        }
        moved
    }

    /// Whether `gateway`'s proxies may still route the object: its snapshot
    /// carries it, or carried it and they have not all applied the snapshot
    /// since. A Gateway that never carried it has nothing to wait for.
    pub fn still_routes(&self, gateway: &str, object_key: &str, snapshot: &Snapshot) -> bool {
        self.carries(gateway, object_key)
            || (self.released.get(gateway).is_some_and(|r| r.contains(object_key))
                && (!self.in_sync(gateway, snapshot) || self.awaiting_reconnect(gateway) > 0))
    }

    /// The object is gone for good (its finalizer was removed).
    pub fn forget_released(&mut self, object_key: &str) {
        for released in self.released.values_mut() {
            released.remove(object_key);
        }
    }

    /// Forgets a Gateway's snapshot; returns the objects it carried.
    pub fn forget_gateway(&mut self, gateway: &str) -> BTreeSet<String> {
        self.released.remove(gateway);
        self.index
            .remove(gateway)
            .map(|index| index.objects().cloned().collect())
            .unwrap_or_default()
    }

    pub fn on_event(&mut self, event: &XdsEvent) -> Affected {
        let gateway = &event.proxy().gateway;
        let mut affected = Affected::default();
        match event {
            XdsEvent::Connected(_) | XdsEvent::Disconnected(_) => {
                // Who is connected decides every object's answer.
                affected.gateway = true;
                if let Some(index) = self.index.get(gateway) {
                    affected.objects.extend(index.objects().cloned());
                }
            }
            XdsEvent::Acked(ack) => {
                affected.gateway = true;
                let before = self
                    .tracker
                    .proxies_of(gateway)
                    .find(|(p, _)| **p == ack.proxy)
                    .map(|(_, s)| s);
                if let Some(index) = self.index.get(gateway) {
                    for (name, version) in &ack.resources {
                        let from = before.and_then(|s| s.version(ack.kind, name));
                        affected
                            .objects
                            .extend(index.affected_by_ack(ack.kind, name, from, version));
                    }
                }
                // An object this proxy now runs at a newer generation is no longer rejected.
                if let Some(rejections) = self.rejections.get_mut(gateway) {
                    for object in &ack.programmed {
                        if rejections
                            .get(&object.key())
                            .is_some_and(|r| r.generation <= object.generation())
                        {
                            rejections.remove(&object.key());
                            affected.objects.insert(object.key());
                        }
                    }
                }
            }
            XdsEvent::Rejected(rejection) => {
                affected.gateway = true;
                let rejections = self.rejections.entry(gateway.clone()).or_default();
                for object in &rejection.objects {
                    affected.objects.insert(object.key());
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
        self.tracker.observe(event);
        affected
    }

    /// Every object some proxy refused, with the refused generation, on
    /// the Gateway of the proxy that refused it (and no other).
    pub fn quarantine(&self) -> legate_model::Quarantine {
        let mut out = legate_model::Quarantine::new();
        for (gateway, rejections) in &self.rejections {
            for (key, r) in rejections {
                out.insert(gateway, key, r.generation);
            }
        }
        out
    }

    /// Proxies connected for a Gateway.
    pub fn proxies(&self, gateway: &str) -> usize {
        self.tracker.proxies_of(gateway).count()
    }

    /// Sets, per Gateway, how many proxies must reconnect before this
    /// replica judges that Gateway (an empty map when the grace is over).
    pub fn expect_reconnects(&mut self, floors: BTreeMap<String, usize>) {
        self.reconnect_floors = floors;
    }

    /// How many of the proxies the previous leader counted have not
    /// reconnected yet.
    pub fn awaiting_reconnect(&self, gateway: &str) -> usize {
        let floor = self.reconnect_floors.get(gateway).copied().unwrap_or(0);
        floor.saturating_sub(self.proxies(gateway))
    }

    /// Whether every connected proxy of `gateway` runs a configuration that
    /// carries `object` at its generation. Judged from the index: the cost
    /// is the object's own resources, whatever the size of the snapshot.
    pub fn programmed(&self, gateway: &str, object: &ObjectRef) -> Programmed {
        if let Some(rejected) = self.rejections.get(gateway).and_then(|r| r.get(&object.key()))
            && rejected.generation >= object.generation()
        {
            return Programmed::Rejected(rejected.clone());
        }
        let mut proxies = self.tracker.proxies_of(gateway).peekable();
        if proxies.peek().is_none() {
            return Programmed::NoProxies;
        }
        let Some(index) = self.index.get(gateway) else {
            return Programmed::NotCarried;
        };
        if self.awaiting_reconnect(gateway) > 0 {
            return Programmed::Pending;
        }
        let mut all = true;
        for (_, status) in proxies {
            match index.applied_by(object, status) {
                None => return Programmed::NotCarried,
                Some(applied) => all &= applied,
            }
        }
        if all { Programmed::Yes } else { Programmed::Pending }
    }

    /// Whether any resource of `gateway`'s snapshot carries the object.
    pub fn carries(&self, gateway: &str, object_key: &str) -> bool {
        self.index.get(gateway).is_some_and(|i| i.carries(object_key))
    }

    /// Whether every connected proxy of `gateway` has applied `snapshot` in
    /// full: nothing it routes is older than the snapshot.
    pub fn in_sync(&self, gateway: &str, snapshot: &Snapshot) -> bool {
        self.first_lag(gateway, snapshot).is_none()
    }

    /// The first routing resource some proxy of `gateway` runs at another
    /// version than `snapshot` has, as a sentence (for logs); None when
    /// every proxy runs the whole snapshot.
    pub fn first_lag(&self, gateway: &str, snapshot: &Snapshot) -> Option<String> {
        const ROUTING: [ResourceType; 3] = [
            ResourceType::Listener,
            ResourceType::Route,
            ResourceType::VirtualHost,
        ];
        for (proxy, status) in self.tracker.proxies_of(gateway) {
            for kind in ROUTING {
                for (name, r) in snapshot.resources(kind).iter() {
                    let applied = status.version(kind, name);
                    if applied != Some(&*r.version) {
                        return Some(format!(
                            "proxy {} runs {} {name} at {applied:?}, the snapshot has {}",
                            proxy.node,
                            kind.short(),
                            r.version
                        ));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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
    fn a_deleted_object_waits_only_for_the_gateways_that_carried_it() {
        use legate_xds::cache::Snapshot;
        use legate_xds::resource::{Origin, Resource, ResourceUpdate};

        let object = ObjectRef::new("Mapping", "shop", "quote", 1);
        let key = object.key();
        let route = |body: u8, origins: Vec<Origin>| {
            ResourceUpdate::Upsert(Arc::new(Resource::new(
                ResourceType::Route,
                "http",
                vec![body],
                vec![],
                origins,
            )))
        };
        let carried = route(
            1,
            vec![Origin {
                object: object.clone(),
                part: Arc::from("Mapping/shop/quote"),
                hash: 1,
            }],
        );
        let released = route(2, vec![]);
        let mut state = ProgramState::default();
        // shop/edge carries it; infra/other never does, and its proxy lags.
        let edge = Snapshot::empty("shop/edge")
            .with(std::slice::from_ref(&carried))
            .expect("a change");
        state.on_snapshot("shop/edge", edge.serial(), std::slice::from_ref(&carried));
        let other = Snapshot::empty("infra/other")
            .with(std::slice::from_ref(&released))
            .expect("a change");
        state.on_snapshot("infra/other", other.serial(), std::slice::from_ref(&released));
        state.on_event(&XdsEvent::Connected(ProxyId {
            node: "other-1".into(),
            gateway: "infra/other".into(),
        }));
        assert!(
            !state.in_sync("infra/other", &other),
            "its proxy has applied nothing"
        );
        assert!(
            !state.still_routes("infra/other", &key, &other),
            "never carried: nothing to wait for"
        );
        assert!(state.still_routes("shop/edge", &key, &edge));

        // Removed from shop/edge: its connected proxy must apply that first.
        let edge = edge.with(std::slice::from_ref(&released)).expect("a change");
        state.on_snapshot("shop/edge", edge.serial(), std::slice::from_ref(&released));
        state.on_event(&XdsEvent::Connected(proxy()));
        assert!(state.still_routes("shop/edge", &key, &edge), "not applied yet");
        state.forget_released(&key);
        assert!(!state.still_routes("shop/edge", &key, &edge));
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
        let quarantine = state.quarantine();
        assert!(quarantine.holds("shop/edge", "Mapping/shop/quote", 2));
        assert!(
            !quarantine.holds("infra/other", "Mapping/shop/quote", 2),
            "a refusal by one Gateway's proxy takes the object off that Gateway only"
        );
        assert!(matches!(
            state.programmed("shop/edge", &object),
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

    #[test]
    fn after_taking_the_lead_a_gateway_is_judged_once_its_proxies_have_reconnected() {
        use legate_xds::cache::Snapshot;
        use legate_xds::resource::{Origin, Resource, ResourceUpdate};

        let object = ObjectRef::new("Mapping", "shop", "quote", 1);
        let carried = ResourceUpdate::Upsert(Arc::new(Resource::new(
            ResourceType::Route,
            "http",
            vec![1],
            vec![],
            vec![Origin {
                object: object.clone(),
                part: Arc::from("Mapping/shop/quote"),
                hash: 1,
            }],
        )));
        let edge = Snapshot::empty("shop/edge")
            .with(std::slice::from_ref(&carried))
            .expect("a change");
        let mut state = ProgramState::default();
        state.on_snapshot("shop/edge", edge.serial(), std::slice::from_ref(&carried));
        let version = edge.resources(ResourceType::Route)["http"].version.clone();
        let ack = |node: &str| {
            XdsEvent::Acked(Ack {
                proxy: ProxyId {
                    node: node.into(),
                    gateway: "shop/edge".into(),
                },
                kind: ResourceType::Route,
                version: "v1".into(),
                resources: vec![(Arc::from("http"), version.clone())],
                removed: Vec::new(),
                serial: edge.serial(),
                complete: false,
                programmed: vec![object.clone()],
            })
        };
        // The previous leader counted two Envoys; one is back so far.
        state.expect_reconnects([("shop/edge".to_string(), 2)].into());
        state.on_event(&XdsEvent::Connected(proxy()));
        state.on_event(&ack("edge-1"));
        assert_eq!(state.awaiting_reconnect("shop/edge"), 1);
        assert_eq!(
            state.programmed("shop/edge", &object),
            Programmed::Pending,
            "the Envoy still reconnecting may not run it"
        );
        state.on_event(&XdsEvent::Connected(ProxyId {
            node: "edge-2".into(),
            gateway: "shop/edge".into(),
        }));
        state.on_event(&ack("edge-2"));
        assert_eq!(state.programmed("shop/edge", &object), Programmed::Yes);
        assert_eq!(
            state.awaiting_reconnect("infra/other"),
            0,
            "no floor, nothing awaited"
        );
    }
}
