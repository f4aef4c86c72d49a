//! A minimal OpenTelemetry collector: the OTLP gRPC TraceService's and
//! LogsService's Export, recording every span and log record with its
//! service name.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use tokio::net::TcpListener;

use super::{Seen, Task};

/// One span, as the collector received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The resource's `service.name`.
    pub service_name: String,
    pub name: String,
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits.
    pub span_id: String,
    /// The span's attributes, values as strings.
    pub attributes: BTreeMap<String, String>,
}

/// One log record, as the collector received it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The resource's attributes (`service.name`, and Envoy's own labels).
    pub resource: BTreeMap<String, String>,
    /// The body, as a string.
    pub body: String,
    /// The record's attributes, values as strings.
    pub attributes: BTreeMap<String, String>,
    /// When the request started, in nanoseconds since the epoch.
    pub time_unix_nano: u64,
}

impl LogRecord {
    /// An attribute's value, or "" when it is absent.
    pub fn attribute(&self, key: &str) -> &str {
        self.attributes.get(key).map(String::as_str).unwrap_or_default()
    }
}

/// A running collector; stops when dropped.
#[derive(Debug)]
pub struct Collector {
    pub spans: Seen<Span>,
    pub logs: Seen<LogRecord>,
    _task: Task,
}

impl Collector {
    pub fn serve(listener: TcpListener) -> Collector {
        let spans = Seen::default();
        let logs = Seen::default();
        let exporter = Exporter {
            spans: spans.clone(),
            logs: logs.clone(),
        };
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(exporter.clone()))
                .add_service(LogsServiceServer::new(exporter))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
        });
        Collector {
            spans,
            logs,
            _task: Task(task),
        }
    }
}

#[derive(Debug, Clone)]
struct Exporter {
    spans: Seen<Span>,
    logs: Seen<LogRecord>,
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Exporter {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            let service_name = resource.get("service.name").cloned().unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    self.spans.push(Span {
                        service_name: service_name.clone(),
                        name: span.name.clone(),
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        attributes: attributes(&span.attributes),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Exporter {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        for resource_logs in request.into_inner().resource_logs {
            let resource = resource_logs
                .resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            for scope in resource_logs.scope_logs {
                for record in scope.log_records {
                    self.logs.push(LogRecord {
                        resource: resource.clone(),
                        body: text(record.body.as_ref()),
                        attributes: attributes(&record.attributes),
                        time_unix_nano: record.time_unix_nano,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}
