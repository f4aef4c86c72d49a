//! `legate explain` and `legate routes` against the cluster: they read the
//! objects and their status from the API server, and their answers are
//! what Envoy does. A second namespace's attempt on the shop's host shows
//! up as the reason it is not in the table.

use std::process::{Command, Output};

use legate_tests::TestEnv;
use legate_tests::api::apply;
use legate_tests::http::HttpClient;
use legate_tests::net::eventually;
use legate_tests::operator;
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::{Value, json};

use crate::routing::{Req, SHOP, apply_programmed};

/// Runs `legate <args>` with the control plane's admin kubeconfig.
fn legate(stage: &Stage, args: &[&str]) -> Output {
    let binary = operator::binary().unwrap_or_else(|e| panic!("{e}"));
    Command::new(binary)
        .args(args)
        .arg("--kubeconfig")
        .arg(stage.env.control_plane.kubeconfig())
        .output()
        .unwrap_or_else(|e| panic!("running legate {}: {e}", args.join(" ")))
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn tagged(name: &str, mut spec: Value) -> (String, Value) {
    spec["service"] = json!("quote");
    spec["hostname"] = json!(SHOP);
    spec["addRequestHeaders"] = json!({ "x-route": { "value": name, "append": false } });
    (name.to_owned(), spec)
}

/// The tenancy tests' stage (Mapping `shop`: `/` on the shop's host, and a
/// second namespace the Gateway admits too), with two more Mappings there.
async fn shop_with_a_neighbour(label: &str) -> (Stage, TestEnv) {
    let (stage, rogue) = crate::tenancy::shop_and_rogue(label).await;
    let list = [
        tagged("api", json!({ "prefix": "/api/" })),
        tagged("api-post", json!({ "prefix": "/api/", "method": "POST" })),
    ];
    let list: Vec<(&str, Value)> = list.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    apply_programmed(&stage, &list).await;
    (stage, rogue)
}

#[tokio::test]
async fn explain_and_routes_read_the_cluster_and_agree_with_envoy() {
    let (stage, rogue) = shop_with_a_neighbour("legate-test-explain-cluster").await;
    let gateway = format!("{}/edge", stage.env.namespace);
    // The neighbour tries to take the shop's host with a higher precedence.
    let steal = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping", "metadata": { "name": "steal" },
        "spec": { "hostname": SHOP, "prefix": "/", "precedence": 1000, "service": "quote" },
    });
    apply(&rogue.client, &rogue.namespace, &steal)
        .await
        .expect("the Mapping applies");
    stage
        .condition_reason_in(&rogue.namespace, "Mapping", "steal", "Accepted", "HostNotOwned")
        .await;

    // Served: the route `legate explain` names is the one Envoy takes.
    for (method, path, route) in [
        ("GET", "/api/x", "api"),
        ("POST", "/api/x", "api-post"),
        ("GET", "/x", "shop"),
    ] {
        let url = format!("http://{SHOP}:{}{path}", stage.port);
        let out = legate(&stage, &["explain", "-g", &gateway, "-o", "json", method, &url]);
        let answer = json_of(&out);
        assert!(out.status.success(), "{answer}");
        assert_eq!(answer["result"], "served", "{answer}");
        assert_eq!(answer["servedBy"]["owner"]["name"], route, "{answer}");
        assert_eq!(answer["servedBy"]["status"]["state"], "Programmed", "{answer}");
        let refused: Vec<&Value> = answer["notInTable"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["owner"]["namespace"] == rogue.namespace.as_str())
            .collect();
        assert_eq!(refused.len(), 1, "the neighbour's Mapping is named: {answer}");
        assert_eq!(refused[0]["owner"]["name"], "steal");
        assert_eq!(refused[0]["status"]["state"], "HostNotOwned", "{answer}");

        let envoy = Req::get(path).method(method).send(&stage).await;
        assert_eq!(envoy.status, 200, "{}", envoy.text());
        // `shop` tags nothing: the others tag the request with their name.
        let tag = envoy.echo().header("x-route").unwrap_or("shop").to_owned();
        assert_eq!(tag, route, "Envoy's route for {method} {path}");
    }

    // A 404 through Envoy is explained in one line.
    let nobody = "nobody.example.com";
    let url = format!("http://{nobody}:{}/", stage.port);
    let out = legate(&stage, &["explain", "-g", &gateway, "GET", &url]);
    assert_eq!(out.status.code(), Some(1), "no route serves it");
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "404: no route serves host {nobody} on listener http (port {}), and no route serves every host (hosts: {SHOP})",
            stage.port
        ),
        "{text}"
    );
    let envoy = HttpClient::http1()
        .get(&stage.url("/"), Some(nobody))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(envoy.status, 404);

    // The route table, in the order Envoy tries it.
    let out = legate(&stage, &["routes", "-g", &gateway, "--host", SHOP, "-o", "json"]);
    let table = json_of(&out);
    let routes = &table[0]["listeners"][0]["hosts"][0]["routes"];
    let order: Vec<&str> = routes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["owner"]["name"].as_str())
        .collect();
    assert_eq!(order, ["api-post", "api", "shop"], "{table}");
    let text = legate(&stage, &["routes", "-g", &gateway]);
    let text = String::from_utf8_lossy(&text.stdout);
    let expected_header = format!("Gateway {gateway}, listener http (HTTP port {})", stage.port);
    assert!(text.starts_with(&expected_header), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with(SHOP)
            && l.contains(&format!("Mapping {}/api-post", stage.env.namespace))
            && l.ends_with("Programmed")),
        "{text}"
    );
}

#[tokio::test]
async fn explain_says_when_a_change_is_not_programmed_yet() {
    let (mut stage, _neighbour) = shop_with_a_neighbour("legate-test-explain-pending").await;
    let gateway = format!("{}/edge", stage.env.namespace);
    // Envoy goes away: a new Mapping is accepted but cannot be Programmed.
    stage.envoy.stop();
    stage
        .mapping(
            "late",
            json!({ "hostname": SHOP, "prefix": "/late/", "service": "quote" }),
        )
        .await;
    stage
        .condition_reason("Mapping", "late", "Accepted", "Accepted")
        .await;
    let url = format!("http://{SHOP}:{}/late/x", stage.port);
    let answer = eventually("explain to see the new Mapping", PATIENCE, || async {
        let answer = json_of(&legate(
            &stage,
            &["explain", "-g", &gateway, "-o", "json", "GET", &url],
        ));
        (answer["servedBy"]["owner"]["name"] == "late").then_some(answer)
    })
    .await;
    let state = answer["servedBy"]["status"]["state"].as_str().unwrap_or_default();
    assert!(state.starts_with("NotProgrammedYet"), "{answer}");
    assert!(
        answer["summary"].as_str().is_some_and(
            |s| s.ends_with("(not Programmed yet: Envoy may still serve the previous generation)")
        ),
        "{answer}"
    );
}
