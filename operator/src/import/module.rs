//! The `ambassador` Module's `config` → fields of the Legate Gateway the
//! import makes: route defaults, HTTP options, the access log, and what
//! every listener does with client addresses. Keys with no Legate field are
//! reported one by one.

use std::collections::BTreeMap;

use legate_crds::common::Duration;
use legate_crds::gateway::RouteDefaults;
use legate_crds::http::{Compression, CompressionAlgorithm, ErrorResponse, HttpOptions};
use legate_crds::observability::{AccessLog, AccessLogFormat};
use serde_json::Value;

use super::context::Context;
use super::fields::{Fields, kind_of, millis};
use super::object::Emissary;
use super::policy;
use super::report::DocReport;

/// What the Module gives the Gateway.
#[derive(Debug, Default)]
pub struct ModuleSettings {
    pub defaults: RouteDefaults,
    pub http: HttpOptions,
    pub access_log: Option<AccessLog>,
    /// `xff_num_trusted_hops`, for every HTTP and HTTPS listener.
    pub trusted_hops: Option<u32>,
    /// `use_proxy_proto`, for every listener.
    pub proxy_protocol: bool,
    /// `service_port`: the HTTP listener's port when there are no Listeners.
    pub service_port: Option<i32>,
}

/// Module keys with no Legate counterpart, and why.
const DROPPED: &[(&str, &str)] = &[
    (
        "admin_port",
        "Legate chooses the Envoy admin port (loopback only)",
    ),
    (
        "diag_port",
        "Legate has no diagnostics service; `legate explain` and `legate routes` answer offline",
    ),
    ("diagnostics", "Legate has no /ambassador/v0/diag/ service"),
    ("liveness_probe", "Legate's Envoys have their own probe port"),
    ("readiness_probe", "Legate's Envoys have their own probe port"),
    ("debug_mode", "Legate's operator has its own log level"),
    (
        "envoy_validation_timeout",
        "Legate validates configuration at admission and by Envoy's ACK/NACK",
    ),
    ("regex_type", "Legate always uses RE2 (safe) regexes"),
    ("regex_max_size", "Legate keeps Envoy's RE2 program size limit"),
    (
        "prune_unreachable_routes",
        "Legate builds routes per host, so unreachable ones are never made",
    ),
    ("lua_scripts", "Legate runs no Lua"),
    ("grpc_stats", "Legate configures no gRPC statistics filter"),
    (
        "statsd",
        "Legate's Envoys expose Prometheus statistics on the probe port",
    ),
    ("enable_ipv4", "Legate resolves DNS with Envoy's defaults"),
    ("enable_ipv6", "Legate resolves DNS with Envoy's defaults"),
    (
        "resolver",
        "Legate resolves Services from EndpointSlices and URLs by DNS",
    ),
    (
        "header_case_overrides",
        "Legate does not rewrite header name case",
    ),
    (
        "proper_case",
        "Legate sends header names in lowercase, as HTTP/2 does",
    ),
    (
        "allow_chunked_length",
        "Legate keeps Envoy's default: both Content-Length and Transfer-Encoding is refused",
    ),
    ("enable_http10", "Legate accepts HTTP/1.1 and HTTP/2 only"),
    (
        "headers_with_underscores_action",
        "Legate keeps Envoy's default for header names with underscores",
    ),
    (
        "max_request_headers_kb",
        "Legate keeps Envoy's default request header size limit (60 KiB)",
    ),
    (
        "listener_idle_timeout_ms",
        "Legate keeps Envoy's default downstream idle timeout",
    ),
    (
        "preserve_external_request_id",
        "Legate lets Envoy generate x-request-id",
    ),
    (
        "suppress_envoy_headers",
        "Legate keeps Envoy's x-envoy-* response headers",
    ),
    (
        "set_current_client_cert_details",
        "Legate forwards no client certificate details",
    ),
    (
        "forward_client_cert_details",
        "Legate forwards no client certificate details (x-forwarded-client-cert)",
    ),
    (
        "reject_requests_with_escaped_slashes",
        "Legate keeps Envoy's default for %2F in paths",
    ),
    (
        "enable_grpc_http11_bridge",
        "Legate has no gRPC-HTTP/1.1 bridge (grpc-web is spec.http.grpcWeb)",
    ),
    (
        "cluster_idle_timeout_ms",
        "Legate keeps Envoy's default upstream idle timeout",
    ),
    (
        "cluster_max_connection_lifetime_ms",
        "Legate does not limit upstream connection lifetimes",
    ),
    ("add_linkerd_headers", "Legate adds no Linkerd headers"),
    (
        "default_label_domain",
        "Legate's descriptors go with the RateLimitService's spec.domain",
    ),
    (
        "default_labels",
        "Legate adds no default rate limit labels: give Mappings rateLimits",
    ),
    (
        "defaults",
        "Emissary's per-kind defaults are not read: Legate's route defaults are the Gateway's spec.defaults",
    ),
    (
        "auth_enabled",
        "Legate calls an AuthService when there is one, unless a Mapping sets bypassAuth",
    ),
    (
        "use_ambassador_namespace_for_service_resolution",
        "Legate reads a service without namespace in the Mapping's own namespace",
    ),
];

/// Module switches whose value here is what Legate does anyway: set so,
/// they lose nothing and get no note.
const SAME_AS_LEGATE: &[(&str, bool)] = &[
    ("add_linkerd_headers", false),
    ("allow_chunked_length", false),
    ("debug_mode", false),
    ("enable_grpc_http11_bridge", false),
    ("enable_http10", false),
    ("enable_ipv4", true),
    ("enable_ipv6", false),
    ("preserve_external_request_id", false),
    ("proper_case", false),
    ("prune_unreachable_routes", true),
    ("reject_requests_with_escaped_slashes", false),
    ("suppress_envoy_headers", false),
    ("use_ambassador_namespace_for_service_resolution", false),
];

/// Converts the `ambassador` Module; `Err` for another Module.
pub fn convert(
    mut object: Emissary,
    ctx: &Context,
    report: &mut DocReport,
) -> Result<ModuleSettings, String> {
    match object.name.as_str() {
        "ambassador" => {}
        "tls" => {
            return Err(
                "the tls Module (Emissary 0.x TLS settings) is not read: write a TLSContext, then import it"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "a Module named {other:?}: Emissary reads only the ambassador Module"
            ));
        }
    }
    let spec = &mut object.spec;
    ctx.ambassador_id(spec, report)?;
    let mut config = spec
        .object("config", report)
        .unwrap_or_else(|| Fields::new("spec.config", Default::default()));
    let mut out = ModuleSettings::default();
    let f = &mut config;
    if let Some(ms) = f.integer("cluster_request_timeout_ms", report) {
        out.defaults.timeout = millis(ms).map(Duration);
    }
    out.defaults.cors = f.object("cors", report).map(|c| policy::cors(c, report));
    out.defaults.retry_policy = f
        .object("retry_policy", report)
        .map(|r| policy::retry_policy(r, report));
    if let Some(value) = f.take("circuit_breakers") {
        out.defaults.circuit_breakers =
            policy::circuit_breakers(value, "spec.config.circuit_breakers", report);
    }
    out.defaults.load_balancer = f
        .object("load_balancer", report)
        .and_then(|l| policy::load_balancer(l, report));
    out.defaults.tcp_keepalive = f
        .object("keepalive", report)
        .map(|k| policy::keepalive(k, report));

    out.http.server_name = f.string("server_name", report);
    out.http.grpc_web = f.boolean("enable_grpc_web", report).unwrap_or(false);
    if let Some(mut gzip) = f.object("gzip", report) {
        out.http.compression = Some(compression(&mut gzip, report));
        gzip.finish("gzip", report);
    }
    if let Some(mut buffer) = f.object("buffer", report) {
        out.http.max_request_body_bytes = buffer.integer("max_request_bytes", report).and_then(|b| {
            if (1..=legate_crds::http::MAX_BODY_LIMIT).contains(&b) {
                Some(b)
            } else {
                report.dropped(
                    "spec.config.buffer.max_request_bytes",
                    format!("{b} is not between 1 byte and 1 GiB"),
                );
                None
            }
        });
        buffer.finish("buffer", report);
    }
    out.http.ip_allow = addresses(f, "ip_allow", report);
    out.http.ip_deny = addresses(f, "ip_deny", report);
    out.http.error_responses = error_responses(f, report);
    out.access_log = access_log(f, report);

    if ctx.has_listeners {
        let why = "Emissary 2 and later read this from Listeners (l7Depth; protocol HTTPPROXY or HTTPSPROXY), and the input has Listeners: it had no effect, and Legate's listeners take theirs";
        f.drop("xff_num_trusted_hops", why, report);
        f.drop("use_proxy_proto", why, report);
    }
    if let Some(hops) = f.integer("xff_num_trusted_hops", report) {
        out.trusted_hops = u32::try_from(hops.clamp(0, 10)).ok().filter(|h| *h > 0);
        if hops > 10 {
            report.changed(
                "spec.config.xff_num_trusted_hops",
                "Legate trusts at most 10 hops",
            );
        }
    }
    out.proxy_protocol = f.boolean("use_proxy_proto", report).unwrap_or(false);
    if let Some(port) = f.integer("service_port", report) {
        out.service_port = i32::try_from(port).ok().filter(|p| (1..=65535).contains(p));
        report.changed(
            "spec.config.service_port",
            format!("{port}: the port of the Gateway's HTTP listener when no Listener is imported; imported Listeners set the ports otherwise"),
        );
    }
    if f.boolean("use_remote_address", report) == Some(false) {
        report.changed(
            "spec.config.use_remote_address",
            "false: Legate takes the client address from the connection (or PROXY protocol), and from X-Forwarded-For only through trustedHops",
        );
    }
    if f.boolean("x_forwarded_proto_redirect", report) == Some(true) {
        report.changed(
            "spec.config.x_forwarded_proto_redirect",
            "Legate redirects cleartext requests for TLS hosts by TLSContext insecure.action; it believes X-Forwarded-Proto from trustedHops proxies",
        );
    }
    if let Some(false) = f.boolean("strip_matching_host_port", report) {
        report.changed(
            "spec.config.strip_matching_host_port",
            "false: Legate always ignores the port of the Host header when matching",
        )
    }
    if f.boolean("merge_slashes", report) == Some(false) {
        report.changed(
            "spec.config.merge_slashes",
            "false: Legate always merges slashes and normalizes paths",
        );
    }
    for (key, why) in DROPPED {
        match SAME_AS_LEGATE.iter().find(|(k, _)| k == key) {
            Some((_, same)) => f.drop_unless(key, &Value::Bool(*same), why, report),
            None => f.drop(key, why, report),
        }
    }
    config.finish("the ambassador Module's config", report);
    object.spec.finish("a Module", report);
    Ok(out)
}

fn compression(gzip: &mut Fields, report: &mut DocReport) -> Compression {
    let min = gzip.integer("min_content_length", report).map(policy::clamp_i32);
    let types = gzip
        .strings("content_type", report)
        .into_iter()
        .filter(|t| {
            let plain = t.split_once('/').is_some_and(|(a, b)| {
                let ok = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".+-".contains(c))
                };
                ok(a) && ok(b)
            });
            if !plain {
                report.dropped(
                    "spec.config.gzip.content_type",
                    format!("{t:?}: Legate lists media types without parameters"),
                );
            }
            plain
        })
        .collect();
    for key in [
        "compression_level",
        "compression_strategy",
        "memory_level",
        "window_bits",
        "content_length",
        "disabled_on_etag_header",
        "remove_accept_encoding_header",
    ] {
        gzip.drop(key, "Legate compresses with Envoy's gzip defaults", report);
    }
    Compression {
        algorithms: vec![CompressionAlgorithm::Gzip],
        content_types: types,
        min_content_length: min,
    }
}

fn addresses(f: &mut Fields, key: &str, report: &mut DocReport) -> Vec<String> {
    let mut out = Vec::new();
    for (i, entry) in f.list(key, report).into_iter().enumerate() {
        let mut e = Fields::of(format!("spec.config.{key}[{i}]"), entry, report);
        if let Some(cidr) = e.string("remote", report) {
            out.push(cidr);
        }
        if let Some(cidr) = e.string("peer", report) {
            report.changed(
                e.at("peer"),
                "Legate checks the client address it trusts: the peer, unless PROXY protocol or trustedHops say otherwise",
            );
            out.push(cidr);
        }
        e.finish("an address entry", report);
    }
    out
}

fn error_responses(f: &mut Fields, report: &mut DocReport) -> Vec<ErrorResponse> {
    let mut out = Vec::new();
    for (i, entry) in f.list("error_response_overrides", report).into_iter().enumerate() {
        let mut e = Fields::of(
            format!("spec.config.error_response_overrides[{i}]"),
            entry,
            report,
        );
        let status = e.integer("on_status_code", report);
        let mut body = e.object("body", report);
        let converted = body.as_mut().and_then(|b| {
            let content_type = b.string("content_type", report);
            b.drop(
                "text_format_source",
                "a file on Emissary's pod: put the text in the Gateway",
                report,
            );
            if let Some(text) = b.string("text_format", report) {
                return Some((text, content_type));
            }
            match b.take("json_format") {
                Some(Value::Object(map)) => {
                    let text = serde_json::to_string(&map).unwrap_or_default();
                    Some((text, Some("application/json".to_string())))
                }
                Some(other) => {
                    report.dropped(
                        b.at("json_format"),
                        format!("expected an object, found {}", kind_of(&other)),
                    );
                    None
                }
                None => None,
            }
        });
        if let Some(mut b) = body {
            b.finish("an error response body", report);
        }
        match (status, converted) {
            (Some(status), Some((body, content_type))) if (400..=599).contains(&status) => {
                if body.contains('%') {
                    report.changed(
                        e.at("body"),
                        "Legate sends the body as written: Envoy format operators such as %RESPONSE_CODE% are not expanded",
                    );
                }
                out.push(ErrorResponse {
                    status: policy::clamp_i32(status),
                    body,
                    content_type: content_type.and_then(|c| {
                        if c.contains('/') {
                            Some(c.to_ascii_lowercase())
                        } else {
                            report.dropped(e.at("body.content_type"), format!("{c:?} is not a media type"));
                            None
                        }
                    }),
                });
            }
            _ => report.dropped(
                e.path.clone(),
                "needs on_status_code (400-599) and a text_format or json_format body",
            ),
        }
        e.finish("an error response override", report);
    }
    out
}

fn access_log(f: &mut Fields, report: &mut DocReport) -> Option<AccessLog> {
    let kind = f.string("envoy_log_type", report);
    let format = f.take("envoy_log_format");
    if let Some(path) = f.string("envoy_log_path", report)
        && !matches!(path.as_str(), "/dev/fd/1" | "/dev/stdout")
    {
        report.changed(
            "spec.config.envoy_log_path",
            format!(
                "{path}: Legate's Envoys log on their stdout (and to an OTLP collector with accessLog.otlp)"
            ),
        );
    }
    if kind.is_none() && format.is_none() {
        return None;
    }
    let mut log = AccessLog::default();
    match (kind.as_deref(), format) {
        (Some("json") | Some("typed_json"), Some(Value::Object(map))) => {
            log.format = AccessLogFormat::Json;
            let fields: BTreeMap<String, String> = map
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
                .collect();
            log.json = Some(fields);
        }
        (Some("json") | Some("typed_json"), None) => log.format = AccessLogFormat::Json,
        (Some("text") | None, Some(Value::String(text))) => {
            log.format = AccessLogFormat::Text;
            log.text = Some(text);
        }
        (Some("text"), None) => {
            report.changed(
                "spec.config.envoy_log_type",
                "text with Envoy's default format: Legate's default is its JSON line; set format Text with a text to keep lines",
            );
            return None;
        }
        (kind, format) => {
            report.dropped(
                "spec.config.envoy_log_format",
                format!(
                    "{kind:?} with {}: not a combination Emissary documents",
                    format.as_ref().map(kind_of).unwrap_or("no format")
                ),
            );
            return None;
        }
    }
    if kind.as_deref() == Some("typed_json") {
        report.changed(
            "spec.config.envoy_log_type",
            "typed_json: Legate writes JSON lines whose values are strings",
        );
    }
    Some(log)
}
