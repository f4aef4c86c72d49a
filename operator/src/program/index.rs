//! Which resources of a Gateway's snapshot carry each object, and since which
//! snapshot serial they carry its current part: the index behind per-object
//! `Programmed`. Kept up to date from the updates the engine pushes, so that
//! judging one object never scans a snapshot, and a change to one object never
//! moves another object's answer.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use legate_xds::ir::ObjectRef;
use legate_xds::resource::{Origin, Resource, ResourceType, ResourceUpdate};

/// A resource of the snapshot, by type and name.
pub type ResourceKey = (ResourceType, Arc<str>);

/// How many recent versions of a resource are remembered with their serial.
/// A proxy still running an older one counts as not having applied anything
/// newer (it is that far behind).
const VERSIONS_KEPT: usize = 32;

/// What an object needs from one resource.
#[derive(Debug, Clone, PartialEq)]
struct Need {
    /// Hash of the object's parts in the resource: equal parts, equal need.
    parts: u64,
    /// The first snapshot serial whose version of the resource carries these parts.
    since: u64,
}

#[derive(Debug, Default)]
struct ResourceEntry {
    /// Recent versions, oldest first, with the serial that installed each.
    versions: VecDeque<(Arc<str>, u64)>,
    current: Option<Arc<Resource>>,
    /// The objects it carries, by the serial since which it carries their parts.
    waiting: BTreeMap<u64, BTreeSet<String>>,
}

impl ResourceEntry {
    fn serial_of(&self, version: &str) -> Option<u64> {
        self.versions
            .iter()
            .rev()
            .find(|(v, _)| &**v == version)
            .map(|(_, s)| *s)
    }
}

/// What an object needs, per resource that carries it.
#[derive(Debug, Default)]
struct ObjectEntry {
    /// The newest generation any of its parts was built from. (A part that
    /// does not depend on the object's spec, such as a cluster, may keep an
    /// older one.)
    generation: i64,
    needs: HashMap<ResourceKey, Need>,
}

/// One Gateway's index.
#[derive(Debug, Default)]
pub struct GatewayIndex {
    resources: HashMap<ResourceKey, ResourceEntry>,
    objects: HashMap<String, ObjectEntry>,
}

/// Where one object stands against one proxy's applied versions.
pub trait Applied {
    /// The version of `name` of type `kind` the proxy runs, if any.
    fn version(&self, kind: ResourceType, name: &str) -> Option<&str>;
}

impl GatewayIndex {
    /// Folds the updates that produced snapshot `serial` into the index and
    /// returns the objects whose parts changed (or that left a resource).
    pub fn apply(&mut self, serial: u64, updates: &[ResourceUpdate]) -> BTreeSet<String> {
        let mut changed = BTreeSet::new();
        for update in updates {
            match update {
                ResourceUpdate::Upsert(resource) => self.upsert(serial, resource, &mut changed),
                ResourceUpdate::Remove(kind, name) => self.remove(&(*kind, name.clone()), &mut changed),
            }
        }
        changed
    }

    fn upsert(&mut self, serial: u64, resource: &Arc<Resource>, changed: &mut BTreeSet<String>) {
        let key: ResourceKey = (resource.kind, resource.name.clone());
        let entry = self.resources.entry(key.clone()).or_default();
        let same_version = entry
            .current
            .as_ref()
            .is_some_and(|old| old.version == resource.version);
        // The version is the body's: an object can leave a resource (or join
        // it) whose body stays the same, as a Mapping leaves the cluster of a
        // Service that others still use. Only the same origins mean no change.
        if same_version
            && entry
                .current
                .as_ref()
                .is_some_and(|old| same_chunks(old, resource))
        {
            return;
        }
        if !same_version {
            entry.versions.push_back((resource.version.clone(), serial));
            while entry.versions.len() > VERSIONS_KEPT {
                entry.versions.pop_front();
            }
        }
        // A proxy that runs this version has what it carries since the
        // version was installed, whenever an object joined it.
        let installed = entry.versions.back().map_or(serial, |(_, s)| *s);
        // Only the chunks that are not shared with the previous version can
        // have changed anybody's parts: a change to one virtual host leaves
        // every other chunk the same allocation.
        let old = entry.current.replace(resource.clone());
        let touched = match old.as_deref() {
            // The same body: only who joined, left or moved to a newer
            // generation can have changed, not every object of a chunk that
            // was rebuilt (a cluster's one chunk holds every Mapping of its
            // Service).
            Some(old) if same_version => joined_left_or_newer(old, resource),
            old => touched_objects(old, resource),
        };
        let parts = parts_of(resource, &touched);
        for object in touched {
            let next = parts.get(&object);
            let held = self.objects.entry(object.clone()).or_default();
            let before = held.needs.get(&key).cloned();
            match next {
                None => {
                    if let Some(before) = before {
                        held.needs.remove(&key);
                        unwait(entry, before.since, &object);
                        changed.insert(object.clone());
                    }
                }
                Some((hash, generation)) => {
                    let same = before.as_ref().is_some_and(|b| b.parts == *hash);
                    let need = Need {
                        parts: *hash,
                        since: if same {
                            before.as_ref().map_or(installed, |b| b.since)
                        } else {
                            installed
                        },
                    };
                    if !same || held.generation < *generation {
                        changed.insert(object.clone());
                    }
                    held.generation = held.generation.max(*generation);
                    if let Some(before) = &before {
                        unwait(entry, before.since, &object);
                    }
                    entry
                        .waiting
                        .entry(need.since)
                        .or_default()
                        .insert(object.clone());
                    held.needs.insert(key.clone(), need);
                }
            }
            if held.needs.is_empty() {
                self.objects.remove(&object);
            }
        }
    }

    fn remove(&mut self, key: &ResourceKey, changed: &mut BTreeSet<String>) {
        let Some(entry) = self.resources.remove(key) else {
            return;
        };
        for object in entry.waiting.into_values().flatten() {
            if let Some(held) = self.objects.get_mut(&object) {
                held.needs.remove(key);
                if held.needs.is_empty() {
                    self.objects.remove(&object);
                }
            }
            changed.insert(object);
        }
    }

    /// Whether any resource carries the object.
    pub fn carries(&self, object_key: &str) -> bool {
        self.objects.contains_key(object_key)
    }

    /// Whether a proxy running `applied` has every part of `object` at its
    /// current generation. `None` when no resource carries it.
    pub fn applied_by(&self, object: &ObjectRef, applied: &dyn Applied) -> Option<bool> {
        let held = self.objects.get(&object.key())?;
        if held.generation < object.generation() {
            return Some(false);
        }
        Some(held.needs.iter().all(|((kind, name), need)| {
            applied
                .version(*kind, name)
                .and_then(|v| self.resources.get(&(*kind, name.clone()))?.serial_of(v))
                .is_some_and(|serial| serial >= need.since)
        }))
    }

    /// The objects whose answer may change when a proxy moves `name` from
    /// version `from` (none: it had nothing) to version `to`.
    pub fn affected_by_ack(
        &self,
        kind: ResourceType,
        name: &Arc<str>,
        from: Option<&str>,
        to: &str,
    ) -> Vec<String> {
        let Some(entry) = self.resources.get(&(kind, name.clone())) else {
            return Vec::new();
        };
        let from = from.and_then(|v| entry.serial_of(v));
        let Some(to) = entry.serial_of(to) else {
            return Vec::new();
        };
        let (lo, hi) = match from {
            Some(from) if from <= to => (from + 1, to),
            // Moving back, or from nothing: anything carried up to `to` and beyond may change.
            Some(_) | None => (0, u64::MAX),
        };
        if lo > hi {
            return Vec::new();
        }
        entry
            .waiting
            .range(lo..=hi)
            .flat_map(|(_, objects)| objects.iter().cloned())
            .collect()
    }

    /// Every object any resource carries.
    pub fn objects(&self) -> impl Iterator<Item = &String> {
        self.objects.keys()
    }
}

fn unwait(entry: &mut ResourceEntry, since: u64, object: &str) {
    if let Some(set) = entry.waiting.get_mut(&since) {
        set.remove(object);
        if set.is_empty() {
            entry.waiting.remove(&since);
        }
    }
}

/// Whether two resources carry the very same origin chunks.
fn same_chunks(old: &Resource, new: &Resource) -> bool {
    old.origins.len() == new.origins.len()
        && old
            .origins
            .iter()
            .zip(&new.origins)
            .all(|(a, b)| Arc::ptr_eq(a, b))
}

/// An origin's object as kind, namespace and name, borrowed.
type Who<'a> = (&'a str, &'a str, &'a str);

fn who(origin: &Origin) -> Who<'_> {
    let o = &origin.object;
    (o.kind(), o.namespace(), o.name())
}

fn chunk_ptrs(r: &Resource) -> HashSet<*const [Origin]> {
    r.origins.iter().map(Arc::as_ptr).collect()
}

/// The objects of the chunks of `r` that `other` (a set of chunk pointers)
/// lacks, with the newest generation they appear at.
fn objects_of_unshared_chunks<'a>(
    r: &'a Resource,
    other: &HashSet<*const [Origin]>,
) -> HashMap<Who<'a>, i64> {
    let mut objects = HashMap::new();
    for chunk in r.origins.iter().filter(|c| !other.contains(&Arc::as_ptr(c))) {
        for origin in chunk.iter() {
            let generation = objects.entry(who(origin)).or_insert(i64::MIN);
            *generation = (*generation).max(origin.object.generation());
        }
    }
    objects
}

/// Of two resources with the same body, the objects that joined or left it,
/// or appear at a newer generation: no other object's part can have changed.
/// Chunks both share are skipped, and no key is written but for these.
fn joined_left_or_newer(old: &Resource, new: &Resource) -> BTreeSet<String> {
    let before = objects_of_unshared_chunks(old, &chunk_ptrs(new));
    let after = objects_of_unshared_chunks(new, &chunk_ptrs(old));
    let left = before.keys().filter(|o| !after.contains_key(*o));
    let joined_or_newer = after
        .iter()
        .filter(|(o, generation)| before.get(*o).is_none_or(|was| was < *generation))
        .map(|(o, _)| o);
    left.chain(joined_or_newer)
        .map(|(kind, namespace, name)| format!("{kind}/{namespace}/{name}"))
        .collect()
}

/// Objects with a part in a chunk of `new` or `old` that the other lacks.
fn touched_objects(old: Option<&Resource>, new: &Resource) -> BTreeSet<String> {
    let old_ptrs = old.map(chunk_ptrs).unwrap_or_default();
    let new_ptrs = chunk_ptrs(new);
    let mut touched = BTreeSet::new();
    for chunk in &new.origins {
        if !old_ptrs.contains(&Arc::as_ptr(chunk)) {
            touched.extend(chunk.iter().map(|o| o.object.key()));
        }
    }
    if let Some(old) = old {
        for chunk in &old.origins {
            if !new_ptrs.contains(&Arc::as_ptr(chunk)) {
                touched.extend(chunk.iter().map(|o| o.object.key()));
            }
        }
    }
    touched
}

/// For each of `objects`: a hash of its parts in `resource`, and their generation.
fn parts_of(resource: &Resource, objects: &BTreeSet<String>) -> HashMap<String, (u64, i64)> {
    let mut out: HashMap<String, (u64, i64)> = HashMap::new();
    if objects.is_empty() {
        return out;
    }
    // One buffer for every origin's key: a resource can carry thousands.
    let mut key = String::new();
    for origin in resource.origins() {
        let (kind, namespace, name) = who(origin);
        key.clear();
        key.extend([kind, "/", namespace, "/", name]);
        if !objects.contains(key.as_str()) {
            continue;
        }
        let entry = out.entry(key.clone()).or_insert((0, origin.object.generation()));
        // Order-independent: an object's parts may come in any chunk order.
        entry.0 = entry
            .0
            .wrapping_add(legate_xds::resource::hash_bytes(origin.part.as_bytes()) ^ origin.hash);
        entry.1 = entry.1.max(origin.object.generation());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Proxy(HashMap<ResourceKey, Arc<str>>);

    impl Applied for Proxy {
        fn version(&self, kind: ResourceType, name: &str) -> Option<&str> {
            self.0.get(&(kind, Arc::from(name))).map(|v| &**v)
        }
    }

    fn origin(name: &str, generation: i64, hash: u64) -> Origin {
        Origin {
            object: ObjectRef::new("Mapping", "shop", name, generation),
            part: format!("route-{name}").into(),
            hash,
        }
    }

    fn route_config(chunks: &[Arc<[Origin]>], body: &[u8]) -> Arc<Resource> {
        Arc::new(Resource::with_origin_chunks(
            ResourceType::Route,
            "http",
            body.to_vec(),
            vec![],
            chunks.to_vec(),
        ))
    }

    fn acked(resource: &Resource) -> Proxy {
        Proxy(HashMap::from([(
            (resource.kind, resource.name.clone()),
            resource.version.clone(),
        )]))
    }

    #[test]
    fn a_change_to_one_object_leaves_the_others_programmed() {
        let a1: Arc<[Origin]> = vec![origin("a", 1, 1)].into();
        let b1: Arc<[Origin]> = vec![origin("b", 1, 7)].into();
        let v1 = route_config(&[a1.clone(), b1.clone()], b"v1");
        let mut index = GatewayIndex::default();
        let changed = index.apply(1, &[ResourceUpdate::Upsert(v1.clone())]);
        assert_eq!(
            changed,
            BTreeSet::from(["Mapping/shop/a".into(), "Mapping/shop/b".into()])
        );
        let on_v1 = acked(&v1);
        let a = ObjectRef::new("Mapping", "shop", "a", 1);
        let b = ObjectRef::new("Mapping", "shop", "b", 1);
        assert_eq!(index.applied_by(&a, &on_v1), Some(true));

        // A moves to generation 2 in its own chunk; B's chunk is shared.
        let a2: Arc<[Origin]> = vec![origin("a", 2, 2)].into();
        let v2 = route_config(&[a2, b1], b"v2");
        let changed = index.apply(2, &[ResourceUpdate::Upsert(v2.clone())]);
        assert_eq!(changed, BTreeSet::from(["Mapping/shop/a".into()]));
        let a = a.at_generation(2);
        assert_eq!(
            index.applied_by(&a, &on_v1),
            Some(false),
            "v1 lacks A's generation 2"
        );
        assert_eq!(index.applied_by(&b, &on_v1), Some(true), "v1 already carries B");
        assert_eq!(
            index.affected_by_ack(
                ResourceType::Route,
                &"http".into(),
                Some(&v1.version),
                &v2.version
            ),
            vec!["Mapping/shop/a".to_string()],
            "an ACK of v2 can only move A"
        );
        let on_v2 = acked(&v2);
        assert_eq!(index.applied_by(&a, &on_v2), Some(true));
        assert_eq!(index.applied_by(&b, &on_v2), Some(true));
    }

    #[test]
    fn a_rebuilt_chunk_with_the_same_parts_keeps_the_answer() {
        let v1 = route_config(&[vec![origin("a", 1, 1), origin("b", 1, 7)].into()], b"v1");
        let mut index = GatewayIndex::default();
        index.apply(1, &[ResourceUpdate::Upsert(v1.clone())]);
        // Same host: one chunk, rebuilt because A changed; B's part is the same.
        let v2 = route_config(&[vec![origin("a", 2, 2), origin("b", 1, 7)].into()], b"v2");
        let changed = index.apply(2, &[ResourceUpdate::Upsert(v2)]);
        assert_eq!(changed, BTreeSet::from(["Mapping/shop/a".into()]));
        let b = ObjectRef::new("Mapping", "shop", "b", 1);
        assert_eq!(index.applied_by(&b, &acked(&v1)), Some(true));
    }

    #[test]
    fn a_removed_resource_no_longer_carries_its_objects() {
        let v1 = route_config(&[vec![origin("a", 1, 1)].into()], b"v1");
        let mut index = GatewayIndex::default();
        index.apply(1, &[ResourceUpdate::Upsert(v1)]);
        assert!(index.carries("Mapping/shop/a"));
        let changed = index.apply(2, &[ResourceUpdate::Remove(ResourceType::Route, "http".into())]);
        assert_eq!(changed, BTreeSet::from(["Mapping/shop/a".into()]));
        assert!(!index.carries("Mapping/shop/a"));
        assert_eq!(
            index.applied_by(&ObjectRef::new("Mapping", "shop", "a", 1), &Proxy(HashMap::new())),
            None
        );
    }

    #[test]
    fn an_object_at_a_newer_generation_than_carried_is_not_applied() {
        let v1 = route_config(&[vec![origin("a", 1, 1)].into()], b"v1");
        let mut index = GatewayIndex::default();
        index.apply(1, &[ResourceUpdate::Upsert(v1.clone())]);
        let a2 = ObjectRef::new("Mapping", "shop", "a", 2);
        assert_eq!(index.applied_by(&a2, &acked(&v1)), Some(false));
    }

    #[test]
    fn an_object_that_leaves_a_resource_whose_body_is_unchanged_is_no_longer_carried() {
        // Two Mappings on one cluster: its body is the Service's, whoever uses it.
        let cluster = |chunks: &[Arc<[Origin]>]| {
            Arc::new(Resource::with_origin_chunks(
                ResourceType::Cluster,
                "shop/quote:80",
                b"the same cluster".to_vec(),
                vec![],
                chunks.to_vec(),
            ))
        };
        let both: Arc<[Origin]> = vec![origin("a", 1, 1), origin("b", 1, 1)].into();
        let mut index = GatewayIndex::default();
        index.apply(1, &[ResourceUpdate::Upsert(cluster(&[both]))]);
        assert!(index.carries("Mapping/shop/a"));
        // A is deleted: same body, same version, one origin less.
        let only_b: Arc<[Origin]> = vec![origin("b", 1, 1)].into();
        let changed = index.apply(2, &[ResourceUpdate::Upsert(cluster(&[only_b]))]);
        assert!(
            !index.carries("Mapping/shop/a"),
            "nothing carries A any more: its deletion must not wait for it"
        );
        assert!(changed.contains("Mapping/shop/a"));
        assert!(index.carries("Mapping/shop/b"));
        let b = ObjectRef::new("Mapping", "shop", "b", 1);
        let on_first = Proxy(HashMap::from([(
            (ResourceType::Cluster, Arc::from("shop/quote:80")),
            Arc::from(cluster(&[]).version.as_ref()),
        )]));
        assert_eq!(
            index.applied_by(&b, &on_first),
            Some(true),
            "B's part never changed: the version the proxy runs still serves it"
        );
        // C joins the same cluster: a proxy on that version already has it.
        let b_and_c: Arc<[Origin]> = vec![origin("b", 1, 1), origin("c", 1, 1)].into();
        index.apply(3, &[ResourceUpdate::Upsert(cluster(&[b_and_c]))]);
        let c = ObjectRef::new("Mapping", "shop", "c", 1);
        assert_eq!(index.applied_by(&c, &on_first), Some(true));
    }

    #[test]
    fn a_rebuilt_chunk_with_the_same_body_reports_only_who_joined_left_or_is_newer() {
        let cluster = |origins: Vec<Origin>| {
            Arc::new(Resource::with_origin_chunks(
                ResourceType::Cluster,
                "shop/quote:80",
                b"the same cluster".to_vec(),
                vec![],
                vec![origins.into()],
            ))
        };
        let many = |extra: Option<&str>, generation_of_m7: i64| {
            let mut origins: Vec<Origin> = (0..1000)
                .map(|i| origin(&format!("m{i}"), if i == 7 { generation_of_m7 } else { 1 }, 1))
                .collect();
            origins.extend(extra.map(|name| origin(name, 1, 1)));
            origins
        };
        let mut index = GatewayIndex::default();
        assert_eq!(
            index
                .apply(1, &[ResourceUpdate::Upsert(cluster(many(None, 1)))])
                .len(),
            1000
        );
        // m7's generation rose: the cluster's chunk is rebuilt, its body is not.
        let changed = index.apply(2, &[ResourceUpdate::Upsert(cluster(many(None, 2)))]);
        assert_eq!(changed, BTreeSet::from(["Mapping/shop/m7".to_string()]));
        let changed = index.apply(3, &[ResourceUpdate::Upsert(cluster(many(Some("new"), 2)))]);
        assert_eq!(changed, BTreeSet::from(["Mapping/shop/new".to_string()]));
        let changed = index.apply(4, &[ResourceUpdate::Upsert(cluster(many(None, 2)))]);
        assert_eq!(changed, BTreeSet::from(["Mapping/shop/new".to_string()]));
        assert!(!index.carries("Mapping/shop/new"));
        assert!(index.carries("Mapping/shop/m7"));
    }
}
