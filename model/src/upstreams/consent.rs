//! Whether a Service lets another namespace route to it. A namespace's own
//! Services are always its to use; another namespace's only when that
//! Service says so, so that no tenant can send traffic (with its own
//! headers, timeouts and retries) to a backend whose owners never agreed.

use k8s_openapi::api::core::v1::Service;

/// The Service annotation that names the namespaces that may route to it:
/// a comma-separated list, or `*` for every namespace.
pub const ALLOW_FROM_ANNOTATION: &str = "legate.dev/allow-from";

/// Whether `service` accepts traffic routed from namespace `from`.
pub fn allows(service: &Service, from: &str) -> bool {
    if service.metadata.namespace.as_deref() == Some(from) {
        return true;
    }
    let annotations = service.metadata.annotations.as_ref();
    let Some(allowed) = annotations.and_then(|a| a.get(ALLOW_FROM_ANNOTATION)) else {
        return false;
    };
    allowed.split(',').map(str::trim).any(|n| n == "*" || n == from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(namespace: &str, allow_from: Option<&str>) -> Service {
        let mut service = Service::default();
        service.metadata.namespace = Some(namespace.into());
        if let Some(allowed) = allow_from {
            service.metadata.annotations =
                Some([(ALLOW_FROM_ANNOTATION.to_string(), allowed.to_string())].into());
        }
        service
    }

    #[test]
    fn another_namespace_needs_the_services_consent() {
        assert!(allows(&service("backend", None), "backend"), "its own namespace");
        assert!(
            !allows(&service("backend", None), "shop"),
            "no annotation, no consent"
        );
        assert!(allows(&service("backend", Some("web, shop")), "shop"));
        assert!(
            !allows(&service("backend", Some("web,shopping")), "shop"),
            "names match whole"
        );
        assert!(allows(&service("backend", Some("*")), "anyone"));
        assert!(!allows(&service("backend", Some("")), "shop"));
    }
}
