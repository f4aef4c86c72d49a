//! TLS from Envoy to an upstream: what an `https://` service implies,
//! refined by a Mapping's `upstreamTls`, with the Secrets it names read and
//! checked before Envoy sees them.

use legate_crds::mapping::UpstreamTls;
use legate_xds::ir::{self, ObjectRef};

use crate::secrets::{self, SecretKey};
use crate::verdicts::Problem;
use crate::world::World;

/// TLS towards an upstream and the Secrets Envoy needs for it over SDS.
#[derive(Debug, Default)]
pub struct ResolvedUpstreamTls {
    pub tls: Option<ir::UpstreamTls>,
    pub secrets: Vec<ir::Secret>,
}

/// The Secrets [`resolve`] reads for `settings` (found or not): what the
/// incremental model judges again when one of them changes.
pub fn secrets_read(origin: &ObjectRef, settings: Option<&UpstreamTls>) -> Vec<SecretKey> {
    let Some(settings) = settings else {
        return Vec::new();
    };
    [&settings.ca_secret, &settings.client_cert_secret]
        .into_iter()
        .flatten()
        .map(|name| (origin.namespace().to_string(), name.clone()))
        .collect()
}

/// `from_url` (an `https://` service's TLS, verifying its host) refined by
/// `settings`; the Secrets are looked up in `origin`'s namespace. A Secret
/// that is missing or broken is an error, never a fallback to unverified TLS.
pub fn resolve(
    world: &World,
    origin: &ObjectRef,
    from_url: Option<ir::UpstreamTls>,
    settings: Option<&UpstreamTls>,
) -> Result<ResolvedUpstreamTls, Problem> {
    let Some(settings) = settings else {
        return Ok(ResolvedUpstreamTls {
            tls: from_url,
            secrets: Vec::new(),
        });
    };
    let namespace = origin.namespace();
    let ca = settings
        .ca_secret
        .as_ref()
        .map(|name| secrets::authority(world, namespace, name, origin))
        .transpose()?;
    let client = settings
        .client_cert_secret
        .as_ref()
        .map(|name| secrets::certificate(world, namespace, name, origin))
        .transpose()?;
    let tls = ir::UpstreamTls {
        sni: settings.sni.clone().or_else(|| from_url.and_then(|t| t.sni)),
        ca_secret: ca.as_ref().map(|s| s.name.clone()),
        client_certificate: client.as_ref().map(|s| s.name.clone()),
    };
    Ok(ResolvedUpstreamTls {
        tls: Some(tls),
        secrets: ca.into_iter().chain(client).collect(),
    })
}
