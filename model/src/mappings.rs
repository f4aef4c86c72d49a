//! Mappings → routes: validation, grouping by match, cross-namespace
//! conflicts, weights and shadows, and the upstreams they send to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::{Resource, ResourceExt};
use legate_crds::conditions::reasons;
use legate_crds::gateway::RouteDefaults;
use legate_crds::mapping::{DEFAULT_TIMEOUT, Mapping};
use legate_crds::{Gateway, common};
use legate_xds::ir;

use crate::attach;
use crate::names::{gateway_key, object_ref, route_id};
use crate::services::ServiceIndex;
use crate::upstreams::{self, ClusterSettings, RefError, Reference, ServiceRef};
use crate::verdicts::{Problem, Verdict, Verdicts};
use crate::weights::{self, Share};
use crate::world::{Quarantine, World};

/// Adds the routes of every Mapping attached to `gateway` and records verdicts.
pub fn add_routes(
    world: &World,
    gateway: &Gateway,
    index: &ServiceIndex,
    quarantine: &Quarantine,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    let key = gateway_key(gateway);
    let defaults = gateway.spec.defaults.clone().unwrap_or(RouteDefaults {
        timeout: None,
        retry_policy: None,
        cors: None,
        circuit_breakers: None,
        load_balancer: None,
    });
    let http_listeners: Vec<String> = config
        .listeners
        .values()
        .filter(|l| {
            matches!(
                l.protocol,
                ir::ListenerProtocol::Http | ir::ListenerProtocol::Https
            )
        })
        .map(|l| l.name.clone())
        .collect();

    // Valid Mappings attached to this Gateway, grouped by what they match.
    let mut groups: BTreeMap<String, Vec<Arc<Mapping>>> = BTreeMap::new();
    for mapping in &world.mappings {
        if mapping.meta().deletion_timestamp.is_some() {
            continue;
        }
        let namespace = mapping.namespace().unwrap_or_default();
        let verdict = verdict_for(verdicts, mapping);
        if let Err(problem) = validate(mapping) {
            verdict.accepted = Err(problem);
            continue;
        }
        if !attach::attaches(world, gateway, &namespace, &mapping.spec.gateways) {
            continue;
        }
        let reference = object_ref(mapping.as_ref());
        if quarantine.get(&reference.key()) == Some(&reference.generation()) {
            // Envoy refused this generation: its status says so, and it stays
            // out so that everyone else's changes still reach Envoy.
            verdict.carried_by(&key);
            continue;
        }
        groups
            .entry(match_key(mapping))
            .or_default()
            .push(mapping.clone());
    }

    for members in groups.into_values() {
        let members = resolve_conflicts(members, verdicts);
        let Some(route_members) = split_weights(members, verdicts) else {
            continue;
        };
        for listener in &http_listeners {
            let Some(route) = build_route(
                world,
                &route_members,
                listener,
                &defaults,
                index,
                config,
                verdicts,
            ) else {
                continue;
            };
            // The translator refuses what Envoy could not run; say so on the
            // Mappings rather than let the route silently never arrive.
            match route.validate() {
                Ok(()) => {
                    config.routes.insert(route.id.clone(), route);
                }
                Err(e) => {
                    for mapping in route_members.all() {
                        let message = format!("the route cannot be sent to Envoy: {e}");
                        verdicts.reject(
                            &object_ref(mapping.as_ref()),
                            Problem::new(reasons::INVALID, message),
                        );
                    }
                }
            }
        }
        for mapping in route_members.all() {
            let verdict = verdict_for(verdicts, mapping);
            if verdict.accepted.is_ok() {
                verdict.carried_by(&key);
            }
        }
    }
}

fn verdict_for<'a>(verdicts: &'a mut Verdicts, mapping: &Mapping) -> &'a mut Verdict {
    verdicts.entry(&object_ref(mapping))
}

/// What only the controller can judge about a Mapping on its own: regular
/// expressions (RE2 syntax, checked with Rust's regex crate, which shares it),
/// durations, the service reference.
pub fn validate(mapping: &Mapping) -> Result<(), Problem> {
    let spec = &mapping.spec;
    let invalid = |message: String| Problem::new(reasons::INVALID, message);
    let mut regexes: Vec<(String, &str)> = Vec::new();
    if let Some(r) = &spec.path_regex {
        regexes.push(("spec.pathRegex".into(), r));
    }
    for (name, r) in &spec.regex_headers {
        regexes.push((format!("spec.regexHeaders[{name}]"), r));
    }
    for (name, r) in &spec.regex_query_parameters {
        regexes.push((format!("spec.regexQueryParameters[{name}]"), r));
    }
    if let Some(r) = &spec.regex_rewrite {
        regexes.push(("spec.regexRewrite.pattern".into(), &r.pattern));
    }
    if let Some(r) = spec.redirect.as_ref().and_then(|r| r.regex.as_ref()) {
        regexes.push(("spec.redirect.regex.pattern".into(), &r.pattern));
    }
    for (field, pattern) in regexes {
        if let Err(e) = regex::Regex::new(pattern) {
            let detail = e
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string();
            return Err(invalid(format!(
                "{field} {pattern:?} is not a valid RE2 regular expression: {detail}"
            )));
        }
    }
    let durations = [
        ("spec.timeout", spec.timeout.as_ref()),
        ("spec.idleTimeout", spec.idle_timeout.as_ref()),
        ("spec.connectTimeout", spec.connect_timeout.as_ref()),
    ];
    for (field, duration) in durations {
        if let Some(Err(e)) = duration.map(common::Duration::to_std) {
            return Err(invalid(format!("{field}: {e}")));
        }
    }
    if let Some(service) = &spec.service {
        upstreams::parse(service, &mapping.namespace().unwrap_or_default())
            .map_err(|e| invalid(e.to_string()))?;
    }
    if let Some(limit) = &spec.local_rate_limit {
        // Envoy refuses an empty bucket, and a fill interval under 50 ms.
        let per = limit
            .per
            .to_std()
            .map_err(|e| invalid(format!("spec.localRateLimit.per: {e}")))?;
        if per < Duration::from_millis(50) || limit.requests < 1 {
            return Err(invalid(format!(
                "spec.localRateLimit allows {} requests per {}: it needs at least 1 request per 50ms or more",
                limit.requests, limit.per.0
            )));
        }
    }
    if spec.redirect.as_ref().is_some_and(|r| r.prefix.is_some()) && spec.prefix.is_none() {
        return Err(invalid(
            "spec.redirect.prefix replaces the matched prefix: the Mapping needs spec.prefix".into(),
        ));
    }
    Ok(())
}

/// Mappings with equal keys match the same requests.
fn match_key(mapping: &Mapping) -> String {
    let s = &mapping.spec;
    let path = match (&s.prefix, &s.path, &s.path_regex) {
        (Some(p), _, _) => format!("prefix:{p}"),
        (_, Some(p), _) => format!("path:{p}"),
        (_, _, Some(p)) => format!("regex:{p}"),
        _ => String::new(),
    };
    let sorted = |m: &BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{}={v}", k.to_ascii_lowercase()))
            .collect::<Vec<_>>()
            .join("&")
    };
    format!(
        "{}|{path}|{}|{}|h:{}|rh:{}|q:{}|rq:{}",
        s.hostname.to_ascii_lowercase(),
        s.case_sensitive,
        s.method.as_deref().unwrap_or("*"),
        sorted(&s.headers),
        sorted(&s.regex_headers),
        sorted(&s.query_parameters),
        sorted(&s.regex_query_parameters),
    )
}

/// Oldest first; the name breaks ties so that the order never depends on
/// the order the API server listed them in.
fn age_order(a: &Arc<Mapping>, b: &Arc<Mapping>) -> std::cmp::Ordering {
    let created = |m: &Mapping| m.meta().creation_timestamp.clone().map(|t| t.0);
    created(a)
        .cmp(&created(b))
        .then_with(|| a.namespace().cmp(&b.namespace()))
        .then_with(|| a.name_any().cmp(&b.name_any()))
}

/// Keeps the Mappings of the namespace that claimed the match first; the
/// others are Conflicted and get no traffic.
fn resolve_conflicts(mut members: Vec<Arc<Mapping>>, verdicts: &mut Verdicts) -> Vec<Arc<Mapping>> {
    members.sort_by(age_order);
    let Some(owner) = members
        .first()
        .map(|m| (m.namespace().unwrap_or_default(), m.name_any()))
    else {
        return members;
    };
    let (kept, conflicted): (Vec<_>, Vec<_>) = members
        .into_iter()
        .partition(|m| m.namespace().unwrap_or_default() == owner.0);
    for mapping in conflicted {
        let message = format!(
            "Mapping {}/{} already routes hostname {:?} with the same match; traffic stays with it \
             (weights split traffic only between Mappings of one namespace)",
            owner.0, owner.1, mapping.spec.hostname
        );
        verdicts.reject(
            &object_ref(mapping.as_ref()),
            Problem::new(reasons::CONFLICTED, message),
        );
    }
    kept
}

/// The members of one route: who gets traffic, with what weight, and who mirrors.
#[derive(Debug)]
struct RouteMembers {
    /// Receive traffic; the first is the route's origin. Weights are relative.
    primaries: Vec<(Arc<Mapping>, u32)>,
    /// Mirror a percentage of the traffic.
    shadows: Vec<(Arc<Mapping>, u32)>,
}

impl RouteMembers {
    fn all(&self) -> impl Iterator<Item = &Arc<Mapping>> {
        self.primaries.iter().chain(self.shadows.iter()).map(|(m, _)| m)
    }
}

/// `spec.weight`, when it is one (the API server keeps it within 0-100).
fn weight(mapping: &Mapping) -> Option<u32> {
    mapping.spec.weight.and_then(|w| u32::try_from(w).ok())
}

/// The primaries' shares by the one weights rule ([`weights::split`]); a
/// Mapping whose weight takes the total above 100 is Invalid (the older
/// Mappings keep working). Shadows mirror `weight` percent (all by default).
fn split_weights(members: Vec<Arc<Mapping>>, verdicts: &mut Verdicts) -> Option<RouteMembers> {
    let (shadows, primaries): (Vec<_>, Vec<_>) =
        members.into_iter().partition(|m| m.spec.shadow.unwrap_or(false));
    let weights: Vec<Option<u32>> = primaries.iter().map(|m| weight(m)).collect();
    let mut all: Vec<(Arc<Mapping>, u32)> = Vec::new();
    for (mapping, share) in primaries.into_iter().zip(weights::split(&weights)) {
        match share {
            Share::Percent(percent) => all.push((mapping, percent)),
            Share::Refused { weight, total } => {
                let message = format!(
                    "weight {weight} takes the Mappings for this match to {} percent; weights may add up to 100 at most",
                    total.saturating_add(weight)
                );
                verdicts.reject(
                    &object_ref(mapping.as_ref()),
                    Problem::new(reasons::INVALID, message),
                );
            }
        }
    }
    let shadows: Vec<(Arc<Mapping>, u32)> = shadows
        .into_iter()
        .map(|m| {
            let percent = weight(&m).unwrap_or(100);
            (m, percent)
        })
        .collect();
    if all.is_empty() {
        for (mapping, _) in &shadows {
            let message =
                "a shadow Mapping mirrors the traffic of a Mapping with the same match, and there is none";
            verdicts.reject(
                &object_ref(mapping.as_ref()),
                Problem::new(reasons::INVALID, message),
            );
        }
        return None;
    }
    Some(RouteMembers {
        primaries: all,
        shadows,
    })
}

fn build_route(
    world: &World,
    members: &RouteMembers,
    listener: &str,
    defaults: &RouteDefaults,
    index: &ServiceIndex,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) -> Option<ir::Route> {
    let (primary, _) = members.primaries.first()?;
    let origin = object_ref(primary.as_ref());
    let spec = &primary.spec;

    let action = if let Some(redirect) = &spec.redirect {
        for (other, _) in members.primaries.iter().skip(1) {
            let message = format!(
                "Mapping {} redirects requests with this match; a redirect cannot share its traffic",
                primary.name_any()
            );
            verdicts.reject(
                &object_ref(other.as_ref()),
                Problem::new(reasons::CONFLICTED, message),
            );
        }
        ir::RouteAction::Redirect(redirect_action(redirect, spec.prefix.as_deref()))
    } else {
        let mut forward = ir::Forward::default();
        for (mapping, weight) in &members.primaries {
            if mapping.spec.redirect.is_some() {
                continue;
            }
            if let Some(name) = upstream_for(world, mapping, defaults, index, config, verdicts) {
                forward.upstreams.push(ir::WeightedUpstream {
                    upstream: name,
                    weight: *weight,
                });
            }
        }
        for (mapping, percent) in &members.shadows {
            if let Some(name) = upstream_for(world, mapping, defaults, index, config, verdicts) {
                forward.mirrors.push(ir::Mirror {
                    upstream: name,
                    percent: *percent,
                });
            }
        }
        forward.prefix_rewrite = match (
            &spec.regex_rewrite,
            spec.path_regex.is_some(),
            spec.rewrite.as_str(),
        ) {
            (Some(_), _, _) | (None, true, _) | (None, false, "") => None,
            (None, false, rewrite) => Some(rewrite.to_string()),
        };
        forward.regex_rewrite = spec.regex_rewrite.as_ref().map(|r| ir::RegexRewrite {
            pattern: r.pattern.clone(),
            substitution: r.substitution.clone(),
        });
        forward.host_rewrite = match (&spec.host_rewrite, spec.auto_host_rewrite) {
            (Some(host), _) => Some(ir::HostRewrite::Literal(host.clone())),
            (None, Some(true)) => Some(auto_host(primary, index)),
            _ => None,
        };
        forward.upgrades = spec.allow_upgrade.clone();
        ir::RouteAction::Forward(forward)
    };

    Some(ir::Route {
        id: route_id(&origin, listener),
        origin: origin.clone(),
        co_origins: members.all().skip(1).map(|m| object_ref(m.as_ref())).collect(),
        listener: listener.to_string(),
        hostnames: vec![spec.hostname.to_ascii_lowercase()],
        precedence: spec.precedence,
        matcher: route_match(primary),
        action,
        policy: route_policy(primary, defaults),
    })
}

/// `autoHostRewrite`: Envoy takes the host of a DNS upstream (a URL or an
/// ExternalName Service); EDS endpoints of a Kubernetes Service have none, so
/// the Host becomes the Service's name, `name.namespace`.
fn auto_host(mapping: &Mapping, index: &ServiceIndex) -> ir::HostRewrite {
    let namespace = mapping.namespace().unwrap_or_default();
    let reference = mapping
        .spec
        .service
        .as_deref()
        .and_then(|s| upstreams::parse(s, &namespace).ok());
    match reference {
        Some(ServiceRef::Kubernetes { name, namespace, .. }) => {
            let external = index
                .service(&namespace, &name)
                .and_then(|svc| svc.spec.as_ref())
                .is_some_and(|spec| spec.type_.as_deref() == Some("ExternalName"));
            if external {
                ir::HostRewrite::FromUpstream
            } else {
                ir::HostRewrite::Literal(format!("{name}.{namespace}"))
            }
        }
        _ => ir::HostRewrite::FromUpstream,
    }
}

fn route_match(mapping: &Mapping) -> ir::RouteMatch {
    let s = &mapping.spec;
    let path = match (&s.prefix, &s.path, &s.path_regex) {
        (Some(p), _, _) => ir::PathMatch::Prefix(p.clone()),
        (_, Some(p), _) => ir::PathMatch::Exact(p.clone()),
        (_, _, Some(p)) => ir::PathMatch::Regex(p.clone()),
        _ => ir::PathMatch::Prefix("/".into()),
    };
    let mut headers: Vec<ir::HeaderMatch> = s
        .headers
        .iter()
        .map(|(name, value)| ir::HeaderMatch {
            name: name.to_ascii_lowercase(),
            value: ir::ValueMatch::Exact(value.clone()),
            invert: false,
        })
        .collect();
    headers.extend(s.regex_headers.iter().map(|(name, value)| ir::HeaderMatch {
        name: name.to_ascii_lowercase(),
        value: ir::ValueMatch::Regex(value.clone()),
        invert: false,
    }));
    let mut query: Vec<ir::QueryMatch> = s
        .query_parameters
        .iter()
        .map(|(name, value)| ir::QueryMatch {
            name: name.clone(),
            value: ir::ValueMatch::Exact(value.clone()),
        })
        .collect();
    query.extend(
        s.regex_query_parameters
            .iter()
            .map(|(name, value)| ir::QueryMatch {
                name: name.clone(),
                value: ir::ValueMatch::Regex(value.clone()),
            }),
    );
    ir::RouteMatch {
        path,
        case_sensitive: s.case_sensitive,
        method: s.method.clone(),
        headers,
        query,
    }
}

fn duration(d: Option<&common::Duration>) -> Option<Duration> {
    d.and_then(|d| d.to_std().ok())
}

fn route_policy(mapping: &Mapping, defaults: &RouteDefaults) -> ir::RoutePolicy {
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
    }
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

fn redirect_action(r: &legate_crds::mapping::Redirect, matched_prefix: Option<&str>) -> ir::Redirect {
    let path = match (&r.path, &r.prefix, &r.regex) {
        (Some(path), _, _) => Some(ir::RedirectPath::Replace(path.clone())),
        // A prefix redirect replaces the matched prefix and keeps the rest.
        (None, Some(prefix), _) if matched_prefix.is_some() => Some(ir::RedirectPath::Prefix(prefix.clone())),
        (None, _, Some(re)) => Some(ir::RedirectPath::Regex(ir::RegexRewrite {
            pattern: re.pattern.clone(),
            substitution: re.substitution.clone(),
        })),
        _ => None,
    };
    ir::Redirect {
        host: r.host.clone(),
        path,
        port: None,
        https: r.https_redirect.unwrap_or(false),
        status: u16::try_from(r.response_code).unwrap_or(301),
        strip_query: false,
    }
}

/// Resolves a Mapping's service into an upstream of `config` and returns its
/// name; records BackendNotFound on the verdict when the Service is missing
/// (the route then answers 503, which makes the failure visible). A port that
/// is not the Service's, or a TLS Secret that is missing or broken, leaves
/// the Mapping without an upstream.
fn upstream_for(
    world: &World,
    mapping: &Mapping,
    defaults: &RouteDefaults,
    index: &ServiceIndex,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) -> Option<String> {
    let service = mapping.spec.service.as_ref()?;
    let origin = object_ref(mapping);
    let reference = Reference {
        service,
        origin: &origin,
        settings: cluster_settings(mapping, defaults),
        tls: mapping.spec.upstream_tls.as_ref(),
    };
    match upstreams::resolve(world, index, &reference, config) {
        Ok(resolved) => {
            // No ready endpoint is not a broken reference for a route (a
            // Service may be scaled to zero); only a missing Service is.
            if let Some(e @ RefError::ServiceNotFound { .. }) = &resolved.trouble {
                let message = format!("{e}; requests to this route get 503");
                verdicts.unresolved(&origin, Problem::new(e.reason(), message));
            }
            Some(resolved.upstream)
        }
        Err(e) => {
            let problem = Problem::new(e.reason(), e.to_string());
            match e {
                RefError::Invalid(_) => verdicts.reject(&origin, problem),
                _ => verdicts.unresolved(&origin, problem),
            }
            None
        }
    }
}

/// The upstream settings of a Mapping, else of the Gateway's defaults.
fn cluster_settings(mapping: &Mapping, defaults: &RouteDefaults) -> ClusterSettings {
    let s = &mapping.spec;
    let lb = s.load_balancer.as_ref().or(defaults.load_balancer.as_ref());
    let breakers = s.circuit_breakers.as_ref().or(defaults.circuit_breakers.as_ref());
    ClusterSettings {
        protocol: if s.grpc.unwrap_or(false) {
            ir::UpstreamProtocol::Http2
        } else {
            ir::UpstreamProtocol::Http1
        },
        load_balancing: match lb.map(|l| l.policy) {
            Some(common::LoadBalancerPolicy::LeastRequest) => ir::LoadBalancing::LeastRequest,
            Some(common::LoadBalancerPolicy::RingHash) => ir::LoadBalancing::RingHash,
            Some(common::LoadBalancerPolicy::Maglev) => ir::LoadBalancing::Maglev,
            _ => ir::LoadBalancing::RoundRobin,
        },
        connect_timeout: duration(s.connect_timeout.as_ref()).unwrap_or(Duration::from_secs(3)),
        circuit_breakers: breakers.map(|b| ir::CircuitBreakers {
            max_connections: b.max_connections.and_then(|n| u32::try_from(n).ok()),
            max_pending_requests: b.max_pending_requests.and_then(|n| u32::try_from(n).ok()),
            max_requests: b.max_requests.and_then(|n| u32::try_from(n).ok()),
            max_retries: b.max_retries.and_then(|n| u32::try_from(n).ok()),
        }),
    }
}
