//! The resolver's naming rule and what it records, reference by reference.

use legate_crds::conditions::reasons;
use legate_xds::ir::{self, ObjectRef};

use super::*;
use crate::tests::{service, slice};

fn world() -> World {
    World {
        services: vec![service("shop", "quote")],
        endpoint_slices: vec![slice("shop", "quote", &[("198.18.0.2", true)])],
        ..World::default()
    }
}

fn origin() -> ObjectRef {
    ObjectRef::new("AuthService", "shop", "auth", 1)
}

fn reference<'a>(service: &'a str, origin: &'a ObjectRef, settings: ClusterSettings) -> Reference<'a> {
    Reference {
        service,
        origin,
        settings,
        tls: None,
    }
}

fn resolve_in(world: &World, config: &mut ir::Gateway, r: &Reference<'_>) -> Result<Resolved, RefError> {
    resolve(world, &ServiceIndex::new(world), r, config)
}

#[test]
fn a_service_port_is_named_after_the_service_and_other_settings_get_their_own_cluster() {
    let (world, origin) = (world(), origin());
    let mut config = ir::Gateway::default();
    let plain = resolve_in(
        &world,
        &mut config,
        &reference("quote", &origin, ClusterSettings::default()),
    )
    .expect("resolves");
    assert_eq!(plain.upstream, "shop/quote:80");
    assert!(plain.trouble.is_none());
    let grpc = resolve_in(
        &world,
        &mut config,
        &reference("quote:http", &origin, ClusterSettings::http2()),
    )
    .expect("resolves");
    assert_eq!(
        grpc.upstream, "shop/quote:80~e64a1151",
        "the destination, then the hash of the settings' canonical key; a change here renames clusters"
    );
    assert_eq!(
        config.upstreams[&grpc.upstream].protocol,
        ir::UpstreamProtocol::Http2
    );
    assert_eq!(
        config.upstreams["shop/quote:80"].protocol,
        ir::UpstreamProtocol::Http1,
        "one reference's settings never change another's cluster"
    );
    for name in ["shop/quote:80", "shop/quote:80~e64a1151"] {
        assert_eq!(config.endpoints[name].len(), 1, "{name}");
    }
}

#[test]
fn a_missing_service_gets_the_name_it_will_have_and_no_endpoints() {
    let origin = origin();
    let mut config = ir::Gateway::default();
    let r = reference("ghost:8080", &origin, ClusterSettings::default());
    let resolved = resolve_in(&World::default(), &mut config, &r).expect("an upstream");
    assert_eq!(resolved.upstream, "shop/ghost:8080");
    assert!(matches!(resolved.trouble, Some(RefError::ServiceNotFound { .. })));
    assert!(config.endpoints["shop/ghost:8080"].is_empty());
    let r = reference("ghost", &origin, ClusterSettings::default());
    let resolved = resolve_in(&World::default(), &mut config, &r).expect("an upstream");
    assert_eq!(resolved.upstream, "shop/ghost:80", "no port named: 80");
}

#[test]
fn urls_are_dns_upstreams_and_https_verifies_the_host() {
    let origin = origin();
    let mut config = ir::Gateway::default();
    let r = reference("http://api.example.com/v1", &origin, ClusterSettings::default());
    let plain = resolve_in(&World::default(), &mut config, &r).expect("resolves");
    assert_eq!(plain.upstream, "dns/api.example.com:80");
    let r = reference("https://api.example.com", &origin, ClusterSettings::default());
    let tls = resolve_in(&World::default(), &mut config, &r).expect("resolves");
    assert!(
        tls.upstream.starts_with("dns/api.example.com:443~"),
        "{}",
        tls.upstream
    );
    let upstream = &config.upstreams[&tls.upstream];
    assert_eq!(
        upstream.tls.as_ref().and_then(|t| t.sni.as_deref()),
        Some("api.example.com")
    );
    assert_eq!(
        upstream.discovery,
        ir::Discovery::Dns {
            hostname: "api.example.com".into(),
            port: 443
        }
    );
}

#[test]
fn a_reference_that_resolves_to_nothing_leaves_the_configuration_alone_or_gets_an_empty_upstream() {
    let (world, origin) = (world(), origin());
    let mut config = ir::Gateway::default();
    let r = reference("quote:9999", &origin, ClusterSettings::http2());
    let e = resolve_in(&world, &mut config, &r).expect_err("no such port");
    assert_eq!(e.reason(), reasons::BACKEND_NOT_FOUND);
    assert_eq!(config, ir::Gateway::default());

    let mut verdict = Verdict::new(origin.clone());
    let index = ServiceIndex::new(&world);
    let name = resolve_or_empty(&world, &index, &r, "requests get 403", &mut config, &mut verdict);
    assert!(name.starts_with("unresolved/AuthService/shop/auth~"), "{name}");
    assert!(config.endpoints[&name].is_empty());
    assert_eq!(config.upstreams[&name].protocol, ir::UpstreamProtocol::Http2);
    assert_eq!(
        verdict.resolved_refs,
        Err(Problem::new(
            reasons::BACKEND_NOT_FOUND,
            "Service quote has no port 9999; its ports are [80 (http)]; requests get 403"
        ))
    );

    let mut verdict = Verdict::new(origin.clone());
    let r = reference("quote:", &origin, ClusterSettings::default());
    let name = resolve_or_empty(&world, &index, &r, "requests get 403", &mut config, &mut verdict);
    assert_eq!(name, "unresolved/AuthService/shop/auth");
    assert_eq!(
        verdict.accepted.map_err(|p| p.reason),
        Err(reasons::INVALID),
        "a reference that does not parse is Invalid"
    );
}
