//! Access control: client address lists of the Gateway (`http.ipAllow`,
//! `http.ipDeny`) and of Mappings, judged on the client Envoy settled on
//! (here the X-Forwarded-For entry of one trusted hop); and a Mapping's
//! `jwt`, with tokens signed by keys the tests generate, served as key sets
//! by the tests' JWKS peer.

use legate_tests::api::apply;
use legate_tests::http::Response;
use legate_tests::net::eventually;
use legate_tests::peers::expose;
use legate_tests::peers::jwks::{JwksServer, SigningKey, now};
use legate_tests::stage::{PATIENCE, Stage};
use legate_tests::{TestEnv, TestHost};
use serde_json::{Value, json};

use super::{gateway, send, try_send};

const HOST: &str = "shop.example.com";

/// A request from `client`, as the trusted load balancer in front says.
async fn from(stage: &Stage, client: &str, path: &str) -> Response {
    send(stage, "GET", path, HOST, &[("x-forwarded-for", client)], "").await
}

/// The Gateway's listener trusting one hop, with the Gateway's lists, and
/// admitting `admitted` namespaces.
async fn gateway_with_lists(stage: &Stage, http: Value, admitted: Value) {
    gateway(
        stage,
        &[],
        json!({
            "listeners": [{ "name": "http", "port": stage.port, "protocol": "HTTP", "trustedHops": 1 }],
            "http": http,
            "allowedRoutes": { "namespaces": admitted },
        }),
    )
    .await;
}

/// Waits until every `(client, path, status)` answers as listed at once:
/// the Gateway's lists and the routes' reach Envoy in separate updates.
async fn until_all(stage: &Stage, expected: &[(&str, &str, u16)]) {
    let what = format!("the answers {expected:?}");
    eventually(&what, PATIENCE, || async {
        for (client, path, status) in expected {
            let r = try_send(stage, "GET", path, HOST, &[("x-forwarded-for", client)], "")
                .await
                .ok()?;
            if r.status != *status {
                return None;
            }
        }
        Some(())
    })
    .await;
}

#[tokio::test]
async fn a_request_passes_only_when_the_gateways_lists_and_its_mappings_agree() {
    let stage = Stage::new().await;
    gateway_with_lists(
        &stage,
        json!({ "ipAllow": ["198.51.100.0/24"], "ipDeny": ["198.51.100.66"] }),
        json!({ "from": "Same" }),
    )
    .await;
    stage
        .mapping(
            "open",
            json!({ "hostname": HOST, "prefix": "/open/", "service": "quote" }),
        )
        .await;
    stage
        .mapping(
            "narrow",
            json!({ "hostname": HOST, "prefix": "/narrow/", "service": "quote",
                    "ipAllow": ["198.51.100.8/29"], "ipDeny": ["198.51.100.9"] }),
        )
        .await;
    until_all(
        &stage,
        &[
            ("198.51.100.20", "/open/", 200),
            ("198.51.100.66", "/open/", 403),
            ("198.51.100.20", "/narrow/", 403),
            ("198.51.100.10", "/narrow/", 200),
        ],
    )
    .await;

    let allowed = from(&stage, "198.51.100.10", "/narrow/cart").await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    let echo = allowed.echo();
    assert_eq!(
        echo.header("x-envoy-external-address"),
        Some("198.51.100.10"),
        "the upstream sees the client the lists judged: {echo:?}"
    );
    assert_eq!(echo.path, "/cart");
    // Refused by the Mapping's deny, though inside its allow.
    let denied = from(&stage, "198.51.100.9", "/narrow/cart").await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    // Outside the Gateway's allow: refused on every route.
    for path in ["/open/cart", "/narrow/cart"] {
        let outside = from(&stage, "203.0.113.7", path).await;
        assert_eq!(outside.status, 403, "{path}: {}", outside.text());
    }
    // The Mapping cannot let in what the Gateway denies, nor what it does not allow.
    let gateway_denied = from(&stage, "198.51.100.66", "/open/cart").await;
    assert_eq!(gateway_denied.status, 403);
    // Without a forwarded address the client is the peer (127.0.0.1): not allowed.
    let peer = send(&stage, "GET", "/open/cart", HOST, &[], "").await;
    assert_eq!(peer.status, 403, "{}", peer.text());
}

#[tokio::test]
async fn a_mapping_of_another_namespace_cannot_widen_the_gateways_lists() {
    let stage = Stage::new().await;
    let tenant = TestEnv::new().await;
    // Valued after the stage's namespace, so that no other test's namespace is admitted.
    let label = "legate-test-ip-lists";
    for namespace in [&stage.env.namespace, &tenant.namespace] {
        stage.label_namespace(namespace, label);
    }
    gateway_with_lists(
        &stage,
        json!({ "ipDeny": ["198.51.100.66", "203.0.113.0/24"] }),
        stage.admits_labelled(label),
    )
    .await;
    stage
        .mapping(
            "shop",
            json!({ "hostname": HOST, "prefix": "/", "service": "quote" }),
        )
        .await;
    Stage::service(&tenant, "quote", &stage.host.addr().to_string()).await;
    let wide = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping", "metadata": { "name": "wide" },
        "spec": { "hostname": "*", "prefix": "/tenant/", "service": "quote",
                  "ipAllow": ["0.0.0.0/0", "203.0.113.7"] },
    });
    apply(&tenant.client, &tenant.namespace, &wide)
        .await
        .expect("the tenant's Mapping applies");
    let other = "tenant.example.com";
    let what = "the tenant's route to answer a client the Gateway does not deny";
    let routed = eventually(what, PATIENCE, || async {
        let r = try_send(
            &stage,
            "GET",
            "/tenant/x",
            other,
            &[("x-forwarded-for", "198.51.100.20")],
            "",
        )
        .await
        .ok()?;
        (r.status == 200).then_some(r)
    })
    .await;
    assert_eq!(routed.echo().path, "/x");

    for client in ["198.51.100.66", "203.0.113.7"] {
        let r = send(
            &stage,
            "GET",
            "/tenant/x",
            other,
            &[("x-forwarded-for", client)],
            "",
        )
        .await;
        assert_eq!(r.status, 403, "{client} through the tenant's route: {}", r.text());
        let shop = from(&stage, client, "/").await;
        assert_eq!(shop.status, 403, "{client} through the shop's route");
    }
    let shop = from(&stage, "198.51.100.20", "/").await;
    assert_eq!(shop.status, 200, "the shop's route is untouched");
}

const ISSUER: &str = "https://issuer.legate.test";
const KEYS_PORT: u16 = 8090;
const KEYS_PATH: &str = "/keys.json";

/// A key set server for `key` on a new test host, behind the Service
/// `keys` of `env`'s namespace.
async fn publish(env: &TestEnv, key: &SigningKey) -> (TestHost, JwksServer) {
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let listener = host.bind(KEYS_PORT).unwrap_or_else(|e| panic!("{e}"));
    let server = JwksServer::serve(listener, KEYS_PATH, &key.jwks());
    expose(env, "keys", &host.addr().to_string(), KEYS_PORT).await;
    (host, server)
}

/// A Mapping spec under `prefix` that requires tokens of [`ISSUER`] for
/// `audience`, checked with the key set of the Service `service`.
fn jwt_mapping(prefix: &str, audience: &str, service: &str) -> Value {
    json!({ "hostname": "*", "prefix": prefix, "service": "quote",
            "jwt": { "issuer": ISSUER, "audiences": [audience],
                     "jwks": { "service": { "name": service, "port": KEYS_PORT }, "path": KEYS_PATH },
                     "claimToHeaders": [{ "claim": "sub", "header": "x-user" }] } })
}

/// Claims of `sub` for `aud`, valid for ten minutes.
fn claims(sub: &str, aud: &str) -> Value {
    json!({ "iss": ISSUER, "sub": sub, "aud": aud, "iat": now(), "exp": now() + 600 })
}

/// GET `path` (any host) with `token` as a bearer token, if any.
async fn with_token(stage: &Stage, path: &str, token: Option<&str>, more: &[(&str, &str)]) -> Response {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = more.to_vec();
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    send(stage, "GET", path, "api.example.com", &headers, "").await
}

/// Waits until `path` with `token` answers 200: the route, the filter's
/// provider and the key set's cluster have reached Envoy.
async fn until_token_passes(stage: &Stage, path: &str, token: &str) -> Response {
    let bearer = format!("Bearer {token}");
    eventually(&format!("a valid token to pass on {path}"), PATIENCE, || async {
        let headers = [("authorization", bearer.as_str())];
        let r = try_send(stage, "GET", path, "api.example.com", &headers, "")
            .await
            .ok()?;
        (r.status == 200).then_some(r)
    })
    .await
}

#[tokio::test]
async fn a_mapping_with_jwt_lets_only_valid_tokens_through_and_hands_their_claims_upstream() {
    let stage = Stage::new().await;
    let key = SigningKey::generate("test-key-1");
    let (_keys_host, keys) = publish(&stage.env, &key).await;
    stage
        .mapping("secure", jwt_mapping("/secure/", "shop", "keys"))
        .await;
    stage
        .mapping(
            "open",
            json!({ "hostname": "*", "prefix": "/open/", "service": "quote" }),
        )
        .await;

    let valid = key.sign(&claims("alice", "shop"));
    let passed = until_token_passes(&stage, "/secure/orders", &valid).await;
    let echo = passed.echo();
    assert_eq!(echo.path, "/orders");
    assert_eq!(
        echo.header("x-user"),
        Some("alice"),
        "the sub claim reaches the upstream: {echo:?}"
    );
    assert_eq!(
        echo.header("authorization"),
        None,
        "the token is not forwarded: {echo:?}"
    );
    assert!(
        keys.fetched.all().iter().any(|p| p == KEYS_PATH),
        "Envoy fetched the key set from the Service"
    );
    // A client's own x-user does not survive: the claim replaces it.
    let spoofed = with_token(&stage, "/secure/orders", Some(&valid), &[("x-user", "mallory")]).await;
    assert_eq!(spoofed.status, 200);
    assert_eq!(spoofed.echo().header("x-user"), Some("alice"));

    let missing = with_token(&stage, "/secure/orders", None, &[]).await;
    assert_eq!(missing.status, 401, "{}", missing.text());
    assert_eq!(missing.text(), "Jwt is missing");
    let other_key = SigningKey::generate("test-key-1");
    let forged = other_key.sign(&claims("alice", "shop"));
    let bad = with_token(&stage, "/secure/orders", Some(&forged), &[]).await;
    assert_eq!(bad.status, 401, "{}", bad.text());
    assert_eq!(bad.text(), "Jwt verification fails");
    let mut old = claims("alice", "shop");
    old["iat"] = json!(now() - 7200);
    old["exp"] = json!(now() - 3600);
    let expired = with_token(&stage, "/secure/orders", Some(&key.sign(&old)), &[]).await;
    assert_eq!(expired.status, 401, "{}", expired.text());
    assert_eq!(expired.text(), "Jwt is expired");
    let mut stranger = claims("alice", "shop");
    stranger["iss"] = json!("https://elsewhere.legate.test");
    let foreign = with_token(&stage, "/secure/orders", Some(&key.sign(&stranger)), &[]).await;
    assert_eq!(foreign.status, 401, "{}", foreign.text());
    // Authentic, but for another audience: not a token for this API, 401
    // (Envoy's own answer is 403; the Gateway's local reply rewrites it).
    let elsewhere = key.sign(&claims("alice", "billing"));
    let audience = with_token(&stage, "/secure/orders", Some(&elsewhere), &[]).await;
    assert_eq!(audience.status, 401, "{}", audience.text());
    assert_eq!(audience.text(), "Audiences in Jwt are not allowed");
    assert!(
        audience
            .header("www-authenticate")
            .is_some_and(|h| h.contains("invalid_token")),
        "a challenge: {audience:?}"
    );
    // Routes without jwt need no token.
    let open = with_token(&stage, "/open/x", None, &[]).await;
    assert_eq!(open.status, 200);

    // The Gateway's error body for 401 applies to the filter's answers.
    gateway(
        &stage,
        &[],
        json!({ "http": { "errorResponses": [{ "status": 401, "body": "sign in first" }] } }),
    )
    .await;
    let what = "the Gateway's 401 body on a request without a token";
    let mapped = eventually(what, PATIENCE, || async {
        let r = try_send(&stage, "GET", "/secure/orders", "api.example.com", &[], "")
            .await
            .ok()?;
        (r.text() == "sign in first").then_some(r)
    })
    .await;
    assert_eq!(mapped.status, 401);
    assert!(
        mapped
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")),
        "the challenge stays: {mapped:?}"
    );
    let audience = with_token(&stage, "/secure/orders", Some(&elsewhere), &[]).await;
    assert_eq!(audience.status, 401, "{}", audience.text());
    assert_eq!(
        audience.text(),
        "sign in first",
        "another audience gets the Gateway's 401 body too"
    );
    let still = with_token(&stage, "/secure/orders", Some(&valid), &[]).await;
    assert_eq!(still.status, 200);
}

#[tokio::test]
async fn another_namespaces_mapping_with_the_same_issuer_shares_nothing_and_a_missing_key_set_fails_closed() {
    let stage = Stage::new().await;
    let tenant = TestEnv::new().await;
    let label = "legate-test-jwt-tenants";
    for namespace in [&stage.env.namespace, &tenant.namespace] {
        stage.label_namespace(namespace, label);
    }
    gateway(
        &stage,
        &[],
        json!({ "allowedRoutes": { "namespaces": stage.admits_labelled(label) } }),
    )
    .await;
    let shop_key = SigningKey::generate("shared-kid");
    let tenant_key = SigningKey::generate("shared-kid");
    let (_shop_host, _shop_keys) = publish(&stage.env, &shop_key).await;
    let (_tenant_host, _tenant_keys) = publish(&tenant, &tenant_key).await;
    Stage::service(&tenant, "quote", &stage.host.addr().to_string()).await;

    stage.mapping("shop", jwt_mapping("/shop/", "api", "keys")).await;
    for (name, spec) in [
        ("tenant", jwt_mapping("/tenant/", "api", "keys")),
        ("broken", jwt_mapping("/broken/", "api", "no-such-keys")),
    ] {
        let mapping = json!({ "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping",
                              "metadata": { "name": name }, "spec": spec });
        apply(&tenant.client, &tenant.namespace, &mapping)
            .await
            .unwrap_or_else(|e| panic!("Mapping {name} was refused: {e}"));
    }
    let shop_token = shop_key.sign(&claims("alice", "api"));
    let tenant_token = tenant_key.sign(&claims("bob", "api"));
    until_token_passes(&stage, "/shop/a", &shop_token).await;
    let tenant_ok = until_token_passes(&stage, "/tenant/a", &tenant_token).await;
    assert_eq!(tenant_ok.echo().header("x-user"), Some("bob"));

    // Same issuer, audience and key id, yet each route trusts its own namespace's keys.
    let crossed = with_token(&stage, "/tenant/a", Some(&shop_token), &[]).await;
    assert_eq!(
        crossed.status,
        401,
        "the shop's token on the tenant's route: {}",
        crossed.text()
    );
    let crossed = with_token(&stage, "/shop/a", Some(&tenant_token), &[]).await;
    assert_eq!(
        crossed.status,
        401,
        "the tenant's token on the shop's route: {}",
        crossed.text()
    );
    let shop_ok = with_token(&stage, "/shop/a", Some(&shop_token), &[]).await;
    assert_eq!(shop_ok.echo().header("x-user"), Some("alice"));

    // A key set Service that does not exist: the Mapping says so, and its route refuses.
    let refs = stage
        .condition_reason_in(
            &tenant.namespace,
            "Mapping",
            "broken",
            "ResolvedRefs",
            "BackendNotFound",
        )
        .await;
    let message = refs["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no-such-keys") && message.contains("401"),
        "{refs}"
    );
    for token in [&tenant_token, &shop_token] {
        let refused = with_token(&stage, "/broken/a", Some(token), &[]).await;
        assert_eq!(refused.status, 401, "{}", refused.text());
    }
    let shop_ok = with_token(&stage, "/shop/b", Some(&shop_token), &[]).await;
    assert_eq!(shop_ok.status, 200, "the shop's route is untouched");
}
