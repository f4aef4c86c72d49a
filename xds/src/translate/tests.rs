//! Translation tests: golden files per route feature and per resource kind,
//! route order, stable names and incremental output.
//!
//! Golden files live in `xds/src/translate/golden/`. Regenerate them with
//! `LEGATE_UPDATE_GOLDEN=1 cargo test -p legate-xds translate` and review the diff.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::accesslog::v3::access_log;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::StdoutAccessLog;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use prost::Message;

use super::{Change, Translator};
use crate::ir::{self, ObjectRef};
use crate::render::{render_cluster, render_listener, render_route};
use crate::resource::{Resource, ResourceType, ResourceUpdate};
use crate::sample;

pub(super) fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("src/translate/golden/{name}.txt"));
    if std::env::var_os("LEGATE_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden files have a folder"))
            .expect("creating the golden folder");
        std::fs::write(&path, actual).expect("writing a golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs from the translation.\n--- expected\n{expected}\n--- actual\n{actual}\n\
         If the new output is right, regenerate with:\n  LEGATE_UPDATE_GOLDEN=1 cargo test -p legate-xds translate\n\
         and review the diff.",
        path.display()
    );
}

fn upserts(updates: &[ResourceUpdate]) -> Vec<Arc<Resource>> {
    updates
        .iter()
        .filter_map(|u| match u {
            ResourceUpdate::Upsert(r) => Some(r.clone()),
            ResourceUpdate::Remove(..) => None,
        })
        .collect()
}

pub(super) fn one(updates: &[ResourceUpdate], kind: ResourceType) -> Arc<Resource> {
    let found: Vec<_> = upserts(updates).into_iter().filter(|r| r.kind == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind} resource in {updates:?}");
    found[0].clone()
}

fn route_config(updates: &[ResourceUpdate]) -> RouteConfiguration {
    RouteConfiguration::decode(&*one(updates, ResourceType::Route).body).expect("valid RouteConfiguration")
}

pub(super) fn base() -> Vec<Change> {
    vec![
        Change::UpsertListener(sample::listener("http", 8080)),
        Change::UpsertUpstream(sample::upstream("default/echo:80")),
    ]
}

/// The single route a feature's IR route translates to.
fn translated_route(r: ir::Route) -> Route {
    let mut t = Translator::new();
    let updates = t.translate(base().into_iter().chain([Change::UpsertRoute(r)]));
    let rc = route_config(&updates);
    assert_eq!(rc.virtual_hosts.len(), 1);
    let mut routes = rc.virtual_hosts[0].routes.clone();
    assert_eq!(routes.len(), 1);
    routes.remove(0)
}

fn feature(name: &str, edit: impl FnOnce(&mut ir::Route)) {
    let mut r = sample::route("feature", "shop.example.com", "/api/", "default/echo:80");
    edit(&mut r);
    golden(&format!("route_{name}"), &render_route(translated_route(r)));
}

fn forward(r: &mut ir::Route) -> &mut ir::Forward {
    match &mut r.action {
        ir::RouteAction::Forward(f) => f,
        _ => panic!("sample routes forward"),
    }
}

#[test]
fn route_prefix() {
    feature("prefix", |_| {});
}

#[test]
fn route_exact_and_case_insensitive() {
    feature("exact_case_insensitive", |r| {
        r.matcher.path = ir::PathMatch::Exact("/api/Login".into());
        r.matcher.case_sensitive = false;
    });
}

#[test]
fn route_regex() {
    feature("regex", |r| {
        r.matcher.path = ir::PathMatch::Regex("/api/v[0-9]+/.*".into())
    });
}

#[test]
fn route_method_headers_query() {
    feature("method_headers_query", |r| {
        r.matcher.method = Some("POST".into());
        r.matcher.headers = vec![
            ir::HeaderMatch {
                name: "x-canary".into(),
                value: ir::ValueMatch::Exact("1".into()),
                invert: false,
            },
            ir::HeaderMatch {
                name: "x-debug".into(),
                value: ir::ValueMatch::Present,
                invert: true,
            },
        ];
        r.matcher.query = vec![ir::QueryMatch {
            name: "v".into(),
            value: ir::ValueMatch::Regex("[0-9]+".into()),
        }];
    });
}

#[test]
fn route_weighted_upstreams() {
    feature("weighted", |r| {
        forward(r).upstreams = vec![
            ir::WeightedUpstream {
                upstream: "default/echo:80".into(),
                weight: 90,
            },
            ir::WeightedUpstream {
                upstream: "default/echo-canary:80".into(),
                weight: 10,
            },
        ];
    });
}

#[test]
fn route_rewrites() {
    feature("rewrites", |r| {
        let f = forward(r);
        f.prefix_rewrite = Some("/".into());
        f.host_rewrite = Some(ir::HostRewrite::Literal("internal.svc".into()));
        f.regex_rewrite = Some(ir::RegexRewrite {
            pattern: "^/api/(.*)$".into(),
            substitution: "/\\1".into(),
        });
    });
}

#[test]
fn route_redirect() {
    feature("redirect", |r| {
        r.action = ir::RouteAction::Redirect(ir::Redirect {
            host: Some("www.example.com".into()),
            path: Some(ir::RedirectPath::Replace("/new".into())),
            port: None,
            https: true,
            status: 308,
            strip_query: true,
        });
    });
}

#[test]
fn route_direct_response() {
    feature("direct_response", |r| {
        r.action = ir::RouteAction::DirectResponse {
            status: 503,
            body: Some("down for maintenance".into()),
        };
    });
}

#[test]
fn route_timeouts_and_retries() {
    feature("timeouts_retries", |r| {
        r.policy.timeout = Some(Duration::from_secs(30));
        r.policy.idle_timeout = Some(Duration::from_millis(1500));
        r.policy.retries = Some(ir::RetryPolicy {
            retry_on: vec!["5xx".into(), "reset".into()],
            num_retries: 3,
            per_try_timeout: Some(Duration::from_secs(2)),
        });
    });
}

#[test]
fn route_header_edits() {
    feature("headers", |r| {
        r.policy.request_headers_to_add = vec![ir::HeaderValue {
            name: "x-gateway".into(),
            value: "legate".into(),
            append: false,
        }];
        r.policy.request_headers_to_remove = vec!["x-internal".into()];
        r.policy.response_headers_to_add = vec![ir::HeaderValue {
            name: "cache-control".into(),
            value: "no-store".into(),
            append: true,
        }];
        r.policy.response_headers_to_remove = vec!["server".into()];
    });
}

#[test]
fn route_cors_and_auth_bypass() {
    feature("cors_auth_bypass", |r| {
        r.policy.bypass_auth = true;
        r.policy.cors = Some(ir::Cors {
            allow_origins: vec!["https://app.example.com".into(), "*".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["content-type".into()],
            expose_headers: vec!["x-trace".into()],
            max_age: Some(Duration::from_secs(600)),
            allow_credentials: true,
        });
    });
}

#[test]
fn route_upgrades_mirror_rate_limits() {
    feature("upgrades_mirror_rate_limits", |r| {
        let f = forward(r);
        f.upgrades = vec!["websocket".into()];
        f.mirrors = vec![ir::Mirror {
            upstream: "default/shadow:80".into(),
            percent: 25,
        }];
        r.policy.rate_limits = vec![vec![
            ir::RateLimitEntry::Generic {
                key: "service".into(),
                value: "shop".into(),
            },
            ir::RateLimitEntry::RequestHeader {
                header: "x-tier".into(),
                key: "tier".into(),
                skip_if_absent: true,
            },
            ir::RateLimitEntry::RemoteAddress,
            ir::RateLimitEntry::DestinationCluster,
        ]];
        r.policy.local_rate_limit = Some(ir::LocalRateLimit {
            requests: 10,
            per: Duration::from_secs(1),
        });
        r.policy.hash_on = Some(ir::HashOn::Cookie {
            name: "session".into(),
            ttl: Some(Duration::from_secs(3600)),
            path: Some("/".into()),
        });
        // One entry: the golden rendering decodes maps into a HashMap.
        r.policy.auth_context = [("tenant".to_string(), "shop".to_string())].into();
    });
}

#[test]
fn listener_cluster_endpoints_and_secret() {
    let mut t = Translator::new();
    let mut https = sample::listener("https", 8443);
    https.protocol = ir::ListenerProtocol::Https;
    https.tls = vec![ir::ServerTls {
        origin: ObjectRef::new("TLSContext", "default", "shop-tls", 2),
        hostnames: vec!["shop.example.com".into()],
        certificate: "default/shop-cert".into(),
        client_ca: Some("default/clients-ca".into()),
        require_client_certificate: true,
        alpn: vec!["h2".into(), "http/1.1".into()],
        cipher_suites: Vec::new(),
        min_version: Some(ir::TlsVersion::V1_2),
        max_version: None,
    }];
    let mut grpc = sample::upstream("default/grpc:9000");
    grpc.protocol = ir::UpstreamProtocol::Http2;
    grpc.load_balancing = ir::LoadBalancing::LeastRequest;
    grpc.circuit_breakers = Some(ir::CircuitBreakers {
        max_connections: Some(100),
        max_requests: Some(1000),
        ..ir::CircuitBreakers::default()
    });
    grpc.health_check = Some(ir::HealthCheck {
        path: "/healthz".into(),
        host: Some("grpc.default".into()),
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
        unhealthy_threshold: 2,
        healthy_threshold: 1,
        expected_statuses: vec![200, 204],
    });
    grpc.outlier_detection = Some(ir::OutlierDetection {
        consecutive_5xx: 3,
        interval: Duration::from_secs(1),
        base_ejection_time: Duration::from_secs(30),
        max_ejection_percent: 50,
    });
    grpc.tcp_keepalive = Some(ir::TcpKeepalive {
        probes: Some(3),
        idle_time_secs: Some(60),
        interval_secs: None,
    });
    grpc.tls = Some(ir::UpstreamTls {
        sni: Some("grpc.internal".into()),
        ca_secret: Some("default/internal-ca".into()),
        client_certificate: None,
    });
    let endpoint = |addr: &str, zone: Option<&str>, ready| ir::Endpoint {
        address: addr.parse().expect("test address"),
        port: 9000,
        ready,
        zone: zone.map(str::to_owned),
    };
    let updates = t.translate([
        Change::UpsertListener(https),
        Change::UpsertUpstream(grpc),
        Change::SetEndpoints {
            upstream: "default/grpc:9000".into(),
            endpoints: vec![
                endpoint("127.0.0.3", Some("b"), true),
                endpoint("127.0.0.2", Some("a"), false),
                endpoint("127.0.0.1", Some("a"), true),
            ],
        },
        Change::UpsertSecret(ir::Secret {
            name: "default/shop-cert".into(),
            origin: ObjectRef::new("TLSContext", "default", "shop-tls", 2),
            material: ir::SecretMaterial::Certificate {
                chain_pem: "-----BEGIN CERTIFICATE-----\n...".into(),
                key_pem: "-----BEGIN PRIVATE KEY-----\n...".into(),
            },
        }),
        Change::SetAuth(Some(ir::AuthService {
            origin: ObjectRef::new("AuthService", "default", "auth", 1),
            upstream: "default/auth:3000".into(),
            protocol: ir::AuthProtocol::Http {
                path_prefix: "/check".into(),
                allowed_request_headers: vec!["x-tenant".into()],
                allowed_authorization_headers: vec!["x-user".into()],
            },
            timeout: Duration::from_secs(1),
            failure_mode_allow: false,
            status_on_error: 503,
            include_body: Some(ir::AuthBody {
                max_bytes: 4096,
                allow_partial: true,
            }),
        })),
    ]);
    let listener = Listener::decode(&*one(&updates, ResourceType::Listener).body).expect("Listener");
    let cluster = Cluster::decode(&*one(&updates, ResourceType::Cluster).body).expect("Cluster");
    let cla = ClusterLoadAssignment::decode(&*one(&updates, ResourceType::Endpoints).body).expect("CLA");
    let secret = Secret::decode(&*one(&updates, ResourceType::Secret).body).expect("Secret");
    golden("listener_https", &render_listener(listener));
    golden("cluster_grpc_tls", &render_cluster(cluster));
    golden("endpoints_zones", &format!("{cla:#?}\n"));
    // Plain Debug, not the redacting renderer: the key here is a placeholder.
    golden("secret_certificate", &format!("{secret:#?}\n"));

    let cluster = one(&updates, ResourceType::Cluster);
    assert_eq!(
        cluster.references,
        [
            (ResourceType::Secret, Arc::from("default/internal-ca")),
            (ResourceType::Endpoints, Arc::from("default/grpc:9000"))
        ]
    );
    let listener = one(&updates, ResourceType::Listener);
    assert!(
        listener
            .references
            .contains(&(ResourceType::Route, Arc::from("https")))
    );
    assert!(
        listener
            .references
            .contains(&(ResourceType::Cluster, Arc::from("default/auth:3000")))
    );
    assert!(
        listener
            .references
            .contains(&(ResourceType::Secret, Arc::from("default/shop-cert")))
    );
}

fn names_in_order(rc: &RouteConfiguration, host: &str) -> Vec<String> {
    rc.virtual_hosts
        .iter()
        .find(|v| v.name == host)
        .unwrap_or_else(|| panic!("no virtual host {host}"))
        .routes
        .iter()
        .map(|r| r.name.clone())
        .collect()
}

#[test]
fn routes_are_ordered_by_precedence_then_path_length_then_matchers() {
    let mut routes = vec![
        sample::route("short", "a.example.com", "/a", "u"),
        sample::route("long", "a.example.com", "/a/b/c", "u"),
        sample::route("favoured", "a.example.com", "/", "u"),
        sample::route("with-header", "a.example.com", "/a", "u"),
        sample::route("tie-b", "a.example.com", "/t", "u"),
        sample::route("tie-a", "a.example.com", "/t", "u"),
        sample::route("everywhere", "*", "/a/b/c/d", "u"),
    ];
    routes[2].precedence = 10;
    routes[3].matcher.headers.push(ir::HeaderMatch {
        name: "x".into(),
        value: ir::ValueMatch::Present,
        invert: false,
    });
    let expected = [
        "Mapping/default/favoured",
        "Mapping/default/everywhere",
        "Mapping/default/long",
        "Mapping/default/with-header",
        "Mapping/default/short",
        "Mapping/default/tie-a",
        "Mapping/default/tie-b",
    ];
    // The order does not depend on the order of the changes.
    for rotation in 0..routes.len() {
        let mut t = Translator::new();
        let mut changes = base();
        let mut rotated = routes.clone();
        rotated.rotate_left(rotation);
        changes.extend(rotated.into_iter().map(Change::UpsertRoute));
        let rc = route_config(&t.translate(changes));
        assert_eq!(names_in_order(&rc, "a.example.com"), expected);
        assert_eq!(names_in_order(&rc, "*"), ["Mapping/default/everywhere"]);
    }
}

#[test]
fn removing_a_route_leaves_the_others_byte_for_byte() {
    let mut t = Translator::new();
    let mut changes = base();
    for i in 0..5 {
        changes.push(Change::UpsertRoute(sample::route(
            &format!("r{i}"),
            "h.example.com",
            &format!("/p{i}"),
            "u",
        )));
    }
    let before = route_config(&t.translate(changes));
    let after = route_config(&t.translate([Change::RemoveRoute(ir::RouteId::of(&ObjectRef::new(
        "Mapping", "default", "r2", 1,
    )))]));
    let kept: Vec<&Route> = before.virtual_hosts[0]
        .routes
        .iter()
        .filter(|r| r.name != "Mapping/default/r2")
        .collect();
    let after_routes: Vec<&Route> = after.virtual_hosts[0].routes.iter().collect();
    assert_eq!(kept, after_routes, "same names, same content, same order");
}

#[test]
fn an_unchanged_upsert_produces_nothing() {
    let mut t = Translator::new();
    let changes = sample::gateway(8080, 20, 5, 3, SocketAddr::from(([127, 0, 0, 1], 9000)));
    assert!(!t.translate(changes.clone()).is_empty());
    assert!(t.translate(changes).is_empty());
}

#[test]
fn a_route_change_touches_only_its_route_config() {
    let mut t = Translator::new();
    t.translate(sample::gateway(
        8080,
        20,
        5,
        3,
        SocketAddr::from(([127, 0, 0, 1], 9000)),
    ));
    let mut r = sample::route(
        &sample::route_name(7),
        &sample::host_name(7, 5),
        "/changed/",
        "default/svc-1:8080",
    );
    r.precedence = 3;
    let updates = t.translate([Change::UpsertRoute(r)]);
    let kinds: Vec<ResourceType> = updates.iter().map(ResourceUpdate::kind).collect();
    assert_eq!(kinds, [ResourceType::Route]);
}

#[test]
fn an_endpoints_change_touches_only_eds() {
    let mut t = Translator::new();
    t.translate(sample::gateway(
        8080,
        20,
        5,
        3,
        SocketAddr::from(([127, 0, 0, 1], 9000)),
    ));
    let updates = t.translate([sample::endpoints(
        "default/svc-1:8080",
        &[SocketAddr::from(([127, 0, 0, 2], 9000))],
    )]);
    let kinds: Vec<ResourceType> = updates.iter().map(ResourceUpdate::kind).collect();
    assert_eq!(kinds, [ResourceType::Endpoints]);
}

#[test]
fn versions_do_not_depend_on_the_order_of_changes() {
    let changes = sample::gateway(8080, 50, 7, 4, SocketAddr::from(([127, 0, 0, 1], 9000)));
    let versions = |changes: Vec<Change>| {
        let mut t = Translator::new();
        let mut v: Vec<(ResourceType, String, String)> = upserts(&t.translate(changes))
            .iter()
            .map(|r| (r.kind, r.name.to_string(), r.version.to_string()))
            .collect();
        v.sort();
        v
    };
    let mut reversed = changes.clone();
    reversed.reverse();
    assert_eq!(versions(changes), versions(reversed));
}

#[test]
fn the_route_config_lists_its_clusters_and_the_objects_behind_each_route() {
    let mut t = Translator::new();
    let mut changes = base();
    changes.push(Change::UpsertRoute(sample::route(
        "a",
        "*",
        "/a",
        "default/echo:80",
    )));
    changes.push(Change::UpsertRoute(sample::route(
        "b",
        "*",
        "/b",
        "default/other:80",
    )));
    let rc = one(&t.translate(changes), ResourceType::Route);
    assert_eq!(
        rc.references,
        [
            (ResourceType::Cluster, Arc::from("default/echo:80")),
            (ResourceType::Cluster, Arc::from("default/other:80"))
        ]
    );
    let objects: Vec<String> = rc.origins().map(|o| o.object.key()).collect();
    assert_eq!(objects, ["Mapping/default/a", "Mapping/default/b"]);
}

#[test]
fn removing_a_listener_removes_its_listener_and_route_config() {
    let mut t = Translator::new();
    t.translate(base());
    let updates = t.translate([Change::RemoveListener("http".into())]);
    let removed: Vec<(ResourceType, String)> = updates
        .iter()
        .filter_map(|u| match u {
            ResourceUpdate::Remove(k, n) => Some((*k, n.to_string())),
            ResourceUpdate::Upsert(_) => None,
        })
        .collect();
    assert_eq!(
        removed,
        [
            (ResourceType::Listener, "http".into()),
            (ResourceType::Route, "http".into())
        ]
    );
}

#[test]
fn an_invalid_route_is_refused_and_its_previous_version_stays() {
    let mut t = Translator::new();
    t.translate(
        base()
            .into_iter()
            .chain([Change::UpsertRoute(sample::route("r", "*", "/ok", "u"))]),
    );
    let mut bad = sample::route("r", "*", "no-slash", "u");
    bad.origin = bad.origin.at_generation(2);
    let err = t
        .apply(Change::UpsertRoute(bad))
        .expect_err("a relative path is refused");
    assert_eq!(
        err.to_string(),
        "Mapping default/r (generation 2): path \"no-slash\" must start with '/'"
    );
    assert!(t.flush().is_empty(), "nothing changed");
    assert_eq!(t.route_count(), 1);
}

fn tcp_route(name: &str, listener: &str, sni: &[&str], upstream: &str) -> ir::TcpRoute {
    let origin = ObjectRef::new("TCPMapping", "default", name, 1);
    ir::TcpRoute {
        id: ir::RouteId::of(&origin),
        origin,
        co_origins: Vec::new(),
        listener: listener.into(),
        sni: sni.iter().map(|s| s.to_string()).collect(),
        upstreams: vec![ir::WeightedUpstream {
            upstream: upstream.into(),
            weight: 100,
        }],
        idle_timeout: Some(Duration::from_secs(300)),
        tls: None,
    }
}

#[test]
fn tls_passthrough_listener_picks_the_upstream_by_sni() {
    let mut t = Translator::new();
    let mut tls = sample::listener("tls", 8443);
    tls.protocol = ir::ListenerProtocol::Tls;
    let updates = t.translate([
        Change::UpsertListener(tls),
        Change::UpsertTcpRoute(tcp_route("db", "tls", &["db.example.com"], "default/db:5432")),
        Change::UpsertTcpRoute(tcp_route("fallback", "tls", &[], "default/web:443")),
        // Same SNI as `db`, later in id order: ignored rather than refused by Envoy.
        Change::UpsertTcpRoute(tcp_route("dup", "tls", &["db.example.com"], "default/other:1")),
    ]);
    let kinds: Vec<ResourceType> = updates.iter().map(ResourceUpdate::kind).collect();
    assert_eq!(
        kinds,
        [ResourceType::Listener],
        "a TLS listener has no route config"
    );
    let resource = one(&updates, ResourceType::Listener);
    assert_eq!(
        resource.references,
        [
            (ResourceType::Cluster, Arc::from("default/db:5432")),
            (ResourceType::Cluster, Arc::from("default/other:1")),
            (ResourceType::Cluster, Arc::from("default/web:443")),
        ]
    );
    let listener = Listener::decode(&*resource.body).expect("Listener");
    let chains: Vec<&str> = listener.filter_chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(chains, ["TCPMapping/default/db", "TCPMapping/default/fallback"]);
    golden("listener_tls_passthrough", &render_listener(listener));
}

#[test]
fn a_tcp_route_change_touches_only_its_listener() {
    let mut t = Translator::new();
    let mut tcp = sample::listener("tcp", 5432);
    tcp.protocol = ir::ListenerProtocol::Tcp;
    t.translate([
        Change::UpsertListener(tcp),
        Change::UpsertTcpRoute(tcp_route("db", "tcp", &[], "default/db:5432")),
    ]);
    let updates = t.translate([Change::UpsertTcpRoute(tcp_route(
        "db",
        "tcp",
        &[],
        "default/db2:5432",
    ))]);
    let kinds: Vec<ResourceType> = updates.iter().map(ResourceUpdate::kind).collect();
    assert_eq!(kinds, [ResourceType::Listener]);
    let updates = t.translate([Change::RemoveTcpRoute(tcp_route("db", "tcp", &[], "x").id)]);
    let listener = Listener::decode(&*one(&updates, ResourceType::Listener).body).expect("Listener");
    assert!(listener.filter_chains.is_empty());
}

#[test]
fn sync_upserts_what_differs_and_removes_what_is_gone() {
    let endpoint = |port| ir::Endpoint {
        address: std::net::Ipv4Addr::LOCALHOST.into(),
        port,
        ready: true,
        zone: None,
    };
    let desired = ir::Gateway::default()
        .with_listener(sample::listener("http", 8080))
        .with_upstream(sample::upstream("default/a:80"), vec![endpoint(1)])
        .with_route(sample::route("a", "*", "/a", "default/a:80"))
        .with_route(sample::route("b", "*", "/b", "default/a:80"));
    let mut t = Translator::new();
    let (first, errors) = t.sync(&desired);
    assert!(errors.is_empty());
    assert_eq!(
        first.len(),
        4,
        "listener, route config, cluster, endpoints: {first:?}"
    );
    assert!(
        t.sync(&desired).0.is_empty(),
        "the same Gateway again changes nothing"
    );

    let mut next = desired.clone();
    next.routes
        .remove(&ir::RouteId::of(&ObjectRef::new("Mapping", "default", "b", 1)));
    next.endpoints.insert("default/a:80".into(), vec![endpoint(2)]);
    let (updates, _) = t.sync(&next);
    let kinds: Vec<ResourceType> = updates.iter().map(ResourceUpdate::kind).collect();
    assert_eq!(kinds, [ResourceType::Endpoints, ResourceType::Route]);
    let rc = route_config(&updates);
    assert_eq!(names_in_order(&rc, "*"), ["Mapping/default/a"]);

    let (updates, _) = t.sync(&ir::Gateway::default());
    assert!(updates.iter().all(|u| matches!(u, ResourceUpdate::Remove(..))));
    assert_eq!(updates.len(), 4);
}

#[test]
fn sync_touched_sends_what_sync_sends_and_looks_only_at_what_it_names() {
    let endpoint = |port| ir::Endpoint {
        address: std::net::Ipv4Addr::LOCALHOST.into(),
        port,
        ready: true,
        zone: None,
    };
    let a = ir::RouteId::of(&ObjectRef::new("Mapping", "default", "a", 1));
    let b = ir::RouteId::of(&ObjectRef::new("Mapping", "default", "b", 1));
    let first = ir::Gateway::default()
        .with_listener(sample::listener("http", 8080))
        .with_upstream(sample::upstream("default/a:80"), vec![endpoint(1)])
        .with_route(sample::route("a", "*", "/a", "default/a:80"))
        .with_route(sample::route("b", "*", "/b", "default/a:80"));
    let mut next = first.clone();
    next.routes.remove(&b);
    next.endpoints.insert("default/a:80".into(), vec![endpoint(2)]);
    let touched = ir::Touched {
        routes: [b.clone()].into(),
        endpoints: ["default/a:80".to_string()].into(),
        ..ir::Touched::default()
    };

    // What was sent, comparable: kind, name, and the body of an upsert.
    type Sent = Vec<(ResourceType, String, Option<Vec<u8>>)>;
    let sent = |(updates, errors): (Vec<ResourceUpdate>, Vec<super::InvalidChange>)| -> Sent {
        assert!(errors.is_empty(), "{errors:?}");
        let sent: Sent = updates
            .iter()
            .map(|u| match u {
                ResourceUpdate::Upsert(r) => (r.kind, r.name.to_string(), Some(r.body.to_vec())),
                ResourceUpdate::Remove(kind, name) => (*kind, name.to_string(), None),
            })
            .collect();
        assert!(!sent.is_empty(), "a change that sends nothing proves nothing");
        sent
    };
    let (mut whole, mut followed) = (Translator::with_vhds(), Translator::with_vhds());
    assert_eq!(sent(whole.sync(&first)), sent(followed.sync(&first)));
    assert_eq!(
        sent(whole.sync(&next)),
        sent(followed.sync_touched(&next, &touched))
    );

    // What it does not name it does not look at: route a changed unnamed
    // stays as it was.
    let mut unnamed = next.clone();
    unnamed
        .routes
        .insert(a.clone(), sample::route("a", "*", "/other", "default/a:80"));
    let (updates, errors) = followed.sync_touched(&unnamed, &ir::Touched::default());
    assert!(updates.is_empty() && errors.is_empty(), "{updates:?} {errors:?}");
    let named = ir::Touched {
        routes: [a].into(),
        ..ir::Touched::default()
    };
    assert_eq!(
        sent(followed.sync_touched(&unnamed, &named)),
        sent(whole.sync(&unnamed))
    );
}

#[test]
fn over_vhds_a_route_change_sends_only_its_virtual_host() {
    let mut t = Translator::with_vhds();
    let first = t.translate(sample::gateway(
        8080,
        20,
        5,
        3,
        SocketAddr::from(([127, 0, 0, 1], 9000)),
    ));
    let mut vhosts: Vec<String> = upserts(&first)
        .iter()
        .filter(|r| r.kind == ResourceType::VirtualHost)
        .map(|r| r.name.to_string())
        .collect();
    vhosts.sort();
    assert_eq!(vhosts.len(), 6, "five hosts and the placeholder: {vhosts:?}");
    assert_eq!(vhosts[0], "http/host-0.example.com");
    assert_eq!(vhosts[5], "http/legate-vhds.invalid");
    let shell = route_config(&first);
    assert!(
        shell.virtual_hosts.is_empty() && shell.vhds.is_some(),
        "{shell:?}"
    );

    let updates = t.translate([Change::UpsertRoute(sample::route(
        &sample::route_name(7),
        &sample::host_name(7, 5),
        "/moved/",
        "default/svc-1:8080",
    ))]);
    let changed: Vec<(ResourceType, String)> = upserts(&updates)
        .iter()
        .map(|r| (r.kind, r.name.to_string()))
        .filter(|(k, n)| *k == ResourceType::VirtualHost && !n.ends_with("legate-vhds.invalid"))
        .collect();
    assert_eq!(
        changed,
        [(ResourceType::VirtualHost, "http/host-2.example.com".to_owned())]
    );
    let vh = upserts(&updates)
        .into_iter()
        .find(|r| &*r.name == "http/host-2.example.com")
        .expect("the changed virtual host");
    let decoded = VirtualHost::decode(&*vh.body).expect("a VirtualHost");
    assert_eq!(
        decoded.name, "http/host-2.example.com",
        "the name is the resource name"
    );
    assert_eq!(decoded.domains, ["host-2.example.com"]);
    assert!(vh.references.iter().all(|(k, _)| *k == ResourceType::Cluster));

    // The last route of a host goes: its virtual host goes.
    let mut t = Translator::with_vhds();
    t.translate(base().into_iter().chain([Change::UpsertRoute(sample::route(
        "only",
        "a.example.com",
        "/",
        "u",
    ))]));
    let updates = t.translate([Change::RemoveRoute(ir::RouteId::of(&ObjectRef::new(
        "Mapping", "default", "only", 1,
    )))]);
    assert!(updates.iter().any(
        |u| matches!(u, ResourceUpdate::Remove(ResourceType::VirtualHost, n) if &**n == "http/a.example.com")
    ));
}

#[test]
fn route_redirect_prefix_and_regex() {
    feature("redirect_prefix", |r| {
        r.action = ir::RouteAction::Redirect(ir::Redirect {
            path: Some(ir::RedirectPath::Prefix("/v2/".into())),
            status: 302,
            ..ir::Redirect::default()
        });
    });
    feature("redirect_regex", |r| {
        r.action = ir::RouteAction::Redirect(ir::Redirect {
            path: Some(ir::RedirectPath::Regex(ir::RegexRewrite {
                pattern: "^/api/v1/(.*)$".into(),
                substitution: "/api/v2/\\1".into(),
            })),
            status: 307,
            ..ir::Redirect::default()
        });
    });
}

/// Maps (auth context, JSON log fields) are written sorted: the same IR gives
/// the same bytes in any translator, so an unchanged listener is never re-sent.
#[test]
fn maps_encode_the_same_in_every_translator() {
    let observed = || ir::Observability {
        access_log: ir::AccessLog::default_json(),
        otlp_log: Some(ir::OtlpLog {
            upstream: "default/otel:4317".into(),
            service_name: "edge.default".into(),
        }),
        tracing: Some(ir::Tracing {
            upstream: "default/otel:4317".into(),
            provider: ir::Tracer::OpenTelemetry {
                service_name: "edge.default".into(),
            },
            sampling_percent: 100.0,
        }),
    };
    let encode = || {
        let mut t = Translator::new();
        let mut r = sample::route("ctx", "shop.example.com", "/api/", "default/echo:80");
        r.policy.auth_context = (0..16)
            .map(|i| (format!("key-{i}"), format!("value-{i}")))
            .collect();
        let updates = t.translate(
            base()
                .into_iter()
                .chain([Change::SetObservability(observed()), Change::UpsertRoute(r)]),
        );
        (
            one(&updates, ResourceType::Listener).body.to_vec(),
            one(&updates, ResourceType::Route).body.to_vec(),
        )
    };
    assert_eq!(encode(), encode());
}

#[test]
fn listener_access_log_and_tracing() {
    let mut t = Translator::new();
    let updates = t.translate(
        base()
            .into_iter()
            .chain([Change::SetObservability(ir::Observability {
                access_log: ir::AccessLog::default_json(),
                otlp_log: None,
                tracing: Some(ir::Tracing {
                    upstream: "default/otel:4317".into(),
                    provider: ir::Tracer::OpenTelemetry {
                        service_name: "edge.default".into(),
                    },
                    sampling_percent: 50.0,
                }),
            })]),
    );
    let resource = one(&updates, ResourceType::Listener);
    assert!(
        resource
            .references
            .contains(&(ResourceType::Cluster, Arc::from("default/otel:4317"))),
        "the collector's cluster is a dependency of the listener: {:?}",
        resource.references
    );
    let listener = Listener::decode(&*resource.body).expect("Listener");
    let hcm = listener.filter_chains[0].filters[0].clone();
    let Some(filter::ConfigType::TypedConfig(any)) = hcm.config_type else {
        panic!("the HCM has a typed config");
    };
    let hcm = HttpConnectionManager::decode(&*any.value).expect("HCM");
    let log = &hcm.access_log[0];
    let Some(access_log::ConfigType::TypedConfig(stdout)) = &log.config_type else {
        panic!("the access log has a typed config");
    };
    let stdout = StdoutAccessLog::decode(&*stdout.value).expect("the hand-encoded StdoutAccessLog decodes");
    let format = format!("{stdout:?}");
    for field in [
        "\"mapping\"",
        "%METADATA(ROUTE:legate:mapping)%",
        "\"status\"",
        "%RESPONSE_CODE%",
    ] {
        assert!(format.contains(field), "{field} missing from {format}");
    }
    let tracing = hcm.tracing.expect("tracing is on");
    assert_eq!(tracing.random_sampling.map(|p| p.value), Some(50.0));
    golden("listener_observability", &format!("{tracing:#?}\n"));

    let off = t.translate([Change::SetObservability(ir::Observability {
        access_log: ir::AccessLog::Off,
        otlp_log: None,
        tracing: None,
    })]);
    let listener = Listener::decode(&*one(&off, ResourceType::Listener).body).expect("Listener");
    let Some(filter::ConfigType::TypedConfig(any)) = listener.filter_chains[0].filters[0].config_type.clone()
    else {
        panic!("the HCM has a typed config");
    };
    let hcm = HttpConnectionManager::decode(&*any.value).expect("HCM");
    assert!(hcm.access_log.is_empty() && hcm.tracing.is_none());
}

#[test]
fn proxy_protocol_is_read_before_the_client_hello_and_trusted_hops_reach_the_hcm() {
    let mut t = Translator::new();
    let mut https = sample::listener("https", 8443);
    https.protocol = ir::ListenerProtocol::Https;
    https.proxy_protocol = true;
    let mut plain = sample::listener("http", 8080);
    plain.proxy_protocol = true;
    plain.trusted_hops = 2;
    let updates = t.translate([Change::UpsertListener(https), Change::UpsertListener(plain)]);
    let listeners: BTreeMap<String, Listener> = upserts(&updates)
        .iter()
        .filter(|r| r.kind == ResourceType::Listener)
        .map(|r| {
            let l = Listener::decode(&*r.body).expect("Listener");
            (l.name.clone(), l)
        })
        .collect();
    let filter_names = |name: &str| -> Vec<String> {
        listeners[name]
            .listener_filters
            .iter()
            .map(|f| f.name.clone())
            .collect()
    };
    assert_eq!(
        filter_names("https"),
        [
            "envoy.filters.listener.proxy_protocol",
            "envoy.filters.listener.tls_inspector"
        ],
        "the PROXY header precedes the ClientHello on the wire"
    );
    assert_eq!(filter_names("http"), ["envoy.filters.listener.proxy_protocol"]);
    let Some(filter::ConfigType::TypedConfig(any)) =
        listeners["http"].filter_chains[0].filters[0].config_type.clone()
    else {
        panic!("the HCM has a typed config");
    };
    let hcm = HttpConnectionManager::decode(&*any.value).expect("HCM");
    assert_eq!(hcm.xff_num_trusted_hops, 2);
}

#[test]
fn http_options_put_grpc_web_and_compressors_first_and_the_body_limit_before_the_router() {
    let mut t = Translator::new();
    let mut l = sample::listener("http", 8080);
    l.http = ir::HttpOptions {
        compression: Some(ir::Compression {
            algorithms: vec![ir::CompressionAlgorithm::Brotli, ir::CompressionAlgorithm::Gzip],
            content_types: vec!["application/json".into()],
            min_content_length: Some(100),
        }),
        grpc_web: true,
        max_request_body_bytes: Some(4096),
        server_name: Some("shop-edge".into()),
        error_responses: Vec::new(),
        ip_access: None,
    };
    let updates = t.translate([Change::UpsertListener(l)]);
    let names: Vec<(String, bool)> = http_filters(&updates);
    let named = |name: &str, disabled| (name.to_string(), disabled);
    assert_eq!(
        names,
        [
            named("envoy.filters.http.grpc_web", false),
            named("envoy.filters.http.compressor.brotli", false),
            named("envoy.filters.http.compressor.gzip", false),
            named("rbac/route", true),
            named("envoy.filters.http.cors", false),
            named("envoy.filters.http.local_ratelimit", false),
            named("envoy.filters.http.jwt_authn", true),
            named("envoy.filters.http.buffer", false),
            named("envoy.filters.http.router", false),
        ]
    );
    let listener = Listener::decode(&*one(&updates, ResourceType::Listener).body).expect("Listener");
    let Some(filter::ConfigType::TypedConfig(any)) = listener.filter_chains[0].filters[0].config_type.clone()
    else {
        panic!("the HCM has a typed config");
    };
    let hcm = HttpConnectionManager::decode(&*any.value).expect("HCM");
    assert_eq!(hcm.server_name, "shop-edge");
    assert!(hcm.local_reply_config.is_none(), "no error responses, no mappers");
    assert_eq!(
        hcm.server_header_transformation,
        envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::ServerHeaderTransformation::Overwrite as i32
    );
}

#[test]
fn error_responses_map_envoys_own_answers_by_status_and_keep_the_status() {
    let mut t = Translator::new();
    let mut l = sample::listener("http", 8080);
    l.http.error_responses = vec![ir::ErrorResponse {
        status: 404,
        body: "<h1>100% lost</h1>".into(),
        content_type: "text/html".into(),
    }];
    let updates = t.translate([Change::UpsertListener(l)]);
    let listener = Listener::decode(&*one(&updates, ResourceType::Listener).body).expect("Listener");
    let Some(filter::ConfigType::TypedConfig(any)) = listener.filter_chains[0].filters[0].config_type.clone()
    else {
        panic!("the HCM has a typed config");
    };
    let hcm = HttpConnectionManager::decode(&*any.value).expect("HCM");
    let mappers = hcm.local_reply_config.expect("a local reply config").mappers;
    assert_eq!(mappers.len(), 1);
    let mapper = format!("{:?}", mappers[0]);
    assert!(mappers[0].status_code.is_none(), "the status is kept: {mapper}");
    for part in [
        "default_value: 404",
        "InlineString(\"<h1>100% lost</h1>\")",
        "InlineString(\"%LOCAL_REPLY_BODY%\")",
        "content_type: \"text/html\"",
    ] {
        assert!(mapper.contains(part), "{part} in {mapper}");
    }
}

#[test]
fn a_route_can_turn_compression_off_and_bring_or_lift_a_body_limit() {
    let plain = translated_route(sample::route("plain", "*", "/plain/", "default/echo:80"));
    assert!(plain.typed_per_filter_config.is_empty(), "{plain:?}");
    let mut r = sample::route("events", "*", "/events/", "default/echo:80");
    r.policy.no_compression = true;
    r.policy.body_limit = Some(ir::BodyLimit::Bytes(100));
    let route = translated_route(r.clone());
    let mut keys: Vec<&str> = route.typed_per_filter_config.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "envoy.filters.http.buffer",
            "envoy.filters.http.compressor.brotli",
            "envoy.filters.http.compressor.gzip",
            "envoy.filters.http.compressor.zstd"
        ]
    );
    use envoy_types::pb::envoy::extensions::filters::http::buffer::v3::{BufferPerRoute, buffer_per_route};
    let buffer = |route: &Route| {
        BufferPerRoute::decode(&*route.typed_per_filter_config["envoy.filters.http.buffer"].value)
            .expect("BufferPerRoute")
            .r#override
    };
    assert!(matches!(
        buffer(&route),
        Some(buffer_per_route::Override::Buffer(b)) if b.max_request_bytes.map(|v| v.value) == Some(100)
    ));
    r.policy.body_limit = Some(ir::BodyLimit::Unlimited);
    assert_eq!(
        buffer(&translated_route(r)),
        Some(buffer_per_route::Override::Disabled(true))
    );
}

#[test]
fn tls_listener_terminates_for_a_tcp_route_with_a_certificate() {
    let mut t = Translator::new();
    let mut tls = sample::listener("tls", 8443);
    tls.protocol = ir::ListenerProtocol::Tls;
    let mut terminated = tcp_route("db", "tls", &["db.example.com"], "default/db:5432");
    terminated.tls = Some(ir::ServerTls {
        origin: ObjectRef::new("TLSContext", "default", "db-tls", 1),
        hostnames: vec!["db.example.com".into()],
        certificate: "default/db-cert".into(),
        client_ca: None,
        require_client_certificate: false,
        alpn: Vec::new(),
        cipher_suites: Vec::new(),
        min_version: None,
        max_version: None,
    });
    let updates = t.translate([
        Change::UpsertListener(tls),
        Change::UpsertTcpRoute(terminated),
        Change::UpsertTcpRoute(tcp_route("web", "tls", &["web.example.com"], "default/web:443")),
    ]);
    let resource = one(&updates, ResourceType::Listener);
    assert!(
        resource
            .references
            .contains(&(ResourceType::Secret, Arc::from("default/db-cert"))),
        "{:?}",
        resource.references
    );
    let listener = Listener::decode(&*resource.body).expect("Listener");
    let sockets: Vec<bool> = listener
        .filter_chains
        .iter()
        .map(|c| c.transport_socket.is_some())
        .collect();
    assert_eq!(sockets, [true, false], "db terminates TLS, web passes it through");
}

#[test]
fn a_tcp_route_with_several_upstreams_splits_connections_by_weight() {
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
    let mut t = Translator::new();
    let mut tcp = sample::listener("db", 5432);
    tcp.protocol = ir::ListenerProtocol::Tcp;
    let mut split = tcp_route("db", "db", &[], "default/db-a:5432");
    split.upstreams.push(ir::WeightedUpstream {
        upstream: "default/db-b:5432".into(),
        weight: 10,
    });
    split.upstreams[0].weight = 90;
    split.co_origins = vec![ObjectRef::new("TCPMapping", "default", "db-canary", 1)];
    let updates = t.translate([Change::UpsertListener(tcp), Change::UpsertTcpRoute(split)]);
    let resource = one(&updates, ResourceType::Listener);
    assert_eq!(
        resource.references,
        [
            (ResourceType::Cluster, Arc::from("default/db-a:5432")),
            (ResourceType::Cluster, Arc::from("default/db-b:5432")),
        ]
    );
    assert!(
        resource.origins().any(|o| o.object.name() == "db-canary"),
        "the canary's NACKs and ACKs are traced to it"
    );
    let listener = Listener::decode(&*resource.body).expect("Listener");
    let Some(filter::ConfigType::TypedConfig(any)) = listener.filter_chains[0].filters[0].config_type.clone()
    else {
        panic!("a tcp_proxy filter");
    };
    let proxy = TcpProxy::decode(&*any.value).expect("TcpProxy");
    let Some(tcp_proxy::ClusterSpecifier::WeightedClusters(weighted)) = proxy.cluster_specifier else {
        panic!("weighted clusters, got {:?}", proxy.cluster_specifier);
    };
    let weights: Vec<(String, u32)> = weighted
        .clusters
        .iter()
        .map(|c| (c.name.clone(), c.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("default/db-a:5432".to_string(), 90),
            ("default/db-b:5432".to_string(), 10)
        ]
    );
}

#[test]
fn with_the_same_match_a_host_beats_a_glob_which_beats_every_host() {
    let mut t = Translator::new();
    // Ids sort "a-any" < "b-glob" < "c-shop": only host specificity can put shop first.
    let mut any = sample::route("a-any", "*", "/s/", "default/any:80");
    any.hostnames = vec!["*".into()];
    let glob = sample::route("b-glob", "*.example.com", "/s/", "default/glob:80");
    let shop = sample::route("c-shop", "shop.example.com", "/s/", "default/shop:80");
    let updates = t.translate(base().into_iter().chain([
        Change::UpsertRoute(any),
        Change::UpsertRoute(glob),
        Change::UpsertRoute(shop),
    ]));
    let rc = route_config(&updates);
    let shop_vhost = rc
        .virtual_hosts
        .iter()
        .find(|v| v.domains.contains(&"shop.example.com".to_string()))
        .expect("a virtual host for shop.example.com");
    let names: Vec<&str> = shop_vhost.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Mapping/default/c-shop",
            "Mapping/default/b-glob",
            "Mapping/default/a-any"
        ]
    );
}

#[test]
fn the_access_log_names_a_mapping_by_namespace_and_name_and_other_owners_by_kind() {
    let owner = |r: ir::Route| {
        let route = translated_route(r);
        let metadata = route.metadata.expect("every route names its owner");
        let fields = &metadata.filter_metadata["legate"].fields;
        format!("{:?}", fields["mapping"].kind)
    };
    let mapping = sample::route("quote", "shop.example.com", "/api/", "default/echo:80");
    assert_eq!(owner(mapping.clone()), "Some(StringValue(\"default/quote\"))");
    let mut redirect = mapping;
    redirect.origin = ObjectRef::new("TLSContext", "default", "shop-tls", 1);
    assert_eq!(
        owner(redirect),
        "Some(StringValue(\"TLSContext/default/shop-tls\"))"
    );
}

fn auth_service(namespace: &str, name: &str) -> ir::AuthService {
    ir::AuthService {
        origin: ObjectRef::new("AuthService", namespace, name, 1),
        upstream: format!("{namespace}/auth:3000"),
        protocol: ir::AuthProtocol::Grpc,
        timeout: Duration::from_secs(1),
        failure_mode_allow: false,
        status_on_error: 403,
        include_body: None,
    }
}

fn rate_limit_service(namespace: &str, name: &str) -> ir::RateLimitService {
    ir::RateLimitService {
        origin: ObjectRef::new("RateLimitService", namespace, name, 1),
        upstream: format!("{namespace}/ratelimit:8081"),
        domain: namespace.to_owned(),
        timeout: Duration::from_millis(20),
        failure_mode_deny: false,
    }
}

/// A route of the `kind` object `namespace/name` on `shop.example.com`, on
/// the Gateway of namespace `default`.
fn route_of(kind: &str, namespace: &str, name: &str, prefix: &str) -> ir::Route {
    let mut r = sample::route(name, "shop.example.com", prefix, "default/echo:80");
    r.origin = ObjectRef::new(kind, namespace, name, 1);
    r.id = ir::RouteId::of(&r.origin);
    r.tenant = (namespace != "default").then(|| namespace.to_owned());
    r
}

/// The Gateway of namespace `default` with its own AuthService and
/// RateLimitService, and namespace `rogue`'s, over routes of both.
fn tenants() -> Vec<Change> {
    let mut limited = route_of("Mapping", "rogue", "limited", "/limited/");
    limited.policy.rate_limits = vec![vec![ir::RateLimitEntry::RemoteAddress]];
    limited.policy.auth_context = [("scope".to_string(), "rogue".to_string())].into();
    let mut open = route_of("Mapping", "rogue", "open", "/open/");
    open.policy.bypass_auth = true;
    base()
        .into_iter()
        .chain([
            Change::SetAuth(Some(auth_service("default", "auth"))),
            Change::SetRateLimit(Some(rate_limit_service("default", "limits"))),
            Change::SetNamespaceAuth([("rogue".to_string(), auth_service("rogue", "deny-all"))].into()),
            Change::SetNamespaceRateLimit(
                [("rogue".to_string(), rate_limit_service("rogue", "limits"))].into(),
            ),
            Change::UpsertRoute(route_of("Mapping", "default", "shop", "/shop/")),
            Change::UpsertRoute(route_of("Mapping", "rogue", "plain", "/plain/")),
            Change::UpsertRoute(open),
            Change::UpsertRoute(limited),
            Change::UpsertRoute(route_of("TLSContext", "rogue", "redirect", "/redirect/")),
        ])
        .collect()
}

fn http_filters(updates: &[ResourceUpdate]) -> Vec<(String, bool)> {
    let listener = Listener::decode(&*one(updates, ResourceType::Listener).body).expect("Listener");
    let Some(filter::ConfigType::TypedConfig(any)) = &listener.filter_chains[0].filters[0].config_type else {
        panic!("an HCM");
    };
    let hcm = HttpConnectionManager::decode(any.value.as_slice()).expect("HCM");
    hcm.http_filters
        .iter()
        .map(|f| (f.name.clone(), f.disabled))
        .collect()
}

#[test]
fn a_namespaces_services_are_filters_disabled_in_the_chain_before_the_gateway_wide_ones() {
    let mut t = Translator::new();
    let updates = t.translate(tenants());
    let filters = http_filters(&updates);
    let named = |name: &str, disabled| (name.to_string(), disabled);
    assert_eq!(
        filters,
        [
            named("rbac/route", true),
            named("envoy.filters.http.cors", false),
            named("envoy.filters.http.local_ratelimit", false),
            named("envoy.filters.http.jwt_authn", true),
            named("ext_authz/rogue", true),
            named("envoy.filters.http.ext_authz", false),
            named("ratelimit/rogue", true),
            named("envoy.filters.http.ratelimit", false),
            named("envoy.filters.http.buffer", true),
            named("envoy.filters.http.router", false),
        ]
    );
    // The listener calls their clusters and answers for them, as for the
    // Gateway-wide ones.
    let listener = one(&updates, ResourceType::Listener);
    for cluster in ["rogue/auth:3000", "rogue/ratelimit:8081", "default/auth:3000"] {
        assert!(
            listener
                .references
                .contains(&(ResourceType::Cluster, Arc::from(cluster))),
            "{cluster}: {:?}",
            listener.references
        );
    }
    let owners: Vec<String> = listener
        .origins
        .iter()
        .flat_map(|part| part.iter().map(|o| o.object.key()))
        .collect();
    for owner in ["AuthService/rogue/deny-all", "RateLimitService/rogue/limits"] {
        assert!(owners.contains(&owner.to_string()), "{owner}: {owners:?}");
    }
}

#[test]
fn a_mappings_route_enables_its_own_namespaces_filters_and_no_other() {
    use envoy_types::pb::envoy::config::route::v3::FilterConfig;
    use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{
        ExtAuthzPerRoute, ext_authz_per_route,
    };
    use envoy_types::pb::google::protobuf::Any;

    let mut t = Translator::new();
    let rc = route_config(&t.translate(tenants()));
    let per_filter = |name: &str| -> BTreeMap<String, Any> {
        let route = rc.virtual_hosts[0]
            .routes
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no route {name}"));
        route.typed_per_filter_config.clone().into_iter().collect()
    };
    let keys = |name: &str| per_filter(name).into_keys().collect::<Vec<_>>();
    let enabled = |any: &Any| {
        assert!(
            any.type_url.ends_with("/envoy.config.route.v3.FilterConfig"),
            "{any:?}"
        );
        let config = FilterConfig::decode(any.value.as_slice()).expect("a FilterConfig");
        // An empty `config` enables a disabled filter; a missing one Envoy refuses.
        assert_eq!(config.config, Some(Any::default()));
        assert!(!config.disabled && !config.is_optional);
    };

    enabled(&per_filter("Mapping/rogue/plain")["ext_authz/rogue"]);
    assert_eq!(keys("Mapping/rogue/plain"), ["ext_authz/rogue"]);
    // The Gateway's namespace has no filters of its own (its services are
    // Gateway-wide): its routes carry nothing.
    assert!(keys("Mapping/default/shop").is_empty());
    // bypassAuth skips every auth filter for this route alone.
    let open = per_filter("Mapping/rogue/open");
    assert_eq!(open.keys().collect::<Vec<_>>(), ["envoy.filters.http.ext_authz"]);
    let bypass = ExtAuthzPerRoute::decode(open["envoy.filters.http.ext_authz"].value.as_slice())
        .expect("ExtAuthzPerRoute");
    assert_eq!(
        bypass.r#override,
        Some(ext_authz_per_route::Override::Disabled(true))
    );
    // The context goes to both auth services; the rate limit filter only
    // where the route has rate limits.
    let limited = per_filter("Mapping/rogue/limited");
    assert_eq!(
        limited.keys().collect::<Vec<_>>(),
        [
            "envoy.filters.http.ext_authz",
            "ext_authz/rogue",
            "ratelimit/rogue"
        ]
    );
    assert_eq!(
        limited["ext_authz/rogue"],
        limited["envoy.filters.http.ext_authz"]
    );
    enabled(&limited["ratelimit/rogue"]);
    // Only Mappings: another object's route is the Gateway-wide filters' alone.
    assert!(keys("TLSContext/rogue/redirect").is_empty());
}

#[test]
fn a_namespace_service_coming_or_going_sends_the_listeners_and_no_route() {
    let mut t = Translator::new();
    let before = route_config(&t.translate(tenants()));
    for change in [
        Change::SetNamespaceAuth([("shop".to_string(), auth_service("shop", "auth"))].into()),
        Change::SetNamespaceRateLimit(BTreeMap::new()),
        Change::SetNamespaceAuth(BTreeMap::new()),
    ] {
        let updates = t.translate([change]);
        let kinds: Vec<ResourceType> = upserts(&updates).iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [ResourceType::Listener]);
    }
    let after =
        route_config(&t.translate([Change::UpsertRoute(route_of("Mapping", "rogue", "new", "/new/"))]));
    let plain = |rc: &RouteConfiguration| {
        rc.virtual_hosts[0]
            .routes
            .iter()
            .find(|r| r.name == "Mapping/rogue/plain")
            .cloned()
    };
    assert_eq!(plain(&before), plain(&after), "the route did not change");
    assert_eq!(
        http_filters(&t.translate([Change::UpsertListener(sample::listener("http", 8081))])).len(),
        8,
        "only the Gateway-wide filters are left"
    );
}

#[test]
fn enabling_its_namespaces_filter_costs_a_tenants_route_few_bytes() {
    let tenant = route_of("Mapping", "rogue", "plain", "/plain/");
    let mut own = tenant.clone();
    own.tenant = None;
    let with = super::route::encode_route(&tenant).body.len();
    let without = super::route::encode_route(&own).body.len();
    // The entry's key (`ext_authz/rogue`), the FilterConfig's type URL and
    // its empty `config`: nothing for the routes of the Gateway's namespace.
    let added = with - without;
    assert!(added <= 85, "{with} - {without} = {added} bytes");
}

#[test]
fn listener_with_a_namespaces_services() {
    let mut t = Translator::new();
    let updates = t.translate(tenants());
    let listener = Listener::decode(&*one(&updates, ResourceType::Listener).body).expect("Listener");
    golden("listener_namespace_services", &render_listener(listener));
    let rc = route_config(&updates);
    let route = rc.virtual_hosts[0]
        .routes
        .iter()
        .find(|r| r.name == "Mapping/rogue/limited")
        .cloned()
        .expect("the route");
    golden("route_namespace_filters", &render_route(route));
}

fn cidr(address: &str, prefix_len: u32) -> ir::Cidr {
    ir::Cidr {
        address: address.parse().expect("an address"),
        prefix_len,
    }
}

#[test]
fn route_ip_access() {
    feature("ip_access", |r| {
        r.policy.ip_access = Some(ir::IpAccess {
            allow: Some(vec![cidr("198.51.100.0", 24)]),
            deny: vec![cidr("198.51.100.9", 32), cidr("2001:db8::", 32)],
        });
    });
}

#[test]
fn a_gateways_address_lists_come_first_and_the_routes_filter_waits_disabled() {
    let mut t = Translator::new();
    let mut l = sample::listener("http", 8080);
    l.http.ip_access = Some(ir::IpAccess {
        allow: Some(Vec::new()),
        deny: vec![cidr("203.0.113.0", 24)],
    });
    let updates = t.translate([Change::UpsertListener(l)]);
    let names = http_filters(&updates);
    assert_eq!(
        names[..3],
        [
            ("rbac/gateway".to_string(), false),
            ("rbac/route".to_string(), true),
            ("envoy.filters.http.cors".to_string(), false),
        ]
    );
    let listener = Listener::decode(&*one(&updates, ResourceType::Listener).body).expect("Listener");
    golden("listener_ip_access", &render_listener(listener));
}

#[test]
fn a_listener_holds_the_token_providers_its_routes_require_while_any_does() {
    use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::JwtAuthentication;

    let jwt = |provider: &str| ir::JwtAuth {
        provider: provider.into(),
        issuer: "https://id.example.com".into(),
        audiences: vec!["api".into()],
        jwks_upstream: "shop/keys:80".into(),
        jwks_uri: "http://keys.shop.svc:80/jwks.json".into(),
        claim_to_headers: vec![("sub".into(), "x-user".into())],
        forward: false,
    };
    let with_jwt = |name: &str, provider: &str| {
        let mut r = sample::route(name, "shop.example.com", &format!("/{name}/"), "default/echo:80");
        r.policy.jwt = Some(jwt(provider));
        r
    };
    let providers = |updates: &[ResourceUpdate]| -> Vec<String> {
        let listener = Listener::decode(&*one(updates, ResourceType::Listener).body).expect("Listener");
        let Some(filter::ConfigType::TypedConfig(any)) = &listener.filter_chains[0].filters[0].config_type
        else {
            panic!("an HCM");
        };
        let hcm = HttpConnectionManager::decode(any.value.as_slice()).expect("HCM");
        let filter = hcm
            .http_filters
            .iter()
            .find(|f| f.name == "envoy.filters.http.jwt_authn")
            .expect("the jwt_authn filter is in every chain");
        assert!(filter.disabled, "only routes that require a token enable it");
        let Some(envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType::TypedConfig(any)) = &filter.config_type else {
            panic!("a typed config");
        };
        let config = JwtAuthentication::decode(any.value.as_slice()).expect("JwtAuthentication");
        let mut names: Vec<String> = config.providers.keys().cloned().collect();
        names.sort();
        let mut required: Vec<String> = config.requirement_map.keys().cloned().collect();
        required.sort();
        assert_eq!(names, required, "a requirement per provider");
        names
    };
    let mut t = Translator::new();
    let first = t.translate(base().into_iter().chain([
        Change::UpsertRoute(with_jwt("a", "shop/jwt-1")),
        Change::UpsertRoute(with_jwt("b", "shop/jwt-1")),
        Change::UpsertRoute(with_jwt("c", "rogue/jwt-2")),
    ]));
    assert_eq!(providers(&first), ["rogue/jwt-2", "shop/jwt-1"]);
    let listener = one(&first, ResourceType::Listener);
    assert!(
        listener
            .references
            .contains(&(ResourceType::Cluster, Arc::from("shop/keys:80"))),
        "the key set's cluster comes before the listener: {:?}",
        listener.references
    );
    let route = route_config(&first).virtual_hosts[0]
        .routes
        .iter()
        .find(|r| r.name.contains("/a"))
        .cloned()
        .expect("route a");
    golden("route_jwt", &render_route(route));

    // One of two routes of a provider goes: the listener stays as it was.
    let second = t.translate([Change::RemoveRoute(with_jwt("a", "shop/jwt-1").id)]);
    assert!(
        upserts(&second).iter().all(|r| r.kind != ResourceType::Listener),
        "no listener update while a route still requires the provider"
    );
    // The last goes: so does the provider.
    let third = t.translate([Change::RemoveRoute(with_jwt("b", "shop/jwt-1").id)]);
    assert_eq!(providers(&third), ["rogue/jwt-2"]);
}

#[test]
fn a_token_refused_for_its_audience_answers_401_first_and_with_the_gateways_body() {
    use envoy_types::pb::envoy::config::accesslog::v3::{access_log_filter, extension_filter};
    use envoy_types::pb::envoy::config::core::v3::data_source;
    use envoy_types::pb::envoy::extensions::access_loggers::filters::cel::v3::ExpressionFilter;

    use super::http_edge::local_reply_config;

    let mut http = ir::HttpOptions::default();
    assert!(local_reply_config(&http, false).is_none(), "nothing to map");
    let alone = local_reply_config(&http, true).expect("a listener with token checks maps one answer");
    assert_eq!(alone.mappers.len(), 1);
    let mapper = &alone.mappers[0];
    assert_eq!(mapper.status_code.as_ref().map(|c| c.value), Some(401));
    assert!(
        mapper.body.is_none(),
        "without a Gateway body, Envoy's reason stays"
    );
    assert!(
        mapper.headers_to_add.iter().any(|h| h
            .header
            .as_ref()
            .is_some_and(|h| h.key == "www-authenticate" && h.value.contains("invalid_token"))),
        "a challenge: {mapper:?}"
    );
    let Some(access_log_filter::FilterSpecifier::ExtensionFilter(filter)) =
        mapper.filter.as_ref().and_then(|f| f.filter_specifier.clone())
    else {
        panic!("a CEL filter: {mapper:?}");
    };
    let Some(extension_filter::ConfigType::TypedConfig(any)) = filter.config_type else {
        panic!("a typed config");
    };
    let cel = ExpressionFilter::decode(any.value.as_slice()).expect("ExpressionFilter");
    assert!(
        cel.expression.contains("Audiences_in_Jwt_are_not_allowed"),
        "only the audience refusal: {}",
        cel.expression
    );

    http.error_responses = [401, 404]
        .into_iter()
        .map(|status| ir::ErrorResponse {
            status,
            body: format!("body {status}"),
            content_type: "text/plain".into(),
        })
        .collect();
    let with_bodies = local_reply_config(&http, true).expect("mappers");
    assert_eq!(
        with_bodies.mappers.len(),
        3,
        "the audience's, then one per status"
    );
    let first = &with_bodies.mappers[0];
    assert_eq!(first.status_code.as_ref().map(|c| c.value), Some(401));
    assert_eq!(
        first.body.as_ref().and_then(|b| b.specifier.clone()),
        Some(data_source::Specifier::InlineString("body 401".into())),
        "the first match is the only one applied, so it carries the Gateway's 401 body"
    );
    assert!(
        with_bodies.mappers[1..].iter().all(|m| m.status_code.is_none()),
        "the Gateway's mappers keep the status"
    );
}
