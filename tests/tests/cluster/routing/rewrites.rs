//! What a Mapping changes on the way upstream: the path and the Host.

use legate_tests::stage::Stage;
use serde_json::json;

use super::{Req, SHOP, apply_programmed, echo_service, echoed};

#[tokio::test]
async fn the_default_rewrite_replaces_the_matched_prefix_with_a_slash() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[("quote", json!({ "prefix": "/backend/", "service": "quote" }))],
    )
    .await;

    let r = Req::get("/backend/probe").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/probe", SHOP);
    assert_eq!(echo.header("x-envoy-original-path"), Some("/backend/probe"));
    let r = Req::get("/backend/a/b?x=1").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/a/b", SHOP);
    assert_eq!(echo.query, "x=1");
    assert_eq!(echo.header("x-envoy-original-path"), Some("/backend/a/b?x=1"));
}

#[tokio::test]
async fn an_empty_rewrite_forwards_the_path_unchanged_and_another_rewrite_replaces_the_prefix() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[
            (
                "keep",
                json!({ "prefix": "/keep/", "rewrite": "", "service": "quote" }),
            ),
            (
                "old",
                json!({ "prefix": "/old/", "rewrite": "/v2/", "service": "quote" }),
            ),
        ],
    )
    .await;

    let r = Req::get("/keep/a?b=c").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/keep/a", SHOP);
    assert_eq!(echo.query, "b=c");
    assert_eq!(
        echo.header("x-envoy-original-path"),
        None,
        "nothing was rewritten, so Envoy keeps no original path"
    );
    let r = Req::get("/old/items/7").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/v2/items/7", SHOP);
    assert_eq!(echo.header("x-envoy-original-path"), Some("/old/items/7"));
}

#[tokio::test]
async fn a_regex_rewrite_substitutes_capture_groups_and_leaves_other_paths_alone() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "users",
            json!({
                "prefix": "/users/",
                "regexRewrite": { "pattern": "^/users/([0-9]+)/profile$", "substitution": "/v2/profiles/\\1" },
                "service": "quote",
            }),
        )],
    )
    .await;

    let r = Req::get("/users/42/profile?full=1").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/v2/profiles/42", SHOP);
    assert_eq!(echo.query, "full=1");
    assert_eq!(
        echo.header("x-envoy-original-path"),
        Some("/users/42/profile?full=1")
    );
    // The pattern does not match: the path goes upstream as it came (no
    // prefix rewrite either: regexRewrite replaces rewrite).
    let r = Req::get("/users/abc").send(&stage).await;
    echoed(&r, 200, "quote-1", "/users/abc", SHOP);
}

#[tokio::test]
async fn host_rewrite_sets_the_upstream_host() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "users",
            json!({ "prefix": "/users/", "hostRewrite": "users.internal", "service": "quote" }),
        )],
    )
    .await;

    let r = Req::get("/users/1").send(&stage).await;
    echoed(&r, 200, "quote-1", "/1", "users.internal");
}

#[tokio::test]
async fn auto_host_rewrite_sends_the_upstreams_own_host_name() {
    let stage = Stage::new().await;
    // A service outside the cluster, by URL: the upstream's host is the URL's.
    let _outside = echo_service(&stage, "unused", "outside-1", 8090).await;
    let url = format!("http://{}:8090", stage.host.addr());
    apply_programmed(
        &stage,
        &[
            (
                "auto",
                json!({ "prefix": "/auto/", "autoHostRewrite": true, "service": url }),
            ),
            ("plain", json!({ "prefix": "/plain/", "service": url })),
            (
                "auto-svc",
                json!({ "prefix": "/auto-svc/", "autoHostRewrite": true, "service": "quote" }),
            ),
        ],
    )
    .await;

    let r = Req::get("/auto/x").send(&stage).await;
    echoed(&r, 200, "outside-1", "/x", &stage.host.addr().to_string());
    // A Kubernetes Service's endpoints have no host name: the Service's name is used.
    let r = Req::get("/auto-svc/x").send(&stage).await;
    echoed(
        &r,
        200,
        "quote-1",
        "/x",
        &format!("quote.{}", stage.env.namespace),
    );
    let r = Req::get("/plain/x").send(&stage).await;
    echoed(&r, 200, "outside-1", "/x", SHOP);
}
