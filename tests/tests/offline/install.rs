//! Installing Legate the ways users do, checked on the repository's files
//! with no cluster: the manifests and the OLM bundle (generated == committed,
//! RBAC, kustomization, Deployment, Dockerfile), the bundle through the
//! operator-framework validators, `kind-config.yaml` through kind's own
//! decoder, `legate version`, and the README's commands, in order. Applying
//! `manifests/` to a real API server is the `install` test binary.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use legate_tests::api::documents;
use legate_tests::bundle::{self, Manifests};
use legate_tests::{tools, workspace};
use serde_json::{Value, json};

fn root() -> PathBuf {
    workspace::root()
}

fn manifests() -> Manifests {
    Manifests::read(&root()).unwrap_or_else(|e| panic!("{e}"))
}

fn read(path: &str) -> String {
    let full = root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

fn csv() -> Value {
    let docs = bundle::read_yaml(&root().join("olm-bundle/manifests/legate.clusterserviceversion.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    docs.into_iter().next().expect("the CSV file holds the CSV")
}

fn operator_container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

// --- the manifests and the bundle, on disk -------------------------------------

#[test]
fn the_committed_bundle_is_what_the_manifests_generate() {
    let root = root();
    let files = bundle::generated_files(&root).unwrap_or_else(|e| panic!("{e}"));
    let mut stale = Vec::new();
    for (path, text) in &files {
        match std::fs::read_to_string(root.join(path)) {
            Ok(committed) if committed == *text => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(_) => stale.push(format!("{} is missing", path.display())),
        }
    }
    let expected: BTreeSet<PathBuf> = files.into_iter().map(|(p, _)| p).collect();
    let dir = root.join("olm-bundle/manifests");
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let relative = Path::new("olm-bundle/manifests").join(entry.file_name());
        if !expected.contains(&relative) {
            stale.push(format!("{} is not generated", relative.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "olm-bundle/ has drifted from manifests/, examples/ and manifests/olm/:\n  {}\n\
         Regenerate with `{}` and commit the result.",
        stale.join("\n  "),
        bundle::REGENERATE_COMMAND
    );
}

#[test]
fn no_rbac_rule_uses_a_wildcard() {
    let manifests = manifests();
    let csv = csv();
    let mut rule_sets: Vec<(String, Value)> = Vec::new();
    for kind in ["ClusterRole", "Role"] {
        for role in manifests.all(kind) {
            rule_sets.push((format!("manifests/ {kind}"), role["rules"].clone()));
        }
    }
    let strategy = &csv["spec"]["install"]["spec"];
    for field in ["clusterPermissions", "permissions"] {
        for permission in strategy[field].as_array().into_iter().flatten() {
            rule_sets.push((format!("the CSV's {field}"), permission["rules"].clone()));
        }
    }
    assert!(rule_sets.len() >= 4, "RBAC rules were found: {rule_sets:?}");
    for (source, rules) in rule_sets {
        let rules = rules.as_array().cloned().unwrap_or_default();
        assert!(!rules.is_empty(), "{source} has no rules");
        for rule in rules {
            for field in [
                "apiGroups",
                "resources",
                "verbs",
                "resourceNames",
                "nonResourceURLs",
            ] {
                for value in strings(&rule[field]) {
                    assert!(!value.contains('*'), "{source}: {field} {value:?} in {rule}");
                }
            }
            assert!(
                !strings(&rule["verbs"]).is_empty(),
                "{source}: a rule without verbs: {rule}"
            );
            assert!(
                !strings(&rule["resources"]).is_empty(),
                "{source}: a rule without resources: {rule}"
            );
        }
    }
}

#[test]
fn the_bundles_install_strategy_is_the_manifests_deployment_and_rbac() {
    let manifests = manifests();
    let csv = csv();
    let strategy = &csv["spec"]["install"]["spec"];
    let account = manifests.one("ServiceAccount").unwrap_or_else(|e| panic!("{e}"));
    let account_name = &account["metadata"]["name"];
    let cluster_role = manifests.one("ClusterRole").unwrap_or_else(|e| panic!("{e}"));
    let role = manifests.one("Role").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        strategy["clusterPermissions"],
        json!([{ "serviceAccountName": account_name, "rules": cluster_role["rules"] }]),
        "the CSV's clusterPermissions differ from manifests/rbac.yaml's ClusterRole"
    );
    assert_eq!(
        strategy["permissions"],
        json!([{ "serviceAccountName": account_name, "rules": role["rules"] }]),
        "the CSV's permissions differ from manifests/rbac.yaml's Role"
    );
    let deployment = manifests.one("Deployment").unwrap_or_else(|e| panic!("{e}"));
    let deployments = strategy["deployments"].as_array().cloned().unwrap_or_default();
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(deployments[0]["name"], deployment["metadata"]["name"]);
    assert_eq!(
        deployments[0]["spec"], deployment["spec"],
        "the CSV's Deployment differs from manifests/deployment.yaml"
    );
    // The bindings bind that account to those roles.
    for (binding, role_kind) in [("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")] {
        let binding = manifests.one(binding).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(binding["roleRef"]["kind"], role_kind);
        assert_eq!(binding["subjects"][0]["name"], *account_name);
        assert_eq!(
            binding["subjects"][0]["namespace"],
            account["metadata"]["namespace"]
        );
    }
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        *account_name
    );
}

#[test]
fn every_rbac_rule_says_why_it_exists() {
    let text = read("manifests/rbac.yaml");
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("- apiGroups:") {
            rules += 1;
            let above = if i == 0 { "" } else { lines[i - 1].trim_start() };
            assert!(
                above.starts_with('#'),
                "manifests/rbac.yaml line {}: a rule without a comment above it saying why:\n{line}",
                i + 1
            );
        }
    }
    let in_roles: usize = ["ClusterRole", "Role"]
        .iter()
        .map(|k| {
            manifests()
                .all(k)
                .iter()
                .map(|r| r["rules"].as_array().map_or(0, Vec::len))
                .sum::<usize>()
        })
        .sum();
    assert_eq!(rules, in_roles, "every rule starts with `- apiGroups:`");
}

#[test]
fn the_kustomization_installs_every_manifest() {
    let dir = root().join("manifests");
    let listed: BTreeSet<PathBuf> = manifests().documents.into_iter().map(|(p, _)| p).collect();
    let mut files = Vec::new();
    for sub in [dir.clone(), dir.join("crds")] {
        for entry in std::fs::read_dir(&sub).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "yaml") && !path.ends_with("kustomization.yaml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        assert!(
            listed.contains(&file),
            "{} is not in manifests/kustomization.yaml",
            file.display()
        );
    }
}

#[test]
fn the_operator_deployment_is_highly_available_and_hardened() {
    let manifests = manifests();
    let deployment = manifests.one("Deployment").unwrap_or_else(|e| panic!("{e}"));
    let pod = &deployment["spec"]["template"]["spec"];
    let container = operator_container(deployment);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    for quantity in ["requests/cpu", "requests/memory", "limits/memory"] {
        let (kind, resource) = quantity.split_once('/').expect("kind/resource");
        assert!(
            container["resources"][kind][resource].is_string(),
            "the operator container sets no {quantity}"
        );
    }
    let ports: Vec<(String, i64)> = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["containerPort"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    for expected in [("xds", 18000), ("health", 8081), ("metrics", 9090)] {
        assert!(
            ports.contains(&(expected.0.to_string(), expected.1)),
            "container port {expected:?} missing: {ports:?}"
        );
    }
    let args = strings(&container["args"]);
    assert_eq!(args.first(), Some(&"run"), "{args:?}");
    for flag in ["--xds-listen=0.0.0.0:18000", "--health-listen=0.0.0.0:8081"] {
        assert!(args.contains(&flag), "{flag} missing from {args:?}");
    }
    assert!(
        args.iter()
            .any(|a| a.starts_with("--xds-advertise=legate-xds.$(POD_NAMESPACE).svc:18000")),
        "{args:?}"
    );
    for flag in ["--leader-elect", "--metrics-listen=0.0.0.0:9090"] {
        assert!(args.contains(&flag), "{flag} missing from {args:?}");
    }
    // Every flag the Deployment passes is one the binary knows.
    let help = Command::new(legate_binary())
        .args(["run", "--help"])
        .output()
        .expect("legate run --help runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for arg in args.iter().skip(1) {
        let flag = arg.split('=').next().unwrap_or(arg);
        assert!(
            help.contains(&format!("{flag} ")),
            "legate run has no {flag}:\n{help}"
        );
    }
    // The image is this version's, and the Services reach its named ports.
    assert_eq!(
        container["image"],
        format!("ghcr.io/legate-dev/legate:{}", bundle::VERSION)
    );
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for service in manifests.all("Service") {
        for (key, value) in service["spec"]["selector"].as_object().into_iter().flatten() {
            assert_eq!(
                &pod_labels[key], value,
                "{} selects {key}={value}",
                service["metadata"]["name"]
            );
        }
        for port in service["spec"]["ports"].as_array().into_iter().flatten() {
            let target = port["targetPort"].as_str().unwrap_or_default();
            assert!(
                ports.iter().any(|(name, _)| name == target),
                "{} targets port {target:?}, which the container lacks",
                service["metadata"]["name"]
            );
        }
    }
}

#[test]
fn the_dockerfile_builds_a_static_non_root_image() {
    let dockerfile = read("Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.trim_start().starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "a multi-stage build: {stages:?}");
    let last = stages.last().expect("a final stage");
    assert!(
        last.contains("distroless/static"),
        "a minimal static base: {last}"
    );
    let deployment = manifests()
        .one("Deployment")
        .cloned()
        .unwrap_or_else(|e| panic!("{e}"));
    let uid = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"].clone();
    assert!(
        dockerfile.contains(&format!("USER {uid}:{uid}")),
        "the image's user is the Deployment's runAsUser {uid}"
    );
    assert!(dockerfile.contains("ENTRYPOINT [\"/legate\"]"));
    assert!(dockerfile.contains("--locked"), "the build uses Cargo.lock");
    // The builder's Rust is at least the workspace's rust-version.
    let cargo_toml = read("Cargo.toml");
    let minimum = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("Cargo.toml has a rust-version");
    let builder = stages[0]
        .split("rust:")
        .nth(1)
        .and_then(|t| t.split('-').next())
        .unwrap_or_else(|| panic!("the builder is an official rust image: {}", stages[0]));
    let version = |v: &str| -> Vec<u32> { v.split('.').map(|n| n.parse().unwrap_or(0)).collect() };
    assert!(
        version(builder) >= version(&minimum),
        "the builder's Rust {builder} is older than rust-version {minimum}"
    );
    let ignore = read(".dockerignore");
    for excluded in ["/target/", "/.git/", "/.venv/"] {
        assert!(ignore.contains(excluded), ".dockerignore lacks {excluded}");
    }
}

#[test]
fn the_default_envoy_image_is_the_envoy_the_tests_run() {
    let version = legate_xds::ENVOY_VERSION;
    let image = legate_crds::gateway::DEFAULT_ENVOY_IMAGE;
    assert_eq!(image, format!("docker.io/envoyproxy/envoy:v{version}"));
    let installer = read("scripts/install-envoy.sh");
    assert!(
        installer.contains(&format!("${{ENVOY_VERSION:-{version}}}")),
        "scripts/install-envoy.sh installs another Envoy than {version}"
    );
    assert!(read("README.md").contains(image), "the README names {image}");
}

// --- the OLM bundle -------------------------------------------------------------

fn validate(dir: &Path) -> std::process::Output {
    tools::run(&[OsStr::new("validate-bundle"), dir.as_os_str()])
}

#[test]
fn the_bundle_passes_the_operator_framework_validators_with_operatorhub() {
    let output = validate(&root().join("olm-bundle"));
    assert!(
        output.status.success(),
        "the operator-framework validators refused olm-bundle/:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_validators_fail_the_test_on_an_error() {
    // A copy of the bundle whose CSV lost its provider, which OperatorHub
    // requires: the wrapper must exit non-zero and say so.
    // (Not tempfile's default ".tmp…" name: the bundle loader skips hidden directories.)
    let dir = tempfile::Builder::new()
        .prefix("legate-bundle-")
        .tempdir()
        .expect("a temp dir");
    for sub in ["manifests", "metadata"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        for entry in std::fs::read_dir(root().join("olm-bundle").join(sub))
            .expect("olm-bundle/ exists")
            .flatten()
        {
            std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).expect("copy");
        }
    }
    let mut broken = csv();
    if let Some(spec) = broken["spec"].as_object_mut() {
        spec.remove("provider");
    }
    std::fs::write(
        dir.path().join("manifests/legate.clusterserviceversion.yaml"),
        serde_json::to_string(&broken).expect("JSON"),
    )
    .expect("write");
    let output = validate(dir.path());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a broken bundle passed:\n{said}");
    assert!(said.contains("Error") && said.contains("Provider"), "{said}");
}

/// Does `path` (dots, as OLM descriptors write it) lead somewhere in `schema`?
fn schema_has(schema: &Value, path: &str) -> bool {
    let mut node = schema;
    for part in path.split('.') {
        let part = part.split('[').next().unwrap_or(part);
        let next = &node["properties"][part];
        if next.is_null() {
            return false;
        }
        node = if next["items"].is_object() {
            &next["items"]
        } else {
            next
        };
    }
    true
}

#[test]
fn every_descriptor_names_a_field_of_its_crd_and_every_kind_has_an_example() {
    let csv = csv();
    let manifests = manifests();
    let owned = csv["spec"]["customresourcedefinitions"]["owned"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let crds = manifests.crds();
    assert_eq!(owned.len(), crds.len(), "every CRD is owned by the CSV");
    let examples: Vec<Value> = serde_json::from_str(
        csv["metadata"]["annotations"]["alm-examples"]
            .as_str()
            .unwrap_or_default(),
    )
    .expect("alm-examples is a JSON array");
    for entry in owned {
        let (_, crd) = crds
            .iter()
            .find(|(_, c)| c["metadata"]["name"] == entry["name"])
            .unwrap_or_else(|| panic!("the CSV owns {}, which manifests/crds/ lacks", entry["name"]));
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
        for (descriptors, part) in [("specDescriptors", "spec"), ("statusDescriptors", "status")] {
            for d in entry[descriptors].as_array().into_iter().flatten() {
                let path = d["path"].as_str().unwrap_or_default();
                assert!(
                    schema_has(&schema[part], path),
                    "{} {descriptors}: {path:?} is not a field of {part}",
                    entry["kind"]
                );
                assert!(
                    d["displayName"].is_string() && d["description"].is_string(),
                    "{d}"
                );
            }
        }
        let conditions = entry["statusDescriptors"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| strings(&d["x-descriptors"]).contains(&"urn:alm:descriptor:io.kubernetes.conditions"));
        assert!(conditions, "the console shows {}'s conditions", entry["kind"]);
        assert!(
            examples.iter().any(|e| e["kind"] == entry["kind"]),
            "alm-examples has no {}",
            entry["kind"]
        );
    }
}

#[test]
fn the_bundle_image_labels_match_its_annotations() {
    let annotations = bundle::read_yaml(&root().join("olm-bundle/metadata/annotations.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let annotations = annotations[0]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(annotations.len() >= 6, "{annotations:?}");
    let dockerfile = read("olm-bundle/bundle.Dockerfile");
    let labels: BTreeSet<String> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("LABEL "))
        .map(str::to_string)
        .collect();
    let expected: BTreeSet<String> = annotations
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        labels, expected,
        "bundle.Dockerfile's labels and metadata/annotations.yaml"
    );
    let package = annotations["operators.operatorframework.io.bundle.package.v1"].as_str();
    assert_eq!(
        csv()["metadata"]["name"].as_str().map(|n| n.split('.').next()),
        Some(package),
        "the CSV is named after the package"
    );
}

// --- kind ---------------------------------------------------------------------------

#[test]
fn kind_config_decodes_strictly_and_maps_80_and_443_to_the_quickstart_gateway() {
    let output = tools::run(&[
        OsStr::new("kind-config"),
        root().join("kind-config.yaml").as_os_str(),
    ]);
    assert!(
        output.status.success(),
        "kind refused kind-config.yaml:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cluster: Value = serde_json::from_slice(&output.stdout).expect("the decoded config as JSON");
    let gateway = &documents(&read("examples/quickstart/gateway.yaml"))[0];
    assert_eq!(gateway["spec"]["serviceType"], "NodePort");
    let node_port = |listener: &str| {
        gateway["spec"]["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == listener)
            .map(|l| l["nodePort"].clone())
            .unwrap_or_else(|| panic!("the quickstart Gateway has no {listener} listener"))
    };
    let mappings = cluster["nodes"][0]["extraPortMappings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (host_port, listener) in [(80, "http"), (443, "https")] {
        let mapping = mappings
            .iter()
            .find(|m| m["hostPort"] == host_port)
            .unwrap_or_else(|| panic!("kind-config.yaml maps no host port {host_port}: {mappings:?}"));
        assert_eq!(
            mapping["containerPort"],
            node_port(listener),
            "host port {host_port}"
        );
        assert_eq!(mapping["listenAddress"], "127.0.0.1", "only on this machine");
    }

    // The check is strict: a misspelt field is refused.
    let dir = tempfile::tempdir().expect("a temp dir");
    let misspelt = dir.path().join("kind-config.yaml");
    std::fs::write(
        &misspelt,
        read("kind-config.yaml").replace("extraPortMappings", "extraPortMapping"),
    )
    .expect("write");
    let output = tools::run(&[OsStr::new("kind-config"), misspelt.as_os_str()]);
    assert!(!output.status.success(), "a misspelt field was accepted");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("extraPortMapping"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// --- the binary and the README ------------------------------------------------------

fn legate_binary() -> PathBuf {
    legate_tests::operator::binary().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn legate_version_prints_the_version_the_commit_and_the_envoy_api() {
    let output = Command::new(legate_binary())
        .arg("version")
        .output()
        .expect("legate version runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!("legate {}\n", bundle::VERSION)),
        "{text}"
    );
    assert!(text.contains("api: legate.dev/v1alpha1"), "{text}");
    assert!(
        text.contains(&format!("envoy: {} (xDS v3", legate_xds::ENVOY_VERSION)),
        "{text}"
    );
    let commit = text
        .lines()
        .find_map(|l| l.strip_prefix("commit: "))
        .unwrap_or_else(|| panic!("no commit line: {text}"));
    assert!(
        commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "a short commit hash (the tests run in a git checkout): {commit:?}"
    );
    let known = Command::new("git")
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .current_dir(root())
        .status()
        .expect("git runs");
    assert!(known.success(), "{commit} is not a commit of this repository");
}

/// The commands of the first ```sh block after `heading`, one per line, with
/// continuation lines joined and comments dropped.
fn commands_after(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no {heading:?}"));
    let block = readme[start..]
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or_else(|| panic!("no ```sh block after {heading:?}"));
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let line = line.split(" # ").next().unwrap_or(line).trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                commands.push(std::mem::take(&mut current));
            }
        }
    }
    commands
}

#[test]
fn the_readme_cluster_quickstart_has_every_command_in_order() {
    let readme = read("README.md");
    let commands = commands_after(&readme, "### Quickstart on kind");
    let image = operator_container(manifests().one("Deployment").unwrap_or_else(|e| panic!("{e}")))["image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mapping = &documents(&read("examples/quickstart/mapping.yaml"))[0];
    let prefix = mapping["spec"]["prefix"].as_str().unwrap_or_default().to_string();
    let tls = &documents(&read("examples/quickstart/tlscontext.yaml"))[0];
    let secret = tls["spec"]["secret"].as_str().unwrap_or_default().to_string();
    let host = tls["spec"]["hosts"][0].as_str().unwrap_or_default().to_string();
    let steps: Vec<(&str, String)> = vec![
        (
            "create the cluster",
            "kind create cluster --config kind-config.yaml".into(),
        ),
        ("build the image", format!("docker build -t {image} ")),
        (
            "load it into kind",
            format!("kind load docker-image {image} --name legate"),
        ),
        ("install", "kubectl apply --server-side -k manifests/".into()),
        (
            "wait for the operator",
            "kubectl wait --for=condition=Available deployment/legate -n legate-system".into(),
        ),
        ("make a certificate", format!("-subj /CN={host}")),
        ("store it", format!("kubectl create secret tls {secret} ")),
        (
            "apply the example",
            "kubectl apply -f examples/quickstart/".into(),
        ),
        (
            "wait for the Gateway",
            "kubectl wait --for=condition=Programmed".into(),
        ),
        ("curl over HTTP", format!("curl -s http://localhost{prefix}")),
        (
            "curl over HTTPS",
            format!("--resolve {host}:443:127.0.0.1 https://{host}{prefix}"),
        ),
    ];
    let mut at = 0;
    for (what, needle) in &steps {
        let found = commands[at..]
            .iter()
            .position(|c| c.contains(needle.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "the quickstart does not {what} ({needle:?}) after {:?}:\n{}",
                    commands.get(at.wrapping_sub(1)),
                    commands.join("\n")
                )
            });
        at += found + 1;
    }
    // Every file and directory of this repository it names exists.
    for command in &commands {
        for word in command.split_whitespace() {
            let word = word.trim_matches(|c| c == '"' || c == '\'');
            let local = word.ends_with(".yaml") || word.ends_with('/');
            if local && !word.contains(':') && !word.starts_with(['-', '/']) {
                assert!(
                    root().join(word).exists(),
                    "the quickstart names {word}, which does not exist"
                );
            }
        }
    }
    // The local path and the test command are there too.
    for section in ["make run", "make test", "OperatorHub", "Troubleshooting"] {
        assert!(readme.contains(section), "README.md lacks {section}");
    }
}

#[test]
fn the_readme_explains_every_condition_reason_and_shows_every_kind() {
    let readme = read("README.md");
    let troubleshooting = readme
        .split("## Troubleshooting")
        .nth(1)
        .unwrap_or_else(|| panic!("README.md has no ## Troubleshooting"));
    let troubleshooting = troubleshooting.split("\n## ").next().unwrap_or(troubleshooting);
    let conditions = read("crds/src/conditions.rs");
    let reasons = conditions
        .split("pub mod reasons")
        .nth(1)
        .expect("crds/src/conditions.rs has a reasons module");
    let mut count = 0;
    for line in reasons.lines().take_while(|l| !l.starts_with('}')) {
        if let Some(value) = line.split('"').nth(1) {
            count += 1;
            assert!(
                troubleshooting.contains(&format!("`{value}`")),
                "## Troubleshooting does not explain the reason `{value}`"
            );
        }
    }
    assert!(count >= 10, "reasons were read from crds/src/conditions.rs");
    let reference = readme
        .split("## Reference")
        .nth(1)
        .unwrap_or_else(|| panic!("README.md has no ## Reference"));
    for (_, crd) in manifests().crds() {
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
        assert!(
            reference.contains(&format!("kind: {kind}\n")),
            "## Reference shows no example {kind}"
        );
    }
}
