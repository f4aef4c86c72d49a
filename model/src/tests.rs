//! The model's rules, as tables of objects in and verdicts and routes out.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use legate_crds::conditions::reasons;
use legate_crds::{AuthService, Gateway, Mapping};
use legate_xds::ir;
use serde_json::{Value, json};

use super::*;

pub(super) fn object<T: serde::de::DeserializeOwned>(
    kind: &str,
    namespace: &str,
    name: &str,
    created: &str,
    spec: Value,
) -> Arc<T> {
    let value = json!({
        "apiVersion": "legate.dev/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": name, "namespace": namespace, "generation": 1,
            "creationTimestamp": format!("2026-01-01T00:00:{created}Z"),
        },
        "spec": spec,
    });
    Arc::new(serde_json::from_value(value).unwrap_or_else(|e| panic!("a valid {kind}: {e}")))
}

pub(super) fn gateway(namespace: &str, name: &str, spec: Value) -> Arc<Gateway> {
    let mut spec = spec;
    let defaults = json!({
        "replicas": 1, "image": "envoy", "serviceType": "ClusterIP",
        "listeners": [{ "name": "http", "port": 8080, "protocol": "HTTP" }],
        "allowedRoutes": { "namespaces": { "from": "All" } },
    });
    if let (Some(spec), Some(defaults)) = (spec.as_object_mut(), defaults.as_object()) {
        for (k, v) in defaults {
            spec.entry(k.clone()).or_insert(v.clone());
        }
    }
    object("Gateway", namespace, name, "00", spec)
}

pub(super) fn mapping(namespace: &str, name: &str, created: &str, spec: Value) -> Arc<Mapping> {
    let mut spec = spec;
    let defaults = json!({ "hostname": "*", "caseSensitive": true, "precedence": 0, "rewrite": "/" });
    if let (Some(spec), Some(defaults)) = (spec.as_object_mut(), defaults.as_object()) {
        for (k, v) in defaults {
            spec.entry(k.clone()).or_insert(v.clone());
        }
    }
    object("Mapping", namespace, name, created, spec)
}

pub(super) fn service(namespace: &str, name: &str) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": namespace },
            "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] }
        }))
        .expect("a valid Service"),
    )
}

pub(super) fn slice(namespace: &str, service: &str, addresses: &[(&str, bool)]) -> Arc<EndpointSlice> {
    let endpoints: Vec<Value> = addresses
        .iter()
        .map(|(a, ready)| json!({ "addresses": [a], "conditions": { "ready": ready } }))
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "metadata": { "name": format!("{service}-1"), "namespace": namespace,
                          "labels": { "kubernetes.io/service-name": service } },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{ "name": "http", "port": 8080 }]
        }))
        .expect("a valid EndpointSlice"),
    )
}

pub(super) fn verdict<'a>(model: &'a Model, key: &str) -> &'a Verdict {
    model
        .verdicts
        .get(key)
        .unwrap_or_else(|| panic!("no verdict for {key}: {:?}", model.verdicts.keys()))
}

fn only_route(model: &Model, gateway: &str) -> ir::Route {
    let routes: Vec<&ir::Route> = model.gateways[gateway].routes.values().collect();
    assert_eq!(routes.len(), 1, "{routes:#?}");
    routes[0].clone()
}

fn weights(route: &ir::Route) -> Vec<(String, u32)> {
    match &route.action {
        ir::RouteAction::Forward(f) => f
            .upstreams
            .iter()
            .map(|u| (u.upstream.clone(), u.weight))
            .collect(),
        other => panic!("expected a forward, got {other:?}"),
    }
}

#[test]
fn a_mapping_routes_to_the_ready_endpoints_of_its_service() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![mapping(
            "shop",
            "quote",
            "01",
            json!({ "prefix": "/backend/", "service": "quote" }),
        )],
        services: vec![service("shop", "quote")],
        endpoint_slices: vec![slice(
            "shop",
            "quote",
            &[("198.18.0.2", true), ("198.18.0.6", false)],
        )],
        ..World::default()
    };
    let model = build(&world);
    let v = verdict(&model, "Mapping/shop/quote");
    assert_eq!(v.accepted, Ok(()));
    assert_eq!(v.resolved_refs, Ok(()));
    assert_eq!(v.gateways, ["infra/edge"]);
    let route = only_route(&model, "infra/edge");
    assert_eq!(route.listener, "http");
    assert_eq!(route.matcher.path, ir::PathMatch::Prefix("/backend/".into()));
    assert_eq!(weights(&route), [("shop/quote:80".to_string(), 100)]);
    let endpoints = &model.gateways["infra/edge"].endpoints["shop/quote:80"];
    assert_eq!(endpoints.len(), 1, "only the ready endpoint: {endpoints:?}");
    assert_eq!(
        (endpoints[0].address.to_string(), endpoints[0].port),
        ("198.18.0.2".into(), 8080)
    );
}

#[test]
fn a_missing_service_is_backend_not_found_and_still_routed() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![mapping(
            "shop",
            "ghost",
            "01",
            json!({ "prefix": "/ghost/", "service": "ghost" }),
        )],
        ..World::default()
    };
    let model = build(&world);
    let v = verdict(&model, "Mapping/shop/ghost");
    assert_eq!(
        v.accepted,
        Ok(()),
        "a missing backend is not a reason to refuse the route"
    );
    let problem = v.resolved_refs.clone().expect_err("BackendNotFound");
    assert_eq!(problem.reason, reasons::BACKEND_NOT_FOUND);
    assert!(
        problem.message.contains("shop/ghost does not exist"),
        "{}",
        problem.message
    );
    // The route exists and points at an upstream with no endpoints: 503, not 404.
    assert_eq!(
        weights(&only_route(&model, "infra/edge")),
        [("shop/ghost:80".to_string(), 100)]
    );
    assert!(model.gateways["infra/edge"].endpoints["shop/ghost:80"].is_empty());
}

#[test]
fn a_regex_that_does_not_compile_is_invalid_with_the_error() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![mapping(
            "shop",
            "bad",
            "01",
            json!({ "pathRegex": "^/orders/([0-9+$", "service": "orders" }),
        )],
        ..World::default()
    };
    let model = build(&world);
    let problem = verdict(&model, "Mapping/shop/bad")
        .accepted
        .clone()
        .expect_err("Invalid");
    assert_eq!(problem.reason, reasons::INVALID);
    assert!(problem.message.contains("spec.pathRegex"), "{}", problem.message);
    assert!(
        problem.message.contains("unclosed character class"),
        "{}",
        problem.message
    );
    assert!(model.gateways["infra/edge"].routes.is_empty());
}

/// On a catch-all, which nobody owns: on a host, the owner alone routes
/// (`tests_hosts`).
#[test]
fn the_older_namespace_keeps_a_contested_match() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![
            mapping(
                "team-b",
                "shop",
                "05",
                json!({ "hostname": "*", "prefix": "/", "service": "b" }),
            ),
            mapping(
                "team-a",
                "shop",
                "01",
                json!({ "hostname": "*", "prefix": "/", "service": "a" }),
            ),
        ],
        ..World::default()
    };
    let model = build(&world);
    assert_eq!(verdict(&model, "Mapping/team-a/shop").accepted, Ok(()));
    let problem = verdict(&model, "Mapping/team-b/shop")
        .accepted
        .clone()
        .expect_err("Conflicted");
    assert_eq!(problem.reason, reasons::CONFLICTED);
    assert!(problem.message.contains("team-a/shop"), "{}", problem.message);
    assert_eq!(
        weights(&only_route(&model, "infra/edge")),
        [("team-a/a:80".to_string(), 100)]
    );
}

#[test]
fn weights_split_traffic_within_a_namespace() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![
            mapping(
                "shop",
                "stable",
                "01",
                json!({ "prefix": "/checkout/", "service": "stable" }),
            ),
            mapping(
                "shop",
                "canary",
                "02",
                json!({ "prefix": "/checkout/", "service": "canary", "weight": 10 }),
            ),
        ],
        ..World::default()
    };
    let route = only_route(&build(&world), "infra/edge");
    assert_eq!(
        weights(&route),
        [
            ("shop/stable:80".to_string(), 90),
            ("shop/canary:80".to_string(), 10)
        ]
    );
    assert_eq!(
        route.origin.name(),
        "stable",
        "the oldest Mapping names the route"
    );
}

#[test]
fn a_weight_that_passes_100_is_invalid_and_the_others_keep_working() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![
            mapping(
                "shop",
                "a",
                "01",
                json!({ "prefix": "/x/", "service": "a", "weight": 60 }),
            ),
            mapping(
                "shop",
                "b",
                "02",
                json!({ "prefix": "/x/", "service": "b", "weight": 50 }),
            ),
        ],
        ..World::default()
    };
    let model = build(&world);
    assert_eq!(verdict(&model, "Mapping/shop/a").accepted, Ok(()));
    let problem = verdict(&model, "Mapping/shop/b")
        .accepted
        .clone()
        .expect_err("Invalid");
    assert!(problem.message.contains("110 percent"), "{}", problem.message);
    assert_eq!(
        weights(&only_route(&model, "infra/edge")),
        [("shop/a:80".to_string(), 60)]
    );
}

#[test]
fn objects_no_gateway_admits_are_told_why() {
    let world = World {
        gateways: vec![gateway(
            "infra",
            "private",
            json!({ "allowedRoutes": { "namespaces": { "from": "Same" } } }),
        )],
        mappings: vec![mapping(
            "shop",
            "quote",
            "01",
            json!({ "prefix": "/", "service": "quote" }),
        )],
        ..World::default()
    };
    let model = build(&world);
    let problem = verdict(&model, "Mapping/shop/quote")
        .accepted
        .clone()
        .expect_err("NoGateway");
    assert_eq!(problem.reason, reasons::NO_GATEWAY);
    assert!(
        problem
            .message
            .contains("no Gateway admits routes from namespace \"shop\""),
        "{}",
        problem.message
    );

    let named = World {
        mappings: vec![mapping(
            "shop",
            "quote",
            "01",
            json!({ "prefix": "/", "service": "quote", "gateways": [{ "name": "edge", "namespace": "infra" }] }),
        )],
        ..world
    };
    let problem = verdict(&build(&named), "Mapping/shop/quote")
        .accepted
        .clone()
        .expect_err("NoGateway");
    assert!(
        problem.message.contains("Gateway infra/edge does not exist"),
        "{}",
        problem.message
    );
}

#[test]
fn route_ids_do_not_depend_on_other_objects() {
    let one = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![mapping(
            "shop",
            "a",
            "01",
            json!({ "prefix": "/a/", "service": "a" }),
        )],
        ..World::default()
    };
    let two = World {
        mappings: vec![
            mapping("shop", "z", "00", json!({ "prefix": "/z/", "service": "z" })),
            mapping("shop", "a", "01", json!({ "prefix": "/a/", "service": "a" })),
        ],
        ..one.clone()
    };
    let ids = |w: &World| -> Vec<String> {
        build(w).gateways["infra/edge"]
            .routes
            .values()
            .filter(|r| r.origin.name() == "a")
            .map(|r| r.id.to_string())
            .collect()
    };
    assert_eq!(ids(&one), ids(&two));
}

#[test]
fn gateway_defaults_apply_unless_the_mapping_sets_its_own() {
    let world = World {
        gateways: vec![gateway(
            "infra",
            "edge",
            json!({ "defaults": { "timeout": "10s" } }),
        )],
        mappings: vec![
            mapping("shop", "a", "01", json!({ "prefix": "/a/", "service": "a" })),
            mapping(
                "shop",
                "b",
                "02",
                json!({ "prefix": "/b/", "service": "b", "timeout": "1s" }),
            ),
        ],
        ..World::default()
    };
    let model = build(&world);
    let timeout = |name: &str| {
        model.gateways["infra/edge"]
            .routes
            .values()
            .find(|r| r.origin.name() == name)
            .and_then(|r| r.policy.timeout)
    };
    assert_eq!(timeout("a"), Some(std::time::Duration::from_secs(10)));
    assert_eq!(timeout("b"), Some(std::time::Duration::from_secs(1)));
}

#[test]
fn gateway_upstream_health_defaults_apply_unless_the_mapping_sets_its_own() {
    let world = World {
        gateways: vec![gateway(
            "infra",
            "edge",
            json!({ "defaults": { "healthCheck": { "path": "/healthz" },
                                  "outlierDetection": { "consecutive5xx": 7 },
                                  "tcpKeepalive": { "idleTime": "1500ms" } } }),
        )],
        mappings: vec![
            mapping("shop", "a", "01", json!({ "prefix": "/a/", "service": "a" })),
            mapping(
                "shop",
                "b",
                "02",
                json!({ "prefix": "/b/", "service": "b", "healthCheck": { "path": "/ready", "interval": "2s" } }),
            ),
        ],
        services: vec![service("shop", "a"), service("shop", "b")],
        ..World::default()
    };
    let model = build(&world);
    let config = &model.gateways["infra/edge"];
    let upstream = |service: &str| {
        config
            .upstreams
            .values()
            .find(|u| u.name.starts_with(&format!("shop/{service}:80~")))
            .unwrap_or_else(|| panic!("an upstream of {service}: {:?}", config.upstreams.keys()))
    };
    let (a, b) = (upstream("a"), upstream("b"));
    let check = |u: &ir::Upstream| u.health_check.as_ref().map(|h| (h.path.clone(), h.interval));
    assert_eq!(
        check(a),
        Some(("/healthz".into(), std::time::Duration::from_secs(5)))
    );
    assert_eq!(
        check(b),
        Some(("/ready".into(), std::time::Duration::from_secs(2)))
    );
    for u in [a, b] {
        assert_eq!(u.outlier_detection.map(|o| o.consecutive_5xx), Some(7));
        assert_eq!(u.outlier_detection.map(|o| o.max_ejection_percent), Some(10));
        assert_eq!(
            u.tcp_keepalive.and_then(|k| k.idle_time_secs),
            Some(2),
            "keepalive counts whole seconds, rounding up"
        );
    }
}

#[test]
fn a_mappings_body_limit_may_lower_or_lift_the_gateways_but_never_raise_it() {
    let mappings = || {
        vec![
            mapping(
                "shop",
                "lower",
                "01",
                json!({ "prefix": "/l/", "service": "quote", "maxRequestBodyBytes": 100 }),
            ),
            mapping(
                "shop",
                "lifted",
                "02",
                json!({ "prefix": "/s/", "service": "quote", "maxRequestBodyBytes": 0 }),
            ),
            mapping(
                "rogue",
                "greedy",
                "03",
                json!({ "prefix": "/g/", "service": "quote", "maxRequestBodyBytes": 1 << 30 }),
            ),
            mapping(
                "shop",
                "plain",
                "04",
                json!({ "prefix": "/p/", "service": "quote", "compression": false }),
            ),
        ]
    };
    let world = |http: Value| World {
        gateways: vec![gateway("infra", "edge", json!({ "http": http }))],
        mappings: mappings(),
        ..World::default()
    };
    let limits = |model: &Model| {
        let config = &model.gateways["infra/edge"];
        let of = |name: &str| {
            config
                .routes
                .values()
                .find(|r| r.origin.name() == name)
                .map(|r| (r.policy.body_limit, r.policy.no_compression))
        };
        [of("lower"), of("lifted"), of("greedy"), of("plain")]
    };
    let capped = build(&world(json!({ "maxRequestBodyBytes": 1024, "compression": {} })));
    assert_eq!(
        limits(&capped),
        [
            Some((Some(ir::BodyLimit::Bytes(100)), false)),
            Some((Some(ir::BodyLimit::Unlimited), false)),
            Some((Some(ir::BodyLimit::Bytes(1024)), false)),
            Some((None, true)),
        ]
    );
    assert_eq!(
        verdict(&capped, "Mapping/rogue/greedy").notes[0],
        "on Gateway infra/edge, maxRequestBodyBytes 1073741824 is above the Gateway's http.maxRequestBodyBytes (1024): 1024 applies"
    );
    let http = &capped.gateways["infra/edge"].listeners["http"].http;
    assert_eq!(http.max_request_body_bytes, Some(1024));
    assert_eq!(
        http.compression.as_ref().map(|c| c.algorithms.clone()),
        Some(vec![ir::CompressionAlgorithm::Gzip]),
        "gzip when the Gateway names no algorithm"
    );

    let open = build(&world(json!({})));
    assert_eq!(
        limits(&open)[2],
        Some((Some(ir::BodyLimit::Bytes(16 << 20)), false)),
        "without a Gateway limit a Mapping holds at most 16 MiB"
    );
    assert!(verdict(&open, "Mapping/rogue/greedy").notes[0].contains("the most a Mapping may hold"));
}

#[test]
fn a_route_envoy_could_not_run_is_invalid_instead_of_silently_missing() {
    // The Service exists but has no port 9999: nothing to forward to.
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![mapping(
            "shop",
            "quote",
            "01",
            json!({ "prefix": "/q/", "service": "quote:9999" }),
        )],
        services: vec![service("shop", "quote")],
        ..World::default()
    };
    let model = build(&world);
    let v = verdict(&model, "Mapping/shop/quote");
    let problem = v.accepted.clone().expect_err("Invalid");
    assert_eq!(problem.reason, reasons::INVALID);
    assert!(problem.message.contains("no upstream"), "{}", problem.message);
    assert!(
        v.resolved_refs
            .as_ref()
            .expect_err("the port")
            .message
            .contains("no port 9999")
    );
    assert!(model.gateways["infra/edge"].routes.is_empty());
}

#[test]
fn a_gateway_takes_the_oldest_auth_service_and_the_newer_is_conflicted() {
    let auth = |name: &str, created: &str| -> Arc<AuthService> {
        object(
            "AuthService",
            "infra",
            name,
            created,
            json!({ "service": "auth:80", "protocol": "HTTP", "timeout": "5s" }),
        )
    };
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        auth_services: vec![auth("second", "05"), auth("first", "01")],
        services: vec![service("infra", "auth")],
        ..World::default()
    };
    let model = build(&world);
    assert_eq!(verdict(&model, "AuthService/infra/first").accepted, Ok(()));
    let problem = verdict(&model, "AuthService/infra/second")
        .accepted
        .clone()
        .expect_err("Conflicted");
    assert_eq!(problem.reason, reasons::CONFLICTED);
    assert!(
        problem.message.contains("already uses AuthService infra/first"),
        "{}",
        problem.message
    );
    assert_eq!(
        model.gateways["infra/edge"]
            .auth
            .as_ref()
            .map(|a| a.origin.name()),
        Some("first")
    );
}
