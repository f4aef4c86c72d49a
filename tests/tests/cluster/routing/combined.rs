//! Everything at once: 200 Mappings mixing the features above, in 20
//! namespaces and on 50 hostnames, applied in a shuffled order to one Gateway
//! that admits those namespaces by a label unique to this test.

use std::time::{Duration, Instant};

use legate_tests::TestEnv;
use legate_tests::api::apply;
use legate_tests::http::{HttpClient, Response};
use legate_tests::stage::Stage;
use serde_json::{Value, json};

use super::{Req, service, shuffled};

const MAPPINGS: usize = 200;
const NAMESPACES: usize = 20;
const HOSTS: usize = 50;
/// Applying and programming 200 Mappings takes longer than one.
const PATIENCE: Duration = Duration::from_secs(120);

/// Mapping `i`: its namespace, hostname, spec, and the request that tests it.
struct Case {
    i: usize,
    namespace: usize,
    host: String,
    spec: Value,
    request: Req,
}

fn case(i: usize) -> Case {
    let host = format!("h{:02}.combined.example", i % HOSTS);
    let prefix = format!("/m{i}/");
    let (spec, request) = match i % 10 {
        0 => (json!({ "prefix": prefix }), Req::get(&format!("{prefix}x"))),
        1 => (
            json!({ "path": format!("{prefix}exact"), "rewrite": "" }),
            Req::get(&format!("{prefix}exact")),
        ),
        2 => (
            json!({ "pathRegex": format!("/m{i}/[0-9]+") }),
            Req::get(&format!("{prefix}42")),
        ),
        3 => (
            json!({ "prefix": prefix, "headers": { "x-key": format!("v{i}") } }),
            Req::get(&format!("{prefix}x")).header("x-key", &format!("v{i}")),
        ),
        4 => (
            json!({ "prefix": prefix, "redirect": { "host": format!("r{i}.example.net"), "responseCode": 302 } }),
            Req::get(&format!("{prefix}x")),
        ),
        5 => (
            json!({ "prefix": prefix, "addRequestHeaders": { "x-mapping": { "value": format!("m{i}"), "append": false } } }),
            Req::get(&format!("{prefix}x")).header("x-mapping", "client"),
        ),
        6 => (
            json!({ "prefix": prefix, "regexRewrite": { "pattern": format!("^/m{i}/(.*)$"), "substitution": "/rewritten/\\1" } }),
            Req::get(&format!("{prefix}x")),
        ),
        7 => (
            json!({ "prefix": prefix, "hostRewrite": format!("up{i}.internal") }),
            Req::get(&format!("{prefix}x")),
        ),
        8 => (
            json!({ "prefix": prefix, "queryParameters": { "k": format!("v{i}") } }),
            Req::get(&format!("{prefix}x?k=v{i}")),
        ),
        _ => (
            json!({ "prefix": prefix, "addResponseHeaders": { "x-answered-by": { "value": format!("m{i}") } } }),
            Req::get(&format!("{prefix}x")),
        ),
    };
    let mut spec = spec;
    spec["hostname"] = json!(host);
    if i % 10 != 4 {
        spec["service"] = json!("quote");
    }
    Case {
        i,
        // Each host is one namespace's: a host belongs to the namespace that
        // claimed it first, and the others' Mappings on it would be refused.
        namespace: (i % HOSTS) % NAMESPACES,
        request: request.host(&host),
        host,
        spec,
    }
}

/// Whether `r` is what Mapping `c` promises; the reason when it is not.
fn verify(c: &Case, r: &Response) -> Result<(), String> {
    let i = c.i;
    let expect = |what: &str, got: Option<&str>, want: &str| -> Result<(), String> {
        if got == Some(want) {
            Ok(())
        } else {
            Err(format!("m{i}: {what} is {got:?}, expected {want:?}"))
        }
    };
    if i % 10 == 4 {
        expect("status", Some(r.status.as_str()), "302")?;
        if r.header("x-echo-backend").is_some() {
            return Err(format!("m{i}: a redirect reached the upstream"));
        }
        return expect(
            "location",
            r.header("location"),
            &format!("http://r{i}.example.net/m{i}/x"),
        );
    }
    expect("status", Some(r.status.as_str()), "200")?;
    let echo = serde_json::from_slice::<legate_tests::EchoReply>(&r.body)
        .map_err(|e| format!("m{i}: not an echo reply ({e}): {}", r.text()))?;
    let (path, host) = match i % 10 {
        1 => (format!("/m{i}/exact"), c.host.clone()),
        2 => (format!("/m{i}/42"), c.host.clone()),
        6 => ("/rewritten/x".to_string(), c.host.clone()),
        7 => ("/x".to_string(), format!("up{i}.internal")),
        _ => ("/x".to_string(), c.host.clone()),
    };
    expect("backend", Some(&echo.backend), "quote-1")?;
    expect("upstream path", Some(&echo.path), &path)?;
    expect("upstream Host", Some(&echo.host), &host)?;
    match i % 10 {
        3 => expect("x-key", echo.header("x-key"), &format!("v{i}")),
        5 => expect("x-mapping", echo.header("x-mapping"), &format!("m{i}")),
        8 => expect("query", Some(&echo.query), &format!("k=v{i}")),
        9 => expect("x-answered-by", r.header("x-answered-by"), &format!("m{i}")),
        _ => Ok(()),
    }
}

async fn check(stage: &Stage, client: &HttpClient, c: &Case) -> Result<(), String> {
    let r = client
        .send(c.request_for(stage.port))
        .await
        .map_err(|e| format!("m{}: {e}", c.i))?;
    verify(c, &r)
}

impl Case {
    fn request_for(&self, port: u16) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
        let mut builder = hyper::Request::builder()
            .uri(format!("http://127.0.0.1:{port}{}", self.request.path))
            .header("host", self.request.host.as_str());
        for (name, value) in &self.request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("a request")
    }
}

#[tokio::test]
async fn two_hundred_mappings_in_twenty_namespaces_on_fifty_hosts_each_answer_as_their_own_test_says() {
    let stage = Stage::new().await;
    let label = "legate-test-routing-combined";
    let mut envs = Vec::new();
    for _ in 0..NAMESPACES {
        let env = TestEnv::new().await;
        stage.label_namespace(&env.namespace, label);
        service(&env, "quote", &[&stage.host.addr().to_string()], 8080).await;
        envs.push(env);
    }
    let gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
        "spec": {
            "serviceType": "ClusterIP", "replicas": 1,
            "listeners": [{ "name": "http", "port": stage.port, "protocol": "HTTP" }],
            "allowedRoutes": { "namespaces": stage.admits_labelled(label) },
        }
    });
    apply(&stage.env.client, &stage.env.namespace, &gateway)
        .await
        .expect("the Gateway applies");

    let cases: Vec<Case> = (0..MAPPINGS).map(case).collect();
    let started = Instant::now();
    for index in shuffled(MAPPINGS, 0x5eed_1234_abcd) {
        let c = &cases[index];
        let env = &envs[c.namespace];
        let object = json!({
            "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping",
            "metadata": { "name": format!("m{}", c.i) }, "spec": c.spec,
        });
        apply(&env.client, &env.namespace, &object)
            .await
            .unwrap_or_else(|e| panic!("Mapping m{} was refused: {e}", c.i));
    }
    let applied = started.elapsed();

    let client = HttpClient::http1();
    let mut pending: Vec<&Case> = cases.iter().collect();
    let mut last_errors = Vec::new();
    while !pending.is_empty() && started.elapsed() < PATIENCE {
        let mut still = Vec::new();
        last_errors.clear();
        for c in pending {
            if let Err(e) = check(&stage, &client, c).await {
                last_errors.push(e);
                still.push(c);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let answering = started.elapsed();
    eprintln!(
        "{MAPPINGS} Mappings, {NAMESPACES} namespaces, {HOSTS} hosts: applied in {} ms; apply → all answering {} ms",
        applied.as_millis(),
        answering.as_millis()
    );
    assert!(
        pending.is_empty(),
        "{} of {MAPPINGS} Mappings never answered as expected within {PATIENCE:?}; for example:\n{}",
        pending.len(),
        last_errors
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Once more, all of them, now that the configuration is complete: nothing
    // that answered early was broken by a later Mapping.
    let mut errors = Vec::new();
    for c in &cases {
        if let Err(e) = check(&stage, &client, c).await {
            errors.push(e);
        }
    }
    assert!(errors.is_empty(), "after convergence:\n{}", errors.join("\n"));
}
