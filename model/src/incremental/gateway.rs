//! One Gateway's configuration, kept between worlds. What comes before its
//! HTTP routes (listeners, TLS) and after them (Gateway-wide services, TCP
//! routes), the frame, is built again whole when any of it may change; the
//! routes of each group of Mappings with one match are judged again one
//! group at a time; what they share is merged again ([`super::sources`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use legate_crds::{Gateway, Mapping};
use legate_xds::ir;

use super::sources::{Names, Source, Sources, Stale, Written, scratch};
use super::{FrameReads, MappingState};
use crate::hosts::{self, Claim, HostOwners};
use crate::mappings::{self, Placement};
use crate::names::gateway_key;
use crate::secrets::SecretKey;
use crate::services::{Reads, ResolvedPort, ServiceIndex, ServiceKey};
use crate::verdicts::{Problem, Verdict, Verdicts};
use crate::world::{Quarantine, World};

/// The Mappings of one match on this Gateway and what they make.
#[derive(Debug)]
struct Group {
    /// By object key.
    members: BTreeMap<String, Arc<Mapping>>,
    /// The names of the upstreams, endpoints and Secrets the group wrote
    /// (in `Sources`) and of its routes (in the configuration).
    names: Names,
    routes: Vec<ir::RouteId>,
    /// What the group said about its members, on this Gateway alone, by
    /// object key (sorted).
    verdicts: Vec<(String, Verdict)>,
    /// What it looked up.
    reads: Reads,
}

/// Which groups read each Service and Secret.
#[derive(Debug, Default)]
struct Readers {
    services: HashMap<ServiceKey, HashSet<Arc<str>>>,
    secrets: HashMap<SecretKey, HashSet<Arc<str>>>,
}

impl Readers {
    fn add(&mut self, group: &Arc<str>, reads: &Reads) {
        for service in &reads.services {
            self.services
                .entry(service.clone())
                .or_default()
                .insert(group.clone());
        }
        for secret in &reads.secrets {
            self.secrets
                .entry(secret.clone())
                .or_default()
                .insert(group.clone());
        }
    }

    fn remove(&mut self, group: &Arc<str>, reads: &Reads) {
        fn forget<K: std::hash::Hash + Eq>(
            map: &mut HashMap<K, HashSet<Arc<str>>>,
            key: &K,
            group: &Arc<str>,
        ) {
            if let Some(groups) = map.get_mut(key) {
                groups.remove(group);
                if groups.is_empty() {
                    map.remove(key);
                }
            }
        }
        for service in &reads.services {
            forget(&mut self.services, service, group);
        }
        for secret in &reads.secrets {
            forget(&mut self.secrets, secret, group);
        }
    }
}

/// The groups that wrote the endpoints of each Service port, and under
/// which names: while a port keeps having ready endpoints (or none), an
/// EndpointSlice change merges those names again and judges nothing.
#[derive(Debug, Default)]
struct Ports {
    by_service: HashMap<ServiceKey, HashMap<ResolvedPort, PortUse>>,
}

#[derive(Debug, Default)]
struct PortUse {
    /// Whether the port had no ready endpoint when the groups wrote it
    /// (which a verdict may say, and so all writers agree on).
    empty: bool,
    groups: HashMap<Arc<str>, u32>,
    names: HashMap<String, u32>,
}

impl Ports {
    fn add(&mut self, group: &Arc<str>, reads: &Reads) {
        for write in &reads.endpoints {
            let Some((service, port)) = &write.source else {
                continue;
            };
            let port_use = self
                .by_service
                .entry(service.clone())
                .or_default()
                .entry(port.clone())
                .or_default();
            port_use.empty = write.empty;
            *port_use.groups.entry(group.clone()).or_default() += 1;
            *port_use.names.entry(write.upstream.clone()).or_default() += 1;
        }
    }

    fn remove(&mut self, group: &Arc<str>, reads: &Reads) {
        fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: &K) {
            if let Some(count) = counts.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(key);
                }
            }
        }
        for write in &reads.endpoints {
            let Some((service, port)) = &write.source else {
                continue;
            };
            let Some(ports) = self.by_service.get_mut(service) else {
                continue;
            };
            if let Some(port_use) = ports.get_mut(port) {
                release(&mut port_use.groups, group);
                release(&mut port_use.names, &write.upstream);
                if port_use.groups.is_empty() {
                    ports.remove(port);
                }
            }
            if ports.is_empty() {
                self.by_service.remove(service);
            }
        }
    }
}

/// What one Gateway said about one Mapping.
pub(super) enum Effect<'a> {
    Nothing,
    Invalid(&'a Problem),
    Quarantined,
    /// Judged with the Mappings of its match.
    Judged(&'a Verdict),
}

/// Where one Mapping stands on this Gateway; `Ignored` is not kept.
#[derive(Debug, PartialEq)]
enum Placed {
    /// Invalid, or its host is another namespace's.
    Invalid(Problem),
    Quarantined,
    Routed(Arc<str>),
}

/// One Gateway's part of the incremental model.
#[derive(Debug)]
pub(super) struct GatewayState {
    pub key: String,
    gateway: Arc<Gateway>,
    /// The listeners Mappings route on.
    listeners: Vec<String>,
    settings: mappings::RouteSettings,
    /// The shared names the listeners and TLSContexts wrote.
    before: Names,
    /// The shared names the Gateway-wide parts wrote.
    after: Names,
    /// The routes of the listeners, TLSContexts and Gateway-wide parts.
    frame_routes: Vec<ir::RouteId>,
    placed: HashMap<String, Placed>,
    /// Who owns each host here, and the claims of the Mappings (by object
    /// key) and of the frame's TLSContexts and TCPMappings (patterns).
    hosts: HostOwners,
    claimed: HashMap<String, (String, Claim)>,
    frame_claims: Vec<String>,
    groups: HashMap<Arc<str>, Group>,
    /// Which groups read each Service and Secret.
    readers: Readers,
    /// Which groups wrote the endpoints of each Service port.
    ports: Ports,
    shared: Sources,
    /// The entries of the configuration written since the last
    /// [`GatewayState::take_touched`].
    touched: ir::Touched,
}

impl GatewayState {
    /// The state of `gateway` with no Mapping yet, and its configuration
    /// so far (see [`GatewayState::refresh_frame`]).
    pub fn new(
        world: &World,
        quarantine: &Quarantine,
        gateway: &Arc<Gateway>,
        index: &ServiceIndex,
        verdicts: &mut Verdicts,
        frame_reads: &mut FrameReads,
    ) -> (GatewayState, ir::Gateway) {
        let mut state = GatewayState {
            key: gateway_key(gateway),
            gateway: gateway.clone(),
            listeners: Vec::new(),
            settings: mappings::route_settings(gateway),
            before: Names::default(),
            after: Names::default(),
            frame_routes: Vec::new(),
            placed: HashMap::new(),
            hosts: HostOwners::new(gateway),
            claimed: HashMap::new(),
            frame_claims: Vec::new(),
            groups: HashMap::new(),
            readers: Readers::default(),
            ports: Ports::default(),
            shared: Sources::default(),
            touched: ir::Touched::default(),
        };
        let mut config = scratch();
        state.refresh_frame(
            world,
            quarantine,
            index,
            verdicts,
            frame_reads,
            &mut config,
            &mut HashSet::new(),
        );
        (state, config)
    }

    /// Takes `gateway` as the new version of this one (the same namespace
    /// and name); every group joins `dirty` if its route defaults changed.
    /// Its listeners and attachment are the frame's to follow
    /// ([`GatewayState::refresh_frame`], and placing every Mapping again).
    pub fn respec(&mut self, gateway: &Arc<Gateway>, dirty: &mut HashSet<Arc<str>>) {
        self.gateway = gateway.clone();
        let settings = mappings::route_settings(gateway);
        if settings != self.settings {
            self.settings = settings;
            dirty.extend(self.groups.keys().cloned());
        }
    }

    /// Builds again the parts of the configuration before the HTTP routes
    /// (listeners, TLS) and after them (Gateway-wide services, TCP routes),
    /// with their verdicts, and puts them in `config`. Adds to
    /// `frame_reads` the Services and Secrets those parts read; to `dirty`
    /// every group when the listeners Mappings route on changed.
    #[allow(clippy::too_many_arguments)]
    pub fn refresh_frame(
        &mut self,
        world: &World,
        quarantine: &Quarantine,
        index: &ServiceIndex,
        verdicts: &mut Verdicts,
        frame_reads: &mut FrameReads,
        config: &mut ir::Gateway,
        dirty: &mut HashSet<Arc<str>>,
    ) {
        self.reclaim_all(world);
        let gateway = &self.gateway;
        let hosts = &self.hosts;
        let mut before = crate::start_config(world, gateway, hosts, quarantine, verdicts);
        let mut after = ir::Gateway {
            listeners: before.listeners.clone(),
            ..scratch()
        };
        let ((), reads) = index.recording(|| {
            crate::finish_config(world, gateway, hosts, quarantine, index, &mut after, verdicts)
        });
        frame_reads.services.extend(reads.services);
        frame_reads.secrets.extend(reads.secrets);

        for id in self.frame_routes.drain(..) {
            config.routes.remove(&id);
            self.touched.routes.insert(id);
        }
        let routes = std::mem::take(&mut before.routes)
            .into_iter()
            .chain(std::mem::take(&mut after.routes));
        for (id, route) in routes {
            self.frame_routes.push(id.clone());
            self.touched.routes.insert(id.clone());
            config.routes.insert(id, route);
        }
        self.touched.frame = true;
        config.listeners = std::mem::take(&mut after.listeners);
        config.tcp_routes = std::mem::take(&mut after.tcp_routes);
        config.auth = after.auth.take();
        config.rate_limit = after.rate_limit.take();
        config.namespace_auth = std::mem::take(&mut after.namespace_auth);
        config.namespace_rate_limit = std::mem::take(&mut after.namespace_rate_limit);
        config.observability = std::mem::replace(&mut after.observability, scratch().observability);

        let listeners = mappings::http_listeners(&before);
        if listeners != self.listeners {
            self.listeners = listeners;
            dirty.extend(self.groups.keys().cloned());
        }
        let mut stale = Stale::default();
        self.shared.remove(&self.before, &Source::Before, &mut stale);
        self.shared.remove(&self.after, &Source::After, &mut stale);
        let before = Written::take(&mut before);
        self.before = self.shared.add(before, &Source::Before, None, &mut stale);
        let after = Written::take(&mut after);
        self.after = self.shared.add(after, &Source::After, None, &mut stale);
        self.shared.merge(&stale, config, index, &mut self.touched);
    }

    /// Places the Mapping with object key `key` (`None`: deleted) again,
    /// adding to `dirty` the groups it leaves and joins. Unless `changed`,
    /// a Mapping that stays where it was leaves its group alone. Whether it
    /// was placed again.
    pub fn place(
        &mut self,
        world: &World,
        quarantine: &Quarantine,
        key: &str,
        mapping: Option<&MappingState>,
        changed: bool,
        dirty: &mut HashSet<Arc<str>>,
    ) -> bool {
        let placed = mapping.and_then(|mapping| {
            let placement = mappings::place(
                world,
                &self.gateway,
                &self.hosts,
                quarantine,
                &mapping.object,
                || mapping.validity.clone(),
            );
            match placement {
                Placement::Ignored => None,
                Placement::Invalid(problem) | Placement::Refused(problem) => Some(Placed::Invalid(problem)),
                Placement::Quarantined => Some(Placed::Quarantined),
                Placement::Routed => Some(Placed::Routed(mapping.match_key.clone())),
            }
        });
        if !changed && self.placed.get(key) == placed.as_ref() {
            return false;
        }
        if let Some(Placed::Routed(group)) = self.placed.remove(key) {
            if let Some(g) = self.groups.get_mut(&group) {
                g.members.remove(key);
            }
            dirty.insert(group);
        }
        let (Some(mapping), Some(placed)) = (mapping, placed) else {
            return true;
        };
        if let Placed::Routed(group) = &placed {
            self.groups
                .entry(group.clone())
                .or_insert_with(|| Group {
                    members: BTreeMap::new(),
                    names: Names::default(),
                    routes: Vec::new(),
                    verdicts: Vec::new(),
                    reads: Reads::default(),
                })
                .members
                .insert(key.to_string(), mapping.object.clone());
            dirty.insert(group.clone());
        }
        self.placed.insert(key.to_string(), placed);
        true
    }

    /// Counts every claim on a host again, from `world` (the Mappings'
    /// and the frame's).
    fn reclaim_all(&mut self, world: &World) {
        self.hosts = HostOwners::new(&self.gateway);
        self.claimed.clear();
        for mapping in &world.mappings {
            if let Some(pattern) = self.hosts.mapping_claim(world, &self.gateway, mapping) {
                let claim = Claim::of(mapping.as_ref());
                self.hosts.add(&pattern, claim.clone());
                self.claimed.insert(claim.key(), (pattern, claim));
            }
        }
        self.frame_claims = self.hosts.add_frame_claims(world, &self.gateway);
    }

    /// Takes back the claim of the Mapping with object key `key` and makes
    /// its new one (`None`: deleted); the patterns whose claims changed.
    pub fn reclaim(&mut self, world: &World, key: &str, mapping: Option<&MappingState>) -> Vec<String> {
        let now = mapping.and_then(|m| {
            let pattern = self.hosts.mapping_claim(world, &self.gateway, &m.object)?;
            Some((pattern, Claim::of(m.object.as_ref())))
        });
        let before = self.claimed.get(key);
        if before == now.as_ref() {
            return Vec::new();
        }
        let mut patterns = Vec::new();
        if let Some((pattern, claim)) = self.claimed.remove(key) {
            self.hosts.remove(&pattern, &claim);
            patterns.push(pattern);
        }
        if let Some((pattern, claim)) = now {
            self.hosts.add(&pattern, claim.clone());
            patterns.push(pattern.clone());
            self.claimed.insert(key.to_string(), (pattern, claim));
        }
        patterns
    }

    /// Whether a TLSContext or TCPMapping claims a host that claims on
    /// `patterns` may hand to another namespace (its verdict may change).
    pub fn frame_claims_overlap(&self, patterns: &[String]) -> bool {
        patterns
            .iter()
            .any(|p| self.frame_claims.iter().any(|f| hosts::overlap(p, f)))
    }

    /// The object keys of the Mappings whose host's owner may change when
    /// claims on `patterns` change.
    pub fn claimants_under(&self, patterns: &[String], keys: &mut BTreeSet<String>) {
        for pattern in patterns {
            keys.extend(
                self.hosts
                    .claims_under(pattern)
                    .map(Claim::key)
                    .filter(|key| key.starts_with("Mapping/")),
            );
        }
    }

    /// Adds to `dirty` the groups that looked up `service`.
    pub fn readers_of(&self, service: &ServiceKey, dirty: &mut HashSet<Arc<str>>) {
        if let Some(groups) = self.readers.services.get(service) {
            dirty.extend(groups.iter().cloned());
        }
    }

    /// Adds to `dirty` the groups that read `secret`.
    pub fn secret_readers_of(&self, secret: &SecretKey, dirty: &mut HashSet<Arc<str>>) {
        if let Some(groups) = self.readers.secrets.get(secret) {
            dirty.extend(groups.iter().cloned());
        }
    }

    /// Judges the `dirty` groups again and updates `config`; adds to
    /// `touched` (if asked) the Mappings whose verdict may have changed.
    pub fn rejudge(
        &mut self,
        world: &World,
        index: &ServiceIndex,
        dirty: HashSet<Arc<str>>,
        config: &mut ir::Gateway,
        mut touched: Option<&mut BTreeSet<String>>,
    ) {
        let mut stale = Stale::default();
        // Take back everything the dirty groups said last time before any
        // says anything new: a Mapping that moves to another group keeps
        // its route ids.
        for name in &dirty {
            let Some(group) = self.groups.get_mut(name) else {
                continue;
            };
            for id in group.routes.drain(..) {
                config.routes.remove(&id);
                self.touched.routes.insert(id);
            }
            self.shared
                .remove(&group.names, &Source::Group(name.clone()), &mut stale);
            group.names = Names::default();
            let reads = std::mem::take(&mut group.reads);
            self.readers.remove(name, &reads);
            self.ports.remove(name, &reads);
            if let Some(touched) = touched.as_deref_mut() {
                touched.extend(group.verdicts.drain(..).map(|(key, _)| key));
            }
            if group.members.is_empty() {
                self.groups.remove(name);
            }
        }
        for name in dirty {
            let Some(group) = self.groups.get_mut(&name) else {
                continue;
            };
            let members: Vec<Arc<Mapping>> = group.members.values().cloned().collect();
            let mut output = scratch();
            let mut verdicts = Verdicts::default();
            let ((), reads) = index.recording(|| {
                mappings::route_group(
                    world,
                    members,
                    &self.listeners,
                    &self.settings,
                    index,
                    &self.key,
                    &mut output,
                    &mut verdicts,
                );
            });
            for (id, route) in std::mem::take(&mut output.routes) {
                group.routes.push(id.clone());
                self.touched.routes.insert(id.clone());
                config.routes.insert(id, route);
            }
            let written = Written::take(&mut output);
            let source = Source::Group(name.clone());
            group.names = self.shared.add(written, &source, Some(&reads), &mut stale);
            self.readers.add(&name, &reads);
            self.ports.add(&name, &reads);
            if let Some(touched) = touched.as_deref_mut() {
                touched.extend(verdicts.keys().cloned());
                touched.extend(group.members.keys().cloned());
            }
            group.verdicts = verdicts.into_entries();
            group.reads = reads;
        }
        self.shared.merge(&stale, config, index, &mut self.touched);
    }

    /// Follows a change of the EndpointSlices (and only them) of `services`:
    /// the endpoints written for their ports are merged again, routes and
    /// verdicts stay. Where a port gains its first ready endpoint or loses
    /// its last (which a verdict may say), the groups that wrote it join
    /// `dirty` instead.
    pub fn rewrite_endpoints(
        &mut self,
        index: &ServiceIndex,
        services: &BTreeSet<ServiceKey>,
        dirty: &mut HashSet<Arc<str>>,
        config: &mut ir::Gateway,
    ) {
        let mut stale = Stale::default();
        for service in services {
            let Some(ports) = self.ports.by_service.get(service) else {
                continue;
            };
            for (port, port_use) in ports {
                let empty = index.endpoints(&service.0, &service.1, port).is_empty();
                if empty == port_use.empty {
                    port_use.names.keys().for_each(|name| stale.endpoints(name));
                } else {
                    dirty.extend(port_use.groups.keys().cloned());
                }
            }
        }
        self.shared.merge(&stale, config, index, &mut self.touched);
    }

    /// The entries of the configuration written since the last call (an
    /// entry written with what it held counts too).
    pub fn take_touched(&mut self) -> ir::Touched {
        std::mem::take(&mut self.touched)
    }

    /// What this Gateway said about the Mapping with object key `key`.
    pub fn effect(&self, key: &str) -> Effect<'_> {
        match self.placed.get(key) {
            None => Effect::Nothing,
            Some(Placed::Invalid(problem)) => Effect::Invalid(problem),
            Some(Placed::Quarantined) => Effect::Quarantined,
            Some(Placed::Routed(group)) => self
                .groups
                .get(group)
                .and_then(|g| {
                    let at = g.verdicts.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
                    g.verdicts.get(at)
                })
                .map_or(Effect::Nothing, |(_, verdict)| Effect::Judged(verdict)),
        }
    }
}
