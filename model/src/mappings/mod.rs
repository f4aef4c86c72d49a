//! Mappings → routes. Each Mapping is validated ([`validate`]), attached to
//! the Gateways that admit its namespace, grouped with the Mappings of the
//! same match and checked for conflicts between namespaces ([`conflicts`]),
//! weighted ([`crate::weights`]), and built into one route per HTTP listener
//! ([`routes`], [`policy`]) with the upstreams it sends to ([`upstream`]).

mod conflicts;
mod jwt;
mod policy;
mod routes;
mod upstream;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::{Resource, ResourceExt};
use legate_crds::Gateway;
use legate_crds::conditions::reasons;
use legate_crds::gateway::{RouteDefaults, RouteStats};
use legate_crds::mapping::Mapping;
use legate_xds::ir;

use crate::attach;
use crate::hosts::HostOwners;
use crate::names::{gateway_key, object_ref};
use crate::services::ServiceIndex;
use crate::verdicts::{Problem, Verdicts};
use crate::weights::{self, Share};
use crate::world::{Quarantine, World};

pub(crate) use conflicts::match_key;
use conflicts::resolve_conflicts;
use routes::build_route;
pub(crate) use validate::validate;

/// Adds the routes of every Mapping attached to `gateway` and records verdicts.
pub fn add_routes(
    world: &World,
    gateway: &Gateway,
    hosts: &HostOwners,
    index: &ServiceIndex,
    quarantine: &Quarantine,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    let key = gateway_key(gateway);
    let settings = route_settings(gateway);
    let listeners = http_listeners(config);

    // Valid Mappings attached to this Gateway, grouped by what they match.
    let mut groups: BTreeMap<String, Vec<Arc<Mapping>>> = BTreeMap::new();
    for mapping in &world.mappings {
        match place(world, gateway, hosts, quarantine, mapping, || validate(mapping)) {
            Placement::Ignored => {}
            Placement::Invalid(problem) | Placement::Refused(problem) => {
                verdicts.reject(&object_ref(mapping.as_ref()), problem)
            }
            Placement::Quarantined => verdicts.entry(&object_ref(mapping.as_ref())).carried_by(&key),
            Placement::Routed => groups
                .entry(match_key(mapping))
                .or_default()
                .push(mapping.clone()),
        }
    }
    for members in groups.into_values() {
        route_group(
            world, members, &listeners, &settings, index, &key, config, verdicts,
        );
    }
}

/// Where one Mapping stands on one Gateway, before it meets the Mappings of
/// the same match.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Placement {
    /// Being deleted, or not attached to this Gateway: nothing to say here.
    Ignored,
    /// Not valid on its own (the same on every Gateway).
    Invalid(Problem),
    /// Its host belongs to another namespace on this Gateway.
    Refused(Problem),
    /// Envoy refused this generation: its status says so, and it stays out
    /// so that everyone else's changes still reach Envoy.
    Quarantined,
    /// Joins the group of its match ([`match_key`]).
    Routed,
}

/// Where `mapping` stands on `gateway`; `validity` is [`validate`]'s answer,
/// asked only for a Mapping that is not being deleted.
pub(crate) fn place(
    world: &World,
    gateway: &Gateway,
    hosts: &HostOwners,
    quarantine: &Quarantine,
    mapping: &Mapping,
    validity: impl FnOnce() -> Result<(), Problem>,
) -> Placement {
    if mapping.meta().deletion_timestamp.is_some() {
        return Placement::Ignored;
    }
    if let Err(problem) = validity() {
        return Placement::Invalid(problem);
    }
    let namespace = mapping.namespace().unwrap_or_default();
    if !attach::attaches(world, gateway, &namespace, &mapping.spec.gateways) {
        return Placement::Ignored;
    }
    if let Err(problem) = hosts.judge(&mapping.spec.hostname, &namespace, "Mapping") {
        return Placement::Refused(problem);
    }
    if !quarantine.is_empty() {
        let reference = object_ref(mapping);
        if quarantine.holds(&gateway_key(gateway), &reference.key(), reference.generation()) {
            return Placement::Quarantined;
        }
    }
    Placement::Routed
}

/// What a Gateway sets on the routes of every Mapping: defaults for what a
/// Mapping leaves unset, and whether routes keep statistics (the Gateway's
/// alone to decide: they cost every route of the listener).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RouteSettings {
    pub defaults: RouteDefaults,
    pub stats: bool,
    /// The Gateway's request body limit, which a Mapping may only lower.
    pub max_body: Option<u32>,
    /// `namespace/name` of the Gateway, for the notes its limits give.
    pub gateway: String,
}

pub(crate) fn route_settings(gateway: &Gateway) -> RouteSettings {
    let defaults = gateway.spec.defaults.clone().unwrap_or_default();
    RouteSettings {
        defaults,
        stats: gateway.spec.route_stats == RouteStats::PerMapping,
        max_body: gateway
            .spec
            .http
            .as_ref()
            .and_then(|h| h.max_request_body_bytes)
            .and_then(|n| u32::try_from(n).ok()),
        gateway: gateway_key(gateway),
    }
}

/// The listeners of `config` that carry Mappings.
pub(crate) fn http_listeners(config: &ir::Gateway) -> Vec<String> {
    config
        .listeners
        .values()
        .filter(|l| {
            matches!(
                l.protocol,
                ir::ListenerProtocol::Http | ir::ListenerProtocol::Https
            )
        })
        .map(|l| l.name.clone())
        .collect()
}

/// The routes of the Mappings of one match (`members`, in any order) on
/// each of `listeners`, and their verdicts. What one group adds touches no
/// other group's routes or verdicts: the incremental model re-judges groups
/// one by one on that promise.
#[allow(clippy::too_many_arguments)]
pub(crate) fn route_group(
    world: &World,
    members: Vec<Arc<Mapping>>,
    listeners: &[String],
    settings: &RouteSettings,
    index: &ServiceIndex,
    gateway_key: &str,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    let members = resolve_conflicts(members, verdicts);
    let Some(route_members) = split_weights(members, verdicts) else {
        return;
    };
    // Every member is of one namespace (conflicts keep the first's).
    let gateway_namespace = gateway_key.split_once('/').map_or("", |(namespace, _)| namespace);
    let tenant = route_members
        .primaries
        .first()
        .map(|(m, _)| m.namespace().unwrap_or_default())
        .filter(|namespace| namespace != gateway_namespace);
    for listener in listeners {
        let built = build_route(
            world,
            &route_members,
            listener,
            tenant.clone(),
            settings,
            index,
            config,
            verdicts,
        );
        let Some(route) = built else {
            continue;
        };
        // The translator refuses what Envoy could not run; say so on the
        // Mappings rather than let the route silently never arrive.
        match route.validate() {
            Ok(()) => {
                config.routes.insert(route.id.clone(), route);
            }
            Err(e) => {
                for mapping in route_members.all() {
                    let object = object_ref(mapping.as_ref());
                    // A member whose upstream is forbidden (which may leave the
                    // route with none) keeps the reason that says why. (That
                    // depends on its own spec alone, so every Gateway agrees.)
                    let refused = verdicts.entry(&object).accepted.as_ref().err();
                    if refused.is_some_and(|p| p.reason == reasons::FORBIDDEN_UPSTREAM) {
                        continue;
                    }
                    let message = format!("the route cannot be sent to Envoy: {e}");
                    verdicts.reject(&object, Problem::new(reasons::INVALID, message));
                }
            }
        }
    }
    for mapping in route_members.all() {
        let verdict = verdicts.entry(&object_ref(mapping.as_ref()));
        if verdict.accepted.is_ok() {
            verdict.carried_by(gateway_key);
            let hostname = mapping.spec.hostname.as_str();
            if tenant.is_some() && (hostname == "*" || hostname.starts_with("*.")) {
                verdict.note(format!(
                    "on Gateway {gateway_key}, hostname {hostname} serves the hosts no other namespace owns, never another namespace's"
                ));
            }
        }
    }
}

/// The members of one route: who gets traffic, with what weight, and who mirrors.
#[derive(Debug)]
struct RouteMembers {
    /// Receive traffic; the first is the route's origin. Weights are relative.
    primaries: Vec<(Arc<Mapping>, u32)>,
    /// Mirror a percentage of the traffic.
    shadows: Vec<(Arc<Mapping>, u32)>,
}

impl RouteMembers {
    fn all(&self) -> impl Iterator<Item = &Arc<Mapping>> {
        self.primaries.iter().chain(self.shadows.iter()).map(|(m, _)| m)
    }
}

/// `spec.weight`, when it is one (the API server keeps it within 0-100).
fn weight(mapping: &Mapping) -> Option<u32> {
    mapping.spec.weight.and_then(|w| u32::try_from(w).ok())
}

/// The primaries' shares by the one weights rule ([`weights::split`]); a
/// Mapping whose weight takes the total above 100 is Invalid (the older
/// Mappings keep working). Shadows mirror `weight` percent (all by default).
fn split_weights(members: Vec<Arc<Mapping>>, verdicts: &mut Verdicts) -> Option<RouteMembers> {
    let (shadows, primaries): (Vec<_>, Vec<_>) =
        members.into_iter().partition(|m| m.spec.shadow.unwrap_or(false));
    let weights: Vec<Option<u32>> = primaries.iter().map(|m| weight(m)).collect();
    let mut all: Vec<(Arc<Mapping>, u32)> = Vec::new();
    for (mapping, share) in primaries.into_iter().zip(weights::split(&weights)) {
        match share {
            Share::Percent(percent) => all.push((mapping, percent)),
            Share::Refused { weight, total } => {
                let message = format!(
                    "weight {weight} takes the Mappings for this match to {} percent; weights may add up to 100 at most",
                    total.saturating_add(weight)
                );
                verdicts.reject(
                    &object_ref(mapping.as_ref()),
                    Problem::new(reasons::INVALID, message),
                );
            }
        }
    }
    let shadows: Vec<(Arc<Mapping>, u32)> = shadows
        .into_iter()
        .map(|m| {
            let percent = weight(&m).unwrap_or(100);
            (m, percent)
        })
        .collect();
    if all.is_empty() {
        for (mapping, _) in &shadows {
            let message =
                "a shadow Mapping mirrors the traffic of a Mapping with the same match, and there is none";
            verdicts.reject(
                &object_ref(mapping.as_ref()),
                Problem::new(reasons::INVALID, message),
            );
        }
        return None;
    }
    Some(RouteMembers {
        primaries: all,
        shadows,
    })
}
