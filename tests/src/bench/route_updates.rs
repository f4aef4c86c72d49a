//! How long the Envoy itself takes to apply route updates, from its own
//! `update_duration` histograms (ms): RDS (`http.<prefix>.rds.<route config>.`)
//! and VHDS (`http.<prefix>.rds.vhds.<route config>.`). Read before and after
//! the change phase and diffed, they show which part of a change's latency is
//! Envoy rebuilding its route table rather than the operator.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::BenchError;
use crate::http::HttpClient;

/// Envoy merges histograms only when it flushes stats (every 5 s: the
/// bootstrap sets no `stats_flush_interval`, nor `stats_flush_on_admin`), so
/// a read must wait for one flush; a few intervals' worth of patience.
const FLUSH_PATIENCE: Duration = Duration::from_secs(20);

/// Cumulative counts of one histogram, or of several summed: for each
/// bucket's upper bound (ms, ascending), the samples at or below it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(Vec<(f64, u64)>);

impl Buckets {
    /// `B0.5(0,81) B1(0,129) ... B3.6e+06(0,1822)`: the bound, then the
    /// count of the last flush interval and the count since Envoy started
    /// (the one kept). None when a token is not of that shape.
    fn parse(value: &str) -> Option<Buckets> {
        let buckets = value
            .split_whitespace()
            .map(|token| {
                let (bound, counts) = token.strip_prefix('B')?.strip_suffix(')')?.split_once('(')?;
                let (_interval, cumulative) = counts.split_once(',')?;
                Some((bound.parse().ok()?, cumulative.parse().ok()?))
            })
            .collect::<Option<Vec<(f64, u64)>>>()?;
        (!buckets.is_empty()).then_some(Buckets(buckets))
    }

    /// Combines `self` and `other` bucket by bucket; they must have the
    /// same bounds (Envoy's defaults unless the bootstrap sets others).
    fn zip(&self, other: &Buckets, op: impl Fn(u64, u64) -> u64) -> Result<Buckets, BenchError> {
        // A histogram with no samples (not printed) counts as zeros.
        if other.0.is_empty() {
            return Ok(Buckets(self.0.iter().map(|&(b, n)| (b, op(n, 0))).collect()));
        }
        if self.0.is_empty() {
            return Ok(Buckets(other.0.iter().map(|&(b, n)| (b, op(0, n))).collect()));
        }
        let bounds = |b: &Buckets| b.0.iter().map(|(bound, _)| *bound).collect::<Vec<f64>>();
        if bounds(self) != bounds(other) {
            return Err(BenchError::Failed(format!(
                "Envoy's update_duration histograms have different buckets: {:?} and {:?}",
                bounds(self),
                bounds(other)
            )));
        }
        Ok(Buckets(
            self.0
                .iter()
                .zip(&other.0)
                .map(|(&(bound, a), &(_, b))| (bound, op(a, b)))
                .collect(),
        ))
    }

    /// Samples counted: the count at the highest bound.
    pub fn count(&self) -> u64 {
        self.0.last().map_or(0, |(_, n)| *n)
    }

    /// The smallest bound with at least `p` percent of the samples at or
    /// below it (None without samples). Only as fine as the buckets.
    pub fn bound_at(&self, p: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((p / 100.0) * count as f64).ceil().max(1.0) as u64;
        self.0.iter().find(|(_, n)| *n >= rank).map(|(bound, _)| *bound)
    }
}

/// Envoy's route-update histograms, each kind summed over its stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteUpdates {
    /// `*.rds.vhds.*.update_duration`: one sample per VHDS (virtual host) update.
    pub vhds: Buckets,
    /// `*.rds.*.update_duration` without `vhds`: one per whole RouteConfiguration (RDS).
    pub rds: Buckets,
}

impl RouteUpdates {
    /// The histograms once Envoy has flushed stats, so that every update
    /// applied before the call is counted.
    pub async fn read_after_flush(admin: SocketAddr) -> Result<RouteUpdates, BenchError> {
        let client = HttpClient::http1();
        let uptime = get(&client, admin, "filter=^server.uptime$").await?;
        let deadline = Instant::now() + FLUSH_PATIENCE;
        // Envoy sets server.uptime once a flush's histogram merge is done.
        while get(&client, admin, "filter=^server.uptime$").await? == uptime {
            if Instant::now() >= deadline {
                return Err(BenchError::Failed(format!(
                    "Envoy at {admin} did not flush its stats in {} s (server.uptime did not move)",
                    FLUSH_PATIENCE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let text = get(
            &client,
            admin,
            "usedonly&filter=rds.*update_duration&histogram_buckets=cumulative",
        )
        .await?;
        RouteUpdates::parse(&text)
    }

    fn parse(text: &str) -> Result<RouteUpdates, BenchError> {
        let mut updates = RouteUpdates::default();
        for (name, value) in text.lines().filter_map(|l| l.split_once(": ")) {
            let sum = match name.strip_suffix(".update_duration") {
                Some(scope) if scope.contains(".rds.vhds.") => &mut updates.vhds,
                Some(scope) if scope.contains(".rds.") => &mut updates.rds,
                _ => continue,
            };
            if value.trim() == "No recorded values" {
                continue;
            }
            let buckets = Buckets::parse(value).ok_or_else(|| {
                BenchError::Failed(format!("Envoy's {name} is not a list of B<bound>(n,n): {value}"))
            })?;
            *sum = sum.zip(&buckets, u64::saturating_add)?;
        }
        Ok(updates)
    }

    /// The updates counted after `earlier`.
    pub fn since(&self, earlier: &RouteUpdates) -> Result<RouteUpdates, BenchError> {
        Ok(RouteUpdates {
            vhds: self.vhds.zip(&earlier.vhds, u64::saturating_sub)?,
            rds: self.rds.zip(&earlier.rds, u64::saturating_sub)?,
        })
    }
}

/// `GET /stats?{query}` on the Envoy's admin.
async fn get(client: &HttpClient, admin: SocketAddr, query: &str) -> Result<String, BenchError> {
    let url = format!("http://{admin}/stats?{query}");
    let response = client
        .get(&url, None)
        .await
        .map_err(|e| BenchError::Failed(format!("Envoy admin {url}: {e}")))?;
    if !response.status.is_success() {
        return Err(BenchError::Failed(format!(
            "Envoy admin {url}: {} {}",
            response.status,
            response.text().trim()
        )));
    }
    Ok(response.text())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Envoy 1.40 prints them: one RDS update (the route configuration
    /// arrives once), VHDS updates for the load, an unused https listener.
    const BEFORE: &str = "\
http.http.rds.http.update_duration: B0.5(0,1) B1(0,1) B5(0,1) B10(0,1) B25(0,1) B50(0,1) B100(0,1) B250(0,1) B500(0,1) B1000(0,1) B2500(0,1) B5000(0,1) B10000(0,1) B30000(0,1) B60000(0,1) B300000(0,1) B600000(0,1) B1.8e+06(0,1) B3.6e+06(0,1)
http.http.rds.vhds.http.update_duration: B0.5(0,81) B1(0,129) B5(0,270) B10(0,390) B25(0,679) B50(0,1027) B100(0,1719) B250(0,1818) B500(0,1821) B1000(0,1822) B2500(0,1822) B5000(0,1822) B10000(0,1822) B30000(0,1822) B60000(0,1822) B300000(0,1822) B600000(0,1822) B1.8e+06(0,1822) B3.6e+06(0,1822)
http.https.rds.vhds.https.update_duration: No recorded values
";

    /// Ten more VHDS updates on the http listener: 2 at <= 50 ms, 5 in
    /// (50, 100], 2 in (100, 250], 1 in (250, 500]; three on https, <= 5 ms.
    const AFTER: &str = "\
http.http.rds.http.update_duration: B0.5(0,1) B1(0,1) B5(0,1) B10(0,1) B25(0,1) B50(0,1) B100(0,1) B250(0,1) B500(0,1) B1000(0,1) B2500(0,1) B5000(0,1) B10000(0,1) B30000(0,1) B60000(0,1) B300000(0,1) B600000(0,1) B1.8e+06(0,1) B3.6e+06(0,1)
http.http.rds.vhds.http.update_duration: B0.5(0,81) B1(0,129) B5(0,270) B10(0,390) B25(0,679) B50(2,1029) B100(7,1726) B250(9,1827) B500(10,1831) B1000(10,1832) B2500(10,1832) B5000(10,1832) B10000(10,1832) B30000(10,1832) B60000(10,1832) B300000(10,1832) B600000(10,1832) B1.8e+06(10,1832) B3.6e+06(10,1832)
http.https.rds.vhds.https.update_duration: B0.5(0,0) B1(0,1) B5(3,3) B10(3,3) B25(3,3) B50(3,3) B100(3,3) B250(3,3) B500(3,3) B1000(3,3) B2500(3,3) B5000(3,3) B10000(3,3) B30000(3,3) B60000(3,3) B300000(3,3) B600000(3,3) B1.8e+06(3,3) B3.6e+06(3,3)
server.uptime: 1061
";

    #[test]
    fn diffs_the_buckets_into_percentile_bounds() {
        let before = RouteUpdates::parse(BEFORE).expect("before parses");
        let after = RouteUpdates::parse(AFTER).expect("after parses");
        let changes = after.since(&before).expect("same buckets");

        // 13 samples: 3 at <= 5 ms, 2 more at <= 50, 5 at <= 100, 2 at <= 250, 1 at <= 500.
        assert_eq!(changes.vhds.count(), 13);
        assert_eq!(changes.vhds.bound_at(50.0), Some(100.0)); // rank 7
        assert_eq!(changes.vhds.bound_at(90.0), Some(250.0)); // rank 12
        assert_eq!(changes.vhds.bound_at(100.0), Some(500.0));
        // The RDS update came before: none during the changes.
        assert_eq!(changes.rds.count(), 0);
        assert_eq!(changes.rds.bound_at(50.0), None);
        // A histogram missing from the later read counts nothing, not the earlier samples.
        let gone = RouteUpdates::default().since(&before).expect("missing is zeros");
        assert_eq!(gone.vhds.count(), 0);
        // The highest bound is printed as 3.6e+06.
        assert_eq!(before.vhds.0.last(), Some(&(3_600_000.0, 1822)));
    }

    #[test]
    fn refuses_what_is_not_buckets() {
        // The quantile summary (no histogram_buckets) is not bucket counts.
        let text = "http.http.rds.vhds.http.update_duration: P0(nan,0) P25(nan,13.46) P50(nan,42.38)";
        assert!(RouteUpdates::parse(text).is_err());
        let shorter = "http.http.rds.vhds.http.update_duration: B0.5(0,1) B1(0,2)";
        let before = RouteUpdates::parse(BEFORE).expect("before parses");
        let after = RouteUpdates::parse(shorter).expect("parses");
        assert!(after.since(&before).is_err());
    }
}
