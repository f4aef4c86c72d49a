//! One route from the Mappings of one match: what it matches, where it
//! sends (forward, mirror or redirect) and how the Host is rewritten.

use kube::ResourceExt;
use legate_crds::conditions::reasons;
use legate_crds::mapping::Mapping;
use legate_xds::ir;

use super::policy::route_policy;
use super::upstream::upstream_for;
use super::{RouteMembers, RouteSettings};
use crate::names::{object_ref, route_id};
use crate::services::ServiceIndex;
use crate::upstreams::{self, ServiceRef};
use crate::verdicts::{Problem, Verdicts};
use crate::world::World;

/// The route of one match on `listener`, serving for `tenant`. The oldest
/// primary names it and gives its match, rewrites and policy; the others
/// add their upstreams.
#[allow(clippy::too_many_arguments)]
pub(super) fn build_route(
    world: &World,
    members: &RouteMembers,
    listener: &str,
    tenant: Option<String>,
    settings: &RouteSettings,
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
            if let Some(name) = upstream_for(world, mapping, &settings.defaults, index, config, verdicts) {
                forward.upstreams.push(ir::WeightedUpstream {
                    upstream: name,
                    weight: *weight,
                });
            }
        }
        for (mapping, percent) in &members.shadows {
            if let Some(name) = upstream_for(world, mapping, &settings.defaults, index, config, verdicts) {
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

    if let (_, Some(note)) = super::policy::body_limit(primary, settings) {
        verdicts.entry(&origin).note(note);
    }
    let mut policy = route_policy(primary, settings);
    policy.jwt = super::jwt::jwt_for(world, primary, index, config, verdicts);
    Some(ir::Route {
        id: route_id(&origin, listener),
        origin: origin.clone(),
        co_origins: members.all().skip(1).map(|m| object_ref(m.as_ref())).collect(),
        listener: listener.to_string(),
        hostnames: vec![spec.hostname.to_ascii_lowercase()],
        tenant,
        precedence: spec.precedence,
        matcher: route_match(primary),
        action,
        policy,
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
