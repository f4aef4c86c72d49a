//! The HTTP filters of the edge, on a Gateway's `http`: response compression
//! (with a Mapping's opt-out), gRPC-Web, the request body limit (a Mapping
//! may lower it or lift it, never raise it), the `server` header and the
//! bodies of Envoy's own error answers.

use std::io::Read;

use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, attribute_context,
};
use legate_tests::TestHost;
use legate_tests::grpc_upstream::GrpcUpstream;
use legate_tests::http::Response;
use legate_tests::stage::Stage;
use legate_tests::upstreams::{Behaviour, Recorder};
use prost::Message;
use serde_json::{Value, json};

use super::{gateway, send, until};

const HOST: &str = "shop.example.com";

/// Re-applies the Gateway with `http` and waits until its Envoy runs it.
async fn gateway_with_http(stage: &Stage, http: Value) {
    gateway(stage, &[], json!({ "http": http })).await;
    stage.programmed_now("Gateway", "edge").await;
}

/// The body as the client reads it: decoded by its `content-encoding`.
fn decoded(r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    let body = &r.body[..];
    match r.header("content-encoding") {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap_or_else(|e| panic!("a gzip body: {e}"));
        }
        Some("br") => {
            brotli_decompressor::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap_or_else(|e| panic!("a brotli body: {e}"));
        }
        Some("zstd") => {
            ruzstd::decoding::StreamingDecoder::new(body)
                .unwrap_or_else(|e| panic!("a zstd frame: {e}"))
                .read_to_end(&mut out)
                .unwrap_or_else(|e| panic!("a zstd body: {e}"));
        }
        Some(other) => panic!("unexpected content-encoding {other}"),
    }
    out
}

#[tokio::test]
async fn responses_are_compressed_as_the_client_accepts_unless_the_mapping_opts_out() {
    let stage = Stage::new().await;
    gateway_with_http(
        &stage,
        json!({ "compression": { "algorithms": ["Gzip", "Brotli", "Zstd"], "minContentLength": 20 } }),
    )
    .await;
    stage
        .mapping(
            "packed",
            json!({ "hostname": HOST, "prefix": "/packed/", "service": "quote" }),
        )
        .await;
    stage
        .mapping(
            "events",
            json!({ "hostname": HOST, "prefix": "/events/", "service": "quote", "compression": false }),
        )
        .await;
    until(&stage, "GET", "/events/ready", HOST, &[], 200).await;
    until(&stage, "GET", "/packed/ready", HOST, &[], 200).await;

    for (accept, encoding) in [
        ("gzip", Some("gzip")),
        ("br", Some("br")),
        ("zstd", Some("zstd")),
        ("gzip, br, zstd", Some("gzip")),
        ("gzip;q=0.5, br;q=0.9", Some("br")),
        ("identity", None),
    ] {
        let r = send(
            &stage,
            "GET",
            "/packed/a",
            HOST,
            &[("accept-encoding", accept)],
            "",
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-encoding"),
            encoding,
            "Accept-Encoding: {accept}"
        );
        let echo: legate_tests::echo::EchoReply = serde_json::from_slice(&decoded(&r))
            .unwrap_or_else(|e| panic!("the decoded body is the echo's JSON ({accept}): {e}"));
        assert_eq!((echo.backend.as_str(), echo.path.as_str()), ("quote-1", "/a"));
    }
    let r = send(
        &stage,
        "GET",
        "/events/a",
        HOST,
        &[("accept-encoding", "gzip, br")],
        "",
    )
    .await;
    assert_eq!(
        r.header("content-encoding"),
        None,
        "compression: false leaves the Mapping's answers as they are"
    );
    assert_eq!(r.echo().path, "/a");
}

/// A gRPC-Web frame: a flag byte, the length, the message.
fn grpc_web_frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut frame = vec![flag];
    frame.extend(u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// The frames of a gRPC-Web body: (flag, payload).
fn grpc_web_frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let end = (5 + len).min(body.len());
        frames.push((body[0], body[5..end].to_vec()));
        body = &body[end..];
    }
    frames
}

#[tokio::test]
async fn grpc_web_requests_from_a_browser_reach_a_grpc_upstream() {
    let stage = Stage::new().await;
    let grpc_host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let listener = grpc_host.bind(8080).unwrap_or_else(|e| panic!("{e}"));
    let _grpc = GrpcUpstream::serve(listener, "grpc-1");
    Stage::service(&stage.env, "checker", &grpc_host.addr().to_string()).await;
    stage
        .mapping(
            "checker",
            json!({ "hostname": HOST, "prefix": "/envoy.service.auth.v3.Authorization/", "rewrite": "",
                    "grpc": true, "service": "checker" }),
        )
        .await;
    let check = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    path: "/orders/web".into(),
                    ..attribute_context::HttpRequest::default()
                }),
                ..attribute_context::Request::default()
            }),
            ..AttributeContext::default()
        }),
    };
    let call = || async {
        let request = hyper::Request::builder()
            .method("POST")
            .uri(stage.url("/envoy.service.auth.v3.Authorization/Check"))
            .header("host", HOST)
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(http_body_util::Full::new(bytes::Bytes::from(grpc_web_frame(
                0,
                &check.encode_to_vec(),
            ))))
            .expect("a valid request");
        legate_tests::http::HttpClient::http1().send(request).await
    };

    // Without gRPC-Web the call passes as it is (this upstream takes the
    // content type), but the status stays in HTTP trailers, which a
    // browser's fetch cannot read.
    stage.condition("Mapping", "checker", "Programmed", "True").await;
    let before = call().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        before.header("content-type"),
        Some("application/grpc"),
        "{before:?}"
    );
    assert!(
        !grpc_web_frames(&before.body)
            .iter()
            .any(|(flag, _)| flag & 0x80 != 0),
        "no trailer frame in the body without the gRPC-Web filter: {before:?}"
    );

    gateway_with_http(&stage, json!({ "grpcWeb": true })).await;
    let r = call().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/grpc-web+proto"));
    let frames = grpc_web_frames(&r.body);
    let (flag, message) = frames
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("a message frame: {r:?}"));
    assert_eq!(flag, 0);
    let answer = CheckResponse::decode(&message[..]).unwrap_or_else(|e| panic!("a CheckResponse: {e}"));
    assert_eq!(
        answer.status.map(|s| s.message),
        Some("grpc-1 checked /orders/web x-client=- x-gateway=-".to_string())
    );
    let trailers = frames
        .iter()
        .find(|(flag, _)| flag & 0x80 != 0)
        .map(|(_, t)| String::from_utf8_lossy(t).to_ascii_lowercase())
        .unwrap_or_else(|| panic!("a trailer frame: {frames:?}"));
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_a_mapping_may_lower_or_lift_the_limit_but_not_raise_it() {
    let stage = Stage::new().await;
    for (name, extra) in [
        ("capped", json!({})),
        ("lower", json!({ "maxRequestBodyBytes": 100 })),
        ("streamed", json!({ "maxRequestBodyBytes": 0 })),
        ("greedy", json!({ "maxRequestBodyBytes": 1_000_000 })),
    ] {
        let mut spec = json!({ "hostname": HOST, "prefix": format!("/{name}/"), "service": "quote" });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        stage.mapping(name, spec).await;
    }
    let small = "s".repeat(500);
    let large = "l".repeat(2000);
    let post = |path: &'static str, body: String| {
        let stage = &stage;
        async move { send(stage, "POST", path, HOST, &[], &body).await }
    };

    // No Gateway limit: a Mapping's own limit still holds (the disabled
    // buffer filter is enabled by its route).
    until(&stage, "GET", "/lower/ready", HOST, &[], 200).await;
    assert_eq!(post("/lower/a", small.clone()).await.status, 413);
    let r = post("/capped/a", large.clone()).await;
    assert_eq!((r.status.as_u16(), r.echo().body.len()), (200, 2000));

    gateway_with_http(
        &stage,
        json!({ "maxRequestBodyBytes": 1024, "serverName": "shop-edge" }),
    )
    .await;
    let r = post("/capped/a", large.clone()).await;
    assert_eq!(r.status, 413, "over the Gateway's limit: {}", r.text());
    assert_eq!(
        r.header("server"),
        Some("shop-edge"),
        "Envoy's own answers carry the name"
    );
    let r = post("/capped/b", small.clone()).await;
    assert_eq!((r.status.as_u16(), r.echo().body.len()), (200, 500));
    assert_eq!(r.header("server"), Some("shop-edge"), "and so do the upstream's");
    assert_eq!(
        post("/lower/a", small.clone()).await.status,
        413,
        "a Mapping may lower it"
    );
    let r = post("/streamed/a", large.clone()).await;
    assert_eq!(
        (r.status.as_u16(), r.echo().body.len()),
        (200, 2000),
        "0 lifts the limit: the body streams"
    );
    let r = post("/greedy/a", large.clone()).await;
    assert_eq!(r.status, 413, "a Mapping cannot raise the Gateway's limit");
    let accepted = stage.condition("Mapping", "greedy", "Accepted", "True").await;
    let message = accepted["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains("above the Gateway's http.maxRequestBodyBytes (1024): 1024 applies"),
        "{message}"
    );
}

#[tokio::test]
async fn envoys_own_errors_get_the_gateways_bodies_and_keep_their_status() {
    let stage = Stage::new().await;
    let failing_host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let _failing = Recorder::on(&failing_host, "failing-1", 8080, Behaviour::AlwaysFail)
        .unwrap_or_else(|e| panic!("{e}"));
    Stage::service(&stage.env, "failing", &failing_host.addr().to_string()).await;
    gateway_with_http(
        &stage,
        json!({ "errorResponses": [
            { "status": 404, "body": "<h1>Nothing here</h1>", "contentType": "text/html; charset=utf-8" },
            { "status": 503, "body": "{\"error\":\"unavailable\"}", "contentType": "application/json" },
            { "status": 429, "body": "slow down" },
            { "status": 403, "body": "not for you" },
        ] }),
    )
    .await;
    let bypass = json!({ "bypassAuth": true });
    for (name, spec) in [
        ("home", json!({ "prefix": "/home/", "service": "quote" })),
        ("gone", json!({ "prefix": "/gone/", "service": "nowhere" })),
        ("failing", json!({ "prefix": "/failing/", "service": "failing" })),
        (
            "limited",
            json!({ "prefix": "/limited/", "service": "quote", "localRateLimit": { "requests": 1, "per": "1m" } }),
        ),
    ] {
        let mut spec = spec;
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), bypass.as_object()) {
            spec.extend(extra.clone());
            spec.insert("hostname".into(), json!(HOST));
        }
        stage.mapping(name, spec).await;
        stage.condition("Mapping", name, "Programmed", "True").await;
    }
    let expect = |r: &Response, status: u16, content_type: &str, body: &str| {
        assert_eq!(
            (r.status.as_u16(), r.header("content-type"), r.text().as_str()),
            (status, Some(content_type), body),
            "{r:?}"
        );
    };

    let r = send(&stage, "GET", "/nowhere", HOST, &[], "").await;
    expect(&r, 404, "text/html; charset=utf-8", "<h1>Nothing here</h1>");
    let r = send(&stage, "GET", "/gone/x", HOST, &[], "").await;
    expect(&r, 503, "application/json", "{\"error\":\"unavailable\"}");
    assert_eq!(send(&stage, "GET", "/limited/1", HOST, &[], "").await.status, 200);
    let r = send(&stage, "GET", "/limited/2", HOST, &[], "").await;
    expect(&r, 429, "text/plain", "slow down");
    let r = send(&stage, "GET", "/failing/x", HOST, &[], "").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.echo().backend,
        "failing-1",
        "an upstream's own 503 passes untouched: {r:?}"
    );

    // A Gateway-wide AuthService whose Service is missing denies (its
    // statusOnError, 403) every route that does not bypass it.
    super::put(
        &stage,
        super::legate(
            "AuthService",
            "auth",
            json!({ "service": "nowhere:3000", "protocol": "HTTP" }),
        ),
    )
    .await;
    stage
        .mapping(
            "guarded",
            json!({ "hostname": HOST, "prefix": "/guarded/", "service": "quote" }),
        )
        .await;
    stage.condition("Mapping", "guarded", "Programmed", "True").await;
    let r = until(&stage, "GET", "/guarded/x", HOST, &[], 403).await;
    expect(&r, 403, "text/plain", "not for you");
    let r = send(&stage, "GET", "/home/x", HOST, &[], "").await;
    assert_eq!((r.status.as_u16(), r.echo().path.as_str()), (200, "/x"));
}
