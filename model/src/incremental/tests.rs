//! The incremental model against the whole build: after every change, the
//! same answer. Over every golden world with each object taken away and put
//! back (and, in `tests_walk`, over random walks of changes).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use legate_crds::Mapping;
use legate_xds::ir::Touched;
use serde_json::json;

use super::tests_walk::{Dice, gateway, random_mapping};
use crate::snapshot::Reader;
use crate::{Incremental, Model, Quarantine, Reach, World, build_with};

/// Panics with the first part where `got` differs from `want`.
fn assert_same(got: &Model, want: &Model, step: &str) {
    if got == want {
        return;
    }
    let gateways: Vec<&String> = want.gateways.keys().collect();
    assert_eq!(
        got.gateways.keys().collect::<Vec<_>>(),
        gateways,
        "{step}: the Gateways"
    );
    for (key, config) in &want.gateways {
        let mine = &got.gateways[key];
        assert_eq!(mine.listeners, config.listeners, "{step}: {key} listeners");
        assert_eq!(mine.routes, config.routes, "{step}: {key} routes");
        assert_eq!(mine.upstreams, config.upstreams, "{step}: {key} upstreams");
        assert_eq!(mine.endpoints, config.endpoints, "{step}: {key} endpoints");
        assert_eq!(mine.secrets, config.secrets, "{step}: {key} secrets");
        assert_eq!(mine, config, "{step}: {key}");
    }
    for (key, verdict) in &want.verdicts {
        assert_eq!(got.verdicts.get(key), Some(verdict), "{step}: verdict of {key}");
    }
    assert_eq!(got.verdicts, want.verdicts, "{step}: verdicts");
}

pub(super) fn check(incremental: &mut Incremental, world: &World, quarantine: &Quarantine, step: &str) {
    let want = build_with(world, quarantine);
    let before = incremental.model().clone();
    assert_same(incremental.build(world, quarantine), &want, step);
    assert_reach_names_every_difference(&before, &want, incremental.reach(), step);
}

/// Panics when an entry differs between `before` and `after` and the
/// build's [`Reach`] does not name it: whoever passes on only what it
/// names would then keep a stale entry.
fn assert_reach_names_every_difference(before: &Model, after: &Model, reach: &Reach, step: &str) {
    let Reach::Entries { verdicts, gateways } = reach else {
        return;
    };
    let keys = before.verdicts.keys().chain(after.verdicts.keys());
    for key in keys {
        if before.verdicts.get(key) != after.verdicts.get(key) {
            assert!(
                verdicts.contains(key),
                "{step}: the verdict of {key} changed unnamed"
            );
        }
    }
    assert_eq!(
        before.gateways.keys().collect::<Vec<_>>(),
        after.gateways.keys().collect::<Vec<_>>(),
        "{step}: Gateways came or went in a followed build"
    );
    for (key, now) in &after.gateways {
        let was = &before.gateways[key];
        let none = Touched::default();
        let touched = gateways.get(key).unwrap_or(&none);
        fn unnamed<'a, K: Ord + Clone, V: PartialEq>(
            was: &'a BTreeMap<K, V>,
            now: &'a BTreeMap<K, V>,
            named: &'a BTreeSet<K>,
        ) -> Vec<&'a K> {
            was.keys()
                .chain(now.keys())
                .filter(|k| was.get(*k) != now.get(*k) && !named.contains(*k))
                .collect()
        }
        let routes = unnamed(&was.routes, &now.routes, &touched.routes);
        assert!(
            routes.is_empty(),
            "{step}: {key}: routes changed unnamed: {routes:?}"
        );
        let upstreams = unnamed(&was.upstreams, &now.upstreams, &touched.upstreams);
        assert!(
            upstreams.is_empty(),
            "{step}: {key}: upstreams changed unnamed: {upstreams:?}"
        );
        let endpoints = unnamed(&was.endpoints, &now.endpoints, &touched.endpoints);
        assert!(
            endpoints.is_empty(),
            "{step}: {key}: endpoints changed unnamed: {endpoints:?}"
        );
        let secrets = unnamed(&was.secrets, &now.secrets, &touched.secrets);
        assert!(
            secrets.is_empty(),
            "{step}: {key}: secrets changed unnamed: {secrets:?}"
        );
        let frame_equal = was.listeners == now.listeners
            && was.tcp_routes == now.tcp_routes
            && was.auth == now.auth
            && was.rate_limit == now.rate_limit
            && was.observability == now.observability;
        assert!(
            frame_equal || touched.frame,
            "{step}: {key}: the listeners or Gateway-wide parts changed unnamed"
        );
    }
}

/// Each golden world, then each Mapping quarantined and released, and each
/// object of every kind taken away and put back in turn.
#[test]
fn every_golden_world_with_each_object_taken_away_and_back() {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut cases: Vec<_> = std::fs::read_dir(&testdata)
        .expect("model/testdata is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".in.yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() > 30, "the golden cases: {cases:?}");
    for case in cases {
        let mut reader = Reader::new(std::net::IpAddr::from([0, 0, 0, 0]));
        reader
            .read_file(&case)
            .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        let world = reader.finish().world;
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let none = Quarantine::new();
        let mut incremental = Incremental::new();
        check(&mut incremental, &world, &none, &name);
        for i in 0..world.mappings.len() {
            let mut without = world.clone();
            let gone = without.mappings.remove(i);
            check(&mut incremental, &without, &none, &format!("{name} without {i}"));
            check(&mut incremental, &world, &none, &format!("{name} back {i}"));
            let reference = crate::object_ref(gone.as_ref());
            let mut quarantine = Quarantine::new();
            for gateway in &world.gateways {
                let gateway = crate::gateway_key(gateway);
                quarantine.insert(&gateway, &reference.key(), reference.generation());
            }
            check(
                &mut incremental,
                &world,
                &quarantine,
                &format!("{name} quarantined {i}"),
            );
        }
        // Every other kind, one object at a time: Services, EndpointSlices
        // and Secrets follow; the rest build each Gateway's frame again.
        let kinds: [(&str, ListOf); 8] = [
            ("Service", |w| &mut w.services),
            ("EndpointSlice", |w| &mut w.endpoint_slices),
            ("Secret", |w| &mut w.secrets),
            ("Namespace", |w| &mut w.namespaces),
            ("TLSContext", |w| &mut w.tls_contexts),
            ("AuthService", |w| &mut w.auth_services),
            ("RateLimitService", |w| &mut w.rate_limit_services),
            ("TCPMapping", |w| &mut w.tcp_mappings),
        ];
        for (kind, list) in kinds {
            let mut i = 0;
            loop {
                let mut without = world.clone();
                if !list(&mut without).remove_at(i) {
                    break;
                }
                check(
                    &mut incremental,
                    &without,
                    &none,
                    &format!("{name} without {kind} {i}"),
                );
                check(
                    &mut incremental,
                    &world,
                    &none,
                    &format!("{name} {kind} {i} back"),
                );
                i += 1;
            }
        }
        check(&mut incremental, &world, &none, &format!("{name} at last"));
    }
}

/// One kind's list in a world.
type ListOf = fn(&mut World) -> &mut dyn Without;

/// A list of objects one can be taken from.
trait Without {
    /// Removes the object at `at`; `false` past the end.
    fn remove_at(&mut self, at: usize) -> bool;
}

impl<K> Without for Vec<Arc<K>> {
    fn remove_at(&mut self, at: usize) -> bool {
        if at >= self.len() {
            return false;
        }
        self.remove(at);
        true
    }
}

/// Objects listed again as new `Arc`s at the same resourceVersion are not
/// changes, nor is a status written on one of Legate's objects (the same
/// generation); another generation is.
#[test]
fn objects_listed_again_or_with_a_new_status_are_not_changes() {
    let mut dice = Dice(7);
    fn versioned<K: Clone + kube::Resource>(object: &Arc<K>, version: &str) -> Arc<K> {
        let mut object = (**object).clone();
        let meta = object.meta_mut();
        meta.uid = Some(format!("uid-{}", meta.name.clone().unwrap_or_default()));
        meta.resource_version = Some(version.to_string());
        Arc::new(object)
    }
    let mappings: Vec<Arc<Mapping>> = (0..6)
        .map(|i| versioned(&random_mapping(&mut dice, i, 1), "1"))
        .collect();
    let edge = gateway(
        "edge",
        json!({ "from": "All" }),
        json!([{ "name": "http", "port": 8080, "protocol": "HTTP" }]),
    );
    let world = World {
        gateways: vec![versioned(&edge, "1")],
        mappings,
        ..World::default()
    };
    let none = Quarantine::new();
    let mut incremental = Incremental::new();
    check(&mut incremental, &world, &none, "first");
    let mut relisted = world.clone();
    relisted.mappings = world.mappings.iter().map(|m| versioned(m, "1")).collect();
    check(&mut incremental, &relisted, &none, "relisted");
    // The operator writes every object's status: new resourceVersions.
    let mut programmed = relisted.clone();
    programmed.mappings = relisted.mappings.iter().map(|m| versioned(m, "2")).collect();
    programmed.gateways = vec![versioned(&edge, "2")];
    check(&mut incremental, &programmed, &none, "status written");
    let mut changed = programmed.clone();
    changed.mappings[2] = versioned(&random_mapping(&mut dice, 2, 2), "3");
    check(&mut incremental, &changed, &none, "changed");
    assert_eq!(incremental.whole_builds(), 1, "only the first build is whole");
}

/// The operator keeps one across `.await`s and may share it.
#[test]
fn the_incremental_model_can_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Incremental>();
}
