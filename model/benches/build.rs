//! Model benchmarks: `cargo bench -p legate-model` (or `make bench`).
//!
//! How long judging a whole world takes: one Gateway admitting every
//! namespace, N Mappings from 10 namespaces over 100 hostnames, each routing to
//! one of 50 Services with an EndpointSlice of three ready endpoints. The
//! operator rebuilds the model on every change that can alter it, so this is
//! the floor of a change's cost today.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use legate_model::World;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn object<T: DeserializeOwned>(value: Value) -> Arc<T> {
    Arc::new(serde_json::from_value(value).unwrap_or_else(|e| panic!("a valid object: {e}")))
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
            let endpoints: Vec<Value> = (1..=3)
                .map(|i| json!({ "addresses": [format!("10.{team}.{s}.{i}")], "conditions": { "ready": true } }))
                .collect();
            world.endpoint_slices.push(object(json!({
                "metadata": { "name": format!("{name}-1"), "namespace": namespace,
                              "labels": { "kubernetes.io/service-name": name } },
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": [{ "name": "http", "port": 8080 }],
            })));
        }
    }
    for i in 0..mappings {
        // Hosts belong to teams (host h to team h % 10), so no two teams contest one.
        let host = i % 100;
        let team = host % 10;
        world.mappings.push(object(json!({
            "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping",
            "metadata": { "name": format!("m-{i}"), "namespace": format!("team-{team}"),
                          "generation": 1, "creationTimestamp": "2026-01-01T00:00:01Z" },
            "spec": {
                "hostname": format!("host-{host}.example.com"),
                "prefix": format!("/api/{i}/"),
                "service": format!("svc-{}", i % 5),
            },
        })));
    }
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
    }
    group.finish();
}

criterion_group!(benches, whole_model);
criterion_main!(benches);
