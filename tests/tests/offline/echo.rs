//! The echo upstream does what the tests rely on: it reports the request and
//! answers with the status and headers it is asked for, over HTTP/1.1 and h2c.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use legate_tests::EchoServer;
use legate_tests::http::HttpClient;

#[tokio::test]
async fn echo_reports_method_path_query_host_and_headers() {
    let echo = EchoServer::start("backend-1").await;
    let request = Request::post(format!("{}/api/items?limit=5", echo.url()))
        .header("host", "api.example.com")
        .header("x-team", "payments")
        .body(Full::new(Bytes::from_static(b"{\"n\":1}")))
        .expect("a valid request");
    let response = HttpClient::http1().send(request).await.expect("echo answers");
    let reply = response.echo();
    assert_eq!(reply.backend, "backend-1");
    assert_eq!(reply.method, "POST");
    assert_eq!(reply.path, "/api/items");
    assert_eq!(reply.query, "limit=5");
    assert_eq!(reply.host, "api.example.com");
    assert_eq!(reply.version, "HTTP/1.1");
    assert_eq!(reply.header("x-team"), Some("payments"));
    assert_eq!(reply.body, "{\"n\":1}");
    assert_eq!(response.header("x-echo-backend"), Some("backend-1"));
}

#[tokio::test]
async fn echo_returns_the_requested_status_and_headers() {
    let echo = EchoServer::start("backend-2").await;
    let request = Request::get(format!("{}/fail", echo.url()))
        .header("x-echo-status", "503")
        .header("x-echo-response-header", "retry-after=7")
        .header("x-echo-response-header", "x-extra=yes")
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let response = HttpClient::http1().send(request).await.expect("echo answers");
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("7"));
    assert_eq!(response.header("x-extra"), Some("yes"));
}

#[tokio::test]
async fn echo_speaks_http2_with_prior_knowledge() {
    let echo = EchoServer::start("grpc-ish").await;
    let response = HttpClient::h2c()
        .get(&format!("{}/svc.Method", echo.url()), None)
        .await
        .expect("echo answers h2c");
    let reply = response.echo();
    assert_eq!(reply.version, "HTTP/2.0");
    assert_eq!(reply.host, echo.addr().to_string());
}
