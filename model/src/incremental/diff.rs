//! What changed between two worlds, object by object. The operator hands
//! the objects of its stores as `Arc`s, and an object that did not change is
//! the same `Arc` from one world to the next: comparing addresses is the
//! cheap test. A new `Arc` may still hold what the model already judged
//! ([`Version`]): an object listed again by a watch that restarted, or one
//! of Legate's whose status alone was written (the operator writes status
//! after every change it programs; the model never reads it).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Resource;
use legate_crds::gateway::FromNamespaces;
use legate_crds::{AuthService, Gateway, Mapping, RateLimitService, TCPMapping, TLSContext};

use crate::world::World;

/// Past this many differences at the same positions, a set difference is
/// cheaper than walking them pair by pair.
const POSITIONAL_LIMIT: usize = 32;

/// The objects of one kind that changed: the old versions of those changed
/// or deleted, the new versions of those changed or added.
#[derive(Debug)]
pub(super) struct Changes<K> {
    pub removed: Vec<Arc<K>>,
    pub added: Vec<Arc<K>>,
}

impl<K> Changes<K> {
    pub fn len(&self) -> usize {
        self.removed.len() + self.added.len()
    }
}

/// The objects of one kind as last seen, in the order they came (a kind
/// whose order does not matter to the model: Mappings, Services,
/// EndpointSlices).
#[derive(Debug)]
pub(super) struct Seen<K> {
    objects: Vec<Arc<K>>,
}

impl<K: Version> Seen<K> {
    pub fn new(objects: &[Arc<K>]) -> Seen<K> {
        Seen {
            objects: objects.to_vec(),
        }
    }

    /// What changed since the last list; remembers `objects` for the next.
    pub fn update(&mut self, objects: &[Arc<K>]) -> Changes<K> {
        let changes = match self.positional(objects) {
            Some(changes) => changes,
            None => {
                let changes = set_difference(&self.objects, objects);
                self.objects = objects.to_vec();
                changes
            }
        };
        without_relisted(changes)
    }

    /// With as many objects as before and a few differences in place (an
    /// edit keeps its place in a store), the pairs that differ; `None`
    /// otherwise. Remembers the new ones.
    fn positional(&mut self, objects: &[Arc<K>]) -> Option<Changes<K>> {
        if self.objects.len() != objects.len() {
            return None;
        }
        let differ: Vec<usize> = (0..objects.len())
            .filter(|&i| !Arc::ptr_eq(&self.objects[i], &objects[i]))
            .take(POSITIONAL_LIMIT + 1)
            .collect();
        if differ.len() > POSITIONAL_LIMIT {
            return None;
        }
        let mut changes = Changes {
            removed: Vec::with_capacity(differ.len()),
            added: Vec::with_capacity(differ.len()),
        };
        for i in differ {
            let new = objects[i].clone();
            changes
                .removed
                .push(std::mem::replace(&mut self.objects[i], new.clone()));
            changes.added.push(new);
        }
        // A swap of two objects reads as both removed and added: harmless,
        // both are judged again.
        Some(changes)
    }
}

fn address<K>(object: &Arc<K>) -> usize {
    Arc::as_ptr(object) as usize
}

fn set_difference<K>(before: &[Arc<K>], now: &[Arc<K>]) -> Changes<K> {
    let old: HashSet<usize> = before.iter().map(address).collect();
    let new: HashSet<usize> = now.iter().map(address).collect();
    Changes {
        removed: before
            .iter()
            .filter(|o| !new.contains(&address(o)))
            .cloned()
            .collect(),
        added: now
            .iter()
            .filter(|o| !old.contains(&address(o)))
            .cloned()
            .collect(),
    }
}

/// Drops the pairs that are one object at one version, listed again.
fn without_relisted<K: Version>(changes: Changes<K>) -> Changes<K> {
    if changes.removed.is_empty() || changes.added.is_empty() {
        return changes;
    }
    let identity = |o: &K| (o.meta().namespace.clone(), o.meta().name.clone());
    let mut removed: HashMap<_, Arc<K>> = changes.removed.into_iter().map(|o| (identity(&o), o)).collect();
    let mut added = Vec::with_capacity(changes.added.len());
    for new in changes.added {
        let key = identity(&new);
        match removed.get(&key) {
            Some(old) if K::same_version(old, &new) => {
                removed.remove(&key);
            }
            _ => added.push(new),
        }
    }
    Changes {
        removed: removed.into_values().collect(),
        added,
    }
}

/// How to tell that two objects are the same to the model.
pub(super) trait Version: Resource {
    /// One `Arc`, or one object (uid) whose every field the model reads is
    /// the same.
    fn same_version(a: &Arc<Self>, b: &Arc<Self>) -> bool;
}

/// Kubernetes' kinds: the same resourceVersion (which every write changes).
macro_rules! by_resource_version {
    ($($kind:ty),*) => {$(
        impl Version for $kind {
            fn same_version(a: &Arc<Self>, b: &Arc<Self>) -> bool {
                Arc::ptr_eq(a, b) || {
                    let (a, b) = (a.meta(), b.meta());
                    a.uid.is_some()
                        && a.uid == b.uid
                        && a.resource_version.is_some()
                        && a.resource_version == b.resource_version
                }
            }
        }
    )*};
}

/// Legate's kinds: the same generation, which the API server moves on every
/// change but to status and metadata (they have a status subresource), and
/// the same deletion mark: the model reads their spec, name, generation,
/// creation and deletion, never their status, labels or annotations.
macro_rules! by_generation {
    ($($kind:ty),*) => {$(
        impl Version for $kind {
            fn same_version(a: &Arc<Self>, b: &Arc<Self>) -> bool {
                Arc::ptr_eq(a, b) || {
                    let (a, b) = (a.meta(), b.meta());
                    a.uid.is_some()
                        && a.uid == b.uid
                        && a.generation.is_some()
                        && a.generation == b.generation
                        && a.deletion_timestamp == b.deletion_timestamp
                }
            }
        }
    )*};
}

by_resource_version!(Service, EndpointSlice, Namespace, Secret);
by_generation!(
    Gateway,
    Mapping,
    TLSContext,
    AuthService,
    RateLimitService,
    TCPMapping
);

/// The objects whose changes reach too far to follow one by one, and
/// where Envoys listen. When a Gateway comes or goes or the address
/// changes, the model is built whole again; when a Gateway's spec, a
/// TLSContext, AuthService, RateLimitService, TCPMapping or Namespace
/// changes, each Gateway's parts before and after its HTTP routes are. Their order counts too (the certificates of a listener
/// come in the order of the TLSContexts). Namespaces count only while a
/// Gateway selects namespaces by label (their labels are all the model
/// reads of them).
#[derive(Debug)]
pub(super) struct Frame {
    listen_address: IpAddr,
    allow_loopback_upstreams: bool,
    gateways: Vec<Arc<Gateway>>,
    tls_contexts: Vec<Arc<TLSContext>>,
    auth_services: Vec<Arc<AuthService>>,
    rate_limit_services: Vec<Arc<RateLimitService>>,
    tcp_mappings: Vec<Arc<TCPMapping>>,
    /// `None` while no Gateway selects namespaces by label.
    namespaces: Option<Vec<Arc<Namespace>>>,
}

impl Frame {
    pub fn of(world: &World) -> Frame {
        Frame {
            listen_address: world.listen_address,
            allow_loopback_upstreams: world.allow_loopback_upstreams,
            gateways: world.gateways.clone(),
            tls_contexts: world.tls_contexts.clone(),
            auth_services: world.auth_services.clone(),
            rate_limit_services: world.rate_limit_services.clone(),
            tcp_mappings: world.tcp_mappings.clone(),
            namespaces: selects_namespaces(world).then(|| world.namespaces.clone()),
        }
    }

    /// What of the frame `world` changed.
    pub fn compare(&self, world: &World) -> FrameChange {
        if self.listen_address != world.listen_address
            || self.allow_loopback_upstreams != world.allow_loopback_upstreams
        {
            // Settings of the whole world: build it whole.
            FrameChange::Gateways
        } else if !same_list(&self.gateways, &world.gateways) {
            if same_gateways(&self.gateways, &world.gateways) {
                FrameChange::GatewaySpecs
            } else {
                FrameChange::Gateways
            }
        } else if self.holds(world) {
            FrameChange::Nothing
        } else {
            FrameChange::Parts
        }
    }

    /// Whether `world` has the same frame, Gateways aside.
    fn holds(&self, world: &World) -> bool {
        same_list(&self.tls_contexts, &world.tls_contexts)
            && same_list(&self.auth_services, &world.auth_services)
            && same_list(&self.rate_limit_services, &world.rate_limit_services)
            && same_list(&self.tcp_mappings, &world.tcp_mappings)
            && self
                .namespaces
                .as_ref()
                .is_none_or(|namespaces| same_list(namespaces, &world.namespaces))
    }
}

/// Whether a Gateway admits routes from namespaces by their labels.
fn selects_namespaces(world: &World) -> bool {
    world
        .gateways
        .iter()
        .any(|g| g.spec.allowed_routes.namespaces.from == FromNamespaces::Selector)
}

/// What changed of the [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrameChange {
    Nothing,
    /// TLSContexts, AuthServices, RateLimitServices, TCPMappings or
    /// Namespaces (while a Gateway selects by label).
    Parts,
    /// The spec of a Gateway, the Gateways being the same ones (by
    /// namespace and name, in order, live or being deleted alike).
    GatewaySpecs,
    /// Which Gateways there are, or the listen address.
    Gateways,
}

/// The same Gateways, whatever their specs.
fn same_gateways(before: &[Arc<Gateway>], now: &[Arc<Gateway>]) -> bool {
    fn identity(g: &Gateway) -> (&Option<String>, &Option<String>, bool) {
        let meta = g.meta();
        (&meta.namespace, &meta.name, meta.deletion_timestamp.is_some())
    }
    before.len() == now.len() && before.iter().zip(now).all(|(a, b)| identity(a) == identity(b))
}

fn same_list<K: Version>(before: &[Arc<K>], now: &[Arc<K>]) -> bool {
    before.len() == now.len() && before.iter().zip(now).all(|(a, b)| K::same_version(a, b))
}
