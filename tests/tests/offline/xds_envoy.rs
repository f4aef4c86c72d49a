//! The xDS engine against the real Envoy, in state-of-the-world and in delta
//! mode: the bootstrap Legate writes, the ADS server on 127.0.0.1, echo
//! upstreams. Each behaviour is one function, run once per protocol. Features
//! (TLS, TCP, authorization, route options) are in `xds_envoy_features.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use legate_tests::EchoServer;
use legate_tests::net::eventually;
use legate_xds::ir::{self, ObjectRef};
use legate_xds::sample;
use legate_xds::server::{Protocol, XdsEvent};
use legate_xds::translate::Change;

use crate::xds_rig::*;

in_both_protocols!(
    a_route_works,
    an_update_applies_without_restart_or_rejection,
    a_refused_update_is_reported_and_envoy_keeps_serving,
    no_request_fails_while_routes_come_and_go,
    a_thousand_routes_on_two_hundred_hostnames_all_answer,
    envoy_gets_nothing_again_from_a_restarted_control_plane,
    ten_thousand_routes_converge_and_one_change_is_applied,
);

async fn a_route_works(protocol: Protocol) {
    let echo = EchoServer::start("echo-a").await;
    let rig = Rig::start(protocol, |_| {
        let mut c = upstream_at("default/echo-a:80", echo.addr());
        c.push(Change::UpsertRoute(sample::route(
            "shop",
            "shop.example.com",
            "/cart/",
            "default/echo-a:80",
        )));
        c
    })
    .await;
    let r = rig
        .get("shop.example.com", "/cart/items?id=7")
        .await
        .expect("a response");
    assert_eq!(r.status, 200, "{}", rig.envoy.log_tail());
    let echo_reply = r.echo();
    assert_eq!(echo_reply.backend, "echo-a");
    assert_eq!(echo_reply.path, "/cart/items");
    assert_eq!(echo_reply.query, "id=7");
    assert_eq!(
        rig.get("other.example.com", "/cart/")
            .await
            .expect("a response")
            .status,
        404
    );
    // Paths are normalized before routing: `..` and `//` cannot dodge a prefix.
    for tricky in ["/x/../cart/items", "//cart//items"] {
        let r = rig.get("shop.example.com", tricky).await.expect("a response");
        assert_eq!(r.status, 200, "{tricky}");
        assert_eq!(r.echo().path, "/cart/items", "{tricky}");
    }
}

async fn an_update_applies_without_restart_or_rejection(protocol: Protocol) {
    let a = EchoServer::start("echo-a").await;
    let b = EchoServer::start("echo-b").await;
    let mut rig = Rig::start(protocol, |_| {
        let mut c = upstream_at("default/echo-a:80", a.addr());
        c.push(Change::UpsertRoute(sample::route(
            "shop",
            "shop.example.com",
            "/",
            "default/echo-a:80",
        )));
        c
    })
    .await;
    rig.until_served_by("shop.example.com", "/", "echo-a").await;
    let uptime_before = rig.stat("server.uptime").await;

    // A new upstream and a route to it; then the first route moves there too.
    let mut changes = upstream_at("default/echo-b:80", b.addr());
    changes.push(Change::UpsertRoute(sample::route(
        "api",
        "api.example.com",
        "/v1/",
        "default/echo-b:80",
    )));
    rig.change(changes);
    rig.until_served_by("api.example.com", "/v1/users", "echo-b")
        .await;
    rig.change(vec![Change::UpsertRoute(sample::route(
        "shop",
        "shop.example.com",
        "/",
        "default/echo-b:80",
    ))]);
    rig.until_served_by("shop.example.com", "/", "echo-b").await;

    assert_eq!(rig.rejections().await, 0, "{}", rig.envoy.log_tail());
    assert!(rig.stat("http.http.rds.http.update_success").await >= 3);
    assert!(
        rig.stat("server.uptime").await >= uptime_before,
        "the same Envoy process applied every update"
    );
}

async fn a_refused_update_is_reported_and_envoy_keeps_serving(protocol: Protocol) {
    let echo = EchoServer::start("echo-a").await;
    let mut rig = Rig::start(protocol, |_| {
        let mut c = upstream_at("default/echo-a:80", echo.addr());
        c.push(Change::UpsertRoute(sample::route(
            "shop",
            "shop.example.com",
            "/",
            "default/echo-a:80",
        )));
        c
    })
    .await;
    rig.until_served_by("shop.example.com", "/", "echo-a").await;

    // RE2 refuses an unbalanced group, so Envoy refuses the whole route config.
    let mut bad = sample::route("broken", "shop.example.com", "/", "default/echo-a:80");
    bad.origin = ObjectRef::new("Mapping", "default", "broken", 3);
    bad.matcher.path = ir::PathMatch::Regex("/orders/(unclosed".into());
    rig.change(vec![Change::UpsertRoute(bad)]);

    let rejection = rig.next_rejection().await;
    eprintln!(
        "Envoy refused the update: {:?}, blamed on {:?}",
        rejection.message, rejection.objects
    );
    assert_eq!(rejection.kind, legate_xds::resource::ResourceType::Route);
    assert_eq!(rejection.proxy.node, "envoy-0");
    assert_eq!(
        rejection.objects,
        [ObjectRef::new("Mapping", "default", "broken", 3)]
    );
    assert!(
        rejection.message.contains("missing )") || rejection.message.contains("regex"),
        "Envoy's own message is reported: {:?}",
        rejection.message
    );
    eventually("Envoy's rejection counter", CONVERGE, || async {
        (rig.stat("http.http.rds.http.update_rejected").await >= 1).then_some(())
    })
    .await;
    let r = rig
        .get("shop.example.com", "/orders/1")
        .await
        .expect("a response");
    assert_eq!(r.status, 200, "Envoy keeps the previous route config");
    assert_eq!(r.echo().backend, "echo-a");
}

async fn no_request_fails_while_routes_come_and_go(protocol: Protocol) {
    let keep = EchoServer::start("keep").await;
    let old = EchoServer::start("old").await;
    let new = EchoServer::start("new").await;
    let mut rig = Rig::start(protocol, |_| {
        let mut c = upstream_at("default/keep:80", keep.addr());
        c.extend(upstream_at("default/old:80", old.addr()));
        c.push(Change::UpsertRoute(sample::route(
            "keep",
            "shop.example.com",
            "/keep/",
            "default/keep:80",
        )));
        c.push(Change::UpsertRoute(sample::route(
            "old",
            "shop.example.com",
            "/old/",
            "default/old:80",
        )));
        c
    })
    .await;
    rig.until_served_by("shop.example.com", "/keep/", "keep").await;
    rig.until_served_by("shop.example.com", "/old/", "old").await;

    // A client loops on the third route while the others change; another
    // loops on the route that is removed (404 is fine there, a 5xx is not).
    let stop = Arc::new(AtomicBool::new(false));
    let keep_loop = spawn_loop(&rig, "/keep/x", &[200], stop.clone());
    let prev_loop = spawn_loop(&rig, "/prev/x", &[200, 404], stop.clone());

    for round in 0..3 {
        let name = format!("new-{round}");
        let upstream = format!("default/new-{round}:80");
        let mut changes = vec![Change::RemoveRoute(route_id(if round == 0 {
            "old"
        } else {
            "prev"
        }))];
        if round > 0 {
            // The upstream of the removed route goes in the same change.
            changes.push(Change::RemoveUpstream(format!("default/new-{}:80", round - 1)));
        }
        changes.extend(upstream_at(&upstream, new.addr()));
        changes.push(Change::UpsertRoute(sample::route(
            &name,
            "shop.example.com",
            "/new/",
            &upstream,
        )));
        rig.change(changes);
        rig.until_served_by_never_5xx("shop.example.com", "/new/", "new")
            .await;
        // Rename for the next round: remove this route and its upstream next time.
        rig.change(vec![
            Change::RemoveRoute(route_id(&name)),
            Change::UpsertRoute(sample::route("prev", "shop.example.com", "/prev/", &upstream)),
        ]);
        rig.until_served_by_never_5xx("shop.example.com", "/prev/", "new")
            .await;
    }
    stop.store(true, Ordering::Relaxed);
    for (what, handle) in [("the third route", keep_loop), ("the removed route", prev_loop)] {
        let (ok, failures) = handle.await.expect("the client loop ends");
        eprintln!(
            "{ok} requests on {what} while routes changed, {} failed",
            failures.len()
        );
        assert!(
            ok > 20,
            "the loop on {what} sent requests while routes changed ({ok})"
        );
        assert!(
            failures.is_empty(),
            "{} requests on {what} failed: {failures:?}",
            failures.len()
        );
    }
    assert_eq!(rig.rejections().await, 0, "{}", rig.envoy.log_tail());
}

async fn a_thousand_routes_on_two_hundred_hostnames_all_answer(protocol: Protocol) {
    let echo = EchoServer::start("echo").await;
    let rig = Rig::start(protocol, |port| {
        // The listener comes from the rig; the rest of the sample Gateway is used.
        sample::gateway(port, 1000, 200, 20, echo.addr())
            .into_iter()
            .skip(1)
            .collect()
    })
    .await;
    let mut wrong = Vec::new();
    for i in 0..1000 {
        let host = sample::host_name(i, 200);
        let path = format!("{}req", sample::prefix(i));
        match rig.get(&host, &path).await {
            Ok(r) if r.status == 200 && r.echo().path == path => {}
            other => wrong.push(format!("{host}{path}: {other:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} routes did not answer, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
}

async fn envoy_gets_nothing_again_from_a_restarted_control_plane(protocol: Protocol) {
    let a = EchoServer::start("echo-a").await;
    let b = EchoServer::start("echo-b").await;
    let mut rig = Rig::start(protocol, |_| {
        let mut c = upstream_at("default/echo-a:80", a.addr());
        c.push(Change::UpsertRoute(sample::route(
            "shop",
            "shop.example.com",
            "/",
            "default/echo-a:80",
        )));
        c
    })
    .await;
    rig.until_served_by("shop.example.com", "/", "echo-a").await;

    rig.restart_control_plane().await;
    // Envoy keeps serving while the control plane is away, reconnects, and
    // says what it has: versions are content hashes, so the new control
    // plane, which rebuilt everything, has nothing to send, and reports what
    // the proxy holds as applied (Programmed must not wait for a change).
    let resumed_serial = loop {
        let event = tokio::time::timeout(CONVERGE, rig.events.recv())
            .await
            .unwrap_or_else(|_| panic!("Envoy did not report its route config\n{}", rig.envoy.log_tail()))
            .expect("the event stream is open");
        if let XdsEvent::Acked(ack) = &event
            && ack.kind == legate_xds::resource::ResourceType::Route
            && ack.resources.iter().any(|(name, _)| &**name == "http")
        {
            break ack.serial;
        }
    };
    let r = rig.get("shop.example.com", "/").await.expect("a response");
    assert_eq!(r.echo().backend, "echo-a");

    // A change after the restart is the first thing that carries a resource.
    let mut changes = upstream_at("default/echo-b:80", b.addr());
    changes.push(Change::UpsertRoute(sample::route(
        "shop",
        "shop.example.com",
        "/",
        "default/echo-b:80",
    )));
    rig.change(changes);
    rig.until_served_by("shop.example.com", "/", "echo-b").await;
    let mut carried = Vec::new();
    while let Ok(event) = rig.events.try_recv() {
        if let XdsEvent::Acked(ack) = event
            && ack.serial > resumed_serial
        {
            carried.extend(
                ack.resources
                    .iter()
                    .map(|(name, _)| format!("{} {name}", ack.kind)),
            );
        }
    }
    carried.sort();
    assert_eq!(
        carried,
        [
            "CDS default/echo-a:80",
            "CDS default/echo-b:80",
            "EDS default/echo-b:80",
            "RDS http"
        ]
        .into_iter()
        .filter(|c| protocol == Protocol::StateOfTheWorld || !c.contains("echo-a"))
        .collect::<Vec<_>>(),
        "only the change was sent after the restart"
    );
}

/// The scale of the benchmarks, through a real Envoy. The timings are
/// printed for `xds/BENCHMARKS.md`, not asserted.
async fn ten_thousand_routes_converge_and_one_change_is_applied(protocol: Protocol) {
    at_scale(protocol, false).await
}

/// The same over VHDS, where the change is one virtual host.
#[tokio::test]
async fn ten_thousand_routes_over_vhds() {
    at_scale(Protocol::Delta, true).await
}

async fn at_scale(protocol: Protocol, vhds: bool) {
    let echo = EchoServer::start("echo").await;
    let started = std::time::Instant::now();
    let gateway = |port| {
        sample::gateway(port, 10_000, 1_000, 1_000, echo.addr())
            .into_iter()
            .skip(1)
            .collect()
    };
    let mut rig = if vhds {
        Rig::start_vhds(gateway).await
    } else {
        Rig::start(protocol, gateway).await
    };
    let ready = started.elapsed();
    for i in (0..10_000).step_by(97) {
        let (host, path) = (sample::host_name(i, 1_000), format!("{}x", sample::prefix(i)));
        let r = rig.get(&host, &path).await.expect("a response");
        assert_eq!(r.status, 200, "{host}{path}");
        assert_eq!(r.echo().path, path);
    }

    // One route changes: time from the cache update to Envoy's ACK.
    while rig.events.try_recv().is_ok() {}
    let changed = std::time::Instant::now();
    rig.change(vec![Change::UpsertRoute(sample::route(
        &sample::route_name(5),
        &sample::host_name(5, 1_000),
        "/moved/",
        "default/svc-5:8080",
    ))]);
    let version = loop {
        let event = tokio::time::timeout(CONVERGE, rig.events.recv())
            .await
            .unwrap_or_else(|_| panic!("no ACK of the change\n{}", rig.envoy.log_tail()))
            .expect("the event stream is open");
        match event {
            XdsEvent::Acked(ack) if !ack.programmed.is_empty() => break ack,
            XdsEvent::Rejected(r) => panic!("Envoy refused the change: {}", r.message),
            _ => {}
        }
    };
    let acked = changed.elapsed();
    assert_eq!(
        version.programmed,
        [ObjectRef::new("Mapping", "default", "route-5", 1)]
    );
    let r = rig
        .get(&sample::host_name(5, 1_000), "/moved/x")
        .await
        .expect("a response");
    assert_eq!(r.status, 200);
    assert_eq!(rig.rejections().await, 0);
    let sent: usize = version.resources.len();
    eprintln!(
        "{protocol:?}{}: 10,000 routes: control plane up to Envoy ready in {ready:?}; \
         one route changed to Envoy's ACK of {} ({sent} resource) in {acked:?} (debug build)",
        if vhds { " over VHDS" } else { "" },
        version.kind,
    );
}

/// Over VHDS (delta), a route change sends its virtual host, not the whole
/// route config, and Envoy routes as with RDS.
#[tokio::test]
async fn over_vhds_one_virtual_host_goes_per_change() {
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let mut rig = Rig::start_vhds(|_| {
        let mut c = upstream_at("default/a:80", a.addr());
        c.extend(upstream_at("default/b:80", b.addr()));
        c.push(Change::UpsertRoute(sample::route(
            "shop",
            "shop.example.com",
            "/",
            "default/a:80",
        )));
        c.push(Change::UpsertRoute(sample::route(
            "api",
            "api.example.com",
            "/",
            "default/a:80",
        )));
        c.push(Change::UpsertRoute(sample::route(
            "any",
            "*",
            "/any/",
            "default/a:80",
        )));
        c
    })
    .await;
    rig.until_served_by("shop.example.com", "/", "a").await;
    rig.until_served_by("api.example.com", "/", "a").await;
    rig.until_served_by("elsewhere.example.com", "/any/x", "a").await;

    while rig.events.try_recv().is_ok() {}
    rig.change(vec![Change::UpsertRoute(sample::route(
        "api",
        "api.example.com",
        "/",
        "default/b:80",
    ))]);
    rig.until_served_by("api.example.com", "/", "b").await;
    rig.until_served_by("shop.example.com", "/", "a").await;
    let mut sent = Vec::new();
    while let Ok(event) = rig.events.try_recv() {
        if let XdsEvent::Acked(ack) = event {
            sent.extend(
                ack.resources
                    .iter()
                    .map(|(name, _)| format!("{} {name}", ack.kind)),
            );
        }
    }
    assert_eq!(
        sent,
        ["VHDS http/api.example.com"],
        "only the changed virtual host"
    );

    // The host's last route goes: so does its virtual host.
    rig.change(vec![Change::RemoveRoute(route_id("api"))]);
    eventually(
        "api.example.com to fall back to the * virtual host",
        CONVERGE,
        || async {
            let r = rig.get("api.example.com", "/").await.ok()?;
            (r.status == 404).then_some(())
        },
    )
    .await;
    rig.until_served_by("api.example.com", "/any/x", "a").await;
    assert_eq!(rig.rejections().await, 0);
}
