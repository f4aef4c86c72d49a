//! `legate explain` against a real Envoy: a mixed set of Mappings (hosts
//! exact, glob and `*`; prefixes, exact paths and regexes; methods; headers
//! and query parameters, exact and regex; precedence; case-insensitive
//! paths; a host assigned to a namespace, whose last route answers 404;
//! percent-encoded query values, which neither side decodes)
//! is built by the operator's model, translated and served over ADS
//! to Envoy, and each of 72 generated requests is sent to Envoy and asked
//! of `legate explain -f` (the real binary). Every Mapping stamps its name
//! on its answers, so the two must name the same Mapping, or both say 404.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;

use legate_model::snapshot::Reader;
use legate_tests::echo::EchoServer;
use legate_tests::http::HttpClient;
use legate_tests::net::{eventually, free_port, loopback};
use legate_tests::{Envoy, operator};
use legate_xds::bootstrap::BootstrapConfig;
use legate_xds::cache::SnapshotCache;
use legate_xds::server::Protocol;
use legate_xds::translate::Translator;

use crate::xds_rig::{CONVERGE, ControlPlane, GATEWAY};

/// The header each Mapping adds to its answers.
const STAMP: &str = "x-legate-mapping";

/// (name, hostname, the rest of its spec as YAML flow mappings).
const MAPPINGS: &[(&str, &str, &str)] = &[
    ("shop-root", "shop.example.com", "prefix: /"),
    ("shop-api", "shop.example.com", "prefix: /api/"),
    (
        "shop-api-blue",
        "shop.example.com",
        "prefix: /api/\n  headers: {x-team: blue}",
    ),
    (
        "shop-api-post",
        "shop.example.com",
        "prefix: /api/\n  method: POST",
    ),
    ("orders", "shop.example.com", "pathRegex: '^/orders/[0-9]+$'"),
    (
        "static-pinned",
        "shop.example.com",
        "prefix: /static\n  precedence: 5",
    ),
    (
        "glob-api",
        "'*.shop.example.com'",
        "prefix: /api\n  caseSensitive: false",
    ),
    (
        "glob-versioned",
        "'*.shop.example.com'",
        "prefix: /api\n  regexHeaders: {x-version: '^[0-9]$'}",
    ),
    (
        "glob-formats",
        "'*.shop.example.com'",
        "prefix: /api/v1\n  regexQueryParameters: {format: '^(json|yaml)$'}",
    ),
    ("health", "'*'", "path: /health"),
    (
        "debug",
        "'*'",
        "prefix: /\n  queryParameters: {debug: '1'}\n  precedence: 1",
    ),
    ("put-api", "'*'", "prefix: /api\n  method: PUT"),
    ("docs", "other.test", "prefix: /docs\n  caseSensitive: false"),
];

const HOSTS: &[&str] = &[
    "shop.example.com",
    "api.shop.example.com",
    "a.b.shop.example.com",
    "other.test",
    "Shop.Example.com",
    "nobody.test",
    "owned.test",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "GET"];
const PATHS: &[&str] = &[
    "/",
    "/api",
    "/api/",
    "/api/v1/items",
    "/API/v1/items",
    "/api//v1/x",
    "/orders/42",
    "/orders/x",
    "/static/app.js",
    "/a/../api/v1/items",
    "/health",
    "/healthz",
    "/docs/Guide",
    "/DOCS",
    "/%61pi/v1/items",
];
const HEADERS: &[&[(&str, &str)]] = &[
    &[],
    &[("x-team", "blue")],
    &[("x-team", "red")],
    &[("x-version", "2")],
    &[("x-version", "10")],
    &[("x-team", "blue"), ("x-version", "3")],
];
const QUERIES: &[&str] = &[
    "",
    "?debug=1",
    "?debug=0",
    "?format=json",
    "?format=xml&debug=1",
    "?format=yaml",
    "?format=%6Ason&debug=%31",
];

struct Generated {
    method: &'static str,
    host: &'static str,
    path_and_query: String,
    headers: &'static [(&'static str, &'static str)],
}

/// The same requests every run: a fixed-seed linear congruential walk over
/// the parts, so a failure is reproduced by running the test again.
fn requests(count: usize) -> Vec<Generated> {
    let mut state: u64 = 0x5eed_1e6a_7e00_0001;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).unwrap_or(0) % n
    };
    (0..count)
        .map(|_| Generated {
            method: METHODS[next(METHODS.len())],
            host: HOSTS[next(HOSTS.len())],
            path_and_query: format!("{}{}", PATHS[next(PATHS.len())], QUERIES[next(QUERIES.len())]),
            headers: HEADERS[next(HEADERS.len())],
        })
        .collect()
}

fn objects(listener_port: u16, upstream_port: u16) -> String {
    let mut yaml = format!(
        "apiVersion: legate.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: gw, namespace: default}}\n\
         spec:\n  listeners:\n  - {{name: http, port: {listener_port}, protocol: HTTP}}\n  \
         hostOwners:\n  - {{hostname: owned.test, namespace: default}}\n"
    );
    for (name, host, spec) in MAPPINGS {
        let _ = write!(
            yaml,
            "---\napiVersion: legate.dev/v1alpha1\nkind: Mapping\nmetadata: {{name: {name}, namespace: default}}\n\
             spec:\n  hostname: {host}\n  {spec}\n  service: http://127.0.0.1:{upstream_port}\n  \
             addResponseHeaders: {{{STAMP}: {{value: {name}}}}}\n"
        );
    }
    yaml
}

/// What `legate explain -o json` says: the Mapping that serves, or `None` for a 404.
fn explained(file: &Path, port: u16, r: &Generated) -> Result<Option<String>, String> {
    let binary = operator::binary()?;
    let mut command = Command::new(binary);
    command
        .args(["explain", "--allow-loopback-upstreams", "-o", "json", "-f"])
        .arg(file)
        .arg(r.method)
        .arg(format!("http://{}:{port}{}", r.host, r.path_and_query));
    for (name, value) in r.headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    let out = command
        .output()
        .map_err(|e| format!("running legate explain: {e}"))?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "legate explain printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    match json["result"].as_str() {
        Some("served") => Ok(json["servedBy"]["owner"]["name"].as_str().map(str::to_owned)),
        Some("notFound") => Ok(None),
        other => Err(format!("unexpected result {other:?}: {json}")),
    }
}

/// What Envoy does: the Mapping whose stamp is on a 200, or `None` for a 404.
async fn envoy_answer(client: &HttpClient, port: u16, r: &Generated) -> Result<Option<String>, String> {
    let mut request = hyper::Request::builder()
        .method(r.method)
        .uri(format!("http://{}{}", loopback(port), r.path_and_query))
        .header(hyper::header::HOST, r.host);
    for (name, value) in r.headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = client.send(request).await?;
    match (response.status.as_u16(), response.header(STAMP)) {
        (200, Some(name)) => Ok(Some(name.to_owned())),
        (404, None) => Ok(None),
        (status, stamp) => Err(format!("Envoy answered {status} with stamp {stamp:?}")),
    }
}

#[tokio::test]
async fn explain_names_the_mapping_envoy_routes_each_of_72_requests_to() {
    let upstream = EchoServer::start("upstream").await;
    let listener_port = free_port();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("objects.yaml");
    std::fs::write(&file, objects(listener_port, upstream.addr().port())).expect("the objects written");

    // The operator's model and translator, as `legate run` uses them.
    let mut reader = Reader::new(IpAddr::V4(Ipv4Addr::LOCALHOST));
    reader.read_file(&file).expect("the objects read");
    let mut world = reader.finish().world;
    world.allow_loopback_upstreams = true;
    let model = legate_model::build(&world);
    let refused: Vec<String> = model
        .verdicts
        .values()
        .filter_map(|v| {
            v.accepted
                .as_ref()
                .err()
                .map(|p| format!("{}: {}", v.object.key(), p.message))
        })
        .collect();
    assert!(refused.is_empty(), "every Mapping is accepted: {refused:?}");
    let gateway = model.gateways.get(GATEWAY).expect("the Gateway's configuration");
    let (updates, invalid) = Translator::new().sync(gateway);
    assert!(invalid.is_empty(), "{invalid:?}");
    let cache = SnapshotCache::new();
    cache.update(GATEWAY, &updates);
    let (_control_plane, xds_port, _events) = ControlPlane::start(cache.clone(), 0).await;
    let mut bootstrap = BootstrapConfig::new("envoy-0", GATEWAY, "127.0.0.1", xds_port);
    bootstrap.protocol = Protocol::Delta;
    let _envoy = Envoy::start(&bootstrap.to_yaml()).await;
    let client = HttpClient::http1();

    // Every route and the one cluster arrive in one snapshot: once one
    // request is served through the cluster, the whole table is in place.
    let probe = Generated {
        method: "GET",
        host: "shop.example.com",
        path_and_query: "/".into(),
        headers: &[],
    };
    eventually("Envoy to serve shop-root", CONVERGE, || async {
        envoy_answer(&client, listener_port, &probe)
            .await
            .ok()
            .flatten()
            .filter(|name| name == "shop-root")
    })
    .await;

    let mut disagreements = Vec::new();
    let (mut served, mut not_found) = (0, 0);
    for r in requests(72) {
        let explained = explained(&file, listener_port, &r).unwrap_or_else(|e| panic!("{e}"));
        let envoy = envoy_answer(&client, listener_port, &r).await;
        let line = format!("{} {}{} {:?}", r.method, r.host, r.path_and_query, r.headers);
        match envoy {
            Ok(envoy) if envoy == explained => {
                if envoy.is_some() {
                    served += 1;
                } else {
                    not_found += 1;
                }
            }
            Ok(envoy) => disagreements.push(format!("{line}: Envoy {envoy:?}, explain {explained:?}")),
            Err(e) => disagreements.push(format!("{line}: {e} (explain {explained:?})")),
        }
    }
    assert!(
        disagreements.is_empty(),
        "legate explain and Envoy disagree on {} requests:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    // The generated set must exercise both answers, or agreement says little.
    assert!(
        served >= 20 && not_found >= 10,
        "served {served}, 404 {not_found}"
    );
}
