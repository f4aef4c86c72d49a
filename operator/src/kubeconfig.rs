//! A Kubernetes client from `--kubeconfig`, else from the environment
//! (`KUBECONFIG`, `~/.kube/config`, or in a pod its ServiceAccount): for
//! `legate run` and for the commands that read the cluster.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading kubeconfig {path}: {source}; check the file --kubeconfig names")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "finding the Kubernetes API: {source}; in a pod, mount the ServiceAccount token, \
         elsewhere set KUBECONFIG or pass --kubeconfig"
    )]
    Infer {
        #[source]
        source: kube::config::InferConfigError,
    },
    #[error("making a Kubernetes client: {source}")]
    Client {
        #[source]
        source: kube::Error,
    },
}

/// The client for `kubeconfig`, or for what the environment says.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, ClientError> {
    let config = match kubeconfig {
        Some(path) => {
            let unreadable = |source| ClientError::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let kubeconfig = Kubeconfig::read_from(path).map_err(unreadable)?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(unreadable)?
        }
        None => Config::infer()
            .await
            .map_err(|source| ClientError::Infer { source })?,
    };
    Client::try_from(config).map_err(|source| ClientError::Client { source })
}
