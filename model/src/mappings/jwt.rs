//! A Mapping's `jwt`: the provider its route requires, and the upstream its
//! key set is fetched from.

use kube::ResourceExt;
use legate_crds::access::Jwt;
use legate_crds::mapping::Mapping;
use legate_xds::ir;

use crate::names::{object_ref, short_hash};
use crate::services::ServiceIndex;
use crate::upstreams::{self, ClusterSettings, Reference};
use crate::verdicts::Verdicts;
use crate::world::World;

/// Where a key set is served on a Service when `path` does not say.
const DEFAULT_JWKS_PATH: &str = "/.well-known/jwks.json";

/// The route's token check. A key set Service that does not exist gets an
/// empty upstream and ResolvedRefs=False: fetching the keys fails, so every
/// request to the route gets 401 (fail closed), and no other route changes.
pub(super) fn jwt_for(
    world: &World,
    mapping: &Mapping,
    index: &ServiceIndex,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) -> Option<ir::JwtAuth> {
    let jwt = mapping.spec.jwt.as_ref()?;
    let namespace = mapping.namespace().unwrap_or_default();
    let origin = object_ref(mapping);
    let (service, jwks_uri) = jwks_source(jwt, &namespace)?;
    let reference = Reference {
        service: &service,
        origin: &origin,
        settings: ClusterSettings::default(),
        tls: None,
    };
    let effect = "requests to this route get 401 until the keys that check its tokens can be fetched";
    let verdict = verdicts.entry(&origin);
    let jwks_upstream = upstreams::resolve_or_empty(world, index, &reference, effect, config, verdict);
    let claim_to_headers: Vec<(String, String)> = jwt
        .claim_to_headers
        .iter()
        .map(|c| (c.claim.clone(), c.header.to_ascii_lowercase()))
        .collect();
    // Everything a provider is made of, so that equal names mean equal
    // providers, and a namespace's provider is never another's.
    let key = format!(
        "{}\n{:?}\n{jwks_upstream}\n{jwks_uri}\n{claim_to_headers:?}\n{}",
        jwt.issuer, jwt.audiences, jwt.forward
    );
    Some(ir::JwtAuth {
        provider: format!("{namespace}/jwt-{:08x}", short_hash(&key)),
        issuer: jwt.issuer.clone(),
        audiences: jwt.audiences.clone(),
        jwks_upstream,
        jwks_uri,
        claim_to_headers,
        forward: jwt.forward,
    })
}

/// The `service` reference of the key set's host, and the key set's URL.
/// A Service is always of the Mapping's own namespace.
fn jwks_source(jwt: &Jwt, namespace: &str) -> Option<(String, String)> {
    if let Some(s) = &jwt.jwks.service {
        let path = jwt.jwks.path.as_deref().unwrap_or(DEFAULT_JWKS_PATH);
        return Some((
            format!("{}:{}", s.name, s.port),
            format!("http://{}.{namespace}.svc:{}{path}", s.name, s.port),
        ));
    }
    let uri = jwt.jwks.uri.as_ref()?;
    let rest = uri.strip_prefix("https://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    Some((format!("https://{authority}"), uri.clone()))
}
