//! `Programmed` per object: a change to one Mapping moves its own status and
//! nobody else's. Read back from the API server: the other Mapping keeps its
//! resourceVersion and gets no Event.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::ListParams;
use legate_tests::api::get;
use legate_tests::stage::Stage;
use serde_json::json;

/// How long a write for the other Mapping could still be on its way after
/// the changed one is Programmed: the operator holds a wait for the proxies
/// back for 2 s before it writes it, so a longer quiet window sees any.
const QUIET: Duration = Duration::from_secs(4);

async fn resource_version(stage: &Stage, name: &str) -> String {
    get(
        &stage.env.client,
        &stage.env.namespace,
        "legate.dev/v1alpha1",
        "Mapping",
        name,
    )
    .await
    .ok()
    .flatten()
    .and_then(|o| o.metadata.resource_version)
    .unwrap_or_else(|| panic!("Mapping {name} exists"))
}

/// Every Event about Mapping `name`: its name and resourceVersion (a repeat
/// of an Event moves its resourceVersion).
async fn events_of(stage: &Stage, name: &str) -> BTreeMap<String, String> {
    let events: Api<Event> = Api::namespaced(stage.env.client.clone(), &stage.env.namespace);
    let list = events
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing Events: {e}"));
    list.items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("Mapping")
                && e.involved_object.name.as_deref() == Some(name)
        })
        .map(|e| {
            (
                e.metadata.name.unwrap_or_default(),
                e.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn changing_one_mapping_writes_no_status_and_no_event_for_another() {
    let stage = Stage::new().await;
    // Same host, so the same virtual host: the change rebuilds the part of
    // the configuration that carries both.
    for name in ["a", "b"] {
        stage
            .mapping(name, json!({ "prefix": format!("/{name}/"), "service": "quote" }))
            .await;
    }
    stage.until_status("/a/x", 200).await;
    stage.until_status("/b/x", 200).await;
    for name in ["a", "b"] {
        stage.condition_at("Mapping", name, "Programmed", "True", 1).await;
    }
    let b_before = resource_version(&stage, "b").await;
    let b_events = events_of(&stage, "b").await;
    let a_before = resource_version(&stage, "a").await;
    assert!(!b_events.is_empty(), "B's own Programmed was announced");

    // Three changes of A, each waited for through Envoy and in A's status.
    for generation in 2..=4 {
        let prefix = format!("/a{generation}/");
        stage
            .mapping("a", json!({ "prefix": prefix, "service": "quote" }))
            .await;
        stage.until_status(&format!("{prefix}x"), 200).await;
        stage
            .condition_at("Mapping", "a", "Programmed", "True", generation)
            .await;
    }
    assert_ne!(resource_version(&stage, "a").await, a_before, "A's status moved");

    // Nothing is expected for B; watch long enough that a held-back write would show.
    let quiet_until = Instant::now() + QUIET;
    while Instant::now() < quiet_until {
        assert_eq!(
            resource_version(&stage, "b").await,
            b_before,
            "Mapping b was written while only a changed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        events_of(&stage, "b").await,
        b_events,
        "Mapping b got an Event while only a changed"
    );
    assert_eq!(stage.get("/b/x").await.status, 200, "B still answers");
}
