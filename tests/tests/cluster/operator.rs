//! The operator end to end: `kubectl apply` a Mapping, and Envoy routes to
//! the Service within moments while the conditions and Events tell the story.

use std::time::{Duration, Instant};

use legate_tests::api::{apply, get, wait_condition};
use legate_tests::net::{eventually, loopback};
use legate_tests::stage::{PATIENCE, Stage};
use legate_tests::{Envoy, TestEnv, TestHost};
use serde_json::json;

#[tokio::test]
async fn an_applied_mapping_answers_through_envoy_and_says_programmed() {
    let stage = Stage::new().await;
    let applied = Instant::now();
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    let response = stage.until_status("/backend/probe", 200).await;
    eprintln!(
        "apply → first 200 through Envoy: {} ms",
        applied.elapsed().as_millis()
    );
    let echo = response.echo();
    assert_eq!(echo.backend, "quote-1");
    assert_eq!(
        echo.path, "/probe",
        "the default rewrite replaces the prefix with /"
    );
    assert_eq!(echo.header("x-envoy-original-path"), Some("/backend/probe"));

    for type_ in ["Accepted", "ResolvedRefs", "Programmed"] {
        let c = stage.condition("Mapping", "quote", type_, "True").await;
        assert_eq!(c["observedGeneration"], 1, "{type_}: {c}");
    }
    let gateway = stage.condition("Gateway", "edge", "Programmed", "True").await;
    assert!(
        gateway["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1 connected"),
        "{gateway}"
    );

    let describe =
        stage
            .env
            .control_plane
            .kubectl(&["describe", "mapping", "quote", "-n", &stage.env.namespace]);
    for expected in [
        "Accepted",
        "ResolvedRefs",
        "Programmed",
        "Every connected Envoy runs generation 1",
        "Events:",
    ] {
        assert!(
            describe.contains(expected),
            "kubectl describe lacks {expected:?}:\n{describe}"
        );
    }
    assert!(
        describe.contains("Normal   Programmed") || describe.contains("Normal  Programmed"),
        "an Event says Programmed:\n{describe}"
    );
}

#[tokio::test]
async fn changing_a_mapping_changes_routing_and_deleting_it_stops_it_first() {
    let stage = Stage::new().await;
    stage
        .mapping("quote", json!({ "prefix": "/v1/", "service": "quote" }))
        .await;
    stage.until_status("/v1/x", 200).await;

    stage
        .mapping("quote", json!({ "prefix": "/v2/", "service": "quote" }))
        .await;
    stage.until_status("/v2/x", 200).await;
    assert_eq!(
        stage.get("/v1/x").await.status,
        404,
        "the old prefix no longer routes"
    );
    // Programmed=True of generation 1 may still be there a moment: wait for
    // the truth about generation 2, which must come.
    let c = stage
        .condition_at("Mapping", "quote", "Programmed", "True", 2)
        .await;
    assert_eq!(c["observedGeneration"], 2);

    stage.delete("Mapping", "quote");
    // The object goes away only once Envoy has stopped routing it: the moment it
    // is gone, the route must already answer 404.
    stage.until_gone("Mapping", "quote").await;
    assert_eq!(
        stage.get("/v2/x").await.status,
        404,
        "deleted means no longer routed"
    );
}

#[tokio::test]
async fn deleting_one_of_two_mappings_on_a_service_is_confirmed_by_envoy_not_by_the_timeout() {
    // The Service's cluster stays (the other Mapping uses it) and its body is
    // unchanged: only who it serves changes. The deletion must still be
    // released by Envoy's ACK, not by the 10-second grace.
    let stage = Stage::new().await;
    stage
        .mapping("keep", json!({ "prefix": "/keep/", "service": "quote" }))
        .await;
    stage
        .mapping("leave", json!({ "prefix": "/leave/", "service": "quote" }))
        .await;
    stage.condition("Mapping", "keep", "Programmed", "True").await;
    stage.condition("Mapping", "leave", "Programmed", "True").await;
    stage.delete("Mapping", "leave");
    let started = Instant::now();
    stage.until_gone("Mapping", "leave").await;
    eprintln!("delete → gone: {} ms", started.elapsed().as_millis());
    let timeouts = stage.env.control_plane.kubectl(&[
        "get",
        "events",
        "-n",
        &stage.env.namespace,
        "--field-selector",
        "reason=DeletionTimeout",
        "-o",
        "name",
    ]);
    assert!(
        timeouts.trim().is_empty(),
        "the deletion waited out the grace instead of Envoy's confirmation: {timeouts}"
    );
    assert_eq!(stage.get("/leave/x").await.status, 404);
    assert_eq!(stage.get("/keep/x").await.status, 200);
}

#[tokio::test]
async fn a_missing_backend_answers_503_and_says_backend_not_found() {
    let stage = Stage::new().await;
    stage
        .mapping("ghost", json!({ "prefix": "/ghost/", "service": "ghost" }))
        .await;
    let c = stage.condition("Mapping", "ghost", "ResolvedRefs", "False").await;
    assert_eq!(c["reason"], "BackendNotFound");
    assert!(
        c["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ghost does not exist"),
        "{c}"
    );
    stage.until_status("/ghost/x", 503).await;
}

#[tokio::test]
async fn a_regex_that_does_not_compile_is_invalid_and_others_keep_working() {
    let stage = Stage::new().await;
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    stage
        .mapping(
            "orders",
            json!({ "pathRegex": "^/orders/([0-9]+$", "service": "quote" }),
        )
        .await;
    let c = stage.condition("Mapping", "orders", "Accepted", "False").await;
    assert_eq!(c["reason"], "Invalid");
    assert!(
        c["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.pathRegex"),
        "{c}"
    );
    stage.until_status("/backend/x", 200).await;
}

#[tokio::test]
async fn a_second_namespace_claiming_the_same_route_is_conflicted_and_gets_no_traffic() {
    let stage = Stage::new().await;
    // Let a second namespace attach to this test's Gateway, by label.
    let label = stage.env.namespace.clone();
    let other = TestEnv::new().await;
    stage.env.control_plane.kubectl(&[
        "label",
        "namespace",
        &other.namespace,
        &format!("legate-test-peer={label}"),
    ]);
    stage.env.control_plane.kubectl(&[
        "label",
        "namespace",
        &stage.env.namespace,
        &format!("legate-test-peer={label}"),
    ]);
    let gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
        "spec": { "serviceType": "ClusterIP", "replicas": 1,
                  "listeners": [{ "name": "http", "port": stage.port, "protocol": "HTTP" }],
                  "allowedRoutes": { "namespaces": { "from": "Selector", "selector": { "matchLabels": { "legate-test-peer": label } } } } }
    });
    apply(&stage.env.client, &stage.env.namespace, &gateway)
        .await
        .expect("the Gateway applies");
    // On the catch-all, which no namespace owns (on a host, the owner alone
    // routes: see the tenancy tests).
    stage
        .mapping(
            "shop",
            json!({ "hostname": "*", "prefix": "/", "service": "quote", "gateways": [{ "name": "edge" }] }),
        )
        .await;
    stage.until_status("/", 200).await;
    // The intruder's Mapping must be the younger one.
    stage.past_creation_second("Mapping", "shop").await;

    let intruder = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping", "metadata": { "name": "shop" },
        "spec": { "hostname": "*", "prefix": "/", "service": "elsewhere",
                  "gateways": [{ "name": "edge", "namespace": stage.env.namespace }] }
    });
    apply(&other.client, &other.namespace, &intruder)
        .await
        .expect("the intruder applies");
    let c = wait_condition(
        &other.client,
        &other.namespace,
        "Mapping",
        "shop",
        "Accepted",
        "False",
        PATIENCE,
    )
    .await;
    assert_eq!(c["reason"], "Conflicted");
    assert!(
        c["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("{}/shop", stage.env.namespace)),
        "{c}"
    );
    for _ in 0..20 {
        assert_eq!(
            stage.get("/").await.echo().backend,
            "quote-1",
            "the older Mapping keeps all traffic"
        );
    }
}

#[tokio::test]
async fn a_mapping_that_envoy_rejects_is_rejected_and_envoy_keeps_the_rest() {
    let stage = Stage::new().await;
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    stage.until_status("/backend/x", 200).await;
    // Valid RE2, but far above Envoy's default regex program size limit (100):
    // the API server and the operator accept it, Envoy refuses it.
    stage
        .mapping(
            "greedy",
            json!({ "pathRegex": "^/(a{1,50}b{1,50}c{1,50}){1,10}$", "service": "quote" }),
        )
        .await;
    let rejected = stage
        .condition_reason("Mapping", "greedy", "Programmed", "Rejected")
        .await;
    assert_eq!(rejected["status"], "False");
    let message = rejected["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("program size"),
        "the condition quotes Envoy: {message}"
    );
    let describe =
        stage
            .env
            .control_plane
            .kubectl(&["describe", "mapping", "greedy", "-n", &stage.env.namespace]);
    assert!(
        describe.contains("Warning  Rejected"),
        "a Warning Event says Rejected:\n{describe}"
    );
    stage.until_status("/backend/x", 200).await;
    let quote = stage.condition("Mapping", "quote", "Programmed", "True").await;
    assert_eq!(quote["reason"], "Programmed");
}

#[tokio::test]
async fn endpoint_changes_reach_envoy_without_a_listener_or_route_push() {
    let stage = Stage::new().await;
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    stage.until_status("/backend/x", 200).await;
    stage.condition("Mapping", "quote", "Programmed", "True").await;
    let lds = stage.envoy.stat("listener_manager.lds.update_success").await;
    let rds_before = route_updates(&stage.envoy).await;

    // A second backend appears on another test host, then the first turns not ready.
    let second = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
    let _echo = second
        .start_echo("quote-2", 8080)
        .unwrap_or_else(|e| panic!("{e}"));
    let first = stage.host.addr().to_string();
    let second_addr = second.addr().to_string();
    Stage::slice(&stage.env, "quote", &[(&first, true), (&second_addr, true)]).await;
    eventually("both backends to answer", PATIENCE, || async {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            seen.insert(stage.get("/backend/x").await.echo().backend);
        }
        (seen.len() == 2).then_some(())
    })
    .await;
    Stage::slice(&stage.env, "quote", &[(&first, false), (&second_addr, true)]).await;
    eventually("only quote-2 to answer", PATIENCE, || async {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..10 {
            seen.insert(stage.get("/backend/x").await.echo().backend);
        }
        (seen.len() == 1 && seen.contains("quote-2")).then_some(())
    })
    .await;
    assert_eq!(
        stage.envoy.stat("listener_manager.lds.update_success").await,
        lds,
        "no listener push"
    );
    assert_eq!(route_updates(&stage.envoy).await, rds_before, "no route push");
}

/// Successful RDS updates across every route configuration.
async fn route_updates(envoy: &Envoy) -> u64 {
    let text = envoy.admin_get("/stats?filter=rds\\..*\\.update_success").await;
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn an_idle_operator_writes_nothing_for_a_minute() {
    let stage = Stage::new().await;
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    stage.until_status("/backend/x", 200).await;
    stage.condition("Mapping", "quote", "Programmed", "True").await;
    stage.condition("Gateway", "edge", "Programmed", "True").await;
    // Let the last status writes and Events land.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let state = || async {
        let mut versions = Vec::new();
        for (api_version, kind, name) in [
            ("legate.dev/v1alpha1", "Gateway", "edge"),
            ("legate.dev/v1alpha1", "Mapping", "quote"),
            ("apps/v1", "Deployment", "edge-envoy"),
            ("v1", "Service", "edge-envoy"),
            ("v1", "ConfigMap", "edge-envoy"),
            ("v1", "ServiceAccount", "edge-envoy"),
        ] {
            let object = get(&stage.env.client, &stage.env.namespace, api_version, kind, name)
                .await
                .unwrap_or_else(|e| panic!("reading {kind} {name}: {e}"))
                .unwrap_or_else(|| panic!("{kind} {name} exists"));
            versions.push(format!(
                "{kind}/{name}@{}",
                object.metadata.resource_version.unwrap_or_default()
            ));
        }
        let events = stage.env.control_plane.kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            &stage.env.namespace,
            "-o",
            "name",
        ]);
        (versions, events.lines().count())
    };
    let before = state().await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = state().await;
    eprintln!(
        "idle for {}s: {} objects and {} Events unchanged",
        started.elapsed().as_secs(),
        before.0.len(),
        before.1
    );
    assert_eq!(before, after, "nothing was written while nothing changed");
}

/// The value of an unlabelled series (or the sum over a family) in `/metrics`.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_show_the_pipeline_and_change_to_ack_moves_when_a_mapping_is_applied() {
    let stage = Stage::new().await;
    let operator = legate_tests::operator::SharedOperator::get(stage.env.control_plane);
    let url = format!("http://{}/metrics", operator.metrics);
    let scrape = || async {
        legate_tests::http::HttpClient::http1()
            .get(&url, None)
            .await
            .expect("/metrics answers")
            .text()
    };
    let before = metric(&scrape().await, "legate_change_to_ack_seconds_count");
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    stage.condition("Mapping", "quote", "Programmed", "True").await;
    let text = eventually("change_to_ack to count the Mapping", PATIENCE, || async {
        let text = scrape().await;
        (metric(&text, "legate_change_to_ack_seconds_count") > before).then_some(text)
    })
    .await;
    for family in [
        "legate_reconciles",
        "legate_reconcile_duration_seconds",
        "legate_reconciles_in_flight",
        "legate_translation_duration_seconds",
        "legate_snapshot_version",
        "legate_connected_proxies",
        "legate_xds_resources_pushed",
        "legate_xds_acks",
        "legate_xds_nacks",
        "legate_change_to_ack_seconds",
        "legate_leader",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "/metrics lacks {family}:\n{text}"
        );
    }
    assert!(metric(&text, "legate_reconciles_total") > 0.0, "{text}");
    assert!(metric(&text, "legate_xds_acks_total") > 0.0, "{text}");
    assert!(metric(&text, "legate_connected_proxies") >= 1.0, "{text}");
}

#[tokio::test]
async fn two_gateways_serve_only_what_they_admit_and_one_bad_object_spares_the_other() {
    let team_a = Stage::new().await;
    let team_b = Stage::new().await;
    team_a
        .mapping("shop", json!({ "prefix": "/shop/", "service": "quote" }))
        .await;
    team_b
        .mapping("blog", json!({ "prefix": "/blog/", "service": "quote" }))
        .await;
    team_a.until_status("/shop/x", 200).await;
    team_b.until_status("/blog/x", 200).await;
    assert_eq!(
        team_a.get("/blog/x").await.status,
        404,
        "Gateway A does not serve team B's Mapping"
    );
    assert_eq!(
        team_b.get("/shop/x").await.status,
        404,
        "Gateway B does not serve team A's Mapping"
    );

    // Team A pushes something Envoy refuses; team B does not notice.
    team_a
        .mapping(
            "greedy",
            json!({ "pathRegex": "^/(a{1,50}b{1,50}c{1,50}){1,10}$", "service": "quote" }),
        )
        .await;
    team_a
        .condition_reason("Mapping", "greedy", "Programmed", "Rejected")
        .await;
    team_b
        .mapping("news", json!({ "prefix": "/news/", "service": "quote" }))
        .await;
    team_b.until_status("/news/x", 200).await;
    for name in ["blog", "news"] {
        let c = team_b.condition("Mapping", name, "Programmed", "True").await;
        assert_eq!(c["reason"], "Programmed", "{name}: {c}");
    }
    team_a.until_status("/shop/x", 200).await;
}

#[tokio::test]
async fn a_tls_context_serves_https_for_its_hosts() {
    let stage = Stage::new().await;
    let https_port = legate_tests::net::free_port();
    // Make the stage's Gateway also listen for HTTPS.
    let gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
        "spec": { "serviceType": "ClusterIP", "replicas": 1,
                  "listeners": [{ "name": "http", "port": stage.port, "protocol": "HTTP" },
                                { "name": "https", "port": https_port, "protocol": "HTTPS" }],
                  "allowedRoutes": { "namespaces": { "from": "Same" } } }
    });
    apply(&stage.env.client, &stage.env.namespace, &gateway)
        .await
        .expect("the Gateway applies");
    // A CA and a certificate for shop.example.com, in a kubernetes.io/tls Secret.
    let ca_key = rcgen::KeyPair::generate().expect("a key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("a CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = rcgen::CertificateParams::new(vec!["shop.example.com".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("a certificate");
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "shop-tls" }, "type": "kubernetes.io/tls",
        "stringData": { "tls.crt": cert.pem(), "tls.key": key.serialize_pem() }
    });
    apply(&stage.env.client, &stage.env.namespace, &secret)
        .await
        .expect("the Secret applies");
    let context = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "TLSContext", "metadata": { "name": "shop" },
        "spec": { "hosts": ["shop.example.com"], "secret": "shop-tls" }
    });
    apply(&stage.env.client, &stage.env.namespace, &context)
        .await
        .expect("the TLSContext applies");
    stage
        .mapping(
            "shop",
            json!({ "hostname": "shop.example.com", "prefix": "/", "service": "quote" }),
        )
        .await;
    let ca_pem = ca.pem();
    let addr = loopback(https_port);
    // The listener (and its certificate) can arrive a moment before the
    // route: wait for the answer, not just the handshake.
    let answer = eventually("HTTPS for shop.example.com to answer 200", PATIENCE, || async {
        legate_tests::http::https_get(addr, "shop.example.com", &ca_pem, "/cart")
            .await
            .ok()
            .filter(|r| r.status == 200)
    })
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.echo().path, "/cart");
    stage.condition("TLSContext", "shop", "Programmed", "True").await;
}

#[tokio::test]
async fn a_tcp_mapping_proxies_a_gateway_port_to_its_service() {
    let stage = Stage::new().await;
    let tcp_port = legate_tests::net::free_port();
    let gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
        "spec": { "serviceType": "ClusterIP", "replicas": 1,
                  "listeners": [{ "name": "http", "port": stage.port, "protocol": "HTTP" },
                                { "name": "raw", "port": tcp_port, "protocol": "TCP" }],
                  "allowedRoutes": { "namespaces": { "from": "Same" } } }
    });
    apply(&stage.env.client, &stage.env.namespace, &gateway)
        .await
        .expect("the Gateway applies");
    let tcp = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "TCPMapping", "metadata": { "name": "raw" },
        "spec": { "port": tcp_port, "service": "quote:80" }
    });
    apply(&stage.env.client, &stage.env.namespace, &tcp)
        .await
        .expect("the TCPMapping applies");
    // HTTP is just bytes to a TCP proxy: the echo server answers through it.
    let url = format!("http://{}/through-tcp", loopback(tcp_port));
    let answer = eventually("the TCP listener to proxy to the Service", PATIENCE, || async {
        legate_tests::http::HttpClient::http1()
            .get(&url, None)
            .await
            .ok()
            .filter(|r| r.status == 200)
    })
    .await;
    assert_eq!(
        answer.echo().path,
        "/through-tcp",
        "no HTTP routing on a TCP port: the path is untouched"
    );
    stage.condition("TCPMapping", "raw", "Programmed", "True").await;
}
