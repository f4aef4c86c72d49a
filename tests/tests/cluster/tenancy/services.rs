//! A Service of another namespace is used only with its consent (the
//! `legate.dev/allow-from` annotation on it).

use legate_tests::api::apply;
use legate_tests::http::HttpClient;
use legate_tests::net::eventually;
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::json;

use super::{assert_shop_answers, shop_and_rogue};

const ROGUE_HOST: &str = "rogue.example.com";

/// Waits until `GET /` on the rogue host answers `status`; the backend
/// that answered, if any.
async fn rogue_answers(stage: &Stage, status: u16) -> Option<String> {
    let url = stage.url("/");
    eventually(
        &format!("GET {url} (Host {ROGUE_HOST}) to answer {status}"),
        PATIENCE,
        || async {
            let r = HttpClient::http1().get(&url, Some(ROGUE_HOST)).await.ok()?;
            (r.status == status).then(|| (r.status == 200).then(|| r.echo().backend))
        },
    )
    .await
}

#[tokio::test]
async fn a_second_namespace_cannot_use_a_service_of_the_first_without_its_consent() {
    let (stage, rogue) = shop_and_rogue("legate-test-tenancy-services").await;

    let borrow = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping", "metadata": { "name": "borrow" },
        "spec": { "hostname": ROGUE_HOST, "prefix": "/",
                  "service": format!("quote.{}", stage.env.namespace) },
    });
    apply(&rogue.client, &rogue.namespace, &borrow)
        .await
        .expect("the Mapping applies");
    let refused = stage
        .condition_reason_in(
            &rogue.namespace,
            "Mapping",
            "borrow",
            "ResolvedRefs",
            "RefNotPermitted",
        )
        .await;
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("legate.dev/allow-from") && message.contains(&rogue.namespace),
        "the message says how to ask for access: {refused}"
    );
    assert_eq!(refused["status"], "False", "{refused}");
    assert_eq!(
        rogue_answers(&stage, 503).await,
        None,
        "the rogue route reaches no backend"
    );

    // Checked after the attempt reached the operator: the first namespace's
    // traffic is answered by its backend.
    assert_shop_answers(&stage, "/orders").await;

    // The Service's owners consent: the route now reaches it.
    stage.env.control_plane.kubectl(&[
        "annotate",
        "service",
        "quote",
        "-n",
        &stage.env.namespace,
        &format!("legate.dev/allow-from={}", rogue.namespace),
    ]);
    assert_eq!(rogue_answers(&stage, 200).await.as_deref(), Some("quote-1"));
    stage
        .condition_reason_in(
            &rogue.namespace,
            "Mapping",
            "borrow",
            "ResolvedRefs",
            "ResolvedRefs",
        )
        .await;
}
