//! Translation and cache benchmarks: `cargo bench -p legate-xds`.
//!
//! - full translation of 100, 1,000 and 10,000 routes over up to 1,000 hostnames
//!   (IR → encoded resources → snapshot);
//! - one route changed among 10,000 (RDS; VHDS; VHDS plus the whole route
//!   config for proxies that do not take VHDS);
//! - an endpoints-only change;
//! - a proxy's stream reacting to the one-route change (building the response).
//!
//! Results and the machine they were measured on are in `xds/BENCHMARKS.md`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use legate_xds::cache::SnapshotCache;
use legate_xds::resource::{ResourceType, ResourceUpdate};
use legate_xds::sample;
use legate_xds::server::{Protocol, ProxyId, Request, Response, StreamState};
use legate_xds::translate::{Change, Translator};

const GATEWAY: &str = "default/gw";

fn endpoint(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 8080))
}

/// A Gateway of `routes` routes over min(routes, 1,000) hostnames and one
/// upstream per ten routes.
fn gateway(routes: usize) -> Vec<Change> {
    sample::gateway(8080, routes, routes.min(1000), (routes / 10).max(1), endpoint(1))
}

fn loaded(routes: usize) -> (Translator, Arc<SnapshotCache>) {
    loaded_with(Translator::new(), routes)
}

fn loaded_with(mut t: Translator, routes: usize) -> (Translator, Arc<SnapshotCache>) {
    let cache = SnapshotCache::new();
    cache.update(GATEWAY, &t.translate(gateway(routes)));
    (t, cache)
}

/// Route 7 with a path that alternates, so that every iteration is a change.
fn changed_route(i: u64) -> Change {
    let prefix = if i.is_multiple_of(2) {
        "/changed-a/"
    } else {
        "/changed-b/"
    };
    Change::UpsertRoute(sample::route(
        &sample::route_name(7),
        &sample::host_name(7, 1000),
        prefix,
        "default/svc-0:8080",
    ))
}

fn full_translation(c: &mut Criterion) {
    let mut group = c.benchmark_group("full translation");
    group.sample_size(10);
    for routes in [100, 1_000, 10_000] {
        let changes = gateway(routes);
        group.bench_function(format!("{routes} routes"), |b| {
            b.iter_batched(
                || changes.clone(),
                |changes| {
                    let mut t = Translator::new();
                    let cache = SnapshotCache::new();
                    black_box(cache.update(GATEWAY, &t.translate(changes)));
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn one_route_changed(c: &mut Criterion) {
    let (mut t, cache) = loaded(10_000);
    let mut i = 0u64;
    let updates = t.translate([changed_route(i)]);
    report_bytes(&updates);
    c.bench_function("one route changed among 10,000", |b| {
        b.iter(|| {
            i += 1;
            let updates = t.translate([changed_route(i)]);
            black_box(cache.update(GATEWAY, &updates));
        })
    });
}

fn one_route_changed_over_vhds(c: &mut Criterion) {
    let (mut t, cache) = loaded_with(Translator::with_vhds(), 10_000);
    let mut i = 0u64;
    let updates = t.translate([changed_route(i)]);
    report_bytes(&updates);
    c.bench_function("one route changed among 10,000, over VHDS", |b| {
        b.iter(|| {
            i += 1;
            let updates = t.translate([changed_route(i)]);
            black_box(cache.update(GATEWAY, &updates));
        })
    });
}

/// The same, when some proxy does not take VHDS: the route config it gets
/// whole is assembled from the virtual hosts (once per snapshot).
fn one_route_changed_over_vhds_and_whole(c: &mut Criterion) {
    let (mut t, cache) = loaded_with(Translator::with_vhds(), 10_000);
    let mut i = 0u64;
    c.bench_function(
        "one route changed among 10,000, over VHDS, and the whole route config",
        |b| {
            b.iter(|| {
                i += 1;
                let snapshot = cache.update(GATEWAY, &t.translate([changed_route(i)]));
                black_box(snapshot.whole_route_configs());
            })
        },
    );
}

fn endpoints_only(c: &mut Criterion) {
    let (mut t, cache) = loaded(10_000);
    let mut i = 0u8;
    c.bench_function("endpoints-only change (10,000 routes, 1,000 upstreams)", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let updates = t.translate([sample::endpoints(
                "default/svc-3:8080",
                &[endpoint(i), endpoint(200)],
            )]);
            black_box(cache.update(GATEWAY, &updates));
        })
    });
}

/// A delta stream that has applied everything, then gets the one-route change:
/// the time to decide what to send and build the response.
fn stream_reaction(c: &mut Criterion) {
    stream_reaction_with(
        c,
        Translator::new(),
        "delta stream: build the response to one route changed among 10,000",
    );
    stream_reaction_with(
        c,
        Translator::with_vhds(),
        "delta stream over VHDS: build the response to one route changed among 10,000",
    );
}

fn stream_reaction_with(c: &mut Criterion, translator: Translator, title: &str) {
    let (mut t, cache) = loaded_with(translator, 10_000);
    let proxy = ProxyId {
        node: "envoy-0".into(),
        gateway: GATEWAY.into(),
    };
    let snapshot = cache.snapshot(GATEWAY).expect("the Gateway is loaded");
    let mut stream = StreamState::new(Protocol::Delta, proxy, snapshot);
    for (kind, names) in [
        (ResourceType::Cluster, vec![]),
        (
            ResourceType::Endpoints,
            (0..1000).map(|u| format!("default/svc-{u}:8080")).collect(),
        ),
        (ResourceType::Listener, vec![]),
        (ResourceType::Route, vec!["http".to_owned()]),
        // Over VHDS, Envoy subscribes to the route config's namespace.
        (ResourceType::VirtualHost, vec!["http".to_owned()]),
    ] {
        subscribe_and_ack(&mut stream, kind, names);
    }
    let mut i = 0u64;
    c.bench_function(title, |b| {
        b.iter(|| {
            i += 1;
            let snapshot = cache.update(GATEWAY, &t.translate([changed_route(i)]));
            let step = stream.on_snapshot(snapshot);
            black_box(&step);
            for r in &step.responses {
                let kind = ResourceType::from_type_url(r.type_url()).expect("a known type");
                ack(&mut stream, kind, r.nonce());
            }
        })
    });
}

fn subscribe_and_ack(stream: &mut StreamState, kind: ResourceType, names: Vec<String>) {
    let step = stream.on_request(Request::Delta(
        envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest {
            type_url: kind.type_url().into(),
            resource_names_subscribe: names,
            ..Default::default()
        },
    ));
    for r in step.responses {
        let kind = ResourceType::from_type_url(r.type_url()).expect("a known type");
        ack(stream, kind, r.nonce());
    }
}

fn ack(stream: &mut StreamState, kind: ResourceType, nonce: &str) {
    let step = stream.on_request(Request::Delta(
        envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest {
            type_url: kind.type_url().into(),
            response_nonce: nonce.into(),
            ..Default::default()
        },
    ));
    for r in step.responses {
        if let Response::Delta(d) = &r {
            let kind = ResourceType::from_type_url(&d.type_url).expect("a known type");
            ack(stream, kind, &d.nonce);
        }
    }
}

/// Prints what a change sends to each Envoy: the resources whose version
/// changed (an unchanged VHDS route config shell is not sent again).
fn report_bytes(updates: &[ResourceUpdate]) {
    for u in updates {
        if let ResourceUpdate::Upsert(r) = u
            && !(r.kind == ResourceType::Route && r.body.len() < 100)
        {
            eprintln!(
                "one route changed among 10,000: {} {} of {} bytes is pushed to each Envoy",
                r.kind,
                r.name,
                r.body.len()
            );
        }
    }
}

criterion_group!(
    benches,
    full_translation,
    one_route_changed,
    one_route_changed_over_vhds,
    one_route_changed_over_vhds_and_whole,
    endpoints_only,
    stream_reaction
);
criterion_main!(benches);
