//! TLS from Envoy to upstreams: `https://` services and `upstreamTls`.

use legate_tests::TestHost;
use legate_tests::peers::expose;
use legate_tests::peers::tls_echo::{TlsEcho, reply};
use legate_tests::pki::{Ca, ca_secret, tls_secret};
use legate_tests::stage::Stage;
use serde_json::json;

use super::{put, send, until};

const HOST: &str = "shop.example.com";

#[tokio::test]
async fn an_https_service_url_speaks_tls_to_the_upstream() {
    let stage = Stage::new().await;
    let ca = Ca::new("upstream CA");
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let ip = host.addr().to_string();
    let _echo = TlsEcho::serve(
        host.bind(8443).unwrap_or_else(|e| panic!("{e}")),
        "secure-1",
        &ca.server(&["secure.example.com"], 0xd001),
        None,
    );
    stage
        .mapping(
            "secure",
            json!({ "prefix": "/secure/", "service": format!("https://{ip}:8443") }),
        )
        .await;
    // The upstream speaks only TLS: any answer from it proves Envoy originated TLS.
    let r = until(&stage, "GET", "/secure/vault", HOST, &[], 200).await;
    let seen = reply(&r.body);
    assert_eq!(seen.backend, "secure-1");
    assert_eq!(seen.path, "/vault");
    assert_eq!(
        seen.client_common_name, None,
        "no client certificate was configured"
    );
}

#[tokio::test]
async fn upstream_tls_verifies_the_ca_secret_and_presents_the_client_certificate() {
    let stage = Stage::new().await;
    let upstream_ca = Ca::new("upstream CA");
    let client_ca = Ca::new("Envoy client CA");
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let _echo = TlsEcho::serve(
        host.bind(8443).unwrap_or_else(|e| panic!("{e}")),
        "secure-1",
        &upstream_ca.server(&["secure.internal.example.com"], 0xe001),
        Some(&client_ca),
    );
    expose(&stage.env, "secure", &host.addr().to_string(), 8443).await;
    let envoy_client = client_ca.client("edge-envoy", 0xe0e0);
    put(&stage, ca_secret("upstream-ca", &upstream_ca)).await;
    put(&stage, tls_secret("envoy-client", &envoy_client)).await;
    put(&stage, ca_secret("other-ca", &Ca::new("someone else's CA"))).await;
    stage
        .mapping(
            "secure",
            json!({ "prefix": "/secure/", "service": "secure:8443",
                    "upstreamTls": { "sni": "secure.internal.example.com", "caSecret": "upstream-ca",
                                     "clientCertSecret": "envoy-client" } }),
        )
        .await;
    stage
        .mapping(
            "distrusted",
            json!({ "prefix": "/distrusted/", "service": "secure:8443",
                    "upstreamTls": { "sni": "secure.internal.example.com", "caSecret": "other-ca" } }),
        )
        .await;
    let r = until(&stage, "GET", "/secure/vault", HOST, &[], 200).await;
    let seen = reply(&r.body);
    assert_eq!(seen.backend, "secure-1");
    assert_eq!(seen.path, "/vault");
    assert_eq!(seen.sni.as_deref(), Some("secure.internal.example.com"));
    assert_eq!(
        seen.client_common_name.as_deref(),
        Some("edge-envoy"),
        "Envoy presented clientCertSecret"
    );
    assert_eq!(seen.client_serial.as_deref(), Some(envoy_client.serial.as_str()));
    stage.condition("Mapping", "secure", "ResolvedRefs", "True").await;

    // An upstream whose certificate the caSecret does not sign is not trusted.
    stage
        .condition("Mapping", "distrusted", "Programmed", "True")
        .await;
    let refused = send(&stage, "GET", "/distrusted/vault", HOST, &[], "").await;
    assert_eq!(refused.status, 503, "{}", refused.text());
}
