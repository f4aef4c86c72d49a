//! What a Gateway's Envoys report about the traffic: access logs and traces.

use std::collections::BTreeMap;

/// Access logs and tracing of every HTTP listener of a Gateway.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Observability {
    pub access_log: AccessLog,
    pub tracing: Option<Tracing>,
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

    /// The fields logged unless the Gateway chooses its own.
    pub fn default_json() -> AccessLog {
        let fields = [
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
        AccessLog::Json(
            fields
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

/// OpenTelemetry tracing to a collector over OTLP/gRPC.
#[derive(Clone, PartialEq, Debug)]
pub struct Tracing {
    /// The upstream (by name) of the collector; it speaks HTTP/2.
    pub upstream: String,
    pub service_name: String,
    /// Share of requests traced, 0 to 100.
    pub sampling_percent: f64,
}
