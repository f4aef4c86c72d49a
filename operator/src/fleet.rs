//! A Gateway's Envoy fleet: ServiceAccount, ConfigMap (the bootstrap),
//! Deployment, PodDisruptionBudget and Service, the Secret with the Envoys'
//! xDS client certificate, and with `spec.autoscaling` a
//! HorizontalPodAutoscaler. Every one of them is a typed k8s-openapi object
//! applied through one helper, [`Owner::apply`]: server-side apply with field
//! manager `legate`, the Gateway's labels, and the Gateway as controller
//! owner, so that deleting the Gateway garbage-collects them.
//!
//! With `spec.autoscaling`, the Deployment is applied without `replicas`, so
//! that neither the autoscaler's count nor a `kubectl scale` is undone; see
//! [`apply_autoscaled_deployment`] for how the count passes from Legate to
//! the autoscaler without a dip.
//!
//! With xDS over mTLS, the Gateway controller applies a fleet again when the
//! CA's bundle moves on (a rotation) or its certificate nears expiry: every
//! change of the CA reconciles every Gateway.

mod certificate;
mod objects;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client, Resource, ResourceExt};
use legate_crds::Gateway;
use legate_crds::gateway::Autoscaling;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::pki::{PkiError, SharedCa};

use certificate::ensure_certificate;
// What the fleet's tests (`use super::*`) check the certificate Secret with.
#[cfg(test)]
use crate::pki::{Authority, BUNDLE_ANNOTATION, CA_CERT_KEY, CERT_KEY, KEY_KEY, NOT_AFTER_ANNOTATION};
#[cfg(test)]
use certificate::certificate_secret;

pub use objects::Fleet;

/// The field manager of everything Legate applies.
pub const FIELD_MANAGER: &str = "legate";
/// The field manager that keeps an autoscaled Deployment's `replicas` when
/// Legate lets go of them (see [`apply_autoscaled_deployment`]). It sets them
/// once, at the hand-over; the autoscaler's or anyone's scaling takes them
/// from it.
pub const REPLICAS_HANDOVER_MANAGER: &str = "legate-replicas-handover";
/// The bootstrap's file name in the ConfigMap and in the pod.
pub const BOOTSTRAP_KEY: &str = "envoy.yaml";
/// Label on every fleet object, naming the Gateway.
pub const GATEWAY_LABEL: &str = "legate.dev/gateway";
/// Label on every object Legate applies.
const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The name of every fleet object of a Gateway.
pub fn fleet_name(gateway: &Gateway) -> String {
    format!("{}-envoy", gateway.name_any())
}

/// The probe listener in pods.
pub const HEALTH_PORT: u16 = 19001;
/// Where pods put Envoy's admin API: a Unix socket in an emptyDir of its own
/// (the root filesystem is read-only), never a TCP port, which a tenant's
/// route to a name resolving to 127.0.0.1 could reach.
pub const ADMIN_SOCKET_DIR: &str = "/run/envoy-admin";
pub const ADMIN_SOCKET: &str = "/run/envoy-admin/admin.sock";

/// How fleets are built, from the operator's flags.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// Where Envoys find the xDS server.
    pub xds_host: String,
    pub xds_port: u16,
    /// Give Envoy the probe listener (pods); off when Envoys run on this machine.
    pub probes: bool,
    /// The CA that issues each Gateway's xDS client certificate (xDS over mTLS).
    pub ca: Option<Arc<SharedCa>>,
}

/// Where the pod mounts its xDS client certificate; `legate bootstrap` and
/// local runs replace this directory with their own.
pub const XDS_TLS_DIR: &str = "/etc/envoy/xds-tls";

/// The Secret with a Gateway's xDS client certificate.
pub fn xds_secret_name(gateway: &Gateway) -> String {
    format!("{}-envoy-xds", gateway.name_any())
}

/// Why a Gateway's fleet could not be applied; the Gateway controller retries.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(
        "Gateway {name} has no namespace or no uid, so it cannot own a fleet; \
         only a Gateway read from the API server can"
    )]
    NotStored { name: String },
    #[error("a {kind} of the fleet was built without a name; this is a bug in Legate")]
    Unnamed { kind: &'static str },
    #[error(
        "applying {kind} {object}: {source}; if the API server answered 403, \
         the operator's ClusterRole lacks patch on {kind}s"
    )]
    Apply {
        kind: &'static str,
        /// `namespace/name`
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "reading {kind} {object}: {source}; if the API server answered 403, \
         the operator's ClusterRole lacks get on {kind}s"
    )]
    Read {
        kind: &'static str,
        /// `namespace/name`
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "deleting {kind} {object}: {source}; if the API server answered 403, \
         the operator's ClusterRole lacks delete on {kind}s"
    )]
    Delete {
        kind: &'static str,
        /// `namespace/name`
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "reading Secret {secret}, the Envoys' xDS client certificate: {source}; \
         the operator needs get on Secrets in the Gateway's namespace"
    )]
    ReadCertificate {
        secret: String,
        #[source]
        source: kube::Error,
    },
    #[error("issuing the xDS client certificate of Gateway {gateway}: {source}")]
    Issue {
        gateway: String,
        #[source]
        source: PkiError,
    },
    #[error(
        "the xDS CA cannot be read: a thread panicked while replacing it; \
         restart the operator to load it again"
    )]
    CaPoisoned,
    #[error(
        "Secret {secret}, the Envoys' xDS client certificate, kept changing while Legate \
         reissued it (another replica may be reissuing it); the next reconcile tries again"
    )]
    CertificateKeptChanging { secret: String },
}

/// A Gateway as the owner of its children, and the one way they are applied.
#[derive(Debug, Clone)]
pub struct Owner {
    /// The Gateway's name and namespace, and both as `namespace/name`.
    name: String,
    namespace: String,
    key: String,
    reference: OwnerReference,
}

impl Owner {
    /// A Gateway as it was read from the API server: it has a namespace and a uid.
    pub fn of(gateway: &Gateway) -> Result<Owner, FleetError> {
        let name = gateway.name_any();
        let (Some(namespace), Some(reference)) = (gateway.namespace(), gateway.controller_owner_ref(&()))
        else {
            return Err(FleetError::NotStored { name });
        };
        Ok(Owner {
            key: format!("{namespace}/{name}"),
            name,
            namespace,
            reference,
        })
    }

    /// The Gateway as `namespace/name`: the `node.cluster` of its Envoys.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The labels every child carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        [
            (MANAGED_BY_LABEL.to_string(), FIELD_MANAGER.to_string()),
            (GATEWAY_LABEL.to_string(), self.name.clone()),
        ]
        .into()
    }

    /// Selects the Gateway's Envoy pods.
    pub fn selector(&self) -> BTreeMap<String, String> {
        [(GATEWAY_LABEL.to_string(), self.name.clone())].into()
    }

    /// Puts `object` in the Gateway's namespace, adds the Gateway's labels to
    /// its own, and makes the Gateway its controller owner.
    pub fn adopt<K: Resource<DynamicType = ()>>(&self, mut object: K) -> K {
        let meta = object.meta_mut();
        meta.namespace = Some(self.namespace.clone());
        meta.labels
            .get_or_insert_with(BTreeMap::new)
            .extend(self.labels());
        meta.owner_references = Some(vec![self.reference.clone()]);
        object
    }

    /// Adopts `object` and applies it server-side as field manager `legate`,
    /// taking over fields another manager set (someone's `kubectl edit` of a
    /// fleet object is undone).
    pub async fn apply<K>(&self, client: &Client, object: K) -> Result<K, FleetError>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + k8s_openapi::Resource
            + Serialize
            + DeserializeOwned
            + Clone
            + Debug,
    {
        let object = self.adopt(object);
        let kind = <K as k8s_openapi::Resource>::KIND;
        let Some(name) = object.meta().name.clone() else {
            return Err(FleetError::Unnamed { kind });
        };
        Api::<K>::namespaced(client.clone(), &self.namespace)
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .map_err(|source| FleetError::Apply {
                kind,
                object: format!("{}/{name}", self.namespace),
                source,
            })
    }
}

impl Owner {
    /// A child as it is now, if it exists.
    async fn get<K>(&self, client: &Client, name: &str) -> Result<Option<K>, FleetError>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + k8s_openapi::Resource
            + DeserializeOwned
            + Clone
            + Debug,
    {
        Api::<K>::namespaced(client.clone(), &self.namespace)
            .get_opt(name)
            .await
            .map_err(|source| FleetError::Read {
                kind: <K as k8s_openapi::Resource>::KIND,
                object: format!("{}/{name}", self.namespace),
                source,
            })
    }

    /// Deletes the object `name` of kind `K` if the Gateway owns it (a
    /// user's own object of that name is left alone).
    async fn delete_owned<K>(&self, client: &Client, name: &str) -> Result<(), FleetError>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + k8s_openapi::Resource
            + DeserializeOwned
            + Clone
            + Debug,
    {
        let Some(live) = self.get::<K>(client, name).await? else {
            return Ok(());
        };
        let ours = live
            .owner_references()
            .iter()
            .any(|r| r.uid == self.reference.uid);
        if !ours {
            return Ok(());
        }
        let kind = <K as k8s_openapi::Resource>::KIND;
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: live.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match Api::<K>::namespaced(client.clone(), &self.namespace)
            .delete(name, &params)
            .await
        {
            Ok(_) => {
                tracing::info!(gateway = %self.key, kind, name, "deleted");
                Ok(())
            }
            // Already gone, or replaced by another object of that name.
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
            Err(source) => Err(FleetError::Delete {
                kind,
                object: format!("{}/{name}", self.namespace),
                source,
            }),
        }
    }

    /// Applies `replicas` to the Deployment `name` as
    /// [`REPLICAS_HANDOVER_MANAGER`], taking them from Legate's own apply.
    async fn hand_over_replicas(&self, client: &Client, name: &str, replicas: i32) -> Result<(), FleetError> {
        let patch = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": name },
            "spec": { "replicas": replicas },
        });
        Api::<Deployment>::namespaced(client.clone(), &self.namespace)
            .patch(
                name,
                &PatchParams::apply(REPLICAS_HANDOVER_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(|source| FleetError::Apply {
                kind: "Deployment",
                object: format!("{}/{name}", self.namespace),
                source,
            })?;
        tracing::info!(gateway = %self.key, replicas, "the Envoy Deployment's replicas are the autoscaler's now");
        Ok(())
    }
}

/// Applies every object of the fleet; returns when the Envoys' xDS client
/// certificate expires (when Envoys authenticate with one).
pub async fn apply(
    client: &Client,
    gateway: &Gateway,
    settings: &FleetSettings,
) -> Result<Option<String>, FleetError> {
    let owner = Owner::of(gateway)?;
    let not_after = match &settings.ca {
        Some(ca) => Some(ensure_certificate(client, &owner, gateway, ca).await?),
        None => None,
    };
    let fleet = Fleet::desired(&owner, gateway, settings, not_after.as_deref());
    owner.apply(client, fleet.service_account).await?;
    owner.apply(client, fleet.config_map).await?;
    match (fleet.autoscaler, &gateway.spec.autoscaling) {
        (Some(autoscaler), Some(autoscaling)) => {
            apply_autoscaled_deployment(client, &owner, fleet.deployment, autoscaling).await?;
            owner.apply(client, autoscaler).await?;
        }
        _ => {
            // The autoscaler goes first: once `replicas` are Legate's again,
            // nothing else may scale the Deployment.
            owner
                .delete_owned::<HorizontalPodAutoscaler>(client, &fleet_name(gateway))
                .await?;
            owner.apply(client, fleet.deployment).await?;
        }
    }
    owner.apply(client, fleet.pod_disruption_budget).await?;
    owner.apply(client, fleet.service).await?;
    Ok(not_after)
}

/// Applies the Deployment of an autoscaled Gateway without `replicas`.
///
/// Server-side apply removes a field its manager stops applying when no other
/// manager owns it, and a Deployment without `replicas` has one pod. So where
/// Legate owns the count (autoscaling was just turned on), another field
/// manager first applies the current count, kept within the autoscaler's
/// bounds, and Legate then lets go of a count that stays. A new Deployment
/// gets the autoscaler's minimum the same way. From then on the count is the
/// autoscaler's (its scale writes take the field over) or whoever's scales it.
async fn apply_autoscaled_deployment(
    client: &Client,
    owner: &Owner,
    deployment: Deployment,
    autoscaling: &Autoscaling,
) -> Result<(), FleetError> {
    let Some(name) = deployment.metadata.name.clone() else {
        return Err(FleetError::Unnamed { kind: "Deployment" });
    };
    let (min, max) = (
        autoscaling.min_replicas,
        autoscaling.max_replicas.max(autoscaling.min_replicas),
    );
    match owner.get::<Deployment>(client, &name).await? {
        None => {
            owner.apply(client, deployment).await?;
            owner.hand_over_replicas(client, &name, min).await
        }
        Some(live) if owns_replicas(&live) => {
            let current = live.spec.as_ref().and_then(|s| s.replicas).unwrap_or(min);
            owner
                .hand_over_replicas(client, &name, current.clamp(min, max))
                .await?;
            owner.apply(client, deployment).await.map(drop)
        }
        Some(_) => owner.apply(client, deployment).await.map(drop),
    }
}

/// Whether Legate's own apply sets the Deployment's `replicas`.
fn owns_replicas(deployment: &Deployment) -> bool {
    deployment.metadata.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() == Some(FIELD_MANAGER)
            && entry.operation.as_deref() == Some("Apply")
            && entry
                .fields_v1
                .as_ref()
                .is_some_and(|fields| fields.0.pointer("/f:spec/f:replicas").is_some())
    })
}

#[cfg(test)]
mod tests;
