//! TLSContext: certificates over SDS, rotation, SNI, versions, ALPN, client
//! certificates, and broken Secrets.

use std::time::{Duration, Instant};

use legate_tests::net::eventually;
use legate_tests::peers::tls_client::{KeptConnection, TlsOptions, Versions, https_get};
use legate_tests::pki::{Ca, ca_secret, tls_secret};
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::json;

use super::{Extra, config_dump, gateway, https_until, legate, listener_on, plain_route, put, until};

/// A stage with an HTTPS listener and a route for `hosts` (each `host` → quote).
async fn https_stage(hosts: &[&str]) -> (Stage, Extra) {
    let stage = Stage::new().await;
    let https = Extra::new("https", "HTTPS");
    gateway(&stage, &[&https], json!({})).await;
    for host in hosts {
        let name = host.split('.').next().unwrap_or("host");
        stage
            .mapping(
                name,
                json!({ "hostname": host, "prefix": "/", "rewrite": "", "service": "quote" }),
            )
            .await;
    }
    (stage, https)
}

#[tokio::test]
async fn a_tls_context_serves_its_certificate_from_sds() {
    let (stage, https) = https_stage(&["shop.example.com"]).await;
    let ca = Ca::new("legate test CA");
    let cert = ca.server(&["shop.example.com"], 0x1001);
    put(&stage, tls_secret("shop-tls", &cert)).await;
    put(
        &stage,
        legate(
            "TLSContext",
            "shop",
            json!({ "hosts": ["shop.example.com"], "secret": "shop-tls" }),
        ),
    )
    .await;
    let options = TlsOptions::trusting(&ca.cert_pem);
    let answer = https_until(https.addr(), "shop.example.com", &options, "/cart/42", 200).await;
    assert_eq!(
        answer.handshake.cert,
        cert.info(),
        "the Secret's certificate is served"
    );
    assert_eq!(answer.handshake.cert.common_name, "shop.example.com");
    assert_eq!(answer.handshake.cert.serial, "1001");
    let echo = answer.response.echo();
    assert_eq!(echo.path, "/cart/42");
    assert_eq!(echo.host, "shop.example.com");
    assert_eq!(echo.header("x-forwarded-proto"), Some("https"));

    for type_ in ["Accepted", "ResolvedRefs", "Programmed"] {
        stage.condition("TLSContext", "shop", type_, "True").await;
    }
    // The listener names an SDS secret; the key material is not in it.
    let dump = config_dump(&stage).await;
    let listener = listener_on(&dump, https.port).expect("Envoy has the HTTPS listener");
    let text = listener.to_string();
    let secret_name = format!("{}/shop-tls", stage.env.namespace);
    assert!(
        text.contains("tls_certificate_sds_secret_configs") && text.contains(&secret_name),
        "the listener refers to SDS secret {secret_name}: {text}"
    );
    assert!(
        !text.contains("BEGIN") && !text.contains("inline_string") && !text.contains("certificate_chain"),
        "no certificate or key is inlined in the listener: {text}"
    );
    let secrets: Vec<String> = dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["dynamic_active_secrets"].as_array())
        .flatten()
        .filter_map(|s| s["name"].as_str().map(str::to_string))
        .collect();
    assert!(
        secrets.contains(&secret_name),
        "SDS delivered {secret_name}: {secrets:?}"
    );
}

#[tokio::test]
async fn rotating_the_secret_serves_the_new_certificate_without_a_failed_request() {
    let (stage, https) = https_stage(&["shop.example.com"]).await;
    let ca = Ca::new("legate test CA");
    let old = ca.server(&["shop.example.com"], 0x2001);
    let new = ca.server(&["shop.example.com"], 0x2002);
    put(&stage, tls_secret("shop-tls", &old)).await;
    put(
        &stage,
        legate(
            "TLSContext",
            "shop",
            json!({ "hosts": ["shop.example.com"], "secret": "shop-tls" }),
        ),
    )
    .await;
    let options = TlsOptions::trusting(&ca.cert_pem);
    https_until(https.addr(), "shop.example.com", &options, "/", 200).await;
    stage.condition("TLSContext", "shop", "Programmed", "True").await;
    let mut kept = KeptConnection::open(https.addr(), "shop.example.com", &options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kept.handshake.cert, old.info());
    let listener_updates = stage.envoy.stat("listener_manager.lds.update_success").await;

    // A client making a new TLS connection per request, all through the rotation.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping = {
        let stop = stop.clone();
        let options = options.clone();
        let addr = https.addr();
        let new_serial = new.serial.clone();
        tokio::spawn(async move {
            let (mut sent, mut failures, mut first_new) = (0u64, Vec::new(), None);
            let started = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sent += 1;
                match https_get(addr, "shop.example.com", &options, "/loop").await {
                    Ok(a) if a.response.status == 200 => {
                        if a.handshake.cert.serial == new_serial && first_new.is_none() {
                            first_new = Some(started.elapsed());
                        }
                    }
                    Ok(a) => failures.push(format!("status {}", a.response.status)),
                    Err(e) => failures.push(e),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (sent, failures, first_new, started)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rotated = Instant::now();
    put(&stage, tls_secret("shop-tls", &new)).await;
    let took = eventually(
        "a new connection to see the new certificate",
        PATIENCE,
        || async {
            let a = https_get(https.addr(), "shop.example.com", &options, "/")
                .await
                .ok()?;
            (a.handshake.cert == new.info()).then(|| rotated.elapsed())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, failures, _, _) = looping.await.expect("the client loop does not panic");
    eprintln!(
        "Secret update → new certificate served: {} ms ({sent} requests on new connections, {} failed)",
        took.as_millis(),
        failures.len()
    );
    assert!(
        took < Duration::from_secs(10),
        "the new certificate took {took:?}"
    );
    assert!(
        failures.is_empty(),
        "requests failed during the rotation: {failures:?}"
    );
    assert!(sent > 5, "the client kept sending ({sent} requests)");
    let again = kept
        .get("/after-rotation")
        .await
        .unwrap_or_else(|e| panic!("the connection opened before the rotation was dropped: {e}"));
    assert_eq!(again.status, 200);
    assert_eq!(again.echo().path, "/after-rotation");
    assert_eq!(
        stage.envoy.stat("listener_manager.lds.update_success").await,
        listener_updates,
        "a rotation is an SDS update, not a listener update (which would drain connections)"
    );
    assert_eq!(
        stage
            .envoy
            .stat("listener_manager.total_listeners_draining")
            .await,
        Some(0)
    );
}

#[tokio::test]
async fn sni_chooses_among_tls_contexts_on_one_listener() {
    let (stage, https) = https_stage(&["shop.example.com", "blog.example.com"]).await;
    let ca = Ca::new("legate test CA");
    let shop = ca.server(&["shop.example.com"], 0x3001);
    let blog = ca.server(&["blog.example.com"], 0x3002);
    put(&stage, tls_secret("shop-tls", &shop)).await;
    put(&stage, tls_secret("blog-tls", &blog)).await;
    put(
        &stage,
        legate(
            "TLSContext",
            "shop",
            json!({ "hosts": ["shop.example.com"], "secret": "shop-tls" }),
        ),
    )
    .await;
    put(
        &stage,
        legate(
            "TLSContext",
            "blog",
            json!({ "hosts": ["blog.example.com"], "secret": "blog-tls" }),
        ),
    )
    .await;
    let options = TlsOptions::trusting(&ca.cert_pem);
    let a = https_until(https.addr(), "shop.example.com", &options, "/s", 200).await;
    let b = https_until(https.addr(), "blog.example.com", &options, "/b", 200).await;
    assert_eq!(a.handshake.cert, shop.info());
    assert_eq!(b.handshake.cert, blog.info());
    assert_eq!(a.response.echo().host, "shop.example.com");
    assert_eq!(b.response.echo().host, "blog.example.com");
    assert_eq!(b.response.echo().path, "/b");
}

#[tokio::test]
async fn tls_versions_outside_min_and_max_are_refused() {
    let (stage, https) = https_stage(&["modern.example.com", "legacy.example.com"]).await;
    let ca = Ca::new("legate test CA");
    let modern = ca.server(&["modern.example.com"], 0x4001);
    let legacy = ca.server(&["legacy.example.com"], 0x4002);
    put(&stage, tls_secret("modern-tls", &modern)).await;
    put(&stage, tls_secret("legacy-tls", &legacy)).await;
    put(
        &stage,
        legate(
            "TLSContext",
            "modern",
            json!({ "hosts": ["modern.example.com"], "secret": "modern-tls", "minTlsVersion": "v1.3" }),
        ),
    )
    .await;
    put(
        &stage,
        legate(
            "TLSContext",
            "legacy",
            json!({ "hosts": ["legacy.example.com"], "secret": "legacy-tls", "maxTlsVersion": "v1.2" }),
        ),
    )
    .await;
    let any = TlsOptions::trusting(&ca.cert_pem);
    let tls12 = TlsOptions {
        versions: Versions::Only12,
        ..any.clone()
    };
    let tls13 = TlsOptions {
        versions: Versions::Only13,
        ..any.clone()
    };
    let ok = https_until(https.addr(), "modern.example.com", &tls13, "/", 200).await;
    assert_eq!(ok.handshake.version, "TLSv1_3");
    assert_eq!(ok.handshake.cert, modern.info());
    let refused = https_get(https.addr(), "modern.example.com", &tls12, "/").await;
    assert!(
        refused.is_err(),
        "a TLS 1.2 client is refused when the minimum is 1.3: {refused:?}"
    );

    let ok = https_until(https.addr(), "legacy.example.com", &any, "/", 200).await;
    assert_eq!(ok.handshake.version, "TLSv1_2", "the maximum caps the version");
    assert_eq!(ok.handshake.cert, legacy.info());
    let refused = https_get(https.addr(), "legacy.example.com", &tls13, "/").await;
    assert!(
        refused.is_err(),
        "a TLS 1.3-only client is refused when the maximum is 1.2: {refused:?}"
    );
}

#[tokio::test]
async fn alpn_negotiates_h2() {
    let (stage, https) = https_stage(&["shop.example.com"]).await;
    let ca = Ca::new("legate test CA");
    let cert = ca.server(&["shop.example.com"], 0x5001);
    put(&stage, tls_secret("shop-tls", &cert)).await;
    put(
        &stage,
        legate(
            "TLSContext",
            "shop",
            json!({ "hosts": ["shop.example.com"], "secret": "shop-tls", "alpnProtocols": ["h2", "http/1.1"] }),
        ),
    )
    .await;
    let h2 = TlsOptions {
        alpn: vec!["h2".into(), "http/1.1".into()],
        ..TlsOptions::trusting(&ca.cert_pem)
    };
    let answer = https_until(https.addr(), "shop.example.com", &h2, "/over-h2", 200).await;
    assert_eq!(answer.handshake.alpn.as_deref(), Some("h2"));
    assert_eq!(answer.http_version, "HTTP/2.0");
    assert_eq!(answer.response.echo().path, "/over-h2");
    assert_eq!(answer.response.echo().host, "shop.example.com");

    let http1 = TlsOptions {
        alpn: vec!["http/1.1".into()],
        ..TlsOptions::trusting(&ca.cert_pem)
    };
    let answer = https_until(https.addr(), "shop.example.com", &http1, "/over-h1", 200).await;
    assert_eq!(answer.handshake.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(answer.http_version, "HTTP/1.1");
}

/// A stage whose `mtls.example.com` needs client certificates from `clients`.
async fn mtls_stage(cert_required: bool) -> (Stage, Extra, Ca, Ca) {
    let (stage, https) = https_stage(&["mtls.example.com"]).await;
    let ca = Ca::new("legate test CA");
    let clients = Ca::new("legate client CA");
    put(
        &stage,
        tls_secret("mtls-tls", &ca.server(&["mtls.example.com"], 0x6001)),
    )
    .await;
    put(&stage, ca_secret("client-ca", &clients)).await;
    put(
        &stage,
        legate(
            "TLSContext",
            "mtls",
            json!({ "hosts": ["mtls.example.com"], "secret": "mtls-tls", "caSecret": "client-ca", "certRequired": cert_required }),
        ),
    )
    .await;
    (stage, https, ca, clients)
}

#[tokio::test]
async fn a_required_client_certificate_must_be_signed_by_the_ca_secret() {
    let (stage, https, ca, clients) = mtls_stage(true).await;
    let good = TlsOptions {
        client_cert: Some(clients.client("partner-a", 0x7001)),
        ..TlsOptions::trusting(&ca.cert_pem)
    };
    let answer = https_until(https.addr(), "mtls.example.com", &good, "/partner", 200).await;
    assert_eq!(answer.response.echo().path, "/partner");

    let none = https_get(
        https.addr(),
        "mtls.example.com",
        &TlsOptions::trusting(&ca.cert_pem),
        "/",
    )
    .await;
    assert!(none.is_err(), "no client certificate: refused, got {none:?}");
    let stranger = Ca::new("someone else's CA");
    let wrong = TlsOptions {
        client_cert: Some(stranger.client("partner-a", 0x7002)),
        ..TlsOptions::trusting(&ca.cert_pem)
    };
    let wrong = https_get(https.addr(), "mtls.example.com", &wrong, "/").await;
    assert!(
        wrong.is_err(),
        "a certificate from another CA: refused, got {wrong:?}"
    );
    stage.condition("TLSContext", "mtls", "Programmed", "True").await;
}

#[tokio::test]
async fn an_optional_client_certificate_is_checked_when_presented() {
    let (stage, https, ca, clients) = mtls_stage(false).await;
    let none = https_until(
        https.addr(),
        "mtls.example.com",
        &TlsOptions::trusting(&ca.cert_pem),
        "/anonymous",
        200,
    )
    .await;
    assert_eq!(none.response.echo().path, "/anonymous");
    let good = TlsOptions {
        client_cert: Some(clients.client("partner-a", 0x7101)),
        ..TlsOptions::trusting(&ca.cert_pem)
    };
    let answer = https_until(https.addr(), "mtls.example.com", &good, "/partner", 200).await;
    assert_eq!(answer.response.echo().path, "/partner");
    let stranger = Ca::new("someone else's CA");
    let wrong = TlsOptions {
        client_cert: Some(stranger.client("partner-a", 0x7102)),
        ..TlsOptions::trusting(&ca.cert_pem)
    };
    let wrong = https_get(https.addr(), "mtls.example.com", &wrong, "/").await;
    assert!(
        wrong.is_err(),
        "a certificate from another CA: refused, got {wrong:?}"
    );
    stage.condition("TLSContext", "mtls", "Programmed", "True").await;
}

#[tokio::test]
async fn a_missing_or_malformed_secret_says_why_and_other_hosts_keep_working() {
    let (stage, https) = https_stage(&["shop.example.com", "lost.example.com", "bent.example.com"]).await;
    plain_route(&stage).await;
    let ca = Ca::new("legate test CA");
    let shop = ca.server(&["shop.example.com"], 0x8001);
    put(&stage, tls_secret("shop-tls", &shop)).await;
    // The API server insists on the keys of a kubernetes.io/tls Secret, not on their content.
    put(
        &stage,
        json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "bent-tls" }, "type": "kubernetes.io/tls",
                "stringData": { "tls.crt": "", "tls.key": "" } }),
    )
    .await;
    for (name, secret) in [("shop", "shop-tls"), ("lost", "lost-tls"), ("bent", "bent-tls")] {
        put(
            &stage,
            legate(
                "TLSContext",
                name,
                json!({ "hosts": [format!("{name}.example.com")], "secret": secret }),
            ),
        )
        .await;
    }
    let lost = super::reason(&stage, "TLSContext", "lost", "ResolvedRefs", "SecretNotFound").await;
    assert_eq!(lost["status"], "False");
    let message = lost["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("lost-tls"),
        "the message names the Secret: {message}"
    );
    let bent = super::reason(&stage, "TLSContext", "bent", "ResolvedRefs", "InvalidSecret").await;
    assert_eq!(bent["status"], "False");
    let message = bent["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("tls.crt"),
        "the message says what is missing: {message}"
    );

    let options = TlsOptions::trusting(&ca.cert_pem);
    let answer = https_until(https.addr(), "shop.example.com", &options, "/still", 200).await;
    assert_eq!(answer.handshake.cert, shop.info());
    assert_eq!(answer.response.echo().path, "/still");
    let plain = until(&stage, "GET", "/plain/x", "anything.example.com", &[], 200).await;
    assert_eq!(plain.echo().path, "/x");
    stage.condition("TLSContext", "shop", "Programmed", "True").await;

    // The Secret appears: the host is served.
    let found = ca.server(&["lost.example.com"], 0x8002);
    put(&stage, tls_secret("lost-tls", &found)).await;
    stage
        .condition("TLSContext", "lost", "ResolvedRefs", "True")
        .await;
    let answer = https_until(https.addr(), "lost.example.com", &options, "/found", 200).await;
    assert_eq!(answer.handshake.cert, found.info());
}

#[tokio::test]
async fn a_secret_whose_pem_does_not_parse_is_invalid_and_other_hosts_keep_working() {
    let (stage, https) = https_stage(&["shop.example.com", "junk.example.com"]).await;
    let ca = Ca::new("legate test CA");
    let shop = ca.server(&["shop.example.com"], 0x9001);
    put(&stage, tls_secret("shop-tls", &shop)).await;
    put(
        &stage,
        legate(
            "TLSContext",
            "shop",
            json!({ "hosts": ["shop.example.com"], "secret": "shop-tls" }),
        ),
    )
    .await;
    let options = TlsOptions::trusting(&ca.cert_pem);
    https_until(https.addr(), "shop.example.com", &options, "/", 200).await;
    put(
        &stage,
        json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "junk-tls" }, "type": "kubernetes.io/tls",
                "stringData": { "tls.crt": "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
                                "tls.key": "not a key" } }),
    )
    .await;
    put(
        &stage,
        legate(
            "TLSContext",
            "junk",
            json!({ "hosts": ["junk.example.com"], "secret": "junk-tls" }),
        ),
    )
    .await;
    let junk = super::reason(&stage, "TLSContext", "junk", "ResolvedRefs", "InvalidSecret").await;
    assert_eq!(junk["status"], "False", "{junk}");
    // The good host is unaffected, on new connections too.
    for i in 0..5 {
        let answer = https_get(
            https.addr(),
            "shop.example.com",
            &options,
            &format!("/after-junk/{i}"),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "shop.example.com stopped working: {e}\n{}",
                stage.envoy.log_tail()
            )
        });
        assert_eq!(answer.response.status, 200);
        assert_eq!(answer.handshake.cert, shop.info());
    }
    let shop = stage.condition("TLSContext", "shop", "Programmed", "True").await;
    assert_eq!(shop["reason"], "Programmed");
}
