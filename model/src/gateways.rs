//! The Gateway-wide part of a Gateway's configuration: its AuthServices and
//! RateLimitServices; and the verdict on the Gateway itself (its access logs
//! and tracing are in `observability`).
//!
//! An AuthService (or RateLimitService) of the Gateway's own namespace is
//! Gateway-wide: it governs every route. One of any other namespace the
//! Gateway admits governs the routes of that namespace's Mappings only,
//! besides the Gateway-wide one: a tenant never sees, denies or limits
//! another namespace's requests. The oldest of each kind wins in each scope.

use kube::{Resource, ResourceExt};
use legate_crds::auth_service::AuthProtocol;
use legate_crds::conditions::reasons;
use legate_crds::{Gateway, GatewayRef};
use legate_xds::ir;

use crate::age::age_order;
use crate::attach;
use crate::names::{gateway_key, object_ref};
use crate::own_routes::{OwnRoute, add_own_route};
use crate::services::ServiceIndex;
use crate::upstreams::{self, ClusterSettings, Reference};
use crate::verdicts::{Problem, Verdicts};
use crate::world::World;

/// Which routes of a Gateway a service governs.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Scope {
    /// Every route: the service is in the Gateway's namespace.
    Gateway,
    /// The routes of this namespace's Mappings.
    Namespace(String),
}

impl Scope {
    /// The scope of a service of `namespace` on `gateway`.
    fn of(gateway: &Gateway, namespace: &str) -> Scope {
        if gateway.namespace().as_deref() == Some(namespace) {
            Scope::Gateway
        } else {
            Scope::Namespace(namespace.to_owned())
        }
    }

    /// Who gets `effect` when the service cannot be reached.
    fn requests(&self) -> String {
        match self {
            Scope::Gateway => "requests".to_owned(),
            Scope::Namespace(ns) => format!("requests to the Mappings of namespace {ns}"),
        }
    }
}

/// The Gateway's AuthServices and RateLimitServices: in each scope, the
/// oldest of each kind that attaches (more than one is a conflict).
pub fn add_services(
    world: &World,
    gateway: &Gateway,
    index: &ServiceIndex,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    add_auth(world, gateway, index, config, verdicts);
    add_rate_limit(world, gateway, index, config, verdicts);
}

/// The Gateway's external authorization.
fn add_auth(
    world: &World,
    gateway: &Gateway,
    index: &ServiceIndex,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    let key = gateway_key(gateway);
    let chosen = oldest_attached(
        world,
        gateway,
        &world.auth_services,
        |a| &a.spec.gateways,
        verdicts,
    );
    for (scope, auth) in chosen {
        let origin = object_ref(auth.as_ref());
        let verdict = verdicts.entry(&origin);
        let requests = scope.requests();
        let effect = match (auth.spec.failure_mode_allow, auth.spec.status_on_error) {
            (Some(true), _) => format!("{requests} pass unchecked (failureModeAllow)"),
            (_, Some(status)) => format!("{requests} get {status} (statusOnError)"),
            _ => format!("{requests} get 403"),
        };
        let spec = &auth.spec;
        let reference = Reference {
            service: &spec.service,
            origin: &origin,
            settings: match spec.protocol {
                AuthProtocol::Grpc => ClusterSettings::http2(),
                AuthProtocol::Http => ClusterSettings::default(),
            },
            tls: None,
        };
        let upstream = upstreams::resolve_or_empty(world, index, &reference, &effect, config, verdict);
        let protocol = match spec.protocol {
            AuthProtocol::Http => ir::AuthProtocol::Http {
                path_prefix: spec.path_prefix.clone().unwrap_or_default(),
                allowed_request_headers: spec.allowed_request_headers.clone(),
                allowed_authorization_headers: spec.allowed_authorization_headers.clone(),
            },
            AuthProtocol::Grpc => ir::AuthProtocol::Grpc,
        };
        let service = ir::AuthService {
            origin: origin.clone(),
            upstream,
            protocol,
            timeout: spec.timeout.to_std().unwrap_or(std::time::Duration::from_secs(5)),
            failure_mode_allow: spec.failure_mode_allow.unwrap_or(false),
            status_on_error: spec
                .status_on_error
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(403),
            include_body: spec.include_body.as_ref().map(|b| ir::AuthBody {
                max_bytes: u32::try_from(b.max_bytes).unwrap_or(0),
                allow_partial: b.allow_partial.unwrap_or(false),
            }),
        };
        verdict.carried_by(&key);
        match scope {
            Scope::Gateway => {
                config.auth = Some(service);
                add_auth_fallback_routes(&origin, config);
            }
            Scope::Namespace(namespace) => {
                config.namespace_auth.insert(namespace, service);
            }
        }
    }
}

/// Envoy's ext_authz skips requests that match no route, so a header the
/// auth service adds could never pick a Mapping (`headers` on an
/// `allowedAuthorizationHeaders` header). A last route on every host that
/// answers 404 gives each request a route: it is checked, and the route is
/// chosen again with the auth service's headers (`clear_route_cache`).
/// For the Gateway-wide AuthService only: a request that matches no route
/// belongs to no namespace.
fn add_auth_fallback_routes(auth: &ir::ObjectRef, config: &mut ir::Gateway) {
    let not_found = ir::RouteAction::DirectResponse {
        status: 404,
        body: None,
    };
    add_own_route(
        config,
        auth,
        |l| l.protocol.is_http(),
        &[],
        OwnRoute {
            precedence: i32::MIN,
            matcher: ir::RouteMatch::default(),
            action: not_found,
            policy: ir::RoutePolicy::default(),
        },
    );
}

/// The Gateway's global rate limiting.
fn add_rate_limit(
    world: &World,
    gateway: &Gateway,
    index: &ServiceIndex,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    let key = gateway_key(gateway);
    let chosen = oldest_attached(
        world,
        gateway,
        &world.rate_limit_services,
        |r| &r.spec.gateways,
        verdicts,
    );
    for (scope, limit) in chosen {
        let origin = object_ref(limit.as_ref());
        let verdict = verdicts.entry(&origin);
        let effect = if limit.spec.failure_mode_deny == Some(true) {
            "limited requests get 500 (failureModeDeny)".to_owned()
        } else {
            format!("{} are not limited", scope.requests())
        };
        let reference = Reference {
            service: &limit.spec.service,
            origin: &origin,
            // The rate limit protocol is gRPC.
            settings: ClusterSettings::http2(),
            tls: None,
        };
        let upstream = upstreams::resolve_or_empty(world, index, &reference, &effect, config, verdict);
        let service = ir::RateLimitService {
            origin: origin.clone(),
            upstream,
            domain: limit.spec.domain.clone(),
            timeout: limit
                .spec
                .timeout
                .as_ref()
                .and_then(|t| t.to_std().ok())
                .unwrap_or(std::time::Duration::from_millis(20)),
            failure_mode_deny: limit.spec.failure_mode_deny.unwrap_or(false),
        };
        verdict.carried_by(&key);
        match scope {
            Scope::Gateway => config.rate_limit = Some(service),
            Scope::Namespace(namespace) => {
                config.namespace_rate_limit.insert(namespace, service);
            }
        }
    }
}

/// Of the objects of one kind that attach to `gateway`, the oldest in each
/// scope (the Gateway's namespace first, then the other namespaces in
/// order): a Gateway takes one AuthService and one RateLimitService
/// Gateway-wide and one of each per other namespace, and the others of a
/// scope are Conflicted.
fn oldest_attached<'a, K>(
    world: &World,
    gateway: &Gateway,
    objects: &'a [std::sync::Arc<K>],
    gateways_of: impl Fn(&K) -> &[GatewayRef],
    verdicts: &mut Verdicts,
) -> Vec<(Scope, &'a std::sync::Arc<K>)>
where
    K: Resource<DynamicType = ()>,
{
    let mut attached: Vec<(Scope, &std::sync::Arc<K>)> = objects
        .iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .filter_map(|o| {
            let namespace = o.namespace().unwrap_or_default();
            attach::attaches(world, gateway, &namespace, gateways_of(o))
                .then(|| (Scope::of(gateway, &namespace), o))
        })
        .collect();
    let scope_order = |s: &Scope| match s {
        Scope::Gateway => None,
        Scope::Namespace(ns) => Some(ns.clone()),
    };
    attached.sort_by(|(sa, a), (sb, b)| {
        scope_order(sa)
            .cmp(&scope_order(sb))
            .then_with(|| age_order(a.as_ref(), b.as_ref()))
    });
    let mut chosen: Vec<(Scope, &std::sync::Arc<K>)> = Vec::new();
    for (scope, object) in attached {
        let Some((_, first)) = chosen.iter().find(|(s, _)| *s == scope) else {
            chosen.push((scope, object));
            continue;
        };
        let used = format!(
            "Gateway {} already uses {} {}/{}",
            gateway_key(gateway),
            K::kind(&()),
            first.namespace().unwrap_or_default(),
            first.name_any()
        );
        let message = match &scope {
            Scope::Gateway => used,
            Scope::Namespace(ns) => format!("{used} for the Mappings of namespace {ns}"),
        };
        let origin = object_ref(object.as_ref());
        verdicts.entry(&origin).accepted = Err(Problem::new(reasons::CONFLICTED, message));
    }
    chosen
}

/// Every Gateway, even one being deleted, carries itself. Nothing here
/// refuses a Gateway: a listener that cannot be served yet (HTTPS without a
/// certificate, TCP or TLS with nothing to proxy) is left out until it can,
/// and the Gateway controller reads only this verdict's ResolvedRefs (the
/// tracing and access log collectors).
pub fn judge_gateways(world: &World, verdicts: &mut Verdicts) {
    for gateway in &world.gateways {
        let origin = object_ref(gateway.as_ref());
        let key = gateway_key(gateway);
        let verdict = verdicts.entry(&origin);
        verdict.gateways = vec![key];
    }
}
