//! Gateway `spec.defaults`: every Mapping that does not set its own timeout,
//! retries, circuit breakers or load balancing gets the Gateway's. (CORS
//! defaults are in `cors.rs`.)

use std::collections::BTreeSet;

use legate_tests::http::HttpClient;
use legate_tests::net::eventually;
use legate_tests::stage::{PATIENCE, Stage};
use legate_tests::upstreams::{Behaviour, Recorder};
use serde_json::json;

use super::{Req, SHOP, apply_programmed, cluster_stat, echoed, from_envoy, gateway_defaults, pool, service};

#[tokio::test]
async fn the_gateway_default_timeout_applies_unless_a_mapping_sets_its_own() {
    let stage = Stage::new().await;
    gateway_defaults(&stage, json!({ "timeout": "300ms" })).await;
    apply_programmed(
        &stage,
        &[
            ("inherits", json!({ "prefix": "/inherits/", "service": "quote" })),
            (
                "own",
                json!({ "prefix": "/own/", "service": "quote", "timeout": "5s" }),
            ),
        ],
    )
    .await;

    // The Gateway's default may reach Envoy after the Mapping was first programmed.
    let r = Req::get("/inherits/x")
        .header("x-echo-delay-ms", "1000")
        .until(&stage, |r| r.status == 504)
        .await;
    from_envoy(&r, 504);
    assert_eq!(r.text(), "upstream request timeout");
    let r = Req::get("/own/x")
        .header("x-echo-delay-ms", "1000")
        .send(&stage)
        .await;
    echoed(&r, 200, "quote-1", "/x", SHOP);
}

#[tokio::test]
async fn the_gateway_default_retry_policy_applies_unless_a_mapping_sets_its_own() {
    let stage = Stage::new().await;
    let flaky = Recorder::on(&stage.host, "flaky-1", 8086, Behaviour::FailFirstAttempt)
        .unwrap_or_else(|e| panic!("{e}"));
    service(&stage.env, "flaky", &[&stage.host.addr().to_string()], 8086).await;
    gateway_defaults(
        &stage,
        json!({ "retryPolicy": { "retryOn": "5xx", "numRetries": 2 } }),
    )
    .await;
    apply_programmed(
        &stage,
        &[
            ("inherits", json!({ "prefix": "/inherits/", "service": "flaky" })),
            (
                "own",
                json!({ "prefix": "/own/", "service": "flaky", "retryPolicy": { "retryOn": "5xx", "numRetries": 0 } }),
            ),
        ],
    )
    .await;

    let mut n = 0;
    let r = eventually("the default retry policy to reach Envoy", PATIENCE, || {
        n += 1;
        let path = format!("/inherits/{n}");
        let stage = &stage;
        async move {
            let r = Req::get(&path).send(stage).await;
            (r.status == 200).then_some((r, n))
        }
    })
    .await;
    let (r, n) = r;
    echoed(&r, 200, "flaky-1", &format!("/{n}"), SHOP);
    assert_eq!(flaky.count(&format!("/{n}")), 2, "failed once, retried once");

    let r = Req::get("/own/b").send(&stage).await;
    assert_eq!(r.status, 503, "numRetries: 0 on the Mapping wins: {}", r.text());
    assert_eq!(flaky.count("/b"), 1);
}

#[tokio::test]
async fn the_gateway_default_circuit_breakers_apply_unless_a_mapping_sets_its_own() {
    let stage = Stage::new().await;
    gateway_defaults(&stage, json!({ "circuitBreakers": { "maxRequests": 1 } })).await;
    apply_programmed(
        &stage,
        &[
            ("inherits", json!({ "prefix": "/inherits/", "service": "quote", "timeout": "10s" })),
            (
                "own",
                json!({ "prefix": "/own/", "service": "quote", "timeout": "10s", "circuitBreakers": { "maxRequests": 100 } }),
            ),
        ],
    )
    .await;

    // With the default's limit of 1, a second concurrent request overflows.
    let overflowed = eventually("the default limit of 1 to hold", PATIENCE, || {
        let port = stage.port;
        let stage = &stage;
        async move {
            let slow = tokio::spawn(slow(port, "/inherits/slow"));
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let r = Req::get("/inherits/fast").send(stage).await;
            let _ = slow.await;
            (r.status == 503).then_some(r)
        }
    })
    .await;
    from_envoy(&overflowed, 503);
    assert_eq!(overflowed.header("x-envoy-overloaded"), Some("true"));

    // The Mapping's own limit of 100 lets the second request through.
    let slow_one = tokio::spawn(slow(stage.port, "/own/slow"));
    eventually("a slow request in flight", PATIENCE, || async {
        (cluster_stat(&stage, "quote", "upstream_rq_active").await >= 1).then_some(())
    })
    .await;
    let r = Req::get("/own/fast").send(&stage).await;
    echoed(&r, 200, "quote-1", "/fast", SHOP);
    assert_eq!(slow_one.await.expect("joins"), Some(200));
}

async fn slow(port: u16, path: &str) -> Option<u16> {
    let request = hyper::Request::builder()
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("host", SHOP)
        .header("x-echo-delay-ms", "1000")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("a request");
    let r = HttpClient::http1().send(request).await.ok()?;
    Some(r.status.as_u16())
}

#[tokio::test]
async fn the_gateway_default_load_balancer_applies_unless_a_mapping_sets_its_own() {
    let stage = Stage::new().await;
    let _pool = pool(&stage, "pool", 3).await;
    gateway_defaults(
        &stage,
        json!({ "loadBalancer": { "policy": "RingHash", "hashOn": { "header": "x-user" } } }),
    )
    .await;
    apply_programmed(
        &stage,
        &[
            ("inherits", json!({ "prefix": "/inherits/", "service": "pool" })),
            (
                "own",
                json!({ "prefix": "/own/", "service": "pool", "loadBalancer": { "policy": "RoundRobin" } }),
            ),
        ],
    )
    .await;
    eventually("the pool's three endpoints", PATIENCE, || async {
        (cluster_stat(&stage, "pool", "membership_total").await >= 6).then_some(())
    })
    .await;

    let client = HttpClient::http1();
    let backends_of = |prefix: &'static str, user: String| {
        let client = client.clone();
        let stage = &stage;
        async move {
            let mut seen = BTreeSet::new();
            for _ in 0..9 {
                let r = Req::get(&format!("{prefix}x"))
                    .header("x-user", &user)
                    .send_with(stage, &client)
                    .await;
                let echo = echoed(&r, 200, &r.echo().backend, "/x", SHOP);
                seen.insert(echo.backend);
            }
            seen
        }
    };
    let mut used = BTreeSet::new();
    for u in 0..8 {
        let seen = backends_of("/inherits/", format!("user-{u}")).await;
        assert_eq!(
            seen.len(),
            1,
            "the default RingHash on x-user keeps user-{u} on one endpoint: {seen:?}"
        );
        used.extend(seen);
    }
    assert!(used.len() >= 2, "8 users all on {used:?} proves nothing");
    let seen = backends_of("/own/", "user-0".into()).await;
    assert_eq!(seen.len(), 3, "the Mapping's RoundRobin ignores x-user: {seen:?}");
}
