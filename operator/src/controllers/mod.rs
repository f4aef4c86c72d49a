//! One kube-runtime Controller per kind. Each reconcile reads the model's
//! verdict and the proxies' ACKs, writes the status when it differs (paced:
//! see [`pacing`]), emits one Event per write that changed a condition, and
//! (for routes) holds a finalizer until Envoy has stopped routing the object.
//! Controllers reconcile an object when its watch says it changed or when
//! the engine or the ACK tracker requeues it; everything only on taking the
//! lead and at the end of the restart grace.

mod backoff;
mod finalizer;
mod gateway;
mod pacing;
mod routed;

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
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
    #[error(
        "{action} the legate.dev/routes finalizer of {object}: {source}; the operator needs \
         patch (and get) on the kind"
    )]
    Finalizer {
        action: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// A short name for the `error` label of `legate_reconcile_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Status { .. } => "status",
            Error::Fleet(_) => "fleet",
            Error::ReadFleet { .. } => "read_fleet",
            Error::StillRouted(_) => "still_routed",
            Error::Finalizer { .. } => "finalizer",
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
    /// When route objects' statuses may be written.
    object_pacer: pacing::Pacer,
    /// When Gateways' statuses may be written: their `configVersion` moves
    /// with every route change, so at most every few seconds.
    gateway_pacer: pacing::Pacer,
    /// Finalizers added that the cache does not show yet.
    finalizers_added: finalizer::Added,
    /// Consecutive reconcile failures per object, for the retry delay.
    backoff: backoff::Backoff,
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
            object_pacer: pacing::Pacer::new(OBJECT_WRITE_INTERVAL, PENDING_HOLD),
            gateway_pacer: pacing::Pacer::new(GATEWAY_WRITE_INTERVAL, PENDING_HOLD),
            finalizers_added: finalizer::Added::default(),
            backoff: backoff::Backoff::default(),
        })
    }
}

/// How long after start a Programmed=True is kept while proxies reconnect.
const RESTART_GRACE: Duration = Duration::from_secs(15);
/// Least time between two status writes of one route object.
const OBJECT_WRITE_INTERVAL: Duration = Duration::from_millis(500);
/// Least time between two status writes of one Gateway.
const GATEWAY_WRITE_INTERVAL: Duration = Duration::from_secs(2);
/// How long `Programmed=False Pending` (sent, not yet ACKed) stays unwritten.
const PENDING_HOLD: Duration = Duration::from_secs(2);

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

/// The key the retry delay of `object` is counted under.
fn backoff_key<K: kube::Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

impl Context {
    /// `object` reconciled: its next failure is retried soon again.
    fn reconciled<K: kube::Resource<DynamicType = ()>>(&self, object: &K) {
        self.backoff.succeeded(&backoff_key(object));
    }
}

/// Counts the failure and retries: soon after a first failure (most are a
/// conflict or a moment of API server load), then exponentially later,
/// with jitter, while the same object keeps failing.
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
            let wait = ctx.backoff.failed(&backoff_key(object.as_ref()));
            let object = kube::runtime::reflector::ObjectRef::from_obj(object.as_ref());
            tracing::warn!(error = %other, %object, retry_in_ms = wait.as_millis() as u64, "reconcile failed; retrying");
            Action::requeue(wait)
        }
    }
}

/// One Event for the conditions a status write changed: Warning when one of
/// them is a failure a user must act on, named after the most telling one.
async fn publish_transitions<K: kube::Resource<DynamicType = ()>>(
    object: &K,
    transitions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    ctx: &Context,
) {
    use kube::runtime::events::{Event, EventType};
    let warning = transitions.iter().find(|c| crate::status::is_warning(c));
    let Some(headline) = warning.or(transitions.last()) else {
        return;
    };
    let note: Vec<String> = transitions
        .iter()
        .map(|c| format!("{}={}: {}", c.type_, c.status, c.message))
        .collect();
    let event = Event {
        type_: if warning.is_some() {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: headline.reason.clone(),
        note: Some(crate::status::event_note(&note.join("; "))),
        action: headline.type_.clone(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish an Event");
    }
}

/// A stream that yields whenever every status should be recomputed.
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
    // Taking the lead: reconcile everything, with a fresh grace period, and
    // everything again when the grace is over (what it held back is news).
    // Proxies reconnect to a new leader over the grace: until as many as
    // the Gateway's status counted are back, its objects are not judged.
    {
        let ctx = ctx.clone();
        let mut leading = ctx.leading.clone();
        let gateways = stores.gateways.clone();
        let listed = stores.clone();
        tokio::spawn(async move {
            if listed.wait_until_ready().await.is_err() {
                return;
            }
            if *leading.borrow_and_update() {
                expect_reconnects(&ctx, &gateways);
                poke_after_grace(&ctx);
            }
            while leading.changed().await.is_ok() {
                let now_leading = *leading.borrow_and_update();
                if now_leading {
                    if let Ok(mut since) = ctx.leading_since.lock() {
                        *since = std::time::Instant::now();
                    }
                    expect_reconnects(&ctx, &gateways);
                    ctx.shared.poke();
                    poke_after_grace(&ctx);
                }
            }
        });
    }
    // A CA rotation step (a new bundle, a new signer) reissues every
    // Gateway's certificate: look at every Gateway again.
    if let Some(ca) = ctx.fleet.as_ref().and_then(|f| f.ca.clone()) {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut changes = ca.changes();
            while changes.changed().await.is_ok() {
                ctx.shared.poke();
            }
        });
    }
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let scope = ApiScope {
        client: ctx.client.clone(),
        namespace,
    };
    let cfg = watcher::Config::default();

    let requeued = ctx
        .shared
        .requeues
        .take::<legate_crds::Gateway>()
        .map(StreamExt::boxed)
        .unwrap_or_else(|| futures::stream::empty().boxed());
    let gateways = Controller::for_shared_stream(updates.gateways, stores.gateways)
        .owns(scope.api::<k8s_openapi::api::apps::v1::Deployment>(), cfg)
        .reconcile_on(requeued)
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

/// Reconciles everything once the restart grace is over; the proxies that
/// have not reconnected by then are not waited for any more.
fn poke_after_grace(ctx: &Arc<Context>) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RESTART_GRACE).await;
        if !ctx.in_restart_grace() {
            ctx.shared.expect_reconnects(Default::default());
        }
        ctx.shared.poke();
    });
}

/// Each Gateway's proxies as its status last counted them (the previous
/// leader's count), to be waited for over the grace.
fn expect_reconnects(ctx: &Context, gateways: &kube::runtime::reflector::Store<legate_crds::Gateway>) {
    let floors = gateways
        .state()
        .iter()
        .filter_map(|g| {
            let proxies = g.status.as_ref()?.proxies?;
            let key = format!("{}/{}", g.namespace()?, g.name_any());
            Some((key, usize::try_from(proxies).ok()?))
        })
        .filter(|(_, n)| *n > 0)
        .collect::<std::collections::BTreeMap<_, _>>();
    if !floors.is_empty() {
        tracing::info!(
            ?floors,
            "took the lead: judging no Gateway until its proxies have reconnected"
        );
    }
    ctx.shared.expect_reconnects(floors);
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
