//! Gateway features against the real Envoy, in both ADS protocols: HTTPS with
//! certificates over SDS, TCP routes, external authorization, and the route
//! options of the IR, each seen from the client and the upstream.

use std::time::Duration;

use legate_tests::EchoServer;
use legate_tests::net::{eventually, free_port, loopback};
use legate_xds::ir::{self, ObjectRef, RouteId};
use legate_xds::sample;
use legate_xds::server::Protocol;
use legate_xds::translate::Change;

use crate::xds_rig::*;

in_both_protocols!(
    an_https_listener_gets_its_certificate_over_sds,
    a_tcp_route_proxies_a_port_to_its_upstream,
    external_authorization_guards_routes_unless_they_bypass_it,
    route_features_behave_as_translated,
    upstream_options_reach_envoy,
    websockets_pass_only_on_routes_that_allow_them,
);

async fn a_tcp_route_proxies_a_port_to_its_upstream(protocol: Protocol) {
    let echo = EchoServer::start("echo-tcp").await;
    let tcp_port = free_port();
    let rig = Rig::start(protocol, |_| {
        let mut tcp = sample::listener("tcp", tcp_port);
        tcp.protocol = ir::ListenerProtocol::Tcp;
        let origin = ObjectRef::new("TCPMapping", "default", "raw", 1);
        let mut c = upstream_at("default/echo-tcp:80", echo.addr());
        c.extend([
            Change::UpsertListener(tcp),
            Change::UpsertTcpRoute(ir::TcpRoute {
                id: RouteId::of(&origin),
                origin,
                co_origins: vec![],
                listener: "tcp".into(),
                sni: vec![],
                upstreams: vec![ir::WeightedUpstream {
                    upstream: "default/echo-tcp:80".into(),
                    weight: 100,
                }],
                idle_timeout: None,
                tls: None,
            }),
        ]);
        c
    })
    .await;
    // HTTP bytes pass through the TCP proxy untouched: the echo server sees
    // the request as the client sent it.
    let r = eventually("the TCP listener answers", CONVERGE, || async {
        rig.client
            .get(
                &format!("http://{}/raw/path", loopback(tcp_port)),
                Some("anything.example"),
            )
            .await
            .ok()
    })
    .await;
    assert_eq!(r.status, 200);
    let reply = r.echo();
    assert_eq!(reply.backend, "echo-tcp");
    assert_eq!(reply.path, "/raw/path");
    assert!(
        reply.header("x-request-id").is_none(),
        "no HTTP processing in Envoy"
    );
}

/// The echo server plays the authorization service: it allows (200) unless
/// the request asks it to answer 403, and Envoy then returns its answer.
async fn external_authorization_guards_routes_unless_they_bypass_it(protocol: Protocol) {
    let app = EchoServer::start("app").await;
    let auth = EchoServer::start("auth").await;
    let mut rig = Rig::start(protocol, |_| {
        let mut c = upstream_at("default/app:80", app.addr());
        c.extend(upstream_at("default/auth:80", auth.addr()));
        c.push(Change::UpsertRoute(sample::route(
            "guarded",
            "shop.example.com",
            "/orders/",
            "default/app:80",
        )));
        let mut open = sample::route("public", "shop.example.com", "/public/", "default/app:80");
        open.policy.bypass_auth = true;
        c.push(Change::UpsertRoute(open));
        c.push(Change::SetAuth(Some(ir::AuthService {
            origin: ObjectRef::new("AuthService", "default", "auth", 1),
            upstream: "default/auth:80".into(),
            protocol: ir::AuthProtocol::Http {
                path_prefix: "/check".into(),
                allowed_request_headers: vec!["x-echo-status".into()],
                allowed_authorization_headers: vec![],
            },
            timeout: Duration::from_secs(2),
            failure_mode_allow: false,
            status_on_error: 403,
            include_body: None,
        })));
        c
    })
    .await;
    let deny = [("x-echo-status", "403")];

    let allowed = rig
        .get("shop.example.com", "/orders/1")
        .await
        .expect("a response");
    assert_eq!(allowed.status, 200, "{}", rig.envoy.log_tail());
    assert_eq!(allowed.echo().backend, "app");

    let denied = rig
        .get_with("shop.example.com", "/orders/1", &deny)
        .await
        .expect("a response");
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.echo().backend,
        "auth",
        "the authorization service answered"
    );
    assert_eq!(denied.echo().path, "/check/orders/1");

    // The bypassing route reaches the app, which honours the header itself.
    let bypassed = rig
        .get_with("shop.example.com", "/public/1", &deny)
        .await
        .expect("a response");
    assert_eq!(bypassed.status, 403);
    assert_eq!(bypassed.echo().backend, "app", "no authorization on this route");

    // Removing the AuthService opens the guarded route too.
    rig.change(vec![Change::SetAuth(None)]);
    eventually("the guarded route without authorization", CONVERGE, || async {
        let r = rig.get_with("shop.example.com", "/orders/1", &deny).await.ok()?;
        (r.echo().backend == "app").then_some(())
    })
    .await;
    assert_eq!(rig.rejections().await, 0);
}

/// Each route feature the translation covers in golden files, seen through
/// Envoy: what the upstream receives and what the client gets.
async fn route_features_behave_as_translated(protocol: Protocol) {
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let host = "shop.example.com";
    let route = |name: &str, prefix: &str| sample::route(name, host, prefix, "default/a:80");
    let mut routes = Vec::new();
    let mut r = route("rewrite", "/rewrite/");
    forward(&mut r).prefix_rewrite = Some("/".into());
    routes.push(r);
    let mut r = route("regex-rewrite", "/v1/");
    forward(&mut r).regex_rewrite = Some(ir::RegexRewrite {
        pattern: "^/v1/(.*)$".into(),
        substitution: "/api/\\1".into(),
    });
    routes.push(r);
    let mut r = route("redirect", "/old");
    r.action = ir::RouteAction::Redirect(ir::Redirect {
        path: Some(ir::RedirectPath::Replace("/new".into())),
        https: true,
        status: 308,
        ..ir::Redirect::default()
    });
    routes.push(r);
    let mut r = route("direct", "/maintenance");
    r.action = ir::RouteAction::DirectResponse {
        status: 503,
        body: Some("back soon".into()),
    };
    routes.push(r);
    let mut r = route("headers", "/headers/");
    r.policy.request_headers_to_add = vec![ir::HeaderValue {
        name: "x-gateway".into(),
        value: "legate".into(),
        append: false,
    }];
    r.policy.request_headers_to_remove = vec!["x-secret".into()];
    r.policy.response_headers_to_add = vec![ir::HeaderValue {
        name: "x-served-by".into(),
        value: "legate".into(),
        append: false,
    }];
    routes.push(r);
    let mut r = route("exact", "/");
    r.matcher.path = ir::PathMatch::Exact("/exact".into());
    routes.push(r);
    let mut r = route("regex", "/");
    r.matcher.path = ir::PathMatch::Regex("/orders/[0-9]+".into());
    routes.push(r);
    // The canary route wins over the plain one by its header matcher.
    let mut r = sample::route("canary", host, "/shop/", "default/b:80");
    r.matcher.headers = vec![ir::HeaderMatch {
        name: "x-canary".into(),
        value: ir::ValueMatch::Exact("1".into()),
        invert: false,
    }];
    routes.push(r);
    routes.push(route("shop", "/shop/"));
    let mut r = route("split", "/split/");
    forward(&mut r).upstreams = vec![
        ir::WeightedUpstream {
            upstream: "default/a:80".into(),
            weight: 50,
        },
        ir::WeightedUpstream {
            upstream: "default/b:80".into(),
            weight: 50,
        },
    ];
    routes.push(r);
    let mut r = route("cors", "/cors/");
    r.policy.cors = Some(ir::Cors {
        allow_origins: vec!["https://app.example.com".into()],
        allow_methods: vec!["GET".into()],
        ..ir::Cors::default()
    });
    routes.push(r);

    let rig = Rig::start(protocol, |_| {
        let mut c = upstream_at("default/a:80", a.addr());
        c.extend(upstream_at("default/b:80", b.addr()));
        c.extend(routes.into_iter().map(Change::UpsertRoute));
        c
    })
    .await;
    let get = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let rig = &rig;
        async move { rig.get_with(host, path, headers).await.expect("a response") }
    };

    assert_eq!(get("/rewrite/x", &[]).await.echo().path, "/x");
    assert_eq!(get("/v1/users", &[]).await.echo().path, "/api/users");
    let r = get("/old", &[]).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("https://shop.example.com/new"));
    let r = get("/maintenance", &[]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (503, "back soon"));
    let r = get("/headers/x", &[("x-secret", "s3cr3t")]).await;
    assert_eq!(r.header("x-served-by"), Some("legate"));
    let seen = r.echo();
    assert_eq!(seen.header("x-gateway"), Some("legate"));
    assert_eq!(seen.header("x-secret"), None);
    assert_eq!(get("/exact", &[]).await.status, 200);
    assert_eq!(get("/exact/more", &[]).await.status, 404);
    assert_eq!(get("/orders/42", &[]).await.status, 200);
    assert_eq!(get("/orders/abc", &[]).await.status, 404);
    assert_eq!(get("/shop/cart", &[("x-canary", "1")]).await.echo().backend, "b");
    assert_eq!(get("/shop/cart", &[]).await.echo().backend, "a");
    let mut backends = std::collections::BTreeSet::new();
    for _ in 0..60 {
        backends.insert(get("/split/x", &[]).await.echo().backend);
    }
    assert_eq!(
        backends.into_iter().collect::<Vec<_>>(),
        ["a", "b"],
        "a 50/50 split reaches both"
    );
    let r = get("/cors/x", &[("origin", "https://app.example.com")]).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let r = get("/cors/x", &[("origin", "https://evil.example.com")]).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(rig.rejections().await, 0);
}

/// A throwaway self-signed certificate for `shop.example.com`, for tests only
/// (made with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
/// -nodes -days 36500 -subj /CN=shop.example.com`).
const TEST_ONLY_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBqTCCAVCgAwIBAgIUF0mW/6nV4dWj6Dr1vx4zrR6sp9cwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQc2hvcC5leGFtcGxlLmNvbTAgFw0yNjExMjcwNzIzMjZaGA8y
MTI2MTEwMzA3MjMyNlowGzEZMBcGA1UEAwwQc2hvcC5leGFtcGxlLmNvbTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABIruqysAZMwrCLLrLv16NBlj7e2p/J9A3d16
v5kLaHB5LV5LkFoDXPc8BCM8FArIxNlysFNc+3oQDx+7L/Pxt4ujcDBuMB0GA1Ud
DgQWBBRG33D3/ReTLu+wudG5WeiqWjaP0TAfBgNVHSMEGDAWgBRG33D3/ReTLu+w
udG5WeiqWjaP0TAPBgNVHRMBAf8EBTADAQH/MBsGA1UdEQQUMBKCEHNob3AuZXhh
bXBsZS5jb20wCgYIKoZIzj0EAwIDRwAwRAIgE87b36KVgelhi23QUnJuxLTCwr2a
0MBV7awbNfbhqUMCICqFHwcTGsN+XeVs4jBpIW7x14nIk8GSaoVVRT6RDlT4
-----END CERTIFICATE-----
";
/// The same key, certified again (a rotation).
const TEST_ONLY_CERT_ROTATED: &str = "-----BEGIN CERTIFICATE-----
MIIBqzCCAVCgAwIBAgIUBrHCmQz6nPwu1bXmm8CN1SOHNfgwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQc2hvcC5leGFtcGxlLmNvbTAgFw0yNjExMjcwNzMwNTlaGA8y
MTI2MTEwMzA3MzA1OVowGzEZMBcGA1UEAwwQc2hvcC5leGFtcGxlLmNvbTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABIruqysAZMwrCLLrLv16NBlj7e2p/J9A3d16
v5kLaHB5LV5LkFoDXPc8BCM8FArIxNlysFNc+3oQDx+7L/Pxt4ujcDBuMB0GA1Ud
DgQWBBRG33D3/ReTLu+wudG5WeiqWjaP0TAfBgNVHSMEGDAWgBRG33D3/ReTLu+w
udG5WeiqWjaP0TAPBgNVHRMBAf8EBTADAQH/MBsGA1UdEQQUMBKCEHNob3AuZXhh
bXBsZS5jb20wCgYIKoZIzj0EAwIDSQAwRgIhAOE532P9gheoYs3wGo9XPKzl67mS
rnjVgEpO+vKz6F5KAiEA0E1DVoGq/g/CPtTr/6lgHgckauh1ivBG3efCinwpcT0=
-----END CERTIFICATE-----
";
const TEST_ONLY_CERT_ROTATED_SERIAL: &str = "06b1c2990cfa9cfc2ed5b5e69bc08dd5238735f8";
const TEST_ONLY_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnXGekuHVhNqE9cey
+zcdDRJ+JOVDRM7QSoxKqxtjMQWhRANCAASK7qsrAGTMKwiy6y79ejQZY+3tqfyf
QN3der+ZC2hweS1eS5BaA1z3PAQjPBQKyMTZcrBTXPt6EA8fuy/z8beL
-----END PRIVATE KEY-----
";

async fn an_https_listener_gets_its_certificate_over_sds(protocol: Protocol) {
    let echo = EchoServer::start("echo").await;
    let https_port = free_port();
    let tls_context = ObjectRef::new("TLSContext", "default", "shop-tls", 1);
    let secret = |pem: &str| ir::Secret {
        name: "default/shop-cert".into(),
        origin: tls_context.clone(),
        material: ir::SecretMaterial::Certificate {
            chain_pem: pem.to_owned(),
            key_pem: TEST_ONLY_KEY.to_owned(),
        },
    };
    let mut rig = Rig::start(protocol, |_| {
        let mut https = sample::listener("https", https_port);
        https.protocol = ir::ListenerProtocol::Https;
        https.tls = vec![ir::ServerTls {
            origin: tls_context.clone(),
            hostnames: vec!["shop.example.com".into()],
            certificate: "default/shop-cert".into(),
            client_ca: None,
            require_client_certificate: false,
            alpn: vec!["h2".into(), "http/1.1".into()],
            cipher_suites: vec![],
            min_version: Some(ir::TlsVersion::V1_2),
            max_version: None,
        }];
        let mut route = sample::route("shop", "shop.example.com", "/", "default/echo:80");
        route.listener = "https".into();
        let mut c = upstream_at("default/echo:80", echo.addr());
        c.extend([
            Change::UpsertSecret(secret(TEST_ONLY_CERT)),
            Change::UpsertListener(https),
            Change::UpsertRoute(route),
        ]);
        c
    })
    .await;
    // The listener is active only once its certificate arrived over SDS.
    let certs = eventually("the certificate is served", CONVERGE, || async {
        let certs = rig.envoy.admin_get("/certs").await;
        certs.contains("shop.example.com").then_some(certs)
    })
    .await;
    assert!(
        certs.contains("default/shop-cert") || certs.contains("shop.example.com"),
        "{certs}"
    );
    let listeners = rig.envoy.admin_get("/listeners").await;
    assert!(
        listeners.contains(&format!("https::127.0.0.1:{https_port}")),
        "{listeners}"
    );

    // A rotation goes over SDS alone: the listener is neither updated nor drained.
    let lds_updates = rig.stat("listener_manager.lds.update_success").await;
    rig.change(vec![Change::UpsertSecret(secret(TEST_ONLY_CERT_ROTATED))]);
    eventually("the rotated certificate is served", CONVERGE, || async {
        let certs = rig.envoy.admin_get("/certs").await.to_ascii_lowercase();
        certs.contains(TEST_ONLY_CERT_ROTATED_SERIAL).then_some(())
    })
    .await;
    assert_eq!(rig.stat("listener_manager.lds.update_success").await, lds_updates);
    assert_eq!(rig.stat("listener_manager.listener_modified").await, 0);

    // A certificate Envoy cannot parse is refused and blamed on the TLSContext.
    rig.change(vec![Change::UpsertSecret(secret(
        "-----BEGIN CERTIFICATE-----\nnot a certificate\n",
    ))]);
    let rejection = rig.next_rejection().await;
    eprintln!("Envoy refused the secret: {:?}", rejection.message);
    assert_eq!(rejection.kind, legate_xds::resource::ResourceType::Secret);
    assert_eq!(rejection.objects, [tls_context]);
}

/// HTTP/2 towards the upstream (as gRPC needs), a load-balancing policy and
/// circuit breakers: Envoy accepts them, and speaks HTTP/2 to the upstream.
async fn upstream_options_reach_envoy(protocol: Protocol) {
    let echo = EchoServer::start("h2").await;
    let rig = Rig::start(protocol, |_| {
        let mut upstream = sample::upstream("default/h2:80");
        upstream.protocol = ir::UpstreamProtocol::Http2;
        upstream.load_balancing = ir::LoadBalancing::LeastRequest;
        upstream.circuit_breakers = Some(ir::CircuitBreakers {
            max_connections: Some(10),
            max_pending_requests: Some(10),
            max_requests: Some(100),
            max_retries: Some(3),
        });
        let mut route = sample::route("grpc", "api.example.com", "/", "default/h2:80");
        route.policy.timeout = Some(Duration::from_secs(5));
        route.policy.retries = Some(ir::RetryPolicy {
            retry_on: vec!["5xx".into()],
            num_retries: 2,
            per_try_timeout: Some(Duration::from_secs(1)),
        });
        vec![
            Change::UpsertUpstream(upstream),
            sample::endpoints("default/h2:80", &[echo.addr()]),
            Change::UpsertRoute(route),
        ]
    })
    .await;
    let r = rig
        .get("api.example.com", "/svc/Method")
        .await
        .expect("a response");
    assert_eq!(r.status, 200, "{}", rig.envoy.log_tail());
    let reply = r.echo();
    assert_eq!(reply.backend, "h2");
    assert_eq!(reply.version, "HTTP/2.0", "Envoy spoke HTTP/2 to the upstream");
    // A 503 from the upstream is retried twice: three attempts in all.
    let r = rig
        .get_with("api.example.com", "/flaky", &[("x-echo-status", "503")])
        .await
        .expect("a response");
    assert_eq!(r.status, 503);
    // (Envoy writes the cluster's `:` as `_` in stat names.)
    assert_eq!(rig.stat("cluster.default/h2_80.upstream_rq_retry").await, 2);
    assert_eq!(rig.rejections().await, 0);
}

async fn websockets_pass_only_on_routes_that_allow_them(protocol: Protocol) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let echo = EchoServer::start("ws").await;
    let rig = Rig::start(protocol, |_| {
        let mut chat = sample::route("chat", "*", "/chat", "default/ws:80");
        forward(&mut chat).upgrades = vec!["websocket".into()];
        let mut c = upstream_at("default/ws:80", echo.addr());
        c.push(Change::UpsertRoute(chat));
        c.push(Change::UpsertRoute(sample::route(
            "plain",
            "*",
            "/plain",
            "default/ws:80",
        )));
        c
    })
    .await;
    let url = |path: &str| format!("ws://{}{path}", loopback(rig.http_port));
    let (mut ws, _) = tokio_tungstenite::connect_async(url("/chat"))
        .await
        .expect("the upgrade passes on a route that allows it");
    ws.send(Message::text("ping")).await.expect("send");
    let reply = ws.next().await.expect("a reply").expect("a message");
    assert_eq!(reply, Message::text("ping"));
    let refused = tokio_tungstenite::connect_async(url("/plain")).await;
    assert!(refused.is_err(), "no upgrade on a route that does not allow it");
}
