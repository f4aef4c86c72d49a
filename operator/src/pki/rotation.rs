//! When the xDS CA moves on, as pure functions of times: no cluster, no clock.
//!
//! A rotation has three steps, each a replacement of the CA Secret that every
//! replica may make (with its resourceVersion, so only one makes it):
//! 1. **prepare**: the signing CA is within `rotate_before` of its expiry; a
//!    next CA is made and added to the trusted bundle, and the current one
//!    keeps signing. The bundle changes, so every Gateway gets its Secret
//!    reissued with it, and its Envoys roll.
//! 2. **promote**: once every Gateway's Secret carries that bundle, and has
//!    for `settle` (time for the pods to roll), the next CA signs: new server
//!    certificates at once, Gateway certificates as they renew. The bundle
//!    keeps the same CAs in the same order, so nothing is reissued for it.
//! 3. **retire**: a CA that no longer signs leaves the bundle once no leaf it
//!    signed can still be valid.

use time::{Duration, OffsetDateTime};

/// The lifetimes of the CA and of what it signs, and how often they are
/// looked at (the flags `--xds-ca-*` and `--xds-leaf-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub ca_validity: Duration,
    /// A next CA is prepared when the signing one has this long left.
    pub ca_rotate_before: Duration,
    pub leaf_validity: Duration,
    /// A leaf is reissued when it has this long left.
    pub leaf_renew_before: Duration,
    /// How often each replica re-reads the CA Secret (it also watches it).
    pub check_interval: Duration,
    /// How long every Gateway's Secret must have carried the next CA before
    /// it signs: time for the Envoy pods to roll.
    pub settle: Duration,
}

impl Default for Lifetimes {
    fn default() -> Lifetimes {
        Lifetimes {
            ca_validity: Duration::days(365),
            ca_rotate_before: Duration::days(30),
            leaf_validity: Duration::days(30),
            leaf_renew_before: Duration::days(10),
            check_interval: Duration::hours(24),
            settle: Duration::hours(1),
        }
    }
}

impl Lifetimes {
    /// Why these lifetimes cannot work together, if they cannot.
    pub fn problem(&self) -> Option<String> {
        let positive = [
            ("--xds-ca-validity", self.ca_validity),
            ("--xds-ca-rotate-before", self.ca_rotate_before),
            ("--xds-leaf-validity", self.leaf_validity),
            ("--xds-leaf-renew-before", self.leaf_renew_before),
            ("--xds-ca-check-interval", self.check_interval),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, d)| !d.is_positive()) {
            return Some(format!("{flag} must be longer than zero"));
        }
        if self.settle.is_negative() {
            return Some("--xds-ca-settle cannot be negative".into());
        }
        if self.ca_rotate_before >= self.ca_validity {
            return Some(
                "--xds-ca-rotate-before must be shorter than --xds-ca-validity, or every CA \
                 would be replaced as soon as it is made"
                    .into(),
            );
        }
        if self.leaf_renew_before >= self.leaf_validity {
            return Some(
                "--xds-leaf-renew-before must be shorter than --xds-leaf-validity, or every \
                 certificate would be reissued as soon as it is issued"
                    .into(),
            );
        }
        if self.leaf_renew_before >= self.ca_rotate_before {
            return Some(
                "--xds-leaf-renew-before must be shorter than --xds-ca-rotate-before: a leaf \
                 never outlives its CA, so a CA with less time left than that would sign \
                 certificates that are due for renewal at once"
                    .into(),
            );
        }
        None
    }
}

/// A CA certificate by when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaTimes {
    /// When the signing CA expires.
    pub current_not_after: OffsetDateTime,
    /// When the next CA was added to the bundle, if one is prepared.
    pub next_published_at: Option<OffsetDateTime>,
    /// When a CA last became the signer by a rotation.
    pub promoted_at: Option<OffsetDateTime>,
}

/// What to do with the CA Secret now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Keep,
    /// Drop the CAs that [`retire_at`] says are done.
    Retire,
    /// Make the next CA and trust it; keep signing with the current one.
    Prepare,
    /// Let the next CA sign, if every Gateway trusts it ([`gateways_trust`]).
    Promote,
    /// Let the next CA sign whatever the Gateways hold: the current CA can no
    /// longer sign a leaf that would not need renewing at once.
    PromoteNow,
}

/// The next step of the CA Secret. `retiring` holds the expiry of each CA
/// that is trusted but no longer signs.
pub fn step(
    times: &CaTimes,
    retiring: &[OffsetDateTime],
    lifetimes: &Lifetimes,
    now: OffsetDateTime,
) -> Step {
    if retiring
        .iter()
        .any(|not_after| now >= retire_at(*not_after, times.promoted_at, lifetimes))
    {
        return Step::Retire;
    }
    let left = times.current_not_after - now;
    match times.next_published_at {
        None if left <= lifetimes.ca_rotate_before => Step::Prepare,
        None => Step::Keep,
        Some(_) if left <= lifetimes.leaf_renew_before => Step::PromoteNow,
        Some(published) if now - published >= lifetimes.settle => Step::Promote,
        Some(_) => Step::Keep,
    }
}

/// When a CA that stopped signing at `promoted_at` leaves the bundle: once
/// it has expired, or once every leaf it signed has (a leaf lives at most
/// `leaf_validity`, and a replica may have signed with it until its next
/// look at the Secret).
pub fn retire_at(
    not_after: OffsetDateTime,
    promoted_at: Option<OffsetDateTime>,
    lifetimes: &Lifetimes,
) -> OffsetDateTime {
    match promoted_at {
        Some(promoted) => not_after.min(promoted + lifetimes.leaf_validity + lifetimes.check_interval),
        None => not_after,
    }
}

/// What a Gateway's certificate Secret says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySecret {
    /// Its `legate.dev/ca-bundle-hash`.
    pub bundle_hash: Option<String>,
    /// Its `legate.dev/issued-at`: when its Envoys were told to roll.
    pub issued_at: Option<OffsetDateTime>,
}

/// Whether the next CA may sign: every Gateway's Secret carries the bundle
/// `next_hash` and was written at least `settle` ago (its Envoys, restarted
/// since, read it). No Secret at all (no fleets managed here) holds nothing back.
pub fn gateways_trust(
    secrets: &[GatewaySecret],
    next_hash: &str,
    settle: Duration,
    now: OffsetDateTime,
) -> bool {
    secrets.iter().all(|s| {
        s.bundle_hash.as_deref() == Some(next_hash) && s.issued_at.is_some_and(|t| now - t >= settle)
    })
}

/// Whether a leaf that ends at `not_after` should be replaced at `now`.
pub fn needs_renewal_at(
    not_after: Option<OffsetDateTime>,
    renew_before: Duration,
    now: OffsetDateTime,
) -> bool {
    not_after.is_none_or(|t| t - now < renew_before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(seconds)
    }

    /// CA 1000 s, rotate 300 s before, leaves 200 s renewed 50 s before,
    /// checks every 10 s, settle 30 s.
    fn lifetimes() -> Lifetimes {
        Lifetimes {
            ca_validity: Duration::seconds(1000),
            ca_rotate_before: Duration::seconds(300),
            leaf_validity: Duration::seconds(200),
            leaf_renew_before: Duration::seconds(50),
            check_interval: Duration::seconds(10),
            settle: Duration::seconds(30),
        }
    }

    fn times(next: Option<i64>, promoted: Option<i64>) -> CaTimes {
        CaTimes {
            current_not_after: at(1000),
            next_published_at: next.map(at),
            promoted_at: promoted.map(at),
        }
    }

    #[test]
    fn a_next_ca_is_prepared_once_the_current_one_nears_expiry_and_only_once() {
        let l = lifetimes();
        assert_eq!(step(&times(None, None), &[], &l, at(699)), Step::Keep);
        assert_eq!(step(&times(None, None), &[], &l, at(700)), Step::Prepare);
        assert_eq!(
            step(&times(Some(700), None), &[], &l, at(710)),
            Step::Keep,
            "prepared, not settled: nothing to do"
        );
    }

    #[test]
    fn promotion_waits_for_the_settle_delay_and_for_every_gateway() {
        let l = lifetimes();
        assert_eq!(step(&times(Some(700), None), &[], &l, at(729)), Step::Keep);
        assert_eq!(step(&times(Some(700), None), &[], &l, at(730)), Step::Promote);
        let fresh = |hash: &str, issued: i64| GatewaySecret {
            bundle_hash: Some(hash.into()),
            issued_at: Some(at(issued)),
        };
        let now = at(800);
        assert!(
            gateways_trust(&[], "next", l.settle, now),
            "no Gateway holds nothing back"
        );
        assert!(gateways_trust(
            &[fresh("next", 705), fresh("next", 770)],
            "next",
            l.settle,
            now
        ));
        assert!(
            !gateways_trust(&[fresh("next", 705), fresh("old", 600)], "next", l.settle, now),
            "one Gateway still holds the old bundle"
        );
        assert!(
            !gateways_trust(&[fresh("next", 705), fresh("next", 771)], "next", l.settle, now),
            "one Gateway's Envoys were told to roll less than settle ago"
        );
        let unknown = GatewaySecret {
            bundle_hash: Some("next".into()),
            issued_at: None,
        };
        assert!(!gateways_trust(&[unknown], "next", l.settle, now));
    }

    #[test]
    fn a_ca_too_close_to_expiry_to_sign_a_useful_leaf_is_replaced_whatever_the_gateways_hold() {
        let l = lifetimes();
        assert_eq!(step(&times(Some(700), None), &[], &l, at(949)), Step::Promote);
        assert_eq!(step(&times(Some(700), None), &[], &l, at(950)), Step::PromoteNow);
        assert_eq!(step(&times(Some(700), None), &[], &l, at(1100)), Step::PromoteNow);
    }

    #[test]
    fn a_retired_ca_stays_trusted_until_no_leaf_it_signed_can_be_valid() {
        let l = lifetimes();
        // Promoted at 800: its leaves end by 800 + 200, plus a check of a
        // replica that had not seen the promotion yet.
        assert_eq!(retire_at(at(1000), Some(at(800)), &l), at(1000));
        assert_eq!(retire_at(at(5000), Some(at(800)), &l), at(1010));
        assert_eq!(retire_at(at(5000), None, &l), at(5000));
        let promoted = CaTimes {
            current_not_after: at(2000),
            next_published_at: None,
            promoted_at: Some(at(800)),
        };
        assert_eq!(step(&promoted, &[at(5000)], &l, at(1009)), Step::Keep);
        assert_eq!(step(&promoted, &[at(5000)], &l, at(1010)), Step::Retire);
        assert_eq!(
            step(&promoted, &[at(900)], &l, at(900)),
            Step::Retire,
            "an expired CA goes first"
        );
    }

    #[test]
    fn leaves_are_renewed_ahead_of_expiry() {
        let l = lifetimes();
        assert!(!needs_renewal_at(Some(at(100)), l.leaf_renew_before, at(50)));
        assert!(needs_renewal_at(Some(at(100)), l.leaf_renew_before, at(51)));
        assert!(needs_renewal_at(None, l.leaf_renew_before, at(0)));
    }

    #[test]
    fn lifetimes_that_cannot_work_together_are_refused() {
        assert_eq!(Lifetimes::default().problem(), None);
        assert_eq!(lifetimes().problem(), None);
        let mut l = lifetimes();
        l.ca_rotate_before = l.ca_validity;
        assert!(l.problem().is_some_and(|p| p.contains("--xds-ca-rotate-before")));
        let mut l = lifetimes();
        l.leaf_renew_before = l.ca_rotate_before;
        assert!(l.problem().is_some_and(|p| p.contains("--xds-leaf-renew-before")));
        let mut l = lifetimes();
        l.check_interval = Duration::ZERO;
        assert!(l.problem().is_some_and(|p| p.contains("--xds-ca-check-interval")));
    }
}
