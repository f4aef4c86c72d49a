//! Where `legate explain` and `legate routes` read objects: files (as
//! `legate translate` does), or the cluster of the current kubeconfig,
//! where the objects' status also says what the operator and Envoy made of
//! them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use legate_crds::common::ObjectStatus;
use legate_crds::{AuthService, Gateway, Mapping, RateLimitService, TCPMapping, TLSContext};
use legate_model::snapshot::read_paths;
use legate_model::{CA_BUNDLE_KEY, World};
use serde::de::DeserializeOwned;

/// Where the objects come from, and which Gateway is asked about.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The Gateway, `namespace/name` (or `name` in the default namespace);
    /// needed only when there are several.
    #[arg(short = 'g', long, value_name = "NAMESPACE/NAME")]
    pub gateway: Option<String>,
    /// Read objects from this YAML file or folder instead of the cluster
    /// (`-` reads standard input); repeat for more.
    #[arg(short = 'f', long = "filename", value_name = "FILE_OR_DIR")]
    pub files: Vec<PathBuf>,
    /// Read the subfolders of folders given with -f too.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// With -f: judge a `service` on a loopback address as an operator run
    /// with --allow-loopback-upstreams does. From the cluster, the objects'
    /// status tells.
    #[arg(long, default_value_t = false)]
    pub allow_loopback_upstreams: bool,
    /// Kubeconfig to read the cluster with (default: $KUBECONFIG, ~/.kube/config, or in a pod its service account).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// The objects, and what the cluster says about them.
pub struct Loaded {
    pub world: World,
    /// Warnings to print (objects skipped in files, kinds the cluster refused to list).
    pub warnings: Vec<String>,
    /// From the cluster: each object's status by key (`Kind/namespace/name`)
    /// with its generation. Empty for files.
    pub statuses: BTreeMap<String, Observed>,
    /// Whether the objects came from the cluster.
    pub live: bool,
}

/// An object's generation and the conditions the operator wrote.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub generation: i64,
    pub status: ObjectStatus,
}

impl Observed {
    /// Condition `kind` when it was written for the current generation.
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.status
            .conditions
            .iter()
            .find(|c| c.type_ == kind && c.observed_generation.is_none_or(|g| g == self.generation))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Files(#[from] legate_model::snapshot::SnapshotError),
    #[error(transparent)]
    Client(#[from] crate::kubeconfig::ClientError),
    #[error("listing {kind}: {source}")]
    List {
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

fn arc<T>(objects: Vec<T>) -> Vec<Arc<T>> {
    objects.into_iter().map(Arc::new).collect()
}

/// Reads the objects from files when `-f` is given, else from the cluster.
pub fn load(args: &SourceArgs) -> Result<Loaded, SourceError> {
    if !args.files.is_empty() {
        return load_files(args);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SourceError::Runtime)?;
    runtime.block_on(load_cluster(args))
}

fn load_files(args: &SourceArgs) -> Result<Loaded, SourceError> {
    let snapshot = read_paths(&args.files, args.recursive, IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
    let mut world = snapshot.world;
    world.allow_loopback_upstreams = args.allow_loopback_upstreams;
    Ok(Loaded {
        world,
        warnings: snapshot.warnings.iter().map(ToString::to_string).collect(),
        statuses: BTreeMap::new(),
        live: false,
    })
}

async fn list<K>(client: &Client, kind: &'static str, params: &ListParams) -> Result<Vec<K>, SourceError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    api.list(params)
        .await
        .map(|l| l.items)
        .map_err(|source| SourceError::List { kind, source })
}

async fn load_cluster(args: &SourceArgs) -> Result<Loaded, SourceError> {
    let client = crate::kubeconfig::client(args.kubeconfig.as_deref()).await?;
    let all = ListParams::default();
    let mut warnings = Vec::new();
    let mut statuses = BTreeMap::new();
    let gateways: Vec<Gateway> = list(&client, "Gateways", &all).await?;
    let mappings: Vec<Mapping> = list(&client, "Mappings", &all).await?;
    let tls_contexts: Vec<TLSContext> = list(&client, "TLSContexts", &all).await?;
    let auth_services: Vec<AuthService> = list(&client, "AuthServices", &all).await?;
    let rate_limit_services: Vec<RateLimitService> = list(&client, "RateLimitServices", &all).await?;
    let tcp_mappings: Vec<TCPMapping> = list(&client, "TCPMappings", &all).await?;
    record(&mut statuses, "Gateway", &gateways, |o| {
        o.status.as_ref().map(|s| ObjectStatus {
            observed_generation: s.observed_generation,
            conditions: s.conditions.clone(),
        })
    });
    record(&mut statuses, "Mapping", &mappings, |o| o.status.clone());
    record(&mut statuses, "TLSContext", &tls_contexts, |o| o.status.clone());
    record(&mut statuses, "AuthService", &auth_services, |o| o.status.clone());
    record(&mut statuses, "RateLimitService", &rate_limit_services, |o| {
        o.status.clone()
    });
    record(&mut statuses, "TCPMapping", &tcp_mappings, |o| o.status.clone());
    // What the model also reads; a kind this user may not list is judged
    // as absent, and said so.
    let services: Vec<Service> = optional(list(&client, "Services", &all).await, &mut warnings);
    let endpoint_slices: Vec<EndpointSlice> =
        optional(list(&client, "EndpointSlices", &all).await, &mut warnings);
    let namespaces: Vec<Namespace> = match Api::<Namespace>::all(client.clone()).list(&all).await {
        Ok(l) => l.items,
        Err(e) => {
            warnings.push(format!(
                "cannot list Namespaces ({e}); namespace labels are judged absent"
            ));
            Vec::new()
        }
    };
    let tls_secrets = ListParams::default().fields("type=kubernetes.io/tls");
    let opaque = ListParams::default().fields("type=Opaque");
    let mut secrets: Vec<Secret> = optional(list(&client, "TLS Secrets", &tls_secrets).await, &mut warnings);
    // Opaque Secrets matter only for their CA bundle: keep nothing else.
    let ca_bundles = optional(
        list::<Secret>(&client, "Opaque Secrets", &opaque).await,
        &mut warnings,
    )
    .into_iter()
    .filter_map(|mut s| {
        let bundle = s.data.as_mut()?.remove(CA_BUNDLE_KEY)?;
        s.data = Some(BTreeMap::from([(CA_BUNDLE_KEY.to_owned(), bundle)]));
        s.string_data = None;
        Some(s)
    });
    secrets.extend(ca_bundles);
    let world = World {
        listen_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        gateways: arc(gateways),
        mappings: arc(mappings),
        tls_contexts: arc(tls_contexts),
        auth_services: arc(auth_services),
        rate_limit_services: arc(rate_limit_services),
        tcp_mappings: arc(tcp_mappings),
        services: arc(services),
        endpoint_slices: arc(endpoint_slices),
        namespaces: arc(namespaces),
        secrets: arc(secrets),
        // The operator's own flag is not known here; the status of an
        // object it refused for a loopback address says so, and such
        // objects are left out of the table (see `live_table`).
        allow_loopback_upstreams: true,
    };
    Ok(Loaded {
        world,
        warnings,
        statuses,
        live: true,
    })
}

fn optional<T>(listed: Result<Vec<T>, SourceError>, warnings: &mut Vec<String>) -> Vec<T> {
    listed.unwrap_or_else(|e| {
        warnings.push(format!("{e}; judged as if there were none"));
        Vec::new()
    })
}

fn record<K: Resource + ResourceExt>(
    statuses: &mut BTreeMap<String, Observed>,
    kind: &str,
    objects: &[K],
    status: impl Fn(&K) -> Option<ObjectStatus>,
) {
    for o in objects {
        let key = format!("{kind}/{}/{}", o.namespace().unwrap_or_default(), o.name_any());
        statuses.insert(
            key,
            Observed {
                generation: o.meta().generation.unwrap_or_default(),
                status: status(o).unwrap_or_default(),
            },
        );
    }
}
