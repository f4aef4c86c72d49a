//! Envoy resources as the cache and the server see them: already encoded,
//! versioned by a hash of their bytes, and annotated with where they came from.

use std::fmt;
use std::sync::Arc;

use crate::ir::ObjectRef;

/// Resource bytes, shared between the cache, every snapshot and every stream.
pub type Body = Arc<[u8]>;

/// The xDS resource types Legate serves, in make-before-break order: a type is
/// pushed only after the types before it that it refers to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum ResourceType {
    Secret,
    Cluster,
    Endpoints,
    Listener,
    Route,
    /// Virtual hosts of a route config over VHDS (delta only), when the
    /// Gateway's translator uses it.
    VirtualHost,
}

impl ResourceType {
    pub const COUNT: usize = 6;

    pub const ALL: [ResourceType; ResourceType::COUNT] = [
        ResourceType::Secret,
        ResourceType::Cluster,
        ResourceType::Endpoints,
        ResourceType::Listener,
        ResourceType::Route,
        ResourceType::VirtualHost,
    ];

    pub fn type_url(self) -> &'static str {
        match self {
            ResourceType::Secret => "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
            ResourceType::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            ResourceType::Endpoints => "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
            ResourceType::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            ResourceType::Route => "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            ResourceType::VirtualHost => "type.googleapis.com/envoy.config.route.v3.VirtualHost",
        }
    }

    pub fn from_type_url(url: &str) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|t| t.type_url() == url)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// LDS and CDS are the types whose empty subscription means "everything"
    /// (legacy wildcard) in the xDS protocol.
    pub fn is_wildcard_by_default(self) -> bool {
        matches!(self, ResourceType::Cluster | ResourceType::Listener)
    }

    /// VHDS subscribes to namespaces (a route config's name) and gets every
    /// resource named `<namespace>/<...>`.
    pub fn is_subscribed_by_namespace(self) -> bool {
        self == ResourceType::VirtualHost
    }

    pub fn short(self) -> &'static str {
        match self {
            ResourceType::Secret => "SDS",
            ResourceType::Cluster => "CDS",
            ResourceType::Endpoints => "EDS",
            ResourceType::Listener => "LDS",
            ResourceType::Route => "RDS",
            ResourceType::VirtualHost => "VHDS",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// A part of a resource that one object contributed, with a hash of that part,
/// so that a NACK can be blamed on the objects whose part changed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Origin {
    pub object: ObjectRef,
    /// The Envoy-side name of the part (a route name, a cluster name...), which
    /// Envoy may quote in an error message.
    pub part: Arc<str>,
    pub hash: u64,
}

/// One encoded Envoy resource.
#[derive(Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: ResourceType,
    pub name: Arc<str>,
    /// A hash of `body`: equal bytes, equal version, across processes too.
    pub version: Arc<str>,
    /// The protobuf encoding of the resource (the value of its `Any`).
    pub body: Body,
    /// Resources this one needs to work (a route config's clusters, a
    /// cluster's endpoints): pushed and ACKed first, removed only after.
    pub references: Vec<(ResourceType, Arc<str>)>,
    /// Who contributed which part, in chunks: a route config has one chunk
    /// per virtual host, so that an unchanged virtual host shares its chunk
    /// with the previous version (and comparing versions skips it).
    pub origins: Vec<Arc<[Origin]>>,
    /// A route config whose virtual hosts are VirtualHost resources
    /// (`<name>/<host>`) sent over VHDS. Envoy takes it only over delta ADS:
    /// to a proxy on state of the world (or one that did not ask for VHDS)
    /// the route config goes assembled whole instead
    /// ([`crate::cache::Snapshot::whole_route_configs`]).
    pub vhds: bool,
}

impl Resource {
    pub fn new(
        kind: ResourceType,
        name: &str,
        body: Vec<u8>,
        references: Vec<(ResourceType, Arc<str>)>,
        origins: Vec<Origin>,
    ) -> Resource {
        Resource::with_origin_chunks(kind, name, body, references, vec![origins.into()])
    }

    pub fn with_origin_chunks(
        kind: ResourceType,
        name: &str,
        body: Vec<u8>,
        mut references: Vec<(ResourceType, Arc<str>)>,
        origins: Vec<Arc<[Origin]>>,
    ) -> Resource {
        let version = version_of(&body);
        // Sorted, so that two versions' references compare in one pass.
        references.sort();
        references.dedup();
        Resource {
            kind,
            name: name.into(),
            version: version.into(),
            body: body.into(),
            references,
            origins,
            vhds: false,
        }
    }

    /// Marks a route config as one whose virtual hosts go over VHDS.
    pub fn over_vhds(mut self) -> Resource {
        self.vhds = true;
        self
    }

    /// Every origin, chunk after chunk (an object may appear more than once).
    pub fn origins(&self) -> impl Iterator<Item = &Origin> {
        self.origins.iter().flat_map(|chunk| chunk.iter())
    }

    /// The resource as the `Any` that goes on the wire.
    pub fn to_any(&self) -> envoy_types::pb::google::protobuf::Any {
        envoy_types::pb::google::protobuf::Any {
            type_url: self.kind.type_url().to_owned(),
            value: self.body.to_vec(),
        }
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resource")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("bytes", &self.body.len())
            .field("references", &self.references)
            .field("vhds", &self.vhds)
            .finish_non_exhaustive()
    }
}

/// A change to a Gateway's resources, as translation produces it.
#[derive(Clone, Debug)]
pub enum ResourceUpdate {
    Upsert(Arc<Resource>),
    Remove(ResourceType, Arc<str>),
}

impl ResourceUpdate {
    pub fn kind(&self) -> ResourceType {
        match self {
            ResourceUpdate::Upsert(r) => r.kind,
            ResourceUpdate::Remove(kind, _) => *kind,
        }
    }
}

pub use crate::hash::hash_bytes;

/// The version string of a resource body.
pub fn version_of(body: &[u8]) -> String {
    format!("{:016x}", hash_bytes(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_urls_round_trip() {
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::from_type_url(t.type_url()), Some(t));
        }
        assert_eq!(ResourceType::from_type_url("type.googleapis.com/nope"), None);
    }

    #[test]
    fn versions_are_content_hashes() {
        let a = Resource::new(ResourceType::Cluster, "a", vec![1, 2, 3], vec![], vec![]);
        let b = Resource::new(ResourceType::Cluster, "b", vec![1, 2, 3], vec![], vec![]);
        let c = Resource::new(ResourceType::Cluster, "a", vec![1, 2, 4], vec![], vec![]);
        assert_eq!(a.version, b.version);
        assert_ne!(a.version, c.version);
        // Pinned: a change of hash function would resend everything after an upgrade.
        assert_eq!(&*version_of(b""), "2d06800538d394c2");
    }
}
