//! xDS is for authenticated proxies only: an Envoy with its Gateway's
//! certificate gets that Gateway's configuration; no certificate, a foreign
//! CA's, or another Gateway's gets nothing, and each refusal is counted.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use legate_tests::TestEnv;
use legate_tests::api::{apply, install_crds};
use legate_tests::http::HttpClient;
use legate_tests::net::{eventually, free_port, loopback};
use legate_tests::operator::{Operator, envoy_for_gateway};
use serde_json::json;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Pem {
    cert: String,
    key: String,
    ca: String,
}

async fn certificate(env: &TestEnv, gateway: &str) -> Pem {
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let name = format!("{gateway}-envoy-xds");
    let data = eventually(&format!("Secret {name}"), Duration::from_secs(20), || {
        let secrets = secrets.clone();
        let name = name.clone();
        async move { secrets.get(&name).await.ok()?.data }
    })
    .await;
    let text =
        |k: &str| String::from_utf8(data.get(k).map(|b| b.0.clone()).unwrap_or_default()).unwrap_or_default();
    Pem {
        cert: text("tls.crt"),
        key: text("tls.key"),
        ca: text("ca.crt"),
    }
}

/// Opens a delta ADS stream as `cluster` with `identity` (or none) and
/// returns the first response or the error.
async fn ask(
    xds: std::net::SocketAddr,
    ca: &str,
    identity: Option<(&str, &str)>,
    cluster: &str,
) -> Result<usize, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://{xds}"))
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let first = DeltaDiscoveryRequest {
        node: Some(Node {
            id: "intruder".into(),
            cluster: cluster.into(),
            ..Node::default()
        }),
        type_url: "type.googleapis.com/envoy.config.listener.v3.Listener".into(),
        ..DeltaDiscoveryRequest::default()
    };
    let mut client = AggregatedDiscoveryServiceClient::new(channel);
    let mut responses = client
        .delta_aggregated_resources(futures::stream::iter([first]).chain(futures::stream::pending()))
        .await
        .map_err(|s| format!("{}: {}", s.code(), s.message()))?
        .into_inner();
    match tokio::time::timeout(Duration::from_secs(5), responses.next()).await {
        Ok(Some(Ok(r))) => Ok(r.resources.len()),
        Ok(Some(Err(s))) => Err(format!("{}: {}", s.code(), s.message())),
        Ok(None) => Err("the stream ended".into()),
        Err(_) => Err("no answer within 5s".into()),
    }
}

async fn refused(operator: &Operator) -> f64 {
    let text = HttpClient::http1()
        .get(&format!("http://{}/metrics", operator.metrics), None)
        .await
        .expect("/metrics answers")
        .text();
    text.lines()
        .find_map(|l| l.strip_prefix("legate_xds_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A CA and a client certificate for `gateway` that Legate never issued.
fn foreign(gateway: &str) -> Pem {
    let ca_key = rcgen::KeyPair::generate().expect("a key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("a CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("a key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.subject_alt_names.push(rcgen::SanType::URI(
        format!("spiffe://legate.dev/gateway/{gateway}")
            .try_into()
            .expect("a URI"),
    ));
    let cert = params.signed_by(&key, &issuer).expect("a certificate");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
        ca: ca_cert.pem(),
    }
}

#[tokio::test]
async fn only_a_gateways_own_certificate_gets_its_configuration() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let xds_port = free_port();
    let operator = Operator::start_with(
        env.control_plane,
        xds_port,
        None,
        &["--namespace", &env.namespace],
    )
    .await;
    let xds = loopback(xds_port);
    for (name, port) in [("edge", free_port()), ("other", free_port())] {
        let gateway = json!({
            "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": name },
            "spec": { "replicas": 1, "serviceType": "ClusterIP",
                      "listeners": [{ "name": "http", "port": port, "protocol": "HTTP" }] }
        });
        apply(&env.client, &env.namespace, &gateway)
            .await
            .expect("a Gateway applies");
    }
    let edge = format!("{}/edge", env.namespace);
    let own = certificate(&env, "edge").await;
    let others = certificate(&env, "other").await;

    // A real Envoy with the Gateway's certificate gets its listener.
    let envoy = envoy_for_gateway(&env.client, &env.namespace, "edge", "edge-1").await;
    let listeners = eventually(
        "Envoy to receive its listener",
        Duration::from_secs(20),
        || async {
            let text = envoy.admin_get("/listeners").await;
            text.contains("http::").then_some(text)
        },
    )
    .await;
    assert!(listeners.contains("http::"), "{listeners}");
    assert_eq!(
        ask(xds, &own.ca, Some((&own.cert, &own.key)), &edge).await,
        Ok(1),
        "the own certificate is served"
    );

    let before = refused(&operator).await;
    let none = ask(xds, &own.ca, None, &edge).await;
    assert!(none.is_err(), "no certificate: refused, got {none:?}");
    let stranger = foreign(&edge);
    let forged = ask(xds, &own.ca, Some((&stranger.cert, &stranger.key)), &edge).await;
    assert!(
        forged.is_err(),
        "a certificate from another CA: refused, got {forged:?}"
    );
    let borrowed = ask(xds, &own.ca, Some((&others.cert, &others.key)), &edge).await;
    let message = borrowed.expect_err("another Gateway's certificate: refused");
    assert!(
        message.contains("PermissionDenied") || message.contains("permission"),
        "{message}"
    );
    assert!(
        message.contains("other"),
        "the refusal names the certificate's Gateway: {message}"
    );

    let counted = tokio::time::timeout(
        Duration::from_secs(10),
        eventually("the refusals to be counted", Duration::from_secs(11), || async {
            let now = refused(&operator).await;
            (now >= before + 3.0).then_some(now)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("refusals were not counted (before: {before})"));
    assert!(counted >= before + 3.0);
}
