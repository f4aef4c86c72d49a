//! The stream state machine as tables: each test feeds requests and snapshots
//! and checks the responses and events, with no network and no clock.

use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use envoy_types::pb::google::rpc;

use super::*;
use crate::cache::Snapshot;
use crate::ir::{self, ObjectRef};
use crate::sample;
use crate::translate::{Change, Translator};

use ResourceType::{Cluster as CDS, Endpoints as EDS, Listener as LDS, Route as RDS};

const ENDPOINT: ([u8; 4], u16) = ([127, 0, 0, 1], 9000);

/// A Gateway of `routes` routes to two upstreams, and the translator that made it.
fn world(routes: usize) -> (Translator, Arc<Snapshot>) {
    let mut t = Translator::new();
    let updates = t.translate(sample::gateway(8080, routes, 2, 2, SocketAddr::from(ENDPOINT)));
    let snap = Snapshot::empty("default/gw").with(&updates).expect("a change");
    (t, Arc::new(snap))
}

fn apply(t: &mut Translator, snap: &Snapshot, changes: Vec<Change>) -> Arc<Snapshot> {
    Arc::new(snap.with(&t.translate(changes)).expect("a change"))
}

fn proxy() -> ProxyId {
    ProxyId {
        node: "envoy-1".into(),
        gateway: "default/gw".into(),
    }
}

fn sotw(kind: ResourceType, names: &[&str], version: &str, nonce: &str) -> Request {
    Request::Sotw(DiscoveryRequest {
        version_info: version.into(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
        type_url: kind.type_url().into(),
        response_nonce: nonce.into(),
        ..DiscoveryRequest::default()
    })
}

fn nack(kind: ResourceType, names: &[&str], version: &str, nonce: &str, message: &str) -> Request {
    let Request::Sotw(mut r) = sotw(kind, names, version, nonce) else {
        unreachable!("sotw builds a state-of-the-world request")
    };
    r.error_detail = Some(rpc::Status {
        code: 3,
        message: message.into(),
        details: vec![],
    });
    Request::Sotw(r)
}

fn delta(kind: ResourceType, subscribe: &[&str], unsubscribe: &[&str], nonce: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: kind.type_url().into(),
        resource_names_subscribe: subscribe.iter().map(|n| n.to_string()).collect(),
        resource_names_unsubscribe: unsubscribe.iter().map(|n| n.to_string()).collect(),
        response_nonce: nonce.into(),
        ..DeltaDiscoveryRequest::default()
    }
}

/// The one response of `step`, as a state-of-the-world response of `kind`.
fn only_sotw(step: &Step, kind: ResourceType) -> DiscoveryResponse {
    assert_eq!(
        step.responses.len(),
        1,
        "expected one response, got {:?}",
        summary(step)
    );
    match &step.responses[0] {
        Response::Sotw(r) => {
            assert_eq!(r.type_url, kind.type_url());
            r.clone()
        }
        Response::Delta(_) => panic!("expected state of the world"),
    }
}

fn only_delta(step: &Step, kind: ResourceType) -> DeltaDiscoveryResponse {
    assert_eq!(
        step.responses.len(),
        1,
        "expected one response, got {:?}",
        summary(step)
    );
    match &step.responses[0] {
        Response::Delta(r) => {
            assert_eq!(r.type_url, kind.type_url());
            r.clone()
        }
        Response::Sotw(_) => panic!("expected delta"),
    }
}

fn summary(step: &Step) -> Vec<(String, Vec<String>)> {
    step.responses
        .iter()
        .map(|r| {
            let kind = ResourceType::from_type_url(r.type_url())
                .map(|k| k.short())
                .unwrap_or("?");
            (kind.to_owned(), r.names())
        })
        .collect()
}

fn names_of(r: &DiscoveryResponse) -> Vec<String> {
    Response::Sotw(r.clone()).names()
}

/// Drives a state-of-the-world stream through the initial exchange, like
/// Envoy: CDS, EDS for the clusters, LDS, RDS for the listener's routes.
fn connected_sotw(snap: Arc<Snapshot>) -> StreamState {
    let mut s = StreamState::new(Protocol::StateOfTheWorld, proxy(), snap);
    let cds = only_sotw(&s.on_request(sotw(CDS, &[], "", "")), CDS);
    let eds_names = ["default/svc-0:8080", "default/svc-1:8080"];
    let step = s.on_request(sotw(EDS, &eds_names, "", ""));
    let eds = only_sotw(&step, EDS);
    assert!(
        s.on_request(sotw(CDS, &[], &cds.version_info, &cds.nonce))
            .responses
            .is_empty()
    );
    assert!(
        s.on_request(sotw(EDS, &eds_names, &eds.version_info, &eds.nonce))
            .responses
            .is_empty()
    );
    let lds = only_sotw(&s.on_request(sotw(LDS, &[], "", "")), LDS);
    assert!(
        s.on_request(sotw(LDS, &[], &lds.version_info, &lds.nonce))
            .responses
            .is_empty()
    );
    let rds = only_sotw(&s.on_request(sotw(RDS, &["http"], "", "")), RDS);
    assert!(
        s.on_request(sotw(RDS, &["http"], &rds.version_info, &rds.nonce))
            .responses
            .is_empty()
    );
    s
}

#[test]
fn routes_wait_until_their_clusters_and_endpoints_are_acked() {
    let (_, snap) = world(4);
    let mut s = StreamState::new(Protocol::StateOfTheWorld, proxy(), snap);
    let cds = only_sotw(&s.on_request(sotw(CDS, &[], "", "")), CDS);
    assert_eq!(names_of(&cds), ["default/svc-0:8080", "default/svc-1:8080"]);

    // The listener and its routes are asked for before the clusters are ACKed.
    let lds = only_sotw(&s.on_request(sotw(LDS, &[], "", "")), LDS);
    assert!(
        s.on_request(sotw(LDS, &[], &lds.version_info, &lds.nonce))
            .responses
            .is_empty()
    );
    assert!(
        s.on_request(sotw(RDS, &["http"], "", "")).responses.is_empty(),
        "no routes before their clusters are applied"
    );
    assert!(
        s.on_request(sotw(CDS, &[], &cds.version_info, &cds.nonce))
            .responses
            .is_empty()
    );
    let names = ["default/svc-0:8080", "default/svc-1:8080"];
    let eds = only_sotw(&s.on_request(sotw(EDS, &names, "", "")), EDS);
    // Once the endpoints are ACKed, the route config goes out.
    let rds = only_sotw(
        &s.on_request(sotw(EDS, &names, &eds.version_info, &eds.nonce)),
        RDS,
    );
    assert_eq!(names_of(&rds), ["http"]);
}

#[test]
fn an_ack_of_the_current_version_gets_no_answer_and_a_stale_nonce_is_ignored() {
    let (mut t, snap) = world(4);
    let mut s = connected_sotw(snap.clone());
    let next = apply(
        &mut t,
        &snap,
        vec![sample::endpoints(
            "default/svc-0:8080",
            &[SocketAddr::from(([127, 0, 0, 2], 1))],
        )],
    );
    let eds = only_sotw(&s.on_snapshot(next), EDS);
    assert_eq!(
        names_of(&eds),
        ["default/svc-0:8080"],
        "only the changed endpoints"
    );
    let names = ["default/svc-0:8080", "default/svc-1:8080"];
    // A request with an older nonce changes nothing and is not answered.
    assert!(s.on_request(sotw(EDS, &names, "old", "1")).responses.is_empty());
    let step = s.on_request(sotw(EDS, &names, &eds.version_info, &eds.nonce));
    assert!(step.responses.is_empty());
    assert!(
        matches!(&step.events[..], [XdsEvent::Acked(a)] if a.kind == EDS && a.version == eds.version_info)
    );
}

#[test]
fn a_changed_name_set_is_answered_even_at_the_same_version() {
    let (_, snap) = world(4);
    let mut s = connected_sotw(snap);
    // Envoy drops a cluster's endpoints (a cluster removed): the changed name
    // set is answered, with nothing to add.
    let step = s.on_request(sotw(EDS, &["default/svc-0:8080"], "x", "2"));
    let eds = only_sotw(&step, EDS);
    assert!(names_of(&eds).is_empty());
    // It asks for them again (the cluster re-added): it must get them,
    // although nothing changed on our side; what it kept is not resent.
    s.on_request(sotw(EDS, &["default/svc-0:8080"], &eds.version_info, &eds.nonce));
    let both = ["default/svc-0:8080", "default/svc-1:8080"];
    let eds = only_sotw(
        &s.on_request(sotw(EDS, &both, &eds.version_info, &eds.nonce)),
        EDS,
    );
    assert_eq!(names_of(&eds), ["default/svc-1:8080"]);
}

#[test]
fn a_nack_is_reported_against_the_object_and_that_version_is_not_sent_again() {
    let (mut t, snap) = world(4);
    let mut s = connected_sotw(snap.clone());
    let mut bad = sample::route("bad-regex", "host-0.example.com", "/x", "default/svc-0:8080");
    bad.matcher.path = ir::PathMatch::Regex("/(unclosed".into());
    let next = apply(&mut t, &snap, vec![Change::UpsertRoute(bad)]);
    let rds = only_sotw(&s.on_snapshot(next.clone()), RDS);
    let step = s.on_request(nack(
        RDS,
        &["http"],
        "previous",
        &rds.nonce,
        "missing ): /(unclosed",
    ));
    assert!(step.responses.is_empty(), "the refused version is not sent again");
    let [XdsEvent::Rejected(rejection)] = &step.events[..] else {
        panic!("expected a rejection, got {:?}", step.events)
    };
    assert_eq!(rejection.message, "missing ): /(unclosed");
    assert_eq!(
        rejection.objects,
        [ObjectRef::new("Mapping", "default", "bad-regex", 1)]
    );
    assert_eq!(rejection.resources, [Arc::from("http")]);
    assert!(s.on_snapshot(next.clone()).responses.is_empty());

    // The user fixes the regex: the new version goes out.
    let mut fixed = sample::route("bad-regex", "host-0.example.com", "/x", "default/svc-0:8080");
    fixed.origin = fixed.origin.at_generation(2);
    let fixed_snap = apply(&mut t, &next, vec![Change::UpsertRoute(fixed)]);
    let rds = only_sotw(&s.on_snapshot(fixed_snap), RDS);
    let step = s.on_request(sotw(RDS, &["http"], &rds.version_info, &rds.nonce));
    let [XdsEvent::Acked(ack)] = &step.events[..] else {
        panic!("expected an ACK, got {:?}", step.events)
    };
    assert_eq!(
        ack.programmed,
        [ObjectRef::new("Mapping", "default", "bad-regex", 2)]
    );
}

#[test]
fn a_proxy_that_reconnects_with_the_current_version_gets_nothing() {
    let (_, snap) = world(4);
    let first = connected_sotw(snap.clone());
    let mut s = StreamState::new(Protocol::StateOfTheWorld, proxy(), snap);
    let cds_version = version_of_view(first.applied(CDS).iter());
    assert!(
        s.on_request(sotw(CDS, &[], &cds_version, ""))
            .responses
            .is_empty()
    );
    assert_eq!(s.applied(CDS), first.applied(CDS));
    // An outdated version gets the current state.
    let mut other = StreamState::new(Protocol::StateOfTheWorld, proxy(), first.snapshot.clone());
    only_sotw(&other.on_request(sotw(CDS, &[], "0000000000000000", "")), CDS);
}

#[test]
fn a_removed_cluster_stays_until_no_acked_route_uses_it() {
    let (mut t, snap) = world(4);
    let mut s = connected_sotw(snap.clone());
    // Every route to svc-1 moves to svc-0, and svc-1 is deleted.
    let mut changes: Vec<Change> = (0..4)
        .map(|i| {
            Change::UpsertRoute(sample::route(
                &sample::route_name(i),
                &sample::host_name(i, 2),
                &sample::prefix(i),
                "default/svc-0:8080",
            ))
        })
        .collect();
    changes.push(Change::RemoveUpstream("default/svc-1:8080".into()));
    let next = apply(&mut t, &snap, changes);
    let step = s.on_snapshot(next);
    // The new routes go first; CDS still lists svc-1 (an ACKed route uses it).
    let rds = only_sotw(&step, RDS);
    let step = s.on_request(sotw(RDS, &["http"], &rds.version_info, &rds.nonce));
    // Now that the proxy applied routes without svc-1, svc-1 goes.
    let cds = only_sotw(&step, CDS);
    assert_eq!(names_of(&cds), ["default/svc-0:8080"]);
}

#[test]
fn a_new_cluster_goes_out_before_the_route_that_uses_it() {
    let (mut t, snap) = world(4);
    let mut s = connected_sotw(snap.clone());
    let next = apply(
        &mut t,
        &snap,
        vec![
            Change::UpsertUpstream(sample::upstream("default/new:80")),
            sample::endpoints("default/new:80", &[SocketAddr::from(ENDPOINT)]),
            Change::UpsertRoute(sample::route(
                "new",
                "host-0.example.com",
                "/new",
                "default/new:80",
            )),
        ],
    );
    let step = s.on_snapshot(next);
    let cds = only_sotw(&step, CDS);
    assert!(names_of(&cds).contains(&"default/new:80".to_owned()));
    let all = ["default/new:80", "default/svc-0:8080", "default/svc-1:8080"];
    // Envoy asks for the new cluster's endpoints, then ACKs CDS.
    let eds = only_sotw(&s.on_request(sotw(EDS, &all, "v", "")), EDS);
    assert_eq!(names_of(&eds), ["default/new:80"], "only the new name is sent");
    assert!(
        s.on_request(sotw(CDS, &[], &cds.version_info, &cds.nonce))
            .responses
            .is_empty()
    );
    let rds = only_sotw(&s.on_request(sotw(EDS, &all, &eds.version_info, &eds.nonce)), RDS);
    assert_eq!(names_of(&rds), ["http"]);
}

#[test]
fn delta_sends_only_what_differs_from_the_initial_versions_and_commits_on_ack() {
    let (mut t, snap) = world(4);
    let mut s = StreamState::new(Protocol::Delta, proxy(), snap.clone());
    let mut first = delta(CDS, &[], &[], "");
    let svc0 = snap.get(CDS, "default/svc-0:8080").expect("known");
    first.initial_resource_versions = [
        ("default/svc-0:8080".to_owned(), svc0.version.to_string()),
        ("default/svc-1:8080".to_owned(), "stale".to_owned()),
        ("default/gone:80".to_owned(), "whatever".to_owned()),
    ]
    .into();
    let cds = only_delta(&s.on_request(Request::Delta(first)), CDS);
    let sent: Vec<&str> = cds.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(sent, ["default/svc-1:8080"]);
    assert_eq!(cds.removed_resources, ["default/gone:80"]);

    // A NACK commits nothing: the proxy still has what it had.
    let mut refused = delta(CDS, &[], &[], &cds.nonce);
    refused.error_detail = Some(rpc::Status {
        code: 3,
        message: "no".into(),
        details: vec![],
    });
    let step = s.on_request(Request::Delta(refused));
    assert!(matches!(&step.events[..], [XdsEvent::Rejected(_)]));
    assert_eq!(
        s.applied(CDS).get("default/svc-1:8080").map(|v| &**v),
        Some("stale")
    );
    // The removal went down with the refused response; it alone is sent again.
    let cds = only_delta(&step, CDS);
    assert!(cds.resources.is_empty());
    assert_eq!(cds.removed_resources, ["default/gone:80"]);
    s.on_request(Request::Delta(delta(CDS, &[], &[], &cds.nonce)));

    // A new version of that cluster is sent, and committed on ACK.
    let mut slow = sample::upstream("default/svc-1:8080");
    slow.connect_timeout = std::time::Duration::from_secs(9);
    let next = apply(&mut t, &snap, vec![Change::UpsertUpstream(slow)]);
    let cds = only_delta(&s.on_snapshot(next.clone()), CDS);
    assert_eq!(cds.resources.len(), 1);
    s.on_request(Request::Delta(delta(CDS, &[], &[], &cds.nonce)));
    let applied = s.applied(CDS);
    let want = next.get(CDS, "default/svc-1:8080").expect("known");
    assert_eq!(applied.get("default/svc-1:8080"), Some(&want.version));
}

#[test]
fn delta_subscriptions_add_and_remove_names() {
    let (_, snap) = world(4);
    let mut s = StreamState::new(Protocol::Delta, proxy(), snap);
    let eds = only_delta(
        &s.on_request(Request::Delta(delta(EDS, &["default/svc-0:8080"], &[], ""))),
        EDS,
    );
    assert_eq!(eds.resources.len(), 1);
    assert!(
        s.on_request(Request::Delta(delta(EDS, &[], &[], &eds.nonce)))
            .responses
            .is_empty()
    );
    let eds = only_delta(
        &s.on_request(Request::Delta(delta(
            EDS,
            &["default/svc-1:8080"],
            &["default/svc-0:8080"],
            "",
        ))),
        EDS,
    );
    let names: Vec<&str> = eds.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["default/svc-1:8080"]);
    assert!(eds.removed_resources.is_empty(), "the proxy dropped svc-0 itself");
    s.on_request(Request::Delta(delta(EDS, &[], &[], &eds.nonce)));
    assert_eq!(
        s.applied(EDS).keys().map(|k| &**k).collect::<Vec<_>>(),
        ["default/svc-1:8080"]
    );
}

#[test]
fn delta_removes_a_deleted_cluster_only_after_the_routes_stop_using_it() {
    let (mut t, snap) = world(2);
    let mut s = StreamState::new(Protocol::Delta, proxy(), snap.clone());
    let cds = only_delta(&s.on_request(Request::Delta(delta(CDS, &[], &[], ""))), CDS);
    s.on_request(Request::Delta(delta(CDS, &[], &[], &cds.nonce)));
    let all = ["default/svc-0:8080", "default/svc-1:8080"];
    let eds = only_delta(&s.on_request(Request::Delta(delta(EDS, &all, &[], ""))), EDS);
    s.on_request(Request::Delta(delta(EDS, &[], &[], &eds.nonce)));
    let lds = only_delta(&s.on_request(Request::Delta(delta(LDS, &[], &[], ""))), LDS);
    s.on_request(Request::Delta(delta(LDS, &[], &[], &lds.nonce)));
    let rds = only_delta(&s.on_request(Request::Delta(delta(RDS, &["http"], &[], ""))), RDS);
    s.on_request(Request::Delta(delta(RDS, &[], &[], &rds.nonce)));

    // Route 1 (the only one on svc-1) and svc-1 go in one change.
    let next = apply(
        &mut t,
        &snap,
        vec![
            Change::RemoveRoute(ir::RouteId::of(&ObjectRef::new(
                "Mapping", "default", "route-1", 1,
            ))),
            Change::RemoveUpstream("default/svc-1:8080".into()),
        ],
    );
    let step = s.on_snapshot(next);
    let rds = only_delta(&step, RDS);
    let step = s.on_request(Request::Delta(delta(RDS, &[], &[], &rds.nonce)));
    let cds = only_delta(&step, CDS);
    assert_eq!(cds.removed_resources, ["default/svc-1:8080"]);
    let step = s.on_request(Request::Delta(delta(CDS, &[], &[], &cds.nonce)));
    let eds = only_delta(&step, EDS);
    assert_eq!(eds.removed_resources, ["default/svc-1:8080"]);
}

#[test]
fn a_nack_that_names_a_route_is_blamed_on_that_route_only() {
    let (mut t, snap) = world(4);
    let mut s = connected_sotw(snap.clone());
    // Two Mappings change at once; Envoy's message names one of them.
    let next = apply(
        &mut t,
        &snap,
        vec![
            Change::UpsertRoute(sample::route(
                "one",
                "host-0.example.com",
                "/one",
                "default/svc-0:8080",
            )),
            Change::UpsertRoute(sample::route(
                "two",
                "host-1.example.com",
                "/two",
                "default/svc-0:8080",
            )),
        ],
    );
    let rds = only_sotw(&s.on_snapshot(next), RDS);
    let message = "route Mapping/default/two: invalid http header in request_headers_to_add";
    let step = s.on_request(nack(RDS, &["http"], "previous", &rds.nonce, message));
    let [XdsEvent::Rejected(rejection)] = &step.events[..] else {
        panic!("expected a rejection, got {:?}", step.events)
    };
    assert_eq!(
        rejection.objects,
        [ObjectRef::new("Mapping", "default", "two", 1)]
    );
}

#[test]
fn a_refused_cluster_does_not_hold_back_the_other_routes() {
    let (mut t, snap) = world(4);
    let mut s = connected_sotw(snap.clone());
    let mut broken = sample::upstream("default/broken:80");
    broken.connect_timeout = std::time::Duration::from_secs(1);
    let next = apply(
        &mut t,
        &snap,
        vec![
            Change::UpsertUpstream(broken),
            Change::UpsertRoute(sample::route(
                "uses-broken",
                "host-0.example.com",
                "/b",
                "default/broken:80",
            )),
            Change::UpsertRoute(sample::route(
                "fine",
                "host-1.example.com",
                "/fine",
                "default/svc-0:8080",
            )),
        ],
    );
    let cds = only_sotw(&s.on_snapshot(next), CDS);
    // Envoy refuses the new cluster: the route config still goes out, so the
    // route that does not use it works.
    let step = s.on_request(nack(CDS, &[], "old", &cds.nonce, "bad cluster"));
    let [XdsEvent::Rejected(rejection)] = &step.events[..] else {
        panic!("expected a rejection, got {:?}", step.events)
    };
    assert_eq!(
        rejection.objects,
        [ObjectRef::new("Service", "default", "broken", 1)]
    );
    let rds = only_sotw(&step, RDS);
    assert_eq!(names_of(&rds), ["http"]);
}

#[test]
fn a_nonce_from_an_earlier_stream_does_not_make_the_first_request_stale() {
    let (_, snap) = world(4);
    let first = connected_sotw(snap.clone());
    let cds_version = version_of_view(first.applied(CDS).iter());
    let mut s = StreamState::new(Protocol::StateOfTheWorld, proxy(), snap);
    // Known version: nothing to send, but the proxy is subscribed.
    assert!(
        s.on_request(sotw(CDS, &[], &cds_version, "17"))
            .responses
            .is_empty()
    );
    assert_eq!(s.applied(CDS), first.applied(CDS));
    // Unknown version: the full set.
    let mut s = StreamState::new(Protocol::StateOfTheWorld, proxy(), first.snapshot.clone());
    only_sotw(&s.on_request(sotw(CDS, &[], "stale-version", "17")), CDS);
}

/// A delta stream over VHDS, brought up like Envoy: CDS, EDS, LDS, RDS, then
/// the virtual hosts of the route config's namespace.
fn connected_vhds(snap: Arc<Snapshot>) -> (StreamState, DeltaDiscoveryResponse) {
    let mut s = StreamState::new(Protocol::Delta, proxy(), snap);
    let cds = only_delta(&s.on_request(Request::Delta(delta(CDS, &[], &[], ""))), CDS);
    s.on_request(Request::Delta(delta(CDS, &[], &[], &cds.nonce)));
    let eds = only_delta(
        &s.on_request(Request::Delta(delta(
            EDS,
            &["default/svc-0:8080", "default/svc-1:8080"],
            &[],
            "",
        ))),
        EDS,
    );
    s.on_request(Request::Delta(delta(EDS, &[], &[], &eds.nonce)));
    let lds = only_delta(&s.on_request(Request::Delta(delta(LDS, &[], &[], ""))), LDS);
    s.on_request(Request::Delta(delta(LDS, &[], &[], &lds.nonce)));
    let rds = only_delta(&s.on_request(Request::Delta(delta(RDS, &["http"], &[], ""))), RDS);
    s.on_request(Request::Delta(delta(RDS, &[], &[], &rds.nonce)));
    let vhds = only_delta(
        &s.on_request(Request::Delta(delta(
            ResourceType::VirtualHost,
            &["http"],
            &[],
            "",
        ))),
        ResourceType::VirtualHost,
    );
    s.on_request(Request::Delta(delta(
        ResourceType::VirtualHost,
        &[],
        &[],
        &vhds.nonce,
    )));
    (s, vhds)
}

#[test]
fn a_vhds_namespace_subscription_gets_the_virtual_hosts_of_its_route_config() {
    let mut t = Translator::with_vhds();
    let updates = t.translate(sample::gateway(8080, 4, 2, 2, SocketAddr::from(ENDPOINT)));
    let snap = Arc::new(Snapshot::empty("default/gw").with(&updates).expect("a change"));
    let (mut s, vhds) = connected_vhds(snap.clone());
    let names: Vec<&str> = vhds.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "http/host-0.example.com",
            "http/host-1.example.com",
            "http/legate-vhds.invalid"
        ]
    );

    // A route to a new cluster: the cluster first, the virtual host after it.
    let next = apply(
        &mut t,
        &snap,
        vec![
            Change::UpsertUpstream(sample::upstream("default/new:80")),
            sample::endpoints("default/new:80", &[SocketAddr::from(ENDPOINT)]),
            Change::UpsertRoute(sample::route(
                "new",
                "host-1.example.com",
                "/new",
                "default/new:80",
            )),
        ],
    );
    let cds = only_delta(&s.on_snapshot(next), CDS);
    assert_eq!(cds.resources.len(), 1);
    let step = s.on_request(Request::Delta(delta(CDS, &[], &[], &cds.nonce)));
    assert!(
        step.responses.is_empty(),
        "the virtual host waits for the endpoints"
    );
    let eds = only_delta(
        &s.on_request(Request::Delta(delta(EDS, &["default/new:80"], &[], ""))),
        EDS,
    );
    let step = s.on_request(Request::Delta(delta(EDS, &[], &[], &eds.nonce)));
    let vhds = only_delta(&step, ResourceType::VirtualHost);
    let names: Vec<&str> = vhds.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["http/host-1.example.com"]);

    // Subscribing to the namespace again (a new route config) resends it all.
    s.on_request(Request::Delta(delta(
        ResourceType::VirtualHost,
        &[],
        &[],
        &vhds.nonce,
    )));
    let again = only_delta(
        &s.on_request(Request::Delta(delta(
            ResourceType::VirtualHost,
            &["http"],
            &[],
            "",
        ))),
        ResourceType::VirtualHost,
    );
    assert_eq!(again.resources.len(), 3, "two hosts and the placeholder");
}

/// A proxy that reconnects before its Gateway is translated (the operator
/// just started) holds configuration: it hears nothing until the
/// translation is in, and then only what differs, never "remove it all".
#[test]
fn nothing_is_sent_from_a_gateway_not_translated_yet() {
    let (_, translated) = world(2);
    let placeholder = Arc::new(Snapshot::empty("default/gw"));
    let mut s = StreamState::new(Protocol::Delta, proxy(), placeholder);
    let mut first = delta(CDS, &[], &[], "");
    first.initial_resource_versions = translated
        .served(CDS, false)
        .iter()
        .map(|(name, r)| (name.to_string(), r.version.to_string()))
        .collect();
    assert!(
        s.on_request(Request::Delta(first)).responses.is_empty(),
        "no answer from the placeholder"
    );
    // The translation arrives, the same as what the proxy holds: nothing to
    // send, and nothing removed.
    let step = s.on_snapshot(translated.clone());
    for response in &step.responses {
        if let Response::Delta(d) = response {
            assert!(d.removed_resources.is_empty(), "{d:?}");
        }
    }
    // An empty translation is published too, and answers.
    let published = Arc::new(
        Snapshot::empty("default/gw")
            .publish()
            .expect("not published yet"),
    );
    let mut s = StreamState::new(Protocol::Delta, proxy(), published);
    let step = s.on_request(Request::Delta(delta(CDS, &[], &[], "")));
    assert_eq!(step.responses.len(), 1, "an empty CDS, once translated");
}
