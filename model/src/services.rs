//! Kubernetes Services and their EndpointSlices, indexed for lookups.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use legate_xds::ir::Endpoint;

use crate::secrets::SecretKey;
use crate::world::World;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// `(namespace, name)` of a Service.
pub type ServiceKey = (String, String);

/// Services by `(namespace, name)` and their EndpointSlices.
#[derive(Debug, Default)]
pub struct ServiceIndex {
    services: HashMap<ServiceKey, Arc<Service>>,
    slices: HashMap<ServiceKey, Vec<Arc<EndpointSlice>>>,
    /// What was looked up while recording ([`ServiceIndex::recording`]):
    /// what the incremental model re-judges when it changes. A Mutex rather
    /// than a RefCell so that the index stays `Sync`.
    reads: Mutex<Option<Reads>>,
}

/// What a piece of judgement looked up in a [`ServiceIndex`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// The Services it looked up, found or not, sorted.
    pub services: Vec<ServiceKey>,
    /// The endpoints it wrote into a configuration, in the order written.
    pub endpoints: Vec<EndpointsWrite>,
    /// The Secrets it read (found or not), sorted. The index holds no
    /// Secrets; it keeps the record, since it goes wherever they are read.
    pub secrets: Vec<SecretKey>,
}

/// Endpoints written under an upstream's name: of a Service port (when
/// only the Service's EndpointSlices change, writing them again is all
/// there is to do, see [`crate::upstreams::resolve`]), or none at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointsWrite {
    pub upstream: String,
    /// The Service port whose endpoints were written; `None`: no endpoints.
    pub source: Option<(ServiceKey, ResolvedPort)>,
    /// Whether there were none (which a verdict may say).
    pub empty: bool,
}

/// A Service port, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedPort {
    /// The Service port number (what names the upstream).
    pub port: u16,
    /// The port's name, which EndpointSlices use to say where it goes.
    pub name: Option<String>,
}

impl ServiceIndex {
    pub fn new(world: &World) -> ServiceIndex {
        let mut index = ServiceIndex::default();
        for service in &world.services {
            index.insert_service(service.clone());
        }
        for slice in &world.endpoint_slices {
            index.insert_slice(slice.clone());
        }
        index
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&Arc<Service>> {
        let key = (namespace.to_string(), name.to_string());
        self.note(&key);
        self.services.get(&key)
    }

    /// Runs `f`, and returns with its result what it looked up: every
    /// Service (found or not: a Service that appears later changes what `f`
    /// does) and every endpoints it wrote.
    pub fn recording<T>(&self, f: impl FnOnce() -> T) -> (T, Reads) {
        *self.reads.lock().unwrap_or_else(PoisonError::into_inner) = Some(Reads::default());
        let out = f();
        let mut reads = self
            .reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        reads.services.sort();
        reads.services.dedup();
        reads.secrets.sort();
        reads.secrets.dedup();
        (out, reads)
    }

    fn note(&self, key: &ServiceKey) {
        if let Some(reads) = self.reads.lock().unwrap_or_else(PoisonError::into_inner).as_mut()
            // A reference looks its Service up several times in a row.
            && reads.services.last() != Some(key)
        {
            reads.services.push(key.clone());
        }
    }

    /// Notes, while recording, that the Secrets `read` were read.
    pub fn note_secrets(&self, read: Vec<SecretKey>) {
        if read.is_empty() {
            return;
        }
        if let Some(reads) = self.reads.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            reads.secrets.extend(read);
        }
    }

    /// Notes, while recording, that `endpoints` (of the Service port
    /// `source`, if any) were written under `upstream`.
    pub fn note_endpoints(
        &self,
        upstream: &str,
        source: Option<&(ServiceKey, ResolvedPort)>,
        endpoints: &[Endpoint],
    ) {
        if let Some(reads) = self.reads.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            reads.endpoints.push(EndpointsWrite {
                upstream: upstream.to_string(),
                source: source.cloned(),
                empty: endpoints.is_empty(),
            });
        }
    }

    /// Adds or replaces a Service; returns the one it replaced.
    pub fn insert_service(&mut self, service: Arc<Service>) -> Option<Arc<Service>> {
        self.services.insert(service_key(&service), service)
    }

    /// Removes the Service with the key of `service`.
    pub fn remove_service(&mut self, service: &Service) {
        self.services.remove(&service_key(service));
    }

    /// How many Services are indexed (fewer than listed when two share a key).
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Adds an EndpointSlice; returns the Service it belongs to, if any.
    pub fn insert_slice(&mut self, slice: Arc<EndpointSlice>) -> Option<ServiceKey> {
        let key = slice_service(&slice)?;
        self.slices.entry(key.clone()).or_default().push(slice);
        Some(key)
    }

    /// Removes the EndpointSlice with the namespace and name of `slice`;
    /// returns the Service it belonged to, if any.
    pub fn remove_slice(&mut self, slice: &EndpointSlice) -> Option<ServiceKey> {
        let key = slice_service(slice)?;
        if let Some(slices) = self.slices.get_mut(&key) {
            slices.retain(|s| s.metadata.name != slice.metadata.name);
            if slices.is_empty() {
                self.slices.remove(&key);
            }
        }
        Some(key)
    }

    /// The ready endpoints of a Service port, sorted, for EDS.
    pub fn endpoints(&self, namespace: &str, service: &str, port: &ResolvedPort) -> Vec<Endpoint> {
        let mut out = Vec::new();
        let key = (namespace.to_string(), service.to_string());
        self.note(&key);
        let Some(slices) = self.slices.get(&key) else {
            return out;
        };
        for slice in slices {
            let target = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name == port.name)
                .and_then(|p| p.port);
            let Some(target) = target.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            for endpoint in &slice.endpoints {
                let conditions = endpoint.conditions.as_ref();
                // Kubernetes: a nil `ready` means ready; terminating endpoints are not.
                let ready = conditions.and_then(|c| c.ready).unwrap_or(true)
                    && !conditions.and_then(|c| c.terminating).unwrap_or(false);
                if !ready {
                    continue;
                }
                for address in &endpoint.addresses {
                    if let Ok(address) = address.parse::<IpAddr>() {
                        out.push(Endpoint {
                            address,
                            port: target,
                            ready,
                            zone: endpoint.zone.clone(),
                        });
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The key of a Service.
pub fn service_key(service: &Service) -> ServiceKey {
    (service.namespace().unwrap_or_default(), service.name_any())
}

/// The Service an EndpointSlice belongs to (its `kubernetes.io/service-name` label).
pub fn slice_service(slice: &EndpointSlice) -> Option<ServiceKey> {
    let service = slice.labels().get(SERVICE_NAME_LABEL)?;
    Some((slice.namespace().unwrap_or_default(), service.clone()))
}

/// Why a `service` reference's port is not one of the Service's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("Service {service} has no {asked}; its ports are [{have}]")]
    NotFound {
        service: String,
        asked: String,
        have: String,
    },
    #[error("port {0} is out of range")]
    OutOfRange(i32),
}

/// Finds a port of `service` by number or name; with no port asked for, the
/// Service's only port (or its first).
pub fn resolve_port(service: &Service, wanted: Option<&PortRef>) -> Result<ResolvedPort, PortError> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let found = match wanted {
        None => ports.first(),
        Some(PortRef::Number(n)) => ports.iter().find(|p| p.port == i32::from(*n)),
        Some(PortRef::Name(name)) => ports.iter().find(|p| p.name.as_deref() == Some(name.as_str())),
    };
    let port = found.ok_or_else(|| {
        let have: Vec<String> = ports
            .iter()
            .map(|p| match &p.name {
                Some(n) => format!("{} ({n})", p.port),
                None => p.port.to_string(),
            })
            .collect();
        let asked = match wanted {
            Some(PortRef::Number(n)) => format!("port {n}"),
            Some(PortRef::Name(n)) => format!("port {n:?}"),
            None => "a port".to_string(),
        };
        PortError::NotFound {
            service: service.name_any(),
            asked,
            have: have.join(", "),
        }
    })?;
    Ok(ResolvedPort {
        port: u16::try_from(port.port).map_err(|_| PortError::OutOfRange(port.port))?,
        name: port.name.clone(),
    })
}

/// A port asked for in a `service` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}
