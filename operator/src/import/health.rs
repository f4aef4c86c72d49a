//! A Mapping's `health_checks` → Legate's `healthCheck` (the first HTTP check).

use legate_crds::common::{Duration, HealthCheck};

use super::fields::Fields;
use super::policy;
use super::report::DocReport;

/// One entry of `health_checks` → Legate `healthCheck` (HTTP checks only).
pub(super) fn health_check(mut f: Fields, report: &mut DocReport) -> Option<HealthCheck> {
    let duration = |f: &mut Fields, key: &str, report: &mut DocReport| {
        f.string(key, report)
            .and_then(|t| super::fields::seconds(&t))
            .map(Duration)
    };
    let mut interval = duration(&mut f, "interval", report);
    if let Some(d) = interval
        .as_ref()
        .filter(|d| d.to_std().is_ok_and(|s| s < std::time::Duration::from_secs(1)))
    {
        report.changed(
            f.at("interval"),
            format!(
                "{}: Legate checks at most once a second (every Envoy checks every endpoint): 1s",
                d.as_str()
            ),
        );
        interval = Some(Duration::new("1s"));
    }
    let timeout = duration(&mut f, "timeout", report);
    let healthy = f.integer("healthy_threshold", report).map(policy::clamp_i32);
    let unhealthy = f.integer("unhealthy_threshold", report).map(policy::clamp_i32);
    let mut kind = f.object("health_check", report);
    let mut http = kind.as_mut().and_then(|k| k.object("http", report));
    if let Some(k) = kind.as_mut() {
        k.drop(
            "grpc",
            "Legate's active health checks are HTTP GETs; gRPC health checks are not converted",
            report,
        );
    }
    let result = http.as_mut().and_then(|h| {
        let path = h.string("path", report)?;
        let host = h.string("hostname", report);
        let mut statuses = Vec::new();
        for (i, range) in h.list("expected_statuses", report).into_iter().enumerate() {
            let mut r = Fields::of(format!("{}.expected_statuses[{i}]", h.path), range, report);
            let (min, max) = (r.integer("min", report), r.integer("max", report));
            r.finish("a status range", report);
            if let (Some(min), Some(max)) = (min, max) {
                // Envoy's ranges are half-open, [min, max); Legate lists
                // statuses, so a range becomes its registered statuses.
                statuses.extend(
                    (min.max(100)..max.min(600))
                        .map(policy::clamp_i32)
                        .filter(|s| policy::ENVOY_STATUSES.contains(s)),
                );
            }
        }
        h.drop(
            "add_request_headers",
            "Legate's health checks send no extra headers",
            report,
        );
        h.drop(
            "remove_request_headers",
            "Legate's health checks send no extra headers to remove",
            report,
        );
        Some(HealthCheck {
            path,
            host,
            interval: interval.clone(),
            timeout: timeout.clone(),
            unhealthy_threshold: unhealthy,
            healthy_threshold: healthy,
            expected_statuses: statuses,
        })
    });
    if let Some(mut h) = http {
        h.finish("an HTTP health check", report);
    }
    if let Some(mut k) = kind {
        k.finish("a health check", report);
    }
    if result.is_none() {
        report.dropped(
            f.path.clone(),
            "no HTTP health check with a path: nothing Legate can run",
        );
    }
    f.finish("a health check", report);
    result
}
