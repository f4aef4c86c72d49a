//! The operator's view of the cluster: one watch per kind, shared by the
//! world's store and (for Legate kinds) the kind's controller, and a signal
//! that fires whenever a change could alter the model. A status-only update
//! (same generation) updates the store but does not fire it: the model never
//! reads status, so rebuilding it would be wasted work.

mod relevance;

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, ReflectHandle, Store};
use kube::runtime::utils::ResetTimerBackoff;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use legate_crds::{AuthService, Gateway, Mapping, RateLimitService, TCPMapping, TLSContext};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use legate_model::{CA_BUNDLE_KEY, World};

pub use relevance::Relevance;

/// Readers of every store, and the change signal.
#[derive(Clone)]
pub struct Stores {
    pub gateways: Store<Gateway>,
    pub mappings: Store<Mapping>,
    pub tls_contexts: Store<TLSContext>,
    pub auth_services: Store<AuthService>,
    pub rate_limit_services: Store<RateLimitService>,
    pub tcp_mappings: Store<TCPMapping>,
    pub services: Store<Service>,
    pub endpoint_slices: Store<EndpointSlice>,
    pub namespaces: Store<Namespace>,
    pub secrets: Store<Secret>,
    /// Opaque Secrets, trimmed to their CA bundle.
    pub ca_secrets: Store<Secret>,
    /// Bumped on every change to any store that the model must see.
    pub changed: watch::Receiver<u64>,
    /// How many watches have listed their kind at least once.
    listed: watch::Receiver<usize>,
}

/// The watches [`start`] opens: six Legate kinds, Services, EndpointSlices,
/// Namespaces, TLS Secrets and Opaque (CA bundle) Secrets.
const WATCHES: usize = 11;

/// What the watches tell the rest of the operator.
#[derive(Debug)]
struct Signals {
    changed: watch::Sender<u64>,
    listed: watch::Sender<usize>,
}

impl Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl Stores {
    /// A consistent-enough snapshot of everything (each store is read once),
    /// with the address the Envoys' listeners bind.
    pub fn world(&self, settings: &WorldSettings) -> World {
        World {
            listen_address: settings.listen_address,
            allow_loopback_upstreams: settings.allow_loopback_upstreams,
            gateways: self.gateways.state(),
            mappings: self.mappings.state(),
            tls_contexts: self.tls_contexts.state(),
            auth_services: self.auth_services.state(),
            rate_limit_services: self.rate_limit_services.state(),
            tcp_mappings: self.tcp_mappings.state(),
            services: self.services.state(),
            endpoint_slices: self.endpoint_slices.state(),
            namespaces: self.namespaces.state(),
            secrets: self
                .secrets
                .state()
                .into_iter()
                .chain(self.ca_secrets.state())
                .collect(),
        }
    }

    /// Waits until every store has listed its kind once. (Not kube's
    /// `Store::wait_until_ready`: it wakes only the last of several waiters,
    /// and each shared store already has its controller waiting on it.)
    pub async fn wait_until_ready(&self) -> Result<(), watch::error::RecvError> {
        let mut listed = self.listed.clone();
        listed.wait_for(|n| *n >= WATCHES).await.map(|_| ())
    }
}

/// What the operator's flags add to every world.
#[derive(Debug, Clone, Copy)]
pub struct WorldSettings {
    /// The address Envoy listeners bind.
    pub listen_address: std::net::IpAddr,
    /// Whether a `service` may name a loopback host (a local stack).
    pub allow_loopback_upstreams: bool,
}

/// How many updates of one kind a controller may lag behind its store before
/// the watch waits for it.
const SUBSCRIBER_BUFFER: usize = 1024;

/// The Legate kinds' update streams, one per kind, fed by the same watches as
/// the [`Stores`]: each controller reads its kind from here instead of
/// opening a watch of its own.
pub struct Subscriptions {
    pub gateways: ReflectHandle<Gateway>,
    pub mappings: ReflectHandle<Mapping>,
    pub tls_contexts: ReflectHandle<TLSContext>,
    pub auth_services: ReflectHandle<AuthService>,
    pub rate_limit_services: ReflectHandle<RateLimitService>,
    pub tcp_mappings: ReflectHandle<TCPMapping>,
}

impl Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions").finish_non_exhaustive()
    }
}

/// Starts one watch per kind (in `namespace`, or all) and returns the stores
/// and the Legate kinds' update streams for the controllers.
pub fn start(client: &Client, namespace: Option<&str>) -> (Stores, Subscriptions) {
    let (changed_tx, changed) = watch::channel(0u64);
    let (listed_tx, listed) = watch::channel(0usize);
    let tx = Arc::new(Signals {
        changed: changed_tx,
        listed: listed_tx,
    });
    let a = ApiFor {
        client: client.clone(),
        namespace: namespace.map(str::to_string),
    };
    let all = watcher::Config::default;
    let (gateways, gateway_updates) = reflect_shared(a.namespaced(), &tx);
    let (mappings, mapping_updates) = reflect_shared(a.namespaced(), &tx);
    let (tls_contexts, tls_updates) = reflect_shared(a.namespaced(), &tx);
    let (auth_services, auth_updates) = reflect_shared(a.namespaced(), &tx);
    let (rate_limit_services, rate_limit_updates) = reflect_shared(a.namespaced(), &tx);
    let (tcp_mappings, tcp_updates) = reflect_shared(a.namespaced(), &tx);
    let stores = Stores {
        gateways,
        mappings,
        tls_contexts,
        auth_services,
        rate_limit_services,
        tcp_mappings,
        services: reflect(a.namespaced(), all(), &tx),
        endpoint_slices: reflect(a.namespaced(), all(), &tx),
        namespaces: reflect(Api::all(client.clone()), all(), &tx),
        // TLS Secrets, and of Opaque ones only the `ca.crt` key (CA bundles):
        // no other Secret data stays in the operator's memory.
        secrets: reflect(a.namespaced(), all().fields("type=kubernetes.io/tls"), &tx),
        ca_secrets: reflect_with(
            a.namespaced(),
            all().fields("type=Opaque"),
            &tx,
            keep_only_ca_bundle,
        ),
        changed,
        listed,
    };
    let subscriptions = Subscriptions {
        gateways: gateway_updates,
        mappings: mapping_updates,
        tls_contexts: tls_updates,
        auth_services: auth_updates,
        rate_limit_services: rate_limit_updates,
        tcp_mappings: tcp_updates,
    };
    (stores, subscriptions)
}

struct ApiFor {
    client: Client,
    namespace: Option<String>,
}

impl ApiFor {
    fn namespaced<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }
}

fn keep_only_ca_bundle(secret: &mut Secret) {
    trim_bookkeeping(secret);
    if let Some(data) = secret.data.as_mut() {
        data.retain(|k, _| k == CA_BUNDLE_KEY);
    }
    secret.string_data = None;
    secret.metadata.annotations = None;
}

/// What no judgement reads and can be most of an object's size: its
/// managedFields and kubectl's copy of the last applied object. Dropped
/// before the store, so that memory follows what the model needs.
fn trim_bookkeeping<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// The annotation client-side `kubectl apply` keeps the whole object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A store of a Legate kind whose watch also feeds a controller; only changes
/// of what the model reads (see [`Relevance::spec_and_metadata`]) fire `changed`.
fn reflect_shared<K>(api: Api<K>, changed: &Arc<Signals>) -> (Store<K>, ReflectHandle<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
    let updates = writer
        .subscribe()
        .expect("a shared store always has a dispatcher");
    let stream = watcher(api, watcher::Config::default())
        .backoff(watch_backoff())
        .modify(trim_bookkeeping)
        .reflect_shared(writer);
    spawn_forwarder(stream, Relevance::spec_and_metadata(), changed.clone());
    (reader, updates)
}

/// How a watch retries after an error: from 200 ms, doubling, with jitter,
/// at most 2 s apart (kube's default grows to 30 s, so a watch found the API
/// server back up to 30 s late after an outage, and new objects waited).
/// Reset after a minute without errors.
fn watch_backoff() -> ResetTimerBackoff<watcher::ExponentialBackoff> {
    let builder = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    ResetTimerBackoff::new(builder.into(), Duration::from_secs(60))
}

fn reflect<K>(api: Api<K>, config: watcher::Config, changed: &Arc<Signals>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    reflect_with(api, config, changed, trim_bookkeeping)
}

/// Like [`reflect`], with every object passed through `trim` before it is stored.
fn reflect_with<K>(api: Api<K>, config: watcher::Config, changed: &Arc<Signals>, trim: fn(&mut K)) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .backoff(watch_backoff())
        .modify(trim)
        .reflect(writer);
    spawn_forwarder(stream, Relevance::every_update(), changed.clone());
    reader
}

fn spawn_forwarder<K, S>(stream: S, relevance: Relevance, changed: Arc<Signals>)
where
    K: Resource + Send + 'static,
    K::DynamicType: Default,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    tokio::spawn(forward_changes(stream, relevance, changed));
}

/// Drives a watch (which keeps its store up to date) and bumps `changed` for
/// every event `relevance` says the model must see. Returns when the watch ends.
async fn forward_changes<K, S>(stream: S, mut relevance: Relevance, changed: Arc<Signals>)
where
    K: Resource,
    K::DynamicType: Default,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let mut stream = std::pin::pin!(stream);
    let mut listed_once = false;
    loop {
        match stream.try_next().await {
            Ok(Some(event)) => {
                if relevance.observe(&event) {
                    changed.changed.send_modify(|n| *n = n.wrapping_add(1));
                }
                // The reflector stored the listing before passing it on.
                if matches!(event, watcher::Event::InitDone) && !listed_once {
                    listed_once = true;
                    changed.listed.send_modify(|n| *n += 1);
                }
            }
            Ok(None) => break,
            // The watcher retries with backoff; this is only reported.
            Err(
                watcher::Error::InitialListFailed(kube::Error::Api(status))
                | watcher::Error::WatchStartFailed(kube::Error::Api(status)),
            ) if status.code == 404 => {
                tracing::warn!(kind = %kind, "the API server does not serve {kind}: are the Legate CRDs installed? (kubectl apply -f manifests/crds/)");
            }
            Err(e) => tracing::warn!(kind = %kind, error = %e, "watch error"),
        }
    }
}

#[cfg(test)]
mod tests;
