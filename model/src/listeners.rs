//! A Gateway's listeners, bound to the address the operator's Envoys listen on.

use std::net::IpAddr;

use legate_crds::Gateway;
use legate_crds::gateway::Protocol;
use legate_crds::http::{CompressionAlgorithm, HttpOptions};
use legate_xds::ir;

use crate::names::object_ref;

/// Every listener of a Gateway, bound to `address`. HTTP and HTTPS listeners
/// carry Mappings; TCP and TLS listeners carry TCPMappings.
pub fn listeners(gateway: &Gateway, address: IpAddr) -> ir::Gateway {
    let origin = object_ref(gateway);
    let mut config = ir::Gateway::default();
    let http = http_options(gateway.spec.http.as_ref());
    for listener in &gateway.spec.listeners {
        let protocol = match listener.protocol {
            Protocol::Http => ir::ListenerProtocol::Http,
            Protocol::Https => ir::ListenerProtocol::Https,
            Protocol::Tcp => ir::ListenerProtocol::Tcp,
            Protocol::Tls => ir::ListenerProtocol::Tls,
        };
        let Ok(port) = u16::try_from(listener.port) else {
            continue;
        };
        config.listeners.insert(
            listener.name.clone(),
            ir::Listener {
                name: listener.name.clone(),
                origin: origin.clone(),
                address,
                port,
                protocol,
                tls: Vec::new(),
                trusted_hops: listener.trusted_hops.unwrap_or(0),
                proxy_protocol: listener.proxy_protocol,
                http: http.clone(),
            },
        );
    }
    config
}

/// The Gateway's HTTP options as every HTTP listener applies them.
fn http_options(http: Option<&HttpOptions>) -> ir::HttpOptions {
    let Some(http) = http else {
        return ir::HttpOptions::default();
    };
    let ip_access = crate::ip_access::gateway_lists(&http.ip_allow, &http.ip_deny);
    let compression = http.compression.as_ref().map(|c| {
        let mut algorithms = Vec::new();
        for a in &c.algorithms {
            let a = match a {
                CompressionAlgorithm::Gzip => ir::CompressionAlgorithm::Gzip,
                CompressionAlgorithm::Brotli => ir::CompressionAlgorithm::Brotli,
                CompressionAlgorithm::Zstd => ir::CompressionAlgorithm::Zstd,
            };
            if !algorithms.contains(&a) {
                algorithms.push(a);
            }
        }
        if algorithms.is_empty() {
            algorithms.push(ir::CompressionAlgorithm::Gzip);
        }
        ir::Compression {
            algorithms,
            content_types: c.content_types.clone(),
            min_content_length: c.min_content_length.and_then(|n| u32::try_from(n).ok()),
        }
    });
    ir::HttpOptions {
        compression,
        grpc_web: http.grpc_web,
        max_request_body_bytes: http.max_request_body_bytes.and_then(|n| u32::try_from(n).ok()),
        server_name: http.server_name.clone(),
        error_responses: http
            .error_responses
            .iter()
            .filter_map(|e| {
                Some(ir::ErrorResponse {
                    status: u16::try_from(e.status).ok()?,
                    body: e.body.clone(),
                    content_type: e.content_type.clone().unwrap_or_else(|| "text/plain".into()),
                })
            })
            .collect(),
        ip_access,
    }
}
