//! Ambassador parity, part 1: routing and traffic policy, end to end.
//!
//! Every test applies Mappings (and sometimes a Gateway with defaults) to the
//! real API server, waits until the shared operator has programmed them into
//! the stage's real Envoy, then sends real requests through Envoy to echo
//! upstreams and asserts the exact status, upstream path, Host and headers.
//! `docs/routing.md` lists which test covers which field.

mod combined;
mod cors;
mod defaults;
mod headers;
mod health;
mod matching;
mod order;
mod protocols;
mod redirects;
mod resilience;
mod rewrites;
mod splitting;

use std::collections::BTreeMap;
use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use legate_tests::api::apply;
use legate_tests::echo::EchoReply;
use legate_tests::http::{HttpClient, Response};
use legate_tests::net::eventually;
use legate_tests::stage::{PATIENCE, Stage};
use legate_tests::{EchoServer, TestEnv, TestHost};
use serde_json::{Value, json};

/// The Host every request carries unless a test says otherwise.
pub const SHOP: &str = "shop.example.com";

/// A request a test sends through the Gateway.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub host: String,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn get(path: &str) -> Req {
        Req {
            method: "GET".into(),
            path: path.into(),
            host: SHOP.into(),
            headers: Vec::new(),
        }
    }

    pub fn method(mut self, method: &str) -> Req {
        self.method = method.into();
        self
    }

    pub fn host(mut self, host: &str) -> Req {
        self.host = host.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn build(&self, port: u16) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(self.method.as_str())
            .uri(format!("http://127.0.0.1:{port}{}", self.path))
            .header("host", self.host.as_str());
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|e| panic!("building {self:?}: {e}"))
    }

    pub async fn send(&self, stage: &Stage) -> Response {
        self.send_with(stage, &HttpClient::http1()).await
    }

    pub async fn send_with(&self, stage: &Stage, client: &HttpClient) -> Response {
        client
            .send(self.build(stage.port))
            .await
            .unwrap_or_else(|e| panic!("{self:?}: {e}\n{}", stage.envoy.log_tail()))
    }

    /// Sends from a client socket bound to `source` (any 127.0.0.0/8 address).
    pub async fn send_from(&self, stage: &Stage, source: IpAddr) -> Response {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(source));
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(connector);
        let response = client
            .request(self.build(stage.port))
            .await
            .unwrap_or_else(|e| panic!("{self:?} from {source}: {e:?}"));
        let (parts, body) = response.into_parts();
        let body = http_body_util::BodyExt::collect(body)
            .await
            .unwrap_or_else(|e| panic!("{self:?}: reading the body: {e}"))
            .to_bytes();
        Response {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Sends until the answer satisfies `ok` (routes converge after an apply).
    pub async fn until(&self, stage: &Stage, ok: impl Fn(&Response) -> bool) -> Response {
        let client = HttpClient::http1();
        eventually(&format!("{self:?} to answer as expected"), PATIENCE, || {
            let client = client.clone();
            let ok = &ok;
            async move {
                let r = client.send(self.build(stage.port)).await.ok()?;
                ok(&r).then_some(r)
            }
        })
        .await
    }
}

/// Applies Mappings in `stage`'s namespace, in this order.
pub async fn mappings(stage: &Stage, list: &[(&str, Value)]) {
    for (name, spec) in list {
        stage.mapping(name, spec.clone()).await;
    }
}

/// Waits until every named Mapping is Programmed: every Envoy of the Gateway
/// runs a configuration with it. After this, single requests are exact.
pub async fn programmed(stage: &Stage, names: &[&str]) {
    for name in names {
        stage.condition("Mapping", name, "Programmed", "True").await;
    }
}

/// Applies Mappings and waits until all are programmed.
pub async fn apply_programmed(stage: &Stage, list: &[(&str, Value)]) {
    mappings(stage, list).await;
    let names: Vec<&str> = list.iter().map(|(n, _)| *n).collect();
    programmed(stage, &names).await;
}

/// Asserts an answer came from an echo upstream with this status, backend,
/// upstream path and Host, and returns what the upstream saw.
#[track_caller]
pub fn echoed(r: &Response, status: u16, backend: &str, path: &str, host: &str) -> EchoReply {
    assert_eq!(r.status, status, "status; body {:?}", r.text());
    let echo = r.echo();
    assert_eq!(echo.backend, backend, "backend of {echo:?}");
    assert_eq!(echo.path, path, "upstream path of {echo:?}");
    assert_eq!(echo.host, host, "upstream Host of {echo:?}");
    echo
}

/// Asserts Envoy answered `status` itself (no upstream involved).
#[track_caller]
pub fn from_envoy(r: &Response, status: u16) {
    assert_eq!(r.status, status, "status; body {:?}", r.text());
    assert_eq!(
        r.header("x-echo-backend"),
        None,
        "Envoy answers this itself; no upstream saw it"
    );
}

/// A Service `name` (port 80 → `port`) whose EndpointSlice lists `addresses`.
pub async fn service(env: &TestEnv, name: &str, addresses: &[&str], port: u16) {
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": { "name": name },
        "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": port }] }
    });
    apply(&env.client, &env.namespace, &service)
        .await
        .expect("the Service applies");
    let endpoints: Vec<Value> = addresses
        .iter()
        .map(|a| json!({ "addresses": [a], "conditions": { "ready": true } }))
        .collect();
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": { "name": format!("{name}-1"), "labels": { "kubernetes.io/service-name": name } },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{ "name": "http", "port": port, "protocol": "TCP" }]
    });
    apply(&env.client, &env.namespace, &slice)
        .await
        .expect("the EndpointSlice applies");
}

/// A Service `name` backed by one echo server named `echo` on the stage's
/// test host at `port`.
pub async fn echo_service(stage: &Stage, name: &str, echo: &str, port: u16) -> EchoServer {
    let server = stage
        .host
        .start_echo(echo, port)
        .unwrap_or_else(|e| panic!("{e}"));
    service(&stage.env, name, &[&stage.host.addr().to_string()], port).await;
    server
}

/// A Service `name` with `n` endpoints, each an echo server `{name}-{i}` on a
/// test host of its own (port 8080).
pub async fn pool(stage: &Stage, name: &str, n: usize) -> Vec<(TestHost, EchoServer)> {
    let mut members = Vec::new();
    for i in 1..=n {
        let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
        let echo = host
            .start_echo(&format!("{name}-{i}"), 8080)
            .unwrap_or_else(|e| panic!("{e}"));
        members.push((host, echo));
    }
    let addresses: Vec<String> = members.iter().map(|(h, _)| h.addr().to_string()).collect();
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    service(&stage.env, name, &addresses, 8080).await;
    members
}

/// Re-applies the stage's Gateway `edge` (same listener, same namespace
/// admitted) with `defaults`.
pub async fn gateway_defaults(stage: &Stage, defaults: Value) {
    let gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway",
        "metadata": { "name": "edge" },
        "spec": {
            "serviceType": "ClusterIP", "replicas": 1,
            "listeners": [{ "name": "http", "port": stage.port, "protocol": "HTTP" }],
            "allowedRoutes": { "namespaces": { "from": "Same" } },
            "defaults": defaults,
        }
    });
    apply(&stage.env.client, &stage.env.namespace, &gateway)
        .await
        .expect("the Gateway with defaults applies");
}

/// How many answers each backend gave.
pub fn tally<'a>(backends: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for b in backends {
        *counts.entry(b.to_string()).or_insert(0) += 1;
    }
    counts
}

/// A deterministic permutation of `0..n` (xorshift with a fixed seed): the
/// same "random" order on every run, no dependency.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Envoy's counter or gauge `stat` summed over the clusters of Service
/// `service` (`<namespace>/<service>_<port>`, with a settings hash when a
/// Mapping gives the Service settings of its own).
pub async fn cluster_stat(stage: &Stage, service: &str, stat: &str) -> u64 {
    let cluster_part = format!("/{service}_");
    let text = stage.envoy.admin_get(&format!("/stats?filter={stat}")).await;
    text.lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(name, _)| {
            name.starts_with("cluster.")
                && name.contains(&cluster_part)
                && name.ends_with(&format!(".{stat}"))
        })
        .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
        .sum()
}
