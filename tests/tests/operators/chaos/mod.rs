//! Chaos of issue 16 (Reliability), with real processes only: the API server
//! goes away for a while, etcd is compacted under churn so that watches must
//! relist, and the operator is killed while a delta-xDS Envoy holds config.
//! Each test runs operators that watch every namespace, on a control plane of
//! its own (two of them stop its API server).

mod api_server_outage;
mod etcd_compaction;
mod operator_killed;

use legate_tests::stage::Stage;
use serde_json::Value;

/// `(type, status, reason)` of a Legate object's conditions, sorted.
async fn conditions(stage: &Stage, kind: &str, name: &str) -> Option<Vec<(String, String, String)>> {
    let object = stage.object(kind, name).await?;
    let field = |c: &Value, f: &str| c[f].as_str().unwrap_or_default().to_string();
    let mut out: Vec<(String, String, String)> = object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .map(|c| (field(c, "type"), field(c, "status"), field(c, "reason")))
        .collect();
    out.sort();
    Some(out)
}

/// The whole log of the `legate` process this test started (the harness's
/// `log_tail` keeps only the end): found through /proc, as the stderr file of
/// this process's `legate` child.
fn operator_log() -> String {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return String::new();
    };
    for entry in entries.flatten() {
        let proc_dir = entry.path();
        let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; the comm, not /proc/<pid>/exe, which
        // says "(deleted)" once the binary is rebuilt under a running test.
        let is_legate = stat.contains(" (legate) ");
        let mut rest = stat.rsplit(')').next().unwrap_or_default().split_whitespace();
        let (state, parent) = (rest.next(), rest.next());
        if parent == Some(me.as_str())
            && state != Some("Z")
            && is_legate
            && let Ok(log) = std::fs::read_link(proc_dir.join("fd").join("2"))
        {
            return std::fs::read_to_string(log).unwrap_or_default();
        }
    }
    String::new()
}

/// `line` without its terminal colour codes (the operator's log has them).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // `ESC [ ... m`
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
