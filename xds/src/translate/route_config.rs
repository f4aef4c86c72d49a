//! A listener's routes → its route config (RDS), and, in VHDS mode, one
//! VirtualHost resource per hostname.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, Vhds, VirtualHost};
use prost::Message;

use super::filters::ads;
use super::vhosts::EncodedVhost;
use super::{ListenerRoutes, TranslatedRoute, encode, route_config_name, upsert};
use crate::ir::RouteId;
use crate::resource::{Resource, ResourceType, ResourceUpdate};

/// The one virtual host every route config over VHDS has, with no routes.
/// Envoy finishes a VHDS route config's initial fetch only once one of its
/// virtual hosts arrives: a listener with no routes yet stayed warming for
/// the 15 s initial-fetch timeout. A `.invalid` name (RFC 2606) is never a
/// host anyone serves.
pub const PLACEHOLDER_HOST: &str = "legate-vhds.invalid";

/// Field numbers used to splice pre-encoded parts into their parents.
const ROUTE_CONFIGURATION_VIRTUAL_HOSTS: u32 = 2;
const VIRTUAL_HOST_ROUTES: u32 = 3;

/// The resources to send for a listener whose routes changed. `first`: the
/// listener's route config was not sent before (VHDS then sends every
/// virtual host, not only the changed ones).
pub fn updates(
    lr: Option<&mut ListenerRoutes>,
    routes: &HashMap<RouteId, TranslatedRoute>,
    listener: &str,
    vhds: bool,
    first: bool,
) -> Vec<ResourceUpdate> {
    let name = route_config_name(listener);
    let shell = RouteConfiguration {
        name: name.clone(),
        vhds: vhds.then(|| Vhds {
            config_source: Some(ads()),
        }),
        ..RouteConfiguration::default()
    }
    .encode_to_vec();
    let shell_resource = |shell: Vec<u8>| {
        let r = Resource::new(ResourceType::Route, &name, shell, vec![], vec![]);
        upsert(if vhds { r.over_vhds() } else { r })
    };
    let Some(lr) = lr else {
        let mut out = vec![shell_resource(shell)];
        out.extend(vhds.then(|| placeholder(&name)));
        return out;
    };
    let vhosts = lr.vhosts.encode_all(|host, keys| {
        // Over VHDS, a virtual host's name is its resource name.
        let vh_name = if vhds {
            format!("{name}/{host}")
        } else {
            host.to_owned()
        };
        let mut vh = VirtualHost {
            name: vh_name,
            domains: vec![host.to_owned()],
            ..VirtualHost::default()
        }
        .encode_to_vec();
        let mut origins = Vec::with_capacity(keys.len());
        for k in keys {
            let r = routes.get(&k.id).expect("the index holds only known routes");
            encode::append_message_field(&mut vh, VIRTUAL_HOST_ROUTES, &r.body);
            origins.extend(r.origins.iter().cloned());
        }
        (vh, origins)
    });
    if vhds {
        let changed = lr.vhosts.take_changed();
        let changed = if first { lr.vhosts.all() } else { changed };
        let mut out = vec![shell_resource(shell)];
        // Unchanged, it is no change to the snapshot; a user's virtual host
        // of that name (which serves nothing) takes its place.
        if lr.vhosts.routes_of(PLACEHOLDER_HOST).is_empty() {
            out.push(placeholder(&name));
        }
        for (host, encoded) in changed {
            let resource_name = format!("{name}/{host}");
            out.push(match encoded {
                Some((body, origins)) => {
                    let clusters: BTreeSet<&Arc<str>> = lr
                        .vhosts
                        .routes_of(&host)
                        .into_iter()
                        .filter_map(|k| routes.get(&k.id))
                        .flat_map(|r| r.clusters.iter())
                        .collect();
                    let references = clusters
                        .into_iter()
                        .map(|c| (ResourceType::Cluster, c.clone()))
                        .collect();
                    upsert(Resource::with_origin_chunks(
                        ResourceType::VirtualHost,
                        &resource_name,
                        body.to_vec(),
                        references,
                        vec![origins],
                    ))
                }
                None => ResourceUpdate::Remove(ResourceType::VirtualHost, resource_name.into()),
            });
        }
        return out;
    }
    // The whole route config: only what is tracked as changed matters to VHDS.
    lr.vhosts.take_changed();
    let mut body = shell;
    body.reserve(vhosts.iter().map(|(b, _)| b.len() + 6).sum());
    for (vh, _) in &vhosts {
        encode::append_message_field(&mut body, ROUTE_CONFIGURATION_VIRTUAL_HOSTS, vh);
    }
    let references = lr
        .cluster_refs
        .keys()
        .map(|c| (ResourceType::Cluster, c.clone()))
        .collect();
    let origins = vhosts.into_iter().map(|(_, o): EncodedVhost| o).collect();
    vec![upsert(Resource::with_origin_chunks(
        ResourceType::Route,
        &name,
        body,
        references,
        origins,
    ))]
}

/// Route config `name`'s placeholder virtual host (see [`PLACEHOLDER_HOST`]).
fn placeholder(name: &str) -> ResourceUpdate {
    let resource_name = format!("{name}/{PLACEHOLDER_HOST}");
    let body = VirtualHost {
        name: resource_name.clone(),
        domains: vec![PLACEHOLDER_HOST.to_owned()],
        ..VirtualHost::default()
    }
    .encode_to_vec();
    upsert(Resource::new(
        ResourceType::VirtualHost,
        &resource_name,
        body,
        vec![],
        vec![],
    ))
}

/// The resources to remove with a listener's route config.
pub fn removals(lr: Option<&mut ListenerRoutes>, listener: &str, vhds: bool) -> Vec<ResourceUpdate> {
    let name = route_config_name(listener);
    let mut out = vec![ResourceUpdate::Remove(ResourceType::Route, name.clone().into())];
    if vhds {
        out.push(ResourceUpdate::Remove(
            ResourceType::VirtualHost,
            format!("{name}/{PLACEHOLDER_HOST}").into(),
        ));
    }
    if vhds && let Some(lr) = lr {
        // Sent again in full if the listener comes back.
        lr.vhosts.take_changed();
        for (host, _) in lr.vhosts.all() {
            out.push(ResourceUpdate::Remove(
                ResourceType::VirtualHost,
                format!("{name}/{host}").into(),
            ));
        }
    }
    out
}

/// A route config whose virtual hosts go over VHDS (`shell`), whole: its
/// name and `vhosts` (its VirtualHost resources, in name order) inline, for
/// a proxy on state-of-the-world ADS, where Envoy refuses VHDS. It refers to
/// every cluster of its virtual hosts and carries their origins (one chunk
/// per virtual host, shared with the VirtualHost resource).
pub fn assemble<'a>(shell: &Resource, vhosts: impl IntoIterator<Item = &'a Arc<Resource>>) -> Resource {
    let mut body = RouteConfiguration {
        name: shell.name.to_string(),
        ..RouteConfiguration::default()
    }
    .encode_to_vec();
    let mut references = Vec::new();
    let mut origins = Vec::new();
    for vh in vhosts {
        encode::append_message_field(&mut body, ROUTE_CONFIGURATION_VIRTUAL_HOSTS, &vh.body);
        references.extend(vh.references.iter().cloned());
        origins.extend(vh.origins.iter().cloned());
    }
    Resource::with_origin_chunks(ResourceType::Route, &shell.name, body, references, origins)
}
