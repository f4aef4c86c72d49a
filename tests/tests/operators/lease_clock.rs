//! Leader election never compares clocks: a Lease whose holder keeps
//! renewing it with a clock decades off is never taken, and once the holder
//! stops, the operator takes it a Lease duration after the last renewal it
//! saw, not at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use legate_tests::TestEnv;
use legate_tests::api::install_crds;
use legate_tests::net::{eventually, free_port};
use legate_tests::operator::Operator;

const LEASE: &str = "legate-leader";
/// The operator's Lease duration, which the ghost also writes.
const DURATION: Duration = Duration::from_secs(10);

/// The ghost replica renews its Lease, saying it did so at `renewed`;
/// false when the Lease is no longer its own.
async fn renew(leases: &Api<Lease>, renewed: Timestamp) -> bool {
    let Ok(mut lease) = leases.get(LEASE).await else {
        return false;
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some("ghost") {
        return false;
    }
    spec.renew_time = Some(MicroTime(renewed));
    // Carries the resourceVersion read: fails if the operator wrote since.
    leases
        .replace(LEASE, &PostParams::default(), &lease)
        .await
        .is_ok()
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases.get_opt(LEASE).await.ok()??.spec?.holder_identity
}

#[tokio::test]
async fn a_lease_renewed_with_a_skewed_clock_is_kept_and_taken_a_duration_after_its_last_renewal() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let leases: Api<Lease> = env.api();
    let year_2000 = Timestamp::from_second(946_684_800).expect("a time");
    let year_2200 = Timestamp::from_second(7_258_118_400).expect("a time");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("ghost".to_string()),
            lease_duration_seconds: Some(10),
            renew_time: Some(MicroTime(year_2000)),
            ..LeaseSpec::default()
        }),
    };
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("the ghost's Lease");
    let operator = Operator::start_with(
        env.control_plane,
        free_port(),
        None,
        &[
            "--namespace",
            &env.namespace,
            "--operator-namespace",
            &env.namespace,
            "--leader-elect",
            "--identity",
            "replica",
        ],
    )
    .await;

    // The ghost renews every 2 seconds for one and a half Lease durations,
    // its clock 26 years behind ours, then 174 years ahead, in turn.
    let started = Instant::now();
    let mut renewals = 0u64;
    let mut last_renewal = started;
    while started.elapsed() < DURATION * 3 / 2 {
        let skewed = if renewals.is_multiple_of(2) {
            year_2000
        } else {
            year_2200
        };
        assert!(
            renew(&leases, skewed + Duration::from_secs(renewals)).await,
            "the operator took a Lease its holder kept renewing, after {:?} (holder {:?})\n{}",
            started.elapsed(),
            holder(&leases).await,
            operator.log_tail()
        );
        last_renewal = Instant::now();
        renewals += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // The ghost stops renewing: the operator takes over once the record has
    // not changed for the duration on its own clock.
    eventually("the operator to take the Lease", DURATION * 3, || {
        let leases = leases.clone();
        async move { (holder(&leases).await.as_deref() == Some("replica")).then_some(()) }
    })
    .await;
    let waited = last_renewal.elapsed();
    eprintln!(
        "the Lease was taken {} ms after its last renewal",
        waited.as_millis()
    );
    assert!(
        waited >= DURATION - Duration::from_secs(1),
        "taken {waited:?} after the last renewal, before the duration passed"
    );
}
