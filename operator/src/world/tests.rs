//! The change signal behind every model rebuild: which watch events fire it.

use std::sync::Arc;

use futures::stream;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::watcher::{self, Event};
use legate_crds::Mapping;
use serde_json::json;
use tokio::sync::watch;

use super::{Relevance, Signals, forward_changes};

fn mapping(generation: i64, resource_version: &str, labels: serde_json::Value, programmed: &str) -> Mapping {
    serde_json::from_value(json!({
        "apiVersion": "legate.dev/v1alpha1",
        "kind": "Mapping",
        "metadata": {
            "name": "quote", "namespace": "shop", "uid": "u-1",
            "generation": generation, "resourceVersion": resource_version, "labels": labels,
        },
        "spec": { "hostname": "shop.example.com", "prefix": "/", "service": "quote" },
        "status": { "observedGeneration": generation, "conditions": [{
            "type": "Programmed", "status": programmed, "reason": "Programmed", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation,
        }]},
    }))
    .expect("a valid Mapping")
}

/// How many times `events` fire the change signal (each fires one rebuild).
async fn rebuilds<K>(events: Vec<Event<K>>, relevance: Relevance) -> u64
where
    K: kube::Resource + Send + 'static,
    K::DynamicType: Default,
{
    let (changed, rx) = watch::channel(0u64);
    let (listed, _) = watch::channel(0usize);
    let results: Vec<Result<Event<K>, watcher::Error>> = events.into_iter().map(Ok).collect();
    forward_changes(
        stream::iter(results),
        relevance,
        Arc::new(Signals { changed, listed }),
    )
    .await;
    *rx.borrow()
}

#[tokio::test]
async fn a_status_patch_on_a_mapping_rebuilds_nothing() {
    let no_labels = json!({});
    let events = vec![
        Event::Init,
        Event::InitApply(mapping(1, "10", no_labels.clone(), "Unknown")),
        Event::InitDone,
        // The operator's own status writes: new resourceVersion, same generation.
        Event::Apply(mapping(1, "11", no_labels.clone(), "False")),
        Event::Apply(mapping(1, "12", no_labels.clone(), "True")),
    ];
    assert_eq!(
        rebuilds(events, Relevance::spec_and_metadata()).await,
        1,
        "only the first listing rebuilds"
    );
}

#[tokio::test]
async fn spec_label_and_deletion_changes_rebuild_once_each() {
    let no_labels = json!({});
    let team = json!({ "team": "shop" });
    let events = vec![
        Event::Init,
        Event::InitApply(mapping(1, "10", no_labels.clone(), "True")),
        Event::InitDone,
        Event::Apply(mapping(2, "11", no_labels.clone(), "True")), // spec
        Event::Apply(mapping(2, "12", no_labels.clone(), "False")), // status only
        Event::Apply(mapping(2, "13", team.clone(), "False")),     // labels
        Event::Apply(mapping(2, "14", team.clone(), "True")),      // status only
        Event::Delete(mapping(2, "15", team, "True")),
    ];
    assert_eq!(rebuilds(events, Relevance::spec_and_metadata()).await, 4);
}

#[tokio::test]
async fn a_relist_that_finds_what_was_known_rebuilds_nothing_but_a_changed_one_does() {
    let no_labels = json!({});
    let listing = |generation| {
        vec![
            Event::Init,
            Event::InitApply(mapping(generation, "10", no_labels.clone(), "True")),
            Event::InitDone,
        ]
    };
    let mut events = listing(1);
    events.extend(listing(1)); // the watch restarted; nothing changed meanwhile
    assert_eq!(rebuilds(events, Relevance::spec_and_metadata()).await, 1);
    let mut events = listing(1);
    events.extend(listing(2)); // changed while the watch was down
    assert_eq!(rebuilds(events, Relevance::spec_and_metadata()).await, 2);
}

#[tokio::test]
async fn kinds_without_a_generation_rebuild_on_every_update() {
    let service = |rv: &str| -> Service {
        serde_json::from_value(json!({
            "metadata": { "name": "quote", "namespace": "shop", "resourceVersion": rv },
            "spec": { "ports": [{ "port": 80 }] },
        }))
        .expect("a valid Service")
    };
    let events = vec![
        Event::Init,
        Event::InitApply(service("1")),
        Event::InitDone,
        Event::Apply(service("2")),
        Event::Apply(service("3")),
        Event::Delete(service("3")),
    ];
    assert_eq!(rebuilds(events, Relevance::every_update()).await, 4);
}

#[test]
fn a_watch_retries_within_two_seconds_however_long_the_outage() {
    let delays: Vec<std::time::Duration> = super::watch_backoff().take(30).collect();
    assert_eq!(delays.len(), 30, "it never gives up");
    assert!(delays[0] <= std::time::Duration::from_millis(400), "{delays:?}");
    assert!(
        delays.iter().all(|d| *d <= std::time::Duration::from_secs(4)),
        "with jitter, never far past the 2 s cap: {delays:?}"
    );
}
