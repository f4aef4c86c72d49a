//! How long a failed reconcile waits before the next try: doubling with
//! each consecutive failure of the same object, capped, with jitter so that
//! many objects failing together (an API server restart) do not come back
//! in one wave.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::Duration;

/// The first retry.
const BASE: Duration = Duration::from_millis(500);
/// The longest wait between two tries.
const CAP: Duration = Duration::from_secs(120);

/// Consecutive failures per object key.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Counts a failure of `key` and says how long to wait.
    pub fn failed(&self, key: &str) -> Duration {
        let failures = {
            let mut map = self.lock();
            let n = map.entry(key.to_string()).or_default();
            *n = n.saturating_add(1);
            *n
        };
        delay(failures, jitter())
    }

    /// `key` reconciled: the next failure starts from the first retry again.
    pub fn succeeded(&self, key: &str) {
        let mut map = self.lock();
        if !map.is_empty() {
            map.remove(key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // Inserts and removes only: a poisoned map is still consistent.
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The wait after `failures` consecutive failures, scaled by `jitter` in
/// [0.5, 1.0): from half to all of `BASE * 2^(failures-1)`, at most `CAP`.
fn delay(failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let full = BASE.saturating_mul(1 << doublings).min(CAP);
    full.mul_f64(jitter.clamp(0.5, 1.0))
}

/// A number in [0.5, 1.0) that differs from call to call.
fn jitter() -> f64 {
    // A randomly seeded hasher over the time is random enough to spread
    // retries; nothing here needs to be unpredictable.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    0.5 + (hasher.finish() % 1_000_000) as f64 / 2_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_with_each_failure_up_to_the_cap_and_spread_out() {
        assert_eq!(delay(1, 1.0), Duration::from_millis(500));
        assert_eq!(delay(2, 1.0), Duration::from_secs(1));
        assert_eq!(delay(5, 1.0), Duration::from_secs(8));
        assert_eq!(delay(40, 1.0), CAP);
        assert_eq!(
            delay(3, 0.5),
            Duration::from_secs(1),
            "jitter takes off up to half"
        );
        let backoff = Backoff::default();
        let first = backoff.failed("Mapping/shop/quote");
        let second = backoff.failed("Mapping/shop/quote");
        assert!(
            first < Duration::from_millis(500) + Duration::from_millis(1),
            "{first:?}"
        );
        assert!(second >= Duration::from_millis(500), "{second:?}");
        backoff.succeeded("Mapping/shop/quote");
        assert!(backoff.failed("Mapping/shop/quote") < Duration::from_millis(501));
        let spread: std::collections::BTreeSet<u128> =
            (0..20).map(|_| (delay(4, jitter())).as_micros()).collect();
        assert!(spread.len() > 1, "jitter spreads retries: {spread:?}");
    }
}
