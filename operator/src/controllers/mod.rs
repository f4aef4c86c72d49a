//! One kube-runtime Controller per kind. Each reconcile reads the model's
//! verdict and the proxies' ACKs, writes the status when it differs, emits an
//! Event per transition, and (for routes) holds a finalizer until Envoy has
//! stopped routing the object.

mod gateway;
mod routed;

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::watch;

use crate::engine::Shared;
use crate::world::{Stores, Subscriptions};

pub use gateway::FleetConfig;

/// Why a reconcile did not finish; the controller retries with a short delay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "writing the status of {object}: {source}; if the API server answered 403, the \
         operator's ClusterRole lacks patch on the kind's status"
    )]
    Status {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("applying a Gateway's Envoy fleet: {0}")]
    Fleet(#[source] crate::fleet::FleetError),
    #[error(
        "reading the {kind} of Gateway {gateway}'s Envoy fleet: {source}; the operator needs \
         get on {kind}s in the Gateway's namespace"
    )]
    ReadFleet {
        gateway: String,
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("Envoy still routes {0}; waiting for the proxies to apply its removal")]
    StillRouted(String),
    #[error("adding or removing the legate.dev/routes finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// A short name for the `error` label of `legate_reconcile_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Status { .. } => "status",
            Error::Fleet(_) => "fleet",
            Error::ReadFleet { .. } => "read_fleet",
            Error::StillRouted(_) => "still_routed",
            Error::Finalizer(_) => "finalizer",
        }
    }
}

/// What the finalizer helper reports: our own error when applying or cleaning
/// up failed, else its failure to add or remove the finalizer.
impl From<kube::runtime::finalizer::Error<Error>> for Error {
    fn from(error: kube::runtime::finalizer::Error<Error>) -> Error {
        use kube::runtime::finalizer::Error as Finalizer;
        match error {
            Finalizer::ApplyFailed(e) | Finalizer::CleanupFailed(e) => e,
            other => Error::Finalizer(Box::new(other)),
        }
    }
}

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    pub shared: Arc<Shared>,
    pub recorder: Recorder,
    pub fleet: Option<FleetConfig>,
    /// Per Gateway key: the fleet as last applied.
    fleet_marks: std::sync::Mutex<std::collections::HashMap<String, gateway::FleetMark>>,
    /// Whether this replica leads; followers write nothing.
    leading: watch::Receiver<bool>,
    /// Since when this replica leads (proxies may still be reconnecting to it).
    leading_since: std::sync::Mutex<std::time::Instant>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(
        client: Client,
        shared: Arc<Shared>,
        fleet: Option<FleetConfig>,
        leading: watch::Receiver<bool>,
    ) -> Arc<Context> {
        let recorder = Recorder::new(client.clone(), Reporter::from("legate"));
        Arc::new(Context {
            client,
            shared,
            recorder,
            fleet,
            fleet_marks: std::sync::Mutex::default(),
            leading,
            leading_since: std::sync::Mutex::new(std::time::Instant::now()),
        })
    }
}

/// How long after start a Programmed=True is kept while proxies reconnect.
const RESTART_GRACE: Duration = Duration::from_secs(15);

impl Context {
    /// Whether proxies may still be reconnecting since this replica took the lead.
    pub fn in_restart_grace(&self) -> bool {
        self.leading_since
            .lock()
            .map(|t| t.elapsed() < RESTART_GRACE)
            .unwrap_or(false)
    }

    /// Whether this replica may write (status, Events, fleets).
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }
}

/// Counts the failure and retries soon: most failures are a conflict or a
/// moment of API server load.
fn error_policy<K: kube::Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    ctx.shared
        .metrics
        .reconcile_failed(&K::kind(&()), error.metric_label());
    match error {
        Error::StillRouted(_) => Action::requeue(Duration::from_millis(200)),
        other => {
            let object = kube::runtime::reflector::ObjectRef::from_obj(object.as_ref());
            tracing::warn!(error = %other, %object, "reconcile failed; retrying");
            Action::requeue(Duration::from_secs(2))
        }
    }
}

/// An Event per condition transition, Warning for the failures a user must act on.
async fn publish_transitions<K: kube::Resource<DynamicType = ()>>(
    object: &K,
    transitions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    ctx: &Context,
) {
    use kube::runtime::events::{Event, EventType};
    let reference = object.object_ref(&());
    for c in transitions {
        let event = Event {
            type_: if crate::status::is_warning(c) {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: c.reason.clone(),
            note: Some(format!("{}={}: {}", c.type_, c.status, c.message)),
            action: c.type_.clone(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, "could not publish an Event");
        }
    }
}

/// A stream that yields whenever statuses should be recomputed.
fn triggers(rx: watch::Receiver<u64>) -> impl Stream<Item = ()> + Send + 'static {
    tokio_stream::wrappers::WatchStream::from_changes(rx).map(|_| ())
}

/// Runs every controller until `shutdown` resolves. Each reads its kind from
/// the world's shared watch (`updates` and `stores`), so every kind is
/// watched once.
pub async fn run_all(
    ctx: Arc<Context>,
    stores: Stores,
    updates: Subscriptions,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Taking the lead: reconcile everything, with a fresh grace period.
    {
        let ctx = ctx.clone();
        let mut leading = ctx.leading.clone();
        tokio::spawn(async move {
            while leading.changed().await.is_ok() {
                let now_leading = *leading.borrow_and_update();
                if now_leading {
                    if let Ok(mut since) = ctx.leading_since.lock() {
                        *since = std::time::Instant::now();
                    }
                    ctx.shared.poke();
                }
            }
        });
    }
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let scope = ApiScope {
        client: ctx.client.clone(),
        namespace,
    };
    let cfg = watcher::Config::default();

    let gateways = Controller::for_shared_stream(updates.gateways, stores.gateways)
        .owns(scope.api::<k8s_openapi::api::apps::v1::Deployment>(), cfg)
        .reconcile_all_on(triggers(ctx.shared.triggers()))
        .graceful_shutdown_on(shutdown.clone())
        .run(gateway::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let mappings = routed::controller(updates.mappings, stores.mappings, ctx.clone(), shutdown.clone());
    let tls = routed::controller(
        updates.tls_contexts,
        stores.tls_contexts,
        ctx.clone(),
        shutdown.clone(),
    );
    let auth = routed::controller(
        updates.auth_services,
        stores.auth_services,
        ctx.clone(),
        shutdown.clone(),
    );
    let limits = routed::controller(
        updates.rate_limit_services,
        stores.rate_limit_services,
        ctx.clone(),
        shutdown.clone(),
    );
    let tcp = routed::controller(
        updates.tcp_mappings,
        stores.tcp_mappings,
        ctx.clone(),
        shutdown.clone(),
    );
    tokio::join!(gateways, mappings, tls, auth, limits, tcp);
}

struct ApiScope {
    client: Client,
    namespace: Option<String>,
}

impl ApiScope {
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }
}
