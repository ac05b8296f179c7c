//! Asking the CPU for memory a batch is about to read, before it reads it.
//!
//! At a million records nearly every hash-map slot, set and node a change
//! reaches is out of the CPU's caches, and each read waits ~200 ns for
//! memory (the bench's "one read at random" row). A change's reads mostly
//! depend on each other (a set is found through its map slot), so a batch
//! that handles its changes one at a time waits for them one at a time. A
//! prefetch does not wait: issuing the first level of every change's reads,
//! then the next level of each, lets a batch of ten changes wait about once
//! per level instead of once per read.
//!
//! A prefetch is only a hint: a wrong address costs a wasted fetch, never a
//! wrong answer. The slot addresses come from `hashbrown`'s raw table
//! (where a key's probe starts), which `std`'s maps do not expose.

use std::hash::{BuildHasher, Hash};

/// The hash map whose slots can be prefetched: `hashbrown`'s, with the
/// same hasher as `ahash::AHashMap`.
pub type Map<K, V> = hashbrown::HashMap<K, V, ahash::RandomState>;

/// As [`Map`], a set.
pub type Set<T> = hashbrown::HashSet<T, ahash::RandomState>;

/// Asks for the cache line at `p`. Any address is allowed: a prefetch never
/// faults.
#[inline(always)]
pub fn line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetch` reads nothing the program sees and cannot fault,
    // whatever the address; SSE is part of every x86_64 target.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for every cache line of `*p` (a struct or a slice of a few lines).
#[inline]
pub fn lines<T: ?Sized>(p: &T) {
    let start = std::ptr::from_ref(p).cast::<u8>();
    for offset in (0..size_of_val(p)).step_by(64) {
        line(start.wrapping_add(offset));
    }
}

/// Asks for the control bytes and the first slot where `key`'s probe
/// starts in `map`: the two lines a lookup of `key` reads first, and in a
/// table not too full usually the only two.
#[inline]
pub fn entry<K, V, S, Q>(map: &hashbrown::HashMap<K, V, S>, key: &Q)
where
    S: BuildHasher,
    Q: Hash + ?Sized,
{
    entry_hashed(map.raw_table(), map.hasher().hash_one(key));
}

/// As [`entry`], for a key whose hash is `hash`, in a map's or a set's
/// raw table.
#[inline]
pub fn entry_hashed<T>(table: &hashbrown::raw::RawTable<T>, hash: u64) {
    // hashbrown 0.14: a probe starts at `hash & (buckets - 1)`; the control
    // bytes start at `data_end` and the slots are stored backwards before it.
    let pos = (hash as usize) & (table.buckets() - 1);
    let end = table.data_end().as_ptr();
    line(end.cast::<u8>().wrapping_add(pos));
    line(end.wrapping_sub(pos + 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prefetch's addresses are `hashbrown` 0.14's layout, which its API
    /// does not promise: if a new version moved a key's probe start or its
    /// slot, the prefetches would fetch the wrong lines and this fails.
    #[test]
    fn a_key_is_found_where_its_prefetch_looks() {
        let mut map: Map<u64, u64> = Map::default();
        for k in 0..10_000u64 {
            map.insert(k, k);
        }
        let table = map.raw_table();
        let mask = table.buckets() - 1;
        let end = table.data_end().as_ptr();
        let mut in_first_group = 0;
        for k in 0..10_000u64 {
            let hash = map.hasher().hash_one(k);
            let bucket = table.find(hash, |(x, _)| *x == k).expect("inserted");
            // SAFETY: `bucket` is of `table`, which is not changed.
            let index = unsafe { table.bucket_index(&bucket) };
            assert_eq!(bucket.as_ptr(), end.wrapping_sub(index + 1), "slot of {k}");
            // The probe starts at `hash & mask` and first reads the 16
            // control bytes there: most keys sit in that group.
            if index.wrapping_sub(hash as usize & mask) & mask < 16 {
                in_first_group += 1;
            }
        }
        assert!(in_first_group > 9_000, "{in_first_group} of 10,000");
    }
}
