//! Hosts no `service` may name. Envoy's own admin API (a config dump of
//! every tenant's routes, `/quitquitquit`) and a node's metadata service are
//! one `service: http://...` away; a Mapping must not be a way to reach
//! them.
//!
//! Only what can be judged from the text is judged here: a name that a
//! resolver turns into such an address is out of reach of the model (the
//! fleet keeps Envoy's admin API off TCP for that).

use std::net::{IpAddr, Ipv4Addr};

/// Why `host` may not be an upstream, if it may not. Loopback is allowed
/// only when `allow_loopback` (a local stack whose upstreams run beside
/// Envoy on one machine).
pub fn forbidden(host: &str, allow_loopback: bool) -> Option<&'static str> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return (!allow_loopback).then_some("a loopback name");
    }
    let ip = match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical(),
        // Resolvers read `127.1`, `2130706433` and `0x7f.1` as IPv4 too.
        Err(_) if looks_numeric(&name) => return Some("an IPv4 address in a non-standard form"),
        Err(_) => return None,
    };
    if ip.is_loopback() {
        return (!allow_loopback).then_some("a loopback address");
    }
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    if ip.is_multicast() {
        return Some("a multicast address");
    }
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4 == Ipv4Addr::BROADCAST,
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    link_local.then_some("a link-local address (where cloud metadata services listen)")
}

/// Whether a name is made only of what numeric IPv4 forms are made of:
/// digits, dots and hexadecimal with `0x`.
fn looks_numeric(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            let digits = part.strip_prefix("0x").unwrap_or(part);
            !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_hexdigit())
                && (part.starts_with("0x") || digits.chars().all(|c| c.is_ascii_digit()))
        })
}

#[cfg(test)]
mod tests {
    use super::forbidden;

    #[test]
    fn envoys_admin_and_metadata_services_are_out_of_reach() {
        for host in [
            "127.0.0.1",
            "127.9.9.9",
            "localhost",
            "LocalHost.",
            "api.localhost",
            "[::1]",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "[::]",
            "169.254.169.254",
            "[fe80::1]",
            "224.0.0.1",
            "[ff02::1]",
            "255.255.255.255",
            "127.1",
            "2130706433",
            "0x7f.0x0.0x0.0x1",
        ] {
            assert!(forbidden(host, false).is_some(), "{host} must be refused");
        }
    }

    #[test]
    fn ordinary_hosts_pass_and_loopback_only_when_allowed() {
        for host in [
            "10.0.0.7",
            "192.168.1.2",
            "[2001:db8::1]",
            "api.example.com",
            "quote",
            "h0.bench.test",
            "1password.com",
        ] {
            assert_eq!(forbidden(host, false), None, "{host}");
        }
        for host in ["127.0.0.1", "localhost", "[::1]"] {
            assert_eq!(forbidden(host, true), None, "{host} with loopback allowed");
        }
        assert!(
            forbidden("169.254.169.254", true).is_some(),
            "link-local stays refused"
        );
        assert!(forbidden("0.0.0.0", true).is_some(), "unspecified stays refused");
    }
}
