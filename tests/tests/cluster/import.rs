//! `legate import`: the Emissary corpus in `tests/fixtures/emissary` goes
//! through the real `legate` binary; every document is converted or refused
//! with a reason, every converted object passes the real API server's
//! admission (schema and CEL), and the routing documents, applied to a stage,
//! answer requests through a real Envoy as Emissary's documentation says.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use legate_tests::api::{apply, install_crds};
use legate_tests::stage::Stage;
use legate_tests::{TestEnv, operator, workspace};
use serde_json::Value;

use crate::routing::{Req, SHOP, echo_service, echoed, from_envoy, programmed, tally};

fn corpus() -> PathBuf {
    workspace::root().join("tests/fixtures/emissary")
}

/// Every file of the corpus, in name order.
fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap_or_else(|e| panic!("reading {}: {e}", corpus().display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Runs `legate import -o json` with `args`; returns the objects and the report.
fn import(files: &[PathBuf], args: &[&str]) -> (Vec<Value>, String) {
    let binary = operator::binary().unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(&binary);
    command.arg("import").args(["-o", "json"]).args(args);
    for file in files {
        command.arg("-f").arg(file);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
    let report = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "legate import failed: {report}");
    let body: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("legate import printed no JSON ({e}): {report}"));
    let objects = match body["kind"].as_str() {
        Some("List") => body["items"].as_array().cloned().unwrap_or_default(),
        _ => vec![body],
    };
    (objects, report)
}

/// The report's line for each document: `source kind name: outcome`.
fn document_lines(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter(|l| !l.starts_with("  ") && l.contains(".yaml#"))
        .collect()
}

/// Applies `object` in `namespace` (whatever namespace the input gave it).
async fn apply_in(env: &TestEnv, namespace: &str, mut object: Value) -> Result<(), String> {
    object["metadata"]["namespace"] = Value::String(namespace.to_string());
    let what = format!("{} {}", object["kind"], object["metadata"]["name"]);
    apply(&env.client, namespace, &object)
        .await
        .map(|_| ())
        .map_err(|e| format!("{what}: {e}"))
}

#[tokio::test]
async fn every_corpus_document_is_converted_or_refused_and_every_object_passes_admission() {
    let (objects, report) = import(&corpus_files(), &[]);
    let lines = document_lines(&report);
    assert!(
        lines.len() >= 30,
        "the corpus has at least 30 documents:\n{report}"
    );
    for line in &lines {
        let converted = line.contains(": converted into ");
        let refused = line
            .split_once(": refused: ")
            .is_some_and(|(_, why)| why.len() > 20);
        assert!(
            converted || refused,
            "neither converted nor refused with a reason: {line}"
        );
    }
    // The corpus uses Emissary's documented fields only, and the import knows
    // each of them: none is reported as unknown.
    assert!(
        !report.contains("not a documented field"),
        "a corpus field the import does not know:\n{report}"
    );
    // What the issue names must be reported, not merged or widened.
    for expected in [
        "a hostless Mapping",
        "with host_regex",
        "a canary group across namespaces (team-a, team-b)",
        "spec.config.lua_scripts: Legate runs no Lua",
    ] {
        assert!(
            report.contains(expected),
            "the report says {expected:?}:\n{report}"
        );
    }
    let refused = lines.iter().filter(|l| l.contains(": refused: ")).count();
    assert!(
        refused >= 5 && refused < lines.len() / 2,
        "{refused} refused:\n{report}"
    );

    // One namespace holds them all: objects of one kind have distinct names.
    let keys: BTreeSet<(String, String)> = objects
        .iter()
        .map(|o| (o["kind"].to_string(), o["metadata"]["name"].to_string()))
        .collect();
    assert_eq!(keys.len(), objects.len(), "duplicate kind/name in {objects:#?}");
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "AuthService",
            "Gateway",
            "Mapping",
            "RateLimitService",
            "TCPMapping",
            "TLSContext"
        ]),
        "every Legate kind is made from the corpus"
    );

    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let mut refusals = Vec::new();
    for object in &objects {
        if let Err(e) = apply_in(&env, &env.namespace, object.clone()).await {
            refusals.push(e);
        }
    }
    assert!(
        refusals.is_empty(),
        "the API server refused:\n{}",
        refusals.join("\n")
    );
}

#[tokio::test]
async fn converted_routing_mappings_answer_as_emissarys_docs_say() {
    let stage = Stage::new().await;
    let _canary = echo_service(&stage, "quote-canary", "canary-1", 8091).await;
    let gateway = format!("{}/edge", stage.env.namespace);
    let (objects, report) = import(&[corpus().join("routing.yaml")], &["--gateway", &gateway]);
    let mut names = Vec::new();
    for object in objects {
        assert_eq!(object["kind"], "Mapping", "{report}");
        assert_eq!(object["spec"]["gateways"][0]["name"], "edge");
        names.push(
            object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        apply_in(&stage.env, &stage.env.namespace, object)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(names.len(), 15, "{report}");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    programmed(&stage, &names).await;

    // prefix: the default rewrite "/" replaces the matched prefix.
    let r = Req::get("/backend/probe").send(&stage).await;
    echoed(&r, 200, "quote-1", "/probe", SHOP);

    // v2 host is an exact Host match; rewrite "" keeps the path.
    let r = Req::get("/v2host/a").send(&stage).await;
    echoed(&r, 200, "quote-1", "/v2host/a", SHOP);
    from_envoy(
        &Req::get("/v2host/a").host("other.example.com").send(&stage).await,
        404,
    );

    // prefix_exact with case_sensitive false: the whole path, in any case.
    echoed(
        &Req::get("/EXACT").send(&stage).await,
        200,
        "quote-1",
        "/EXACT",
        SHOP,
    );
    from_envoy(&Req::get("/exact/more").send(&stage).await, 404);

    // prefix_regex matches the whole path; regex_rewrite substitutes the capture.
    echoed(
        &Req::get("/items/42").send(&stage).await,
        200,
        "quote-1",
        "/v2/items/42",
        SHOP,
    );
    from_envoy(&Req::get("/items/42x").send(&stage).await, 404);

    // method, headers (a `true` header must be present), regex headers, query.
    let matching = |req: Req| {
        req.header("x-team", "blue")
            .header("x-canary", "anything")
            .header("x-version", "v2")
    };
    let r = matching(Req::get("/match/x?debug=1&page=2")).send(&stage).await;
    echoed(&r, 200, "quote-1", "/x", SHOP);
    let without_canary = Req::get("/match/x?debug=1&page=2")
        .header("x-team", "blue")
        .header("x-version", "v2");
    from_envoy(&without_canary.send(&stage).await, 404);
    from_envoy(
        &matching(Req::get("/match/x?debug=1&page=two")).send(&stage).await,
        404,
    );
    from_envoy(
        &matching(Req::get("/match/x?debug=1&page=2").method("POST"))
            .send(&stage)
            .await,
        404,
    );

    // host_redirect: service is the host, path_redirect the path, code 302.
    let r = Req::get("/old/thing").send(&stage).await;
    from_envoy(&r, 302);
    assert_eq!(r.header("location"), Some("http://new.example.com/new"));

    // Headers added and removed both ways; append: false replaces.
    let r = Req::get("/deco/a")
        .header("x-secret", "s")
        .header("x-replaced", "from-client")
        .header("x-echo-response-header", "x-internal=1")
        .send(&stage)
        .await;
    let echo = echoed(&r, 200, "quote-1", "/a", SHOP);
    assert_eq!(echo.header("x-added"), Some("added"));
    assert_eq!(echo.header("x-replaced"), Some("by-emissary"));
    assert_eq!(echo.header("x-secret"), None);
    assert_eq!(r.header("x-served-by"), Some("legate"));
    assert_eq!(r.header("x-internal"), None);

    // host_rewrite and rewrite.
    echoed(
        &Req::get("/users/1").send(&stage).await,
        200,
        "quote-1",
        "/people/1",
        "users.internal",
    );

    // A canary at weight 50 and a stable Mapping without weight share /canary/.
    let mut backends = Vec::new();
    for _ in 0..40 {
        let r = Req::get("/canary/").send(&stage).await;
        assert_eq!(r.status, 200, "{:?}", r.text());
        backends.push(r.echo().backend);
    }
    let counts = tally(backends.iter().map(String::as_str));
    assert_eq!(
        counts.len(),
        2,
        "both backends of the canary group answer: {counts:?}"
    );

    // A hostless Mapping serves any host; a glob only names under it.
    let r = Req::get("/anyhost/x").host("any.example.org").send(&stage).await;
    echoed(&r, 200, "quote-1", "/x", "any.example.org");
    let r = Req::get("/glob/x").host("a.example.com").send(&stage).await;
    echoed(&r, 200, "quote-1", "/x", "a.example.com");
    from_envoy(&Req::get("/glob/x").host("example.org").send(&stage).await, 404);

    // A host_regex that is one name matches that name only.
    let r = Req::get("/api/v").host("api.example.com").send(&stage).await;
    echoed(&r, 200, "quote-1", "/v", "api.example.com");
    from_envoy(&Req::get("/api/v").send(&stage).await, 404);

    // CORS: Envoy answers the preflight of an allowed origin itself.
    let r = Req::get("/cors/")
        .method("OPTIONS")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send(&stage)
        .await;
    from_envoy(&r, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));

    // The Mapping of a Service's getambassador.io/config annotation routes too.
    echoed(
        &Req::get("/annotated/x").send(&stage).await,
        200,
        "quote-1",
        "/x",
        SHOP,
    );
}
