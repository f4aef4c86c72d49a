//! One IR route → one Envoy `Route`.

use std::collections::BTreeMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, HeaderValue, HeaderValueOption, RuntimeFractionalPercent, data_source,
    header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::route::v3::{
    self as route, DirectResponseAction, FilterConfig, HeaderMatcher, QueryParameterMatcher, RateLimit,
    RedirectAction, RetryPolicy, RouteAction, RouteMatch, WeightedCluster,
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier, rate_limit,
    redirect_action, route::Action, route_action, route_match::PathSpecifier,
    weighted_cluster::ClusterWeight,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{
    CheckSettings, ExtAuthzPerRoute, ext_authz_per_route,
};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, RegexMatcher, StringMatcher, string_matcher,
};
use envoy_types::pb::envoy::r#type::v3::TokenBucket;
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent::DenominatorType};
use envoy_types::pb::google::protobuf::{Any, BoolValue, Struct, UInt32Value, Value, value};
use envoy_types::util::pack_any;
use prost::{Message, Name};

use super::encode::{append_message_field, encode_with_sorted_map};
use super::filters;
use crate::ir;

/// A translated route: its canonical encoding and the clusters it sends to.
#[derive(Clone, Debug)]
pub struct EncodedRoute {
    pub body: Vec<u8>,
    pub clusters: Vec<String>,
}

pub fn encode_route(r: &ir::Route) -> EncodedRoute {
    let (proto, per_filter) = route_proto(r);
    let body = encode_with_sorted_map(
        &proto,
        |m: &mut route::Route| &mut m.typed_per_filter_config,
        &per_filter,
    );
    let clusters = match &r.action {
        ir::RouteAction::Forward(f) => {
            let mut c: Vec<String> = f
                .upstreams
                .iter()
                .map(|u| u.upstream.clone())
                .chain(f.mirrors.iter().map(|m| m.upstream.clone()))
                .collect();
            c.sort();
            c.dedup();
            c
        }
        _ => Vec::new(),
    };
    EncodedRoute { body, clusters }
}

/// The route without its per-filter configuration, and that configuration
/// separately (see [`encode_with_sorted_map`] for why).
pub fn route_proto(r: &ir::Route) -> (route::Route, BTreeMap<String, Any>) {
    let p = &r.policy;
    let mut per_filter = BTreeMap::new();
    if p.bypass_auth {
        per_filter.insert(
            filters::EXT_AUTHZ.to_owned(),
            pack_any(ExtAuthzPerRoute {
                r#override: Some(ext_authz_per_route::Override::Disabled(true)),
            }),
        );
    } else if !p.auth_context.is_empty() {
        per_filter.insert(filters::EXT_AUTHZ.to_owned(), auth_context(&p.auth_context));
    }
    add_namespace_filters(r, &mut per_filter);
    super::http_edge::add_route_overrides(&r.policy, &mut per_filter);
    super::access::add_route_rbac(&r.policy, &mut per_filter);
    super::jwt::add_route_jwt(&r.policy, &mut per_filter);
    if let Some(limit) = &p.local_rate_limit {
        per_filter.insert(
            filters::LOCAL_RATELIMIT.to_owned(),
            pack_any(local_rate_limit(limit)),
        );
    }
    if let Some(cors) = &p.cors {
        per_filter.insert(filters::CORS.to_owned(), pack_any(cors_policy(cors)));
    }
    let action = match &r.action {
        ir::RouteAction::Forward(f) => Action::Route(route_action(f, p)),
        ir::RouteAction::Redirect(rd) => Action::Redirect(redirect(rd)),
        ir::RouteAction::DirectResponse { status, body } => Action::DirectResponse(DirectResponseAction {
            status: u32::from(*status),
            body: body.as_ref().map(|b| DataSource {
                specifier: Some(data_source::Specifier::InlineString(b.clone())),
                ..DataSource::default()
            }),
            ..DirectResponseAction::default()
        }),
    };
    let proto = route::Route {
        name: r.id.as_str().to_owned(),
        r#match: Some(route_match(&r.matcher)),
        action: Some(action),
        request_headers_to_add: p.request_headers_to_add.iter().map(header_option).collect(),
        request_headers_to_remove: p.request_headers_to_remove.clone(),
        response_headers_to_add: p.response_headers_to_add.iter().map(header_option).collect(),
        response_headers_to_remove: p.response_headers_to_remove.clone(),
        metadata: Some(owner_metadata(&r.origin)),
        stat_prefix: p
            .stats
            .then(|| mapping_stat_prefix(&r.origin))
            .flatten()
            .unwrap_or_default(),
        ..route::Route::default()
    };
    (proto, per_filter)
}

/// The route of a Mapping of another namespace than the Gateway's (a
/// `tenant` one) enables that namespace's own auth and rate limit filters
/// (disabled in the chain, see `filters::connection_manager`), whether or
/// not the namespace has such a service: the route stays the same when one
/// comes or goes, and Envoy accepts an entry for a filter the chain does
/// not have (it finds a per-filter config's factory by its type, and an
/// empty `FilterConfig` needs none). The auth filter unless the route
/// bypasses auth (with the route's context, if any); the rate limit filter
/// only when the route has rate limits, as a route without any makes no
/// call. The Gateway's own namespace has no such filters (its services are
/// Gateway-wide), so its routes carry nothing; nor do the routes of other
/// objects (a TLSContext's redirect, an AuthService's last route), which
/// the Gateway-wide filters alone govern.
fn add_namespace_filters(r: &ir::Route, per_filter: &mut BTreeMap<String, Any>) {
    if r.tenant.is_none() || r.origin.kind() != "Mapping" {
        return;
    }
    let namespace = r.origin.namespace();
    let p = &r.policy;
    if !p.bypass_auth {
        let config = if p.auth_context.is_empty() {
            enabled()
        } else {
            auth_context(&p.auth_context)
        };
        per_filter.insert(filters::namespace_ext_authz(namespace), config);
    }
    if !p.rate_limits.is_empty() {
        per_filter.insert(filters::namespace_ratelimit(namespace), enabled());
    }
}

/// Enables a filter that is disabled in the chain, and configures nothing
/// else: a `FilterConfig` whose `config` is an empty `Any` (Envoy's
/// `PerFilterConfigs`: "configured but empty" means enabled): with its
/// key, about 80 bytes on a route.
fn enabled() -> Any {
    Any {
        type_url: FilterConfig::type_url(),
        value: FilterConfig {
            config: Some(Any::default()),
            ..FilterConfig::default()
        }
        .encode_to_vec(),
    }
}

/// The route's own stats (`vhost.<virtual host>.route.<prefix>.upstream_rq_total`
/// and the like) under a name a person reads: `legate_<namespace>_<name>`
/// of its Mapping, every character outside `[A-Za-z0-9_]` as `_`. Envoy's
/// Prometheus tag extractor cuts `envoy_route` at the first dot, so a
/// Mapping named `quote.v2` must not keep its dot; and every route of one
/// Mapping shares the prefix, so its counters add up per Mapping. Routes of
/// other owners (a TLSContext's redirect, an AuthService's last route)
/// have no route stats, as before.
fn mapping_stat_prefix(origin: &ir::ObjectRef) -> Option<String> {
    (origin.kind() == "Mapping").then(|| {
        format!("legate_{}_{}", origin.namespace(), origin.name())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    })
}

/// `legate.mapping` of the route, for access logs: `namespace/name` of its
/// Mapping, or `Kind/namespace/name` of another owner (a TLSContext's
/// redirect, an AuthService's last route). One map entry each, so the
/// encoding is stable.
fn owner_metadata(origin: &ir::ObjectRef) -> Metadata {
    let owner = if origin.kind() == "Mapping" {
        format!("{}/{}", origin.namespace(), origin.name())
    } else {
        origin.key()
    };
    let owner = Struct {
        fields: [(
            "mapping".to_owned(),
            Value {
                kind: Some(value::Kind::StringValue(owner)),
            },
        )]
        .into(),
    };
    Metadata {
        filter_metadata: [("legate".to_owned(), owner)].into(),
        ..Metadata::default()
    }
}

/// Context extensions for the auth service, encoded with sorted keys.
fn auth_context(context: &BTreeMap<String, String>) -> Any {
    let settings = encode_with_sorted_map(&CheckSettings::default(), |c| &mut c.context_extensions, context);
    let mut value = Vec::new();
    append_message_field(&mut value, EXT_AUTHZ_PER_ROUTE_CHECK_SETTINGS_FIELD, &settings);
    Any {
        type_url: ExtAuthzPerRoute::type_url(),
        value,
    }
}

/// `ExtAuthzPerRoute.check_settings`.
const EXT_AUTHZ_PER_ROUTE_CHECK_SETTINGS_FIELD: u32 = 2;

fn local_rate_limit(limit: &ir::LocalRateLimit) -> LocalRateLimit {
    let always = || RuntimeFractionalPercent {
        default_value: Some(FractionalPercent {
            numerator: 100,
            denominator: DenominatorType::Hundred as i32,
        }),
        ..RuntimeFractionalPercent::default()
    };
    LocalRateLimit {
        stat_prefix: "local_rate_limit".into(),
        token_bucket: Some(TokenBucket {
            max_tokens: limit.requests,
            tokens_per_fill: Some(UInt32Value {
                value: limit.requests,
            }),
            fill_interval: Some(duration(limit.per)),
        }),
        filter_enabled: Some(always()),
        filter_enforced: Some(always()),
        ..LocalRateLimit::default()
    }
}

fn route_match(m: &ir::RouteMatch) -> RouteMatch {
    let path = match &m.path {
        ir::PathMatch::Prefix(p) => PathSpecifier::Prefix(p.clone()),
        ir::PathMatch::Exact(p) => PathSpecifier::Path(p.clone()),
        ir::PathMatch::Regex(re) => PathSpecifier::SafeRegex(regex(re)),
    };
    let mut headers: Vec<HeaderMatcher> = m
        .method
        .iter()
        .map(|method| HeaderMatcher {
            name: ":method".into(),
            header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(exact(method))),
            ..HeaderMatcher::default()
        })
        .collect();
    headers.extend(m.headers.iter().map(|h| HeaderMatcher {
        name: h.name.clone(),
        invert_match: h.invert,
        header_match_specifier: Some(match &h.value {
            ir::ValueMatch::Present => HeaderMatchSpecifier::PresentMatch(true),
            other => HeaderMatchSpecifier::StringMatch(string_matcher_of(other)),
        }),
        ..HeaderMatcher::default()
    }));
    RouteMatch {
        path_specifier: Some(path),
        // Envoy's default is case sensitive; leave the field out then, so the
        // common route stays small.
        case_sensitive: (!m.case_sensitive).then_some(BoolValue { value: false }),
        headers,
        query_parameters: m
            .query
            .iter()
            .map(|q| QueryParameterMatcher {
                name: q.name.clone(),
                query_parameter_match_specifier: Some(match &q.value {
                    ir::ValueMatch::Present => QueryParameterMatchSpecifier::PresentMatch(true),
                    other => QueryParameterMatchSpecifier::StringMatch(string_matcher_of(other)),
                }),
            })
            .collect(),
        ..RouteMatch::default()
    }
}

fn route_action(f: &ir::Forward, p: &ir::RoutePolicy) -> RouteAction {
    let cluster_specifier = match f.upstreams.as_slice() {
        [one] => Some(route_action::ClusterSpecifier::Cluster(one.upstream.clone())),
        [] => None,
        many => Some(route_action::ClusterSpecifier::WeightedClusters(
            WeightedCluster {
                clusters: many
                    .iter()
                    .map(|u| ClusterWeight {
                        name: u.upstream.clone(),
                        weight: Some(UInt32Value { value: u.weight }),
                        ..ClusterWeight::default()
                    })
                    .collect(),
                ..WeightedCluster::default()
            },
        )),
    };
    RouteAction {
        cluster_specifier,
        prefix_rewrite: f.prefix_rewrite.clone().unwrap_or_default(),
        regex_rewrite: f.regex_rewrite.as_ref().map(|rr| RegexMatchAndSubstitute {
            pattern: Some(regex(&rr.pattern)),
            substitution: rr.substitution.clone(),
        }),
        host_rewrite_specifier: f.host_rewrite.as_ref().map(|h| match h {
            ir::HostRewrite::Literal(host) => {
                route_action::HostRewriteSpecifier::HostRewriteLiteral(host.clone())
            }
            ir::HostRewrite::FromUpstream => {
                route_action::HostRewriteSpecifier::AutoHostRewrite(BoolValue { value: true })
            }
        }),
        timeout: p.timeout.map(duration),
        idle_timeout: p.idle_timeout.map(duration),
        retry_policy: p.retries.as_ref().map(|r| RetryPolicy {
            retry_on: r.retry_on.join(","),
            num_retries: Some(UInt32Value { value: r.num_retries }),
            per_try_timeout: r.per_try_timeout.map(duration),
            ..RetryPolicy::default()
        }),
        upgrade_configs: f
            .upgrades
            .iter()
            .map(|u| route_action::UpgradeConfig {
                upgrade_type: u.clone(),
                enabled: Some(BoolValue { value: true }),
                ..route_action::UpgradeConfig::default()
            })
            .collect(),
        request_mirror_policies: f
            .mirrors
            .iter()
            .map(|m| route_action::RequestMirrorPolicy {
                cluster: m.upstream.clone(),
                runtime_fraction: Some(RuntimeFractionalPercent {
                    default_value: Some(FractionalPercent {
                        numerator: m.percent.min(100),
                        denominator: DenominatorType::Hundred as i32,
                    }),
                    ..RuntimeFractionalPercent::default()
                }),
                ..route_action::RequestMirrorPolicy::default()
            })
            .collect(),
        rate_limits: p
            .rate_limits
            .iter()
            .map(|entries| RateLimit {
                actions: entries.iter().map(rate_limit_action).collect(),
                ..RateLimit::default()
            })
            .collect(),
        hash_policy: p.hash_on.iter().map(hash_policy).collect(),
        ..RouteAction::default()
    }
}

fn rate_limit_action(entry: &ir::RateLimitEntry) -> rate_limit::Action {
    use rate_limit::action::{self as action, ActionSpecifier};
    let specifier = match entry {
        ir::RateLimitEntry::Generic { key, value } => ActionSpecifier::GenericKey(action::GenericKey {
            descriptor_key: key.clone(),
            descriptor_value: value.clone(),
            ..action::GenericKey::default()
        }),
        ir::RateLimitEntry::RequestHeader {
            header,
            key,
            skip_if_absent,
        } => ActionSpecifier::RequestHeaders(action::RequestHeaders {
            header_name: header.clone(),
            descriptor_key: key.clone(),
            skip_if_absent: *skip_if_absent,
        }),
        ir::RateLimitEntry::RemoteAddress => ActionSpecifier::RemoteAddress(action::RemoteAddress::default()),
        ir::RateLimitEntry::DestinationCluster => {
            ActionSpecifier::DestinationCluster(action::DestinationCluster::default())
        }
    };
    rate_limit::Action {
        action_specifier: Some(specifier),
    }
}

fn hash_policy(on: &ir::HashOn) -> route_action::HashPolicy {
    use route_action::hash_policy::{self as hash, PolicySpecifier};
    let specifier = match on {
        ir::HashOn::Header(name) => PolicySpecifier::Header(hash::Header {
            header_name: name.clone(),
            ..hash::Header::default()
        }),
        ir::HashOn::Cookie { name, ttl, path } => PolicySpecifier::Cookie(hash::Cookie {
            name: name.clone(),
            ttl: ttl.map(duration),
            path: path.clone().unwrap_or_default(),
            ..hash::Cookie::default()
        }),
        ir::HashOn::SourceIp => {
            PolicySpecifier::ConnectionProperties(hash::ConnectionProperties { source_ip: true })
        }
    };
    route_action::HashPolicy {
        policy_specifier: Some(specifier),
        ..route_action::HashPolicy::default()
    }
}

fn redirect(rd: &ir::Redirect) -> RedirectAction {
    use redirect_action::RedirectResponseCode as Code;
    let response_code = match rd.status {
        302 => Code::Found,
        303 => Code::SeeOther,
        307 => Code::TemporaryRedirect,
        308 => Code::PermanentRedirect,
        _ => Code::MovedPermanently,
    };
    RedirectAction {
        host_redirect: rd.host.clone().unwrap_or_default(),
        port_redirect: rd.port.map(u32::from).unwrap_or_default(),
        response_code: response_code as i32,
        strip_query: rd.strip_query,
        scheme_rewrite_specifier: rd
            .https
            .then_some(redirect_action::SchemeRewriteSpecifier::HttpsRedirect(true)),
        path_rewrite_specifier: rd.path.as_ref().map(|path| match path {
            ir::RedirectPath::Replace(p) => redirect_action::PathRewriteSpecifier::PathRedirect(p.clone()),
            ir::RedirectPath::Prefix(p) => redirect_action::PathRewriteSpecifier::PrefixRewrite(p.clone()),
            ir::RedirectPath::Regex(rr) => {
                redirect_action::PathRewriteSpecifier::RegexRewrite(RegexMatchAndSubstitute {
                    pattern: Some(regex(&rr.pattern)),
                    substitution: rr.substitution.clone(),
                })
            }
        }),
    }
}

fn cors_policy(c: &ir::Cors) -> CorsPolicy {
    CorsPolicy {
        allow_origin_string_match: c
            .allow_origins
            .iter()
            .map(|o| {
                if o == "*" {
                    StringMatcher {
                        match_pattern: Some(string_matcher::MatchPattern::SafeRegex(regex(".*"))),
                        ..StringMatcher::default()
                    }
                } else {
                    exact(o)
                }
            })
            .collect(),
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c.max_age.map(|d| d.as_secs().to_string()).unwrap_or_default(),
        allow_credentials: c.allow_credentials.then_some(BoolValue { value: true }),
        ..CorsPolicy::default()
    }
}

fn header_option(h: &ir::HeaderValue) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: h.name.clone(),
            value: h.value.clone(),
            ..HeaderValue::default()
        }),
        append_action: if h.append {
            HeaderAppendAction::AppendIfExistsOrAdd
        } else {
            HeaderAppendAction::OverwriteIfExistsOrAdd
        } as i32,
        ..HeaderValueOption::default()
    }
}

fn string_matcher_of(v: &ir::ValueMatch) -> StringMatcher {
    let pattern = match v {
        ir::ValueMatch::Exact(s) => string_matcher::MatchPattern::Exact(s.clone()),
        ir::ValueMatch::Prefix(s) => string_matcher::MatchPattern::Prefix(s.clone()),
        ir::ValueMatch::Regex(s) => string_matcher::MatchPattern::SafeRegex(regex(s)),
        // Callers map Present to the matcher's own present_match; an empty
        // prefix is the same condition, for completeness.
        ir::ValueMatch::Present => string_matcher::MatchPattern::Prefix(String::new()),
    };
    StringMatcher {
        match_pattern: Some(pattern),
        ..StringMatcher::default()
    }
}

fn exact(s: &str) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Exact(s.to_owned())),
        ..StringMatcher::default()
    }
}

fn regex(re: &str) -> RegexMatcher {
    RegexMatcher {
        regex: re.to_owned(),
        ..RegexMatcher::default()
    }
}

pub fn duration(d: Duration) -> envoy_types::pb::google::protobuf::Duration {
    envoy_types::pb::google::protobuf::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).expect("sub-second nanos fit in i32"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mappings_routes_count_under_its_namespace_and_name_without_dots() {
        let prefix = |kind: &str, namespace: &str, name: &str| {
            mapping_stat_prefix(&ir::ObjectRef::new(kind, namespace, name, 1))
        };
        assert_eq!(
            prefix("Mapping", "shop", "quote").as_deref(),
            Some("legate_shop_quote")
        );
        assert_eq!(
            prefix("Mapping", "shop-eu", "quote.v2-beta").as_deref(),
            Some("legate_shop_eu_quote_v2_beta")
        );
        assert_eq!(prefix("TLSContext", "shop", "tls"), None);
        assert_eq!(prefix("AuthService", "shop", "auth"), None);
    }

    #[test]
    fn a_route_keeps_statistics_only_when_its_gateway_asks() {
        let mut r = crate::sample::route("quote", "shop.example.com", "/quote/", "quote");
        assert_eq!(r.origin.kind(), "Mapping");
        let expected = mapping_stat_prefix(&r.origin).expect("a Mapping has a stat prefix");
        assert_eq!(route_proto(&r).0.stat_prefix, "", "off by default");
        r.policy.stats = true;
        assert_eq!(route_proto(&r).0.stat_prefix, expected);
    }
}
