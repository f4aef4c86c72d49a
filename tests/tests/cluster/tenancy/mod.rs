//! One namespace against another on a shared Gateway: each test has a
//! second namespace try to reach what it must not, checks that its object
//! says so, and that the first namespace's traffic is untouched.

mod blame;
mod keys;
mod services;
mod upstreams;

use legate_tests::TestEnv;
use legate_tests::api::apply;
use legate_tests::stage::Stage;
use serde_json::json;

/// Requests the first namespace sends once the attempt reached the operator.
const REQUESTS: usize = 30;

/// Makes the stage's Gateway admit the stage's namespace and `second`, and
/// no other test's: both namespaces get `label`, which the Gateway selects.
async fn shared_gateway(stage: &Stage, second: &TestEnv, label: &str) {
    for namespace in [&stage.env.namespace, &second.namespace] {
        stage.env.control_plane.kubectl(&[
            "label",
            "namespace",
            namespace,
            &format!("{label}={}", stage.env.namespace),
        ]);
    }
    let gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
        "spec": {
            "serviceType": "ClusterIP", "replicas": 1,
            "listeners": [{ "name": "http", "port": stage.port, "protocol": "HTTP" }],
            "allowedRoutes": { "namespaces": { "from": "Selector",
                "selector": { "matchLabels": { label: stage.env.namespace } } } },
        }
    });
    apply(&stage.env.client, &stage.env.namespace, &gateway)
        .await
        .expect("the Gateway applies");
}
