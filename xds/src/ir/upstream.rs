//! Upstreams: where traffic goes, and how Envoy talks to it.

use std::net::IpAddr;
use std::time::Duration;

use super::ObjectRef;

/// One upstream service port, which becomes one Envoy cluster.
#[derive(Clone, PartialEq, Debug)]
pub struct Upstream {
    /// Stable name, derived from what the upstream is (see [`Upstream::service_name`]).
    pub name: String,
    /// The objects that route to it (for tracing a NACK on the cluster back).
    pub origins: Vec<ObjectRef>,
    pub discovery: Discovery,
    pub protocol: UpstreamProtocol,
    pub tls: Option<UpstreamTls>,
    pub load_balancing: LoadBalancing,
    pub connect_timeout: Duration,
    pub circuit_breakers: Option<CircuitBreakers>,
    pub health_check: Option<HealthCheck>,
    pub outlier_detection: Option<OutlierDetection>,
    pub tcp_keepalive: Option<TcpKeepalive>,
}

impl Upstream {
    /// The name of the upstream for port `port` of Service `namespace/name`.
    pub fn service_name(namespace: &str, name: &str, port: u16) -> String {
        format!("{namespace}/{name}:{port}")
    }

    /// The name of a DNS upstream.
    pub fn dns_name(hostname: &str, port: u16) -> String {
        format!("dns/{hostname}:{port}")
    }

    /// An upstream with Envoy's defaults, whose endpoints come from
    /// [`crate::translate::Change::SetEndpoints`].
    pub fn endpoints(name: &str, origin: ObjectRef) -> Upstream {
        Upstream {
            name: name.to_owned(),
            origins: vec![origin],
            discovery: Discovery::Endpoints,
            protocol: UpstreamProtocol::Http1,
            tls: None,
            load_balancing: LoadBalancing::RoundRobin,
            connect_timeout: Duration::from_secs(3),
            circuit_breakers: None,
            health_check: None,
            outlier_detection: None,
            tcp_keepalive: None,
        }
    }
}

#[derive(Clone, PartialEq, Debug)]
pub enum Discovery {
    /// Endpoints pushed by Legate (EDS), from EndpointSlices.
    Endpoints,
    /// Envoy resolves a DNS name itself.
    Dns { hostname: String, port: u16 },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UpstreamProtocol {
    Http1,
    /// HTTP/2 (gRPC), cleartext or over TLS.
    Http2,
}

/// TLS origination towards the upstream.
#[derive(Clone, PartialEq, Debug)]
pub struct UpstreamTls {
    pub sni: Option<String>,
    /// SDS secret (by name) holding the CA bundle that verifies the upstream.
    pub ca_secret: Option<String>,
    /// SDS secret (by name) with a client certificate, for mutual TLS.
    pub client_certificate: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LoadBalancing {
    RoundRobin,
    LeastRequest,
    Random,
    RingHash,
    Maglev,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CircuitBreakers {
    pub max_connections: Option<u32>,
    pub max_pending_requests: Option<u32>,
    pub max_requests: Option<u32>,
    pub max_retries: Option<u32>,
}

/// Active HTTP health checks of every endpoint.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HealthCheck {
    pub path: String,
    /// The Host header; the cluster's name when `None` (Envoy's default).
    pub host: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    /// Statuses that pass; Envoy's default (200 only) when empty.
    pub expected_statuses: Vec<u16>,
}

/// Ejection of endpoints that answer 5xx in a row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OutlierDetection {
    pub consecutive_5xx: u32,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_percent: u32,
}

/// TCP keepalive on upstream connections; `None` fields take the system's values.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TcpKeepalive {
    pub probes: Option<u32>,
    pub idle_time_secs: Option<u32>,
    pub interval_secs: Option<u32>,
}

/// One address of an upstream.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Endpoint {
    pub address: IpAddr,
    pub port: u16,
    /// Not-ready endpoints stay known to Envoy but get no traffic.
    pub ready: bool,
    pub zone: Option<String>,
}
