//! The per-stream state machine, shared by state-of-the-world and delta ADS.
//!
//! It is a pure function of (state, request or snapshot) → (state, responses,
//! events): no I/O, no clock, so its tests are tables. It keeps, per type, what
//! the proxy subscribed to, what it has applied (committed only on ACK), and
//! the one response in flight. From those it decides what to send:
//!
//! - **make-before-break**: a listener or route config that sends traffic to a
//!   cluster is held back until the proxy has ACKed that cluster and its
//!   endpoints; a cluster (and its endpoints) that left the snapshot stays on
//!   the proxy while an ACKed route or listener still refers to it;
//! - one response in flight per type: the next goes out after the ACK or NACK,
//!   so every ACK and NACK is attributed to exactly one response;
//! - a NACKed resource version is not sent again; a newer version is;
//! - a proxy that does not take VHDS (state of the world, or delta without
//!   asking) gets each route config whole in place of the VHDS shell, and its
//!   ACK reads as the ACK of the shell and of the virtual hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
    Resource as DeltaResource,
};

use super::blame;
use super::events::{Ack, ProxyId, Rejection, XdsEvent};
pub use super::wire::{Protocol, Request, Response};
use crate::cache::Snapshot;
use crate::resource::{Resource, ResourceType, hash_bytes};

/// What one input produced.
#[derive(Debug, Default)]
pub struct Step {
    pub responses: Vec<Response>,
    pub events: Vec<XdsEvent>,
}

#[derive(Clone, Debug)]
struct Applied {
    /// Every cluster it sends to was on the proxy when it went out (see
    /// [`Readiness::Unwitnessed`]).
    witness: bool,
    version: Arc<str>,
    /// `None` when the proxy announced a version we do not hold (delta
    /// reconnect): we only know it differs.
    resource: Option<Arc<Resource>>,
}

#[derive(Debug)]
struct InFlight {
    serial: u64,
    /// Resources sent as [`Readiness::Unwitnessed`].
    unwitnessed: BTreeSet<Arc<str>>,
    /// The type's snapshot serial when the response was built.
    type_serial: u64,
    /// The response held nothing back and kept nothing removed: once it is
    /// applied, the proxy is up to date with that snapshot (for this type).
    whole: bool,
    version: String,
    upserts: Vec<Arc<Resource>>,
    removals: Vec<Arc<str>>,
    /// State-of-the-world LDS/CDS: the response is the complete set.
    complete: bool,
    /// RDS to a proxy that does not take VHDS: the route configs sent whole in
    /// place of their VHDS shell, with what they were assembled from.
    assembled: Vec<Assembled>,
}

/// A route config sent whole, in place of the shell that names VHDS, to a
/// proxy that does not take VHDS: its ACK is reported as the ACK of the shell
/// and of its virtual hosts, the resources the snapshot holds (and
/// `Programmed` reads).
#[derive(Debug)]
struct Assembled {
    name: Arc<str>,
    shell_version: Arc<str>,
    virtual_hosts: Vec<(Arc<str>, Arc<str>)>,
}

#[derive(Debug, Default)]
struct TypeState {
    subscribed: bool,
    /// Subscriptions name namespaces (VHDS), not resources.
    namespaced: bool,
    wildcard: bool,
    names: BTreeSet<Arc<str>>,
    applied: BTreeMap<Arc<str>, Applied>,
    in_flight: Option<InFlight>,
    /// The nonce of the latest response; requests with another are stale.
    last_nonce: String,
    /// Versions the proxy refused, by name: not sent again.
    refused: BTreeMap<Arc<str>, Arc<str>>,
    /// The subscription changed: answer even if no version did.
    answer_subscription: bool,
    /// The last evaluation that found nothing to send, and what it depended on.
    settled: Option<Settled>,
}

/// What an evaluation that sent nothing depended on: while none of it
/// changes, evaluating again would send nothing either.
#[derive(Debug, Clone, Copy)]
struct Settled {
    serials: [u64; ResourceType::COUNT],
    epochs: [u64; ResourceType::COUNT],
    /// Something was held back for make-before-break: it waits on CDS and EDS.
    held: bool,
    /// Something gone from the snapshot was kept: it waits on its referrers.
    kept: bool,
}

impl TypeState {
    fn in_scope(&self, name: &str) -> bool {
        if self.wildcard || self.names.contains(name) {
            return true;
        }
        // `<namespace>/<name>`, read from the right: the namespace (a route
        // config name) may contain slashes, the name (a host) may not.
        self.namespaced
            && name
                .rsplit_once('/')
                .is_some_and(|(namespace, _)| self.names.contains(namespace))
    }

    /// Forgets what the proxy held outside its subscription.
    fn forget_unsubscribed(&mut self) {
        let keep: BTreeMap<Arc<str>, Applied> = std::mem::take(&mut self.applied)
            .into_iter()
            .filter(|(n, _)| self.in_scope(n))
            .collect();
        self.applied = keep;
    }
}

/// The state of one ADS stream.
#[derive(Debug)]
pub struct StreamState {
    protocol: Protocol,
    proxy: ProxyId,
    snapshot: Arc<Snapshot>,
    types: [TypeState; ResourceType::COUNT],
    nonces: u64,
    /// Per type, increases when what the proxy applied or subscribed to
    /// changes: what is ready to send may change although the snapshot did not.
    epochs: [u64; ResourceType::COUNT],
    /// Route configs go whole, never as a VHDS shell: the proxy is on state
    /// of the world (where Envoy refuses VHDS) or did not ask for VHDS.
    whole_route_configs: bool,
    /// The virtual hosts (name, version) that the route configs the proxy
    /// applied whole were assembled from.
    whole_virtual_hosts: BTreeMap<Arc<str>, Arc<str>>,
}

impl StreamState {
    pub fn new(protocol: Protocol, proxy: ProxyId, snapshot: Arc<Snapshot>) -> StreamState {
        StreamState {
            protocol,
            proxy,
            snapshot,
            types: Default::default(),
            nonces: 0,
            epochs: [0; ResourceType::COUNT],
            whole_route_configs: protocol == Protocol::StateOfTheWorld,
            whole_virtual_hosts: BTreeMap::new(),
        }
    }

    /// Whether the proxy takes virtual hosts over VHDS (a delta proxy that
    /// asked for it, see [`crate::bootstrap::VHDS_NODE_METADATA`]); if not,
    /// a route config whose virtual hosts go over VHDS is sent whole.
    /// State-of-the-world proxies never do. Delta streams do by default.
    pub fn accepting_vhds(mut self, accepts: bool) -> StreamState {
        self.whole_route_configs = self.protocol == Protocol::StateOfTheWorld || !accepts;
        self
    }

    pub fn proxy(&self) -> &ProxyId {
        &self.proxy
    }

    /// The version of each resource of `kind` this proxy has applied.
    pub fn applied(&self, kind: ResourceType) -> BTreeMap<Arc<str>, Arc<str>> {
        self.types[kind.index()]
            .applied
            .iter()
            .map(|(n, a)| (n.clone(), a.version.clone()))
            .collect()
    }

    /// The serial at which what this stream serves of `kind` last changed:
    /// route configs sent whole change with their virtual hosts.
    fn type_serial(&self, kind: ResourceType) -> u64 {
        let serial = self.snapshot.type_serial(kind);
        if self.whole_route_configs && kind == ResourceType::Route {
            serial.max(self.snapshot.type_serial(ResourceType::VirtualHost))
        } else {
            serial
        }
    }

    pub fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) -> Step {
        self.snapshot = snapshot;
        let mut step = Step::default();
        self.send_what_is_due(&mut step);
        step
    }

    pub fn on_request(&mut self, request: Request) -> Step {
        let mut step = Step::default();
        match request {
            Request::Sotw(r) => self.on_sotw(r, &mut step),
            Request::Delta(r) => self.on_delta(r, &mut step),
        }
        self.send_what_is_due(&mut step);
        step
    }

    fn on_sotw(&mut self, r: DiscoveryRequest, step: &mut Step) {
        let Some(kind) = ResourceType::from_type_url(&r.type_url) else {
            tracing::debug!(type_url = %r.type_url, "ignoring a request for a type Legate does not serve");
            return;
        };
        // A nonce on the first request of a type can only come from an earlier
        // stream (a client that kept it across a reconnect): not stale, new.
        if !r.response_nonce.is_empty()
            && self.types[kind.index()].subscribed
            && self.types[kind.index()].last_nonce == r.response_nonce
        {
            self.settle(kind, r.error_detail.map(|e| e.message), step);
        }
        // A request with a stale nonce (the proxy has not seen our latest
        // response yet) ACKs nothing, but its names are what the proxy wants
        // now: a name it dropped is gone from it, whatever it ACKs later.
        let names: BTreeSet<Arc<str>> = r
            .resource_names
            .iter()
            .filter(|n| *n != "*")
            .map(|n| Arc::from(n.as_str()))
            .collect();
        let wildcard = r.resource_names.iter().any(|n| n == "*")
            || (r.resource_names.is_empty() && kind.is_wildcard_by_default());
        let first = !self.types[kind.index()].subscribed;
        let ts = &mut self.types[kind.index()];
        if first || ts.names != names || ts.wildcard != wildcard {
            ts.subscribed = true;
            ts.answer_subscription = true;
            ts.names = names;
            ts.wildcard = wildcard;
            ts.namespaced = kind.is_subscribed_by_namespace();
            ts.forget_unsubscribed();
            self.epochs[kind.index()] += 1;
        }
        if first && !r.version_info.is_empty() {
            self.resume_sotw(kind, &r.version_info, step);
        }
    }

    /// A proxy reconnected and says it has `version`: if that is what we would
    /// send, it has it all, and nothing needs sending.
    fn resume_sotw(&mut self, kind: ResourceType, version: &str, step: &mut Step) {
        let ts = &self.types[kind.index()];
        let view: BTreeMap<Arc<str>, Arc<Resource>> = self
            .snapshot
            .served(kind, true)
            .iter()
            .filter(|(n, _)| ts.in_scope(n))
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect();
        if version_of_view(view.values().map(|r| (&r.name, &r.version))) == version {
            let resumed: Vec<Arc<Resource>> = view.values().cloned().collect();
            let ts = &mut self.types[kind.index()];
            ts.applied = view
                .into_iter()
                .map(|(n, r)| {
                    // What a proxy kept across a reconnect proves nothing.
                    let applied = Applied {
                        witness: false,
                        version: r.version.clone(),
                        resource: Some(r),
                    };
                    (n, applied)
                })
                .collect();
            ts.answer_subscription = false;
            self.epochs[kind.index()] += 1;
            self.report_resumed(kind, version, &resumed, step);
        }
    }

    /// A proxy reconnected holding `resumed` (at the versions we would send):
    /// reported like an ACK, so that what it runs counts as applied (for
    /// `Programmed`) without waiting for the next change.
    fn report_resumed(
        &mut self,
        kind: ResourceType,
        version: &str,
        resumed: &[Arc<Resource>],
        step: &mut Step,
    ) {
        if resumed.is_empty() {
            return;
        }
        let assembled = self.assembled_of(kind, resumed);
        step.events.push(XdsEvent::Acked(Ack {
            proxy: self.proxy.clone(),
            kind,
            version: version.to_owned(),
            resources: reported_versions(resumed, &assembled),
            removed: Vec::new(),
            serial: self.snapshot.serial(),
            complete: false,
            programmed: Vec::new(),
        }));
        if !assembled.is_empty() {
            self.report_virtual_hosts(&assembled, version.to_owned(), self.snapshot.serial(), step);
        }
    }

    /// The route configs among `resources` that go whole in place of the
    /// snapshot's VHDS shell, with what they are assembled from.
    fn assembled_of(&self, kind: ResourceType, resources: &[Arc<Resource>]) -> Vec<Assembled> {
        if !self.whole_route_configs || kind != ResourceType::Route {
            return Vec::new();
        }
        resources
            .iter()
            .filter_map(|r| self.snapshot.get(kind, &r.name).filter(|shell| shell.vhds))
            .map(|shell| Assembled {
                name: shell.name.clone(),
                shell_version: shell.version.clone(),
                virtual_hosts: virtual_hosts_of(&self.snapshot, &shell.name),
            })
            .collect()
    }

    fn on_delta(&mut self, mut r: DeltaDiscoveryRequest, step: &mut Step) {
        let Some(kind) = ResourceType::from_type_url(&r.type_url) else {
            tracing::debug!(type_url = %r.type_url, "ignoring a request for a type Legate does not serve");
            return;
        };
        // Unlike state of the world, a stale delta request still carries a
        // subscription change, which is applied below.
        if !r.response_nonce.is_empty() && self.types[kind.index()].last_nonce == r.response_nonce {
            self.settle(kind, r.error_detail.take().map(|e| e.message), step);
        }
        let snapshot = self.snapshot.clone();
        if kind == ResourceType::Route && !self.types[kind.index()].subscribed {
            self.keep_whole_route_configs(&r);
        }
        let ts = &mut self.types[kind.index()];
        let first = !ts.subscribed;
        let mut changed = first;
        let mut resumed = Vec::new();
        if first {
            ts.subscribed = true;
            ts.namespaced = kind.is_subscribed_by_namespace();
            // Legacy wildcard: a first request that names nothing wants everything.
            ts.wildcard = r.resource_names_subscribe.is_empty();
            for (name, version) in &r.initial_resource_versions {
                let name: Arc<str> = name.as_str().into();
                let resource = snapshot
                    .served(kind, self.whole_route_configs)
                    .get(&name)
                    .filter(|res| *res.version == **version)
                    .cloned();
                resumed.extend(resource.clone());
                ts.applied.insert(
                    name,
                    Applied {
                        witness: false,
                        version: version.as_str().into(),
                        resource,
                    },
                );
            }
        }
        for name in &r.resource_names_subscribe {
            if name == "*" {
                changed |= !ts.wildcard;
                ts.wildcard = true;
            } else {
                ts.names.insert(name.as_str().into());
                // Asking (again) for a name is always answered: the proxy does
                // not have it (for a namespace: anything in it).
                changed = true;
                if !first {
                    ts.applied.remove(name.as_str());
                    if ts.namespaced {
                        let prefix = format!("{name}/");
                        ts.applied.retain(|n, _| !n.starts_with(&prefix));
                    }
                }
            }
        }
        for name in &r.resource_names_unsubscribe {
            if name == "*" {
                changed |= ts.wildcard;
                ts.wildcard = false;
            } else {
                changed |= ts.names.remove(name.as_str());
            }
        }
        if changed {
            ts.forget_unsubscribed();
            ts.answer_subscription = first || !r.resource_names_subscribe.is_empty();
            self.epochs[kind.index()] += 1;
        }
        // What the proxy kept and still subscribes to.
        let ts = &self.types[kind.index()];
        resumed.retain(|r| ts.applied.contains_key(&r.name));
        let version = version_of_view(resumed.iter().map(|r| (&r.name, &r.version)));
        self.report_resumed(kind, &version, &resumed, step);
    }

    /// A proxy that reconnects holding a route config other than the VHDS
    /// shell (it ran before the Gateway used VHDS) keeps getting it whole:
    /// Envoy would apply the shell, which holds no virtual host, before its
    /// VHDS subscription answers, and answer 404 meanwhile. A restarted
    /// Envoy starts over with VHDS.
    fn keep_whole_route_configs(&mut self, first: &DeltaDiscoveryRequest) {
        if self.whole_route_configs {
            return;
        }
        let held_before = first.initial_resource_versions.iter().any(|(name, version)| {
            self.snapshot
                .get(ResourceType::Route, name)
                .is_some_and(|shell| shell.vhds && *shell.version != **version)
        });
        if held_before {
            tracing::info!(proxy = %self.proxy, "the proxy holds route configs from before VHDS: they stay whole until it restarts");
            self.whole_route_configs = true;
        }
    }

    /// The proxy answered our latest response: ACK, or NACK with `error`.
    /// (Later requests that repeat that nonce only change subscriptions.)
    fn settle(&mut self, kind: ResourceType, error: Option<String>, step: &mut Step) {
        let ts = &mut self.types[kind.index()];
        let Some(flight) = ts.in_flight.take() else {
            return;
        };
        self.epochs[kind.index()] += 1;
        match error {
            None => {
                // Applied, and nothing changed since: evaluating again against
                // the same snapshot would find nothing to send (a large type,
                // VHDS or CDS, would be scanned for nothing).
                let type_serial = self.type_serial(kind);
                let ts = &mut self.types[kind.index()];
                if flight.whole && flight.type_serial == type_serial && !ts.answer_subscription {
                    ts.settled = Some(Settled {
                        serials: ResourceType::ALL.map(|t| self.snapshot.type_serial(t)),
                        epochs: self.epochs,
                        held: false,
                        kept: false,
                    });
                }
                let programmed =
                    blame::changed_objects(&flight.upserts, |n| applied_resource(&ts.applied, n));
                if flight.complete {
                    ts.applied.clear();
                }
                for name in &flight.removals {
                    ts.applied.remove(name);
                }
                for r in &flight.upserts {
                    ts.refused.remove(&r.name);
                    ts.applied.insert(
                        r.name.clone(),
                        Applied {
                            witness: !flight.unwitnessed.contains(&r.name),
                            version: r.version.clone(),
                            resource: Some(r.clone()),
                        },
                    );
                }
                let resources = reported_versions(&flight.upserts, &flight.assembled);
                step.events.push(XdsEvent::Acked(Ack {
                    proxy: self.proxy.clone(),
                    kind,
                    version: flight.version.clone(),
                    resources,
                    removed: flight.removals,
                    serial: flight.serial,
                    complete: flight.complete,
                    programmed,
                }));
                if !flight.assembled.is_empty() {
                    self.report_virtual_hosts(&flight.assembled, flight.version, flight.serial, step);
                }
            }
            Some(message) => {
                // Only what changed can have been refused: in a complete
                // state-of-the-world response, the unchanged rest was fine.
                let changed: Vec<&Arc<Resource>> = flight
                    .upserts
                    .iter()
                    .filter(|r| ts.applied.get(&r.name).is_none_or(|a| a.version != r.version))
                    .collect();
                for r in &changed {
                    ts.refused.insert(r.name.clone(), r.version.clone());
                }
                let objects = blame::blame(&message, &changed, |n| applied_resource(&ts.applied, n));
                tracing::warn!(proxy = %self.proxy, %kind, %message, "Envoy rejected a configuration");
                step.events.push(XdsEvent::Rejected(Rejection {
                    proxy: self.proxy.clone(),
                    kind,
                    version: flight.version,
                    message,
                    resources: changed.iter().map(|r| r.name.clone()).collect(),
                    objects,
                }));
            }
        }
    }

    /// The proxy applied route configs sent whole: the
    /// virtual hosts they were assembled from are applied, and those they no
    /// longer hold are gone, as if it had them over VHDS.
    fn report_virtual_hosts(
        &mut self,
        assembled: &[Assembled],
        version: String,
        serial: u64,
        step: &mut Step,
    ) {
        let mut resources = Vec::new();
        let mut removed = Vec::new();
        for a in assembled {
            let now: BTreeMap<&Arc<str>, &Arc<str>> = a.virtual_hosts.iter().map(|(n, v)| (n, v)).collect();
            self.whole_virtual_hosts.retain(|name, _| {
                let gone =
                    name.rsplit_once('/').is_some_and(|(rc, _)| *rc == *a.name) && !now.contains_key(name);
                if gone {
                    removed.push(name.clone());
                }
                !gone
            });
            for (name, version) in &a.virtual_hosts {
                if self.whole_virtual_hosts.get(name) != Some(version) {
                    self.whole_virtual_hosts.insert(name.clone(), version.clone());
                    resources.push((name.clone(), version.clone()));
                }
            }
        }
        if resources.is_empty() && removed.is_empty() {
            return;
        }
        step.events.push(XdsEvent::Acked(Ack {
            proxy: self.proxy.clone(),
            kind: ResourceType::VirtualHost,
            version,
            resources,
            removed,
            serial,
            complete: false,
            programmed: Vec::new(),
        }));
    }

    fn send_what_is_due(&mut self, step: &mut Step) {
        for kind in ResourceType::ALL {
            if let Some(response) = self.evaluate(kind) {
                step.responses.push(response);
            }
        }
    }

    /// Could anything be due for `kind` since it last settled?
    fn unsettled(&self, kind: ResourceType) -> bool {
        let Some(s) = &self.types[kind.index()].settled else {
            return true;
        };
        let serials = ResourceType::ALL.map(|t| self.snapshot.type_serial(t));
        let same = |t: ResourceType| {
            s.serials[t.index()] == serials[t.index()] && s.epochs[t.index()] == self.epochs[t.index()]
        };
        if !same(kind) {
            return true;
        }
        // Route configs sent whole change with their virtual hosts.
        if self.whole_route_configs && kind == ResourceType::Route && !same(ResourceType::VirtualHost) {
            return true;
        }
        let held_on = [
            ResourceType::Cluster,
            ResourceType::Endpoints,
            ResourceType::Route,
        ];
        if s.held && !held_on.into_iter().all(same) {
            return true;
        }
        s.kept
            && !referrers(kind)
                .iter()
                .all(|t| s.epochs[t.index()] == self.epochs[t.index()])
    }

    /// The response due for `kind`, if any.
    fn evaluate(&mut self, kind: ResourceType) -> Option<Response> {
        // Not translated yet: the proxy keeps what it runs until it is.
        if !self.snapshot.published() {
            return None;
        }
        {
            let ts = &self.types[kind.index()];
            if !ts.subscribed || ts.in_flight.is_some() || !self.unsettled(kind) {
                return None;
            }
        }
        let snapshot = self.snapshot.clone();
        let ts = &self.types[kind.index()];
        let mut upserts: Vec<Arc<Resource>> = Vec::new();
        // What the proxy will hold once it applies the response.
        let mut view: BTreeMap<Arc<str>, Arc<str>> = BTreeMap::new();
        let mut complete_set: Vec<Arc<Resource>> = Vec::new();
        let in_scope = |n: &Arc<str>| ts.in_scope(n);
        let served = snapshot.served(kind, self.whole_route_configs);
        let candidates: Box<dyn Iterator<Item = (&Arc<str>, &Arc<Resource>)>> = if ts.wildcard {
            Box::new(served.iter())
        } else if ts.namespaced {
            // Each namespace's resources are a contiguous range of the map.
            Box::new(ts.names.iter().flat_map(|namespace| {
                let prefix = format!("{namespace}/");
                served
                    .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                    .take_while(move |(n, _)| n.starts_with(&prefix))
            }))
        } else {
            Box::new(ts.names.iter().filter_map(|n| served.get_key_value(n)))
        };
        let mut held = false;
        let mut unwitnessed = BTreeSet::new();
        for (name, r) in candidates {
            let applied = ts.applied.get(name);
            if applied.is_some_and(|a| a.version == r.version) {
                // Already on the proxy: nothing to check, nothing to send (a
                // name the proxy dropped and asks for again is not applied).
                view.insert(name.clone(), r.version.clone());
                complete_set.push(r.clone());
                continue;
            }
            let readiness = self.is_ready(kind, r, applied);
            let ready = readiness != Readiness::Held;
            held |= !ready;
            let sendable = ready && ts.refused.get(name) != Some(&r.version);
            if sendable && readiness == Readiness::Unwitnessed {
                unwitnessed.insert(name.clone());
            }
            let chosen = if sendable {
                Some(r.clone())
            } else {
                applied.and_then(|a| a.resource.clone())
            };
            if let Some(chosen) = chosen {
                if applied.is_none_or(|a| a.version != chosen.version) {
                    upserts.push(chosen.clone());
                }
                view.insert(name.clone(), chosen.version.clone());
                complete_set.push(chosen);
            } else if let Some(a) = applied {
                view.insert(name.clone(), a.version.clone());
            }
        }
        // What the proxy holds that the snapshot no longer has: kept while
        // something the proxy applied still refers to it.
        let mut removals = Vec::new();
        let mut kept = false;
        for (name, a) in &ts.applied {
            if view.contains_key(name) || !in_scope(name) {
                continue;
            }
            if self.still_referenced(kind, name) {
                kept = true;
                view.insert(name.clone(), a.version.clone());
                complete_set.extend(a.resource.clone());
            } else {
                removals.push(name.clone());
            }
        }
        let complete = self.protocol == Protocol::StateOfTheWorld && kind.is_wildcard_by_default();
        let ts = &mut self.types[kind.index()];
        let removal_matters = complete || self.protocol == Protocol::Delta;
        // A new subscription is answered even when nothing changed, but not
        // with an empty response while what it asks for is held back.
        let answer = ts.answer_subscription && !(held && upserts.is_empty());
        if upserts.is_empty() && (removals.is_empty() || !removal_matters) && !answer {
            if self.protocol == Protocol::StateOfTheWorld {
                // Names the proxy stopped wanting are simply forgotten.
                for name in &removals {
                    ts.applied.remove(name);
                }
            }
            ts.settled = Some(Settled {
                serials: ResourceType::ALL.map(|t| snapshot.type_serial(t)),
                epochs: self.epochs,
                held,
                kept,
            });
            return None;
        }
        ts.answer_subscription = false;
        ts.settled = None;
        self.nonces += 1;
        let nonce = self.nonces.to_string();
        let version = version_of_view(view.iter());
        let response = match self.protocol {
            Protocol::StateOfTheWorld => {
                let sent = if complete { &complete_set } else { &upserts };
                Response::Sotw(DiscoveryResponse {
                    version_info: version.clone(),
                    resources: sent.iter().map(|r| r.to_any()).collect(),
                    type_url: kind.type_url().to_owned(),
                    nonce: nonce.clone(),
                    ..DiscoveryResponse::default()
                })
            }
            Protocol::Delta => Response::Delta(DeltaDiscoveryResponse {
                system_version_info: version.clone(),
                resources: upserts
                    .iter()
                    .map(|r| DeltaResource {
                        name: r.name.to_string(),
                        version: r.version.to_string(),
                        resource: Some(r.to_any()),
                        ..DeltaResource::default()
                    })
                    .collect(),
                type_url: kind.type_url().to_owned(),
                removed_resources: removals.iter().map(|n| n.to_string()).collect(),
                nonce: nonce.clone(),
                ..DeltaDiscoveryResponse::default()
            }),
        };
        let assembled = self.assembled_of(kind, &upserts);
        let type_serial = self.type_serial(kind);
        let ts = &mut self.types[kind.index()];
        ts.last_nonce = nonce.clone();
        ts.in_flight = Some(InFlight {
            serial: snapshot.serial(),
            unwitnessed,
            type_serial,
            whole: !held && !kept,
            version,
            upserts: if complete { complete_set } else { upserts },
            removals: if removal_matters { removals } else { Vec::new() },
            complete,
            assembled,
        });
        Some(response)
    }

    /// Make-before-break: may `r` go to the proxy now? Listeners and route
    /// configs wait for the clusters they send to (and their endpoints) to be
    /// applied, when the proxy uses CDS and the snapshot has those clusters.
    /// References the applied version already had are on the proxy already.
    fn is_ready(&self, kind: ResourceType, r: &Resource, applied: Option<&Applied>) -> Readiness {
        if !matches!(
            kind,
            ResourceType::Listener | ResourceType::Route | ResourceType::VirtualHost
        ) {
            return Readiness::Ready;
        }
        // Envoy takes a route config's virtual hosts only once it runs the
        // route config (its VHDS watch starts then): sent before, they are
        // dropped, and the route config never finishes warming.
        if kind == ResourceType::VirtualHost
            && let Some((route_config, _)) = r.name.rsplit_once('/')
            && !self.types[ResourceType::Route.index()]
                .applied
                .contains_key(route_config)
        {
            return Readiness::Held;
        }
        let clusters = &self.types[ResourceType::Cluster.index()];
        if !clusters.subscribed {
            return Readiness::Ready;
        }
        // References the applied version had, when every one of them was
        // ready as it went out, are on the proxy still (retention keeps them).
        let previously = applied
            .filter(|a| a.witness)
            .and_then(|a| a.resource.as_ref())
            .map(|old| old.references.as_slice())
            .unwrap_or_default();
        let endpoints = &self.types[ResourceType::Endpoints.index()];
        let mut readiness = Readiness::Ready;
        // Both lists are sorted: walk them together.
        let mut prev = previously.iter().peekable();
        for reference in &r.references {
            while prev.next_if(|p| *p < reference).is_some() {}
            if prev.peek() == Some(&reference) {
                continue;
            }
            let (ref_kind, name) = reference;
            if *ref_kind != ResourceType::Cluster {
                continue;
            }
            // A route to a cluster that does not exist, or that the proxy
            // refused, has nothing to wait for: waiting would hold every other
            // route of the route config hostage. It goes, but is no witness.
            let Some(cluster) = self.snapshot.get(ResourceType::Cluster, name) else {
                readiness = Readiness::Unwitnessed;
                continue;
            };
            if is_refused(clusters, cluster) {
                readiness = Readiness::Unwitnessed;
                continue;
            }
            let Some(applied) = clusters.applied.get(name) else {
                return Readiness::Held;
            };
            let Some(cluster) = applied.resource.as_ref() else {
                readiness = Readiness::Unwitnessed;
                continue;
            };
            for (k, e) in &cluster.references {
                if *k != ResourceType::Endpoints || endpoints.applied.contains_key(e) {
                    continue;
                }
                match self.snapshot.get(ResourceType::Endpoints, e) {
                    Some(cla) if !is_refused(endpoints, cla) => return Readiness::Held,
                    _ => readiness = Readiness::Unwitnessed,
                }
            }
        }
        readiness
    }

    /// Does something the proxy applied still refer to `name` of `kind`?
    fn still_referenced(&self, kind: ResourceType, name: &Arc<str>) -> bool {
        let wanted = (kind, name.clone());
        referrers(kind).iter().any(|referrer| {
            let ts = &self.types[referrer.index()];
            // A response in flight may be applied any moment: what it refers
            // to must still be there when it is.
            let in_flight = ts.in_flight.iter().flat_map(|f| f.upserts.iter());
            ts.applied
                .values()
                .filter_map(|a| a.resource.as_ref())
                .chain(in_flight)
                .any(|r| r.references.binary_search(&wanted).is_ok())
        })
    }
}

/// (name, version) of `resources` as the rest of Legate knows them: a route
/// config sent whole is the shell the snapshot holds (and its virtual hosts).
fn reported_versions(resources: &[Arc<Resource>], assembled: &[Assembled]) -> Vec<(Arc<str>, Arc<str>)> {
    resources
        .iter()
        .map(|r| {
            let shell = assembled.iter().find(|a| a.name == r.name);
            let version = shell.map_or(&r.version, |a| &a.shell_version);
            (r.name.clone(), version.clone())
        })
        .collect()
}

/// The virtual hosts (name, version) of route config `name` in `snapshot`.
fn virtual_hosts_of(snapshot: &Snapshot, name: &str) -> Vec<(Arc<str>, Arc<str>)> {
    let prefix = format!("{name}/");
    snapshot
        .resources(ResourceType::VirtualHost)
        .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
        .take_while(|(n, _)| n.starts_with(&prefix))
        .filter(|(n, _)| !n[prefix.len()..].contains('/'))
        .map(|(n, r)| (n.clone(), r.version.clone()))
        .collect()
}

/// Did the proxy refuse this very version of `r`?
fn is_refused(ts: &TypeState, r: &Resource) -> bool {
    ts.refused.get(&r.name) == Some(&r.version)
}

/// Whether a listener, route config or virtual host may go to the proxy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Readiness {
    /// Every cluster it sends to is on the proxy, with its endpoints.
    Ready,
    /// It may go, but some cluster it sends to is not on the proxy (missing
    /// from the snapshot, refused, or of unknown content): once applied, it
    /// proves nothing about its references.
    Unwitnessed,
    /// It waits for a cluster or endpoints on their way.
    Held,
}

/// The applied resource called `name`, when its content is known.
fn applied_resource<'a>(applied: &'a BTreeMap<Arc<str>, Applied>, name: &str) -> Option<&'a Arc<Resource>> {
    applied.get(name).and_then(|a| a.resource.as_ref())
}

/// The types whose applied resources keep a removed resource of `kind` alive.
fn referrers(kind: ResourceType) -> &'static [ResourceType] {
    match kind {
        ResourceType::Cluster => &[
            ResourceType::Listener,
            ResourceType::Route,
            ResourceType::VirtualHost,
        ],
        ResourceType::Endpoints => &[ResourceType::Cluster],
        _ => &[],
    }
}

/// A version for a set of (name, version) pairs.
fn version_of_view<'a>(items: impl Iterator<Item = (&'a Arc<str>, &'a Arc<str>)>) -> String {
    let mut bytes = Vec::new();
    for (name, version) in items {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(version.as_bytes());
        bytes.push(0);
    }
    format!("{:016x}", hash_bytes(&bytes))
}

#[cfg(test)]
mod simulation;
#[cfg(test)]
mod sotw_vhds;
#[cfg(test)]
mod tests;
