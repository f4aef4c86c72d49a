//! What a Gateway's Envoys report about the traffic: access logs and traces.

use std::collections::BTreeMap;

/// Access logs and tracing of every HTTP listener of a Gateway.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Observability {
    /// Lines on stdout.
    pub access_log: AccessLog,
    /// Records to an OpenTelemetry collector, besides the lines.
    pub otlp_log: Option<OtlpLog>,
    pub tracing: Option<Tracing>,
}

impl Observability {
    /// The upstreams of the collectors every HTTP listener sends to.
    pub fn collectors(&self) -> impl Iterator<Item = &String> {
        let log = self.otlp_log.iter().map(|l| &l.upstream);
        log.chain(self.tracing.iter().map(|t| &t.upstream))
    }
}

/// Access log lines on Envoy's stdout.
#[derive(Clone, PartialEq, Debug)]
pub enum AccessLog {
    Off,
    /// One JSON object per request: key → Envoy format command (`%REQ(:METHOD)%`).
    Json(BTreeMap<String, String>),
    /// An Envoy format string; a newline is added when it has none.
    Text(String),
}

impl AccessLog {
    /// The route's Mapping as `namespace/name` (another owner as
    /// `Kind/namespace/name`), for access log formats: Envoy route metadata
    /// the translator sets on every route.
    pub const MAPPING_COMMAND: &'static str = "%METADATA(ROUTE:legate:mapping)%";

    /// The fields logged unless the Gateway chooses its own: key → Envoy
    /// format command.
    pub const DEFAULT_FIELDS: [(&'static str, &'static str); 16] = [
        ("start_time", "%START_TIME%"),
        ("method", "%REQ(:METHOD)%"),
        ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
        ("authority", "%REQ(:AUTHORITY)%"),
        ("protocol", "%PROTOCOL%"),
        ("status", "%RESPONSE_CODE%"),
        ("response_flags", "%RESPONSE_FLAGS%"),
        ("duration_ms", "%DURATION%"),
        ("bytes_received", "%BYTES_RECEIVED%"),
        ("bytes_sent", "%BYTES_SENT%"),
        ("upstream_host", "%UPSTREAM_HOST%"),
        ("upstream_cluster", "%UPSTREAM_CLUSTER%"),
        ("request_id", "%REQ(X-REQUEST-ID)%"),
        ("user_agent", "%REQ(USER-AGENT)%"),
        ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
        ("mapping", AccessLog::MAPPING_COMMAND),
    ];

    /// The default fields, as JSON lines.
    pub fn default_json() -> AccessLog {
        AccessLog::Json(
            AccessLog::DEFAULT_FIELDS
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog::default_json()
    }
}

/// Access log records to an OpenTelemetry collector over OTLP/gRPC.
#[derive(Clone, PartialEq, Debug)]
pub struct OtlpLog {
    /// The upstream (by name) of the collector; it speaks HTTP/2.
    pub upstream: String,
    /// The records' `service.name` resource attribute, and Envoy's log name.
    pub service_name: String,
}

impl OtlpLog {
    /// The body of each record.
    pub const BODY: &'static str =
        "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL% %RESPONSE_CODE%";

    /// The attributes of each record: the default JSON line's fields but the
    /// start time, which the record carries as its own time.
    pub fn attributes() -> impl Iterator<Item = (&'static str, &'static str)> {
        AccessLog::DEFAULT_FIELDS
            .into_iter()
            .filter(|(k, _)| *k != "start_time")
    }
}

/// Tracing of requests, to a collector.
#[derive(Clone, PartialEq, Debug)]
pub struct Tracing {
    /// The upstream (by name) of the collector.
    pub upstream: String,
    pub provider: Tracer,
    /// Share of requests traced, 0 to 100.
    pub sampling_percent: f64,
}

/// Which tracer Envoy runs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Tracer {
    /// W3C trace context; spans over OTLP/gRPC (the collector speaks HTTP/2).
    OpenTelemetry { service_name: String },
    /// B3 headers; spans as Zipkin v2 JSON over HTTP/1.1, whose service name
    /// is the Envoy's cluster (the Gateway).
    Zipkin,
}
