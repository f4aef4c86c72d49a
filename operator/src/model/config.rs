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
    /// A route of `origin` itself (not a Mapping's) for every path of
    /// `hostnames` (none: every host), on each listener `on` selects.
    pub fn add_own_route(
        &mut self,
        origin: &ir::ObjectRef,
        on: impl Fn(&ir::Listener) -> bool,
        hostnames: &[String],
        precedence: i32,
        action: ir::RouteAction,
        policy: ir::RoutePolicy,
    ) {
        let listeners: Vec<String> = self
            .listeners
            .values()
            .filter(|l| on(l))
            .map(|l| l.name.clone())
            .collect();
        for listener in listeners {
            let route = ir::Route {
                id: super::mappings::route_id(origin, &listener),
                origin: origin.clone(),
                co_origins: Vec::new(),
                listener,
                hostnames: hostnames.to_vec(),
                precedence,
                matcher: ir::RouteMatch::default(),
                action: action.clone(),
                policy: policy.clone(),
            };
            self.routes.insert(route.id.clone(), route);
        }
    }

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
