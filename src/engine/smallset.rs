//! A set that is a short vector while it is small.
//!
//! Most of the engine's sets are tiny: a node bound to one thread holds one
//! record, an index entry for one thread's comments holds a few. A hash set
//! costs a 4-bucket table (and a hasher state) even for one element; this
//! set stores up to [`SMALL`] elements in an exactly sized vector and becomes
//! a hash set beyond, so that large sets keep O(1) operations.

use std::collections::BTreeSet;
use std::hash::Hash;

use ahash::{AHashMap, AHashSet};

/// The largest size kept as a vector.
const SMALL: usize = 8;

#[derive(Debug, Clone)]
pub enum SmallSet<T> {
    Small(Vec<T>),
    Large(Box<AHashSet<T>>),
}

impl<T> Default for SmallSet<T> {
    fn default() -> Self {
        SmallSet::Small(Vec::new())
    }
}

impl<T: Hash + Eq> SmallSet<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `x`; false if it was already there.
    pub fn insert(&mut self, x: T) -> bool {
        match self {
            SmallSet::Small(v) => {
                if v.contains(&x) {
                    return false;
                }
                if v.len() < SMALL {
                    // Exactly sized: most sets never grow past a few.
                    v.reserve_exact(1);
                    v.push(x);
                } else {
                    let mut set: AHashSet<T> = v.drain(..).collect();
                    set.insert(x);
                    *self = SmallSet::Large(Box::new(set));
                }
                true
            }
            SmallSet::Large(s) => s.insert(x),
        }
    }

    /// Removes `x`; false if it was not there.
    pub fn remove(&mut self, x: &T) -> bool {
        match self {
            SmallSet::Small(v) => match v.iter().position(|y| y == x) {
                Some(i) => {
                    v.swap_remove(i);
                    if v.is_empty() {
                        *v = Vec::new();
                    }
                    true
                }
                None => false,
            },
            SmallSet::Large(s) => s.remove(x),
        }
    }

    pub fn contains(&self, x: &T) -> bool {
        match self {
            SmallSet::Small(v) => v.contains(x),
            SmallSet::Large(s) => s.contains(x),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SmallSet::Small(v) => v.len(),
            SmallSet::Large(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> Iter<'_, T> {
        match self {
            SmallSet::Small(v) => Iter::Small(v.iter()),
            SmallSet::Large(s) => Iter::Large(s.iter()),
        }
    }
}

impl<T: Hash + Eq> FromIterator<T> for SmallSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut set = SmallSet::new();
        for x in iter {
            set.insert(x);
        }
        set
    }
}

pub enum Iter<'a, T> {
    Small(std::slice::Iter<'a, T>),
    Large(std::collections::hash_set::Iter<'a, T>),
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        match self {
            Iter::Small(i) => i.next(),
            Iter::Large(i) => i.next(),
        }
    }
}

impl<'a, T: Hash + Eq> IntoIterator for &'a SmallSet<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// The largest size of a [`SmallMap`] kept as a vector.
const SMALL_MAP: usize = 16;

/// A map that is a short vector of pairs while it is small, as [`SmallSet`].
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

/// An ordered set that is a sorted vector while it is small, as
/// [`SmallSet`]: a window node over one thread's comments sorts a few
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
    fn behaves_as_a_set_below_and_above_the_small_size() {
        let mut s = SmallSet::new();
        let mut model = std::collections::HashSet::new();
        // Grow past SMALL, shrink below it, grow again.
        let ops: Vec<(bool, u32)> = (0..40)
            .map(|i| (true, i % 13))
            .chain((0..40).map(|i| (false, i % 7)))
            .chain((0..40).map(|i| (true, i % 5)))
            .collect();
        for (add, x) in ops {
            if add {
                assert_eq!(s.insert(x), model.insert(x));
            } else {
                assert_eq!(s.remove(&x), model.remove(&x));
            }
            assert_eq!(s.len(), model.len());
            let mut got: Vec<u32> = s.iter().copied().collect();
            got.sort();
            let mut want: Vec<u32> = model.iter().copied().collect();
            want.sort();
            assert_eq!(got, want);
            assert!(model.iter().all(|x| s.contains(x)));
        }
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
