//! Which routes go into which virtual host of a listener, kept incrementally.
//!
//! A virtual host exists for every hostname that some route names exactly. A
//! route with a glob (`*.example.com`, or `*` for a route without hostname)
//! also goes into every virtual host whose hostname the glob covers: Envoy
//! picks exactly one virtual host per request, and a route that matches every
//! host must not vanish for the hosts that have routes of their own. A glob
//! route of a tenant (`ir::Route::tenant`) goes only into the virtual hosts
//! that routes of the same tenant declare: another namespace's host is not
//! its to serve, whatever its precedence.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::order::SortKey;
use crate::resource::Origin;

/// A virtual host's encoding and the origins of its routes.
pub type EncodedVhost = (Arc<[u8]>, Arc<[Origin]>);

#[derive(Debug, Default)]
pub struct VirtualHosts {
    /// Routes by the host pattern they declare, with their tenant.
    by_pattern: BTreeMap<String, BTreeMap<SortKey, Tenant>>,
    /// The patterns that are globs (few, in practice).
    globs: BTreeSet<String>,
    /// The encoding of each virtual host, `None` while it must be rebuilt.
    encoded: BTreeMap<String, Option<EncodedVhost>>,
    /// Virtual hosts rebuilt or removed since [`VirtualHosts::take_changed`]
    /// (what VHDS sends).
    changed: BTreeSet<String>,
}

/// The namespace a route serves for; `None`: the Gateway's own.
pub type Tenant = Option<Arc<str>>;

/// The virtual host patterns a route goes into by its own hostnames:
/// lowercased, each once; `*` for a route that names none.
pub fn host_patterns(route: &crate::ir::Route) -> Vec<String> {
    let mut patterns: Vec<String> = route.hostnames.iter().map(|h| h.to_ascii_lowercase()).collect();
    if patterns.is_empty() {
        patterns.push("*".into());
    }
    patterns.sort();
    patterns.dedup();
    patterns
}

/// Does host pattern `pattern` cover hostname (or narrower pattern) `host`?
pub fn covers(pattern: &str, host: &str) -> bool {
    if pattern == "*" || pattern == host {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => false,
    }
}

impl VirtualHosts {
    pub fn insert(&mut self, pattern: &str, key: SortKey, tenant: Tenant) {
        match self.by_pattern.get_mut(pattern) {
            Some(set) => {
                set.insert(key, tenant);
            }
            None => {
                self.by_pattern
                    .insert(pattern.to_owned(), BTreeMap::from([(key, tenant)]));
                if pattern.starts_with('*') {
                    self.globs.insert(pattern.to_owned());
                }
                self.encoded.insert(pattern.to_owned(), None);
            }
        }
        self.invalidate(pattern);
    }

    pub fn remove(&mut self, pattern: &str, key: &SortKey) {
        let now_empty = match self.by_pattern.get_mut(pattern) {
            Some(set) => {
                set.remove(key);
                set.is_empty()
            }
            None => return,
        };
        self.invalidate(pattern);
        if now_empty {
            self.by_pattern.remove(pattern);
            self.globs.remove(pattern);
            self.encoded.remove(pattern);
            self.changed.insert(pattern.to_owned());
        }
    }

    /// Marks every virtual host that `pattern`'s routes go into for rebuilding.
    fn invalidate(&mut self, pattern: &str) {
        if pattern.starts_with('*') {
            for (host, enc) in self.encoded.iter_mut() {
                if covers(pattern, host) {
                    *enc = None;
                    self.changed.insert(host.clone());
                }
            }
        } else if let Some(enc) = self.encoded.get_mut(pattern) {
            *enc = None;
            self.changed.insert(pattern.to_owned());
        }
    }

    /// The routes of the virtual host for `host`, in Envoy order: its own,
    /// and those of the globs covering it that serve for the Gateway or for
    /// a tenant of its own routes.
    pub fn routes_of(&self, host: &str) -> Vec<&SortKey> {
        let own = self.by_pattern.get(host);
        let mut keys: Vec<&SortKey> = own.into_iter().flat_map(|routes| routes.keys()).collect();
        let tenants: BTreeSet<&str> = own
            .into_iter()
            .flat_map(|routes| routes.values())
            .filter_map(|tenant| tenant.as_deref())
            .collect();
        for glob in &self.globs {
            if glob != host && covers(glob, host) {
                let routes = self.by_pattern.get(glob).into_iter().flatten();
                keys.extend(routes.filter_map(|(key, tenant)| {
                    tenant
                        .as_deref()
                        .is_none_or(|t| tenants.contains(t))
                        .then_some(key)
                }));
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Rebuilds the virtual hosts marked for it with `encode`, then returns
    /// every virtual host's encoding in hostname order.
    pub fn encode_all<F>(&mut self, mut encode: F) -> Vec<EncodedVhost>
    where
        F: FnMut(&str, &[&SortKey]) -> (Vec<u8>, Vec<Origin>),
    {
        let stale: Vec<String> = self
            .encoded
            .iter()
            .filter(|(_, e)| e.is_none())
            .map(|(h, _)| h.clone())
            .collect();
        for host in stale {
            let (body, origins) = encode(&host, &self.routes_of(&host));
            self.encoded.insert(host, Some((body.into(), origins.into())));
        }
        self.encoded
            .values()
            .map(|e| e.clone().expect("every stale virtual host was just encoded"))
            .collect()
    }

    /// The virtual hosts rebuilt or removed since the last call, with their
    /// encoding (`None`: removed). Call after [`VirtualHosts::encode_all`].
    pub fn take_changed(&mut self) -> Vec<(String, Option<EncodedVhost>)> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|host| {
                let encoded = self.encoded.get(&host).cloned().flatten();
                (host, encoded)
            })
            .collect()
    }

    /// Every virtual host with its encoding. Call after [`VirtualHosts::encode_all`].
    pub fn all(&self) -> Vec<(String, Option<EncodedVhost>)> {
        self.encoded.iter().map(|(h, e)| (h.clone(), e.clone())).collect()
    }

    /// Every virtual host's hostname pattern, in order.
    pub fn hostnames(&self) -> impl Iterator<Item = &str> {
        self.encoded.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{ObjectRef, PathMatch, Route, RouteAction, RouteId, RouteMatch, RoutePolicy};

    fn key(name: &str, prefix: &str) -> SortKey {
        let origin = ObjectRef::new("Mapping", "ns", name, 1);
        SortKey::of(&Route {
            id: RouteId::of(&origin),
            origin,
            co_origins: vec![],
            listener: "http".into(),
            hostnames: vec![],
            tenant: None,
            precedence: 0,
            matcher: RouteMatch {
                path: PathMatch::Prefix(prefix.into()),
                ..RouteMatch::default()
            },
            action: RouteAction::DirectResponse {
                status: 200,
                body: None,
            },
            policy: RoutePolicy::default(),
        })
    }

    #[test]
    fn globs_cover_narrower_hosts_only() {
        assert!(covers("*", "a.example.com"));
        assert!(covers("*.example.com", "a.example.com"));
        assert!(covers("*.example.com", "*.a.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", ".example.com"));
        assert!(!covers("a.example.com", "b.example.com"));
    }

    #[test]
    fn routes_for_every_host_join_each_virtual_host() {
        let mut v = VirtualHosts::default();
        v.insert("shop.example.com", key("shop", "/cart"), None);
        v.insert("*", key("all", "/"), None);
        v.insert("*.example.com", key("example", "/health"), None);
        let names = |host: &str, v: &VirtualHosts| -> Vec<String> {
            v.routes_of(host).iter().map(|k| k.id.to_string()).collect()
        };
        assert_eq!(
            names("shop.example.com", &v),
            ["Mapping/ns/example", "Mapping/ns/shop", "Mapping/ns/all"],
            "longer prefixes first, whatever host pattern brought them"
        );
        assert_eq!(names("*", &v), ["Mapping/ns/all"]);
        assert_eq!(
            v.hostnames().collect::<Vec<_>>(),
            ["*", "*.example.com", "shop.example.com"]
        );

        v.remove("shop.example.com", &key("shop", "/cart"));
        assert_eq!(v.hostnames().collect::<Vec<_>>(), ["*", "*.example.com"]);
    }

    #[test]
    fn a_tenants_globs_join_only_its_own_hosts() {
        let tenant = |t: &str| -> Tenant { Some(Arc::from(t)) };
        let mut v = VirtualHosts::default();
        v.insert("shop.example.com", key("shop", "/"), tenant("shop"));
        v.insert("rogue.example.com", key("rogue", "/"), tenant("rogue"));
        v.insert("status.example.com", key("status", "/"), None);
        // A rogue catch-all and glob, and the platform's catch-all.
        v.insert("*", key("rogue-all", "/"), tenant("rogue"));
        v.insert("*.example.com", key("rogue-glob", "/"), tenant("rogue"));
        v.insert("*", key("platform", "/"), None);
        // Order is the sort key's (equal here but for the id): compare sets.
        let names = |host: &str, v: &VirtualHosts| -> BTreeSet<String> {
            v.routes_of(host).iter().map(|k| k.id.to_string()).collect()
        };
        let set =
            |ids: &[&str]| -> BTreeSet<String> { ids.iter().map(|n| format!("Mapping/ns/{n}")).collect() };
        assert_eq!(names("shop.example.com", &v), set(&["shop", "platform"]));
        assert_eq!(names("status.example.com", &v), set(&["status", "platform"]));
        assert_eq!(
            names("rogue.example.com", &v),
            set(&["rogue", "rogue-glob", "platform", "rogue-all"])
        );
        // Hosts nobody routes: the rogue's catch-all may serve them.
        assert_eq!(names("*", &v), set(&["platform", "rogue-all"]));
    }
    #[test]
    fn only_touched_virtual_hosts_are_encoded_again() {
        let mut v = VirtualHosts::default();
        v.insert("a", key("a", "/"), None);
        v.insert("b", key("b", "/"), None);
        let mut encoded = Vec::new();
        v.encode_all(|host, _| {
            encoded.push(host.to_owned());
            (host.as_bytes().to_vec(), vec![])
        });
        assert_eq!(encoded, ["a", "b"]);
        encoded.clear();
        v.insert("b", key("b2", "/x"), None);
        let all = v.encode_all(|host, _| {
            encoded.push(host.to_owned());
            (host.as_bytes().to_vec(), vec![])
        });
        assert_eq!(encoded, ["b"]);
        assert_eq!(all.len(), 2);
    }
}
