//! The echo upstream: an HTTP/1.1 and HTTP/2 (cleartext) server that answers
//! every request with a JSON description of it, and echoes WebSocket messages.
//!
//! A request can steer the answer with headers:
//! - `x-echo-status: 503` sets the response status;
//! - `x-echo-response-header: name=value` (repeatable) adds a response header;
//! - `x-echo-delay-ms: 250` delays the answer.
//!
//! Every response carries `x-echo-backend: <name>`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// What the echo server saw, as it reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoReply {
    /// The name the server was started with: which backend answered.
    pub backend: String,
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`; empty when there was none.
    pub query: String,
    /// The Host header (HTTP/1.1) or `:authority` (HTTP/2).
    pub host: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Every request header, lower-cased; repeated headers joined with `,`.
    pub headers: BTreeMap<String, String>,
    /// The request body, as UTF-8 (lossy).
    pub body: String,
}

impl EchoReply {
    /// What a server named `backend` saw of `req` (the body is read whole).
    pub async fn read(req: Request<Incoming>, backend: &str) -> EchoReply {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_string())
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let host = parts
            .uri
            .authority()
            .map(|a| a.to_string())
            .or_else(|| headers.get("host").cloned())
            .unwrap_or_default();
        EchoReply {
            backend: backend.to_owned(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            host,
            version: format!("{:?}", parts.version),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// The reply as a JSON response with `status`, marked with `x-echo-backend`.
    pub fn into_response(self, status: StatusCode) -> Response<Full<Bytes>> {
        let json = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = Response::new(Full::new(Bytes::from(json)));
        *response.status_mut() = status;
        let h = response.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::try_from(self.backend) {
            h.insert("x-echo-backend", v);
        }
        response
    }

    /// A request header, if the upstream received it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// A running echo server; stops when dropped.
#[derive(Debug)]
pub struct EchoServer {
    name: String,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EchoServer {
    /// Starts an echo server named `name` on a free port of 127.0.0.1.
    pub async fn start(name: &str) -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("binding the echo server {name}: {e}"));
        EchoServer::serve(listener, name)
    }

    /// Serves on an already bound listener (for example one bound inside a
    /// test host's network namespace).
    pub fn serve(listener: TcpListener, name: &str) -> EchoServer {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("echo server {name} has no local address: {e}"));
        let backend = name.to_string();
        let task = tokio::spawn(accept_loop(listener, backend));
        EchoServer {
            name: name.to_string(),
            addr,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, backend: String) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let backend = backend.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, backend.clone()));
            // Serves HTTP/1.1 and HTTP/2 with prior knowledge on the same port.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(req: Request<Incoming>, backend: String) -> Result<Response<Full<Bytes>>, Infallible> {
    if is_websocket_upgrade(&req) {
        return Ok(accept_websocket(req, backend));
    }
    let delay = header_str(&req, "x-echo-delay-ms").and_then(|v| v.parse::<u64>().ok());
    let status = header_str(&req, "x-echo-status")
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let extra_headers: Vec<(HeaderName, HeaderValue)> = req
        .headers()
        .get_all("x-echo-response-header")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split_once('='))
        .filter_map(|(n, v)| {
            Some((
                HeaderName::try_from(n.trim()).ok()?,
                HeaderValue::try_from(v.trim()).ok()?,
            ))
        })
        .collect();

    let reply = EchoReply::read(req, &backend).await;
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut response = reply.into_response(status);
    for (name, value) in extra_headers {
        response.headers_mut().append(name, value);
    }
    Ok(response)
}

fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    header_str(req, UPGRADE.as_str()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && req.headers().contains_key(SEC_WEBSOCKET_KEY)
}

/// Answers 101 and echoes every text and binary message back until the peer closes.
fn accept_websocket(mut req: Request<Incoming>, backend: String) -> Response<Full<Bytes>> {
    let accept = req
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .map(|key| derive_accept_key(key.as_bytes()))
        .unwrap_or_default();
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(message)) = ws.next().await {
            if message.is_text() || message.is_binary() {
                if ws.send(message).await.is_err() {
                    break;
                }
            } else if message.is_close() {
                break;
            }
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::try_from(accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Ok(v) = HeaderValue::try_from(backend) {
        h.insert("x-echo-backend", v);
    }
    response
}
