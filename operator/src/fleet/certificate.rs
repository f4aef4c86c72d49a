//! A Gateway's xDS client certificate: the Secret its Envoys mount, issued
//! by the operator's CA, reissued when the CA's bundle moves on (a rotation,
//! see [`crate::pki::rotation`]) or it nears expiry.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use legate_crds::Gateway;

use super::{
    FIELD_MANAGER, FleetError, FleetSettings, GATEWAY_LABEL, MANAGED_BY_LABEL, Owner, apply_fleet,
    xds_secret_name,
};
use crate::pki::{
    Authority, BUNDLE_ANNOTATION, CA_CERT_KEY, CERT_KEY, ISSUED_AT_ANNOTATION, KEY_KEY, NOT_AFTER_ANNOTATION,
    SharedCa, needs_renewal_within, rfc3339,
};

/// Whether a Gateway certificate Secret with these annotations must be
/// reissued: another CA bundle issued it, or it nears expiry.
fn certificate_due(
    annotations: &BTreeMap<String, String>,
    bundle_hash: &str,
    renew_before: time::Duration,
) -> bool {
    annotations.get(BUNDLE_ANNOTATION).map(String::as_str) != Some(bundle_hash)
        || needs_renewal_within(
            annotations.get(NOT_AFTER_ANNOTATION).map(String::as_str),
            renew_before,
        )
}

/// Makes sure the Gateway has a client certificate from the current CA that
/// is not about to expire; returns when it stops being valid. A certificate
/// is replaced only over the version judged due (its resourceVersion), so
/// that the Gateway controller and [`follow_ca`] never both reissue it.
pub(super) async fn ensure_certificate(
    client: &Client,
    owner: &Owner,
    gateway: &Gateway,
    ca: &SharedCa,
) -> Result<String, FleetError> {
    let name = xds_secret_name(gateway);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &owner.namespace);
    let issue_error = |source| FleetError::Issue {
        gateway: owner.key.clone(),
        source,
    };
    for _ in 0..3 {
        let existing = secrets
            .get_opt(&name)
            .await
            .map_err(|source| FleetError::ReadCertificate {
                secret: format!("{}/{name}", owner.namespace),
                source,
            })?;
        let bundle_hash = ca.read().ok_or(FleetError::CaPoisoned)?.bundle_hash();
        let annotations = existing
            .as_ref()
            .and_then(|s| s.metadata.annotations.clone())
            .unwrap_or_default();
        if !certificate_due(&annotations, &bundle_hash, ca.lifetimes().leaf_renew_before)
            && let Some(not_after) = annotations.get(NOT_AFTER_ANNOTATION)
        {
            return Ok(not_after.clone());
        }
        let (mut secret, not_after) = {
            let ca = ca.read().ok_or(FleetError::CaPoisoned)?;
            let issued = ca.issue_gateway(&owner.key).map_err(issue_error)?;
            let not_after = rfc3339(issued.not_after).map_err(issue_error)?;
            (
                certificate_secret(name.clone(), &ca, &issued, &not_after),
                not_after,
            )
        };
        secret.metadata.resource_version = existing.and_then(|s| s.metadata.resource_version);
        match owner.apply(client, secret).await {
            Ok(_) => {
                tracing::info!(gateway = %owner.key, not_after = %not_after, "issued the Gateway's xDS client certificate");
                return Ok(not_after);
            }
            // Reissued meanwhile: judge the new version.
            Err(FleetError::Apply {
                source: kube::Error::Api(e),
                ..
            }) if e.code == 409 => continue,
            Err(e) => return Err(e),
        }
    }
    Err(FleetError::CertificateKeptChanging {
        secret: format!("{}/{name}", owner.namespace),
    })
}

/// Applies again, soon after the CA's bundle changes (a rotation) and every
/// check interval, the fleet of each Gateway in the CA's scope whose
/// certificate is due ([`certificate_due`]): its Secret gets the new bundle
/// and its Envoys roll, without waiting for the Gateway's next reconcile.
/// It runs in the replica that applied fleets first, that is a leader; the
/// writes are conditional (see [`ensure_certificate`]), so a former leader's
/// follower only repeats what the leader does.
pub(super) async fn follow_ca(client: Client, settings: FleetSettings, ca: Arc<SharedCa>) {
    let interval = std::time::Duration::try_from(ca.lifetimes().check_interval)
        .unwrap_or(std::time::Duration::from_secs(24 * 3600));
    let mut changes = ca.changes();
    let mut changes_open = true;
    loop {
        let changed = async {
            if changes_open {
                changes.changed().await.is_ok()
            } else {
                std::future::pending().await
            }
        };
        let closed = tokio::select! {
            () = tokio::time::sleep(interval) => false,
            open = changed => !open,
        };
        if closed {
            changes_open = false;
        }
        if let Err(e) = reissue_due(&client, &settings, &ca).await {
            tracing::warn!(error = %e, "could not reissue the Gateways' xDS certificates; retrying at the next check");
        }
    }
}

/// One pass of [`follow_ca`].
async fn reissue_due(client: &Client, settings: &FleetSettings, ca: &SharedCa) -> Result<(), FleetError> {
    let api: Api<Secret> = match ca.scope() {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let listed = api
        .list_metadata(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}")))
        .await
        .map_err(|source| FleetError::ListCertificates { source })?;
    let bundle_hash = ca.read().ok_or(FleetError::CaPoisoned)?.bundle_hash();
    for secret in listed.items {
        let annotations = secret.metadata.annotations.unwrap_or_default();
        // Only a Gateway's certificate names a bundle.
        if !annotations.contains_key(BUNDLE_ANNOTATION)
            || !certificate_due(&annotations, &bundle_hash, ca.lifetimes().leaf_renew_before)
        {
            continue;
        }
        let labels = secret.metadata.labels.unwrap_or_default();
        let (Some(namespace), Some(name)) = (secret.metadata.namespace, labels.get(GATEWAY_LABEL)) else {
            continue;
        };
        let gateway = Api::<Gateway>::namespaced(client.clone(), &namespace)
            .get_opt(name)
            .await
            .map_err(|source| FleetError::Read {
                kind: "Gateway",
                object: format!("{namespace}/{name}"),
                source,
            })?;
        let Some(gateway) = gateway.filter(|g| g.meta().deletion_timestamp.is_none()) else {
            continue;
        };
        match apply_fleet(client, &gateway, settings).await {
            Ok(_) => {
                tracing::info!(gateway = %format!("{namespace}/{name}"), "applied the fleet again for the xDS CA's bundle or a certificate's renewal")
            }
            Err(e) => {
                tracing::warn!(gateway = %format!("{namespace}/{name}"), error = %e, "could not reissue the Gateway's xDS certificate")
            }
        }
    }
    Ok(())
}

/// The Secret the Envoys mount: their certificate and key, and the CA bundle
/// they trust the xDS server with.
pub(super) fn certificate_secret(
    name: String,
    ca: &Authority,
    issued: &crate::pki::Issued,
    not_after: &str,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name),
            annotations: Some(
                [
                    (NOT_AFTER_ANNOTATION.to_string(), not_after.to_string()),
                    (BUNDLE_ANNOTATION.to_string(), ca.bundle_hash()),
                ]
                .into_iter()
                // A Secret with no issue time never lets a next CA sign before
                // the current one nears expiry; formatting now cannot fail.
                .chain(
                    rfc3339(time::OffsetDateTime::now_utc())
                        .ok()
                        .map(|now| (ISSUED_AT_ANNOTATION.to_string(), now)),
                )
                .collect(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        string_data: Some(
            [
                (CERT_KEY.to_string(), issued.cert_pem.clone()),
                (KEY_KEY.to_string(), issued.key_pem.clone()),
                (CA_CERT_KEY.to_string(), ca.bundle_pem().to_string()),
            ]
            .into(),
        ),
        ..Secret::default()
    }
}
