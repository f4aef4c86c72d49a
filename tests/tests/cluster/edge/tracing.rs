//! Tracing: `spec.tracing` on the Gateway turns on Envoy's OpenTelemetry
//! tracer, exporting spans over OTLP gRPC to a collector behind a Service, or
//! with `provider: Zipkin` Envoy's Zipkin tracer, posting Zipkin JSON.

use legate_tests::TestHost;
use legate_tests::net::eventually;
use legate_tests::peers::expose;
use legate_tests::peers::otlp::{Collector, Span};
use legate_tests::peers::zipkin::ZipkinCollector;
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::json;

use super::{gateway, send, until};

const HOST: &str = "shop.example.com";

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`).
fn trace_id(traceparent: &str) -> String {
    traceparent.split('-').nth(1).unwrap_or_default().to_string()
}

async fn span_of(collector: &Collector, trace: &str) -> Span {
    eventually(
        &format!("a span of trace {trace} at the collector"),
        PATIENCE,
        || async { collector.spans.last_where(|s| s.trace_id == trace) },
    )
    .await
}

#[tokio::test]
async fn a_gateway_with_tracing_exports_a_span_per_request_to_the_collector() {
    let stage = Stage::new().await;
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let collector = Collector::serve(host.bind(4317).unwrap_or_else(|e| panic!("{e}")));
    expose(&stage.env, "otel", &host.addr().to_string(), 4317).await;
    stage
        .mapping("traced", json!({ "prefix": "/traced/", "service": "quote" }))
        .await;
    gateway(&stage, &[], json!({ "tracing": { "collector": "otel:4317" } })).await;

    let r = eventually("a traced request (traceparent upstream)", PATIENCE, || async {
        let r = send(&stage, "GET", "/traced/a", HOST, &[], "").await;
        (r.status == 200 && r.echo().header("traceparent").is_some()).then_some(r)
    })
    .await;
    let echo = r.echo();
    assert_eq!(echo.path, "/a");
    let trace = trace_id(echo.header("traceparent").unwrap_or_default());
    assert_eq!(trace.len(), 32, "a W3C trace id: {trace}");
    let span = span_of(&collector, &trace).await;
    assert_eq!(
        span.service_name,
        format!("edge.{}", stage.env.namespace),
        "serviceName defaults to <gateway>.<namespace>"
    );
    assert!(!span.span_id.is_empty());
    eprintln!("span: {span:?}");

    gateway(
        &stage,
        &[],
        json!({ "tracing": { "collector": "otel:4317", "serviceName": "storefront", "samplingPercent": 100 } }),
    )
    .await;
    let sent = std::sync::Mutex::new(Vec::new());
    let span = eventually("a span named by serviceName", PATIENCE, || async {
        let r = until(&stage, "GET", "/traced/b", HOST, &[], 200).await;
        if let (Some(tp), Ok(mut sent)) = (r.echo().header("traceparent"), sent.lock()) {
            sent.push(trace_id(tp));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        collector.spans.last_where(|s| s.service_name == "storefront")
    })
    .await;
    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        sent.contains(&span.trace_id),
        "the span is of a request sent: {span:?} {sent:?}"
    );
}

#[tokio::test]
async fn a_missing_collector_is_reported_on_the_gateway_and_requests_still_flow() {
    let stage = Stage::new().await;
    stage
        .mapping("traced", json!({ "prefix": "/traced/", "service": "quote" }))
        .await;
    gateway(&stage, &[], json!({ "tracing": { "collector": "absent:4317" } })).await;
    let c = stage
        .condition_reason("Gateway", "edge", "ResolvedRefs", "BackendNotFound")
        .await;
    assert_eq!(c["status"], "False");
    assert_eq!(
        c["message"],
        format!(
            "Service {}/absent does not exist; no spans are sent",
            stage.env.namespace
        )
    );
    let r = until(&stage, "GET", "/traced/a", HOST, &[], 200).await;
    assert_eq!(r.echo().path, "/a");

    gateway(&stage, &[], json!({})).await;
    let c = stage.condition("Gateway", "edge", "ResolvedRefs", "True").await;
    assert_eq!(c["message"], "Every Service it refers to exists");
}

#[tokio::test]
async fn a_gateway_with_zipkin_tracing_sends_b3_upstream_and_spans_to_the_zipkin_collector() {
    let stage = Stage::new().await;
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let zipkin = ZipkinCollector::serve(host.bind(9411).unwrap_or_else(|e| panic!("{e}")));
    expose(&stage.env, "zipkin", &host.addr().to_string(), 9411).await;
    stage
        .mapping("traced", json!({ "prefix": "/traced/", "service": "quote" }))
        .await;
    gateway(
        &stage,
        &[],
        json!({ "tracing": { "collector": "zipkin:9411", "provider": "Zipkin" } }),
    )
    .await;

    let headers = [("x-echo-status", "202")];
    let r = eventually("a request traced with B3 headers upstream", PATIENCE, || async {
        let r = send(&stage, "GET", "/traced/zipkin?x=1", HOST, &headers, "").await;
        (r.status == 202 && r.echo().header("x-b3-traceid").is_some()).then_some(r)
    })
    .await;
    let echo = r.echo();
    assert_eq!(echo.path, "/zipkin");
    let trace = echo.header("x-b3-traceid").unwrap_or_default().to_string();
    assert_eq!(trace.len(), 32, "128-bit trace ids: {trace}");
    let span = eventually(
        &format!("a span of trace {trace} at the Zipkin collector"),
        PATIENCE,
        || async { zipkin.spans.last_where(|s| s.trace_id == trace) },
    )
    .await;
    eprintln!("span: {span:?}");
    let namespace = &stage.env.namespace;
    assert_eq!(
        span.service_name,
        format!("{namespace}/edge"),
        "Zipkin spans carry the Envoys' cluster: the Gateway"
    );
    assert_eq!(
        span.name, HOST,
        "Envoy names a span after the request's host: {span:?}"
    );
    assert_eq!(span.kind, "SERVER", "{span:?}");
    assert_eq!(
        Some(span.id.as_str()),
        echo.header("x-b3-spanid"),
        "the upstream's parent is this span: {span:?}"
    );
    assert!(span.tag("upstream_cluster").contains("quote"), "{span:?}");
    assert_eq!(span.tag("http.method"), "GET", "{span:?}");
    assert_eq!(
        span.tag("http.status_code"),
        r.status.as_str(),
        "the status the client saw: {span:?}"
    );
    assert!(
        span.tag("http.url").ends_with("/traced/zipkin?x=1"),
        "the URL the client asked for: {span:?}"
    );
    assert_eq!(
        span.host,
        format!("zipkin.{namespace}:9411"),
        "spans are posted to the collector's own host name"
    );
}
