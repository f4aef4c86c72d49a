//! Who owns each host on a Gateway. A host (or `*.` glob) belongs to one
//! namespace at a time: the one the Gateway assigns it to
//! (`spec.hostOwners`, the most specific entry), else the namespace of the
//! oldest object that claims the host or a glob covering it. Objects of any
//! other namespace on it are refused ([`HostOwners::judge`]).
//!
//! What claims: every Mapping, TLSContext and TCPMapping `sni` attached to
//! the Gateway and not being deleted, valid or not (a typo must not hand a
//! team's host to the next claimant). `*` is nobody's: a catch-all from
//! another namespace than the Gateway's only serves hosts nobody owns
//! (routes carry their tenant for that, see `ir::Route::tenant`). The
//! TLSContexts of the Gateway's own namespace claim nothing and may name
//! any host: a platform's wildcard certificate must not take every team's
//! host.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt};
use legate_crds::conditions::reasons;
use legate_crds::{Gateway, Mapping, TCPMapping, TLSContext};
use legate_xds::ir;

use crate::attach;
use crate::names::{gateway_key, object_ref, short_hash, tenant_of};
use crate::verdicts::Problem;
use crate::world::World;

/// One object's claim on a host; ordered oldest first (as `age_order`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    created: Option<Time>,
    namespace: String,
    name: String,
    kind: &'static str,
}

impl Claim {
    pub fn of<K: Resource<DynamicType = ()>>(object: &K) -> Claim {
        Claim {
            created: object.meta().creation_timestamp.clone(),
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
            kind: kind_name::<K>(),
        }
    }
}

fn kind_name<K: Resource<DynamicType = ()>>() -> &'static str {
    // The kinds that claim are Legate's own, with static kind names.
    match K::kind(&()).as_ref() {
        "Mapping" => "Mapping",
        "TLSContext" => "TLSContext",
        "TCPMapping" => "TCPMapping",
        _ => "object",
    }
}

/// Whoever owns a host, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Owner<'a> {
    /// The Gateway's `spec.hostOwners` entry for `pattern`.
    Assigned { namespace: &'a str, pattern: &'a str },
    /// The oldest claim on the host or a glob covering it; `key` is that
    /// pattern written backwards.
    Claimed { claim: &'a Claim, key: &'a str },
}

impl Owner<'_> {
    pub fn namespace(&self) -> &str {
        match self {
            Owner::Assigned { namespace, .. } => namespace,
            Owner::Claimed { claim, .. } => &claim.namespace,
        }
    }
}

/// The claims and assignments of hosts on one Gateway.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostOwners {
    gateway: String,
    gateway_namespace: String,
    /// `spec.hostOwners`: pattern → namespace.
    assigned: BTreeMap<String, String>,
    /// Claims by host pattern written backwards (`moc.elpmaxe.*`), so that
    /// the patterns a glob covers are one range.
    claims: BTreeMap<String, BTreeSet<Claim>>,
}

impl HostOwners {
    /// The assignments of `gateway`, and no claim yet.
    pub fn new(gateway: &Gateway) -> HostOwners {
        HostOwners {
            gateway: gateway_key(gateway),
            gateway_namespace: gateway.namespace().unwrap_or_default(),
            assigned: gateway
                .spec
                .host_owners
                .iter()
                .map(|a| (a.hostname.to_ascii_lowercase(), a.namespace.clone()))
                .collect(),
            claims: BTreeMap::new(),
        }
    }

    /// Every claim of the objects attached to `gateway` in `world`.
    pub fn of(world: &World, gateway: &Gateway) -> HostOwners {
        let mut owners = HostOwners::new(gateway);
        for mapping in &world.mappings {
            if let Some(pattern) = owners.mapping_claim(world, gateway, mapping) {
                owners.add(&pattern, Claim::of(mapping.as_ref()));
            }
        }
        owners.add_frame_claims(world, gateway);
        owners
    }

    /// Adds the claims of the TLSContexts and TCPMappings; the patterns they claim.
    pub fn add_frame_claims(&mut self, world: &World, gateway: &Gateway) -> Vec<String> {
        let mut patterns = Vec::new();
        for context in &world.tls_contexts {
            for pattern in self.tls_claims(world, gateway, context) {
                self.add(&pattern, Claim::of(context.as_ref()));
                patterns.push(pattern);
            }
        }
        for tcp in &world.tcp_mappings {
            if let Some(pattern) = self.tcp_claim(world, gateway, tcp) {
                self.add(&pattern, Claim::of(tcp.as_ref()));
                patterns.push(pattern);
            }
        }
        patterns
    }

    /// The host `mapping` claims on `gateway`, if it claims one.
    pub fn mapping_claim(&self, world: &World, gateway: &Gateway, mapping: &Mapping) -> Option<String> {
        let namespace = mapping.namespace().unwrap_or_default();
        let claims = mapping.meta().deletion_timestamp.is_none()
            && attach::attaches(world, gateway, &namespace, &mapping.spec.gateways);
        claims.then(|| pattern_of(&mapping.spec.hostname)).flatten()
    }

    fn tls_claims(&self, world: &World, gateway: &Gateway, context: &TLSContext) -> Vec<String> {
        let namespace = context.namespace().unwrap_or_default();
        if context.meta().deletion_timestamp.is_some()
            || namespace == self.gateway_namespace
            || !attach::tls_attaches(world, gateway, &namespace, &context.spec.gateways)
        {
            return Vec::new();
        }
        context.spec.hosts.iter().filter_map(|h| pattern_of(h)).collect()
    }

    fn tcp_claim(&self, world: &World, gateway: &Gateway, tcp: &TCPMapping) -> Option<String> {
        let namespace = tcp.namespace().unwrap_or_default();
        let claims = tcp.meta().deletion_timestamp.is_none()
            && attach::attaches(world, gateway, &namespace, &tcp.spec.gateways);
        claims
            .then(|| tcp.spec.sni.as_deref().and_then(pattern_of))
            .flatten()
    }

    pub fn add(&mut self, pattern: &str, claim: Claim) {
        self.claims.entry(backwards(pattern)).or_default().insert(claim);
    }

    pub fn remove(&mut self, pattern: &str, claim: &Claim) {
        let key = backwards(pattern);
        if let Some(claims) = self.claims.get_mut(&key) {
            claims.remove(claim);
            if claims.is_empty() {
                self.claims.remove(&key);
            }
        }
    }

    /// Who owns `pattern` (lower case); `None` for `*` or a host nobody claimed.
    pub fn owner<'a>(&'a self, pattern: &str) -> Option<Owner<'a>> {
        if pattern == "*" {
            return None;
        }
        let covering = covering_patterns(pattern);
        // Most specific assignment first: the pattern itself, then longer globs.
        for candidate in &covering {
            if let Some((pattern, namespace)) = self.assigned.get_key_value(candidate.as_str()) {
                return Some(Owner::Assigned { namespace, pattern });
            }
        }
        covering
            .iter()
            .filter_map(|candidate| {
                let (key, claims) = self.claims.get_key_value(&backwards(candidate))?;
                Some((claims.first()?, key))
            })
            .min_by(|a, b| a.0.cmp(b.0))
            .map(|(claim, key)| Owner::Claimed { claim, key })
    }

    /// Whether an object of `namespace` may serve `pattern` on this Gateway.
    pub fn judge(&self, pattern: &str, namespace: &str, kind: &str) -> Result<(), Problem> {
        let Some(pattern) = pattern_of(pattern) else {
            return Ok(());
        };
        match self.owner(&pattern) {
            Some(owner) if owner.namespace() != namespace => Err(Problem::new(
                reasons::HOST_NOT_OWNED,
                self.describe(&pattern, &owner, namespace, kind),
            )),
            _ => Ok(()),
        }
    }

    /// Whether a TLSContext (or TCPMapping `sni`) of `namespace` may name
    /// `pattern`: as [`HostOwners::judge`], and `*` only from the Gateway's
    /// namespace (which may name any host).
    pub fn judge_server_name(&self, pattern: &str, namespace: &str, kind: &str) -> Result<(), Problem> {
        if namespace == self.gateway_namespace {
            return Ok(());
        }
        if pattern_of(pattern).is_none() {
            let message = format!(
                "a {kind} of namespace {namespace} cannot name every host (*) on Gateway {}: only the Gateway's namespace ({}) may; name the hosts this namespace owns",
                self.gateway, self.gateway_namespace
            );
            return Err(Problem::new(reasons::HOST_NOT_OWNED, message));
        }
        self.judge(pattern, namespace, kind)
    }

    fn describe(&self, pattern: &str, owner: &Owner<'_>, namespace: &str, kind: &str) -> String {
        let why = match owner {
            Owner::Assigned {
                pattern: assigned, ..
            } => {
                format!("the Gateway assigns {assigned} to it in spec.hostOwners")
            }
            Owner::Claimed { claim, key } => {
                let claimed = backwards(key);
                let under = if claimed == pattern {
                    String::new()
                } else {
                    format!(" through {claimed}")
                };
                format!(
                    "{} {}/{} claimed it first{under}",
                    claim.kind, claim.namespace, claim.name
                )
            }
        };
        format!(
            "host {pattern} on Gateway {} belongs to namespace {} ({why}); a {kind} of namespace {namespace} cannot serve it. Use a host of this namespace's own, or ask the Gateway's owners to assign it to {namespace} (spec.hostOwners)",
            self.gateway,
            owner.namespace(),
        )
    }

    /// The claims whose owner may change when claims on `pattern` change:
    /// the claims on `pattern` and, for a glob, on every pattern it covers.
    pub fn claims_under<'a>(&'a self, pattern: &str) -> impl Iterator<Item = &'a Claim> + 'a {
        let key = backwards(pattern);
        let (start, glob) = match key.strip_suffix('*') {
            // `moc.elpmaxe.*` covers every key starting `moc.elpmaxe.`.
            Some(prefix) => (prefix.to_string(), true),
            None => (key.clone(), false),
        };
        self.claims
            .range::<String, _>((Bound::Included(start.clone()), Bound::Unbounded))
            .take_while(move |(k, _)| if glob { k.starts_with(&start) } else { **k == start })
            .flat_map(|(_, claims)| claims.iter())
    }
}

impl Claim {
    /// The object key (`Kind/namespace/name`) of the claiming object.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// A last route (404) for each host the Gateway assigns, on its HTTP
/// listeners: it gives the host a virtual host of its own even before its
/// owner routes anything there, so that requests for it never fall to the
/// catch-all virtual host, where other namespaces' catch-alls answer.
pub fn add_assigned_host_routes(gateway: &Gateway, config: &mut ir::Gateway) {
    let origin = object_ref(gateway);
    let listeners: Vec<String> = config
        .listeners
        .values()
        .filter(|l| l.protocol.is_http())
        .map(|l| l.name.clone())
        .collect();
    for owner in &gateway.spec.host_owners {
        let Some(pattern) = pattern_of(&owner.hostname) else {
            continue;
        };
        for listener in &listeners {
            // One per host and listener, named after both.
            let id = ir::RouteId::rule(&origin, short_hash(&format!("{listener} {pattern}")));
            let route = ir::Route {
                id: id.clone(),
                origin: origin.clone(),
                co_origins: Vec::new(),
                listener: listener.clone(),
                hostnames: vec![pattern.clone()],
                tenant: tenant_of(gateway, &owner.namespace),
                precedence: i32::MIN,
                matcher: ir::RouteMatch::default(),
                action: ir::RouteAction::DirectResponse {
                    status: 404,
                    body: None,
                },
                policy: ir::RoutePolicy::default(),
            };
            config.routes.insert(id, route);
        }
    }
}

/// The claimable pattern of a hostname: lower case; `None` for `*` (and
/// for no hostname, which means every host).
pub fn pattern_of(hostname: &str) -> Option<String> {
    match hostname {
        "" | "*" => None,
        host => Some(host.to_ascii_lowercase()),
    }
}

/// Do two patterns share a host (one covers the other)?
pub fn overlap(a: &str, b: &str) -> bool {
    covers(a, b) || covers(b, a)
}

/// Does `pattern` cover `host` (a name or a narrower glob)?
fn covers(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => false,
    }
}

/// `pattern` and every `*.` glob that covers it, most specific first.
fn covering_patterns(pattern: &str) -> Vec<String> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let mut out = vec![pattern.to_string()];
    let mut rest = name;
    while let Some((_, parent)) = rest.split_once('.') {
        out.push(format!("*.{parent}"));
        rest = parent;
    }
    out
}

fn backwards(pattern: &str) -> String {
    pattern.chars().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_cover_the_names_under_them() {
        assert_eq!(
            covering_patterns("a.shop.example.com"),
            [
                "a.shop.example.com",
                "*.shop.example.com",
                "*.example.com",
                "*.com"
            ]
        );
        assert_eq!(
            covering_patterns("*.shop.example.com"),
            ["*.shop.example.com", "*.example.com", "*.com"]
        );
        assert!(overlap("*.example.com", "shop.example.com"));
        assert!(overlap("shop.example.com", "*.example.com"));
        assert!(!overlap("*.example.com", "example.com"));
        assert!(!overlap("a.example.com", "b.example.com"));
    }
}
