//! WebSockets and gRPC through the Gateway.

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};
use futures::{SinkExt, StreamExt};
use legate_tests::grpc_upstream::GrpcUpstream;
use legate_tests::stage::Stage;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{SHOP, apply_programmed, service};

#[tokio::test]
async fn allow_upgrade_websocket_carries_a_websocket_end_to_end() {
    let stage = Stage::new().await;
    apply_programmed(
        &stage,
        &[
            (
                "chat",
                json!({ "prefix": "/chat/", "service": "quote", "allowUpgrade": ["websocket"] }),
            ),
            ("plain", json!({ "prefix": "/plain/", "service": "quote" })),
        ],
    )
    .await;

    let request = |path: &str| {
        let mut request = format!("ws://127.0.0.1:{}{path}", stage.port)
            .into_client_request()
            .expect("a WebSocket request");
        request
            .headers_mut()
            .insert("host", SHOP.parse().expect("a header value"));
        request
    };
    let (mut ws, response) = tokio_tungstenite::connect_async(request("/chat/room-1"))
        .await
        .expect("the upgrade passes on a route that allows it");
    assert_eq!(response.status(), 101);
    assert_eq!(
        response
            .headers()
            .get("x-echo-backend")
            .and_then(|v| v.to_str().ok()),
        Some("quote-1")
    );
    for text in ["hello", "second message"] {
        ws.send(Message::text(text)).await.expect("send");
        let reply = ws.next().await.expect("a reply").expect("a message");
        assert_eq!(reply, Message::text(text));
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send");
    let reply = ws.next().await.expect("a reply").expect("a message");
    assert_eq!(reply, Message::binary(vec![0u8, 1, 2, 255]));
    ws.close(None).await.expect("close");

    match tokio_tungstenite::connect_async(request("/plain/room-1")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(
                response.status(),
                403,
                "Envoy refuses an upgrade the route does not allow"
            );
        }
        other => panic!("expected Envoy to refuse the upgrade, got {other:?}"),
    }
}

fn check(path: &str) -> tonic::Request<CheckRequest> {
    let mut request = tonic::Request::new(CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    path: path.to_string(),
                    ..attribute_context::HttpRequest::default()
                }),
                ..attribute_context::Request::default()
            }),
            ..AttributeContext::default()
        }),
    });
    request
        .metadata_mut()
        .insert("x-client", "routing-test".parse().expect("metadata"));
    request
}

#[tokio::test]
async fn grpc_true_speaks_http2_to_the_upstream_and_a_grpc_call_succeeds() {
    let stage = Stage::new().await;
    let listener = stage.host.bind(50051).unwrap_or_else(|e| panic!("{e}"));
    let _grpc = GrpcUpstream::serve(listener, "grpc-1");
    service(&stage.env, "checker", &[&stage.host.addr().to_string()], 50051).await;
    apply_programmed(
        &stage,
        &[
            (
                "checker",
                json!({
                    "hostname": "grpc.example.com",
                    "prefix": "/envoy.service.auth.v3.Authorization/",
                    "rewrite": "",
                    "grpc": true,
                    "service": "checker",
                    "addRequestHeaders": { "x-gateway": { "value": "legate" } },
                }),
            ),
            (
                "checker-http1",
                json!({
                    "hostname": "http1.example.com",
                    "prefix": "/envoy.service.auth.v3.Authorization/",
                    "rewrite": "",
                    "service": "checker",
                }),
            ),
        ],
    )
    .await;

    // The client speaks h2c to Envoy with `:authority` grpc.example.com.
    let channel = |authority: &str| {
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", stage.port))
            .expect("an endpoint")
            .origin(format!("http://{authority}").parse().expect("an origin"))
            .connect_lazy()
    };
    let mut client = AuthorizationClient::new(channel("grpc.example.com"));
    let response = client
        .check(check("/orders/7"))
        .await
        .unwrap_or_else(|status| panic!("the gRPC call through the Gateway fails: {status:?}"));
    let status = response.get_ref().status.clone().expect("a status");
    assert_eq!(status.code, 0);
    assert_eq!(
        status.message,
        "grpc-1 checked /orders/7 x-client=routing-test x-gateway=legate"
    );

    // Without grpc: true, Envoy speaks HTTP/1.1 to the upstream, which only
    // speaks HTTP/2: the call fails.
    let mut client = AuthorizationClient::new(channel("http1.example.com"));
    let failed = client.check(check("/orders/8")).await;
    let code = failed.as_ref().err().map(tonic::Status::code);
    assert!(
        code == Some(tonic::Code::Unavailable) || code == Some(tonic::Code::Internal),
        "an HTTP/1.1 upstream connection to a gRPC server cannot work: {failed:?}"
    );
}
