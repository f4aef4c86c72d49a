//! Envoy resources as text a person can review: prost's pretty `Debug` of
//! each proto, with every `Any` Legate writes decoded, protobuf maps sorted
//! and private keys redacted. The translator's golden files and `legate
//! translate` both print resources this way, so one diff reads like the other.
//!
//! The protos have no serde support; `Debug` is the one complete, stable view
//! of them. Its only nondeterminism is protobuf maps (prost decodes them into
//! a `HashMap`), which [`sort_maps`] puts in key order.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::accesslog::v3::{AccessLog, access_log};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source, transport_socket};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter, listener_filter};
use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::config::trace::v3::tracing;
use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::StdoutAccessLog;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_filter,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{Secret, secret};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

use crate::resource::{Resource, ResourceType};

/// One resource as the proxies would get it, rendered: its body decoded from
/// the bytes on the wire, so what is shown is what is sent.
pub fn render_resource(resource: &Resource) -> String {
    let body = &*resource.body;
    let text = match resource.kind {
        ResourceType::Secret => decoded::<Secret>(body, |s| format!("{:#?}\n", redact(s))),
        ResourceType::Cluster => decoded::<Cluster>(body, cluster_text),
        ResourceType::Endpoints => decoded::<ClusterLoadAssignment>(body, |c| format!("{c:#?}\n")),
        ResourceType::Listener => decoded::<Listener>(body, listener_text),
        ResourceType::Route => decoded::<RouteConfiguration>(body, route_configuration_text),
        ResourceType::VirtualHost => decoded::<VirtualHost>(body, virtual_host_text),
    };
    sort_maps(&text)
}

fn decoded<M: Message + Default>(body: &[u8], render: impl FnOnce(M) -> String) -> String {
    match M::decode(body) {
        Ok(m) => render(m),
        // Only a translator bug gets here; show it rather than hide the resource.
        Err(e) => format!("{} bytes that do not decode: {e}\n", body.len()),
    }
}

/// A Secret without its private material: a key printed once is a key leaked
/// (CI logs, golden files, bug reports). Its size stays, to tell keys apart.
pub fn redact(mut s: Secret) -> Secret {
    match &mut s.r#type {
        Some(secret::Type::TlsCertificate(c)) => {
            for source in [&mut c.private_key, &mut c.pkcs12, &mut c.password]
                .into_iter()
                .flatten()
            {
                hide(source);
            }
        }
        Some(secret::Type::GenericSecret(g)) => {
            g.secret.iter_mut().chain(g.secrets.values_mut()).for_each(hide);
        }
        Some(secret::Type::SessionTicketKeys(k)) => k.keys.iter_mut().for_each(hide),
        // A CA bundle is public.
        Some(secret::Type::ValidationContext(_)) | None => {}
    }
    s
}

fn hide(source: &mut DataSource) {
    let bytes = match &source.specifier {
        Some(data_source::Specifier::InlineString(text)) => text.len(),
        Some(data_source::Specifier::InlineBytes(bytes)) => bytes.len(),
        // A file name or an environment variable is a reference, not the secret.
        _ => return,
    };
    source.specifier = Some(data_source::Specifier::InlineString(format!(
        "[redacted: {bytes} bytes]"
    )));
}

/// An access log's format, with the JSON fields sorted (a protobuf Struct
/// decodes into a HashMap).
fn render_access_log(log: &mut AccessLog) -> String {
    use envoy_types::pb::envoy::config::core::v3::substitution_format_string::Format;
    use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::stdout_access_log::AccessLogFormat;
    let Some(access_log::ConfigType::TypedConfig(any)) = log.config_type.take() else {
        return format!("access log {}: no typed config", log.name);
    };
    if !any.type_url.ends_with(".StdoutAccessLog") {
        return format!("access log {}: {}", log.name, decode_any(&any));
    }
    let stdout = match StdoutAccessLog::decode(any.value.as_slice()) {
        Ok(stdout) => stdout,
        Err(e) => return format!("access log {}: {} does not decode: {e}", log.name, any.type_url),
    };
    let format = match stdout.access_log_format {
        Some(AccessLogFormat::LogFormat(f)) => match f.format {
            Some(Format::JsonFormat(json)) => {
                let sorted: BTreeMap<String, String> = json
                    .fields
                    .into_iter()
                    .map(|(k, v)| (k, format!("{:?}", v.kind)))
                    .collect();
                format!("json {sorted:#?}")
            }
            other => format!("{other:?}"),
        },
        None => "default".to_owned(),
    };
    format!("access log {}: {format}", log.name)
}

/// Decodes the `Any`s Legate writes, so that they read as protos rather
/// than bytes. A type it does not know is named, with its size.
pub fn decode_any(any: &Any) -> String {
    use envoy_types::pb::envoy::config::trace::v3::{OpenTelemetryConfig, ZipkinConfig};
    use envoy_types::pb::envoy::extensions::access_loggers::open_telemetry::v3::OpenTelemetryAccessLogConfig;
    use envoy_types::pb::envoy::extensions::filters::http::cors::v3::{Cors, CorsPolicy};
    use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{ExtAuthz, ExtAuthzPerRoute};
    use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
        JwtAuthentication, PerRouteConfig,
    };
    use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
    use envoy_types::pb::envoy::extensions::filters::http::ratelimit::v3::RateLimit;
    use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::{Rbac, RbacPerRoute};
    use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
    use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        DownstreamTlsContext, UpstreamTlsContext,
    };
    use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
    fn show<M: Message + Default + std::fmt::Debug>(any: &Any) -> String {
        match M::decode(any.value.as_slice()) {
            Ok(m) => format!("{m:#?}"),
            Err(e) => format!("{} does not decode: {e}", any.type_url),
        }
    }
    match any.type_url.rsplit('.').next().unwrap_or_default() {
        "HttpConnectionManager" => match HttpConnectionManager::decode(any.value.as_slice()) {
            Ok(hcm) => render_hcm(hcm),
            Err(e) => format!("{} does not decode: {e}", any.type_url),
        },
        "CorsPolicy" => show::<CorsPolicy>(any),
        "Cors" => show::<Cors>(any),
        "ExtAuthz" => show::<ExtAuthz>(any),
        "ExtAuthzPerRoute" => show::<ExtAuthzPerRoute>(any),
        "JwtAuthentication" => show::<JwtAuthentication>(any),
        "PerRouteConfig" => show::<PerRouteConfig>(any),
        "LocalRateLimit" => show::<LocalRateLimit>(any),
        "RateLimit" => show::<RateLimit>(any),
        "RBAC" => show::<Rbac>(any),
        "RBACPerRoute" => show::<RbacPerRoute>(any),
        "Router" => show::<Router>(any),
        "TcpProxy" => show::<TcpProxy>(any),
        "TlsInspector" => show::<TlsInspector>(any),
        "DownstreamTlsContext" => show::<DownstreamTlsContext>(any),
        "UpstreamTlsContext" => show::<UpstreamTlsContext>(any),
        "HttpProtocolOptions" => show::<HttpProtocolOptions>(any),
        "OpenTelemetryConfig" => show::<OpenTelemetryConfig>(any),
        "ZipkinConfig" => show::<ZipkinConfig>(any),
        "OpenTelemetryAccessLogConfig" => show::<OpenTelemetryAccessLogConfig>(any),
        _ => format!("{} ({} bytes, not decoded)", any.type_url, any.value.len()),
    }
}

/// The HTTP connection manager, then its filters, access logs and tracer.
fn render_hcm(mut hcm: HttpConnectionManager) -> String {
    let filters: Vec<String> = hcm
        .http_filters
        .iter_mut()
        .map(|f| {
            let inner = match f.config_type.take() {
                Some(http_filter::ConfigType::TypedConfig(a)) => decode_any(&a),
                other => format!("{other:?}"),
            };
            format!("http filter {}: {inner}", f.name)
        })
        .collect();
    let logs: Vec<String> = hcm.access_log.iter_mut().map(render_access_log).collect();
    let tracer = hcm
        .tracing
        .as_mut()
        .and_then(|t| t.provider.as_mut())
        .and_then(|p| match p.config_type.take() {
            Some(tracing::http::ConfigType::TypedConfig(a)) => {
                Some(format!("\ntracing provider {}: {}", p.name, decode_any(&a)))
            }
            None => None,
        })
        .unwrap_or_default();
    format!("{hcm:#?}\n{}\n{}{tracer}", filters.join("\n"), logs.join("\n"))
}

/// A route, then its per-filter configuration in name order.
pub fn render_route(r: Route) -> String {
    sort_maps(&route_text(r))
}

fn route_text(mut r: Route) -> String {
    let per_filter: BTreeMap<String, Any> = r.typed_per_filter_config.drain().collect();
    let mut out = format!("{r:#?}\n");
    for (name, any) in per_filter {
        out.push_str(&format!("per-filter config {name}: {}\n", decode_any(&any)));
    }
    out
}

fn virtual_host_text(mut v: VirtualHost) -> String {
    let routes = std::mem::take(&mut v.routes);
    let per_filter: BTreeMap<String, Any> = v.typed_per_filter_config.drain().collect();
    let mut out = format!("{v:#?}\n");
    for (name, any) in per_filter {
        out.push_str(&format!("per-filter config {name}: {}\n", decode_any(&any)));
    }
    for (i, route) in routes.into_iter().enumerate() {
        out.push_str(&format!("route {i}: {}", route_text(route)));
    }
    out
}

/// A route configuration, then each virtual host with its routes (in the
/// order Envoy tries them).
fn route_configuration_text(mut rc: RouteConfiguration) -> String {
    let hosts = std::mem::take(&mut rc.virtual_hosts);
    let per_filter: BTreeMap<String, Any> = rc.typed_per_filter_config.drain().collect();
    let mut out = format!("{rc:#?}\n");
    for (name, any) in per_filter {
        out.push_str(&format!("per-filter config {name}: {}\n", decode_any(&any)));
    }
    for (i, host) in hosts.into_iter().enumerate() {
        out.push_str(&format!("virtual host {i}: {}", virtual_host_text(host)));
    }
    out
}

/// A listener, then its listener filters, network filters and transport
/// sockets, per filter chain.
pub fn render_listener(l: Listener) -> String {
    sort_maps(&listener_text(l))
}

fn listener_text(mut l: Listener) -> String {
    let mut extra = String::new();
    for f in &mut l.listener_filters {
        if let Some(listener_filter::ConfigType::TypedConfig(a)) = f.config_type.take() {
            extra.push_str(&format!("listener filter {}: {}\n", f.name, decode_any(&a)));
        }
    }
    for (i, chain) in l.filter_chains.iter_mut().enumerate() {
        for f in &mut chain.filters {
            if let Some(filter::ConfigType::TypedConfig(a)) = f.config_type.take() {
                extra.push_str(&format!("chain {i} filter {}: {}\n", f.name, decode_any(&a)));
            }
        }
        if let Some(ts) = &mut chain.transport_socket
            && let Some(transport_socket::ConfigType::TypedConfig(a)) = ts.config_type.take()
        {
            extra.push_str(&format!("chain {i} transport socket: {}\n", decode_any(&a)));
        }
    }
    format!("{l:#?}\n{extra}")
}

/// A cluster, then its protocol options and transport socket.
pub fn render_cluster(c: Cluster) -> String {
    sort_maps(&cluster_text(c))
}

fn cluster_text(mut c: Cluster) -> String {
    let mut extra = String::new();
    let options: BTreeMap<String, Any> = c.typed_extension_protocol_options.drain().collect();
    for (name, any) in options {
        extra.push_str(&format!("protocol options {name}: {}\n", decode_any(&any)));
    }
    if let Some(ts) = &mut c.transport_socket
        && let Some(transport_socket::ConfigType::TypedConfig(a)) = ts.config_type.take()
    {
        extra.push_str(&format!("transport socket: {}\n", decode_any(&a)));
    }
    format!("{c:#?}\n{extra}")
}

/// Puts the entries of every map in pretty `Debug` text in key order.
///
/// In `{:#?}` output a map opens with a bare `{` (a struct's brace follows
/// its name), each entry starts one indent level deeper, and the map closes
/// at its own indent; strings are escaped, so every line is structure.
pub fn sort_maps(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    sorted_lines(&lines).join("\n")
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn opens_map(line: &str) -> bool {
    let t = line.trim_start_matches(' ');
    t == "{" || t.ends_with(": {")
}

fn sorted_lines(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        out.push(line.to_owned());
        i += 1;
        if !opens_map(line) {
            continue;
        }
        let indent = indent_of(line);
        let end = (i..lines.len())
            .find(|&j| indent_of(lines[j]) <= indent && !lines[j].is_empty())
            .unwrap_or(lines.len());
        let mut entries: Vec<Vec<String>> = Vec::new();
        let mut start = i;
        for j in i..=end {
            let boundary = j == end || {
                let t = lines[j].trim_start_matches(' ');
                indent_of(lines[j]) == indent + 4 && !t.starts_with(['}', ')', ']']) && j > start
            };
            if boundary && j > start {
                entries.push(sorted_lines(&lines[start..j]));
                start = j;
            }
        }
        entries.sort_by(|a, b| entry_key(a).cmp(entry_key(b)));
        out.extend(entries.into_iter().flatten());
        i = end;
    }
    out
}

/// The Debug-escaped key of a map entry (its first line starts `"key": `).
fn entry_key(entry: &[String]) -> &str {
    let first = entry
        .first()
        .map(|l| l.trim_start_matches(' '))
        .unwrap_or_default();
    let Some(rest) = first.strip_prefix('"') else {
        return first;
    };
    let mut escaped = false;
    for (at, c) in rest.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return &rest[..at],
            _ => escaped = false,
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::TlsCertificate;

    #[test]
    fn maps_are_sorted_at_every_depth() {
        let text = "A {\n    m: {\n        \"b\": 2,\n        \"a\": X {\n            n: {\n                \"z\": 1,\n                \"y\": 2,\n            },\n        },\n    },\n    e: {},\n}\n";
        let want = "A {\n    m: {\n        \"a\": X {\n            n: {\n                \"y\": 2,\n                \"z\": 1,\n            },\n        },\n        \"b\": 2,\n    },\n    e: {},\n}\n";
        assert_eq!(sort_maps(text), want);
        assert_eq!(sort_maps(want), want, "sorting is idempotent");
    }

    #[test]
    fn debug_output_of_a_hash_map_comes_out_in_key_order() {
        let map: std::collections::HashMap<String, u32> =
            (0..32).map(|n| (format!("key-{n:02}"), n)).collect();
        let sorted: BTreeMap<String, u32> = map.clone().into_iter().collect();
        assert_eq!(sort_maps(&format!("{map:#?}")), format!("{sorted:#?}"));
    }

    #[test]
    fn private_keys_are_redacted_and_certificates_kept() {
        let inline = |s: &str| DataSource {
            specifier: Some(data_source::Specifier::InlineString(s.into())),
            ..DataSource::default()
        };
        let secret = Secret {
            name: "default/cert".into(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: Some(inline("-----BEGIN CERTIFICATE-----")),
                private_key: Some(inline("-----BEGIN PRIVATE KEY-----\nsecret")),
                ..TlsCertificate::default()
            })),
        };
        let resource = Resource::new(
            ResourceType::Secret,
            "default/cert",
            secret.encode_to_vec(),
            Vec::new(),
            Vec::new(),
        );
        let text = render_resource(&resource);
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("secret\""),
            "{text}"
        );
        assert!(text.contains("[redacted: 34 bytes]"), "{text}");
        assert!(text.contains("BEGIN CERTIFICATE"), "{text}");
    }
}
