//! IR upstream → Envoy `Cluster`, and its endpoints → `ClusterLoadAssignment`.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, OutlierDetection, UpstreamConnectionOptions, circuit_breakers::Thresholds,
    cluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    HealthCheck, HealthStatus, Http2ProtocolOptions, Locality, TcpKeepalive, TransportSocket, health_check,
    transport_socket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, UpstreamTlsContext, common_tls_context,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{HttpProtocolOptions, http_protocol_options};
use envoy_types::pb::envoy::r#type::v3::{CodecClientType, Int64Range};
use envoy_types::pb::google::protobuf::UInt32Value;
use envoy_types::util::pack_any;

use super::filters::ads;
use super::listener::{sds, socket};
use super::route::duration;
use crate::ir;

const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// The cluster of an upstream, and the SDS secrets it needs.
pub fn cluster_proto(u: &ir::Upstream) -> (Cluster, Vec<String>) {
    use cluster::{ClusterDiscoveryType, DiscoveryType, LbPolicy};
    let lb_policy = match u.load_balancing {
        ir::LoadBalancing::RoundRobin => LbPolicy::RoundRobin,
        ir::LoadBalancing::LeastRequest => LbPolicy::LeastRequest,
        ir::LoadBalancing::Random => LbPolicy::Random,
        ir::LoadBalancing::RingHash => LbPolicy::RingHash,
        ir::LoadBalancing::Maglev => LbPolicy::Maglev,
    };
    let mut c = Cluster {
        name: u.name.clone(),
        connect_timeout: Some(duration(u.connect_timeout)),
        lb_policy: lb_policy as i32,
        ..Cluster::default()
    };
    match &u.discovery {
        ir::Discovery::Endpoints => {
            c.cluster_discovery_type = Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32));
            c.eds_cluster_config = Some(cluster::EdsClusterConfig {
                eds_config: Some(ads()),
                // The endpoints resource has the cluster's name.
                service_name: String::new(),
            });
        }
        ir::Discovery::Dns { hostname, port } => {
            c.cluster_discovery_type = Some(ClusterDiscoveryType::Type(DiscoveryType::StrictDns as i32));
            c.load_assignment = Some(ClusterLoadAssignment {
                cluster_name: u.name.clone(),
                endpoints: vec![LocalityLbEndpoints {
                    lb_endpoints: vec![lb_endpoint_of(hostname, *port, true)],
                    ..LocalityLbEndpoints::default()
                }],
                ..ClusterLoadAssignment::default()
            });
        }
    }
    if u.protocol == ir::UpstreamProtocol::Http2 {
        let options = HttpProtocolOptions {
            upstream_protocol_options: Some(
                http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                    http_protocol_options::ExplicitHttpConfig {
                        protocol_config: Some(
                            http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                                Http2ProtocolOptions::default(),
                            ),
                        ),
                    },
                ),
            ),
            ..HttpProtocolOptions::default()
        };
        // One entry: prost's map encoding is deterministic for a single entry.
        c.typed_extension_protocol_options =
            HashMap::from([(HTTP_PROTOCOL_OPTIONS.to_owned(), pack_any(options))]);
    }
    if let Some(cb) = &u.circuit_breakers {
        let limit = |v: Option<u32>| v.map(|value| UInt32Value { value });
        c.circuit_breakers = Some(CircuitBreakers {
            thresholds: vec![Thresholds {
                max_connections: limit(cb.max_connections),
                max_pending_requests: limit(cb.max_pending_requests),
                max_requests: limit(cb.max_requests),
                max_retries: limit(cb.max_retries),
                ..Thresholds::default()
            }],
            ..CircuitBreakers::default()
        });
    }
    if let Some(h) = &u.health_check {
        c.health_checks = vec![health_check_proto(h, u.protocol)];
    }
    if let Some(o) = &u.outlier_detection {
        c.outlier_detection = Some(outlier_detection_proto(o));
    }
    if let Some(k) = &u.tcp_keepalive {
        let seconds = |v: Option<u32>| v.map(|value| UInt32Value { value });
        c.upstream_connection_options = Some(UpstreamConnectionOptions {
            tcp_keepalive: Some(TcpKeepalive {
                keepalive_probes: seconds(k.probes),
                keepalive_time: seconds(k.idle_time_secs),
                keepalive_interval: seconds(k.interval_secs),
            }),
            ..UpstreamConnectionOptions::default()
        });
    }
    let mut secrets = Vec::new();
    if let Some(tls) = &u.tls {
        secrets.extend(tls.ca_secret.clone());
        secrets.extend(tls.client_certificate.clone());
        let context = UpstreamTlsContext {
            sni: tls.sni.clone().unwrap_or_default(),
            common_tls_context: Some(CommonTlsContext {
                tls_certificate_sds_secret_configs: tls.client_certificate.iter().map(|s| sds(s)).collect(),
                validation_context_type: tls.ca_secret.as_deref().map(|ca| {
                    common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(sds(ca))
                }),
                ..CommonTlsContext::default()
            }),
            ..UpstreamTlsContext::default()
        };
        c.transport_socket = Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
        });
    }
    (c, secrets)
}

/// An HTTP GET of `path` on every endpoint, over the upstream's protocol.
fn health_check_proto(h: &ir::HealthCheck, protocol: ir::UpstreamProtocol) -> HealthCheck {
    let codec = match protocol {
        ir::UpstreamProtocol::Http1 => CodecClientType::Http1,
        ir::UpstreamProtocol::Http2 => CodecClientType::Http2,
    };
    HealthCheck {
        timeout: Some(duration(h.timeout)),
        interval: Some(duration(h.interval)),
        // Envoy slows checks to once a minute while the cluster carries no
        // traffic; an endpoint must be found failing before the first request.
        no_traffic_interval: Some(duration(h.interval)),
        unhealthy_threshold: Some(UInt32Value {
            value: h.unhealthy_threshold,
        }),
        healthy_threshold: Some(UInt32Value {
            value: h.healthy_threshold,
        }),
        health_checker: Some(health_check::HealthChecker::HttpHealthCheck(
            health_check::HttpHealthCheck {
                path: h.path.clone(),
                host: h.host.clone().unwrap_or_default(),
                expected_statuses: h
                    .expected_statuses
                    .iter()
                    .map(|s| Int64Range {
                        start: i64::from(*s),
                        end: i64::from(*s) + 1,
                    })
                    .collect(),
                codec_client_type: codec as i32,
                ..health_check::HttpHealthCheck::default()
            },
        )),
        ..HealthCheck::default()
    }
}

fn outlier_detection_proto(o: &ir::OutlierDetection) -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: Some(UInt32Value {
            value: o.consecutive_5xx,
        }),
        interval: Some(duration(o.interval)),
        base_ejection_time: Some(duration(o.base_ejection_time)),
        max_ejection_percent: Some(UInt32Value {
            value: o.max_ejection_percent,
        }),
        ..OutlierDetection::default()
    }
}

/// The endpoints of an upstream, grouped by zone (in zone order, then address
/// order, so that equal sets encode equally).
pub fn load_assignment(cluster_name: &str, endpoints: &[ir::Endpoint]) -> ClusterLoadAssignment {
    let mut sorted: Vec<&ir::Endpoint> = endpoints.iter().collect();
    sorted.sort_by(|a, b| (&a.zone, a.address, a.port).cmp(&(&b.zone, b.address, b.port)));
    let mut groups: Vec<LocalityLbEndpoints> = Vec::new();
    let mut current_zone: Option<&Option<String>> = None;
    for e in sorted {
        if current_zone != Some(&e.zone) {
            current_zone = Some(&e.zone);
            groups.push(LocalityLbEndpoints {
                locality: e.zone.as_ref().map(|z| Locality {
                    zone: z.clone(),
                    ..Locality::default()
                }),
                ..LocalityLbEndpoints::default()
            });
        }
        groups
            .last_mut()
            .expect("a group was pushed for this zone")
            .lb_endpoints
            .push(lb_endpoint_of(&e.address.to_string(), e.port, e.ready));
    }
    ClusterLoadAssignment {
        cluster_name: cluster_name.to_owned(),
        endpoints: groups,
        ..ClusterLoadAssignment::default()
    }
}

fn lb_endpoint_of(host: &str, port: u16, ready: bool) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(socket(host, port)),
            ..Endpoint::default()
        })),
        health_status: if ready {
            HealthStatus::Unknown
        } else {
            HealthStatus::Unhealthy
        } as i32,
        ..LbEndpoint::default()
    }
}
