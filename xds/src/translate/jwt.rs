//! JSON Web Token authentication: one `jwt_authn` filter in every HTTP
//! chain, disabled, holding the providers of the listener's routes; a route
//! that requires a token enables it by naming its provider's requirement.
//! A route whose requirement the filter does not hold (yet) gets 403 from
//! Envoy, never a pass.

use std::collections::BTreeMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::accesslog::v3::{
    AccessLogFilter, ExtensionFilter, access_log_filter, extension_filter,
};
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption, HttpUri, http_uri};
use envoy_types::pb::envoy::extensions::access_loggers::filters::cel::v3::ExpressionFilter;
use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    JwtAuthentication, JwtClaimToHeader, JwtProvider, JwtRequirement, PerRouteConfig, RemoteJwks,
    jwt_provider, jwt_requirement, per_route_config,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, ResponseMapper, http_filter,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::util::pack_any;
use prost::Name;

use super::encode::encode_with_sorted_map;
use super::route::duration;
use crate::ir;

pub const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";

/// What jwt_authn records as the details of its answer to a valid token
/// whose `aud` is not among the provider's audiences (its status is 403).
const AUDIENCE_REFUSED: &str = "jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}";

/// A token refused for its audience answers 401 with a challenge, as a
/// missing, forged or expired one does: to the client it is not a token for
/// this API, not a lack of permission (RFC 6750 `invalid_token`). Envoy marks
/// that answer only by its details, so a CEL filter picks it out. With the
/// Gateway's body for 401, when it has one.
pub fn audience_refusal(body: Option<&ir::ErrorResponse>) -> ResponseMapper {
    let filter = AccessLogFilter {
        filter_specifier: Some(access_log_filter::FilterSpecifier::ExtensionFilter(
            ExtensionFilter {
                name: "envoy.access_loggers.extension_filters.cel".into(),
                config_type: Some(extension_filter::ConfigType::TypedConfig(pack_any(
                    ExpressionFilter {
                        expression: format!("response.code_details == '{AUDIENCE_REFUSED}'"),
                        ..ExpressionFilter::default()
                    },
                ))),
            },
        )),
    };
    let challenge = HeaderValueOption {
        header: Some(HeaderValue {
            key: "www-authenticate".into(),
            value: r#"Bearer error="invalid_token", error_description="the token is not for this audience""#
                .into(),
            ..HeaderValue::default()
        }),
        ..HeaderValueOption::default()
    };
    ResponseMapper {
        filter: Some(filter),
        status_code: Some(UInt32Value { value: 401 }),
        headers_to_add: vec![challenge],
        ..body.map(super::http_edge::with_body).unwrap_or_default()
    }
}

/// How long Envoy waits for a key set, and keeps one it fetched.
const JWKS_TIMEOUT: Duration = Duration::from_secs(3);
const JWKS_CACHE: Duration = Duration::from_secs(300);

/// The filter with `providers` (by name, each once), and a requirement of
/// the same name for each.
pub fn jwt_filter(providers: &BTreeMap<&str, &ir::JwtAuth>) -> HttpFilter {
    let providers_by_name: BTreeMap<String, JwtProvider> = providers
        .iter()
        .map(|(name, jwt)| ((*name).to_owned(), provider(jwt)))
        .collect();
    let requirements: BTreeMap<String, JwtRequirement> = providers
        .keys()
        .map(|name| {
            (
                (*name).to_owned(),
                JwtRequirement {
                    requires_type: Some(jwt_requirement::RequiresType::ProviderName((*name).to_owned())),
                },
            )
        })
        .collect();
    // Both maps written in key order: an unchanged listener encodes to the same bytes.
    let mut value = encode_with_sorted_map(
        &JwtAuthentication::default(),
        |j: &mut JwtAuthentication| &mut j.providers,
        &providers_by_name,
    );
    value.extend(encode_with_sorted_map(
        &JwtAuthentication::default(),
        |j: &mut JwtAuthentication| &mut j.requirement_map,
        &requirements,
    ));
    HttpFilter {
        name: JWT_AUTHN.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(Any {
            type_url: JwtAuthentication::type_url(),
            value,
        })),
        disabled: true,
        ..HttpFilter::default()
    }
}

fn provider(jwt: &ir::JwtAuth) -> JwtProvider {
    JwtProvider {
        issuer: jwt.issuer.clone(),
        audiences: jwt.audiences.clone(),
        forward: jwt.forward,
        claim_to_headers: jwt
            .claim_to_headers
            .iter()
            .map(|(claim, header)| JwtClaimToHeader {
                claim_name: claim.clone(),
                header_name: header.clone(),
                ..JwtClaimToHeader::default()
            })
            .collect(),
        jwks_source_specifier: Some(jwt_provider::JwksSourceSpecifier::RemoteJwks(RemoteJwks {
            http_uri: Some(HttpUri {
                uri: jwt.jwks_uri.clone(),
                timeout: Some(duration(JWKS_TIMEOUT)),
                http_upstream_type: Some(http_uri::HttpUpstreamType::Cluster(jwt.jwks_upstream.clone())),
            }),
            cache_duration: Some(duration(JWKS_CACHE)),
            ..RemoteJwks::default()
        })),
        ..JwtProvider::default()
    }
}

/// A route that requires a token names its provider's requirement, which
/// also enables the filter for it.
pub fn add_route_jwt(p: &ir::RoutePolicy, per_filter: &mut BTreeMap<String, Any>) {
    if let Some(jwt) = &p.jwt {
        per_filter.insert(
            JWT_AUTHN.into(),
            pack_any(PerRouteConfig {
                requirement_specifier: Some(per_route_config::RequirementSpecifier::RequirementName(
                    jwt.provider.clone(),
                )),
            }),
        );
    }
}
