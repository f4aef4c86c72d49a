//! The CA Secret: how an [`Authority`] is kept in it, and how replicas take
//! the rotation's steps in it, each a replacement conditioned on the
//! resourceVersion they read, so that two replicas cannot both take one.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use time::OffsetDateTime;

use super::rotation::{self, GatewaySecret, Lifetimes, Step};
use super::{
    Authority, BUNDLE_ANNOTATION, CA_CERT_KEY, CA_SECRET, CaPair, ISSUED_AT_ANNOTATION, NOT_AFTER_ANNOTATION,
    PkiError, Retiring, normalized, parse_time, pem_not_after, rfc3339, split_pems,
};

const CA_KEY_KEY: &str = "ca.key";
const BUNDLE_KEY: &str = "ca-bundle.crt";
const NEXT_CERT_KEY: &str = "next.crt";
const NEXT_KEY_KEY: &str = "next.key";
/// The CAs that no longer sign but are still trusted.
const RETIRING_KEY: &str = "retiring.crt";
/// When the next CA joined the bundle (RFC 3339).
pub const NEXT_PUBLISHED_ANNOTATION: &str = "legate.dev/next-ca-published-at";
/// When a CA last became the signer by a rotation (RFC 3339).
pub const PROMOTED_ANNOTATION: &str = "legate.dev/ca-promoted-at";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=legate";

impl Authority {
    /// Reads the CA from its Secret, creating it on first start, and takes
    /// the rotation's next steps ([`rotation::step`]) when they are due. To
    /// promote a next CA, it lists the Gateways' certificate Secrets in
    /// `scope` (the watched namespace, or all) to see that each trusts it.
    pub async fn load_or_create(
        client: &Client,
        namespace: &str,
        lifetimes: &Lifetimes,
        scope: Option<&str>,
    ) -> Result<Authority, PkiError> {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let name = format!("{namespace}/{CA_SECRET}");
        let err = |source| PkiError::Secret {
            secret: name.clone(),
            source,
        };
        // Retire, prepare and promote may all be due at once (a stopped
        // operator): a few steps, each re-read, and a few lost races.
        for _ in 0..8 {
            let now = OffsetDateTime::now_utc();
            let Some(secret) = secrets.get_opt(CA_SECRET).await.map_err(err)? else {
                let ca = Authority::generate_for(lifetimes, now)?;
                match secrets
                    .create(&PostParams::default(), &ca.to_secret(namespace, None)?)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(secret = %name, "created the xDS CA");
                        return Ok(ca);
                    }
                    // Another replica won the race: read theirs.
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(err(e)),
                }
            };
            let ca = Authority::from_secret(&secret, lifetimes)?;
            let (next, what) = match rotation::step(&ca.times(), &ca.retiring_not_after(), lifetimes, now) {
                Step::Keep => return Ok(ca),
                Step::Retire => (
                    ca.retired(lifetimes, now)?,
                    "retired the xDS CAs no valid certificate can chain to any more",
                ),
                Step::Prepare => (
                    ca.prepared(lifetimes, now)?,
                    "prepared the next xDS CA: trusted from now on, signing once every Gateway trusts it",
                ),
                Step::Promote => {
                    let gateways = gateway_secrets(client, scope).await?;
                    if !rotation::gateways_trust(&gateways, &ca.bundle_hash(), lifetimes.settle, now) {
                        tracing::debug!(
                            gateways = gateways.len(),
                            "the next xDS CA waits for every Gateway's Envoys to trust it"
                        );
                        return Ok(ca);
                    }
                    (
                        ca.promoted(now)?,
                        "promoted the next xDS CA: it signs from now on; the previous one stays trusted",
                    )
                }
                Step::PromoteNow => (
                    ca.promoted(now)?,
                    "promoted the next xDS CA before every Gateway trusted it: the current one was \
                     too close to expiry to sign certificates",
                ),
            };
            let version = secret.metadata.resource_version.clone();
            match secrets
                .replace(
                    CA_SECRET,
                    &PostParams::default(),
                    &next.to_secret(namespace, version)?,
                )
                .await
            {
                Ok(_) => tracing::info!(secret = %name, "{what}"),
                // Another replica took a step first: read what it wrote.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(err(e)),
            }
        }
        Err(PkiError::CaKeptChanging { secret: name })
    }

    pub(super) fn from_secret(secret: &Secret, lifetimes: &Lifetimes) -> Result<Authority, PkiError> {
        let secret_name = format!(
            "{}/{}",
            secret.metadata.namespace.clone().unwrap_or_default(),
            secret.metadata.name.clone().unwrap_or_default()
        );
        let incomplete = |missing| PkiError::IncompleteCa {
            secret: secret_name.clone(),
            missing,
        };
        let data = secret.data.clone().unwrap_or_default();
        let text = |key: &str| data.get(key).and_then(|b| String::from_utf8(b.0.clone()).ok());
        let annotations = secret.metadata.annotations.clone().unwrap_or_default();
        let time = |key: &str| parse_time(annotations.get(key).map(String::as_str));
        let cert_pem = normalized(&text(CA_CERT_KEY).ok_or_else(|| incomplete("a PEM ca.crt"))?);
        let current = CaPair {
            key_pem: text(CA_KEY_KEY).ok_or_else(|| incomplete("a PEM ca.key"))?,
            not_after: time(NOT_AFTER_ANNOTATION)
                .ok_or_else(|| incomplete("an RFC 3339 legate.dev/not-after annotation"))?,
            cert_pem,
        };
        let next = match (text(NEXT_CERT_KEY), text(NEXT_KEY_KEY)) {
            (Some(cert_pem), Some(key_pem)) => {
                let not_after =
                    pem_not_after(&cert_pem).ok_or_else(|| incomplete("a next.crt that is a certificate"))?;
                let published = time(NEXT_PUBLISHED_ANNOTATION).ok_or_else(|| {
                    incomplete("an RFC 3339 legate.dev/next-ca-published-at annotation beside next.crt")
                })?;
                Some((
                    CaPair {
                        cert_pem: normalized(&cert_pem),
                        key_pem,
                        not_after,
                    },
                    published,
                ))
            }
            _ => None,
        };
        // A Secret written before staged rotation has no retiring.crt: the
        // CAs of its bundle other than the signer are retiring.
        let retiring_pems = match text(RETIRING_KEY) {
            Some(retiring) => split_pems(&retiring),
            None => split_pems(&text(BUNDLE_KEY).unwrap_or_default())
                .into_iter()
                .filter(|pem| *pem != current.cert_pem)
                .collect(),
        };
        let retiring = retiring_pems
            .into_iter()
            .map(|cert_pem| {
                pem_not_after(&cert_pem)
                    .map(|not_after| Retiring { cert_pem, not_after })
                    .ok_or_else(|| incomplete("a retiring.crt of certificates"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Authority::assemble(
            current,
            next,
            retiring,
            time(PROMOTED_ANNOTATION),
            lifetimes.leaf_validity,
        )
        .map_err(|e| match e {
            PkiError::Certificate(source) => PkiError::UnusableCa {
                secret: secret_name.clone(),
                source,
            },
            other => other,
        })
    }

    pub(super) fn to_secret(
        &self,
        namespace: &str,
        resource_version: Option<String>,
    ) -> Result<Secret, PkiError> {
        let bytes = |text: &str| ByteString(text.as_bytes().to_vec());
        let retiring: String = self.retiring.iter().map(|r| r.cert_pem.as_str()).collect();
        let mut data: BTreeMap<String, ByteString> = [
            (CA_CERT_KEY.to_string(), bytes(&self.current.cert_pem)),
            (CA_KEY_KEY.to_string(), bytes(&self.current.key_pem)),
            (BUNDLE_KEY.to_string(), bytes(&self.bundle_pem)),
            (RETIRING_KEY.to_string(), bytes(&retiring)),
        ]
        .into();
        let mut annotations: BTreeMap<String, String> =
            [(NOT_AFTER_ANNOTATION.to_string(), rfc3339(self.current.not_after)?)].into();
        if let Some((next, published)) = &self.next {
            data.insert(NEXT_CERT_KEY.to_string(), bytes(&next.cert_pem));
            data.insert(NEXT_KEY_KEY.to_string(), bytes(&next.key_pem));
            annotations.insert(NEXT_PUBLISHED_ANNOTATION.to_string(), rfc3339(*published)?);
        }
        if let Some(promoted) = self.promoted_at {
            annotations.insert(PROMOTED_ANNOTATION.to_string(), rfc3339(promoted)?);
        }
        Ok(Secret {
            metadata: ObjectMeta {
                name: Some(CA_SECRET.to_string()),
                namespace: Some(namespace.to_string()),
                resource_version,
                annotations: Some(annotations),
                labels: Some([("app.kubernetes.io/managed-by".to_string(), "legate".to_string())].into()),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_string()),
            data: Some(data),
            ..Secret::default()
        })
    }
}

/// What the Gateways' certificate Secrets in `scope` say: those Legate
/// manages that name a CA bundle.
async fn gateway_secrets(client: &Client, scope: Option<&str>) -> Result<Vec<GatewaySecret>, PkiError> {
    let api: Api<Secret> = match scope {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let list = api
        .list_metadata(&ListParams::default().labels(MANAGED_BY))
        .await
        .map_err(|source| PkiError::ListGatewaySecrets { source })?;
    Ok(list
        .items
        .iter()
        .filter_map(|s| {
            let annotations = s.metadata.annotations.as_ref()?;
            let bundle_hash = annotations.get(BUNDLE_ANNOTATION)?.clone();
            Some(GatewaySecret {
                bundle_hash: Some(bundle_hash),
                issued_at: parse_time(annotations.get(ISSUED_AT_ANNOTATION).map(String::as_str)),
            })
        })
        .collect())
}
