//! Access control: which client addresses may send requests (Gateways and
//! Mappings), and JSON Web Token authentication (Mappings).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::HEADER_NAME_PATTERN;

/// The most entries an address list may have: Envoy checks them one by one
/// on every request.
pub const MAX_CIDRS: usize = 128;

/// Each entry of an address list is an IP address or a CIDR range (checked by
/// the API server, so that a typo is refused at `kubectl apply`).
pub fn cidr_list_rule() -> kube::core::Rule {
    kube::core::Rule::new("self.all(c, isIP(c) || isCIDR(c))")
        .message("each entry must be an IP address or a CIDR range, such as 10.0.0.0/8 or 2001:db8::/32")
}

/// JSON Web Token authentication of a Mapping's requests.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Jwt {
    /// The `iss` claim a token must carry.
    #[schemars(length(min = 1, max = 512))]
    pub issuer: String,
    /// A token's `aud` claim must name one of these. Empty: any audience.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 512)))]
    pub audiences: Vec<String>,
    /// Where the keys that sign tokens are published (a JSON Web Key Set).
    pub jwks: Jwks,
    /// Copy claims of a valid token into request headers for the upstream (a
    /// string, number or boolean claim; a header the client sent with that name is
    /// replaced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = kube::core::Rule::new("self.all(a, self.exists_one(b, b.header.lowerAscii() == a.header.lowerAscii()))").message("each header may be set from one claim"))]
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Send the token on to the upstream in its `Authorization` header (default false:
    /// it is removed once checked).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forward: bool,
}

/// Where a JSON Web Key Set is fetched from: a Service of the Mapping's own
/// namespace, or an `https://` URL.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("has(self.service) != has(self.uri)")
        .message("set either service or uri, not both and not neither"),
    validation = kube::core::Rule::new("!has(self.path) || has(self.service)")
        .message("path goes with service; a uri holds its own path")
        .field_path(".path"),
)]
pub struct Jwks {
    /// A Service of the Mapping's namespace that serves the key set over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<JwksService>,
    /// The path of the key set on that Service (default `/.well-known/jwks.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[!-~]*$"))]
    pub path: Option<String>,
    /// An `https://` URL of the key set outside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 1024),
        regex(pattern = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$")
    )]
    pub uri: Option<String>,
}

/// A Service (by name and port number) in the Mapping's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwksService {
    /// The Service's name.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The Service's port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// One claim copied into one request header.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimToHeader {
    /// The claim's name, such as `sub`; `a.b` is the claim `b` inside the object claim `a`.
    #[schemars(length(min = 1, max = 256))]
    pub claim: String,
    /// The request header it becomes.
    #[schemars(length(min = 1, max = 256), regex(pattern = HEADER_NAME_PATTERN))]
    pub header: String,
}
