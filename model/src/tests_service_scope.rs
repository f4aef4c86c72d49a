//! Which routes an AuthService or RateLimitService governs: every route of
//! the Gateway from the Gateway's own namespace, only its own namespace's
//! Mappings from any other (and never instead of the Gateway-wide one).

use std::sync::Arc;

use legate_crds::conditions::reasons;
use legate_crds::{AuthService, RateLimitService};
use legate_xds::ir;
use serde_json::json;

use super::tests::{gateway, mapping, object, service, verdict};
use super::*;

const GATEWAY: &str = "infra/edge";

fn auth(namespace: &str, name: &str, created: &str) -> Arc<AuthService> {
    object(
        "AuthService",
        namespace,
        name,
        created,
        json!({ "service": "auth:80", "protocol": "HTTP", "timeout": "1s" }),
    )
}

fn limits(namespace: &str, name: &str, created: &str) -> Arc<RateLimitService> {
    object(
        "RateLimitService",
        namespace,
        name,
        created,
        json!({ "service": "ratelimit:80", "domain": namespace }),
    )
}

/// A Gateway of namespace `infra` admitting every namespace, a Mapping of
/// `shop` and one of `rogue`, and an `auth` and a `ratelimit` Service in
/// each of the three namespaces.
fn world() -> World {
    let namespaces = ["infra", "shop", "rogue"];
    World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![
            mapping(
                "shop",
                "quote",
                "01",
                json!({ "prefix": "/", "service": "quote" }),
            ),
            mapping(
                "rogue",
                "steal",
                "02",
                json!({ "prefix": "/steal/", "service": "quote" }),
            ),
        ],
        services: namespaces
            .iter()
            .flat_map(|ns| {
                [
                    service(ns, "auth"),
                    service(ns, "ratelimit"),
                    service(ns, "quote"),
                ]
            })
            .collect(),
        ..World::default()
    }
}

fn config(model: &Model) -> &ir::Gateway {
    &model.gateways[GATEWAY]
}

fn origin_key(origin: &ir::ObjectRef) -> String {
    origin.key()
}

/// The routes of a configuration that no Mapping owns (a last 404 route of
/// the Gateway-wide AuthService), by owner.
fn own_routes(config: &ir::Gateway) -> Vec<String> {
    let mut owners: Vec<String> = config
        .routes
        .values()
        .filter(|r| r.origin.kind() != "Mapping")
        .map(|r| r.origin.key())
        .collect();
    owners.dedup();
    owners
}

/// The routes of the Mappings, which no service of any scope changes.
fn mapping_routes(config: &ir::Gateway) -> Vec<ir::Route> {
    config
        .routes
        .values()
        .filter(|r| r.origin.kind() == "Mapping")
        .cloned()
        .collect()
}

fn accepted_on_the_gateway(model: &Model, key: &str) {
    let v = verdict(model, key);
    assert_eq!(v.accepted, Ok(()), "{key}");
    assert_eq!(v.gateways, [GATEWAY], "{key}");
}

#[test]
fn a_service_in_the_gateways_namespace_is_gateway_wide() {
    let mut world = world();
    world.auth_services = vec![auth("infra", "auth", "01")];
    world.rate_limit_services = vec![limits("infra", "limits", "01")];
    let model = build(&world);
    let config = config(&model);

    let auth = config.auth.as_ref().expect("a Gateway-wide AuthService");
    assert_eq!(origin_key(&auth.origin), "AuthService/infra/auth");
    let limit = config
        .rate_limit
        .as_ref()
        .expect("a Gateway-wide RateLimitService");
    assert_eq!(origin_key(&limit.origin), "RateLimitService/infra/limits");
    assert!(config.namespace_auth.is_empty());
    assert!(config.namespace_rate_limit.is_empty());
    // It checks requests that match no Mapping too.
    assert_eq!(own_routes(config), ["AuthService/infra/auth"]);
    accepted_on_the_gateway(&model, "AuthService/infra/auth");
    accepted_on_the_gateway(&model, "RateLimitService/infra/limits");
}

#[test]
fn a_tenant_service_governs_only_its_namespaces_routes() {
    let without = build(&world());
    let mut world = world();
    world.auth_services = vec![auth("rogue", "deny-all", "01")];
    world.rate_limit_services = vec![limits("rogue", "none-for-you", "01")];
    let model = build(&world);
    let config = config(&model);

    assert_eq!(config.auth, None, "nothing is Gateway-wide");
    assert_eq!(config.rate_limit, None, "nothing is Gateway-wide");
    let scoped: Vec<(&String, String)> = config
        .namespace_auth
        .iter()
        .map(|(ns, a)| (ns, origin_key(&a.origin)))
        .collect();
    assert_eq!(
        scoped,
        [(&"rogue".to_string(), "AuthService/rogue/deny-all".to_string())]
    );
    let scoped: Vec<(&String, String)> = config
        .namespace_rate_limit
        .iter()
        .map(|(ns, r)| (ns, origin_key(&r.origin)))
        .collect();
    assert_eq!(
        scoped,
        [(
            &"rogue".to_string(),
            "RateLimitService/rogue/none-for-you".to_string()
        )]
    );
    // Its own cluster, in its own namespace.
    assert_eq!(config.namespace_auth["rogue"].upstream, "rogue/auth:80");
    // No last route of its own on every host: a request that matches no
    // route is no namespace's, and the shop's routes are as they were.
    assert!(own_routes(config).is_empty(), "{:?}", own_routes(config));
    assert_eq!(mapping_routes(config), mapping_routes(&without.gateways[GATEWAY]));
    accepted_on_the_gateway(&model, "AuthService/rogue/deny-all");
    accepted_on_the_gateway(&model, "RateLimitService/rogue/none-for-you");
}

#[test]
fn two_tenants_each_have_their_own_and_the_oldest_wins_within_a_namespace() {
    let mut world = world();
    world.auth_services = vec![
        auth("shop", "shop-auth", "02"),
        auth("rogue", "rogue-newer", "03"),
        auth("rogue", "rogue-auth", "01"),
    ];
    world.rate_limit_services = vec![
        limits("shop", "shop-limits", "02"),
        limits("rogue", "rogue-limits", "01"),
    ];
    let model = build(&world);
    let config = config(&model);

    let scoped: Vec<(String, String)> = config
        .namespace_auth
        .iter()
        .map(|(ns, a)| (ns.clone(), origin_key(&a.origin)))
        .collect();
    assert_eq!(
        scoped,
        [
            ("rogue".to_string(), "AuthService/rogue/rogue-auth".to_string()),
            ("shop".to_string(), "AuthService/shop/shop-auth".to_string()),
        ]
    );
    let scoped: Vec<&String> = config.namespace_rate_limit.keys().collect();
    assert_eq!(scoped, ["rogue", "shop"]);
    assert_eq!(config.auth, None);
    for key in [
        "AuthService/shop/shop-auth",
        "AuthService/rogue/rogue-auth",
        "RateLimitService/shop/shop-limits",
        "RateLimitService/rogue/rogue-limits",
    ] {
        accepted_on_the_gateway(&model, key);
    }
    // The newer one of a namespace is Conflicted, and says for which Mappings.
    let problem = verdict(&model, "AuthService/rogue/rogue-newer")
        .accepted
        .clone()
        .expect_err("Conflicted");
    assert_eq!(problem.reason, reasons::CONFLICTED);
    assert_eq!(
        problem.message,
        "Gateway infra/edge already uses AuthService rogue/rogue-auth for the Mappings of namespace rogue"
    );
}

#[test]
fn a_tenant_cannot_displace_the_gateway_wide_service() {
    let mut world = world();
    // The tenant's are older: before, the oldest of any namespace became
    // Gateway-wide, and the Gateway's own was Conflicted.
    world.auth_services = vec![auth("infra", "auth", "09"), auth("rogue", "deny-all", "01")];
    world.rate_limit_services = vec![limits("infra", "limits", "09"), limits("rogue", "limits", "01")];
    let model = build(&world);
    let config = config(&model);

    let auth = config.auth.as_ref().expect("the Gateway's AuthService");
    assert_eq!(origin_key(&auth.origin), "AuthService/infra/auth");
    let limit = config
        .rate_limit
        .as_ref()
        .expect("the Gateway's RateLimitService");
    assert_eq!(origin_key(&limit.origin), "RateLimitService/infra/limits");
    assert_eq!(
        origin_key(&config.namespace_auth["rogue"].origin),
        "AuthService/rogue/deny-all"
    );
    assert_eq!(
        origin_key(&config.namespace_rate_limit["rogue"].origin),
        "RateLimitService/rogue/limits"
    );
    assert_eq!(own_routes(config), ["AuthService/infra/auth"]);
    for key in [
        "AuthService/infra/auth",
        "AuthService/rogue/deny-all",
        "RateLimitService/infra/limits",
        "RateLimitService/rogue/limits",
    ] {
        accepted_on_the_gateway(&model, key);
    }
}

#[test]
fn a_tenant_service_that_cannot_be_reached_says_whose_requests_it_refuses() {
    let mut world = world();
    world
        .services
        .retain(|s| s.metadata.namespace.as_deref() != Some("rogue"));
    world.auth_services = vec![auth("rogue", "deny-all", "01")];
    world.rate_limit_services = vec![limits("rogue", "limits", "01")];
    let model = build(&world);
    let problem = verdict(&model, "AuthService/rogue/deny-all")
        .resolved_refs
        .clone()
        .expect_err("no Service");
    assert_eq!(problem.reason, reasons::BACKEND_NOT_FOUND);
    assert_eq!(
        problem.message,
        "Service rogue/auth does not exist; requests to the Mappings of namespace rogue get 403"
    );
    let problem = verdict(&model, "RateLimitService/rogue/limits")
        .resolved_refs
        .clone()
        .expect_err("no Service");
    assert_eq!(
        problem.message,
        "Service rogue/ratelimit does not exist; requests to the Mappings of namespace rogue are not limited"
    );
}

#[test]
fn the_incremental_model_places_tenant_services_as_a_whole_build_does() {
    let quarantine = Quarantine::new();
    let mut incremental = Incremental::new();
    let mut world = world();
    incremental.build(&world, &quarantine);
    world.auth_services = vec![auth("rogue", "deny-all", "01"), auth("infra", "auth", "02")];
    world.rate_limit_services = vec![limits("rogue", "limits", "01")];
    assert_eq!(incremental.build(&world, &quarantine), &build(&world));
    world.auth_services.remove(0);
    assert_eq!(incremental.build(&world, &quarantine), &build(&world));
}
