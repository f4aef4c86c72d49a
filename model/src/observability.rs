//! A Gateway's access logs and tracing: the lines on the Envoys' stdout, and
//! the collectors they send log records and spans to. A collector that is
//! invalid or cannot be reached gets nothing, and the Gateway's ResolvedRefs
//! says so; requests flow either way.

use kube::ResourceExt;
use legate_crds::Gateway;
use legate_crds::conditions::reasons;
use legate_crds::observability::{AccessLog, AccessLogFormat, TracingProvider};
use legate_xds::ir;

use crate::names::object_ref;
use crate::services::ServiceIndex;
use crate::upstreams::{self, ClusterSettings, Reference};
use crate::verdicts::{Problem, Verdict, Verdicts};
use crate::world::World;

/// Sets the Gateway's observability in `config`.
pub fn add_observability(
    world: &World,
    gateway: &Gateway,
    index: &ServiceIndex,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    let origin = object_ref(gateway);
    let namespace = gateway.namespace().unwrap_or_default();
    // What the Envoys call themselves unless told otherwise.
    let own_name = format!("{}.{namespace}", gateway.name_any());
    let mut problems = Vec::new();
    let log = gateway.spec.access_log.as_ref();
    let otlp_log = log.and_then(|l| l.otlp.as_ref()).and_then(|otlp| {
        let wanted = Collector {
            address: &otlp.collector,
            field: "accessLog.otlp.collector",
            // OTLP over gRPC.
            settings: ClusterSettings::http2(),
            effect: "no access log records are sent",
        };
        let upstream = collector(world, index, &origin, wanted, config, &mut problems)?;
        Some(ir::OtlpLog {
            upstream,
            service_name: own_name.clone(),
        })
    });
    let tracing = gateway.spec.tracing.as_ref().and_then(|t| {
        let (settings, provider) = match t.provider {
            TracingProvider::OpenTelemetry => (
                ClusterSettings::http2(),
                ir::Tracer::OpenTelemetry {
                    service_name: t.service_name.clone().unwrap_or_else(|| own_name.clone()),
                },
            ),
            // Zipkin's JSON goes over plain HTTP/1.1.
            TracingProvider::Zipkin => (ClusterSettings::default(), ir::Tracer::Zipkin),
        };
        let wanted = Collector {
            address: &t.collector,
            field: "tracing.collector",
            settings,
            effect: "no spans are sent",
        };
        let upstream = collector(world, index, &origin, wanted, config, &mut problems)?;
        Some(ir::Tracing {
            upstream,
            provider,
            sampling_percent: t.sampling_percent.unwrap_or(100.0),
        })
    });
    if let Some(first) = problems.first() {
        // The Gateway's conditions show ResolvedRefs, not this verdict's Accepted.
        let message = problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join(". ");
        verdicts.entry(&origin).resolved_refs = Err(Problem::new(first.reason, message));
    }
    config.observability = ir::Observability {
        access_log: stdout_log(log),
        otlp_log,
        tracing,
    };
}

/// The lines on stdout.
fn stdout_log(log: Option<&AccessLog>) -> ir::AccessLog {
    let Some(log) = log else {
        return ir::AccessLog::default_json();
    };
    match log.format {
        AccessLogFormat::Off => ir::AccessLog::Off,
        AccessLogFormat::Text => ir::AccessLog::Text(log.text.clone().unwrap_or_default()),
        AccessLogFormat::Json => match &log.json {
            Some(fields) if !fields.is_empty() => ir::AccessLog::Json(fields.clone()),
            _ => ir::AccessLog::default_json(),
        },
    }
}

/// A collector a Gateway names, and what is lost without it.
struct Collector<'a> {
    /// `name[.namespace]:port`.
    address: &'a str,
    /// Where in the spec, for messages.
    field: &'a str,
    settings: ClusterSettings,
    effect: &'a str,
}

/// The upstream of a collector, or none when its address does not parse.
/// Every problem goes on `problems`.
fn collector(
    world: &World,
    index: &ServiceIndex,
    origin: &ir::ObjectRef,
    wanted: Collector<'_>,
    config: &mut ir::Gateway,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    if let Err(e) = upstreams::parse(wanted.address, origin.namespace()) {
        let message = format!("{}: {e}; {}", wanted.field, wanted.effect);
        problems.push(Problem::new(reasons::INVALID, message));
        return None;
    }
    let reference = Reference {
        service: wanted.address,
        origin,
        settings: wanted.settings,
        tls: None,
    };
    // A scratch verdict gathers whatever resolving says, Accepted's problems
    // (a Service of a namespace that does not consent) too.
    let mut verdict = Verdict::new(origin.clone());
    let upstream = upstreams::resolve_or_empty(world, index, &reference, wanted.effect, config, &mut verdict);
    problems.extend(verdict.accepted.err());
    problems.extend(verdict.resolved_refs.err());
    Some(upstream)
}
