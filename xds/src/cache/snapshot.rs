//! An immutable snapshot of one Gateway's resources.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use crate::resource::{Resource, ResourceType, ResourceUpdate};

/// The resources of one type, by name.
pub type Resources = BTreeMap<Arc<str>, Arc<Resource>>;

/// Every resource of one Gateway at one moment. Snapshots share what did not
/// change: an update clones only the maps of the types it touches (resources
/// themselves are `Arc`s), so an endpoints change never copies routes.
#[derive(Clone, Debug)]
pub struct Snapshot {
    gateway: Arc<str>,
    serial: u64,
    types: [Arc<Resources>; ResourceType::COUNT],
    /// The serial at which each type last changed, so that a stream skips
    /// types that did not change since it last looked.
    type_serials: [u64; ResourceType::COUNT],
    /// [`Snapshot::whole_route_configs`], made when a stream first asks.
    whole_route_configs: OnceLock<Arc<Resources>>,
    /// Whether the Gateway has been translated: until then the snapshot is a
    /// placeholder for streams that came early, and nothing is sent from it
    /// (an empty answer would tell a proxy to drop what it runs).
    published: bool,
}

impl Snapshot {
    pub fn empty(gateway: &str) -> Snapshot {
        Snapshot {
            gateway: gateway.into(),
            serial: 0,
            types: Default::default(),
            type_serials: [0; ResourceType::COUNT],
            whole_route_configs: OnceLock::new(),
            published: false,
        }
    }

    /// Whether the Gateway's translation is in (see the field).
    pub fn published(&self) -> bool {
        self.published
    }

    /// This snapshot, marked as the Gateway's translation; `None` if it is already.
    pub fn publish(&self) -> Option<Snapshot> {
        if self.published {
            return None;
        }
        let mut next = self.clone();
        next.serial += 1;
        next.published = true;
        Some(next)
    }

    /// The Gateway (`namespace/name`, Envoy's `node.cluster`).
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// Increases with every change.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    pub fn type_serial(&self, kind: ResourceType) -> u64 {
        self.type_serials[kind.index()]
    }

    pub fn resources(&self, kind: ResourceType) -> &Resources {
        &self.types[kind.index()]
    }

    pub fn get(&self, kind: ResourceType, name: &str) -> Option<&Arc<Resource>> {
        self.types[kind.index()].get(name)
    }

    /// The route configs as a proxy that does not take VHDS gets them: one on
    /// state-of-the-world ADS (where Envoy refuses VHDS), or on delta without
    /// asking for it. A route config whose virtual hosts go over VHDS is
    /// assembled whole from its VirtualHost resources; the others are as
    /// they are. Made once per snapshot, when the first such stream asks
    /// (nothing is made while every proxy takes VHDS).
    pub fn whole_route_configs(&self) -> &Arc<Resources> {
        self.whole_route_configs.get_or_init(|| {
            let routes = &self.types[ResourceType::Route.index()];
            if !routes.values().any(|r| r.vhds) {
                return routes.clone();
            }
            let vhosts = &self.types[ResourceType::VirtualHost.index()];
            let assembled = routes.iter().map(|(name, r)| {
                if !r.vhds {
                    return (name.clone(), r.clone());
                }
                // `<name>/<host>`: the host has no slash, the name may.
                let prefix = format!("{name}/");
                let own = vhosts
                    .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                    .take_while(|(n, _)| n.starts_with(&prefix))
                    .filter(|(n, _)| !n[prefix.len()..].contains('/'))
                    .map(|(_, vh)| vh);
                let whole = crate::translate::assemble_route_config(r, own);
                (name.clone(), Arc::new(whole))
            });
            Arc::new(assembled.collect())
        })
    }

    /// The resources of `kind` a stream serves: with `whole_route_configs`,
    /// route configs go whole ([`Snapshot::whole_route_configs`]).
    pub fn served(&self, kind: ResourceType, whole_route_configs: bool) -> &Resources {
        if whole_route_configs && kind == ResourceType::Route {
            self.whole_route_configs()
        } else {
            self.resources(kind)
        }
    }

    /// Total number of resources.
    pub fn len(&self) -> usize {
        self.types.iter().map(|t| t.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The snapshot with `updates` applied, or `None` when they change nothing
    /// (an upsert of an identical version, a removal of an unknown name).
    pub fn with(&self, updates: &[ResourceUpdate]) -> Option<Snapshot> {
        let mut next = self.clone();
        next.serial += 1;
        next.published = true;
        let mut changed = !self.published;
        for update in updates {
            let kind = update.kind();
            let current = &self.types[kind.index()];
            let differs = match update {
                ResourceUpdate::Upsert(r) => current.get(&r.name).is_none_or(|old| old.version != r.version),
                ResourceUpdate::Remove(_, name) => current.contains_key(name),
            };
            if !differs {
                continue;
            }
            changed = true;
            next.type_serials[kind.index()] = next.serial;
            if matches!(kind, ResourceType::Route | ResourceType::VirtualHost) {
                next.whole_route_configs = OnceLock::new();
            }
            let map = Arc::make_mut(&mut next.types[kind.index()]);
            match update {
                ResourceUpdate::Upsert(r) => {
                    map.insert(r.name.clone(), r.clone());
                }
                ResourceUpdate::Remove(_, name) => {
                    map.remove(name);
                }
            }
        }
        changed.then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(kind: ResourceType, name: &str, body: &[u8]) -> ResourceUpdate {
        ResourceUpdate::Upsert(Arc::new(Resource::new(kind, name, body.to_vec(), vec![], vec![])))
    }

    #[test]
    fn an_update_shares_the_types_it_does_not_touch() {
        let s0 = Snapshot::empty("default/gw");
        let s1 = s0
            .with(&[
                res(ResourceType::Route, "http", b"r1"),
                res(ResourceType::Endpoints, "a", b"e1"),
            ])
            .expect("a change");
        let s2 = s1
            .with(&[res(ResourceType::Endpoints, "a", b"e2")])
            .expect("a change");
        assert!(Arc::ptr_eq(
            &s1.types[ResourceType::Route.index()],
            &s2.types[ResourceType::Route.index()]
        ));
        assert_eq!(s2.type_serial(ResourceType::Route), 1);
        assert_eq!(s2.type_serial(ResourceType::Endpoints), 2);
        assert_eq!(s2.len(), 2);
    }

    #[test]
    fn identical_upserts_and_unknown_removals_change_nothing() {
        let s1 = Snapshot::empty("g")
            .with(&[res(ResourceType::Cluster, "c", b"x")])
            .expect("a change");
        assert!(s1.with(&[res(ResourceType::Cluster, "c", b"x")]).is_none());
        assert!(
            s1.with(&[ResourceUpdate::Remove(ResourceType::Cluster, "nope".into())])
                .is_none()
        );
        let s2 = s1
            .with(&[ResourceUpdate::Remove(ResourceType::Cluster, "c".into())])
            .expect("a change");
        assert!(s2.is_empty());
    }
}
