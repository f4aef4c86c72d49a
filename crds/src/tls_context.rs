//! TLSContext: TLS for a set of hostnames, from a `kubernetes.io/tls` Secret.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{GatewayRef, ObjectStatus};
use crate::mapping::HOSTNAME_PATTERN;

/// TLS termination for a set of hostnames on a Gateway's HTTPS (or TLS) listeners.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "legate.dev",
    version = "v1alpha1",
    kind = "TLSContext",
    plural = "tlscontexts",
    namespaced,
    status = "ObjectStatus",
    shortname = "ltls",
    category = "legate",
    doc = "TLS for a set of hostnames, with the certificate from a kubernetes.io/tls Secret.",
    printcolumn(name = "Hosts", type_ = "string", json_path = ".spec.hosts"),
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secret"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.certRequired) || !self.certRequired || has(self.caSecret)")
        .message("certRequired needs caSecret: the CA that client certificates must be signed by")
        .field_path(".caSecret"),
    validation = Rule::new("!has(self.minTlsVersion) || !has(self.maxTlsVersion) || self.minTlsVersion <= self.maxTlsVersion")
        .message("minTlsVersion must not be above maxTlsVersion")
        .field_path(".minTlsVersion"),
)]
pub struct TLSContextSpec {
    /// The hostnames (or globs such as `*.example.com`) this certificate serves, chosen by SNI.
    #[schemars(length(min = 1, max = 64), inner(regex(pattern = HOSTNAME_PATTERN), length(min = 1, max = 253)))]
    pub hosts: Vec<String>,
    /// A `kubernetes.io/tls` Secret in this namespace with the certificate and key.
    #[schemars(length(min = 1, max = 253))]
    pub secret: String,
    /// A Secret in this namespace whose `ca.crt` holds the CA that client certificates must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub ca_secret: Option<String>,
    /// Refuse clients without a valid certificate (needs caSecret). Without it, clients may
    /// connect without a certificate, and one they present must still chain to caSecret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_required: Option<bool>,
    /// The lowest TLS version accepted: v1.0, v1.1, v1.2 or v1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tls_version: Option<TlsVersion>,
    /// The highest TLS version accepted: v1.0, v1.1, v1.2 or v1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tls_version: Option<TlsVersion>,
    /// ALPN protocols offered, in order of preference, such as `h2` and `http/1.1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn_protocols: Vec<String>,
    /// The cipher suites allowed for TLS 1.2 and below, as Envoy (BoringSSL) names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    /// What cleartext requests for these hosts get (default: a redirect to https).
    #[serde(default)]
    pub insecure: Insecure,
    /// The Gateways to attach to (each receives the Secret's private key).
    /// Empty: the Gateways of this namespace that admit it, and no other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayRef>,
}

/// A TLS protocol version. The names sort in version order, which the CEL rules rely on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum TlsVersion {
    #[serde(rename = "v1.0")]
    V1_0,
    #[serde(rename = "v1.1")]
    V1_1,
    #[serde(rename = "v1.2")]
    V1_2,
    #[serde(rename = "v1.3")]
    V1_3,
}

/// Cleartext requests for a TLS host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Insecure {
    /// Redirect (301 to https, the default), Reject (404) or Route (serve them as usual).
    #[serde(default)]
    pub action: InsecureAction,
}

/// What to do with a cleartext request for a TLS host.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum InsecureAction {
    /// Answer 301 with the https URL.
    #[default]
    Redirect,
    /// Answer 404.
    Reject,
    /// Route as if it had come over TLS.
    Route,
}
