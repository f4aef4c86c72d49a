//! Which objects a response is about: the ones it newly programs (on ACK),
//! and the ones a rejection is most likely about (on NACK).
//!
//! Resources carry the origins of their parts with a hash per part; comparing
//! the parts of the refused (or applied) version with those of the version the
//! proxy had tells which objects changed.

use std::collections::HashSet;
use std::sync::Arc;

use crate::ir::ObjectRef;
use crate::resource::{Origin, Resource};

/// The parts of `resources` that differ from what was applied, by object.
/// Origin chunks shared with the applied version (unchanged virtual hosts)
/// are skipped without looking inside.
fn changed_parts<'a, 'b>(
    resources: &[&'a Arc<Resource>],
    applied: impl Fn(&str) -> Option<&'b Arc<Resource>>,
) -> Vec<&'a Origin> {
    let mut out = Vec::new();
    for r in resources {
        let old = applied(&r.name);
        let old_chunks: HashSet<*const Origin> = old
            .map(|o| o.origins.iter().map(|c| c.as_ptr()).collect())
            .unwrap_or_default();
        let new_chunks: HashSet<*const Origin> = r.origins.iter().map(|c| c.as_ptr()).collect();
        let before: HashSet<(&str, u64)> = old
            .map(|o| {
                o.origins
                    .iter()
                    .filter(|c| !new_chunks.contains(&c.as_ptr()))
                    .flat_map(|c| c.iter())
                    .map(|o| (&*o.part, o.hash))
                    .collect()
            })
            .unwrap_or_default();
        out.extend(
            r.origins
                .iter()
                .filter(|c| !old_chunks.contains(&c.as_ptr()))
                .flat_map(|c| c.iter())
                .filter(|o| !before.contains(&(&*o.part, o.hash))),
        );
    }
    out
}

pub fn changed_objects<'b>(
    upserts: &[Arc<Resource>],
    applied: impl Fn(&str) -> Option<&'b Arc<Resource>>,
) -> Vec<ObjectRef> {
    let refs: Vec<&Arc<Resource>> = upserts.iter().collect();
    dedup_objects(
        changed_parts(&refs, applied)
            .into_iter()
            .map(|o| o.object.clone()),
    )
}

/// The objects a rejection is about: the ones whose part Envoy names in its
/// message (route and cluster names are derived from object identity) and
/// that changed in the refused response, else those named, else the ones
/// whose part changed.
pub fn blame<'b>(
    message: &str,
    refused: &[&Arc<Resource>],
    applied: impl Fn(&str) -> Option<&'b Arc<Resource>>,
) -> Vec<ObjectRef> {
    // Only identity-derived names (`Kind/namespace/name`, `namespace/name:port`)
    // are distinctive enough to search for; a listener called `http` is not.
    let named = refused
        .iter()
        .flat_map(|r| r.origins())
        .filter(|o| o.part.contains('/') && message.contains(&*o.part))
        .map(|o| o.object.clone());
    let named = dedup_objects(named);
    let changed = dedup_objects(
        changed_parts(refused, applied)
            .into_iter()
            .map(|o| o.object.clone()),
    );
    // Envoy may name both sides of a clash (two filter chains with the same
    // match): the one that changed is the newcomer; the other was serving.
    let newly_named: Vec<ObjectRef> = named.iter().filter(|o| changed.contains(o)).cloned().collect();
    if !newly_named.is_empty() {
        return newly_named;
    }
    if !named.is_empty() {
        return named;
    }
    if !changed.is_empty() {
        return changed;
    }
    // Nothing to narrow it down to: everyone who contributed.
    dedup_objects(refused.iter().flat_map(|r| r.origins()).map(|o| o.object.clone()))
}

fn dedup_objects(objects: impl Iterator<Item = ObjectRef>) -> Vec<ObjectRef> {
    let mut v: Vec<ObjectRef> = objects.collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::ResourceType;

    fn origin(name: &str, hash: u64) -> Origin {
        Origin {
            object: ObjectRef::new("TLSContext", name, name, 1),
            part: Arc::from(format!("TLSContext/{name}/{name}")),
            hash,
        }
    }

    fn listener(origins: Vec<Origin>) -> Arc<Resource> {
        Arc::new(Resource::new(
            ResourceType::Listener,
            "https",
            vec![1],
            vec![],
            origins,
        ))
    }

    #[test]
    fn a_clash_envoy_names_on_both_sides_is_blamed_on_the_newcomer() {
        let applied = listener(vec![origin("t2", 7)]);
        let refused = listener(vec![origin("t2", 7), origin("t3", 9)]);
        let message = "filter chain 'TLSContext/t3/t3' has the same matching rules as 'TLSContext/t2/t2'";
        let blamed = blame(message, &[&refused], |_| Some(&applied));
        assert_eq!(blamed, [ObjectRef::new("TLSContext", "t3", "t3", 1)]);
        // Named but unchanged alone: still named.
        let only_old = "bad 'TLSContext/t2/t2'";
        let blamed = blame(only_old, &[&refused], |_| Some(&applied));
        assert_eq!(blamed, [ObjectRef::new("TLSContext", "t2", "t2", 1)]);
    }
}
