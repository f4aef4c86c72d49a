//! Routes an object adds for itself rather than for a Mapping: a TLSContext's
//! cleartext redirect or refusal, an AuthService's last 404 route.

use legate_xds::ir;

use crate::names::route_id;

/// What an object's own route does: where it is ordered (higher first),
/// what it matches besides the host, and what it answers.
pub struct OwnRoute {
    pub precedence: i32,
    pub matcher: ir::RouteMatch,
    pub action: ir::RouteAction,
    pub policy: ir::RoutePolicy,
}

/// A route of `origin` itself on `hostnames` (none: every host), on each
/// listener of `config` that `on` selects; for the Gateway's own namespace
/// (see [`add_tenant_route`]).
pub fn add_own_route(
    config: &mut ir::Gateway,
    origin: &ir::ObjectRef,
    on: impl Fn(&ir::Listener) -> bool,
    hostnames: &[String],
    route: OwnRoute,
) {
    add_tenant_route(config, origin, None, on, hostnames, route);
}

/// As [`add_own_route`], for an object of namespace `tenant` (`None`: the
/// Gateway's): its glob hostnames reach only that namespace's hosts.
pub fn add_tenant_route(
    config: &mut ir::Gateway,
    origin: &ir::ObjectRef,
    tenant: Option<String>,
    on: impl Fn(&ir::Listener) -> bool,
    hostnames: &[String],
    route: OwnRoute,
) {
    let listeners: Vec<String> = config
        .listeners
        .values()
        .filter(|l| on(l))
        .map(|l| l.name.clone())
        .collect();
    for listener in listeners {
        let built = ir::Route {
            id: route_id(origin, &listener),
            origin: origin.clone(),
            co_origins: Vec::new(),
            listener,
            hostnames: hostnames.to_vec(),
            tenant: tenant.clone(),
            precedence: route.precedence,
            matcher: route.matcher.clone(),
            action: route.action.clone(),
            policy: route.policy.clone(),
        };
        config.routes.insert(built.id.clone(), built);
    }
}
