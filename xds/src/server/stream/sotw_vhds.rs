//! A proxy on state-of-the-world ADS of a Gateway whose virtual hosts go over
//! VHDS (which Envoy takes only over delta): it gets each route config whole,
//! and its ACKs read, to the rest of Legate, like a delta proxy's.

use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use prost::Message;

use super::*;
use crate::cache::Snapshot;
use crate::ir::ObjectRef;
use crate::sample;
use crate::server::ProxyTracker;
use crate::translate::{Change, Translator};

use ResourceType::{Cluster as CDS, Endpoints as EDS, Listener as LDS, Route as RDS, VirtualHost as VHDS};

fn proxy() -> ProxyId {
    ProxyId {
        node: "envoy-1".into(),
        gateway: "default/gw".into(),
    }
}

fn request(kind: ResourceType, names: &[&str], version: &str, nonce: &str) -> Request {
    Request::Sotw(DiscoveryRequest {
        version_info: version.into(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
        type_url: kind.type_url().into(),
        response_nonce: nonce.into(),
        ..DiscoveryRequest::default()
    })
}

/// Answers every response of `step` as Envoy would (ACK, then follow what it
/// now holds), and keeps the events and the route configs sent.
struct Proxy {
    stream: StreamState,
    tracker: ProxyTracker,
    acks: Vec<Ack>,
    route_configs: Vec<RouteConfiguration>,
    /// The version and nonce of the last response of each type.
    last: BTreeMap<ResourceType, (String, String)>,
}

impl Proxy {
    fn connect(snapshot: Arc<Snapshot>, clusters: &[&str]) -> Proxy {
        let mut p = Proxy {
            stream: StreamState::new(Protocol::StateOfTheWorld, proxy(), snapshot),
            tracker: ProxyTracker::new(),
            acks: Vec::new(),
            route_configs: Vec::new(),
            last: BTreeMap::new(),
        };
        p.tracker.observe(&XdsEvent::Connected(proxy()));
        for (kind, names) in [
            (CDS, vec![]),
            (EDS, clusters.to_vec()),
            (LDS, vec![]),
            (RDS, vec!["http"]),
        ] {
            let step = p.stream.on_request(request(kind, &names, "", ""));
            p.answer(step, clusters);
        }
        p
    }

    fn answer(&mut self, step: Step, clusters: &[&str]) {
        let mut pending = std::collections::VecDeque::from([step]);
        while let Some(step) = pending.pop_front() {
            for event in &step.events {
                self.tracker.observe(event);
                if let XdsEvent::Acked(ack) = event {
                    self.acks.push(ack.clone());
                }
            }
            for r in step.responses {
                let Response::Sotw(r) = r else {
                    panic!("a state-of-the-world stream answers in kind")
                };
                let kind = ResourceType::from_type_url(&r.type_url).expect("a served type");
                if kind == RDS {
                    for any in &r.resources {
                        self.route_configs
                            .push(RouteConfiguration::decode(&*any.value).expect("a RouteConfiguration"));
                    }
                }
                let names: &[&str] = match kind {
                    EDS => clusters,
                    RDS => &["http"],
                    _ => &[],
                };
                pending.push_back(
                    self.stream
                        .on_request(request(kind, names, &r.version_info, &r.nonce)),
                );
                self.last.insert(kind, (r.version_info.clone(), r.nonce.clone()));
                if kind == CDS {
                    // Envoy asks for the endpoints of the clusters it now has.
                    let (version, nonce) = self.last.get(&EDS).cloned().unwrap_or_default();
                    pending.push_back(self.stream.on_request(request(EDS, clusters, &version, &nonce)));
                }
            }
        }
    }

    /// The ACKed resources since the last call, as `"VHDS +name"` lines.
    fn acked(&mut self) -> Vec<String> {
        std::mem::take(&mut self.acks)
            .iter()
            .flat_map(|a| {
                let up = a.resources.iter().map(move |(n, _)| format!("{} +{n}", a.kind));
                up.chain(a.removed.iter().map(move |n| format!("{} -{n}", a.kind)))
            })
            .collect()
    }
}

#[test]
fn a_vhds_route_config_goes_whole_to_a_state_of_the_world_proxy() {
    let mut t = Translator::with_vhds();
    let endpoint = SocketAddr::from(([127, 0, 0, 1], 9000));
    let updates = t.translate(sample::gateway(8080, 4, 2, 2, endpoint));
    let snap = Arc::new(Snapshot::empty("default/gw").with(&updates).expect("a change"));
    let clusters = ["default/svc-0:8080", "default/svc-1:8080"];
    let mut p = Proxy::connect(snap.clone(), &clusters);

    // One route config, whole: no VHDS, every virtual host inline.
    let rc = p.route_configs.pop().expect("a route config");
    assert_eq!(rc.name, "http");
    assert!(rc.vhds.is_none());
    let hosts: Vec<&str> = rc.virtual_hosts.iter().map(|v| v.domains[0].as_str()).collect();
    assert_eq!(
        hosts,
        ["host-0.example.com", "host-1.example.com", "legate-vhds.invalid"]
    );
    assert_eq!(rc.virtual_hosts[0].routes.len(), 2);
    // Its ACK reads as the ACK of the shell and of the virtual hosts.
    let acked = p.acked();
    assert!(acked.contains(&"RDS +http".to_owned()), "{acked:?}");
    assert!(
        acked.contains(&"VHDS +http/host-0.example.com".to_owned()),
        "{acked:?}"
    );
    let (_, status) = p.tracker.proxies().next().expect("a proxy");
    assert_eq!(
        status.applied[&RDS]["http"],
        snap.get(RDS, "http").expect("the shell").version
    );
    assert!(p.tracker.programmed(&snap).values().all(|p| *p));

    // A route to a new cluster: the cluster first, then the whole route
    // config; only the changed virtual host is newly applied.
    let mut moved = sample::route("route-1", "host-1.example.com", "/moved", "default/new:80");
    moved.origin = ObjectRef::new("Mapping", "default", "route-1", 2);
    let next = Arc::new(
        snap.with(&t.translate(vec![
            Change::UpsertUpstream(sample::upstream("default/new:80")),
            sample::endpoints("default/new:80", &[endpoint]),
            Change::UpsertRoute(moved),
        ]))
        .expect("a change"),
    );
    let step = p.stream.on_snapshot(next.clone());
    assert!(!p.tracker.programmed(&next)["Mapping/default/route-1"]);
    assert!(p.tracker.programmed(&next)["Mapping/default/route-0"]);
    let clusters = ["default/new:80", "default/svc-0:8080", "default/svc-1:8080"];
    p.answer(step, &clusters);
    let acked = p.acked();
    let at = |line: &str| {
        acked
            .iter()
            .position(|a| a == line)
            .unwrap_or_else(|| panic!("{line} is not among {acked:?}"))
    };
    assert!(at("CDS +default/new:80") < at("RDS +http"), "{acked:?}");
    assert!(at("EDS +default/new:80") < at("RDS +http"), "{acked:?}");
    assert!(at("RDS +http") < at("VHDS +http/host-1.example.com"), "{acked:?}");
    assert!(!acked.iter().any(|a| a.contains("host-0")), "{acked:?}");
    assert!(p.tracker.programmed(&next).values().all(|p| *p));
    let rc = p.route_configs.pop().expect("a route config");
    assert!(
        rc.virtual_hosts[1]
            .routes
            .iter()
            .any(|r| r.name.contains("route-1"))
    );

    // The host's last routes go: the virtual host is gone from the proxy.
    let gone = Arc::new(
        next.with(&t.translate(vec![
            Change::RemoveRoute(crate::ir::RouteId::of(&ObjectRef::new(
                "Mapping", "default", "route-1", 1,
            ))),
            Change::RemoveRoute(crate::ir::RouteId::of(&ObjectRef::new(
                "Mapping", "default", "route-3", 1,
            ))),
        ]))
        .expect("a change"),
    );
    let step = p.stream.on_snapshot(gone.clone());
    p.answer(step, &clusters);
    assert_eq!(p.acked(), ["RDS +http", "VHDS -http/host-1.example.com"]);
    let rc = p.route_configs.pop().expect("a route config");
    assert_eq!(rc.virtual_hosts.len(), 2, "host-0 and the placeholder");
    let (_, status) = p.tracker.proxies().next().expect("a proxy");
    assert_eq!(status.applied[&VHDS].len(), 2);
}
