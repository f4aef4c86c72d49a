//! IR secret → Envoy SDS `Secret`.

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, TlsCertificate, secret,
};

use crate::ir;

pub fn secret_proto(s: &ir::Secret) -> Secret {
    let inline = |pem: &str| DataSource {
        specifier: Some(data_source::Specifier::InlineString(pem.to_owned())),
        ..DataSource::default()
    };
    let r#type = match &s.material {
        ir::SecretMaterial::Certificate { chain_pem, key_pem } => {
            secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: Some(inline(chain_pem)),
                private_key: Some(inline(key_pem)),
                ..TlsCertificate::default()
            })
        }
        ir::SecretMaterial::CertificateAuthority { ca_pem } => {
            secret::Type::ValidationContext(CertificateValidationContext {
                trusted_ca: Some(inline(ca_pem)),
                ..CertificateValidationContext::default()
            })
        }
    };
    Secret {
        name: s.name.clone(),
        r#type: Some(r#type),
    }
}
