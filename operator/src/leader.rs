//! Leader election with a `coordination.k8s.io` Lease. Every replica watches,
//! translates and serves xDS; only the leader writes status and Events and
//! manages fleets.
//!
//! The rules are client-go's. Another replica's Lease expires when its record
//! has not changed for the Lease's duration on our own monotonic clock
//! (`expiry.rs`); clocks of different machines are never compared. The
//! leader stops leading when it has not renewed within the renew deadline,
//! which is shorter than the duration, and every Lease call has a timeout
//! shorter than the deadline, so a hung call cannot keep it leading.

mod expiry;
mod store;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

use self::expiry::{Decision, Observer, Record, decide, still_leading};
use self::store::{KubeLeases, LeaseStore};
use crate::metrics::Metrics;

/// Where the Lease lives, who we are, and the election's timing.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a Lease stays held without renewal, on the clock of each
    /// replica that watches it.
    pub duration: Duration,
    /// The leader stops leading this long after its last successful renewal
    /// started; shorter than `duration`.
    pub renew_deadline: Duration,
    /// How often the holder renews (and others retry).
    pub retry: Duration,
    /// How long one Lease API call may take; two fit in the renew deadline.
    pub call_timeout: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: &str, name: &str, identity: &str) -> LeaseConfig {
        let duration = Duration::from_secs(10);
        LeaseConfig {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            renew_deadline: duration * 2 / 3,
            retry: Duration::from_secs(2),
            call_timeout: Duration::from_secs(2),
        }
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Runs one Lease call, or fails when it takes longer than the call timeout.
    async fn call<T>(
        &self,
        call: &'static str,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<Result<T, kube::Error>, LeaseError> {
        tokio::time::timeout(self.call_timeout, request)
            .await
            .map_err(|_| LeaseError::TimedOut {
                lease: self.lease(),
                call,
                after: self.call_timeout,
            })
    }
}

/// Why this round of trying to lead failed; the next round tries again, and
/// a leader keeps leading until its renew deadline.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("reading Lease {lease}: {source}; the operator needs get on Leases in its namespace")]
    Read {
        lease: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "writing Lease {lease}: {source}; the operator needs create and update on Leases in \
         its namespace"
    )]
    Write {
        lease: String,
        #[source]
        source: kube::Error,
    },
    #[error("the {call} of Lease {lease} did not answer within {after:?}; is the API server overloaded?")]
    TimedOut {
        lease: String,
        call: &'static str,
        after: Duration,
    },
}

/// The election: the receiver says whether we lead; the future (to spawn)
/// keeps trying to lead until `stop` fires, then releases the Lease so that
/// another replica takes over at once.
pub fn election(
    client: Client,
    config: LeaseConfig,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> (watch::Receiver<bool>, impl Future<Output = ()> + Send + 'static) {
    let store = KubeLeases {
        api: Api::namespaced(client, &config.namespace),
        name: config.name.clone(),
    };
    let (tx, rx) = watch::channel(false);
    (rx, elect(store, config, metrics, tx, stop))
}

async fn elect<S: LeaseStore>(
    store: S,
    config: LeaseConfig,
    metrics: Arc<Metrics>,
    tx: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut observer = Observer::default();
    let mut leadership = Leadership {
        tx,
        metrics,
        identity: config.identity.clone(),
        renew_deadline: config.renew_deadline,
        renewal_started: None,
    };
    loop {
        let started = Instant::now();
        match leadership
            .until_deadline(try_lead(&store, &config, &mut observer))
            .await
        {
            Ok(true) => leadership.renewed(started),
            Ok(false) => leadership.lost(),
            Err(e) => {
                tracing::warn!(error = %e, "could not take or renew the leader Lease");
                leadership.recheck();
            }
        }
        let stopping = leadership
            .until_deadline(async {
                tokio::select! {
                    () = tokio::time::sleep(config.retry) => false,
                    // A closed channel also means the operator is going away.
                    r = stop.wait_for(|s| *s) => { drop(r); true }
                }
            })
            .await;
        if stopping {
            let held = leadership.renewal_started.is_some();
            // Nothing may write as the leader once the Lease is released.
            leadership.lost();
            if held {
                release(&store, &config).await;
            }
            return;
        }
    }
}

/// Whether we lead, published to the controllers and the metric.
struct Leadership {
    tx: watch::Sender<bool>,
    metrics: Arc<Metrics>,
    identity: String,
    renew_deadline: Duration,
    /// When the last renewal that succeeded started; None when another
    /// replica holds the Lease.
    renewal_started: Option<Instant>,
}

impl Leadership {
    fn renewed(&mut self, started: Instant) {
        self.renewal_started = Some(started);
        self.recheck();
    }

    fn lost(&mut self) {
        self.renewal_started = None;
        self.publish(false);
    }

    fn recheck(&mut self) {
        let leading = still_leading(self.renewal_started, Instant::now(), self.renew_deadline);
        self.publish(leading);
    }

    /// Runs `work`, and stops leading if the renew deadline passes meanwhile.
    async fn until_deadline<F: Future>(&mut self, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        loop {
            let deadline = match self.renewal_started {
                Some(started) if *self.tx.borrow() => Some(started + self.renew_deadline),
                _ => None,
            };
            let passed = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                out = &mut work => return out,
                () = passed => {
                    tracing::warn!(
                        renew_deadline = ?self.renew_deadline,
                        "could not renew the leader Lease within the renew deadline"
                    );
                    self.recheck();
                }
            }
        }
    }

    fn publish(&self, leading: bool) {
        if *self.tx.borrow() != leading {
            tracing::info!(identity = %self.identity, leading, "leadership changed");
        }
        self.metrics.leader.set(i64::from(leading));
        self.tx
            .send_if_modified(|l| std::mem::replace(l, leading) != leading);
    }
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

/// Acquires or renews the Lease; true when we hold it afterwards.
async fn try_lead<S: LeaseStore>(
    store: &S,
    config: &LeaseConfig,
    observer: &mut Observer,
) -> Result<bool, LeaseError> {
    let read = config
        .call("get", store.get())
        .await?
        .map_err(|source| LeaseError::Read {
            lease: config.lease(),
            source,
        })?;
    let write_error = |source| LeaseError::Write {
        lease: config.lease(),
        source,
    };
    // Written for people reading the Lease; no replica compares it with its clock.
    let wall = Timestamp::now();
    let Some(mut lease) = read else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(held_by(config, wall, wall, 0)),
        };
        return match config.call("create", store.create(&lease)).await? {
            Ok(_) => Ok(true),
            Err(e) if conflict(&e) => Ok(false),
            Err(e) => Err(write_error(e)),
        };
    };
    let record = Record::of(&lease);
    let now = Instant::now();
    let observed_at = observer.observe(record.clone(), now);
    let spec = lease.spec.clone().unwrap_or_default();
    // The holder's duration, as client-go reads it; ours if it wrote none.
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(config.duration, Duration::from_secs);
    let transitions = spec.lease_transitions.unwrap_or(0);
    let new_spec = match decide(&record.holder, &config.identity, observed_at, now, duration) {
        Decision::Wait => return Ok(false),
        Decision::Renew => {
            let acquired = spec.acquire_time.map_or(wall, |t| t.0);
            held_by(config, acquired, wall, transitions)
        }
        Decision::Take => held_by(config, wall, wall, transitions.saturating_add(1)),
    };
    lease.spec = Some(new_spec);
    // The resourceVersion makes this a compare-and-swap: of two replicas
    // racing for an expired Lease, one gets a 409.
    match config.call("update", store.replace(&lease)).await? {
        Ok(_) => Ok(true),
        Err(e) if conflict(&e) => Ok(false),
        Err(e) => Err(write_error(e)),
    }
}

fn held_by(config: &LeaseConfig, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(config.duration.as_secs()).unwrap_or(10)),
        acquire_time: Some(MicroTime(acquired)),
        renew_time: Some(MicroTime(renewed)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

/// Gives the Lease up on a clean shutdown.
async fn release<S: LeaseStore>(store: &S, config: &LeaseConfig) {
    let mut lease = match config.call("get", store.get()).await {
        Ok(Ok(Some(lease))) => lease,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not read the leader Lease to release it; it expires on its own");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not release the leader Lease; it expires on its own");
            return;
        }
    };
    if let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(config.identity.as_str())
    {
        spec.holder_identity = None;
        spec.renew_time = None;
        match config.call("update", store.replace(&lease)).await {
            Ok(Ok(_)) => tracing::info!("released the leader Lease"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not release the leader Lease; it expires on its own");
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not release the leader Lease; it expires on its own");
            }
        }
    }
}

#[cfg(test)]
mod tests;
