//! Proxy metrics: a Mapping's routes count under `legate_<namespace>_<name>`
//! in Envoy's stats in Prometheus format (the fleet serves them on the probe
//! port; a local test Envoy has no probe listener, so they are read from its
//! admin API, which serves the same text). Only with the Gateway's
//! `routeStats: PerMapping`: by default routes keep no statistics.

use legate_tests::net::eventually;
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::json;

use super::{gateway, send, until};

/// Requests sent through each Mapping once its route answers.
const N: u64 = 7;

/// The value of the series `metric` whose labels include every one of
/// `labels`, from Prometheus text; None when Envoy has no such series.
fn series(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<u64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (name, label_set) = series.split_once('{').unwrap_or((series, ""));
        let wanted = name == metric
            && labels
                .iter()
                .all(|(k, v)| label_set.contains(&format!("{k}=\"{v}\"")));
        wanted.then(|| value.parse().ok()).flatten()
    })
}

/// `legate_<namespace>_<name>`, as the translator names a Mapping's routes.
fn route_stat(namespace: &str, mapping: &str) -> String {
    format!("legate_{namespace}_{mapping}").replace(['-', '.'], "_")
}

/// Sends `N` requests and waits until `read` (a counter) has gone up by
/// exactly that many.
async fn counts_n_requests<F, Fut>(stage: &Stage, path: &str, host: &str, what: &str, read: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<u64>>,
{
    until(stage, "GET", path, host, &[], 200).await;
    let before = eventually(&format!("{what} to exist"), PATIENCE, &read).await;
    for _ in 0..N {
        assert_eq!(send(stage, "GET", path, host, &[], "").await.status, 200);
    }
    let after = eventually(&format!("{what} to go up by {N}"), PATIENCE, || async {
        read().await.filter(|after| *after >= before + N)
    })
    .await;
    assert_eq!(after, before + N, "{what}: exactly the requests sent");
}

#[tokio::test]
async fn a_mappings_upstream_requests_count_under_its_namespace_and_name() {
    let stage = Stage::new().await;
    let namespace = stage.env.namespace.clone();
    stage
        .mapping("quote-api", json!({ "prefix": "/counted/", "service": "quote" }))
        .await;
    let route = route_stat(&namespace, "quote-api");
    let stats = || async {
        let text = stage.envoy.admin_get("/stats/prometheus").await;
        series(
            &text,
            "envoy_vhost_route_upstream_rq_total",
            &[("envoy_virtual_host", "http/*"), ("envoy_route", route.as_str())],
        )
    };
    // Off by default: once the route answers, Envoy has loaded it, and a
    // route with a stat prefix has its counters from then on.
    until(&stage, "GET", "/counted/a", "metrics", &[], 200).await;
    let text = stage.envoy.admin_get("/stats/prometheus").await;
    assert!(
        !text.contains("envoy_route=\"legate_"),
        "no route statistics without routeStats:\n{text}"
    );
    gateway(&stage, &[], json!({ "routeStats": "PerMapping" })).await;
    // A Host without a dot: the virtual host of Mappings without `host`.
    counts_n_requests(&stage, "/counted/a", "metrics", &route, stats).await;
}

/// Envoy's tag extractor cuts the virtual host's name at its first dot, and
/// a hostname's virtual host is named after the hostname: the rest of the
/// name lands in the metric's name, with the Mapping's prefix (docs/edge.md,
/// "Metrics"). Still readable, still per Mapping; this pins what Envoy
/// prints so the docs stay true.
#[tokio::test]
async fn under_a_hostname_the_mappings_name_is_in_the_metrics_name() {
    let stage = Stage::new().await;
    let namespace = stage.env.namespace.clone();
    stage
        .mapping(
            "quote-shop",
            json!({ "hostname": "shop.example.com", "prefix": "/counted-shop/", "service": "quote" }),
        )
        .await;
    gateway(&stage, &[], json!({ "routeStats": "PerMapping" })).await;
    let route = route_stat(&namespace, "quote-shop");
    let metric = format!("envoy_vhost_example_com_route_{route}_upstream_rq_total");
    let stats = || async {
        let text = stage.envoy.admin_get("/stats/prometheus").await;
        series(&text, &metric, &[("envoy_virtual_host", "http/shop")])
    };
    counts_n_requests(&stage, "/counted-shop/a", "shop.example.com", &metric, stats).await;
}

#[test]
fn series_are_found_by_name_and_labels() {
    let text = "# TYPE envoy_vhost_route_upstream_rq_total counter\n\
        envoy_vhost_route_upstream_rq_total{envoy_virtual_host=\"http/*\",envoy_route=\"legate_a_b\"} 3\n\
        envoy_vhost_route_upstream_rq_total{envoy_virtual_host=\"http/*\",envoy_route=\"legate_a_bc\"} 9\n\
        envoy_plain 4\n";
    let m = "envoy_vhost_route_upstream_rq_total";
    assert_eq!(series(text, m, &[("envoy_route", "legate_a_b")]), Some(3));
    assert_eq!(series(text, m, &[("envoy_route", "legate_a_bc")]), Some(9));
    assert_eq!(series(text, m, &[("envoy_route", "legate_x")]), None);
    assert_eq!(series(text, "envoy_plain", &[]), Some(4));
    assert_eq!(route_stat("t-1", "quote-api"), "legate_t_1_quote_api");
}
