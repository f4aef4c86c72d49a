//! The election loop against a Lease kept in memory, on tokio's paused
//! clock: calls that hang, a holder that renews with a skewed clock, and
//! one that stops renewing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::*;

/// One Lease, with the API server's compare-and-swap on resourceVersion.
#[derive(Debug, Default)]
struct Memory {
    lease: Mutex<Option<Lease>>,
    version: AtomicU64,
    /// Every call made from now on never answers.
    hang: AtomicBool,
}

fn api_error(code: u16) -> kube::Error {
    kube::Error::Api(Box::new(kube::core::Status {
        code,
        ..kube::core::Status::default()
    }))
}

impl Memory {
    fn stored(&self) -> Option<Lease> {
        self.lease.lock().expect("not poisoned").clone()
    }

    fn write(&self, mut lease: Lease) -> Lease {
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        lease.metadata.resource_version = Some(version.to_string());
        *self.lease.lock().expect("not poisoned") = Some(lease.clone());
        lease
    }

    fn answer<T: Send>(
        &self,
        result: Result<T, kube::Error>,
    ) -> impl Future<Output = Result<T, kube::Error>> + Send {
        let hang = self.hang.load(Ordering::SeqCst);
        async move {
            if hang {
                std::future::pending::<()>().await;
            }
            result
        }
    }

    /// Another replica renews the Lease it holds, with `renewed` from its clock.
    fn renew_as(&self, holder: &str, renewed: Timestamp) {
        let mut lease = self.stored().unwrap_or_default();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(holder.to_string());
        spec.lease_duration_seconds = Some(10);
        spec.renew_time = Some(MicroTime(renewed));
        self.write(lease);
    }

    fn holder(&self) -> Option<String> {
        self.stored()?.spec?.holder_identity
    }
}

impl LeaseStore for Arc<Memory> {
    fn get(&self) -> impl Future<Output = Result<Option<Lease>, kube::Error>> + Send {
        self.answer(Ok(self.stored()))
    }

    fn create(&self, lease: &Lease) -> impl Future<Output = Result<Lease, kube::Error>> + Send {
        let result = if self.hang.load(Ordering::SeqCst) {
            Err(api_error(500))
        } else if self.stored().is_some() {
            Err(api_error(409))
        } else {
            Ok(self.write(lease.clone()))
        };
        self.answer(result)
    }

    fn replace(&self, lease: &Lease) -> impl Future<Output = Result<Lease, kube::Error>> + Send {
        let current = self.stored().and_then(|l| l.metadata.resource_version);
        let result = if self.hang.load(Ordering::SeqCst) {
            Err(api_error(500))
        } else if current != lease.metadata.resource_version {
            Err(api_error(409))
        } else {
            Ok(self.write(lease.clone()))
        };
        self.answer(result)
    }
}

struct Replica {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start(memory: &Arc<Memory>, identity: &str) -> Replica {
    let (tx, leading) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let config = LeaseConfig::new("legate-system", "legate-leader", identity);
    let task = tokio::spawn(elect(memory.clone(), config, Metrics::new(), tx, stop_rx));
    Replica { leading, stop, task }
}

fn config() -> LeaseConfig {
    LeaseConfig::new("legate-system", "legate-leader", "me")
}

#[test]
fn every_call_times_out_within_the_renew_deadline() {
    let config = config();
    assert!(config.renew_deadline < config.duration);
    // A round is a read and a write.
    assert!(config.call_timeout * 2 < config.renew_deadline);
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_calls_hang_stops_leading_at_the_renew_deadline() {
    let memory = Arc::new(Memory::default());
    let mut me = start(&memory, "me");
    me.leading.wait_for(|l| *l).await.expect("leads");
    // Time stands still while nothing sleeps: the renewal started now.
    let renewed = Instant::now();
    memory.hang.store(true, Ordering::SeqCst);
    me.leading.wait_for(|l| !*l).await.expect("steps down");
    let led = renewed.elapsed();
    let config = config();
    assert!(led >= config.renew_deadline, "stopped early, after {led:?}");
    assert!(
        led < config.renew_deadline + Duration::from_millis(10),
        "stopped late, after {led:?}"
    );
    assert!(led < config.duration, "before another replica could take over");
    assert_eq!(memory.holder().as_deref(), Some("me"), "the Lease still names us");

    // The API server answers again; nobody took the Lease, so we lead again.
    memory.hang.store(false, Ordering::SeqCst);
    me.leading.wait_for(|l| *l).await.expect("leads again");
    me.task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_follower_never_takes_a_lease_renewed_with_a_skewed_clock_and_takes_it_once_renewals_stop() {
    let memory = Arc::new(Memory::default());
    let year_2000 = Timestamp::from_second(946_684_800).expect("a time");
    let year_2200 = Timestamp::from_second(7_258_118_400).expect("a time");
    memory.renew_as("other", year_2000);
    let mut me = start(&memory, "me");
    let other = {
        let memory = memory.clone();
        tokio::spawn(async move {
            // Its clock jumps between far behind and far ahead of ours.
            for i in 0u64.. {
                let skewed = if i.is_multiple_of(2) { year_2000 } else { year_2200 };
                memory.renew_as("other", skewed + Duration::from_secs(i));
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        })
    };
    // Five Lease durations of paused time, during which "me" must not lead.
    let stole = tokio::time::timeout(Duration::from_secs(50), me.leading.wait_for(|l| *l))
        .await
        .is_ok();
    assert!(!stole, "took a Lease its holder kept renewing");
    assert_eq!(memory.holder().as_deref(), Some("other"));

    other.abort();
    let renewals_stopped = Instant::now();
    me.leading.wait_for(|l| *l).await.expect("takes over");
    let waited = renewals_stopped.elapsed();
    let config = config();
    assert!(
        waited >= config.duration - Duration::from_secs(3),
        "took it after {waited:?}, before the duration passed since the last renewal"
    );
    assert!(
        waited <= config.duration + 2 * config.retry,
        "took it after {waited:?}"
    );
    assert_eq!(memory.holder().as_deref(), Some("me"));
    me.task.abort();
}

#[tokio::test(start_paused = true)]
async fn two_replicas_have_one_leader_and_a_clean_stop_hands_over_at_once() {
    let memory = Arc::new(Memory::default());
    let mut a = start(&memory, "a");
    a.leading.wait_for(|l| *l).await.expect("a leads");
    let mut b = start(&memory, "b");
    let stole = tokio::time::timeout(Duration::from_secs(30), b.leading.wait_for(|l| *l))
        .await
        .is_ok();
    assert!(!stole, "b took the Lease a keeps renewing");
    assert!(*a.leading.borrow());

    a.stop.send(true).expect("a runs");
    let stopped = Instant::now();
    a.task.await.expect("a stops cleanly");
    b.leading.wait_for(|l| *l).await.expect("b takes over");
    assert!(
        stopped.elapsed() <= config().retry,
        "a released the Lease, so b did not wait for it to expire"
    );
    assert_eq!(memory.holder().as_deref(), Some("b"));
    b.task.abort();
}
