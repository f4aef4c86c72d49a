//! A TLSContext as the certificate Envoy serves, with the Secrets it needs:
//! shared by HTTPS listeners and by TCPMappings that terminate TLS.

use kube::ResourceExt;
use legate_crds::TLSContext;
use legate_crds::tls_context::TlsVersion;
use legate_xds::ir;

use crate::names::object_ref;
use crate::secrets::{self, SecretKey};
use crate::verdicts::Problem;
use crate::world::World;

/// A TLSContext's certificate (and client CA) as Envoy serves them, with the
/// Secrets they need over SDS.
#[derive(Debug)]
pub struct ResolvedTls {
    pub server: ir::ServerTls,
    pub secrets: Vec<ir::Secret>,
}

/// The Secrets [`resolve`] reads (found or not): what the incremental model
/// watches to know when to build again.
pub fn secrets_read(context: &TLSContext) -> Vec<SecretKey> {
    let namespace = context.namespace().unwrap_or_default();
    std::iter::once(&context.spec.secret)
        .chain(&context.spec.ca_secret)
        .map(|name| (namespace.clone(), name.clone()))
        .collect()
}

/// Reads and checks a TLSContext's Secrets.
pub fn resolve(world: &World, context: &TLSContext) -> Result<ResolvedTls, Problem> {
    let namespace = context.namespace().unwrap_or_default();
    let origin = object_ref(context);
    let spec = &context.spec;
    let certificate = secrets::certificate(world, &namespace, &spec.secret, &origin)?;
    let client_ca = spec
        .ca_secret
        .as_ref()
        .map(|ca| secrets::authority(world, &namespace, ca, &origin))
        .transpose()?;
    let version = |v: Option<TlsVersion>| {
        v.map(|v| match v {
            TlsVersion::V1_0 => ir::TlsVersion::V1_0,
            TlsVersion::V1_1 => ir::TlsVersion::V1_1,
            TlsVersion::V1_2 => ir::TlsVersion::V1_2,
            TlsVersion::V1_3 => ir::TlsVersion::V1_3,
        })
    };
    let server = ir::ServerTls {
        origin,
        hostnames: spec.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        certificate: certificate.name.clone(),
        client_ca: client_ca.as_ref().map(|ca| ca.name.clone()),
        // As in Ambassador: a CA alone verifies the certificates clients
        // present; certRequired also refuses clients without one.
        require_client_certificate: spec.cert_required.unwrap_or(false),
        alpn: spec.alpn_protocols.clone(),
        cipher_suites: spec.cipher_suites.clone(),
        min_version: version(spec.min_tls_version),
        max_version: version(spec.max_tls_version),
    };
    Ok(ResolvedTls {
        server,
        secrets: std::iter::once(certificate).chain(client_ca).collect(),
    })
}
