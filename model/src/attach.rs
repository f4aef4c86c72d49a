//! Which Gateways an object attaches to: those it names (or all, when it names
//! none) that admit its namespace; and NoGateway for objects no Gateway carries.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{Resource, ResourceExt};
use legate_crds::conditions::reasons;
use legate_crds::gateway::FromNamespaces;
use legate_crds::{Gateway, GatewayRef, Mapping, TCPMapping};
use legate_xds::ir;

use crate::names::{gateway_key, object_ref};
use crate::verdicts::{Problem, Verdict, Verdicts};
use crate::world::World;

/// Whether `gateway` admits routes from `namespace`.
pub fn admits(world: &World, gateway: &Gateway, namespace: &str) -> bool {
    let allowed = &gateway.spec.allowed_routes.namespaces;
    match allowed.from {
        FromNamespaces::All => true,
        FromNamespaces::Same => gateway.namespace().as_deref() == Some(namespace),
        FromNamespaces::Selector => {
            let labels = world
                .namespaces
                .iter()
                .find(|ns| ns.name_any() == namespace)
                .map(|ns| ns.labels().clone())
                .unwrap_or_default();
            allowed
                .selector
                .as_ref()
                .is_some_and(|s| selector_matches(s, &labels))
        }
    }
}

/// Whether the object with `refs` in `namespace` attaches to `gateway`.
pub fn attaches(world: &World, gateway: &Gateway, namespace: &str, refs: &[GatewayRef]) -> bool {
    let named = refs.is_empty()
        || refs.iter().any(|r| {
            r.name == gateway.name_any()
                && r.namespace.as_deref().unwrap_or(namespace) == gateway.namespace().unwrap_or_default()
        });
    named && admits(world, gateway, namespace)
}

/// Whether a TLSContext in `namespace` that names `refs` attaches to
/// `gateway`. Its certificate's private key goes to every Envoy of the
/// Gateways it attaches to, so naming none means the Gateways of its own
/// namespace only, not every Gateway that admits it: whoever may create a
/// Gateway must not receive another team's keys by admitting its namespace.
pub fn tls_attaches(world: &World, gateway: &Gateway, namespace: &str, refs: &[GatewayRef]) -> bool {
    if refs.is_empty() && gateway.namespace().as_deref() != Some(namespace) {
        return false;
    }
    attaches(world, gateway, namespace, refs)
}

/// Why a TLSContext attaches to no Gateway: as [`no_gateway_message`], and,
/// when it names none while Gateways of other namespaces admit it, how to
/// send its key there.
pub fn tls_no_gateway_message(world: &World, namespace: &str, refs: &[GatewayRef]) -> String {
    let elsewhere = world
        .gateways
        .iter()
        .find(|g| g.namespace().as_deref() != Some(namespace) && admits(world, g, namespace));
    match elsewhere {
        Some(g) if refs.is_empty() => format!(
            "a TLSContext that names no Gateway is served only by the Gateways of its own namespace {namespace:?}, \
             so that its private key goes nowhere else; to serve it on Gateway {}, name it in spec.gateways",
            gateway_key(g)
        ),
        _ => no_gateway_message(world, namespace, refs),
    }
}

/// Why an object attaches to no Gateway, in a sentence for `kubectl describe`.
pub fn no_gateway_message(world: &World, namespace: &str, refs: &[GatewayRef]) -> String {
    if refs.is_empty() {
        if world.gateways.is_empty() {
            return "no Gateway exists yet; create one (see examples/gateway.yaml)".into();
        }
        return format!(
            "no Gateway admits routes from namespace {namespace:?} (see each Gateway's spec.allowedRoutes)"
        );
    }
    let mut reasons = Vec::new();
    for r in refs {
        let ns = r.namespace.as_deref().unwrap_or(namespace);
        let found = world
            .gateways
            .iter()
            .find(|g| g.name_any() == r.name && g.namespace().as_deref() == Some(ns));
        match found {
            None => reasons.push(format!("Gateway {ns}/{} does not exist", r.name)),
            Some(_) => reasons.push(format!(
                "Gateway {ns}/{} does not admit routes from namespace {namespace:?} (see its spec.allowedRoutes)",
                r.name
            )),
        }
    }
    reasons.join("; ")
}

/// Label selector semantics (matchLabels and matchExpressions).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or(&[]);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            // An operator Kubernetes does not define matches nothing.
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// Objects that no Gateway carries: NoGateway. A TCPMapping also needs a
/// listener on its port; the per-Gateway pass skips those it cannot place,
/// so they are judged here too.
pub fn judge_unattached(world: &World, verdicts: &mut Verdicts) {
    for m in &world.mappings {
        judge_unattached_mapping(world, m, verdicts.entry(&object_ref(m.as_ref())));
    }
    judge_unattached_except_mappings(world, verdicts);
}

/// NoGateway for a Mapping that no Gateway carries and nothing refused.
pub fn judge_unattached_mapping(world: &World, mapping: &Mapping, verdict: &mut Verdict) {
    let namespace = mapping.namespace().unwrap_or_default();
    no_gateway(world, verdict, &namespace, &mapping.spec.gateways);
}

/// NoGateway on `verdict`, of an object in `namespace` that names `refs`,
/// if no Gateway carries it and nothing refused it.
fn no_gateway(world: &World, verdict: &mut Verdict, namespace: &str, refs: &[GatewayRef]) {
    if verdict.accepted.is_ok() && verdict.gateways.is_empty() {
        verdict.accepted = Err(Problem::new(
            reasons::NO_GATEWAY,
            no_gateway_message(world, namespace, refs),
        ));
    }
}

/// [`judge_unattached`] for every kind but Mappings, which the incremental
/// model judges one by one.
pub fn judge_unattached_except_mappings(world: &World, verdicts: &mut Verdicts) {
    for t in &world.tls_contexts {
        let namespace = t.namespace().unwrap_or_default();
        let verdict = verdicts.entry(&object_ref(t.as_ref()));
        if verdict.accepted.is_ok() && verdict.gateways.is_empty() {
            let message = tls_no_gateway_message(world, &namespace, &t.spec.gateways);
            verdict.accepted = Err(Problem::new(reasons::NO_GATEWAY, message));
        }
    }
    let mut judge = |origin: ir::ObjectRef, namespace: String, refs: &[GatewayRef]| {
        no_gateway(world, verdicts.entry(&origin), &namespace, refs);
    };
    for a in &world.auth_services {
        judge(
            object_ref(a.as_ref()),
            a.namespace().unwrap_or_default(),
            &a.spec.gateways,
        );
    }
    for r in &world.rate_limit_services {
        judge(
            object_ref(r.as_ref()),
            r.namespace().unwrap_or_default(),
            &r.spec.gateways,
        );
    }
    for t in &world.tcp_mappings {
        let verdict = verdicts.entry(&object_ref(t.as_ref()));
        if verdict.accepted.is_ok()
            && verdict.gateways.is_empty()
            && let Some(message) = no_listener_message(world, t)
        {
            verdict.accepted = Err(Problem::new(reasons::NO_GATEWAY, message));
        }
    }
}

/// Why no Gateway can carry a TCPMapping, if none can: none admits it, or
/// none that does has a listener on its port. `None` when one has (the
/// TCPMapping was judged there).
fn no_listener_message(world: &World, tcp: &TCPMapping) -> Option<String> {
    let namespace = tcp.namespace().unwrap_or_default();
    let admitting: Vec<&Arc<Gateway>> = world
        .gateways
        .iter()
        .filter(|g| g.meta().deletion_timestamp.is_none())
        .filter(|g| attaches(world, g, &namespace, &tcp.spec.gateways))
        .collect();
    if admitting.is_empty() {
        return Some(no_gateway_message(world, &namespace, &tcp.spec.gateways));
    }
    let port = tcp.spec.port;
    if admitting
        .iter()
        .any(|g| g.spec.listeners.iter().any(|l| l.port == port))
    {
        return None;
    }
    let reasons: Vec<String> = admitting
        .iter()
        .map(|g| {
            format!(
                "Gateway {} has no listener on port {port} (see its spec.listeners)",
                gateway_key(g)
            )
        })
        .collect();
    Some(reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels: BTreeMap<String, String> = [("team".to_string(), "payments".to_string())].into();
        let by_label = LabelSelector {
            match_labels: Some([("team".to_string(), "payments".to_string())].into()),
            ..LabelSelector::default()
        };
        assert!(selector_matches(&by_label, &labels));
        let not_in = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "team".into(),
                operator: "NotIn".into(),
                values: Some(vec!["payments".into()]),
            }]),
            ..LabelSelector::default()
        };
        assert!(!selector_matches(&not_in, &labels));
        let exists = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: "Exists".into(),
                values: None,
            }]),
            ..LabelSelector::default()
        };
        assert!(!selector_matches(&exists, &labels));
    }
}
