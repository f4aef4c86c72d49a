//! A small HTTP client for tests: HTTP/1.1 or HTTP/2 with prior knowledge,
//! with the Host header under the test's control.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HOST, HeaderMap};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::echo::EchoReply;

/// A test's view of a response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The echo upstream's report of the request; panics with the body when the
    /// answer did not come from an echo server.
    pub fn echo(&self) -> EchoReply {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected an echo reply, got {} {:?}: {e}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A reusable client (connection pooling like a real user agent).
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl HttpClient {
    /// HTTP/1.1.
    pub fn http1() -> HttpClient {
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// HTTP/2 over cleartext with prior knowledge (h2c), as gRPC clients speak.
    pub fn h2c() -> HttpClient {
        HttpClient {
            inner: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
        }
    }

    /// GET `url`, optionally with a Host header other than the URL's.
    pub async fn get(&self, url: &str, host: Option<&str>) -> Result<Response, String> {
        let mut builder = Request::builder().method(Method::GET).uri(url);
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        let request = builder
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("building GET {url}: {e}"))?;
        self.send(request).await
    }

    /// Sends any request.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Response, String> {
        let what = format!("{} {}", request.method(), request.uri());
        let response = self
            .inner
            .request(request)
            .await
            .map_err(|e| format!("{what}: {e:?}"))?;
        read_whole(&what, response).await
    }
}

/// A response with its whole body read.
async fn read_whole<B>(what: &str, response: hyper::Response<B>) -> Result<Response, String>
where
    B: hyper::body::Body,
    B::Error: std::fmt::Display,
{
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("{what}: reading the body: {e}"))?
        .to_bytes();
    Ok(Response {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Sends `request` over a new connection to `addr` that starts with
/// `preface` (a PROXY protocol header, as a load balancer writes it).
pub async fn send_after_preface(
    addr: std::net::SocketAddr,
    preface: &[u8],
    request: Request<Full<Bytes>>,
) -> Result<Response, String> {
    use tokio::io::AsyncWriteExt;
    let what = format!("{} {} at {addr}", request.method(), request.uri());
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{what}: connecting: {e}"))?;
    stream
        .write_all(preface)
        .await
        .map_err(|e| format!("{what}: writing the preface: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("{what}: {e}"))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{what}: {e:?}"))?;
    read_whole(&what, response).await
}

/// GET `https://{sni}{path}` at `addr` over TLS (SNI `sni`), trusting only `ca_pem`.
pub async fn https_get(
    addr: std::net::SocketAddr,
    sni: &str,
    ca_pem: &str,
    path: &str,
) -> Result<Response, String> {
    use std::sync::Arc;
    use tokio_rustls::rustls;

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {sni}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = Request::builder()
        .uri(path)
        .header(HOST, sni)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Requests sent in a loop (every 10 ms) until `finish`: for checking that
/// nothing fails while something else happens (a restart, a failover).
#[derive(Debug)]
pub struct Traffic {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<TrafficReport>,
}

/// What a [`Traffic`] loop saw.
#[derive(Debug, Default)]
pub struct TrafficReport {
    pub sent: u64,
    pub failed: u64,
    /// The first failures: when (since the start) and what came back.
    pub failures: Vec<String>,
}

impl Traffic {
    /// GETs `url` with Host `host`; a request counts as failed unless it answers 200.
    pub fn start(url: String, host: &str) -> Traffic {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let host = host.to_string();
        let running = stop.clone();
        let task = tokio::spawn(async move {
            let client = HttpClient::http1();
            let started = std::time::Instant::now();
            let mut report = TrafficReport::default();
            while !running.load(Ordering::Relaxed) {
                let outcome = match client.get(&url, Some(&host)).await {
                    Ok(r) if r.status == 200 => None,
                    Ok(r) => Some(format!("status {}", r.status)),
                    Err(e) => Some(e),
                };
                report.sent += 1;
                if let Some(what) = outcome {
                    report.failed += 1;
                    if report.failures.len() < 5 {
                        report
                            .failures
                            .push(format!("at {:.3} s: {what}", started.elapsed().as_secs_f64()));
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            report
        });
        Traffic { stop, task }
    }

    /// Stops the loop; returns (requests sent, requests failed).
    pub async fn finish(self) -> (u64, u64) {
        let report = self.report().await;
        (report.sent, report.failed)
    }

    /// Stops the loop; returns what it saw, with the first failures.
    pub async fn report(self) -> TrafficReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}
