//! Names derived from object identity: Gateway keys, object references and
//! route ids. Never from a position in a list or a type's `Debug` output, so
//! they survive edits of other objects, new fields and upgrades.

use kube::{Resource, ResourceExt};
use legate_crds::Gateway;
use legate_xds::hash::hash_bytes;
use legate_xds::ir::{self, ObjectRef};

/// `namespace/name` of a Gateway: the key of its snapshot and its Envoys' `node.cluster`.
pub fn gateway_key(gateway: &Gateway) -> String {
    format!(
        "{}/{}",
        gateway.namespace().unwrap_or_default(),
        gateway.name_any()
    )
}

/// The identity of a Legate object as the IR carries it.
pub fn object_ref<K: Resource<DynamicType = ()>>(object: &K) -> ObjectRef {
    ObjectRef::new(
        &K::kind(&()),
        &object.meta().namespace.clone().unwrap_or_default(),
        &object.meta().name.clone().unwrap_or_default(),
        object.meta().generation.unwrap_or(0),
    )
}

/// The id of `origin`'s route on `listener`: the object's identity and the
/// listener, never a position.
pub fn route_id(origin: &ObjectRef, listener: &str) -> ir::RouteId {
    // RouteId has no free-form constructor; a stable hash of the listener name
    // keeps ids distinct per listener and unchanged across edits and releases.
    ir::RouteId::rule(origin, short_hash(listener))
}

/// 32 bits of the stable hash of `text`: short enough for a readable name.
pub(crate) fn short_hash(text: &str) -> u32 {
    (hash_bytes(text.as_bytes()) & 0xffff_ffff) as u32
}

/// The tenant a route of an object of `namespace` serves for on `gateway`
/// (`ir::Route::tenant`): `None` for the Gateway's own namespace.
pub fn tenant_of(gateway: &Gateway, namespace: &str) -> Option<String> {
    (gateway.meta().namespace.as_deref() != Some(namespace)).then(|| namespace.to_string())
}
