//! An external authorization service, over HTTP (Envoy forwards the request's
//! method, path and allowed headers) or gRPC (envoy.service.auth.v3 Check).
//! It records every check and decides by the original request's path:
//! - a path containing `deny` is refused with 401, a body, and the headers
//!   `www-authenticate`, `set-cookie`, `location` and `x-auth-denied`;
//! - a path containing `slow` is answered after 3 s (to provoke timeouts);
//! - anything else is allowed, with the headers `x-user-id: alice` and
//!   `x-auth-extra: not-for-upstream` for Envoy to pass upstream or not.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse, HttpStatusCode,
    OkHttpResponse,
};
use envoy_types::ext_authz::v3::{CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use super::{Seen, Task, serve_http};

/// The body of a denial.
pub const DENIED_BODY: &str = "denied by the test auth service";
/// The `www-authenticate` of a denial.
pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"legate-test\"";
/// The `set-cookie` of a denial.
pub const SET_COOKIE: &str = "session=expired; Path=/";
/// The `location` of a denial.
pub const LOCATION: &str = "https://login.example.com/?from=legate-test";

/// One check, as the auth service saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// `HTTP` or `GRPC`.
    pub protocol: String,
    pub method: String,
    /// HTTP: the path the auth service was called with (prefix included, query
    /// included). gRPC: the original request's path, with its query.
    pub path: String,
    /// Lower-cased header names.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// gRPC only: `attributes.context_extensions`.
    pub context_extensions: BTreeMap<String, String>,
}

impl Check {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A running auth service; stops when dropped.
#[derive(Debug)]
pub struct AuthServer {
    pub checks: Seen<Check>,
    _task: Task,
}

impl AuthServer {
    /// Serves the HTTP protocol on `listener`.
    pub fn http(listener: TcpListener) -> AuthServer {
        let checks = Seen::default();
        let seen = checks.clone();
        AuthServer {
            checks,
            _task: serve_http(listener, move |req| answer_http(req, seen.clone())),
        }
    }

    /// Serves the gRPC protocol (envoy.service.auth.v3.Authorization) on `listener`.
    pub fn grpc(listener: TcpListener) -> AuthServer {
        let checks = Seen::default();
        let service = GrpcAuth {
            checks: checks.clone(),
        };
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(AuthorizationServer::new(service))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
        });
        AuthServer {
            checks,
            _task: Task(task),
        }
    }

    /// The last check whose path contains `marker`.
    pub fn check_for(&self, marker: &str) -> Option<Check> {
        self.checks.last_where(|c| c.path.contains(marker))
    }
}

async fn answer_http(
    req: hyper::Request<Incoming>,
    seen: Seen<Check>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut headers = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers.insert(
            name.as_str().to_string(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        );
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    seen.push(Check {
        protocol: "HTTP".into(),
        method: parts.method.to_string(),
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        context_extensions: BTreeMap::new(),
    });
    if path.contains("slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    let h = response.headers_mut();
    if path.contains("deny") {
        *response.body_mut() = Full::new(Bytes::from_static(DENIED_BODY.as_bytes()));
        *response.status_mut() = hyper::StatusCode::UNAUTHORIZED;
        let h = response.headers_mut();
        h.insert(
            "www-authenticate",
            hyper::header::HeaderValue::from_static(WWW_AUTHENTICATE),
        );
        h.insert("set-cookie", hyper::header::HeaderValue::from_static(SET_COOKIE));
        h.insert("location", hyper::header::HeaderValue::from_static(LOCATION));
        h.insert("x-auth-denied", hyper::header::HeaderValue::from_static("yes"));
    } else {
        h.insert("x-user-id", hyper::header::HeaderValue::from_static("alice"));
        h.insert(
            "x-auth-extra",
            hyper::header::HeaderValue::from_static("not-for-upstream"),
        );
    }
    Ok(response)
}

#[derive(Debug, Clone)]
struct GrpcAuth {
    checks: Seen<Check>,
}

#[tonic::async_trait]
impl Authorization for GrpcAuth {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let attributes = request.into_inner().attributes.unwrap_or_default();
        let http = attributes.request.and_then(|r| r.http).unwrap_or_default();
        let mut headers: BTreeMap<String, String> = http
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        if let Some(map) = &http.header_map {
            for h in &map.headers {
                let value = if h.value.is_empty() {
                    String::from_utf8_lossy(&h.raw_value).into_owned()
                } else {
                    h.value.clone()
                };
                headers.insert(h.key.to_ascii_lowercase(), value);
            }
        }
        let body = if http.body.is_empty() {
            String::from_utf8_lossy(&http.raw_body).into_owned()
        } else {
            http.body.clone()
        };
        let path = http.path.clone();
        self.checks.push(Check {
            protocol: "GRPC".into(),
            method: http.method.clone(),
            path: path.clone(),
            headers,
            body,
            context_extensions: attributes.context_extensions.into_iter().collect(),
        });
        if path.contains("slow") {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let response = if path.contains("deny") {
            let mut denied = DeniedHttpResponseBuilder::new();
            denied
                .set_http_status(HttpStatusCode::Unauthorized)
                .set_body(DENIED_BODY)
                .add_header("www-authenticate", WWW_AUTHENTICATE, None, false)
                .add_header("set-cookie", SET_COOKIE, None, false)
                .add_header("location", LOCATION, None, false)
                .add_header("x-auth-denied", "yes", None, false);
            let denied: DeniedHttpResponse = denied.build();
            let mut response = CheckResponse::with_status(tonic::Status::unauthenticated("denied"));
            response.set_http_response(denied);
            response
        } else {
            let mut ok = OkHttpResponseBuilder::new();
            ok.add_header("x-user-id", "alice", None, false).add_header(
                "x-auth-extra",
                "not-for-upstream",
                None,
                false,
            );
            let ok: OkHttpResponse = ok.build();
            let mut response = CheckResponse::with_status(tonic::Status::ok("allowed"));
            response.set_http_response(ok);
            response
        };
        Ok(tonic::Response::new(response))
    }
}
