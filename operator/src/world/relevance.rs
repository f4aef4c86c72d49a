//! Which watch events can change the model. The model reads a Legate
//! object's spec (tracked by `metadata.generation`), its labels, whether it
//! is being deleted, and its identity; never its status. So a status write,
//! which the operator itself makes for every object, must not rebuild the
//! model (that would make every status write cost a rebuild of the world).

use std::collections::{BTreeMap, HashMap};

use kube::Resource;
use kube::runtime::watcher;

/// What of one object the model depends on, besides its kind and name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    uid: Option<String>,
    generation: Option<i64>,
    deleting: bool,
    labels: Option<BTreeMap<String, String>>,
}

impl Fingerprint {
    fn of<K: Resource>(object: &K) -> Fingerprint {
        let meta = object.meta();
        Fingerprint {
            uid: meta.uid.clone(),
            generation: meta.generation,
            deleting: meta.deletion_timestamp.is_some(),
            labels: meta.labels.clone(),
        }
    }
}

/// Decides, per watch event of one kind, whether the model must see it.
#[derive(Debug)]
pub struct Relevance {
    /// `None`: every update counts (kinds without a generation: Services,
    /// EndpointSlices, Namespaces, Secrets).
    seen: Option<HashMap<(String, String), Fingerprint>>,
    /// Objects of a relist in progress; they replace `seen` when it is done.
    relisting: HashMap<(String, String), Fingerprint>,
}

impl Relevance {
    /// For kinds with a spec and a status: only spec (generation), labels,
    /// deletion and identity changes count.
    pub fn spec_and_metadata() -> Relevance {
        Relevance {
            seen: Some(HashMap::new()),
            relisting: HashMap::new(),
        }
    }

    /// Every update counts.
    pub fn every_update() -> Relevance {
        Relevance {
            seen: None,
            relisting: HashMap::new(),
        }
    }

    /// Records `event`; true when the model must be rebuilt for it.
    pub fn observe<K: Resource>(&mut self, event: &watcher::Event<K>) -> bool {
        let Some(seen) = self.seen.as_mut() else {
            // A relist changes the world once it is complete, not per object.
            return !matches!(event, watcher::Event::Init | watcher::Event::InitApply(_));
        };
        match event {
            watcher::Event::Apply(object) => {
                let fingerprint = Fingerprint::of(object);
                seen.insert(key(object), fingerprint.clone()) != Some(fingerprint)
            }
            watcher::Event::Delete(object) => {
                seen.remove(&key(object));
                true
            }
            watcher::Event::Init => {
                self.relisting.clear();
                false
            }
            watcher::Event::InitApply(object) => {
                self.relisting.insert(key(object), Fingerprint::of(object));
                false
            }
            watcher::Event::InitDone => {
                let listed = std::mem::take(&mut self.relisting);
                // A relist that found exactly what was known changes nothing,
                // except the first one, which is the world's first state.
                let first = seen.is_empty();
                let same = *seen == listed;
                *seen = listed;
                first || !same
            }
        }
    }
}

fn key<K: Resource>(object: &K) -> (String, String) {
    let meta = object.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}
