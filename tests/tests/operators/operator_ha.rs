//! Two operator replicas: one leads; when it dies, the other takes the Lease
//! and keeps writing status, and traffic through Envoy never stops.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use legate_tests::api::{install_crds, wait_condition};
use legate_tests::http::Traffic;
use legate_tests::net::{TcpBalancer, eventually, free_port, loopback};
use legate_tests::operator::Operator;
use legate_tests::stage::Stage;
use legate_tests::{ControlPlane, TestEnv};
use serde_json::json;

async fn holder(env: &TestEnv) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    leases.get_opt("legate-leader").await.ok()??.spec?.holder_identity
}

#[tokio::test]
async fn when_the_leader_dies_the_other_replica_takes_over_and_traffic_flows() {
    // Its operators watch every namespace: on the binary's shared control
    // plane they would act on the other tests' objects, and they on its.
    let own = ControlPlane::own();
    let env = TestEnv::on(own.get()).await;
    install_crds(&env.client).await;
    let (port_a, port_b) = (free_port(), free_port());
    // Envoy reaches "the operator Service": whichever replica answers.
    let service = TcpBalancer::start(vec![loopback(port_a), loopback(port_b)]).await;
    let replica = |name: &'static str, namespace: String| {
        vec![
            "--leader-elect".to_string(),
            "--identity".to_string(),
            name.to_string(),
            "--operator-namespace".to_string(),
            namespace,
        ]
    };
    let args_a = replica("replica-a", env.namespace.clone());
    let args_a: Vec<&str> = args_a.iter().map(String::as_str).collect();
    let a = Operator::start_with(env.control_plane, port_a, Some(service.addr()), &args_a).await;
    eventually("replica-a to lead", Duration::from_secs(20), || async {
        (holder(&env).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;

    // The Envoy connects while only replica-a runs, so its stream is on the leader.
    let stage = Stage::with_env(env).await;
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    stage.until_status("/backend/x", 200).await;
    stage.condition("Mapping", "quote", "Programmed", "True").await;
    let args_b = replica("replica-b", stage.env.namespace.clone());
    let args_b: Vec<&str> = args_b.iter().map(String::as_str).collect();
    let b = Operator::start_with(stage.env.control_plane, port_b, Some(service.addr()), &args_b).await;
    assert_eq!(
        holder(&stage.env).await.as_deref(),
        Some("replica-a"),
        "a follower does not steal the Lease"
    );

    let traffic = Traffic::start(stage.url("/backend/x"), "shop.example.com");
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.kill();
    let killed = Instant::now();

    // A change made after the crash gets its status from the new leader.
    stage
        .mapping("after", json!({ "prefix": "/after/", "service": "quote" }))
        .await;
    let waited = tokio::time::timeout(
        Duration::from_secs(40),
        wait_condition(
            &stage.env.client,
            &stage.env.namespace,
            "Mapping",
            "after",
            "Programmed",
            "True",
            Duration::from_secs(45),
        ),
    )
    .await;
    let Ok(programmed) = waited else {
        panic!(
            "replica-b wrote no status within 40s of the crash (Lease holder {:?})\n{}",
            holder(&stage.env).await,
            b.log_tail()
        );
    };
    eprintln!(
        "leader killed → new Mapping Programmed by the other replica: {} ms",
        killed.elapsed().as_millis()
    );
    assert_eq!(programmed["observedGeneration"], 1);
    assert_eq!(
        holder(&stage.env).await.as_deref(),
        Some("replica-b"),
        "replica-b holds the Lease"
    );
    stage.until_status("/after/x", 200).await;

    let (sent, failed) = traffic.finish().await;
    eprintln!("through the failover: {sent} requests, {failed} failed");
    assert!(sent > 100, "traffic ran: {sent}");
    assert_eq!(
        failed,
        0,
        "no request failed during the failover\n{}",
        b.log_tail()
    );
}
