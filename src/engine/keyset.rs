//! A set of record keys (of one table), for node members and index entries.
//!
//! Most such sets are tiny (a node bound to one thread holds one record) and
//! stay an exactly sized vector. The few big
//! ones are most of what views cost: the members of a `text = $w` root and
//! the index entry it was built from hold a tenth of a table each. A hash
//! set spends ~28 bytes a key on them; integer keys (most record ids) go in
//! a compressed bitmap instead, ~2 bytes a key, with other keys in a hash
//! set beside it. Up to a few hundred ids below `2^32` are hashed first
//! (see [`Low`]): as small at that size, and fewer cache misses deep.

use std::hash::BuildHasherDefault;

use ahash::AHashSet;
use roaring::{RoaringBitmap, RoaringTreemap};

use super::value::Key;

/// The largest size kept as a vector.
const SMALL: usize = 8;

#[derive(Clone, Debug)]
pub enum KeySet {
    Small(Vec<Key>),
    Large(Box<Large>),
}

#[derive(Clone, Debug, Default)]
pub struct Large {
    /// Keys in `0..2^32` (most record ids).
    low: Low,
    /// Other integer keys.
    ints: RoaringTreemap,
    others: AHashSet<Key>,
}

/// The keys of a [`Large`] set in `0..2^32`.
///
/// At a million records every insert and remove here is a chain of cache
/// misses, one per level walked: a sparse bitmap of a few hundred keys
/// spread over a table binary-searches a dozen containers and then one
/// container's array (~5 misses), the 64-bit bitmap adds its outer
/// `BTreeMap` node. A hash set of that size is about as small (the
/// bitmap's containers cost more than their keys when each holds a few)
/// and is two misses deep, so a set is hashed up to [`HASHED_MAX`] keys and
/// a bitmap past it, where the bitmap's ~2 bytes a key count.
#[derive(Clone, Debug)]
enum Low {
    Hashed(HashedKeys),
    Bitmap(RoaringBitmap),
}

/// A hash set of ids with a hasher of fixed keys: zero-sized, where a
/// per-set random state would cost 32 bytes in every set. Fixed keys let
/// chosen ids collide, which costs at most [`HASHED_MAX`] probes.
///
/// A map to nothing rather than a set: `hashbrown`'s map gives its raw
/// table, to prefetch a key's slot (see [`KeySet::prefetch_inner`]).
type HashedKeys = hashbrown::HashMap<u32, (), BuildHasherDefault<ahash::AHasher>>;

/// The most keys [`Low::Hashed`] holds.
const HASHED_MAX: usize = 512;

impl Default for Low {
    fn default() -> Self {
        Low::Hashed(HashedKeys::default())
    }
}

impl Low {
    fn insert(&mut self, k: u32) -> bool {
        match self {
            Low::Hashed(h) if h.len() < HASHED_MAX => h.insert(k, ()).is_none(),
            Low::Hashed(h) => {
                if h.contains_key(&k) {
                    return false;
                }
                let mut b: RoaringBitmap = h.keys().copied().collect();
                b.insert(k);
                *self = Low::Bitmap(b);
                true
            }
            Low::Bitmap(b) => b.insert(k),
        }
    }

    fn remove(&mut self, k: u32) -> bool {
        match self {
            Low::Hashed(h) => h.remove(&k).is_some(),
            Low::Bitmap(b) => b.remove(k),
        }
    }

    fn contains(&self, k: u32) -> bool {
        match self {
            Low::Hashed(h) => h.contains_key(&k),
            Low::Bitmap(b) => b.contains(k),
        }
    }

    fn len(&self) -> usize {
        match self {
            Low::Hashed(h) => h.len(),
            Low::Bitmap(b) => b.len() as usize,
        }
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let (h, b) = match self {
            Low::Hashed(h) => (Some(h.keys().copied()), None),
            Low::Bitmap(b) => (None, Some(b.iter())),
        };
        h.into_iter().flatten().chain(b.into_iter().flatten())
    }
}

impl Default for KeySet {
    fn default() -> Self {
        KeySet::Small(Vec::new())
    }
}

/// An `i64` as the bitmap's `u64`, keeping order (not needed, but free).
fn to_bits(i: i64) -> u64 {
    (i as u64) ^ (1 << 63)
}

fn from_bits(b: u64) -> i64 {
    (b ^ (1 << 63)) as i64
}

impl Large {
    fn insert(&mut self, k: Key) -> bool {
        match k {
            Key::Int(i) => match u32::try_from(i) {
                Ok(low) => self.low.insert(low),
                Err(_) => self.ints.insert(to_bits(i)),
            },
            k => self.others.insert(k),
        }
    }

    fn remove(&mut self, k: &Key) -> bool {
        match k {
            Key::Int(i) => match u32::try_from(*i) {
                Ok(low) => self.low.remove(low),
                Err(_) => self.ints.remove(to_bits(*i)),
            },
            k => self.others.remove(k),
        }
    }

    fn contains(&self, k: &Key) -> bool {
        match k {
            Key::Int(i) => match u32::try_from(*i) {
                Ok(low) => self.low.contains(low),
                Err(_) => self.ints.contains(to_bits(*i)),
            },
            k => self.others.contains(k),
        }
    }

    fn len(&self) -> usize {
        self.low.len() + self.ints.len() as usize + self.others.len()
    }
}

impl KeySet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `k`; false if it was already there.
    pub fn insert(&mut self, k: Key) -> bool {
        match self {
            KeySet::Small(v) => {
                if v.contains(&k) {
                    return false;
                }
                if v.len() < SMALL {
                    // Exactly sized: most sets never grow past a few.
                    v.reserve_exact(1);
                    v.push(k);
                } else {
                    let mut large = Large::default();
                    for x in v.drain(..) {
                        large.insert(x);
                    }
                    large.insert(k);
                    *self = KeySet::Large(Box::new(large));
                }
                true
            }
            KeySet::Large(s) => s.insert(k),
        }
    }

    /// Removes `k`; false if it was not there. A large set stays large (it
    /// shrinks as it empties), so that a set near the threshold does not
    /// convert back and forth.
    pub fn remove(&mut self, k: &Key) -> bool {
        match self {
            KeySet::Small(v) => match v.iter().position(|y| y == k) {
                Some(i) => {
                    v.swap_remove(i);
                    if v.is_empty() {
                        *v = Vec::new();
                    }
                    true
                }
                None => false,
            },
            KeySet::Large(s) => s.remove(k),
        }
    }

    pub fn contains(&self, k: &Key) -> bool {
        match self {
            KeySet::Small(v) => v.contains(k),
            KeySet::Large(s) => s.contains(k),
        }
    }

    /// Prefetches the set's own memory: a small set's keys, a large set's
    /// parts. The first of two steps (see [`super::prefetch`]).
    pub fn prefetch_outer(&self) {
        match self {
            // Up to `SMALL` keys of 24 bytes: three lines at most.
            KeySet::Small(v) => super::prefetch::lines(v.as_slice()),
            KeySet::Large(s) => super::prefetch::line(&**s),
        }
    }

    /// Prefetches where `k` is or would be in a large set of ids below
    /// 2^32 kept hashed (most member sets and index entries of a few hundred
    /// records); nothing otherwise. Reads what [`KeySet::prefetch_outer`]
    /// asked for.
    pub fn prefetch_inner(&self, k: &Key) {
        if let KeySet::Large(s) = self
            && let Low::Hashed(h) = &s.low
            && let Key::Int(i) = k
            && let Ok(low) = u32::try_from(*i)
        {
            super::prefetch::entry(h, &low);
        }
    }

    pub fn len(&self) -> usize {
        match self {
            KeySet::Small(v) => v.len(),
            KeySet::Large(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys, in no particular order. Owned: a bitmap holds no `Key`s.
    pub fn iter(&self) -> impl Iterator<Item = Key> + '_ {
        let (small, large) = match self {
            KeySet::Small(v) => (Some(v.iter().cloned()), None),
            KeySet::Large(s) => (
                None,
                Some(
                    s.low
                        .iter()
                        .map(|b| Key::Int(i64::from(b)))
                        .chain(s.ints.iter().map(|b| Key::Int(from_bits(b))))
                        .chain(s.others.iter().cloned()),
                ),
            ),
        };
        small
            .into_iter()
            .flatten()
            .chain(large.into_iter().flatten())
    }
}

impl FromIterator<Key> for KeySet {
    fn from_iter<I: IntoIterator<Item = Key>>(iter: I) -> Self {
        let mut set = KeySet::new();
        for k in iter {
            set.insert(k);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The next number of a linear congruential sequence.
    fn next(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed
    }

    /// Inserts or removes `k` in both the set and its model, and checks
    /// they answer and count alike.
    fn step(set: &mut KeySet, model: &mut BTreeSet<Key>, k: Key, remove: bool) {
        if remove {
            assert_eq!(set.remove(&k), model.remove(&k), "remove {k:?}");
        } else {
            assert_eq!(
                set.insert(k.clone()),
                model.insert(k.clone()),
                "insert {k:?}"
            );
        }
        assert_eq!(set.len(), model.len());
    }

    /// Against a `BTreeSet` through growth past the vector, removals and
    /// re-insertions, with negative, extreme and string keys.
    #[test]
    fn behaves_as_a_set() {
        let keys: Vec<Key> = [
            0,
            1,
            -1,
            i64::MIN,
            i64::MAX,
            7,
            42,
            1 << 40,
            -(1 << 40),
            u32::MAX as i64,
            1 << 32,
        ]
        .into_iter()
        .map(Key::Int)
        .chain(["a", "b", "1"].into_iter().map(|s| Key::String(s.into())))
        .collect();
        let mut set = KeySet::new();
        let mut model = BTreeSet::new();
        let mut seed = 7u64;
        for _ in 0..2000 {
            let r = next(&mut seed);
            let k = keys[(r >> 33) as usize % keys.len()].clone();
            step(&mut set, &mut model, k, (r >> 20).is_multiple_of(3));
            assert!(model.iter().all(|k| set.contains(k)));
            let listed: BTreeSet<Key> = set.iter().collect();
            assert_eq!(listed, model);
        }
        assert!(matches!(set, KeySet::Large(_)), "grew past the vector");
    }

    /// Through the hashed keys into the bitmap and on, with removals on
    /// both sides of the switch and keys just below and above `2^32`.
    #[test]
    fn behaves_as_a_set_past_the_hashed_keys() {
        let mut set = KeySet::new();
        let mut model = BTreeSet::new();
        let mut seed = 11u64;
        let key = |round: usize, i: i64| {
            Key::Int(if round.is_multiple_of(7) {
                (1 << 32) - 1 + i
            } else {
                i * 97
            })
        };
        for round in 0..6_000 {
            let i = (next(&mut seed) >> 33) as i64 % 3_000;
            step(&mut set, &mut model, key(round, i), round % 4 == 3);
            if round % 500 == 0 {
                let listed: BTreeSet<Key> = set.iter().collect();
                assert_eq!(listed, model);
            }
        }
        // Members and non-members alike (`i * 97 + 1` is never inserted).
        for i in 0..3_000 {
            for k in [key(0, i), key(1, i), Key::Int(i * 97 + 1)] {
                assert_eq!(set.contains(&k), model.contains(&k), "contains {k:?}");
            }
        }
        let KeySet::Large(large) = &set else {
            panic!("grew past the vector")
        };
        assert!(
            matches!(large.low, Low::Bitmap(_)),
            "grew past the hash set"
        );
    }

    /// At exactly [`HASHED_MAX`] keys, a key already there is not new and
    /// keeps the hash set; the next new one moves every key to the bitmap.
    #[test]
    fn the_hashed_keys_move_to_the_bitmap_past_their_most() {
        let mut set: KeySet = (0..HASHED_MAX as i64).map(Key::Int).collect();
        let low = |set: &KeySet| match set {
            KeySet::Large(l) => matches!(l.low, Low::Hashed(_)),
            KeySet::Small(_) => panic!("past the vector"),
        };
        assert!(!set.insert(Key::Int(3)), "already there");
        assert!(low(&set), "still hashed at its most");
        assert!(set.insert(Key::Int(1_000_000)));
        assert!(!low(&set), "a bitmap past its most");
        assert_eq!(set.len(), HASHED_MAX + 1);
        let listed: BTreeSet<Key> = set.iter().collect();
        let expected: BTreeSet<Key> = (0..HASHED_MAX as i64)
            .chain([1_000_000])
            .map(Key::Int)
            .collect();
        assert_eq!(listed, expected);
    }
}
