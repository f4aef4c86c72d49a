//! The `legate.dev/routes` finalizer, added and removed without racing the
//! cache: added by server-side apply of that one list item (finalizers are a
//! set, so the apply touches nobody else's entry), removed by a JSON patch
//! that first tests that the entry is still where the cached copy shows it.
//! A stale cache makes the test fail and the removal is retried; it never
//! removes someone else's entry, and it needs no read (the operator may only
//! list and watch these kinds).

use std::collections::HashSet;
use std::sync::Mutex;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Error;

/// Held on route objects until Envoy no longer routes them.
pub const ROUTES_FINALIZER: &str = "legate.dev/routes";

/// The field manager that owns the finalizer entry.
const MANAGER: &str = "legate-finalizer";

/// The objects (by uid) the finalizer was added to whose cached copy does
/// not show it yet: a requeue that comes before the watch event must not
/// apply it again.
#[derive(Debug, Default)]
pub struct Added(Mutex<HashSet<String>>);

impl Added {
    /// Whether the object needs the finalizer added now.
    pub fn needed<K: Resource>(&self, object: &K) -> bool {
        let uid = object.uid().unwrap_or_default();
        let mut added = self.lock();
        if has(object) {
            added.remove(&uid);
            return false;
        }
        !added.contains(&uid)
    }

    pub fn added<K: Resource>(&self, object: &K) {
        self.lock().insert(object.uid().unwrap_or_default());
    }

    /// The object is gone.
    pub fn forget<K: Resource>(&self, object: &K) {
        self.lock().remove(&object.uid().unwrap_or_default());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // Inserts and removes only: a poisoned set is still consistent.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub fn has<K: Resource>(object: &K) -> bool {
    object.finalizers().iter().any(|f| f == ROUTES_FINALIZER)
}

pub async fn add<K>(api: &Api<K>, object: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = object.name_any();
    let apply = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {
            "name": name,
            // A precondition: never re-create an object deleted meanwhile.
            "uid": object.uid(),
            "finalizers": [ROUTES_FINALIZER],
        },
    });
    api.patch(&name, &PatchParams::apply(MANAGER), &Patch::Apply(&apply))
        .await
        .map(|_| ())
        .map_err(|source| Error::Finalizer {
            action: "adding",
            object: key_of(object),
            source,
        })
}

pub async fn remove<K>(api: &Api<K>, object: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let Some(index) = object.finalizers().iter().position(|f| f == ROUTES_FINALIZER) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let ops = json!([
        { "op": "test", "path": path, "value": ROUTES_FINALIZER },
        { "op": "remove", "path": path },
    ]);
    let patch: json_patch::Patch = serde_json::from_value(ops).map_err(|e| Error::Finalizer {
        action: "removing",
        object: key_of(object),
        source: kube::Error::SerdeError(e),
    })?;
    match api
        .patch(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Gone already: nothing left to hold.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(Error::Finalizer {
            action: "removing",
            object: key_of(object),
            source,
        }),
    }
}

fn key_of<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}
