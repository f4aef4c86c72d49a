//! The controller of every kind whose status is the common ObjectStatus:
//! Mapping, TLSContext, AuthService, RateLimitService and TCPMapping.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{ReflectHandle, Store};
use kube::{Api, Resource, ResourceExt};
use legate_crds::{AuthService, Mapping, ObjectStatus, RateLimitService, TCPMapping, TLSContext};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Context, Error, error_policy, finalizer, triggers};
use crate::status;
use legate_model::object_ref;

/// How long a deletion waits for the proxies before it goes ahead anyway.
const DELETION_GRACE: Duration = Duration::from_secs(10);

/// A kind with the common status.
pub trait Routed:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Whether deleting it waits for Envoy to stop routing it.
    const HOLDS_TRAFFIC: bool;
    fn object_status(&self) -> Option<&ObjectStatus>;
}

macro_rules! routed {
    ($kind:ty, $holds:expr) => {
        impl Routed for $kind {
            const HOLDS_TRAFFIC: bool = $holds;
            fn object_status(&self) -> Option<&ObjectStatus> {
                self.status.as_ref()
            }
        }
    };
}
routed!(Mapping, true);
routed!(TCPMapping, true);
routed!(TLSContext, false);
routed!(AuthService, false);
routed!(RateLimitService, false);

/// The controller for kind `K`, fed by the world's watch of `K`.
pub fn controller<K: Routed>(
    updates: ReflectHandle<K>,
    store: Store<K>,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    let requeued = ctx
        .shared
        .requeues
        .take::<K>()
        .map(StreamExt::boxed)
        .unwrap_or_else(|| futures::stream::empty().boxed());
    Controller::for_shared_stream(updates, store)
        .reconcile_on(requeued)
        .reconcile_all_on(triggers(ctx.shared.triggers()))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy, ctx)
        .for_each(|_| async {})
}

async fn reconcile<K: Routed>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.shared.metrics.reconcile_started(&K::kind(&()));
    let result = reconcile_inner(object.clone(), &ctx).await;
    timer.finish(result.is_ok());
    if result.is_ok() {
        ctx.reconciled(object.as_ref());
    }
    result
}

async fn reconcile_inner<K: Routed>(object: Arc<K>, ctx: &Arc<Context>) -> Result<Action, Error> {
    tracing::trace!(kind = %K::kind(&()), object = %format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any()), leader = ctx.is_leader(), "reconcile");
    if !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    if !K::HOLDS_TRAFFIC {
        return write_status(object.as_ref(), ctx).await;
    }
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    if object.meta().deletion_timestamp.is_some() {
        if finalizer::has(object.as_ref()) {
            wait_until_unrouted(object.as_ref(), ctx).await?;
            finalizer::remove(&api, object.as_ref()).await?;
            let key = object_ref(object.as_ref()).key();
            ctx.shared.forget_released(&key);
        }
        ctx.object_pacer.forget(&object_ref(object.as_ref()).key());
        ctx.finalizers_added.forget(object.as_ref());
        return Ok(Action::await_change());
    }
    if ctx.finalizers_added.needed(object.as_ref()) {
        finalizer::add(&api, object.as_ref()).await?;
        ctx.finalizers_added.added(object.as_ref());
    }
    write_status(object.as_ref(), ctx).await
}

async fn write_status<K: Routed>(object: &K, ctx: &Context) -> Result<Action, Error> {
    let reference = object_ref(object);
    let Some(verdict) = ctx.shared.verdict(&reference.key()) else {
        // The engine has not seen it yet; it requeues the object when it does.
        return Ok(Action::await_change());
    };
    if verdict.object.generation() != reference.generation() {
        return Ok(Action::await_change());
    }
    let (mut desired, awaiting) = ctx
        .shared
        .with_program(|program| status::object_conditions(&verdict, program));
    if desired
        .iter()
        .any(|c| c.type_ == legate_crds::conditions::types::PROGRAMMED && c.status == "True")
    {
        ctx.shared
            .metrics
            .change_programmed(&reference.key(), reference.generation());
    }
    let current: Vec<Condition> = object
        .object_status()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    if ctx.in_restart_grace() {
        status::hold_programmed_after_restart(&current, &mut desired);
    }
    let observed = object.object_status().and_then(|s| s.observed_generation);
    let (next, transitions) = status::merge(&current, desired);
    if status::same(&current, &next) && observed == Some(reference.generation()) {
        return Ok(Action::await_change());
    }
    let now = std::time::Instant::now();
    if let Some(wait) = ctx.object_pacer.check(&reference.key(), awaiting, now) {
        return Ok(Action::requeue(wait));
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let patch = json!({
        "status": { "observedGeneration": reference.generation(), "conditions": next }
    });
    api.patch_status(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Status {
            object: reference.key(),
            source,
        })?;
    ctx.object_pacer.wrote(&reference.key(), now);
    super::publish_transitions(object, &transitions, ctx).await;
    Ok(Action::await_change())
}

/// Deleting: done when no Gateway's snapshot carries the object and every
/// proxy has applied that, or when the grace period is over.
async fn wait_until_unrouted<K: Routed>(object: &K, ctx: &Context) -> Result<(), Error> {
    let key = object_ref(object).key();
    let reference = object.object_ref(&());
    let still_routed: Vec<String> = ctx
        .shared
        .cache
        .gateways()
        .into_iter()
        .filter(|gateway| {
            let Some(snapshot) = ctx.shared.cache.snapshot(gateway) else {
                return false;
            };
            ctx.shared
                .with_program(|p| p.still_routes(gateway, &key, &snapshot))
        })
        .collect();
    if still_routed.is_empty() {
        return Ok(());
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        for gateway in &still_routed {
            let why = ctx.shared.cache.snapshot(gateway).and_then(|snapshot| {
                ctx.shared.with_program(|p| {
                    if p.carries(gateway, &key) {
                        Some("its snapshot carries it".to_string())
                    } else {
                        p.first_lag(gateway, &snapshot)
                    }
                })
            });
            tracing::debug!(object = %key, %gateway, why = why.as_deref().unwrap_or("reconnecting proxies"), "deletion waits");
        }
    }
    let deleting_for = object
        .meta()
        .deletion_timestamp
        .as_ref()
        .map(|t| {
            let now = k8s_openapi::jiff::Timestamp::now();
            now.duration_since(t.0).unsigned_abs()
        })
        .unwrap_or_default();
    if deleting_for >= DELETION_GRACE {
        let event = Event {
            type_: EventType::Warning,
            reason: "DeletionTimeout".into(),
            note: Some(format!(
                "Envoys of Gateway {} had not confirmed the removal after {}s; deleting anyway",
                still_routed.join(", "),
                DELETION_GRACE.as_secs()
            )),
            action: "Delete".into(),
            secondary: None,
        };
        let _ = ctx.recorder.publish(&event, &reference).await;
        return Ok(());
    }
    Err(Error::StillRouted(key))
}
