//! The operator's own certificate authority for xDS: a CA kept in a Secret
//! (created on first start, rotated before it expires), the xDS server's
//! certificate, and one client certificate per Gateway whose identity names
//! that Gateway and nothing else.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// The Secret (in the operator's namespace) that holds the CA.
pub const CA_SECRET: &str = "legate-xds-ca";
/// Keys of the CA Secret and of each Gateway's client certificate Secret.
pub const CA_CERT_KEY: &str = "ca.crt";
const CA_KEY_KEY: &str = "ca.key";
pub const CERT_KEY: &str = "tls.crt";
pub const KEY_KEY: &str = "tls.key";
/// When a certificate stops being valid (RFC 3339), so nobody needs to parse it.
pub const NOT_AFTER_ANNOTATION: &str = "legate.dev/not-after";
/// Which CA bundle issued a Gateway's certificate, to reissue after a rotation.
pub const BUNDLE_ANNOTATION: &str = "legate.dev/ca-bundle-hash";

const CA_VALIDITY: Duration = Duration::days(365);
const CA_ROTATE_BEFORE: Duration = Duration::days(30);
const LEAF_VALIDITY: Duration = Duration::days(30);
const LEAF_RENEW_BEFORE: Duration = Duration::days(10);
const IDENTITY_PREFIX: &str = "spiffe://legate.dev/gateway/";

/// Why the xDS CA or a certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("making a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error(
        "reading or writing Secret {secret}, the xDS CA: {source}; \
         the operator needs get, create and update on Secrets in its namespace"
    )]
    Secret {
        secret: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "Secret {secret} exists but lacks {missing}; delete it and Legate makes a new CA \
         (every Gateway then gets a new client certificate, and its Envoys restart)"
    )]
    IncompleteCa { secret: String, missing: &'static str },
    #[error(
        "Secret {secret} holds a CA certificate or key that cannot be used ({source}); \
         delete it and Legate makes a new CA (every Gateway then gets a new client \
         certificate, and its Envoys restart)"
    )]
    UnusableCa {
        secret: String,
        #[source]
        source: rcgen::Error,
    },
    #[error(
        "Secret {secret} kept changing while Legate read it (another replica may be rotating \
         it); starting the operator again reads it afresh"
    )]
    CaKeptChanging { secret: String },
    #[error("writing the time {time} as RFC 3339: {source}")]
    Time {
        time: OffsetDateTime,
        #[source]
        source: time::error::Format,
    },
}

/// A CA that signs, and the bundle of CAs that proxies and the server trust
/// (the current one and, during a rotation, the previous one).
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    bundle_pem: String,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// A certificate and its key, in PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for Issued {
    // Never print a private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A new CA, valid for a year.
    pub fn generate() -> Result<Authority, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Legate xDS CA");
        name.push(DnType::OrganizationName, "legate.dev");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + CA_VALIDITY;
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        Authority::from_pem(&cert_pem, &key_pem, &cert_pem, params.not_after)
    }

    fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        bundle_pem: &str,
        not_after: OffsetDateTime,
    ) -> Result<Authority, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Authority {
            issuer,
            cert_pem: cert_pem.to_string(),
            bundle_pem: bundle_pem.to_string(),
            not_after,
        })
    }

    /// Reads the CA from its Secret, creating it on first start and rotating it
    /// when it is within 30 days of expiry (the old CA stays trusted until then).
    pub async fn load_or_create(client: &Client, namespace: &str) -> Result<Authority, PkiError> {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let err = |source| PkiError::Secret {
            secret: format!("{namespace}/{CA_SECRET}"),
            source,
        };
        for _ in 0..5 {
            match secrets.get_opt(CA_SECRET).await.map_err(err)? {
                None => {
                    let ca = Authority::generate()?;
                    match secrets
                        .create(&PostParams::default(), &ca.to_secret(namespace, None)?)
                        .await
                    {
                        Ok(_) => {
                            tracing::info!(secret = %format!("{namespace}/{CA_SECRET}"), "created the xDS CA");
                            return Ok(ca);
                        }
                        // Another replica won the race: read theirs.
                        Err(kube::Error::Api(e)) if e.code == 409 => continue,
                        Err(e) => return Err(err(e)),
                    }
                }
                Some(secret) => {
                    let ca = Authority::from_secret(&secret)?;
                    if ca.not_after - OffsetDateTime::now_utc() > CA_ROTATE_BEFORE {
                        return Ok(ca);
                    }
                    let next = Authority::generate()?;
                    let next = Authority::from_pem(
                        &next.cert_pem,
                        &next.issuer.key().serialize_pem(),
                        &format!("{}{}", next.cert_pem, ca.cert_pem),
                        next.not_after,
                    )?;
                    let version = secret.metadata.resource_version.clone();
                    match secrets
                        .replace(
                            CA_SECRET,
                            &PostParams::default(),
                            &next.to_secret(namespace, version)?,
                        )
                        .await
                    {
                        Ok(_) => {
                            tracing::info!(
                                "rotated the xDS CA; the previous one stays trusted until it expires"
                            );
                            return Ok(next);
                        }
                        Err(kube::Error::Api(e)) if e.code == 409 => continue,
                        Err(e) => return Err(err(e)),
                    }
                }
            }
        }
        Err(PkiError::CaKeptChanging {
            secret: format!("{namespace}/{CA_SECRET}"),
        })
    }

    fn from_secret(secret: &Secret) -> Result<Authority, PkiError> {
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
        let cert = text(CA_CERT_KEY).ok_or_else(|| incomplete("a PEM ca.crt"))?;
        let key = text(CA_KEY_KEY).ok_or_else(|| incomplete("a PEM ca.key"))?;
        let bundle = text("ca-bundle.crt").unwrap_or_else(|| cert.clone());
        let not_after = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(NOT_AFTER_ANNOTATION))
            .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
            .ok_or_else(|| incomplete("an RFC 3339 legate.dev/not-after annotation"))?;
        Authority::from_pem(&cert, &key, &bundle, not_after).map_err(|e| match e {
            PkiError::Certificate(source) => PkiError::UnusableCa {
                secret: secret_name.clone(),
                source,
            },
            other => other,
        })
    }

    fn to_secret(&self, namespace: &str, resource_version: Option<String>) -> Result<Secret, PkiError> {
        let data: BTreeMap<String, ByteString> = [
            (
                CA_CERT_KEY.to_string(),
                ByteString(self.cert_pem.clone().into_bytes()),
            ),
            (
                CA_KEY_KEY.to_string(),
                ByteString(self.issuer.key().serialize_pem().into_bytes()),
            ),
            (
                "ca-bundle.crt".to_string(),
                ByteString(self.bundle_pem.clone().into_bytes()),
            ),
        ]
        .into();
        Ok(Secret {
            metadata: ObjectMeta {
                name: Some(CA_SECRET.to_string()),
                namespace: Some(namespace.to_string()),
                resource_version,
                annotations: Some([(NOT_AFTER_ANNOTATION.to_string(), rfc3339(self.not_after)?)].into()),
                labels: Some([("app.kubernetes.io/managed-by".to_string(), "legate".to_string())].into()),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_string()),
            data: Some(data),
            ..Secret::default()
        })
    }

    /// The CAs that clients and the server trust, in PEM.
    pub fn bundle_pem(&self) -> &str {
        &self.bundle_pem
    }

    /// A short, stable digest of the bundle: certificates issued under an
    /// older bundle are reissued.
    pub fn bundle_hash(&self) -> String {
        format!(
            "{:016x}",
            legate_xds::resource::hash_bytes(self.bundle_pem.as_bytes())
        )
    }

    /// The xDS server's certificate, for these DNS names and IP addresses.
    pub fn issue_server(&self, hosts: &[String]) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, "legate-xds");
        for host in hosts {
            params
                .subject_alt_names
                .push(match host.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(host.clone().try_into()?),
                });
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate that proves "I am an Envoy of Gateway `namespace/name`".
    pub fn issue_gateway(&self, gateway: &str) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("legate-gateway {gateway}"));
        params
            .subject_alt_names
            .push(SanType::URI(format!("{IDENTITY_PREFIX}{gateway}").try_into()?));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        // Never outlive the CA that signs it.
        params.not_after = (now + LEAF_VALIDITY).min(self.not_after);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: params.not_after,
        })
    }
}

/// Whether a certificate that ends at `not_after` should be replaced now.
pub fn needs_renewal(not_after: Option<&str>) -> bool {
    let parsed =
        not_after.and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok());
    match parsed {
        Some(t) => t - OffsetDateTime::now_utc() < LEAF_RENEW_BEFORE,
        None => true,
    }
}

/// `t` as RFC 3339, as the expiry annotations carry it.
pub fn rfc3339(t: OffsetDateTime) -> Result<String, PkiError> {
    t.format(&time::format_description::well_known::Rfc3339)
        .map_err(|source| PkiError::Time { time: t, source })
}

/// The Gateway (`namespace/name`) a client certificate (DER) was issued for.
pub fn gateway_of(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) => {
            uri.strip_prefix(IDENTITY_PREFIX).map(str::to_string)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> Vec<u8> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM certificate");
        block.contents
    }

    #[test]
    fn a_gateway_certificate_names_its_gateway_and_only_it() {
        let ca = Authority::generate().expect("a CA");
        let issued = ca.issue_gateway("team-a/edge").expect("a certificate");
        assert_eq!(gateway_of(&der(&issued.cert_pem)).as_deref(), Some("team-a/edge"));
        let server = ca
            .issue_server(&["legate-xds.legate-system.svc".into(), "127.0.0.1".into()])
            .expect("a server certificate");
        assert_eq!(
            gateway_of(&der(&server.cert_pem)),
            None,
            "a server certificate names no Gateway"
        );
    }

    #[test]
    fn leaves_never_outlive_their_ca_and_expiring_ones_are_renewed() {
        let ca = Authority::generate().expect("a CA");
        let issued = ca.issue_gateway("a/b").expect("a certificate");
        assert!(issued.not_after <= ca.not_after);
        let fresh = rfc3339(issued.not_after).expect("a time within years 0 to 9999");
        assert!(!needs_renewal(Some(&fresh)), "a fresh certificate is kept");
        let soon =
            rfc3339(OffsetDateTime::now_utc() + Duration::days(2)).expect("a time within years 0 to 9999");
        assert!(needs_renewal(Some(&soon)));
        assert!(needs_renewal(None), "no record of expiry: reissue");
    }

    #[test]
    fn a_broken_ca_secret_says_what_it_lacks() {
        let ca = Authority::generate().expect("a CA");
        let mut secret = ca.to_secret("legate-system", None).expect("a CA Secret");
        Authority::from_secret(&secret).expect("a CA Secret reads back");
        if let Some(data) = secret.data.as_mut() {
            data.insert(CA_KEY_KEY.into(), ByteString(b"not a key".to_vec()));
        }
        assert!(matches!(
            Authority::from_secret(&secret),
            Err(PkiError::UnusableCa { .. })
        ));
        if let Some(data) = secret.data.as_mut() {
            data.remove(CA_KEY_KEY);
        }
        let error = Authority::from_secret(&secret).expect_err("no key, no CA");
        assert!(error.to_string().contains("lacks a PEM ca.key"), "{error}");
    }

    #[test]
    fn private_keys_never_reach_debug_output() {
        let ca = Authority::generate().expect("a CA");
        let issued = ca.issue_gateway("a/b").expect("a certificate");
        assert!(!format!("{issued:?}").contains("PRIVATE KEY"));
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    }
}
