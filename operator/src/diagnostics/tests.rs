//! The page rendered from hand-made state: order, conditions, escaping.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use legate_xds::ir::{self, ObjectRef};
use legate_xds::sample;

use super::objects::ObjectRow;
use super::page::{GatewayPage, IndexEntry, gateway_page, index_page};
use super::state::LastNack;

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: Some(1),
        last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ),
    }
}

fn mapping(name: &str, conditions: Vec<Condition>) -> ObjectRow {
    ObjectRow {
        kind: "Mapping",
        namespace: "default".into(),
        name: name.into(),
        generation: 1,
        observed_generation: Some(1),
        conditions,
        attached: true,
    }
}

fn programmed() -> Vec<Condition> {
    vec![
        condition("Accepted", "True", "Accepted", "Attached to Gateway default/gw"),
        condition("ResolvedRefs", "True", "ResolvedRefs", "ok"),
        condition("Programmed", "True", "Programmed", "ok"),
    ]
}

/// The owners of the route rows, in page order.
fn owners(html: &str) -> Vec<String> {
    html.split("<td class=\"owner\">")
        .skip(1)
        .map(|rest| rest.split("</td>").next().unwrap_or_default().to_string())
        .collect()
}

fn shop() -> ir::Gateway {
    let mut hostile = sample::route("evil", "*", "/x/", "default/quote:80");
    hostile.matcher.headers.push(ir::HeaderMatch {
        name: "x-test".into(),
        value: ir::ValueMatch::Exact("<script>alert(1)</script>".into()),
        invert: false,
    });
    ir::Gateway::default()
        .with_listener(sample::listener("http", 8080))
        .with_route(sample::route("short", "*", "/a/", "default/quote:80"))
        .with_route(sample::route("long", "*", "/a/b/", "default/quote:80"))
        .with_route(hostile)
}

#[test]
fn routes_are_listed_in_envoys_order_with_their_owners_conditions() {
    let routing = shop();
    let objects = vec![
        mapping("short", programmed()),
        mapping("long", programmed()),
        mapping(
            "evil",
            vec![condition(
                "Programmed",
                "False",
                "Rejected",
                "Envoy edge-1 rejected generation 1: <b>nope</b>",
            )],
        ),
    ];
    let html = gateway_page(&GatewayPage {
        key: "default/gw",
        gateway: None,
        routing: Some(&routing),
        objects: &objects,
        last_nack: None,
        proxies: 1,
    });
    // Longer prefixes first, then (at equal length) more conditions: Envoy
    // takes the first match.
    assert_eq!(
        owners(&html),
        [
            "Mapping default/long",
            "Mapping default/evil",
            "Mapping default/short"
        ],
        "{html}"
    );
    assert_eq!(html.matches("<tr class=\"route\">").count(), 3);
    assert!(html.contains("Programmed=False (Rejected)"), "{html}");
    assert!(
        html.contains("prefix /x/ header x-test = &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"),
        "{html}"
    );
    assert!(html.contains("&lt;b&gt;nope&lt;/b&gt;"), "{html}");
    assert!(!html.contains("<script>") && !html.contains("<b>nope"), "{html}");
}

#[test]
fn the_last_nack_names_its_proxy_type_error_and_blamed_objects() {
    let routing = shop();
    let nack = LastNack {
        at: "2026-12-02T10:00:00Z".into(),
        proxy: "edge-1".into(),
        kind: "RDS",
        version: "v7".into(),
        message: "regex '<(a{1,50})>' exceeds the program size".into(),
        resources: vec!["http".into()],
        blamed: vec![ObjectRef::new("Mapping", "default", "greedy", 2)],
    };
    let html = gateway_page(&GatewayPage {
        key: "default/gw",
        gateway: None,
        routing: Some(&routing),
        objects: &[],
        last_nack: Some(&nack),
        proxies: 0,
    });
    let section = html.split("id=\"last-nack\"").nth(1).unwrap_or_default();
    for expected in [
        "2026-12-02T10:00:00Z",
        "edge-1",
        "RDS (version v7)",
        "regex &#39;&lt;(a{1,50})&gt;&#39; exceeds the program size",
        "Mapping default/greedy (generation 2)",
    ] {
        assert!(section.contains(expected), "{expected} missing from {section}");
    }
}

#[test]
fn the_index_links_every_gateway_and_a_gateway_without_configuration_says_so() {
    let html = index_page(&[IndexEntry {
        key: "shop/edge".into(),
        gateway: None,
        routes: None,
        last_nack_at: None,
    }]);
    assert!(
        html.contains("<a href=\"/diagnostics/shop/edge\">shop/edge</a>"),
        "{html}"
    );
    assert!(html.contains("no configuration"), "{html}");
    let page = gateway_page(&GatewayPage {
        key: "shop/edge",
        gateway: None,
        routing: None,
        objects: &[],
        last_nack: None,
        proxies: 0,
    });
    assert!(page.contains("no configuration for this Gateway"), "{page}");
    assert!(page.contains("No Envoy of this Gateway has refused"), "{page}");
}
