//! Routes an object adds for itself rather than for a Mapping: a TLSContext's
//! cleartext redirect or refusal, an AuthService's last 404 route.

use legate_xds::ir;

use crate::names::route_id;

/// A route of `origin` itself for every path of `hostnames` (none: every
/// host), on each listener of `config` that `on` selects; for the Gateway's
/// own namespace (see [`add_tenant_route`]).
pub fn add_own_route(
    config: &mut ir::Gateway,
    origin: &ir::ObjectRef,
    on: impl Fn(&ir::Listener) -> bool,
    hostnames: &[String],
    precedence: i32,
    action: ir::RouteAction,
    policy: ir::RoutePolicy,
) {
    add_tenant_route(config, origin, None, on, hostnames, precedence, action, policy);
}

/// As [`add_own_route`], for an object of namespace `tenant` (`None`: the
/// Gateway's): its glob hostnames reach only that namespace's hosts.
#[allow(clippy::too_many_arguments)]
pub fn add_tenant_route(
    config: &mut ir::Gateway,
    origin: &ir::ObjectRef,
    tenant: Option<String>,
    on: impl Fn(&ir::Listener) -> bool,
    hostnames: &[String],
    precedence: i32,
    action: ir::RouteAction,
    policy: ir::RoutePolicy,
) {
    let listeners: Vec<String> = config
        .listeners
        .values()
        .filter(|l| on(l))
        .map(|l| l.name.clone())
        .collect();
    for listener in listeners {
        let route = ir::Route {
            id: route_id(origin, &listener),
            origin: origin.clone(),
            co_origins: Vec::new(),
            listener,
            hostnames: hostnames.to_vec(),
            tenant: tenant.clone(),
            precedence,
            matcher: ir::RouteMatch::default(),
            action: action.clone(),
            policy: policy.clone(),
        };
        config.routes.insert(route.id.clone(), route);
    }
}
