//! A minimal Zipkin collector: takes Zipkin v2 JSON span lists POSTed to
//! `/api/v2/spans` (the path a Zipkin server listens on) and records every
//! span. Anything else gets 404 and is not recorded, so a span seen here
//! came the way a real Zipkin expects.

use std::collections::BTreeMap;
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::net::TcpListener;

use super::{Seen, Task, serve_http};

/// Where Zipkin servers take spans.
pub const SPANS_PATH: &str = "/api/v2/spans";

/// One span, as the collector received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Lower-case hex, 16 or 32 digits.
    pub trace_id: String,
    pub id: String,
    pub name: String,
    /// `SERVER`, `CLIENT`, …
    pub kind: String,
    /// `localEndpoint.serviceName`.
    pub service_name: String,
    pub tags: BTreeMap<String, String>,
    /// The `Host` header of the POST that brought it.
    pub host: String,
}

impl Span {
    /// A tag's value, or "" when it is absent.
    pub fn tag(&self, key: &str) -> &str {
        self.tags.get(key).map(String::as_str).unwrap_or_default()
    }
}

/// A running collector; stops when dropped.
#[derive(Debug)]
pub struct ZipkinCollector {
    pub spans: Seen<Span>,
    _task: Task,
}

impl ZipkinCollector {
    pub fn serve(listener: TcpListener) -> ZipkinCollector {
        let spans = Seen::default();
        let seen = spans.clone();
        let task = serve_http(listener, move |req| receive(req, seen.clone()));
        ZipkinCollector { spans, _task: task }
    }
}

fn status(code: u16) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    response
}

async fn receive(
    req: hyper::Request<Incoming>,
    seen: Seen<Span>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    if parts.method != hyper::Method::POST || parts.uri.path() != SPANS_PATH {
        return Ok(status(404));
    }
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let Ok(Value::Array(spans)) = serde_json::from_slice::<Value>(&body) else {
        return Ok(status(400));
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    for span in spans {
        let tags = span["tags"]
            .as_object()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default();
        seen.push(Span {
            trace_id: text(&span["traceId"]),
            id: text(&span["id"]),
            name: text(&span["name"]),
            kind: text(&span["kind"]),
            service_name: text(&span["localEndpoint"]["serviceName"]),
            tags,
            host: host.clone(),
        });
    }
    // What a Zipkin server answers.
    Ok(status(202))
}
