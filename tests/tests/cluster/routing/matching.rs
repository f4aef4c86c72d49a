//! What a Mapping matches: prefixes, exact paths, regexes, hosts, methods,
//! headers and query parameters.

use legate_tests::stage::Stage;
use serde_json::json;

use super::{Req, SHOP, apply_programmed, echoed, from_envoy};

#[tokio::test]
async fn prefix_is_a_plain_case_sensitive_string_prefix_unless_case_sensitive_is_false() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[
            (
                "foo",
                json!({ "prefix": "/foo", "rewrite": "", "service": "quote" }),
            ),
            (
                "bar",
                json!({ "prefix": "/bar/", "caseSensitive": false, "rewrite": "", "service": "quote" }),
            ),
        ],
    )
    .await;

    let r = Req::get("/foobar").send(&stage).await;
    echoed(&r, 200, "quote-1", "/foobar", SHOP);
    let r = Req::get("/foo/x").send(&stage).await;
    echoed(&r, 200, "quote-1", "/foo/x", SHOP);
    from_envoy(&Req::get("/FOO/x").send(&stage).await, 404);
    from_envoy(&Req::get("/fo").send(&stage).await, 404);

    let r = Req::get("/BaR/Mixed").send(&stage).await;
    echoed(&r, 200, "quote-1", "/BaR/Mixed", SHOP);
}

#[tokio::test]
async fn path_is_exact_and_path_regex_must_match_the_whole_path_and_the_query_is_ignored() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[
            (
                "exact",
                json!({ "path": "/exact", "rewrite": "", "service": "quote" }),
            ),
            (
                "items",
                json!({ "pathRegex": "/items/[0-9]+", "service": "quote" }),
            ),
        ],
    )
    .await;

    let r = Req::get("/exact").send(&stage).await;
    echoed(&r, 200, "quote-1", "/exact", SHOP);
    let r = Req::get("/exact?page=2&sort=asc").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/exact", SHOP);
    assert_eq!(
        echo.query, "page=2&sort=asc",
        "the query travels upstream untouched"
    );
    from_envoy(&Req::get("/exact/more").send(&stage).await, 404);
    from_envoy(&Req::get("/exac").send(&stage).await, 404);

    let r = Req::get("/items/42").send(&stage).await;
    echoed(&r, 200, "quote-1", "/items/42", SHOP);
    let r = Req::get("/items/42?color=red").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/items/42", SHOP);
    assert_eq!(echo.query, "color=red");
    // The regex must match the whole path, not a part of it.
    from_envoy(&Req::get("/items/42x").send(&stage).await, 404);
    from_envoy(&Req::get("/v1/items/42").send(&stage).await, 404);
    from_envoy(&Req::get("/items/").send(&stage).await, 404);
}

#[tokio::test]
async fn paths_are_normalized_before_they_are_matched() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[("b", json!({ "prefix": "/b/", "rewrite": "", "service": "quote" }))],
    )
    .await;

    let r = Req::get("/a/../b/c").send(&stage).await;
    echoed(&r, 200, "quote-1", "/b/c", SHOP);
    let r = Req::get("/b/./c/./d").send(&stage).await;
    echoed(&r, 200, "quote-1", "/b/c/d", SHOP);
    let r = Req::get("//b//c").send(&stage).await;
    echoed(&r, 200, "quote-1", "/b/c", SHOP);
    // `..` cannot climb out of a prefix the client did not ask for.
    from_envoy(&Req::get("/b/../secret").send(&stage).await, 404);
}

#[tokio::test]
async fn hostname_globs_match_subdomains_only_and_the_host_port_does_not_matter() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[
            (
                "glob",
                json!({ "hostname": "*.example.com", "prefix": "/glob/", "rewrite": "", "service": "quote" }),
            ),
            (
                "exact-host",
                json!({ "hostname": "shop.example.com", "prefix": "/shop/", "rewrite": "", "service": "quote" }),
            ),
        ],
    )
    .await;

    let r = Req::get("/glob/x").host("a.example.com").send(&stage).await;
    echoed(&r, 200, "quote-1", "/glob/x", "a.example.com");
    let r = Req::get("/glob/x").host("a.b.example.com").send(&stage).await;
    echoed(&r, 200, "quote-1", "/glob/x", "a.b.example.com");
    // The shop host has a virtual host of its own; the glob route is in it too.
    let r = Req::get("/glob/x").send(&stage).await;
    echoed(&r, 200, "quote-1", "/glob/x", SHOP);
    from_envoy(&Req::get("/glob/x").host("example.com").send(&stage).await, 404);
    from_envoy(&Req::get("/glob/x").host("a.example.org").send(&stage).await, 404);

    let r = Req::get("/shop/x").send(&stage).await;
    echoed(&r, 200, "quote-1", "/shop/x", SHOP);
    // The port is stripped before matching (and from the Host sent upstream).
    let r = Req::get("/shop/x")
        .host("shop.example.com:8080")
        .send(&stage)
        .await;
    echoed(&r, 200, "quote-1", "/shop/x", SHOP);
    let r = Req::get("/glob/x").host("a.example.com:443").send(&stage).await;
    echoed(&r, 200, "quote-1", "/glob/x", "a.example.com");
    from_envoy(&Req::get("/shop/x").host("a.example.com").send(&stage).await, 404);
}

#[tokio::test]
async fn method_and_exact_and_regex_headers_must_all_match() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[
            (
                "post",
                json!({ "prefix": "/m/", "method": "POST", "service": "quote" }),
            ),
            (
                "tenant",
                json!({ "prefix": "/h/", "headers": { "X-Tenant": "blue" }, "service": "quote" }),
            ),
            (
                "traced",
                json!({ "prefix": "/present/", "regexHeaders": { "x-trace": ".*" }, "service": "quote" }),
            ),
            (
                "versioned",
                json!({ "prefix": "/rv/", "regexHeaders": { "x-version": "v[0-9]+" }, "service": "quote" }),
            ),
        ],
    )
    .await;

    let r = Req::get("/m/x").method("POST").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/x", SHOP);
    assert_eq!(echo.method, "POST");
    from_envoy(&Req::get("/m/x").send(&stage).await, 404);
    from_envoy(&Req::get("/m/x").method("PUT").send(&stage).await, 404);

    let r = Req::get("/h/x").header("x-tenant", "blue").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/x", SHOP);
    assert_eq!(echo.header("x-tenant"), Some("blue"));
    from_envoy(
        &Req::get("/h/x").header("x-tenant", "Blue").send(&stage).await,
        404,
    );
    from_envoy(
        &Req::get("/h/x").header("x-tenant", "blue-ish").send(&stage).await,
        404,
    );
    from_envoy(&Req::get("/h/x").send(&stage).await, 404);

    let r = Req::get("/present/x").header("x-trace", "abc").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/x", SHOP);
    assert_eq!(echo.header("x-trace"), Some("abc"));
    from_envoy(&Req::get("/present/x").send(&stage).await, 404);

    let r = Req::get("/rv/x").header("x-version", "v12").send(&stage).await;
    echoed(&r, 200, "quote-1", "/x", SHOP);
    // The regex must match the whole value.
    from_envoy(
        &Req::get("/rv/x")
            .header("x-version", "v12-beta")
            .send(&stage)
            .await,
        404,
    );
    from_envoy(
        &Req::get("/rv/x")
            .header("x-version", "version")
            .send(&stage)
            .await,
        404,
    );
}

#[tokio::test]
async fn query_parameters_match_exactly_or_by_regex() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[
            (
                "json",
                json!({ "prefix": "/q/", "queryParameters": { "format": "json" }, "service": "quote" }),
            ),
            (
                "numeric",
                json!({ "prefix": "/rq/", "regexQueryParameters": { "id": "[0-9]+" }, "service": "quote" }),
            ),
        ],
    )
    .await;

    let r = Req::get("/q/list?format=json").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/list", SHOP);
    assert_eq!(echo.query, "format=json");
    let r = Req::get("/q/list?page=1&format=json").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/list", SHOP);
    assert_eq!(echo.query, "page=1&format=json");
    from_envoy(&Req::get("/q/list?format=xml").send(&stage).await, 404);
    from_envoy(&Req::get("/q/list").send(&stage).await, 404);

    let r = Req::get("/rq/item?id=1234").send(&stage).await;
    let echo = echoed(&r, 200, "quote-1", "/item", SHOP);
    assert_eq!(echo.query, "id=1234");
    from_envoy(&Req::get("/rq/item?id=12a").send(&stage).await, 404);
    from_envoy(&Req::get("/rq/item").send(&stage).await, 404);
}
