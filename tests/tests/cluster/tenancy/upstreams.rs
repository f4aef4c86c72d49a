//! A `service` field is not a way to Envoy's admin API or a node's metadata
//! service (the shared operator runs without `--allow-loopback-upstreams`).

use legate_tests::api::apply;
use serde_json::json;

use super::{assert_shop_answers, shop_and_rogue};

#[tokio::test]
async fn a_second_namespace_cannot_route_to_envoys_admin_api_or_a_metadata_service() {
    let (stage, rogue) = shop_and_rogue("legate-test-tenancy-upstreams").await;

    // The rogue namespace: Envoy's admin API (loopback), a cloud metadata
    // address, and an ExternalName Service pointing at it.
    let admin = stage.envoy.admin();
    let external_name = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": { "name": "cloud" },
        "spec": { "type": "ExternalName", "externalName": "169.254.169.254",
                  "ports": [{ "name": "http", "port": 80 }] }
    });
    apply(&rogue.client, &rogue.namespace, &external_name)
        .await
        .expect("the ExternalName Service applies");
    let attempts = [
        ("admin", format!("http://127.0.0.1:{}", admin.port()), "127.0.0.1"),
        (
            "metadata",
            "http://169.254.169.254".to_string(),
            "169.254.169.254",
        ),
        ("alias", "cloud".to_string(), "169.254.169.254"),
    ];
    for (name, service, _) in &attempts {
        let mapping = json!({
            "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping", "metadata": { "name": name },
            // On the catch-all: the shop's host is the shop's (tests of hosts).
            "spec": { "hostname": "*", "prefix": format!("/{name}/"),
                      "precedence": 1000, "service": service },
        });
        apply(&rogue.client, &rogue.namespace, &mapping)
            .await
            .unwrap_or_else(|e| panic!("Mapping {name} was refused at admission: {e}"));
    }
    for (name, _, host) in &attempts {
        let accepted = stage
            .condition_reason_in(&rogue.namespace, "Mapping", name, "Accepted", "ForbiddenUpstream")
            .await;
        let message = accepted["message"].as_str().unwrap_or_default();
        assert!(message.contains(host), "Mapping {name}: {accepted}");
    }

    // Checked after every attempt reached the operator: the first
    // namespace's traffic is answered by its backend, and the rogue paths
    // are not routed anywhere but there.
    assert_shop_answers(&stage, "/admin/config_dump").await;
    for (name, _, _) in &attempts {
        let answer = stage.get(&format!("/{name}/")).await;
        assert_eq!(answer.status, 200, "/{name}/");
        assert_eq!(
            answer.echo().backend,
            "quote-1",
            "/{name}/ stays with the shop's route"
        );
    }
}
