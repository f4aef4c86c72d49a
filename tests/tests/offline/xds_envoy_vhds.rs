//! Routes over VHDS (delta ADS, one VirtualHost resource per hostname)
//! against the real Envoy: a large Gateway answers on every host, hosts come
//! and go, make-before-break holds between clusters and virtual hosts, an
//! Envoy that reconnects or restarts gets everything, and the ACKs of
//! virtual hosts make their objects `Programmed`; an Envoy on
//! state-of-the-world ADS gets whole route configs. (The basics, one change
//! sending one virtual host and the 10,000-route scale, are in
//! `xds_envoy.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use legate_tests::http::HttpClient;
use legate_tests::net::{eventually, free_port, loopback};
use legate_tests::{EchoServer, Envoy};
use legate_xds::bootstrap::BootstrapConfig;
use legate_xds::cache::SnapshotCache;
use legate_xds::ir::{self, ObjectRef};
use legate_xds::resource::ResourceType;
use legate_xds::sample;
use legate_xds::server::{Ack, Protocol, ProxyTracker, XdsEvent};
use legate_xds::translate::{Change, Translator};

use crate::xds_rig::*;

/// Every route of the sample Gateway answers 200, from the right route.
async fn every_route_answers(rig: &Rig, routes: usize, hosts: usize) {
    let mut wrong = Vec::new();
    for i in 0..routes {
        let host = sample::host_name(i, hosts);
        let path = format!("{}req", sample::prefix(i));
        match rig.get(&host, &path).await {
            Ok(r) if r.status == 200 && r.echo().path == path => {}
            other => wrong.push(format!("{host}{path}: {other:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {routes} routes did not answer, e.g. {:?}\n{}",
        wrong.len(),
        &wrong[..wrong.len().min(3)],
        rig.envoy.log_tail()
    );
}

fn sample_gateway(
    routes: usize,
    hosts: usize,
    upstreams: usize,
    echo: &EchoServer,
) -> impl FnOnce(u16) -> Vec<Change> {
    let endpoint = echo.addr();
    move |port| {
        // The listener comes from the rig.
        sample::gateway(port, routes, hosts, upstreams, endpoint)
            .into_iter()
            .skip(1)
            .collect()
    }
}

/// The next ACK or NACK of the rig's Envoy, as `"VHDS +http/a"` (upsert) or
/// `"CDS -default/b:80"` (removal) lines, until `last` is among them.
async fn acks_until(rig: &mut Rig, last: &str) -> Vec<String> {
    acks_after(rig, 0, last).await
}

/// Like [`acks_until`], counting only ACKs of snapshots after `serial`
/// (what a reconnected proxy announced is reported at that serial).
async fn acks_after(rig: &mut Rig, serial: u64, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let event = tokio::time::timeout_at(deadline, rig.events.recv())
            .await
            .unwrap_or_else(|_| panic!("no ACK of {last:?}; saw {seen:?}\n{}", rig.envoy.log_tail()))
            .expect("the event stream is open");
        match event {
            XdsEvent::Acked(ack) if ack.serial > serial => seen.extend(ack_lines(&ack)),
            XdsEvent::Rejected(r) => panic!("Envoy refused {:?}: {}", r.resources, r.message),
            _ => {}
        }
        if seen.iter().any(|s| s == last) {
            return seen;
        }
    }
}

fn ack_lines(ack: &Ack) -> Vec<String> {
    let upserts = ack.resources.iter().map(|(n, _)| format!("{} +{n}", ack.kind));
    let removals = ack.removed.iter().map(|n| format!("{} -{n}", ack.kind));
    upserts.chain(removals).collect()
}

fn position(lines: &[String], line: &str) -> usize {
    lines
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("{line:?} is not among {lines:?}"))
}

/// Sends GET `host` + `path` in a loop until `stop`; returns how many answers
/// had an allowed status, and the others.
fn spawn_host_loop(
    rig: &Rig,
    host: &'static str,
    path: &'static str,
    allowed: &'static [u16],
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    let url = format!("http://{}{path}", loopback(rig.http_port));
    tokio::spawn(async move {
        let client = HttpClient::http1();
        let (mut ok, mut failures) = (0, Vec::new());
        // Bounded: the test stops it long before.
        for _ in 0..100_000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match client.get(&url, Some(host)).await {
                Ok(r) if allowed.contains(&r.status.as_u16()) => ok += 1,
                Ok(r) => failures.push(format!("{} {}", r.status, r.text())),
                Err(e) => failures.push(e),
            }
        }
        (ok, failures)
    })
}

/// A Gateway of many hosts comes up over VHDS with every route answering.
#[tokio::test]
async fn over_vhds_two_thousand_routes_on_a_thousand_hosts_all_answer() {
    let echo = EchoServer::start("echo").await;
    let rig = Rig::start_vhds(sample_gateway(2_000, 1_000, 50, &echo)).await;
    every_route_answers(&rig, 2_000, 1_000).await;
    assert_eq!(
        rig.cache
            .snapshot(GATEWAY)
            .expect("the Gateway's snapshot")
            .resources(ResourceType::VirtualHost)
            .len(),
        1_001,
        "one VirtualHost resource per host, and the placeholder"
    );
    assert_eq!(rig.rejections().await, 0, "{}", rig.envoy.log_tail());
}

/// A new host whose route goes to a new cluster: the cluster and its
/// endpoints are ACKed before the virtual host goes; when the host and the
/// cluster leave together, the virtual host is removed before the cluster.
/// Meanwhile no request fails, on that host nor on another one whose route
/// moves to a new cluster at the same time.
#[tokio::test]
async fn over_vhds_hosts_come_and_go_make_before_break() {
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let mut rig = Rig::start_vhds(|_| {
        let mut c = upstream_at("default/a:80", a.addr());
        c.push(Change::UpsertRoute(sample::route(
            "shop",
            "shop.example.com",
            "/",
            "default/a:80",
        )));
        c
    })
    .await;
    rig.until_served_by("shop.example.com", "/", "a").await;
    assert_eq!(
        rig.get("new.example.com", "/").await.expect("a response").status,
        404
    );

    let stop = Arc::new(AtomicBool::new(false));
    let shop_loop = spawn_host_loop(&rig, "shop.example.com", "/x", &[200], stop.clone());
    let new_loop = spawn_host_loop(&rig, "new.example.com", "/x", &[200, 404], stop.clone());

    // One change: a new host on a new cluster, and shop moves to another new one.
    while rig.events.try_recv().is_ok() {}
    let mut changes = upstream_at("default/new:80", b.addr());
    changes.extend(upstream_at("default/b:80", b.addr()));
    changes.push(Change::UpsertRoute(sample::route(
        "new",
        "new.example.com",
        "/",
        "default/new:80",
    )));
    changes.push(Change::UpsertRoute(sample::route(
        "shop",
        "shop.example.com",
        "/",
        "default/b:80",
    )));
    rig.change(changes);
    let mut acks = acks_until(&mut rig, "VHDS +http/new.example.com").await;
    if !acks.iter().any(|l| l == "VHDS +http/shop.example.com") {
        acks.extend(acks_until(&mut rig, "VHDS +http/shop.example.com").await);
    }
    for (host, cluster) in [("new", "default/new:80"), ("shop", "default/b:80")] {
        let vhost = position(&acks, &format!("VHDS +http/{host}.example.com"));
        assert!(
            position(&acks, &format!("CDS +{cluster}")) < vhost
                && position(&acks, &format!("EDS +{cluster}")) < vhost,
            "{cluster} and its endpoints are ACKed before the virtual host of {host}: {acks:?}"
        );
    }
    rig.until_served_by_never_5xx("new.example.com", "/", "b").await;
    rig.until_served_by_never_5xx("shop.example.com", "/", "b").await;

    // The new host and its cluster leave in one change.
    rig.change(vec![
        Change::RemoveRoute(route_id("new")),
        Change::RemoveUpstream("default/new:80".into()),
    ]);
    let acks = acks_until(&mut rig, "CDS -default/new:80").await;
    assert!(
        position(&acks, "VHDS -http/new.example.com") < position(&acks, "CDS -default/new:80"),
        "the virtual host goes before its cluster: {acks:?}"
    );
    eventually("new.example.com to be gone", CONVERGE, || async {
        (rig.get("new.example.com", "/").await.ok()?.status == 404).then_some(())
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    for (what, handle) in [("shop.example.com", shop_loop), ("new.example.com", new_loop)] {
        let (ok, failures) = handle.await.expect("the client loop ends");
        eprintln!(
            "{ok} requests on {what} while hosts came and went, {} failed",
            failures.len()
        );
        assert!(ok > 0, "the loop on {what} sent requests");
        assert!(
            failures.is_empty(),
            "{} requests on {what} failed: {failures:?}",
            failures.len()
        );
    }
    assert_eq!(rig.rejections().await, 0, "{}", rig.envoy.log_tail());
}

/// An Envoy whose control plane restarts reconnects, announces the virtual
/// hosts it has, and is sent nothing again; later changes reach it. An
/// Envoy that starts afresh gets every virtual host.
#[tokio::test]
async fn over_vhds_a_reconnecting_or_new_envoy_gets_everything() {
    let echo = EchoServer::start("echo").await;
    let (routes, hosts) = (300, 100);
    let mut rig = Rig::start_vhds(sample_gateway(routes, hosts, 10, &echo)).await;
    every_route_answers(&rig, routes, hosts).await;

    rig.restart_control_plane().await;
    // The virtual hosts it announces count as applied: reported like an ACK,
    // at the restarted control plane's first serial.
    let host_0 = format!("http/{}", sample::host_name(0, hosts));
    let resumed_serial = loop {
        let event = tokio::time::timeout(CONVERGE, rig.events.recv())
            .await
            .unwrap_or_else(|_| panic!("Envoy did not announce {host_0}\n{}", rig.envoy.log_tail()))
            .expect("the event stream is open");
        if let XdsEvent::Acked(ack) = &event
            && ack.kind == ResourceType::VirtualHost
            && ack.resources.iter().any(|(n, _)| **n == *host_0)
        {
            break ack.serial;
        }
    };
    every_route_answers(&rig, routes, hosts).await;

    // After the restart, a changed route and a new host are all that is sent.
    let moved_host = sample::host_name(5, hosts);
    let mut moved = sample::route(
        &sample::route_name(5),
        &moved_host,
        "/moved/",
        "default/svc-5:8080",
    );
    moved.origin = ObjectRef::new("Mapping", "default", &sample::route_name(5), 2);
    rig.change(vec![
        Change::UpsertRoute(moved),
        Change::UpsertRoute(sample::route(
            "fresh",
            "fresh.example.com",
            "/",
            "default/svc-1:8080",
        )),
    ]);
    let mut acks = acks_after(&mut rig, resumed_serial, "VHDS +http/fresh.example.com").await;
    let moved_vhost = format!("VHDS +http/{moved_host}");
    if !acks.contains(&moved_vhost) {
        acks.extend(acks_after(&mut rig, resumed_serial, &moved_vhost).await);
    }
    acks.sort();
    assert_eq!(
        acks,
        ["VHDS +http/fresh.example.com".to_owned(), moved_vhost],
        "only the change was sent after the restart"
    );
    rig.until_served_by(&moved_host, "/moved/x", "echo").await;
    rig.until_served_by("fresh.example.com", "/", "echo").await;

    // A new Envoy process, with the same bootstrap, gets all of it.
    drop(std::mem::replace(
        &mut rig.envoy,
        Envoy::start(&BootstrapConfig::new("envoy-1", GATEWAY, "127.0.0.1", rig.xds_port).to_yaml()).await,
    ));
    rig.until_served_by(&moved_host, "/moved/x", "echo").await;
    rig.until_served_by("fresh.example.com", "/", "echo").await;
    let r = rig
        .get(&moved_host, &format!("{}x", sample::prefix(5)))
        .await
        .expect("a response");
    assert_eq!(r.status, 404, "route-5 moved to /moved/");
    let unchanged: Vec<usize> = (0..routes).filter(|i| *i != 5).collect();
    for i in unchanged {
        let (host, path) = (sample::host_name(i, hosts), format!("{}x", sample::prefix(i)));
        let r = rig.get(&host, &path).await.expect("a response");
        assert_eq!(r.status, 200, "{host}{path}\n{}", rig.envoy.log_tail());
    }
    assert_eq!(rig.rejections().await, 0, "{}", rig.envoy.log_tail());
}

/// Folds the rig's events into `tracker` until `done` holds; returns the
/// ACKs seen on the way.
async fn fold_until(
    rig: &mut Rig,
    tracker: &mut ProxyTracker,
    what: &str,
    done: impl Fn(&ProxyTracker) -> bool,
) -> Vec<Ack> {
    let mut acks = Vec::new();
    let deadline = tokio::time::Instant::now() + CONVERGE;
    while !done(tracker) {
        let event = tokio::time::timeout_at(deadline, rig.events.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}\n{}", rig.envoy.log_tail()))
            .expect("the event stream is open");
        tracker.observe(&event);
        if let XdsEvent::Acked(ack) = event {
            acks.push(ack);
        }
    }
    acks
}

/// An object whose routes are in VirtualHost resources is programmed when
/// every proxy ACKed those virtual hosts at their current version, and a
/// refused virtual host is blamed on the object that broke it.
#[tokio::test]
async fn over_vhds_objects_are_programmed_by_virtual_host_acks() {
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let mut rig = Rig::start_vhds(|_| {
        let mut c = upstream_at("default/a:80", a.addr());
        c.extend(upstream_at("default/b:80", b.addr()));
        for (name, host) in [("shop", "shop.example.com"), ("api", "api.example.com")] {
            c.push(Change::UpsertRoute(sample::route(
                name,
                host,
                "/",
                "default/a:80",
            )));
        }
        c.push(Change::UpsertRoute(sample::route(
            "any",
            "*",
            "/any/",
            "default/a:80",
        )));
        c
    })
    .await;
    let mut tracker = ProxyTracker::new();
    let snapshot = rig.cache.snapshot(GATEWAY).expect("the Gateway's snapshot");
    fold_until(&mut rig, &mut tracker, "every object programmed", |t| {
        t.programmed(&snapshot).values().all(|p| *p)
    })
    .await;
    // Routes are carried by virtual hosts; the route config is a shell.
    let carriers = |object: &str| -> Vec<String> {
        let mut out = Vec::new();
        for kind in ResourceType::ALL {
            for (name, r) in snapshot.resources(kind) {
                if r.origins().any(|o| o.object.key() == object) {
                    out.push(format!("{kind} {name}"));
                }
            }
        }
        out
    };
    assert_eq!(carriers("Mapping/default/api"), ["VHDS http/api.example.com"]);
    assert_eq!(
        carriers("Mapping/default/any"),
        [
            "VHDS http/*",
            "VHDS http/api.example.com",
            "VHDS http/shop.example.com"
        ]
    );
    assert!(
        snapshot
            .get(ResourceType::Route, "http")
            .expect("the route config")
            .origins()
            .next()
            .is_none()
    );

    // api's generation 2: not programmed until its virtual host is ACKed;
    // shop, whose virtual host did not change, stays programmed.
    let mut api = sample::route("api", "api.example.com", "/", "default/b:80");
    api.origin = ObjectRef::new("Mapping", "default", "api", 2);
    rig.change(vec![Change::UpsertRoute(api)]);
    let snapshot = rig.cache.snapshot(GATEWAY).expect("the Gateway's snapshot");
    let programmed = tracker.programmed(&snapshot);
    assert!(!programmed["Mapping/default/api"]);
    assert!(programmed["Mapping/default/shop"]);
    let acks = fold_until(&mut rig, &mut tracker, "api programmed", |t| {
        t.programmed(&snapshot)["Mapping/default/api"]
    })
    .await;
    let vhds: Vec<&Ack> = acks
        .iter()
        .filter(|a| a.kind == ResourceType::VirtualHost)
        .collect();
    assert_eq!(vhds.len(), 1, "{acks:?}");
    assert_eq!(
        vhds[0].programmed,
        [ObjectRef::new("Mapping", "default", "api", 2)]
    );
    assert!(tracker.programmed(&snapshot).values().all(|p| *p));
    rig.until_served_by("api.example.com", "/", "b").await;

    // A route Envoy refuses: its virtual host is refused, the object blamed,
    // the host keeps its previous routes.
    let mut broken = sample::route("broken", "shop.example.com", "/", "default/a:80");
    broken.origin = ObjectRef::new("Mapping", "default", "broken", 3);
    broken.matcher.path = ir::PathMatch::Regex("/orders/(unclosed".into());
    rig.change(vec![Change::UpsertRoute(broken)]);
    let rejection = rig.next_rejection().await;
    assert_eq!(rejection.kind, ResourceType::VirtualHost);
    assert_eq!(rejection.resources, [Arc::from("http/shop.example.com")]);
    assert_eq!(
        rejection.objects,
        [ObjectRef::new("Mapping", "default", "broken", 3)],
        "{}",
        rejection.message
    );
    let snapshot = rig.cache.snapshot(GATEWAY).expect("the Gateway's snapshot");
    let mut programmed = tracker.programmed(&snapshot);
    for event in std::iter::from_fn(|| rig.events.try_recv().ok()) {
        tracker.observe(&event);
        programmed = tracker.programmed(&snapshot);
    }
    assert!(!programmed["Mapping/default/broken"]);
    assert!(programmed["Mapping/default/api"]);
    let r = rig
        .get("shop.example.com", "/orders/1")
        .await
        .expect("a response");
    assert_eq!(r.status, 200, "Envoy keeps the host's previous routes");
    assert_eq!(r.echo().backend, "a");
}

#[tokio::test]
async fn a_running_envoy_that_did_not_ask_for_vhds_keeps_whole_route_configs() {
    a_running_envoy_keeps_whole_route_configs_after_the_switch_to_vhds(false).await
}

#[tokio::test]
async fn a_running_envoy_that_asked_for_vhds_keeps_whole_route_configs() {
    a_running_envoy_keeps_whole_route_configs_after_the_switch_to_vhds(true).await
}

/// A rig whose translator sends virtual hosts over VHDS (or not), with an
/// Envoy on `bootstrap` (node `envoy-0`) and `changes` (plus the listener).
async fn start_rig(
    vhds: bool,
    bootstrap: impl FnOnce(&mut BootstrapConfig),
    changes: impl FnOnce(u16) -> Vec<Change>,
) -> Rig {
    let cache = SnapshotCache::new();
    let (control_plane, xds_port, events) = ControlPlane::start(cache.clone(), 0).await;
    let http_port = free_port();
    let mut translator = if vhds {
        Translator::with_vhds()
    } else {
        Translator::new()
    };
    let mut history = vec![Change::UpsertListener(sample::listener("http", http_port))];
    history.extend(changes(http_port));
    cache.update(GATEWAY, &translator.translate(history.clone()));
    let mut config = BootstrapConfig::new("envoy-0", GATEWAY, "127.0.0.1", xds_port);
    bootstrap(&mut config);
    let envoy = Envoy::start(&config.to_yaml()).await;
    Rig {
        cache,
        translator,
        vhds,
        history,
        events,
        control_plane: Some(control_plane),
        xds_port,
        http_port,
        client: HttpClient::http1(),
        envoy,
    }
}

/// Envoy refuses VHDS over state-of-the-world ADS ("vhds: ADS must use
/// DELTA_GRPC api_type when used as VHDS config source."): such an Envoy of
/// a Gateway whose virtual hosts go over VHDS is sent each route config
/// whole, with make-before-break, and its ACKs program the objects as a
/// delta Envoy's do.
#[tokio::test]
async fn over_vhds_a_state_of_the_world_envoy_gets_whole_route_configs() {
    let echo = EchoServer::start("echo").await;
    let b = EchoServer::start("b").await;
    let (routes, hosts) = (300, 100);
    let mut rig = start_rig(
        true,
        |b| b.protocol = Protocol::StateOfTheWorld,
        sample_gateway(routes, hosts, 10, &echo),
    )
    .await;
    every_route_answers(&rig, routes, hosts).await;
    let mut tracker = ProxyTracker::new();
    let snapshot = rig.cache.snapshot(GATEWAY).expect("the Gateway's snapshot");
    fold_until(&mut rig, &mut tracker, "every object programmed", |t| {
        t.programmed(&snapshot).values().all(|p| *p)
    })
    .await;

    // A new host on a new cluster: the cluster and its endpoints first.
    let stop = Arc::new(AtomicBool::new(false));
    let new_loop = spawn_host_loop(&rig, "new.example.com", "/x", &[200, 404], stop.clone());
    let mut changes = upstream_at("default/new:80", b.addr());
    changes.push(Change::UpsertRoute(sample::route(
        "new",
        "new.example.com",
        "/",
        "default/new:80",
    )));
    rig.change(changes);
    let snapshot = rig.cache.snapshot(GATEWAY).expect("the Gateway's snapshot");
    let mut acks = Vec::new();
    for ack in fold_until(&mut rig, &mut tracker, "new programmed", |t| {
        t.programmed(&snapshot)
            .get("Mapping/default/new")
            .is_some_and(|p| *p)
    })
    .await
    {
        acks.extend(ack_lines(&ack));
    }
    let route_config = position(&acks, "RDS +http");
    assert!(position(&acks, "CDS +default/new:80") < route_config, "{acks:?}");
    assert!(position(&acks, "EDS +default/new:80") < route_config, "{acks:?}");
    assert!(
        acks.iter()
            .filter(|a| a.starts_with("VHDS"))
            .eq(["VHDS +http/new.example.com"].iter()),
        "the ACK of the whole route config reads as that of the new virtual host: {acks:?}"
    );
    assert!(tracker.programmed(&snapshot).values().all(|p| *p));
    rig.until_served_by_never_5xx("new.example.com", "/", "b").await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failures) = new_loop.await.expect("the client loop ends");
    assert!(
        ok > 0 && failures.is_empty(),
        "{ok} answered, failed: {failures:?}"
    );

    every_route_answers(&rig, routes, hosts).await;
    assert_eq!(rig.rejections().await, 0, "{}", rig.envoy.log_tail());
}

/// An operator upgraded to VHDS while Envoys run: they reconnect and get
/// the same routes, whole, with no request failing, whether their bootstrap
/// (from before the upgrade) asks for VHDS or not. (Switching a running Envoy
/// to VHDS would fail requests: Envoy applies the route config that names
/// VHDS, which holds no virtual host, before its VHDS subscription answers;
/// 1 to 17 requests in ~700 got a 404 that way, in 4 runs of 5.) A new
/// Envoy, whose bootstrap asks, gets VHDS.
async fn a_running_envoy_keeps_whole_route_configs_after_the_switch_to_vhds(asks: bool) {
    let echo = EchoServer::start("echo").await;
    let mut rig = start_rig(
        false,
        |b| b.vhds = asks,
        |_| {
            let mut c = upstream_at("default/echo:80", echo.addr());
            for (name, host) in [("shop", "shop.example.com"), ("api", "api.example.com")] {
                c.push(Change::UpsertRoute(sample::route(
                    name,
                    host,
                    "/",
                    "default/echo:80",
                )));
            }
            c
        },
    )
    .await;
    rig.until_served_by("shop.example.com", "/", "echo").await;
    let stop = Arc::new(AtomicBool::new(false));
    let shop_loop = spawn_host_loop(&rig, "shop.example.com", "/x", &[200], stop.clone());

    // The operator restarts, now with VHDS.
    rig.vhds = true;
    rig.restart_control_plane().await;
    let acks = acks_until(&mut rig, "VHDS +http/shop.example.com").await;
    assert!(
        position(&acks, "RDS +http") < position(&acks, "VHDS +http/shop.example.com"),
        "a whole route config, whose ACK reads as that of its virtual hosts: {acks:?}"
    );
    rig.change(vec![Change::UpsertRoute(sample::route(
        "api",
        "api.example.com",
        "/v2/",
        "default/echo:80",
    ))]);
    let acks = acks_until(&mut rig, "VHDS +http/api.example.com").await;
    assert!(acks.contains(&"RDS +http".to_owned()), "whole again: {acks:?}");
    rig.until_served_by("api.example.com", "/v2/x", "echo").await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failures) = shop_loop.await.expect("the client loop ends");
    eprintln!(
        "{ok} requests answered across the upgrade, {} failed",
        failures.len()
    );
    assert!(ok > 0 && failures.is_empty(), "{failures:?}");

    // A new Envoy asks for VHDS: a change sends it one virtual host.
    drop(std::mem::replace(
        &mut rig.envoy,
        Envoy::start(&BootstrapConfig::new("envoy-1", GATEWAY, "127.0.0.1", rig.xds_port).to_yaml()).await,
    ));
    rig.until_served_by("api.example.com", "/v2/x", "echo").await;
    while rig.events.try_recv().is_ok() {}
    rig.change(vec![Change::UpsertRoute(sample::route(
        "api",
        "api.example.com",
        "/v3/",
        "default/echo:80",
    ))]);
    let acks = acks_until(&mut rig, "VHDS +http/api.example.com").await;
    assert_eq!(acks, ["VHDS +http/api.example.com"]);
    rig.until_served_by("api.example.com", "/v3/x", "echo").await;
    assert_eq!(rig.rejections().await, 0, "{}", rig.envoy.log_tail());
}
