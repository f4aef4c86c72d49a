//! A TLS upstream: serves HTTP/1.1 over TLS with its own certificate and
//! answers every request with JSON of what it saw, including the server name
//! the client asked for (SNI) and the client certificate it presented (when a
//! client CA is configured; clients without a certificate are still served).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

use super::Task;
use crate::pki::{Ca, Issued, cert_info};

/// What the TLS echo reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsEchoReply {
    pub backend: String,
    pub path: String,
    pub host: String,
    /// The SNI of the connection, if any.
    pub sni: Option<String>,
    /// The client certificate's common name, if one was presented.
    pub client_common_name: Option<String>,
    /// The client certificate's serial (lower-case hex), if one was presented.
    pub client_serial: Option<String>,
}

/// A running TLS echo server; stops when dropped.
#[derive(Debug)]
pub struct TlsEcho {
    _task: Task,
}

fn server_config(cert: &Issued, client_ca: Option<&Ca>) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = rustls_pemfile::certs(&mut cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = rustls_pemfile::private_key(&mut cert.key_pem.as_bytes())
        .map_err(|e| e.to_string())?
        .ok_or("no key in the PEM")?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut ca.cert_pem.as_bytes()) {
                roots
                    .add(c.map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder.with_single_cert(chain, key).map_err(|e| e.to_string())
}

impl TlsEcho {
    /// Serves as `name` with certificate `cert`; with `client_ca`, asks
    /// clients for a certificate signed by it (and records it).
    pub fn serve(listener: TcpListener, name: &str, cert: &Issued, client_ca: Option<&Ca>) -> TlsEcho {
        let config = server_config(cert, client_ca).unwrap_or_else(|e| panic!("TLS echo {name}: {e}"));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let backend = name.to_string();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let backend = backend.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let (_, session) = tls.get_ref();
                    let sni = session.server_name().map(str::to_string);
                    let client = session
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|der| cert_info(der).ok());
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let reply = TlsEchoReply {
                            backend: backend.clone(),
                            path: req.uri().path().to_string(),
                            host: req
                                .headers()
                                .get("host")
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or_default()
                                .to_string(),
                            sni: sni.clone(),
                            client_common_name: client.as_ref().map(|c| c.common_name.clone()),
                            client_serial: client.as_ref().map(|c| c.serial.clone()),
                        };
                        async move {
                            let json = serde_json::to_vec(&reply).unwrap_or_default();
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(json))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsEcho { _task: Task(task) }
    }
}

/// Parses a TLS echo answer, panicking with the body when it is not one.
pub fn reply(body: &[u8]) -> TlsEchoReply {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "expected a TLS echo reply, got {:?}: {e}",
            String::from_utf8_lossy(body)
        )
    })
}
