//! A Gateway's HTTP route table as its Envoys hold it: per listener, one
//! virtual host per host pattern, each with its routes in the order Envoy
//! tries them. Built with the translator's own placement
//! ([`crate::translate::vhosts`]) and order ([`crate::translate::SortKey`]),
//! so that `legate routes`, `legate explain` and the diagnostics page show
//! what Envoy was sent, not a second opinion of it.

pub mod describe;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ir;
use crate::translate::order::SortKey;
use crate::translate::vhosts::{self, VirtualHosts};

/// Does host pattern `pattern` (a name, `*.suffix` or `*`) cover `host`?
pub use crate::translate::vhosts::covers as vhost_covers;

/// Every HTTP listener of a Gateway, by port.
#[derive(Debug, Clone)]
pub struct RouteTable<'a> {
    pub listeners: Vec<ListenerTable<'a>>,
}

/// One HTTP listener's virtual hosts.
#[derive(Debug, Clone)]
pub struct ListenerTable<'a> {
    pub listener: &'a ir::Listener,
    /// In hostname order (`*` first); Envoy picks one per request by
    /// [`ListenerTable::virtual_host_for`].
    pub hosts: Vec<HostTable<'a>>,
}

/// One virtual host: the host pattern it serves and its routes, in order.
#[derive(Debug, Clone)]
pub struct HostTable<'a> {
    /// An exact hostname, a `*.suffix` glob, or `*`.
    pub domain: String,
    pub routes: Vec<&'a ir::Route>,
}

/// Routes the translator leaves out, with why (the model validates first,
/// so this is empty unless the two disagree).
pub type Refused<'a> = Vec<(&'a ir::Route, ir::InvalidRoute)>;

/// The route table of `gateway`, and the routes no listener carries.
pub fn route_table(gateway: &ir::Gateway) -> (RouteTable<'_>, Refused<'_>) {
    let mut by_listener: BTreeMap<&str, (VirtualHosts, BTreeMap<SortKey, &ir::Route>)> = BTreeMap::new();
    let mut refused = Vec::new();
    for route in gateway.routes.values() {
        if let Err(reason) = route.validate() {
            refused.push((route, reason));
            continue;
        }
        let (index, keyed) = by_listener.entry(route.listener.as_str()).or_default();
        let key = SortKey::of(route);
        let tenant = route.tenant.as_deref().map(Arc::from);
        for pattern in vhosts::host_patterns(route) {
            index.insert(&pattern, key.clone(), tenant.clone());
        }
        keyed.insert(key, route);
    }
    let mut listeners: Vec<ListenerTable<'_>> = gateway
        .listeners
        .values()
        .filter(|l| l.protocol.is_http())
        .map(|listener| {
            let hosts = match by_listener.get(listener.name.as_str()) {
                Some((index, keyed)) => index
                    .hostnames()
                    .map(|domain| HostTable {
                        domain: domain.to_owned(),
                        routes: index
                            .routes_of(domain)
                            .into_iter()
                            .filter_map(|k| keyed.get(k).copied())
                            .collect(),
                    })
                    .collect(),
                None => Vec::new(),
            };
            ListenerTable { listener, hosts }
        })
        .collect();
    listeners.sort_by_key(|l| (l.listener.port, l.listener.name.clone()));
    (RouteTable { listeners }, refused)
}

impl<'a> ListenerTable<'a> {
    /// The virtual host Envoy picks for `host` (lower case, without port):
    /// an exact name, else the longest `*.suffix` glob that covers it, else `*`.
    pub fn virtual_host_for(&self, host: &str) -> Option<&HostTable<'a>> {
        if let Some(exact) = self.hosts.iter().find(|h| h.domain == host) {
            return Some(exact);
        }
        let glob = self
            .hosts
            .iter()
            .filter(|h| h.domain != "*" && h.domain.starts_with('*') && vhosts::covers(&h.domain, host))
            .max_by_key(|h| h.domain.len());
        glob.or_else(|| self.hosts.iter().find(|h| h.domain == "*"))
    }
}
