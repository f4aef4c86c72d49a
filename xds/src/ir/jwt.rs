//! JSON Web Token authentication of a route.

/// A route's token check: the provider (issuer, audiences, key set) and
/// what a valid token gives the upstream. Routes that share a provider
/// name share its settings: the name carries their hash.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct JwtAuth {
    /// `<namespace>/jwt-<hash>`: one namespace never names another's.
    pub provider: String,
    pub issuer: String,
    /// Empty: any audience.
    pub audiences: Vec<String>,
    /// The upstream the key set is fetched from, and its URL.
    pub jwks_upstream: String,
    pub jwks_uri: String,
    /// `(claim, header)` pairs.
    pub claim_to_headers: Vec<(String, String)>,
    /// Keep the token in the request to the upstream.
    pub forward: bool,
}
