//! The stack that `tests/stack.sh up DIR` left running, as the benchmark
//! needs it: what DIR/env says, the operator's pid and log, and the name of
//! the xDS cluster in the Envoy's bootstrap.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::BenchError;

/// A running stack.
#[derive(Clone)]
pub struct Stack {
    pub dir: PathBuf,
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    /// The Gateway's HTTP listener on the local Envoy.
    pub http: SocketAddr,
    pub envoy_admin: SocketAddr,
    pub operator_pid: u32,
    pub operator_log: PathBuf,
    /// The bootstrap's cluster that the Envoy reaches the operator's xDS server through.
    pub xds_cluster: String,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Reads what `tests/stack.sh up DIR` wrote into `dir`.
    pub async fn open(dir: &Path) -> Result<Stack, BenchError> {
        let env_file = dir.join("env");
        let text = std::fs::read_to_string(&env_file).map_err(|e| {
            BenchError::Prerequisite(format!(
                "reading {}: {e}; start the stack first: tests/stack.sh up {}",
                env_file.display(),
                dir.display()
            ))
        })?;
        let env = parse_env(&text);
        let var = |key: &str| {
            env.get(key).cloned().ok_or_else(|| {
                BenchError::Prerequisite(format!(
                    "{} has no {key}: was it written by tests/stack.sh up?",
                    env_file.display()
                ))
            })
        };
        let addr = |key: &str| -> Result<SocketAddr, BenchError> {
            let value = var(key)?;
            value.parse().map_err(|e| {
                BenchError::Prerequisite(format!("{key}={value} in {}: {e}", env_file.display()))
            })
        };
        let kubeconfig = PathBuf::from(var("KUBECONFIG")?);
        let kubectl = PathBuf::from(var("LEGATE_K8S_BIN")?).join("kubectl");
        if !kubectl.is_file() {
            return Err(BenchError::Prerequisite(format!(
                "{} is missing; build the control plane binaries: make controlplane",
                kubectl.display()
            )));
        }
        Ok(Stack {
            client: client(&kubeconfig).await?,
            http: addr("LEGATE_HTTP")?,
            envoy_admin: addr("LEGATE_ENVOY_ADMIN")?,
            operator_pid: operator_pid(dir)?,
            operator_log: dir.join("run").join("legate.log"),
            xds_cluster: xds_cluster(&dir.join("run").join("envoy.yaml"))?,
            dir: dir.to_path_buf(),
            kubeconfig,
            kubectl,
        })
    }
}

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

async fn client(kubeconfig: &Path) -> Result<Client, BenchError> {
    let what = || format!("loading the kubeconfig {}", kubeconfig.display());
    let parsed =
        Kubeconfig::read_from(kubeconfig).map_err(|e| BenchError::Failed(format!("{}: {e}", what())))?;
    let config = kube::Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
        .await
        .map_err(|e| BenchError::Failed(format!("{}: {e}", what())))?;
    Client::try_from(config).map_err(BenchError::kube("building a Kubernetes client"))
}

fn operator_pid(dir: &Path) -> Result<u32, BenchError> {
    let file = dir.join("run").join("legate.pid");
    let text =
        std::fs::read_to_string(&file).map_err(BenchError::io(format!("reading {}", file.display())))?;
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|e| BenchError::Failed(format!("{} does not hold a pid: {e}", file.display())))?;
    if !Path::new(&format!("/proc/{pid}/stat")).exists() {
        return Err(BenchError::Failed(format!(
            "the operator (pid {pid} from {}) is not running; see {}",
            file.display(),
            dir.join("run").join("legate.log").display()
        )));
    }
    Ok(pid)
}

/// The cluster the bootstrap's ADS config names: the Envoy's connection to the operator.
fn xds_cluster(bootstrap: &Path) -> Result<String, BenchError> {
    let text = std::fs::read_to_string(bootstrap)
        .map_err(BenchError::io(format!("reading {}", bootstrap.display())))?;
    let yaml: serde_json::Value = serde_saphyr::from_str(&text)
        .map_err(|e| BenchError::Failed(format!("{} is not YAML: {e}", bootstrap.display())))?;
    yaml.pointer("/dynamic_resources/ads_config/grpc_services/0/envoy_grpc/cluster_name")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            BenchError::Failed(format!(
                "{} has no dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name",
                bootstrap.display()
            ))
        })
}
