//! Redirects: Envoy answers 3xx itself; no upstream is involved.

use legate_tests::stage::Stage;
use serde_json::json;

use super::{Req, apply_programmed, from_envoy};

#[track_caller]
fn redirected(r: &legate_tests::http::Response, status: u16, location: &str) {
    from_envoy(r, status);
    assert_eq!(r.header("location"), Some(location), "Location of a {status}");
}

#[tokio::test]
async fn a_host_redirect_keeps_the_path_and_query() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "go",
            json!({ "prefix": "/go/", "redirect": { "host": "docs.example.com" } }),
        )],
    )
    .await;

    let r = Req::get("/go/guide/intro?lang=en").send(&stage).await;
    redirected(&r, 301, "http://docs.example.com/go/guide/intro?lang=en");
}

#[tokio::test]
async fn a_path_redirect_replaces_the_whole_path_and_keeps_the_query() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "old",
            json!({ "path": "/old-page", "redirect": { "path": "/new-page", "responseCode": 302 } }),
        )],
    )
    .await;

    let r = Req::get("/old-page?ref=mail").send(&stage).await;
    redirected(&r, 302, "http://shop.example.com/new-page?ref=mail");
}

#[tokio::test]
async fn a_prefix_redirect_replaces_only_the_matched_prefix() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "docs",
            json!({
                "prefix": "/docs/",
                "redirect": { "host": "docs.example.com", "prefix": "/latest/", "responseCode": 308 },
            }),
        )],
    )
    .await;

    let r = Req::get("/docs/guide/intro?lang=en").send(&stage).await;
    redirected(&r, 308, "http://docs.example.com/latest/guide/intro?lang=en");
}

#[tokio::test]
async fn a_regex_redirect_rewrites_the_path_with_capture_groups() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "short",
            json!({
                "prefix": "/u/",
                "redirect": {
                    "regex": { "pattern": "^/u/([0-9]+)$", "substitution": "/users/\\1/profile" },
                    "responseCode": 307,
                },
            }),
        )],
    )
    .await;

    let r = Req::get("/u/42?tab=posts").send(&stage).await;
    redirected(&r, 307, "http://shop.example.com/users/42/profile?tab=posts");
    // A path the pattern does not match keeps its path.
    let r = Req::get("/u/abc").send(&stage).await;
    redirected(&r, 307, "http://shop.example.com/u/abc");
}

#[tokio::test]
async fn every_redirect_response_code_is_sent_as_asked_and_301_is_the_default() {
    let stage = Stage::new().await;
    let mut list = vec![(
        "default".to_string(),
        json!({ "prefix": "/default/", "redirect": { "host": "elsewhere.example.com" } }),
    )];
    for code in [301, 302, 303, 307, 308] {
        list.push((
            format!("code-{code}"),
            json!({ "prefix": format!("/c{code}/"), "redirect": { "host": "elsewhere.example.com", "responseCode": code } }),
        ));
    }
    let list: Vec<(&str, serde_json::Value)> = list.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    apply_programmed(&stage, &list).await;

    let r = Req::get("/default/x").send(&stage).await;
    redirected(&r, 301, "http://elsewhere.example.com/default/x");
    for code in [301, 302, 303, 307, 308] {
        let r = Req::get(&format!("/c{code}/x")).send(&stage).await;
        redirected(&r, code, &format!("http://elsewhere.example.com/c{code}/x"));
    }
}

#[tokio::test]
async fn an_https_redirect_sends_clients_to_the_same_url_over_https() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[(
            "force-https",
            json!({ "hostname": "secure.example.com", "prefix": "/", "redirect": { "httpsRedirect": true } }),
        )],
    )
    .await;

    let r = Req::get("/account?tab=1")
        .host("secure.example.com")
        .send(&stage)
        .await;
    redirected(&r, 301, "https://secure.example.com/account?tab=1");
    // The port of the plain-HTTP listener is not carried over to https.
    let r = Req::get("/account")
        .host("secure.example.com:8080")
        .send(&stage)
        .await;
    redirected(&r, 301, "https://secure.example.com/account");
}
