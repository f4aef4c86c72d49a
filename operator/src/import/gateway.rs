//! The Legate Gateway the import makes from Emissary's Listeners and the
//! `ambassador` Module: Emissary's Deployment, Service, Listeners and
//! Module are one Gateway in Legate.

use std::collections::BTreeMap;

use kube::api::ObjectMeta;
use legate_crds::gateway::{
    AllowedRoutes, FromNamespaces, Listener, Protocol, RouteDefaults, RouteNamespaces, RouteStats,
    ServiceType,
};
use legate_crds::http::HttpOptions;
use legate_crds::{Gateway, GatewaySpec};

use super::listener::ConvertedListener;
use super::module::ModuleSettings;

/// Builds the Gateway `namespace/name`.
pub fn assemble(
    name: &str,
    namespace: &str,
    listeners: Vec<ConvertedListener>,
    module: Option<ModuleSettings>,
) -> Gateway {
    let only_own_namespace = !listeners.is_empty() && listeners.iter().all(|l| l.self_namespace);
    let mut out: Vec<Listener> = Vec::new();
    for converted in listeners {
        let mut listener = converted.listener;
        if out.iter().any(|l| l.name == listener.name) {
            listener.name = format!(
                "{}-{}",
                listener.name.chars().take(56).collect::<String>(),
                listener.port
            );
        }
        out.push(listener);
    }
    let module = module.unwrap_or_default();
    if out.is_empty() {
        out = vec![
            listener("http", module.service_port.unwrap_or(8080), Protocol::Http),
            listener("https", 8443, Protocol::Https),
        ];
    }
    for listener in &mut out {
        if matches!(listener.protocol, Protocol::Http | Protocol::Https) && listener.trusted_hops.is_none() {
            listener.trusted_hops = module.trusted_hops;
        }
        listener.proxy_protocol |= module.proxy_protocol;
    }
    let defaults = (module.defaults != RouteDefaults::default()).then_some(module.defaults);
    let http = (module.http != HttpOptions::default()).then_some(module.http);
    Gateway {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        spec: GatewaySpec {
            replicas: 2,
            image: legate_crds::gateway::DEFAULT_ENVOY_IMAGE.to_string(),
            resources: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            service_type: ServiceType::LoadBalancer,
            service_annotations: BTreeMap::new(),
            listeners: out,
            allowed_routes: AllowedRoutes {
                namespaces: RouteNamespaces {
                    from: if only_own_namespace {
                        FromNamespaces::Same
                    } else {
                        FromNamespaces::All
                    },
                    selector: None,
                },
            },
            defaults,
            access_log: module.access_log,
            route_stats: RouteStats::Off,
            tracing: None,
            http,
            host_owners: Vec::new(),
            autoscaling: None,
        },
        status: None,
    }
}

fn listener(name: &str, port: i32, protocol: Protocol) -> Listener {
    Listener {
        name: name.to_string(),
        port,
        protocol,
        node_port: None,
        trusted_hops: None,
        proxy_protocol: false,
    }
}
