//! Oldest first: whoever claimed something first keeps it (a match, a port
//! and server name, a Gateway's one AuthService or RateLimitService).

use std::cmp::Ordering;

use kube::{Resource, ResourceExt};

/// Creation time, then namespace and name: the order never depends on the
/// order the API server listed the objects in.
pub fn age_order<K: Resource>(a: &K, b: &K) -> Ordering {
    let created = |o: &K| o.meta().creation_timestamp.clone().map(|t| t.0);
    created(a)
        .cmp(&created(b))
        .then_with(|| a.namespace().cmp(&b.namespace()))
        .then_with(|| a.name_any().cmp(&b.name_any()))
}
