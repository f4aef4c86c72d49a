//! What a `service` field points at: a Kubernetes Service (`name[.namespace][:port]`)
//! or a host outside the cluster (`http://` or `https://` URL).

use crate::services::PortRef;

/// A parsed `service` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceRef {
    Kubernetes {
        name: String,
        namespace: String,
        port: Option<PortRef>,
    },
    External {
        host: String,
        port: u16,
        tls: bool,
    },
}

/// Why a `service` field names nothing; the message quotes the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("service {service:?}: {port:?} is not a port number")]
    UrlPort { service: String, port: String },
    #[error("service {service:?} has no host")]
    NoHost { service: String },
    #[error("service {service:?}: port 0 is not a port")]
    PortZero { service: String },
    #[error("service {service:?} ends with ':' but names no port")]
    NoPort { service: String },
    #[error("service {service:?} names no Service")]
    NoService { service: String },
}

/// Parses a `service` reference; `namespace` is the referring object's.
pub fn parse(service: &str, namespace: &str) -> Result<ServiceRef, ParseError> {
    let owned = || service.to_string();
    for (scheme, tls, default_port) in [("https://", true, 443u16), ("http://", false, 80u16)] {
        if let Some(rest) = service.strip_prefix(scheme) {
            let authority = rest.split('/').next().unwrap_or_default();
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) => (
                    host,
                    port.parse::<u16>().map_err(|_| ParseError::UrlPort {
                        service: owned(),
                        port: port.to_string(),
                    })?,
                ),
                None => (authority, default_port),
            };
            if host.is_empty() {
                return Err(ParseError::NoHost { service: owned() });
            }
            return Ok(ServiceRef::External {
                host: host.to_string(),
                port,
                tls,
            });
        }
    }
    let (name_part, port) = match service.split_once(':') {
        Some((name, port)) => {
            let port = match port.parse::<u16>() {
                Ok(0) => return Err(ParseError::PortZero { service: owned() }),
                Ok(n) => PortRef::Number(n),
                Err(_) if !port.is_empty() => PortRef::Name(port.to_string()),
                Err(_) => return Err(ParseError::NoPort { service: owned() }),
            };
            (name, Some(port))
        }
        None => (service, None),
    };
    let (name, namespace) = match name_part.split_once('.') {
        Some((name, ns)) => (name, ns),
        None => (name_part, namespace),
    };
    if name.is_empty() || namespace.is_empty() {
        return Err(ParseError::NoService { service: owned() });
    }
    Ok(ServiceRef::Kubernetes {
        name: name.to_string(),
        namespace: namespace.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_services_default_to_the_objects_namespace() {
        assert_eq!(
            parse("quote", "shop"),
            Ok(ServiceRef::Kubernetes {
                name: "quote".into(),
                namespace: "shop".into(),
                port: None
            })
        );
        assert_eq!(
            parse("quote.backend:8080", "shop"),
            Ok(ServiceRef::Kubernetes {
                name: "quote".into(),
                namespace: "backend".into(),
                port: Some(PortRef::Number(8080))
            })
        );
        assert_eq!(
            parse("quote:http", "shop"),
            Ok(ServiceRef::Kubernetes {
                name: "quote".into(),
                namespace: "shop".into(),
                port: Some(PortRef::Name("http".into()))
            })
        );
    }

    #[test]
    fn urls_are_external_hosts_with_scheme_default_ports() {
        assert_eq!(
            parse("https://api.partner.example.net", "x"),
            Ok(ServiceRef::External {
                host: "api.partner.example.net".into(),
                port: 443,
                tls: true
            })
        );
        assert_eq!(
            parse("http://127.0.0.1:9000/", "x"),
            Ok(ServiceRef::External {
                host: "127.0.0.1".into(),
                port: 9000,
                tls: false
            })
        );
    }

    #[test]
    fn broken_references_say_what_is_wrong() {
        assert!(
            parse("quote:", "x")
                .expect_err("no port")
                .to_string()
                .contains("names no port")
        );
        assert!(
            parse("http://:80", "x")
                .expect_err("no host")
                .to_string()
                .contains("no host")
        );
        assert_eq!(
            parse("http://api:x", "x").map_err(|e| e.to_string()),
            Err(r#"service "http://api:x": "x" is not a port number"#.to_string())
        );
        assert!(parse("quote:0", "x").is_err());
    }
}
