//! JSON Web Tokens of the test's own: an ES256 signing key generated for the
//! test, the tokens it signs, and a server that publishes its public half
//! as a JSON Web Key Set (what an identity provider serves).

use std::convert::Infallible;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::{Seen, Task, serve_http};

/// An ES256 key pair, made for one test.
#[derive(Debug)]
pub struct SigningKey {
    pair: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
}

impl SigningKey {
    /// A new key with key id `kid`.
    pub fn generate(kid: &str) -> SigningKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("the system has randomness for a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("a key ring just generated parses");
        SigningKey {
            pair,
            kid: kid.to_owned(),
            rng,
        }
    }

    /// The public key as a JSON Web Key Set of one key.
    pub fn jwks(&self) -> Value {
        // An uncompressed P-256 point: 0x04, then x and y (32 bytes each).
        let point = self.pair.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);
        json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }] })
    }

    /// A compact JWS of `claims`, signed with this key.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": self.kid });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // The fixed encoding is JWS's: r and s, 32 bytes each.
        let signature = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .expect("signing with a valid key succeeds");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// Seconds since the epoch, for `exp` and `iat` claims.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Serves a key set at one path (404 elsewhere) and records every path asked for.
#[derive(Debug)]
pub struct JwksServer {
    pub fetched: Seen<String>,
    _task: Task,
}

impl JwksServer {
    pub fn serve(listener: TcpListener, path: &str, jwks: &Value) -> JwksServer {
        let fetched = Seen::default();
        let seen = fetched.clone();
        let path = path.to_owned();
        let body = Bytes::from(jwks.to_string());
        let task = serve_http(listener, move |req: hyper::Request<Incoming>| {
            let asked = req.uri().path().to_owned();
            seen.push(asked.clone());
            let found = asked == path;
            let body = if found { body.clone() } else { Bytes::new() };
            async move {
                let response = hyper::Response::builder()
                    .status(if found { 200 } else { 404 })
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("a valid response");
                Ok::<_, Infallible>(response)
            }
        });
        JwksServer { fetched, _task: task }
    }
}
