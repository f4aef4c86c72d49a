//! Leader election with a `coordination.k8s.io` Lease. Every replica watches,
//! translates and serves xDS; only the leader writes status and Events and
//! manages fleets. A leader that stops renewing loses the Lease after its
//! duration, and another replica takes it.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Where the Lease lives and who we are.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a Lease stays held without renewal.
    pub duration: Duration,
    /// How often the holder renews (and others retry).
    pub retry: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: &str, name: &str, identity: &str) -> LeaseConfig {
        LeaseConfig {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            // Takeover within 15 s: at most `duration` + `retry` after the last renewal.
            duration: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// Why this round of trying to lead failed; the next round tries again, and
/// a leader keeps leading while the Lease it last renewed is still valid.
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
}

impl LeaseConfig {
    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Keeps trying to lead until `stop` fires, then releases the Lease so that
/// another replica takes over at once. The receiver says whether we lead.
pub fn run(
    client: Client,
    config: LeaseConfig,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            let leading = match try_lead(&api, &config).await {
                Ok(held) => {
                    if held {
                        last_renewal = Some(tokio::time::Instant::now());
                    }
                    held
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not take or renew the leader Lease");
                    // Keep leading only while the Lease we hold is still valid.
                    last_renewal.is_some_and(|t| t.elapsed() < config.duration)
                }
            };
            let was_leading = *tx.borrow();
            if was_leading != leading {
                tracing::info!(identity = %config.identity, leading, "leadership changed");
            }
            metrics.leader.set(i64::from(leading));
            let _ = tx.send_if_modified(|l| std::mem::replace(l, leading) != leading);
            let stopping = tokio::select! {
                _ = tokio::time::sleep(config.retry) => false,
                // A closed channel also means the operator is going away.
                r = stop.wait_for(|s| *s) => { drop(r); true }
            };
            if stopping {
                if leading {
                    release(&api, &config).await;
                }
                let _ = tx.send(false);
                return;
            }
        }
    });
    rx
}

/// Acquires or renews the Lease; true when we hold it afterwards.
async fn try_lead(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, LeaseError> {
    let now = Timestamp::now();
    let read = api
        .get_opt(&config.name)
        .await
        .map_err(|source| LeaseError::Read {
            lease: config.lease(),
            source,
        })?;
    let write_error = |source| LeaseError::Write {
        lease: config.lease(),
        source,
    };
    let Some(mut lease) = read else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(held_by(config, now, now, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(write_error(e)),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let new_spec = if holder == config.identity {
        let acquired = spec.acquire_time.map(|t| t.0).unwrap_or(now);
        held_by(config, acquired, now, spec.lease_transitions.unwrap_or(0))
    } else {
        let duration =
            Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
        let expired = match spec.renew_time.as_ref() {
            Some(renewed) => now.duration_since(renewed.0).unsigned_abs() > duration,
            None => true,
        };
        if !holder.is_empty() && !expired {
            return Ok(false);
        }
        held_by(config, now, now, spec.lease_transitions.unwrap_or(0) + 1)
    };
    lease.spec = Some(new_spec);
    // The resourceVersion makes this a compare-and-swap: of two replicas
    // racing for an expired Lease, one gets a 409.
    match api.replace(&config.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
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
async fn release(api: &Api<Lease>, config: &LeaseConfig) {
    let mut lease = match api.get_opt(&config.name).await {
        Ok(Some(lease)) => lease,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the leader Lease to release it; it expires on its own");
            return;
        }
    };
    if let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(config.identity.as_str())
    {
        spec.holder_identity = None;
        spec.renew_time = None;
        if let Err(e) = api.replace(&config.name, &PostParams::default(), &lease).await {
            tracing::warn!(error = %e, "could not release the leader Lease; it expires on its own");
        } else {
            tracing::info!("released the leader Lease");
        }
    }
}
