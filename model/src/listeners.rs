//! A Gateway's listeners, bound to the address the operator's Envoys listen on.

use std::net::IpAddr;

use legate_crds::Gateway;
use legate_crds::gateway::Protocol;
use legate_xds::ir;

use crate::names::object_ref;

/// Every listener of a Gateway, bound to `address`. HTTP and HTTPS listeners
/// carry Mappings; TCP and TLS listeners carry TCPMappings.
pub fn listeners(gateway: &Gateway, address: IpAddr) -> ir::Gateway {
    let origin = object_ref(gateway);
    let mut config = ir::Gateway::default();
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
            },
        );
    }
    config
}
