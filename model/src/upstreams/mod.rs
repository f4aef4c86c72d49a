//! The one upstream resolver, for every `service` field: Mappings,
//! TCPMappings, and the Gateway-wide auth, rate limit and tracing services.
//!
//! One naming rule for the upstreams (Envoy clusters) it makes: the
//! destination, then, when Envoy talks to it with other than the default
//! settings, `~` and 8 hex digits of the stable hash of the settings'
//! canonical key ([`settings::settings_key`]). The destination is
//!
//! - `namespace/service:port` for a Service port (its endpoints over EDS);
//!   a Service that does not exist yet is named with the port asked for (80
//!   when it names none or names one by name), so its cluster fills in when
//!   it appears;
//! - `dns/host:port` for a host Envoy resolves (a URL, or an ExternalName
//!   Service);
//! - `unresolved/Kind/namespace/name` for the empty upstream of an object
//!   whose reference resolves to nothing ([`resolve_or_empty`]).
//!
//! So two references share a cluster exactly when they name the same
//! destination with the same settings.

mod address;
mod consent;
mod reference;
mod settings;

use legate_crds::conditions::reasons;
use legate_crds::mapping::UpstreamTls;
use legate_xds::ir::{self, ObjectRef};

use crate::names::short_hash;
use crate::services::{PortError, PortRef, ResolvedPort, ServiceIndex, ServiceKey, resolve_port};
use crate::upstream_tls;
use crate::verdicts::{Problem, Verdict};
use crate::world::World;

pub use consent::ALLOW_FROM_ANNOTATION;
pub use reference::{ParseError, ServiceRef, parse};
pub use settings::ClusterSettings;

/// A `service` field to resolve, and how Envoy is to talk to what it names.
#[derive(Debug, Clone)]
pub struct Reference<'a> {
    /// `name[.namespace][:port]` or an `http://` / `https://` URL.
    pub service: &'a str,
    /// The referring object: its namespace is the default one, and it is an
    /// origin of the upstream (which is how a NACK finds its way back).
    pub origin: &'a ObjectRef,
    pub settings: ClusterSettings,
    /// A Mapping's `upstreamTls`, over what an `https://` URL implies.
    pub tls: Option<&'a UpstreamTls>,
}

/// An upstream of the configuration, and what may keep traffic from it.
#[derive(Debug)]
pub struct Resolved {
    pub upstream: String,
    /// The Service is missing or has no ready endpoint: the upstream is there,
    /// with no endpoints.
    pub trouble: Option<RefError>,
}

/// Why a reference's traffic cannot arrive. The message says what is wrong;
/// the caller adds what traffic gets meanwhile.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error(transparent)]
    Invalid(#[from] ParseError),
    /// Envoy's admin API, a metadata service and the like.
    #[error(
        "upstream host {host} is {why}: Legate sends no traffic there (name a Service, or a host outside the cluster's own addresses)"
    )]
    Forbidden { host: String, why: &'static str },
    #[error("Service {namespace}/{name} does not exist")]
    ServiceNotFound { namespace: String, name: String },
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("Service {namespace}/{name} has no ready endpoint")]
    NoReadyEndpoints { namespace: String, name: String },
    /// A Service of another namespace that did not consent.
    #[error(
        "Service {namespace}/{name} does not accept traffic routed from namespace {from}: its owners can allow it with the annotation {ALLOW_FROM_ANNOTATION}: \"{from}\" (a comma-separated list of namespaces, or *)"
    )]
    NotPermitted {
        namespace: String,
        name: String,
        from: String,
    },
    /// A Secret `upstreamTls` names is missing or broken.
    #[error("{}", .0.message)]
    Tls(Problem),
}

impl RefError {
    /// The condition reason it is reported with.
    pub fn reason(&self) -> &'static str {
        match self {
            RefError::Invalid(_) => reasons::INVALID,
            RefError::Forbidden { .. } => reasons::FORBIDDEN_UPSTREAM,
            RefError::ServiceNotFound { .. } | RefError::Port(_) => reasons::BACKEND_NOT_FOUND,
            RefError::NoReadyEndpoints { .. } => reasons::NO_READY_ENDPOINTS,
            RefError::NotPermitted { .. } => reasons::REF_NOT_PERMITTED,
            RefError::Tls(problem) => problem.reason,
        }
    }

    /// Records it on `verdict`: a reference that cannot be parsed or names a
    /// forbidden host makes the object not Accepted, anything else is a
    /// reference that does not resolve.
    /// `effect` says what traffic gets meanwhile.
    pub fn record(&self, verdict: &mut Verdict, effect: &str) {
        let problem = Problem::new(self.reason(), format!("{self}; {effect}"));
        match self {
            RefError::Invalid(_) | RefError::Forbidden { .. } => verdict.accepted = Err(problem),
            _ => verdict.resolved_refs = Err(problem),
        }
    }
}

/// Resolves `reference` into an upstream of `config` (with its endpoints and
/// the Secrets its TLS needs) and returns its name. An error leaves `config`
/// as it was: the port is not the Service's, or a TLS Secret is missing or
/// broken (never a fallback to unverified TLS).
pub fn resolve(
    world: &World,
    index: &ServiceIndex,
    reference: &Reference<'_>,
    config: &mut ir::Gateway,
) -> Result<Resolved, RefError> {
    let origin = reference.origin;
    let service = parse(reference.service, origin.namespace())?;
    let target = Target::find(service, index, world.allow_loopback_upstreams, origin)?;
    index.note_secrets(upstream_tls::secrets_read(origin, reference.tls));
    let tls = upstream_tls::resolve(world, origin, target.url_tls, reference.tls).map_err(RefError::Tls)?;
    let upstream = upstream(
        &target.destination,
        origin,
        target.discovery,
        &reference.settings,
        tls.tls,
    );
    let name = upstream.name.clone();
    for secret in tls.secrets {
        config.secrets.insert(secret.name.clone(), secret);
    }
    if let Some(endpoints) = target.endpoints {
        // The only way a Service's endpoints reach the configuration (their
        // absence aside, which is `trouble`): the incremental model relies
        // on it to follow an EndpointSlice change by writing them again.
        index.note_endpoints(&name, target.endpoints_of.as_ref(), &endpoints);
        config.endpoints.insert(name.clone(), endpoints);
    }
    config.add_upstream(upstream);
    Ok(Resolved {
        upstream: name,
        trouble: target.trouble,
    })
}

/// An upstream for what needs one whatever happens: an auth, rate limit or
/// tracing filter, or a TCP route. Every problem goes on `verdict`, followed
/// by `effect` (what requests or connections get meanwhile). A reference
/// that resolves to nothing gets an empty upstream of its own, so that the
/// filter calling it fails the way its failure mode says rather than
/// vanishing (a missing AuthService must not let every request through), and
/// so that it never empties a real upstream (a typo in a port name must not
/// take another route's endpoints away).
pub fn resolve_or_empty(
    world: &World,
    index: &ServiceIndex,
    reference: &Reference<'_>,
    effect: &str,
    config: &mut ir::Gateway,
    verdict: &mut Verdict,
) -> String {
    match resolve(world, index, reference, config) {
        Ok(resolved) => {
            if let Some(trouble) = resolved.trouble {
                trouble.record(verdict, effect);
            }
            resolved.upstream
        }
        Err(e) => {
            e.record(verdict, effect);
            let upstream = upstream(
                &format!("unresolved/{}", reference.origin.key()),
                reference.origin,
                ir::Discovery::Endpoints,
                &reference.settings,
                None,
            );
            let name = upstream.name.clone();
            index.note_endpoints(&name, None, &[]);
            config.endpoints.insert(name.clone(), Vec::new());
            config.add_upstream(upstream);
            name
        }
    }
}

/// The upstream to `destination`, named by the rule of the module documentation.
fn upstream(
    destination: &str,
    origin: &ObjectRef,
    discovery: ir::Discovery,
    settings: &ClusterSettings,
    tls: Option<ir::UpstreamTls>,
) -> ir::Upstream {
    let name = match settings::settings_key(settings, tls.as_ref()) {
        None => destination.to_string(),
        Some(key) => format!("{destination}~{:08x}", short_hash(&key)),
    };
    ir::Upstream {
        name,
        origins: vec![origin.clone()],
        discovery,
        protocol: settings.protocol,
        tls,
        load_balancing: settings.load_balancing,
        connect_timeout: settings.connect_timeout,
        circuit_breakers: settings.circuit_breakers,
        health_check: settings.health_check.clone(),
        outlier_detection: settings.outlier_detection,
        tcp_keepalive: settings.tcp_keepalive,
    }
}

/// Where a reference sends traffic, before the settings.
struct Target {
    destination: String,
    discovery: ir::Discovery,
    /// For EDS: the ready endpoints (none for a missing Service).
    endpoints: Option<Vec<ir::Endpoint>>,
    /// The Service port `endpoints` are of (none for a missing Service).
    endpoints_of: Option<(ServiceKey, ResolvedPort)>,
    /// An `https://` URL's TLS, verifying its host.
    url_tls: Option<ir::UpstreamTls>,
    trouble: Option<RefError>,
}

impl Target {
    fn find(
        service: ServiceRef,
        index: &ServiceIndex,
        allow_loopback: bool,
        origin: &ObjectRef,
    ) -> Result<Target, RefError> {
        let allowed = |host: &str| match address::forbidden(host, allow_loopback) {
            Some(why) => Err(RefError::Forbidden {
                host: host.to_string(),
                why,
            }),
            None => Ok(()),
        };
        let dns = |host: String, port: u16| Target {
            destination: ir::Upstream::dns_name(&host, port),
            discovery: ir::Discovery::Dns { hostname: host, port },
            endpoints: None,
            endpoints_of: None,
            url_tls: None,
            trouble: None,
        };
        let (name, namespace, port) = match service {
            ServiceRef::External { host, port, tls } => {
                allowed(&host)?;
                let url_tls = tls.then(|| ir::UpstreamTls {
                    sni: Some(host.clone()),
                    ca_secret: None,
                    client_certificate: None,
                });
                return Ok(Target {
                    url_tls,
                    ..dns(host, port)
                });
            }
            ServiceRef::Kubernetes {
                name,
                namespace,
                port,
            } => (name, namespace, port),
        };
        let Some(svc) = index.service(&namespace, &name) else {
            let port = match port {
                Some(PortRef::Number(n)) => n,
                _ => 80,
            };
            return Ok(Target {
                destination: ir::Upstream::service_name(&namespace, &name, port),
                discovery: ir::Discovery::Endpoints,
                endpoints: Some(Vec::new()),
                endpoints_of: None,
                url_tls: None,
                trouble: Some(RefError::ServiceNotFound { namespace, name }),
            });
        };
        if !consent::allows(svc, origin.namespace()) {
            // Traffic gets what a missing Service gives (503), from an
            // empty upstream of its own: the Service's real cluster, which
            // permitted namespaces share, is never touched.
            return Ok(Target {
                destination: format!("unresolved/{}", origin.key()),
                discovery: ir::Discovery::Endpoints,
                endpoints: Some(Vec::new()),
                endpoints_of: None,
                url_tls: None,
                trouble: Some(RefError::NotPermitted {
                    namespace,
                    name,
                    from: origin.namespace().to_string(),
                }),
            });
        }
        let resolved = resolve_port(svc, port.as_ref())?;
        let external_name = svc
            .spec
            .as_ref()
            .filter(|s| s.type_.as_deref() == Some("ExternalName"))
            .and_then(|s| s.external_name.clone());
        if let Some(host) = external_name {
            // Envoy resolves an ExternalName Service's host itself.
            allowed(&host)?;
            return Ok(dns(host, resolved.port));
        }
        let endpoints = index.endpoints(&namespace, &name, &resolved);
        let destination = ir::Upstream::service_name(&namespace, &name, resolved.port);
        let trouble = endpoints.is_empty().then(|| RefError::NoReadyEndpoints {
            namespace: namespace.clone(),
            name: name.clone(),
        });
        Ok(Target {
            destination,
            discovery: ir::Discovery::Endpoints,
            trouble,
            endpoints: Some(endpoints),
            endpoints_of: Some(((namespace, name), resolved)),
            url_tls: None,
        })
    }
}

#[cfg(test)]
mod tests;
