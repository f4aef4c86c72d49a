//! The Gateway controller: its Envoy fleet and its status.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use legate_crds::Gateway;
use legate_crds::conditions::{condition, reasons, types};
use legate_crds::gateway::GatewayAddress;
use serde_json::json;

use super::{Context, Error};
use crate::fleet;
use crate::status;
use legate_model::gateway_key;

/// Even an idle Gateway is looked at hourly: its certificate may be due for renewal.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(3600);
/// A fallback while the engine has not judged a Gateway's generation yet
/// (its verdict requeues the Gateway sooner).
const UNJUDGED_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// What the fleet looked like after Legate last applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetMark {
    gateway_generation: Option<i64>,
    deployment_generation: Option<i64>,
    /// When the Gateway's xDS client certificate expires (renewed ahead of it).
    certificate_not_after: Option<String>,
    /// The xDS CA bundle its certificate Secret carries: a rotation moves
    /// it, and the fleet is applied again (a new Secret, rolled pods).
    ca_bundle: Option<String>,
}

/// How fleets are built.
pub type FleetConfig = fleet::FleetSettings;

pub async fn reconcile(gateway: Arc<Gateway>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.shared.metrics.reconcile_started("Gateway");
    let result = reconcile_inner(gateway.clone(), &ctx).await;
    timer.finish(result.is_ok());
    if result.is_ok() {
        ctx.reconciled(gateway.as_ref());
    }
    result
}

async fn reconcile_inner(gateway: Arc<Gateway>, ctx: &Arc<Context>) -> Result<Action, Error> {
    if !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    if gateway.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = gateway.namespace().unwrap_or_default();
    let key = gateway_key(&gateway);
    let mut deployment = None;
    let mut service = None;
    if let Some(fleet) = &ctx.fleet {
        let name = fleet::fleet_name(&gateway);
        (deployment, service) = read_fleet(ctx, &namespace, &name, &key).await?;
        // Apply only when the Gateway changed or someone changed the fleet:
        // an unchanged world sends no writes at all.
        let remembered = ctx.fleet_marks.lock().ok().and_then(|m| m.get(&key).cloned());
        let ca_bundle = fleet.ca.as_ref().and_then(|ca| Some(ca.read()?.bundle_hash()));
        let live = FleetMark {
            gateway_generation: gateway.meta().generation,
            deployment_generation: deployment.as_ref().and_then(|d| d.meta().generation),
            certificate_not_after: remembered.as_ref().and_then(|m| m.certificate_not_after.clone()),
            ca_bundle: ca_bundle.clone(),
        };
        let renew = fleet.ca.as_ref().is_some_and(|ca| {
            crate::pki::needs_renewal_within(
                live.certificate_not_after.as_deref(),
                ca.lifetimes().leaf_renew_before,
            )
        });
        if service.is_none() || renew || remembered.as_ref() != Some(&live) {
            let certificate_not_after = fleet::apply(&ctx.client, &gateway, fleet)
                .await
                .map_err(Error::Fleet)?;
            (deployment, service) = read_fleet(ctx, &namespace, &name, &key).await?;
            let applied = FleetMark {
                gateway_generation: gateway.meta().generation,
                deployment_generation: deployment.as_ref().and_then(|d| d.meta().generation),
                certificate_not_after,
                ca_bundle,
            };
            if let Ok(mut marks) = ctx.fleet_marks.lock() {
                marks.insert(key.clone(), applied);
            }
        }
    }

    let generation = gateway.meta().generation;
    let snapshot = ctx.shared.cache.snapshot(&key);
    let (proxies, in_sync) = ctx.shared.with_program(|p| {
        (
            p.proxies(&key),
            snapshot.as_ref().is_none_or(|s| p.in_sync(&key, s)),
        )
    });
    let mut desired = vec![condition(
        types::ACCEPTED,
        true,
        reasons::ACCEPTED,
        format!("{} listeners", gateway.spec.listeners.len()),
        generation,
    )];
    desired.push(match (proxies, in_sync) {
        (0, _) => condition(
            types::PROGRAMMED,
            false,
            reasons::NO_PROXIES,
            "No Envoy of this Gateway is connected",
            generation,
        ),
        (n, true) => condition(
            types::PROGRAMMED,
            true,
            reasons::PROGRAMMED,
            format!("{n} connected Envoys run the current configuration"),
            generation,
        ),
        (n, false) => condition(
            types::PROGRAMMED,
            false,
            reasons::PENDING,
            format!("{n} connected Envoys; not all have applied the current configuration"),
            generation,
        ),
    });
    // What the Gateway itself refers to (its tracing collector).
    let reference = legate_model::object_ref(gateway.as_ref());
    let judged = ctx
        .shared
        .verdict(&reference.key())
        .filter(|v| v.object.generation() == reference.generation());
    // Its conditions are judged and written together: until the engine has
    // judged this generation, write nothing (the engine requeues the
    // Gateway when it publishes the verdict), rather than a Programmed now
    // and a ResolvedRefs a moment later.
    let Some(judged) = judged else {
        tracing::debug!(gateway = %key, "status: waiting for the engine's verdict");
        return Ok(Action::requeue(UNJUDGED_RECHECK));
    };
    desired.push(match judged.resolved_refs.clone() {
        Ok(()) => condition(
            types::RESOLVED_REFS,
            true,
            reasons::RESOLVED_REFS,
            "Every Service it refers to exists",
            generation,
        ),
        Err(problem) => condition(
            types::RESOLVED_REFS,
            false,
            problem.reason,
            problem.message,
            generation,
        ),
    });
    let deploy_status = deployment.as_ref().and_then(|d| d.status.clone());
    if ctx.fleet.is_some() {
        let available = deploy_status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Available"))
            .is_some_and(|c| c.status == "True");
        desired.push(if available {
            condition(
                types::AVAILABLE,
                true,
                "MinimumReplicasAvailable",
                "The Envoy Deployment is available",
                generation,
            )
        } else {
            condition(
                types::AVAILABLE,
                false,
                "MinimumReplicasUnavailable",
                "The Envoy Deployment does not have its minimum of ready pods",
                generation,
            )
        });
    }
    let addresses: Vec<GatewayAddress> = service.as_ref().map(addresses_of).unwrap_or_default();
    let current_status = gateway.status.clone().unwrap_or_default();
    if ctx.in_restart_grace() {
        status::hold_programmed_after_restart(&current_status.conditions, &mut desired);
    }
    let (conditions, transitions) = status::merge(&current_status.conditions, desired);
    let next = json!({
        "observedGeneration": generation,
        "conditions": conditions,
        "addresses": addresses,
        "replicas": deploy_status.as_ref().and_then(|s| s.replicas),
        "readyReplicas": deploy_status.as_ref().and_then(|s| s.ready_replicas),
        "proxies": proxies,
        "configVersion": snapshot.as_deref().map(|s| crate::engine::routing_serial(s).to_string()),
    });
    let current = serde_json::to_value(&current_status).unwrap_or_default();
    let unchanged = status::same(&current_status.conditions, &conditions)
        && [
            "observedGeneration",
            "addresses",
            "replicas",
            "readyReplicas",
            "proxies",
            "configVersion",
        ]
        .iter()
        .all(|f| normalize(&current[f]) == normalize(&next[f]));
    if unchanged {
        tracing::debug!(gateway = %key, proxies, "status: unchanged");
        return Ok(Action::requeue(recheck(ctx)));
    }
    // Waiting for the proxies to ACK a change is usually over in milliseconds.
    let awaiting = proxies > 0 && !in_sync;
    let now = std::time::Instant::now();
    if let Some(wait) = ctx.gateway_pacer.check(&key, awaiting, now) {
        tracing::debug!(gateway = %key, proxies, ?wait, "status: paced");
        return Ok(Action::requeue(wait));
    }
    tracing::debug!(gateway = %key, proxies, "status: writing");
    Api::<Gateway>::namespaced(ctx.client.clone(), &namespace)
        .patch_status(
            &gateway.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": next })),
        )
        .await
        .map_err(|source| Error::Status {
            object: format!("Gateway/{key}"),
            source,
        })?;
    ctx.gateway_pacer.wrote(&key, now);
    super::publish_transitions(gateway.as_ref(), &transitions, ctx).await;
    Ok(Action::requeue(recheck(ctx)))
}

/// When to look at an unchanged Gateway again: hourly, or at the xDS CA's
/// check interval when that is shorter, so a certificate is renewed in time.
fn recheck(ctx: &Context) -> std::time::Duration {
    ctx.fleet
        .as_ref()
        .and_then(|f| f.ca.as_ref())
        .and_then(|ca| std::time::Duration::try_from(ca.lifetimes().check_interval).ok())
        .map_or(RECHECK, |interval| interval.min(RECHECK))
}

/// The fleet's Deployment and Service as they are now (either may not exist yet).
async fn read_fleet(
    ctx: &Context,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<(Option<Deployment>, Option<Service>), Error> {
    let deployment = Api::<Deployment>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(read_error("Deployment", key))?;
    let service = Api::<Service>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(read_error("Service", key))?;
    Ok((deployment, service))
}

/// A failed read of a fleet object, for the reconcile error (and the log).
fn read_error<'a>(kind: &'static str, gateway: &'a str) -> impl FnOnce(kube::Error) -> Error + 'a {
    move |source| Error::ReadFleet {
        gateway: gateway.to_string(),
        kind,
        source,
    }
}

/// Absent, null and empty mean the same in a status.
fn normalize(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Array(a) if a.is_empty() => serde_json::Value::Null,
        other => other.clone(),
    }
}

fn addresses_of(service: &Service) -> Vec<GatewayAddress> {
    let mut out = Vec::new();
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    for i in ingress.into_iter().flatten() {
        if let Some(ip) = &i.ip {
            out.push(GatewayAddress {
                type_: "IPAddress".into(),
                value: ip.clone(),
            });
        }
        if let Some(host) = &i.hostname {
            out.push(GatewayAddress {
                type_: "Hostname".into(),
                value: host.clone(),
            });
        }
    }
    if out.is_empty()
        && let Some(ip) = service
            .spec
            .as_ref()
            .and_then(|s| s.cluster_ip.clone())
            .filter(|ip| ip != "None")
    {
        out.push(GatewayAddress {
            type_: "IPAddress".into(),
            value: ip,
        });
    }
    out
}
