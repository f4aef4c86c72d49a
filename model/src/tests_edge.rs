//! The model's edge rules: TLS and what cleartext requests for TLS hosts get,
//! TLS termination for TCPMappings, sticky sessions, and order independence.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use legate_crds::conditions::reasons;
use legate_crds::{Gateway, TCPMapping, TLSContext};
use legate_xds::ir;
use serde_json::{Value, json};

use super::tests::{gateway, mapping, object, service, slice, verdict};
use super::*;

pub(super) fn tls_secret(namespace: &str, name: &str) -> Arc<Secret> {
    let cert = rcgen::generate_simple_self_signed(vec!["shop.example.com".into()]).expect("a certificate");
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.namespace = Some(namespace.into());
    secret.type_ = Some("kubernetes.io/tls".into());
    secret.data = Some(BTreeMap::from([
        ("tls.crt".to_string(), ByteString(cert.cert.pem().into_bytes())),
        (
            "tls.key".to_string(),
            ByteString(cert.signing_key.serialize_pem().into_bytes()),
        ),
    ]));
    Arc::new(secret)
}

fn tls_context(name: &str, spec: Value) -> Arc<TLSContext> {
    object("TLSContext", "shop", name, "01", spec)
}

fn http_and_https() -> Arc<Gateway> {
    gateway(
        "shop",
        "edge",
        json!({ "listeners": [
            { "name": "http", "port": 8080, "protocol": "HTTP" },
            { "name": "https", "port": 8443, "protocol": "HTTPS" },
        ]}),
    )
}

fn insecure_routes(model: &Model) -> Vec<ir::Route> {
    model.gateways["shop/edge"]
        .routes
        .values()
        .filter(|r| r.origin.kind() == "TLSContext")
        .cloned()
        .collect()
}

#[test]
fn cleartext_requests_for_a_tls_host_are_redirected_to_the_https_port_by_default() {
    let world = World {
        gateways: vec![http_and_https()],
        tls_contexts: vec![tls_context(
            "shop-tls",
            json!({ "hosts": ["shop.example.com"], "secret": "shop-cert" }),
        )],
        secrets: vec![tls_secret("shop", "shop-cert")],
        ..World::default()
    };
    let model = build(&world);
    let routes = insecure_routes(&model);
    assert_eq!(routes.len(), 1, "one route, on the HTTP listener: {routes:#?}");
    let route = &routes[0];
    assert_eq!(route.listener, "http");
    assert_eq!(route.hostnames, ["shop.example.com"]);
    assert_eq!(route.precedence, i32::MAX, "ahead of every Mapping");
    assert!(route.policy.bypass_auth);
    assert_eq!(
        route.action,
        ir::RouteAction::Redirect(ir::Redirect {
            https: true,
            port: Some(8443),
            status: 301,
            ..ir::Redirect::default()
        })
    );
    let https = &model.gateways["shop/edge"].listeners["https"];
    assert_eq!(https.tls[0].certificate, "shop/shop-cert");
    assert!(model.gateways["shop/edge"].secrets.contains_key("shop/shop-cert"));
}

#[test]
fn reject_answers_404_and_route_adds_nothing() {
    let reject = tls_context(
        "a",
        json!({ "hosts": ["a.example.com"], "secret": "shop-cert", "insecure": { "action": "Reject" } }),
    );
    let route = tls_context(
        "b",
        json!({ "hosts": ["b.example.com"], "secret": "shop-cert", "insecure": { "action": "Route" } }),
    );
    let world = World {
        gateways: vec![http_and_https()],
        tls_contexts: vec![reject, route],
        secrets: vec![tls_secret("shop", "shop-cert")],
        ..World::default()
    };
    let routes = insecure_routes(&build(&world));
    assert_eq!(routes.len(), 1, "{routes:#?}");
    assert_eq!(routes[0].hostnames, ["a.example.com"]);
    assert_eq!(
        routes[0].action,
        ir::RouteAction::DirectResponse {
            status: 404,
            body: None
        }
    );
}

#[test]
fn a_missing_secret_is_reported_and_its_hosts_stay_off_cleartext() {
    let world = World {
        gateways: vec![http_and_https()],
        tls_contexts: vec![tls_context(
            "shop-tls",
            json!({ "hosts": ["shop.example.com"], "secret": "absent" }),
        )],
        ..World::default()
    };
    let model = build(&world);
    let routes = insecure_routes(&model);
    assert_eq!(
        routes.len(),
        1,
        "still redirected, never served in clear: {routes:#?}"
    );
    assert!(matches!(routes[0].action, ir::RouteAction::Redirect(_)));
    let problem = verdict(&model, "TLSContext/shop/shop-tls")
        .resolved_refs
        .clone()
        .expect_err("the Secret is missing");
    assert_eq!(problem.reason, reasons::SECRET_NOT_FOUND);
    assert_eq!(
        problem.message,
        "Secret shop/absent does not exist; the hosts of this TLSContext are not served over TLS"
    );
    assert!(
        !model.gateways["shop/edge"].listeners.contains_key("https"),
        "an HTTPS listener without a certificate waits"
    );
}

#[test]
fn a_tcp_mapping_with_a_tls_context_terminates_tls_with_its_certificate() {
    let world = World {
        gateways: vec![gateway(
            "shop",
            "edge",
            json!({ "listeners": [{ "name": "tls", "port": 8443, "protocol": "TLS" }] }),
        )],
        tls_contexts: vec![tls_context(
            "db-tls",
            json!({ "hosts": ["db.example.com"], "secret": "db-cert" }),
        )],
        tcp_mappings: vec![object(
            "TCPMapping",
            "shop",
            "db",
            "02",
            json!({ "port": 8443, "service": "db:80", "tlsContext": "db-tls" }),
        )],
        services: vec![service("shop", "db")],
        secrets: vec![tls_secret("shop", "db-cert")],
        ..World::default()
    };
    let model = build(&world);
    let config = &model.gateways["shop/edge"];
    let route = config.tcp_routes.values().next().expect("a TCP route");
    let tls = route.tls.as_ref().expect("terminated");
    assert_eq!(tls.certificate, "shop/db-cert");
    assert_eq!(
        route.sni,
        ["db.example.com"],
        "the TLSContext's hosts pick the chain"
    );
    assert!(config.secrets.contains_key("shop/db-cert"));

    let mut broken = world.clone();
    broken.secrets.clear();
    let model = build(&broken);
    assert!(model.gateways["shop/edge"].tcp_routes.is_empty());
    let problem = verdict(&model, "TCPMapping/shop/db")
        .resolved_refs
        .clone()
        .expect_err("no Secret");
    assert_eq!(problem.reason, reasons::SECRET_NOT_FOUND);
    assert!(
        problem
            .message
            .starts_with("TLSContext shop/db-tls: Secret shop/db-cert does not exist")
    );
}

#[test]
fn ring_hash_defaults_make_every_mapping_sticky_on_what_they_name() {
    let world = World {
        gateways: vec![gateway(
            "shop",
            "edge",
            json!({ "defaults": { "loadBalancer": { "policy": "RingHash", "hashOn": { "header": "X-User" } } } }),
        )],
        mappings: vec![
            mapping("shop", "a", "01", json!({ "prefix": "/a/", "service": "quote" })),
            mapping(
                "shop",
                "b",
                "02",
                json!({ "prefix": "/b/", "service": "quote", "loadBalancer": { "policy": "RoundRobin" } }),
            ),
        ],
        services: vec![service("shop", "quote")],
        endpoint_slices: vec![slice("shop", "quote", &[("198.18.0.2", true)])],
        ..World::default()
    };
    let model = build(&world);
    let hash = |name: &str| {
        model.gateways["shop/edge"]
            .routes
            .values()
            .find(|r| r.origin.name() == name)
            .map(|r| r.policy.hash_on.clone())
            .expect("a route")
    };
    assert_eq!(hash("a"), Some(ir::HashOn::Header("x-user".into())));
    assert_eq!(hash("b"), None, "round robin hashes nothing");
}

#[test]
fn the_order_objects_arrive_in_never_changes_the_configuration() {
    let mut mappings = Vec::new();
    for i in 0..30 {
        let ns = format!("ns{}", i % 3);
        let spec = match i % 5 {
            0 => json!({ "prefix": "/same/", "service": "quote", "weight": 10 }),
            1 => json!({ "prefix": "/same/", "service": "quote" }),
            // A host of each namespace's own (a shared one would be the oldest's).
            2 => {
                json!({ "hostname": format!("{ns}.example.com"), "prefix": format!("/p{i}/"), "service": "quote" })
            }
            3 => json!({ "prefix": "/shadow/", "service": "quote", "shadow": true }),
            _ => json!({ "path": format!("/exact/{i}"), "service": "quote", "precedence": i }),
        };
        mappings.push(mapping(&ns, &format!("m{i}"), &format!("{:02}", 10 + i), spec));
    }
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: mappings.clone(),
        services: (0..3).map(|i| service(&format!("ns{i}"), "quote")).collect(),
        ..World::default()
    };
    let forward = build(&world);
    let mut reversed = world.clone();
    reversed.mappings.reverse();
    let mut rotated = world.clone();
    rotated.mappings.rotate_left(13);
    for other in [build(&reversed), build(&rotated)] {
        assert_eq!(forward.gateways, other.gateways);
        assert_eq!(forward.verdicts, other.verdicts);
    }
    assert!(
        forward.gateways["infra/edge"].routes.len() > 10,
        "the comparison is not vacuous"
    );
}

#[test]
fn a_grpc_auth_service_gets_an_http2_cluster() {
    let world = World {
        gateways: vec![gateway("shop", "edge", json!({}))],
        auth_services: vec![object(
            "AuthService",
            "shop",
            "auth",
            "01",
            json!({ "service": "auth:80", "protocol": "GRPC", "timeout": "1s" }),
        )],
        services: vec![service("shop", "auth")],
        ..World::default()
    };
    let model = build(&world);
    let config = &model.gateways["shop/edge"];
    let auth = config.auth.as_ref().expect("an auth service");
    assert_eq!(
        config.upstreams[&auth.upstream].protocol,
        ir::UpstreamProtocol::Http2
    );
    assert_eq!(auth.status_on_error, 403, "the default");
}

#[test]
fn an_auth_service_whose_service_is_gone_fails_closed_and_says_so() {
    let world = World {
        gateways: vec![gateway("shop", "edge", json!({}))],
        auth_services: vec![object(
            "AuthService",
            "shop",
            "auth",
            "01",
            json!({ "service": "auth:80", "protocol": "HTTP", "timeout": "1s" }),
        )],
        ..World::default()
    };
    let model = build(&world);
    let config = &model.gateways["shop/edge"];
    let auth = config
        .auth
        .as_ref()
        .expect("the filter stays: requests are refused, not let through");
    assert_eq!(config.endpoints[&auth.upstream], Vec::new());
    let problem = verdict(&model, "AuthService/shop/auth")
        .resolved_refs
        .clone()
        .expect_err("no Service");
    assert_eq!(problem.reason, reasons::BACKEND_NOT_FOUND);
    assert_eq!(
        problem.message,
        "Service shop/auth does not exist; requests get 403"
    );

    let mut idle = world.clone();
    idle.services = vec![service("shop", "auth")];
    let model = build(&idle);
    let problem = verdict(&model, "AuthService/shop/auth")
        .resolved_refs
        .clone()
        .expect_err("no endpoints");
    assert_eq!(problem.reason, reasons::NO_READY_ENDPOINTS);
}

fn tcp(namespace: &str, name: &str, created: &str, spec: Value) -> Arc<TCPMapping> {
    object("TCPMapping", namespace, name, created, spec)
}

#[test]
fn tcp_mappings_of_one_port_split_by_weight_and_another_namespace_is_conflicted() {
    let world = World {
        gateways: vec![gateway(
            "infra",
            "edge",
            json!({ "listeners": [{ "name": "db", "port": 5432, "protocol": "TCP" }] }),
        )],
        tcp_mappings: vec![
            tcp("shop", "db", "01", json!({ "port": 5432, "service": "db:80" })),
            tcp(
                "shop",
                "db-canary",
                "02",
                json!({ "port": 5432, "service": "db-canary:80", "weight": 10 }),
            ),
            tcp(
                "shop",
                "db-greedy",
                "03",
                json!({ "port": 5432, "service": "db:80", "weight": 95 }),
            ),
            tcp("other", "db", "04", json!({ "port": 5432, "service": "db:80" })),
        ],
        services: vec![
            service("shop", "db"),
            service("shop", "db-canary"),
            service("other", "db"),
        ],
        ..World::default()
    };
    let model = build(&world);
    let routes: Vec<&ir::TcpRoute> = model.gateways["infra/edge"].tcp_routes.values().collect();
    assert_eq!(routes.len(), 1, "{routes:#?}");
    let weights: Vec<(&str, u32)> = routes[0]
        .upstreams
        .iter()
        .map(|u| (u.upstream.as_str(), u.weight))
        .collect();
    assert_eq!(weights, [("shop/db:80", 90), ("shop/db-canary:80", 10)]);
    assert_eq!(routes[0].origin.name(), "db", "the oldest names the route");
    assert_eq!(routes[0].co_origins.len(), 1);

    let greedy = verdict(&model, "TCPMapping/shop/db-greedy").accepted.clone();
    let problem = greedy.expect_err("95 takes the total past 100");
    assert_eq!(problem.reason, reasons::INVALID);
    assert!(
        problem.message.contains("older ones already have 10"),
        "{}",
        problem.message
    );

    let other = verdict(&model, "TCPMapping/other/db").accepted.clone();
    let problem = other.expect_err("another namespace");
    assert_eq!(problem.reason, reasons::CONFLICTED);
    assert_eq!(
        problem.message,
        "port 5432 is already routed by TCPMapping shop/db, which is older"
    );
    assert!(verdict(&model, "TCPMapping/shop/db-canary").accepted.is_ok());
}

#[test]
fn settings_envoy_would_refuse_make_the_mapping_invalid_with_the_reason() {
    let cases = [
        (
            json!({ "path": "/old", "redirect": { "prefix": "/new/" } }),
            "spec.redirect.prefix replaces the matched prefix: the Mapping needs spec.prefix",
        ),
        (
            json!({ "prefix": "/api/", "service": "quote", "localRateLimit": { "requests": 5, "per": "10ms" } }),
            "spec.localRateLimit allows 5 requests per 10ms: it needs at least 1 request per 50ms or more",
        ),
    ];
    for (spec, message) in cases {
        let world = World {
            gateways: vec![gateway("shop", "edge", json!({}))],
            mappings: vec![mapping("shop", "m", "01", spec)],
            services: vec![service("shop", "quote")],
            ..World::default()
        };
        let model = build(&world);
        let problem = verdict(&model, "Mapping/shop/m")
            .accepted
            .clone()
            .expect_err("refused");
        assert_eq!(
            (problem.reason, problem.message.as_str()),
            (reasons::INVALID, message)
        );
    }
}

#[test]
fn tcp_mappings_whose_server_names_overlap_leave_the_older_one_alone() {
    let world = World {
        gateways: vec![gateway(
            "shop",
            "edge",
            json!({ "listeners": [{ "name": "tls", "port": 8443, "protocol": "TLS" }] }),
        )],
        tls_contexts: vec![tls_context(
            "both-tls",
            json!({ "hosts": ["a.example.com", "b.example.com"], "secret": "both-cert" }),
        )],
        tcp_mappings: vec![
            tcp(
                "shop",
                "a",
                "01",
                json!({ "port": 8443, "service": "a:80", "sni": "a.example.com" }),
            ),
            // Terminates for a.example.com too (its TLSContext's hosts): a second
            // chain for a.example.com, which Envoy would refuse.
            tcp(
                "shop",
                "both",
                "02",
                json!({ "port": 8443, "service": "b:80", "tlsContext": "both-tls" }),
            ),
        ],
        services: vec![service("shop", "a"), service("shop", "b")],
        secrets: vec![tls_secret("shop", "both-cert")],
        ..World::default()
    };
    let model = build(&world);
    let routes: Vec<&ir::TcpRoute> = model.gateways["shop/edge"].tcp_routes.values().collect();
    assert_eq!(routes.len(), 1, "{routes:#?}");
    assert_eq!(routes[0].origin.name(), "a");
    let problem = verdict(&model, "TCPMapping/shop/both")
        .accepted
        .clone()
        .expect_err("overlaps");
    assert_eq!(problem.reason, reasons::CONFLICTED);
    assert_eq!(
        problem.message,
        "port 8443 for a.example.com is already routed by TCPMapping shop/a, which is older"
    );
}
