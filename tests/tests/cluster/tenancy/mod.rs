//! One namespace against another on a shared Gateway: each test has a
//! second namespace try to reach what it must not, checks that its object
//! says so, and that the first namespace's traffic is untouched.

mod blame;
mod hosts;
mod keys;
mod services;
mod services_scope;
mod upstreams;

use legate_tests::TestEnv;
use legate_tests::api::apply;
use legate_tests::stage::Stage;
use serde_json::json;

/// Requests the first namespace sends once the attempt reached the operator.
const REQUESTS: usize = 30;

/// A stage whose Gateway admits its own namespace and a second one (the
/// tenant returned, and no other test's), with the shop's route
/// (`shop.example.com/` → quote) answering.
pub(crate) async fn shop_and_rogue(label: &str) -> (Stage, TestEnv) {
    let stage = Stage::new().await;
    let rogue = TestEnv::new().await;
    for namespace in [&stage.env.namespace, &rogue.namespace] {
        stage.label_namespace(namespace, label);
    }
    let gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
        "spec": {
            "serviceType": "ClusterIP", "replicas": 1,
            "listeners": [{ "name": "http", "port": stage.port, "protocol": "HTTP" }],
            "allowedRoutes": { "namespaces": stage.admits_labelled(label) },
        }
    });
    apply(&stage.env.client, &stage.env.namespace, &gateway)
        .await
        .expect("the Gateway applies");
    stage
        .mapping(
            "shop",
            json!({ "hostname": "shop.example.com", "prefix": "/", "service": "quote" }),
        )
        .await;
    stage.until_status("/", 200).await;
    // What the second namespace creates next is younger than the shop's route.
    stage.past_creation_second("Mapping", "shop").await;
    (stage, rogue)
}

/// The shop's traffic is untouched: [`REQUESTS`] requests under `path`,
/// each answered by its backend.
async fn assert_shop_answers(stage: &Stage, path: &str) {
    for i in 0..REQUESTS {
        let answer = stage.get(&format!("{path}?i={i}")).await;
        assert_eq!(answer.status, 200, "request {i} to {path}");
        assert_eq!(answer.echo().backend, "quote-1", "request {i} to {path}");
    }
}
