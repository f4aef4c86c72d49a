//! What a Gateway's HTTP listeners do to every request and response, beyond
//! routing: compression, gRPC-Web, a request body limit, the `server` header,
//! the bodies of Envoy's own error answers, which client addresses may send requests.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most a request body limit may be: Envoy holds the whole body in memory
/// before it goes upstream.
pub const MAX_BODY_LIMIT: i64 = 1 << 30;

/// HTTP behaviour of every HTTP and HTTPS listener of a Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpOptions {
    /// Compress responses for clients that accept it (`Accept-Encoding`). A Mapping
    /// turns it off for its routes with `compression: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Translate gRPC-Web requests from browsers (`application/grpc-web*`) into gRPC
    /// for upstreams that speak gRPC (Mappings with `grpc: true`), and their answers back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grpc_web: bool,
    /// Refuse a request whose body is larger, with 413. Envoy holds the whole body
    /// before it sends it upstream, so streaming uploads arrive at once; a Mapping sets
    /// its own lower limit, or 0 for none (its bodies stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_BODY_LIMIT))]
    pub max_request_body_bytes: Option<i64>,
    /// The `server` response header Envoy sets on every answer. Without it, an
    /// upstream's own `server` header passes through and Envoy adds none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$")
    )]
    pub server_name: Option<String>,
    /// Bodies for the answers Envoy makes itself with these status codes (404 when no
    /// route matches, 503 with no healthy upstream, 429 from a rate limit, 401/403 from
    /// auth, 413, 504…). The status code is kept. Upstreams' own answers are never changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.status == a.status))").message("each status may have one error response"))]
    pub error_responses: Vec<ErrorResponse>,
    /// Only clients from these addresses (IP addresses or CIDR ranges) may send requests;
    /// others get 403. Empty: every address. The client is the one Envoy trusts: the
    /// peer, the PROXY protocol header's source, or the address `trustedHops` takes from
    /// `X-Forwarded-For`. A Mapping's own `ipAllow` can only narrow this, never widen it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::access::MAX_CIDRS), inner(length(min = 1, max = 64)))]
    #[x_kube(validation = crate::access::cidr_list_rule())]
    pub ip_allow: Vec<String>,
    /// Clients from these addresses (IP addresses or CIDR ranges) get 403, even when
    /// `ipAllow` names them. No Mapping can let them in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::access::MAX_CIDRS), inner(length(min = 1, max = 64)))]
    #[x_kube(validation = crate::access::cidr_list_rule())]
    pub ip_deny: Vec<String>,
}

/// The body of Envoy's own answers with one status code.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// The status code (400-599) whose body this is; the answer keeps it.
    #[schemars(range(min = 400, max = 599))]
    pub status: i32,
    /// The body, sent as it is (at most 16 KiB).
    #[schemars(length(max = 16384))]
    pub body: String,
    /// Its content type (default `text/plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 128),
        regex(pattern = "^[a-z0-9.+-]+/[a-z0-9.+-]+( *; *[A-Za-z0-9._-]+=[A-Za-z0-9._-]+)*$")
    )]
    pub content_type: Option<String>,
}

/// Response compression.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Compression {
    /// The encodings offered, each once (default `[Gzip]`). A client's
    /// `Accept-Encoding` q-values choose among them; on a tie, the first listed wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b == a))").message("list each algorithm once"))]
    pub algorithms: Vec<CompressionAlgorithm>,
    /// Content types compressed, such as `application/json` (parameters such as
    /// `; charset=utf-8` do not matter). Default: Envoy's list of text types: HTML, CSS,
    /// JavaScript, JSON, plain text, XML, SVG.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 50),
        inner(length(min = 1, max = 128), regex(pattern = "^[a-z0-9.+-]+/[a-z0-9.+-]+$"))
    )]
    pub content_types: Vec<String>,
    /// Smaller responses are sent as they are (default 30 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1048576))]
    pub min_content_length: Option<i32>,
}

/// A response encoding Envoy can produce.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum CompressionAlgorithm {
    /// `Content-Encoding: gzip`.
    Gzip,
    /// `Content-Encoding: br`.
    Brotli,
    /// `Content-Encoding: zstd`.
    Zstd,
}
