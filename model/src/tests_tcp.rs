//! TCPMappings: routes on TCP listeners, and the verdict of one that no
//! Gateway can carry.

use std::sync::Arc;

use legate_crds::TCPMapping;
use legate_crds::conditions::reasons;
use legate_xds::ir;
use serde_json::{Value, json};

use super::tests::{gateway, object, service, verdict};
use super::*;

fn tcp(namespace: &str, name: &str, spec: Value) -> Arc<TCPMapping> {
    object("TCPMapping", namespace, name, "01", spec)
}

#[test]
fn a_tcp_mapping_becomes_a_tcp_route_on_its_listener() {
    let listeners = json!([
        { "name": "http", "port": 8080, "protocol": "HTTP" },
        { "name": "postgres", "port": 5432, "protocol": "TCP" },
        { "name": "idle", "port": 6000, "protocol": "TCP" },
    ]);
    let tcp: Arc<TCPMapping> = object(
        "TCPMapping",
        "shop",
        "db",
        "01",
        json!({ "port": 5432, "service": "db:80" }),
    );
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({ "listeners": listeners }))],
        tcp_mappings: vec![tcp],
        services: vec![service("shop", "db")],
        ..World::default()
    };
    let model = build(&world);
    let v = verdict(&model, "TCPMapping/shop/db");
    assert_eq!(v.accepted, Ok(()));
    assert_eq!(v.gateways, ["infra/edge"]);
    let config = &model.gateways["infra/edge"];
    let routes: Vec<&ir::TcpRoute> = config.tcp_routes.values().collect();
    assert_eq!(routes.len(), 1);
    assert_eq!(
        (
            routes[0].listener.as_str(),
            routes[0].upstreams[0].upstream.as_str()
        ),
        ("postgres", "shop/db:80")
    );
    assert!(config.listeners.contains_key("postgres"));
    assert!(
        !config.listeners.contains_key("idle"),
        "a TCP listener with nothing to proxy waits"
    );
}

#[test]
fn a_tcp_mapping_no_gateway_admits_is_told_why() {
    let world = World {
        gateways: vec![gateway(
            "infra",
            "edge",
            json!({
                "listeners": [{ "name": "db", "port": 5432, "protocol": "TCP" }],
                "allowedRoutes": { "namespaces": { "from": "Same" } },
            }),
        )],
        tcp_mappings: vec![tcp("shop", "db", json!({ "port": 5432, "service": "db:80" }))],
        services: vec![service("shop", "db")],
        ..World::default()
    };
    let model = build(&world);
    let v = verdict(&model, "TCPMapping/shop/db");
    assert!(v.gateways.is_empty());
    assert_eq!(
        v.accepted,
        Err(Problem::new(
            reasons::NO_GATEWAY,
            "no Gateway admits routes from namespace \"shop\" (see each Gateway's spec.allowedRoutes)"
        ))
    );
}

#[test]
fn a_tcp_mapping_whose_port_matches_no_listener_is_told_which_gateways_lack_it() {
    let listeners = json!({ "listeners": [{ "name": "db", "port": 5432, "protocol": "TCP" }] });
    let world = World {
        gateways: vec![
            gateway("infra", "edge", listeners.clone()),
            gateway("infra", "internal", listeners),
        ],
        tcp_mappings: vec![tcp(
            "shop",
            "cache",
            json!({ "port": 6379, "service": "cache:80" }),
        )],
        services: vec![service("shop", "cache")],
        ..World::default()
    };
    let model = build(&world);
    let v = verdict(&model, "TCPMapping/shop/cache");
    assert_eq!(
        v.accepted,
        Err(Problem::new(
            reasons::NO_GATEWAY,
            "Gateway infra/edge has no listener on port 6379 (see its spec.listeners); \
             Gateway infra/internal has no listener on port 6379 (see its spec.listeners)"
        ))
    );
    assert!(model.gateways.values().all(|g| g.tcp_routes.is_empty()));

    let mut placed = world.clone();
    placed.tcp_mappings = vec![tcp(
        "shop",
        "cache",
        json!({ "port": 5432, "service": "cache:80" }),
    )];
    let v = verdict(&build(&placed), "TCPMapping/shop/cache").clone();
    assert_eq!(v.accepted, Ok(()), "one Gateway with the listener is enough");
    assert_eq!(v.gateways, ["infra/edge", "infra/internal"]);
}
