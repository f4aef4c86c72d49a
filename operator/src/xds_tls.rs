//! The xDS server's TLS: its certificate from the operator's CA, client
//! certificates required and checked against the CA bundle, and a loop that
//! follows the CA Secret (every check interval, and whenever it changes),
//! takes the rotation's steps when they are due and reissues the server
//! certificate when its signer changes or it nears expiry.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::pki::{Authority, CA_SECRET, Lifetimes, PkiError, SharedCa};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the xDS CA: {0}")]
    Pki(#[from] PkiError),
    #[error("the xDS certificate lifetimes: {0}")]
    Lifetimes(String),
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

/// The server's TLS configuration, and when its certificate expires.
fn server_config(
    ca: &Authority,
    hosts: &[String],
) -> Result<(Arc<rustls::ServerConfig>, OffsetDateTime), TlsError> {
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
    Ok((Arc::new(config), issued.not_after))
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
/// background task keeps current: every `check_interval`, and whenever the CA
/// Secret changes, the CA is re-read (its rotation's steps taken when due,
/// see [`crate::pki::rotation`]) and the server certificate reissued when
/// its signer or the bundle changed or it nears expiry. `scope` is the
/// namespace the operator watches (`None`: all), where the Gateways'
/// certificate Secrets are.
pub async fn start(
    client: Client,
    namespace: String,
    advertised: String,
    lifetimes: Lifetimes,
    scope: Option<String>,
) -> Result<(Arc<SharedCa>, watch::Receiver<Arc<rustls::ServerConfig>>), TlsError> {
    if let Some(problem) = lifetimes.problem() {
        return Err(TlsError::Lifetimes(problem));
    }
    let ca = Authority::load_or_create(&client, &namespace, &lifetimes, scope.as_deref()).await?;
    let hosts = server_hosts(&advertised);
    let (config, server_not_after) = server_config(&ca, &hosts)?;
    let (tx, rx) = watch::channel(config);
    let shared = Arc::new(SharedCa::new(ca, lifetimes, scope));
    let follow = FollowCa {
        client,
        namespace,
        hosts,
        ca: shared.clone(),
        config: tx,
        server_not_after,
    };
    tokio::spawn(follow.forever());
    Ok((shared, rx))
}

/// What the background task needs to keep the CA and the server's TLS current.
struct FollowCa {
    client: Client,
    namespace: String,
    hosts: Vec<String>,
    ca: Arc<SharedCa>,
    config: watch::Sender<Arc<rustls::ServerConfig>>,
    server_not_after: OffsetDateTime,
}

impl FollowCa {
    async fn forever(mut self) {
        let lifetimes = *self.ca.lifetimes();
        let interval = std::time::Duration::try_from(lifetimes.check_interval)
            .unwrap_or(std::time::Duration::from_secs(24 * 3600));
        let mut changed = Some(Box::pin(ca_secret_changes(&self.client, &self.namespace)));
        loop {
            let secret_changed = async {
                match changed.as_mut() {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            let watch_ended = tokio::select! {
                () = tokio::time::sleep(interval) => false,
                next = secret_changed => next.is_none(),
            };
            if watch_ended {
                // The interval alone is left.
                changed = None;
            }
            self.check(&lifetimes).await;
        }
    }

    async fn check(&mut self, lifetimes: &Lifetimes) {
        let scope = self.ca.scope().map(str::to_string);
        let fresh =
            match Authority::load_or_create(&self.client, &self.namespace, lifetimes, scope.as_deref()).await
            {
                Ok(fresh) => fresh,
                Err(e) => {
                    tracing::error!(error = %e, "could not refresh the xDS CA");
                    return;
                }
            };
        let changed = self
            .ca
            .read()
            .is_none_or(|ca| ca.signer_pem() != fresh.signer_pem() || ca.bundle_pem() != fresh.bundle_pem());
        let due = self.server_not_after - OffsetDateTime::now_utc() < lifetimes.leaf_renew_before;
        if changed || due {
            match server_config(&fresh, &self.hosts) {
                Ok((config, not_after)) => {
                    let _ = self.config.send(config);
                    self.server_not_after = not_after;
                    tracing::info!(not_after = %not_after, "reissued the xDS server certificate");
                }
                Err(e) => tracing::error!(error = %e, "could not renew the xDS server certificate"),
            }
        }
        self.ca.replace(fresh);
    }
}

/// Yields whenever the CA Secret may have changed (another replica took a
/// rotation step), so that every replica follows it within moments.
fn ca_secret_changes(client: &Client, namespace: &str) -> impl Stream<Item = ()> + Send + 'static {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={CA_SECRET}"));
    watcher(api, config)
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => {
                    Some(())
                }
                Ok(_) => None,
                Err(e) => {
                    tracing::debug!(error = %e, "watching the xDS CA Secret");
                    None
                }
            }
        })
}
