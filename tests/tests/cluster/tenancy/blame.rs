//! A proxy's refusal (NACK) quarantines objects on its own Gateway only.
//! Whoever runs a Gateway holds its proxies' xDS certificate, so a refusal
//! may be forged; here a second namespace's Gateway "refuses" the first
//! namespace's Mapping, which must keep working on the first's Gateway.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};
use envoy_types::pb::google::rpc::Status;
use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use legate_tests::TestEnv;
use legate_tests::api::{apply, wait_condition};
use legate_tests::net::{eventually, free_port};
use legate_tests::operator::SharedOperator;
use legate_tests::stage::PATIENCE;
use legate_xds::resource::ResourceType;
use serde_json::json;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use super::{assert_shop_answers, shop_and_rogue};

/// A delta ADS client with a Gateway's certificate that ACKs everything but
/// the route configuration carrying `target`, which it refuses naming it.
struct ForgingProxy {
    requests: mpsc::UnboundedSender<DeltaDiscoveryRequest>,
    responses: tonic::Streaming<DeltaDiscoveryResponse>,
    node: Node,
}

impl ForgingProxy {
    async fn connect(env: &TestEnv, gateway: &str) -> ForgingProxy {
        let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
        let name = format!("{gateway}-envoy-xds");
        let data = eventually(&format!("Secret {name}"), PATIENCE, || async {
            secrets.get(&name).await.ok()?.data
        })
        .await;
        let pem = |k: &str| {
            String::from_utf8(data.get(k).map(|b| b.0.clone()).unwrap_or_default()).unwrap_or_default()
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(pem("ca.crt")))
            .domain_name("localhost")
            .identity(Identity::from_pem(pem("tls.crt"), pem("tls.key")));
        let xds = SharedOperator::get(env.control_plane).xds;
        let channel = Channel::from_shared(format!("https://{xds}"))
            .expect("an xDS address")
            .tls_config(tls)
            .expect("TLS settings")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connecting to xDS at {xds}: {e:?}"));
        let (requests, outgoing) = mpsc::unbounded();
        let responses = AggregatedDiscoveryServiceClient::new(channel)
            .delta_aggregated_resources(outgoing)
            .await
            .unwrap_or_else(|s| panic!("the ADS stream was refused: {s}"))
            .into_inner();
        let node = Node {
            id: "forger-1".into(),
            cluster: format!("{}/{gateway}", env.namespace),
            ..Node::default()
        };
        let proxy = ForgingProxy {
            requests,
            responses,
            node,
        };
        for (kind, names) in [
            (ResourceType::Cluster, vec![]),
            (ResourceType::Listener, vec![]),
            (ResourceType::Route, vec!["http".to_string()]),
        ] {
            proxy.send(DeltaDiscoveryRequest {
                type_url: kind.type_url().into(),
                resource_names_subscribe: names,
                ..DeltaDiscoveryRequest::default()
            });
        }
        proxy
    }

    fn send(&self, mut request: DeltaDiscoveryRequest) {
        request.node = Some(self.node.clone());
        self.requests
            .unbounded_send(request)
            .expect("the ADS stream is open");
    }

    /// Answers responses until it has refused a route configuration that
    /// carries `target`, then until one comes without it (the operator left
    /// the refused object out of this Gateway).
    async fn refuse_until_dropped(&mut self, target: &str) {
        let mut refused = false;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let next = tokio::time::timeout_at(deadline, self.responses.next()).await;
            let response = match next {
                Ok(Some(Ok(r))) => r,
                other => panic!("the forging proxy waited for xDS (refused: {refused}): {other:?}"),
            };
            let carries = response
                .resources
                .iter()
                .any(|r| r.resource.as_ref().is_some_and(|a| contains(&a.value, target)));
            let route = response.type_url == ResourceType::Route.type_url();
            if route && carries && !refused {
                refused = true;
                self.send(DeltaDiscoveryRequest {
                    type_url: response.type_url.clone(),
                    response_nonce: response.nonce.clone(),
                    error_detail: Some(Status {
                        code: 3,
                        message: format!("forged: route {target} is invalid"),
                        ..Status::default()
                    }),
                    ..DeltaDiscoveryRequest::default()
                });
                continue;
            }
            if response.type_url == ResourceType::Cluster.type_url() {
                let names = response.resources.iter().map(|r| r.name.clone()).collect();
                self.send(DeltaDiscoveryRequest {
                    type_url: ResourceType::Endpoints.type_url().into(),
                    resource_names_subscribe: names,
                    ..DeltaDiscoveryRequest::default()
                });
            }
            self.send(DeltaDiscoveryRequest {
                type_url: response.type_url.clone(),
                response_nonce: response.nonce.clone(),
                ..DeltaDiscoveryRequest::default()
            });
            if route && refused && !carries && !response.resources.is_empty() {
                return;
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_refusal_forged_by_another_namespaces_gateway_leaves_the_mapping_on_its_own() {
    let (stage, rogue) = shop_and_rogue("legate-test-tenancy-blame").await;

    // The rogue namespace runs a Gateway that admits the shop's namespace
    // (the label the stage's Gateway selects), and a "proxy" of its own.
    let rogue_gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "trap" },
        "spec": {
            "serviceType": "ClusterIP", "replicas": 1,
            "listeners": [{ "name": "http", "port": free_port(), "protocol": "HTTP" }],
            "allowedRoutes": { "namespaces": stage.admits_labelled("legate-test-tenancy-blame") },
        }
    });
    apply(&rogue.client, &rogue.namespace, &rogue_gateway)
        .await
        .expect("the rogue Gateway applies");
    let mut forger = ForgingProxy::connect(&rogue, "trap").await;
    let target = format!("Mapping/{}/shop", stage.env.namespace);
    forger.refuse_until_dropped(&target).await;

    // The refusal shows on the Mapping, naming the Gateway whose proxy sent it.
    let programmed = wait_condition(
        &stage.env.client,
        &stage.env.namespace,
        "Mapping",
        "shop",
        "Programmed",
        "False",
        PATIENCE,
    )
    .await;
    let message = programmed["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("{}/trap", rogue.namespace)),
        "the status names the refusing Gateway: {programmed}"
    );

    // Checked after the refusal reached the operator: the shop's own
    // Gateway still routes it, and its Envoy still has the route.
    assert_shop_answers(&stage, "/orders").await;
    let routes = stage
        .envoy
        .admin_get("/config_dump?resource=dynamic_route_configs")
        .await;
    assert!(
        routes.contains(&target),
        "the shop's Envoy keeps the route: {routes}"
    );
}

/// A second namespace's Gateway whose proxy never applies anything does not
/// hold up deleting the first namespace's Mapping: deletion waits only for
/// the Gateways that carried the object.
#[tokio::test]
async fn another_namespaces_lagging_gateway_does_not_hold_up_a_deletion() {
    let (stage, rogue) = shop_and_rogue("legate-test-tenancy-lagging").await;
    let lagging = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "lagging" },
        "spec": {
            "serviceType": "ClusterIP", "replicas": 1,
            "listeners": [{ "name": "http", "port": free_port(), "protocol": "HTTP" }],
            "allowedRoutes": { "namespaces": { "from": "Same" } },
        }
    });
    apply(&rogue.client, &rogue.namespace, &lagging)
        .await
        .expect("the lagging Gateway applies");
    // Subscribes and never acknowledges: that Gateway is never in sync.
    let _silent = ForgingProxy::connect(&rogue, "lagging").await;
    wait_condition(
        &rogue.client,
        &rogue.namespace,
        "Gateway",
        "lagging",
        "Programmed",
        "False",
        PATIENCE,
    )
    .await;

    stage
        .mapping(
            "extra",
            json!({ "hostname": "shop.example.com", "prefix": "/extra/", "service": "quote" }),
        )
        .await;
    stage.until_status("/extra/x", 200).await;
    stage
        .env
        .control_plane
        .kubectl(&["delete", "mapping", "extra", "-n", &stage.env.namespace]);
    // Gone (kubectl waited for it). Had it waited for the lagging Gateway,
    // the operator would have given up after its grace and said so.
    let events = stage.env.control_plane.kubectl(&[
        "get",
        "events",
        "-n",
        &stage.env.namespace,
        "--field-selector",
        "involvedObject.name=extra,reason=DeletionTimeout",
        "-o",
        "name",
    ]);
    assert!(events.trim().is_empty(), "no DeletionTimeout: {events}");
    assert_shop_answers(&stage, "/").await;
}
