//! Small builders of IR for tests and benchmarks: a listener, an upstream with
//! endpoints, a route from a host and prefix to an upstream, and whole
//! Gateways of a given size.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::ir::{self, ObjectRef};
use crate::translate::Change;

/// An HTTP listener named `name` on 127.0.0.1:`port`.
pub fn listener(name: &str, port: u16) -> ir::Listener {
    ir::Listener {
        name: name.to_owned(),
        origin: ObjectRef::new("Gateway", "default", "gw", 1),
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        protocol: ir::ListenerProtocol::Http,
        tls: vec![],
        trusted_hops: 0,
        proxy_protocol: false,
        http: ir::HttpOptions::default(),
    }
}

/// An upstream whose endpoints Legate pushes over EDS; `name` is
/// `namespace/service:port`, and the Service is its origin.
pub fn upstream(name: &str) -> ir::Upstream {
    let (namespace, rest) = name.split_once('/').unwrap_or(("default", name));
    let service = rest.split_once(':').map_or(rest, |(service, _)| service);
    ir::Upstream::endpoints(name, ObjectRef::new("Service", namespace, service, 1))
}

/// The endpoints change of an upstream with the given addresses.
pub fn endpoints(upstream: &str, addrs: &[SocketAddr]) -> Change {
    Change::SetEndpoints {
        upstream: upstream.to_owned(),
        endpoints: addrs
            .iter()
            .map(|a| ir::Endpoint {
                address: a.ip(),
                port: a.port(),
                ready: true,
                zone: None,
            })
            .collect(),
    }
}

/// A Mapping `default/name` on listener `http`: `host` + `prefix` → `upstream`.
pub fn route(name: &str, host: &str, prefix: &str, upstream: &str) -> ir::Route {
    let origin = ObjectRef::new("Mapping", "default", name, 1);
    ir::Route {
        id: ir::RouteId::of(&origin),
        origin,
        co_origins: vec![],
        listener: "http".into(),
        hostnames: if host == "*" {
            vec![]
        } else {
            vec![host.to_owned()]
        },
        tenant: None,
        precedence: 0,
        matcher: ir::RouteMatch {
            path: ir::PathMatch::Prefix(prefix.to_owned()),
            ..ir::RouteMatch::default()
        },
        action: ir::RouteAction::Forward(ir::Forward {
            upstreams: vec![ir::WeightedUpstream {
                upstream: upstream.to_owned(),
                weight: 100,
            }],
            ..ir::Forward::default()
        }),
        policy: ir::RoutePolicy::default(),
    }
}

/// The name of route `i` in [`gateway`].
pub fn route_name(i: usize) -> String {
    format!("route-{i}")
}

/// The hostname of route `i` among `hosts` hostnames in [`gateway`].
pub fn host_name(i: usize, hosts: usize) -> String {
    format!("host-{}.example.com", i % hosts.max(1))
}

/// The prefix of route `i` in [`gateway`].
pub fn prefix(i: usize) -> String {
    format!("/svc-{i}/")
}

/// A Gateway with one HTTP listener on `port` and `routes` routes spread over
/// `hosts` hostnames and `upstreams` upstreams, each upstream with one
/// endpoint (`endpoint`).
pub fn gateway(
    port: u16,
    routes: usize,
    hosts: usize,
    upstreams: usize,
    endpoint: SocketAddr,
) -> Vec<Change> {
    let upstreams = upstreams.max(1);
    let mut changes = vec![Change::UpsertListener(listener("http", port))];
    for u in 0..upstreams {
        let name = format!("default/svc-{u}:8080");
        changes.push(Change::UpsertUpstream(upstream(&name)));
        changes.push(endpoints(&name, &[endpoint]));
    }
    for i in 0..routes {
        changes.push(Change::UpsertRoute(route(
            &route_name(i),
            &host_name(i, hosts),
            &prefix(i),
            &format!("default/svc-{}:8080", i % upstreams),
        )));
    }
    changes
}
