//! When a status write may go out. Two rules keep the API server's load in
//! proportion to real news: a `Programmed=False Pending` that only waits for
//! the proxies' ACK is held back (the ACK usually undoes it within
//! milliseconds, and then one write says the final word), and an object's
//! status is written at most once per interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many entries the pacer keeps before it drops those that pace nothing.
const PRUNE_ABOVE: usize = 50_000;

#[derive(Debug, Default, Clone, Copy)]
struct Pace {
    last_write: Option<Instant>,
    awaiting_since: Option<Instant>,
}

#[derive(Debug)]
pub struct Pacer {
    /// Least time between two status writes of one object.
    interval: Duration,
    /// How long a wait for the proxies stays unwritten.
    hold: Duration,
    objects: Mutex<HashMap<String, Pace>>,
}

impl Pacer {
    pub fn new(interval: Duration, hold: Duration) -> Pacer {
        Pacer {
            interval,
            hold,
            objects: Mutex::default(),
        }
    }

    /// `None` when `key`'s status may be written now; else how long to wait.
    /// `awaiting` says the write would only report a wait for the proxies.
    pub fn check(&self, key: &str, awaiting: bool, now: Instant) -> Option<Duration> {
        let mut objects = self.lock();
        let pace = objects.entry(key.to_string()).or_default();
        if awaiting {
            let since = *pace.awaiting_since.get_or_insert(now);
            let held = now.saturating_duration_since(since);
            if held < self.hold {
                return Some(self.hold - held);
            }
        } else {
            pace.awaiting_since = None;
        }
        let since_write = pace.last_write.map(|t| now.saturating_duration_since(t));
        match since_write {
            Some(elapsed) if elapsed < self.interval => Some(self.interval - elapsed),
            _ => None,
        }
    }

    /// `key`'s status was just written.
    pub fn wrote(&self, key: &str, now: Instant) {
        let mut objects = self.lock();
        // Objects deleted without a finalizer are never forgotten one by one:
        // entries that no longer pace anything go now and then.
        if objects.len() > PRUNE_ABOVE {
            let interval = self.interval;
            objects.retain(|_, p| {
                p.awaiting_since.is_some()
                    || p.last_write
                        .is_some_and(|t| now.saturating_duration_since(t) < interval)
            });
        }
        let pace = objects.entry(key.to_string()).or_default();
        pace.last_write = Some(now);
        pace.awaiting_since = None;
    }

    /// `key` is gone.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pace>> {
        // Each update is a single insert or field write: a poisoned map is still consistent.
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_wait_for_the_proxies_is_held_back_then_written() {
        let pacer = Pacer::new(100 * MS, 1000 * MS);
        let t0 = Instant::now();
        assert_eq!(pacer.check("m", true, t0), Some(1000 * MS));
        assert_eq!(pacer.check("m", true, t0 + 400 * MS), Some(600 * MS));
        assert_eq!(pacer.check("m", true, t0 + 1000 * MS), None, "held long enough");
        // The ACK came: the final word goes out at once.
        assert_eq!(pacer.check("n", true, t0), Some(1000 * MS));
        assert_eq!(pacer.check("n", false, t0 + 5 * MS), None);
    }

    #[test]
    fn writes_of_one_object_are_spaced() {
        let pacer = Pacer::new(100 * MS, 1000 * MS);
        let t0 = Instant::now();
        assert_eq!(pacer.check("m", false, t0), None);
        pacer.wrote("m", t0);
        assert_eq!(pacer.check("m", false, t0 + 30 * MS), Some(70 * MS));
        assert_eq!(pacer.check("other", false, t0 + 30 * MS), None, "per object");
        assert_eq!(pacer.check("m", false, t0 + 100 * MS), None);
        pacer.forget("m");
        assert_eq!(pacer.check("m", false, t0 + 101 * MS), None);
    }
}
