//! The reader's rules: what is filled in, skipped, replaced, and what errors say.

use std::net::Ipv4Addr;

use kube::ResourceExt;

use super::*;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn read(yaml: &str) -> Result<Snapshot, SnapshotError> {
    let mut reader = Reader::new(LOCALHOST);
    reader.read_str(Path::new("in.yaml"), yaml)?;
    Ok(reader.finish())
}

const OBJECTS: &str = r#"
# A comment, then an empty document.
---
apiVersion: legate.dev/v1alpha1
kind: Gateway
metadata: { name: edge, namespace: infra }
spec: {}
---
apiVersion: legate.dev/v1alpha1
kind: Mapping
metadata: { name: quote, generation: 4, creationTimestamp: "2020-01-01T00:00:00Z" }
spec: { prefix: /, service: quote }
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: { name: quote }
    spec: { ports: [{ port: 80 }] }
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: { name: quote-1, labels: { kubernetes.io/service-name: quote } }
    addressType: IPv4
    endpoints: [{ addresses: [10.0.0.1] }]
---
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { team: shop } }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: quote }
"#;

#[test]
fn objects_get_what_the_api_server_would_fill_in() {
    let snapshot = read(OBJECTS).expect("valid objects");
    let world = &snapshot.world;
    assert_eq!(world.listen_address, LOCALHOST);
    let gateway = &world.gateways[0];
    assert_eq!(gateway.namespace().as_deref(), Some("infra"));
    assert_eq!(gateway.meta().generation, Some(1));
    assert_eq!(gateway.spec.listeners.len(), 2, "the CRD's defaults apply");
    let mapping = &world.mappings[0];
    assert_eq!(mapping.namespace().as_deref(), Some("default"));
    assert_eq!(mapping.meta().generation, Some(4), "a generation given is kept");
    assert_eq!(
        mapping
            .meta()
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
        Some("2020-01-01T00:00:00Z".to_string())
    );
    assert_eq!(world.services[0].namespace().as_deref(), Some("default"));
    assert_eq!(world.services[0].meta().generation, None, "only Legate kinds");
    assert_eq!(world.endpoint_slices[0].name_any(), "quote-1");
    assert_eq!(
        world.namespaces[0].namespace(),
        None,
        "Namespaces are cluster-wide"
    );
    let created: Vec<String> = [
        gateway.meta(),
        world.services[0].meta(),
        world.endpoint_slices[0].meta(),
        world.namespaces[0].meta(),
    ]
    .iter()
    .map(|m| {
        m.creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default()
    })
    .collect();
    assert_eq!(
        created,
        [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:02Z",
            "2024-01-01T00:00:03Z",
            "2024-01-01T00:00:04Z"
        ],
        "one second apart, in the order read"
    );
    assert_eq!(snapshot.warnings.len(), 1);
    assert_eq!(
        snapshot.warnings[0].to_string(),
        "in.yaml, document 5: skipped Deployment \"quote\" (apps/v1): Legate does not read it"
    );
}

#[test]
fn secrets_are_kept_as_the_operator_keeps_them() {
    let snapshot = read(
        r#"
apiVersion: v1
kind: Secret
metadata: { name: cert }
type: kubernetes.io/tls
data: { tls.crt: Y2VydA==, tls.key: a2V5 }
---
apiVersion: v1
kind: Secret
metadata: { name: ca }
stringData: { ca.crt: bundle, password: hunter2 }
---
apiVersion: v1
kind: Secret
metadata: { name: login }
type: kubernetes.io/basic-auth
stringData: { username: a, password: b }
"#,
    )
    .expect("valid Secrets");
    let secrets = &snapshot.world.secrets;
    assert_eq!(secrets.len(), 2, "the basic-auth Secret is not read");
    let keys = |s: &Secret| {
        s.data
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&secrets[0]), ["tls.crt", "tls.key"]);
    assert_eq!(
        keys(&secrets[1]),
        [CA_BUNDLE_KEY],
        "an Opaque Secret keeps its CA bundle only"
    );
    assert_eq!(secrets[1].type_.as_deref(), Some("Opaque"));
    assert_eq!(secrets[1].string_data, None);
    assert!(snapshot.warnings[0].message.contains("kubernetes.io/basic-auth"));
}

#[test]
fn a_later_object_replaces_an_earlier_one_and_keeps_its_age() {
    let snapshot = read(
        r#"
apiVersion: legate.dev/v1alpha1
kind: Mapping
metadata: { name: quote }
spec: { prefix: /a/, service: quote }
---
apiVersion: legate.dev/v1alpha1
kind: Mapping
metadata: { name: other }
spec: { prefix: /b/, service: quote }
---
apiVersion: legate.dev/v1alpha1
kind: Mapping
metadata: { name: quote }
spec: { prefix: /c/, service: quote }
"#,
    )
    .expect("valid Mappings");
    let mappings = &snapshot.world.mappings;
    assert_eq!(mappings.len(), 2);
    assert_eq!(mappings[0].spec.prefix.as_deref(), Some("/c/"));
    assert_eq!(
        mappings[0]
            .meta()
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
        Some("2024-01-01T00:00:00Z".to_string())
    );
    assert_eq!(
        snapshot.warnings[0].to_string(),
        "in.yaml, document 3: Mapping/default/quote replaces the one read at in.yaml, document 1"
    );
}

#[test]
fn errors_name_the_file_the_document_and_the_object() {
    let e = read("a: [\n").expect_err("not YAML");
    assert!(matches!(e, SnapshotError::Yaml { .. }), "{e}");
    assert!(e.to_string().starts_with("in.yaml is not valid YAML"), "{e}");

    let e = read("apiVersion: legate.dev/v1alpha1\nkind: Gateway\nmetadata: { name: a }\nspec: {}\n---\napiVersion: legate.dev/v1alpha1\nkind: Mapping\nmetadata: { name: quote }\nspec: { weight: heavy }\n")
        .expect_err("a weight is a number");
    assert!(
        e.to_string()
            .starts_with("in.yaml, document 2: Mapping \"quote\" is not valid: "),
        "{e}"
    );
    assert!(std::error::Error::source(&e).is_some(), "the cause is kept");

    let e = read("apiVersion: legate.dev/v1beta1\nkind: Mapping\nmetadata: { name: q }\n")
        .expect_err("unknown version");
    assert!(
        e.to_string()
            .contains("does not know Mapping of apiVersion legate.dev/v1beta1"),
        "{e}"
    );
    let e = read("apiVersion: legate.dev/v1alpha1\nkind: Route\nmetadata: { name: q }\n")
        .expect_err("unknown kind");
    assert!(matches!(e, SnapshotError::UnknownLegateKind { .. }), "{e}");

    let e = read("apiVersion: v1\nkind: List\nitems: [{ apiVersion: v1, kind: Service }]\n")
        .expect_err("no name");
    assert_eq!(
        e.to_string(),
        "in.yaml, document 1, item 1: Service without metadata.name"
    );
    let e = read("just text\n").expect_err("not an object");
    assert!(matches!(e, SnapshotError::NotAnObject { .. }), "{e}");
}

#[test]
fn folders_give_their_yaml_files_in_path_order() {
    let dir = std::env::temp_dir().join(format!("legate-snapshot-test-{}", std::process::id()));
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).expect("a temporary folder");
    for (name, text) in [
        (
            "b.yml",
            "apiVersion: v1\nkind: Namespace\nmetadata: { name: b }\n",
        ),
        (
            "a.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: { name: a }\n",
        ),
        ("notes.txt", "not YAML: ["),
        (
            "sub/c.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: { name: c }\n",
        ),
    ] {
        std::fs::write(dir.join(name), text).expect("a test file");
    }
    let names = |recursive| -> Vec<String> {
        let snapshot = read_paths(std::slice::from_ref(&dir), recursive, LOCALHOST).expect("readable");
        snapshot.world.namespaces.iter().map(|n| n.name_any()).collect()
    };
    assert_eq!(names(false), ["a", "b"]);
    assert_eq!(names(true), ["a", "b", "c"]);
    let empty = read_paths(std::slice::from_ref(&sub.join("missing")), false, LOCALHOST);
    assert!(matches!(empty, Err(SnapshotError::Read { .. })));
    std::fs::remove_dir_all(&dir).expect("removing the temporary folder");
}
