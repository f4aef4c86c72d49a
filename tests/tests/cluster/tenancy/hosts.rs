//! A host belongs to one namespace on a Gateway: a second namespace cannot
//! take it with a higher precedence, a catch-all or a TLSContext, and gets
//! it only when its owner lets it go (or the Gateway assigns it).

use legate_tests::TestEnv;
use legate_tests::api::apply;
use legate_tests::http::HttpClient;
use legate_tests::net::{eventually, free_port};
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::{Value, json};

use super::{assert_shop_answers, shop_and_rogue};

const SHOP_HOST: &str = "shop.example.com";

/// A Mapping of the rogue namespace that sends whatever it matches to a
/// phishing site (a redirect: it needs no backend of its own).
fn phishing(name: &str, hostname: &str) -> Value {
    json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping", "metadata": { "name": name },
        "spec": { "hostname": hostname, "prefix": "/", "precedence": 1000000,
                  "redirect": { "host": "phish.example.net", "responseCode": 302 } },
    })
}

/// Waits until `GET /` with Host `host` answers `status`.
async fn until_host_answers(stage: &Stage, host: &str, status: u16) {
    let url = stage.url("/");
    eventually(
        &format!("GET {url} (Host {host}) to answer {status}"),
        PATIENCE,
        || async {
            let r = HttpClient::http1().get(&url, Some(host)).await.ok()?;
            (r.status == status).then_some(())
        },
    )
    .await;
}

/// Applies the stage's Gateway `edge` again, admitting the labelled
/// namespaces, with `more` spec fields.
async fn gateway(stage: &Stage, label: &str, listeners: Value, more: Value) {
    let mut spec = json!({
        "serviceType": "ClusterIP", "replicas": 1,
        "listeners": listeners,
        "allowedRoutes": { "namespaces": stage.admits_labelled(label) },
    });
    if let (Some(spec), Some(more)) = (spec.as_object_mut(), more.as_object()) {
        spec.extend(more.clone());
    }
    let gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
        "spec": spec,
    });
    apply(&stage.env.client, &stage.env.namespace, &gateway)
        .await
        .expect("the Gateway applies");
}

async fn refused_for_host(stage: &Stage, rogue: &TestEnv, kind: &str, name: &str) -> String {
    let refused = stage
        .condition_reason_in(&rogue.namespace, kind, name, "Accepted", "HostNotOwned")
        .await;
    assert_eq!(refused["status"], "False", "{refused}");
    refused["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_higher_precedence_on_anothers_host_is_refused_until_the_owner_lets_it_go() {
    let label = "legate-test-tenancy-precedence";
    let (stage, rogue) = shop_and_rogue(label).await;

    apply(&rogue.client, &rogue.namespace, &phishing("steal", SHOP_HOST))
        .await
        .expect("the Mapping applies");
    let message = refused_for_host(&stage, &rogue, "Mapping", "steal").await;
    for part in [
        SHOP_HOST,
        &format!("namespace {}", stage.env.namespace),
        "spec.hostOwners",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    assert_shop_answers(&stage, "/").await;

    // The owner deletes its last object on the host: the next claimant gets
    // it, with no restart.
    stage
        .env
        .control_plane
        .kubectl(&["delete", "mapping", "shop", "-n", &stage.env.namespace]);
    stage
        .condition_reason_in(&rogue.namespace, "Mapping", "steal", "Accepted", "Accepted")
        .await;
    until_host_answers(&stage, SHOP_HOST, 302).await;
}

#[tokio::test]
async fn a_catch_all_of_another_namespace_serves_only_hosts_nobody_owns() {
    let label = "legate-test-tenancy-catch-all";
    let (stage, rogue) = shop_and_rogue(label).await;

    apply(&rogue.client, &rogue.namespace, &phishing("everything", "*"))
        .await
        .expect("the Mapping applies");
    let accepted = stage
        .condition_reason_in(&rogue.namespace, "Mapping", "everything", "Accepted", "Accepted")
        .await;
    assert_eq!(accepted["status"], "True", "{accepted}");
    let message = accepted["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("hostname * serves the hosts no other namespace owns"),
        "its status says what it serves: {accepted}"
    );
    // It serves a host nobody owns: the attempt reached Envoy.
    until_host_answers(&stage, "nobody.example.com", 302).await;
    assert_shop_answers(&stage, "/").await;
}

#[tokio::test]
async fn a_tls_context_of_another_namespace_cannot_blackhole_every_host_or_take_one() {
    let label = "legate-test-tenancy-tls-hosts";
    let (stage, rogue) = shop_and_rogue(label).await;
    // An HTTPS listener: what makes a TLSContext's cleartext action apply.
    let listeners = json!([
        { "name": "http", "port": stage.port, "protocol": "HTTP" },
        { "name": "https", "port": free_port(), "protocol": "HTTPS" },
    ]);
    gateway(&stage, label, listeners, json!({})).await;
    let edge = json!([{ "name": "edge", "namespace": stage.env.namespace }]);
    for (name, hosts) in [("everything", json!(["*"])), ("shop", json!([SHOP_HOST]))] {
        let blackhole = json!({
            "apiVersion": "legate.dev/v1alpha1", "kind": "TLSContext", "metadata": { "name": name },
            "spec": { "hosts": hosts, "secret": "missing", "insecure": { "action": "Reject" },
                      "gateways": edge },
        });
        apply(&rogue.client, &rogue.namespace, &blackhole)
            .await
            .expect("the TLSContext applies");
    }
    let everything = refused_for_host(&stage, &rogue, "TLSContext", "everything").await;
    assert!(everything.contains("every host (*)"), "{everything}");
    let shop = refused_for_host(&stage, &rogue, "TLSContext", "shop").await;
    assert!(
        shop.contains(&format!("namespace {}", stage.env.namespace)),
        "{shop}"
    );
    assert_shop_answers(&stage, "/").await;
}

#[tokio::test]
async fn the_gateway_assigns_a_host_to_a_namespace_whoever_claimed_it_first() {
    let label = "legate-test-tenancy-pinned";
    let (stage, rogue) = shop_and_rogue(label).await;
    const PINNED: &str = "pinned.example.com";

    // The rogue claims the host first, and has a catch-all; then the
    // platform team assigns the host.
    for (name, host) in [("early", PINNED), ("everything", "*")] {
        apply(&rogue.client, &rogue.namespace, &phishing(name, host))
            .await
            .expect("the Mapping applies");
    }
    until_host_answers(&stage, PINNED, 302).await;
    let listeners = json!([{ "name": "http", "port": stage.port, "protocol": "HTTP" }]);
    let owners = json!({ "hostOwners": [{ "hostname": PINNED, "namespace": stage.env.namespace }] });
    gateway(&stage, label, listeners, owners).await;
    let message = refused_for_host(&stage, &rogue, "Mapping", "early").await;
    assert!(message.contains("the Gateway assigns"), "{message}");
    // Its owner routes nothing there yet: not found, and never the rogue's
    // catch-all.
    until_host_answers(&stage, PINNED, 404).await;
    stage
        .mapping(
            "pinned",
            json!({ "hostname": PINNED, "prefix": "/", "service": "quote" }),
        )
        .await;
    until_host_answers(&stage, PINNED, 200).await;
    assert_shop_answers(&stage, "/").await;
}
