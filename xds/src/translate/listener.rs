//! IR listener → Envoy `Listener`, with routes over RDS and certificates over SDS.

use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, TransportSocket, address, socket_address, transport_socket,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, FilterChainMatch, Listener, filter};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, TlsParameters, common_tls_context,
    tls_parameters::TlsProtocol,
};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::util::pack_any;

use super::filters::{self, ads};
use crate::ir;

/// The name of the route configuration of a listener. One per listener: the
/// virtual hosts of all its hostnames live in it.
pub fn route_config_name(listener: &str) -> String {
    listener.to_owned()
}

/// The listener, and the names of the SDS secrets it needs.
pub fn listener_proto(
    l: &ir::Listener,
    auth: Option<&ir::AuthService>,
    rate_limit: Option<&ir::RateLimitService>,
) -> (Listener, Vec<String>) {
    let hcm = filters::connection_manager(&l.name, &route_config_name(&l.name), auth, rate_limit);
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
    let listener = Listener {
        name: l.name.clone(),
        address: Some(socket(&l.address.to_string(), l.port)),
        filter_chains,
        ..Listener::default()
    };
    (listener, secrets)
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
        Some(ir::TlsVersion::V1_2) => TlsProtocol::TlSv12,
        Some(ir::TlsVersion::V1_3) => TlsProtocol::TlSv13,
    } as i32;
    let context = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_params: Some(TlsParameters {
                tls_minimum_protocol_version: version(tls.min_version),
                tls_maximum_protocol_version: version(tls.max_version),
                ..TlsParameters::default()
            }),
            tls_certificate_sds_secret_configs: vec![sds(&tls.certificate)],
            alpn_protocols: tls.alpn.clone(),
            validation_context_type: tls.client_ca.as_deref().map(|ca| {
                common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(sds(ca))
            }),
            ..CommonTlsContext::default()
        }),
        require_client_certificate: tls.client_ca.as_ref().map(|_| BoolValue { value: true }),
        ..DownstreamTlsContext::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
    }
}
