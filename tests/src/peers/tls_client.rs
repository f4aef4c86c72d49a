//! A TLS client that reports what the server presented: which certificate,
//! which ALPN protocol and which TLS version, then speaks HTTP/1.1 or HTTP/2
//! (as ALPN decided) over the connection.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::HOST;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

use crate::http::Response;
use crate::pki::{CertInfo, Issued, cert_info};

/// Which TLS versions the client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versions {
    /// TLS 1.2 and 1.3.
    #[default]
    Any,
    Only12,
    Only13,
}

/// How the client connects.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// The CA the client trusts (PEM).
    pub ca_pem: String,
    pub versions: Versions,
    /// ALPN protocols offered, such as `h2` and `http/1.1`.
    pub alpn: Vec<String>,
    /// The client certificate presented, if any.
    pub client_cert: Option<Issued>,
}

impl TlsOptions {
    pub fn trusting(ca_pem: &str) -> TlsOptions {
        TlsOptions {
            ca_pem: ca_pem.to_string(),
            ..TlsOptions::default()
        }
    }
}

/// What the TLS handshake settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The server's (leaf) certificate.
    pub cert: CertInfo,
    /// The ALPN protocol chosen by the server, if any.
    pub alpn: Option<String>,
    /// `TLSv1_2` or `TLSv1_3`.
    pub version: String,
}

/// An HTTPS answer with the handshake it came over.
#[derive(Debug, Clone)]
pub struct HttpsAnswer {
    pub handshake: Handshake,
    pub response: Response,
    /// `HTTP/1.1` or `HTTP/2.0`, as the client spoke it.
    pub http_version: String,
}

fn client_config(options: &TlsOptions) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut options.ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = match options.versions {
        Versions::Any => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Versions::Only12 => &[&rustls::version::TLS12],
        Versions::Only13 => &[&rustls::version::TLS13],
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match &options.client_cert {
        None => builder.with_no_client_auth(),
        Some(issued) => {
            let chain = rustls_pemfile::certs(&mut issued.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let key = rustls_pemfile::private_key(&mut issued.key_pem.as_bytes())
                .map_err(|e| e.to_string())?
                .ok_or("the client key PEM holds no key")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
    };
    config.alpn_protocols = options.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(config)
}

/// Connects to `addr` with server name `sni` and completes the TLS handshake.
pub async fn handshake(
    addr: SocketAddr,
    sni: &str,
    options: &TlsOptions,
) -> Result<(TlsStream<TcpStream>, Handshake), String> {
    let config = client_config(options)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio::time::timeout(std::time::Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .map_err(|_| format!("TLS handshake with {sni} at {addr} timed out"))?
        .map_err(|e| format!("TLS handshake with {sni} at {addr}: {e}"))?;
    let (_, session) = tls.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("the server presented no certificate")?;
    let handshake = Handshake {
        cert: cert_info(leaf)?,
        alpn: session
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        version: session
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
    };
    Ok((tls, handshake))
}

/// One HTTPS request on a new connection: HTTP/2 when ALPN chose `h2`, else HTTP/1.1.
pub async fn https_request(
    addr: SocketAddr,
    sni: &str,
    options: &TlsOptions,
    request: Request<Full<Bytes>>,
) -> Result<HttpsAnswer, String> {
    let (tls, handshake) = handshake(addr, sni, options).await?;
    let h2 = handshake.alpn.as_deref() == Some("h2");
    let io = TokioIo::new(tls);
    let response = if h2 {
        let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        tokio::spawn(connection);
        sender.send_request(request).await
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
        tokio::spawn(connection);
        sender.send_request(request).await
    }
    .map_err(|e| format!("request over TLS to {sni}: {e}"))?;
    let http_version = format!("{:?}", response.version());
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    Ok(HttpsAnswer {
        handshake,
        response: Response {
            status: parts.status,
            headers: parts.headers,
            body,
        },
        http_version,
    })
}

/// GET `path` with Host `sni` on a new TLS connection.
pub async fn https_get(
    addr: SocketAddr,
    sni: &str,
    options: &TlsOptions,
    path: &str,
) -> Result<HttpsAnswer, String> {
    let h2 = options.alpn.first().map(String::as_str) == Some("h2");
    // HTTP/2 carries the host in :authority, which hyper takes from an absolute URI.
    let uri = if h2 {
        format!("https://{sni}{path}")
    } else {
        path.to_string()
    };
    let request = Request::builder()
        .uri(uri)
        .header(HOST, sni)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    https_request(addr, sni, options, request).await
}

/// A kept-open HTTP/1.1 connection over TLS, for proving a connection survives a change.
#[derive(Debug)]
pub struct KeptConnection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    sni: String,
    pub handshake: Handshake,
}

impl KeptConnection {
    pub async fn open(addr: SocketAddr, sni: &str, options: &TlsOptions) -> Result<KeptConnection, String> {
        let (tls, handshake) = handshake(addr, sni, options).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
        tokio::spawn(connection);
        Ok(KeptConnection {
            sender,
            sni: sni.to_string(),
            handshake,
        })
    }

    /// GET `path` on this same connection.
    pub async fn get(&mut self, path: &str) -> Result<Response, String> {
        let request = Request::builder()
            .uri(path)
            .header(HOST, &self.sni)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        self.sender
            .ready()
            .await
            .map_err(|e| format!("the kept connection closed: {e}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("request on the kept connection: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}
