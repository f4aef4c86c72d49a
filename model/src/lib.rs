//! From the user's objects to each Gateway's desired configuration (the IR)
//! and a verdict for every object. Pure: a [`World`] in, a [`Model`] out, so
//! every rule here is tested, benchmarked and run offline (`legate
//! translate`) without an API server. No Kubernetes client, no async runtime.

mod attach;
mod gateways;
mod mappings;
mod own_routes;
mod secrets;
mod services;
mod tcp;
mod tls;
mod upstreams;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_edge;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{Resource, ResourceExt};
use legate_crds::{AuthService, Gateway, Mapping, RateLimitService, TCPMapping, TLSContext};
use legate_xds::ir::ObjectRef;

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
        }
    }
}

/// Why a condition is False: a reason from `legate_crds::conditions::reasons`
/// and a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            reason,
            message: message.into(),
        }
    }
}

/// What the model concluded about one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Which object, at which generation.
    pub object: ObjectRef,
    /// Valid and attached to at least one Gateway, or why not.
    pub accepted: Result<(), Problem>,
    /// Every Service, Secret and TLSContext it refers to exists, or which does not.
    pub resolved_refs: Result<(), Problem>,
    /// The Gateways (`namespace/name`) whose configuration carries this object.
    pub gateways: Vec<String>,
}

impl Verdict {
    pub(crate) fn new(object: ObjectRef) -> Verdict {
        Verdict {
            object,
            accepted: Ok(()),
            resolved_refs: Ok(()),
            gateways: Vec::new(),
        }
    }
}

/// The desired state: each Gateway's configuration and every object's verdict.
#[derive(Debug, Default)]
pub struct Model {
    /// By Gateway key (`namespace/name`, which Envoy's `node.cluster` names).
    pub gateways: BTreeMap<String, legate_xds::ir::Gateway>,
    /// By object key (`Kind/namespace/name`).
    pub verdicts: BTreeMap<String, Verdict>,
}

/// `namespace/name` of a Gateway: the key of its snapshot and its Envoys' `node.cluster`.
pub fn gateway_key(gateway: &Gateway) -> String {
    format!(
        "{}/{}",
        gateway.namespace().unwrap_or_default(),
        gateway.name_any()
    )
}

/// The identity of a Legate object as the IR carries it.
pub fn object_ref<K: Resource<DynamicType = ()>>(object: &K) -> ObjectRef {
    ObjectRef::new(
        &K::kind(&()),
        &object.meta().namespace.clone().unwrap_or_default(),
        &object.meta().name.clone().unwrap_or_default(),
        object.meta().generation.unwrap_or(0),
    )
}

/// Objects left out of every configuration: Envoy refused them at this
/// generation (object key → generation). Leaving them out lets every other
/// change through; they come back when their generation changes.
pub type Quarantine = BTreeMap<String, i64>;

/// Builds every Gateway's configuration and every object's verdict.
pub fn build(world: &World) -> Model {
    build_with(world, &Quarantine::new())
}

/// Builds every Gateway's configuration and every object's verdict, leaving
/// out the quarantined objects.
pub fn build_with(world: &World, quarantine: &Quarantine) -> Model {
    let mut model = Model::default();
    let index = services::ServiceIndex::new(world);
    for gateway in &world.gateways {
        if gateway.meta().deletion_timestamp.is_some() {
            continue;
        }
        let key = gateway_key(gateway);
        let mut config = gateways::listeners(gateway, world.listen_address);
        tls::add_tls(world, gateway, &mut config, &mut model.verdicts);
        // An HTTPS listener with no certificate cannot be served; it waits for a TLSContext.
        config
            .listeners
            .retain(|_, l| l.protocol != legate_xds::ir::ListenerProtocol::Https || !l.tls.is_empty());
        mappings::add_routes(
            world,
            gateway,
            &index,
            quarantine,
            &mut config,
            &mut model.verdicts,
        );
        gateways::add_services(world, gateway, &index, &mut config, &mut model.verdicts);
        gateways::add_observability(gateway, &index, &mut config, &mut model.verdicts);
        tcp::add_tcp_routes(world, gateway, &index, &mut config, &mut model.verdicts);
        // A TCP or TLS listener with nothing to proxy has no filter chain, which
        // Envoy refuses: it waits for its first TCPMapping.
        let used: std::collections::BTreeSet<String> =
            config.tcp_routes.values().map(|r| r.listener.clone()).collect();
        config
            .listeners
            .retain(|name, l| l.protocol.is_http() || used.contains(name));
        model.gateways.insert(key, config);
    }
    gateways::judge_gateways(world, &mut model.verdicts);
    gateways::judge_unattached(world, &mut model.verdicts);
    model
}
