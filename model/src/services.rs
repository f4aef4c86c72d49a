//! Kubernetes Services and their EndpointSlices, indexed for lookups.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use legate_xds::ir::Endpoint;

use crate::world::World;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Services by `(namespace, name)` and their EndpointSlices.
#[derive(Debug, Default)]
pub struct ServiceIndex {
    services: HashMap<(String, String), Arc<Service>>,
    slices: HashMap<(String, String), Vec<Arc<EndpointSlice>>>,
}

/// A Service port, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
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
            let key = (service.namespace().unwrap_or_default(), service.name_any());
            index.services.insert(key, service.clone());
        }
        for slice in &world.endpoint_slices {
            if let Some(service) = slice.labels().get(SERVICE_NAME_LABEL) {
                let key = (slice.namespace().unwrap_or_default(), service.clone());
                index.slices.entry(key).or_default().push(slice.clone());
            }
        }
        index
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&Arc<Service>> {
        self.services.get(&(namespace.to_string(), name.to_string()))
    }

    /// The ready endpoints of a Service port, sorted, for EDS.
    pub fn endpoints(&self, namespace: &str, service: &str, port: &ResolvedPort) -> Vec<Endpoint> {
        let mut out = Vec::new();
        let Some(slices) = self.slices.get(&(namespace.to_string(), service.to_string())) else {
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
