//! A Mapping's `service` as an upstream, through the one resolver, with the
//! Mapping's (or the Gateway's default) upstream settings.

use std::time::Duration;

use legate_crds::common;
use legate_crds::gateway::RouteDefaults;
use legate_crds::mapping::Mapping;
use legate_xds::ir;

use super::policy::duration;
use crate::names::object_ref;
use crate::services::ServiceIndex;
use crate::upstreams::{self, ClusterSettings, RefError, Reference};
use crate::verdicts::{Problem, Verdicts};
use crate::world::World;

/// Resolves a Mapping's service into an upstream of `config` and returns its
/// name; records BackendNotFound on the verdict when the Service is missing
/// (the route then answers 503, which makes the failure visible). A port that
/// is not the Service's, or a TLS Secret that is missing or broken, leaves
/// the Mapping without an upstream.
pub(super) fn upstream_for(
    world: &World,
    mapping: &Mapping,
    defaults: &RouteDefaults,
    index: &ServiceIndex,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) -> Option<String> {
    let service = mapping.spec.service.as_ref()?;
    let origin = object_ref(mapping);
    let reference = Reference {
        service,
        origin: &origin,
        settings: cluster_settings(mapping, defaults),
        tls: mapping.spec.upstream_tls.as_ref(),
    };
    match upstreams::resolve(world, index, &reference, config) {
        Ok(resolved) => {
            // No ready endpoint is not a broken reference for a route (a
            // Service may be scaled to zero); a missing Service, or one that
            // did not allow this namespace, is.
            if let Some(e @ (RefError::ServiceNotFound { .. } | RefError::NotPermitted { .. })) =
                &resolved.trouble
            {
                let message = format!("{e}; requests to this route get 503");
                verdicts.unresolved(&origin, Problem::new(e.reason(), message));
            }
            Some(resolved.upstream)
        }
        Err(e) => {
            let problem = Problem::new(e.reason(), e.to_string());
            match e {
                RefError::Invalid(_) | RefError::Forbidden { .. } => verdicts.reject(&origin, problem),
                _ => verdicts.unresolved(&origin, problem),
            }
            None
        }
    }
}

/// The upstream settings of a Mapping, else of the Gateway's defaults.
fn cluster_settings(mapping: &Mapping, defaults: &RouteDefaults) -> ClusterSettings {
    let s = &mapping.spec;
    let lb = s.load_balancer.as_ref().or(defaults.load_balancer.as_ref());
    let breakers = s.circuit_breakers.as_ref().or(defaults.circuit_breakers.as_ref());
    let health = s.health_check.as_ref().or(defaults.health_check.as_ref());
    let outliers = s
        .outlier_detection
        .as_ref()
        .or(defaults.outlier_detection.as_ref());
    let keepalive = s.tcp_keepalive.as_ref().or(defaults.tcp_keepalive.as_ref());
    ClusterSettings {
        protocol: if s.grpc.unwrap_or(false) {
            ir::UpstreamProtocol::Http2
        } else {
            ir::UpstreamProtocol::Http1
        },
        load_balancing: match lb.map(|l| l.policy) {
            Some(common::LoadBalancerPolicy::LeastRequest) => ir::LoadBalancing::LeastRequest,
            Some(common::LoadBalancerPolicy::RingHash) => ir::LoadBalancing::RingHash,
            Some(common::LoadBalancerPolicy::Maglev) => ir::LoadBalancing::Maglev,
            _ => ir::LoadBalancing::RoundRobin,
        },
        connect_timeout: duration(s.connect_timeout.as_ref()).unwrap_or(Duration::from_secs(3)),
        circuit_breakers: breakers.map(|b| ir::CircuitBreakers {
            max_connections: b.max_connections.and_then(|n| u32::try_from(n).ok()),
            max_pending_requests: b.max_pending_requests.and_then(|n| u32::try_from(n).ok()),
            max_requests: b.max_requests.and_then(|n| u32::try_from(n).ok()),
            max_retries: b.max_retries.and_then(|n| u32::try_from(n).ok()),
        }),
        health_check: health.map(health_check),
        outlier_detection: outliers.map(outlier_detection),
        tcp_keepalive: keepalive.map(tcp_keepalive),
        judged_by: outliers.and(mapping.metadata.namespace.clone()),
    }
}

fn count(n: Option<i32>, default: u32) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(default)
}

fn health_check(h: &common::HealthCheck) -> ir::HealthCheck {
    ir::HealthCheck {
        path: h.path.clone(),
        host: h.host.clone(),
        interval: duration(h.interval.as_ref()).unwrap_or(Duration::from_secs(5)),
        timeout: duration(h.timeout.as_ref()).unwrap_or(Duration::from_secs(1)),
        unhealthy_threshold: count(h.unhealthy_threshold, 2),
        healthy_threshold: count(h.healthy_threshold, 1),
        expected_statuses: h
            .expected_statuses
            .iter()
            .filter_map(|s| u16::try_from(*s).ok())
            .collect(),
    }
}

fn outlier_detection(o: &common::OutlierDetection) -> ir::OutlierDetection {
    ir::OutlierDetection {
        consecutive_5xx: count(o.consecutive_5xx, 5),
        interval: duration(o.interval.as_ref()).unwrap_or(Duration::from_secs(10)),
        base_ejection_time: duration(o.base_ejection_time.as_ref()).unwrap_or(Duration::from_secs(30)),
        max_ejection_percent: count(o.max_ejection_percent, 10),
    }
}

/// Envoy counts keepalive times in whole seconds: a fraction rounds up, so
/// that "500ms" still probes rather than meaning "never".
fn tcp_keepalive(k: &common::TcpKeepalive) -> ir::TcpKeepalive {
    let secs = |d: Option<&common::Duration>| {
        duration(d).map(|d| u32::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(u32::MAX))
    };
    ir::TcpKeepalive {
        probes: k.probes.and_then(|n| u32::try_from(n).ok()),
        idle_time_secs: secs(k.idle_time.as_ref()),
        interval_secs: secs(k.interval.as_ref()),
    }
}
