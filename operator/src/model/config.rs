//! One Gateway's desired configuration, as IR.

use std::collections::BTreeMap;

use legate_xds::ir;

/// Everything one Gateway's Envoys should run, keyed the way the translator
/// names things, so that two configurations can be compared item by item.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GatewayConfig {
    pub listeners: BTreeMap<String, ir::Listener>,
    pub routes: BTreeMap<ir::RouteId, ir::Route>,
    pub tcp_routes: BTreeMap<ir::RouteId, ir::TcpRoute>,
    pub upstreams: BTreeMap<String, ir::Upstream>,
    /// Endpoints by upstream name (only for upstreams discovered by EDS).
    pub endpoints: BTreeMap<String, Vec<ir::Endpoint>>,
    pub secrets: BTreeMap<String, ir::Secret>,
    pub auth: Option<ir::AuthService>,
    pub rate_limit: Option<ir::RateLimitService>,
    pub observability: ir::Observability,
}

impl GatewayConfig {
    /// Adds an upstream, merging the origins when several objects share it.
    pub fn add_upstream(&mut self, upstream: ir::Upstream) {
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
