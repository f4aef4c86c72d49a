//! Applying YAML the way a user does: Legate's CRDs from `manifests/crds/`,
//! then documents of any kind by server-side apply.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use kube::{Api, Client};

use crate::net::eventually;
use crate::workspace;

/// The field manager of everything tests apply.
pub const FIELD_MANAGER: &str = "legate-tests";

/// Parses a multi-document YAML string into JSON objects (empty documents skipped).
pub fn documents(yaml: &str) -> Vec<serde_json::Value> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("invalid YAML: {e}\n{yaml}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Applies the committed CRDs (what users install) and waits until each is Established.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = workspace::root().join("manifests").join("crds");
    let mut names = Vec::new();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        for doc in documents(&text) {
            let crd: CustomResourceDefinition = serde_json::from_value(doc)
                .unwrap_or_else(|e| panic!("{} is not a CustomResourceDefinition: {e}", path.display()));
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("the API server refused CRD {name} from {}: {e}", path.display()));
            names.push(name);
        }
    }
    assert!(!names.is_empty(), "no CRDs found in {}", dir.display());
    for name in names {
        eventually(
            &format!("CRD {name} to be Established"),
            Duration::from_secs(30),
            || {
                let crds = crds.clone();
                let name = name.clone();
                async move {
                    let crd = crds.get(&name).await.ok()?;
                    let established = crd
                        .status?
                        .conditions?
                        .into_iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    established.then_some(())
                }
            },
        )
        .await;
    }
}

/// Server-side applies one object (JSON with apiVersion, kind, metadata.name) into `namespace`.
pub async fn apply(
    client: &Client,
    namespace: &str,
    object: &serde_json::Value,
) -> Result<DynamicObject, kube::Error> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api = dynamic_api(client, namespace, object).await?;
    api.patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(object))
        .await
}

/// Creates one object (a POST, as `kubectl create` and a first `kubectl apply` do) in `namespace`.
pub async fn create(
    client: &Client,
    namespace: &str,
    object: &serde_json::Value,
) -> Result<DynamicObject, kube::Error> {
    let api = dynamic_api(client, namespace, object).await?;
    let object: DynamicObject = serde_json::from_value(object.clone()).map_err(kube::Error::SerdeError)?;
    api.create(&kube::api::PostParams::default(), &object).await
}

async fn dynamic_api(
    client: &Client,
    namespace: &str,
    object: &serde_json::Value,
) -> Result<Api<DynamicObject>, kube::Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    // Discovery catches up with a CRD a moment after it is Established: a
    // kind it does not list yet is asked for again, for a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match pinned_kind(client, &gvk).await {
            Ok((resource, _caps)) => return Ok(Api::namespaced_with(client.clone(), namespace, &resource)),
            Err(kube::Error::Discovery(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads one object of any kind (by apiVersion and kind) from `namespace`.
pub async fn get(
    client: &Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Result<Option<DynamicObject>, kube::Error> {
    let probe = serde_json::json!({ "apiVersion": api_version, "kind": kind });
    dynamic_api(client, namespace, &probe).await?.get_opt(name).await
}

/// Waits until a Legate object's condition `type_` has `status`, and returns
/// the whole condition (reason, message, observedGeneration).
pub async fn wait_condition(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    type_: &str,
    status: &str,
    timeout: Duration,
) -> serde_json::Value {
    let what = format!("{kind} {namespace}/{name} to have {type_}={status}");
    let last = std::sync::Arc::new(std::sync::Mutex::new(serde_json::Value::Null));
    let seen = last.clone();
    let result = tokio::time::timeout(
        timeout,
        eventually(&what, timeout + Duration::from_secs(1), || {
            let seen = seen.clone();
            async move {
                let object = get(client, namespace, "legate.dev/v1alpha1", kind, name)
                    .await
                    .ok()??;
                let conditions = object.data["status"]["conditions"].as_array()?.clone();
                if let Ok(mut s) = seen.lock() {
                    *s = serde_json::Value::Array(conditions.clone());
                }
                conditions
                    .into_iter()
                    .find(|c| c["type"] == type_ && c["status"] == status)
            }
        }),
    )
    .await;
    match result {
        Ok(condition) => condition,
        Err(_) => {
            let conditions = last.lock().map(|c| c.clone()).unwrap_or_default();
            panic!("timed out after {timeout:?} waiting for {what}; its conditions were {conditions:#}")
        }
    }
}
