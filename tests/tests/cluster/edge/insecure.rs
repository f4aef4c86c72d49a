//! Cleartext requests for a TLS host: `insecure.action` Redirect (the
//! default), Reject or Route.

use legate_tests::peers::tls_client::TlsOptions;
use legate_tests::pki::{Ca, tls_secret};
use legate_tests::stage::Stage;
use serde_json::json;

use super::{Extra, gateway, https_until, legate, put, send, until};

#[tokio::test]
async fn cleartext_requests_for_tls_hosts_are_redirected_rejected_or_routed() {
    let stage = Stage::new().await;
    let https = Extra::new("https", "HTTPS");
    gateway(&stage, &[&https], json!({})).await;
    let ca = Ca::new("legate test CA");
    // One host per action; the first relies on the default (Redirect).
    for (name, action) in [
        ("moved", None),
        ("closed", Some("Reject")),
        ("open", Some("Route")),
    ] {
        let host = format!("{name}.example.com");
        stage
            .mapping(
                name,
                json!({ "hostname": host, "prefix": "/", "rewrite": "", "service": "quote" }),
            )
            .await;
        put(
            &stage,
            tls_secret(&format!("{name}-tls"), &ca.server(&[&host], 0xa000)),
        )
        .await;
        let mut spec = json!({ "hosts": [host], "secret": format!("{name}-tls") });
        if let Some(action) = action {
            spec["insecure"] = json!({ "action": action });
        }
        put(&stage, legate("TLSContext", name, spec)).await;
    }
    stage
        .mapping(
            "cleartext-only",
            json!({ "hostname": "plain.example.com", "prefix": "/", "rewrite": "", "service": "quote" }),
        )
        .await;
    let options = TlsOptions::trusting(&ca.cert_pem);
    for name in ["moved", "closed", "open"] {
        let host = format!("{name}.example.com");
        let answer = https_until(https.addr(), &host, &options, "/over-tls", 200).await;
        assert_eq!(answer.response.echo().host, host, "HTTPS serves {host}");
    }

    let moved = until(&stage, "GET", "/cart?item=7", "moved.example.com", &[], 301).await;
    assert_eq!(
        moved.header("location"),
        Some(format!("https://moved.example.com:{}/cart?item=7", https.port).as_str()),
        "Redirect (the default) sends cleartext clients to the Gateway's HTTPS port"
    );
    let closed = until(&stage, "GET", "/cart", "closed.example.com", &[], 404).await;
    assert_ne!(
        closed.header("x-echo-backend"),
        Some("quote-1"),
        "Reject never reaches the upstream"
    );
    let open = until(&stage, "GET", "/cart", "open.example.com", &[], 200).await;
    let echo = open.echo();
    assert_eq!(echo.path, "/cart", "Route serves cleartext too");
    assert_eq!(echo.host, "open.example.com");
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));
    let plain = send(&stage, "GET", "/x", "plain.example.com", &[], "").await;
    assert_eq!(plain.status, 200, "a host without TLS is served over cleartext");
    assert_eq!(plain.echo().path, "/x");
}
