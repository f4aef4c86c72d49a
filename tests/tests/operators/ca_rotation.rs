//! The xDS CA rotates without breaking a reconnect: the next CA signs only
//! once every Gateway's certificate Secret trusts it, so an Envoy started
//! from its Gateway's Secret as it was the moment the rotation happened
//! connects and serves, and the xDS server's certificate then chains to the
//! new CA.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use legate_tests::api::install_crds;
use legate_tests::net::{eventually, free_port};
use legate_tests::operator::{Operator, XDS_TLS_DIR};
use legate_tests::stage::Stage;
use legate_tests::{Envoy, TestEnv};
use serde_json::json;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const CA_SECRET: &str = "legate-xds-ca";
const PROMOTED: &str = "legate.dev/ca-promoted-at";
/// The first CA is made when the operator starts and valid for 200 s; the
/// next one is prepared when it has 170 s left, so after 30 s, once the
/// Envoy serves. Then every Gateway's Secret must carry it for 3 s.
const LIFETIMES: [&str; 12] = [
    "--xds-ca-validity",
    "200s",
    "--xds-ca-rotate-before",
    "170s",
    "--xds-leaf-validity",
    "60s",
    "--xds-leaf-renew-before",
    "20s",
    "--xds-ca-check-interval",
    "1s",
    "--xds-ca-settle",
    "3s",
];
/// The first rotation is due 30 s after start, and then needs the Gateway's
/// Secret reissued and settled.
const ROTATION_PATIENCE: Duration = Duration::from_secs(90);

fn text(data: &BTreeMap<String, ByteString>, key: &str) -> String {
    String::from_utf8(data.get(key).map(|b| b.0.clone()).unwrap_or_default()).unwrap_or_default()
}

/// Starts an Envoy for Gateway `edge` with its bootstrap and the certificate
/// files of `secret`, as a pod that mounted that Secret would.
async fn envoy_with(client: &kube::Client, namespace: &str, secret: &BTreeMap<String, ByteString>) -> Envoy {
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let bootstrap = configmaps
        .get("edge-envoy")
        .await
        .ok()
        .and_then(|c| c.data?.get("envoy.yaml").cloned())
        .expect("the Gateway's bootstrap");
    let dir = tempfile::Builder::new()
        .prefix("legate-xds-tls-")
        .tempdir()
        .expect("a temp dir");
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        std::fs::write(dir.path().join(key), text(secret, key)).expect("writing a certificate file");
    }
    let bootstrap = bootstrap.replace(XDS_TLS_DIR, &dir.path().display().to_string());
    let mut envoy = Envoy::start_with_args(&bootstrap, &["--service-node", "edge-after-rotation"]).await;
    envoy.keep(dir);
    envoy
}

/// Whether a TLS connection to the xDS server, trusting `ca` only and
/// presenting the Gateway's certificate, succeeds.
async fn server_chains_to(
    xds: std::net::SocketAddr,
    ca: &str,
    gateway: &BTreeMap<String, ByteString>,
) -> bool {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(
            text(gateway, "tls.crt"),
            text(gateway, "tls.key"),
        ))
        .domain_name("localhost");
    let Ok(endpoint) = Channel::from_shared(format!("https://{xds}")) else {
        return false;
    };
    let Ok(endpoint) = endpoint.tls_config(tls) else {
        return false;
    };
    endpoint
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .is_ok()
}

#[tokio::test]
async fn an_envoy_started_from_its_secret_as_the_ca_rotates_connects_and_serves() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let namespace = env.namespace.clone();
    let client = env.client.clone();
    // Its CA lives in the test's namespace, not in the legate-system that
    // the other tests' operators share.
    let mut args = vec!["--namespace", &namespace, "--operator-namespace", &namespace];
    args.extend(LIFETIMES);
    let operator = Operator::start_with(env.control_plane, free_port(), None, &args).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let signer = |secret: &Secret| text(&secret.data.clone().unwrap_or_default(), "ca.crt");
    let first = signer(&secrets.get(CA_SECRET).await.expect("the CA Secret"));

    let mut stage = Stage::with_env(env).await;
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    stage.until_status("/backend/x", 200).await;

    // The Gateway's Secret as it is read just before the CA Secret first
    // shows the rotation promoted: what a pod that restarts at that moment
    // would mount.
    let (mounted, promoted_signer) = eventually(
        "the CA Secret to say a next CA was promoted",
        ROTATION_PATIENCE,
        || {
            let secrets = secrets.clone();
            let first = first.clone();
            async move {
                let gateway = secrets.get("edge-envoy-xds").await.ok()?.data?;
                let ca = secrets.get(CA_SECRET).await.ok()?;
                let promoted = ca.metadata.annotations.as_ref()?.contains_key(PROMOTED);
                let now = signer(&ca);
                (promoted && now != first).then_some((gateway, now))
            }
        },
    )
    .await;

    // The Envoy restarts with what it mounted: it connects and serves.
    stage.envoy.stop();
    stage.envoy = envoy_with(&client, &namespace, &mounted).await;
    stage.until_status("/backend/x", 200).await;
    assert!(
        text(&mounted, "ca.crt").contains(promoted_signer.trim()),
        "the Gateway's Secret trusted the new CA before it signed"
    );

    // The server's certificate is the new CA's (each replica follows the CA
    // Secret within a check), and not the first CA's.
    let _ = eventually(
        "the xDS server's certificate to chain to the new CA",
        Duration::from_secs(20),
        || async {
            let ca = secrets.get(CA_SECRET).await.ok()?;
            let current = signer(&ca);
            let gateway = secrets.get("edge-envoy-xds").await.ok()?.data?;
            (current != first && server_chains_to(operator.xds, &current, &gateway).await).then_some(gateway)
        },
    )
    .await;
    let gateway = secrets
        .get("edge-envoy-xds")
        .await
        .ok()
        .and_then(|s| s.data)
        .expect("the Gateway's Secret");
    assert!(
        !server_chains_to(operator.xds, &first, &gateway).await,
        "the xDS server's certificate no longer chains to the first CA\n{}",
        operator.log_tail()
    );
}
