//! The client's address behind load balancers: a listener's `proxyProtocol`
//! (the address a PROXY protocol header names) and `trustedHops` (the address
//! X-Forwarded-For gives, and X-Forwarded-Proto believed by the cleartext
//! redirect).

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use legate_tests::http::{Response, send_after_preface};
use legate_tests::net::{eventually, free_port, loopback};
use legate_tests::pki::{Ca, tls_secret};
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::json;

use super::ratelimit::limited_stage;
use super::{gateway, legate, put, send, until};

const HOST: &str = "shop.example.com";

/// A client address from TEST-NET-3: nothing on this machine has it.
const PROXIED_CLIENT: &str = "203.0.113.7";

/// A PROXY protocol v1 header (text) naming `client` as the source.
fn proxy_v1(client: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 40123 {port}\r\n").into_bytes()
}

/// A PROXY protocol v2 header (binary: signature, PROXY command over TCP/IPv4,
/// then source and destination addresses and ports) naming `client`.
fn proxy_v2(client: std::net::Ipv4Addr, port: u16) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend([0x21, 0x11, 0x00, 12]);
    header.extend(client.octets());
    header.extend(std::net::Ipv4Addr::LOCALHOST.octets());
    header.extend(40123u16.to_be_bytes());
    header.extend(port.to_be_bytes());
    header
}

/// GET `path` on a new connection to the listener on `port` that first
/// sends `preface` (a PROXY protocol header).
async fn get_after(preface: &[u8], port: u16, path: &str) -> Result<Response, String> {
    let request = Request::builder()
        .uri(path)
        .header("host", HOST)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    send_after_preface(loopback(port), preface, request).await
}

#[tokio::test]
async fn a_proxy_protocol_clients_address_is_what_the_upstream_and_the_rate_limit_service_see() {
    let (stage, _host, rls) = limited_stage().await;
    let proxied = free_port();
    gateway(
        &stage,
        &[],
        json!({ "listeners": [
            { "name": "http", "port": stage.port, "protocol": "HTTP" },
            { "name": "proxied", "port": proxied, "protocol": "HTTP", "proxyProtocol": true },
        ] }),
    )
    .await;
    stage
        .mapping(
            "who",
            json!({ "prefix": "/who/", "service": "quote",
                    "rateLimits": [{ "entries": [{ "remoteAddress": {} }] }] }),
        )
        .await;
    let answer = eventually("a 200 through the PROXY protocol listener", PATIENCE, || async {
        get_after(&proxy_v1(PROXIED_CLIENT, proxied), proxied, "/who/am-i")
            .await
            .ok()
            .filter(|r| r.status == 200)
    })
    .await;
    let echo = answer.echo();
    assert_eq!(
        echo.header("x-envoy-external-address"),
        Some(PROXIED_CLIENT),
        "Envoy's client is the PROXY header's: {echo:?}"
    );
    assert_eq!(echo.header("x-forwarded-for"), Some(PROXIED_CLIENT), "{echo:?}");
    let call = rls
        .call_with("remote_address", PROXIED_CLIENT)
        .unwrap_or_else(|| panic!("the rate limit service saw {PROXIED_CLIENT} as remoteAddress"));
    assert_eq!(call.descriptors.len(), 1, "{call:?}");

    // Version 2 (binary), as most cloud load balancers send it, is read the same way.
    let v2_client = std::net::Ipv4Addr::new(203, 0, 113, 8);
    let v2 = get_after(&proxy_v2(v2_client, proxied), proxied, "/who/v2")
        .await
        .expect("an answer after a PROXY v2 header");
    assert_eq!(v2.status, 200);
    assert_eq!(
        v2.echo().header("x-envoy-external-address"),
        Some(v2_client.to_string().as_str()),
        "{v2:?}"
    );

    // Without the header the connection is closed; the other listener is unchanged.
    let bare = Request::builder()
        .uri("/who/bare")
        .header("host", HOST)
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let refused = send_after_preface(loopback(proxied), b"", bare).await;
    assert!(
        refused.is_err(),
        "a connection without a PROXY header gets no answer: {refused:?}"
    );
    let plain = until(&stage, "GET", "/who/plain", HOST, &[], 200).await;
    assert_eq!(
        plain.echo().header("x-envoy-external-address"),
        Some("127.0.0.1"),
        "on the plain listener the client is the connection's peer"
    );
}

#[tokio::test]
async fn one_trusted_hop_takes_the_client_from_x_forwarded_for_and_believes_its_proto() {
    let stage = Stage::new().await;
    let (direct, https) = (free_port(), free_port());
    gateway(
        &stage,
        &[],
        json!({ "listeners": [
            { "name": "http", "port": stage.port, "protocol": "HTTP", "trustedHops": 1 },
            { "name": "direct", "port": direct, "protocol": "HTTP" },
            { "name": "https", "port": https, "protocol": "HTTPS" },
        ] }),
    )
    .await;
    let ca = Ca::new("legate test CA");
    put(&stage, tls_secret("shop-tls", &ca.server(&[HOST], 0xb100))).await;
    put(
        &stage,
        legate(
            "TLSContext",
            "shop",
            json!({ "hosts": [HOST], "secret": "shop-tls" }),
        ),
    )
    .await;
    stage
        .mapping(
            "shop",
            json!({ "hostname": HOST, "prefix": "/", "rewrite": "", "service": "quote" }),
        )
        .await;
    stage.condition("TLSContext", "shop", "Programmed", "True").await;

    // A load balancer that terminated TLS says so: routed, not redirected.
    let from_lb = [
        ("x-forwarded-for", "198.51.100.9"),
        ("x-forwarded-proto", "https"),
    ];
    let routed = until(&stage, "GET", "/cart", HOST, &from_lb, 200).await;
    assert_eq!(
        routed.echo().header("x-envoy-external-address"),
        Some("198.51.100.9"),
        "the client is the last address the trusted hop appended"
    );
    // A client's own entries before it are not believed.
    let spoofed = [
        ("x-forwarded-for", "192.0.2.66, 198.51.100.9"),
        ("x-forwarded-proto", "https"),
    ];
    let r = send(&stage, "GET", "/cart", HOST, &spoofed, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.echo().header("x-envoy-external-address"), Some("198.51.100.9"));
    // The load balancer's cleartext requests are still redirected.
    let cleartext = [("x-forwarded-for", "198.51.100.9"), ("x-forwarded-proto", "http")];
    let moved = send(&stage, "GET", "/cart", HOST, &cleartext, "").await;
    assert_eq!(moved.status, 301, "{}", moved.text());
    assert_eq!(
        moved.header("location"),
        Some(format!("https://{HOST}:{https}/cart").as_str())
    );

    // On a listener that trusts no hop, the same headers count for nothing.
    let url = format!("http://{}/cart", loopback(direct));
    let untrusted = eventually("the direct listener to answer", PATIENCE, || async {
        let mut request = Request::builder().uri(url.as_str()).header("host", HOST);
        for (name, value) in from_lb {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::new())).expect("a valid request");
        legate_tests::http::HttpClient::http1()
            .send(request)
            .await
            .ok()
            .filter(|r| r.status != 404 && r.status != 503)
    })
    .await;
    assert_eq!(
        untrusted.status,
        301,
        "X-Forwarded-Proto from an untrusted peer is replaced: {}",
        untrusted.text()
    );
}
