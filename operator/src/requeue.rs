//! Targeted requeues: the engine and the ACK tracker name the objects whose
//! status may have changed, and each kind's controller reconciles only
//! those. (Reconciling every object on every change made N changes cost N x N
//! reconciles.)

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::Stream;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// The kinds that have a controller: every Legate kind.
const KINDS: [&str; 6] = legate_model::snapshot::LEGATE_KINDS;

type Sender = mpsc::UnboundedSender<(String, String)>;
type Receiver = mpsc::UnboundedReceiver<(String, String)>;

/// One queue per kind, of `(namespace, name)`.
#[derive(Debug)]
pub struct Requeues {
    senders: BTreeMap<&'static str, Sender>,
    receivers: Mutex<BTreeMap<&'static str, Receiver>>,
}

impl Default for Requeues {
    fn default() -> Requeues {
        let mut senders = BTreeMap::new();
        let mut receivers = BTreeMap::new();
        for kind in KINDS {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.insert(kind, tx);
            receivers.insert(kind, rx);
        }
        Requeues {
            senders,
            receivers: Mutex::new(receivers),
        }
    }
}

impl Requeues {
    /// Asks for a reconcile of the object with key `Kind/namespace/name`.
    /// Keys of kinds without a controller (Services...) are ignored.
    pub fn object(&self, key: &str) {
        let mut parts = key.splitn(3, '/');
        let (Some(kind), Some(namespace), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        if let Some(tx) = self.senders.get(kind) {
            // Fails only once the controller is gone (shutting down).
            let _ = tx.send((namespace.to_string(), name.to_string()));
        }
    }

    /// Asks for a reconcile of the Gateway with key `namespace/name`.
    pub fn gateway(&self, key: &str) {
        self.object(&format!("Gateway/{key}"));
    }

    /// The requeues of kind `K`, for its controller; `None` when taken already.
    pub fn take<K>(&self) -> Option<impl Stream<Item = ObjectRef<K>> + Send + 'static>
    where
        K: kube::Resource<DynamicType = ()> + 'static,
    {
        use futures::StreamExt;
        let kind = K::kind(&());
        let rx = self
            .receivers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(kind.as_ref())?;
        Some(
            UnboundedReceiverStream::new(rx)
                .map(|(namespace, name)| ObjectRef::new(&name).within(&namespace)),
        )
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use legate_crds::{Gateway, Mapping};

    use super::*;

    #[tokio::test]
    async fn each_kind_gets_its_own_objects() {
        let requeues = Requeues::default();
        let mut mappings = requeues.take::<Mapping>().expect("not taken yet");
        let mut gateways = requeues.take::<Gateway>().expect("not taken yet");
        assert!(requeues.take::<Mapping>().is_none(), "one controller per kind");
        requeues.object("Service/shop/quote");
        requeues.object("Mapping/shop/quote");
        requeues.gateway("infra/edge");
        let m = mappings.next().await.expect("a requeue");
        assert_eq!((m.name.as_str(), m.namespace.as_deref()), ("quote", Some("shop")));
        let g = gateways.next().await.expect("a requeue");
        assert_eq!((g.name.as_str(), g.namespace.as_deref()), ("edge", Some("infra")));
    }
}
