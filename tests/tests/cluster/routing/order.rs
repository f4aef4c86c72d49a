//! Which Mapping wins when several match. Each Mapping here tags the request
//! with `x-route: <its name>` so the echo reports which route carried it.

use legate_tests::stage::Stage;
use serde_json::{Value, json};

use super::{Req, SHOP, apply_programmed, echoed};

/// A Mapping to the stage's echo that tags requests with its name.
fn tagged(name: &str, mut spec: Value) -> (String, Value) {
    spec["service"] = json!("quote");
    spec["addRequestHeaders"] = json!({ "x-route": { "value": name, "append": false } });
    (name.to_string(), spec)
}

async fn apply(stage: &Stage, list: Vec<(String, Value)>) {
    let list: Vec<(&str, Value)> = list.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    apply_programmed(stage, &list).await;
}

#[track_caller]
fn route_of(r: &legate_tests::http::Response, route: &str, path: &str, host: &str) {
    let echo = echoed(r, 200, "quote-1", path, host);
    assert_eq!(echo.header("x-route"), Some(route), "the route that matched");
}

#[tokio::test]
async fn higher_precedence_wins_even_over_a_longer_prefix() {
    let stage = Stage::new().await;
    apply(
        &stage,
        vec![
            tagged("long", json!({ "prefix": "/api/v1/" })),
            tagged("short-first", json!({ "prefix": "/api/", "precedence": 10 })),
            tagged("other", json!({ "prefix": "/other/", "precedence": -5 })),
        ],
    )
    .await;

    route_of(
        &Req::get("/api/v1/x").send(&stage).await,
        "short-first",
        "/v1/x",
        SHOP,
    );
    route_of(&Req::get("/other/x").send(&stage).await, "other", "/x", SHOP);
}

#[tokio::test]
async fn the_longer_prefix_wins_at_equal_precedence() {
    let stage = Stage::new().await;
    apply(
        &stage,
        vec![
            // Named so that name order would pick the wrong one.
            tagged("a-short", json!({ "prefix": "/api/" })),
            tagged("b-long", json!({ "prefix": "/api/v1/" })),
            tagged("c-root", json!({ "prefix": "/" })),
        ],
    )
    .await;

    route_of(&Req::get("/api/v1/x").send(&stage).await, "b-long", "/x", SHOP);
    route_of(
        &Req::get("/api/v2/x").send(&stage).await,
        "a-short",
        "/v2/x",
        SHOP,
    );
    route_of(
        &Req::get("/elsewhere").send(&stage).await,
        "c-root",
        "/elsewhere",
        SHOP,
    );
}

#[tokio::test]
async fn more_header_and_query_constraints_win_at_equal_prefix() {
    let stage = Stage::new().await;
    apply(
        &stage,
        vec![
            tagged("a-plain", json!({ "prefix": "/c/" })),
            tagged("b-header", json!({ "prefix": "/c/", "headers": { "x-beta": "1" } })),
            tagged(
                "c-header-query",
                json!({ "prefix": "/c/", "headers": { "x-beta": "1" }, "queryParameters": { "preview": "yes" } }),
            ),
        ],
    )
    .await;

    route_of(&Req::get("/c/x").send(&stage).await, "a-plain", "/x", SHOP);
    route_of(
        &Req::get("/c/x").header("x-beta", "1").send(&stage).await,
        "b-header",
        "/x",
        SHOP,
    );
    route_of(
        &Req::get("/c/x?preview=yes")
            .header("x-beta", "1")
            .send(&stage)
            .await,
        "c-header-query",
        "/x",
        SHOP,
    );
    route_of(
        &Req::get("/c/x?preview=yes").send(&stage).await,
        "a-plain",
        "/x",
        SHOP,
    );
}

#[tokio::test]
async fn a_host_specific_mapping_beats_a_catch_all_one_with_the_same_match() {
    let stage = Stage::new().await;
    apply(
        &stage,
        vec![
            // "any" sorts before "shop": only host specificity can pick "shop".
            tagged("any", json!({ "hostname": "*", "prefix": "/s/" })),
            tagged("shop", json!({ "hostname": SHOP, "prefix": "/s/" })),
            tagged(
                "any-glob",
                json!({ "hostname": "*.example.com", "prefix": "/g/" }),
            ),
            tagged("glob-shop", json!({ "hostname": SHOP, "prefix": "/g/" })),
        ],
    )
    .await;

    route_of(&Req::get("/s/x").send(&stage).await, "shop", "/x", SHOP);
    route_of(
        &Req::get("/s/x").host("other.example.org").send(&stage).await,
        "any",
        "/x",
        "other.example.org",
    );
    route_of(&Req::get("/g/x").send(&stage).await, "glob-shop", "/x", SHOP);
    route_of(
        &Req::get("/g/x").host("a.example.com").send(&stage).await,
        "any-glob",
        "/x",
        "a.example.com",
    );
}

#[tokio::test]
async fn the_order_mappings_were_created_in_never_matters() {
    let stage = Stage::new().await;
    // Family p: the short prefix is created first; family r: the long one is.
    // Family h: the more constrained one first; family k: last.
    apply(
        &stage,
        vec![
            tagged("p-short", json!({ "prefix": "/p/" })),
            tagged("p-long", json!({ "prefix": "/p/q/" })),
            tagged("r-long", json!({ "prefix": "/r/q/" })),
            tagged("r-short", json!({ "prefix": "/r/" })),
            tagged(
                "h-header",
                json!({ "prefix": "/h/", "headers": { "x-beta": "1" } }),
            ),
            tagged("h-plain", json!({ "prefix": "/h/" })),
            tagged("k-plain", json!({ "prefix": "/k/" })),
            tagged(
                "k-header",
                json!({ "prefix": "/k/", "headers": { "x-beta": "1" } }),
            ),
        ],
    )
    .await;

    for family in ["p", "r"] {
        route_of(
            &Req::get(&format!("/{family}/q/x")).send(&stage).await,
            &format!("{family}-long"),
            "/x",
            SHOP,
        );
        route_of(
            &Req::get(&format!("/{family}/x")).send(&stage).await,
            &format!("{family}-short"),
            "/x",
            SHOP,
        );
    }
    for family in ["h", "k"] {
        route_of(
            &Req::get(&format!("/{family}/x"))
                .header("x-beta", "1")
                .send(&stage)
                .await,
            &format!("{family}-header"),
            "/x",
            SHOP,
        );
        route_of(
            &Req::get(&format!("/{family}/x")).send(&stage).await,
            &format!("{family}-plain"),
            "/x",
            SHOP,
        );
    }
}
