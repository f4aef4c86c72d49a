//! Object identity: which user object produced an IR item.
//!
//! Every IR item carries the identity of the object that produced it, so that an
//! Envoy NACK or a conflict can be traced back to a `kubectl describe`-able object.

use std::fmt;
use std::sync::Arc;

/// Kind, namespace, name and generation of the object that produced an IR item.
///
/// Cheap to clone (one `Arc`), because every route, cluster and resource origin
/// holds one and the cache copies them around.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef(Arc<ObjectRefInner>);

#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ObjectRefInner {
    kind: String,
    namespace: String,
    name: String,
    generation: i64,
}

impl ObjectRef {
    pub fn new(kind: &str, namespace: &str, name: &str, generation: i64) -> ObjectRef {
        ObjectRef(Arc::new(ObjectRefInner {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            generation,
        }))
    }

    pub fn kind(&self) -> &str {
        &self.0.kind
    }

    pub fn namespace(&self) -> &str {
        &self.0.namespace
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn generation(&self) -> i64 {
        self.0.generation
    }

    /// `Kind/namespace/name`: the identity without the generation. Envoy resource
    /// names are derived from it, so they survive edits of the object.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.0.kind, self.0.namespace, self.0.name)
    }

    /// The same object at another generation.
    pub fn at_generation(&self, generation: i64) -> ObjectRef {
        ObjectRef::new(self.kind(), self.namespace(), self.name(), generation)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{} (generation {})",
            self.0.kind, self.0.namespace, self.0.name, self.0.generation
        )
    }
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.key(), self.0.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_leaves_out_the_generation() {
        let a = ObjectRef::new("Mapping", "shop", "cart", 3);
        assert_eq!(a.key(), "Mapping/shop/cart");
        assert_eq!(a.at_generation(4).key(), a.key());
        assert_ne!(a.at_generation(4), a);
        assert_eq!(a.to_string(), "Mapping shop/cart (generation 3)");
    }
}
