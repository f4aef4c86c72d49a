//! An AuthService or RateLimitService of a namespace other than the
//! Gateway's governs that namespace's Mappings only: a second namespace that
//! denies and limits everything stops its own routes, and the first
//! namespace's requests never reach its services.

use legate_tests::TestEnv;
use legate_tests::TestHost;
use legate_tests::api::apply;
use legate_tests::http::{HttpClient, Response};
use legate_tests::net::eventually;
use legate_tests::peers::auth::{AuthServer, DENIED_BODY};
use legate_tests::peers::expose;
use legate_tests::peers::ratelimit::{OVER, RateLimitServer};
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::{Value, json};

use super::{assert_shop_answers, shop_and_rogue};

const ROGUE_HOST: &str = "rogue.example.com";
const AUTH_PORT: u16 = 3000;
const RLS_PORT: u16 = 8081;

/// A descriptor any of the test's rate limit services refuses, named `key`.
fn over_limit(key: &str) -> Value {
    json!([{ "entries": [{ "genericKey": { "key": key, "value": OVER } }] }])
}

async fn put(env: &TestEnv, object: Value) {
    let what = format!("{} {}", object["kind"], object["metadata"]["name"]);
    apply(&env.client, &env.namespace, &object)
        .await
        .unwrap_or_else(|e| panic!("{what} was refused: {e}"));
}

fn legate(kind: &str, name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "legate.dev/v1alpha1", "kind": kind, "metadata": { "name": name }, "spec": spec })
}

/// Waits until `path` on the rogue host answers `status`.
async fn rogue_answers(stage: &Stage, path: &str, status: u16) -> Response {
    let url = stage.url(path);
    eventually(
        &format!("GET {url} (Host {ROGUE_HOST}) to answer {status}"),
        PATIENCE,
        || async {
            let r = HttpClient::http1().get(&url, Some(ROGUE_HOST)).await.ok()?;
            (r.status == status).then_some(r)
        },
    )
    .await
}

#[tokio::test]
async fn a_second_namespaces_auth_and_rate_limit_services_govern_its_own_mappings_only() {
    let (stage, rogue) = shop_and_rogue("legate-test-tenancy-services-scope").await;
    // A shop route with a descriptor any rate limit service would refuse:
    // only a service that governs the shop's routes may be asked about it.
    stage
        .mapping(
            "limited",
            json!({ "hostname": "shop.example.com", "prefix": "/limited/", "service": "quote",
                    "rateLimits": over_limit("shop") }),
        )
        .await;
    stage.until_status("/limited/", 200).await;

    // The second namespace's services: an HTTP auth service whose every
    // check path starts with `/deny` (so it refuses everything), and a rate
    // limit service that refuses every descriptor valued `over`.
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let auth = AuthServer::http(host.bind(AUTH_PORT).unwrap_or_else(|e| panic!("{e}")));
    let limiter = RateLimitServer::serve(host.bind(RLS_PORT).unwrap_or_else(|e| panic!("{e}")));
    expose(&rogue, "auth", &host.addr().to_string(), AUTH_PORT).await;
    expose(&rogue, "ratelimit", &host.addr().to_string(), RLS_PORT).await;
    Stage::service(&rogue, "quote", &stage.host.addr().to_string()).await;
    put(
        &rogue,
        legate(
            "AuthService",
            "deny-all",
            json!({ "service": "auth:3000", "protocol": "HTTP", "pathPrefix": "/deny" }),
        ),
    )
    .await;
    put(
        &rogue,
        legate(
            "RateLimitService",
            "none-for-you",
            json!({ "service": "ratelimit:8081", "domain": "rogue", "failureModeDeny": true }),
        ),
    )
    .await;
    put(
        &rogue,
        legate(
            "Mapping",
            "own",
            json!({ "hostname": ROGUE_HOST, "prefix": "/", "service": "quote" }),
        ),
    )
    .await;
    put(
        &rogue,
        legate(
            "Mapping",
            "own-limited",
            json!({ "hostname": ROGUE_HOST, "prefix": "/limited/", "service": "quote",
                    "bypassAuth": true, "rateLimits": over_limit("rogue") }),
        ),
    )
    .await;

    // Its status says what it governs, and the Envoy runs it.
    let gateway = format!("{}/edge", stage.env.namespace);
    for (kind, name) in [("AuthService", "deny-all"), ("RateLimitService", "none-for-you")] {
        let accepted = stage
            .condition_reason_in(&rogue.namespace, kind, name, "Accepted", "Accepted")
            .await;
        let message = accepted["message"].as_str().unwrap_or_default();
        let scope = format!(
            "Gateway {gateway} for the Mappings of namespace {} only",
            rogue.namespace
        );
        assert!(
            message.contains(&scope),
            "{kind} says what it governs: {accepted}"
        );
        stage
            .condition_reason_in(&rogue.namespace, kind, name, "Programmed", "Programmed")
            .await;
    }

    // The second namespace's own routes are governed by them.
    let denied = rogue_answers(&stage, "/", 401).await;
    assert_eq!(denied.text(), DENIED_BODY);
    assert_eq!(denied.header("x-echo-backend"), None);
    let limited = rogue_answers(&stage, "/limited/", 429).await;
    assert_eq!(limited.header("x-test-ratelimit"), Some(OVER));

    // The first namespace's are not: every request answered by its backend.
    assert_shop_answers(&stage, "/").await;
    assert_shop_answers(&stage, "/limited/").await;
    let seen = auth.checks.all();
    assert!(
        seen.iter().all(|c| !c.path.contains("i=")),
        "the second namespace's auth service saw none of the first's requests: {seen:?}"
    );
    assert!(!seen.is_empty(), "it did see its own");
    let calls = limiter.calls.all();
    assert!(
        calls.iter().all(|c| !c.has_key("shop")),
        "the second namespace's rate limit service saw none of the first's requests: {calls:?}"
    );
    assert!(calls.iter().any(|c| c.has_key("rogue")), "it did see its own");
}
