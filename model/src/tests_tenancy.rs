//! What one namespace may not do to others through the model: here, reach
//! Envoy's admin API or a metadata service through a `service` field.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use legate_crds::conditions::reasons;
use serde_json::{Value, json};

use super::tests::{gateway, mapping, object, service, slice, verdict};
use super::tests_edge::tls_secret;
use super::*;

fn external_name(namespace: &str, name: &str, host: &str) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": namespace },
            "spec": { "type": "ExternalName", "externalName": host,
                      "ports": [{ "name": "http", "port": 80 }] }
        }))
        .expect("a valid Service"),
    )
}

fn world(allow_loopback_upstreams: bool) -> World {
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
                "admin",
                "02",
                json!({ "prefix": "/admin/", "service": "http://127.0.0.1:19000" }),
            ),
            mapping(
                "rogue",
                "metadata",
                "03",
                json!({ "prefix": "/meta/", "service": "http://169.254.169.254" }),
            ),
            mapping(
                "rogue",
                "alias",
                "04",
                json!({ "prefix": "/alias/", "service": "cloud" }),
            ),
        ],
        services: vec![
            service("shop", "quote"),
            external_name("rogue", "cloud", "169.254.169.254"),
        ],
        endpoint_slices: vec![slice("shop", "quote", &[("198.18.0.2", true)])],
        allow_loopback_upstreams,
        ..World::default()
    }
}

/// The upstream names a Gateway's configuration holds.
fn upstreams(model: &Model) -> Vec<String> {
    model.gateways["infra/edge"].upstreams.keys().cloned().collect()
}

#[test]
fn a_service_cannot_name_loopback_link_local_or_an_external_name_that_points_there() {
    let model = build(&world(false));
    for (key, host) in [
        ("Mapping/rogue/admin", "127.0.0.1"),
        ("Mapping/rogue/metadata", "169.254.169.254"),
        ("Mapping/rogue/alias", "169.254.169.254"),
    ] {
        let v = verdict(&model, key);
        let problem = v.accepted.as_ref().expect_err(key);
        assert_eq!(
            problem.reason,
            reasons::FORBIDDEN_UPSTREAM,
            "{key}: {}",
            problem.message
        );
        assert!(problem.message.contains(host), "{key}: {}", problem.message);
        assert!(v.gateways.is_empty(), "{key} is carried by no Gateway");
    }
    assert_eq!(verdict(&model, "Mapping/shop/quote").accepted, Ok(()));
    assert_eq!(upstreams(&model), ["shop/quote:80"], "nothing else reaches Envoy");
    let routes = &model.gateways["infra/edge"].routes;
    assert!(
        routes.keys().all(|id| id.as_str().starts_with("Mapping/shop/")),
        "{routes:?}"
    );
}

#[test]
fn a_local_stack_may_allow_loopback_but_never_link_local() {
    let model = build(&world(true));
    assert_eq!(verdict(&model, "Mapping/rogue/admin").accepted, Ok(()));
    for key in ["Mapping/rogue/metadata", "Mapping/rogue/alias"] {
        let problem = verdict(&model, key).accepted.as_ref().expect_err(key);
        assert_eq!(
            problem.reason,
            reasons::FORBIDDEN_UPSTREAM,
            "{key}: {}",
            problem.message
        );
    }
    assert_eq!(upstreams(&model), ["dns/127.0.0.1:19000", "shop/quote:80"]);
}

fn orders(allow_from: Option<&str>) -> Arc<Service> {
    let mut metadata = json!({ "name": "orders", "namespace": "backend" });
    if let Some(allowed) = allow_from {
        metadata["annotations"] = json!({ "legate.dev/allow-from": allowed });
    }
    Arc::new(
        serde_json::from_value(json!({
            "metadata": metadata,
            "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] }
        }))
        .expect("a valid Service"),
    )
}

fn cross_namespace(allow_from: Option<&str>) -> Model {
    build(&World {
        gateways: vec![gateway(
            "infra",
            "edge",
            json!({ "allowedRoutes": { "namespaces": { "from": "All" } } }),
        )],
        mappings: vec![
            mapping(
                "backend",
                "own",
                "01",
                json!({ "prefix": "/own/", "service": "orders" }),
            ),
            mapping(
                "shop",
                "borrow",
                "02",
                json!({ "prefix": "/borrow/", "service": "orders.backend" }),
            ),
        ],
        services: vec![orders(allow_from)],
        endpoint_slices: vec![slice("backend", "orders", &[("198.18.0.2", true)])],
        ..World::default()
    })
}

#[test]
fn a_service_of_another_namespace_is_used_only_with_its_consent() {
    let refused = cross_namespace(None);
    let v = verdict(&refused, "Mapping/shop/borrow");
    assert_eq!(v.accepted, Ok(()), "the route stays (and answers 503)");
    let problem = v.resolved_refs.as_ref().expect_err("no consent");
    assert_eq!(problem.reason, reasons::REF_NOT_PERMITTED);
    assert!(
        problem.message.contains("legate.dev/allow-from") && problem.message.contains("shop"),
        "{}",
        problem.message
    );
    let config = &refused.gateways["infra/edge"];
    assert_eq!(
        config.endpoints["backend/orders:80"].len(),
        1,
        "the owner's own route keeps the Service's endpoints"
    );
    assert_eq!(config.endpoints["unresolved/Mapping/shop/borrow"], []);
    assert_eq!(verdict(&refused, "Mapping/backend/own").resolved_refs, Ok(()));

    for allowed in ["shop", "web, shop", "*"] {
        let granted = cross_namespace(Some(allowed));
        let v = verdict(&granted, "Mapping/shop/borrow");
        assert_eq!(v.resolved_refs, Ok(()), "allow-from: {allowed}");
    }
    let other = cross_namespace(Some("web"));
    let v = verdict(&other, "Mapping/shop/borrow");
    assert!(v.resolved_refs.is_err(), "allow-from names another namespace");
}

fn https_gateway(namespace: &str, from: &str) -> Arc<legate_crds::Gateway> {
    gateway(
        namespace,
        "edge",
        json!({ "listeners": [{ "name": "https", "port": 8443, "protocol": "HTTPS" }],
                "allowedRoutes": { "namespaces": { "from": from } } }),
    )
}

fn keys_world(gateways: Value) -> Model {
    build(&World {
        gateways: vec![https_gateway("shop", "Same"), https_gateway("rogue", "All")],
        tls_contexts: vec![object(
            "TLSContext",
            "shop",
            "shop",
            "01",
            json!({ "hosts": ["shop.example.com"], "secret": "shop-tls", "gateways": gateways }),
        )],
        secrets: vec![tls_secret("shop", "shop-tls")],
        ..World::default()
    })
}

#[test]
fn a_private_key_goes_only_to_the_gateways_its_owner_sent_it_to() {
    let unnamed = keys_world(json!([]));
    assert!(
        unnamed.gateways["rogue/edge"].secrets.is_empty(),
        "a Gateway of another namespace that admits every namespace gets no key: {:?}",
        unnamed.gateways["rogue/edge"].secrets.keys()
    );
    assert_eq!(
        unnamed.gateways["shop/edge"].secrets.len(),
        1,
        "its own namespace's Gateway serves it"
    );
    assert_eq!(verdict(&unnamed, "TLSContext/shop/shop").gateways, ["shop/edge"]);

    let named = keys_world(json!([{ "name": "edge", "namespace": "rogue" }]));
    assert_eq!(
        named.gateways["rogue/edge"].secrets.len(),
        1,
        "named, it goes there"
    );
    assert_eq!(verdict(&named, "TLSContext/shop/shop").gateways, ["rogue/edge"]);
}

#[test]
fn a_tls_context_with_no_gateway_of_its_namespace_says_how_to_name_one() {
    let model = build(&World {
        gateways: vec![https_gateway("infra", "All")],
        tls_contexts: vec![object(
            "TLSContext",
            "shop",
            "shop",
            "01",
            json!({ "hosts": ["shop.example.com"], "secret": "shop-tls" }),
        )],
        secrets: vec![tls_secret("shop", "shop-tls")],
        ..World::default()
    });
    let problem = verdict(&model, "TLSContext/shop/shop")
        .accepted
        .as_ref()
        .expect_err("not attached");
    assert_eq!(problem.reason, reasons::NO_GATEWAY);
    assert!(
        problem.message.contains("spec.gateways") && problem.message.contains("infra/edge"),
        "{}",
        problem.message
    );
    assert!(model.gateways["infra/edge"].secrets.is_empty());
}

#[test]
fn a_refusal_by_one_gateways_proxies_takes_the_mapping_off_that_gateway_only() {
    let world = World {
        gateways: vec![
            gateway(
                "infra",
                "edge",
                json!({ "allowedRoutes": { "namespaces": { "from": "All" } } }),
            ),
            gateway(
                "rogue",
                "edge",
                json!({ "allowedRoutes": { "namespaces": { "from": "All" } } }),
            ),
        ],
        mappings: vec![mapping(
            "shop",
            "quote",
            "01",
            json!({ "prefix": "/", "service": "quote" }),
        )],
        services: vec![service("shop", "quote")],
        endpoint_slices: vec![slice("shop", "quote", &[("198.18.0.2", true)])],
        ..World::default()
    };
    let mut quarantine = Quarantine::new();
    quarantine.insert("rogue/edge", "Mapping/shop/quote", 1);
    let model = build_with(&world, &quarantine);
    assert!(
        model.gateways["rogue/edge"].routes.is_empty(),
        "off the Gateway whose proxy refused it"
    );
    assert_eq!(
        model.gateways["infra/edge"].routes.len(),
        1,
        "still on the other Gateway: a proxy's blame reaches no further than its Gateway"
    );
}

/// Outlier detection ejects endpoints on the 5xx of every request of its
/// cluster, so a namespace whose requests fail on purpose must not share the
/// cluster of another namespace that asked for the same settings.
#[test]
fn outlier_detection_is_judged_on_one_namespaces_requests_only() {
    let mut shared: Service = (*service("backend", "orders")).clone();
    shared
        .metadata
        .annotations
        .get_or_insert_default()
        .insert("legate.dev/allow-from".into(), "shop, rogue".into());
    let outliers = json!({ "consecutive5xx": 3, "baseEjectionTime": "30s" });
    let health = json!({ "path": "/healthz" });
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![
            mapping(
                "shop",
                "orders",
                "01",
                json!({ "hostname": "shop.example.com", "prefix": "/", "service": "orders.backend",
                        "outlierDetection": outliers, "healthCheck": health }),
            ),
            mapping(
                "rogue",
                "orders",
                "02",
                json!({ "hostname": "rogue.example.com", "prefix": "/", "service": "orders.backend",
                        "outlierDetection": outliers, "healthCheck": health }),
            ),
            mapping(
                "shop",
                "checked",
                "03",
                json!({ "hostname": "shop.example.com", "prefix": "/checked/", "service": "orders.backend",
                        "healthCheck": health }),
            ),
            mapping(
                "rogue",
                "checked",
                "04",
                json!({ "hostname": "rogue.example.com", "prefix": "/checked/", "service": "orders.backend",
                        "healthCheck": health }),
            ),
        ],
        services: vec![Arc::new(shared)],
        endpoint_slices: vec![slice("backend", "orders", &[("198.18.0.2", true)])],
        ..World::default()
    };
    let model = build(&world);
    let config = &model.gateways["infra/edge"];
    let upstream_of = |namespace: &str, name: &str| -> String {
        let route = config
            .routes
            .values()
            .find(|r| r.origin.namespace() == namespace && r.origin.name() == name)
            .unwrap_or_else(|| panic!("a route of {namespace}/{name}"));
        match &route.action {
            legate_xds::ir::RouteAction::Forward(f) => f.upstreams[0].upstream.clone(),
            other => panic!("{namespace}/{name} forwards: {other:?}"),
        }
    };
    assert_ne!(
        upstream_of("shop", "orders"),
        upstream_of("rogue", "orders"),
        "each namespace's outlier detection has its own cluster"
    );
    assert_eq!(
        upstream_of("shop", "checked"),
        upstream_of("rogue", "checked"),
        "active health checks are the same whoever asks: one cluster"
    );
    let judged = &config.upstreams[&upstream_of("shop", "orders")];
    assert_eq!(judged.outlier_detection.map(|o| o.consecutive_5xx), Some(3));
    assert_eq!(
        judged.health_check.as_ref().map(|h| h.path.as_str()),
        Some("/healthz")
    );
}
