//! Model benchmarks: `cargo bench -p legate-model` (or `make bench`).
//!
//! How long judging a whole world takes: one Gateway admitting every
//! namespace, N Mappings from 10 namespaces over 100 hostnames, each routing to
//! one of 50 Services with an EndpointSlice of three ready endpoints. The
//! operator rebuilds the model on every change that can alter it, so this is
//! the cost of a change when the model is built whole; the incremental
//! model (`legate_model::Incremental`) is measured on the same worlds with
//! one Mapping, EndpointSlice, TLSContext or Gateway changed between builds.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use legate_model::{Incremental, Quarantine, World};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn object<T: DeserializeOwned>(value: Value) -> Arc<T> {
    Arc::new(serde_json::from_value(value).unwrap_or_else(|e| panic!("a valid object: {e}")))
}

fn mapping(i: usize, generation: i64, prefix: &str) -> Arc<legate_crds::Mapping> {
    // Hosts belong to teams (host h to team h % 10), so no two teams contest one.
    let host = i % 100;
    let team = host % 10;
    object(json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping",
        "metadata": { "name": format!("m-{i}"), "namespace": format!("team-{team}"),
                      "generation": generation, "creationTimestamp": "2026-01-01T00:00:01Z" },
        "spec": {
            "hostname": format!("host-{host}.example.com"),
            "prefix": format!("{prefix}/{i}/"),
            "service": format!("svc-{}", i % 5),
        },
    }))
}

fn slice(team: usize, s: usize, ready: usize) -> Arc<k8s_openapi::api::discovery::v1::EndpointSlice> {
    let name = format!("svc-{s}");
    let endpoints: Vec<Value> = (1..=ready)
        .map(|i| json!({ "addresses": [format!("10.{team}.{s}.{i}")], "conditions": { "ready": true } }))
        .collect();
    object(json!({
        "metadata": { "name": format!("{name}-1"), "namespace": format!("team-{team}"),
                      "labels": { "kubernetes.io/service-name": name } },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{ "name": "http", "port": 8080 }],
    }))
}

fn world(mappings: usize) -> World {
    let mut world = World::default();
    world.gateways.push(object(json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway",
        "metadata": { "name": "edge", "namespace": "infra", "generation": 1,
                      "creationTimestamp": "2026-01-01T00:00:00Z" },
        "spec": {
            "listeners": [{ "name": "http", "port": 8080, "protocol": "HTTP" }],
            "allowedRoutes": { "namespaces": { "from": "All" } },
        },
    })));
    for team in 0..10 {
        let namespace = format!("team-{team}");
        for s in 0..5 {
            let name = format!("svc-{s}");
            world.services.push(object(json!({
                "metadata": { "name": name, "namespace": namespace },
                "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] },
            })));
            world.endpoint_slices.push(slice(team, s, 3));
        }
    }
    world.mappings = (0..mappings).map(|i| mapping(i, 1, "/api")).collect();
    world
}

fn whole_model(c: &mut Criterion) {
    let mut group = c.benchmark_group("model build");
    group.sample_size(10);
    for n in [100, 1_000, 5_000] {
        let world = world(n);
        // Measure the real thing: every Mapping routed, none rejected.
        let routes = legate_model::build(&world)
            .gateways
            .get("infra/edge")
            .map_or(0, |g| g.routes.len());
        assert_eq!(routes, n, "every Mapping of the benchmark world routes");
        group.bench_function(format!("{n} mappings"), |b| {
            b.iter(|| black_box(legate_model::build(black_box(&world))))
        });
        // The incremental model's first build (and its fallback).
        group.bench_function(format!("{n} mappings, incremental from nothing"), |b| {
            b.iter(|| {
                let mut incremental = Incremental::new();
                black_box(
                    incremental
                        .build(black_box(&world), &Quarantine::new())
                        .verdicts
                        .len(),
                )
            })
        });
    }
    group.finish();
}

/// The incremental model between two worlds that differ by one object,
/// back and forth: each iteration is one change.
fn one_change(c: &mut Criterion) {
    let mut group = c.benchmark_group("incremental build");
    group.sample_size(20);
    let quarantine = Quarantine::new();
    for n in [1_000, 5_000] {
        let before = world(n);
        let mut after = before.clone();
        // A Mapping in the middle moves to another path.
        after.mappings[n / 2] = mapping(n / 2, 2, "/moved");
        let mut incremental = Incremental::new();
        assert_eq!(
            incremental.build(&after, &quarantine),
            &legate_model::build_with(&after, &quarantine),
            "the incremental model is the whole build"
        );
        let whole = incremental.whole_builds();
        let worlds = [&before, &after];
        let mut turn = 0;
        group.bench_function(format!("one Mapping changed, {n} mappings"), |b| {
            b.iter(|| {
                turn += 1;
                black_box(
                    incremental
                        .build(black_box(worlds[turn % 2]), &quarantine)
                        .verdicts
                        .len(),
                )
            })
        });
        assert_eq!(incremental.whole_builds(), whole, "no whole build on the way");

        let mut scaled = before.clone();
        // One Service of team 0 scales from three endpoints to two.
        scaled.endpoint_slices[0] = slice(0, 0, 2);
        let worlds = [&before, &scaled];
        group.bench_function(format!("one EndpointSlice changed, {n} mappings"), |b| {
            b.iter(|| {
                turn += 1;
                black_box(
                    incremental
                        .build(black_box(worlds[turn % 2]), &quarantine)
                        .verdicts
                        .len(),
                )
            })
        });
        assert_eq!(incremental.whole_builds(), whole, "no whole build on the way");

        // A TLSContext changes its hosts: each Gateway's frame is built again.
        let tls = |host: &str| {
            object(json!({
                "apiVersion": "legate.dev/v1alpha1", "kind": "TLSContext",
                "metadata": { "name": "edge-tls", "namespace": "infra", "generation": 1,
                              "creationTimestamp": "2026-01-01T00:00:00Z" },
                "spec": { "hosts": [host], "secret": "edge-cert" },
            }))
        };
        let mut one = before.clone();
        one.tls_contexts.push(tls("host-1.example.com"));
        let mut other = before.clone();
        other.tls_contexts.push(tls("host-2.example.com"));
        let worlds = [&one, &other];
        group.bench_function(format!("one TLSContext changed, {n} mappings"), |b| {
            b.iter(|| {
                turn += 1;
                black_box(
                    incremental
                        .build(black_box(worlds[turn % 2]), &quarantine)
                        .verdicts
                        .len(),
                )
            })
        });
        assert_eq!(
            incremental.build(&other, &quarantine),
            &legate_model::build_with(&other, &quarantine),
            "the incremental model is the whole build"
        );

        // The Gateway scales its fleet: its frame is built again.
        let mut scaled_fleet = before.clone();
        let mut gateway = (*before.gateways[0]).clone();
        gateway.spec.replicas = 3;
        gateway.metadata.generation = Some(2);
        scaled_fleet.gateways[0] = Arc::new(gateway);
        let worlds = [&before, &scaled_fleet];
        group.bench_function(format!("one Gateway's replicas changed, {n} mappings"), |b| {
            b.iter(|| {
                turn += 1;
                black_box(
                    incremental
                        .build(black_box(worlds[turn % 2]), &quarantine)
                        .verdicts
                        .len(),
                )
            })
        });
        assert_eq!(incremental.whole_builds(), whole, "no whole build on the way");
    }
    group.finish();
}

/// The same with every Mapping sending to one Service (a monolith behind
/// 5,000 routes): the cost must not grow with the Mappings that share it.
fn one_change_on_one_service(c: &mut Criterion) {
    let mut group = c.benchmark_group("incremental build, one Service");
    group.sample_size(20);
    let quarantine = Quarantine::new();
    let n = 5_000;
    let mut before = world(n);
    for (i, m) in before.mappings.iter_mut().enumerate() {
        let mut spec = m.spec.clone();
        spec.service = Some("svc-0.team-0".into());
        *m = Arc::new(legate_crds::Mapping {
            spec,
            ..(**m).clone()
        });
        assert_eq!(m.metadata.name.as_deref(), Some(format!("m-{i}").as_str()));
    }
    let mut changed = before.clone();
    changed.mappings[n / 2] = {
        let mut spec = changed.mappings[n / 2].spec.clone();
        spec.prefix = Some("/moved/".into());
        Arc::new(legate_crds::Mapping {
            spec,
            ..(*changed.mappings[n / 2]).clone()
        })
    };
    let mut scaled = before.clone();
    scaled.endpoint_slices[0] = slice(0, 0, 2);
    let mut incremental = Incremental::new();
    incremental.build(&before, &quarantine);
    let whole = incremental.whole_builds();
    let mut turn = 0;
    for (name, other) in [
        ("one Mapping changed", &changed),
        ("one EndpointSlice changed", &scaled),
    ] {
        let worlds = [&before, other];
        group.bench_function(format!("{name}, {n} mappings"), |b| {
            b.iter(|| {
                turn += 1;
                black_box(
                    incremental
                        .build(black_box(worlds[turn % 2]), &quarantine)
                        .verdicts
                        .len(),
                )
            })
        });
        assert_eq!(
            incremental.build(other, &quarantine),
            &legate_model::build_with(other, &quarantine),
            "the incremental model is the whole build"
        );
    }
    assert_eq!(incremental.whole_builds(), whole, "no whole build on the way");
    group.finish();
}

criterion_group!(benches, whole_model, one_change, one_change_on_one_service);
criterion_main!(benches);
