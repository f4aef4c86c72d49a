//! A test's stage for the operator's end-to-end tests: a namespace, a
//! Gateway that admits only this namespace, an Envoy standing in for its pod,
//! and a Service backed by an echo server on a test host.

use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{apply, get, install_crds, wait_condition};
use crate::http::HttpClient;
use crate::net::{eventually, free_port, loopback};
use crate::operator::{SharedOperator, envoy_for_gateway};
use crate::{EchoServer, Envoy, TestEnv, TestHost};

/// How long a test waits for the operator and Envoy to converge.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One test's world: a namespace, a Gateway that admits only this namespace,
/// an Envoy standing in for its pod, and a Service backed by an echo server
/// on a test host.
#[derive(Debug)]
pub struct Stage {
    pub env: TestEnv,
    /// The Gateway listener port (on 127.0.0.1).
    pub port: u16,
    pub envoy: Envoy,
    pub host: TestHost,
    _echoes: Vec<EchoServer>,
}

impl Stage {
    /// A stage served by the test binary's shared operator.
    pub async fn new() -> Stage {
        let env = TestEnv::new().await;
        // The operator becomes ready once it can list every Legate kind.
        install_crds(&env.client).await;
        SharedOperator::get(env.control_plane);
        Stage::with_env(env).await
    }

    /// A stage in `env`, for whichever operator the test runs.
    pub async fn with_env(env: TestEnv) -> Stage {
        install_crds(&env.client).await;
        let host = TestHost::create().unwrap_or_else(|e| panic!("{e}"));
        let echo = host.start_echo("quote-1", 8080).unwrap_or_else(|e| panic!("{e}"));
        let port = free_port();
        let stage_yaml = json!({
            "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway",
            "metadata": { "name": "edge" },
            "spec": {
                "serviceType": "ClusterIP", "replicas": 1,
                "listeners": [{ "name": "http", "port": port, "protocol": "HTTP" }],
                "allowedRoutes": { "namespaces": { "from": "Same" } },
            }
        });
        apply(&env.client, &env.namespace, &stage_yaml)
            .await
            .expect("the Gateway applies");
        Stage::service(&env, "quote", &host.addr().to_string()).await;
        let envoy = envoy_for_gateway(&env.client, &env.namespace, "edge", "edge-local-1").await;
        Stage {
            env,
            port,
            envoy,
            host,
            _echoes: vec![echo],
        }
    }

    /// A selector-less Service with one EndpointSlice (as the EndpointSlice
    /// controller would write for pods) pointing at `address:8080`.
    pub async fn service(env: &TestEnv, name: &str, address: &str) {
        let service = json!({
            "apiVersion": "v1", "kind": "Service", "metadata": { "name": name },
            "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] }
        });
        apply(&env.client, &env.namespace, &service)
            .await
            .expect("the Service applies");
        Stage::slice(env, name, &[(address, true)]).await;
    }

    pub async fn slice(env: &TestEnv, service: &str, endpoints: &[(&str, bool)]) {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|(a, ready)| json!({ "addresses": [a], "conditions": { "ready": ready } }))
            .collect();
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": { "name": format!("{service}-1"), "labels": { "kubernetes.io/service-name": service } },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }]
        });
        apply(&env.client, &env.namespace, &slice)
            .await
            .expect("the EndpointSlice applies");
    }

    pub async fn mapping(&self, name: &str, spec: Value) {
        let object = json!({ "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping", "metadata": { "name": name }, "spec": spec });
        apply(&self.env.client, &self.env.namespace, &object)
            .await
            .unwrap_or_else(|e| panic!("Mapping {name} was refused: {e}"));
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", loopback(self.port))
    }

    pub async fn get(&self, path: &str) -> crate::http::Response {
        HttpClient::http1()
            .get(&self.url(path), Some("shop.example.com"))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.envoy.log_tail()))
    }

    /// Waits until `path` answers `status` and returns the answer.
    pub async fn until_status(&self, path: &str, status: u16) -> crate::http::Response {
        let url = self.url(path);
        eventually(&format!("GET {url} to answer {status}"), PATIENCE, || async {
            let r = HttpClient::http1()
                .get(&url, Some("shop.example.com"))
                .await
                .ok()?;
            (r.status == status).then_some(r)
        })
        .await
    }

    /// A Legate object of this namespace as the API server has it now; None
    /// when it does not exist (or cannot be read).
    pub async fn object(&self, kind: &str, name: &str) -> Option<kube::api::DynamicObject> {
        get(
            &self.env.client,
            &self.env.namespace,
            "legate.dev/v1alpha1",
            kind,
            name,
        )
        .await
        .ok()?
    }

    /// `kubectl delete` of a Legate object of this namespace, returning at
    /// once: its finalizer may hold it until Envoy stops routing it.
    pub fn delete(&self, kind: &str, name: &str) {
        let out = self
            .env
            .control_plane
            .kubectl_command(&[
                "delete",
                &kind.to_lowercase(),
                name,
                "-n",
                &self.env.namespace,
                "--wait=false",
            ])
            .output()
            .unwrap_or_else(|e| panic!("running kubectl delete {kind} {name}: {e}"));
        assert!(out.status.success(), "kubectl delete {kind} {name}: {out:?}");
    }

    /// Waits until `kind` `name` of this namespace is gone (its finalizer
    /// released).
    pub async fn until_gone(&self, kind: &str, name: &str) {
        eventually(&format!("{kind} {name} to be gone"), PATIENCE, || async {
            self.object(kind, name).await.is_none().then_some(())
        })
        .await;
    }

    /// Waits until the clock is past the second in which `kind` `name` (of
    /// this namespace) was created: creation times count whole seconds, and
    /// where the older object wins, one created next must be younger.
    pub async fn past_creation_second(&self, kind: &str, name: &str) {
        let what = format!("the clock to pass the creation second of {kind} {name}");
        eventually(&what, PATIENCE, || async {
            let object = self.object(kind, name).await?;
            let created = object.metadata.creation_timestamp?.0;
            (k8s_openapi::jiff::Timestamp::now().as_second() > created.as_second()).then_some(())
        })
        .await;
    }

    /// Waits until condition `type_` has `reason`.
    pub async fn condition_reason(&self, kind: &str, name: &str, type_: &str, reason: &str) -> Value {
        self.condition_reason_in(&self.env.namespace, kind, name, type_, reason)
            .await
    }

    /// Waits until condition `type_` of an object in `namespace` (another
    /// tenant's, say) has `reason`.
    pub async fn condition_reason_in(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        type_: &str,
        reason: &str,
    ) -> Value {
        let what = format!("{kind} {namespace}/{name} to have {type_} with reason {reason}");
        eventually(&what, PATIENCE, || async {
            let object = get(&self.env.client, namespace, "legate.dev/v1alpha1", kind, name)
                .await
                .ok()??;
            let conditions = object.data["status"]["conditions"].as_array()?.clone();
            conditions
                .into_iter()
                .find(|c| c["type"] == type_ && c["reason"] == reason)
        })
        .await
    }

    /// Waits until `type_` has `status` for the object's `generation` (a
    /// condition of an older generation does not count).
    pub async fn condition_at(
        &self,
        kind: &str,
        name: &str,
        type_: &str,
        status: &str,
        generation: i64,
    ) -> Value {
        let what = format!("{kind} {name} to have {type_}={status} at generation {generation}");
        eventually(&what, PATIENCE, || async {
            let object = self.object(kind, name).await?;
            let conditions = object.data["status"]["conditions"].as_array()?.clone();
            conditions.into_iter().find(|c| {
                c["type"] == type_ && c["status"] == status && c["observedGeneration"] == generation
            })
        })
        .await
    }

    /// Labels `namespace` with `label`, valued after this stage's namespace,
    /// so that no other test's namespace carries it.
    pub fn label_namespace(&self, namespace: &str, label: &str) {
        self.env.control_plane.kubectl(&[
            "label",
            "namespace",
            namespace,
            &format!("{label}={}", self.env.namespace),
        ]);
    }

    /// `allowedRoutes.namespaces` admitting the namespaces
    /// [`Stage::label_namespace`] labelled with `label`.
    pub fn admits_labelled(&self, label: &str) -> Value {
        json!({ "from": "Selector", "selector": { "matchLabels": { label: self.env.namespace } } })
    }

    /// Waits until the object's current generation is `Programmed=True`:
    /// every Envoy runs what was just applied.
    pub async fn programmed_now(&self, kind: &str, name: &str) -> Value {
        let generation = self
            .object(kind, name)
            .await
            .and_then(|o| o.metadata.generation)
            .unwrap_or_else(|| panic!("{kind} {name} has a generation"));
        self.condition_at(kind, name, "Programmed", "True", generation)
            .await
    }

    pub async fn condition(&self, kind: &str, name: &str, type_: &str, status: &str) -> Value {
        wait_condition(
            &self.env.client,
            &self.env.namespace,
            kind,
            name,
            type_,
            status,
            PATIENCE,
        )
        .await
    }
}
