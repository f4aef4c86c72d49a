//! The operator's view of the cluster: a reflector store per kind, kept up to
//! date by watches, and a signal that fires whenever any of them changes.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use legate_crds::{AuthService, Gateway, Mapping, RateLimitService, TCPMapping, TLSContext};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use legate_model::World;

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
    /// Bumped on every change to any store.
    pub changed: watch::Receiver<u64>,
}

impl Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl Stores {
    /// A consistent-enough snapshot of everything (each store is read once),
    /// with the address the Envoys' listeners bind.
    pub fn world(&self, listen_address: std::net::IpAddr) -> World {
        World {
            listen_address,
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

    /// Waits until every store has listed its kind once.
    pub async fn wait_until_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.gateways.wait_until_ready().await?;
        self.mappings.wait_until_ready().await?;
        self.tls_contexts.wait_until_ready().await?;
        self.auth_services.wait_until_ready().await?;
        self.rate_limit_services.wait_until_ready().await?;
        self.tcp_mappings.wait_until_ready().await?;
        self.services.wait_until_ready().await?;
        self.endpoint_slices.wait_until_ready().await?;
        self.namespaces.wait_until_ready().await?;
        self.secrets.wait_until_ready().await?;
        self.ca_secrets.wait_until_ready().await
    }
}

/// Starts a watch per kind (in `namespace`, or all) and returns the stores.
pub fn start(client: &Client, namespace: Option<&str>) -> Stores {
    let (tx, changed) = watch::channel(0u64);
    let tx = Arc::new(tx);
    let api = |c: &Client| -> ApiFor {
        ApiFor {
            client: c.clone(),
            namespace: namespace.map(str::to_string),
        }
    };
    let a = api(client);
    Stores {
        gateways: reflect(a.namespaced(), watcher::Config::default(), &tx),
        mappings: reflect(a.namespaced(), watcher::Config::default(), &tx),
        tls_contexts: reflect(a.namespaced(), watcher::Config::default(), &tx),
        auth_services: reflect(a.namespaced(), watcher::Config::default(), &tx),
        rate_limit_services: reflect(a.namespaced(), watcher::Config::default(), &tx),
        tcp_mappings: reflect(a.namespaced(), watcher::Config::default(), &tx),
        services: reflect(a.namespaced(), watcher::Config::default(), &tx),
        endpoint_slices: reflect(a.namespaced(), watcher::Config::default(), &tx),
        namespaces: reflect(Api::all(client.clone()), watcher::Config::default(), &tx),
        // TLS Secrets, and of Opaque ones only the `ca.crt` key (CA bundles):
        // no other Secret data stays in the operator's memory.
        secrets: reflect(
            a.namespaced(),
            watcher::Config::default().fields("type=kubernetes.io/tls"),
            &tx,
        ),
        ca_secrets: reflect_with(
            a.namespaced(),
            watcher::Config::default().fields("type=Opaque"),
            &tx,
            keep_only_ca_bundle,
        ),
        changed,
    }
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

/// The CA bundle key of an Opaque Secret; every other key is dropped as it arrives.
use legate_model::CA_BUNDLE_KEY;

fn keep_only_ca_bundle(secret: &mut Secret) {
    if let Some(data) = secret.data.as_mut() {
        data.retain(|k, _| k == CA_BUNDLE_KEY);
    }
    secret.string_data = None;
    secret.metadata.managed_fields = None;
    secret.metadata.annotations = None;
}

fn reflect<K>(api: Api<K>, config: watcher::Config, changed: &Arc<watch::Sender<u64>>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    reflect_with(api, config, changed, |_| {})
}

/// Like [`reflect`], with every object passed through `trim` before it is stored.
fn reflect_with<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: &Arc<watch::Sender<u64>>,
    trim: fn(&mut K),
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let changed = changed.clone();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(trim)
        .reflect(writer);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            match stream.try_next().await {
                // Applies and deletes change the world; a relist changes it
                // once it is complete.
                Ok(Some(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone)) => {
                    changed.send_modify(|n| *n = n.wrapping_add(1));
                }
                Ok(Some(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
                Ok(None) => break,
                Err(e) => {
                    // The watcher retries with backoff; this is only reported.
                    if e.to_string().contains("404") {
                        tracing::warn!(kind = %kind, "the API server does not serve {kind}: are the Legate CRDs installed? (kubectl apply -f manifests/crds/)");
                    } else {
                        tracing::warn!(kind = %kind, error = %e, "watch error");
                    }
                }
            }
        }
    });
    reader
}
