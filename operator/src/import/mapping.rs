//! Emissary `Mapping` → Legate `Mapping`: the match (host, path, method,
//! headers, query), where requests go (service, rewrite, redirect) and the
//! route's policies. A match Legate cannot express refuses the Mapping: a
//! dropped match would widen the route to requests that are not its own.

use std::collections::BTreeMap;

use legate_crds::common::{Duration, HEADER_NAME_PATTERN, HealthCheck};
use legate_crds::mapping::{HeaderValue, Redirect, RegexSubstitution, UpstreamTls};
use legate_crds::{Mapping, MappingSpec};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

use super::context::Context;
use super::fields::{Fields, kind_of, millis};
use super::hostname::mapping_hostname;
use super::labels::rate_limits;
use super::object::Emissary;
use super::policy;
use super::report::DocReport;
use super::service::upstream;

static HEADER_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(HEADER_NAME_PATTERN).expect("HEADER_NAME_PATTERN is a valid regex"));

/// Emissary Mapping fields that configure nothing Legate has, with why.
const DROPPED: &[(&str, &str)] = &[
    (
        "add_linkerd_headers",
        "Legate adds no Linkerd l5d-dst-override header",
    ),
    (
        "cluster_idle_timeout_ms",
        "Legate keeps Envoy's default idle timeout for upstream connections",
    ),
    (
        "cluster_max_connection_lifetime_ms",
        "Legate does not limit the lifetime of upstream connections",
    ),
    (
        "cluster_tag",
        "Legate names upstream clusters after the Service and the Mapping's settings",
    ),
    (
        "dns_type",
        "Legate chooses DNS resolution itself (EDS for Services, DNS for URLs)",
    ),
    ("docs", "Legate has no developer portal"),
    (
        "enable_ipv4",
        "Legate resolves hosts outside the cluster with Envoy's defaults",
    ),
    (
        "enable_ipv6",
        "Legate resolves hosts outside the cluster with Envoy's defaults",
    ),
    (
        "envoy_override",
        "raw Envoy configuration: Legate generates every route from typed fields only",
    ),
    (
        "modules",
        "per-Mapping Module overrides have no Legate counterpart",
    ),
    (
        "outlier_detection",
        "Emissary's string form is not read; set Legate's outlierDetection by hand",
    ),
    ("priority", "Legate routes every request at default priority"),
    (
        "resolver",
        "Legate resolves Services from EndpointSlices and URLs by DNS; there are no resolvers to choose",
    ),
    ("respect_dns_ttl", "Legate refreshes DNS with Envoy's defaults"),
    (
        "stats_name",
        "Legate names statistics per Mapping (the Gateway's routeStats)",
    ),
    (
        "error_response_overrides",
        "Legate's error bodies are the Gateway's (spec.http.errorResponses), not per Mapping",
    ),
    (
        "bypass_error_response_overrides",
        "Legate's error bodies are the Gateway's, for every route",
    ),
];

/// Converts one Mapping; `Err` is why it is refused.
pub fn convert(mut object: Emissary, ctx: &Context, report: &mut DocReport) -> Result<Mapping, String> {
    let namespace = object.namespace_or_default().to_string();
    let spec = &mut object.spec;
    ctx.ambassador_id(spec, report)?;
    let mut out = MappingSpec {
        gateways: ctx.gateways(),
        hostname: mapping_hostname(spec, report)?,
        prefix: None,
        path: None,
        path_regex: None,
        case_sensitive: spec.boolean("case_sensitive", report).unwrap_or(true),
        method: None,
        headers: BTreeMap::new(),
        regex_headers: BTreeMap::new(),
        query_parameters: BTreeMap::new(),
        regex_query_parameters: BTreeMap::new(),
        precedence: spec
            .integer("precedence", report)
            .map(policy::clamp_i32)
            .unwrap_or(0),
        service: None,
        rewrite: "/".into(),
        regex_rewrite: None,
        host_rewrite: spec.string("host_rewrite", report),
        auto_host_rewrite: spec.boolean("auto_host_rewrite", report),
        weight: None,
        timeout: None,
        idle_timeout: None,
        connect_timeout: None,
        retry_policy: None,
        circuit_breakers: None,
        load_balancer: None,
        health_check: None,
        outlier_detection: None,
        tcp_keepalive: None,
        cors: None,
        compression: None,
        max_request_body_bytes: None,
        ip_allow: Vec::new(),
        ip_deny: Vec::new(),
        jwt: None,
        add_request_headers: BTreeMap::new(),
        add_response_headers: BTreeMap::new(),
        remove_request_headers: Vec::new(),
        remove_response_headers: Vec::new(),
        allow_upgrade: Vec::new(),
        grpc: spec.boolean("grpc", report),
        shadow: spec.boolean("shadow", report),
        redirect: None,
        bypass_auth: spec.boolean("bypass_auth", report),
        auth_context_extensions: string_map(spec, "auth_context_extensions", report),
        rate_limits: Vec::new(),
        local_rate_limit: None,
        upstream_tls: None,
    };
    path_match(spec, &mut out, report)?;
    request_match(spec, &mut out, report)?;
    destination(spec, &namespace, ctx, &mut out, report)?;
    timeouts(spec, &mut out, report);
    policies(spec, &mut out, report);
    headers(spec, &mut out, report);
    if let Some(labels) = spec.object("labels", report) {
        out.rate_limits = rate_limits(labels, report);
    }
    if let Some(weight) = spec.integer("weight", report) {
        if (0..=100).contains(&weight) {
            out.weight = Some(policy::clamp_i32(weight));
        } else {
            report.dropped("spec.weight", format!("{weight} is not a percentage (0-100)"));
        }
    }
    if out.host_rewrite.is_some() && out.auto_host_rewrite == Some(true) {
        report.dropped(
            "spec.auto_host_rewrite",
            "host_rewrite is set too; Legate takes one of them, and the explicit host wins",
        );
        out.auto_host_rewrite = None;
    }
    for (key, why) in DROPPED {
        spec.drop(key, why, report);
    }
    // How Emissary spelled a v2 object it converted to v3alpha1: the names of
    // headers and query parameters that were `true` (present) in v2.
    for name in spec.strings("v2BoolHeaders", report) {
        out.headers.remove(&name);
        out.regex_headers.insert(name, ".*".into());
    }
    for name in spec.strings("v2BoolQueryParameters", report) {
        out.query_parameters.remove(&name);
        out.regex_query_parameters.insert(name, ".*".into());
    }
    spec.ignore("v2ExplicitTLS"); // the v2 spelling of tls: no meaning
    object.spec.finish("a Mapping", report);
    Ok(Mapping {
        metadata: object.meta(),
        spec: out,
        status: None,
    })
}

fn path_match(spec: &mut Fields, out: &mut MappingSpec, report: &mut DocReport) -> Result<(), String> {
    let prefix = spec
        .string("prefix", report)
        .ok_or("no prefix: every Emissary Mapping needs one")?;
    let regex = spec.boolean("prefix_regex", report).unwrap_or(false);
    let exact = spec.boolean("prefix_exact", report).unwrap_or(false);
    if regex {
        if exact {
            report.dropped(
                "spec.prefix_exact",
                "prefix_regex is set too: the regex must match the whole path anyway",
            );
        }
        out.path_regex = Some(prefix);
    } else if !prefix.starts_with('/') {
        return Err(format!(
            "prefix {prefix:?} does not start with \"/\": no request path matches it"
        ));
    } else if exact {
        out.path = Some(prefix);
    } else {
        out.prefix = Some(prefix);
    }
    Ok(())
}

fn request_match(spec: &mut Fields, out: &mut MappingSpec, report: &mut DocReport) -> Result<(), String> {
    let method_regex = spec.boolean("method_regex", report).unwrap_or(false);
    if let Some(method) = spec.string("method", report) {
        let upper = method.to_ascii_uppercase();
        let plain = upper.chars().all(|c| c.is_ascii_uppercase()) && !upper.is_empty();
        if !plain {
            return Err(format!(
                "method {method:?}{}: Legate matches one method by name; write one Mapping per method",
                if method_regex { " with method_regex" } else { "" }
            ));
        }
        if method_regex {
            report.changed(
                "spec.method_regex",
                format!("the regex {method:?} is one method: method {upper}"),
            );
        }
        out.method = Some(upper);
    }
    matchers(
        spec,
        "headers",
        &mut out.headers,
        &mut out.regex_headers,
        true,
        report,
    )?;
    let mut regex_headers = BTreeMap::new();
    matchers(
        spec,
        "regex_headers",
        &mut regex_headers,
        &mut BTreeMap::new(),
        true,
        report,
    )?;
    out.regex_headers.extend(regex_headers);
    matchers(
        spec,
        "query_parameters",
        &mut out.query_parameters,
        &mut out.regex_query_parameters,
        false,
        report,
    )?;
    let mut regex_query = BTreeMap::new();
    matchers(
        spec,
        "regex_query_parameters",
        &mut regex_query,
        &mut BTreeMap::new(),
        false,
        report,
    )?;
    out.regex_query_parameters.extend(regex_query);
    Ok(())
}

/// Reads a map of exact (or regex) matchers; a `true` value means "present",
/// which Legate writes as the regex `.*`.
fn matchers(
    spec: &mut Fields,
    key: &str,
    exact: &mut BTreeMap<String, String>,
    present: &mut BTreeMap<String, String>,
    headers: bool,
    report: &mut DocReport,
) -> Result<(), String> {
    let Some(value) = spec.take(key) else {
        return Ok(());
    };
    let Value::Object(map) = value else {
        return Err(format!(
            "spec.{key} is {}, not a map: its requests cannot be matched",
            kind_of(&value)
        ));
    };
    for (name, v) in map {
        if headers && !HEADER_NAME.is_match(&name) {
            return Err(format!(
                "spec.{key}.{name}: Legate matches request headers by their HTTP names; pseudo-headers such as :authority are matched by hostname, method and path"
            ));
        }
        match v {
            Value::Bool(true) => {
                report.changed(
                    format!("spec.{key}.{name}"),
                    format!(
                        "true (present, any value) is the regex \".*\" in Legate's regex{}",
                        if headers { "Headers" } else { "QueryParameters" }
                    ),
                );
                present.insert(name, ".*".into());
            }
            Value::String(s) => {
                exact.insert(name, s);
            }
            Value::Number(n) => {
                exact.insert(name, n.to_string());
            }
            other => {
                return Err(format!(
                    "spec.{key}.{name} is {}: Legate cannot match it, and dropping it would widen the route",
                    kind_of(&other)
                ));
            }
        }
    }
    Ok(())
}

fn destination(
    spec: &mut Fields,
    namespace: &str,
    ctx: &Context,
    out: &mut MappingSpec,
    report: &mut DocReport,
) -> Result<(), String> {
    let service = spec
        .string("service", report)
        .ok_or("no service: every Emissary Mapping needs one")?;
    let rewrite = spec.take("rewrite");
    let regex_rewrite = spec
        .object("regex_rewrite", report)
        .and_then(|f| regex_pair(f, report));
    if spec.boolean("host_redirect", report).unwrap_or(false) {
        return redirect(spec, &service, rewrite, out, report);
    }
    for key in [
        "path_redirect",
        "prefix_redirect",
        "regex_redirect",
        "redirect_response_code",
    ] {
        spec.drop(
            key,
            "goes with host_redirect, which is not set (as in Emissary, it has no effect)",
            report,
        );
    }
    let up = upstream(&service, "spec.service", namespace, report)?;
    out.service = Some(up.service);
    let tls_field = spec.take("tls");
    out.upstream_tls = match tls_field {
        None | Some(Value::Bool(false)) => up.tls.then(UpstreamTls::default_tls),
        Some(Value::Bool(true)) => Some(UpstreamTls::default_tls()),
        Some(Value::String(s)) if s.is_empty() => up.tls.then(UpstreamTls::default_tls),
        Some(Value::String(name)) => match ctx.origination.get(&(namespace.to_string(), name.clone())) {
            Some(tls) => {
                report.changed(
                    "spec.tls",
                    format!(
                        "TLSContext {name}: its secret, ca_secret and sni are this Mapping's upstreamTls"
                    ),
                );
                Some(tls.clone())
            }
            None => {
                return Err(format!(
                    "tls names TLSContext {name:?}, which is not in the input (or has hosts, making it a server context): its client certificate and CA would be lost; import it with this Mapping"
                ));
            }
        },
        Some(other) => {
            report.dropped(
                "spec.tls",
                format!(
                    "expected true, false or a TLSContext name, found {}",
                    kind_of(&other)
                ),
            );
            up.tls.then(UpstreamTls::default_tls)
        }
    };
    match (regex_rewrite, rewrite) {
        (Some(pair), rewrite) => {
            if rewrite.is_some() {
                report.dropped("spec.rewrite", "regex_rewrite is set too, and replaces it");
            }
            out.regex_rewrite = Some(pair);
            out.rewrite = String::new();
        }
        (None, Some(Value::String(r))) => out.rewrite = r,
        (None, Some(other)) => report.dropped(
            "spec.rewrite",
            format!("expected a string, found {}", kind_of(&other)),
        ),
        (None, None) => {}
    }
    if out.path_regex.is_some() && out.regex_rewrite.is_none() && !out.rewrite.is_empty() {
        report.changed(
            "spec.rewrite",
            "a prefix_regex Mapping gets no prefix rewrite in Legate: the path goes upstream unchanged (use regex_rewrite to change it)",
        );
        out.rewrite = String::new();
    }
    Ok(())
}

fn redirect(
    spec: &mut Fields,
    service: &str,
    rewrite: Option<Value>,
    out: &mut MappingSpec,
    report: &mut DocReport,
) -> Result<(), String> {
    if rewrite.is_some() {
        report.dropped(
            "spec.rewrite",
            "a redirect sends the client elsewhere: there is no upstream path to rewrite",
        );
    }
    let (https, host) = match service.strip_prefix("https://") {
        Some(host) => (true, host),
        None => (false, service.strip_prefix("http://").unwrap_or(service)),
    };
    let code = spec.integer("redirect_response_code", report).unwrap_or(301);
    if ![301, 302, 303, 307, 308].contains(&code) {
        return Err(format!(
            "redirect_response_code {code} is not one of 301, 302, 303, 307, 308"
        ));
    }
    let path = spec.string("path_redirect", report);
    let prefix = spec.string("prefix_redirect", report);
    let regex = spec
        .object("regex_redirect", report)
        .and_then(|f| regex_pair(f, report));
    if [path.is_some(), prefix.is_some(), regex.is_some()]
        .iter()
        .filter(|x| **x)
        .count()
        > 1
    {
        return Err("more than one of path_redirect, prefix_redirect and regex_redirect".into());
    }
    spec.drop("tls", "a redirect makes no upstream connection", report);
    out.redirect = Some(Redirect {
        host: Some(host.trim_end_matches('/').to_string()),
        path,
        prefix,
        regex,
        response_code: policy::clamp_i32(code),
        https_redirect: https.then_some(true),
    });
    Ok(())
}

fn regex_pair(mut f: Fields, report: &mut DocReport) -> Option<RegexSubstitution> {
    let pattern = f.string("pattern", report);
    let substitution = f.string("substitution", report).unwrap_or_default();
    f.finish("a regex substitution", report);
    match pattern {
        Some(pattern) if !pattern.is_empty() => Some(RegexSubstitution {
            pattern,
            substitution,
        }),
        _ => {
            report.dropped(f.path.clone(), "no pattern");
            None
        }
    }
}

fn timeouts(spec: &mut Fields, out: &mut MappingSpec, report: &mut DocReport) {
    for (key, slot) in [
        ("timeout_ms", &mut out.timeout),
        ("idle_timeout_ms", &mut out.idle_timeout),
        ("connect_timeout_ms", &mut out.connect_timeout),
    ] {
        let Some(ms) = spec.integer(key, report) else {
            continue;
        };
        match millis(ms) {
            Some(d) => *slot = Some(Duration(d)),
            None => report.changed(
                format!("spec.{key}"),
                "0 means no timeout in Emissary; Legate has no unlimited timeout, so the Gateway's default (else 3s) applies",
            ),
        }
    }
}

fn policies(spec: &mut Fields, out: &mut MappingSpec, report: &mut DocReport) {
    out.cors = spec.object("cors", report).map(|f| policy::cors(f, report));
    out.retry_policy = spec
        .object("retry_policy", report)
        .map(|f| policy::retry_policy(f, report));
    if let Some(value) = spec.take("circuit_breakers") {
        out.circuit_breakers = policy::circuit_breakers(value, "spec.circuit_breakers", report);
    }
    out.load_balancer = spec
        .object("load_balancer", report)
        .and_then(|f| policy::load_balancer(f, report));
    out.tcp_keepalive = spec
        .object("keepalive", report)
        .map(|f| policy::keepalive(f, report));
    let checks = spec.list("health_checks", report);
    for (i, check) in checks.into_iter().enumerate() {
        let path = format!("spec.health_checks[{i}]");
        if out.health_check.is_some() {
            report.dropped(
                path,
                "Legate runs one active health check per Mapping: the first one is kept",
            );
            continue;
        }
        out.health_check = health_check(Fields::of(path, check, report), report);
    }
    let mut upgrades = spec.strings("allow_upgrade", report);
    if spec.boolean("use_websocket", report) == Some(true) {
        report.changed("spec.use_websocket", "allowUpgrade: [websocket]");
        upgrades.push("websocket".into());
    }
    for upgrade in upgrades {
        let lower = upgrade.to_ascii_lowercase();
        if lower.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !lower.is_empty() {
            if !out.allow_upgrade.contains(&lower) {
                out.allow_upgrade.push(lower);
            }
        } else {
            report.dropped(
                "spec.allow_upgrade",
                format!(
                    "{upgrade:?}: Legate allows upgrades to protocol names of letters, digits and dashes only"
                ),
            );
        }
    }
}

/// One entry of `health_checks` → Legate `healthCheck` (HTTP checks only).
fn health_check(mut f: Fields, report: &mut DocReport) -> Option<HealthCheck> {
    let duration = |f: &mut Fields, key: &str, report: &mut DocReport| {
        f.string(key, report)
            .and_then(|t| super::fields::seconds(&t))
            .map(Duration)
    };
    let mut interval = duration(&mut f, "interval", report);
    if let Some(d) = interval
        .as_ref()
        .filter(|d| d.to_std().is_ok_and(|s| s < std::time::Duration::from_secs(1)))
    {
        report.changed(
            f.at("interval"),
            format!(
                "{}: Legate checks at most once a second (every Envoy checks every endpoint): 1s",
                d.as_str()
            ),
        );
        interval = Some(Duration::new("1s"));
    }
    let timeout = duration(&mut f, "timeout", report);
    let healthy = f.integer("healthy_threshold", report).map(policy::clamp_i32);
    let unhealthy = f.integer("unhealthy_threshold", report).map(policy::clamp_i32);
    let mut kind = f.object("health_check", report);
    let mut http = kind.as_mut().and_then(|k| k.object("http", report));
    if let Some(k) = kind.as_mut() {
        k.drop(
            "grpc",
            "Legate's active health checks are HTTP GETs; gRPC health checks are not converted",
            report,
        );
    }
    let result = http.as_mut().and_then(|h| {
        let path = h.string("path", report)?;
        let host = h.string("hostname", report);
        let mut statuses = Vec::new();
        for (i, range) in h.list("expected_statuses", report).into_iter().enumerate() {
            let mut r = Fields::of(format!("{}.expected_statuses[{i}]", h.path), range, report);
            let (min, max) = (r.integer("min", report), r.integer("max", report));
            r.finish("a status range", report);
            if let (Some(min), Some(max)) = (min, max) {
                // Envoy's ranges are half-open, [min, max); Legate lists
                // statuses, so a range becomes its registered statuses.
                statuses.extend(
                    (min.max(100)..max.min(600))
                        .map(policy::clamp_i32)
                        .filter(|s| policy::ENVOY_STATUSES.contains(s)),
                );
            }
        }
        h.drop(
            "add_request_headers",
            "Legate's health checks send no extra headers",
            report,
        );
        h.drop(
            "remove_request_headers",
            "Legate's health checks send no extra headers to remove",
            report,
        );
        Some(HealthCheck {
            path,
            host,
            interval: interval.clone(),
            timeout: timeout.clone(),
            unhealthy_threshold: unhealthy,
            healthy_threshold: healthy,
            expected_statuses: statuses,
        })
    });
    if let Some(mut h) = http {
        h.finish("an HTTP health check", report);
    }
    if let Some(mut k) = kind {
        k.finish("a health check", report);
    }
    if result.is_none() {
        report.dropped(
            f.path.clone(),
            "no HTTP health check with a path: nothing Legate can run",
        );
    }
    f.finish("a health check", report);
    result
}

fn headers(spec: &mut Fields, out: &mut MappingSpec, report: &mut DocReport) {
    out.add_request_headers = added_headers(spec, "add_request_headers", report);
    out.add_response_headers = added_headers(spec, "add_response_headers", report);
    out.remove_request_headers = header_list(spec, "remove_request_headers", report);
    out.remove_response_headers = header_list(spec, "remove_response_headers", report);
}

fn added_headers(spec: &mut Fields, key: &str, report: &mut DocReport) -> BTreeMap<String, HeaderValue> {
    let mut out = BTreeMap::new();
    let Some(mut f) = spec.object(key, report) else {
        return out;
    };
    let names: Vec<String> = f.keys();
    for name in names {
        let field = f.at(&name);
        let Some(value) = f.take(&name) else { continue };
        if !HEADER_NAME.is_match(&name) {
            report.dropped(field, "not an HTTP header name Legate can set");
            continue;
        }
        let header = match value {
            Value::String(value) => HeaderValue { value, append: true },
            Value::Bool(b) => HeaderValue {
                value: b.to_string(),
                append: true,
            },
            Value::Number(n) => HeaderValue {
                value: n.to_string(),
                append: true,
            },
            object @ Value::Object(_) => {
                let mut h = Fields::of(field, object, report);
                let value = h.string("value", report).unwrap_or_default();
                let append = h.boolean("append", report).unwrap_or(true);
                h.ignore("v2Representation");
                h.finish("an added header", report);
                HeaderValue { value, append }
            }
            other => {
                report.dropped(field, format!("expected a value, found {}", kind_of(&other)));
                continue;
            }
        };
        out.insert(name, header);
    }
    out
}

fn header_list(spec: &mut Fields, key: &str, report: &mut DocReport) -> Vec<String> {
    spec.strings(key, report)
        .into_iter()
        .filter(|name| {
            let ok = HEADER_NAME.is_match(name);
            if !ok {
                report.dropped(
                    format!("spec.{key}"),
                    format!("{name:?} is not an HTTP header name"),
                );
            }
            ok
        })
        .collect()
}

fn string_map(spec: &mut Fields, key: &str, report: &mut DocReport) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(mut f) = spec.object(key, report) else {
        return out;
    };
    for name in f.keys() {
        if let Some(value) = f.string(&name, report) {
            out.insert(name, value);
        }
    }
    out
}

/// Upstream TLS with nothing but TLS itself.
trait DefaultTls {
    fn default_tls() -> Self;
}

impl DefaultTls for UpstreamTls {
    fn default_tls() -> UpstreamTls {
        UpstreamTls {
            sni: None,
            ca_secret: None,
            client_cert_secret: None,
        }
    }
}
