//! Emissary `Mapping` → Legate `Mapping`: the match (host, path, method,
//! headers, query), where requests go (service, rewrite, redirect) and the
//! route's policies. A match Legate cannot express refuses the Mapping: a
//! dropped match would widen the route to requests that are not its own.

use std::collections::BTreeMap;

use legate_crds::common::Duration;
use legate_crds::mapping::{Redirect, RegexSubstitution, UpstreamTls};
use legate_crds::{Mapping, MappingSpec};
use serde_json::Value;

use super::context::Context;
use super::fields::{Fields, kind_of, millis};
use super::headers::{headers, string_map};
use super::health::health_check;
use super::hostname::mapping_hostname;
use super::labels::rate_limits;
use super::matching::{path_match, request_match};
use super::object::Emissary;
use super::policy;
use super::report::DocReport;
use super::service::upstream;

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

/// Mapping switches whose value here is what Legate does anyway.
const SAME_AS_LEGATE: &[(&str, bool)] = &[
    ("add_linkerd_headers", false),
    ("bypass_error_response_overrides", false),
    ("enable_ipv4", true),
    ("enable_ipv6", false),
    ("respect_dns_ttl", false),
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
        match SAME_AS_LEGATE.iter().find(|(k, _)| k == key) {
            Some((_, same)) => spec.drop_unless(key, &Value::Bool(*same), why, report),
            None => spec.drop(key, why, report),
        }
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
