//! The operator's own certificate authority for xDS: a CA kept in a Secret
//! (created on first start, rotated in stages before it expires, see
//! [`rotation`]), the xDS server's certificate, and one client certificate
//! per Gateway whose identity names that Gateway and nothing else.

pub mod rotation;
mod secret;

use std::sync::{RwLock, RwLockReadGuard};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;

use rotation::CaTimes;
pub use rotation::Lifetimes;

/// The Secret (in the operator's namespace) that holds the CA.
pub const CA_SECRET: &str = "legate-xds-ca";
/// Keys of the CA Secret and of each Gateway's client certificate Secret.
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CERT_KEY: &str = "tls.crt";
pub const KEY_KEY: &str = "tls.key";
/// When a certificate stops being valid (RFC 3339), so nobody needs to parse it.
pub const NOT_AFTER_ANNOTATION: &str = "legate.dev/not-after";
/// Which CA bundle issued a Gateway's certificate, to reissue after a rotation.
pub const BUNDLE_ANNOTATION: &str = "legate.dev/ca-bundle-hash";
/// When a Gateway's certificate was issued (RFC 3339): its Envoys roll then,
/// and a next CA signs only once they had time to.
pub const ISSUED_AT_ANNOTATION: &str = "legate.dev/issued-at";
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
        "listing the Gateways' xDS certificate Secrets to see whether they trust the next CA: \
         {source}; the operator needs list on Secrets"
    )]
    ListGatewaySecrets {
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

/// A CA certificate and its key, in PEM.
#[derive(Clone, PartialEq, Eq)]
struct CaPair {
    cert_pem: String,
    key_pem: String,
    not_after: OffsetDateTime,
}

/// A CA that is trusted but no longer signs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Retiring {
    cert_pem: String,
    not_after: OffsetDateTime,
}

/// The CA that signs, the next one while a rotation is prepared, and the
/// bundle of CAs that proxies and the server trust: next, current, then
/// those retiring. Promotion moves the next CA to current and the current to
/// retiring, so the bundle stays the same, byte for byte.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    current: CaPair,
    /// The next CA and when it joined the bundle.
    next: Option<(CaPair, OffsetDateTime)>,
    retiring: Vec<Retiring>,
    promoted_at: Option<OffsetDateTime>,
    bundle_pem: String,
    leaf_validity: Duration,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("not_after", &self.current.not_after)
            .field("next_published_at", &self.next.as_ref().map(|(_, t)| t))
            .field("retiring", &self.retiring.len())
            .field("promoted_at", &self.promoted_at)
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

/// A PEM certificate as it is put in a bundle: trimmed, one newline after.
fn normalized(pem: &str) -> String {
    format!("{}\n", pem.trim())
}

/// The certificates of a PEM bundle, each [`normalized`].
fn split_pems(text: &str) -> Vec<String> {
    text.split_inclusive("-----END CERTIFICATE-----")
        .map(str::trim)
        .filter(|block| block.starts_with("-----BEGIN CERTIFICATE-----"))
        .map(normalized)
        .collect()
}

/// When a PEM certificate expires.
fn pem_not_after(pem: &str) -> Option<OffsetDateTime> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = block.parse_x509().ok()?;
    OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp()).ok()
}

/// A new self-signed CA, valid for `validity` from `now`.
fn new_ca(validity: Duration, now: OffsetDateTime) -> Result<CaPair, PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    // A name of its own: during a rotation two CAs are trusted at once, and
    // a verifier that picks an issuer by name alone must not pick the other.
    name.push(
        DnType::CommonName,
        format!("Legate xDS CA {}", now.unix_timestamp()),
    );
    name.push(DnType::OrganizationName, "legate.dev");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::minutes(5);
    // Whole seconds, as the certificate keeps it.
    let not_after = now + validity;
    params.not_after = not_after - Duration::nanoseconds(i64::from(not_after.nanosecond()));
    let cert = params.self_signed(&key)?;
    Ok(CaPair {
        cert_pem: normalized(&cert.pem()),
        key_pem: key.serialize_pem(),
        not_after: params.not_after,
    })
}

impl Authority {
    /// A new CA, with the default lifetimes (a year; leaves 30 days).
    #[cfg(test)]
    pub fn generate() -> Result<Authority, PkiError> {
        Authority::generate_for(&Lifetimes::default(), OffsetDateTime::now_utc())
    }

    /// A new CA with these lifetimes.
    pub fn generate_for(lifetimes: &Lifetimes, now: OffsetDateTime) -> Result<Authority, PkiError> {
        let current = new_ca(lifetimes.ca_validity, now)?;
        Authority::assemble(current, None, Vec::new(), None, lifetimes.leaf_validity)
    }

    fn assemble(
        current: CaPair,
        next: Option<(CaPair, OffsetDateTime)>,
        retiring: Vec<Retiring>,
        promoted_at: Option<OffsetDateTime>,
        leaf_validity: Duration,
    ) -> Result<Authority, PkiError> {
        let key = KeyPair::from_pem(&current.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&current.cert_pem, key)?;
        let bundle_pem = next
            .iter()
            .map(|(pair, _)| normalized(&pair.cert_pem))
            .chain([normalized(&current.cert_pem)])
            .chain(retiring.iter().map(|r| normalized(&r.cert_pem)))
            .collect();
        Ok(Authority {
            issuer,
            current,
            next,
            retiring,
            promoted_at,
            bundle_pem,
            leaf_validity,
        })
    }

    /// The times that decide the rotation's next [`rotation::step`].
    pub fn times(&self) -> CaTimes {
        CaTimes {
            current_not_after: self.current.not_after,
            next_published_at: self.next.as_ref().map(|(_, published)| *published),
            promoted_at: self.promoted_at,
        }
    }

    /// When each CA that no longer signs expires.
    pub fn retiring_not_after(&self) -> Vec<OffsetDateTime> {
        self.retiring.iter().map(|r| r.not_after).collect()
    }

    /// Step 1: `next` joins the bundle; the current CA keeps signing.
    fn prepared(&self, lifetimes: &Lifetimes, now: OffsetDateTime) -> Result<Authority, PkiError> {
        let next = new_ca(lifetimes.ca_validity, now)?;
        Authority::assemble(
            self.current.clone(),
            Some((next, now)),
            self.retiring.clone(),
            self.promoted_at,
            self.leaf_validity,
        )
    }

    /// Step 2: the next CA signs; the current one is trusted until it retires.
    /// Without a next CA, the same CA.
    fn promoted(&self, now: OffsetDateTime) -> Result<Authority, PkiError> {
        let Some((next, _)) = self.next.clone() else {
            return Authority::assemble(
                self.current.clone(),
                None,
                self.retiring.clone(),
                self.promoted_at,
                self.leaf_validity,
            );
        };
        let retired = Retiring {
            cert_pem: self.current.cert_pem.clone(),
            not_after: self.current.not_after,
        };
        let retiring = std::iter::once(retired)
            .chain(self.retiring.iter().cloned())
            .collect();
        Authority::assemble(next, None, retiring, Some(now), self.leaf_validity)
    }

    /// Step 3: the CAs no leaf of which can still be valid leave the bundle.
    fn retired(&self, lifetimes: &Lifetimes, now: OffsetDateTime) -> Result<Authority, PkiError> {
        let retiring = self
            .retiring
            .iter()
            .filter(|r| now < rotation::retire_at(r.not_after, self.promoted_at, lifetimes))
            .cloned()
            .collect();
        Authority::assemble(
            self.current.clone(),
            self.next.clone(),
            retiring,
            self.promoted_at,
            self.leaf_validity,
        )
    }

    /// The CAs that clients and the server trust, in PEM.
    pub fn bundle_pem(&self) -> &str {
        &self.bundle_pem
    }

    /// The CA that signs, in PEM.
    pub fn signer_pem(&self) -> &str {
        &self.current.cert_pem
    }

    /// When the CA that signs expires.
    #[cfg(test)]
    pub fn not_after(&self) -> OffsetDateTime {
        self.current.not_after
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
        params.not_after = (now + self.leaf_validity).min(self.current.not_after);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        // Names the signing CA's key, for verifiers that trust several CAs.
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: params.not_after,
        })
    }
}

/// The CA as this replica last read it, shared by the xDS server (which
/// keeps it current) and the fleet (which issues Gateway certificates).
pub struct SharedCa {
    authority: RwLock<Authority>,
    lifetimes: Lifetimes,
    /// The namespace the operator watches (`None`: all), where the
    /// Gateways' certificate Secrets are.
    scope: Option<String>,
    /// Counts the changes of the bundle or of the signer.
    changes: watch::Sender<u64>,
}

impl std::fmt::Debug for SharedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCa")
            .field("lifetimes", &self.lifetimes)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl SharedCa {
    pub fn new(authority: Authority, lifetimes: Lifetimes, scope: Option<String>) -> SharedCa {
        SharedCa {
            authority: RwLock::new(authority),
            lifetimes,
            scope,
            changes: watch::channel(0).0,
        }
    }

    /// The CA; `None` if a thread panicked while replacing it.
    pub fn read(&self) -> Option<RwLockReadGuard<'_, Authority>> {
        self.authority.read().ok()
    }

    /// Takes the CA as read afresh; tells [`SharedCa::changes`] when its
    /// bundle or signer differ.
    pub fn replace(&self, fresh: Authority) {
        let Ok(mut authority) = self.authority.write() else {
            return;
        };
        let changed = authority.bundle_pem != fresh.bundle_pem || authority.current != fresh.current;
        *authority = fresh;
        drop(authority);
        if changed {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Changes whenever the bundle or the signer does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn lifetimes(&self) -> &Lifetimes {
        &self.lifetimes
    }

    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

/// Whether a certificate that ends at `not_after` should be replaced now,
/// with the default renewal window (10 days).
#[cfg(test)]
pub fn needs_renewal(not_after: Option<&str>) -> bool {
    needs_renewal_within(not_after, Lifetimes::default().leaf_renew_before)
}

/// Whether a certificate that ends at `not_after` (RFC 3339) is due within `renew_before`.
pub fn needs_renewal_within(not_after: Option<&str>, renew_before: Duration) -> bool {
    rotation::needs_renewal_at(parse_time(not_after), renew_before, OffsetDateTime::now_utc())
}

/// An RFC 3339 time, as the annotations carry it.
pub fn parse_time(text: Option<&str>) -> Option<OffsetDateTime> {
    text.and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
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
mod tests;
