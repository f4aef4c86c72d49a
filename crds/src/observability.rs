//! What a Gateway's Envoys report about the traffic they carry: access logs
//! (on stdout, and over OTLP to a collector) and traces (OpenTelemetry or
//! Zipkin).

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `name[.namespace]:port` of a Service (by port number or name).
pub const COLLECTOR_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)?:([0-9]{1,5}|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$";

/// The access log of a Gateway's Envoys.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.text) || self.format == 'Text'")
        .message("text is the format of Text logs; set format: Text")
        .field_path(".text"),
    validation = Rule::new("self.format != 'Text' || has(self.text)")
        .message("format Text needs text, an Envoy format string")
        .field_path(".text"),
    validation = Rule::new("!has(self.json) || self.format == 'JSON'")
        .message("json lists the fields of JSON logs; set format: JSON")
        .field_path(".json"),
)]
pub struct AccessLog {
    /// The lines on the Envoys' stdout: JSON (the default: start_time, method, path,
    /// authority, status, duration_ms, upstream_host, upstream_cluster, request_id, mapping
    /// and more), Text, or Off. `otlp` sends records whatever this says.
    #[serde(default)]
    pub format: AccessLogFormat,
    /// The fields of a JSON line: field name → Envoy format command, such as
    /// `"%REQ(:METHOD)%"`. Replaces the default fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub json: Option<BTreeMap<String, String>>,
    /// The line format for Text logs: an Envoy format string such as
    /// `"[%START_TIME%] %REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE%"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub text: Option<String>,
    /// Also send a log record per request to an OpenTelemetry collector over OTLP/gRPC,
    /// next to the stdout lines (set `format: Off` for OTLP alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpAccessLog>,
}

/// The form of access log lines.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum AccessLogFormat {
    /// One JSON object per request.
    #[default]
    #[serde(rename = "JSON")]
    Json,
    /// One line per request, formatted by `text`.
    Text,
    /// No lines on stdout.
    Off,
}

/// Access log records sent to an OpenTelemetry collector.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpAccessLog {
    /// The collector's OTLP/gRPC endpoint: `name[.namespace]:port` of a Kubernetes
    /// Service. Each record's body is `<method> <path> <protocol> <status>`; its attributes
    /// are the keys of the default JSON line but start_time (the record's own time);
    /// `service.name` is `<gateway>.<namespace>`.
    #[schemars(length(min = 1, max = 512), regex(pattern = COLLECTOR_PATTERN))]
    pub collector: String,
}

/// Tracing of a Gateway's requests.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.serviceName) || !has(self.provider) || self.provider != 'Zipkin'")
    .message("serviceName is for OpenTelemetry: Zipkin spans name the Gateway as <namespace>/<name>, their Envoys' cluster")
    .field_path(".serviceName"))]
pub struct Tracing {
    /// The collector: `name[.namespace]:port` of a Kubernetes Service that speaks
    /// OTLP/gRPC (OpenTelemetry) or takes Zipkin's JSON v2 at `/api/v2/spans` (Zipkin).
    #[schemars(length(min = 1, max = 512), regex(pattern = COLLECTOR_PATTERN))]
    pub collector: String,
    /// How spans are propagated and exported: OpenTelemetry (the default; W3C
    /// `traceparent` upstream, OTLP/gRPC to the collector) or Zipkin (B3 `x-b3-*` headers
    /// upstream, JSON over HTTP to the collector).
    #[serde(default)]
    pub provider: TracingProvider,
    /// The service name on the spans. Default: `<gateway>.<namespace>`. OpenTelemetry
    /// only: Zipkin spans carry `<namespace>/<gateway>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_name: Option<String>,
    /// The percentage of requests traced, 0 to 100 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub sampling_percent: Option<f64>,
}

/// Which tracer the Envoys run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum TracingProvider {
    /// Envoy's OpenTelemetry tracer: W3C trace context, spans over OTLP/gRPC.
    #[default]
    OpenTelemetry,
    /// Envoy's Zipkin tracer: B3 headers, spans as Zipkin v2 JSON over HTTP.
    Zipkin,
}
