//! The incremental model against the whole build over a long walk of
//! random changes to a small world made to collide: shared hosts, conflicts
//! across namespaces, weights, Services, EndpointSlices and Secrets coming
//! and going, quarantines, Namespaces, a Gateway's selector.

use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use legate_crds::{Gateway, Mapping};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::tests::check;
use crate::{Incremental, Quarantine, World};

/// A small deterministic generator (xorshift), so a failure replays.
pub(super) struct Dice(pub u64);

impl Dice {
    pub fn roll(&mut self, sides: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % sides as u64) as usize
    }

    pub fn one_in(&mut self, n: usize) -> bool {
        self.roll(n) == 0
    }

    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.roll(from.len())]
    }
}

fn object<T: DeserializeOwned>(value: Value) -> Arc<T> {
    Arc::new(serde_json::from_value(value).unwrap_or_else(|e| panic!("a valid object: {e}")))
}

const NAMESPACES: [&str; 3] = ["red", "blue", "green"];
const SERVICES: [&str; 3] = ["a", "b", "c"];

/// A Mapping made to meet others: few hosts, few paths, three namespaces.
pub(super) fn random_mapping(dice: &mut Dice, index: usize, generation: i64) -> Arc<Mapping> {
    let namespace = NAMESPACES[index % 3];
    let mut spec = json!({
        "hostname": dice.pick(&[
            "a.example.com", "b.example.com", "*", "A.example.com", "*.example.com", "x.b.example.com",
            "*.b.example.com",
        ]),
        "prefix": dice.pick(&["/", "/x/", "/y/"]),
        "service": dice.pick(&[
            "a", "b", "c", "a:http", "a:80", "b.blue", "c:9999", "https://ext.example.com", "bad:",
        ]),
    });
    let extras = [
        ("weight", json!(dice.roll(70))),
        ("shadow", json!(true)),
        ("autoHostRewrite", json!(true)),
        ("precedence", json!(dice.roll(3))),
        ("pathRegex", json!("([")),
        (
            "redirect",
            json!({ "host": "elsewhere.example.com", "responseCode": 302 }),
        ),
        ("gateways", json!([{ "name": "side", "namespace": "infra" }])),
        ("upstreamTls", json!({ "caSecret": "ca" })),
        ("grpc", json!(true)),
        ("method", json!("GET")),
    ];
    for (field, value) in extras {
        if dice.one_in(6) {
            spec[field] = value;
        }
    }
    let mut metadata = json!({
        "name": format!("m-{index}"), "namespace": namespace, "generation": generation,
        "creationTimestamp": format!("2026-01-01T00:{:02}:{:02}Z", dice.roll(3), dice.roll(60)),
    });
    if dice.one_in(15) {
        metadata["deletionTimestamp"] = json!("2026-02-01T00:00:00Z");
    }
    object(json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping",
        "metadata": metadata, "spec": spec,
    }))
}

fn random_service(dice: &mut Dice, namespace: &str, name: &str) -> Arc<Service> {
    let spec = if dice.one_in(5) {
        json!({ "type": "ExternalName", "externalName": "legacy.example.com",
                "ports": [{ "name": "http", "port": 80 }] })
    } else {
        json!({ "ports": [{ "name": "http", "port": 80, "targetPort": 8080 },
                          { "name": "admin", "port": 9000 }] })
    };
    object(json!({ "metadata": { "name": name, "namespace": namespace }, "spec": spec }))
}

fn random_slice(dice: &mut Dice, namespace: &str, service: &str, n: usize) -> Arc<EndpointSlice> {
    let endpoints: Vec<Value> = (0..=dice.roll(3))
        .map(
            |i| json!({ "addresses": [format!("10.0.{n}.{i}")], "conditions": { "ready": !dice.one_in(4) } }),
        )
        .collect();
    object(json!({
        "metadata": { "name": format!("{service}-{n}"), "namespace": namespace,
                      "labels": { "kubernetes.io/service-name": service } },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{ "name": "http", "port": 8080 }, { "name": "admin", "port": 9090 }],
    }))
}

pub(super) fn gateway(name: &str, from: Value, listeners: Value) -> Arc<Gateway> {
    object(json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway",
        "metadata": { "name": name, "namespace": "infra", "generation": 1,
                      "creationTimestamp": "2026-01-01T00:00:00Z" },
        "spec": { "listeners": listeners, "allowedRoutes": { "namespaces": from } },
    }))
}

fn namespace(name: &str, team: &str) -> Arc<Namespace> {
    object(json!({ "metadata": { "name": name, "labels": { "team": team } } }))
}

/// Two Gateways (one admits every namespace on two listeners, the other
/// namespaces labelled `team: platform`, or all), Mappings, Services,
/// EndpointSlices, Secrets and quarantines changing one or a few at a time;
/// now and then a Namespace's labels, the second Gateway's spec, or a
/// Secret that a TLSContext or the AuthService reads (which build the
/// Gateways' frames again): after each step the incremental model is the
/// whole build.
#[test]
fn a_random_walk_of_changes_always_builds_the_same_model() {
    for seed in [0x5eed_1e6a_7e00_0001, 0x0dd_ba11, 0xfee1_900d] {
        walk(seed);
    }
}

/// A Secret with `data`, of `type_`.
fn secret(namespace: &str, name: &str, type_: &str, data: &[(&str, &str)]) -> Arc<Secret> {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.namespace = Some(namespace.into());
    secret.type_ = Some(type_.into());
    secret.data = Some(
        data.iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect(),
    );
    Arc::new(secret)
}

/// The second Gateway: selecting namespaces by label or not, with route
/// defaults (and route statistics) or not, with a second HTTP listener or not, assigning hosts to
/// namespaces or not.
fn side(select: bool, defaults: bool, second_listener: bool, owners: bool) -> Arc<Gateway> {
    let from = if select {
        json!({ "from": "Selector", "selector": { "matchLabels": { "team": "platform" } } })
    } else {
        json!({ "from": "All" })
    };
    let mut listeners = vec![json!({ "name": "http", "port": 8080, "protocol": "HTTP" })];
    if second_listener {
        listeners.push(json!({ "name": "more", "port": 8082, "protocol": "HTTP" }));
    }
    let mut spec = json!({ "listeners": listeners, "allowedRoutes": { "namespaces": from } });
    if defaults {
        spec["defaults"] = json!({ "timeout": "7s" });
        spec["routeStats"] = json!("PerMapping");
    }
    if owners {
        spec["hostOwners"] = json!([
            { "hostname": "b.example.com", "namespace": "blue" },
            { "hostname": "*.example.com", "namespace": "green" },
        ]);
    }
    object(json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway",
        "metadata": { "name": "side", "namespace": "infra", "generation": 1,
                      "creationTimestamp": "2026-01-01T00:00:00Z" },
        "spec": spec,
    }))
}

fn walk(seed: u64) {
    let mut dice = Dice(seed);
    let cert = rcgen::generate_simple_self_signed(vec!["a.example.com".into()]).expect("a certificate");
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let edge_cert = |dice: &mut Dice| {
        let chain = if dice.one_in(2) {
            cert_pem.as_str()
        } else {
            "not a certificate"
        };
        secret(
            "infra",
            "edge-cert",
            "kubernetes.io/tls",
            &[("tls.crt", chain), ("tls.key", &key_pem)],
        )
    };
    let mut world = World {
        gateways: vec![
            gateway(
                "edge",
                json!({ "from": "All" }),
                json!([{ "name": "http", "port": 8080, "protocol": "HTTP" },
                       { "name": "alt", "port": 8081, "protocol": "HTTP" }]),
            ),
            side(true, false, false, false),
        ],
        tls_contexts: vec![
            object(json!({
                "apiVersion": "legate.dev/v1alpha1", "kind": "TLSContext",
                "metadata": { "name": "edge-tls", "namespace": "infra", "generation": 1,
                              "creationTimestamp": "2026-01-01T00:00:00Z" },
                "spec": { "hosts": ["a.example.com"], "secret": "edge-cert" },
            })),
            // A tenant's claim on a host the Mappings contest: the frame is
            // judged again when their claims hand it over.
            object(json!({
                "apiVersion": "legate.dev/v1alpha1", "kind": "TLSContext",
                "metadata": { "name": "b-tls", "namespace": "red", "generation": 1,
                              "creationTimestamp": "2026-01-01T00:01:00Z" },
                "spec": { "hosts": ["b.example.com"], "secret": "b-cert",
                          "gateways": [{ "name": "edge", "namespace": "infra" }] },
            })),
        ],
        secrets: vec![edge_cert(&mut dice)],
        namespaces: NAMESPACES.iter().map(|n| namespace(n, "platform")).collect(),
        // Its Service is one the Mappings use too: changing it builds whole.
        auth_services: vec![object(json!({
            "apiVersion": "legate.dev/v1alpha1", "kind": "AuthService",
            "metadata": { "name": "auth", "namespace": "infra", "generation": 1,
                          "creationTimestamp": "2026-01-01T00:00:00Z" },
            "spec": { "service": "c.green:80", "protocol": "HTTP", "timeout": "1s",
                      "gateways": [{ "name": "edge" }] },
        }))],
        ..World::default()
    };
    let mut generations = [1i64; 24];
    for (i, generation) in generations.iter().enumerate().take(12) {
        world.mappings.push(random_mapping(&mut dice, i, *generation));
    }
    let mut quarantine = Quarantine::new();
    let mut incremental = Incremental::new();
    let steps = 400;
    for step in 0..steps {
        for _ in 0..=dice.roll(2) {
            match dice.roll(25) {
                // A Mapping added, changed or deleted.
                0..=9 => {
                    let i = dice.roll(generations.len());
                    let name = format!("m-{i}");
                    let at = world
                        .mappings
                        .iter()
                        .position(|m| m.metadata.name.as_deref() == Some(name.as_str()));
                    match at {
                        Some(at) if dice.one_in(3) => {
                            world.mappings.remove(at);
                        }
                        Some(at) => {
                            generations[i] += 1;
                            world.mappings[at] = random_mapping(&mut dice, i, generations[i]);
                        }
                        None => world.mappings.push(random_mapping(&mut dice, i, generations[i])),
                    }
                }
                // A Service appears, changes or goes.
                10..=12 => {
                    let (namespace, name) = (dice.pick(&NAMESPACES), dice.pick(&SERVICES));
                    let at = world.services.iter().position(|s| {
                        s.metadata.namespace.as_deref() == Some(namespace)
                            && s.metadata.name.as_deref() == Some(name)
                    });
                    match at {
                        Some(at) if dice.one_in(2) => {
                            world.services.remove(at);
                        }
                        Some(at) => world.services[at] = random_service(&mut dice, namespace, name),
                        None => world.services.push(random_service(&mut dice, namespace, name)),
                    }
                }
                // An EndpointSlice appears, changes or goes.
                13..=15 => {
                    let (namespace, service) = (dice.pick(&NAMESPACES), dice.pick(&SERVICES));
                    let n = dice.roll(2);
                    let name = format!("{service}-{n}");
                    let at = world.endpoint_slices.iter().position(|s| {
                        s.metadata.namespace.as_deref() == Some(namespace)
                            && s.metadata.name.as_deref() == Some(name.as_str())
                    });
                    let slice = random_slice(&mut dice, namespace, service, n);
                    match at {
                        Some(at) if dice.one_in(3) => {
                            world.endpoint_slices.remove(at);
                        }
                        Some(at) => world.endpoint_slices[at] = slice,
                        None => world.endpoint_slices.push(slice),
                    }
                }
                // Envoy refuses a Mapping, or takes one back.
                16..=17 => {
                    let i = dice.roll(generations.len());
                    // Now and then a TLSContext (part of the frame), else a Mapping.
                    let key = if dice.one_in(4) {
                        "TLSContext/red/b-tls".to_string()
                    } else {
                        format!("Mapping/{}/m-{i}", NAMESPACES[i % 3])
                    };
                    // On one Gateway or the other: a refusal stays on its own.
                    let gateway = if dice.one_in(2) {
                        "infra/edge"
                    } else {
                        "infra/side"
                    };
                    if !quarantine.remove(gateway, &key) {
                        quarantine.insert(gateway, &key, generations[i] - i64::from(dice.one_in(4)));
                    }
                }
                // The lists come in another order.
                18 => {
                    let turn = dice.roll(world.mappings.len().max(1));
                    world.mappings.rotate_left(turn);
                }
                // A Namespace's labels change, or one comes or goes (the
                // whole model is built again while a Gateway selects by label).
                19 => {
                    let i = dice.roll(4);
                    let team = dice.pick(&["platform", "apps"]);
                    match (i, world.namespaces.len()) {
                        (3, 3) => world.namespaces.push(namespace("extra", team)),
                        (3, _) => {
                            world.namespaces.pop();
                        }
                        _ => world.namespaces[i] = namespace(NAMESPACES[i], team),
                    }
                }
                // The second Gateway's spec changes: its selector, route
                // defaults or listeners.
                20 => {
                    let spec = &world.gateways[1].spec;
                    let mut select =
                        spec.allowed_routes.namespaces.from == legate_crds::gateway::FromNamespaces::Selector;
                    let mut defaults = spec.defaults.is_some();
                    let mut second = spec.listeners.len() > 1;
                    let mut owners = !spec.host_owners.is_empty();
                    match dice.roll(4) {
                        0 => select = !select,
                        1 => defaults = !defaults,
                        2 => owners = !owners,
                        _ => second = !second,
                    }
                    world.gateways[1] = side(select, defaults, second, owners);
                }
                // The CA Secret that `upstreamTls` names comes, changes or goes.
                21 | 22 => {
                    let namespace = dice.pick(&NAMESPACES);
                    let at = world.secrets.iter().position(|s| {
                        s.metadata.namespace.as_deref() == Some(namespace)
                            && s.metadata.name.as_deref() == Some("ca")
                    });
                    let ca = match dice.roll(3) {
                        0 => secret(namespace, "ca", "Opaque", &[("ca.crt", &cert_pem)]),
                        1 => secret(namespace, "ca", "Opaque", &[("ca.crt", "garbage")]),
                        _ => secret(namespace, "ca", "Opaque", &[]),
                    };
                    match at {
                        Some(at) if dice.one_in(3) => {
                            world.secrets.remove(at);
                        }
                        Some(at) => world.secrets[at] = ca,
                        None => world.secrets.push(ca),
                    }
                }
                // A Secret nobody reads changes.
                23 => {
                    let noise = secret("red", "noise", "Opaque", &[("x", "1")]);
                    match world
                        .secrets
                        .iter()
                        .position(|s| s.metadata.name.as_deref() == Some("noise"))
                    {
                        Some(at) => world.secrets[at] = noise,
                        None => world.secrets.push(noise),
                    }
                }
                // The TLSContext's certificate changes (whole again).
                _ => {
                    if dice.one_in(3) {
                        let at = world
                            .secrets
                            .iter()
                            .position(|s| s.metadata.name.as_deref() == Some("edge-cert"));
                        if let Some(at) = at {
                            world.secrets[at] = edge_cert(&mut dice);
                        }
                    }
                }
            }
        }
        check(&mut incremental, &world, &quarantine, &format!("step {step}"));
    }
    assert_eq!(
        incremental.whole_builds(),
        1,
        "every step follows the changes: only the first build is whole"
    );
}
