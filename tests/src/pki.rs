//! A test PKI: certificate authorities that issue server and client
//! certificates with known subjects and serial numbers, and the Secrets that
//! carry them into the cluster.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use serde_json::{Value, json};

/// A certificate authority of the test.
pub struct Ca {
    /// The CA certificate (PEM), what clients and servers trust.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// A certificate and its key, as a server or client presents them.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// The subject's common name.
    pub common_name: String,
    /// The serial number, as `CertInfo::serial` spells it (lower-case hex).
    pub serial: String,
}

/// What a certificate says about itself, read back from DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's common name.
    pub common_name: String,
    /// The serial number in lower-case hex, without leading zeros.
    pub serial: String,
}

impl Ca {
    /// A new self-signed CA with common name `name`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("rcgen generates a key pair");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SANs are valid");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("a CA self-signs");
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (DNS SANs), with subject CN `names[0]`.
    pub fn server(&self, names: &[&str], serial: u64) -> Issued {
        self.issue(names, serial, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate with subject CN `name`.
    pub fn client(&self, name: &str, serial: u64) -> Issued {
        self.issue(&[name], serial, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, names: &[&str], serial: u64, usage: ExtendedKeyUsagePurpose) -> Issued {
        let key = KeyPair::generate().expect("rcgen generates a key pair");
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("the SANs are DNS names");
        let common_name = names.first().copied().unwrap_or("unnamed").to_string();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name.clone());
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("the CA signs the certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            common_name,
            serial: format!("{serial:x}"),
        }
    }
}

impl Issued {
    /// What a peer that received this certificate would read from it.
    pub fn info(&self) -> CertInfo {
        CertInfo {
            common_name: self.common_name.clone(),
            serial: self.serial.clone(),
        }
    }
}

/// Reads subject CN and serial from a DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a certificate: {e}"))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes: Vec<u8> = cert
        .raw_serial()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let serial = hex.trim_start_matches('0').to_string();
    Ok(CertInfo { common_name, serial })
}

/// A `kubernetes.io/tls` Secret with this certificate and key.
pub fn tls_secret(name: &str, issued: &Issued) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": name },
        "type": "kubernetes.io/tls",
        "stringData": { "tls.crt": issued.cert_pem, "tls.key": issued.key_pem }
    })
}

/// An Opaque Secret with `ca.crt`, as TLSContext.caSecret and upstreamTls.caSecret read it.
pub fn ca_secret(name: &str, ca: &Ca) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": name },
        "type": "Opaque",
        "stringData": { "ca.crt": ca.cert_pem }
    })
}
