//! One Gateway's whole configuration, as a value.

use std::collections::BTreeMap;

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
    pub auth: Option<AuthService>,
    pub rate_limit: Option<RateLimitService>,
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
