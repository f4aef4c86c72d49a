//! The access log and tracer sinks of an HTTP listener: OTLP log records
//! next to the stdout lines, and Zipkin next to OpenTelemetry.

use std::sync::Arc;

use envoy_types::pb::envoy::config::accesslog::v3::access_log;
use envoy_types::pb::envoy::config::core::v3::grpc_service;
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::config::trace::v3::{ZipkinConfig, tracing, zipkin_config};
use envoy_types::pb::envoy::extensions::access_loggers::open_telemetry::v3::OpenTelemetryAccessLogConfig;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::opentelemetry::proto::common::v1::any_value;
use envoy_types::util::pack_any;
use prost::Message;

use super::Translator;
use super::tests::{base, golden, one};
use crate::ir;
use crate::render::decode_any;
use crate::resource::ResourceType;

const LOGS: &str = "default/otel:4317~00000001";
const ZIPKIN: &str = "observability/zipkin:9411";

fn observed() -> ir::Observability {
    ir::Observability {
        access_log: ir::AccessLog::default_json(),
        otlp_log: Some(ir::OtlpLog {
            upstream: LOGS.into(),
            service_name: "edge.default".into(),
        }),
        tracing: Some(ir::Tracing {
            upstream: ZIPKIN.into(),
            provider: ir::Tracer::Zipkin,
            sampling_percent: 100.0,
        }),
    }
}

/// The listener's connection manager, and the clusters it refers to.
fn connection_manager(o: ir::Observability) -> (HttpConnectionManager, Vec<Arc<str>>) {
    let mut t = Translator::new();
    let updates = t.translate(base().into_iter().chain([super::Change::SetObservability(o)]));
    let resource = one(&updates, ResourceType::Listener);
    let clusters = resource
        .references
        .iter()
        .filter(|(kind, _)| *kind == ResourceType::Cluster)
        .map(|(_, name)| name.clone())
        .collect();
    let listener = Listener::decode(&*resource.body).expect("Listener");
    let Some(filter::ConfigType::TypedConfig(any)) = listener.filter_chains[0].filters[0].config_type.clone()
    else {
        panic!("the HCM has a typed config");
    };
    (HttpConnectionManager::decode(&*any.value).expect("HCM"), clusters)
}

#[test]
fn otlp_records_go_next_to_the_stdout_lines_and_zipkin_gets_json_v2() {
    let (hcm, clusters) = connection_manager(observed());
    for collector in [LOGS, ZIPKIN] {
        assert!(
            clusters.iter().any(|c| &**c == collector),
            "the collector {collector} is a dependency of the listener: {clusters:?}"
        );
    }
    let names: Vec<&str> = hcm.access_log.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "envoy.access_loggers.stdout",
            "envoy.access_loggers.open_telemetry"
        ],
        "both sinks, stdout first"
    );
    let Some(access_log::ConfigType::TypedConfig(any)) = &hcm.access_log[1].config_type else {
        panic!("the OTLP access log has a typed config");
    };
    let otlp = OpenTelemetryAccessLogConfig::decode(&*any.value).expect("OpenTelemetryAccessLogConfig");
    let Some(grpc_service::TargetSpecifier::EnvoyGrpc(grpc)) = otlp
        .grpc_service
        .as_ref()
        .and_then(|g| g.target_specifier.clone())
    else {
        panic!("the records go over Envoy's gRPC client: {otlp:?}");
    };
    assert_eq!(grpc.cluster_name, LOGS);
    assert_eq!(
        grpc.authority, "otel.default:4317",
        "a valid :authority, without the settings hash"
    );
    assert_eq!(otlp.log_name, "edge.default");
    let attributes: Vec<(String, String)> = otlp
        .attributes
        .iter()
        .flat_map(|l| l.values.iter())
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                Some(any_value::Value::StringValue(s)) => s,
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect();
    for (key, command) in [
        ("method", "%REQ(:METHOD)%"),
        ("status", "%RESPONSE_CODE%"),
        ("mapping", ir::AccessLog::MAPPING_COMMAND),
    ] {
        assert!(
            attributes.contains(&(key.to_owned(), command.to_owned())),
            "{key} = {command} in {attributes:?}"
        );
    }
    assert!(
        !attributes.iter().any(|(k, _)| k == "start_time"),
        "the record's own time says when"
    );

    let tracing = hcm.tracing.expect("tracing is on");
    let Some(tracing::Http {
        name,
        config_type: Some(tracing::http::ConfigType::TypedConfig(any)),
    }) = tracing.provider
    else {
        panic!("the tracer has a typed config");
    };
    assert_eq!(name, "envoy.tracers.zipkin");
    let zipkin = ZipkinConfig::decode(&*any.value).expect("ZipkinConfig");
    assert_eq!(zipkin.collector_cluster, ZIPKIN);
    assert_eq!(zipkin.collector_endpoint, "/api/v2/spans");
    assert_eq!(
        zipkin.collector_endpoint_version,
        zipkin_config::CollectorEndpointVersion::HttpJson as i32
    );
    assert_eq!(zipkin.collector_hostname, "zipkin.observability:9411");
    golden(
        "listener_otlp_log_and_zipkin",
        &format!("{}\n{}\n", decode_any(&pack_any(otlp.clone())), decode_any(&any)),
    );
}

#[test]
fn without_otlp_only_the_stdout_log_remains_and_off_leaves_the_otlp_one() {
    let stdout_only = ir::Observability {
        otlp_log: None,
        ..observed()
    };
    let (hcm, clusters) = connection_manager(stdout_only);
    assert_eq!(hcm.access_log.len(), 1);
    assert!(!clusters.iter().any(|c| &**c == LOGS), "{clusters:?}");

    let otlp_only = ir::Observability {
        access_log: ir::AccessLog::Off,
        ..observed()
    };
    let (hcm, _) = connection_manager(otlp_only);
    let names: Vec<&str> = hcm.access_log.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["envoy.access_loggers.open_telemetry"]);
}
