//! Headers added to and removed from requests and responses.

use legate_tests::stage::Stage;
use serde_json::json;

use super::{Req, SHOP, apply_programmed, echoed};

#[tokio::test]
async fn added_request_headers_append_or_replace() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "web",
            json!({
                "prefix": "/web/",
                "service": "quote",
                "addRequestHeaders": {
                    "x-gateway": { "value": "legate" },
                    "x-tenant": { "value": "public", "append": false },
                },
            }),
        )],
    )
    .await;

    let r = Req::get("/web/a").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/a", SHOP);
    assert_eq!(echo.header("x-gateway"), Some("legate"));
    assert_eq!(echo.header("x-tenant"), Some("public"));

    let r = Req::get("/web/a")
        .header("x-gateway", "client")
        .header("x-tenant", "private")
        .send(&stage)
        .await;
    let echo = echoed(&r, 200, "quote-1", "/a", SHOP);
    assert_eq!(
        echo.header("x-gateway"),
        Some("client,legate"),
        "append adds a value"
    );
    assert_eq!(
        echo.header("x-tenant"),
        Some("public"),
        "append: false replaces the value"
    );
}

#[tokio::test]
async fn added_response_headers_append_or_replace() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "web",
            json!({
                "prefix": "/web/",
                "service": "quote",
                "addResponseHeaders": {
                    "x-frame-options": { "value": "DENY", "append": false },
                    "x-served-by": { "value": "legate" },
                },
            }),
        )],
    )
    .await;

    let r = Req::get("/web/a").send(&stage).await;
    echoed(&r, 200, "quote-1", "/a", SHOP);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-served-by"), Some("legate"));

    let r = Req::get("/web/a")
        .header("x-echo-response-header", "x-frame-options=SAMEORIGIN")
        .header("x-echo-response-header", "x-served-by=upstream")
        .send(&stage)
        .await;
    echoed(&r, 200, "quote-1", "/a", SHOP);
    let all = |name: &str| -> Vec<String> {
        r.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    };
    assert_eq!(all("x-frame-options"), ["DENY"], "append: false replaces");
    assert_eq!(all("x-served-by"), ["upstream", "legate"], "append adds");
}

#[tokio::test]
async fn removed_headers_never_reach_the_upstream_or_the_client() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[
            (
                "web",
                json!({
                    "prefix": "/web/",
                    "service": "quote",
                    "removeRequestHeaders": ["x-debug", "Cookie"],
                    "removeResponseHeaders": ["x-powered-by", "server"],
                }),
            ),
            ("other", json!({ "prefix": "/other/", "service": "quote" })),
        ],
    )
    .await;

    let r = Req::get("/web/a")
        .header("x-debug", "1")
        .header("cookie", "session=secret")
        .header("x-keep", "yes")
        .header("x-echo-response-header", "x-powered-by=php")
        .header("x-echo-response-header", "x-visible=yes")
        .header("x-echo-response-header", "server=echo/1.0")
        .send(&stage)
        .await;
    let echo = echoed(&r, 200, "quote-1", "/a", SHOP);
    // Envoy adds no `server` of its own, so removing the upstream's leaves none.
    assert_eq!(r.header("server"), None);
    assert_eq!(echo.header("x-debug"), None);
    assert_eq!(echo.header("cookie"), None);
    assert_eq!(echo.header("x-keep"), Some("yes"));
    assert_eq!(r.header("x-powered-by"), None);
    assert_eq!(r.header("x-visible"), Some("yes"));
    assert_eq!(r.header("x-echo-backend"), Some("quote-1"));

    // Another route passes the upstream's `server` through as it is.
    let r = Req::get("/other/a")
        .header("x-echo-response-header", "server=echo/1.0")
        .send(&stage)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("server"), Some("echo/1.0"));
}
