//! Conditions from the model's verdicts and the proxies' ACKs, in words a
//! developer understands; computed whole, compared, written only on change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use legate_crds::conditions::{condition, reasons, set_condition, types};

use crate::program::{ProgramState, Programmed};
use legate_model::Verdict;

/// The conditions an object should have now, and whether its `Programmed`
/// is only waiting for the proxies to apply what was just sent.
pub fn object_conditions(verdict: &Verdict, program: &ProgramState) -> (Vec<Condition>, bool) {
    let generation = Some(verdict.object.generation());
    let accepted = match &verdict.accepted {
        Ok(()) => condition(
            types::ACCEPTED,
            true,
            reasons::ACCEPTED,
            attached(verdict),
            generation,
        ),
        Err(p) => condition(types::ACCEPTED, false, p.reason, p.message.clone(), generation),
    };
    let resolved = match &verdict.resolved_refs {
        Ok(()) => condition(
            types::RESOLVED_REFS,
            true,
            reasons::RESOLVED_REFS,
            "Every Service and Secret it refers to exists",
            generation,
        ),
        Err(p) => condition(
            types::RESOLVED_REFS,
            false,
            p.reason,
            p.message.clone(),
            generation,
        ),
    };
    let (programmed, awaiting) = programmed_condition(verdict, program);
    (vec![accepted, resolved, programmed], awaiting)
}

/// Where an Accepted object is attached. An AuthService or RateLimitService
/// also says which routes it governs on each Gateway: every route when it is
/// in the Gateway's namespace, else only the routes of its own namespace's
/// Mappings (the model's rule, `legate_model` `gateways`).
fn attached(verdict: &Verdict) -> String {
    let mut message = scopes(verdict);
    for note in &verdict.notes {
        message.push_str("; ");
        message.push_str(note);
    }
    message
}

/// The Gateways an Accepted object is attached to, and for an
/// AuthService or RateLimitService what it governs on each.
fn scopes(verdict: &Verdict) -> String {
    let kind = verdict.object.kind();
    if kind != "AuthService" && kind != "RateLimitService" {
        return format!("Attached to Gateway {}", verdict.gateways.join(", "));
    }
    let namespace = verdict.object.namespace();
    let scopes: Vec<String> = verdict
        .gateways
        .iter()
        .map(|gateway| {
            let (gateway_namespace, _) = gateway.split_once('/').unwrap_or_default();
            if gateway_namespace == namespace {
                format!("Gateway {gateway}, Gateway-wide: it governs every route")
            } else {
                format!(
                    "Gateway {gateway} for the Mappings of namespace {namespace} only \
                     (a Gateway-wide {kind} is one in the Gateway's namespace, {gateway_namespace})"
                )
            }
        })
        .collect();
    format!("Attached to {}", scopes.join("; "))
}

/// The `Programmed` condition, and whether it is a wait for the proxies
/// (news that is usually undone within milliseconds, by their ACK).
fn programmed_condition(verdict: &Verdict, program: &ProgramState) -> (Condition, bool) {
    let generation = verdict.object.generation();
    let at_generation = Some(generation);
    if verdict.accepted.is_err() {
        let c = condition(
            types::PROGRAMMED,
            false,
            reasons::PENDING,
            "Not sent to Envoy: the object is not Accepted",
            at_generation,
        );
        return (c, false);
    }
    let mut pending = Vec::new();
    for gateway in &verdict.gateways {
        match program.programmed(gateway, &verdict.object) {
            Programmed::Rejected(r) => {
                let message = format!(
                    "Envoy {} of Gateway {gateway} rejected generation {}: {}; it keeps serving its previous configuration",
                    r.proxy, r.generation, r.message
                );
                let c = condition(
                    types::PROGRAMMED,
                    false,
                    reasons::REJECTED,
                    message,
                    at_generation,
                );
                return (c, false);
            }
            Programmed::NoProxies => {
                let message = format!("No Envoy of Gateway {gateway} is connected");
                let c = condition(
                    types::PROGRAMMED,
                    false,
                    reasons::NO_PROXIES,
                    message,
                    at_generation,
                );
                return (c, false);
            }
            Programmed::NotCarried => pending.push(format!(
                "Gateway {gateway} does not carry it in its Envoy configuration yet"
            )),
            Programmed::Pending => pending.push(format!(
                "Envoys of Gateway {gateway} have not applied generation {generation} yet"
            )),
            Programmed::Yes => {}
        }
    }
    if !pending.is_empty() {
        let c = condition(
            types::PROGRAMMED,
            false,
            reasons::PENDING,
            pending.join("; "),
            at_generation,
        );
        return (c, true);
    }
    let c = condition(
        types::PROGRAMMED,
        true,
        reasons::PROGRAMMED,
        format!(
            "Every connected Envoy runs generation {generation}: Gateway {}",
            verdict.gateways.join(", ")
        ),
        at_generation,
    );
    (c, false)
}

/// Merges `desired` into `current` (keeping transition times of unchanged
/// statuses); returns the new list and the conditions whose status or reason
/// changed, for Events.
pub fn merge(current: &[Condition], desired: Vec<Condition>) -> (Vec<Condition>, Vec<Condition>) {
    let mut next = current.to_vec();
    let mut transitions = Vec::new();
    for c in desired {
        let before = next
            .iter()
            .find(|o| o.type_ == c.type_)
            .map(|o| (o.status.clone(), o.reason.clone()));
        let after = (c.status.clone(), c.reason.clone());
        set_condition(&mut next, c.clone());
        if before.as_ref() != Some(&after) {
            transitions.push(c);
        }
    }
    (next, transitions)
}

/// Two condition lists say the same thing (ignoring transition times).
pub fn same(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.type_ == y.type_
                    && x.status == y.status
                    && x.reason == y.reason
                    && x.message == y.message
                    && x.observed_generation == y.observed_generation
            })
        })
}

/// The API server refuses Event notes over 1 KiB.
const EVENT_NOTE_MAX: usize = 1024;

/// `note`, cut (on a character boundary) to what an Event may carry.
pub fn event_note(note: &str) -> String {
    if note.len() <= EVENT_NOTE_MAX {
        return note.to_string();
    }
    let mut end = EVENT_NOTE_MAX - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

/// Whether a transition deserves a Warning Event rather than a Normal one.
pub fn is_warning(c: &Condition) -> bool {
    c.status == "False"
        && [
            reasons::INVALID,
            reasons::CONFLICTED,
            reasons::NO_GATEWAY,
            reasons::BACKEND_NOT_FOUND,
            reasons::SECRET_NOT_FOUND,
            reasons::INVALID_SECRET,
            reasons::REJECTED,
        ]
        .contains(&c.reason.as_str())
}

/// After a restart, proxies need a moment to reconnect and report what they
/// run. Until they do, "no proxies" or "pending" only means "not heard from
/// yet": a Programmed=True written by the previous run is kept, not flapped.
pub fn hold_programmed_after_restart(current: &[Condition], desired: &mut [Condition]) {
    let Some(was) = current.iter().find(|c| c.type_ == types::PROGRAMMED) else {
        return;
    };
    for c in desired.iter_mut().filter(|c| c.type_ == types::PROGRAMMED) {
        let unheard =
            c.status == "False" && (c.reason == reasons::NO_PROXIES || c.reason == reasons::PENDING);
        if unheard && was.status == "True" && was.observed_generation == c.observed_generation {
            *c = was.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted_message(kind: &str, namespace: &str, gateways: &[&str]) -> String {
        let mut verdict = Verdict {
            object: legate_xds::ir::ObjectRef::new(kind, namespace, "it", 1),
            accepted: Ok(()),
            resolved_refs: Ok(()),
            gateways: gateways.iter().map(|g| g.to_string()).collect(),
            notes: Vec::new(),
        };
        verdict.gateways.sort();
        let (conditions, _) = object_conditions(&verdict, &ProgramState::default());
        conditions[0].message.clone()
    }

    #[test]
    fn auth_and_rate_limit_services_say_which_routes_they_govern() {
        assert_eq!(
            accepted_message("AuthService", "shop", &["shop/edge"]),
            "Attached to Gateway shop/edge, Gateway-wide: it governs every route"
        );
        assert_eq!(
            accepted_message("RateLimitService", "rogue", &["shop/edge", "rogue/own"]),
            "Attached to Gateway rogue/own, Gateway-wide: it governs every route; \
             Gateway shop/edge for the Mappings of namespace rogue only \
             (a Gateway-wide RateLimitService is one in the Gateway's namespace, shop)"
        );
        assert_eq!(
            accepted_message("Mapping", "rogue", &["shop/edge"]),
            "Attached to Gateway shop/edge"
        );
    }

    #[test]
    fn event_notes_are_cut_to_what_the_api_takes() {
        assert_eq!(event_note("short"), "short");
        let long = "é".repeat(EVENT_NOTE_MAX);
        let cut = event_note(&long);
        assert!(cut.len() <= EVENT_NOTE_MAX, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn a_restart_does_not_flap_programmed() {
        let current = vec![condition(
            types::PROGRAMMED,
            true,
            reasons::PROGRAMMED,
            "all",
            Some(3),
        )];
        let mut desired = vec![condition(
            types::PROGRAMMED,
            false,
            reasons::NO_PROXIES,
            "none yet",
            Some(3),
        )];
        hold_programmed_after_restart(&current, &mut desired);
        assert_eq!(desired[0].status, "True");

        // A new generation is news: it is not covered by the old True.
        let mut newer = vec![condition(
            types::PROGRAMMED,
            false,
            reasons::PENDING,
            "pending",
            Some(4),
        )];
        hold_programmed_after_restart(&current, &mut newer);
        assert_eq!(newer[0].status, "False");

        // A rejection is never held back.
        let mut rejected = vec![condition(
            types::PROGRAMMED,
            false,
            reasons::REJECTED,
            "no",
            Some(3),
        )];
        hold_programmed_after_restart(&current, &mut rejected);
        assert_eq!(rejected[0].reason, reasons::REJECTED);
    }
}
