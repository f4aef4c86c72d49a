//! The API as users meet it: the generated CRDs on the real API server,
//! defaults, admission errors, kubectl get and explain.

use legate_tests::TestEnv;
use legate_tests::api::{apply, create, documents, install_crds};
use legate_tests::workspace;
use serde_json::{Value, json};

async fn env_with_crds() -> TestEnv {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    env
}

fn legate(kind: &str, name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "legate.dev/v1alpha1", "kind": kind, "metadata": { "name": name }, "spec": spec })
}

#[tokio::test]
async fn every_example_is_accepted_by_server_side_apply() {
    let env = env_with_crds().await;
    let dir = workspace::root().join("examples");
    let mut applied = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(&path).expect("readable example");
        for doc in documents(&text) {
            let name = format!("{} {}", doc["kind"], doc["metadata"]["name"]);
            apply(&env.client, &env.namespace, &doc)
                .await
                .unwrap_or_else(|e| panic!("{} ({name}) was refused: {e}", path.display()));
            applied.push((doc["kind"].as_str().unwrap_or_default().to_string(), name));
        }
    }
    for kind in [
        "Gateway",
        "Mapping",
        "TLSContext",
        "AuthService",
        "RateLimitService",
        "TCPMapping",
    ] {
        assert!(applied.iter().any(|(k, _)| k == kind), "examples/ has no {kind}");
    }
}

#[tokio::test]
async fn the_api_server_applies_the_defaults() {
    let env = env_with_crds().await;
    let mapping = apply(
        &env.client,
        &env.namespace,
        &legate("Mapping", "quote", json!({ "prefix": "/q/", "service": "quote" })),
    )
    .await
    .expect("a minimal Mapping is accepted");
    let spec = &mapping.data["spec"];
    assert_eq!(spec["hostname"], "*");
    assert_eq!(spec["rewrite"], "/");
    assert_eq!(spec["caseSensitive"], true);
    assert_eq!(spec["precedence"], 0);

    let gateway = apply(&env.client, &env.namespace, &legate("Gateway", "edge", json!({})))
        .await
        .expect("an empty Gateway is accepted");
    let spec = &gateway.data["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["serviceType"], "LoadBalancer");
    assert_eq!(spec["image"], legate_crds::gateway::DEFAULT_ENVOY_IMAGE);
    assert_eq!(
        spec["listeners"],
        json!([
            { "name": "http", "port": 8080, "protocol": "HTTP" },
            { "name": "https", "port": 8443, "protocol": "HTTPS" }
        ])
    );
    assert_eq!(spec["allowedRoutes"], json!({ "namespaces": { "from": "All" } }));
    assert_eq!(spec.get("autoscaling"), None, "no autoscaling unless asked for");

    let scaled = apply(
        &env.client,
        &env.namespace,
        &legate(
            "Gateway",
            "scaled",
            json!({ "autoscaling": { "maxReplicas": 4 } }),
        ),
    )
    .await
    .expect("a Gateway with only maxReplicas is accepted");
    assert_eq!(
        scaled.data["spec"]["autoscaling"],
        json!({ "minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 80 })
    );

    let redirect = apply(
        &env.client,
        &env.namespace,
        &legate(
            "Mapping",
            "moved",
            json!({ "prefix": "/old/", "redirect": { "host": "new.example.com" } }),
        ),
    )
    .await
    .expect("a redirect Mapping is accepted");
    assert_eq!(redirect.data["spec"]["redirect"]["responseCode"], 301);

    let tls = apply(
        &env.client,
        &env.namespace,
        &legate(
            "TLSContext",
            "tls",
            json!({ "hosts": ["a.example.com"], "secret": "a-tls" }),
        ),
    )
    .await
    .expect("a minimal TLSContext is accepted");
    assert_eq!(tls.data["spec"]["insecure"]["action"], "Redirect");

    let auth = apply(
        &env.client,
        &env.namespace,
        &legate("AuthService", "auth", json!({ "service": "auth:3000" })),
    )
    .await
    .expect("a minimal AuthService is accepted");
    assert_eq!(auth.data["spec"]["timeout"], "5s");
    assert_eq!(auth.data["spec"]["protocol"], "HTTP");
}

/// One object the API server must refuse, and what its message must say.
struct Invalid {
    what: &'static str,
    kind: &'static str,
    spec: Value,
    /// The field the message must name.
    field: &'static str,
    /// A phrase of the message that says what is allowed.
    says: &'static str,
}

fn invalid(
    what: &'static str,
    kind: &'static str,
    spec: Value,
    field: &'static str,
    says: &'static str,
) -> Invalid {
    Invalid {
        what,
        kind,
        spec,
        field,
        says,
    }
}

fn invalid_objects() -> Vec<Invalid> {
    let m = |extra: Value| {
        let mut spec = json!({ "prefix": "/a/", "service": "svc" });
        if let (Some(base), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        spec
    };
    vec![
        // Mapping: matching
        invalid(
            "no match kind",
            "Mapping",
            json!({ "service": "svc" }),
            "spec",
            "exactly one of prefix, path or pathRegex",
        ),
        invalid(
            "two match kinds",
            "Mapping",
            m(json!({ "path": "/a" })),
            "spec",
            "exactly one of prefix, path or pathRegex",
        ),
        invalid(
            "prefix without a leading slash",
            "Mapping",
            m(json!({ "prefix": "api/" })),
            "spec.prefix",
            "should match '^/'",
        ),
        invalid(
            "exact path without a leading slash",
            "Mapping",
            json!({ "path": "x", "service": "s" }),
            "spec.path",
            "should match '^/'",
        ),
        invalid(
            "hostname with a space",
            "Mapping",
            m(json!({ "hostname": "shop example.com" })),
            "spec.hostname",
            "should match",
        ),
        invalid(
            "glob in the middle of a hostname",
            "Mapping",
            m(json!({ "hostname": "a.*.example.com" })),
            "spec.hostname",
            "should match",
        ),
        invalid(
            "lower-case method",
            "Mapping",
            m(json!({ "method": "get" })),
            "spec.method",
            "should match '^[A-Z]+$'",
        ),
        invalid(
            "header name with a space",
            "Mapping",
            m(json!({ "headers": { "x bad": "1" } })),
            "spec.headers",
            "header names may contain only",
        ),
        invalid(
            "regex header name with a colon",
            "Mapping",
            m(json!({ "regexHeaders": { "x:y": ".*" } })),
            "spec.regexHeaders",
            "header names may contain only",
        ),
        // Mapping: destination
        invalid(
            "neither service nor redirect",
            "Mapping",
            json!({ "prefix": "/a/" }),
            "spec",
            "either service",
        ),
        invalid(
            "both service and redirect",
            "Mapping",
            m(json!({ "redirect": { "host": "b.example.com" } })),
            "spec",
            "not both",
        ),
        invalid(
            "service with an underscore",
            "Mapping",
            m(json!({ "service": "my_svc" })),
            "spec.service",
            "should match",
        ),
        invalid(
            "service URL with a bad scheme",
            "Mapping",
            m(json!({ "service": "ftp://files.example.com" })),
            "spec.service",
            "should match",
        ),
        invalid(
            "weight above 100",
            "Mapping",
            m(json!({ "weight": 101 })),
            "spec.weight",
            "less than or equal to 100",
        ),
        invalid(
            "negative weight",
            "Mapping",
            m(json!({ "weight": -1 })),
            "spec.weight",
            "greater than or equal to 0",
        ),
        // Mapping: redirects
        invalid(
            "redirect with path and prefix",
            "Mapping",
            json!({ "prefix": "/a/", "redirect": { "path": "/x", "prefix": "/y/" } }),
            "spec.redirect",
            "at most one of path, prefix or regex",
        ),
        invalid(
            "redirect with a 404",
            "Mapping",
            json!({ "prefix": "/a/", "redirect": { "host": "b.example.com", "responseCode": 404 } }),
            "spec.redirect.responseCode",
            "301, 302, 303, 307 or 308",
        ),
        // Mapping: durations
        invalid(
            "timeout in words",
            "Mapping",
            m(json!({ "timeout": "3 seconds" })),
            "spec.timeout",
            "should match",
        ),
        invalid(
            "zero timeout",
            "Mapping",
            m(json!({ "timeout": "0s" })),
            "spec.timeout",
            "must be a positive duration",
        ),
        invalid(
            "negative idle timeout",
            "Mapping",
            m(json!({ "idleTimeout": "-1s" })),
            "spec.idleTimeout",
            "should match",
        ),
        invalid(
            "per-try timeout without a unit",
            "Mapping",
            m(json!({ "retryPolicy": { "perTryTimeout": "5" } })),
            "spec.retryPolicy.perTryTimeout",
            "should match",
        ),
        invalid(
            "CORS maxAge not a duration",
            "Mapping",
            m(json!({ "cors": { "maxAge": "forever" } })),
            "spec.cors.maxAge",
            "should match",
        ),
        // Mapping: policies
        invalid(
            "negative retries",
            "Mapping",
            m(json!({ "retryPolicy": { "numRetries": -1 } })),
            "spec.retryPolicy.numRetries",
            "greater than or equal to 0",
        ),
        invalid(
            "zero max connections",
            "Mapping",
            m(json!({ "circuitBreakers": { "maxConnections": 0 } })),
            "spec.circuitBreakers.maxConnections",
            "greater than or equal to 1",
        ),
        invalid(
            "unknown load balancer policy",
            "Mapping",
            m(json!({ "loadBalancer": { "policy": "Random" } })),
            "spec.loadBalancer.policy",
            "Unsupported value",
        ),
        invalid(
            "hashOn with RoundRobin",
            "Mapping",
            m(json!({ "loadBalancer": { "policy": "RoundRobin", "hashOn": { "sourceIp": true } } })),
            "spec.loadBalancer.hashOn",
            "only used by the RingHash and Maglev",
        ),
        invalid(
            "hashOn with two properties",
            "Mapping",
            m(
                json!({ "loadBalancer": { "policy": "Maglev", "hashOn": { "sourceIp": true, "header": "x-user" } } }),
            ),
            "spec.loadBalancer.hashOn",
            "exactly one of header, cookie or sourceIp",
        ),
        invalid(
            "added request header with a bad name",
            "Mapping",
            m(json!({ "addRequestHeaders": { "x(1)": { "value": "v" } } })),
            "spec.addRequestHeaders",
            "header names may contain only",
        ),
        invalid(
            "removed response header with a bad name",
            "Mapping",
            m(json!({ "removeResponseHeaders": ["bad header"] })),
            "spec.removeResponseHeaders[0]",
            "should match",
        ),
        invalid(
            "rate limit entry with two kinds",
            "Mapping",
            m(json!({ "rateLimits": [{ "entries": [{ "remoteAddress": {}, "destinationCluster": {} }] }] })),
            "spec.rateLimits[0].entries[0]",
            "exactly one of genericKey, requestHeader, remoteAddress or destinationCluster",
        ),
        invalid(
            "local rate limit of zero requests",
            "Mapping",
            m(json!({ "localRateLimit": { "requests": 0, "per": "1s" } })),
            "spec.localRateLimit.requests",
            "greater than or equal to 1",
        ),
        invalid(
            "regexRewrite without a substitution",
            "Mapping",
            m(json!({ "regexRewrite": { "pattern": "^/a" } })),
            "spec.regexRewrite.substitution",
            "Required value",
        ),
        invalid(
            "unknown upgrade token",
            "Mapping",
            m(json!({ "allowUpgrade": ["web socket"] })),
            "spec.allowUpgrade[0]",
            "should match",
        ),
        // Gateway
        invalid(
            "negative replicas",
            "Gateway",
            json!({ "replicas": -1 }),
            "spec.replicas",
            "greater than or equal to 0",
        ),
        invalid(
            "a host owner of every host",
            "Gateway",
            json!({ "hostOwners": [{ "hostname": "*", "namespace": "shop" }] }),
            "spec.hostOwners[0].hostname",
            "should match",
        ),
        invalid(
            "a host assigned twice",
            "Gateway",
            json!({ "hostOwners": [
                { "hostname": "shop.example.com", "namespace": "shop" },
                { "hostname": "shop.example.com", "namespace": "web" },
            ] }),
            "spec.hostOwners[1]",
            "Duplicate value",
        ),
        invalid(
            "a host owner that is no namespace",
            "Gateway",
            json!({ "hostOwners": [{ "hostname": "shop.example.com", "namespace": "Shop_Team" }] }),
            "spec.hostOwners[0].namespace",
            "should match",
        ),
        invalid(
            "autoscaling below one pod",
            "Gateway",
            json!({ "autoscaling": { "minReplicas": 0, "maxReplicas": 3 } }),
            "spec.autoscaling.minReplicas",
            "minReplicas must be at least 1",
        ),
        invalid(
            "autoscaling maximum below its minimum",
            "Gateway",
            json!({ "autoscaling": { "minReplicas": 4, "maxReplicas": 3 } }),
            "spec.autoscaling.maxReplicas",
            "maxReplicas must be at least minReplicas",
        ),
        invalid(
            "autoscaling maximum below the default minimum",
            "Gateway",
            json!({ "autoscaling": { "maxReplicas": 1 } }),
            "spec.autoscaling.maxReplicas",
            "maxReplicas must be at least minReplicas",
        ),
        invalid(
            "autoscaling without a maximum",
            "Gateway",
            json!({ "autoscaling": { "minReplicas": 2 } }),
            "spec.autoscaling.maxReplicas",
            "Required value",
        ),
        invalid(
            "autoscaling CPU target zero",
            "Gateway",
            json!({ "autoscaling": { "maxReplicas": 3, "targetCPUUtilizationPercentage": 0 } }),
            "spec.autoscaling.targetCPUUtilizationPercentage",
            "between 1 and 100",
        ),
        invalid(
            "autoscaling CPU target above 100",
            "Gateway",
            json!({ "autoscaling": { "maxReplicas": 3, "targetCPUUtilizationPercentage": 101 } }),
            "spec.autoscaling.targetCPUUtilizationPercentage",
            "between 1 and 100",
        ),
        invalid(
            "route statistics of an unknown kind",
            "Gateway",
            json!({ "routeStats": "PerRoute" }),
            "spec.routeStats",
            "supported values: \"Off\", \"PerMapping\"",
        ),
        invalid(
            "port above 65535",
            "Gateway",
            json!({ "listeners": [{ "name": "http", "port": 70000, "protocol": "HTTP" }] }),
            "spec.listeners[0].port",
            "less than or equal to 65535",
        ),
        invalid(
            "a health check without a path",
            "Mapping",
            m(json!({ "healthCheck": { "interval": "5s" } })),
            "spec.healthCheck.path",
            "Required value",
        ),
        invalid(
            "a health check path without a leading slash",
            "Mapping",
            m(json!({ "healthCheck": { "path": "healthz" } })),
            "spec.healthCheck.path",
            "should match",
        ),
        invalid(
            "health checks more often than once a second",
            "Mapping",
            m(json!({ "healthCheck": { "path": "/healthz", "interval": "100ms" } })),
            "spec.healthCheck.interval",
            "interval must be at least 1s",
        ),
        invalid(
            "a health check status that is no HTTP status",
            "Mapping",
            m(json!({ "healthCheck": { "path": "/healthz", "expectedStatuses": [200, 600] } })),
            "spec.healthCheck.expectedStatuses[1]",
            "less than or equal to 599",
        ),
        invalid(
            "a health check threshold of zero",
            "Mapping",
            m(json!({ "healthCheck": { "path": "/healthz", "unhealthyThreshold": 0 } })),
            "spec.healthCheck.unhealthyThreshold",
            "greater than or equal to 1",
        ),
        invalid(
            "ejecting more than every endpoint",
            "Mapping",
            m(json!({ "outlierDetection": { "maxEjectionPercent": 101 } })),
            "spec.outlierDetection.maxEjectionPercent",
            "less than or equal to 100",
        ),
        invalid(
            "ejecting after zero errors",
            "Mapping",
            m(json!({ "outlierDetection": { "consecutive5xx": 0 } })),
            "spec.outlierDetection.consecutive5xx",
            "greater than or equal to 1",
        ),
        invalid(
            "a keepalive interval that is no duration",
            "Mapping",
            m(json!({ "tcpKeepalive": { "interval": "often" } })),
            "spec.tcpKeepalive.interval",
            "should match",
        ),
        invalid(
            "a default health check more often than once a second",
            "Gateway",
            json!({ "defaults": { "healthCheck": { "path": "/healthz", "interval": "500ms" } } }),
            "spec.defaults.healthCheck.interval",
            "interval must be at least 1s",
        ),
        invalid(
            "a body limit of zero bytes on the Gateway",
            "Gateway",
            json!({ "http": { "maxRequestBodyBytes": 0 } }),
            "spec.http.maxRequestBodyBytes",
            "greater than or equal to 1",
        ),
        invalid(
            "an algorithm listed twice",
            "Gateway",
            json!({ "http": { "compression": { "algorithms": ["Gzip", "Gzip"] } } }),
            "spec.http.compression.algorithms",
            "list each algorithm once",
        ),
        invalid(
            "an algorithm Envoy does not have",
            "Gateway",
            json!({ "http": { "compression": { "algorithms": ["Deflate"] } } }),
            "spec.http.compression.algorithms[0]",
            "supported values",
        ),
        invalid(
            "a content type that is no media type",
            "Gateway",
            json!({ "http": { "compression": { "contentTypes": ["json"] } } }),
            "spec.http.compression.contentTypes[0]",
            "should match",
        ),
        invalid(
            "a server name with a line break",
            "Gateway",
            json!({ "http": { "serverName": "edge\r\nx-injected: 1" } }),
            "spec.http.serverName",
            "should match",
        ),
        invalid(
            "two error responses for one status",
            "Gateway",
            json!({ "http": { "errorResponses": [{ "status": 404, "body": "a" }, { "status": 404, "body": "b" }] } }),
            "spec.http.errorResponses",
            "each status may have one error response",
        ),
        invalid(
            "an error response for a success",
            "Gateway",
            json!({ "http": { "errorResponses": [{ "status": 200, "body": "fine" }] } }),
            "spec.http.errorResponses[0].status",
            "greater than or equal to 400",
        ),
        invalid(
            "an error body over 16 KiB",
            "Gateway",
            json!({ "http": { "errorResponses": [{ "status": 404, "body": "x".repeat(16385) }] } }),
            "spec.http.errorResponses[0].body",
            "may not be more than 16384",
        ),
        invalid(
            "an error content type that is no media type",
            "Gateway",
            json!({ "http": { "errorResponses": [{ "status": 404, "body": "x", "contentType": "html" }] } }),
            "spec.http.errorResponses[0].contentType",
            "should match",
        ),
        invalid(
            "a Gateway allow entry that is no address",
            "Gateway",
            json!({ "http": { "ipAllow": ["10.0.0.0/8", "10.0.0.300"] } }),
            "spec.http.ipAllow",
            "each entry must be an IP address or a CIDR range",
        ),
        invalid(
            "a Gateway deny range with too long a prefix",
            "Gateway",
            json!({ "http": { "ipDeny": ["192.0.2.0/33"] } }),
            "spec.http.ipDeny",
            "each entry must be an IP address or a CIDR range",
        ),
        invalid(
            "a Mapping allow entry that is a hostname",
            "Mapping",
            m(json!({ "ipAllow": ["office.example.com"] })),
            "spec.ipAllow",
            "each entry must be an IP address or a CIDR range",
        ),
        invalid(
            "a Mapping deny list longer than Envoy should check per request",
            "Mapping",
            m(json!({ "ipDeny": vec!["192.0.2.1"; 129] })),
            "spec.ipDeny",
            "must have at most 128 items",
        ),
        invalid(
            "a jwt key set from both a Service and a URL",
            "Mapping",
            m(json!({ "jwt": { "issuer": "https://id.example.com", "jwks": {
                "service": { "name": "keys", "port": 80 }, "uri": "https://id.example.com/keys" } } })),
            "spec.jwt.jwks",
            "set either service or uri",
        ),
        invalid(
            "a jwt key set over cleartext from outside the cluster",
            "Mapping",
            m(
                json!({ "jwt": { "issuer": "https://id.example.com", "jwks": { "uri": "http://id.example.com/keys" } } }),
            ),
            "spec.jwt.jwks.uri",
            "should match",
        ),
        invalid(
            "a jwt key set path with a URL",
            "Mapping",
            m(json!({ "jwt": { "issuer": "https://id.example.com",
                               "jwks": { "uri": "https://id.example.com/keys", "path": "/other" } } })),
            "spec.jwt.jwks.path",
            "path goes with service",
        ),
        invalid(
            "a jwt without an issuer",
            "Mapping",
            m(json!({ "jwt": { "jwks": { "service": { "name": "keys", "port": 80 } } } })),
            "spec.jwt.issuer",
            "Required value",
        ),
        invalid(
            "a jwt key set Service port out of range",
            "Mapping",
            m(json!({ "jwt": { "issuer": "i", "jwks": { "service": { "name": "keys", "port": 70000 } } } })),
            "spec.jwt.jwks.service.port",
            "less than or equal to 65535",
        ),
        invalid(
            "a claim copied into a header name with a space",
            "Mapping",
            m(
                json!({ "jwt": { "issuer": "i", "jwks": { "service": { "name": "keys", "port": 80 } },
                               "claimToHeaders": [{ "claim": "sub", "header": "x user" }] } }),
            ),
            "spec.jwt.claimToHeaders[0].header",
            "should match",
        ),
        invalid(
            "two claims copied into one header",
            "Mapping",
            m(
                json!({ "jwt": { "issuer": "i", "jwks": { "service": { "name": "keys", "port": 80 } },
                               "claimToHeaders": [{ "claim": "sub", "header": "x-user" },
                                                  { "claim": "email", "header": "X-User" }] } }),
            ),
            "spec.jwt.claimToHeaders",
            "each header may be set from one claim",
        ),
        invalid(
            "a negative body limit on a Mapping",
            "Mapping",
            m(json!({ "maxRequestBodyBytes": -1 })),
            "spec.maxRequestBodyBytes",
            "greater than or equal to 0",
        ),
        invalid(
            "compression as a word",
            "Mapping",
            m(json!({ "compression": "off" })),
            "spec.compression",
            "must be of type boolean",
        ),
        invalid(
            "more trusted hops than any chain of proxies",
            "Gateway",
            json!({ "listeners": [{ "name": "http", "port": 8080, "protocol": "HTTP", "trustedHops": 11 }] }),
            "spec.listeners[0].trustedHops",
            "less than or equal to 10",
        ),
        invalid(
            "trusted hops on a TCP listener",
            "Gateway",
            json!({ "listeners": [{ "name": "db", "port": 5432, "protocol": "TCP", "trustedHops": 1 }] }),
            "spec.listeners[0].trustedHops",
            "trustedHops applies to HTTP and HTTPS listeners",
        ),
        invalid(
            "PROXY protocol as a string",
            "Gateway",
            json!({ "listeners": [{ "name": "http", "port": 8080, "protocol": "HTTP", "proxyProtocol": "v2" }] }),
            "spec.listeners[0].proxyProtocol",
            "must be of type boolean",
        ),
        invalid(
            "port zero",
            "Gateway",
            json!({ "listeners": [{ "name": "http", "port": 0, "protocol": "HTTP" }] }),
            "spec.listeners[0].port",
            "greater than or equal to 1",
        ),
        invalid(
            "duplicate listener ports",
            "Gateway",
            json!({ "listeners": [{ "name": "a", "port": 8080, "protocol": "HTTP" }, { "name": "b", "port": 8080, "protocol": "HTTP" }] }),
            "spec.listeners",
            "listener ports must be unique",
        ),
        invalid(
            "duplicate listener names",
            "Gateway",
            json!({ "listeners": [{ "name": "a", "port": 8080, "protocol": "HTTP" }, { "name": "a", "port": 8081, "protocol": "HTTP" }] }),
            "spec.listeners[1]",
            "Duplicate value",
        ),
        invalid(
            "listener name with capitals",
            "Gateway",
            json!({ "listeners": [{ "name": "Web", "port": 8080, "protocol": "HTTP" }] }),
            "spec.listeners[0].name",
            "should match",
        ),
        invalid(
            "unknown listener protocol",
            "Gateway",
            json!({ "listeners": [{ "name": "dns", "port": 53, "protocol": "UDP" }] }),
            "spec.listeners[0].protocol",
            "Unsupported value",
        ),
        invalid(
            "unknown service type",
            "Gateway",
            json!({ "serviceType": "External" }),
            "spec.serviceType",
            "Unsupported value",
        ),
        invalid(
            "nodePort outside the node port range",
            "Gateway",
            json!({ "serviceType": "NodePort", "listeners": [{ "name": "http", "port": 8080, "protocol": "HTTP", "nodePort": 80 }] }),
            "spec.listeners[0].nodePort",
            "greater than or equal to 30000",
        ),
        invalid(
            "nodePort on a ClusterIP Gateway",
            "Gateway",
            json!({ "serviceType": "ClusterIP", "listeners": [{ "name": "http", "port": 8080, "protocol": "HTTP", "nodePort": 30080 }] }),
            "spec.listeners",
            "nodePort only when serviceType is NodePort or LoadBalancer",
        ),
        invalid(
            "Selector without a selector",
            "Gateway",
            json!({ "allowedRoutes": { "namespaces": { "from": "Selector" } } }),
            "spec.allowedRoutes.namespaces.selector",
            "selector is required when from is Selector",
        ),
        invalid(
            "default timeout not a duration",
            "Gateway",
            json!({ "defaults": { "timeout": "soon" } }),
            "spec.defaults.timeout",
            "should match",
        ),
        invalid(
            "Text access log without its format string",
            "Gateway",
            json!({ "accessLog": { "format": "Text" } }),
            "spec.accessLog.text",
            "format Text needs text",
        ),
        invalid(
            "a format string on JSON logs",
            "Gateway",
            json!({ "accessLog": { "text": "%RESPONSE_CODE%" } }),
            "spec.accessLog.text",
            "set format: Text",
        ),
        invalid(
            "an unknown access log format",
            "Gateway",
            json!({ "accessLog": { "format": "XML" } }),
            "spec.accessLog.format",
            "Unsupported value",
        ),
        invalid(
            "a tracing collector without a port",
            "Gateway",
            json!({ "tracing": { "collector": "otel-collector" } }),
            "spec.tracing.collector",
            "should match",
        ),
        invalid(
            "a sampling percentage above 100",
            "Gateway",
            json!({ "tracing": { "collector": "otel:4317", "samplingPercent": 150 } }),
            "spec.tracing.samplingPercent",
            "less than or equal to 100",
        ),
        invalid(
            "an OTLP access log collector without a port",
            "Gateway",
            json!({ "accessLog": { "otlp": { "collector": "otel-collector" } } }),
            "spec.accessLog.otlp.collector",
            "should match",
        ),
        invalid(
            "an OTLP access log without a collector",
            "Gateway",
            json!({ "accessLog": { "otlp": {} } }),
            "spec.accessLog.otlp.collector",
            "Required value",
        ),
        invalid(
            "an unknown tracing provider",
            "Gateway",
            json!({ "tracing": { "collector": "jaeger:14250", "provider": "Jaeger" } }),
            "spec.tracing.provider",
            "Unsupported value",
        ),
        invalid(
            "a service name for Zipkin spans",
            "Gateway",
            json!({ "tracing": { "collector": "zipkin:9411", "provider": "Zipkin", "serviceName": "shop" } }),
            "spec.tracing.serviceName",
            "serviceName is for OpenTelemetry",
        ),
        invalid(
            "a statusOnError Envoy cannot send",
            "AuthService",
            json!({ "service": "auth:3000", "statusOnError": 418 }),
            "spec.statusOnError",
            "statusOnError must be a status Envoy can send",
        ),
        // TLSContext
        invalid(
            "no hosts",
            "TLSContext",
            json!({ "hosts": [], "secret": "s" }),
            "spec.hosts",
            "should have at least 1 items",
        ),
        invalid(
            "no secret",
            "TLSContext",
            json!({ "hosts": ["a.example.com"] }),
            "spec.secret",
            "Required value",
        ),
        invalid(
            "TLS version 1.4",
            "TLSContext",
            json!({ "hosts": ["a.example.com"], "secret": "s", "minTlsVersion": "v1.4" }),
            "spec.minTlsVersion",
            "Unsupported value",
        ),
        invalid(
            "minimum above maximum",
            "TLSContext",
            json!({ "hosts": ["a.example.com"], "secret": "s", "minTlsVersion": "v1.3", "maxTlsVersion": "v1.2" }),
            "spec.minTlsVersion",
            "must not be above maxTlsVersion",
        ),
        invalid(
            "certRequired without caSecret",
            "TLSContext",
            json!({ "hosts": ["a.example.com"], "secret": "s", "certRequired": true }),
            "spec.caSecret",
            "certRequired needs caSecret",
        ),
        invalid(
            "unknown insecure action",
            "TLSContext",
            json!({ "hosts": ["a.example.com"], "secret": "s", "insecure": { "action": "Drop" } }),
            "spec.insecure.action",
            "Unsupported value",
        ),
        invalid(
            "host with a path",
            "TLSContext",
            json!({ "hosts": ["a.example.com/x"], "secret": "s" }),
            "spec.hosts[0]",
            "should match",
        ),
        // AuthService
        invalid(
            "unknown auth protocol",
            "AuthService",
            json!({ "service": "auth", "protocol": "SOAP" }),
            "spec.protocol",
            "Unsupported value",
        ),
        invalid(
            "status on error below 100",
            "AuthService",
            json!({ "service": "auth", "statusOnError": 99 }),
            "spec.statusOnError",
            "greater than or equal to 100",
        ),
        invalid(
            "auth without a service",
            "AuthService",
            json!({ "protocol": "GRPC" }),
            "spec.service",
            "Required value",
        ),
        invalid(
            "auth timeout zero",
            "AuthService",
            json!({ "service": "auth", "timeout": "0ms" }),
            "spec.timeout",
            "must be a positive duration",
        ),
        // RateLimitService
        invalid(
            "rate limit service without a service",
            "RateLimitService",
            json!({ "domain": "d" }),
            "spec.service",
            "Required value",
        ),
        invalid(
            "empty domain",
            "RateLimitService",
            json!({ "service": "rl:8081", "domain": "" }),
            "spec.domain",
            "at least 1 chars long",
        ),
        // TCPMapping
        invalid(
            "TCP port out of range",
            "TCPMapping",
            json!({ "port": 65536, "service": "db:5432" }),
            "spec.port",
            "less than or equal to 65535",
        ),
        invalid(
            "TCP weight above 100",
            "TCPMapping",
            json!({ "port": 5432, "service": "db:5432", "weight": 150 }),
            "spec.weight",
            "less than or equal to 100",
        ),
        invalid(
            "SNI with a space",
            "TCPMapping",
            json!({ "port": 9443, "service": "db:5432", "sni": "a b" }),
            "spec.sni",
            "should match",
        ),
    ]
}

#[tokio::test]
async fn invalid_objects_are_refused_with_a_message_naming_the_field() {
    let env = env_with_crds().await;
    let cases = invalid_objects();
    assert!(cases.len() >= 30, "the table covers at least 30 invalid objects");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let object = legate(case.kind, &format!("invalid-{i}"), case.spec.clone());
        match create(&env.client, &env.namespace, &object).await {
            Ok(_) => failures.push(format!(
                "{} ({}): accepted, expected a refusal naming {}",
                case.what, case.kind, case.field
            )),
            Err(kube::Error::Api(status)) => {
                let message = status.message;
                let names_field = message.contains(&format!("{}:", case.field))
                    || message.contains(&format!("{} ", case.field));
                if status.code != 422 || !names_field || !message.contains(case.says) {
                    failures.push(format!(
                        "{} ({}): expected 422 naming `{}` and saying `{}`, got {}: {message}",
                        case.what, case.kind, case.field, case.says, status.code
                    ));
                }
            }
            Err(other) => failures.push(format!("{}: unexpected error {other}", case.what)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_gateway_name_too_long_for_its_envoy_service_is_refused() {
    let env = env_with_crds().await;
    let long = "g".repeat(58);
    match create(&env.client, &env.namespace, &legate("Gateway", &long, json!({}))).await {
        Ok(_) => panic!("a Gateway named with 58 characters was accepted"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{}", status.message);
            assert!(
                status.message.contains("at most 57 characters"),
                "{}",
                status.message
            );
        }
        Err(other) => panic!("unexpected error {other}"),
    }
    let fits = "g".repeat(57);
    create(&env.client, &env.namespace, &legate("Gateway", &fits, json!({})))
        .await
        .expect("57 characters fit");
}

#[tokio::test]
async fn kubectl_get_lists_every_kind_with_useful_columns() {
    let env = env_with_crds().await;
    for doc in
        documents(&std::fs::read_to_string(workspace::root().join("examples/gateway.yaml")).expect("example"))
            .into_iter()
            .chain(documents(
                &std::fs::read_to_string(workspace::root().join("examples/mapping-basic.yaml"))
                    .expect("example"),
            ))
    {
        apply(&env.client, &env.namespace, &doc)
            .await
            .expect("example applies");
    }
    for (kind, spec) in [
        (
            "TLSContext",
            json!({ "hosts": ["a.example.com"], "secret": "a-tls" }),
        ),
        ("AuthService", json!({ "service": "auth:3000" })),
        ("RateLimitService", json!({ "service": "rl:8081" })),
        ("TCPMapping", json!({ "port": 5432, "service": "db:5432" })),
    ] {
        apply(&env.client, &env.namespace, &legate(kind, "one", spec))
            .await
            .expect("applies");
    }

    let all = env.control_plane.kubectl(&["get", "legate", "-A"]);
    for resource in [
        "gateway.legate.dev/edge",
        "mapping.legate.dev/quote-backend",
        "tlscontext.legate.dev/one",
        "authservice.legate.dev/one",
        "ratelimitservice.legate.dev/one",
        "tcpmapping.legate.dev/one",
    ] {
        assert!(
            all.contains(resource),
            "`kubectl get legate -A` lacks {resource}:\n{all}"
        );
    }

    let mappings = env.control_plane.kubectl(&["get", "lmap", "-n", &env.namespace]);
    let header: Vec<&str> = mappings
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "HOSTNAME",
            "MATCH",
            "SERVICE",
            "ACCEPTED",
            "PROGRAMMED",
            "AGE"
        ],
        "{mappings}"
    );
    let row: Vec<&str> = mappings
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..4],
        ["quote-backend", "*", "/backend/", "quote"],
        "{mappings}"
    );

    let gateways = env.control_plane.kubectl(&["get", "lgw", "-n", &env.namespace]);
    let header: Vec<&str> = gateways
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "LISTENERS", "READY", "PROGRAMMED", "ADDRESS", "AGE"],
        "{gateways}"
    );
}

#[tokio::test]
async fn kubectl_explain_describes_fields() {
    let env = env_with_crds().await;
    for (field, phrase) in [
        ("mapping.spec.prefix", "plain string prefix"),
        ("mapping.spec.rewrite", "/backend/probe"),
        ("gateway.spec.listeners", "8080"),
        ("gateway.spec.autoscaling", "HorizontalPodAutoscaler"),
        ("gateway.spec.autoscaling.minReplicas", "fewest Envoy pods"),
        ("gateway.spec.autoscaling.maxReplicas", "most Envoy pods"),
        (
            "gateway.spec.autoscaling.targetCPUUtilizationPercentage",
            "CPU request",
        ),
        ("gateway.spec.replicas", "Ignored when `autoscaling` is set"),
        ("gateway.spec.routeStats", "PerMapping"),
        ("gateway.spec.accessLog.otlp.collector", "OTLP/gRPC"),
        ("gateway.spec.accessLog.otlp", "format: Off"),
        ("gateway.spec.tracing.provider", "Zipkin"),
        ("gateway.spec.tracing.serviceName", "OpenTelemetry only"),
        ("gateway.spec.http.compression.algorithms", "q-values"),
        ("gateway.spec.http.grpcWeb", "gRPC-Web"),
        ("gateway.spec.http.maxRequestBodyBytes", "413"),
        ("gateway.spec.http.serverName", "server"),
        (
            "gateway.spec.http.errorResponses",
            "Upstreams' own answers are never changed",
        ),
        ("gateway.spec.http.ipAllow", "never widen it"),
        ("gateway.spec.http.ipDeny", "No Mapping can let them in"),
        ("mapping.spec.ipAllow", "can never widen it"),
        ("mapping.spec.ipDeny", "403"),
        ("mapping.spec.jwt", "gets 401"),
        ("mapping.spec.jwt.jwks.service", "Mapping's namespace"),
        ("mapping.spec.jwt.claimToHeaders", "is replaced"),
        ("mapping.spec.jwt.forward", "removed once checked"),
        ("mapping.spec.compression", "server-sent events"),
        ("mapping.spec.maxRequestBodyBytes", "16 MiB"),
        ("mapping.spec.healthCheck.interval", "at least 1s"),
        (
            "mapping.spec.outlierDetection.consecutive5xx",
            "eject an endpoint",
        ),
        ("mapping.spec.tcpKeepalive", "idle pooled connections"),
        ("gateway.spec.defaults.healthCheck.path", "/healthz"),
        ("gateway.spec.listeners.trustedHops", "X-Forwarded-For"),
        ("gateway.spec.listeners.proxyProtocol", "PROXY protocol"),
        ("tlscontext.spec.insecure.action", "Redirect"),
        ("authservice.spec.statusOnError", "403"),
        ("ratelimitservice.spec.domain", "legate"),
        ("tcpmapping.spec.sni", "server name"),
    ] {
        // The API server publishes a new CRD's OpenAPI a moment after it is Established.
        let text = legate_tests::net::eventually(
            &format!("`kubectl explain {field}` to work"),
            std::time::Duration::from_secs(30),
            || async {
                let out = env
                    .control_plane
                    .kubectl_command(&["explain", field])
                    .output()
                    .ok()?;
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            },
        )
        .await;
        // kubectl wraps descriptions at its own width.
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains(phrase),
            "`kubectl explain {field}` should mention {phrase:?}:\n{text}"
        );
    }
}
