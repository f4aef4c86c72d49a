//! The xDS engine against the real Envoy, in state-of-the-world and in delta
//! mode: the bootstrap Legate writes, the ADS server on 127.0.0.1, echo
//! upstreams. Each behaviour is one function, run once per protocol.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use legate_tests::http::HttpClient;
use legate_tests::net::{eventually, free_port, loopback};
use legate_tests::{EchoServer, Envoy};
use legate_xds::bootstrap::BootstrapConfig;
use legate_xds::cache::SnapshotCache;
use legate_xds::ir::{self, ObjectRef, RouteId};
use legate_xds::sample;
use legate_xds::server::{AdsServer, Protocol, Rejection, XdsEvent};
use legate_xds::translate::{Change, Translator};
use tokio::sync::broadcast;

const GATEWAY: &str = "default/gw";
const CONVERGE: Duration = Duration::from_secs(20);

/// The ADS server in a runtime of its own, so that stopping it closes every
/// connection at once, as when the operator's process exits.
struct ControlPlane {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Tests drop it from async code, where a blocking shutdown is refused.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl ControlPlane {
    /// Serves `cache` on 127.0.0.1:`port` (0: any free port).
    async fn start(
        cache: Arc<SnapshotCache>,
        port: u16,
    ) -> (ControlPlane, u16, broadcast::Receiver<XdsEvent>) {
        let server = AdsServer::new(cache);
        let events = server.events();
        // std's listener sets SO_REUSEADDR, so a restarted server gets its port
        // back, once the stopped runtime (shut down in the background) let go.
        let listener = eventually("the control plane's port to be free", CONVERGE, || async {
            std::net::TcpListener::bind(("127.0.0.1", port)).ok()
        })
        .await;
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = listener.local_addr().expect("a local address").port();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the control plane");
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            let _ = server.serve(listener, std::future::pending()).await;
        });
        (
            ControlPlane {
                runtime: Some(runtime),
            },
            port,
            events,
        )
    }
}

/// A control plane serving one Gateway, and one Envoy connected to it.
struct Rig {
    cache: Arc<SnapshotCache>,
    translator: Translator,
    /// Every change so far, to rebuild the same state in a new control plane.
    history: Vec<Change>,
    events: broadcast::Receiver<XdsEvent>,
    control_plane: Option<ControlPlane>,
    xds_port: u16,
    http_port: u16,
    client: HttpClient,
    envoy: Envoy,
}

impl Rig {
    /// Serves `changes` (plus an HTTP listener on a free port), then starts Envoy.
    async fn start(protocol: Protocol, changes: impl FnOnce(u16) -> Vec<Change>) -> Rig {
        let cache = SnapshotCache::new();
        let (control_plane, xds_port, events) = ControlPlane::start(cache.clone(), 0).await;
        let http_port = free_port();
        let mut translator = Translator::new();
        let mut history = vec![Change::UpsertListener(sample::listener("http", http_port))];
        history.extend(changes(http_port));
        cache.update(GATEWAY, &translator.translate(history.clone()));

        let mut bootstrap = BootstrapConfig::new("envoy-0", GATEWAY, "127.0.0.1", xds_port);
        bootstrap.protocol = protocol;
        let envoy = Envoy::start(&bootstrap.to_yaml()).await;
        Rig {
            cache,
            translator,
            history,
            events,
            control_plane: Some(control_plane),
            xds_port,
            http_port,
            client: HttpClient::http1(),
            envoy,
        }
    }

    fn change(&mut self, changes: Vec<Change>) {
        self.history.extend(changes.iter().cloned());
        let updates = self.translator.translate(changes);
        self.cache.update(GATEWAY, &updates);
    }

    /// Stops the control plane and starts a new one on the same port, which
    /// rebuilds the same state from scratch (as an operator restart does).
    async fn restart_control_plane(&mut self) {
        drop(self.control_plane.take());
        self.cache = SnapshotCache::new();
        self.translator = Translator::new();
        self.cache
            .update(GATEWAY, &self.translator.translate(self.history.clone()));
        let (cp, _, events) = ControlPlane::start(self.cache.clone(), self.xds_port).await;
        self.control_plane = Some(cp);
        self.events = events;
    }

    async fn get(&self, host: &str, path: &str) -> Result<legate_tests::http::Response, String> {
        self.client
            .get(&format!("http://{}{path}", loopback(self.http_port)), Some(host))
            .await
    }

    /// GET with extra request headers.
    async fn get_with(
        &self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<legate_tests::http::Response, String> {
        let mut request = hyper::Request::get(format!("http://{}{path}", loopback(self.http_port)))
            .header(hyper::header::HOST, host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| e.to_string())?;
        self.client.send(request).await
    }

    /// Waits until `host` + `path` is answered by `backend`.
    async fn until_served_by(&self, host: &str, path: &str, backend: &str) {
        eventually(&format!("{host}{path} served by {backend}"), CONVERGE, || async {
            match self.get(host, path).await {
                Ok(r) if r.status == 200 && r.echo().backend == backend => Some(()),
                _ => None,
            }
        })
        .await;
    }

    /// Like [`Rig::until_served_by`], but fails on any 5xx on the way: a route
    /// must never reach Envoy before its cluster is warm.
    async fn until_served_by_never_5xx(&self, host: &str, path: &str, backend: &str) {
        eventually(&format!("{host}{path} served by {backend}"), CONVERGE, || async {
            match self.get(host, path).await {
                Ok(r) if r.status.is_server_error() => {
                    panic!(
                        "{host}{path} answered {} before converging: {}",
                        r.status,
                        r.text()
                    )
                }
                Ok(r) if r.status == 200 && r.echo().backend == backend => Some(()),
                _ => None,
            }
        })
        .await;
    }

    async fn stat(&self, name: &str) -> u64 {
        self.envoy.stat(name).await.unwrap_or(0)
    }

    /// Rejection counters of every xDS type Envoy subscribed to.
    async fn rejections(&self) -> u64 {
        self.stat("cluster_manager.cds.update_rejected").await
            + self.stat("listener_manager.lds.update_rejected").await
            + self.stat("http.http.rds.http.update_rejected").await
    }

    async fn next_rejection(&mut self) -> Rejection {
        let deadline = tokio::time::Instant::now() + CONVERGE;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no rejection reported\n{}", self.envoy.log_tail()))
                .expect("the event stream is open");
            if let XdsEvent::Rejected(r) = event {
                return r;
            }
        }
    }
}

/// Sends GET `path` (host shop.example.com) in a loop until `stop`; returns
/// how many answers had an allowed status, and the others.
fn spawn_loop(
    rig: &Rig,
    path: &str,
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
            match client.get(&url, Some("shop.example.com")).await {
                Ok(r) if allowed.contains(&r.status.as_u16()) => ok += 1,
                Ok(r) => failures.push(format!("{} {}", r.status, r.text())),
                Err(e) => failures.push(e),
            }
        }
        (ok, failures)
    })
}

fn upstream_at(name: &str, addr: SocketAddr) -> Vec<Change> {
    vec![
        Change::UpsertUpstream(sample::upstream(name)),
        sample::endpoints(name, &[addr]),
    ]
}

fn route_id(name: &str) -> RouteId {
    RouteId::of(&ObjectRef::new("Mapping", "default", name, 1))
}

macro_rules! in_both_protocols {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn state_of_the_world() {
                super::$name(Protocol::StateOfTheWorld).await
            }

            #[tokio::test]
            async fn delta() {
                super::$name(Protocol::Delta).await
            }
        }
    )*};
}

in_both_protocols!(
    a_route_works,
    an_update_applies_without_restart_or_rejection,
    a_refused_update_is_reported_and_envoy_keeps_serving,
    no_request_fails_while_routes_come_and_go,
    a_thousand_routes_on_two_hundred_hostnames_all_answer,
    an_https_listener_gets_its_certificate_over_sds,
    a_tcp_route_proxies_a_port_to_its_upstream,
    envoy_gets_nothing_again_from_a_restarted_control_plane,
    ten_thousand_routes_converge_and_one_change_is_applied,
    external_authorization_guards_routes_unless_they_bypass_it,
    route_features_behave_as_translated,
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

async fn a_tcp_route_proxies_a_port_to_its_upstream(protocol: Protocol) {
    let echo = EchoServer::start("echo-tcp").await;
    let tcp_port = free_port();
    let rig = Rig::start(protocol, |_| {
        let mut tcp = sample::listener("tcp", tcp_port);
        tcp.protocol = ir::ListenerProtocol::Tcp;
        let origin = ObjectRef::new("TCPMapping", "default", "raw", 1);
        let mut c = upstream_at("default/echo-tcp:80", echo.addr());
        c.extend([
            Change::UpsertListener(tcp),
            Change::UpsertTcpRoute(ir::TcpRoute {
                id: RouteId::of(&origin),
                origin,
                listener: "tcp".into(),
                sni: vec![],
                upstream: "default/echo-tcp:80".into(),
                idle_timeout: None,
            }),
        ]);
        c
    })
    .await;
    // HTTP bytes pass through the TCP proxy untouched: the echo server sees
    // the request as the client sent it.
    let r = eventually("the TCP listener answers", CONVERGE, || async {
        rig.client
            .get(
                &format!("http://{}/raw/path", loopback(tcp_port)),
                Some("anything.example"),
            )
            .await
            .ok()
    })
    .await;
    assert_eq!(r.status, 200);
    let reply = r.echo();
    assert_eq!(reply.backend, "echo-tcp");
    assert_eq!(reply.path, "/raw/path");
    assert!(
        reply.header("x-request-id").is_none(),
        "no HTTP processing in Envoy"
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
    // plane, which rebuilt everything, has nothing to send.
    loop {
        let event = tokio::time::timeout(CONVERGE, rig.events.recv())
            .await
            .unwrap_or_else(|_| panic!("Envoy did not reconnect\n{}", rig.envoy.log_tail()))
            .expect("the event stream is open");
        if matches!(event, XdsEvent::Connected(_)) {
            break;
        }
    }
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
        if let XdsEvent::Acked(ack) = event {
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
    let echo = EchoServer::start("echo").await;
    let started = std::time::Instant::now();
    let mut rig = Rig::start(protocol, |port| {
        sample::gateway(port, 10_000, 1_000, 1_000, echo.addr())
            .into_iter()
            .skip(1)
            .collect()
    })
    .await;
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
            XdsEvent::Acked(ack) if ack.kind == legate_xds::resource::ResourceType::Route => break ack,
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
    eprintln!(
        "{protocol:?}: 10,000 routes: control plane up to Envoy ready in {ready:?}; \
         one route changed to Envoy's ACK in {acked:?} (debug build)"
    );
}

/// The echo server plays the authorization service: it allows (200) unless
/// the request asks it to answer 403, and Envoy then returns its answer.
async fn external_authorization_guards_routes_unless_they_bypass_it(protocol: Protocol) {
    let app = EchoServer::start("app").await;
    let auth = EchoServer::start("auth").await;
    let mut rig = Rig::start(protocol, |_| {
        let mut c = upstream_at("default/app:80", app.addr());
        c.extend(upstream_at("default/auth:80", auth.addr()));
        c.push(Change::UpsertRoute(sample::route(
            "guarded",
            "shop.example.com",
            "/orders/",
            "default/app:80",
        )));
        let mut open = sample::route("public", "shop.example.com", "/public/", "default/app:80");
        open.policy.bypass_auth = true;
        c.push(Change::UpsertRoute(open));
        c.push(Change::SetAuth(Some(ir::AuthService {
            origin: ObjectRef::new("AuthService", "default", "auth", 1),
            upstream: "default/auth:80".into(),
            protocol: ir::AuthProtocol::Http {
                path_prefix: "/check".into(),
                allowed_request_headers: vec!["x-echo-status".into()],
            },
            timeout: Duration::from_secs(2),
            failure_mode_allow: false,
        })));
        c
    })
    .await;
    let deny = [("x-echo-status", "403")];

    let allowed = rig
        .get("shop.example.com", "/orders/1")
        .await
        .expect("a response");
    assert_eq!(allowed.status, 200, "{}", rig.envoy.log_tail());
    assert_eq!(allowed.echo().backend, "app");

    let denied = rig
        .get_with("shop.example.com", "/orders/1", &deny)
        .await
        .expect("a response");
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.echo().backend,
        "auth",
        "the authorization service answered"
    );
    assert_eq!(denied.echo().path, "/check/orders/1");

    // The bypassing route reaches the app, which honours the header itself.
    let bypassed = rig
        .get_with("shop.example.com", "/public/1", &deny)
        .await
        .expect("a response");
    assert_eq!(bypassed.status, 403);
    assert_eq!(bypassed.echo().backend, "app", "no authorization on this route");

    // Removing the AuthService opens the guarded route too.
    rig.change(vec![Change::SetAuth(None)]);
    eventually("the guarded route without authorization", CONVERGE, || async {
        let r = rig.get_with("shop.example.com", "/orders/1", &deny).await.ok()?;
        (r.echo().backend == "app").then_some(())
    })
    .await;
    assert_eq!(rig.rejections().await, 0);
}

fn forward(r: &mut ir::Route) -> &mut ir::Forward {
    match &mut r.action {
        ir::RouteAction::Forward(f) => f,
        _ => unreachable!("sample routes forward"),
    }
}

/// Each route feature the translation covers in golden files, seen through
/// Envoy: what the upstream receives and what the client gets.
async fn route_features_behave_as_translated(protocol: Protocol) {
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let host = "shop.example.com";
    let route = |name: &str, prefix: &str| sample::route(name, host, prefix, "default/a:80");
    let mut routes = Vec::new();
    let mut r = route("rewrite", "/rewrite/");
    forward(&mut r).prefix_rewrite = Some("/".into());
    routes.push(r);
    let mut r = route("regex-rewrite", "/v1/");
    forward(&mut r).regex_rewrite = Some(ir::RegexRewrite {
        pattern: "^/v1/(.*)$".into(),
        substitution: "/api/\\1".into(),
    });
    routes.push(r);
    let mut r = route("redirect", "/old");
    r.action = ir::RouteAction::Redirect(ir::Redirect {
        path: Some("/new".into()),
        https: true,
        status: 308,
        ..ir::Redirect::default()
    });
    routes.push(r);
    let mut r = route("direct", "/maintenance");
    r.action = ir::RouteAction::DirectResponse {
        status: 503,
        body: Some("back soon".into()),
    };
    routes.push(r);
    let mut r = route("headers", "/headers/");
    r.policy.request_headers_to_add = vec![ir::HeaderValue {
        name: "x-gateway".into(),
        value: "legate".into(),
        append: false,
    }];
    r.policy.request_headers_to_remove = vec!["x-secret".into()];
    r.policy.response_headers_to_add = vec![ir::HeaderValue {
        name: "x-served-by".into(),
        value: "legate".into(),
        append: false,
    }];
    routes.push(r);
    let mut r = route("exact", "/");
    r.matcher.path = ir::PathMatch::Exact("/exact".into());
    routes.push(r);
    let mut r = route("regex", "/");
    r.matcher.path = ir::PathMatch::Regex("/orders/[0-9]+".into());
    routes.push(r);
    // The canary route wins over the plain one by its header matcher.
    let mut r = sample::route("canary", host, "/shop/", "default/b:80");
    r.matcher.headers = vec![ir::HeaderMatch {
        name: "x-canary".into(),
        value: ir::ValueMatch::Exact("1".into()),
        invert: false,
    }];
    routes.push(r);
    routes.push(route("shop", "/shop/"));
    let mut r = route("split", "/split/");
    forward(&mut r).upstreams = vec![
        ir::WeightedUpstream {
            upstream: "default/a:80".into(),
            weight: 50,
        },
        ir::WeightedUpstream {
            upstream: "default/b:80".into(),
            weight: 50,
        },
    ];
    routes.push(r);
    let mut r = route("cors", "/cors/");
    r.policy.cors = Some(ir::Cors {
        allow_origins: vec!["https://app.example.com".into()],
        allow_methods: vec!["GET".into()],
        ..ir::Cors::default()
    });
    routes.push(r);

    let rig = Rig::start(protocol, |_| {
        let mut c = upstream_at("default/a:80", a.addr());
        c.extend(upstream_at("default/b:80", b.addr()));
        c.extend(routes.into_iter().map(Change::UpsertRoute));
        c
    })
    .await;
    let get = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let rig = &rig;
        async move { rig.get_with(host, path, headers).await.expect("a response") }
    };

    assert_eq!(get("/rewrite/x", &[]).await.echo().path, "/x");
    assert_eq!(get("/v1/users", &[]).await.echo().path, "/api/users");
    let r = get("/old", &[]).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("https://shop.example.com/new"));
    let r = get("/maintenance", &[]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (503, "back soon"));
    let r = get("/headers/x", &[("x-secret", "s3cr3t")]).await;
    assert_eq!(r.header("x-served-by"), Some("legate"));
    let seen = r.echo();
    assert_eq!(seen.header("x-gateway"), Some("legate"));
    assert_eq!(seen.header("x-secret"), None);
    assert_eq!(get("/exact", &[]).await.status, 200);
    assert_eq!(get("/exact/more", &[]).await.status, 404);
    assert_eq!(get("/orders/42", &[]).await.status, 200);
    assert_eq!(get("/orders/abc", &[]).await.status, 404);
    assert_eq!(get("/shop/cart", &[("x-canary", "1")]).await.echo().backend, "b");
    assert_eq!(get("/shop/cart", &[]).await.echo().backend, "a");
    let mut backends = std::collections::BTreeSet::new();
    for _ in 0..60 {
        backends.insert(get("/split/x", &[]).await.echo().backend);
    }
    assert_eq!(
        backends.into_iter().collect::<Vec<_>>(),
        ["a", "b"],
        "a 50/50 split reaches both"
    );
    let r = get("/cors/x", &[("origin", "https://app.example.com")]).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let r = get("/cors/x", &[("origin", "https://evil.example.com")]).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(rig.rejections().await, 0);
}

/// A throwaway self-signed certificate for `shop.example.com`, for tests only
/// (made with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
/// -nodes -days 36500 -subj /CN=shop.example.com`).
const TEST_ONLY_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBqTCCAVCgAwIBAgIUF0mW/6nV4dWj6Dr1vx4zrR6sp9cwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQc2hvcC5leGFtcGxlLmNvbTAgFw0yNjExMjcwNzIzMjZaGA8y
MTI2MTEwMzA3MjMyNlowGzEZMBcGA1UEAwwQc2hvcC5leGFtcGxlLmNvbTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABIruqysAZMwrCLLrLv16NBlj7e2p/J9A3d16
v5kLaHB5LV5LkFoDXPc8BCM8FArIxNlysFNc+3oQDx+7L/Pxt4ujcDBuMB0GA1Ud
DgQWBBRG33D3/ReTLu+wudG5WeiqWjaP0TAfBgNVHSMEGDAWgBRG33D3/ReTLu+w
udG5WeiqWjaP0TAPBgNVHRMBAf8EBTADAQH/MBsGA1UdEQQUMBKCEHNob3AuZXhh
bXBsZS5jb20wCgYIKoZIzj0EAwIDRwAwRAIgE87b36KVgelhi23QUnJuxLTCwr2a
0MBV7awbNfbhqUMCICqFHwcTGsN+XeVs4jBpIW7x14nIk8GSaoVVRT6RDlT4
-----END CERTIFICATE-----
";
/// The same key, certified again (a rotation).
const TEST_ONLY_CERT_ROTATED: &str = "-----BEGIN CERTIFICATE-----
MIIBqzCCAVCgAwIBAgIUBrHCmQz6nPwu1bXmm8CN1SOHNfgwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQc2hvcC5leGFtcGxlLmNvbTAgFw0yNjExMjcwNzMwNTlaGA8y
MTI2MTEwMzA3MzA1OVowGzEZMBcGA1UEAwwQc2hvcC5leGFtcGxlLmNvbTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABIruqysAZMwrCLLrLv16NBlj7e2p/J9A3d16
v5kLaHB5LV5LkFoDXPc8BCM8FArIxNlysFNc+3oQDx+7L/Pxt4ujcDBuMB0GA1Ud
DgQWBBRG33D3/ReTLu+wudG5WeiqWjaP0TAfBgNVHSMEGDAWgBRG33D3/ReTLu+w
udG5WeiqWjaP0TAPBgNVHRMBAf8EBTADAQH/MBsGA1UdEQQUMBKCEHNob3AuZXhh
bXBsZS5jb20wCgYIKoZIzj0EAwIDSQAwRgIhAOE532P9gheoYs3wGo9XPKzl67mS
rnjVgEpO+vKz6F5KAiEA0E1DVoGq/g/CPtTr/6lgHgckauh1ivBG3efCinwpcT0=
-----END CERTIFICATE-----
";
const TEST_ONLY_CERT_ROTATED_SERIAL: &str = "06b1c2990cfa9cfc2ed5b5e69bc08dd5238735f8";
const TEST_ONLY_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnXGekuHVhNqE9cey
+zcdDRJ+JOVDRM7QSoxKqxtjMQWhRANCAASK7qsrAGTMKwiy6y79ejQZY+3tqfyf
QN3der+ZC2hweS1eS5BaA1z3PAQjPBQKyMTZcrBTXPt6EA8fuy/z8beL
-----END PRIVATE KEY-----
";

async fn an_https_listener_gets_its_certificate_over_sds(protocol: Protocol) {
    let echo = EchoServer::start("echo").await;
    let https_port = free_port();
    let tls_context = ObjectRef::new("TLSContext", "default", "shop-tls", 1);
    let secret = |pem: &str| ir::Secret {
        name: "default/shop-cert".into(),
        origin: tls_context.clone(),
        material: ir::SecretMaterial::Certificate {
            chain_pem: pem.to_owned(),
            key_pem: TEST_ONLY_KEY.to_owned(),
        },
    };
    let mut rig = Rig::start(protocol, |_| {
        let mut https = sample::listener("https", https_port);
        https.protocol = ir::ListenerProtocol::Https;
        https.tls = vec![ir::ServerTls {
            origin: tls_context.clone(),
            hostnames: vec!["shop.example.com".into()],
            certificate: "default/shop-cert".into(),
            client_ca: None,
            alpn: vec!["h2".into(), "http/1.1".into()],
            min_version: Some(ir::TlsVersion::V1_2),
            max_version: None,
        }];
        let mut route = sample::route("shop", "shop.example.com", "/", "default/echo:80");
        route.listener = "https".into();
        let mut c = upstream_at("default/echo:80", echo.addr());
        c.extend([
            Change::UpsertSecret(secret(TEST_ONLY_CERT)),
            Change::UpsertListener(https),
            Change::UpsertRoute(route),
        ]);
        c
    })
    .await;
    // The listener is active only once its certificate arrived over SDS.
    let certs = eventually("the certificate is served", CONVERGE, || async {
        let certs = rig.envoy.admin_get("/certs").await;
        certs.contains("shop.example.com").then_some(certs)
    })
    .await;
    assert!(
        certs.contains("default/shop-cert") || certs.contains("shop.example.com"),
        "{certs}"
    );
    let listeners = rig.envoy.admin_get("/listeners").await;
    assert!(
        listeners.contains(&format!("https::127.0.0.1:{https_port}")),
        "{listeners}"
    );

    // A rotation goes over SDS alone: the listener is neither updated nor drained.
    let lds_updates = rig.stat("listener_manager.lds.update_success").await;
    rig.change(vec![Change::UpsertSecret(secret(TEST_ONLY_CERT_ROTATED))]);
    eventually("the rotated certificate is served", CONVERGE, || async {
        let certs = rig.envoy.admin_get("/certs").await.to_ascii_lowercase();
        certs.contains(TEST_ONLY_CERT_ROTATED_SERIAL).then_some(())
    })
    .await;
    assert_eq!(rig.stat("listener_manager.lds.update_success").await, lds_updates);
    assert_eq!(rig.stat("listener_manager.listener_modified").await, 0);

    // A certificate Envoy cannot parse is refused and blamed on the TLSContext.
    rig.change(vec![Change::UpsertSecret(secret(
        "-----BEGIN CERTIFICATE-----\nnot a certificate\n",
    ))]);
    let rejection = rig.next_rejection().await;
    eprintln!("Envoy refused the secret: {:?}", rejection.message);
    assert_eq!(rejection.kind, legate_xds::resource::ResourceType::Secret);
    assert_eq!(rejection.objects, [tls_context]);
}
