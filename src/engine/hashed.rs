//! A value kept with its hash, for the keys of the engine's biggest maps.
//!
//! A hash map that grows moves every entry to a new table, hashing each key
//! again. When hashing a key reads an allocation of its own (a record key's
//! text, a node key's parameter values), that is one cache miss per entry,
//! all inside the one batch that made the map grow: at a million records,
//! hundreds of milliseconds. A [`Hashed`] key is hashed once, as it is
//! made, and the map hashes only the number it keeps.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// `T` with its hash. Equal values have equal hashes, so comparing the
/// hashes first only rejects unequal ones sooner. It orders, prints and
/// serializes as `T` alone.
#[derive(Clone)]
pub struct Hashed<T> {
    hash: u64,
    value: T,
}

impl<T: Hash> Hashed<T> {
    pub fn new(value: T) -> Self {
        // Random per process, as the maps' own hashers are: the hash never
        // leaves the process.
        static HASHER: LazyLock<ahash::RandomState> = LazyLock::new(ahash::RandomState::new);
        Hashed {
            hash: HASHER.hash_one(&value),
            value,
        }
    }
}

impl<T> Deref for Hashed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Hashed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.value == other.value
    }
}

impl<T: Eq> Eq for Hashed<T> {}

impl<T> Hash for Hashed<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// By value: the hash has no order.
impl<T: Ord> Ord for Hashed<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T: Ord> PartialOrd for Hashed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: fmt::Debug> fmt::Debug for Hashed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// As `T` alone: the state file holds no hash.
impl<T: Serialize> Serialize for Hashed<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de> + Hash> Deserialize<'de> for Hashed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Hashed::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map finds a key made again from an equal value, and tells unequal
    /// values apart, though it hashes only the kept number.
    #[test]
    fn a_map_finds_keys_by_their_kept_hash() {
        let mut m = ahash::AHashMap::new();
        m.insert(Hashed::new(String::from("a;b`c")), 1);
        m.insert(Hashed::new(String::from("x")), 2);
        assert_eq!(m.get(&Hashed::new(String::from("a;b`c"))), Some(&1));
        assert_eq!(m.get(&Hashed::new(String::from("y"))), None);
        assert!(Hashed::new("a") < Hashed::new("b"), "ordered by value");
    }
}
