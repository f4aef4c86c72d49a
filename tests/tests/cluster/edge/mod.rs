//! The edge of a Gateway end to end, with real Envoy and real peers: TLS
//! termination (TLSContext), cleartext handling, external authorization
//! (AuthService), rate limiting (RateLimitService, localRateLimit), TCP and
//! SNI routing (TCPMapping), access logs, tracing, TLS to upstreams, the
//! client's address behind load balancers, and access control.

mod access;
mod auth;
mod client_address;
mod http_filters;
mod insecure;
mod logs;
mod metrics;
mod ratelimit;
mod tcp;
mod tls;
mod tls_clash;
mod tracing;
mod upstream_tls;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use legate_tests::api::apply;
use legate_tests::http::{HttpClient, Response};
use legate_tests::net::{eventually, free_port, loopback};
use legate_tests::peers::tls_client::{HttpsAnswer, TlsOptions, https_get};
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::{Value, json};

/// A listener added to the stage's Gateway next to its HTTP listener.
struct Extra {
    name: &'static str,
    protocol: &'static str,
    port: u16,
}

impl Extra {
    fn new(name: &'static str, protocol: &'static str) -> Extra {
        Extra {
            name,
            protocol,
            port: free_port(),
        }
    }

    fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }
}

/// Re-applies the stage's Gateway `edge` with its HTTP listener, `extra`
/// listeners, and more spec fields (`accessLog`, `tracing`).
async fn gateway(stage: &Stage, extra: &[&Extra], more: Value) {
    let mut listeners = vec![json!({ "name": "http", "port": stage.port, "protocol": "HTTP" })];
    for l in extra {
        listeners.push(json!({ "name": l.name, "port": l.port, "protocol": l.protocol }));
    }
    let mut spec = json!({
        "serviceType": "ClusterIP", "replicas": 1,
        "listeners": listeners,
        "allowedRoutes": { "namespaces": { "from": "Same" } },
    });
    if let (Some(spec), Some(more)) = (spec.as_object_mut(), more.as_object()) {
        for (k, v) in more {
            spec.insert(k.clone(), v.clone());
        }
    }
    put(
        stage,
        json!({ "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" }, "spec": spec }),
    )
    .await;
}

/// Server-side applies any object into the stage's namespace.
async fn put(stage: &Stage, object: Value) {
    let what = format!("{} {}", object["kind"], object["metadata"]["name"]);
    apply(&stage.env.client, &stage.env.namespace, &object)
        .await
        .unwrap_or_else(|e| panic!("{what} was refused: {e}"));
}

/// A Legate object.
fn legate(kind: &str, name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "legate.dev/v1alpha1", "kind": kind, "metadata": { "name": name }, "spec": spec })
}

/// A cleartext request to the stage's HTTP listener.
async fn send(
    stage: &Stage,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    try_send(stage, method, path, host, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stage.envoy.log_tail()))
}

/// A cleartext request, or why it got no answer (the listener may not be
/// there yet while a test waits for it).
async fn try_send(
    stage: &Stage,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Response, String> {
    let mut builder = Request::builder()
        .method(method)
        .uri(stage.url(path))
        .header("host", host);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid request");
    HttpClient::http1().send(request).await
}

/// Waits until a cleartext request answers `status`.
async fn until(
    stage: &Stage,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    status: u16,
) -> Response {
    let what = format!("{method} {path} (Host {host}) to answer {status}");
    eventually(&what, PATIENCE, || async {
        let r = try_send(stage, method, path, host, headers, "").await.ok()?;
        (r.status == status).then_some(r)
    })
    .await
}

/// GETs `path` until it answers `status` or `PATIENCE` runs out; returns the last answer
/// either way, so that the caller's assertion says what was answered instead.
async fn eventually_status(stage: &Stage, path: &str, host: &str, status: u16) -> Response {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let late = tokio::time::Instant::now() >= deadline;
        match try_send(stage, "GET", path, host, &[], "").await {
            Ok(r) if r.status == status || late => return r,
            Err(e) if late => panic!("{e}\n{}", stage.envoy.log_tail()),
            _ => {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Waits until an HTTPS GET on a new connection answers `status`.
async fn https_until(
    addr: SocketAddr,
    sni: &str,
    options: &TlsOptions,
    path: &str,
    status: u16,
) -> HttpsAnswer {
    let what = format!("HTTPS GET {path} with SNI {sni} at {addr} to answer {status}");
    eventually(&what, PATIENCE, || async {
        https_get(addr, sni, options, path)
            .await
            .ok()
            .filter(|a| a.response.status == status)
    })
    .await
}

/// Envoy's whole config dump as JSON.
async fn config_dump(stage: &Stage) -> Value {
    let text = stage.envoy.admin_get("/config_dump?include_eds").await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("config_dump is not JSON: {e}"))
}

/// The active listener that binds `port`, from the config dump.
fn listener_on(dump: &Value, port: u16) -> Option<Value> {
    let configs = dump["configs"].as_array()?;
    configs
        .iter()
        .filter_map(|c| c["dynamic_listeners"].as_array())
        .flatten()
        .map(|l| l["active_state"]["listener"].clone())
        .find(|l| l["address"]["socket_address"]["port_value"] == port)
}

/// A condition of an object (any status), once it has `reason`.
async fn reason(stage: &Stage, kind: &str, name: &str, type_: &str, reason: &str) -> Value {
    stage.condition_reason(kind, name, type_, reason).await
}

/// The plain route every failure-mode test keeps checking: `/plain/` → quote.
async fn plain_route(stage: &Stage) {
    stage
        .mapping(
            "plain",
            json!({ "prefix": "/plain/", "service": "quote", "bypassAuth": true }),
        )
        .await;
}
