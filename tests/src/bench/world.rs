//! What the benchmark puts into the cluster: a namespace, an echo upstream
//! behind a Service, one steady route for the bystander client, and the
//! Mappings under test.

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use legate_crds::mapping::Mapping;
use serde_json::{Value, json};

use super::BenchError;
use super::stack::Stack;
use crate::{EchoServer, TestHost};

/// Every benchmark object lives here.
pub const NAMESPACE: &str = "bench";
pub const FIELD_MANAGER: &str = "legate-bench";
const SERVICE: &str = "echo";
const ECHO_PORT: u16 = 8080;

/// One Mapping's route: its name, Host header and prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub host: String,
    pub prefix: String,
}

impl Route {
    /// Mapping `i` of the load: host `h{i % hosts}.bench.test`, prefix `/m{i}/`.
    pub fn loaded(i: usize, hosts: usize) -> Route {
        Route::new(format!("m{i}"), i, hosts, format!("/m{i}/"))
    }

    pub fn new(name: String, i: usize, hosts: usize, prefix: String) -> Route {
        Route {
            name,
            host: format!("h{}.bench.test", i % hosts.max(1)),
            prefix,
        }
    }

    /// The route the bystander client loops on: a host no change touches.
    pub fn steady() -> Route {
        Route {
            name: "steady".into(),
            host: "steady.bench.test".into(),
            prefix: "/steady/".into(),
        }
    }

    /// The Mapping, as a user would write it.
    pub fn object(&self) -> Value {
        json!({
            "apiVersion": "legate.dev/v1alpha1", "kind": "Mapping",
            "metadata": { "name": self.name, "namespace": NAMESPACE },
            "spec": { "hostname": self.host, "prefix": self.prefix, "service": SERVICE },
        })
    }
}

/// The echo upstream; it stops (and its network namespace goes) when dropped.
#[derive(Debug)]
pub struct Upstream {
    // Declared first so that the server stops before its namespace goes.
    _echo: EchoServer,
    _host: TestHost,
}

/// The Mappings of the benchmark's namespace, untyped (as a user sends them).
pub fn mappings(stack: &Stack) -> Api<DynamicObject> {
    Api::namespaced_with(
        stack.client.clone(),
        NAMESPACE,
        &ApiResource::erase::<Mapping>(&()),
    )
}

/// The same, typed, for reading status.
pub fn typed_mappings(stack: &Stack) -> Api<Mapping> {
    Api::namespaced(stack.client.clone(), NAMESPACE)
}

/// The namespace, the echo server and its Service, and the steady route.
///
/// EndpointSlices refuse loopback addresses, so the echo server listens in a
/// test host (a network namespace with an address of its own), as in the
/// end-to-end tests.
pub async fn set_up(stack: &Stack) -> Result<Upstream, BenchError> {
    let namespaces: Api<Namespace> = Api::all(stack.client.clone());
    let namespace: Namespace = serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } }))
        .map_err(|e| BenchError::Failed(format!("building the namespace: {e}")))?;
    apply(&namespaces, NAMESPACE, &namespace).await?;

    let host = TestHost::create().map_err(|e| BenchError::Prerequisite(e.to_string()))?;
    let echo = host
        .start_echo("bench-echo", ECHO_PORT)
        .map_err(|e| BenchError::Prerequisite(e.to_string()))?;
    apply_service(stack, &host.addr().to_string()).await?;
    let steady = Route::steady();
    apply(&mappings(stack), &steady.name, &steady.object()).await?;
    Ok(Upstream {
        _echo: echo,
        _host: host,
    })
}

/// A selector-less Service with one EndpointSlice, as the EndpointSlice
/// controller would write it for a pod at `address`.
async fn apply_service(stack: &Stack, address: &str) -> Result<(), BenchError> {
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": { "name": SERVICE, "namespace": NAMESPACE },
        "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": ECHO_PORT }] }
    });
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{SERVICE}-1"), "namespace": NAMESPACE,
            "labels": { "kubernetes.io/service-name": SERVICE },
        },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": [address], "conditions": { "ready": true } }],
        "ports": [{ "name": "http", "port": ECHO_PORT, "protocol": "TCP" }]
    });
    let services = ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("", "v1", "Service"));
    let slices = ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
    ));
    let client = stack.client.clone();
    apply(
        &Api::<DynamicObject>::namespaced_with(client.clone(), NAMESPACE, &services),
        SERVICE,
        &service,
    )
    .await?;
    let slice_name = format!("{SERVICE}-1");
    apply(
        &Api::<DynamicObject>::namespaced_with(client, NAMESPACE, &slices),
        &slice_name,
        &slice,
    )
    .await
}

async fn apply<K, T>(api: &Api<K>, name: &str, object: &T) -> Result<(), BenchError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    T: serde::Serialize + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map(drop)
    .map_err(BenchError::kube(format!("applying {name}")))
}
