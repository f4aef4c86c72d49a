//! Host ownership: a host belongs to one namespace on a Gateway, and no
//! other namespace's object reaches Envoy on it, whatever its precedence.

use std::sync::Arc;

use legate_crds::conditions::reasons;
use legate_crds::{TCPMapping, TLSContext};
use serde_json::{Value, json};

use super::tests::{gateway, mapping, object, verdict};
use super::tests_edge::tls_secret;
use super::*;

fn shop_mapping() -> Arc<legate_crds::Mapping> {
    mapping(
        "shop",
        "web",
        "01",
        json!({ "hostname": "shop.example.com", "prefix": "/", "service": "web" }),
    )
}

/// The reason and message `key` was refused with.
fn refusal(model: &Model, key: &str) -> (String, String) {
    let problem = verdict(model, key).accepted.clone().expect_err(key);
    (problem.reason.to_string(), problem.message)
}

/// The origins (`namespace/name`) of the routes of the Gateway `infra/edge`.
fn route_origins(model: &Model) -> Vec<String> {
    let mut origins: Vec<String> = model.gateways["infra/edge"]
        .routes
        .values()
        .map(|r| format!("{}/{}", r.origin.namespace(), r.origin.name()))
        .collect();
    origins.sort();
    origins
}

/// Builds whole, and incrementally from `before`: both answers must agree.
fn build_after(before: &World, world: &World) -> Model {
    let mut incremental = Incremental::new();
    incremental.build(before, &Quarantine::new());
    let followed = incremental.build(world, &Quarantine::new()).clone();
    let whole = build(world);
    assert_eq!(
        followed, whole,
        "the incremental model agrees with the whole build"
    );
    whole
}

#[test]
fn a_higher_precedence_on_another_namespaces_host_is_refused_and_reaches_no_envoy() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![
            shop_mapping(),
            mapping(
                "rogue",
                "steal",
                "02",
                json!({ "hostname": "SHOP.example.com", "prefix": "/", "precedence": 1000000, "service": "trap" }),
            ),
        ],
        ..World::default()
    };
    let model = build(&world);
    let (reason, message) = refusal(&model, "Mapping/rogue/steal");
    assert_eq!(reason, reasons::HOST_NOT_OWNED);
    for part in [
        "shop.example.com",
        "namespace shop",
        "Mapping shop/web",
        "spec.hostOwners",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    assert_eq!(verdict(&model, "Mapping/shop/web").accepted, Ok(()));
    assert_eq!(route_origins(&model), ["shop/web"]);
}

#[test]
fn releasing_a_host_hands_it_to_the_next_claimant() {
    let rogue = mapping(
        "rogue",
        "wait",
        "02",
        json!({ "hostname": "shop.example.com", "prefix": "/", "service": "trap" }),
    );
    let before = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![shop_mapping(), rogue.clone()],
        ..World::default()
    };
    let after = World {
        mappings: vec![rogue],
        ..before.clone()
    };
    let model = build_after(&before, &after);
    assert_eq!(verdict(&model, "Mapping/rogue/wait").accepted, Ok(()));
    assert_eq!(route_origins(&model), ["rogue/wait"]);
    // And back: the older claim wins again when it returns.
    let model = build_after(&after, &before);
    assert_eq!(refusal(&model, "Mapping/rogue/wait").0, reasons::HOST_NOT_OWNED);
}

#[test]
fn an_older_glob_owns_the_names_under_it() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![
            mapping(
                "shop",
                "all",
                "01",
                json!({ "hostname": "*.shop.example.com", "prefix": "/", "service": "web" }),
            ),
            mapping(
                "rogue",
                "one",
                "02",
                json!({ "hostname": "pay.shop.example.com", "prefix": "/", "service": "trap" }),
            ),
        ],
        ..World::default()
    };
    let model = build(&world);
    let (reason, message) = refusal(&model, "Mapping/rogue/one");
    assert_eq!(reason, reasons::HOST_NOT_OWNED);
    assert!(message.contains("through *.shop.example.com"), "{message}");
}

#[test]
fn a_younger_glob_is_its_owners_but_never_enters_an_older_hosts_virtual_host() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![
            shop_mapping(),
            mapping(
                "rogue",
                "glob",
                "02",
                json!({ "hostname": "*.example.com", "prefix": "/", "precedence": 1000000, "service": "trap" }),
            ),
        ],
        ..World::default()
    };
    let model = build(&world);
    // Its own glob: accepted, and marked as the rogue's, which keeps it out
    // of shop.example.com's virtual host (the translator's rule).
    assert_eq!(verdict(&model, "Mapping/rogue/glob").accepted, Ok(()));
    let tenants: Vec<(String, Option<String>)> = model.gateways["infra/edge"]
        .routes
        .values()
        .map(|r| (r.origin.name().to_string(), r.tenant.clone()))
        .collect();
    assert!(
        tenants.contains(&("glob".into(), Some("rogue".into()))),
        "{tenants:?}"
    );
}

#[test]
fn catch_alls_of_the_gateways_namespace_serve_for_the_gateway_and_others_for_their_own() {
    let world = World {
        gateways: vec![gateway("infra", "edge", json!({}))],
        mappings: vec![
            mapping(
                "infra",
                "fallback",
                "01",
                json!({ "prefix": "/", "service": "web" }),
            ),
            mapping(
                "rogue",
                "all",
                "02",
                json!({ "prefix": "/x/", "precedence": 1000000, "service": "trap" }),
            ),
        ],
        ..World::default()
    };
    let model = build(&world);
    let tenant = |name: &str| {
        model.gateways["infra/edge"]
            .routes
            .values()
            .find(|r| r.origin.name() == name)
            .map(|r| r.tenant.clone())
            .expect("a route")
    };
    assert_eq!(tenant("fallback"), None);
    assert_eq!(tenant("all"), Some("rogue".into()));
    // Its status says so; the Gateway's own catch-all has nothing to add.
    let notes = &verdict(&model, "Mapping/rogue/all").notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("serves the hosts no other namespace owns")),
        "{notes:?}"
    );
    assert!(verdict(&model, "Mapping/infra/fallback").notes.is_empty());
}

#[test]
fn the_gateway_pins_a_host_to_a_namespace_whoever_came_first() {
    let pinned = json!({ "hostOwners": [
        { "hostname": "*.example.com", "namespace": "web" },
        { "hostname": "shop.example.com", "namespace": "shop" },
    ] });
    let world = World {
        gateways: vec![gateway("infra", "edge", pinned)],
        mappings: vec![
            mapping(
                "rogue",
                "early",
                "00",
                json!({ "hostname": "shop.example.com", "prefix": "/", "service": "trap" }),
            ),
            shop_mapping(),
            mapping(
                "shop",
                "other",
                "03",
                json!({ "hostname": "www.example.com", "prefix": "/", "service": "web" }),
            ),
        ],
        ..World::default()
    };
    let model = build(&world);
    let (reason, message) = refusal(&model, "Mapping/rogue/early");
    assert_eq!(reason, reasons::HOST_NOT_OWNED);
    assert!(
        message.contains("the Gateway assigns shop.example.com"),
        "{message}"
    );
    assert_eq!(verdict(&model, "Mapping/shop/web").accepted, Ok(()));
    // Each assigned host has a last 404 route of its owner's, so that it
    // never falls to the catch-all virtual host.
    let assigned: Vec<(Vec<String>, Option<String>, String)> = model.gateways["infra/edge"]
        .routes
        .values()
        .filter(|r| r.origin.kind() == "Gateway")
        .map(|r| (r.hostnames.clone(), r.tenant.clone(), format!("{:?}", r.action)))
        .collect();
    assert_eq!(assigned.len(), 2, "{assigned:?}");
    assert!(
        assigned
            .iter()
            .any(|(hosts, tenant, action)| hosts == &["shop.example.com"]
                && tenant.as_deref() == Some("shop")
                && action.contains("404")),
        "{assigned:?}"
    );
    // The most specific entry wins: www.example.com is web's by the glob.
    let (_, message) = refusal(&model, "Mapping/shop/other");
    assert!(message.contains("namespace web"), "{message}");
}

/// A TLSContext that names the Gateway `infra/edge` (another namespace's
/// would not attach to it otherwise).
fn tls_context(namespace: &str, name: &str, created: &str, spec: Value) -> Arc<TLSContext> {
    let mut spec = spec;
    spec["gateways"] = json!([{ "name": "edge", "namespace": "infra" }]);
    object("TLSContext", namespace, name, created, spec)
}

fn http_and_https() -> Arc<legate_crds::Gateway> {
    gateway(
        "infra",
        "edge",
        json!({ "listeners": [
            { "name": "http", "port": 8080, "protocol": "HTTP" },
            { "name": "https", "port": 8443, "protocol": "HTTPS" },
        ]}),
    )
}

#[test]
fn a_tls_context_names_only_hosts_its_namespace_owns_and_every_host_only_from_the_gateways() {
    let world = World {
        gateways: vec![http_and_https()],
        mappings: vec![shop_mapping()],
        tls_contexts: vec![
            // The blackhole: every host, refusing cleartext, with no Secret.
            tls_context(
                "rogue",
                "everything",
                "02",
                json!({ "hosts": ["*"], "secret": "missing", "insecure": { "action": "Reject" } }),
            ),
            tls_context(
                "rogue",
                "shop",
                "03",
                json!({ "hosts": ["shop.example.com"], "secret": "missing", "insecure": { "action": "Reject" } }),
            ),
            tls_context(
                "infra",
                "wildcard",
                "04",
                json!({ "hosts": ["*"], "secret": "wildcard-cert" }),
            ),
        ],
        secrets: vec![tls_secret("infra", "wildcard-cert")],
        ..World::default()
    };
    let model = build(&world);
    let (reason, message) = refusal(&model, "TLSContext/rogue/everything");
    assert_eq!(reason, reasons::HOST_NOT_OWNED);
    assert!(message.contains("every host"), "{message}");
    let (reason, message) = refusal(&model, "TLSContext/rogue/shop");
    assert_eq!(reason, reasons::HOST_NOT_OWNED);
    assert!(message.contains("namespace shop"), "{message}");
    // Neither put a route anywhere; the Gateway's own may name every host.
    assert!(
        !route_origins(&model).iter().any(|o| o.starts_with("rogue/")),
        "{:?}",
        route_origins(&model)
    );
    assert_eq!(verdict(&model, "TLSContext/infra/wildcard").accepted, Ok(()));
}

#[test]
fn a_tenants_tls_context_claims_its_hosts() {
    let world = World {
        gateways: vec![http_and_https()],
        mappings: vec![mapping(
            "rogue",
            "late",
            "05",
            json!({ "hostname": "shop.example.com", "prefix": "/", "service": "trap" }),
        )],
        tls_contexts: vec![tls_context(
            "shop",
            "tls",
            "01",
            json!({ "hosts": ["shop.example.com"], "secret": "shop-cert" }),
        )],
        ..World::default()
    };
    let model = build(&world);
    let (_, message) = refusal(&model, "Mapping/rogue/late");
    assert!(
        message.contains("TLSContext shop/tls claimed it first"),
        "{message}"
    );
}

#[test]
fn a_tcp_mapping_sni_is_a_claim_too() {
    let tcp = |namespace: &str, name: &str, created: &str, sni: &str| -> Arc<TCPMapping> {
        object(
            "TCPMapping",
            namespace,
            name,
            created,
            json!({ "port": 9443, "sni": sni, "service": "db:80" }),
        )
    };
    let world = World {
        gateways: vec![gateway(
            "infra",
            "edge",
            json!({ "listeners": [{ "name": "tls", "port": 9443, "protocol": "TLS" }] }),
        )],
        tcp_mappings: vec![
            tcp("shop", "db", "01", "db.example.com"),
            tcp("rogue", "db", "02", "db.example.com"),
            tcp("rogue", "all", "03", "*"),
        ],
        ..World::default()
    };
    let model = build(&world);
    assert_eq!(refusal(&model, "TCPMapping/rogue/db").0, reasons::HOST_NOT_OWNED);
    assert_eq!(refusal(&model, "TCPMapping/rogue/all").0, reasons::HOST_NOT_OWNED);
    assert_eq!(verdict(&model, "TCPMapping/shop/db").accepted, Ok(()));
}

#[test]
fn a_claim_by_a_tls_context_follows_the_mappings_that_hand_its_host_over() {
    // The rogue's Mapping is older than shop's TLSContext: when it goes,
    // the TLSContext (in the Gateway's frame) is judged again.
    let rogue = mapping(
        "rogue",
        "first",
        "00",
        json!({ "hostname": "shop.example.com", "prefix": "/", "service": "trap" }),
    );
    let before = World {
        gateways: vec![http_and_https()],
        mappings: vec![rogue, shop_mapping()],
        tls_contexts: vec![tls_context(
            "shop",
            "tls",
            "01",
            json!({ "hosts": ["shop.example.com"], "secret": "shop-cert" }),
        )],
        secrets: vec![tls_secret("shop", "shop-cert")],
        ..World::default()
    };
    assert_eq!(
        refusal(&build(&before), "TLSContext/shop/tls").0,
        reasons::HOST_NOT_OWNED
    );
    let after = World {
        mappings: vec![shop_mapping()],
        ..before.clone()
    };
    let model = build_after(&before, &after);
    let v = verdict(&model, "TLSContext/shop/tls");
    assert_eq!(v.accepted, Ok(()));
}

#[test]
fn two_tls_contexts_on_one_host_the_older_serves_and_the_newer_is_conflicted() {
    let context = |name: &str, created: &str, host: &str| {
        tls_context(
            "shop",
            name,
            created,
            json!({ "hosts": [host], "secret": "shop-cert" }),
        )
    };
    let world = World {
        gateways: vec![http_and_https()],
        tls_contexts: vec![
            context("newer", "05", "shop.example.com"),
            context("older", "01", "shop.example.com"),
            context("other", "07", "pay.example.com"),
        ],
        secrets: vec![tls_secret("shop", "shop-cert")],
        ..World::default()
    };
    let model = build(&world);
    let (reason, message) = refusal(&model, "TLSContext/shop/newer");
    assert_eq!(reason, reasons::CONFLICTED);
    assert!(
        message.contains("TLSContext shop/older already serves host shop.example.com"),
        "{message}"
    );
    assert_eq!(verdict(&model, "TLSContext/shop/older").accepted, Ok(()));
    assert_eq!(verdict(&model, "TLSContext/shop/other").accepted, Ok(()));
    // One certificate per server name reaches the HTTPS listener.
    let https = &model.gateways["infra/edge"].listeners["https"];
    let names: Vec<&str> = https.tls.iter().map(|t| t.origin.name()).collect();
    assert_eq!(names, ["older", "other"]);
}

#[test]
fn a_tls_context_envoy_refused_is_left_out_of_that_gateway_only() {
    let other = gateway(
        "infra",
        "other",
        json!({ "listeners": [
            { "name": "http", "port": 8080, "protocol": "HTTP" },
            { "name": "https", "port": 8443, "protocol": "HTTPS" },
        ]}),
    );
    let mut spec = json!({ "hosts": ["shop.example.com"], "secret": "shop-cert" });
    spec["gateways"] =
        json!([{ "name": "edge", "namespace": "infra" }, { "name": "other", "namespace": "infra" }]);
    let world = World {
        gateways: vec![http_and_https(), other],
        tls_contexts: vec![object("TLSContext", "shop", "tls", "01", spec)],
        secrets: vec![tls_secret("shop", "shop-cert")],
        ..World::default()
    };
    let mut quarantine = Quarantine::new();
    quarantine.insert("infra/edge", "TLSContext/shop/tls", 1);
    let model = build_with(&world, &quarantine);
    let served = |gateway: &str| {
        model.gateways[gateway]
            .listeners
            .get("https")
            .is_some_and(|l| !l.tls.is_empty())
    };
    assert!(!served("infra/edge"), "the refusing Gateway leaves it out");
    assert!(served("infra/other"), "the other Gateway keeps it");
    let v = verdict(&model, "TLSContext/shop/tls");
    assert_eq!(v.accepted, Ok(()));
    // Following the quarantine's arrival gives the same model.
    let mut incremental = Incremental::new();
    incremental.build(&world, &Quarantine::new());
    assert_eq!(incremental.build(&world, &quarantine), &model);
}
