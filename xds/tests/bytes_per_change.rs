//! What one route change costs on the wire, per Envoy: the bytes of the ADS
//! responses a stream that has applied everything is sent after one route
//! of the sample Gateway changes, with the route config over RDS (one
//! `RouteConfiguration` holding every virtual host) and over VHDS (one
//! `VirtualHost` resource per hostname, delta only).
//!
//! `cargo test -p legate-xds --test bytes_per_change -- --nocapture` prints
//! the table kept in `xds/BENCHMARKS.md`. The responses are the ones the ADS
//! server writes to the gRPC stream (each message is framed with 5 more
//! bytes, then HTTP/2).

use std::net::SocketAddr;

use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use legate_xds::cache::SnapshotCache;
use legate_xds::resource::ResourceType;
use legate_xds::sample;
use legate_xds::server::{Protocol, ProxyId, Request, Response, StreamState};
use legate_xds::translate::{Change, Translator};
use prost::Message;

const GATEWAY: &str = "default/gw";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    RdsSotw,
    RdsDelta,
    VhdsDelta,
}

/// Bytes sent to one Envoy for one route change, with the resources sent.
struct Sent {
    bytes: usize,
    resources: Vec<String>,
}

fn request(protocol: Protocol, kind: ResourceType, names: &[String], nonce: &str, version: &str) -> Request {
    match protocol {
        Protocol::Delta => Request::Delta(DeltaDiscoveryRequest {
            type_url: kind.type_url().into(),
            resource_names_subscribe: if nonce.is_empty() { names.to_vec() } else { vec![] },
            response_nonce: nonce.into(),
            ..DeltaDiscoveryRequest::default()
        }),
        Protocol::StateOfTheWorld => Request::Sotw(DiscoveryRequest {
            type_url: kind.type_url().into(),
            resource_names: names.to_vec(),
            response_nonce: nonce.into(),
            version_info: version.into(),
            ..DiscoveryRequest::default()
        }),
    }
}

/// ACKs `responses` (and whatever their ACKs release) as Envoy would; returns
/// every response seen.
fn ack_all(
    stream: &mut StreamState,
    protocol: Protocol,
    subscriptions: &[(ResourceType, Vec<String>)],
    responses: Vec<Response>,
) -> Vec<Response> {
    let mut seen = Vec::new();
    let mut pending = responses;
    while let Some(r) = pending.pop() {
        let kind = ResourceType::from_type_url(r.type_url()).expect("a type Legate serves");
        let names = subscriptions
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, n)| n.clone())
            .unwrap_or_default();
        let version = match &r {
            Response::Sotw(s) => s.version_info.clone(),
            Response::Delta(_) => String::new(),
        };
        let step = stream.on_request(request(protocol, kind, &names, r.nonce(), &version));
        seen.push(r);
        pending.extend(step.responses);
    }
    seen
}

fn wire_bytes(r: &Response) -> usize {
    match r {
        Response::Sotw(s) => s.encoded_len(),
        Response::Delta(d) => d.encoded_len(),
    }
}

fn resources(r: &Response) -> Vec<String> {
    let kind = ResourceType::from_type_url(r.type_url()).expect("a type Legate serves");
    match r {
        Response::Sotw(s) => s
            .resources
            .iter()
            .map(|_| format!("{kind} ({} in the response)", s.resources.len()))
            .take(1)
            .collect(),
        Response::Delta(d) => d
            .resources
            .iter()
            .map(|x| format!("{kind} {}", x.name))
            .chain(d.removed_resources.iter().map(|n| format!("{kind} -{n}")))
            .collect(),
    }
}

/// One Envoy that has applied the sample Gateway of `routes` routes on
/// `hosts` hosts; then route 5 changes its prefix.
fn one_route_change(mode: Mode, routes: usize, hosts: usize) -> Sent {
    let upstreams = (routes / 10).max(1);
    let endpoint = SocketAddr::from(([127, 0, 0, 1], 9000));
    let mut t = match mode {
        Mode::VhdsDelta => Translator::with_vhds(),
        Mode::RdsSotw | Mode::RdsDelta => Translator::new(),
    };
    let protocol = match mode {
        Mode::RdsSotw => Protocol::StateOfTheWorld,
        Mode::RdsDelta | Mode::VhdsDelta => Protocol::Delta,
    };
    let cache = SnapshotCache::new();
    cache.update(
        GATEWAY,
        &t.translate(sample::gateway(8080, routes, hosts, upstreams, endpoint)),
    );
    let snapshot = cache.snapshot(GATEWAY).expect("the Gateway is loaded");
    let proxy = ProxyId {
        node: "envoy-0".into(),
        gateway: GATEWAY.into(),
    };
    let mut stream = StreamState::new(protocol, proxy, snapshot);
    let mut subscriptions = vec![
        (ResourceType::Cluster, vec![]),
        (
            ResourceType::Endpoints,
            (0..upstreams).map(|u| format!("default/svc-{u}:8080")).collect(),
        ),
        (ResourceType::Listener, vec![]),
        (ResourceType::Route, vec!["http".to_owned()]),
    ];
    if mode == Mode::VhdsDelta {
        // Envoy subscribes to the route config's namespace.
        subscriptions.push((ResourceType::VirtualHost, vec!["http".to_owned()]));
    }
    for (kind, names) in &subscriptions {
        let step = stream.on_request(request(protocol, *kind, names, "", ""));
        ack_all(&mut stream, protocol, &subscriptions, step.responses);
    }

    let changed = sample::route(
        &sample::route_name(5),
        &sample::host_name(5, hosts),
        "/moved/",
        "default/svc-5:8080",
    );
    let snapshot = cache.update(GATEWAY, &t.translate([Change::UpsertRoute(changed)]));
    let step = stream.on_snapshot(snapshot);
    let sent = ack_all(&mut stream, protocol, &subscriptions, step.responses);
    Sent {
        bytes: sent.iter().map(wire_bytes).sum(),
        resources: sent.iter().flat_map(resources).collect(),
    }
}

#[test]
fn one_route_change_sends_one_virtual_host_over_vhds() {
    let mut table = String::from(
        "| routes | hosts | routes per host | RDS, state of the world | RDS, delta | VHDS (delta) | RDS / VHDS |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (routes, hosts) in [(1_000, 100), (1_000, 1_000), (10_000, 100), (10_000, 1_000)] {
        let sotw = one_route_change(Mode::RdsSotw, routes, hosts);
        let rds = one_route_change(Mode::RdsDelta, routes, hosts);
        let vhds = one_route_change(Mode::VhdsDelta, routes, hosts);
        assert_eq!(rds.resources, ["RDS http"]);
        assert_eq!(sotw.resources, ["RDS (1 in the response)"]);
        assert_eq!(
            vhds.resources,
            [format!("VHDS http/{}", sample::host_name(5, hosts))],
            "only the changed host's virtual host"
        );
        // Roughly the route config's 1/hosts share, plus the response's own
        // fields (type URL, nonce, versions, the resource's name).
        assert!(
            vhds.bytes * hosts < rds.bytes * 3,
            "{routes} routes on {hosts} hosts: VHDS {} bytes, RDS {} bytes",
            vhds.bytes,
            rds.bytes
        );
        table.push_str(&format!(
            "| {routes} | {hosts} | {} | {} | {} | {} | {:.0}× |\n",
            routes / hosts,
            sotw.bytes,
            rds.bytes,
            vhds.bytes,
            rds.bytes as f64 / vhds.bytes as f64
        ));
    }
    eprintln!("bytes sent to one Envoy for one route change:\n{table}");
}
