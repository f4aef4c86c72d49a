//! One Gateway's whole configuration, as a value.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    AuthService, Endpoint, Listener, Observability, RateLimitService, Route, RouteId, Secret, TcpRoute,
    Upstream,
};

/// Everything one Gateway should do: what legate-model builds and
/// `Translator::sync` (behind the `envoy` feature) turns into Envoy resources,
/// re-encoding only what differs from the last one.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Gateway {
    pub listeners: BTreeMap<String, Listener>,
    pub routes: BTreeMap<RouteId, Route>,
    pub tcp_routes: BTreeMap<RouteId, TcpRoute>,
    pub upstreams: BTreeMap<String, Upstream>,
    /// Endpoints by upstream name.
    pub endpoints: BTreeMap<String, Vec<Endpoint>>,
    pub secrets: BTreeMap<String, Secret>,
    /// The Gateway-wide AuthService: the oldest of the Gateway's own
    /// namespace. It checks every route (but those that bypass it).
    pub auth: Option<AuthService>,
    /// The Gateway-wide RateLimitService: the oldest of the Gateway's own
    /// namespace. It limits every route that has rate limits.
    pub rate_limit: Option<RateLimitService>,
    /// The AuthServices of the other namespaces, by namespace (the oldest
    /// of each): each checks the routes of its namespace's Mappings only,
    /// besides the Gateway-wide one, never instead of it.
    pub namespace_auth: BTreeMap<String, AuthService>,
    /// The RateLimitServices of the other namespaces, by namespace (the
    /// oldest of each): each limits the routes of its namespace's Mappings
    /// only, besides the Gateway-wide one.
    pub namespace_rate_limit: BTreeMap<String, RateLimitService>,
    pub observability: Observability,
}

impl Gateway {
    pub fn with_listener(mut self, l: Listener) -> Self {
        self.listeners.insert(l.name.clone(), l);
        self
    }

    pub fn with_route(mut self, r: Route) -> Self {
        self.routes.insert(r.id.clone(), r);
        self
    }

    pub fn with_upstream(mut self, u: Upstream, endpoints: Vec<Endpoint>) -> Self {
        self.endpoints.insert(u.name.clone(), endpoints);
        self.upstreams.insert(u.name.clone(), u);
        self
    }

    /// Adds an upstream; when several objects share one (same name), their
    /// origins are merged, so a NACK on it can name each of them.
    pub fn add_upstream(&mut self, upstream: Upstream) {
        match self.upstreams.get_mut(&upstream.name) {
            Some(existing) => {
                for origin in upstream.origins {
                    if !existing.origins.contains(&origin) {
                        existing.origins.push(origin);
                    }
                }
            }
            None => {
                self.upstreams.insert(upstream.name.clone(), upstream);
            }
        }
    }
}

/// Which entries of a [`Gateway`] may differ from the Gateway before it:
/// what an incremental builder hands on, so that `Translator::sync_touched`
/// (behind the `envoy` feature) looks at those alone. An entry that is not
/// named here must be equal in both.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Touched {
    pub routes: BTreeSet<RouteId>,
    pub upstreams: BTreeSet<String>,
    /// By upstream name.
    pub endpoints: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
    /// The listeners, the TCP routes and the services the filters call
    /// (auth and rate limit, Gateway-wide and per namespace; observability):
    /// few, and built together.
    pub frame: bool,
}

impl Touched {
    /// Nothing may differ.
    pub fn is_empty(&self) -> bool {
        !self.frame
            && self.routes.is_empty()
            && self.upstreams.is_empty()
            && self.endpoints.is_empty()
            && self.secrets.is_empty()
    }
}
