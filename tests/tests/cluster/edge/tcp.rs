//! TCPMapping: raw TCP, TLS routed by SNI (passed through), and TLS
//! terminated with a TLSContext.

use legate_tests::TestHost;
use legate_tests::http::HttpClient;
use legate_tests::net::eventually;
use legate_tests::peers::expose;
use legate_tests::peers::tls_client::{TlsOptions, https_get};
use legate_tests::peers::tls_echo::{TlsEcho, reply};
use legate_tests::pki::{Ca, tls_secret};
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::json;

use super::{Extra, gateway, https_until, legate, put};

#[tokio::test]
async fn a_tcp_listener_passes_bytes_to_its_service_untouched() {
    let stage = Stage::new().await;
    let raw = Extra::new("raw", "TCP");
    gateway(&stage, &[&raw], json!({})).await;
    put(
        &stage,
        legate(
            "TCPMapping",
            "raw",
            json!({ "port": raw.port, "service": "quote:80" }),
        ),
    )
    .await;
    let url = format!("http://{}/any/path?q=1", raw.addr());
    let answer = eventually("the TCP listener to reach quote", PATIENCE, || async {
        HttpClient::http1()
            .get(&url, Some("not-routed.example.com"))
            .await
            .ok()
            .filter(|r| r.status == 200)
    })
    .await;
    let echo = answer.echo();
    assert_eq!(echo.backend, "quote-1");
    assert_eq!(echo.path, "/any/path", "no HTTP rewriting on a TCP port");
    assert_eq!(echo.query, "q=1");
    assert_eq!(echo.host, "not-routed.example.com", "no Host routing either");
    assert_eq!(echo.header("x-forwarded-for"), None, "Envoy adds no HTTP headers");
    stage.condition("TCPMapping", "raw", "Programmed", "True").await;
}

#[tokio::test]
async fn a_tls_listener_routes_by_sni_and_passes_tls_through() {
    let stage = Stage::new().await;
    let tls = Extra::new("tls", "TLS");
    gateway(&stage, &[&tls], json!({})).await;
    let ca = Ca::new("ledger CA");
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let a_cert = ca.server(&["a.ledger.example.com"], 0xb001);
    let b_cert = ca.server(&["b.ledger.example.com"], 0xb002);
    let _a = TlsEcho::serve(
        host.bind(8443).unwrap_or_else(|e| panic!("{e}")),
        "ledger-a",
        &a_cert,
        None,
    );
    let _b = TlsEcho::serve(
        host.bind(9443).unwrap_or_else(|e| panic!("{e}")),
        "ledger-b",
        &b_cert,
        None,
    );
    expose(&stage.env, "ledger-a", &host.addr().to_string(), 8443).await;
    expose(&stage.env, "ledger-b", &host.addr().to_string(), 9443).await;
    for (name, port) in [("a", 8443), ("b", 9443)] {
        put(
            &stage,
            legate(
                "TCPMapping",
                &format!("ledger-{name}"),
                json!({ "port": tls.port, "sni": format!("{name}.ledger.example.com"),
                        "service": format!("ledger-{name}:{port}") }),
            ),
        )
        .await;
    }
    let options = TlsOptions::trusting(&ca.cert_pem);
    let a = https_until(tls.addr(), "a.ledger.example.com", &options, "/balance", 200).await;
    let b = https_until(tls.addr(), "b.ledger.example.com", &options, "/balance", 200).await;
    assert_eq!(
        a.handshake.cert,
        a_cert.info(),
        "the backend's own certificate: TLS passed through"
    );
    assert_eq!(b.handshake.cert, b_cert.info());
    let (a, b) = (reply(&a.response.body), reply(&b.response.body));
    assert_eq!(a.backend, "ledger-a");
    assert_eq!(a.sni.as_deref(), Some("a.ledger.example.com"));
    assert_eq!(a.path, "/balance");
    assert_eq!(b.backend, "ledger-b");
    assert_eq!(b.sni.as_deref(), Some("b.ledger.example.com"));
    let unknown = https_get(tls.addr(), "c.ledger.example.com", &options, "/").await;
    assert!(
        unknown.is_err(),
        "an SNI no TCPMapping names is not served: {unknown:?}"
    );
    for name in ["ledger-a", "ledger-b"] {
        stage.condition("TCPMapping", name, "Programmed", "True").await;
    }
}

#[tokio::test]
async fn a_tcp_mapping_with_a_tls_context_terminates_tls() {
    let stage = Stage::new().await;
    let tls = Extra::new("tls", "TLS");
    gateway(&stage, &[&tls], json!({})).await;
    let ca = Ca::new("legate test CA");
    let cert = ca.server(&["db.example.com"], 0xc001);
    put(&stage, tls_secret("db-tls", &cert)).await;
    put(
        &stage,
        legate(
            "TLSContext",
            "db",
            json!({ "hosts": ["db.example.com"], "secret": "db-tls" }),
        ),
    )
    .await;
    put(
        &stage,
        legate(
            "TCPMapping",
            "db",
            json!({ "port": tls.port, "sni": "db.example.com", "tlsContext": "db", "service": "quote:80" }),
        ),
    )
    .await;
    // The echo upstream speaks plain HTTP: an answer means Envoy terminated TLS.
    let options = TlsOptions::trusting(&ca.cert_pem);
    let answer = https_until(tls.addr(), "db.example.com", &options, "/query", 200).await;
    assert_eq!(answer.handshake.cert, cert.info(), "the TLSContext's certificate");
    let echo = answer.response.echo();
    assert_eq!(echo.backend, "quote-1");
    assert_eq!(echo.path, "/query");
    assert_eq!(echo.host, "db.example.com");
    stage.condition("TCPMapping", "db", "Programmed", "True").await;
}
