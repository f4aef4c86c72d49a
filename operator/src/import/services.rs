//! Emissary `AuthService`, `RateLimitService` and `TCPMapping` → their
//! Legate namesakes.

use legate_crds::auth_service::{AuthProtocol, IncludeBody};
use legate_crds::common::Duration;
use legate_crds::{
    AuthService, AuthServiceSpec, RateLimitService, RateLimitServiceSpec, TCPMapping, TCPMappingSpec,
};

use super::context::Context;
use super::fields::{Fields, millis};
use super::hostname::glob;
use super::labels::EMISSARY_DOMAIN;
use super::object::Emissary;
use super::policy::{ENVOY_STATUSES, clamp_i32};
use super::report::DocReport;
use super::service::upstream;

/// Emissary applies every AuthService and RateLimitService to every request;
/// Legate only when it is in the Gateway's namespace.
fn scope_note(kind: &str, namespace: &str, ctx: &Context, report: &mut DocReport) {
    let gateway_ns = ctx.gateway.as_ref().and_then(|g| g.namespace.as_deref());
    if gateway_ns == Some(namespace) {
        return;
    }
    report.changed(
        "metadata.namespace",
        format!(
            "Emissary's {kind} governs every request; Legate's is Gateway-wide only in the Gateway's namespace, and elsewhere governs the requests of its own namespace's Mappings (docs/tenancy.md)"
        ),
    );
}

fn timeout(spec: &mut Fields, report: &mut DocReport) -> Option<Duration> {
    let ms = spec.integer("timeout_ms", report)?;
    let converted = millis(ms).map(Duration);
    if converted.is_none() {
        report.changed(
            "spec.timeout_ms",
            "0 means no timeout in Emissary; Legate's default applies",
        );
    }
    converted
}

fn protocol_version(spec: &mut Fields, report: &mut DocReport) {
    if let Some(v) = spec.string("protocol_version", report)
        && v == "v2"
    {
        report.changed(
            "spec.protocol_version",
            "v2: Legate speaks Envoy's v3 protocol only; the service must answer v3",
        );
    }
}

/// Converts one AuthService.
pub fn auth_service(
    mut object: Emissary,
    ctx: &Context,
    report: &mut DocReport,
) -> Result<AuthService, String> {
    let namespace = object.namespace_or_default().to_string();
    let spec = &mut object.spec;
    ctx.ambassador_id(spec, report)?;
    let raw = spec.string("auth_service", report).ok_or("no auth_service")?;
    let up = upstream(&raw, "spec.auth_service", &namespace, report)?;
    let mut service = up.service;
    if up.tls {
        report.changed(
            "spec.auth_service",
            "an https:// in-cluster auth service: Legate's AuthService has no upstream TLS settings; it is called in cleartext",
        );
    }
    match spec.take("tls") {
        None => {}
        Some(serde_json::Value::Bool(false)) => {}
        Some(_) => report.dropped("spec.tls", "Legate's AuthService has no upstream TLS settings"),
    }
    let protocol = match spec.string("proto", report).as_deref() {
        Some("grpc") => AuthProtocol::Grpc,
        Some("http") | None => AuthProtocol::Http,
        Some(other) => return Err(format!("proto {other:?} is neither http nor grpc")),
    };
    let mut include_body = spec.object("include_body", report).and_then(|mut b| {
        let max = b.integer("max_bytes", report);
        let partial = b.boolean("allow_partial", report);
        b.finish("include_body", report);
        max.map(|m| IncludeBody {
            max_bytes: clamp_i32(m),
            allow_partial: partial,
        })
    });
    if spec.boolean("allow_request_body", report) == Some(true) && include_body.is_none() {
        report.changed(
            "spec.allow_request_body",
            "includeBody {maxBytes: 4096, allowPartial: true}, as Emissary reads it",
        );
        include_body = Some(IncludeBody {
            max_bytes: 4096,
            allow_partial: Some(true),
        });
    }
    let status_on_error = spec.object("status_on_error", report).and_then(|mut s| {
        let code = s.integer("code", report).map(clamp_i32);
        if let Some(c) = code.filter(|c| !ENVOY_STATUSES.contains(c)) {
            report.dropped(
                s.at("code"),
                format!("{c} is not a status Envoy can send; Legate's default 403 applies"),
            );
            s.finish("status_on_error", report);
            return None;
        }
        s.finish("status_on_error", report);
        code
    });
    if service.starts_with("https://") && protocol == AuthProtocol::Grpc {
        service = service.replacen("https://", "http://", 1);
        report.changed(
            "spec.auth_service",
            "a gRPC auth service is called in cleartext HTTP/2",
        );
    }
    let out = AuthServiceSpec {
        service,
        protocol,
        path_prefix: spec.string("path_prefix", report).and_then(|p| {
            if p.starts_with('/') {
                Some(p)
            } else {
                report.dropped("spec.path_prefix", format!("{p:?} does not start with \"/\""));
                None
            }
        }),
        timeout: timeout(spec, report).unwrap_or_else(|| Duration::new("5s")),
        allowed_request_headers: spec.strings("allowed_request_headers", report),
        allowed_authorization_headers: spec.strings("allowed_authorization_headers", report),
        include_body,
        failure_mode_allow: spec.boolean("failure_mode_allow", report),
        status_on_error,
        gateways: ctx.gateways(),
    };
    protocol_version(spec, report);
    spec.drop(
        "add_auth_headers",
        "Legate sends the auth service no extra headers",
        report,
    );
    spec.drop("add_linkerd_headers", "Legate adds no Linkerd headers", report);
    spec.drop(
        "stats_name",
        "Legate names the auth service's statistics itself",
        report,
    );
    spec.drop(
        "circuit_breakers",
        "Legate's AuthService has no circuit breakers",
        report,
    );
    spec.ignore("v2ExplicitTLS");
    scope_note("AuthService", &namespace, ctx, report);
    object.spec.finish("an AuthService", report);
    Ok(AuthService {
        metadata: object.meta(),
        spec: out,
        status: None,
    })
}

/// Converts one RateLimitService.
pub fn rate_limit_service(
    mut object: Emissary,
    ctx: &Context,
    report: &mut DocReport,
) -> Result<RateLimitService, String> {
    let namespace = object.namespace_or_default().to_string();
    let spec = &mut object.spec;
    ctx.ambassador_id(spec, report)?;
    let raw = spec.string("service", report).ok_or("no service")?;
    let up = upstream(&raw, "spec.service", &namespace, report)?;
    if up.tls || spec.take("tls").is_some() {
        report.dropped(
            "spec.tls",
            "Legate calls the rate limit service in cleartext HTTP/2",
        );
    }
    let service = up.service.replacen("https://", "http://", 1);
    let out = RateLimitServiceSpec {
        service,
        domain: spec
            .string("domain", report)
            .unwrap_or_else(|| EMISSARY_DOMAIN.into()),
        timeout: timeout(spec, report),
        failure_mode_deny: spec.boolean("failure_mode_deny", report),
        gateways: ctx.gateways(),
    };
    protocol_version(spec, report);
    spec.drop(
        "stats_name",
        "Legate names the rate limit service's statistics itself",
        report,
    );
    spec.ignore("v2ExplicitTLS");
    scope_note("RateLimitService", &namespace, ctx, report);
    object.spec.finish("a RateLimitService", report);
    Ok(RateLimitService {
        metadata: object.meta(),
        spec: out,
        status: None,
    })
}

/// Converts one TCPMapping.
pub fn tcp_mapping(
    mut object: Emissary,
    ctx: &Context,
    report: &mut DocReport,
) -> Result<TCPMapping, String> {
    let namespace = object.namespace_or_default().to_string();
    let spec = &mut object.spec;
    ctx.ambassador_id(spec, report)?;
    let port = spec.integer("port", report).ok_or("no port")?;
    if !(1..=65535).contains(&port) {
        return Err(format!("port {port} is not a TCP port"));
    }
    let raw = spec.string("service", report).ok_or("no service")?;
    let up = upstream(&raw, "spec.service", &namespace, report)?;
    if up.service.contains("://") {
        return Err(format!(
            "service {raw:?} is a host outside the cluster: a Legate TCPMapping forwards to a Kubernetes Service only"
        ));
    }
    let sni = spec
        .string("host", report)
        .map(|h| glob("spec.host", &h, report))
        .transpose()?;
    let mut tls_context = None;
    match spec.take("tls") {
        None | Some(serde_json::Value::Bool(false)) => {
            if up.tls {
                report.dropped(
                    "spec.service",
                    "https://: a Legate TCPMapping forwards plain TCP; no TLS to the upstream",
                );
            }
        }
        Some(serde_json::Value::String(name)) if !name.is_empty() => {
            report.changed(
                "spec.tls",
                format!("TLSContext {name}: Envoy terminates TLS with it (tlsContext), as in Emissary"),
            );
            tls_context = Some(name);
        }
        Some(_) => report.dropped(
            "spec.tls",
            "TLS to the upstream: a Legate TCPMapping forwards plain TCP",
        ),
    }
    let idle = spec.string("idle_timeout_ms", report).and_then(|t| {
        let converted = t.trim().parse::<i64>().ok().and_then(millis).map(Duration);
        if converted.is_none() {
            report.dropped(
                "spec.idle_timeout_ms",
                format!("{t:?} is not a positive number of milliseconds"),
            );
        }
        converted
    });
    let weight = spec.integer("weight", report).map(clamp_i32);
    let out = TCPMappingSpec {
        port: clamp_i32(port),
        service: up.service,
        sni,
        tls_context,
        weight,
        idle_timeout: idle,
        gateways: ctx.gateways(),
    };
    spec.changed(
        "address",
        "Legate listens on the address the Gateway's Envoys bind; a TCPMapping cannot choose another",
        report,
    );
    for (key, why) in [
        ("enable_ipv4", "Legate resolves with Envoy's defaults"),
        ("enable_ipv6", "Legate resolves with Envoy's defaults"),
        ("circuit_breakers", "Legate's TCPMapping has no circuit breakers"),
        ("resolver", "Legate resolves Services from EndpointSlices"),
        ("cluster_tag", "Legate names clusters itself"),
        ("stats_name", "Legate names statistics itself"),
    ] {
        spec.drop(key, why, report);
    }
    spec.ignore("v2ExplicitTLS");
    report.changed(
        "spec.port",
        format!("the Gateway needs a TCP listener on port {port} (a TLS listener when host is set) for this to route"),
    );
    object.spec.finish("a TCPMapping", report);
    Ok(TCPMapping {
        metadata: object.meta(),
        spec: out,
        status: None,
    })
}
