//! Which objects a Gateway's page lists, and their conditions as the
//! operator wrote them (read from the watch stores, which see every status
//! write, so any replica shows what `kubectl get` would).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use legate_crds::{AuthService, GatewayRef, Mapping, ObjectStatus, RateLimitService, TCPMapping, TLSContext};

use crate::world::Stores;

/// One object and the conditions its status has now.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRow {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The spec's generation.
    pub generation: i64,
    /// The generation the conditions describe; behind `generation` while
    /// the operator has not written the newest one yet.
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
    /// The latest model carries it on this page's Gateway; false for an
    /// object that names the Gateway (or none) but is attached nowhere.
    pub attached: bool,
}

impl ObjectRow {
    /// `Kind/namespace/name`, as the IR's [`legate_xds::ir::ObjectRef::key`].
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// A kind that attaches to Gateways and has the common status.
trait Attaching: Resource<DynamicType = ()> + Clone + Send + Sync + 'static {
    const KIND: &'static str;
    fn gateway_refs(&self) -> &[GatewayRef];
    fn object_status(&self) -> Option<&ObjectStatus>;
}

macro_rules! attaching {
    ($kind:ty, $name:literal) => {
        impl Attaching for $kind {
            const KIND: &'static str = $name;
            fn gateway_refs(&self) -> &[GatewayRef] {
                &self.spec.gateways
            }
            fn object_status(&self) -> Option<&ObjectStatus> {
                self.status.as_ref()
            }
        }
    };
}
attaching!(Mapping, "Mapping");
attaching!(TCPMapping, "TCPMapping");
attaching!(TLSContext, "TLSContext");
attaching!(AuthService, "AuthService");
attaching!(RateLimitService, "RateLimitService");

/// The objects of Gateway `gateway` (`namespace/name`): those the latest
/// model attached to it, and those attached nowhere that name it or name no
/// Gateway (their conditions say why they are not attached). `carried_by`
/// gives the Gateways the model attached an object (by key) to.
///
/// It reads every store once: the page is rendered on request, rarely, and
/// nothing on the engine's path waits for it.
pub fn objects_of(
    stores: &Stores,
    gateway: &str,
    carried_by: &dyn Fn(&str) -> Vec<String>,
) -> Vec<ObjectRow> {
    let mut rows = Vec::new();
    collect(&stores.mappings, gateway, carried_by, &mut rows);
    collect(&stores.tcp_mappings, gateway, carried_by, &mut rows);
    collect(&stores.tls_contexts, gateway, carried_by, &mut rows);
    collect(&stores.auth_services, gateway, carried_by, &mut rows);
    collect(&stores.rate_limit_services, gateway, carried_by, &mut rows);
    rows
}

fn collect<K: Attaching>(
    store: &Store<K>,
    gateway: &str,
    carried_by: &dyn Fn(&str) -> Vec<String>,
    rows: &mut Vec<ObjectRow>,
) {
    let mut found: Vec<ObjectRow> = store
        .state()
        .iter()
        .filter_map(|object| {
            let namespace = object.namespace().unwrap_or_default();
            let name = object.name_any();
            let carriers = carried_by(&format!("{}/{namespace}/{name}", K::KIND));
            let attached = carriers.iter().any(|g| g == gateway);
            let listed = attached
                || (carriers.is_empty() && names_or_leaves_open(object.gateway_refs(), &namespace, gateway));
            listed.then(|| {
                let status = object.object_status();
                ObjectRow {
                    kind: K::KIND,
                    namespace,
                    name,
                    generation: object.meta().generation.unwrap_or(0),
                    observed_generation: status.and_then(|s| s.observed_generation),
                    conditions: status.map(|s| s.conditions.clone()).unwrap_or_default(),
                    attached,
                }
            })
        })
        .collect();
    found.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    rows.extend(found);
}

/// Whether an object of `namespace` whose `spec.gateways` is `refs` means
/// Gateway `gateway`: it names it, or it names none (every Gateway).
fn names_or_leaves_open(refs: &[GatewayRef], namespace: &str, gateway: &str) -> bool {
    refs.is_empty()
        || refs.iter().any(|r| {
            let ns = r.namespace.as_deref().unwrap_or(namespace);
            gateway.split_once('/') == Some((ns, r.name.as_str()))
        })
}

/// The Gateway object `gateway` (`namespace/name`) and its own conditions.
pub fn gateway_row(stores: &Stores, gateway: &str) -> Option<ObjectRow> {
    let (namespace, name) = gateway.split_once('/')?;
    let object = stores
        .gateways
        .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))?;
    let status = object.status.as_ref();
    Some(ObjectRow {
        kind: "Gateway",
        namespace: namespace.to_string(),
        name: name.to_string(),
        generation: object.meta().generation.unwrap_or(0),
        observed_generation: status.and_then(|s| s.observed_generation),
        conditions: status.map(|s| s.conditions.clone()).unwrap_or_default(),
        attached: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(name: &str, namespace: Option<&str>) -> GatewayRef {
        GatewayRef {
            name: name.into(),
            namespace: namespace.map(str::to_string),
        }
    }

    #[test]
    fn an_unattached_object_is_listed_where_it_points_or_everywhere_when_it_points_nowhere() {
        assert!(names_or_leaves_open(&[], "shop", "infra/edge"));
        assert!(names_or_leaves_open(&[to("edge", None)], "shop", "shop/edge"));
        assert!(!names_or_leaves_open(&[to("edge", None)], "shop", "infra/edge"));
        assert!(names_or_leaves_open(
            &[to("other", None), to("edge", Some("infra"))],
            "shop",
            "infra/edge"
        ));
    }
}
