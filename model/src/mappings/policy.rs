//! A route's policy: timeouts, retries, headers, CORS, rate limits and
//! sticky sessions, from the Mapping and else the Gateway's defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use legate_crds::common;
use legate_crds::mapping::{DEFAULT_TIMEOUT, Mapping};
use legate_xds::ir;

use super::RouteSettings;

pub(super) fn duration(d: Option<&common::Duration>) -> Option<Duration> {
    d.and_then(|d| d.to_std().ok())
}

pub(super) fn route_policy(mapping: &Mapping, settings: &RouteSettings) -> ir::RoutePolicy {
    let defaults = &settings.defaults;
    let s = &mapping.spec;
    let timeout = duration(s.timeout.as_ref().or(defaults.timeout.as_ref()))
        .or_else(|| common::parse_duration(DEFAULT_TIMEOUT).ok());
    let retries = s
        .retry_policy
        .as_ref()
        .or(defaults.retry_policy.as_ref())
        .map(|r| ir::RetryPolicy {
            retry_on: r
                .retry_on
                .as_deref()
                .unwrap_or("gateway-error")
                .split(',')
                .map(str::to_string)
                .collect(),
            num_retries: r.num_retries.and_then(|n| u32::try_from(n).ok()).unwrap_or(1),
            per_try_timeout: duration(r.per_try_timeout.as_ref()),
        });
    let headers = |m: &BTreeMap<String, legate_crds::mapping::HeaderValue>| {
        m.iter()
            .map(|(name, h)| ir::HeaderValue {
                name: name.to_ascii_lowercase(),
                value: h.value.clone(),
                append: h.append,
            })
            .collect::<Vec<_>>()
    };
    let cors = s.cors.as_ref().or(defaults.cors.as_ref()).map(|c| ir::Cors {
        allow_origins: c.origins.clone(),
        allow_methods: c.methods.clone(),
        allow_headers: c.headers.clone(),
        expose_headers: c.exposed_headers.clone(),
        max_age: duration(c.max_age.as_ref()),
        allow_credentials: c.credentials.unwrap_or(false),
    });
    let rate_limits = s
        .rate_limits
        .iter()
        .map(|d| d.entries.iter().filter_map(rate_limit_entry).collect::<Vec<_>>())
        .filter(|d| !d.is_empty())
        .collect();
    let hash_on = s
        .load_balancer
        .as_ref()
        .or(defaults.load_balancer.as_ref())
        .filter(|lb| {
            matches!(
                lb.policy,
                common::LoadBalancerPolicy::RingHash | common::LoadBalancerPolicy::Maglev
            )
        })
        .and_then(|lb| lb.hash_on.as_ref())
        .and_then(hash_on);
    ir::RoutePolicy {
        timeout,
        idle_timeout: duration(s.idle_timeout.as_ref()),
        retries,
        request_headers_to_add: headers(&s.add_request_headers),
        request_headers_to_remove: s
            .remove_request_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        response_headers_to_add: headers(&s.add_response_headers),
        response_headers_to_remove: s
            .remove_response_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        cors,
        bypass_auth: s.bypass_auth.unwrap_or(false),
        auth_context: s.auth_context_extensions.clone(),
        rate_limits,
        local_rate_limit: s.local_rate_limit.as_ref().and_then(|l| {
            Some(ir::LocalRateLimit {
                requests: u32::try_from(l.requests).ok()?,
                per: l.per.to_std().ok()?,
            })
        }),
        hash_on,
        stats: settings.stats,
        no_compression: s.compression == Some(false),
        body_limit: body_limit(mapping, settings).0,
        // `validate` refused a Mapping with an entry that is not an address.
        ip_access: crate::ip_access::mapping_lists(&s.ip_allow, &s.ip_deny)
            .ok()
            .flatten(),
        // The route's own, with the upstream of its key set (`routes`).
        jwt: None,
    }
}

/// What a Mapping may hold of a request body when the Gateway sets no limit:
/// Envoy keeps a limited body in memory, and every team shares the Envoys.
pub(crate) const TENANT_BODY_CAP: u32 = 16 << 20;

/// A Mapping's own body limit, and a note when it asked for more than it
/// may: never above the Gateway's limit (which protects every upstream of
/// the Gateway), nor above [`TENANT_BODY_CAP`] without one. 0 is no limit.
pub(super) fn body_limit(
    mapping: &Mapping,
    settings: &RouteSettings,
) -> (Option<ir::BodyLimit>, Option<String>) {
    let Some(asked) = mapping.spec.max_request_body_bytes else {
        return (None, None);
    };
    if asked == 0 {
        return (Some(ir::BodyLimit::Unlimited), None);
    }
    let cap = settings.max_body.unwrap_or(TENANT_BODY_CAP);
    let asked = u32::try_from(asked).unwrap_or(u32::MAX);
    if asked <= cap {
        return (Some(ir::BodyLimit::Bytes(asked)), None);
    }
    let whose = if settings.max_body.is_some() {
        "the Gateway's http.maxRequestBodyBytes"
    } else {
        "the most a Mapping may hold when the Gateway sets no limit"
    };
    let note = format!(
        "on Gateway {}, maxRequestBodyBytes {asked} is above {whose} ({cap}): {cap} applies",
        settings.gateway
    );
    (Some(ir::BodyLimit::Bytes(cap)), Some(note))
}

fn rate_limit_entry(e: &legate_crds::mapping::RateLimitEntry) -> Option<ir::RateLimitEntry> {
    if let Some(g) = &e.generic_key {
        return Some(ir::RateLimitEntry::Generic {
            key: g.key.clone().unwrap_or_else(|| "generic_key".into()),
            value: g.value.clone(),
        });
    }
    if let Some(h) = &e.request_header {
        return Some(ir::RateLimitEntry::RequestHeader {
            header: h.header.to_ascii_lowercase(),
            key: h.key.clone(),
            // Envoy drops the whole descriptor for an absent header unless
            // told to drop just the entry.
            skip_if_absent: !h.omit_if_not_present.unwrap_or(false),
        });
    }
    if e.remote_address.is_some() {
        return Some(ir::RateLimitEntry::RemoteAddress);
    }
    e.destination_cluster
        .as_ref()
        .map(|_| ir::RateLimitEntry::DestinationCluster)
}

fn hash_on(h: &common::HashOn) -> Option<ir::HashOn> {
    if let Some(header) = &h.header {
        return Some(ir::HashOn::Header(header.to_ascii_lowercase()));
    }
    if let Some(c) = &h.cookie {
        return Some(ir::HashOn::Cookie {
            name: c.name.clone(),
            ttl: duration(c.ttl.as_ref()),
            path: c.path.clone(),
        });
    }
    h.source_ip.filter(|on| *on).map(|_| ir::HashOn::SourceIp)
}
