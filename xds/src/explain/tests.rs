use super::*;
use crate::ir::{
    Gateway, HeaderMatch, Listener, ListenerProtocol, ObjectRef, PathMatch, Route, RouteAction, RouteId,
    RouteMatch, RoutePolicy, ValueMatch,
};
use crate::table::route_table;

fn listener() -> Listener {
    Listener {
        name: "http".into(),
        origin: ObjectRef::new("Gateway", "infra", "gw", 1),
        address: "0.0.0.0".parse().expect("an address"),
        port: 8080,
        protocol: ListenerProtocol::Http,
        tls: vec![],
        trusted_hops: 0,
        proxy_protocol: false,
        http: Default::default(),
    }
}

fn route(ns: &str, name: &str, host: &str, matcher: RouteMatch, precedence: i32) -> Route {
    let origin = ObjectRef::new("Mapping", ns, name, 1);
    Route {
        id: RouteId::of(&origin),
        origin,
        co_origins: vec![],
        listener: "http".into(),
        hostnames: if host.is_empty() {
            vec![]
        } else {
            vec![host.into()]
        },
        tenant: None,
        precedence,
        matcher,
        action: RouteAction::DirectResponse {
            status: 200,
            body: None,
        },
        policy: RoutePolicy::default(),
    }
}

fn prefix(p: &str) -> RouteMatch {
    RouteMatch {
        path: PathMatch::Prefix(p.into()),
        ..RouteMatch::default()
    }
}

fn gateway() -> Gateway {
    let with_header = RouteMatch {
        headers: vec![HeaderMatch {
            name: "x-team".into(),
            value: ValueMatch::Exact("blue".into()),
            invert: false,
        }],
        ..prefix("/api")
    };
    Gateway::default()
        .with_listener(listener())
        .with_route(route("shop", "api-blue", "shop.example.com", with_header, 0))
        .with_route(route("shop", "api", "shop.example.com", prefix("/api"), 0))
        .with_route(route("shop", "catch-all", "*.example.com", prefix("/"), 0))
        .with_route(route("shop", "pinned", "shop.example.com", prefix("/"), 5))
        .with_route(route(
            "shop",
            "get-only",
            "",
            RouteMatch {
                method: Some("GET".into()),
                ..prefix("/health")
            },
            0,
        ))
}

fn ask<'a>(table: &RouteTable<'a>, method: &str, url: &str, headers: &[&str]) -> Explanation<'a> {
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    explain(table, Request::parse(method, url, &headers).expect("a request"))
}

fn served(e: &Explanation<'_>) -> Option<String> {
    match e.outcome {
        Outcome::Served(r) => Some(r.origin.name().to_owned()),
        _ => None,
    }
}

#[test]
fn precedence_wins_and_the_losers_say_why() {
    let gw = gateway();
    let (table, refused) = route_table(&gw);
    assert!(refused.is_empty());
    let e = ask(
        &table,
        "GET",
        "http://shop.example.com:8080/api/x",
        &["x-team: blue"],
    );
    assert_eq!(served(&e).as_deref(), Some("pinned"));
    let behind: Vec<(&str, &Judgement)> = e
        .routes
        .iter()
        .map(|j| (j.route.origin.name(), &j.judgement))
        .collect();
    assert_eq!(behind[0].0, "pinned");
    assert!(
        behind[1..]
            .iter()
            .all(|(_, j)| matches!(j, Judgement::Behind(why) if why.contains("precedence 5"))),
        "{behind:?}"
    );
}

#[test]
fn the_first_reason_a_route_misses_is_told() {
    let mut gw = gateway();
    gw.routes.retain(|id, _| id.as_str() != "Mapping/shop/pinned");
    let (table, _) = route_table(&gw);
    let e = ask(
        &table,
        "GET",
        "http://shop.example.com:8080/api/x",
        &["x-team: red"],
    );
    assert_eq!(served(&e).as_deref(), Some("api"));
    // `/health` is longer, so it is tried first; then `api-blue`, which tests more than `api`.
    let order: Vec<&str> = e.routes.iter().map(|j| j.route.origin.name()).collect();
    assert_eq!(order, ["get-only", "api-blue", "api", "catch-all"]);
    let first = &e.routes[1];
    assert!(
        matches!(&first.judgement, Judgement::Misses(m) if m[0].part() == "header"),
        "{first:?}"
    );
    assert!(
        e.summary().contains("served by Mapping shop/api"),
        "{}",
        e.summary()
    );
}

#[test]
fn a_glob_virtual_host_and_the_catch_all_are_picked_as_envoy_picks_them() {
    let gw = gateway();
    let (table, _) = route_table(&gw);
    let e = ask(&table, "GET", "http://cart.example.com:8080/anything", &[]);
    assert_eq!(e.virtual_host.as_deref(), Some("*.example.com"));
    assert_eq!(served(&e).as_deref(), Some("catch-all"));
    let e = ask(&table, "GET", "http://other.test:8080/health", &[]);
    assert_eq!(e.virtual_host.as_deref(), Some("*"));
    assert_eq!(served(&e).as_deref(), Some("get-only"));
}

#[test]
fn a_404_is_explained_in_one_line() {
    let gw = gateway();
    let (table, _) = route_table(&gw);
    let e = ask(&table, "POST", "http://other.test:8080/health", &[]);
    assert!(matches!(e.outcome, Outcome::NoRoute));
    assert_eq!(
        e.summary(),
        "404: none of the 1 routes for host other.test matches; closest: Mapping shop/get-only (method POST is not GET)"
    );
    let e = ask(&table, "GET", "http://other.test:9999/", &[]);
    assert!(matches!(e.outcome, Outcome::NoListener));
    assert!(
        e.summary().contains("no listener on port 9999 (listening: 8080)"),
        "{}",
        e.summary()
    );

    let mut gw = gateway();
    gw.routes.retain(|_, r| !r.hostnames.is_empty());
    let (table, _) = route_table(&gw);
    let e = ask(&table, "GET", "http://other.test:8080/", &[]);
    assert!(matches!(e.outcome, Outcome::NoVirtualHost));
    assert!(
        e.summary()
            .starts_with("404: no route serves host other.test on listener http (port 8080)"),
        "{}",
        e.summary()
    );
}

#[test]
fn case_insensitive_prefixes_and_regexes_follow_envoy() {
    let insensitive = RouteMatch {
        case_sensitive: false,
        ..prefix("/Docs")
    };
    let regex = RouteMatch {
        path: PathMatch::Regex("/v[0-9]+/items".into()),
        case_sensitive: false,
        ..RouteMatch::default()
    };
    let gw = Gateway::default()
        .with_listener(listener())
        .with_route(route("a", "docs", "", insensitive, 0))
        .with_route(route("a", "items", "", regex, 0));
    let (table, _) = route_table(&gw);
    assert_eq!(
        served(&ask(&table, "GET", "http://x:8080/docs/a", &[])).as_deref(),
        Some("docs")
    );
    assert_eq!(
        served(&ask(&table, "GET", "http://x:8080/v2/items", &[])).as_deref(),
        Some("items")
    );
    // A regex must match the whole path, and case_sensitive does not apply to it.
    assert_eq!(served(&ask(&table, "GET", "http://x:8080/v2/items/1", &[])), None);
    assert_eq!(served(&ask(&table, "GET", "http://x:8080/V2/ITEMS", &[])), None);
}
