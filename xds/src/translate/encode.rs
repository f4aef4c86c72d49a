//! Canonical protobuf encoding.
//!
//! Versions are hashes of resource bytes, so the bytes of equal resources must
//! be equal. prost encodes protobuf maps from a `HashMap` in random order; the
//! helpers here write map entries sorted by key instead. They also splice
//! pre-encoded sub-messages into a parent, which is what lets an unchanged
//! virtual host be reused without encoding it again.

use std::collections::{BTreeMap, HashMap};

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

/// Encodes `message` with the map field that `map` selects written in key
/// order. The map field of `message` itself must be empty.
pub fn encode_with_sorted_map<M, V, F>(message: &M, map: F, entries: &BTreeMap<String, V>) -> Vec<u8>
where
    M: Message + Default,
    V: Clone,
    F: Fn(&mut M) -> &mut HashMap<String, V>,
{
    let mut buf = message.encode_to_vec();
    // A message holding one map entry encodes to exactly that entry, and
    // protobuf map entries may appear anywhere in the parent.
    let mut single = M::default();
    for (key, value) in entries {
        let slot = map(&mut single);
        slot.clear();
        slot.insert(key.clone(), value.clone());
        single.encode(&mut buf).expect("a Vec grows as needed");
    }
    buf
}

/// Appends a length-delimited field (a sub-message given by its encoding).
pub fn append_message_field(buf: &mut Vec<u8>, field: u32, encoded: &[u8]) {
    encode_key(field, WireType::LengthDelimited, buf);
    encode_varint(encoded.len() as u64, buf);
    buf.extend_from_slice(encoded);
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::route::v3::{Route, VirtualHost};
    use envoy_types::pb::google::protobuf::Any;

    use super::*;

    fn any(n: u8) -> Any {
        Any {
            type_url: format!("type.googleapis.com/t{n}"),
            value: vec![n],
        }
    }

    #[test]
    fn map_entries_are_written_in_key_order_and_decode_back() {
        let entries: BTreeMap<String, Any> = (0..8).map(|n| (format!("filter-{n}"), any(n))).collect();
        let base = Route {
            name: "r".into(),
            ..Route::default()
        };
        let first = encode_with_sorted_map(&base, |r: &mut Route| &mut r.typed_per_filter_config, &entries);
        for _ in 0..5 {
            let again =
                encode_with_sorted_map(&base, |r: &mut Route| &mut r.typed_per_filter_config, &entries);
            assert_eq!(first, again, "the encoding is deterministic");
        }
        let decoded = Route::decode(first.as_slice()).expect("valid protobuf");
        assert_eq!(decoded.name, "r");
        assert_eq!(decoded.typed_per_filter_config.len(), 8);
        assert_eq!(decoded.typed_per_filter_config["filter-3"], any(3));
    }

    #[test]
    fn spliced_sub_messages_decode_like_the_whole() {
        let routes: Vec<Route> = (0..3)
            .map(|n| Route {
                name: format!("r{n}"),
                ..Route::default()
            })
            .collect();
        let whole = VirtualHost {
            name: "vh".into(),
            domains: vec!["*".into()],
            routes: routes.clone(),
            ..VirtualHost::default()
        };
        let mut spliced = VirtualHost {
            name: "vh".into(),
            domains: vec!["*".into()],
            ..VirtualHost::default()
        }
        .encode_to_vec();
        for r in &routes {
            append_message_field(&mut spliced, 3, &r.encode_to_vec());
        }
        assert_eq!(
            VirtualHost::decode(spliced.as_slice()).expect("valid protobuf"),
            whole
        );
    }
}
