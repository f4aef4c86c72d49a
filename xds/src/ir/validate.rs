//! Checks on IR items that Envoy would otherwise refuse (a NACK) or silently
//! misread. The operator runs them before translation and puts the message on
//! the object's `Accepted` condition.

use super::{Forward, PathMatch, Route, RouteAction};

/// Why a route cannot be programmed. Messages are written for the developer
/// who owns the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRoute {
    #[error("the route forwards to no upstream: name at least one Service")]
    NoUpstream,
    #[error("the weights of the route's upstreams add up to 0: give at least one a positive weight")]
    ZeroWeights,
    #[error("path {path:?} must start with '/'")]
    RelativePath { path: String },
    #[error("regular expression {regex:?} is empty")]
    EmptyRegex { regex: String },
    #[error("mirror percentage {percent} is above 100")]
    MirrorPercent { percent: u32 },
    #[error("redirect status {status} is not one of 301, 302, 303, 307, 308")]
    RedirectStatus { status: u16 },
    #[error("direct response status {status} is not between 200 and 599")]
    DirectStatus { status: u16 },
    #[error("header name {name:?} is not a valid HTTP header name")]
    HeaderName { name: String },
}

impl InvalidRoute {
    /// A short label for metrics and condition reasons.
    pub fn label(&self) -> &'static str {
        match self {
            InvalidRoute::NoUpstream => "no_upstream",
            InvalidRoute::ZeroWeights => "zero_weights",
            InvalidRoute::RelativePath { .. } => "relative_path",
            InvalidRoute::EmptyRegex { .. } => "empty_regex",
            InvalidRoute::MirrorPercent { .. } => "mirror_percent",
            InvalidRoute::RedirectStatus { .. } => "redirect_status",
            InvalidRoute::DirectStatus { .. } => "direct_status",
            InvalidRoute::HeaderName { .. } => "header_name",
        }
    }
}

impl Route {
    pub fn validate(&self) -> Result<(), InvalidRoute> {
        match &self.matcher.path {
            PathMatch::Prefix(p) | PathMatch::Exact(p) if !p.starts_with('/') => {
                return Err(InvalidRoute::RelativePath { path: p.clone() });
            }
            PathMatch::Regex(r) if r.is_empty() => return Err(InvalidRoute::EmptyRegex { regex: r.clone() }),
            _ => {}
        }
        let headers = self.matcher.headers.iter().map(|h| &h.name);
        let added = self
            .policy
            .request_headers_to_add
            .iter()
            .chain(&self.policy.response_headers_to_add);
        for name in headers.chain(added.map(|h| &h.name)) {
            if !is_header_name(name) {
                return Err(InvalidRoute::HeaderName { name: name.clone() });
            }
        }
        match &self.action {
            RouteAction::Forward(f) => validate_forward(f),
            RouteAction::Redirect(r) if ![0, 301, 302, 303, 307, 308].contains(&r.status) => {
                Err(InvalidRoute::RedirectStatus { status: r.status })
            }
            RouteAction::DirectResponse { status, .. } if !(200..=599).contains(status) => {
                Err(InvalidRoute::DirectStatus { status: *status })
            }
            _ => Ok(()),
        }
    }
}

fn validate_forward(f: &Forward) -> Result<(), InvalidRoute> {
    if f.upstreams.is_empty() {
        return Err(InvalidRoute::NoUpstream);
    }
    if f.upstreams.len() > 1 && f.upstreams.iter().all(|u| u.weight == 0) {
        return Err(InvalidRoute::ZeroWeights);
    }
    if let Some(m) = f.mirrors.iter().find(|m| m.percent > 100) {
        return Err(InvalidRoute::MirrorPercent { percent: m.percent });
    }
    Ok(())
}

/// An RFC 9110 token, or an HTTP/2 pseudo-header.
fn is_header_name(name: &str) -> bool {
    let token = name.strip_prefix(':').unwrap_or(name);
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{HeaderMatch, Mirror, ValueMatch, WeightedUpstream};
    use crate::sample;

    fn check(edit: impl FnOnce(&mut Route)) -> Result<(), InvalidRoute> {
        let mut r = sample::route("r", "*", "/", "u");
        edit(&mut r);
        r.validate()
    }

    fn forward(r: &mut Route) -> &mut Forward {
        match &mut r.action {
            RouteAction::Forward(f) => f,
            _ => panic!("sample routes forward"),
        }
    }

    #[test]
    fn a_sample_route_is_valid() {
        assert_eq!(check(|_| {}), Ok(()));
        assert_eq!(check(|r| r.matcher.method = Some("GET".into())), Ok(()));
    }

    type Edit = Box<dyn FnOnce(&mut Route)>;

    #[test]
    fn invalid_routes_say_what_to_fix() {
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|r| forward(r).upstreams.clear()),
                "the route forwards to no upstream: name at least one Service",
            ),
            (
                Box::new(|r| {
                    forward(r).upstreams = vec![
                        WeightedUpstream {
                            upstream: "a".into(),
                            weight: 0,
                        },
                        WeightedUpstream {
                            upstream: "b".into(),
                            weight: 0,
                        },
                    ]
                }),
                "the weights of the route's upstreams add up to 0: give at least one a positive weight",
            ),
            (
                Box::new(|r| r.matcher.path = PathMatch::Prefix("api".into())),
                "path \"api\" must start with '/'",
            ),
            (
                Box::new(|r| {
                    forward(r).mirrors = vec![Mirror {
                        upstream: "m".into(),
                        percent: 150,
                    }]
                }),
                "mirror percentage 150 is above 100",
            ),
            (
                Box::new(|r| {
                    r.matcher.headers.push(HeaderMatch {
                        name: "bad header".into(),
                        value: ValueMatch::Present,
                        invert: false,
                    })
                }),
                "header name \"bad header\" is not a valid HTTP header name",
            ),
            (
                Box::new(|r| {
                    r.action = RouteAction::DirectResponse {
                        status: 99,
                        body: None,
                    }
                }),
                "direct response status 99 is not between 200 and 599",
            ),
        ];
        for (edit, message) in cases {
            let err = check(edit).expect_err("invalid");
            assert_eq!(err.to_string(), message);
        }
    }
}
