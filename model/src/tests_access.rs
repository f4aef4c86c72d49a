//! Access control in the model: client address lists and token checks.

use legate_crds::conditions::reasons;
use legate_xds::ir;
use serde_json::json;

use super::tests::{gateway, mapping, service};
use super::*;

fn jwt(service: &str) -> serde_json::Value {
    json!({ "issuer": "https://id.example.com", "audiences": ["api"],
            "jwks": { "service": { "name": service, "port": 80 } },
            "claimToHeaders": [{ "claim": "sub", "header": "X-User" }] })
}

fn route_of<'a>(model: &'a Model, mapping: &str) -> &'a ir::Route {
    model.gateways["infra/edge"]
        .routes
        .values()
        .find(|r| r.origin.key() == mapping)
        .unwrap_or_else(|| panic!("a route of {mapping}"))
}

#[test]
fn address_lists_reach_the_listener_and_the_route_and_a_bad_entry_is_invalid() {
    let world = World {
        gateways: vec![gateway(
            "infra",
            "edge",
            json!({ "http": { "ipAllow": ["10.0.0.0/8"], "ipDeny": ["10.9.0.0/16"] } }),
        )],
        mappings: vec![
            mapping(
                "shop",
                "narrow",
                "01",
                json!({ "prefix": "/a/", "service": "quote", "ipAllow": ["10.1.2.3"] }),
            ),
            mapping(
                "shop",
                "typo",
                "02",
                json!({ "prefix": "/b/", "service": "quote", "ipDeny": ["10.1.2.300"] }),
            ),
        ],
        ..World::default()
    };
    let model = build(&world);
    let listener = &model.gateways["infra/edge"].listeners["http"];
    let access = listener.http.ip_access.clone().expect("the Gateway's lists");
    assert_eq!(access.allow.map(|a| a.len()), Some(1));
    assert_eq!(access.deny[0].prefix_len, 16);
    let narrow = route_of(&model, "Mapping/shop/narrow").policy.ip_access.clone();
    let narrow = narrow.expect("the Mapping's lists");
    assert_eq!(narrow.allow.expect("an allow list")[0].prefix_len, 32);
    let problem = model
        .verdicts
        .get("Mapping/shop/typo")
        .expect("a verdict")
        .accepted
        .clone();
    let problem = problem.expect_err("an entry that is no address");
    assert_eq!(problem.reason, reasons::INVALID);
    assert!(problem.message.contains("spec.ipDeny[0]"), "{}", problem.message);
}

#[test]
fn each_namespace_gets_its_own_provider_and_a_missing_key_set_service_fails_closed() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![
            mapping(
                "shop",
                "a",
                "01",
                json!({ "prefix": "/a/", "service": "quote", "jwt": jwt("keys") }),
            ),
            mapping(
                "shop",
                "b",
                "02",
                json!({ "prefix": "/b/", "service": "quote", "jwt": jwt("keys") }),
            ),
            mapping(
                "rogue",
                "c",
                "03",
                json!({ "prefix": "/c/", "service": "quote", "jwt": jwt("keys") }),
            ),
            mapping(
                "rogue",
                "d",
                "04",
                json!({ "prefix": "/d/", "service": "quote", "jwt": jwt("gone") }),
            ),
        ],
        services: ["shop", "rogue"]
            .iter()
            .flat_map(|ns| [service(ns, "keys"), service(ns, "quote")])
            .collect(),
        ..World::default()
    };
    let model = build(&world);
    let provider = |m: &str| route_of(&model, m).policy.jwt.clone().expect("a token check");
    let (a, b, c, d) = (
        provider("Mapping/shop/a"),
        provider("Mapping/shop/b"),
        provider("Mapping/rogue/c"),
        provider("Mapping/rogue/d"),
    );
    assert_eq!(a, b, "one namespace's equal settings share a provider");
    assert!(a.provider.starts_with("shop/jwt-"), "{}", a.provider);
    assert!(c.provider.starts_with("rogue/jwt-"), "{}", c.provider);
    assert_eq!(a.jwks_upstream, "shop/keys:80");
    assert_eq!(
        c.jwks_upstream, "rogue/keys:80",
        "a key set Service is the Mapping's namespace's"
    );
    assert_eq!(a.claim_to_headers, [("sub".to_string(), "x-user".to_string())]);
    assert_eq!(a.jwks_uri, "http://keys.shop.svc:80/.well-known/jwks.json");
    // Still checked, against a key set that cannot be fetched.
    assert_ne!(d.provider, c.provider);
    let upstream = &model.gateways["infra/edge"].endpoints[&d.jwks_upstream];
    assert!(upstream.is_empty());
    let problem = model
        .verdicts
        .get("Mapping/rogue/d")
        .expect("a verdict")
        .resolved_refs
        .clone();
    let problem = problem.expect_err("the key set Service is missing");
    assert_eq!(problem.reason, reasons::BACKEND_NOT_FOUND);
    assert!(problem.message.contains("get 401"), "{}", problem.message);
}
