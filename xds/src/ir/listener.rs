//! Listeners: the ports of a Gateway, and TLS material by reference.

use std::net::IpAddr;

use super::ObjectRef;

/// One port of a Gateway.
#[derive(Clone, PartialEq, Debug)]
pub struct Listener {
    /// Stable name, unique in the Gateway (the Gateway's listener name).
    pub name: String,
    pub origin: ObjectRef,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: ListenerProtocol,
    /// Certificates served on HTTPS listeners, chosen by SNI.
    pub tls: Vec<ServerTls>,
    /// Proxies in front trusted to append to X-Forwarded-For (HTTP listeners).
    pub trusted_hops: u32,
    /// Connections start with a PROXY protocol header naming the client.
    pub proxy_protocol: bool,
    /// Compression, gRPC-Web, body limit, server name (HTTP listeners).
    pub http: super::HttpOptions,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ListenerProtocol {
    Http,
    Https,
    /// Plain TCP, proxied to one upstream ([`super::TcpRoute`]).
    Tcp,
    /// TLS passed through by SNI, undecrypted ([`super::TcpRoute::sni`]).
    Tls,
}

impl ListenerProtocol {
    /// HTTP listeners carry routes (RDS); TCP and TLS listeners carry TCP routes.
    pub fn is_http(self) -> bool {
        matches!(self, ListenerProtocol::Http | ListenerProtocol::Https)
    }
}

/// A certificate for a set of hostnames (a TLSContext).
#[derive(Clone, PartialEq, Debug)]
pub struct ServerTls {
    pub origin: ObjectRef,
    /// SNI names; empty means the default certificate.
    pub hostnames: Vec<String>,
    /// SDS secret (by name) with the certificate and key.
    pub certificate: String,
    /// SDS secret (by name) with a CA that client certificates must chain to.
    pub client_ca: Option<String>,
    /// Refuse clients without a certificate (with `client_ca`, a certificate
    /// that is presented must chain to it either way).
    pub require_client_certificate: bool,
    pub alpn: Vec<String>,
    /// TLS 1.2-and-below cipher suites, as BoringSSL names them; empty keeps Envoy's.
    pub cipher_suites: Vec<String>,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TlsVersion {
    V1_0,
    V1_1,
    V1_2,
    V1_3,
}

/// TLS material, served over SDS so that a rotation never touches a listener.
#[derive(Clone, PartialEq, Debug)]
pub struct Secret {
    /// Stable name: `namespace/secret-name`.
    pub name: String,
    pub origin: ObjectRef,
    pub material: SecretMaterial,
}

#[derive(Clone, PartialEq, Debug)]
pub enum SecretMaterial {
    Certificate { chain_pem: String, key_pem: String },
    CertificateAuthority { ca_pem: String },
}
