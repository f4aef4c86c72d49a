//! The rig of the real-Envoy tests: the ADS server in a runtime of its own, a
//! translator and cache for one Gateway, one Envoy started from the bootstrap
//! Legate writes, and helpers to send requests and read Envoy's stats.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use legate_tests::Envoy;
use legate_tests::http::HttpClient;
use legate_tests::net::{eventually, free_port, loopback};
use legate_xds::bootstrap::BootstrapConfig;
use legate_xds::cache::SnapshotCache;
use legate_xds::ir::{self, ObjectRef, RouteId};
use legate_xds::sample;
use legate_xds::server::{AdsServer, Protocol, Rejection, XdsEvent};
use legate_xds::translate::{Change, Translator};
use tokio::sync::broadcast;

pub const GATEWAY: &str = "default/gw";
pub const CONVERGE: Duration = Duration::from_secs(20);

/// The ADS server in a runtime of its own, so that stopping it closes every
/// connection at once, as when the operator's process exits.
pub struct ControlPlane {
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
    pub async fn start(
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
pub struct Rig {
    pub cache: Arc<SnapshotCache>,
    pub translator: Translator,
    pub vhds: bool,
    /// Every change so far, to rebuild the same state in a new control plane.
    pub history: Vec<Change>,
    pub events: broadcast::Receiver<XdsEvent>,
    pub control_plane: Option<ControlPlane>,
    pub xds_port: u16,
    pub http_port: u16,
    pub client: HttpClient,
    pub envoy: Envoy,
}

impl Rig {
    /// Serves `changes` (plus an HTTP listener on a free port), then starts Envoy.
    pub async fn start(protocol: Protocol, changes: impl FnOnce(u16) -> Vec<Change>) -> Rig {
        Rig::start_translating(protocol, false, changes).await
    }

    /// Like [`Rig::start`], with virtual hosts over VHDS (delta only).
    pub async fn start_vhds(changes: impl FnOnce(u16) -> Vec<Change>) -> Rig {
        Rig::start_translating(Protocol::Delta, true, changes).await
    }

    async fn start_translating(
        protocol: Protocol,
        vhds: bool,
        changes: impl FnOnce(u16) -> Vec<Change>,
    ) -> Rig {
        let cache = SnapshotCache::new();
        let (control_plane, xds_port, events) = ControlPlane::start(cache.clone(), 0).await;
        let http_port = free_port();
        let mut translator = new_translator(vhds);
        let mut history = vec![Change::UpsertListener(sample::listener("http", http_port))];
        history.extend(changes(http_port));
        cache.update(GATEWAY, &translator.translate(history.clone()));

        let mut bootstrap = BootstrapConfig::new("envoy-0", GATEWAY, "127.0.0.1", xds_port);
        bootstrap.protocol = protocol;
        let envoy = Envoy::start(&bootstrap.to_yaml()).await;
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

    pub fn change(&mut self, changes: Vec<Change>) {
        self.history.extend(changes.iter().cloned());
        let updates = self.translator.translate(changes);
        self.cache.update(GATEWAY, &updates);
    }

    /// Stops the control plane and starts a new one on the same port, which
    /// rebuilds the same state from scratch (as an operator restart does).
    pub async fn restart_control_plane(&mut self) {
        drop(self.control_plane.take());
        self.cache = SnapshotCache::new();
        self.translator = new_translator(self.vhds);
        self.cache
            .update(GATEWAY, &self.translator.translate(self.history.clone()));
        let (cp, _, events) = ControlPlane::start(self.cache.clone(), self.xds_port).await;
        self.control_plane = Some(cp);
        self.events = events;
    }

    pub async fn get(&self, host: &str, path: &str) -> Result<legate_tests::http::Response, String> {
        self.client
            .get(&format!("http://{}{path}", loopback(self.http_port)), Some(host))
            .await
    }

    /// GET with extra request headers.
    pub async fn get_with(
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
    pub async fn until_served_by(&self, host: &str, path: &str, backend: &str) {
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
    pub async fn until_served_by_never_5xx(&self, host: &str, path: &str, backend: &str) {
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

    pub async fn stat(&self, name: &str) -> u64 {
        self.envoy.stat(name).await.unwrap_or(0)
    }

    /// Rejection counters of every xDS type Envoy subscribed to.
    pub async fn rejections(&self) -> u64 {
        self.stat("cluster_manager.cds.update_rejected").await
            + self.stat("listener_manager.lds.update_rejected").await
            + self.stat("http.http.rds.http.update_rejected").await
    }

    pub async fn next_rejection(&mut self) -> Rejection {
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

fn new_translator(vhds: bool) -> Translator {
    if vhds {
        Translator::with_vhds()
    } else {
        Translator::new()
    }
}

/// Sends GET `path` (host shop.example.com) in a loop until `stop`; returns
/// how many answers had an allowed status, and the others.
pub fn spawn_loop(
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

pub fn upstream_at(name: &str, addr: SocketAddr) -> Vec<Change> {
    vec![
        Change::UpsertUpstream(sample::upstream(name)),
        sample::endpoints(name, &[addr]),
    ]
}

pub fn route_id(name: &str) -> RouteId {
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

pub fn forward(r: &mut ir::Route) -> &mut ir::Forward {
    match &mut r.action {
        ir::RouteAction::Forward(f) => f,
        _ => unreachable!("sample routes forward"),
    }
}
