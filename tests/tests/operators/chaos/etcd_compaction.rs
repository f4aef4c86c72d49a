//! etcd compacted to its current revision, again and again, while Mappings
//! are created, updated and deleted, and the API server restarted so that its
//! watch cache cannot serve the revisions the operator's watches resume from:
//! the watches fail with 410 Gone and relist, and the operator converges on
//! what is in the API server (no route of a deleted Mapping, no stale spec).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::DeleteParams;
use legate_crds::Mapping;
use legate_tests::api::install_crds;
use legate_tests::http::HttpClient;
use legate_tests::net::{eventually, free_port};
use legate_tests::operator::Operator;
use legate_tests::stage::Stage;
use legate_tests::{ControlPlane, TestEnv};
use serde_json::json;

use super::{operator_log, plain};

const MAPPINGS: usize = 8;

/// In round `round`, Mapping `i` is deleted (when `(i + round) % 4 == 0`) or
/// applied with the rewrite `/v<round>/`.
fn deleted_in(round: usize, i: usize) -> bool {
    (i + round).is_multiple_of(4)
}

/// What the churn left: per Mapping, the round whose rewrite it serves, or
/// `None` when it was deleted.
struct Churned {
    rounds: usize,
    state: Vec<Option<usize>>,
    /// Applies skipped because the name was still held by the finalizer of
    /// its deletion in an earlier round.
    held: usize,
}

/// Churns the Mappings round after round until `stop`, finishing the round
/// it is in; every operation is retried until the API server takes it (it
/// is away for a while). A name whose deletion is still in progress (its
/// finalizer holds it) is left alone that round: applying it would update
/// the object being deleted.
async fn churn(stage: Arc<Stage>, mappings: Api<Mapping>, stop: Arc<AtomicBool>) -> Churned {
    let mut churned = Churned {
        rounds: 0,
        state: vec![None; MAPPINGS],
        held: 0,
    };
    loop {
        churned.rounds += 1;
        let round = churned.rounds;
        for i in 0..MAPPINGS {
            let name = format!("m{i}");
            if deleted_in(round, i) {
                until_ok(|| async {
                    match mappings.delete(&name, &DeleteParams::default()).await {
                        Ok(_) => true,
                        Err(kube::Error::Api(s)) => s.code == 404,
                        Err(_) => false,
                    }
                })
                .await;
                churned.state[i] = None;
                continue;
            }
            // Retried until the API server answers.
            let terminating = loop {
                match mappings.get_opt(&name).await {
                    Ok(m) => break m.is_some_and(|m| m.metadata.deletion_timestamp.is_some()),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            if terminating {
                churned.held += 1;
                continue;
            }
            let object = json!({
                "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping", "metadata": { "name": name },
                "spec": { "prefix": format!("/{name}/"), "service": "quote", "rewrite": format!("/v{round}/") }
            });
            until_ok(|| async {
                legate_tests::api::apply(&stage.env.client, &stage.env.namespace, &object)
                    .await
                    .is_ok()
            })
            .await;
            churned.state[i] = Some(round);
        }
        if stop.load(Ordering::Relaxed) {
            return churned;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn until_ok<F, Fut>(mut op: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    while !op().await {
        assert!(
            Instant::now() < deadline,
            "a churn operation kept failing for 90 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn compacting_etcd_under_churn_makes_the_watches_relist_and_the_operator_converge() {
    let own = ControlPlane::own();
    let env = TestEnv::on(own.get()).await;
    install_crds(&env.client).await;
    let operator = Operator::start_on(env.control_plane, free_port()).await;
    let stage = Arc::new(Stage::with_env(env).await);
    let mappings: Api<Mapping> = stage.env.api();

    let stop = Arc::new(AtomicBool::new(false));
    let churning = tokio::spawn(churn(stage.clone(), mappings.clone(), stop.clone()));
    let mut revisions = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        revisions.push(own.get().compact_etcd().await);
    }
    // The API server's watch cache would serve the operator's watches from
    // where they were; restarted, it starts at etcd's current revision, past
    // the compacted ones.
    let stopped = own.stop_api_server().await;
    revisions.push(own.get().compact_etcd().await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    own.start_api_server(stopped).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    revisions.push(own.get().compact_etcd().await);
    stop.store(true, Ordering::Relaxed);
    let churned = churning.await.expect("the churn ran to its end");
    let churn_over = Instant::now();

    let log = operator_log();
    let gone: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("watch error")
                && (l.contains("410") || l.contains("too old resource version") || l.contains("Expired"))
        })
        .collect();
    eprintln!(
        "compacted etcd at revisions {revisions:?}; {} rounds of churn ({} applies skipped: the \
         name was still held by the finalizer of its deletion); {} watch errors for expired \
         resource versions (relists), the first: {:?}",
        churned.rounds,
        churned.held,
        gone.len(),
        gone.first().map(|l| plain(l))
    );
    assert!(
        !gone.is_empty(),
        "no watch of the operator was told its resource version was too old (410), so nothing \
         relisted: the test did not test what it says\n{}",
        operator.log_tail()
    );
    let deleted = churned.state.iter().filter(|s| s.is_none()).count();
    assert!(
        deleted > 0 && deleted < MAPPINGS,
        "the churn left Mappings both deleted and applied: {:?}",
        churned.state
    );

    // Converged: every Mapping as the churn left it.
    let client = HttpClient::http1();
    for (i, state) in churned.state.iter().enumerate() {
        let name = format!("m{i}");
        let url = stage.url(&format!("/{name}/x"));
        match state {
            None => {
                eventually(
                    &format!("Mapping {name} (deleted) to be gone"),
                    Duration::from_secs(30),
                    || async { mappings.get_opt(&name).await.ok()?.is_none().then_some(()) },
                )
                .await;
                stage.until_status(&format!("/{name}/x"), 404).await;
            }
            Some(round) => {
                let mapping = mappings.get(&name).await.expect("a surviving Mapping");
                let generation = mapping.metadata.generation.expect("a generation");
                stage
                    .condition_at("Mapping", &name, "Programmed", "True", generation)
                    .await;
                let want = format!("/v{round}/x");
                eventually(
                    &format!("{url} to answer from {want}"),
                    Duration::from_secs(30),
                    || async {
                        let r = client.get(&url, Some("shop.example.com")).await.ok()?;
                        (r.status == 200 && r.echo().path == want).then_some(())
                    },
                )
                .await;
            }
        }
    }
    let converged = churn_over.elapsed();
    // Finalizers that the Envoy's confirmation did not release, but the
    // operator's bounded wait (its Event says so).
    let timeouts = stage.env.control_plane.kubectl(&[
        "get",
        "events",
        "--namespace",
        &stage.env.namespace,
        "--field-selector",
        "reason=DeletionTimeout",
        "-o",
        "name",
    ]);
    eprintln!(
        "converged {} ms after the churn ended; {} deletions released by the operator's timeout \
         rather than by the Envoy's confirmation",
        converged.as_millis(),
        timeouts.lines().count()
    );
    // And it stays so: several answers per Mapping, none stale.
    for _ in 0..3 {
        for (i, state) in churned.state.iter().enumerate() {
            let name = format!("m{i}");
            let r = stage.get(&format!("/{name}/x")).await;
            match state {
                None => assert_eq!(r.status, 404, "{name} was deleted; its route is gone"),
                Some(round) => {
                    assert_eq!(r.status, 200, "{name} serves");
                    assert_eq!(
                        r.echo().path,
                        format!("/v{round}/x"),
                        "{name} serves its last spec"
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
