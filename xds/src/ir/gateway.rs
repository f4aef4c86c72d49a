//! One Gateway's whole configuration, as a value.

use std::collections::BTreeMap;

use super::{
    AuthService, Endpoint, Listener, Observability, RateLimitService, Route, RouteId, Secret, TcpRoute,
    Upstream,
};

/// Everything one Gateway should do. The operator may keep one of these and
/// [`crate::translate::Translator::sync`] it, or send the translator
/// individual changes as objects change; both end in the same resources.
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
}
