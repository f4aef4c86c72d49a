//! A simulated Envoy against the stream state machine, over random change
//! sequences and random delivery delays (seeded, so a failure replays):
//! make-before-break holds after every response the proxy applies, and once
//! everything is delivered the proxy holds exactly the snapshot.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};

use super::*;
use crate::cache::Snapshot;
use crate::ir::{ObjectRef, RouteId};
use crate::resource::version_of;
use crate::sample;
use crate::server::wire::resource_name;
use crate::translate::{Change, Translator};

/// xorshift64*: deterministic, no dependency.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

type Key = (ResourceType, String, String);

/// What an Envoy holds, and what it subscribes to, as Envoy decides it: EDS
/// for the clusters it has, RDS for the route configs its listeners name.
struct Envoy {
    protocol: Protocol,
    /// Route configs name VHDS: subscribe to their virtual hosts.
    vhds: bool,
    applied: BTreeMap<ResourceType, BTreeMap<String, String>>,
    subscribed: BTreeMap<ResourceType, BTreeSet<String>>,
    last_nonce: BTreeMap<ResourceType, String>,
    last_version: BTreeMap<ResourceType, String>,
    /// The clusters each held listener, route config or virtual host relied
    /// on when it arrived.
    relied_on: BTreeMap<(ResourceType, String), BTreeSet<String>>,
    /// Every resource version the proxy refused.
    refused: std::collections::HashSet<Key>,
}

impl Envoy {
    fn new(protocol: Protocol, vhds: bool) -> Envoy {
        Envoy {
            protocol,
            vhds,
            applied: BTreeMap::new(),
            subscribed: BTreeMap::new(),
            last_nonce: BTreeMap::new(),
            last_version: BTreeMap::new(),
            relied_on: BTreeMap::new(),
            refused: std::collections::HashSet::new(),
        }
    }

    fn request(&self, kind: ResourceType, nonce: &str, add: &[String], remove: &[String]) -> Request {
        match self.protocol {
            Protocol::StateOfTheWorld => Request::Sotw(DiscoveryRequest {
                version_info: self.last_version.get(&kind).cloned().unwrap_or_default(),
                resource_names: self
                    .subscribed
                    .get(&kind)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
                type_url: kind.type_url().into(),
                response_nonce: nonce.into(),
                ..DiscoveryRequest::default()
            }),
            Protocol::Delta => Request::Delta(DeltaDiscoveryRequest {
                type_url: kind.type_url().into(),
                resource_names_subscribe: add.to_vec(),
                resource_names_unsubscribe: remove.to_vec(),
                response_nonce: nonce.into(),
                ..DeltaDiscoveryRequest::default()
            }),
        }
    }

    /// Applies a response; returns the ACK and any subscription changes.
    /// Refuses a response: nothing changes, and the proxy says why.
    fn refuse(&mut self, response: &Response) -> Request {
        let kind = ResourceType::from_type_url(response.type_url()).expect("a served type");
        match response {
            Response::Sotw(r) => self.refused.extend(
                r.resources
                    .iter()
                    .map(|a| (kind, resource_name(&a.value), version_of(&a.value))),
            ),
            Response::Delta(r) => self.refused.extend(
                r.resources
                    .iter()
                    .map(|res| (kind, res.name.clone(), res.version.clone())),
            ),
        }
        self.last_nonce.insert(kind, response.nonce().to_owned());
        let mut request = self.request(kind, response.nonce(), &[], &[]);
        let error = Some(envoy_types::pb::google::rpc::Status {
            code: 3,
            message: "refused by the simulation".into(),
            details: vec![],
        });
        match &mut request {
            Request::Sotw(r) => r.error_detail = error,
            Request::Delta(r) => r.error_detail = error,
        }
        request
    }

    fn apply(&mut self, response: &Response, registry: &HashMap<Key, Arc<Resource>>) -> Vec<Request> {
        let kind = ResourceType::from_type_url(response.type_url()).expect("a served type");
        let applied = self.applied.entry(kind).or_default();
        match response {
            Response::Sotw(r) => {
                if kind.is_wildcard_by_default() {
                    applied.clear();
                }
                for any in &r.resources {
                    applied.insert(resource_name(&any.value), version_of(&any.value));
                }
                self.last_version.insert(kind, r.version_info.clone());
            }
            Response::Delta(r) => {
                for name in &r.removed_resources {
                    applied.remove(name);
                }
                for res in &r.resources {
                    applied.insert(res.name.clone(), res.version.clone());
                }
            }
        }
        self.last_nonce.insert(kind, response.nonce().to_owned());
        let mut out = vec![self.request(kind, response.nonce(), &[], &[])];
        // Envoy follows what it now holds: endpoints of its clusters, route
        // configs of its listeners.
        for (holder, wanted) in [
            (ResourceType::Cluster, ResourceType::Endpoints),
            (ResourceType::Listener, ResourceType::Route),
        ] {
            let want: BTreeSet<String> = self
                .applied
                .get(&holder)
                .into_iter()
                .flatten()
                .filter_map(|(n, v)| registry.get(&(holder, n.clone(), v.clone())))
                .flat_map(|r| r.references.iter())
                .filter(|(k, _)| *k == wanted)
                .map(|(_, n)| n.to_string())
                .collect();
            self.follow(wanted, want, &mut out);
        }
        if self.vhds {
            // VHDS subscribes to each route config's namespace.
            let want: BTreeSet<String> = self
                .applied
                .get(&ResourceType::Route)
                .into_iter()
                .flatten()
                .map(|(n, _)| n.clone())
                .collect();
            self.follow(ResourceType::VirtualHost, want, &mut out);
        }
        out
    }

    /// Subscribes `wanted` to exactly `want`, as Envoy does when what it holds
    /// changes, forgetting what it no longer wants.
    fn follow(&mut self, wanted: ResourceType, want: BTreeSet<String>, out: &mut Vec<Request>) {
        let had = self.subscribed.get(&wanted).cloned().unwrap_or_default();
        if want == had {
            return;
        }
        let add: Vec<String> = want.difference(&had).cloned().collect();
        let remove: Vec<String> = had.difference(&want).cloned().collect();
        if let Some(applied) = self.applied.get_mut(&wanted) {
            let namespaced = wanted.is_subscribed_by_namespace();
            applied.retain(|n, _| {
                want.contains(n) || namespaced && n.rsplit_once('/').is_some_and(|(ns, _)| want.contains(ns))
            });
        }
        self.subscribed.insert(wanted, want);
        // A delta subscription change carries no nonce; a state-of-the-world
        // request repeats the last one.
        let nonce = match self.protocol {
            Protocol::Delta => String::new(),
            Protocol::StateOfTheWorld => self.last_nonce.get(&wanted).cloned().unwrap_or_default(),
        };
        out.push(self.request(wanted, &nonce, &add, &remove));
    }

    /// Make-before-break, checked after each response the proxy applies:
    /// - the listeners, route configs and virtual hosts it just received send
    ///   only to clusters it holds with their endpoints (unless the snapshot
    ///   the response was built from lacked the cluster: a route to a removed
    ///   upstream has nothing to wait for);
    /// - nothing it holds lost a cluster (or endpoints) it relied on.
    fn check_make_before_break(
        &mut self,
        response: &Response,
        registry: &HashMap<Key, Arc<Resource>>,
        built_from: &Snapshot,
        context: &str,
    ) {
        let kind = ResourceType::from_type_url(response.type_url()).expect("a served type");
        let holders = [
            ResourceType::Route,
            ResourceType::Listener,
            ResourceType::VirtualHost,
        ];
        if holders.contains(&kind) {
            for name in response.names() {
                let version = self.applied[&kind][&name].clone();
                let r = &registry[&(kind, name.clone(), version)];
                let relied: BTreeSet<String> = r
                    .references
                    .iter()
                    .filter(|(k, c)| {
                        // A cluster (or its endpoints) the proxy refused is not
                        // waited for: the route config goes without it.
                        let refused = |kind: ResourceType| {
                            built_from.get(kind, c).is_some_and(|r| {
                                self.refused
                                    .contains(&(kind, r.name.to_string(), r.version.to_string()))
                            })
                        };
                        *k == ResourceType::Cluster
                            && built_from.get(*k, c).is_some()
                            && !refused(ResourceType::Cluster)
                            && !refused(ResourceType::Endpoints)
                    })
                    .map(|(_, c)| c.to_string())
                    .collect();
                self.relied_on.insert((kind, name), relied);
            }
        }
        self.relied_on
            .retain(|(k, n), _| self.applied.get(k).is_some_and(|a| a.contains_key(n)));
        let clusters = self
            .applied
            .get(&ResourceType::Cluster)
            .cloned()
            .unwrap_or_default();
        let endpoints = self
            .applied
            .get(&ResourceType::Endpoints)
            .cloned()
            .unwrap_or_default();
        for ((holder, name), relied) in &self.relied_on {
            for cluster in relied {
                let Some(cv) = clusters.get(cluster) else {
                    panic!("{context}: {holder} {name} sends to cluster {cluster}, which the proxy lacks");
                };
                let c = &registry[&(ResourceType::Cluster, cluster.clone(), cv.clone())];
                for (k, e) in &c.references {
                    assert!(
                        *k != ResourceType::Endpoints || endpoints.contains_key(&**e),
                        "{context}: {holder} {name} sends to {cluster}, whose endpoints the proxy lacks"
                    );
                }
            }
        }
    }
}

/// Applies `changes`; on a change, records every resource by version.
fn publish(
    t: &mut Translator,
    snapshot: &mut Arc<Snapshot>,
    registry: &mut HashMap<Key, Arc<Resource>>,
    changes: Vec<Change>,
) -> bool {
    let Some(next) = snapshot.with(&t.translate(changes)) else {
        return false;
    };
    for kind in ResourceType::ALL {
        for r in next.resources(kind).values() {
            registry.insert((kind, r.name.to_string(), r.version.to_string()), r.clone());
        }
    }
    // What a state-of-the-world proxy is sent in place of VHDS.
    for r in next.whole_route_configs().values() {
        let key = (ResourceType::Route, r.name.to_string(), r.version.to_string());
        registry.insert(key, r.clone());
    }
    *snapshot = Arc::new(next);
    true
}

/// `vhds`: the translator sends virtual hosts over VHDS; `accepts`: the proxy
/// asked for VHDS (else, like a proxy on state of the world, it is sent each
/// route config whole).
fn run(protocol: Protocol, seed: u64, vhds: bool, accepts: bool, nacks: bool) {
    let mut rng = Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let endpoint = |n: usize| SocketAddr::from(([127, 0, 0, 1], 9000 + n as u16));
    let mut t = if vhds {
        Translator::with_vhds()
    } else {
        Translator::new()
    };
    let mut registry: HashMap<Key, Arc<Resource>> = HashMap::new();
    let mut snapshot = Arc::new(Snapshot::empty("default/gw"));
    let upstream = |n: usize| format!("default/svc-{n}:80");
    let mut existing: BTreeSet<usize> = (0..3).collect();
    let mut initial = vec![Change::UpsertListener(sample::listener("http", 8080))];
    for u in 0..3 {
        initial.push(Change::UpsertUpstream(sample::upstream(&upstream(u))));
        initial.push(sample::endpoints(&upstream(u), &[endpoint(u)]));
    }
    publish(&mut t, &mut snapshot, &mut registry, initial);

    let proxy = ProxyId {
        node: "sim".into(),
        gateway: "default/gw".into(),
    };
    let mut state = StreamState::new(protocol, proxy, snapshot.clone()).accepting_vhds(accepts);
    // Over state of the world, or unasked, route configs come whole: no VHDS.
    let whole = protocol == Protocol::StateOfTheWorld || !accepts;
    let mut envoy = Envoy::new(protocol, vhds && !whole);
    // Each response with the snapshot it was built from.
    let mut to_proxy: VecDeque<(Response, Arc<Snapshot>)> = VecDeque::new();
    // Envoy asks for clusters and listeners first.
    for kind in [ResourceType::Cluster, ResourceType::Listener] {
        let first = envoy.request(kind, "", &[], &[]);
        let built = state.on_request(first).responses;
        to_proxy.extend(built.into_iter().map(|r| (r, snapshot.clone())));
    }

    for step in 0..300 {
        let context = format!("{protocol:?} (VHDS {vhds}) seed {seed} step {step}");
        // A change, most of the time.
        if rng.below(3) > 0 {
            let route = format!("r{}", rng.below(12));
            // Routes are written to upstreams that exist (what the operator
            // resolves); upstreams may go while routes still use them.
            let live: Vec<usize> = existing.iter().copied().collect();
            let change = match rng.below(6) {
                0 | 1 if !live.is_empty() => Change::UpsertRoute(sample::route(
                    &route,
                    &format!("h{}.example.com", rng.below(3)),
                    &format!("/p{}", rng.below(4)),
                    &upstream(live[rng.below(live.len())]),
                )),
                0..=2 => Change::RemoveRoute(RouteId::of(&ObjectRef::new("Mapping", "default", &route, 1))),
                3 => {
                    let n = rng.below(6);
                    existing.insert(n);
                    Change::UpsertUpstream(sample::upstream(&upstream(n)))
                }
                4 => {
                    let n = rng.below(6);
                    existing.remove(&n);
                    Change::RemoveUpstream(upstream(n))
                }
                _ => {
                    let n = rng.below(6);
                    sample::endpoints(&upstream(n), &[endpoint(rng.below(50))])
                }
            };
            if publish(&mut t, &mut snapshot, &mut registry, vec![change]) {
                let built = state.on_snapshot(snapshot.clone()).responses;
                to_proxy.extend(built.into_iter().map(|r| (r, snapshot.clone())));
            }
        }
        // Deliver a few responses, in order, like a slow network.
        for _ in 0..rng.below(4) {
            let Some((response, built_from)) = to_proxy.pop_front() else {
                break;
            };
            // Now and then, the proxy refuses a response.
            if nacks && rng.below(12) == 0 {
                let built = state.on_request(envoy.refuse(&response)).responses;
                to_proxy.extend(built.into_iter().map(|r| (r, snapshot.clone())));
                continue;
            }
            let requests = envoy.apply(&response, &registry);
            envoy.check_make_before_break(&response, &registry, &built_from, &context);
            for request in requests {
                let built = state.on_request(request).responses;
                to_proxy.extend(built.into_iter().map(|r| (r, snapshot.clone())));
            }
        }
    }
    if nacks {
        // What was refused is sent again only once it changes: change
        // everything, so that the proxy can catch up.
        let mut touch = Vec::new();
        for n in existing.iter().copied() {
            let mut u = sample::upstream(&upstream(n));
            u.connect_timeout = std::time::Duration::from_secs(7);
            touch.push(Change::UpsertUpstream(u));
            touch.push(sample::endpoints(&upstream(n), &[endpoint(49)]));
        }
        let mut listener = sample::listener("http", 8080);
        listener.port = 8081;
        touch.push(Change::UpsertListener(listener));
        for route in 0..12 {
            let name = format!("r{route}");
            if let Some(live) = existing.iter().next() {
                let mut r = sample::route(&name, "touched.example.com", "/touched", &upstream(*live));
                r.precedence = 7;
                touch.push(Change::UpsertRoute(r));
            }
        }
        if publish(&mut t, &mut snapshot, &mut registry, touch) {
            let built = state.on_snapshot(snapshot.clone()).responses;
            to_proxy.extend(built.into_iter().map(|r| (r, snapshot.clone())));
        }
    }
    // Let everything arrive.
    let mut guard = 0;
    while let Some((response, built_from)) = to_proxy.pop_front() {
        let requests = envoy.apply(&response, &registry);
        let context = format!("{protocol:?} seed {seed} draining");
        envoy.check_make_before_break(&response, &registry, &built_from, &context);
        for request in requests {
            let built = state.on_request(request).responses;
            to_proxy.extend(built.into_iter().map(|r| (r, snapshot.clone())));
        }
        guard += 1;
        assert!(
            guard < 10_000,
            "{protocol:?} seed {seed}: the exchange never settles"
        );
    }
    // The proxy holds the snapshot (plus clusters its routes still need),
    // except what it refused: a version it refused is not sent again.
    let modes = format!("{protocol:?} (VHDS {vhds}, asked {accepts}, refusals {nacks}) seed {seed}");
    for kind in [
        ResourceType::Listener,
        ResourceType::Route,
        ResourceType::Cluster,
        ResourceType::VirtualHost,
    ] {
        let held = envoy.applied.get(&kind).cloned().unwrap_or_default();
        let subscribed = envoy.subscribed.get(&kind);
        for (name, r) in snapshot.served(kind, whole) {
            let wanted = match kind {
                ResourceType::Route => subscribed.is_some_and(|s| s.contains(&**name)),
                ResourceType::VirtualHost => {
                    subscribed.is_some_and(|s| name.rsplit_once('/').is_some_and(|(ns, _)| s.contains(ns)))
                }
                _ => true,
            };
            let refused = envoy
                .refused
                .contains(&(kind, name.to_string(), r.version.to_string()));
            if wanted && !refused {
                assert_eq!(
                    held.get(&**name),
                    Some(&r.version.to_string()),
                    "{modes}: {kind} {name} is not at the snapshot's version"
                );
            }
        }
        for name in held.keys() {
            if snapshot.get(kind, name).is_none() {
                assert_eq!(kind, ResourceType::Cluster, "{modes}: stale {kind} {name}");
            }
        }
    }
}

#[test]
fn a_simulated_envoy_converges_and_never_sees_a_route_before_its_cluster() {
    for seed in 1..=30 {
        run(Protocol::StateOfTheWorld, seed, false, false, false);
        run(Protocol::StateOfTheWorld, seed, true, false, false);
        run(Protocol::Delta, seed, false, true, false);
        run(Protocol::Delta, seed, true, true, false);
        run(Protocol::Delta, seed, true, false, false);
    }
}

#[test]
fn refused_responses_never_break_routes_and_the_proxy_catches_up_after_a_change() {
    for seed in 1..=30 {
        run(Protocol::StateOfTheWorld, seed, false, false, true);
        run(Protocol::StateOfTheWorld, seed, true, false, true);
        run(Protocol::Delta, seed, false, true, true);
        run(Protocol::Delta, seed, true, true, true);
        run(Protocol::Delta, seed, true, false, true);
    }
}
