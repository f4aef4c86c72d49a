//! From the user's objects to each Gateway's desired configuration (the IR)
//! and a verdict for every object. Pure: a [`World`] in, a [`Model`] out, so
//! every rule here is tested, benchmarked and run offline (`legate
//! translate`) without an API server. No Kubernetes client, no async runtime.

// Per kind (listeners, tls, mappings, gateways, tcp) over shared helpers
// (attach, age, services, secrets, server_tls, upstreams, upstream_tls,
// weights, names, verdicts, world). Helpers never use a per-kind module, so
// a rule lives in one place and imports stay a DAG. `incremental` is the same
// build as `build_with` below, kept between worlds: it orchestrates the
// per-kind modules and holds no rule of its own.
mod age;
mod attach;
mod gateways;
mod hosts;
mod incremental;
mod ip_access;
mod listeners;
mod mappings;
mod names;
mod observability;
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
mod tests_access;
#[cfg(test)]
mod tests_edge;
#[cfg(test)]
mod tests_hosts;
#[cfg(test)]
mod tests_observability;
#[cfg(test)]
mod tests_service_scope;
#[cfg(test)]
mod tests_tcp;
#[cfg(test)]
mod tests_tenancy;

use std::collections::BTreeMap;

use kube::Resource;

pub use incremental::{Incremental, Reach};
pub use names::{gateway_key, object_ref};
pub use verdicts::{Problem, Verdict, Verdicts};
pub use world::{CA_BUNDLE_KEY, Quarantine, World};

/// The desired state: each Gateway's configuration and every object's verdict.
#[derive(Debug, Default, Clone, PartialEq)]
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
/// out the quarantined objects. [`Incremental`] gives the same answer for
/// a fraction of the work when worlds follow one another.
pub fn build_with(world: &World, quarantine: &Quarantine) -> Model {
    let mut model = Model::default();
    let index = services::ServiceIndex::new(world);
    for gateway in live_gateways(world) {
        let hosts = hosts::HostOwners::of(world, gateway);
        let mut config = start_config(world, gateway, &hosts, quarantine, &mut model.verdicts);
        mappings::add_routes(
            world,
            gateway,
            &hosts,
            &index,
            quarantine,
            &mut config,
            &mut model.verdicts,
        );
        finish_config(
            world,
            gateway,
            &hosts,
            quarantine,
            &index,
            &mut config,
            &mut model.verdicts,
        );
        model.gateways.insert(gateway_key(gateway), config);
    }
    gateways::judge_gateways(world, &mut model.verdicts);
    attach::judge_unattached(world, &mut model.verdicts);
    model
}

/// The Gateways that get a configuration: all but those being deleted.
fn live_gateways(world: &World) -> impl Iterator<Item = &std::sync::Arc<legate_crds::Gateway>> {
    world
        .gateways
        .iter()
        .filter(|g| g.meta().deletion_timestamp.is_none())
}

/// What a Gateway's HTTP routes attach to: its listeners, with the
/// certificates of its TLSContexts (and their cleartext routes).
fn start_config(
    world: &World,
    gateway: &legate_crds::Gateway,
    hosts: &hosts::HostOwners,
    quarantine: &Quarantine,
    verdicts: &mut Verdicts,
) -> legate_xds::ir::Gateway {
    let mut config = listeners::listeners(gateway, world.listen_address);
    tls::add_tls(world, gateway, hosts, quarantine, &mut config, verdicts);
    hosts::add_assigned_host_routes(gateway, &mut config);
    // An HTTPS listener with no certificate cannot be served; it waits for a TLSContext.
    config
        .listeners
        .retain(|_, l| l.protocol != legate_xds::ir::ListenerProtocol::Https || !l.tls.is_empty());
    config
}

/// What comes after the HTTP routes: the Gateway-wide services,
/// observability and TCP routes, and the listeners that have something to do.
fn finish_config(
    world: &World,
    gateway: &legate_crds::Gateway,
    hosts: &hosts::HostOwners,
    quarantine: &Quarantine,
    index: &services::ServiceIndex,
    config: &mut legate_xds::ir::Gateway,
    verdicts: &mut Verdicts,
) {
    gateways::add_services(world, gateway, index, config, verdicts);
    observability::add_observability(world, gateway, index, config, verdicts);
    tcp::add_tcp_routes(world, gateway, hosts, quarantine, index, config, verdicts);
    // A TCP or TLS listener with nothing to proxy has no filter chain, which
    // Envoy refuses: it waits for its first TCPMapping.
    let used: std::collections::BTreeSet<String> =
        config.tcp_routes.values().map(|r| r.listener.clone()).collect();
    config
        .listeners
        .retain(|name, l| l.protocol.is_http() || used.contains(name));
}
