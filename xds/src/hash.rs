//! The one hash behind resource versions and derived names.

/// A stable 64-bit hash of some bytes (xxh3: fast, and the same on every
/// machine and release, so versions and names survive an operator restart
/// and an upgrade).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}
