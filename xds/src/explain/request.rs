//! The request `legate explain` asks about, seen as Envoy's connection
//! manager hands it to the router: host without its port, path normalized
//! and its slashes merged, headers by lower-case name.

use std::collections::BTreeMap;

/// What a request looks like to the router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Lower case, without port.
    pub host: String,
    /// The port the client connects to (the listener's).
    pub port: u16,
    /// Normalized, without the query.
    pub path: String,
    /// In request order, undecoded.
    pub query: Vec<(String, String)>,
    /// By lower-case name; repeated headers keep every value in order.
    pub headers: BTreeMap<String, Vec<String>>,
}

/// Why a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the URL must start with http:// or https://, got {0:?}")]
    Scheme(String),
    #[error("the URL {0:?} has no host")]
    NoHost(String),
    #[error("the port of {0:?} is not a number from 1 to 65535")]
    Port(String),
    #[error("a header is `name: value`, got {0:?}")]
    Header(String),
    #[error("the method {0:?} is not an HTTP token")]
    Method(String),
}

impl Request {
    /// `method` on `url` with headers given as `name: value`. A `Host`
    /// header overrides the URL's host, as it does for curl.
    pub fn parse(method: &str, url: &str, headers: &[String]) -> Result<Request, RequestError> {
        if method.is_empty()
            || !method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(RequestError::Method(method.to_owned()));
        }
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
            .ok_or_else(|| RequestError::Scheme(url.to_owned()))?;
        let scheme = scheme.to_ascii_lowercase();
        let (authority, path_and_query) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // A fragment never reaches the server.
        let path_and_query = path_and_query.split('#').next().unwrap_or_default();
        let (host, port) = split_authority(authority).ok_or_else(|| RequestError::Port(url.to_owned()))?;
        if host.is_empty() {
            return Err(RequestError::NoHost(url.to_owned()));
        }
        let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for header in headers {
            let (name, value) = header
                .split_once(':')
                .filter(|(n, _)| !n.trim().is_empty())
                .ok_or_else(|| RequestError::Header(header.clone()))?;
            by_name
                .entry(name.trim().to_ascii_lowercase())
                .or_default()
                .push(value.trim().to_owned());
        }
        let host = match by_name.remove("host").and_then(|v| v.into_iter().next()) {
            Some(h) => split_authority(&h).map(|(h, _)| h).unwrap_or(h),
            None => host,
        };
        let (raw_path, raw_query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, q),
            None => (path_and_query, ""),
        };
        let raw_path = if raw_path.is_empty() { "/" } else { raw_path };
        let method = method.to_owned();
        by_name.insert(":method".into(), vec![method.clone()]);
        by_name.insert(":authority".into(), vec![host.to_ascii_lowercase()]);
        by_name.insert(":scheme".into(), vec![scheme.clone()]);
        let path = normalize_path(raw_path);
        by_name.insert(":path".into(), vec![path_and_query_of(&path, raw_query)]);
        Ok(Request {
            method,
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path,
            query: parse_query(raw_query),
            headers: by_name,
        })
    }

    /// Every value of header `name` (lower case) joined with `,`, as Envoy
    /// matches a repeated header; `None` when absent.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|values| values.join(","))
    }

    /// The first value of query parameter `name`, as Envoy's route matcher
    /// takes it.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn path_and_query_of(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// `host[:port]` or `[v6]:port`; `None` when the port is not a number.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        (format!("[{v6}]"), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => None,
    };
    Some((host, port))
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (pair.to_owned(), String::new()),
        })
        .collect()
}

/// The path as Envoy routes it with `normalize_path` and `merge_slashes`
/// on (the connection manager Legate configures): percent-encoded
/// unreserved characters decoded and other escapes in upper case, `.` and
/// `..` segments resolved, runs of slashes merged.
pub fn normalize_path(path: &str) -> String {
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = decoded.split('/').collect();
    // The first part is what precedes the leading slash (empty).
    let last = parts.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, part) in parts.iter().enumerate().skip(1) {
        match *part {
            "." => trailing_slash = i == last,
            ".." => {
                segments.pop();
                trailing_slash = i == last;
            }
            "" => trailing_slash = i == last,
            segment => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    out
}

/// `%41` → `A` for the characters RFC 3986 calls unreserved; every other
/// escape kept, its hex digits in upper case.
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            let byte = hi * 16 + lo;
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
            }
            i += 3;
            continue;
        }
        // Not an escape: copy the character whole (paths may carry UTF-8).
        let ch = path[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_as_envoy_routes_them() {
        for (given, routed) in [
            ("/", "/"),
            ("/a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../a", "/a"),
            ("/a/b/..", "/a/"),
            ("/a/", "/a/"),
            ("/%61pi", "/api"),
            ("/a%2fb", "/a%2Fb"),
            ("///", "/"),
        ] {
            assert_eq!(normalize_path(given), routed, "{given}");
        }
    }

    #[test]
    fn a_request_is_read_like_curl_sends_it() {
        let r = Request::parse(
            "POST",
            "http://Shop.Example.com:8080/cart?id=1&x",
            &["X-Team: a".into(), "x-team: b".into()],
        )
        .expect("a request");
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("shop.example.com", 8080, "/cart")
        );
        assert_eq!(r.query_param("id"), Some("1"));
        assert_eq!(r.query_param("x"), Some(""));
        assert_eq!(r.header("x-team").as_deref(), Some("a,b"));
        assert_eq!(r.header(":method").as_deref(), Some("POST"));

        let r = Request::parse("GET", "https://10.0.0.1", &["Host: api.example.com:443".into()])
            .expect("a request");
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("api.example.com", 443, "/")
        );

        assert!(matches!(
            Request::parse("GET", "ftp://x/", &[]),
            Err(RequestError::Scheme(_))
        ));
        assert!(matches!(
            Request::parse("GET", "http://x:99999/", &[]),
            Err(RequestError::Port(_))
        ));
        assert!(matches!(
            Request::parse("GET", "http://x/", &["nocolon".into()]),
            Err(RequestError::Header(_))
        ));
        assert!(matches!(
            Request::parse("G T", "http://x/", &[]),
            Err(RequestError::Method(_))
        ));
    }
}
