//! A TLSContext as the certificate Envoy serves, with the Secrets it needs:
//! shared by HTTPS listeners and by TCPMappings that terminate TLS.

use kube::ResourceExt;
use legate_crds::TLSContext;
use legate_crds::tls_context::TlsVersion;
use legate_xds::ir;

use legate_crds::conditions::reasons;

use crate::names::object_ref;
use crate::secrets::{self, SecretKey};
use crate::verdicts::Problem;
use crate::world::World;

/// A TLSContext's certificate (and client CA) as Envoy serves them, with the
/// Secrets they need over SDS.
#[derive(Debug)]
pub struct ResolvedTls {
    pub server: ir::ServerTls,
    pub secrets: Vec<ir::Secret>,
}

/// The Secrets [`resolve`] reads (found or not): what the incremental model
/// watches to know when to build again.
pub fn secrets_read(context: &TLSContext) -> Vec<SecretKey> {
    let namespace = context.namespace().unwrap_or_default();
    std::iter::once(&context.spec.secret)
        .chain(&context.spec.ca_secret)
        .map(|name| (namespace.clone(), name.clone()))
        .collect()
}

/// Reads and checks a TLSContext's Secrets.
pub fn resolve(world: &World, context: &TLSContext) -> Result<ResolvedTls, Problem> {
    let namespace = context.namespace().unwrap_or_default();
    let origin = object_ref(context);
    let spec = &context.spec;
    let certificate = secrets::certificate(world, &namespace, &spec.secret, &origin)?;
    let client_ca = spec
        .ca_secret
        .as_ref()
        .map(|ca| secrets::authority(world, &namespace, ca, &origin))
        .transpose()?;
    let version = |v: Option<TlsVersion>| {
        v.map(|v| match v {
            TlsVersion::V1_0 => ir::TlsVersion::V1_0,
            TlsVersion::V1_1 => ir::TlsVersion::V1_1,
            TlsVersion::V1_2 => ir::TlsVersion::V1_2,
            TlsVersion::V1_3 => ir::TlsVersion::V1_3,
        })
    };
    let server = ir::ServerTls {
        origin,
        hostnames: spec.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        certificate: certificate.name.clone(),
        client_ca: client_ca.as_ref().map(|ca| ca.name.clone()),
        // As in Ambassador: a CA alone verifies the certificates clients
        // present; certRequired also refuses clients without one.
        require_client_certificate: spec.cert_required.unwrap_or(false),
        alpn: spec.alpn_protocols.clone(),
        cipher_suites: spec.cipher_suites.clone(),
        min_version: version(spec.min_tls_version),
        max_version: version(spec.max_tls_version),
    };
    Ok(ResolvedTls {
        server,
        secrets: std::iter::once(certificate).chain(client_ca).collect(),
    })
}

/// The TLS 1.2 cipher suites Envoy (BoringSSL) knows by name. Envoy refuses
/// a whole listener for one name it does not know; so does Legate, earlier.
const CIPHER_SUITES: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-PSK-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-PSK-AES128-CBC-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-PSK-AES256-CBC-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "PSK-AES128-CBC-SHA",
    "AES256-SHA",
    "PSK-AES256-CBC-SHA",
    "DES-CBC3-SHA",
];

/// Every entry of `cipherSuites` is a suite name, or a group of equally
/// preferred ones (`[A|B]`), that Envoy knows.
pub fn check_cipher_suites(suites: &[String]) -> Result<(), Problem> {
    for entry in suites {
        let names = match entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
            Some(group) => group.split('|').collect::<Vec<_>>(),
            None => vec![entry.as_str()],
        };
        if let Some(unknown) = names.iter().find(|n| !CIPHER_SUITES.contains(n)) {
            let message = format!(
                "cipherSuites: {unknown:?} is not a cipher suite Envoy knows; use names such as {} \
                 (or a group of equally preferred ones, [A|B])",
                CIPHER_SUITES[..4].join(", ")
            );
            return Err(Problem::new(reasons::INVALID, message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_suites_are_names_envoy_knows_or_groups_of_them() {
        let ok = |list: &[&str]| check_cipher_suites(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(
            ok(&[
                "ECDHE-RSA-AES128-GCM-SHA256",
                "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]"
            ])
            .is_ok()
        );
        let e = ok(&["AES128-SHA", "TLS_RSA_WITH_RC4"]).expect_err("unknown");
        assert_eq!(e.reason, reasons::INVALID);
        assert!(e.message.contains("\"TLS_RSA_WITH_RC4\""), "{}", e.message);
        assert!(ok(&["[AES128-SHA|BOGUS]"]).is_err());
    }
}
