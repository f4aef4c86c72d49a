//! Upstream health: active health checks and outlier detection take a broken
//! endpoint out of the rotation, after which no client sees an error; TCP
//! keepalive reaches the cluster.

use std::sync::atomic::{AtomicUsize, Ordering};

use legate_tests::TestHost;
use legate_tests::http::HttpClient;
use legate_tests::net::eventually;
use legate_tests::stage::{PATIENCE, Stage};
use legate_tests::upstreams::{Behaviour, Recorder};
use serde_json::{Value, json};

use super::{Req, SHOP, apply_programmed, cluster_stat, echoed, service};

const PORT: u16 = 8093;

/// A Service `name` with two endpoints on port `PORT`: an echo server
/// `good-1` on the stage's test host, and a recorder `bad-1` that answers
/// 503 to everything on a test host of its own.
async fn good_and_bad(stage: &Stage, name: &str) -> (legate_tests::EchoServer, TestHost, Recorder) {
    let good = stage
        .host
        .start_echo("good-1", PORT)
        .unwrap_or_else(|e| panic!("{e}"));
    let bad_host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let bad = Recorder::on(&bad_host, "bad-1", PORT, Behaviour::AlwaysFail).unwrap_or_else(|e| panic!("{e}"));
    let addresses = [stage.host.addr().to_string(), bad_host.addr().to_string()];
    service(&stage.env, name, &[&addresses[0], &addresses[1]], PORT).await;
    (good, bad_host, bad)
}

/// Requests the bad endpoint saw other than health checks.
fn served_by_bad(bad: &Recorder) -> usize {
    bad.requests().iter().filter(|r| r.path != "/healthz").count()
}

/// `n` requests in a row, each a 200 from `good-1`.
async fn all_from_the_good_endpoint(stage: &Stage, prefix: &str, n: usize) {
    let client = HttpClient::http1();
    for i in 0..n {
        let r = Req::get(&format!("{prefix}{i}")).send_with(stage, &client).await;
        echoed(&r, 200, "good-1", &format!("/{i}"), SHOP);
    }
}

#[tokio::test]
async fn an_endpoint_failing_its_health_checks_gets_no_request() {
    let stage = Stage::new().await;
    let (_good, _bad_host, bad) = good_and_bad(&stage, "mixed").await;
    apply_programmed(
        &stage,
        &[(
            "checked",
            json!({ "prefix": "/checked/", "service": "mixed",
                    "healthCheck": { "path": "/healthz", "host": "mixed.example", "interval": "1s", "unhealthyThreshold": 2,
                                     "expectedStatuses": [200, 204] } }),
        )],
    )
    .await;
    eventually(
        "Envoy to find one of the two endpoints unhealthy",
        PATIENCE,
        || async {
            let total = cluster_stat(&stage, "mixed", "membership_total").await;
            let healthy = cluster_stat(&stage, "mixed", "membership_healthy").await;
            (total == 2 && healthy == 1).then_some(())
        },
    )
    .await;
    // Envoy takes a new endpoint for unhealthy until its first check passes.
    let checks = bad.requests();
    assert!(
        !checks.is_empty()
            && checks
                .iter()
                .all(|c| c.path == "/healthz" && c.host == "mixed.example"),
        "the checks asked the configured path and host: {checks:?}"
    );
    all_from_the_good_endpoint(&stage, "/checked/", 40).await;
    assert_eq!(
        served_by_bad(&bad),
        0,
        "no request reached the unhealthy endpoint"
    );
}

/// The cluster in Envoy's config dump whose name starts with `prefix`.
fn dumped_cluster(dump: &Value, prefix: &str) -> Option<Value> {
    dump["configs"].as_array()?.iter().find_map(|config| {
        config["dynamic_active_clusters"]
            .as_array()?
            .iter()
            .map(|c| c["cluster"].clone())
            .find(|c| c["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
    })
}

#[tokio::test]
async fn an_endpoint_answering_5xx_is_ejected_and_then_no_client_sees_an_error() {
    let stage = Stage::new().await;
    let (_good, _bad_host, bad) = good_and_bad(&stage, "flaky").await;
    apply_programmed(
        &stage,
        &[(
            "judged",
            json!({ "prefix": "/judged/", "service": "flaky",
                    "outlierDetection": { "consecutive5xx": 2, "interval": "1s", "baseEjectionTime": "60s",
                                          "maxEjectionPercent": 50 },
                    "tcpKeepalive": { "probes": 3, "idleTime": "30s", "interval": "5s" } }),
        )],
    )
    .await;

    // Round robin sends every other request to the bad endpoint until its
    // second 503 in a row ejects it.
    let client = HttpClient::http1();
    let errors = AtomicUsize::new(0);
    eventually("Envoy to eject the endpoint answering 503", PATIENCE, || async {
        let r = Req::get("/judged/before").send_with(&stage, &client).await;
        if r.status != 200 {
            errors.fetch_add(1, Ordering::Relaxed);
        }
        (cluster_stat(&stage, "flaky", "outlier_detection.ejections_active").await == 1).then_some(())
    })
    .await;
    eprintln!(
        "client errors before the ejection: {}",
        errors.load(Ordering::Relaxed)
    );
    let seen_before = served_by_bad(&bad);
    assert!(
        seen_before >= 2,
        "the bad endpoint answered before it was ejected"
    );
    all_from_the_good_endpoint(&stage, "/judged/", 40).await;
    assert_eq!(
        served_by_bad(&bad),
        seen_before,
        "no request reached the ejected endpoint"
    );

    let dump: Value = serde_json::from_str(&stage.envoy.admin_get("/config_dump").await)
        .unwrap_or_else(|e| panic!("Envoy's config dump is JSON: {e}"));
    let cluster = dumped_cluster(&dump, &format!("{}/flaky:80~", stage.env.namespace))
        .unwrap_or_else(|| panic!("the Mapping's cluster of flaky in {dump:#}"));
    assert_eq!(
        cluster["upstream_connection_options"]["tcp_keepalive"],
        json!({ "keepalive_probes": 3, "keepalive_time": 30, "keepalive_interval": 5 }),
        "{cluster:#}"
    );
}
