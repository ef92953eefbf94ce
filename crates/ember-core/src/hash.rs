//! Hashing that is the same in every process.
//!
//! Keyed operators route a record to the worker `route(key) % workers`. The
//! route must not depend on a per-process random seed (every process must send
//! a key to the same worker), and it must use different bits from the hash
//! the per-worker hash maps use: otherwise all keys that land on one worker
//! share their low bits and crowd a fraction of that worker's map buckets.

use std::hash::{BuildHasher, Hash};

/// The hash maps' hasher: fast, unseeded, identical in every process.
pub(crate) type FxBuildHasher = rustc_hash::FxBuildHasher;

/// A hash map with ember's hasher.
pub(crate) type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuildHasher>;

/// The routing hash of a key: stable across processes and runs, and mixed so
/// that it shares no structure with the maps' bucket bits.
pub fn route<K: Hash + ?Sized>(key: &K) -> u64 {
    let h = FxBuildHasher::default().hash_one(key);
    // splitmix64's finaliser, then keep the high half: hash maps index by the
    // low bits of the plain Fx hash.
    let mut z = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) >> 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_is_stable() {
        // Same key, same route, whatever the owning type.
        assert_eq!(route("hello"), route(&"hello".to_string()));
        assert_eq!(route(&42u64), route(&42u64));
        assert_ne!(route("hello"), route("world"));
    }

    #[test]
    fn route_spreads_keys_evenly() {
        let workers = 3u64;
        let mut counts = [0usize; 3];
        for i in 0..30_000 {
            counts[(route(&format!("w{i}")) % workers) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
