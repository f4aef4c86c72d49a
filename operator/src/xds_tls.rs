//! The xDS server's TLS: its certificate from the operator's CA, client
//! certificates required and checked against the CA bundle, and a daily
//! refresh that follows CA rotation.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use kube::Client;
use tokio::sync::watch;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::pki::{Authority, PkiError};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the xDS CA: {0}")]
    Pki(#[from] PkiError),
    #[error("reading the {what} as PEM: {source}")]
    Pem {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the xDS server's issued key is not a PEM private key; this is a bug in Legate")]
    NoPrivateKey,
    #[error(
        "the CA bundle cannot verify client certificates ({source}); delete the CA Secret \
         and Legate makes a new one"
    )]
    ClientVerifier {
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    #[error("building the xDS server's TLS configuration: {what}: {source}")]
    Rustls {
        what: &'static str,
        #[source]
        source: rustls::Error,
    },
}

fn rustls_error(what: &'static str) -> impl FnOnce(rustls::Error) -> TlsError {
    move |source| TlsError::Rustls { what, source }
}

/// Tells the ADS server which Gateway a client certificate stands for.
#[derive(Debug)]
pub struct GatewayCertificates;

impl legate_xds::server::Authenticator for GatewayCertificates {
    fn gateway_of(&self, certificate_der: &[u8]) -> Option<String> {
        crate::pki::gateway_of(certificate_der)
    }
}

/// The server's TLS configuration for the current CA.
pub fn server_config(ca: &Authority, hosts: &[String]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let issued = ca.issue_server(hosts)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certs("CA bundle", ca.bundle_pem())? {
        roots
            .add(cert)
            .map_err(rustls_error("trusting a certificate of the CA bundle"))?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|source| TlsError::ClientVerifier { source })?;
    let chain = pem_certs("xDS server's certificate", &issued.cert_pem)?;
    let key = private_key(&issued.key_pem)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rustls_error("choosing protocol versions"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(rustls_error("using the server certificate"))?;
    // gRPC runs over HTTP/2.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn pem_certs(what: &'static str, pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { what, source })
}

fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|source| TlsError::Pem {
            what: "xDS server's key",
            source,
        })?
        .ok_or(TlsError::NoPrivateKey)
}

/// The names the xDS server answers to: the advertised host and loopback.
pub fn server_hosts(advertised: &str) -> Vec<String> {
    let mut hosts = vec![
        advertised.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    hosts.dedup();
    hosts
}

/// Loads (or creates) the CA and returns it with a TLS configuration that a
/// background task keeps current: daily, the CA is re-read (and rotated when
/// due) and the server certificate reissued.
pub async fn start(
    client: Client,
    namespace: String,
    advertised: String,
) -> Result<(Arc<RwLock<Authority>>, watch::Receiver<Arc<rustls::ServerConfig>>), TlsError> {
    let ca = Authority::load_or_create(&client, &namespace).await?;
    let hosts = server_hosts(&advertised);
    let (tx, rx) = watch::channel(server_config(&ca, &hosts)?);
    let ca = Arc::new(RwLock::new(ca));
    let shared = ca.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            match Authority::load_or_create(&client, &namespace).await {
                Ok(fresh) => match server_config(&fresh, &hosts) {
                    Ok(config) => {
                        let _ = tx.send(config);
                        if let Ok(mut ca) = shared.write() {
                            *ca = fresh;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "could not renew the xDS server certificate"),
                },
                Err(e) => tracing::error!(error = %e, "could not refresh the xDS CA"),
            }
        }
    });
    Ok((ca, rx))
}
