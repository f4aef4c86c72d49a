//! What the model reads: one consistent snapshot of the objects the operator
//! has seen, where its Envoys listen, and what Envoy refused.

use std::collections::{BTreeMap, BTreeSet};
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

/// Objects left out of a Gateway's configuration because that Gateway's
/// Envoys refused them at this generation. Leaving them out lets every other
/// change through; they come back when their generation changes. Kept per
/// Gateway: what one Gateway's proxies say never takes an object off
/// another Gateway (a proxy could otherwise blame any object it carries and
/// have it dropped everywhere).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quarantine(BTreeMap<String, BTreeMap<String, i64>>);

impl Quarantine {
    pub fn new() -> Quarantine {
        Quarantine::default()
    }

    /// The proxies of Gateway `gateway` (its key) refused `object` (its
    /// key) at `generation`; the newest refused generation is kept.
    pub fn insert(&mut self, gateway: &str, object: &str, generation: i64) {
        let refused = self.0.entry(gateway.to_string()).or_default();
        let kept = refused.entry(object.to_string()).or_insert(generation);
        *kept = (*kept).max(generation);
    }

    /// Takes the refusal of `object` on `gateway` back; whether there was one.
    pub fn remove(&mut self, gateway: &str, object: &str) -> bool {
        let Some(refused) = self.0.get_mut(gateway) else {
            return false;
        };
        let removed = refused.remove(object).is_some();
        if refused.is_empty() {
            self.0.remove(gateway);
        }
        removed
    }

    /// Whether `object` at `generation` is left out of `gateway`.
    pub fn holds(&self, gateway: &str, object: &str, generation: i64) -> bool {
        self.0.get(gateway).and_then(|r| r.get(object)) == Some(&generation)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The object keys whose entry differs from `other`'s on some Gateway.
    pub fn changes(&self, other: &Quarantine) -> BTreeSet<String> {
        let entries = |q: &Quarantine| -> BTreeSet<(String, String, i64)> {
            q.0.iter()
                .flat_map(|(g, r)| r.iter().map(move |(o, n)| (g.clone(), o.clone(), *n)))
                .collect()
        };
        let (mine, theirs) = (entries(self), entries(other));
        mine.symmetric_difference(&theirs)
            .map(|(_, object, _)| object.clone())
            .collect()
    }
}
