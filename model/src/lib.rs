//! From the user's objects to each Gateway's desired configuration (the IR)
//! and a verdict for every object. Pure: a [`World`] in, a [`Model`] out, so
//! every rule here is tested, benchmarked and run offline (`legate
//! translate`) without an API server. No Kubernetes client, no async runtime.

// Per kind (listeners, tls, mappings, gateways, tcp) over shared helpers
// (attach, age, services, secrets, server_tls, upstreams, upstream_tls,
// weights, names, verdicts, world). Helpers never use a per-kind module, so
// a rule lives in one place and imports stay a DAG.
mod age;
mod attach;
mod gateways;
mod listeners;
mod mappings;
mod names;
mod own_routes;
mod secrets;
mod server_tls;
mod services;
pub mod snapshot;
mod tcp;
mod tls;
mod upstream_tls;
mod upstreams;
mod verdicts;
mod weights;
mod world;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_edge;
#[cfg(test)]
mod tests_tcp;

use std::collections::BTreeMap;

use kube::Resource;

pub use names::{gateway_key, object_ref};
pub use verdicts::{Problem, Verdict, Verdicts};
pub use world::{CA_BUNDLE_KEY, Quarantine, World};

/// The desired state: each Gateway's configuration and every object's verdict.
#[derive(Debug, Default)]
pub struct Model {
    /// By Gateway key (`namespace/name`, which Envoy's `node.cluster` names).
    pub gateways: BTreeMap<String, legate_xds::ir::Gateway>,
    /// By object key (`Kind/namespace/name`).
    pub verdicts: Verdicts,
}

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
        let mut config = listeners::listeners(gateway, world.listen_address);
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
        gateways::add_observability(world, gateway, &index, &mut config, &mut model.verdicts);
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
    attach::judge_unattached(world, &mut model.verdicts);
    model
}
