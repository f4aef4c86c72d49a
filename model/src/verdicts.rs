//! What the model concluded about each object: the verdicts the controllers
//! turn into conditions.

use std::collections::BTreeMap;
use std::collections::btree_map;

use legate_xds::ir::ObjectRef;

/// Why a condition is False: a reason from `legate_crds::conditions::reasons`
/// and a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            reason,
            message: message.into(),
        }
    }
}

/// What the model concluded about one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Which object, at which generation.
    pub object: ObjectRef,
    /// Valid and attached to at least one Gateway, or why not.
    pub accepted: Result<(), Problem>,
    /// Every Service, Secret and TLSContext it refers to exists, or which does not.
    pub resolved_refs: Result<(), Problem>,
    /// The Gateways (`namespace/name`) whose configuration carries this object.
    pub gateways: Vec<String>,
    /// What an Accepted object does not do that its spec might suggest (a
    /// tenant's catch-all serving only hosts nobody else owns), for its
    /// `Accepted` message.
    pub notes: Vec<String>,
}

impl Verdict {
    pub(crate) fn new(object: ObjectRef) -> Verdict {
        Verdict {
            object,
            accepted: Ok(()),
            resolved_refs: Ok(()),
            gateways: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds `note` to what the `Accepted` message says (once).
    pub(crate) fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// Records that the configuration of `gateway` carries this object.
    pub(crate) fn carried_by(&mut self, gateway: &str) {
        if !self.gateways.iter().any(|g| g == gateway) {
            self.gateways.push(gateway.to_string());
        }
    }
}

/// Every object's verdict, by object key (`Kind/namespace/name`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdicts(BTreeMap<String, Verdict>);

impl Verdicts {
    /// The verdict on `object`; an object nothing was said about yet is
    /// Accepted, with its references resolved, on no Gateway.
    pub(crate) fn entry(&mut self, object: &ObjectRef) -> &mut Verdict {
        self.0
            .entry(object.key())
            .or_insert_with(|| Verdict::new(object.clone()))
    }

    /// `object` is not Accepted, for `problem`.
    pub(crate) fn reject(&mut self, object: &ObjectRef, problem: Problem) {
        self.entry(object).accepted = Err(problem);
    }

    /// A reference of `object` does not resolve, for `problem`.
    pub(crate) fn unresolved(&mut self, object: &ObjectRef, problem: Problem) {
        self.entry(object).resolved_refs = Err(problem);
    }

    /// Sets the verdict on the object with key `key` (`verdict.object`'s),
    /// whatever was said before.
    pub(crate) fn insert(&mut self, key: String, verdict: Verdict) {
        debug_assert_eq!(key, verdict.object.key());
        self.0.insert(key, verdict);
    }

    /// Keeps only the verdicts whose key `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|key, _| keep(key));
    }

    /// Adds every verdict of `other`, over what was said before.
    pub(crate) fn append(&mut self, other: Verdicts) {
        self.0.extend(other.0);
    }

    /// (object key, verdict) pairs, in key order.
    pub(crate) fn into_entries(self) -> Vec<(String, Verdict)> {
        self.0.into_iter().collect()
    }

    /// Forgets the verdict on the object with key `key`.
    pub(crate) fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }

    /// The verdict on the object with key `key` (`Kind/namespace/name`).
    pub fn get(&self, key: &str) -> Option<&Verdict> {
        self.0.get(key)
    }

    /// Object keys, in order.
    pub fn keys(&self) -> btree_map::Keys<'_, String, Verdict> {
        self.0.keys()
    }

    /// Verdicts, in the order of their object keys.
    pub fn values(&self) -> btree_map::Values<'_, String, Verdict> {
        self.0.values()
    }

    /// (object key, verdict) pairs, in key order.
    pub fn iter(&self) -> btree_map::Iter<'_, String, Verdict> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Verdicts {
    type Item = (&'a String, &'a Verdict);
    type IntoIter = btree_map::Iter<'a, String, Verdict>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use legate_crds::conditions::reasons;

    use super::*;

    #[test]
    fn an_object_is_accepted_until_something_is_said_about_it() {
        let object = ObjectRef::new("Mapping", "shop", "quote", 2);
        let mut verdicts = Verdicts::default();
        verdicts.entry(&object).carried_by("infra/edge");
        verdicts.entry(&object).carried_by("infra/edge");
        let verdict = verdicts.get("Mapping/shop/quote").expect("a verdict");
        assert_eq!(verdict.accepted, Ok(()));
        assert_eq!(verdict.gateways, ["infra/edge"], "each Gateway once");

        verdicts.reject(&object, Problem::new(reasons::INVALID, "bad"));
        verdicts.unresolved(&object, Problem::new(reasons::BACKEND_NOT_FOUND, "gone"));
        let verdict = verdicts.get("Mapping/shop/quote").expect("a verdict");
        assert_eq!(
            verdict.accepted.as_ref().map_err(|p| p.reason),
            Err(reasons::INVALID)
        );
        assert_eq!(
            verdict.resolved_refs.as_ref().map_err(|p| p.reason),
            Err(reasons::BACKEND_NOT_FOUND)
        );
        assert_eq!(verdicts.len(), 1);
    }
}
