//! The changes that turn one configuration of a Gateway into the next.

use legate_xds::translate::Change;

use super::GatewayConfig;

/// The translator changes from `old` to `new`: upserts for what is new or
/// different, removals for what is gone, and endpoint sets on their own (the
/// EDS fast path). Unchanged items produce nothing.
pub fn changes(old: &GatewayConfig, new: &GatewayConfig) -> Vec<Change> {
    let mut out = Vec::new();
    // Additions first, in dependency order (upstreams and secrets before the
    // listeners and routes that use them); removals last, in reverse order.
    for (name, secret) in &new.secrets {
        if old.secrets.get(name) != Some(secret) {
            out.push(Change::UpsertSecret(secret.clone()));
        }
    }
    for (name, upstream) in &new.upstreams {
        if old.upstreams.get(name) != Some(upstream) {
            out.push(Change::UpsertUpstream(upstream.clone()));
        }
    }
    for (name, endpoints) in &new.endpoints {
        if old.endpoints.get(name) != Some(endpoints) {
            out.push(Change::SetEndpoints {
                upstream: name.clone(),
                endpoints: endpoints.clone(),
            });
        }
    }
    if old.auth != new.auth {
        out.push(Change::SetAuth(new.auth.clone()));
    }
    if old.rate_limit != new.rate_limit {
        out.push(Change::SetRateLimit(new.rate_limit.clone()));
    }
    if old.observability != new.observability {
        out.push(Change::SetObservability(new.observability.clone()));
    }
    for (name, listener) in &new.listeners {
        if old.listeners.get(name) != Some(listener) {
            out.push(Change::UpsertListener(listener.clone()));
        }
    }
    for (id, route) in &new.routes {
        if old.routes.get(id) != Some(route) {
            out.push(Change::UpsertRoute(route.clone()));
        }
    }
    for (id, route) in &new.tcp_routes {
        if old.tcp_routes.get(id) != Some(route) {
            out.push(Change::UpsertTcpRoute(route.clone()));
        }
    }
    for id in old.routes.keys().filter(|id| !new.routes.contains_key(*id)) {
        out.push(Change::RemoveRoute(id.clone()));
    }
    for id in old
        .tcp_routes
        .keys()
        .filter(|id| !new.tcp_routes.contains_key(*id))
    {
        out.push(Change::RemoveTcpRoute(id.clone()));
    }
    for name in old.listeners.keys().filter(|n| !new.listeners.contains_key(*n)) {
        out.push(Change::RemoveListener(name.clone()));
    }
    for name in old.upstreams.keys().filter(|n| !new.upstreams.contains_key(*n)) {
        out.push(Change::RemoveUpstream(name.clone()));
    }
    for name in old.secrets.keys().filter(|n| !new.secrets.contains_key(*n)) {
        out.push(Change::RemoveSecret(name.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_xds::ir::{self, ObjectRef};

    fn upstream(name: &str) -> ir::Upstream {
        ir::Upstream::endpoints(name, ObjectRef::new("Mapping", "default", "a", 1))
    }

    #[test]
    fn identical_configurations_need_no_change() {
        let mut config = GatewayConfig::default();
        config.add_upstream(upstream("default/quote:80"));
        assert!(changes(&config, &config.clone()).is_empty());
    }

    #[test]
    fn endpoints_alone_take_the_fast_path() {
        let mut old = GatewayConfig::default();
        old.add_upstream(upstream("default/quote:80"));
        let mut new = old.clone();
        new.endpoints.insert(
            "default/quote:80".into(),
            vec![ir::Endpoint {
                address: "198.18.0.2".parse().expect("an IP"),
                port: 8080,
                ready: true,
                zone: None,
            }],
        );
        let out = changes(&old, &new);
        assert_eq!(out.len(), 1);
        assert!(matches!(out[0], Change::SetEndpoints { .. }), "{out:?}");
    }

    #[test]
    fn removed_upstreams_come_after_additions() {
        let mut old = GatewayConfig::default();
        old.add_upstream(upstream("default/old:80"));
        let mut new = GatewayConfig::default();
        new.add_upstream(upstream("default/new:80"));
        let out = changes(&old, &new);
        assert!(matches!(&out[0], Change::UpsertUpstream(u) if u.name == "default/new:80"));
        assert!(matches!(&out[1], Change::RemoveUpstream(n) if n == "default/old:80"));
    }
}
