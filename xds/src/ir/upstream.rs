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

/// One address of an upstream.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Endpoint {
    pub address: IpAddr,
    pub port: u16,
    /// Not-ready endpoints stay known to Envoy but get no traffic.
    pub ready: bool,
    pub zone: Option<String>,
}
