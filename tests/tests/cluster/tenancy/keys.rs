//! A TLSContext's private key reaches only the Gateways its owner sent it
//! to: those of its own namespace, or those it names.

use std::net::SocketAddr;

use legate_tests::Envoy;
use legate_tests::TestEnv;
use legate_tests::api::{apply, wait_condition};
use legate_tests::net::{eventually, free_port, loopback};
use legate_tests::operator::envoy_for_gateway;
use legate_tests::peers::tls_client::{HttpsAnswer, TlsOptions, https_get};
use legate_tests::pki::{Ca, tls_secret};
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::{Value, json};

use super::REQUESTS;

const HOST: &str = "shop.example.com";

/// A Gateway `edge` with one HTTP and one HTTPS listener.
fn gateway(http: u16, https: u16, allowed: Value) -> Value {
    json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
        "spec": {
            "serviceType": "ClusterIP", "replicas": 1,
            "listeners": [{ "name": "http", "port": http, "protocol": "HTTP" },
                          { "name": "https", "port": https, "protocol": "HTTPS" }],
            "allowedRoutes": { "namespaces": allowed },
        }
    })
}

async fn https_until(addr: SocketAddr, options: &TlsOptions) -> HttpsAnswer {
    eventually(
        &format!("HTTPS GET / with SNI {HOST} at {addr} to answer 200"),
        PATIENCE,
        || async {
            https_get(addr, HOST, options, "/")
                .await
                .ok()
                .filter(|a| a.response.status == 200)
        },
    )
    .await
}

/// The names of the secrets Envoy holds (SDS), from its config dump.
async fn secrets_of(envoy: &Envoy) -> Vec<String> {
    let text = envoy
        .admin_get("/config_dump?resource=dynamic_active_secrets")
        .await;
    let dump: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("config_dump is not JSON: {e}"));
    dump["configs"]
        .as_array()
        .map(|configs| {
            configs
                .iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_gateway_of_another_namespace_that_admits_the_team_receives_none_of_its_keys() {
    let stage = Stage::new().await;
    let shop = &stage.env;
    let https = free_port();
    apply(
        &shop.client,
        &shop.namespace,
        &gateway(stage.port, https, json!({ "from": "Same" })),
    )
    .await
    .expect("the shop's Gateway applies");
    let ca = Ca::new("shop CA");
    let cert = ca.server(&[HOST], 0x5001);
    let tls = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "TLSContext", "metadata": { "name": "shop" },
        "spec": { "hosts": [HOST], "secret": "shop-tls" },
    });
    for object in [tls_secret("shop-tls", &cert), tls.clone()] {
        apply(&shop.client, &shop.namespace, &object)
            .await
            .expect("the shop's TLS applies");
    }
    stage
        .mapping(
            "shop",
            json!({ "hostname": HOST, "prefix": "/", "service": "quote" }),
        )
        .await;
    let options = TlsOptions::trusting(&ca.cert_pem);
    https_until(loopback(https), &options).await;

    // Another team's Gateway admits the shop's namespace (by a label only
    // this test's namespaces carry, so no other test's objects attach).
    let rogue = TestEnv::new().await;
    let label = "legate-test-tenancy-keys";
    stage.label_namespace(&shop.namespace, label);
    let admits_shop = stage.admits_labelled(label);
    let (rogue_http, rogue_https) = (free_port(), free_port());
    apply(
        &rogue.client,
        &rogue.namespace,
        &gateway(rogue_http, rogue_https, admits_shop),
    )
    .await
    .expect("the rogue Gateway applies");
    let rogue_envoy = envoy_for_gateway(&rogue.client, &rogue.namespace, "edge", "rogue-local-1").await;
    // Once its Envoy runs everything the Gateway routes (the shop's Mapping
    // included), it holds what it will hold.
    eventually(
        "the rogue Gateway to carry the shop's route",
        PATIENCE,
        || async {
            let text = rogue_envoy
                .admin_get("/config_dump?resource=dynamic_route_configs")
                .await;
            text.contains(&format!("{}/shop", shop.namespace)).then_some(())
        },
    )
    .await;
    wait_condition(
        &rogue.client,
        &rogue.namespace,
        "Gateway",
        "edge",
        "Programmed",
        "True",
        PATIENCE,
    )
    .await;
    assert_eq!(
        secrets_of(&rogue_envoy).await,
        Vec::<String>::new(),
        "no key of the shop's"
    );

    // The shop's own traffic is untouched.
    for i in 0..REQUESTS {
        let answer = https_get(loopback(https), HOST, &options, &format!("/?i={i}"))
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(answer.response.status, 200, "request {i}");
        assert_eq!(answer.handshake.cert, cert.info(), "request {i}");
    }

    // Named by its owner, the key goes there too (so the check above could see one).
    let mut named = tls;
    named["spec"]["gateways"] = json!([{ "name": "edge", "namespace": rogue.namespace }, { "name": "edge" }]);
    apply(&shop.client, &shop.namespace, &named)
        .await
        .expect("the TLSContext applies");
    let want = format!("{}/shop-tls", shop.namespace);
    eventually("the named Gateway's Envoy to hold the key", PATIENCE, || async {
        secrets_of(&rogue_envoy).await.contains(&want).then_some(())
    })
    .await;
}
