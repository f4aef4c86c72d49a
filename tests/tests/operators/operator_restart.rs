//! Restarting the operator interrupts no traffic and flaps no condition.
//! On a control plane of its own: it stops and starts its operator.

use std::time::Duration;

use legate_tests::api::{get, install_crds};
use legate_tests::http::Traffic;
use legate_tests::net::free_port;
use legate_tests::operator::Operator;
use legate_tests::stage::Stage;
use legate_tests::{ControlPlane, TestEnv};
use serde_json::{Value, json};

/// `type → (status, lastTransitionTime)` of an object's conditions.
async fn conditions(stage: &Stage, kind: &str, name: &str) -> Vec<(String, String, String)> {
    let object = get(
        &stage.env.client,
        &stage.env.namespace,
        "legate.dev/v1alpha1",
        kind,
        name,
    )
    .await
    .expect("read")
    .expect("exists");
    let mut out: Vec<(String, String, String)> = object.data["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c: &Value| {
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
                c["lastTransitionTime"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn restarting_the_operator_drops_no_request_and_flaps_no_condition() {
    // Its operators watch every namespace: on the binary's shared control
    // plane they would act on the other tests' objects, and they on its.
    let own = ControlPlane::own();
    let env = TestEnv::on(own.get()).await;
    install_crds(&env.client).await;
    let xds_port = free_port();
    let first = Operator::start_on(env.control_plane, xds_port).await;
    let stage = Stage::with_env(env).await;
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    stage.until_status("/backend/x", 200).await;
    stage.condition("Mapping", "quote", "Programmed", "True").await;
    stage.condition("Gateway", "edge", "Programmed", "True").await;
    let mapping_before = conditions(&stage, "Mapping", "quote").await;
    let gateway_before = conditions(&stage, "Gateway", "edge").await;

    // Traffic runs all through the restart.
    let traffic = Traffic::start(stage.url("/backend/x"), "shop.example.com");
    tokio::time::sleep(Duration::from_secs(1)).await;
    first.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = Operator::start_on(stage.env.control_plane, xds_port).await;
    // Past the new operator's grace period for reconnecting proxies.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let report = traffic.report().await;
    let (sent, failed) = (report.sent, report.failed);
    eprintln!("through the restart: {sent} requests, {failed} failed");
    assert!(sent > 100, "traffic ran: {sent} requests");
    assert_eq!(
        failed,
        0,
        "no request failed across the restart (first failures, from the traffic's start; \
         the first operator stopped at about 1 s, the second started at about 2 s): {:?}\n{}",
        report.failures,
        second.log_tail()
    );
    assert_eq!(
        conditions(&stage, "Mapping", "quote").await,
        mapping_before,
        "the Mapping's conditions did not flap"
    );
    assert_eq!(
        conditions(&stage, "Gateway", "edge").await,
        gateway_before,
        "the Gateway's conditions did not flap"
    );
}
