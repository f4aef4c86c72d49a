//! The operator is killed (SIGKILL) while a delta-xDS Envoy holds its config,
//! and a new one starts on the same xDS port: the Envoy reconnects with the
//! resources it holds, keeps serving all along, and takes the changes made
//! after the restart.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use legate_tests::api::install_crds;
use legate_tests::http::{HttpClient, Traffic};
use legate_tests::net::{eventually, free_port};
use legate_tests::operator::Operator;
use legate_tests::stage::Stage;
use legate_tests::{ControlPlane, TestEnv};
use serde_json::json;

#[tokio::test]
async fn a_killed_operator_replaced_under_a_delta_xds_envoy_drops_no_request() {
    let own = ControlPlane::own();
    let env = TestEnv::on(own.get()).await;
    install_crds(&env.client).await;
    let xds_port = free_port();
    let first = Operator::start_on(env.control_plane, xds_port).await;
    let stage = Stage::with_env(env).await;
    let configmaps: Api<ConfigMap> = stage.env.api();
    let bootstrap = configmaps
        .get("edge-envoy")
        .await
        .expect("the Gateway's bootstrap")
        .data
        .unwrap_or_default()
        .remove("envoy.yaml")
        .unwrap_or_default();
    assert!(
        bootstrap.contains("api_type: DELTA_GRPC"),
        "the Envoy speaks delta ADS:\n{bootstrap}"
    );
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    stage.until_status("/backend/x", 200).await;
    stage.condition("Mapping", "quote", "Programmed", "True").await;

    let traffic = Traffic::start(stage.url("/backend/x"), "shop.example.com");
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill();
    // Envoy notices the stream is gone and keeps what it has.
    eventually(
        "Envoy to see its xDS stream gone",
        Duration::from_secs(10),
        || async { (stage.envoy.stat("control_plane.connected_state").await == Some(0)).then_some(()) },
    )
    .await;
    let second = Operator::start_on(stage.env.control_plane, xds_port).await;
    let restarted = Instant::now();
    eventually(
        "Envoy to reconnect to the new operator",
        Duration::from_secs(20),
        || async { (stage.envoy.stat("control_plane.connected_state").await == Some(1)).then_some(()) },
    )
    .await;

    // Changes made after the restart reach the Envoy: a new Mapping, and a
    // new spec for the one the traffic goes through.
    stage
        .mapping("after", json!({ "prefix": "/after/", "service": "quote" }))
        .await;
    stage
        .mapping(
            "quote",
            json!({ "prefix": "/backend/", "service": "quote", "rewrite": "/v2/" }),
        )
        .await;
    stage.until_status("/after/x", 200).await;
    let client = HttpClient::http1();
    let url = stage.url("/backend/x");
    eventually(
        "the traffic's route to take its new rewrite",
        Duration::from_secs(20),
        || async {
            let r = client.get(&url, Some("shop.example.com")).await.ok()?;
            (r.status == 200 && r.echo().path == "/v2/x").then_some(())
        },
    )
    .await;
    let changes_served = restarted.elapsed();
    stage
        .condition_at("Mapping", "quote", "Programmed", "True", 2)
        .await;
    stage.condition("Mapping", "after", "Programmed", "True").await;

    // Traffic runs on past the new operator's restart grace (15 s), when it
    // reconciles everything it held back.
    tokio::time::sleep(Duration::from_secs(17).saturating_sub(restarted.elapsed())).await;
    assert_eq!(
        stage.get("/after/x").await.status,
        200,
        "the new Mapping still serves"
    );
    assert_eq!(
        stage.get("/backend/x").await.echo().path,
        "/v2/x",
        "no stale route came back"
    );
    let report = traffic.report().await;
    eprintln!(
        "operator killed under a delta-xDS Envoy: {} requests, {} failed; changes made after the \
         restart served {} ms after the new operator was ready",
        report.sent,
        report.failed,
        changes_served.as_millis()
    );
    assert!(report.sent > 500, "traffic ran: {} requests", report.sent);
    assert_eq!(
        report.failed,
        0,
        "no request failed (first failures, from the traffic's start; the operator was killed at \
         about 0.5 s): {:?}\n{}",
        report.failures,
        second.log_tail()
    );
}
