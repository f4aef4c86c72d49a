//! IR → Envoy resources, incrementally.
//!
//! A [`Translator`] holds one Gateway's IR and the encodings derived from it.
//! The operator hands it the whole desired IR with [`Translator::sync`], which
//! turns the difference into [`Change`]s; each change marks what it touched,
//! and [`Translator::flush`] re-encodes only that and returns the resources
//! that changed. Names come from object
//! identity: a listener's name, an upstream's name, a route's [`crate::ir::RouteId`].

mod access;
mod cluster;
mod encode;
mod filters;
mod http_edge;
mod jwt;
mod listener;
mod observe;
pub(crate) mod order;
mod route;
mod route_config;
mod secret;
pub(crate) mod vhosts;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use prost::Message;

pub use listener::route_config_name;
pub use order::SortKey;
pub use route_config::assemble as assemble_route_config;

use crate::ir;
use crate::resource::{Origin, Resource, ResourceType, ResourceUpdate, hash_bytes};
use vhosts::VirtualHosts;

/// One change to a Gateway's IR.
// Changes are short-lived (built, applied, dropped); boxing the large
// variants would cost an allocation per route for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Change {
    UpsertListener(ir::Listener),
    RemoveListener(String),
    UpsertRoute(ir::Route),
    RemoveRoute(ir::RouteId),
    UpsertTcpRoute(ir::TcpRoute),
    RemoveTcpRoute(ir::RouteId),
    UpsertUpstream(ir::Upstream),
    RemoveUpstream(String),
    /// The endpoints of an upstream: the fast path, which touches EDS only.
    SetEndpoints {
        upstream: String,
        endpoints: Vec<ir::Endpoint>,
    },
    UpsertSecret(ir::Secret),
    RemoveSecret(String),
    SetAuth(Option<ir::AuthService>),
    SetRateLimit(Option<ir::RateLimitService>),
    /// The AuthServices of namespaces other than the Gateway's, by namespace.
    SetNamespaceAuth(BTreeMap<String, ir::AuthService>),
    /// The RateLimitServices of namespaces other than the Gateway's, by namespace.
    SetNamespaceRateLimit(BTreeMap<String, ir::RateLimitService>),
    SetObservability(ir::Observability),
}

/// A change the translator refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidChange {
    #[error("{object}: {reason}")]
    Route {
        route: ir::RouteId,
        object: ir::ObjectRef,
        #[source]
        reason: ir::InvalidRoute,
    },
}

#[derive(Debug)]
struct TranslatedRoute {
    ir: ir::Route,
    key: SortKey,
    /// Host patterns the route declares (lower case; `*` for none).
    patterns: Vec<String>,
    body: Arc<[u8]>,
    clusters: Vec<Arc<str>>,
    /// The route's owner(s), ready to copy into its virtual hosts' origins.
    origins: Vec<Origin>,
}

/// The routes attached to one listener.
#[derive(Debug, Default)]
struct ListenerRoutes {
    vhosts: VirtualHosts,
    routes: BTreeSet<ir::RouteId>,
    /// How many routes send to each cluster: the route config's references.
    cluster_refs: BTreeMap<Arc<str>, usize>,
}

#[derive(Debug, Default)]
struct Dirty {
    listeners: BTreeSet<String>,
    route_configs: BTreeSet<String>,
    clusters: BTreeSet<String>,
    endpoints: BTreeSet<String>,
    secrets: BTreeSet<String>,
}

/// One Gateway's IR and its translation.
#[derive(Debug, Default)]
pub struct Translator {
    listeners: BTreeMap<String, ir::Listener>,
    routes: HashMap<ir::RouteId, TranslatedRoute>,
    tcp_routes: BTreeMap<ir::RouteId, ir::TcpRoute>,
    /// Listeners whose route config was emitted (and must be removed with them).
    route_configs: BTreeSet<String>,
    by_listener: BTreeMap<String, ListenerRoutes>,
    /// The token providers the routes of each listener require, with how
    /// many routes require each: the listener's jwt_authn filter holds them.
    jwt_providers: BTreeMap<String, BTreeMap<String, (ir::JwtAuth, usize)>>,
    upstreams: BTreeMap<String, ir::Upstream>,
    endpoints: HashMap<String, Vec<ir::Endpoint>>,
    secrets: BTreeMap<String, ir::Secret>,
    auth: Option<ir::AuthService>,
    rate_limit: Option<ir::RateLimitService>,
    namespace_auth: BTreeMap<String, ir::AuthService>,
    namespace_rate_limit: BTreeMap<String, ir::RateLimitService>,
    observability: ir::Observability,
    /// Virtual hosts go over VHDS, one resource each, instead of inside the
    /// route config: a route change then sends one virtual host. Proxies that
    /// cannot take VHDS (state of the world) or did not ask for it are sent
    /// each route config whole by the server (`Snapshot::whole_route_configs`).
    vhds: bool,
    dirty: Dirty,
}

impl Translator {
    pub fn new() -> Translator {
        Translator::default()
    }

    /// A translator that sends virtual hosts over VHDS: to a delta proxy that
    /// asked for it (its bootstrap says so, see
    /// [`crate::bootstrap::VHDS_NODE_METADATA`]), a change to one host's
    /// routes sends that host's VirtualHost resource only; every other proxy
    /// gets each route config whole, as with [`Translator::new`]. What the
    /// operator should use for every Gateway.
    pub fn with_vhds() -> Translator {
        Translator {
            vhds: true,
            ..Translator::default()
        }
    }

    /// Applies `changes` and returns the resources that changed. A change that
    /// [`Translator::apply`] refuses is skipped with a warning; callers that
    /// report errors to users call `apply` and `flush` themselves.
    pub fn translate(&mut self, changes: impl IntoIterator<Item = Change>) -> Vec<ResourceUpdate> {
        for change in changes {
            if let Err(e) = self.apply(change) {
                tracing::warn!(error = %e, "skipping an invalid change");
            }
        }
        self.flush()
    }

    /// Records one change; nothing is encoded until [`Translator::flush`].
    /// An invalid route is refused, and the route's previous version (if
    /// any) stays in place, as Envoy keeps its last good configuration.
    pub fn apply(&mut self, change: Change) -> Result<(), InvalidChange> {
        if let Change::UpsertRoute(r) = &change {
            r.validate().map_err(|reason| InvalidChange::Route {
                route: r.id.clone(),
                object: r.origin.clone(),
                reason,
            })?;
        }
        match change {
            Change::UpsertListener(l) => {
                if self.listeners.get(&l.name) != Some(&l) {
                    self.dirty.listeners.insert(l.name.clone());
                    self.dirty.route_configs.insert(l.name.clone());
                    self.listeners.insert(l.name.clone(), l);
                }
            }
            Change::RemoveListener(name) => {
                if self.listeners.remove(&name).is_some() {
                    self.dirty.listeners.insert(name.clone());
                    self.dirty.route_configs.insert(name);
                }
            }
            Change::UpsertRoute(r) => self.upsert_route(r),
            Change::RemoveRoute(id) => self.remove_route(&id),
            Change::UpsertTcpRoute(r) => {
                if self.tcp_routes.get(&r.id) != Some(&r) {
                    self.dirty.listeners.insert(r.listener.clone());
                    if let Some(old) = self.tcp_routes.insert(r.id.clone(), r) {
                        self.dirty.listeners.insert(old.listener);
                    }
                }
            }
            Change::RemoveTcpRoute(id) => {
                if let Some(old) = self.tcp_routes.remove(&id) {
                    self.dirty.listeners.insert(old.listener);
                }
            }
            Change::UpsertUpstream(u) => {
                if self.upstreams.get(&u.name) != Some(&u) {
                    self.dirty.clusters.insert(u.name.clone());
                    self.dirty.endpoints.insert(u.name.clone());
                    self.upstreams.insert(u.name.clone(), u);
                }
            }
            Change::RemoveUpstream(name) => {
                if self.upstreams.remove(&name).is_some() {
                    self.dirty.clusters.insert(name.clone());
                    self.dirty.endpoints.insert(name);
                }
            }
            Change::SetEndpoints { upstream, endpoints } => {
                if self.endpoints.get(&upstream) != Some(&endpoints) {
                    self.dirty.endpoints.insert(upstream.clone());
                    self.endpoints.insert(upstream, endpoints);
                }
            }
            Change::UpsertSecret(s) => {
                if self.secrets.get(&s.name) != Some(&s) {
                    self.dirty.secrets.insert(s.name.clone());
                    self.secrets.insert(s.name.clone(), s);
                }
            }
            Change::RemoveSecret(name) => {
                if self.secrets.remove(&name).is_some() {
                    self.dirty.secrets.insert(name);
                }
            }
            Change::SetAuth(auth) => {
                if self.auth != auth {
                    self.auth = auth;
                    self.dirty.listeners.extend(self.listeners.keys().cloned());
                }
            }
            Change::SetRateLimit(rl) => {
                if self.rate_limit != rl {
                    self.rate_limit = rl;
                    self.dirty.listeners.extend(self.listeners.keys().cloned());
                }
            }
            // Only the listeners: a route names its namespace's filters
            // whether or not they exist, so no route changes with them.
            Change::SetNamespaceAuth(auth) => {
                if self.namespace_auth != auth {
                    self.namespace_auth = auth;
                    self.dirty.listeners.extend(self.listeners.keys().cloned());
                }
            }
            Change::SetNamespaceRateLimit(rl) => {
                if self.namespace_rate_limit != rl {
                    self.namespace_rate_limit = rl;
                    self.dirty.listeners.extend(self.listeners.keys().cloned());
                }
            }
            Change::SetObservability(o) => {
                if self.observability != o {
                    self.observability = o;
                    self.dirty.listeners.extend(self.listeners.keys().cloned());
                }
            }
        }
        Ok(())
    }

    /// Brings the translator to exactly `desired`: upserts what differs,
    /// removes what `desired` lacks, and returns the resources that changed
    /// (nothing, when `desired` is what it already holds). Invalid routes are
    /// refused as by [`Translator::apply`], and returned. Looks at every
    /// entry; [`Translator::sync_touched`] looks at the ones that may differ.
    pub fn sync(&mut self, desired: &ir::Gateway) -> (Vec<ResourceUpdate>, Vec<InvalidChange>) {
        let touched = ir::Touched {
            routes: self.routes.keys().chain(desired.routes.keys()).cloned().collect(),
            upstreams: self
                .upstreams
                .keys()
                .chain(desired.upstreams.keys())
                .cloned()
                .collect(),
            endpoints: desired.endpoints.keys().cloned().collect(),
            secrets: self
                .secrets
                .keys()
                .chain(desired.secrets.keys())
                .cloned()
                .collect(),
            frame: true,
        };
        self.sync_touched(desired, &touched)
    }

    /// As [`Translator::sync`], when only the entries `touched` names may
    /// differ from the `desired` of the last sync: the work is in proportion
    /// to the change, not to the Gateway.
    pub fn sync_touched(
        &mut self,
        desired: &ir::Gateway,
        touched: &ir::Touched,
    ) -> (Vec<ResourceUpdate>, Vec<InvalidChange>) {
        let mut removals = Vec::new();
        let mut upserts = Vec::new();
        if touched.frame {
            let gone = self
                .listeners
                .keys()
                .filter(|k| !desired.listeners.contains_key(*k));
            removals.extend(gone.cloned().map(Change::RemoveListener));
            upserts.extend(desired.listeners.values().cloned().map(Change::UpsertListener));
        }
        for name in &touched.upstreams {
            match desired.upstreams.get(name) {
                Some(upstream) => upserts.push(Change::UpsertUpstream(upstream.clone())),
                None if self.upstreams.contains_key(name) => {
                    removals.push(Change::RemoveUpstream(name.clone()))
                }
                None => {}
            }
        }
        for name in &touched.endpoints {
            if let Some(endpoints) = desired.endpoints.get(name) {
                upserts.push(Change::SetEndpoints {
                    upstream: name.clone(),
                    endpoints: endpoints.clone(),
                });
            }
        }
        for name in &touched.secrets {
            match desired.secrets.get(name) {
                Some(secret) => upserts.push(Change::UpsertSecret(secret.clone())),
                None if self.secrets.contains_key(name) => removals.push(Change::RemoveSecret(name.clone())),
                None => {}
            }
        }
        for id in &touched.routes {
            match desired.routes.get(id) {
                Some(route) => upserts.push(Change::UpsertRoute(route.clone())),
                None if self.routes.contains_key(id) => removals.push(Change::RemoveRoute(id.clone())),
                None => {}
            }
        }
        if touched.frame {
            let gone = self
                .tcp_routes
                .keys()
                .filter(|id| !desired.tcp_routes.contains_key(*id));
            removals.extend(gone.cloned().map(Change::RemoveTcpRoute));
            upserts.extend(desired.tcp_routes.values().cloned().map(Change::UpsertTcpRoute));
            upserts.push(Change::SetAuth(desired.auth.clone()));
            upserts.push(Change::SetRateLimit(desired.rate_limit.clone()));
            upserts.push(Change::SetNamespaceAuth(desired.namespace_auth.clone()));
            upserts.push(Change::SetNamespaceRateLimit(
                desired.namespace_rate_limit.clone(),
            ));
            upserts.push(Change::SetObservability(desired.observability.clone()));
        }
        // Removals first, as a whole sync always did: an id that moves
        // between listeners is taken back before it is placed again.
        let errors = removals
            .into_iter()
            .chain(upserts)
            .filter_map(|c| self.apply(c).err())
            .collect();
        (self.flush(), errors)
    }

    fn upsert_route(&mut self, r: ir::Route) {
        if self.routes.get(&r.id).is_some_and(|old| old.ir == r) {
            return;
        }
        self.remove_route(&r.id);
        let encoded = route::encode_route(&r);
        let patterns = vhosts::host_patterns(&r);
        let hash = hash_bytes(&encoded.body);
        let part = r.id.as_arc();
        let origins = std::iter::once(&r.origin)
            .chain(&r.co_origins)
            .map(|o| Origin {
                object: o.clone(),
                part: part.clone(),
                hash,
            })
            .collect();
        let translated = TranslatedRoute {
            key: SortKey::of(&r),
            patterns,
            origins,
            body: encoded.body.into(),
            clusters: encoded.clusters.into_iter().map(Arc::from).collect(),
            ir: r,
        };
        let lr = self
            .by_listener
            .entry(translated.ir.listener.clone())
            .or_default();
        for p in &translated.patterns {
            let tenant = translated.ir.tenant.as_deref().map(Arc::from);
            lr.vhosts.insert(p, translated.key.clone(), tenant);
        }
        lr.routes.insert(translated.ir.id.clone());
        for c in &translated.clusters {
            *lr.cluster_refs.entry(c.clone()).or_default() += 1;
        }
        if let Some(jwt) = &translated.ir.policy.jwt {
            let listener = &translated.ir.listener;
            let providers = self.jwt_providers.entry(listener.clone()).or_default();
            let (_, count) = providers
                .entry(jwt.provider.clone())
                .or_insert_with(|| (jwt.clone(), 0));
            *count += 1;
            // A new provider changes the listener's filter.
            if *count == 1 {
                self.dirty.listeners.insert(listener.clone());
            }
        }
        if !self.dirty.route_configs.contains(&translated.ir.listener) {
            self.dirty.route_configs.insert(translated.ir.listener.clone());
        }
        self.routes.insert(translated.ir.id.clone(), translated);
    }

    fn remove_route(&mut self, id: &ir::RouteId) {
        let Some(old) = self.routes.remove(id) else {
            return;
        };
        if let Some(lr) = self.by_listener.get_mut(&old.ir.listener) {
            for p in &old.patterns {
                lr.vhosts.remove(p, &old.key);
            }
            lr.routes.remove(id);
            for c in &old.clusters {
                if let Some(n) = lr.cluster_refs.get_mut(c) {
                    *n -= 1;
                    if *n == 0 {
                        lr.cluster_refs.remove(c);
                    }
                }
            }
        }
        if let Some(jwt) = &old.ir.policy.jwt
            && let Some(providers) = self.jwt_providers.get_mut(&old.ir.listener)
            && let Some((_, count)) = providers.get_mut(&jwt.provider)
        {
            *count -= 1;
            if *count == 0 {
                providers.remove(&jwt.provider);
                self.dirty.listeners.insert(old.ir.listener.clone());
            }
            if providers.is_empty() {
                self.jwt_providers.remove(&old.ir.listener);
            }
        }
        self.dirty.route_configs.insert(old.ir.listener);
    }

    /// Encodes everything marked since the last flush.
    pub fn flush(&mut self) -> Vec<ResourceUpdate> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut out = Vec::new();
        for name in dirty.secrets {
            out.push(match self.secrets.get(&name) {
                Some(s) => upsert(whole(
                    ResourceType::Secret,
                    &name,
                    secret::secret_proto(s).encode_to_vec(),
                    vec![],
                    vec![(&s.origin, name.as_str())],
                )),
                None => ResourceUpdate::Remove(ResourceType::Secret, name.into()),
            });
        }
        for name in dirty.clusters {
            out.push(match self.upstreams.get(&name) {
                Some(u) => upsert(self.cluster_resource(u)),
                None => ResourceUpdate::Remove(ResourceType::Cluster, name.into()),
            });
        }
        for name in dirty.endpoints {
            out.push(match self.upstreams.get(&name) {
                Some(u) if u.discovery == ir::Discovery::Endpoints => {
                    let eps = self.endpoints.get(&name).map(Vec::as_slice).unwrap_or_default();
                    let body = cluster::load_assignment(&name, eps).encode_to_vec();
                    let origins = u.origins.iter().map(|o| (o, name.as_str())).collect();
                    upsert(whole(ResourceType::Endpoints, &name, body, vec![], origins))
                }
                _ => ResourceUpdate::Remove(ResourceType::Endpoints, name.into()),
            });
        }
        for name in dirty.listeners {
            out.push(match self.listeners.get(&name) {
                Some(l) => upsert(self.listener_resource(l)),
                None => ResourceUpdate::Remove(ResourceType::Listener, name.into()),
            });
        }
        for name in dirty.route_configs {
            let http = self.listeners.get(&name).is_some_and(|l| l.protocol.is_http());
            let lr = self.by_listener.get_mut(&name);
            if http {
                let first = self.route_configs.insert(name.clone());
                out.extend(route_config::updates(lr, &self.routes, &name, self.vhds, first));
            } else if self.route_configs.remove(&name) {
                out.extend(route_config::removals(lr, &name, self.vhds));
            }
        }
        out
    }

    fn cluster_resource(&self, u: &ir::Upstream) -> Resource {
        let (proto, secrets) = cluster::cluster_proto(u);
        let mut references: Vec<(ResourceType, Arc<str>)> = secrets
            .iter()
            .map(|s| (ResourceType::Secret, Arc::from(s.as_str())))
            .collect();
        if u.discovery == ir::Discovery::Endpoints {
            references.push((ResourceType::Endpoints, Arc::from(u.name.as_str())));
        }
        let origins = u.origins.iter().map(|o| (o, u.name.as_str())).collect();
        whole(
            ResourceType::Cluster,
            &u.name,
            proto.encode_to_vec(),
            references,
            origins,
        )
    }

    fn listener_resource(&self, l: &ir::Listener) -> Resource {
        let tcp_routes: Vec<&ir::TcpRoute> = self
            .tcp_routes
            .values()
            .filter(|r| r.listener == l.name)
            .collect();
        let jwt: BTreeMap<&str, &ir::JwtAuth> = self
            .jwt_providers
            .get(&l.name)
            .into_iter()
            .flatten()
            .map(|(name, (jwt, _))| (name.as_str(), jwt))
            .collect();
        let services = listener::HttpServices {
            auth: self.auth.as_ref(),
            rate_limit: self.rate_limit.as_ref(),
            namespace_auth: &self.namespace_auth,
            namespace_rate_limit: &self.namespace_rate_limit,
            observability: &self.observability,
            jwt: &jwt,
        };
        let (proto, secrets) = listener::listener_proto(l, &services, &tcp_routes);
        let mut references: Vec<(ResourceType, Arc<str>)> = secrets
            .iter()
            .map(|s| (ResourceType::Secret, Arc::from(s.as_str())))
            .collect();
        let mut origins = vec![(&l.origin, l.name.as_str())];
        let http = l.protocol.is_http();
        if http {
            references.push((ResourceType::Route, route_config_name(&l.name).into()));
        }
        for r in if http { &[][..] } else { &tcp_routes[..] } {
            for u in &r.upstreams {
                references.push((ResourceType::Cluster, Arc::from(u.upstream.as_str())));
            }
            origins.push((&r.origin, r.id.as_str()));
            origins.extend(r.co_origins.iter().map(|o| (o, r.id.as_str())));
            origins.extend(r.tls.iter().map(|t| (&t.origin, t.certificate.as_str())));
        }
        // Filters call these services on every HTTP listener.
        let auth = self.auth.iter().chain(self.namespace_auth.values());
        let rate_limit = self.rate_limit.iter().chain(self.namespace_rate_limit.values());
        let collectors = self.observability.collectors().map(|c| (c, &l.origin));
        // Key sets are fetched from these.
        let jwks = jwt.values().map(|j| (&j.jwks_upstream, &l.origin));
        let services = auth
            .map(|a| (&a.upstream, &a.origin))
            .chain(rate_limit.map(|r| (&r.upstream, &r.origin)))
            .chain(collectors)
            .chain(jwks)
            .filter(|_| http);
        origins.extend(l.tls.iter().map(|t| (&t.origin, t.certificate.as_str())));
        for (upstream, object) in services {
            references.push((ResourceType::Cluster, Arc::from(upstream.as_str())));
            origins.push((object, upstream.as_str()));
        }
        whole(
            ResourceType::Listener,
            &l.name,
            proto.encode_to_vec(),
            references,
            origins,
        )
    }

    pub fn route_count(&self) -> usize {
        self.routes.len()
    }
}

fn upsert(r: Resource) -> ResourceUpdate {
    ResourceUpdate::Upsert(Arc::new(r))
}

/// A resource whose every contributor owns all of it (a cluster, a secret, a
/// listener): each origin's hash is the whole body's, so that any change of
/// the resource counts as a change of each of them.
fn whole(
    kind: ResourceType,
    name: &str,
    body: Vec<u8>,
    references: Vec<(ResourceType, Arc<str>)>,
    contributors: Vec<(&ir::ObjectRef, &str)>,
) -> Resource {
    let hash = hash_bytes(&body);
    // Most contributors share one part name (every Mapping on a cluster
    // names the cluster): one allocation for a run of them, not one each.
    let mut last: Option<Arc<str>> = None;
    let origins = contributors
        .into_iter()
        .map(|(object, part)| {
            let shared = match &last {
                Some(p) if &**p == part => p.clone(),
                _ => last.insert(Arc::from(part)).clone(),
            };
            Origin {
                object: object.clone(),
                part: shared,
                hash,
            }
        })
        .collect();
    Resource::new(kind, name, body, references, origins)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_observe;
