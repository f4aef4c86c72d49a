//! What the operator costs, read from outside it: memory and CPU from
//! /proc, writes from the API server's `/metrics`, xDS bytes from the Envoy's
//! `/stats`, refused writes from its log.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::Path;

use kube::Client;

use super::BenchError;
use crate::http::HttpClient;

/// Clock ticks per second in /proc/<pid>/stat: USER_HZ, which the kernel
/// fixes at 100 for user space on every architecture Legate runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// The verbs that change something (APPLY is how the API server counts a
/// server-side apply PATCH).
const WRITE_VERBS: [&str; 6] = ["POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"];

/// The operator's process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSample {
    pub rss_kib: u64,
    /// The high-water mark of the resident set since the process started.
    pub peak_rss_kib: u64,
    /// User + system CPU time so far, in seconds.
    pub cpu_seconds: f64,
}

impl ProcessSample {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }
}

pub fn sample_process(pid: u32) -> Result<ProcessSample, BenchError> {
    let status_path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&status_path).map_err(BenchError::io(format!(
        "reading {status_path} (has the operator exited?)"
    )))?;
    let stat_path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&stat_path).map_err(BenchError::io(format!("reading {stat_path}")))?;
    Ok(ProcessSample {
        rss_kib: status_kib(&status, "VmRSS:").unwrap_or(0),
        peak_rss_kib: status_kib(&status, "VmHWM:").unwrap_or(0),
        cpu_seconds: cpu_ticks(&stat)
            .ok_or_else(|| BenchError::Failed(format!("{stat_path} has no utime/stime: {stat}")))?
            as f64
            / TICKS_PER_SECOND,
    })
}

/// `VmRSS:    12345 kB` -> 12345.
fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// utime + stime: fields 14 and 15 of /proc/<pid>/stat. The command name
/// (field 2) may hold spaces, so fields are counted after its closing `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name, field 3 (state) is at index 0, so field n is at n - 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// One kind of write the API server counted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WriteKey {
    pub verb: String,
    /// `resource` or `resource/subresource`, with the group when there is one.
    pub resource: String,
    pub code: String,
}

/// The API server's write counters (`apiserver_request_total`) at one moment,
/// or the difference between two moments.
#[derive(Debug, Clone, Default)]
pub struct Writes(BTreeMap<WriteKey, u64>);

impl Writes {
    pub async fn read(client: &Client) -> Result<Writes, BenchError> {
        let request = hyper::Request::get("/metrics")
            .body(Vec::new())
            .map_err(|e| BenchError::Failed(format!("building GET /metrics: {e}")))?;
        let text = client
            .request_text(request)
            .await
            .map_err(BenchError::kube("reading the API server's /metrics"))?;
        Ok(Writes::parse(&text))
    }

    fn parse(text: &str) -> Writes {
        let mut writes = Writes::default();
        for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
            let Some((labels, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let labels = parse_labels(labels);
            let label = |name: &str| labels.get(name).cloned().unwrap_or_default();
            let verb = label("verb");
            if !WRITE_VERBS.contains(&verb.as_str()) {
                continue;
            }
            let Ok(count) = value.parse::<f64>() else { continue };
            let mut resource = label("resource");
            if !label("group").is_empty() {
                resource = format!("{resource}.{}", label("group"));
            }
            if !label("subresource").is_empty() {
                resource = format!("{resource}/{}", label("subresource"));
            }
            let key = WriteKey {
                verb,
                resource,
                code: label("code"),
            };
            *writes.0.entry(key).or_default() += count as u64;
        }
        writes
    }

    /// What was counted after `earlier`.
    pub fn since(&self, earlier: &Writes) -> Writes {
        let counts = self
            .0
            .iter()
            .map(|(key, n)| {
                (
                    key.clone(),
                    n.saturating_sub(earlier.0.get(key).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        Writes(counts)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Lease renewals are the control plane's own heartbeat (the stack runs
    /// the operator without leader election), not the operator's doing.
    pub fn leases(&self) -> u64 {
        self.matching(|k| k.resource.starts_with("leases.")).total()
    }

    /// Writes the API server refused (4xx).
    pub fn refused(&self) -> Writes {
        self.matching(|k| k.code.starts_with('4'))
    }

    pub fn rows(&self) -> impl Iterator<Item = (&WriteKey, u64)> {
        self.0.iter().map(|(k, n)| (k, *n))
    }

    fn matching(&self, keep: impl Fn(&WriteKey) -> bool) -> Writes {
        Writes(
            self.0
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, n)| (k.clone(), *n))
                .collect(),
        )
    }
}

/// `name{a="x",b="y"}` -> {a: x, b: y}. Label values here never hold quotes or commas.
fn parse_labels(series: &str) -> BTreeMap<String, String> {
    let Some(inner) = series
        .split_once('{')
        .and_then(|(_, rest)| rest.strip_suffix('}'))
    else {
        return BTreeMap::new();
    };
    inner
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// Bytes the Envoy received on its connection(s) to the operator's xDS server.
pub async fn xds_rx_bytes(admin: SocketAddr, cluster: &str) -> Result<u64, BenchError> {
    let name = format!("cluster.{cluster}.upstream_cx_rx_bytes_total");
    let url = format!("http://{admin}/stats?filter=^{name}$");
    let response = HttpClient::http1()
        .get(&url, None)
        .await
        .map_err(|e| BenchError::Failed(format!("Envoy admin {url}: {e}")))?;
    response
        .text()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.trim().parse().ok())
        .ok_or_else(|| BenchError::Failed(format!("Envoy has no stat {name} ({url})")))
}

/// Where the operator's log ends now: later scans read only what follows.
pub fn log_mark(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// The operator's warnings and errors after `mark`, and how many of them
/// mention a refused write (a conflict, an invalid object, a 4xx).
#[derive(Debug, Clone, Default)]
pub struct LogScan {
    pub warnings: usize,
    pub refused_writes: usize,
    /// A few of the lines, for a reader to start from.
    pub examples: Vec<String>,
}

pub fn scan_log(log: &Path, mark: u64) -> Result<LogScan, BenchError> {
    let mut file = std::fs::File::open(log).map_err(BenchError::io(format!("opening {}", log.display())))?;
    file.seek(SeekFrom::Start(mark))
        .map_err(BenchError::io(format!("seeking in {}", log.display())))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(BenchError::io(format!("reading {}", log.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut scan = LogScan::default();
    for line in text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
    {
        scan.warnings += 1;
        if mentions_refused_write(line) {
            scan.refused_writes += 1;
        }
        if scan.examples.len() < 5 {
            scan.examples.push(line.chars().take(240).collect());
        }
    }
    Ok(scan)
}

fn mentions_refused_write(line: &str) -> bool {
    const SIGNS: [&str; 6] = ["409", "422", "Conflict", "conflict", "Invalid", "Forbidden"];
    SIGNS.iter().any(|s| line.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_after_a_name_with_spaces() {
        let stat = "42 (le gate) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1 1 1";
        assert_eq!(cpu_ticks(stat), Some(300));
    }

    #[test]
    fn counts_only_writes_by_kind() {
        let text = r#"apiserver_request_total{code="201",component="apiserver",dry_run="",group="legate.dev",resource="mappings",scope="resource",subresource="",verb="POST",version="v1alpha1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="legate.dev",resource="mappings",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="legate.dev",resource="mappings",scope="namespace",subresource="",verb="LIST",version="v1alpha1"} 9"#;
        let writes = Writes::parse(text);
        assert_eq!(writes.total(), 12);
        let rows: Vec<String> = writes
            .rows()
            .map(|(k, n)| format!("{} {} {} {n}", k.verb, k.resource, k.code))
            .collect();
        assert_eq!(
            rows,
            [
                "APPLY mappings.legate.dev/status 200 7",
                "POST mappings.legate.dev 201 5"
            ]
        );
    }
}
