//! CORS: a Gateway default and a Mapping's own policy. Envoy answers
//! preflights itself and adds `access-control-allow-origin` only for allowed
//! origins.

use legate_tests::stage::Stage;
use serde_json::json;

use super::{Req, SHOP, apply_programmed, echoed, from_envoy, gateway_defaults};

const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.net";

fn preflight(path: &str, origin: &str) -> Req {
    Req::get(path)
        .method("OPTIONS")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
}

#[tokio::test]
async fn the_gateway_default_applies_and_a_mapping_policy_overrides_it() {
    let stage = Stage::new().await;
    gateway_defaults(
        &stage,
        json!({ "cors": {
            "origins": [APP],
            "methods": ["GET", "POST"],
            "headers": ["content-type"],
            "exposedHeaders": ["x-request-id"],
            "maxAge": "10m",
            "credentials": true,
        } }),
    )
    .await;
    apply_programmed(
        &stage,
        &[
            ("default", json!({ "prefix": "/default/", "service": "quote" })),
            (
                "open",
                json!({ "prefix": "/open/", "service": "quote", "cors": { "origins": ["*"], "methods": ["GET"] } }),
            ),
        ],
    )
    .await;

    // A preflight from an allowed origin: Envoy answers it, no upstream sees it.
    let r = preflight("/default/items", APP)
        .until(&stage, |r| r.header("access-control-allow-origin").is_some())
        .await;
    from_envoy(&r, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(r.header("access-control-allow-headers"), Some("content-type"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));

    // A preflight from another origin is not a CORS answer: no allow-origin.
    let r = preflight("/default/items", EVIL).send(&stage).await;
    assert_eq!(r.header("access-control-allow-origin"), None, "{:?}", r.headers);

    // Actual requests: the allowed origin gets the headers, another does not.
    let r = Req::get("/default/items")
        .header("origin", APP)
        .send(&stage)
        .await;
    let echo = echoed(&r, 200, "quote-1", "/items", SHOP);
    assert_eq!(echo.header("origin"), Some(APP));
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-expose-headers"), Some("x-request-id"));
    let r = Req::get("/default/items")
        .header("origin", EVIL)
        .send(&stage)
        .await;
    echoed(&r, 200, "quote-1", "/items", SHOP);
    assert_eq!(r.header("access-control-allow-origin"), None);

    // The Mapping's own policy replaces the default: `*` allows any origin.
    for origin in [EVIL, "http://localhost:3000"] {
        let r = Req::get("/open/items")
            .method("OPTIONS")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send(&stage)
            .await;
        from_envoy(&r, 200);
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        assert_eq!(r.header("access-control-allow-methods"), Some("GET"));
        assert_eq!(
            r.header("access-control-allow-credentials"),
            None,
            "nothing of the default leaks into the override"
        );
        let r = Req::get("/open/items")
            .header("origin", origin)
            .send(&stage)
            .await;
        echoed(&r, 200, "quote-1", "/items", SHOP);
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    }
}
