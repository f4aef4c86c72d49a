//! IR listener → Envoy `Listener`, with routes over RDS and certificates over SDS.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, TransportSocket, address, socket_address, transport_socket,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::listener::proxy_protocol::v3::ProxyProtocol;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, TlsParameters, common_tls_context,
    tls_parameters::TlsProtocol,
};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::util::pack_any;

use super::filters::{self, ads};
use super::route::duration;
use crate::ir;

/// The name of the route configuration of a listener. One per listener: the
/// virtual hosts of all its hostnames live in it.
pub fn route_config_name(listener: &str) -> String {
    listener.to_owned()
}

/// The services every HTTP listener's filters call, and its observability.
#[derive(Clone, Copy, Debug)]
pub struct HttpServices<'a> {
    pub auth: Option<&'a ir::AuthService>,
    pub rate_limit: Option<&'a ir::RateLimitService>,
    /// By namespace: filters disabled but on that namespace's Mappings' routes.
    pub namespace_auth: &'a BTreeMap<String, ir::AuthService>,
    pub namespace_rate_limit: &'a BTreeMap<String, ir::RateLimitService>,
    pub observability: &'a ir::Observability,
    /// The token providers the listener's routes require, by name.
    pub jwt: &'a BTreeMap<&'a str, &'a ir::JwtAuth>,
}

/// The listener, and the names of the SDS secrets it needs. `tcp_routes` are
/// the TCP routes attached to it, in id order.
pub fn listener_proto(
    l: &ir::Listener,
    services: &HttpServices<'_>,
    tcp_routes: &[&ir::TcpRoute],
) -> (Listener, Vec<String>) {
    if !l.protocol.is_http() {
        return tcp_listener(l, tcp_routes);
    }
    let mut hcm = filters::connection_manager(&l.name, &route_config_name(&l.name), services, &l.http);
    // Envoy takes the client from X-Forwarded-For this many hops from the
    // right, and believes X-Forwarded-Proto only when it is not zero.
    hcm.xff_num_trusted_hops = l.trusted_hops;
    let hcm_filter = Filter {
        name: filters::HCM.into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
    };
    let mut secrets = Vec::new();
    let filter_chains = match l.protocol {
        ir::ListenerProtocol::Http => vec![FilterChain {
            filters: vec![hcm_filter],
            ..FilterChain::default()
        }],
        ir::ListenerProtocol::Tcp | ir::ListenerProtocol::Tls => unreachable!("handled above"),
        ir::ListenerProtocol::Https => l
            .tls
            .iter()
            .map(|tls| {
                secrets.push(tls.certificate.clone());
                secrets.extend(tls.client_ca.clone());
                FilterChain {
                    filter_chain_match: (!tls.hostnames.is_empty()).then(|| FilterChainMatch {
                        server_names: tls.hostnames.clone(),
                        ..FilterChainMatch::default()
                    }),
                    filters: vec![hcm_filter.clone()],
                    transport_socket: Some(downstream_tls(tls)),
                    ..FilterChain::default()
                }
            })
            .collect(),
    };
    secrets.sort();
    secrets.dedup();
    // HTTPS chains are chosen by SNI, which Envoy only sees with the TLS inspector.
    let listener_filters = listener_filters(l, l.protocol == ir::ListenerProtocol::Https);
    let listener = Listener {
        name: l.name.clone(),
        address: Some(socket(&l.address.to_string(), l.port)),
        filter_chains,
        listener_filters,
        ..Listener::default()
    };
    (listener, secrets)
}

/// The PROXY protocol header is read first: it comes before the TLS
/// ClientHello on the wire.
fn listener_filters(l: &ir::Listener, reads_sni: bool) -> Vec<ListenerFilter> {
    let mut filters = Vec::new();
    if l.proxy_protocol {
        filters.push(proxy_protocol());
    }
    if reads_sni {
        filters.push(tls_inspector());
    }
    filters
}

/// The listener filter that takes the client's address from a PROXY protocol
/// header (v1 or v2); a connection without one is closed.
fn proxy_protocol() -> ListenerFilter {
    ListenerFilter {
        name: "envoy.filters.listener.proxy_protocol".into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
            ProxyProtocol::default(),
        ))),
        ..ListenerFilter::default()
    }
}

/// The listener filter that reads the SNI (and ALPN) of a TLS ClientHello.
fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: "envoy.filters.listener.tls_inspector".into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
            TlsInspector::default(),
        ))),
        ..ListenerFilter::default()
    }
}

/// A TCP listener proxies to one upstream; a TLS listener picks one by SNI,
/// passing TLS through or terminating it. Two routes with the same SNI names
/// (or two without) would be an Envoy error, so only the first of them, in id
/// order, is kept.
fn tcp_listener(l: &ir::Listener, routes: &[&ir::TcpRoute]) -> (Listener, Vec<String>) {
    let by_sni = l.protocol == ir::ListenerProtocol::Tls;
    let mut seen: Vec<Vec<String>> = Vec::new();
    let mut filter_chains = Vec::new();
    let mut secrets = Vec::new();
    for r in routes {
        let mut sni = if by_sni { r.sni.clone() } else { Vec::new() };
        sni.sort();
        if seen.contains(&sni) {
            tracing::warn!(route = %r.id, listener = %l.name, "a TCP route with the same match comes first; ignoring it");
            continue;
        }
        seen.push(sni.clone());
        let tls = r.tls.as_ref().filter(|_| by_sni);
        if let Some(tls) = tls {
            secrets.push(tls.certificate.clone());
            secrets.extend(tls.client_ca.clone());
        }
        let proxy = TcpProxy {
            stat_prefix: r.id.as_str().to_owned(),
            cluster_specifier: tcp_clusters(&r.upstreams),
            idle_timeout: r.idle_timeout.map(duration),
            ..TcpProxy::default()
        };
        filter_chains.push(FilterChain {
            name: r.id.as_str().to_owned(),
            filter_chain_match: (!sni.is_empty()).then(|| FilterChainMatch {
                server_names: sni,
                ..FilterChainMatch::default()
            }),
            filters: vec![Filter {
                name: "envoy.filters.network.tcp_proxy".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(proxy))),
            }],
            transport_socket: tls.map(downstream_tls),
            ..FilterChain::default()
        });
    }
    secrets.sort();
    secrets.dedup();
    let listener_filters = listener_filters(l, by_sni);
    let listener = Listener {
        name: l.name.clone(),
        address: Some(socket(&l.address.to_string(), l.port)),
        filter_chains,
        listener_filters,
        ..Listener::default()
    };
    (listener, secrets)
}

/// One cluster, or connections split by weight.
fn tcp_clusters(upstreams: &[ir::WeightedUpstream]) -> Option<tcp_proxy::ClusterSpecifier> {
    match upstreams {
        [] => None,
        [one] => Some(tcp_proxy::ClusterSpecifier::Cluster(one.upstream.clone())),
        many => Some(tcp_proxy::ClusterSpecifier::WeightedClusters(
            tcp_proxy::WeightedCluster {
                clusters: many
                    .iter()
                    .map(|u| tcp_proxy::weighted_cluster::ClusterWeight {
                        name: u.upstream.clone(),
                        weight: u.weight,
                        ..tcp_proxy::weighted_cluster::ClusterWeight::default()
                    })
                    .collect(),
            },
        )),
    }
}

pub fn socket(ip: &str, port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_owned(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..SocketAddress::default()
        })),
    }
}

pub fn sds(name: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.to_owned(),
        sds_config: Some(ads()),
    }
}

fn downstream_tls(tls: &ir::ServerTls) -> TransportSocket {
    let version = |v: Option<ir::TlsVersion>| match v {
        None => TlsProtocol::TlsAuto,
        Some(ir::TlsVersion::V1_0) => TlsProtocol::TlSv10,
        Some(ir::TlsVersion::V1_1) => TlsProtocol::TlSv11,
        Some(ir::TlsVersion::V1_2) => TlsProtocol::TlSv12,
        Some(ir::TlsVersion::V1_3) => TlsProtocol::TlSv13,
    } as i32;
    let context = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_params: Some(TlsParameters {
                tls_minimum_protocol_version: version(tls.min_version),
                tls_maximum_protocol_version: version(tls.max_version),
                cipher_suites: tls.cipher_suites.clone(),
                ..TlsParameters::default()
            }),
            tls_certificate_sds_secret_configs: vec![sds(&tls.certificate)],
            alpn_protocols: tls.alpn.clone(),
            validation_context_type: tls.client_ca.as_deref().map(|ca| {
                common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(sds(ca))
            }),
            ..CommonTlsContext::default()
        }),
        require_client_certificate: (tls.client_ca.is_some() && tls.require_client_certificate)
            .then_some(BoolValue { value: true }),
        ..DownstreamTlsContext::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
    }
}
