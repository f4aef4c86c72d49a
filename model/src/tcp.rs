//! TCPMappings → TCP routes: a Gateway's TCP or TLS listener port (and, on a
//! TLS listener, an SNI name) to Services, TLS passed through or terminated.
//! TCPMappings of one namespace with the same port and SNI split connections
//! by weight; another namespace claiming them is Conflicted (the older wins).

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::{Resource, ResourceExt};
use legate_crds::conditions::reasons;
use legate_crds::gateway::Protocol;
use legate_crds::{Gateway, TCPMapping};
use legate_xds::ir;

use crate::age::age_order;
use crate::attach;
use crate::hosts::HostOwners;
use crate::names::{gateway_key, object_ref};
use crate::server_tls::{self, ResolvedTls};
use crate::services::ServiceIndex;
use crate::upstreams::{self, ClusterSettings, Reference};
use crate::verdicts::{Problem, Verdicts};
use crate::weights::{self, Share};
use crate::world::{Quarantine, World};

/// One TCPMapping that may take connections of a listener.
struct Candidate {
    mapping: Arc<TCPMapping>,
    listener: String,
    sni: Vec<String>,
    upstream: String,
    tls: Option<ResolvedTls>,
}

/// Adds the TCP routes of every TCPMapping attached to `gateway`. One with no
/// listener on its port here is judged by [`attach::judge_unattached`], once
/// every Gateway has had its turn.
pub fn add_tcp_routes(
    world: &World,
    gateway: &Gateway,
    hosts: &HostOwners,
    quarantine: &Quarantine,
    index: &ServiceIndex,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    let key = gateway_key(gateway);
    // Members of a group share one filter chain: the same listener, server
    // names and TLS handling (passed through, or terminated by one TLSContext).
    let mut groups: BTreeMap<(String, Vec<String>, Option<String>), Vec<Candidate>> = BTreeMap::new();
    for tcp in &world.tcp_mappings {
        if tcp.meta().deletion_timestamp.is_some() {
            continue;
        }
        let namespace = tcp.namespace().unwrap_or_default();
        if !attach::attaches(world, gateway, &namespace, &tcp.spec.gateways) {
            continue;
        }
        let Some(listener) = gateway.spec.listeners.iter().find(|l| l.port == tcp.spec.port) else {
            continue;
        };
        let origin = object_ref(tcp.as_ref());
        let verdict = verdicts.entry(&origin);
        let problem = match (listener.protocol, &tcp.spec.sni) {
            (Protocol::Http | Protocol::Https, _) => Some(format!(
                "port {} of Gateway {key} is the {:?} listener {:?}; a TCPMapping needs a TCP or TLS listener",
                tcp.spec.port, listener.protocol, listener.name
            )),
            (Protocol::Tcp, Some(_)) => Some(format!(
                "sni needs a TLS listener; port {} of Gateway {key} is the TCP listener {:?}",
                tcp.spec.port, listener.name
            )),
            (Protocol::Tcp, None) if tcp.spec.tls_context.is_some() => Some(format!(
                "tlsContext needs a TLS listener; port {} of Gateway {key} is the TCP listener {:?}",
                tcp.spec.port, listener.name
            )),
            _ => None,
        };
        if let Some(message) = problem {
            verdict.accepted = Err(Problem::new(reasons::INVALID, message));
            continue;
        }
        if let Some(sni) = &tcp.spec.sni
            && let Err(problem) = hosts.judge_server_name(sni, &namespace, "TCPMapping")
        {
            verdict.accepted = Err(problem);
            continue;
        }
        // Envoy refused this generation here: out of this Gateway until the next.
        if quarantine.holds(&key, &origin.key(), origin.generation()) {
            verdict.carried_by(&key);
            continue;
        }
        let tls = match terminating_tls(world, tcp, &namespace) {
            Ok(tls) => tls,
            Err(problem) => {
                verdict.resolved_refs = Err(problem);
                continue;
            }
        };
        let reference = Reference {
            service: &tcp.spec.service,
            origin: &origin,
            // Raw TCP: no HTTP protocol options on this cluster.
            settings: ClusterSettings::default(),
            tls: None,
        };
        let effect = "connections are closed";
        let upstream = upstreams::resolve_or_empty(world, index, &reference, effect, config, verdict);
        let mut sni: Vec<String> = tcp.spec.sni.iter().map(|s| s.to_ascii_lowercase()).collect();
        if sni.is_empty()
            && let Some(tls) = &tls
        {
            // Terminating without an `sni` of its own: the TLSContext's hosts.
            sni = tls.server.hostnames.clone();
        }
        sni.sort();
        groups
            .entry((listener.name.clone(), sni.clone(), tcp.spec.tls_context.clone()))
            .or_default()
            .push(Candidate {
                mapping: tcp.clone(),
                listener: listener.name.clone(),
                sni,
                upstream,
                tls,
            });
    }
    let mut groups: Vec<Vec<Candidate>> = groups
        .into_values()
        .map(|mut members| {
            members.sort_by(|a, b| age_order(a.mapping.as_ref(), b.mapping.as_ref()));
            members
        })
        .collect();
    groups.sort_by(|a, b| match (a.first(), b.first()) {
        (Some(a), Some(b)) => age_order(a.mapping.as_ref(), b.mapping.as_ref()),
        _ => std::cmp::Ordering::Equal,
    });
    // Server names (or "" for the default chain) already taken, per listener:
    // Envoy refuses two filter chains that match the same connection.
    let mut claimed: BTreeMap<(String, String), String> = BTreeMap::new();
    for members in groups {
        let Some(oldest) = members.first() else {
            continue;
        };
        let names: Vec<String> = if oldest.sni.is_empty() {
            vec![String::new()]
        } else {
            oldest.sni.clone()
        };
        let taken = names.iter().find_map(|n| {
            claimed
                .get(&(oldest.listener.clone(), n.clone()))
                .map(|h| (n.clone(), h.clone()))
        });
        if let Some((name, holder)) = taken {
            let what = if name.is_empty() {
                format!("port {}", oldest.mapping.spec.port)
            } else {
                format!("port {} for {name}", oldest.mapping.spec.port)
            };
            for member in &members {
                refuse(
                    verdicts,
                    &member.mapping,
                    Problem::new(
                        reasons::CONFLICTED,
                        format!("{what} is already routed by {holder}, which is older"),
                    ),
                );
            }
            continue;
        }
        let holder = format!(
            "TCPMapping {}/{}",
            oldest.mapping.namespace().unwrap_or_default(),
            oldest.mapping.name_any()
        );
        for name in names {
            claimed.insert((oldest.listener.clone(), name), holder.clone());
        }
        let members = keep_first_namespace(members, verdicts);
        let weights = split(&members, verdicts);
        let Some(first) = members.first() else {
            continue;
        };
        let origin = object_ref(first.mapping.as_ref());
        let mut upstreams: Vec<ir::WeightedUpstream> = Vec::new();
        let mut co_origins = Vec::new();
        for (member, weight) in members.iter().zip(&weights) {
            let Some(weight) = weight else { continue };
            if let Some(tls) = &member.tls {
                for secret in &tls.secrets {
                    config.secrets.insert(secret.name.clone(), secret.clone());
                }
            }
            // Envoy refuses a zero weight: such a member is attached, with no share.
            match upstreams.iter_mut().find(|u| u.upstream == member.upstream) {
                Some(same) => same.weight += weight,
                None if *weight > 0 => upstreams.push(ir::WeightedUpstream {
                    upstream: member.upstream.clone(),
                    weight: *weight,
                }),
                None => {}
            }
            if member.mapping.name_any() != first.mapping.name_any() {
                co_origins.push(object_ref(member.mapping.as_ref()));
            }
            verdicts
                .entry(&object_ref(member.mapping.as_ref()))
                .carried_by(&key);
        }
        let route = ir::TcpRoute {
            id: ir::RouteId::of(&origin),
            origin,
            co_origins,
            listener: first.listener.clone(),
            sni: first.sni.clone(),
            upstreams,
            idle_timeout: first
                .mapping
                .spec
                .idle_timeout
                .as_ref()
                .and_then(|d| d.to_std().ok()),
            tls: first.tls.as_ref().map(|t| t.server.clone()),
        };
        config.tcp_routes.insert(route.id.clone(), route);
    }
}

/// The namespace of the oldest claim keeps the port and SNI; the others are
/// Conflicted, with the name of what holds it.
fn keep_first_namespace(members: Vec<Candidate>, verdicts: &mut Verdicts) -> Vec<Candidate> {
    let Some(first) = members.first() else {
        return members;
    };
    let owner = first.mapping.namespace();
    let holder = format!(
        "TCPMapping {}/{}",
        owner.clone().unwrap_or_default(),
        first.mapping.name_any()
    );
    let (kept, others): (Vec<_>, Vec<_>) = members.into_iter().partition(|m| m.mapping.namespace() == owner);
    for other in others {
        let what = if other.sni.is_empty() {
            format!("port {}", other.mapping.spec.port)
        } else {
            format!("port {} for {}", other.mapping.spec.port, other.sni.join(", "))
        };
        let message = format!("{what} is already routed by {holder}, which is older");
        refuse(
            verdicts,
            &other.mapping,
            Problem::new(reasons::CONFLICTED, message),
        );
    }
    kept
}

/// Records why a TCPMapping carries no traffic.
fn refuse(verdicts: &mut Verdicts, mapping: &TCPMapping, problem: Problem) {
    let origin = object_ref(mapping);
    verdicts.entry(&origin).accepted = Err(problem);
}

/// Each member's share of the connections, by the one weights rule
/// ([`weights::split`]); a member whose weight takes the total past 100 is
/// Invalid and gets `None`.
fn split(members: &[Candidate], verdicts: &mut Verdicts) -> Vec<Option<u32>> {
    let weights: Vec<Option<u32>> = members
        .iter()
        .map(|m| m.mapping.spec.weight.and_then(|w| u32::try_from(w).ok()))
        .collect();
    let shares = weights::split(&weights);
    members
        .iter()
        .zip(shares)
        .map(|(member, share)| match share {
            Share::Percent(percent) => Some(percent),
            Share::Refused { weight, total } => {
                let message = format!(
                    "weight {weight} takes the TCPMappings of port {} past 100 (older ones already have {total})",
                    member.mapping.spec.port
                );
                refuse(verdicts, &member.mapping, Problem::new(reasons::INVALID, message));
                None
            }
        })
        .collect()
}

/// The TLSContext (in the TCPMapping's namespace) whose certificate a
/// TCPMapping terminates TLS with, if it names one.
fn terminating_tls(world: &World, tcp: &TCPMapping, namespace: &str) -> Result<Option<ResolvedTls>, Problem> {
    let Some(name) = &tcp.spec.tls_context else {
        return Ok(None);
    };
    let context = world
        .tls_contexts
        .iter()
        .find(|c| c.namespace().as_deref() == Some(namespace) && c.name_any() == *name)
        .ok_or_else(|| {
            Problem::new(
                reasons::BACKEND_NOT_FOUND,
                format!("TLSContext {namespace}/{name} does not exist; connections are not accepted"),
            )
        })?;
    server_tls::resolve(world, context)
        .map(Some)
        .map_err(|mut problem| {
            problem.message = format!("TLSContext {namespace}/{name}: {}", problem.message);
            problem
        })
}
