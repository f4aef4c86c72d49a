//! Access logs: JSON lines on Envoy's stdout by default; `spec.accessLog` on
//! the Gateway picks Text, custom JSON keys, or Off, and with `otlp` also
//! sends a record per request to an OpenTelemetry collector.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use legate_tests::TestHost;
use legate_tests::http::Response;
use legate_tests::net::eventually;
use legate_tests::peers::expose;
use legate_tests::peers::otlp::Collector;
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::{Value, json};

use super::{gateway, send, until};

const HOST: &str = "shop.example.com";

/// The JSON lines of Envoy's stdout.
fn json_lines(stage: &Stage) -> Vec<Value> {
    stage
        .envoy
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

/// A value as text, whether Envoy wrote it as a JSON string or number.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn the_default_access_log_is_a_json_line_per_request_with_the_documented_keys() {
    let stage = Stage::new().await;
    stage
        .mapping("logged", json!({ "prefix": "/logged/", "service": "quote" }))
        .await;
    until(&stage, "GET", "/logged/warmup", HOST, &[], 200).await;
    let r = send(
        &stage,
        "GET",
        "/logged/a?x=1",
        HOST,
        &[("user-agent", "legate-log-test")],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let line = eventually("the request's JSON access log line", PATIENCE, || async {
        json_lines(&stage)
            .into_iter()
            .find(|l| text(&l["user_agent"]) == "legate-log-test")
    })
    .await;
    let keys: BTreeSet<&str> = line
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let expected: BTreeSet<&str> = [
        "start_time",
        "method",
        "path",
        "authority",
        "status",
        "duration_ms",
        "upstream_host",
        "upstream_cluster",
        "request_id",
        "mapping",
        "protocol",
        "response_flags",
        "bytes_received",
        "bytes_sent",
        "user_agent",
        "x_forwarded_for",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected, "the keys of the default JSON access log: {line}");
    assert_eq!(text(&line["method"]), "GET");
    assert_eq!(text(&line["path"]), "/logged/a?x=1", "the path the client sent");
    assert_eq!(text(&line["authority"]), HOST);
    assert_eq!(text(&line["status"]), "200");
    assert_eq!(text(&line["mapping"]), format!("{}/logged", stage.env.namespace));
    assert_eq!(text(&line["protocol"]), "HTTP/1.1");
    assert_eq!(
        text(&line["upstream_host"]),
        format!("{}:8080", stage.host.addr())
    );
    assert!(text(&line["upstream_cluster"]).contains("quote"), "{line}");
    assert_eq!(
        Some(text(&line["x_forwarded_for"]).as_str()),
        r.echo().header("x-forwarded-for"),
        "the address the upstream was told"
    );
    assert_eq!(text(&line["response_flags"]), "-");
    assert_eq!(text(&line["bytes_received"]), "0");
    assert_eq!(text(&line["bytes_sent"]), r.body.len().to_string());
    assert!(!text(&line["request_id"]).is_empty(), "{line}");
    assert!(text(&line["duration_ms"]).parse::<u64>().is_ok(), "{line}");
    assert!(text(&line["start_time"]).starts_with("20"), "{line}");
}

#[tokio::test]
async fn the_access_log_can_be_text_custom_json_or_off() {
    let stage = Stage::new().await;
    stage
        .mapping("logged", json!({ "prefix": "/logged/", "service": "quote" }))
        .await;
    gateway(
        &stage,
        &[],
        json!({ "accessLog": { "format": "Text", "text": "LEGATE %REQ(:METHOD)% %RESPONSE_CODE% %REQ(X-MARK)%\n" } }),
    )
    .await;
    // Each format change reaches Envoy in its own time: send until the line shows.
    let mark = |m: &'static str| [("x-mark", m)];
    let line = eventually("a Text access log line", PATIENCE, || async {
        send(&stage, "GET", "/logged/t", HOST, &mark("text-1"), "").await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        stage
            .envoy
            .stdout()
            .lines()
            .find(|l| l.contains("text-1"))
            .map(str::to_string)
    })
    .await;
    assert_eq!(line, "LEGATE GET 200 text-1");

    gateway(
        &stage,
        &[],
        json!({ "accessLog": { "format": "JSON", "json": { "verb": "%REQ(:METHOD)%", "mark": "%REQ(X-MARK)%" } } }),
    )
    .await;
    let custom = eventually("a custom JSON access log line", PATIENCE, || async {
        send(&stage, "GET", "/logged/j", HOST, &mark("json-1"), "").await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        json_lines(&stage).into_iter().find(|l| l["mark"] == "json-1")
    })
    .await;
    assert_eq!(
        custom,
        json!({ "verb": "GET", "mark": "json-1" }),
        "json replaces the default keys"
    );

    gateway(&stage, &[], json!({ "accessLog": { "format": "Off" } })).await;
    // Envoy buffers access log lines (flushed every 10 s by default), so an
    // unchanged stdout proves nothing: wait for the generation to be ACKed and
    // for Envoy's active listener to carry no access log, then one request on
    // a new connection must leave no line.
    stage.programmed_now("Gateway", "edge").await;
    eventually(
        "Envoy's active listener without an access log",
        PATIENCE,
        || async {
            let dump: Value = serde_json::from_str(
                &stage
                    .envoy
                    .admin_get("/config_dump?resource=dynamic_listeners")
                    .await,
            )
            .ok()?;
            let listeners = dump["configs"].as_array()?;
            let settled = listeners.iter().all(|l| {
                l.get("warming_state").is_none() && !l["active_state"].to_string().contains("access_log")
            });
            (!listeners.is_empty() && settled).then_some(())
        },
    )
    .await;
    let silent = send(&stage, "GET", "/logged/o", HOST, &mark("quiet-request"), "").await;
    assert_eq!(silent.status, 200);
    gateway(
        &stage,
        &[],
        json!({ "accessLog": { "format": "Text", "text": "AGAIN %REQ(X-MARK)%\n" } }),
    )
    .await;
    eventually("a Text line after Off", PATIENCE, || async {
        send(&stage, "GET", "/logged/again", HOST, &mark("text-2"), "").await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        stage
            .envoy
            .stdout()
            .lines()
            .any(|l| l == "AGAIN text-2")
            .then_some(())
    })
    .await;
    // A mark no namespace can hold (namespaces end in hex): the default JSON
    // line of this test names its namespace, `...-or-off-1xxxx` at times.
    let log = stage.envoy.stdout();
    assert!(!log.contains("quiet-request"), "Off writes no access log:\n{log}");
}

#[tokio::test]
async fn access_log_records_reach_an_otlp_collector_next_to_the_stdout_lines() {
    let stage = Stage::new().await;
    stage
        .mapping("logged", json!({ "prefix": "/logged/", "service": "quote" }))
        .await;
    gateway(
        &stage,
        &[],
        json!({ "accessLog": { "otlp": { "collector": "otel:4317" } } }),
    )
    .await;
    // Before the collector's Service exists: the Gateway says so, requests flow.
    let c = stage
        .condition_reason("Gateway", "edge", "ResolvedRefs", "BackendNotFound")
        .await;
    assert_eq!(
        c["message"],
        format!(
            "Service {}/otel does not exist; no access log records are sent",
            stage.env.namespace
        )
    );
    until(&stage, "GET", "/logged/early", HOST, &[], 200).await;

    let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let collector = Collector::serve(host.bind(4317).unwrap_or_else(|e| panic!("{e}")));
    expose(&stage.env, "otel", &host.addr().to_string(), 4317).await;
    stage.condition("Gateway", "edge", "ResolvedRefs", "True").await;

    // Each request names itself in its user agent (an attribute of the
    // record), so the record found is matched to the answer its client got.
    let count = AtomicUsize::new(0);
    let sent: Mutex<BTreeMap<String, Response>> = Mutex::default();
    let record = eventually("an OTLP log record of a request sent", PATIENCE, || async {
        let agent = format!("otlp-probe-{}", count.fetch_add(1, Ordering::Relaxed));
        let headers = [("user-agent", agent.as_str()), ("x-echo-status", "202")];
        let r = send(&stage, "PUT", "/logged/otlp?x=1", HOST, &headers, "").await;
        if let Ok(mut sent) = sent.lock() {
            sent.insert(agent, r);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        collector
            .logs
            .last_where(|l| l.attribute("user_agent").starts_with("otlp-probe-"))
    })
    .await;
    let agent = record.attribute("user_agent").to_string();
    let answer = sent
        .lock()
        .ok()
        .and_then(|s| s.get(&agent).cloned())
        .unwrap_or_else(|| panic!("the record is of a request sent: {record:?}"));
    assert_eq!(answer.status, 202, "the upstream's answer reached the client");
    assert_eq!(answer.echo().path, "/otlp");
    let namespace = &stage.env.namespace;
    assert_eq!(record.body, "PUT /logged/otlp?x=1 HTTP/1.1 202", "{record:?}");
    assert_eq!(record.attribute("method"), "PUT");
    assert_eq!(
        record.attribute("path"),
        "/logged/otlp?x=1",
        "the path the client sent"
    );
    assert_eq!(record.attribute("status"), answer.status.as_str());
    assert_eq!(record.attribute("authority"), HOST);
    assert_eq!(record.attribute("protocol"), "HTTP/1.1");
    assert_eq!(record.attribute("mapping"), format!("{namespace}/logged"));
    assert!(
        record.attribute("upstream_cluster").contains("quote"),
        "{record:?}"
    );
    assert_eq!(
        record.attribute("bytes_sent"),
        answer.body.len().to_string(),
        "{record:?}"
    );
    assert!(!record.attributes.contains_key("start_time"), "{record:?}");
    assert!(record.time_unix_nano > 0, "the record carries the request's time");
    assert_eq!(
        record.resource.get("service.name"),
        Some(&format!("edge.{namespace}")),
        "{record:?}"
    );

    let line = eventually("the same request's JSON line on stdout", PATIENCE, || async {
        json_lines(&stage)
            .into_iter()
            .find(|l| text(&l["user_agent"]) == agent)
    })
    .await;
    assert_eq!(text(&line["status"]), "202");
    assert_eq!(text(&line["request_id"]), record.attribute("request_id"));
}
