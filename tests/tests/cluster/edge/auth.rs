//! AuthService: Envoy ext_authz against a real auth service, over HTTP and gRPC.

use std::collections::BTreeMap;

use legate_tests::TestHost;
use legate_tests::peers::auth::{AuthServer, DENIED_BODY, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use legate_tests::peers::expose;
use legate_tests::stage::Stage;
use serde_json::{Value, json};

use super::{legate, put, send, until};

const AUTH_PORT: u16 = 3000;

/// A stage with an AuthService `auth` of `protocol` (spec fields `more`),
/// served by the test's auth peer, and two routes: `/app/` (checked) and
/// `/open/` (bypassAuth).
async fn auth_stage(protocol: &str, more: Value) -> (Stage, TestHost, AuthServer) {
    let stage = Stage::new().await;
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let listener = host.bind(AUTH_PORT).unwrap_or_else(|e| panic!("{e}"));
    let server = if protocol == "GRPC" {
        AuthServer::grpc(listener)
    } else {
        AuthServer::http(listener)
    };
    expose(&stage.env, "auth", &host.addr().to_string(), AUTH_PORT).await;
    auth_service(&stage, protocol, "auth:3000", more).await;
    routes(&stage).await;
    // Programmed: every Envoy runs the ext_authz filter, so no request slips through before it.
    stage.condition("AuthService", "auth", "Programmed", "True").await;
    // And the routes: a request for a route not there yet would meet the last 404 route.
    for mapping in ["app", "open"] {
        stage.condition("Mapping", mapping, "Programmed", "True").await;
    }
    (stage, host, server)
}

async fn auth_service(stage: &Stage, protocol: &str, service: &str, more: Value) {
    let mut spec = json!({ "service": service, "protocol": protocol });
    if let (Some(spec), Some(more)) = (spec.as_object_mut(), more.as_object()) {
        for (k, v) in more {
            spec.insert(k.clone(), v.clone());
        }
    }
    put(stage, legate("AuthService", "auth", spec)).await;
}

async fn routes(stage: &Stage) {
    stage
        .mapping("app", json!({ "prefix": "/app/", "service": "quote" }))
        .await;
    stage
        .mapping(
            "open",
            json!({ "prefix": "/open/", "service": "quote", "bypassAuth": true }),
        )
        .await;
}

const HOST: &str = "shop.example.com";

/// The ext_authz filter Envoy runs on the stage's HTTP listener, for failure messages.
async fn ext_authz_config(stage: &Stage) -> String {
    let dump = super::config_dump(stage).await;
    let listener = super::listener_on(&dump, stage.port).unwrap_or_default();
    let text = listener.to_string();
    match text.find("ext_authz") {
        Some(i) => text[i.saturating_sub(100)..(i + 1500).min(text.len())].to_string(),
        None => "(no ext_authz filter)".to_string(),
    }
}

/// A denial reaches the client as the auth service wrote it.
fn assert_denied(r: &legate_tests::http::Response) {
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.text(), DENIED_BODY);
    assert_eq!(r.header("www-authenticate"), Some(WWW_AUTHENTICATE));
    assert_eq!(r.header("set-cookie"), Some(SET_COOKIE));
    assert_eq!(r.header("location"), Some(LOCATION));
    assert_eq!(r.header("x-auth-denied"), Some("yes"));
    assert_eq!(
        r.header("x-echo-backend"),
        None,
        "a denied request never reaches the upstream"
    );
}

#[tokio::test]
async fn http_auth_sees_the_request_under_its_prefix_and_decides() {
    let (stage, _host, auth) = auth_stage(
        "HTTP",
        json!({ "pathPrefix": "/extauth", "allowedRequestHeaders": ["x-tenant"] }),
    )
    .await;
    let headers = [
        ("authorization", "Bearer token-1"),
        ("x-tenant", "acme"),
        ("x-not-for-auth", "secret"),
    ];
    let allowed = until(&stage, "GET", "/app/orders?page=2", HOST, &headers, 200).await;
    let echo = allowed.echo();
    assert_eq!(echo.path, "/orders");
    assert_eq!(echo.query, "page=2");
    assert_eq!(echo.header("authorization"), Some("Bearer token-1"));
    let check = auth.check_for("/app/orders").expect("the auth service was asked");
    assert_eq!(check.method, "GET");
    assert_eq!(
        check.path, "/extauth/app/orders?page=2",
        "the path under pathPrefix"
    );
    assert_eq!(check.header("authorization"), Some("Bearer token-1"));
    assert_eq!(
        check.header("x-tenant"),
        Some("acme"),
        "allowedRequestHeaders are sent"
    );
    assert_eq!(check.header("x-not-for-auth"), None, "other headers are not");

    let posted = send(&stage, "POST", "/app/submit", HOST, &headers, "").await;
    assert_eq!(posted.status, 200);
    assert_eq!(posted.echo().method, "POST");
    assert_eq!(auth.check_for("/app/submit").expect("asked").method, "POST");

    let denied = send(&stage, "GET", "/app/deny-me", HOST, &headers, "").await;
    assert_denied(&denied);

    let calls = auth.checks.all().len();
    let open = send(&stage, "GET", "/open/free", HOST, &[], "").await;
    assert_eq!(open.status, 200);
    assert_eq!(open.echo().path, "/free");
    assert_eq!(
        auth.checks.all().len(),
        calls,
        "bypassAuth routes never call the auth service"
    );
    assert_eq!(auth.check_for("/open/"), None);
    stage.condition("AuthService", "auth", "Programmed", "True").await;
}

#[tokio::test]
async fn http_auth_gets_the_usual_headers_and_the_body_and_returns_authorization_headers() {
    let (stage, _host, auth) = auth_stage(
        "HTTP",
        json!({
            "allowedRequestHeaders": ["x-tenant"],
            "allowedAuthorizationHeaders": ["x-user-id"],
            "includeBody": { "maxBytes": 64, "allowPartial": true },
        }),
    )
    .await;
    let headers = [
        ("authorization", "Bearer token-2"),
        ("cookie", "session=abc"),
        ("user-agent", "legate-test/1.0"),
        ("x-tenant", "acme"),
    ];
    until(&stage, "POST", "/app/warmup", HOST, &headers, 200).await;
    let r = send(&stage, "POST", "/app/orders", HOST, &headers, "order=42").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.echo();
    assert_eq!(echo.body, "order=42");
    assert_eq!(
        echo.header("x-user-id"),
        Some("alice"),
        "allowedAuthorizationHeaders reach the upstream"
    );
    assert_eq!(
        echo.header("x-auth-extra"),
        None,
        "other auth response headers do not"
    );
    let check = auth.check_for("/app/orders").expect("the auth service was asked");
    assert_eq!(check.method, "POST");
    assert_eq!(check.body, "order=42", "includeBody sends the body");
    for (name, value) in [
        ("authorization", "Bearer token-2"),
        ("cookie", "session=abc"),
        ("user-agent", "legate-test/1.0"),
        ("x-tenant", "acme"),
        ("x-forwarded-proto", "http"),
    ] {
        assert_eq!(
            check.header(name),
            Some(value),
            "{name} reaches the auth service: {check:?}"
        );
    }

    // Envoy puts the client's address in x-forwarded-for (for a loopback client, the host's own
    // address): the auth service sees the value the upstream sees.
    assert!(echo.header("x-forwarded-for").is_some());
    assert_eq!(check.header("x-forwarded-for"), echo.header("x-forwarded-for"));
}

#[tokio::test]
async fn a_mapping_can_match_a_header_the_auth_service_added() {
    let (stage, _host, _auth) =
        auth_stage("HTTP", json!({ "allowedAuthorizationHeaders": ["x-user-id"] })).await;
    // Routed only once the auth service has said who the user is.
    stage
        .mapping(
            "alice",
            json!({ "prefix": "/who/", "service": "quote", "headers": { "x-user-id": "alice" } }),
        )
        .await;
    stage.condition("Mapping", "alice", "Programmed", "True").await;
    until(&stage, "GET", "/app/warmup", HOST, &[], 200).await;
    let who = send(&stage, "GET", "/who/am-i", HOST, &[], "").await;
    assert_eq!(
        who.status, 200,
        "a Mapping matches the header the auth service added"
    );
    assert_eq!(who.echo().path, "/am-i");
    assert_eq!(who.echo().header("x-user-id"), Some("alice"));
}

#[tokio::test]
async fn grpc_auth_sees_the_request_and_decides() {
    let (stage, _host, auth) = auth_stage("GRPC", json!({})).await;
    let headers = [("authorization", "Bearer token-3"), ("x-tenant", "acme")];
    let allowed = until(&stage, "GET", "/app/orders?page=3", HOST, &headers, 200).await;
    let echo = allowed.echo();
    assert_eq!(echo.path, "/orders");
    assert_eq!(
        echo.header("x-user-id"),
        Some("alice"),
        "the OK response's headers reach the upstream"
    );
    let check = auth.check_for("/app/orders").expect("the auth service was asked");
    assert_eq!(check.protocol, "GRPC");
    assert_eq!(check.method, "GET");
    assert_eq!(check.path, "/app/orders?page=3");
    assert_eq!(check.header("authorization"), Some("Bearer token-3"));
    assert_eq!(check.header(":authority").or(check.header("host")), Some(HOST));

    let denied = send(&stage, "GET", "/app/deny-me", HOST, &headers, "").await;
    assert_denied(&denied);

    let calls = auth.checks.all().len();
    let open = send(&stage, "GET", "/open/free", HOST, &[], "").await;
    assert_eq!(open.status, 200);
    assert_eq!(
        auth.checks.all().len(),
        calls,
        "bypassAuth routes never call the auth service"
    );
}

#[tokio::test]
async fn auth_context_extensions_reach_the_grpc_auth_service() {
    let (stage, _host, auth) = auth_stage("GRPC", json!({})).await;
    stage
        .mapping(
            "payments",
            json!({ "prefix": "/payments/", "service": "quote",
                    "authContextExtensions": { "scope": "payments:write", "team": "billing" } }),
        )
        .await;
    until(&stage, "GET", "/payments/charge", HOST, &[], 200).await;
    let check = auth
        .check_for("/payments/charge")
        .expect("the auth service was asked");
    let expected: BTreeMap<String, String> = [("scope", "payments:write"), ("team", "billing")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(check.context_extensions, expected);
    send(&stage, "GET", "/app/other", HOST, &[], "").await;
    let other = auth.check_for("/app/other").expect("asked");
    assert!(
        other.context_extensions.is_empty(),
        "extensions belong to their Mapping only: {other:?}"
    );
}

#[tokio::test]
async fn an_auth_service_that_is_down_gives_status_on_error_or_lets_through_when_failure_mode_allow() {
    let stage = Stage::new().await;
    // A Service whose endpoint listens to nothing: connections are refused.
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    expose(&stage.env, "auth", &host.addr().to_string(), AUTH_PORT).await;
    auth_service(&stage, "HTTP", "auth:3000", json!({ "statusOnError": 507 })).await;
    routes(&stage).await;
    let failed = until(&stage, "GET", "/app/x", HOST, &[], 507).await;
    assert_eq!(failed.header("x-echo-backend"), None);
    // The /open/ route can reach Envoy a moment after /app/: wait for it.
    let open = until(&stage, "GET", "/open/x", HOST, &[], 200).await;
    assert_eq!(open.status, 200, "routes that bypass auth keep working");
    assert_eq!(open.echo().path, "/x");

    auth_service(&stage, "HTTP", "auth:3000", json!({ "failureModeAllow": true })).await;
    let through = until(&stage, "GET", "/app/y", HOST, &[], 200).await;
    assert_eq!(
        through.echo().path,
        "/y",
        "failureModeAllow lets requests through"
    );
}

#[tokio::test]
async fn an_auth_service_that_times_out_gives_403_by_default() {
    let (stage, _host, auth) = auth_stage("HTTP", json!({ "timeout": "300ms" })).await;
    until(&stage, "GET", "/app/fast", HOST, &[], 200).await;
    let started = std::time::Instant::now();
    let slow = send(&stage, "GET", "/app/slow", HOST, &[], "").await;
    eprintln!(
        "a 300ms auth timeout answered in {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(
        slow.status,
        403,
        "statusOnError defaults to 403: {}\nEnvoy's ext_authz: {}",
        slow.text(),
        ext_authz_config(&stage).await
    );
    assert_eq!(slow.header("x-echo-backend"), None);
    assert!(
        auth.check_for("/app/slow").is_some(),
        "the auth service was asked"
    );
    assert_eq!(send(&stage, "GET", "/open/x", HOST, &[], "").await.status, 200);
}

#[tokio::test]
async fn an_auth_service_whose_service_is_missing_says_so_and_denies() {
    let stage = Stage::new().await;
    auth_service(&stage, "HTTP", "nowhere:3000", json!({})).await;
    routes(&stage).await;
    let c = super::reason(&stage, "AuthService", "auth", "ResolvedRefs", "BackendNotFound").await;
    assert_eq!(c["status"], "False");
    assert!(
        c["message"].as_str().unwrap_or_default().contains("nowhere"),
        "the message names the Service: {c}"
    );
    until(&stage, "GET", "/open/x", HOST, &[], 200).await;
    // Give the configuration time to arrive: the Gateway is Programmed once every
    // Envoy runs its current generation.
    stage.condition("Mapping", "app", "Programmed", "True").await;
    let guarded = super::eventually_status(&stage, "/app/x", HOST, 403).await;
    assert_eq!(
        guarded.status,
        403,
        "with its auth service missing, a guarded route must not be served unchecked: {}\nEnvoy's ext_authz: {}",
        guarded.text(),
        ext_authz_config(&stage).await
    );
}
