//! The HTTP filter chain every HTTP listener of a Gateway runs.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, GrpcService, HttpUri, config_source, grpc_service,
    http_uri,
};
use envoy_types::pb::envoy::config::ratelimit::v3::RateLimitServiceConfig;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{ExtAuthz, HttpService, ext_authz};
use envoy_types::pb::envoy::extensions::filters::http::ratelimit::v3::RateLimit;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{ListStringMatcher, StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::util::pack_any;

use super::route::duration;
use crate::ir;

pub const EXT_AUTHZ: &str = "envoy.filters.http.ext_authz";
pub const CORS: &str = "envoy.filters.http.cors";
pub const RATELIMIT: &str = "envoy.filters.http.ratelimit";
pub const ROUTER: &str = "envoy.filters.http.router";
pub const HCM: &str = "envoy.filters.network.http_connection_manager";

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
    auth: Option<&ir::AuthService>,
    rate_limit: Option<&ir::RateLimitService>,
) -> HttpConnectionManager {
    let mut http_filters = vec![HttpFilter {
        name: CORS.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(Cors::default()))),
        ..HttpFilter::default()
    }];
    if let Some(auth) = auth {
        http_filters.push(HttpFilter {
            name: EXT_AUTHZ.into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(ext_authz(auth)))),
            ..HttpFilter::default()
        });
    }
    if let Some(rl) = rate_limit {
        http_filters.push(HttpFilter {
            name: RATELIMIT.into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(RateLimit {
                domain: rl.domain.clone(),
                timeout: Some(duration(rl.timeout)),
                failure_mode_deny: rl.failure_mode_deny,
                rate_limit_service: Some(RateLimitServiceConfig {
                    grpc_service: Some(grpc(&rl.upstream, rl.timeout)),
                    transport_api_version: ApiVersion::V3 as i32,
                }),
                ..RateLimit::default()
            }))),
            ..HttpFilter::default()
        });
    }
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
        http_filters,
        ..HttpConnectionManager::default()
    }
}

fn ext_authz(auth: &ir::AuthService) -> ExtAuthz {
    let services = match &auth.protocol {
        ir::AuthProtocol::Grpc => ext_authz::Services::GrpcService(grpc(&auth.upstream, auth.timeout)),
        ir::AuthProtocol::Http {
            path_prefix,
            allowed_request_headers: _,
        } => ext_authz::Services::HttpService(HttpService {
            server_uri: Some(HttpUri {
                // Envoy requires a URI; only the cluster and timeout are used.
                uri: format!("http://{}", auth.upstream),
                timeout: Some(duration(auth.timeout)),
                http_upstream_type: Some(http_uri::HttpUpstreamType::Cluster(auth.upstream.clone())),
            }),
            path_prefix: path_prefix.clone(),
            ..HttpService::default()
        }),
    };
    let allowed_headers = match &auth.protocol {
        ir::AuthProtocol::Http {
            allowed_request_headers,
            ..
        } if !allowed_request_headers.is_empty() => Some(ListStringMatcher {
            patterns: allowed_request_headers
                .iter()
                .map(|h| StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Exact(h.clone())),
                    ignore_case: true,
                })
                .collect(),
        }),
        _ => None,
    };
    ExtAuthz {
        services: Some(services),
        failure_mode_allow: auth.failure_mode_allow,
        transport_api_version: ApiVersion::V3 as i32,
        allowed_headers,
        ..ExtAuthz::default()
    }
}

fn grpc(cluster: &str, timeout: Duration) -> GrpcService {
    GrpcService {
        target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
            grpc_service::EnvoyGrpc {
                cluster_name: cluster.to_owned(),
                ..grpc_service::EnvoyGrpc::default()
            },
        )),
        timeout: Some(duration(timeout)),
        ..GrpcService::default()
    }
}
