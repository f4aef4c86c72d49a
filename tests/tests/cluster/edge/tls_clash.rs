//! Two TLSContexts naming one host: Envoy cannot serve both (it would
//! refuse the whole HTTPS listener), so the older keeps the host and the
//! newer is Conflicted before Envoy sees it; everything else keeps flowing.

use legate_tests::operator::envoy_for_gateway;
use legate_tests::peers::tls_client::TlsOptions;
use legate_tests::pki::{Ca, tls_secret};
use legate_tests::stage::Stage;
use serde_json::json;

use super::{Extra, gateway, https_until, legate, put, until};

/// A TLSContext `name` for `host` with a certificate of serial `serial`.
async fn tls_context(stage: &Stage, ca: &Ca, name: &str, host: &str, serial: u64) {
    put(
        stage,
        tls_secret(&format!("{name}-tls"), &ca.server(&[host], serial)),
    )
    .await;
    let spec = json!({ "hosts": [host], "secret": format!("{name}-tls") });
    put(stage, legate("TLSContext", name, spec)).await;
}

#[tokio::test]
async fn the_older_tls_context_keeps_a_host_two_name_and_a_restarted_envoy_gets_every_listener() {
    // Creation times have a resolution of a second; within one, the name
    // decides (the model's age order): "first" before "second" either way.
    let mut stage = Stage::new().await;
    let https = Extra::new("https", "HTTPS");
    gateway(&stage, &[&https], json!({})).await;
    for host in ["shop", "pay"] {
        let spec = json!({ "hostname": format!("{host}.example.com"), "prefix": "/", "rewrite": "", "service": "quote" });
        stage.mapping(host, spec).await;
    }
    let ca = Ca::new("legate test CA");
    let options = TlsOptions::trusting(&ca.cert_pem);
    tls_context(&stage, &ca, "first", "shop.example.com", 0xc001).await;
    let answer = https_until(https.addr(), "shop.example.com", &options, "/", 200).await;
    assert_eq!(answer.handshake.cert.serial, "c001");

    tls_context(&stage, &ca, "second", "shop.example.com", 0xc002).await;
    let conflicted = stage
        .condition_reason("TLSContext", "second", "Accepted", "Conflicted")
        .await;
    let message = conflicted["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("first") && message.contains("shop.example.com"),
        "the newer one is told which serves the host: {conflicted}"
    );
    // A TLSContext for another host, created afterwards, is served: the
    // listener never froze.
    tls_context(&stage, &ca, "pay", "pay.example.com", 0xc003).await;
    let pay = https_until(https.addr(), "pay.example.com", &options, "/", 200).await;
    assert_eq!(pay.handshake.cert.serial, "c003");
    let shop = https_until(https.addr(), "shop.example.com", &options, "/", 200).await;
    assert_eq!(shop.handshake.cert.serial, "c001", "the older keeps serving");
    stage
        .condition_at("TLSContext", "first", "Programmed", "True", 1)
        .await;

    // An Envoy that restarts gets every valid listener.
    stage.envoy.stop();
    stage.envoy = envoy_for_gateway(&stage.env.client, &stage.env.namespace, "edge", "edge-local-2").await;
    for (host, serial) in [("shop.example.com", "c001"), ("pay.example.com", "c003")] {
        let answer = https_until(https.addr(), host, &options, "/", 200).await;
        assert_eq!(answer.handshake.cert.serial, serial, "{host} after the restart");
    }
    // And the cleartext listener: the older's redirect to HTTPS.
    until(&stage, "GET", "/", "shop.example.com", &[], 301).await;
}
