//! The Gateway-wide part of a Gateway's configuration: its AuthService and
//! RateLimitService (the oldest of each that attaches), its access log and
//! tracing; and the verdict on the Gateway itself.

use kube::{Resource, ResourceExt};
use legate_crds::auth_service::AuthProtocol;
use legate_crds::conditions::reasons;
use legate_crds::{Gateway, GatewayRef};
use legate_xds::ir;

use crate::age::age_order;
use crate::attach;
use crate::names::{gateway_key, object_ref};
use crate::own_routes::add_own_route;
use crate::services::ServiceIndex;
use crate::upstreams::{self, ClusterSettings, Reference};
use crate::verdicts::{Problem, Verdicts};
use crate::world::World;

/// The Gateway's AuthService and RateLimitService (the oldest of each kind
/// that attaches; more than one is a conflict).
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
    let Some(auth) = oldest_attached(
        world,
        gateway,
        &world.auth_services,
        |a| &a.spec.gateways,
        verdicts,
    ) else {
        return;
    };
    let origin = object_ref(auth.as_ref());
    let verdict = verdicts.entry(&origin);
    let effect = match (auth.spec.failure_mode_allow, auth.spec.status_on_error) {
        (Some(true), _) => "requests pass unchecked (failureModeAllow)".to_string(),
        (_, Some(status)) => format!("requests get {status} (statusOnError)"),
        _ => "requests get 403".to_string(),
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
    config.auth = Some(ir::AuthService {
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
    });
    add_auth_fallback_routes(&origin, config);
    verdict.carried_by(&key);
}

/// Envoy's ext_authz skips requests that match no route, so a header the
/// auth service adds could never pick a Mapping (`headers` on an
/// `allowedAuthorizationHeaders` header). A last route on every host that
/// answers 404 gives each request a route: it is checked, and the route is
/// chosen again with the auth service's headers (`clear_route_cache`).
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
        i32::MIN,
        not_found,
        ir::RoutePolicy::default(),
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
    let Some(limit) = oldest_attached(
        world,
        gateway,
        &world.rate_limit_services,
        |r| &r.spec.gateways,
        verdicts,
    ) else {
        return;
    };
    let origin = object_ref(limit.as_ref());
    let verdict = verdicts.entry(&origin);
    let effect = if limit.spec.failure_mode_deny == Some(true) {
        "limited requests get 500 (failureModeDeny)"
    } else {
        "requests are not limited"
    };
    let reference = Reference {
        service: &limit.spec.service,
        origin: &origin,
        // The rate limit protocol is gRPC.
        settings: ClusterSettings::http2(),
        tls: None,
    };
    let upstream = upstreams::resolve_or_empty(world, index, &reference, effect, config, verdict);
    config.rate_limit = Some(ir::RateLimitService {
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
    });
    verdict.carried_by(&key);
}

/// The Gateway's access log and tracing. A collector that is invalid or
/// cannot be found sends no spans and says so on the Gateway (ResolvedRefs);
/// requests flow either way.
pub fn add_observability(
    world: &World,
    gateway: &Gateway,
    index: &ServiceIndex,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    use legate_crds::gateway::AccessLogFormat;
    let access_log = match &gateway.spec.access_log {
        None => ir::AccessLog::default_json(),
        Some(log) => match log.format {
            AccessLogFormat::Off => ir::AccessLog::Off,
            AccessLogFormat::Text => ir::AccessLog::Text(log.text.clone().unwrap_or_default()),
            AccessLogFormat::Json => match &log.json {
                Some(fields) if !fields.is_empty() => ir::AccessLog::Json(fields.clone()),
                _ => ir::AccessLog::default_json(),
            },
        },
    };
    let tracing = gateway.spec.tracing.as_ref().and_then(|t| {
        let origin = object_ref(gateway);
        let verdict = verdicts.entry(&origin);
        let namespace = gateway.namespace().unwrap_or_default();
        let parsed = upstreams::parse(&t.collector, &namespace);
        if let Err(e) = parsed {
            // The Gateway's conditions show ResolvedRefs, not this verdict's Accepted.
            verdict.resolved_refs = Err(Problem::new(
                reasons::INVALID,
                format!("tracing.collector: {e}; no spans are sent"),
            ));
            return None;
        }
        let reference = Reference {
            service: &t.collector,
            origin: &origin,
            // OTLP over gRPC.
            settings: ClusterSettings::http2(),
            tls: None,
        };
        let effect = "no spans are sent";
        let upstream = upstreams::resolve_or_empty(world, index, &reference, effect, config, verdict);
        Some(ir::Tracing {
            upstream,
            service_name: t
                .service_name
                .clone()
                .unwrap_or_else(|| format!("{}.{namespace}", gateway.name_any())),
            sampling_percent: t.sampling_percent.unwrap_or(100.0),
        })
    });
    config.observability = ir::Observability { access_log, tracing };
}

/// Of the objects of one kind that attach to `gateway`, the oldest: a Gateway
/// takes one AuthService and one RateLimitService, and the others are Conflicted.
fn oldest_attached<'a, K>(
    world: &World,
    gateway: &Gateway,
    objects: &'a [std::sync::Arc<K>],
    gateways_of: impl Fn(&K) -> &[GatewayRef],
    verdicts: &mut Verdicts,
) -> Option<&'a std::sync::Arc<K>>
where
    K: Resource<DynamicType = ()>,
{
    let mut attached: Vec<&std::sync::Arc<K>> = objects
        .iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .filter(|o| attach::attaches(world, gateway, &o.namespace().unwrap_or_default(), gateways_of(o)))
        .collect();
    attached.sort_by(|a, b| age_order(a.as_ref(), b.as_ref()));
    let (first, rest) = attached.split_first()?;
    for other in rest {
        let origin = object_ref(other.as_ref());
        let verdict = verdicts.entry(&origin);
        verdict.accepted = Err(Problem::new(
            reasons::CONFLICTED,
            format!(
                "Gateway {} already uses {} {}/{}",
                gateway_key(gateway),
                K::kind(&()),
                first.namespace().unwrap_or_default(),
                first.name_any()
            ),
        ));
    }
    Some(first)
}

/// Every Gateway, even one being deleted, carries itself. Nothing here
/// refuses a Gateway: a listener that cannot be served yet (HTTPS without a
/// certificate, TCP or TLS with nothing to proxy) is left out until it can,
/// and the Gateway controller reads only this verdict's ResolvedRefs (the
/// tracing collector).
pub fn judge_gateways(world: &World, verdicts: &mut Verdicts) {
    for gateway in &world.gateways {
        let origin = object_ref(gateway.as_ref());
        let key = gateway_key(gateway);
        let verdict = verdicts.entry(&origin);
        verdict.gateways = vec![key];
    }
}
