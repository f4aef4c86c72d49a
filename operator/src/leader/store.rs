//! The three Lease calls the election makes, behind a trait so that tests
//! can make them hang or race.

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;

pub trait LeaseStore: Send + Sync + 'static {
    /// The Lease, or None when it does not exist.
    fn get(&self) -> impl Future<Output = Result<Option<Lease>, kube::Error>> + Send;
    fn create(&self, lease: &Lease) -> impl Future<Output = Result<Lease, kube::Error>> + Send;
    /// A compare-and-swap: fails with 409 unless `lease` carries the stored
    /// resourceVersion.
    fn replace(&self, lease: &Lease) -> impl Future<Output = Result<Lease, kube::Error>> + Send;
}

/// The Lease `name` in the API server.
#[derive(Clone, Debug)]
pub struct KubeLeases {
    pub api: Api<Lease>,
    pub name: String,
}

impl LeaseStore for KubeLeases {
    fn get(&self) -> impl Future<Output = Result<Option<Lease>, kube::Error>> + Send {
        self.api.get_opt(&self.name)
    }

    async fn create(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        self.api.create(&PostParams::default(), lease).await
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        self.api.replace(&self.name, &PostParams::default(), lease).await
    }
}
