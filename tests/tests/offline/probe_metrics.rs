//! The fleet's probe listener in a real Envoy serves the stats in Prometheus
//! format (what the pods' and Service's scrape annotations point at), and
//! nothing else of the admin API: `/stats` and `/config_dump` find no route.

use legate_tests::Envoy;
use legate_tests::http::HttpClient;
use legate_tests::net::{free_port, loopback};
use legate_xds::bootstrap::{BootstrapConfig, PROMETHEUS_PATH};
use legate_xds::cache::SnapshotCache;
use legate_xds::sample;
use legate_xds::translate::{Change, Translator};

use super::xds_rig::{ControlPlane, GATEWAY};

#[tokio::test]
async fn the_probe_port_serves_prometheus_stats_and_no_other_admin_page() {
    let cache = SnapshotCache::new();
    let (_control_plane, xds_port, _) = ControlPlane::start(cache.clone(), 0).await;
    let listener = Change::UpsertListener(sample::listener("http", free_port()));
    cache.update(GATEWAY, &Translator::new().translate(vec![listener]));
    let health = free_port();
    let mut bootstrap = BootstrapConfig::new("envoy-0", GATEWAY, "127.0.0.1", xds_port);
    // The probe listener's cluster needs the admin API on a known address.
    bootstrap.admin_port = free_port();
    bootstrap.health_port = Some(health);
    let envoy = Envoy::start(&bootstrap.to_yaml()).await;

    let get = |path: &'static str| probe_get(&envoy, health, path);
    for path in [PROMETHEUS_PATH, "/stats/prometheus?usedonly"] {
        let r = get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/plain")),
            "{path}: {:?}",
            r.headers
        );
        let text = r.text();
        assert!(
            text.lines().any(|l| l.starts_with("# TYPE envoy_")),
            "{path}: Prometheus text with TYPE lines: {text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with(
                "envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"legate_health\"}"
            )),
            "{path}: the probe listener's own counter, tagged: {text}"
        );
    }
    for path in [
        "/stats",
        "/stats?format=json",
        "/config_dump",
        "/stats/prometheus/x",
        "/clusters",
        "/quitquitquit",
    ] {
        let r = get(path).await;
        assert_eq!(
            r.status,
            404,
            "{path} is not served on the probe port: {}",
            r.text()
        );
    }
    assert_eq!(get("/ready").await.status, 200);
}

/// GET `path` on the probe port.
async fn probe_get(envoy: &Envoy, health: u16, path: &str) -> legate_tests::http::Response {
    let url = format!("http://{}{path}", loopback(health));
    HttpClient::http1()
        .get(&url, None)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", envoy.log_tail()))
}
