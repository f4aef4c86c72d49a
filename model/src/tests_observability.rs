//! A Gateway's access log sinks and tracers, and what its ResolvedRefs says
//! of their collectors.

use legate_crds::conditions::reasons;
use legate_xds::ir;
use serde_json::json;

use super::tests::{gateway, service, slice, verdict};
use super::*;

#[test]
fn otlp_records_and_zipkin_spans_go_to_their_collectors_each_over_its_protocol() {
    let world = World {
        gateways: vec![gateway(
            "shop",
            "edge",
            json!({
                "accessLog": { "format": "Off", "otlp": { "collector": "otel:80" } },
                "tracing": { "collector": "zipkin:80", "provider": "Zipkin", "samplingPercent": 5 },
            }),
        )],
        services: vec![service("shop", "otel"), service("shop", "zipkin")],
        endpoint_slices: vec![
            slice("shop", "otel", &[("198.18.0.2", true)]),
            slice("shop", "zipkin", &[("198.18.0.3", true)]),
        ],
        ..World::default()
    };
    let model = build(&world);
    let config = &model.gateways["shop/edge"];
    let o = &config.observability;
    assert_eq!(
        o.access_log,
        ir::AccessLog::Off,
        "format: Off stops the stdout lines only"
    );
    let log = o.otlp_log.as_ref().expect("OTLP records");
    assert_eq!(log.service_name, "edge.shop");
    assert_eq!(
        config.upstreams[&log.upstream].protocol,
        ir::UpstreamProtocol::Http2,
        "OTLP/gRPC"
    );
    let tracing = o.tracing.as_ref().expect("tracing");
    assert_eq!(tracing.provider, ir::Tracer::Zipkin);
    assert_eq!(tracing.sampling_percent, 5.0);
    assert_eq!(
        config.upstreams[&tracing.upstream].protocol,
        ir::UpstreamProtocol::Http1,
        "Zipkin's JSON over HTTP/1.1"
    );
    assert_eq!(config.endpoints[&tracing.upstream].len(), 1);
    assert_eq!(verdict(&model, "Gateway/shop/edge").resolved_refs, Ok(()));
}

#[test]
fn missing_collectors_are_each_named_on_the_gateway_and_the_stdout_log_stays() {
    let world = World {
        gateways: vec![gateway(
            "shop",
            "edge",
            json!({
                "accessLog": { "otlp": { "collector": "logs:4317" } },
                "tracing": { "collector": "spans:4317" },
            }),
        )],
        ..World::default()
    };
    let model = build(&world);
    let config = &model.gateways["shop/edge"];
    let o = &config.observability;
    assert_eq!(
        o.access_log,
        ir::AccessLog::default_json(),
        "stdout lines as before"
    );
    let log = o.otlp_log.as_ref().expect("the sink stays, with no endpoint");
    assert_eq!(config.endpoints[&log.upstream], Vec::new());
    let tracing = o.tracing.as_ref().expect("the tracer stays, with no endpoint");
    assert_eq!(
        tracing.provider,
        ir::Tracer::OpenTelemetry {
            service_name: "edge.shop".into()
        },
        "the default provider and service name"
    );
    let problem = verdict(&model, "Gateway/shop/edge")
        .resolved_refs
        .clone()
        .expect_err("no Services");
    assert_eq!(problem.reason, reasons::BACKEND_NOT_FOUND);
    assert_eq!(
        problem.message,
        "Service shop/logs does not exist; no access log records are sent. \
         Service shop/spans does not exist; no spans are sent"
    );
}
