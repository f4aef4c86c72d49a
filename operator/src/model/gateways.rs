//! A Gateway's own part of its configuration (listeners, TLS, auth and rate
//! limit services) and the verdicts on Gateways and on objects that attach
//! to none.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use kube::{Resource, ResourceExt};
use legate_crds::conditions::reasons;
use legate_crds::gateway::Protocol;
use legate_crds::tls_context::TlsVersion;
use legate_crds::{Gateway, GatewayRef};
use legate_xds::ir;

use super::services::ServiceIndex;
use super::upstreams::{self, ServiceRef};
use super::{GatewayConfig, Problem, Verdict, World, attach, gateway_key, object_ref};

/// The HTTP and HTTPS listeners of a Gateway. TCP and TLS listeners carry
/// TCPMappings, which the xDS engine does not translate yet.
pub fn listeners(gateway: &Gateway) -> GatewayConfig {
    let origin = object_ref(gateway);
    let mut config = GatewayConfig::default();
    for listener in &gateway.spec.listeners {
        let protocol = match listener.protocol {
            Protocol::Http => ir::ListenerProtocol::Http,
            Protocol::Https => ir::ListenerProtocol::Https,
            Protocol::Tcp => ir::ListenerProtocol::Tcp,
            Protocol::Tls => ir::ListenerProtocol::Tls,
        };
        let Ok(port) = u16::try_from(listener.port) else {
            continue;
        };
        config.listeners.insert(
            listener.name.clone(),
            ir::Listener {
                name: listener.name.clone(),
                origin: origin.clone(),
                address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                port,
                protocol,
                tls: Vec::new(),
            },
        );
    }
    config
}

/// Certificates of the TLSContexts attached to the Gateway, on its HTTPS listeners.
pub fn add_tls(
    world: &World,
    gateway: &Gateway,
    config: &mut GatewayConfig,
    verdicts: &mut BTreeMap<String, Verdict>,
) {
    let key = gateway_key(gateway);
    for context in &world.tls_contexts {
        if context.meta().deletion_timestamp.is_some() {
            continue;
        }
        let namespace = context.namespace().unwrap_or_default();
        if !attach::attaches(world, gateway, &namespace, &context.spec.gateways) {
            continue;
        }
        let origin = object_ref(context.as_ref());
        let verdict = verdicts
            .entry(origin.key())
            .or_insert_with(|| Verdict::new(origin.clone()));
        let secret = world.secrets.iter().find(|s| {
            s.namespace().as_deref() == Some(namespace.as_str()) && s.name_any() == context.spec.secret
        });
        let material = secret.and_then(|s| {
            let data = s.data.as_ref()?;
            let chain = String::from_utf8(data.get("tls.crt")?.0.clone()).ok()?;
            let key = String::from_utf8(data.get("tls.key")?.0.clone()).ok()?;
            (!chain.trim().is_empty() && !key.trim().is_empty()).then_some((chain, key))
        });
        let secret_name = format!("{namespace}/{}", context.spec.secret);
        let Some((chain_pem, key_pem)) = material else {
            let problem = match secret {
                None => Problem::new(
                    reasons::SECRET_NOT_FOUND,
                    format!(
                        "Secret {secret_name} does not exist; the hosts of this TLSContext are not served over TLS"
                    ),
                ),
                Some(_) => Problem::new(
                    reasons::INVALID_SECRET,
                    format!(
                        "Secret {secret_name} has no tls.crt and tls.key; it must be of type kubernetes.io/tls"
                    ),
                ),
            };
            verdict.resolved_refs = Err(problem);
            continue;
        };
        config.secrets.insert(
            secret_name.clone(),
            ir::Secret {
                name: secret_name.clone(),
                origin: origin.clone(),
                material: ir::SecretMaterial::Certificate { chain_pem, key_pem },
            },
        );
        let version = |v: Option<TlsVersion>| match v {
            Some(TlsVersion::V1_3) => Some(ir::TlsVersion::V1_3),
            Some(_) => Some(ir::TlsVersion::V1_2),
            None => None,
        };
        let tls = ir::ServerTls {
            origin: origin.clone(),
            hostnames: context
                .spec
                .hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            certificate: secret_name,
            client_ca: context
                .spec
                .ca_secret
                .as_ref()
                .map(|ca| format!("{namespace}/{ca}")),
            alpn: context.spec.alpn_protocols.clone(),
            min_version: version(context.spec.min_tls_version),
            max_version: version(context.spec.max_tls_version),
        };
        for listener in config.listeners.values_mut() {
            if listener.protocol == ir::ListenerProtocol::Https {
                listener.tls.push(tls.clone());
            }
        }
        if !verdict.gateways.contains(&key) {
            verdict.gateways.push(key.clone());
        }
    }
}

/// The Gateway's AuthService and RateLimitService (the oldest of each kind
/// that attaches; more than one is a conflict).
pub fn add_services(
    world: &World,
    gateway: &Gateway,
    index: &ServiceIndex,
    config: &mut GatewayConfig,
    verdicts: &mut BTreeMap<String, Verdict>,
) {
    add_auth(world, gateway, index, config, verdicts);
    add_rate_limit(world, gateway, index, config, verdicts);
}

/// The Gateway's external authorization.
fn add_auth(
    world: &World,
    gateway: &Gateway,
    index: &ServiceIndex,
    config: &mut GatewayConfig,
    verdicts: &mut BTreeMap<String, Verdict>,
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
    let verdict = verdicts
        .entry(origin.key())
        .or_insert_with(|| Verdict::new(origin.clone()));
    let namespace = auth.namespace().unwrap_or_default();
    let Some(upstream) = service_upstream(&auth.spec.service, &namespace, &origin, index, config, verdict)
    else {
        return;
    };
    config.auth = Some(ir::AuthService {
        origin: origin.clone(),
        upstream,
        protocol: match auth.spec.protocol {
            legate_crds::auth_service::AuthProtocol::Http => ir::AuthProtocol::Http {
                path_prefix: auth.spec.path_prefix.clone().unwrap_or_default(),
                allowed_request_headers: auth.spec.allowed_request_headers.clone(),
            },
            legate_crds::auth_service::AuthProtocol::Grpc => ir::AuthProtocol::Grpc,
        },
        timeout: auth
            .spec
            .timeout
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(5)),
        failure_mode_allow: auth.spec.failure_mode_allow.unwrap_or(false),
    });
    verdict.gateways.push(key.clone());
}

/// The Gateway's global rate limiting.
fn add_rate_limit(
    world: &World,
    gateway: &Gateway,
    index: &ServiceIndex,
    config: &mut GatewayConfig,
    verdicts: &mut BTreeMap<String, Verdict>,
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
    let verdict = verdicts
        .entry(origin.key())
        .or_insert_with(|| Verdict::new(origin.clone()));
    let namespace = limit.namespace().unwrap_or_default();
    let Some(upstream) = service_upstream(&limit.spec.service, &namespace, &origin, index, config, verdict)
    else {
        return;
    };
    if let Some(u) = config.upstreams.get_mut(&upstream) {
        // The rate limit protocol is gRPC.
        u.protocol = ir::UpstreamProtocol::Http2;
    }
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
    verdict.gateways.push(key.clone());
}

/// Of the objects of one kind that attach to `gateway`, the oldest: a Gateway
/// takes one AuthService and one RateLimitService, and the others are Conflicted.
fn oldest_attached<'a, K>(
    world: &World,
    gateway: &Gateway,
    objects: &'a [std::sync::Arc<K>],
    gateways_of: impl Fn(&K) -> &[GatewayRef],
    verdicts: &mut BTreeMap<String, Verdict>,
) -> Option<&'a std::sync::Arc<K>>
where
    K: Resource<DynamicType = ()>,
{
    let mut attached: Vec<&std::sync::Arc<K>> = objects
        .iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .filter(|o| attach::attaches(world, gateway, &o.namespace().unwrap_or_default(), gateways_of(o)))
        .collect();
    attached.sort_by_key(|o| {
        (
            o.meta().creation_timestamp.clone().map(|t| t.0),
            o.namespace(),
            o.name_any(),
        )
    });
    let (first, rest) = attached.split_first()?;
    for other in rest {
        let origin = object_ref(other.as_ref());
        let verdict = verdicts
            .entry(origin.key())
            .or_insert_with(|| Verdict::new(origin.clone()));
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

/// An upstream for an auth or rate limit service.
fn service_upstream(
    service: &str,
    namespace: &str,
    origin: &ir::ObjectRef,
    index: &ServiceIndex,
    config: &mut GatewayConfig,
    verdict: &mut Verdict,
) -> Option<String> {
    match upstreams::parse(service, namespace) {
        Err(e) => {
            verdict.accepted = Err(Problem::new(reasons::INVALID, e));
            None
        }
        Ok(ServiceRef::External { host, port, .. }) => {
            let name = ir::Upstream::dns_name(&host, port);
            let mut upstream = ir::Upstream::endpoints(&name, origin.clone());
            upstream.discovery = ir::Discovery::Dns { hostname: host, port };
            config.add_upstream(upstream);
            Some(name)
        }
        Ok(ServiceRef::Kubernetes {
            name,
            namespace,
            port,
        }) => {
            let Some(svc) = index.service(&namespace, &name) else {
                verdict.resolved_refs = Err(Problem::new(
                    reasons::BACKEND_NOT_FOUND,
                    format!("Service {namespace}/{name} does not exist"),
                ));
                return None;
            };
            let resolved = match super::services::resolve_port(svc, port.as_ref()) {
                Ok(r) => r,
                Err(e) => {
                    verdict.resolved_refs = Err(Problem::new(reasons::BACKEND_NOT_FOUND, e));
                    return None;
                }
            };
            let upstream_name = ir::Upstream::service_name(&namespace, &name, resolved.port);
            config.endpoints.insert(
                upstream_name.clone(),
                index.endpoints(&namespace, &name, &resolved),
            );
            config.add_upstream(ir::Upstream::endpoints(&upstream_name, origin.clone()));
            Some(upstream_name)
        }
    }
}

/// Gateways are Accepted when their listeners can be served.
pub fn judge_gateways(world: &World, verdicts: &mut BTreeMap<String, Verdict>) {
    for gateway in &world.gateways {
        let origin = object_ref(gateway.as_ref());
        let key = gateway_key(gateway);
        let verdict = verdicts
            .entry(origin.key())
            .or_insert_with(|| Verdict::new(origin.clone()));
        verdict.gateways = vec![key];
    }
}

/// TCPMappings attach to a Gateway with a TCP or TLS listener on their port
/// and become TCP routes of that listener (by SNI on a TLS listener).
pub fn add_tcp_routes(
    world: &World,
    gateway: &Gateway,
    index: &ServiceIndex,
    config: &mut GatewayConfig,
    verdicts: &mut BTreeMap<String, Verdict>,
) {
    let key = gateway_key(gateway);
    for tcp in &world.tcp_mappings {
        if tcp.meta().deletion_timestamp.is_some() {
            continue;
        }
        let namespace = tcp.namespace().unwrap_or_default();
        if !attach::attaches(world, gateway, &namespace, &tcp.spec.gateways) {
            continue;
        }
        let Some(listener) = gateway.spec.listeners.iter().find(|l| l.port == tcp.spec.port) else {
            continue;
        };
        let origin = object_ref(tcp.as_ref());
        let verdict = verdicts
            .entry(origin.key())
            .or_insert_with(|| Verdict::new(origin.clone()));
        let problem = match (listener.protocol, &tcp.spec.sni) {
            (Protocol::Http | Protocol::Https, _) => Some(format!(
                "port {} of Gateway {key} is the {:?} listener {:?}; a TCPMapping needs a TCP or TLS listener",
                tcp.spec.port, listener.protocol, listener.name
            )),
            (Protocol::Tcp, Some(_)) => Some(format!(
                "sni needs a TLS listener; port {} of Gateway {key} is the TCP listener {:?}",
                tcp.spec.port, listener.name
            )),
            _ => None,
        };
        if let Some(message) = problem {
            verdict.accepted = Err(Problem::new(reasons::INVALID, message));
            continue;
        }
        let Some(upstream) = service_upstream(&tcp.spec.service, &namespace, &origin, index, config, verdict)
        else {
            continue;
        };
        if let Some(u) = config.upstreams.get_mut(&upstream) {
            // Raw TCP: no HTTP protocol options on this cluster.
            u.protocol = ir::UpstreamProtocol::Http1;
        }
        let route = ir::TcpRoute {
            id: ir::RouteId::of(&origin),
            origin: origin.clone(),
            listener: listener.name.clone(),
            sni: tcp.spec.sni.iter().map(|s| s.to_ascii_lowercase()).collect(),
            upstream,
            idle_timeout: tcp.spec.idle_timeout.as_ref().and_then(|d| d.to_std().ok()),
        };
        config.tcp_routes.insert(route.id.clone(), route);
        if !verdict.gateways.contains(&key) {
            verdict.gateways.push(key.clone());
        }
    }
}

/// Objects that no Gateway carries: NoGateway.
pub fn judge_unattached(world: &World, verdicts: &mut BTreeMap<String, Verdict>) {
    let mut judge = |origin: ir::ObjectRef, namespace: String, refs: &[GatewayRef]| {
        let verdict = verdicts
            .entry(origin.key())
            .or_insert_with(|| Verdict::new(origin));
        if verdict.accepted.is_ok() && verdict.gateways.is_empty() {
            verdict.accepted = Err(Problem::new(
                reasons::NO_GATEWAY,
                attach::no_gateway_message(world, &namespace, refs),
            ));
        }
    };
    for m in &world.mappings {
        judge(
            object_ref(m.as_ref()),
            m.namespace().unwrap_or_default(),
            &m.spec.gateways,
        );
    }
    for t in &world.tls_contexts {
        judge(
            object_ref(t.as_ref()),
            t.namespace().unwrap_or_default(),
            &t.spec.gateways,
        );
    }
    for a in &world.auth_services {
        judge(
            object_ref(a.as_ref()),
            a.namespace().unwrap_or_default(),
            &a.spec.gateways,
        );
    }
    for r in &world.rate_limit_services {
        judge(
            object_ref(r.as_ref()),
            r.namespace().unwrap_or_default(),
            &r.spec.gateways,
        );
    }
}
