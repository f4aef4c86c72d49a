//! What the ADS server tells the rest of Legate: which proxy applied which
//! version, and which objects a rejection is about.

use std::fmt;
use std::sync::Arc;

use crate::ir::ObjectRef;
use crate::resource::ResourceType;

/// One Envoy: its node id, and the Gateway (`node.cluster`) it serves.
/// Ordered by Gateway first, so that one Gateway's proxies are a range.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ProxyId {
    pub gateway: String,
    pub node: String,
}

impl fmt::Display for ProxyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (Gateway {})", self.node, self.gateway)
    }
}

#[derive(Clone, PartialEq, Debug)]
pub enum XdsEvent {
    Connected(ProxyId),
    Disconnected(ProxyId),
    Acked(Ack),
    Rejected(Rejection),
}

impl XdsEvent {
    pub fn proxy(&self) -> &ProxyId {
        match self {
            XdsEvent::Connected(p) | XdsEvent::Disconnected(p) => p,
            XdsEvent::Acked(a) => &a.proxy,
            XdsEvent::Rejected(r) => &r.proxy,
        }
    }
}

/// A proxy applied a response.
#[derive(Clone, PartialEq, Debug)]
pub struct Ack {
    pub proxy: ProxyId,
    pub kind: ResourceType,
    /// The response's version (`version_info`, or `system_version_info` in delta).
    pub version: String,
    /// The resources the response carried, with their versions.
    pub resources: Vec<(Arc<str>, Arc<str>)>,
    pub removed: Vec<Arc<str>>,
    /// The snapshot serial the response was built from: with the time that
    /// serial was made, it gives the time from change to ACK.
    pub serial: u64,
    /// The response listed every resource of its type the proxy holds
    /// (state-of-the-world LDS and CDS): anything not in it is gone.
    pub complete: bool,
    /// The objects whose configuration this response added or changed: they
    /// are now programmed on this proxy (at the generation shown).
    pub programmed: Vec<ObjectRef>,
}

/// A proxy refused a response and keeps its previous configuration.
#[derive(Clone, PartialEq, Debug)]
pub struct Rejection {
    pub proxy: ProxyId,
    pub kind: ResourceType,
    pub version: String,
    /// Envoy's `error_detail` message, word for word.
    pub message: String,
    pub resources: Vec<Arc<str>>,
    /// The objects the rejection is most likely about: those named in the
    /// message, else those whose part of the refused resources changed.
    pub objects: Vec<ObjectRef>,
}
