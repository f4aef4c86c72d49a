//! Kubernetes Secrets as TLS material for Envoy (served over SDS), checked
//! before they reach Envoy: a Secret Envoy would refuse is reported on the
//! object that names it, and never sent.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use legate_crds::conditions::reasons;
use legate_xds::ir::{self, ObjectRef};

use crate::verdicts::Problem;
use crate::world::{CA_BUNDLE_KEY, World};

/// `(namespace, name)` of a Secret.
pub type SecretKey = (String, String);

/// The key of a Secret.
pub fn secret_key(secret: &Secret) -> SecretKey {
    (secret.namespace().unwrap_or_default(), secret.name_any())
}

/// The certificate and key of `namespace/name` (a `kubernetes.io/tls` Secret).
/// Its SDS name is `namespace/name`.
pub fn certificate(
    world: &World,
    namespace: &str,
    name: &str,
    origin: &ObjectRef,
) -> Result<ir::Secret, Problem> {
    let (full, secret) = find(world, namespace, name)?;
    let chain = text(secret, "tls.crt");
    let key = text(secret, "tls.key");
    let (Some(chain_pem), Some(key_pem)) = (chain, key) else {
        return Err(Problem::new(
            reasons::INVALID_SECRET,
            format!("Secret {full} has no tls.crt and tls.key; it must be of type kubernetes.io/tls"),
        ));
    };
    check_certificates(&full, "tls.crt", &chain_pem)?;
    let mut reader = key_pem.as_bytes();
    let Ok(Some(key)) = rustls_pemfile::private_key(&mut reader) else {
        return Err(Problem::new(
            reasons::INVALID_SECRET,
            format!("Secret {full}: tls.key holds no PEM private key"),
        ));
    };
    check_key_matches(&full, &chain_pem, &key)?;
    Ok(ir::Secret {
        name: full,
        origin: origin.clone(),
        material: ir::SecretMaterial::Certificate { chain_pem, key_pem },
    })
}

/// The CA bundle (key `ca.crt`) of `namespace/name`. Its SDS name is
/// `namespace/name#ca`, apart from the certificate a TLS Secret may also hold.
pub fn authority(
    world: &World,
    namespace: &str,
    name: &str,
    origin: &ObjectRef,
) -> Result<ir::Secret, Problem> {
    let (full, secret) = find(world, namespace, name)?;
    let ca_pem = text(secret, CA_BUNDLE_KEY).ok_or_else(|| {
        Problem::new(
            reasons::INVALID_SECRET,
            format!("Secret {full} has no {CA_BUNDLE_KEY} key with a PEM CA bundle"),
        )
    })?;
    check_certificates(&full, CA_BUNDLE_KEY, &ca_pem)?;
    Ok(ir::Secret {
        name: format!("{full}#ca"),
        origin: origin.clone(),
        material: ir::SecretMaterial::CertificateAuthority { ca_pem },
    })
}

/// The Secret `namespace/name`, with that full name for messages.
fn find<'a>(world: &'a World, namespace: &str, name: &str) -> Result<(String, &'a Secret), Problem> {
    let full = format!("{namespace}/{name}");
    match world
        .secrets
        .iter()
        .find(|s| s.namespace().as_deref() == Some(namespace) && s.name_any() == name)
    {
        Some(secret) => Ok((full, secret.as_ref())),
        None => Err(Problem::new(
            reasons::SECRET_NOT_FOUND,
            format!("Secret {full} does not exist"),
        )),
    }
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone())
        .ok()
        .filter(|t| !t.trim().is_empty())
}

/// The key belongs to the first certificate of the chain (the one Envoy
/// serves): Envoy refuses the whole listener otherwise. A key type the
/// check cannot read is left to Envoy.
fn check_key_matches(
    full: &str,
    chain_pem: &str,
    key: &rustls::pki_types::PrivateKeyDer<'_>,
) -> Result<(), Problem> {
    let Ok(signing) = rustls::crypto::ring::sign::any_supported_type(key) else {
        return Ok(());
    };
    let Some(public) = signing.public_key() else {
        return Ok(());
    };
    let mut reader = chain_pem.as_bytes();
    let Some(Ok(leaf)) = rustls_pemfile::certs(&mut reader).next() else {
        return Ok(()); // check_certificates has said why
    };
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return Ok(());
    };
    if certificate.tbs_certificate.subject_pki.raw != public.as_ref() {
        return Err(Problem::new(
            reasons::INVALID_SECRET,
            format!(
                "Secret {full}: tls.key does not belong to the certificate in tls.crt (their public keys differ); \
                 put the key that was issued with the certificate"
            ),
        ));
    }
    Ok(())
}

/// At least one PEM certificate, each of which parses as X.509.
fn check_certificates(full: &str, key: &str, pem: &str) -> Result<(), Problem> {
    let invalid =
        |what: String| Problem::new(reasons::INVALID_SECRET, format!("Secret {full}: {key} {what}"));
    let mut reader = pem.as_bytes();
    let certs: Vec<_> = rustls_pemfile::certs(&mut reader)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("holds no PEM certificate".into()));
    }
    for cert in &certs {
        x509_parser::parse_x509_certificate(cert.as_ref())
            .map_err(|e| invalid(format!("holds a certificate that does not parse: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use k8s_openapi::ByteString;

    use super::*;

    fn secret(name: &str, data: &[(&str, &str)]) -> Arc<Secret> {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.metadata.namespace = Some("shop".into());
        s.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        );
        Arc::new(s)
    }

    fn origin() -> ObjectRef {
        ObjectRef::new("TLSContext", "shop", "tls", 1)
    }

    #[test]
    fn a_valid_pair_becomes_certificate_material() {
        let cert =
            rcgen::generate_simple_self_signed(vec!["shop.example.com".into()]).expect("a certificate");
        let world = World {
            secrets: vec![secret(
                "shop-tls",
                &[
                    ("tls.crt", &cert.cert.pem()),
                    ("tls.key", &cert.signing_key.serialize_pem()),
                    ("ca.crt", &cert.cert.pem()),
                ],
            )],
            ..World::default()
        };
        let material = certificate(&world, "shop", "shop-tls", &origin()).expect("valid");
        assert_eq!(material.name, "shop/shop-tls");
        let ca = authority(&world, "shop", "shop-tls", &origin()).expect("valid CA");
        assert_eq!(ca.name, "shop/shop-tls#ca");
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_before_envoy() {
        let cert =
            rcgen::generate_simple_self_signed(vec!["shop.example.com".into()]).expect("a certificate");
        let other = rcgen::KeyPair::generate().expect("a key");
        let world = World {
            secrets: vec![secret(
                "mixed",
                &[("tls.crt", &cert.cert.pem()), ("tls.key", &other.serialize_pem())],
            )],
            ..World::default()
        };
        let e = certificate(&world, "shop", "mixed", &origin()).expect_err("mismatch");
        assert_eq!(e.reason, reasons::INVALID_SECRET);
        assert!(
            e.message.contains("does not belong to the certificate"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_and_malformed_secrets_say_which_and_why() {
        let world = World {
            secrets: vec![
                secret(
                    "garbage",
                    &[("tls.crt", "not a certificate"), ("tls.key", "nor a key")],
                ),
                secret("empty", &[]),
            ],
            ..World::default()
        };
        let e = certificate(&world, "shop", "absent", &origin()).expect_err("missing");
        assert_eq!(
            (e.reason, e.message.as_str()),
            (reasons::SECRET_NOT_FOUND, "Secret shop/absent does not exist")
        );
        let e = certificate(&world, "shop", "garbage", &origin()).expect_err("malformed");
        assert_eq!(e.reason, reasons::INVALID_SECRET);
        assert!(
            e.message.contains("tls.crt holds no PEM certificate"),
            "{}",
            e.message
        );
        let e = certificate(&world, "shop", "empty", &origin()).expect_err("empty");
        assert!(e.message.contains("has no tls.crt and tls.key"), "{}", e.message);
        let e = authority(&world, "shop", "empty", &origin()).expect_err("no CA");
        assert!(e.message.contains("has no ca.crt"), "{}", e.message);
    }
}
