//! RateLimitService (global, gRPC) and localRateLimit (inside Envoy).

use legate_tests::TestHost;
use legate_tests::peers::expose;
use legate_tests::peers::ratelimit::{OVER, RateLimitServer};
use legate_tests::stage::Stage;
use serde_json::{Value, json};

use super::{legate, plain_route, put, send, until};

const RLS_PORT: u16 = 8081;
const HOST: &str = "shop.example.com";

async fn rate_limit_service(stage: &Stage, more: Value) {
    let mut spec = json!({ "service": "ratelimit:8081", "domain": "edge-test" });
    if let (Some(spec), Some(more)) = (spec.as_object_mut(), more.as_object()) {
        for (k, v) in more {
            spec.insert(k.clone(), v.clone());
        }
    }
    put(stage, legate("RateLimitService", "ratelimit", spec)).await;
}

/// A stage with the test's rate limit service behind Service `ratelimit`.
pub(super) async fn limited_stage() -> (Stage, TestHost, RateLimitServer) {
    let stage = Stage::new().await;
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let server = RateLimitServer::serve(host.bind(RLS_PORT).unwrap_or_else(|e| panic!("{e}")));
    expose(&stage.env, "ratelimit", &host.addr().to_string(), RLS_PORT).await;
    rate_limit_service(&stage, json!({})).await;
    stage
        .condition("RateLimitService", "ratelimit", "Programmed", "True")
        .await;
    (stage, host, server)
}

fn generic(key: &str, value: &str) -> Value {
    json!({ "entries": [{ "genericKey": { "key": key, "value": value } }] })
}

#[tokio::test]
async fn generic_key_descriptors_reach_the_service_and_over_limit_answers_429() {
    let (stage, _host, rls) = limited_stage().await;
    stage
        .mapping(
            "catalog",
            json!({ "prefix": "/catalog/", "service": "quote", "rateLimits": [generic("route", "catalog")] }),
        )
        .await;
    stage
        .mapping(
            "checkout",
            json!({ "prefix": "/checkout/", "service": "quote", "rateLimits": [generic("route", OVER)] }),
        )
        .await;
    let ok = until(&stage, "GET", "/catalog/items", HOST, &[], 200).await;
    assert_eq!(ok.echo().path, "/items");
    let call = rls
        .call_with("route", "catalog")
        .expect("the rate limit service was asked");
    assert_eq!(call.domain, "edge-test");
    assert_eq!(
        call.descriptors,
        vec![vec![("route".to_string(), "catalog".to_string())]],
        "exactly the Mapping's descriptor"
    );

    let limited = until(&stage, "GET", "/checkout/pay", HOST, &[], 429).await;
    assert_eq!(
        limited.header("x-test-ratelimit"),
        Some(OVER),
        "the service's headers reach the client"
    );
    assert_eq!(limited.header("retry-after"), Some("17"));
    assert_eq!(
        limited.header("x-echo-backend"),
        None,
        "a limited request never reaches the upstream"
    );
    assert!(rls.call_with("route", OVER).is_some());
    stage
        .condition("RateLimitService", "ratelimit", "Programmed", "True")
        .await;
}

#[tokio::test]
async fn header_address_and_cluster_entries_become_descriptors() {
    let (stage, _host, rls) = limited_stage().await;
    stage
        .mapping(
            "orders",
            json!({ "prefix": "/orders/", "service": "quote", "rateLimits": [
                { "entries": [
                    { "genericKey": { "key": "route", "value": "orders" } },
                    { "requestHeader": { "header": "x-user", "key": "user" } },
                ] },
                { "entries": [{ "remoteAddress": {} }] },
                { "entries": [{ "destinationCluster": {} }] },
                { "entries": [{ "requestHeader": { "header": "x-plan", "key": "plan", "omitIfNotPresent": true } }] },
            ] }),
        )
        .await;
    let first = until(&stage, "GET", "/orders/1", HOST, &[("x-user", "alice")], 200).await;
    assert_eq!(first.status, 200);
    // The client's address is the peer of the connection (the test client, on
    // 127.0.0.1), not x-forwarded-for: Envoy writes its own host address there
    // for a loopback peer.
    let client = "127.0.0.1".to_string();
    let call = rls
        .call_with("user", "alice")
        .expect("the rate limit service was asked");
    assert!(
        call.descriptors.contains(&vec![
            ("route".to_string(), "orders".to_string()),
            ("user".to_string(), "alice".to_string()),
        ]),
        "generic key and request header in one descriptor: {call:?}"
    );
    assert!(
        call.descriptors
            .contains(&vec![("remote_address".to_string(), client.clone())]),
        "the client's address: {call:?}"
    );
    let cluster = call
        .descriptors
        .iter()
        .flatten()
        .find(|(k, _)| k == "destination_cluster")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("a destination_cluster entry: {call:?}"));
    assert!(
        cluster.contains("quote"),
        "the cluster of Service quote: {cluster}"
    );
    assert!(
        !call.has_key("plan"),
        "an absent header with omitIfNotPresent sends nothing: {call:?}"
    );
    assert_eq!(call.descriptors.len(), 3, "{call:?}");

    let r = send(&stage, "GET", "/orders/2", HOST, &[("x-user", OVER)], "").await;
    assert_eq!(r.status, 429, "a header value can put the request over the limit");
    let r = send(
        &stage,
        "GET",
        "/orders/3",
        HOST,
        &[("x-user", "bob"), ("x-plan", "gold")],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let call = rls.call_with("user", "bob").expect("asked");
    assert!(
        call.descriptors
            .contains(&vec![("plan".to_string(), "gold".to_string())]),
        "{call:?}"
    );
}

#[tokio::test]
async fn a_rate_limit_service_that_is_down_lets_requests_through_unless_failure_mode_deny() {
    let stage = Stage::new().await;
    // The Service's endpoint listens to nothing.
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    expose(&stage.env, "ratelimit", &host.addr().to_string(), RLS_PORT).await;
    rate_limit_service(&stage, json!({})).await;
    plain_route(&stage).await;
    stage
        .mapping(
            "catalog",
            json!({ "prefix": "/catalog/", "service": "quote", "rateLimits": [generic("route", "catalog")] }),
        )
        .await;
    stage
        .condition("RateLimitService", "ratelimit", "Programmed", "True")
        .await;
    let through = until(&stage, "GET", "/catalog/x", HOST, &[], 200).await;
    assert_eq!(
        through.echo().path,
        "/x",
        "a service that is down lets requests through"
    );

    rate_limit_service(&stage, json!({ "failureModeDeny": true })).await;
    let denied = until(&stage, "GET", "/catalog/x", HOST, &[], 500).await;
    assert_eq!(denied.header("x-echo-backend"), None);
    let plain = send(&stage, "GET", "/plain/x", HOST, &[], "").await;
    assert_eq!(plain.status, 200, "a route without rateLimits is unaffected");
}

#[tokio::test]
async fn a_rate_limit_service_whose_service_is_missing_says_so_and_routes_keep_working() {
    let stage = Stage::new().await;
    put(
        &stage,
        legate(
            "RateLimitService",
            "ratelimit",
            json!({ "service": "nowhere:8081" }),
        ),
    )
    .await;
    plain_route(&stage).await;
    stage
        .mapping(
            "catalog",
            json!({ "prefix": "/catalog/", "service": "quote", "rateLimits": [generic("route", "catalog")] }),
        )
        .await;
    let c = super::reason(
        &stage,
        "RateLimitService",
        "ratelimit",
        "ResolvedRefs",
        "BackendNotFound",
    )
    .await;
    assert_eq!(c["status"], "False");
    assert!(
        c["message"].as_str().unwrap_or_default().contains("nowhere"),
        "{c}"
    );
    assert_eq!(
        until(&stage, "GET", "/catalog/x", HOST, &[], 200)
            .await
            .echo()
            .path,
        "/x"
    );
    assert_eq!(send(&stage, "GET", "/plain/x", HOST, &[], "").await.status, 200);
}

#[tokio::test]
async fn a_local_rate_limit_answers_429_beyond_its_bucket() {
    let stage = Stage::new().await;
    plain_route(&stage).await;
    until(&stage, "GET", "/plain/warm", HOST, &[], 200).await;
    stage
        .mapping(
            "scarce",
            json!({ "prefix": "/scarce/", "service": "quote", "localRateLimit": { "requests": 3, "per": "1h" } }),
        )
        .await;
    stage.condition("Mapping", "scarce", "Programmed", "True").await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(
            send(&stage, "GET", &format!("/scarce/{i}"), HOST, &[], "")
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        vec![200, 200, 200, 429, 429, 429],
        "a bucket of 3 per hour"
    );
    for i in 0..5 {
        let plain = send(&stage, "GET", &format!("/plain/{i}"), HOST, &[], "").await;
        assert_eq!(plain.status, 200, "other routes have no limit");
    }
}
