//! The HTTP filter chain every HTTP listener of a Gateway runs.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, GrpcService, HttpUri, config_source, grpc_service,
    http_uri,
};
use envoy_types::pb::envoy::config::ratelimit::v3::RateLimitServiceConfig;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{
    AuthorizationResponse, BufferSettings, ExtAuthz, HttpService, ext_authz,
};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::extensions::filters::http::ratelimit::v3::RateLimit;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{ListStringMatcher, StringMatcher, string_matcher};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::util::pack_any;

use super::http_edge;
use super::listener::HttpServices;
use super::observe;
use super::route::duration;
use crate::ir;

pub const EXT_AUTHZ: &str = "envoy.filters.http.ext_authz";
pub const LOCAL_RATELIMIT: &str = "envoy.filters.http.local_ratelimit";
pub const CORS: &str = "envoy.filters.http.cors";
pub const RATELIMIT: &str = "envoy.filters.http.ratelimit";
pub const ROUTER: &str = "envoy.filters.http.router";
pub const HCM: &str = "envoy.filters.network.http_connection_manager";

/// The ext_authz filter of the AuthService of `namespace` (not the
/// Gateway's): disabled in the chain, enabled by the routes of that
/// namespace's Mappings (`route::route_proto`), and by no other route.
pub fn namespace_ext_authz(namespace: &str) -> String {
    format!("ext_authz/{namespace}")
}

/// The rate limit filter of the RateLimitService of `namespace`, enabled as
/// [`namespace_ext_authz`] is.
pub fn namespace_ratelimit(namespace: &str) -> String {
    format!("ratelimit/{namespace}")
}

/// Resources referenced by name come over the same ADS stream.
pub fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..ConfigSource::default()
    }
}

/// The connection manager of an HTTP listener, with routes over RDS.
pub fn connection_manager(
    stat_prefix: &str,
    route_config: &str,
    services: &HttpServices<'_>,
    http: &ir::HttpOptions,
) -> HttpConnectionManager {
    let mut http_filters = http_edge::leading_filters(http);
    // Refused client addresses cost nothing further: before CORS, auth and
    // rate limits.
    http_filters.extend(super::access::rbac_filters(http));
    http_filters.push(HttpFilter {
        name: CORS.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(Cors::default()))),
        ..HttpFilter::default()
    });
    // Without a bucket of its own the filter lets everything through; routes
    // with a `localRateLimit` bring theirs. After CORS (a preflight costs no
    // token, and a 429 carries the CORS headers a browser needs to read it),
    // before auth and the rate limit service (a limited request costs no call).
    http_filters.push(HttpFilter {
        name: LOCAL_RATELIMIT.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(LocalRateLimit {
            stat_prefix: "local_rate_limit".into(),
            ..LocalRateLimit::default()
        }))),
        ..HttpFilter::default()
    });
    // After the local rate limit (a flood of bad tokens costs no key set
    // fetch), before auth services (which may read the claims' headers).
    http_filters.push(super::jwt::jwt_filter(services.jwt));
    // A namespace's own services come just before the Gateway-wide one of
    // their kind, and only on its routes: Envoy creates a disabled filter
    // only for a request whose route enables it, and decides that once, on
    // the route first matched. Headers a namespace's auth service adds may
    // pick another route (`clear_route_cache`), but the Gateway-wide check
    // runs after it, on that route: a tenant can do no more than its
    // clients could.
    for (namespace, auth) in services.namespace_auth {
        http_filters.push(ext_authz_filter(namespace_ext_authz(namespace), auth, true));
    }
    if let Some(auth) = services.auth {
        http_filters.push(ext_authz_filter(EXT_AUTHZ.into(), auth, false));
    }
    for (namespace, rl) in services.namespace_rate_limit {
        http_filters.push(ratelimit_filter(namespace_ratelimit(namespace), rl, true));
    }
    if let Some(rl) = services.rate_limit {
        http_filters.push(ratelimit_filter(RATELIMIT.into(), rl, false));
    }
    http_filters.push(http_edge::buffer_filter(http));
    http_filters.push(HttpFilter {
        name: ROUTER.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(Router::default()))),
        ..HttpFilter::default()
    });
    HttpConnectionManager {
        stat_prefix: stat_prefix.to_owned(),
        codec_type: http_connection_manager::CodecType::Auto as i32,
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_config.to_owned(),
        })),
        // Hosts are matched without their port, so `shop.example.com:8080`
        // finds the `shop.example.com` virtual host.
        strip_port_mode: Some(http_connection_manager::StripPortMode::StripAnyHostPort(true)),
        // An edge proxy: the client is the peer, not what X-Forwarded-For says
        // (Envoy's edge best practice), and `/a/../b` or `//a` cannot slip
        // past a prefix route.
        use_remote_address: Some(BoolValue { value: true }),
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: true,
        // No `server: envoy` of Envoy's own: it tells attackers what runs here,
        // and it would defeat a Mapping's `removeResponseHeaders: [server]`.
        // A Gateway that names itself replaces every upstream's.
        server_name: http.server_name.clone().unwrap_or_default(),
        server_header_transformation: if http.server_name.is_some() {
            http_connection_manager::ServerHeaderTransformation::Overwrite as i32
        } else {
            http_connection_manager::ServerHeaderTransformation::PassThrough as i32
        },
        http_filters,
        local_reply_config: http_edge::local_reply_config(http, !services.jwt.is_empty()),
        access_log: observe::access_logs(services.observability),
        tracing: services.observability.tracing.as_ref().map(observe::tracer),
        ..HttpConnectionManager::default()
    }
}

fn ext_authz_filter(name: String, auth: &ir::AuthService, disabled: bool) -> HttpFilter {
    HttpFilter {
        name,
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(ext_authz(auth)))),
        disabled,
        ..HttpFilter::default()
    }
}

fn ratelimit_filter(name: String, rl: &ir::RateLimitService, disabled: bool) -> HttpFilter {
    let config = RateLimit {
        domain: rl.domain.clone(),
        timeout: Some(duration(rl.timeout)),
        failure_mode_deny: rl.failure_mode_deny,
        rate_limit_service: Some(RateLimitServiceConfig {
            grpc_service: Some(grpc(&rl.upstream, rl.timeout)),
            transport_api_version: ApiVersion::V3 as i32,
        }),
        ..RateLimit::default()
    };
    HttpFilter {
        name,
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(config))),
        disabled,
        ..HttpFilter::default()
    }
}

/// Request headers an HTTP auth service always sees (as Ambassador sends
/// them); Envoy adds Host, Method, Path, Content-Length and Authorization.
const ALWAYS_SENT_HEADERS: [&str; 6] = [
    "authorization",
    "cookie",
    "from",
    "proxy-authorization",
    "user-agent",
    "x-request-id",
];

fn ext_authz(auth: &ir::AuthService) -> ExtAuthz {
    let services = match &auth.protocol {
        ir::AuthProtocol::Grpc => ext_authz::Services::GrpcService(grpc(&auth.upstream, auth.timeout)),
        ir::AuthProtocol::Http {
            path_prefix,
            allowed_authorization_headers,
            ..
        } => ext_authz::Services::HttpService(HttpService {
            server_uri: Some(HttpUri {
                // Envoy requires a URI; only the cluster and timeout are used.
                uri: format!("http://{}", authority(&auth.upstream)),
                timeout: Some(duration(auth.timeout)),
                http_upstream_type: Some(http_uri::HttpUpstreamType::Cluster(auth.upstream.clone())),
            }),
            path_prefix: path_prefix.clone(),
            // Without a list Envoy would add none of the answer's headers upstream.
            authorization_response: Some(AuthorizationResponse {
                allowed_upstream_headers: (!allowed_authorization_headers.is_empty())
                    .then(|| header_list(allowed_authorization_headers.iter().map(String::as_str), &[])),
                ..AuthorizationResponse::default()
            }),
            ..HttpService::default()
        }),
    };
    // gRPC check requests carry every header; HTTP ones only those listed.
    let allowed_headers = match &auth.protocol {
        ir::AuthProtocol::Http {
            allowed_request_headers,
            ..
        } => Some(header_list(
            ALWAYS_SENT_HEADERS
                .into_iter()
                .chain(allowed_request_headers.iter().map(String::as_str)),
            &["x-forwarded-"],
        )),
        ir::AuthProtocol::Grpc => None,
    };
    ExtAuthz {
        services: Some(services),
        // Headers the auth service adds can decide the route (a Mapping's `headers`).
        clear_route_cache: true,
        failure_mode_allow: auth.failure_mode_allow,
        transport_api_version: ApiVersion::V3 as i32,
        allowed_headers,
        status_on_error: Some(HttpStatus {
            code: i32::from(auth.status_on_error),
        }),
        with_request_body: auth.include_body.map(|b| BufferSettings {
            max_request_bytes: b.max_bytes,
            allow_partial_message: b.allow_partial,
            // gRPC's body field is a proto3 string, which strict servers
            // refuse when it is not UTF-8: binary bodies go as bytes.
            pack_as_bytes: auth.protocol == ir::AuthProtocol::Grpc,
        }),
        ..ExtAuthz::default()
    }
}

/// Case-insensitive matchers for exact header names and name prefixes.
fn header_list<'a>(exact: impl Iterator<Item = &'a str>, prefixes: &[&str]) -> ListStringMatcher {
    let matcher = |pattern| StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: true,
    };
    let mut names: Vec<String> = exact.map(str::to_ascii_lowercase).collect();
    names.sort();
    names.dedup();
    ListStringMatcher {
        patterns: names
            .into_iter()
            .map(|h| matcher(string_matcher::MatchPattern::Exact(h)))
            .chain(
                prefixes
                    .iter()
                    .map(|p| matcher(string_matcher::MatchPattern::Prefix((*p).to_owned()))),
            )
            .collect(),
    }
}

/// A host[:port] for calls to an upstream, from its name: `ns/svc:port`
/// becomes `svc.ns:port`, `dns/host:port` becomes `host:port`. Without it
/// Envoy sends the cluster name as `:authority`, whose `/` strict HTTP/2
/// servers refuse.
pub fn authority(upstream: &str) -> String {
    // Upstreams with their own settings carry a `~hash` suffix.
    let name = upstream.split('~').next().unwrap_or(upstream);
    if let Some(host) = name.strip_prefix("dns/") {
        return host.to_owned();
    }
    match name.split_once('/') {
        Some((namespace, service)) => match service.split_once(':') {
            Some((service, port)) => format!("{service}.{namespace}:{port}"),
            None => format!("{service}.{namespace}"),
        },
        None => name.to_owned(),
    }
}

pub fn grpc(cluster: &str, timeout: Duration) -> GrpcService {
    GrpcService {
        target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
            grpc_service::EnvoyGrpc {
                cluster_name: cluster.to_owned(),
                authority: authority(cluster),
                ..grpc_service::EnvoyGrpc::default()
            },
        )),
        timeout: Some(duration(timeout)),
        ..GrpcService::default()
    }
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn upstream_names_become_valid_authorities() {
        assert_eq!(authority("shop/auth:3000"), "auth.shop:3000");
        assert_eq!(authority("shop/ratelimit:8081~1a2b3c4d"), "ratelimit.shop:8081");
        assert_eq!(authority("dns/auth.example.com:443"), "auth.example.com:443");
    }
}
