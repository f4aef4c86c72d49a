//! A Gateway's xDS client certificate: the Secret its Envoys mount, issued
//! by the operator's CA, reissued when the CA's bundle moves on (a rotation,
//! see [`crate::pki::rotation`]) or it nears expiry.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Api, Client};
use legate_crds::Gateway;

use super::{FleetError, Owner, xds_secret_name};
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
/// that two reconciles never both reissue it.
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
