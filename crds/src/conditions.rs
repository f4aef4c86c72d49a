//! Every condition type and reason a user can see, in one place, and small
//! constructors so that controllers never spell them by hand.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition types.
pub mod types {
    /// The object is valid and attached to a Gateway.
    pub const ACCEPTED: &str = "Accepted";
    /// Every Service, Secret and TLSContext the object refers to exists.
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    /// Every Envoy of its Gateways has ACKed a configuration with this generation.
    pub const PROGRAMMED: &str = "Programmed";
    /// A Gateway's Envoy Deployment has its minimum of ready pods.
    pub const AVAILABLE: &str = "Available";
}

/// Condition reasons.
pub mod reasons {
    pub const ACCEPTED: &str = "Accepted";
    pub const INVALID: &str = "Invalid";
    pub const NO_GATEWAY: &str = "NoGateway";
    pub const CONFLICTED: &str = "Conflicted";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const BACKEND_NOT_FOUND: &str = "BackendNotFound";
    /// A `service` names a host no upstream may be: loopback (unless the
    /// operator allows it), link-local, unspecified or multicast.
    pub const FORBIDDEN_UPSTREAM: &str = "ForbiddenUpstream";
    /// A `service` names a Service of another namespace that has not allowed
    /// the referring namespace (its `legate.dev/allow-from` annotation).
    pub const REF_NOT_PERMITTED: &str = "RefNotPermitted";
    /// The object names a host that belongs to another namespace on a Gateway
    /// (claimed first, or assigned by the Gateway's `spec.hostOwners`), or
    /// `*` where only the Gateway's own namespace may.
    pub const HOST_NOT_OWNED: &str = "HostNotOwned";
    /// The Service exists but no endpoint of it is ready: calls to it fail.
    pub const NO_READY_ENDPOINTS: &str = "NoReadyEndpoints";
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    pub const INVALID_SECRET: &str = "InvalidSecret";
    pub const PROGRAMMED: &str = "Programmed";
    pub const PENDING: &str = "Pending";
    pub const REJECTED: &str = "Rejected";
    pub const NO_PROXIES: &str = "NoProxies";
}

/// A condition with `status` True or False, stamped now.
pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    }
}

/// Puts `new` into `conditions`, keeping the old transition time when the
/// status did not change (so `kubectl describe` shows when it really changed).
/// Returns whether anything a user can see changed.
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            let changed = old.status != new.status
                || old.reason != new.reason
                || old.message != new.message
                || old.observed_generation != new.observed_generation;
            if old.status == new.status {
                let since = old.last_transition_time.clone();
                *old = Condition {
                    last_transition_time: since,
                    ..new
                };
            } else {
                *old = new;
            }
            changed
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_status_keeps_the_transition_time() {
        let first = condition(types::ACCEPTED, true, reasons::ACCEPTED, "ok", Some(1));
        let since = first.last_transition_time.clone();
        let mut conditions = vec![first];
        let changed = set_condition(
            &mut conditions,
            condition(types::ACCEPTED, true, reasons::ACCEPTED, "ok", Some(2)),
        );
        assert!(changed, "a new observedGeneration is a change");
        assert_eq!(conditions[0].last_transition_time, since);
        assert_eq!(conditions[0].observed_generation, Some(2));
    }

    #[test]
    fn identical_condition_is_not_a_change() {
        let mut conditions = vec![condition(
            types::PROGRAMMED,
            false,
            reasons::NO_PROXIES,
            "none",
            Some(1),
        )];
        let again = condition(types::PROGRAMMED, false, reasons::NO_PROXIES, "none", Some(1));
        assert!(!set_condition(&mut conditions, again));
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn status_flip_replaces_the_condition() {
        let mut conditions = vec![condition(types::ACCEPTED, true, reasons::ACCEPTED, "ok", Some(1))];
        let flipped = condition(types::ACCEPTED, false, reasons::INVALID, "bad regex", Some(2));
        assert!(set_condition(&mut conditions, flipped));
        assert_eq!(conditions[0].status, "False");
        assert_eq!(conditions[0].reason, reasons::INVALID);
    }
}
