//! What the model reads: one consistent snapshot of the objects the operator
//! has seen, where its Envoys listen, and what Envoy refused.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use legate_crds::{AuthService, Gateway, Mapping, RateLimitService, TCPMapping, TLSContext};

/// The key of an Opaque Secret that holds a CA bundle. The operator keeps only
/// this key of Opaque Secrets in memory; the model reads only this key.
pub const CA_BUNDLE_KEY: &str = "ca.crt";

/// Everything the operator has seen, as one consistent snapshot, and where
/// its Envoys listen.
#[derive(Debug, Clone)]
pub struct World {
    /// The address every listener binds (the operator's `--envoy-listen-address`).
    pub listen_address: IpAddr,
    pub gateways: Vec<Arc<Gateway>>,
    pub mappings: Vec<Arc<Mapping>>,
    pub tls_contexts: Vec<Arc<TLSContext>>,
    pub auth_services: Vec<Arc<AuthService>>,
    pub rate_limit_services: Vec<Arc<RateLimitService>>,
    pub tcp_mappings: Vec<Arc<TCPMapping>>,
    pub services: Vec<Arc<Service>>,
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    pub namespaces: Vec<Arc<Namespace>>,
    pub secrets: Vec<Arc<Secret>>,
    /// Whether a `service` may name a loopback host: only for a local stack
    /// whose upstreams run beside Envoy (`--allow-loopback-upstreams`).
    pub allow_loopback_upstreams: bool,
}

impl Default for World {
    fn default() -> World {
        World {
            listen_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            gateways: Vec::new(),
            mappings: Vec::new(),
            tls_contexts: Vec::new(),
            auth_services: Vec::new(),
            rate_limit_services: Vec::new(),
            tcp_mappings: Vec::new(),
            services: Vec::new(),
            endpoint_slices: Vec::new(),
            namespaces: Vec::new(),
            secrets: Vec::new(),
            allow_loopback_upstreams: false,
        }
    }
}

/// Objects left out of every configuration: Envoy refused them at this
/// generation (object key → generation). Leaving them out lets every other
/// change through; they come back when their generation changes.
pub type Quarantine = BTreeMap<String, i64>;
