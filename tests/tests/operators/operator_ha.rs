//! Two operator replicas behind one address (a round-robin TCP balancer of
//! the test's own, standing in for the `legate-xds` Service), two Envoys of
//! one Gateway. The replicas agree: both Envoys are the leader's to judge,
//! so `Programmed` and deletion wait for both; killing the follower or the
//! leader drops no request, and the new leader programs both.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use legate_tests::api::{install_crds, wait_condition};
use legate_tests::http::{HttpClient, Traffic};
use legate_tests::net::{TcpBalancer, eventually, free_port, loopback};
use legate_tests::operator::{Operator, envoy_for_gateway};
use legate_tests::stage::{PATIENCE, Stage};
use legate_tests::{ControlPlane, Envoy, TestEnv};
use serde_json::json;

async fn holder(env: &TestEnv) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    leases.get_opt("legate-leader").await.ok()??.spec?.holder_identity
}

fn replica_args(name: &str, namespace: &str) -> Vec<String> {
    [
        "--leader-elect",
        "--identity",
        name,
        "--operator-namespace",
        namespace,
    ]
    .map(String::from)
    .to_vec()
}

async fn start_replica(env: &TestEnv, name: &str, port: u16, service: &TcpBalancer) -> Operator {
    let args = replica_args(name, &env.namespace);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Operator::start_with(env.control_plane, port, Some(service.addr()), &args).await
}

/// The proxies of `gateway` that `operator` counts as connected.
async fn connected(operator: &Operator, gateway: &str) -> Option<u64> {
    let text = HttpClient::http1()
        .get(&format!("http://{}/metrics", operator.metrics), None)
        .await
        .ok()?
        .text();
    let prefix = format!("legate_connected_proxies{{gateway=\"{gateway}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether an Envoy's routes (what it runs now) contain `needle`.
async fn routes_of(envoy: &Envoy) -> String {
    envoy
        .admin_get("/config_dump?resource=dynamic_route_configs")
        .await
}

async fn assert_both_route(envoys: [&Envoy; 2], needle: &str, expected: bool, when: &str) {
    for (i, envoy) in envoys.into_iter().enumerate() {
        let routes = routes_of(envoy).await;
        assert_eq!(
            routes.contains(needle),
            expected,
            "{when}: Envoy {} {} {needle}\n{routes}",
            i + 1,
            if expected {
                "does not route"
            } else {
                "still routes"
            },
        );
    }
}

#[tokio::test]
async fn two_replicas_agree_on_every_envoy_and_either_may_die_without_a_dropped_request() {
    // Its operators watch every namespace: on the binary's shared control
    // plane they would act on the other tests' objects, and they on its.
    let own = ControlPlane::own();
    let env = TestEnv::on(own.get()).await;
    install_crds(&env.client).await;
    let (port_a, port_b) = (free_port(), free_port());
    let service = TcpBalancer::start(vec![loopback(port_a), loopback(port_b)]).await;
    let a = start_replica(&env, "replica-a", port_a, &service).await;
    eventually("replica-a to lead", Duration::from_secs(20), || async {
        (holder(&env).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let b = start_replica(&env, "replica-b", port_b, &service).await;
    assert_eq!(
        holder(&env).await.as_deref(),
        Some("replica-a"),
        "a follower does not steal the Lease"
    );

    // Both Envoys connect through "the Service" while both replicas run:
    // whichever replica the balancer offers, they end up on the leader.
    let mut stage = Stage::with_env(env).await;
    let gateway = format!("{}/edge", stage.env.namespace);
    let second = envoy_for_gateway(&stage.env.client, &stage.env.namespace, "edge", "edge-local-2").await;
    eventually("the leader to count both Envoys", PATIENCE, || async {
        (connected(&a, &gateway).await == Some(2)).then_some(())
    })
    .await;
    assert_eq!(
        connected(&b, &gateway).await.unwrap_or(0),
        0,
        "the follower serves no Envoy: it could not judge them"
    );
    let counted = Instant::now();
    eventually("the Gateway's status to count both Envoys", PATIENCE, || async {
        let gateway = stage.object("Gateway", "edge").await?;
        (gateway.data["status"]["proxies"] == 2).then_some(())
    })
    .await;
    eprintln!(
        "both Envoys on the leader → the Gateway's status counts them: {} ms",
        counted.elapsed().as_millis()
    );

    // Programmed waits for both: the moment it is True, both run the route.
    stage
        .mapping("first", json!({ "prefix": "/first/", "service": "quote" }))
        .await;
    stage.condition("Mapping", "first", "Programmed", "True").await;
    assert_both_route([&stage.envoy, &second], "/first/", true, "Programmed=True").await;
    // Deletion waits for both: the moment the object is gone, neither routes it.
    stage.delete("Mapping", "first");
    stage.until_gone("Mapping", "first").await;
    assert_both_route([&stage.envoy, &second], "/first/", false, "once deleted").await;

    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    stage.condition("Mapping", "quote", "Programmed", "True").await;
    let traffic = Traffic::start(stage.url("/backend/x"), "shop.example.com");
    let second_traffic = Traffic::start(stage.url("/backend/y"), "shop.example.com");
    eventually("traffic to flow", PATIENCE, || async {
        (stage.get("/backend/z").await.status == 200).then_some(())
    })
    .await;

    // The follower dies: nothing it served, nothing lost.
    b.kill();
    let b = start_replica(&stage.env, "replica-b", port_b, &service).await;
    assert_eq!(
        connected(&a, &gateway).await,
        Some(2),
        "the leader still serves both"
    );

    // The leader dies: the other replica takes the Lease, both Envoys move to it.
    a.kill();
    let killed = Instant::now();
    stage
        .mapping("after", json!({ "prefix": "/after/", "service": "quote" }))
        .await;
    let programmed = tokio::time::timeout(
        Duration::from_secs(40),
        wait_condition(
            &stage.env.client,
            &stage.env.namespace,
            "Mapping",
            "after",
            "Programmed",
            "True",
            Duration::from_secs(45),
        ),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "replica-b wrote no status within 40 s of the crash\n{}",
            b.log_tail()
        )
    });
    eprintln!(
        "leader killed → new Mapping Programmed by the other replica: {} ms",
        killed.elapsed().as_millis()
    );
    assert_eq!(programmed["observedGeneration"], 1);
    assert_eq!(holder(&stage.env).await.as_deref(), Some("replica-b"));
    assert_eq!(
        connected(&b, &gateway).await,
        Some(2),
        "the new leader serves both Envoys\n{}",
        b.log_tail()
    );
    assert_both_route(
        [&stage.envoy, &second],
        "/after/",
        true,
        "Programmed=True on the new leader",
    )
    .await;
    stage.until_status("/after/x", 200).await;

    for (name, traffic) in [("first", traffic), ("second", second_traffic)] {
        let report = traffic.report().await;
        eprintln!(
            "{name} loop through both failovers: {} requests, {} failed",
            report.sent, report.failed
        );
        assert!(report.sent > 100, "traffic ran: {}", report.sent);
        assert_eq!(
            report.failed,
            0,
            "no request failed: {:?}\n{}",
            report.failures,
            b.log_tail()
        );
    }
    // A leader stopped the way Kubernetes stops it hands the Lease back on
    // its way out, so a successor need not wait for it to expire.
    b.stop();
    assert_eq!(
        holder(&stage.env).await.filter(|h| !h.is_empty()),
        None,
        "a leader that stops releases the Lease"
    );
    stage.envoy.stop();
}
