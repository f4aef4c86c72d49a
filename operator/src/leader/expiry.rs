//! When a Lease held by another replica may be taken, judged as client-go
//! judges it: by how long this replica has seen the Lease's record unchanged,
//! on its own monotonic clock. The holder's `renewTime` was written with
//! another machine's clock; comparing it with ours would let clock skew
//! decide who leads.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

/// The parts of a Lease that change when its holder renews or changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub holder: String,
    /// Compared with the last one seen, never with our clock.
    pub renew_time: Option<Timestamp>,
    pub resource_version: Option<String>,
}

impl Record {
    pub fn of(lease: &Lease) -> Record {
        let spec = lease.spec.as_ref();
        Record {
            holder: spec.and_then(|s| s.holder_identity.clone()).unwrap_or_default(),
            renew_time: spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
            resource_version: lease.metadata.resource_version.clone(),
        }
    }
}

/// The last record this replica read and when it first read it as it is.
#[derive(Debug, Default)]
pub struct Observer {
    last: Option<(Record, Instant)>,
}

impl Observer {
    /// Notes `record`, read at `now`, and returns since when it has been
    /// seen unchanged: `now` when it differs from the last one.
    pub fn observe(&mut self, record: Record, now: Instant) -> Instant {
        match &self.last {
            Some((seen, since)) if *seen == record => *since,
            _ => {
                self.last = Some((record, now));
                now
            }
        }
    }
}

/// What to do with the Lease just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// We hold it: renew.
    Renew,
    /// Nobody holds it, or its holder stopped renewing: take it.
    Take,
    /// Another replica holds it and may still be renewing.
    Wait,
}

/// Judges a Lease held by `holder`, whose record this replica has seen
/// unchanged since `observed_at`, at `now`.
pub fn decide(holder: &str, me: &str, observed_at: Instant, now: Instant, duration: Duration) -> Decision {
    if holder == me {
        Decision::Renew
    } else if holder.is_empty() || now.saturating_duration_since(observed_at) >= duration {
        Decision::Take
    } else {
        Decision::Wait
    }
}

/// Whether the leader still leads at `now`: its last successful renewal
/// started less than `renew_deadline` ago. The deadline is shorter than the
/// Lease's duration, so the leader stops before any other replica, which
/// saw that renewal no earlier than it started, may take over.
pub fn still_leading(renewal_started: Option<Instant>, now: Instant, renew_deadline: Duration) -> bool {
    renewal_started.is_some_and(|at| now.saturating_duration_since(at) < renew_deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DURATION: Duration = Duration::from_secs(10);
    const RETRY: Duration = Duration::from_secs(2);

    fn record(holder: &str, renewed: Timestamp, version: u64) -> Record {
        Record {
            holder: holder.to_string(),
            renew_time: Some(renewed),
            resource_version: Some(version.to_string()),
        }
    }

    /// A follower that reads a Lease every `RETRY` for a minute, while its
    /// holder renews it with `renewed(i)` as its clock says, decides `Wait`
    /// every time.
    fn follower_waits_while_renewed(renewed: impl Fn(u64) -> Timestamp) {
        let mut observer = Observer::default();
        let start = Instant::now();
        for i in 0..30u64 {
            let now = start + RETRY * u32::try_from(i).expect("small");
            let since = observer.observe(record("a", renewed(i), i), now);
            assert_eq!(decide("a", "b", since, now, DURATION), Decision::Wait, "read {i}");
        }
    }

    #[test]
    fn a_holder_whose_clock_is_far_behind_keeps_the_lease_while_it_renews() {
        let year_2000 = Timestamp::from_second(946_684_800).expect("a time");
        follower_waits_while_renewed(|i| year_2000 + Duration::from_secs(2 * i));
    }

    #[test]
    fn a_holder_whose_clock_is_far_ahead_keeps_the_lease_while_it_renews() {
        let year_2200 = Timestamp::from_second(7_258_118_400).expect("a time");
        follower_waits_while_renewed(|i| year_2200 + Duration::from_secs(2 * i));
    }

    #[test]
    fn a_holder_that_stopped_renewing_loses_the_lease_after_its_duration_on_our_clock() {
        // However far its renewTime is from our clock, past or future.
        for renewed in [
            Timestamp::from_second(0).expect("1970"),
            Timestamp::now(),
            Timestamp::from_second(7_258_118_400).expect("2200"),
        ] {
            let mut observer = Observer::default();
            let start = Instant::now();
            let mut decisions = Vec::new();
            for step in 0..=6u32 {
                let now = start + RETRY * step;
                let since = observer.observe(record("a", renewed, 7), now);
                assert_eq!(since, start, "an unchanged record keeps its first sighting");
                decisions.push(decide("a", "b", since, now, DURATION));
            }
            let mut expected = vec![Decision::Wait; 5];
            expected.extend([Decision::Take, Decision::Take]);
            assert_eq!(decisions, expected, "renewTime {renewed}");
        }
    }

    #[test]
    fn a_change_of_holder_renew_time_or_version_restarts_the_wait() {
        let t = Timestamp::now();
        let mut observer = Observer::default();
        let start = Instant::now();
        let later = start + Duration::from_secs(9);
        assert_eq!(observer.observe(record("a", t, 1), start), start);
        for changed in [
            record("c", t, 1),
            record("c", t + Duration::from_secs(1), 1),
            record("c", t + Duration::from_secs(1), 2),
        ] {
            assert_eq!(observer.observe(changed, later), later);
        }
        assert_eq!(
            decide("c", "b", later, start + Duration::from_secs(18), DURATION),
            Decision::Wait
        );
    }

    #[test]
    fn an_empty_lease_is_taken_at_once_and_our_own_is_renewed() {
        let now = Instant::now();
        assert_eq!(decide("", "b", now, now, DURATION), Decision::Take);
        assert_eq!(decide("b", "b", now, now, DURATION), Decision::Renew);
    }

    #[test]
    fn the_leader_stops_at_the_renew_deadline_before_the_lease_could_expire() {
        let deadline = DURATION * 2 / 3;
        let renewed = Instant::now();
        assert!(still_leading(
            Some(renewed),
            renewed + Duration::from_secs(6),
            deadline
        ));
        assert!(!still_leading(Some(renewed), renewed + deadline, deadline));
        assert!(!still_leading(None, renewed, deadline));
        // A follower that saw the renewal the moment it started can take the
        // Lease only after the leader stopped.
        assert_eq!(
            decide("a", "b", renewed, renewed + deadline, DURATION),
            Decision::Wait
        );
    }
}
