//! Traffic splitting by weight among Mappings with the same match, and
//! shadowing (mirroring) with the client seeing only the primary's answer.

use legate_tests::http::HttpClient;
use legate_tests::net::eventually;
use legate_tests::stage::{PATIENCE, Stage};
use legate_tests::upstreams::{Behaviour, Recorder};
use serde_json::json;

use super::{Req, SHOP, apply_programmed, echo_service, echoed, service, tally};

/// Sends `n` GETs for `path` and counts the answering backends, checking each
/// answer's status, upstream path and Host on the way.
async fn spread(
    stage: &Stage,
    path: &str,
    upstream_path: &str,
    n: usize,
) -> std::collections::BTreeMap<String, usize> {
    let client = HttpClient::http1();
    let mut backends = Vec::with_capacity(n);
    for _ in 0..n {
        let r = Req::get(path).send_with(stage, &client).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let echo = r.echo();
        assert_eq!(echo.path, upstream_path);
        assert_eq!(echo.host, SHOP);
        backends.push(echo.backend);
    }
    tally(backends.iter().map(String::as_str))
}

#[tokio::test]
async fn a_ten_percent_canary_gets_ten_percent_of_a_thousand_requests() {
    let stage = Stage::new().await;
    let _canary = echo_service(&stage, "canary", "canary-1", 8081).await;
    apply_programmed(
        &stage,
        &[
            ("checkout", json!({ "prefix": "/checkout/", "service": "quote" })),
            (
                "checkout-canary",
                json!({ "prefix": "/checkout/", "service": "canary", "weight": 10 }),
            ),
        ],
    )
    .await;

    let counts = spread(&stage, "/checkout/cart", "/cart", 1000).await;
    eprintln!("1000 requests with a 10 % canary: {counts:?}");
    let canary = counts.get("canary-1").copied().unwrap_or(0);
    let stable = counts.get("quote-1").copied().unwrap_or(0);
    assert_eq!(canary + stable, 1000, "{counts:?}");
    assert!(
        (70..=130).contains(&canary),
        "10 % ± 3 of 1000, got {canary}: {counts:?}"
    );
}

#[tokio::test]
async fn mappings_without_a_weight_share_the_remainder() {
    let stage = Stage::new().await;
    let _blue = echo_service(&stage, "blue", "blue-1", 8082).await;
    let _green = echo_service(&stage, "green", "green-1", 8083).await;
    apply_programmed(
        &stage,
        &[
            (
                "main",
                json!({ "prefix": "/shop/", "service": "quote", "weight": 80 }),
            ),
            ("blue", json!({ "prefix": "/shop/", "service": "blue" })),
            ("green", json!({ "prefix": "/shop/", "service": "green" })),
        ],
    )
    .await;

    let counts = spread(&stage, "/shop/item", "/item", 1000).await;
    eprintln!("1000 requests, 80 % and two Mappings sharing 20 %: {counts:?}");
    let get = |b: &str| counts.get(b).copied().unwrap_or(0);
    assert_eq!(get("quote-1") + get("blue-1") + get("green-1"), 1000);
    assert!((760..=840).contains(&get("quote-1")), "{counts:?}");
    assert!((70..=130).contains(&get("blue-1")), "10 % ± 3 each: {counts:?}");
    assert!((70..=130).contains(&get("green-1")), "10 % ± 3 each: {counts:?}");
}

#[tokio::test]
async fn weights_above_100_make_the_overflowing_mapping_invalid() {
    let stage = Stage::new().await;
    let _canary = echo_service(&stage, "canary", "canary-1", 8081).await;
    apply_programmed(
        &stage,
        &[(
            "first",
            json!({ "prefix": "/w/", "service": "quote", "weight": 60 }),
        )],
    )
    .await;
    stage
        .mapping(
            "second",
            json!({ "prefix": "/w/", "service": "canary", "weight": 50 }),
        )
        .await;

    let c = stage.condition("Mapping", "second", "Accepted", "False").await;
    assert_eq!(c["reason"], "Invalid", "{c}");
    let message = c["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("110"),
        "the message says where the total went: {c}"
    );
    let first = stage.condition("Mapping", "first", "Accepted", "True").await;
    assert_eq!(first["reason"], "Accepted");

    // The valid Mapping keeps all the traffic.
    let counts = spread(&stage, "/w/x", "/x", 50).await;
    assert_eq!(counts.get("quote-1"), Some(&50), "{counts:?}");
}

#[tokio::test]
async fn a_single_mapping_takes_all_traffic_whatever_its_weight() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "alone",
            json!({ "prefix": "/alone/", "service": "quote", "weight": 10 }),
        )],
    )
    .await;

    let counts = spread(&stage, "/alone/x", "/x", 100).await;
    assert_eq!(counts.get("quote-1"), Some(&100), "{counts:?}");
}

#[tokio::test]
async fn a_shadow_mirrors_requests_and_the_client_only_sees_the_primary() {
    let stage = Stage::new().await;
    let mirror =
        Recorder::on(&stage.host, "mirror-1", 8084, Behaviour::Answer).unwrap_or_else(|e| panic!("{e}"));
    service(&stage.env, "mirror", &[&stage.host.addr().to_string()], 8084).await;
    let sampled =
        Recorder::on(&stage.host, "sampled-1", 8085, Behaviour::Answer).unwrap_or_else(|e| panic!("{e}"));
    service(&stage.env, "sampled", &[&stage.host.addr().to_string()], 8085).await;
    apply_programmed(
        &stage,
        &[
            ("orders", json!({ "prefix": "/orders/", "service": "quote" })),
            (
                "orders-shadow",
                json!({ "prefix": "/orders/", "service": "mirror", "shadow": true }),
            ),
            ("search", json!({ "prefix": "/search/", "service": "quote" })),
            (
                "search-shadow",
                json!({ "prefix": "/search/", "service": "sampled", "shadow": true, "weight": 30 }),
            ),
        ],
    )
    .await;

    let client = HttpClient::http1();
    for i in 0..20 {
        let r = Req::get(&format!("/orders/{i}"))
            .header("x-request-tag", "mirrored")
            .send_with(&stage, &client)
            .await;
        let echo = echoed(&r, 200, "quote-1", &format!("/{i}"), SHOP);
        assert_eq!(echo.header("x-request-tag"), Some("mirrored"));
    }
    let seen = eventually("the shadow to see all 20 requests", PATIENCE, || async {
        let seen = mirror.requests();
        (seen.len() >= 20).then_some(seen)
    })
    .await;
    assert_eq!(seen.len(), 20, "{seen:?}");
    // Mirrors are sent concurrently with the primary: any order.
    let mut paths: Vec<String> = seen.iter().map(|s| s.path.clone()).collect();
    paths.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("/{i}")).collect();
    expected.sort();
    assert_eq!(
        paths, expected,
        "every request mirrored once, rewritten like the primary"
    );
    for s in &seen {
        assert_eq!(
            s.host,
            format!("{SHOP}-shadow"),
            "Envoy marks mirrored requests in Host"
        );
        assert_eq!(s.header("x-request-tag"), Some("mirrored"));
        assert_eq!(s.method, "GET");
    }

    for _ in 0..300 {
        let r = Req::get("/search/q").send_with(&stage, &client).await;
        echoed(&r, 200, "quote-1", "/q", SHOP);
    }
    // Mirrors are fire-and-forget: wait until no more arrive.
    let mut last = usize::MAX;
    let sampled_count = eventually("the sampled shadow to settle", PATIENCE, || {
        let now = sampled.requests().len();
        let settled = now == last;
        last = now;
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            settled.then_some(now)
        }
    })
    .await;
    eprintln!("a 30 % shadow saw {sampled_count} of 300 requests");
    assert!(
        (60..=120).contains(&sampled_count),
        "30 % of 300 ± 10 %: {sampled_count}"
    );
    assert!(
        mirror.requests().iter().all(|s| s.path != "/q"),
        "each shadow mirrors its own route only"
    );
}
