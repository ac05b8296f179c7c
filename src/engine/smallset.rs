//! A set that is a short vector while it is small.
//!
//! Most of the engine's sets are tiny: a node bound to one thread holds one
//! record, an index entry for one thread's comments holds a few. A hash set
//! costs a 4-bucket table (and a hasher state) even for one element; this
//! set stores up to [`SMALL`] elements in an exactly sized vector and becomes
//! a hash set beyond, so that large sets keep O(1) operations.

use std::hash::Hash;

use ahash::AHashSet;

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
}
