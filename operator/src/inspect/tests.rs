use std::collections::BTreeMap;
use std::path::Path;

use legate_model::snapshot::Reader;
use legate_xds::explain::Request;

use super::explain::explain_request;
use super::routes::routes;
use super::source::Loaded;
use super::*;

/// Two namespaces on one Gateway: `shop` owns shop.example.com, `rogue`
/// tries to take it; `shop` also has two Mappings with one match, which
/// split its traffic.
const OBJECTS: &str = "
apiVersion: legate.dev/v1alpha1
kind: Gateway
metadata: {name: edge, namespace: infra}
spec:
  listeners: [{name: http, port: 8080, protocol: HTTP}]
  allowedRoutes: {namespaces: {from: All}}
---
apiVersion: legate.dev/v1alpha1
kind: Mapping
metadata: {name: cart, namespace: shop, creationTimestamp: '2026-01-01T00:00:00Z'}
spec: {hostname: shop.example.com, prefix: /cart/, service: 'http://cart.example.net:80'}
---
apiVersion: legate.dev/v1alpha1
kind: Mapping
metadata: {name: cart-copy, namespace: shop, creationTimestamp: '2026-01-02T00:00:00Z'}
spec: {hostname: shop.example.com, prefix: /cart/, service: 'http://copy.example.net:80'}
---
apiVersion: legate.dev/v1alpha1
kind: Mapping
metadata: {name: steal, namespace: rogue, creationTimestamp: '2026-01-03T00:00:00Z'}
spec: {hostname: shop.example.com, prefix: /, precedence: 100, service: 'http://phish.example.net:80'}
";

fn inspection() -> Inspection {
    let mut reader = Reader::new("0.0.0.0".parse().expect("an address"));
    reader
        .read_str(Path::new("objects.yaml"), OBJECTS)
        .expect("the objects read");
    Inspection::of(Loaded {
        world: reader.finish().world,
        warnings: Vec::new(),
        statuses: BTreeMap::new(),
        live: false,
    })
}

#[test]
fn explain_names_the_server_and_the_objects_left_out_with_their_reason() {
    let inspection = inspection();
    let request = Request::parse("GET", "http://shop.example.com:8080/cart/1", &[]).expect("a request");
    let answer = explain_request(&inspection, None, request).expect("an answer");
    assert_eq!(answer.result, "served");
    let served = answer.served_by.as_ref().expect("a route serves");
    assert_eq!(served.owners(), "Mapping shop/cart + shop/cart-copy");
    assert_eq!(
        served.action,
        "→ dns/cart.example.net:80 50%, dns/copy.example.net:80 50% (prefix rewritten to /)"
    );
    let left_out: Vec<(String, String)> = answer
        .not_in_table
        .iter()
        .map(|a| (a.owner.to_string(), a.status.state.clone()))
        .collect();
    assert_eq!(
        left_out,
        [("Mapping rogue/steal".to_owned(), "HostNotOwned".to_owned())]
    );

    let request = Request::parse("GET", "http://shop.example.com:8080/other", &[]).expect("a request");
    let answer = explain_request(&inspection, Some("infra/edge"), request).expect("an answer");
    assert_eq!(answer.result, "notFound");
    assert_eq!(
        answer.summary,
        "404: none of the 1 routes for host shop.example.com matches; closest: Mapping shop/cart + shop/cart-copy (path /other does not match prefix /cart/)"
    );
}

#[test]
fn a_gateway_that_does_not_exist_is_an_error_naming_those_that_do() {
    let inspection = inspection();
    let request = Request::parse("GET", "http://shop.example.com:8080/", &[]).expect("a request");
    let error = explain_request(&inspection, Some("infra/nope"), request)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("no Gateway infra/nope (Gateways: infra/edge)")
    );
    let tables = routes(&inspection, None, Some("SHOP.example.com")).expect("the tables");
    let owners: Vec<String> = tables[0].listeners[0].hosts[0]
        .routes
        .iter()
        .map(|r| format!("{} {}", r.owners(), r.status.state))
        .collect();
    assert_eq!(owners, ["Mapping shop/cart + shop/cart-copy Accepted"]);
}
