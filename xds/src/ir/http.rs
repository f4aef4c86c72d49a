//! What an HTTP listener does to every request and response beyond routing,
//! and what a route changes of it.

/// Filters of every HTTP listener of a Gateway.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct HttpOptions {
    pub compression: Option<Compression>,
    pub grpc_web: bool,
    /// 413 beyond this many bytes of request body; `None`: no limit.
    pub max_request_body_bytes: Option<u32>,
    /// The `server` header Envoy sets; `None`: the upstream's passes.
    pub server_name: Option<String>,
    /// Bodies of Envoy's own answers, by status.
    pub error_responses: Vec<ErrorResponse>,
    /// The Gateway's client address lists; `None`: no lists.
    pub ip_access: Option<IpAccess>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ErrorResponse {
    pub status: u16,
    pub body: String,
    pub content_type: String,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Compression {
    /// In order of preference, each once.
    pub algorithms: Vec<CompressionAlgorithm>,
    /// Empty: Envoy's default list.
    pub content_types: Vec<String>,
    pub min_content_length: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum CompressionAlgorithm {
    Gzip,
    Brotli,
    Zstd,
}

impl CompressionAlgorithm {
    pub const ALL: [CompressionAlgorithm; 3] = [
        CompressionAlgorithm::Gzip,
        CompressionAlgorithm::Brotli,
        CompressionAlgorithm::Zstd,
    ];
}

/// A route's own request body limit, when it departs from the listener's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BodyLimit {
    /// No limit: the body streams to the upstream.
    Unlimited,
    Bytes(u32),
}

/// Which client addresses may send requests. A request passes when its
/// client is in `allow` (if set) and in no range of `deny`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct IpAccess {
    /// `None`: every address; `Some` of an empty list: none.
    pub allow: Option<Vec<Cidr>>,
    pub deny: Vec<Cidr>,
}

/// An address range; a single address has the full prefix length.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cidr {
    pub address: std::net::IpAddr,
    pub prefix_len: u32,
}
