//! A map and an ordered set that are short vectors while they are small.
//!
//! Most of the engine's collections are tiny: a node bound to one thread
//! has one member with children, a window over one thread's comments sorts
//! a few. A hash map costs a 4-bucket table (and a hasher state) even for
//! one entry; these keep up to a few entries in an exactly sized vector and
//! become a hash map or a B-tree beyond, so that large ones keep their
//! complexity. (Sets of record keys are [`super::keyset::KeySet`].)

use std::collections::BTreeSet;
use std::hash::Hash;

use ahash::AHashMap;

/// Pushes `x`, growing the vector one slot at a time while it is short.
///
/// A `Vec`'s first push reserves four slots; most of the engine's per-node
/// lists (a node's parents, the nodes registered under one index key, the
/// nodes hosting one record) hold one entry for good, and there are as many
/// such lists as nodes. Past a few entries it grows as usual (amortised).
pub fn push_small<T>(v: &mut Vec<T>, x: T) {
    if v.len() == v.capacity() && v.len() < 4 {
        v.reserve_exact(1);
    }
    v.push(x);
}

/// The largest size of a [`SmallMap`] kept as a vector.
const SMALL_MAP: usize = 16;

/// A map that is a short vector of pairs while it is small.
///
/// A node's per-member children and a root's counted result are most
/// often a handful of entries (a thread-detail view holds ~10 records): an
/// `AHashMap` costs its 32-byte hasher state inline and a bucket table of
/// twice the entries, for every such node.
#[derive(Debug, Clone)]
pub enum SmallMap<K, V> {
    Small(Vec<(K, V)>),
    Large(Box<AHashMap<K, V>>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Small(Vec::new())
    }
}

impl<K: Hash + Eq, V> SmallMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        match self {
            SmallMap::Small(v) => v.iter().find(|(x, _)| x == k).map(|(_, v)| v),
            SmallMap::Large(m) => m.get(k),
        }
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        match self {
            SmallMap::Small(v) => v.iter_mut().find(|(x, _)| x == k).map(|(_, v)| v),
            SmallMap::Large(m) => m.get_mut(k),
        }
    }

    pub fn contains_key(&self, k: &K) -> bool {
        self.get(k).is_some()
    }

    /// Sets `k` to `val`; returns the previous value.
    pub fn insert(&mut self, k: K, val: V) -> Option<V> {
        match self {
            SmallMap::Small(v) => {
                if let Some((_, old)) = v.iter_mut().find(|(x, _)| *x == k) {
                    return Some(std::mem::replace(old, val));
                }
                if v.len() < SMALL_MAP {
                    v.reserve_exact(1);
                    v.push((k, val));
                } else {
                    let mut m: AHashMap<K, V> = v.drain(..).collect();
                    m.insert(k, val);
                    *self = SmallMap::Large(Box::new(m));
                }
                None
            }
            SmallMap::Large(m) => m.insert(k, val),
        }
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        match self {
            SmallMap::Small(v) => {
                let i = v.iter().position(|(x, _)| x == k)?;
                let (_, val) = v.swap_remove(i);
                if v.is_empty() {
                    *v = Vec::new();
                }
                Some(val)
            }
            SmallMap::Large(m) => m.remove(k),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SmallMap::Small(v) => v.len(),
            SmallMap::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn keys(&self) -> Box<dyn Iterator<Item = &K> + '_> {
        match self {
            SmallMap::Small(v) => Box::new(v.iter().map(|(k, _)| k)),
            SmallMap::Large(m) => Box::new(m.keys()),
        }
    }

    pub fn into_values(self) -> Vec<V> {
        match self {
            SmallMap::Small(v) => v.into_iter().map(|(_, v)| v).collect(),
            SmallMap::Large(m) => m.into_values().collect(),
        }
    }
}

/// The largest size of a [`SortedSet`] kept as a vector.
const SMALL_SORTED: usize = 32;

/// An ordered set that is a sorted vector while it is small: a window node over one thread's comments sorts a few
/// entries, and a `BTreeSet` leaf is ~540 bytes however few it holds.
#[derive(Debug, Clone)]
pub enum SortedSet<T> {
    Small(Vec<T>),
    Large(BTreeSet<T>),
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        SortedSet::Small(Vec::new())
    }
}

impl<T: Ord> SortedSet<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `x`; false if it was already there.
    pub fn insert(&mut self, x: T) -> bool {
        match self {
            SortedSet::Small(v) => match v.binary_search(&x) {
                Ok(_) => false,
                Err(i) => {
                    if v.len() < SMALL_SORTED {
                        v.reserve_exact(1);
                        v.insert(i, x);
                    } else {
                        let mut set: BTreeSet<T> = v.drain(..).collect();
                        set.insert(x);
                        *self = SortedSet::Large(set);
                    }
                    true
                }
            },
            SortedSet::Large(s) => s.insert(x),
        }
    }

    /// Removes `x`; false if it was not there.
    pub fn remove(&mut self, x: &T) -> bool {
        match self {
            SortedSet::Small(v) => match v.binary_search(x) {
                Ok(i) => {
                    v.remove(i);
                    if v.is_empty() {
                        *v = Vec::new();
                    }
                    true
                }
                Err(_) => false,
            },
            SortedSet::Large(s) => s.remove(x),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SortedSet::Small(v) => v.len(),
            SortedSet::Large(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The greatest element.
    pub fn last(&self) -> Option<&T> {
        match self {
            SortedSet::Small(v) => v.last(),
            SortedSet::Large(s) => s.last(),
        }
    }

    /// Removes and returns the greatest element.
    pub fn pop_last(&mut self) -> Option<T> {
        match self {
            SortedSet::Small(v) => v.pop(),
            SortedSet::Large(s) => s.pop_last(),
        }
    }

    /// The elements in order.
    pub fn iter(&self) -> SortedIter<'_, T> {
        match self {
            SortedSet::Small(v) => SortedIter::Small(v.iter()),
            SortedSet::Large(s) => SortedIter::Large(s.iter()),
        }
    }
}

pub enum SortedIter<'a, T> {
    Small(std::slice::Iter<'a, T>),
    Large(std::collections::btree_set::Iter<'a, T>),
}

impl<'a, T> Iterator for SortedIter<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        match self {
            SortedIter::Small(i) => i.next(),
            SortedIter::Large(i) => i.next(),
        }
    }
    fn nth(&mut self, n: usize) -> Option<&'a T> {
        match self {
            SortedIter::Small(i) => i.nth(n),
            SortedIter::Large(i) => i.nth(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_small_grows_one_slot_at_a_time_only_while_short() {
        let mut v = Vec::new();
        push_small(&mut v, 1u32);
        assert_eq!(v.capacity(), 1, "one entry, one slot");
        for i in 2..=100 {
            push_small(&mut v, i);
        }
        assert_eq!(v, (1..=100).collect::<Vec<_>>());
        assert!(v.capacity() < 200, "amortised growth past a few");
    }

    #[test]
    fn small_map_behaves_as_a_map_below_and_above_the_small_size() {
        let mut m = SmallMap::new();
        let mut model = std::collections::HashMap::new();
        // Grow past SMALL_MAP, shrink below it, grow again.
        let ops: Vec<(bool, u32)> = (0..80)
            .map(|i| (true, i % 29))
            .chain((0..80).map(|i| (false, i % 11)))
            .chain((0..80).map(|i| (true, i % 7)))
            .collect();
        for (n, (add, x)) in ops.into_iter().enumerate() {
            if add {
                assert_eq!(m.insert(x, n), model.insert(x, n));
            } else {
                assert_eq!(m.remove(&x), model.remove(&x));
            }
            assert_eq!(m.len(), model.len());
            let mut got: Vec<u32> = m.keys().copied().collect();
            got.sort();
            let mut want: Vec<u32> = model.keys().copied().collect();
            want.sort();
            assert_eq!(got, want);
            assert!(model.iter().all(|(k, v)| m.get(k) == Some(v)));
            assert!(!m.contains_key(&1000));
        }
        *m.get_mut(&3).expect("present") = 7;
        model.insert(3, 7);
        let mut vals = m.into_values();
        vals.sort();
        let mut want: Vec<usize> = model.into_values().collect();
        want.sort();
        assert_eq!(vals, want);
    }

    #[test]
    fn sorted_set_keeps_order_below_and_above_the_small_size() {
        let mut s = SortedSet::new();
        let mut model = BTreeSet::new();
        // Grow past SMALL_SORTED, shrink below it, grow again.
        let ops: Vec<(bool, u32)> = (0..120)
            .map(|i| (true, (i * 37) % 53))
            .chain((0..120).map(|i| (false, (i * 11) % 41)))
            .chain((0..120).map(|i| (true, (i * 7) % 19)))
            .collect();
        for (add, x) in ops {
            if add {
                assert_eq!(s.insert(x), model.insert(x));
            } else {
                assert_eq!(s.remove(&x), model.remove(&x));
            }
            assert_eq!(s.len(), model.len());
            assert!(s.iter().eq(model.iter()), "same elements in the same order");
            for k in [0, 5, 31, 32, 40] {
                assert_eq!(s.iter().nth(k), model.iter().nth(k));
            }
        }
    }
}
