//! Timeouts, retries, circuit breakers and load balancing.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use legate_tests::http::HttpClient;
use legate_tests::net::eventually;
use legate_tests::stage::{PATIENCE, Stage};
use legate_tests::upstreams::{Behaviour, Recorder, Unanswering};
use serde_json::json;

use super::{Req, SHOP, apply_programmed, cluster_stat, echoed, from_envoy, pool, service, tally};

#[tokio::test]
async fn a_request_slower_than_the_timeout_gets_504() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "slow",
            json!({ "prefix": "/slow/", "service": "quote", "timeout": "300ms" }),
        )],
    )
    .await;

    let started = Instant::now();
    let r = Req::get("/slow/x")
        .header("x-echo-delay-ms", "1500")
        .send(&stage)
        .await;
    eprintln!("timeout 300ms: 504 after {} ms", started.elapsed().as_millis());
    from_envoy(&r, 504);
    assert_eq!(r.text(), "upstream request timeout");
    let r = Req::get("/slow/x")
        .header("x-echo-delay-ms", "50")
        .send(&stage)
        .await;
    echoed(&r, 200, "quote-1", "/x", SHOP);
}

#[tokio::test]
async fn an_idle_upstream_stream_is_closed_after_the_idle_timeout() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "idle",
            json!({ "prefix": "/idle/", "service": "quote", "timeout": "10s", "idleTimeout": "300ms" }),
        )],
    )
    .await;

    let started = Instant::now();
    let r = Req::get("/idle/x")
        .header("x-echo-delay-ms", "2000")
        .send(&stage)
        .await;
    let elapsed = started.elapsed();
    eprintln!(
        "idleTimeout 300ms (timeout 10s): {} after {} ms",
        r.status,
        elapsed.as_millis()
    );
    from_envoy(&r, 504);
    assert_eq!(r.text(), "stream timeout");
    let r = Req::get("/idle/x")
        .header("x-echo-delay-ms", "50")
        .send(&stage)
        .await;
    echoed(&r, 200, "quote-1", "/x", SHOP);
}

#[tokio::test]
async fn an_upstream_that_never_answers_the_syn_fails_after_the_connect_timeout_and_a_refusing_one_at_once() {
    let stage = Stage::new().await;
    let silent = Unanswering::on(&stage.host, 8091).await;
    service(
        &stage.env,
        "silent",
        &[&stage.host.addr().to_string()],
        silent.addr().port(),
    )
    .await;
    // Nothing listens on 8092: the test host answers the SYN with a reset.
    service(&stage.env, "refusing", &[&stage.host.addr().to_string()], 8092).await;
    apply_programmed(
        &stage,
        &[
            (
                "silent",
                json!({ "prefix": "/silent/", "service": "silent", "connectTimeout": "250ms", "timeout": "10s" }),
            ),
            (
                "refusing",
                json!({ "prefix": "/refusing/", "service": "refusing", "timeout": "10s" }),
            ),
        ],
    )
    .await;

    let started = Instant::now();
    let r = Req::get("/silent/x").send(&stage).await;
    eprintln!(
        "connectTimeout 250ms, SYN unanswered: {} after {} ms",
        r.status,
        started.elapsed().as_millis()
    );
    from_envoy(&r, 503);
    assert!(
        r.text().contains("connection timeout"),
        "Envoy says why: {:?}",
        r.text()
    );

    let started = Instant::now();
    let r = Req::get("/refusing/x").send(&stage).await;
    eprintln!(
        "connection refused: {} after {} ms",
        r.status,
        started.elapsed().as_millis()
    );
    from_envoy(&r, 503);
    assert!(
        r.text().contains("connection failure") || r.text().contains("Connection refused"),
        "Envoy says why: {:?}",
        r.text()
    );
}

#[tokio::test]
async fn a_retry_policy_hides_an_upstream_that_fails_once() {
    let stage = Stage::new().await;
    let flaky = Recorder::on(&stage.host, "flaky-1", 8086, Behaviour::FailFirstAttempt)
        .unwrap_or_else(|e| panic!("{e}"));
    service(&stage.env, "flaky", &[&stage.host.addr().to_string()], 8086).await;
    apply_programmed(
        &stage,
        &[
            (
                "retried",
                json!({ "prefix": "/retried/", "service": "flaky", "retryPolicy": { "retryOn": "5xx", "numRetries": 1 } }),
            ),
            ("unretried", json!({ "prefix": "/unretried/", "service": "flaky" })),
        ],
    )
    .await;

    let r = Req::get("/retried/a").send(&stage).await;
    let echo = echoed(&r, 200, "flaky-1", "/a", SHOP);
    assert_eq!(echo.header("x-envoy-attempt-count"), None, "not asked for");
    assert_eq!(
        flaky.count("/a"),
        2,
        "the first attempt failed, the retry succeeded"
    );

    let r = Req::get("/unretried/b").send(&stage).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.echo().backend,
        "flaky-1",
        "the upstream's own 503 reaches the client"
    );
    assert_eq!(flaky.count("/b"), 1, "no retry without a retry policy");
}

#[tokio::test]
async fn a_per_try_timeout_cuts_each_attempt_short() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "tries",
            json!({
                "prefix": "/tries/", "service": "quote", "timeout": "10s",
                "retryPolicy": { "retryOn": "5xx", "numRetries": 2, "perTryTimeout": "200ms" },
            }),
        )],
    )
    .await;

    let started = Instant::now();
    let r = Req::get("/tries/x")
        .header("x-echo-delay-ms", "1500")
        .send(&stage)
        .await;
    eprintln!(
        "perTryTimeout 200ms, 2 retries, timeout 10s: {} after {} ms",
        r.status,
        started.elapsed().as_millis()
    );
    from_envoy(&r, 504);
    assert_eq!(r.text(), "upstream request timeout");
    assert_eq!(
        cluster_stat(&stage, "quote", "upstream_rq_per_try_timeout").await,
        3,
        "the first attempt and both retries timed out"
    );
    assert_eq!(cluster_stat(&stage, "quote", "upstream_rq_retry").await, 2);
    let r = Req::get("/tries/x").send(&stage).await;
    echoed(&r, 200, "quote-1", "/x", SHOP);
}

/// A GET that the echo answers after 2 s, on a connection of its own.
async fn slow_request(port: u16) -> Option<u16> {
    let request = hyper::Request::builder()
        .uri(format!("http://127.0.0.1:{port}/guarded/slow"))
        .header("host", SHOP)
        .header("x-echo-delay-ms", "2000")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("a request");
    let r = HttpClient::http1().send(request).await.ok()?;
    Some(r.status.as_u16())
}

#[tokio::test]
async fn beyond_max_requests_in_flight_envoy_answers_503_at_once() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "guarded",
            json!({ "prefix": "/guarded/", "service": "quote", "timeout": "10s", "circuitBreakers": { "maxRequests": 2 } }),
        )],
    )
    .await;

    let first = tokio::spawn(slow_request(stage.port));
    let second = tokio::spawn(slow_request(stage.port));
    eventually("two requests in flight upstream", PATIENCE, || async {
        (cluster_stat(&stage, "quote", "upstream_rq_active").await >= 2).then_some(())
    })
    .await;

    let started = Instant::now();
    let r = Req::get("/guarded/fast").send(&stage).await;
    let elapsed = started.elapsed();
    eprintln!(
        "circuit open (maxRequests 2, 2 in flight): {} after {} ms",
        r.status,
        elapsed.as_millis()
    );
    from_envoy(&r, 503);
    assert_eq!(r.header("x-envoy-overloaded"), Some("true"));
    assert_eq!(first.await.expect("joins"), Some(200));
    assert_eq!(second.await.expect("joins"), Some(200));
    assert_eq!(
        cluster_stat(&stage, "quote", "upstream_rq_active_overflow").await,
        1,
        "Envoy counts the request it refused"
    );

    let r = Req::get("/guarded/fast").send(&stage).await;
    echoed(&r, 200, "quote-1", "/fast", SHOP);
}

#[tokio::test]
async fn round_robin_and_least_request_spread_requests_over_every_endpoint() {
    let stage = Stage::new().await;
    let _pool = pool(&stage, "pool", 3).await;
    apply_programmed(
        &stage,
        &[
            (
                "rr",
                json!({ "prefix": "/rr/", "service": "pool", "loadBalancer": { "policy": "RoundRobin" } }),
            ),
            (
                "lr",
                json!({ "prefix": "/lr/", "service": "pool", "loadBalancer": { "policy": "LeastRequest" } }),
            ),
        ],
    )
    .await;

    eventually(
        "the pool's three endpoints in both clusters",
        PATIENCE,
        || async { (cluster_stat(&stage, "pool", "membership_total").await >= 6).then_some(()) },
    )
    .await;

    let client = HttpClient::http1();
    for (prefix, what) in [("/rr/", "RoundRobin"), ("/lr/", "LeastRequest")] {
        let mut backends = Vec::new();
        for _ in 0..30 {
            let r = Req::get(&format!("{prefix}x")).send_with(&stage, &client).await;
            let echo = r.echo();
            assert_eq!(
                (r.status.as_u16(), echo.path.as_str(), echo.host.as_str()),
                (200, "/x", SHOP)
            );
            backends.push(echo.backend);
        }
        let counts = tally(backends.iter().map(String::as_str));
        eprintln!("{what} over 3 endpoints, 30 requests: {counts:?}");
        assert_eq!(counts.len(), 3, "{what} uses every endpoint: {counts:?}");
        if what == "RoundRobin" {
            for (backend, n) in &counts {
                assert_eq!(
                    *n, 10,
                    "round robin takes each endpoint in turn: {backend} {counts:?}"
                );
            }
        }
    }
}

/// Backends answering each of `keys`' requests, `rounds` times over: each key
/// must always land on the same backend, and the keys must not all share one.
#[track_caller]
fn assert_sticky(assignments: &[(String, String)], what: &str) {
    let keys: BTreeSet<&str> = assignments.iter().map(|(k, _)| k.as_str()).collect();
    for key in &keys {
        let backends: BTreeSet<&str> = assignments
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, b)| b.as_str())
            .collect();
        assert_eq!(backends.len(), 1, "{what}: {key} went to {backends:?}");
    }
    let used: BTreeSet<&str> = assignments.iter().map(|(_, b)| b.as_str()).collect();
    assert!(
        used.len() >= 2,
        "{what}: {} keys all hashed to {used:?}, which proves nothing",
        keys.len()
    );
    eprintln!("{what}: {} keys sticky over {} endpoints", keys.len(), used.len());
}

#[tokio::test]
async fn ring_hash_and_maglev_on_a_header_keep_each_value_on_one_endpoint() {
    let stage = Stage::new().await;
    let _pool = pool(&stage, "pool", 3).await;
    apply_programmed(
        &stage,
        &[
            (
                "sticky",
                json!({ "prefix": "/sticky/", "service": "pool", "loadBalancer": { "policy": "RingHash", "hashOn": { "header": "x-user" } } }),
            ),
            (
                "maglev",
                json!({ "prefix": "/maglev/", "service": "pool", "loadBalancer": { "policy": "Maglev", "hashOn": { "header": "x-user" } } }),
            ),
        ],
    )
    .await;
    // All three endpoints of both clusters known to Envoy before counting.
    eventually(
        "the pool's three endpoints in both clusters",
        PATIENCE,
        || async { (cluster_stat(&stage, "pool", "membership_total").await >= 6).then_some(()) },
    )
    .await;

    let client = HttpClient::http1();
    for (prefix, what) in [
        ("/sticky/", "RingHash on x-user"),
        ("/maglev/", "Maglev on x-user"),
    ] {
        let mut assignments = Vec::new();
        for round in 0..5 {
            for user in 0..12 {
                let user = format!("user-{user}");
                let r = Req::get(&format!("{prefix}{round}"))
                    .header("x-user", &user)
                    .send_with(&stage, &client)
                    .await;
                let echo = echoed(&r, 200, &r.echo().backend, &format!("/{round}"), SHOP);
                assert_eq!(echo.header("x-user"), Some(user.as_str()));
                assignments.push((user, echo.backend));
            }
        }
        assert_sticky(&assignments, what);
    }
}

#[tokio::test]
async fn ring_hash_on_a_cookie_sets_it_and_keeps_each_client_on_one_endpoint() {
    let stage = Stage::new().await;
    let _pool = pool(&stage, "pool", 3).await;
    apply_programmed(
        &stage,
        &[(
            "sticky",
            json!({
                "prefix": "/sticky/", "service": "pool",
                "loadBalancer": { "policy": "RingHash", "hashOn": { "cookie": { "name": "affinity", "ttl": "1h", "path": "/sticky/" } } },
            }),
        )],
    )
    .await;
    eventually("the pool's three endpoints", PATIENCE, || async {
        (cluster_stat(&stage, "pool", "membership_total").await >= 3).then_some(())
    })
    .await;

    let mut assignments = Vec::new();
    for c in 0..12 {
        // Each client has connections of its own: Envoy derives a new
        // cookie's value from the client's address and port.
        let client = HttpClient::http1();
        // The first request has no cookie: Envoy picks an endpoint and sets one.
        let r = Req::get("/sticky/x").send_with(&stage, &client).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let set_cookie = r
            .header("set-cookie")
            .unwrap_or_else(|| panic!("Envoy sets the affinity cookie: {:?}", r.headers))
            .to_string();
        assert!(set_cookie.starts_with("affinity="), "{set_cookie}");
        assert!(set_cookie.contains("Max-Age=3600"), "{set_cookie}");
        assert!(set_cookie.contains("Path=/sticky/"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
        let first = r.echo().backend;
        assignments.push((format!("client-{c}"), first));
        for _ in 0..4 {
            let r = Req::get("/sticky/x")
                .header("cookie", &cookie)
                .send_with(&stage, &client)
                .await;
            let echo = echoed(&r, 200, &r.echo().backend, "/x", SHOP);
            assert_eq!(echo.header("cookie"), Some(cookie.as_str()));
            assert_eq!(r.header("set-cookie"), None, "a client with the cookie keeps it");
            assignments.push((format!("client-{c}"), echo.backend));
        }
    }
    assert_sticky(&assignments, "RingHash on a cookie");
}

#[tokio::test]
async fn ring_hash_on_the_source_ip_keeps_each_client_address_on_one_endpoint() {
    let stage = Stage::new().await;
    let _pool = pool(&stage, "pool", 3).await;
    apply_programmed(
        &stage,
        &[(
            "sticky",
            json!({ "prefix": "/sticky/", "service": "pool", "loadBalancer": { "policy": "RingHash", "hashOn": { "sourceIp": true } } }),
        )],
    )
    .await;
    eventually("the pool's three endpoints", PATIENCE, || async {
        (cluster_stat(&stage, "pool", "membership_total").await >= 3).then_some(())
    })
    .await;

    let mut assignments = Vec::new();
    for round in 0..4 {
        for last in 2..14u8 {
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
            let r = Req::get(&format!("/sticky/{round}"))
                .send_from(&stage, source)
                .await;
            let echo = echoed(&r, 200, &r.echo().backend, &format!("/{round}"), SHOP);
            assert_eq!(
                echo.header("x-forwarded-for"),
                Some(source.to_string().as_str()),
                "Envoy saw the client's own address"
            );
            assignments.push((source.to_string(), echo.backend));
        }
    }
    assert_sticky(&assignments, "RingHash on the source IP");
}
