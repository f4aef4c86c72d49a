//! Test hosts are real network hosts: an echo server inside a network
//! namespace is reached at the address an EndpointSlice holds.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::PostParams;
use legate_tests::http::HttpClient;
use legate_tests::{TestEnv, TestHost};

#[tokio::test]
async fn echo_in_a_test_host_is_reached_through_an_endpointslice_address() {
    let env = TestEnv::new().await;
    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let _echo = host.start_echo("pod-a", 8080).unwrap_or_else(|e| panic!("{e}"));

    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "shop" },
        "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] }
    }))
    .expect("a valid Service");
    env.api::<Service>()
        .create(&PostParams::default(), &service)
        .await
        .expect("create Service");
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "shop-1", "labels": { "kubernetes.io/service-name": "shop" } },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": [host.addr().to_string()], "conditions": { "ready": true } }],
        "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }]
    }))
    .expect("a valid EndpointSlice");
    env.api::<EndpointSlice>()
        .create(&PostParams::default(), &slice)
        .await
        .expect("the API server accepts the test host's address in an EndpointSlice");

    // Read the address back from the API server, as a controller would.
    let stored = env
        .api::<EndpointSlice>()
        .get("shop-1")
        .await
        .expect("get EndpointSlice");
    let address = &stored.endpoints[0].addresses[0];
    let port = stored.ports.as_ref().and_then(|p| p[0].port).expect("a port");
    let response = HttpClient::http1()
        .get(&format!("http://{address}:{port}/checkout"), None)
        .await
        .expect("the test host answers");
    let reply = response.echo();
    assert_eq!(reply.backend, "pod-a");
    assert_eq!(reply.path, "/checkout");
}

/// Why test hosts exist: the API server refuses loopback endpoints.
#[tokio::test]
async fn loopback_addresses_are_refused_by_endpointslice_validation() {
    let env = TestEnv::new().await;
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "loopback" },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": ["127.0.0.1"] }],
        "ports": [{ "port": 8080 }]
    }))
    .expect("a valid EndpointSlice");
    let err = env
        .api::<EndpointSlice>()
        .create(&PostParams::default(), &slice)
        .await
        .expect_err("the API server refuses loopback endpoints");
    assert!(err.to_string().contains("loopback"), "unexpected error: {err}");
}
