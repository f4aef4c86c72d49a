//! The HTTP filters of the edge that act on every request of a listener
//! (gRPC-Web, response compression, the request body limit), and what a
//! route changes of them.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::accesslog::v3::{
    AccessLogFilter, ComparisonFilter, StatusCodeFilter, access_log_filter, comparison_filter,
};
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, RuntimeUInt32, SubstitutionFormatString, TypedExtensionConfig, data_source,
    substitution_format_string,
};
use envoy_types::pb::envoy::extensions::compression::brotli::compressor::v3::Brotli;
use envoy_types::pb::envoy::extensions::compression::gzip::compressor::v3::Gzip;
use envoy_types::pb::envoy::extensions::compression::zstd::compressor::v3::Zstd;
use envoy_types::pb::envoy::extensions::filters::http::buffer::v3::{
    Buffer, BufferPerRoute, buffer_per_route,
};
use envoy_types::pb::envoy::extensions::filters::http::compressor::v3::{
    Compressor, CompressorPerRoute, compressor, compressor_per_route,
};
use envoy_types::pb::envoy::extensions::filters::http::grpc_web::v3::GrpcWeb;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, LocalReplyConfig, ResponseMapper, http_filter,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::util::pack_any;

use crate::ir;

pub const GRPC_WEB: &str = "envoy.filters.http.grpc_web";
pub const BUFFER: &str = "envoy.filters.http.buffer";

/// Envoy needs a size even for a buffer filter that no route enables.
const UNUSED_BUFFER_LIMIT: u32 = 1 << 20;

/// One compressor filter per algorithm, so the client's q-values choose.
pub fn compressor_name(a: ir::CompressionAlgorithm) -> &'static str {
    match a {
        ir::CompressionAlgorithm::Gzip => "envoy.filters.http.compressor.gzip",
        ir::CompressionAlgorithm::Brotli => "envoy.filters.http.compressor.brotli",
        ir::CompressionAlgorithm::Zstd => "envoy.filters.http.compressor.zstd",
    }
}

fn filter(name: &str, config: Any, disabled: bool) -> HttpFilter {
    HttpFilter {
        name: name.to_owned(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        disabled,
        ..HttpFilter::default()
    }
}

/// The filters that come first in the chain: gRPC-Web (it turns a browser's
/// request into gRPC before anything judges it) and the compressors (first
/// in the chain is last on the response, so they compress what every other
/// filter produced, Envoy's own answers included).
pub fn leading_filters(http: &ir::HttpOptions) -> Vec<HttpFilter> {
    let mut filters = Vec::new();
    if http.grpc_web {
        filters.push(filter(GRPC_WEB, pack_any(GrpcWeb::default()), false));
    }
    if let Some(c) = &http.compression {
        for (i, a) in c.algorithms.iter().enumerate() {
            filters.push(filter(
                compressor_name(*a),
                pack_any(compressor_config(c, *a, i == 0)),
                false,
            ));
        }
    }
    filters
}

fn compressor_config(c: &ir::Compression, a: ir::CompressionAlgorithm, first: bool) -> Compressor {
    let library = match a {
        ir::CompressionAlgorithm::Gzip => ("gzip", pack_any(Gzip::default())),
        ir::CompressionAlgorithm::Brotli => ("brotli", pack_any(Brotli::default())),
        ir::CompressionAlgorithm::Zstd => ("zstd", pack_any(Zstd::default())),
    };
    Compressor {
        compressor_library: Some(TypedExtensionConfig {
            name: library.0.into(),
            typed_config: Some(library.1),
        }),
        response_direction_config: Some(compressor::ResponseDirectionConfig {
            common_config: Some(compressor::CommonDirectionConfig {
                min_content_length: c.min_content_length.map(|value| UInt32Value { value }),
                // A prefix, so that parameters (`; charset=utf-8`) do not matter.
                content_type_matcher: c
                    .content_types
                    .iter()
                    .map(|t| StringMatcher {
                        match_pattern: Some(string_matcher::MatchPattern::Prefix(t.clone())),
                        ignore_case: true,
                    })
                    .collect(),
                ..compressor::CommonDirectionConfig::default()
            }),
            ..compressor::ResponseDirectionConfig::default()
        }),
        // Equal q-values (`Accept-Encoding: gzip, br`) pick the first listed.
        choose_first: first,
        ..Compressor::default()
    }
}

/// The body limit, just before the router (auth and rate limits judge a
/// request before its body is held). In every chain, disabled when the
/// Gateway sets no limit, so that a route can bring its own without the
/// listener knowing which routes do.
pub fn buffer_filter(http: &ir::HttpOptions) -> HttpFilter {
    let limit = http.max_request_body_bytes.unwrap_or(UNUSED_BUFFER_LIMIT);
    let buffer = Buffer {
        max_request_bytes: Some(UInt32Value { value: limit }),
    };
    filter(BUFFER, pack_any(buffer), http.max_request_body_bytes.is_none())
}

/// A route's departures from its listener's filters: no compression, its
/// own body limit (which also enables a buffer filter disabled in the chain)
/// or none. Entries for compressors the listener lacks cost nothing, and
/// keep the route the same whichever algorithms the Gateway offers.
pub fn add_route_overrides(p: &ir::RoutePolicy, per_filter: &mut BTreeMap<String, Any>) {
    if p.no_compression {
        let off = pack_any(CompressorPerRoute {
            r#override: Some(compressor_per_route::Override::Disabled(true)),
        });
        for a in ir::CompressionAlgorithm::ALL {
            per_filter.insert(compressor_name(a).into(), off.clone());
        }
    }
    if let Some(limit) = p.body_limit {
        let over = match limit {
            ir::BodyLimit::Unlimited => buffer_per_route::Override::Disabled(true),
            ir::BodyLimit::Bytes(value) => buffer_per_route::Override::Buffer(Buffer {
                max_request_bytes: Some(UInt32Value { value }),
            }),
        };
        per_filter.insert(
            BUFFER.into(),
            pack_any(BufferPerRoute {
                r#override: Some(over),
            }),
        );
    }
}

/// Envoy's own answers with a listed status get the Gateway's body and
/// content type; the status stays. Upstreams' answers are not local replies,
/// so they pass untouched. On a listener with token checks, a token refused
/// for its audience answers 401 like every other refused token (first: the
/// first mapper that matches is the only one applied).
pub fn local_reply_config(http: &ir::HttpOptions, token_checks: bool) -> Option<LocalReplyConfig> {
    let body_of = |status: u16| http.error_responses.iter().find(|e| e.status == status);
    let audience = token_checks.then(|| super::jwt::audience_refusal(body_of(401)));
    let mappers: Vec<ResponseMapper> = audience
        .into_iter()
        .chain(http.error_responses.iter().map(|e| ResponseMapper {
            filter: Some(AccessLogFilter {
                filter_specifier: Some(access_log_filter::FilterSpecifier::StatusCodeFilter(
                    StatusCodeFilter {
                        comparison: Some(ComparisonFilter {
                            op: comparison_filter::Op::Eq as i32,
                            value: Some(RuntimeUInt32 {
                                default_value: u32::from(e.status),
                                // Envoy requires a key; nothing sets it, so the default holds.
                                runtime_key: format!("legate.error_response.{}", e.status),
                            }),
                        }),
                    },
                )),
            }),
            ..with_body(e)
        }))
        .collect();
    if mappers.is_empty() {
        return None;
    }
    Some(LocalReplyConfig {
        mappers,
        ..LocalReplyConfig::default()
    })
}

/// A mapper's body and content type from an error response (the filter is
/// the caller's).
pub fn with_body(e: &ir::ErrorResponse) -> ResponseMapper {
    ResponseMapper {
        body: Some(DataSource {
            specifier: Some(data_source::Specifier::InlineString(e.body.clone())),
            ..DataSource::default()
        }),
        body_format_override: Some(SubstitutionFormatString {
            format: Some(substitution_format_string::Format::TextFormatSource(DataSource {
                specifier: Some(data_source::Specifier::InlineString("%LOCAL_REPLY_BODY%".into())),
                ..DataSource::default()
            })),
            content_type: e.content_type.clone(),
            ..SubstitutionFormatString::default()
        }),
        ..ResponseMapper::default()
    }
}
