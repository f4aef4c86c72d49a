//! The control plane is real: the API server stores and watches objects, and
//! kube-controller-manager reconciles them.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, PostParams};
use kube::runtime::watcher::{self, Event};
use legate_tests::TestEnv;
use legate_tests::net::eventually;

#[tokio::test]
async fn api_server_stores_and_watches_a_configmap() {
    let env = TestEnv::new().await;
    let configmaps = env.api::<ConfigMap>();

    // Start watching before the write so that the event cannot be missed.
    let mut events = watcher::watcher(configmaps.clone(), watcher::Config::default()).boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), events.try_next())
        .await
        .expect("the watch starts within 10s")
        .expect("the watch starts without error");
    assert!(
        matches!(first, Some(Event::Init)),
        "a watch begins with Init, got {first:?}"
    );

    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "greeting" },
        "data": { "hello": "world" }
    }))
    .expect("a valid ConfigMap");
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .expect("the API server stores the ConfigMap");

    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.try_next().await.expect("the watch keeps running") {
            if let Event::Apply(cm) | Event::InitApply(cm) = event
                && cm.metadata.name.as_deref() == Some("greeting")
            {
                return cm;
            }
        }
        panic!("the watch ended before the ConfigMap was seen");
    })
    .await
    .expect("the watch delivers the new ConfigMap within 10s");
    assert_eq!(
        seen.data.unwrap_or_default().get("hello").map(String::as_str),
        Some("world")
    );

    let stored = configmaps
        .get("greeting")
        .await
        .expect("the ConfigMap reads back");
    assert!(
        stored.metadata.resource_version.is_some(),
        "etcd assigned a resourceVersion"
    );
}

#[tokio::test]
async fn controller_manager_gives_a_deployment_a_replicaset() {
    let env = TestEnv::new().await;
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:1" }] }
            }
        }
    }))
    .expect("a valid Deployment");
    env.api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("the API server stores the Deployment");

    let replicasets = env.api::<ReplicaSet>();
    let owner = eventually(
        "a ReplicaSet owned by Deployment web",
        Duration::from_secs(30),
        || {
            let replicasets = replicasets.clone();
            async move {
                let list = replicasets.list(&ListParams::default()).await.ok()?;
                list.items.into_iter().find_map(|rs| {
                    rs.metadata
                        .owner_references?
                        .into_iter()
                        .find(|o| o.kind == "Deployment" && o.name == "web")
                })
            }
        },
    )
    .await;
    assert_eq!(owner.controller, Some(true));
}

#[tokio::test]
async fn server_reports_the_kubernetes_version_it_was_built_as() {
    let env = TestEnv::new().await;
    let version = env.client.apiserver_version().await.expect("GET /version");
    assert_eq!(
        version.git_version, "v1.37.2",
        "the build stamps the real version: {version:?}"
    );
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "37"));
}
