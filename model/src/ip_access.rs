//! Client address lists (`ipAllow`, `ipDeny`) of Gateways and Mappings, as
//! the IR holds them.

use std::net::IpAddr;

use legate_xds::ir;

/// An entry that is neither an IP address nor a CIDR range.
#[derive(Debug, thiserror::Error)]
#[error("{field}[{index}] {entry:?} is not an IP address or a CIDR range such as 10.0.0.0/8")]
pub(crate) struct BadEntry {
    pub field: &'static str,
    pub index: usize,
    pub entry: String,
}

/// `10.1.2.3`, `10.0.0.0/8` or `2001:db8::/32`, with the host bits cleared
/// (`10.1.2.3/8` is `10.0.0.0/8`, as the API server's `isCIDR` accepts it).
pub(crate) fn parse_cidr(entry: &str) -> Option<ir::Cidr> {
    let (address, len) = match entry.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u32>().ok()?)),
        None => (entry.parse::<IpAddr>().ok()?, None),
    };
    let (address, prefix_len) = match address {
        IpAddr::V4(a) => {
            let len = len.unwrap_or(32);
            let bits = u32::from(a);
            let mask = u32::MAX.checked_shl(32 - len.min(32)).unwrap_or(0);
            if len > 32 {
                return None;
            }
            (IpAddr::from((bits & mask).to_be_bytes()), len)
        }
        IpAddr::V6(a) => {
            let len = len.unwrap_or(128);
            if len > 128 {
                return None;
            }
            let bits = u128::from(a);
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            (IpAddr::from((bits & mask).to_be_bytes()), len)
        }
    };
    Some(ir::Cidr { address, prefix_len })
}

/// Both lists of a Mapping, or the first entry that is not an address.
pub(crate) fn mapping_lists(allow: &[String], deny: &[String]) -> Result<Option<ir::IpAccess>, BadEntry> {
    let parse = |field: &'static str, list: &[String]| {
        list.iter()
            .enumerate()
            .map(|(index, entry)| {
                parse_cidr(entry).ok_or_else(|| BadEntry {
                    field,
                    index,
                    entry: entry.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let allow = parse("spec.ipAllow", allow)?;
    let deny = parse("spec.ipDeny", deny)?;
    Ok(lists(allow, deny))
}

/// The Gateway's lists. The API server refused entries that are not
/// addresses; should one get through, it is left out, which for `ipAllow`
/// lets fewer clients in, never more.
pub(crate) fn gateway_lists(allow: &[String], deny: &[String]) -> Option<ir::IpAccess> {
    if allow.is_empty() && deny.is_empty() {
        return None;
    }
    let parse = |list: &[String]| list.iter().filter_map(|e| parse_cidr(e)).collect::<Vec<_>>();
    Some(ir::IpAccess {
        // An allow list whose entries were all left out allows nobody.
        allow: (!allow.is_empty()).then(|| parse(allow)),
        deny: parse(deny),
    })
}

fn lists(allow: Vec<ir::Cidr>, deny: Vec<ir::Cidr>) -> Option<ir::IpAccess> {
    if allow.is_empty() && deny.is_empty() {
        return None;
    }
    Some(ir::IpAccess {
        allow: (!allow.is_empty()).then_some(allow),
        deny,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_addresses_or_ranges_with_host_bits_cleared() {
        let c = parse_cidr("10.1.2.3/8").expect("a range");
        assert_eq!((c.address.to_string(), c.prefix_len), ("10.0.0.0".into(), 8));
        let c = parse_cidr("192.0.2.7").expect("an address");
        assert_eq!((c.address.to_string(), c.prefix_len), ("192.0.2.7".into(), 32));
        let c = parse_cidr("2001:db8::1/32").expect("a v6 range");
        assert_eq!((c.address.to_string(), c.prefix_len), ("2001:db8::".into(), 32));
        let c = parse_cidr("0.0.0.0/0").expect("everything");
        assert_eq!(c.prefix_len, 0);
        for bad in ["10.0.0.0/33", "::/129", "10.0.0", "shop", "10.0.0.0/x", ""] {
            assert!(parse_cidr(bad).is_none(), "{bad} should be refused");
        }
    }

    #[test]
    fn a_mapping_names_its_first_bad_entry() {
        let e = mapping_lists(&["10.0.0.0/8".into()], &["1.2.3.4".into(), "nope".into()])
            .expect_err("nope is no address");
        assert_eq!(
            e.to_string(),
            "spec.ipDeny[1] \"nope\" is not an IP address or a CIDR range such as 10.0.0.0/8"
        );
        assert_eq!(mapping_lists(&[], &[]).expect("empty lists"), None);
    }

    #[test]
    fn a_gateway_allow_list_with_no_usable_entry_allows_nobody() {
        let access = gateway_lists(&["bad".into()], &[]).expect("a list was given");
        assert_eq!(access.allow, Some(Vec::new()));
    }
}
