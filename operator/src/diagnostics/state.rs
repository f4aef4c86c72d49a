//! What the diagnostics page reads that only the engine and the ACK tracker
//! know: each Gateway's routing (the part of its IR the route table is built
//! from) and the last NACK each Gateway's Envoys sent.
//!
//! Publishing costs what changed: the engine hands over the routes and
//! listeners a build touched, never the whole Gateway, and nothing is
//! rendered until someone asks for the page.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use legate_xds::ir::{self, ObjectRef};
use legate_xds::server::Rejection;

/// The last configuration a Gateway's Envoy refused.
#[derive(Debug, Clone, PartialEq)]
pub struct LastNack {
    /// When the operator heard of it, RFC 3339 in UTC.
    pub at: String,
    /// The Envoy's node id.
    pub proxy: String,
    /// The xDS type it refused (`RDS`, `CDS`...).
    pub kind: &'static str,
    /// The response version it refused.
    pub version: String,
    /// Envoy's `error_detail`, word for word.
    pub message: String,
    /// The refused resources, by name.
    pub resources: Vec<String>,
    /// The objects the operator blamed (and quarantined on this Gateway).
    pub blamed: Vec<ObjectRef>,
}

impl LastNack {
    fn of(rejection: &Rejection, at: String) -> LastNack {
        LastNack {
            at,
            proxy: rejection.proxy.node.clone(),
            kind: rejection.kind.short(),
            version: rejection.version.clone(),
            message: rejection.message.clone(),
            resources: rejection.resources.iter().map(|r| r.to_string()).collect(),
            blamed: rejection.objects.clone(),
        }
    }
}

/// The page's read-only view of the engine's and the ACK tracker's state.
/// Cheap to clone out of: each Gateway's routing sits behind an `Arc`, so a
/// page takes it and renders without holding any lock.
#[derive(Debug, Default)]
pub struct Diagnostics {
    /// By Gateway key: the listeners, routes and TCP routes of the latest
    /// model, and nothing else of it (no upstream, no secret).
    routing: RwLock<BTreeMap<String, Arc<ir::Gateway>>>,
    /// By Gateway key.
    nacks: RwLock<BTreeMap<String, LastNack>>,
}

impl Diagnostics {
    /// Takes what a build changed of `desired` (Gateway `key`): the entries
    /// `touched` names, or everything when it is `None` (a whole build, or a
    /// Gateway seen for the first time).
    pub fn publish(&self, key: &str, desired: &ir::Gateway, touched: Option<&ir::Touched>) {
        let mut routing = write(&self.routing);
        let held = routing.entry(key.to_string()).or_default();
        // Copies the Gateway only while a page still reads the previous
        // version; otherwise this updates in place.
        let held = Arc::make_mut(held);
        match touched {
            None => {
                held.listeners = desired.listeners.clone();
                held.routes = desired.routes.clone();
                held.tcp_routes = desired.tcp_routes.clone();
            }
            Some(touched) => {
                for id in &touched.routes {
                    match desired.routes.get(id) {
                        Some(route) => {
                            held.routes.insert(id.clone(), route.clone());
                        }
                        None => {
                            held.routes.remove(id);
                        }
                    }
                }
                if touched.frame {
                    held.listeners = desired.listeners.clone();
                    held.tcp_routes = desired.tcp_routes.clone();
                }
            }
        }
    }

    /// Gateway `key` is gone from the model.
    pub fn forget(&self, key: &str) {
        write(&self.routing).remove(key);
        write(&self.nacks).remove(key);
    }

    /// An Envoy refused a configuration; `at` is when (RFC 3339).
    pub fn record_nack(&self, rejection: &Rejection, at: String) {
        write(&self.nacks).insert(rejection.proxy.gateway.clone(), LastNack::of(rejection, at));
    }

    /// Gateway `key`'s routing as last published.
    pub fn routing(&self, key: &str) -> Option<Arc<ir::Gateway>> {
        read(&self.routing).get(key).cloned()
    }

    /// The last NACK of Gateway `key`'s Envoys.
    pub fn last_nack(&self, key: &str) -> Option<LastNack> {
        read(&self.nacks).get(key).cloned()
    }
}

// Every update completes under the lock or not at all, so a poisoned lock
// still holds a consistent map.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use legate_xds::ir::{Route, RouteId};
    use legate_xds::resource::ResourceType;
    use legate_xds::server::ProxyId;

    use super::*;

    fn route(name: &str, prefix: &str) -> Route {
        let origin = ObjectRef::new("Mapping", "shop", name, 1);
        Route {
            id: RouteId::of(&origin),
            origin,
            co_origins: Vec::new(),
            listener: "http".into(),
            hostnames: Vec::new(),
            tenant: None,
            precedence: 0,
            matcher: ir::RouteMatch {
                path: ir::PathMatch::Prefix(prefix.into()),
                ..Default::default()
            },
            action: ir::RouteAction::DirectResponse {
                status: 200,
                body: None,
            },
            policy: Default::default(),
        }
    }

    #[test]
    fn a_touched_build_moves_only_the_routes_it_names() {
        let diagnostics = Diagnostics::default();
        let a = route("a", "/a/");
        let b = route("b", "/b/");
        let first = ir::Gateway::default().with_route(a.clone()).with_route(b.clone());
        diagnostics.publish("shop/edge", &first, None);
        let reading = diagnostics.routing("shop/edge").expect("published");

        // b changes, a is removed; the build names only b.
        let b2 = route("b", "/b2/");
        let next = ir::Gateway::default().with_route(b2.clone());
        let touched = ir::Touched {
            routes: [b.id.clone()].into(),
            ..Default::default()
        };
        diagnostics.publish("shop/edge", &next, Some(&touched));
        let now = diagnostics.routing("shop/edge").expect("published");
        assert_eq!(now.routes.get(&b.id), Some(&b2), "b moved");
        assert_eq!(
            now.routes.get(&a.id),
            Some(&a),
            "a was not named, so it is not looked at"
        );
        assert_eq!(
            reading.routes.get(&b.id),
            Some(&b),
            "a page that was reading keeps the version it took"
        );

        let gone = ir::Touched {
            routes: [a.id.clone()].into(),
            ..Default::default()
        };
        diagnostics.publish("shop/edge", &next, Some(&gone));
        assert!(
            !diagnostics
                .routing("shop/edge")
                .expect("published")
                .routes
                .contains_key(&a.id)
        );
    }

    #[test]
    fn the_last_nack_is_kept_per_gateway_and_forgotten_with_it() {
        let diagnostics = Diagnostics::default();
        let rejection = |gateway: &str, message: &str| Rejection {
            proxy: ProxyId {
                node: "edge-1".into(),
                gateway: gateway.into(),
            },
            kind: ResourceType::Route,
            version: "v2".into(),
            message: message.into(),
            resources: vec![Arc::from("http")],
            objects: vec![ObjectRef::new("Mapping", "shop", "greedy", 2)],
        };
        diagnostics.record_nack(&rejection("shop/edge", "first"), "t1".into());
        diagnostics.record_nack(&rejection("shop/edge", "second"), "t2".into());
        diagnostics.record_nack(&rejection("blog/edge", "other"), "t3".into());
        let last = diagnostics.last_nack("shop/edge").expect("recorded");
        assert_eq!(
            (last.message.as_str(), last.at.as_str(), last.kind),
            ("second", "t2", "RDS")
        );
        diagnostics.forget("shop/edge");
        assert_eq!(diagnostics.last_nack("shop/edge"), None);
        assert!(diagnostics.last_nack("blog/edge").is_some());
    }
}
