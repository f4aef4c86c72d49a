//! What every HTTP listener reports about its requests: access log lines on
//! stdout, access log records to an OpenTelemetry collector, and spans to an
//! OpenTelemetry or Zipkin collector.

use std::collections::BTreeMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::accesslog::v3::{AccessLog, access_log};
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, SubstitutionFormatString, data_source, substitution_format_string,
};
use envoy_types::pb::envoy::config::trace::v3::{OpenTelemetryConfig, ZipkinConfig, tracing, zipkin_config};
use envoy_types::pb::envoy::extensions::access_loggers::open_telemetry::v3::OpenTelemetryAccessLogConfig;
use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::StdoutAccessLog;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager;
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::{Any, Struct, Value, value};
use envoy_types::pb::opentelemetry::proto::common::v1::{AnyValue, KeyValue, KeyValueList, any_value};
use envoy_types::util::pack_any;
use prost::{Message, Name};

use super::encode::{append_message_field, encode_with_sorted_map};
use super::filters::{authority, grpc};
use super::route::duration;
use crate::ir;

/// Where Zipkin collectors take spans in Zipkin's JSON v2.
pub const ZIPKIN_SPANS_PATH: &str = "/api/v2/spans";

/// Every access log of a listener: the stdout lines, then the OTLP records.
pub fn access_logs(o: &ir::Observability) -> Vec<AccessLog> {
    stdout_log(&o.access_log)
        .into_iter()
        .chain(o.otlp_log.as_ref().map(otlp_log))
        .collect()
}

/// Access log lines on Envoy's stdout, where the pod's log collects them.
fn stdout_log(log: &ir::AccessLog) -> Option<AccessLog> {
    let format = match log {
        ir::AccessLog::Off => return None,
        ir::AccessLog::Text(text) => {
            let mut text = text.clone();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            SubstitutionFormatString {
                format: Some(substitution_format_string::Format::TextFormatSource(DataSource {
                    specifier: Some(data_source::Specifier::InlineString(text)),
                    ..DataSource::default()
                })),
                ..SubstitutionFormatString::default()
            }
            .encode_to_vec()
        }
        ir::AccessLog::Json(fields) => {
            // The JSON object is a protobuf Struct (a map): written sorted, so
            // that an unchanged listener encodes to the same bytes.
            let values: BTreeMap<String, Value> = fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Value {
                            kind: Some(value::Kind::StringValue(v.clone())),
                        },
                    )
                })
                .collect();
            let json = encode_with_sorted_map(&Struct::default(), |s| &mut s.fields, &values);
            let mut buf = Vec::new();
            append_message_field(&mut buf, SUBSTITUTION_FORMAT_JSON_FIELD, &json);
            buf
        }
    };
    let mut stdout = Vec::new();
    append_message_field(&mut stdout, STDOUT_LOG_FORMAT_FIELD, &format);
    Some(AccessLog {
        name: "envoy.access_loggers.stdout".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(Any {
            type_url: StdoutAccessLog::type_url(),
            value: stdout,
        })),
        ..AccessLog::default()
    })
}

/// `SubstitutionFormatString.json_format` and `StdoutAccessLog.log_format`.
const SUBSTITUTION_FORMAT_JSON_FIELD: u32 = 2;
const STDOUT_LOG_FORMAT_FIELD: u32 = 1;

fn text(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_owned())),
    }
}

fn key_values<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> KeyValueList {
    KeyValueList {
        values: pairs
            .map(|(key, value)| KeyValue {
                key: key.to_owned(),
                value: Some(text(value)),
                ..KeyValue::default()
            })
            .collect(),
    }
}

/// A log record per request to an OpenTelemetry collector, over OTLP/gRPC.
/// Envoy batches records and sends them at least every second.
fn otlp_log(log: &ir::OtlpLog) -> AccessLog {
    let config = OpenTelemetryAccessLogConfig {
        grpc_service: Some(grpc(&log.upstream, Duration::from_secs(5))),
        log_name: log.service_name.clone(),
        buffer_flush_interval: Some(duration(Duration::from_secs(1))),
        resource_attributes: Some(key_values(
            [("service.name", log.service_name.as_str())].into_iter(),
        )),
        body: Some(text(ir::OtlpLog::BODY)),
        attributes: Some(key_values(ir::OtlpLog::attributes())),
        ..OpenTelemetryAccessLogConfig::default()
    };
    AccessLog {
        name: "envoy.access_loggers.open_telemetry".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(pack_any(config))),
        ..AccessLog::default()
    }
}

/// The connection manager's tracer.
pub fn tracer(t: &ir::Tracing) -> http_connection_manager::Tracing {
    let provider = match &t.provider {
        ir::Tracer::OpenTelemetry { service_name } => tracing::Http {
            name: "envoy.tracers.opentelemetry".into(),
            config_type: Some(tracing::http::ConfigType::TypedConfig(pack_any(
                OpenTelemetryConfig {
                    grpc_service: Some(grpc(&t.upstream, Duration::from_secs(1))),
                    service_name: service_name.clone(),
                    ..OpenTelemetryConfig::default()
                },
            ))),
        },
        ir::Tracer::Zipkin => tracing::Http {
            name: "envoy.tracers.zipkin".into(),
            config_type: Some(tracing::http::ConfigType::TypedConfig(pack_any(ZipkinConfig {
                collector_cluster: t.upstream.clone(),
                collector_endpoint: ZIPKIN_SPANS_PATH.into(),
                collector_endpoint_version: zipkin_config::CollectorEndpointVersion::HttpJson as i32,
                // Without it Envoy sends the cluster name as the Host header.
                collector_hostname: authority(&t.upstream),
                // Trace ids as long as W3C's, as current Zipkin expects.
                trace_id_128bit: true,
                ..ZipkinConfig::default()
            }))),
        },
    };
    http_connection_manager::Tracing {
        random_sampling: Some(Percent {
            value: t.sampling_percent.clamp(0.0, 100.0),
        }),
        provider: Some(provider),
        ..http_connection_manager::Tracing::default()
    }
}
