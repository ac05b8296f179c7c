//! Objects: a record's content, and every nested object in it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{FieldName, Shape, Value};

/// An object: fields sorted by name (its [`Shape`]) and their values, so two
/// objects with the same content have the same layout.
///
/// One allocation (count, shape, length, values) behind a thin pointer, so
/// that a [`Value`] is 16 bytes and a record costs one allocation. Shared on
/// clone, as records are immutable: the few changes (tests, `insert`) copy.
#[derive(Clone)]
pub struct Object(triomphe::ThinArc<Shape, Value>);

/// The empty object, shared.
fn empty_object() -> Object {
    static EMPTY: std::sync::LazyLock<Object> = std::sync::LazyLock::new(|| {
        Object(triomphe::ThinArc::from_header_and_iter(
            Arc::new(Box::default()),
            std::iter::empty(),
        ))
    });
    EMPTY.clone()
}

impl Default for Object {
    fn default() -> Self {
        empty_object()
    }
}

impl Object {
    /// An object of `shape` (sorted, unique names) with one value per name.
    pub fn with_shape(shape: Shape, values: Vec<Value>) -> Self {
        debug_assert_eq!(shape.len(), values.len(), "one value per name");
        debug_assert!(shape.windows(2).all(|w| w[0] < w[1]), "sorted names");
        Object(triomphe::ThinArc::from_header_and_iter(
            shape,
            values.into_iter(),
        ))
    }

    pub fn shape(&self) -> &Shape {
        &self.0.header.header
    }

    pub fn names(&self) -> &[FieldName] {
        self.shape()
    }

    /// Asks the CPU for the first two cache lines of the object's values
    /// (its count and shape are the three words before them, often on the
    /// first: fetching them too measured no different). See
    /// [`crate::engine::prefetch`].
    pub fn prefetch(&self) {
        let p = self.0.slice.as_ptr();
        crate::engine::prefetch::line(p);
        crate::engine::prefetch::line(p.wrapping_add(4));
    }

    pub fn values(&self) -> &[Value] {
        &self.0.slice
    }

    pub fn len(&self) -> usize {
        self.0.slice.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.slice.is_empty()
    }

    /// Whether two objects are the same allocation (so the same content).
    pub fn ptr_eq(&self, other: &Object) -> bool {
        self.0.ptr() == other.0.ptr()
    }

    /// The fields, in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&FieldName, &Value)> {
        self.names().iter().zip(self.values().iter())
    }

    fn position(&self, key: &str) -> Option<usize> {
        let names = self.names();
        // Records have a handful of fields: a scan that compares lengths
        // first beats a binary search of byte-wise comparisons.
        if names.len() <= 8 {
            return names
                .iter()
                .position(|k| k.len() == key.len() && k.as_ref() == key);
        }
        names.binary_search_by(|k| k.as_ref().cmp(key)).ok()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.values()[i])
    }

    /// Sets field `key`. Copies the object: for tests and rare changes.
    pub fn insert(&mut self, key: FieldName, value: Value) {
        let mut names = self.names().to_vec();
        let mut values = self.values().to_vec();
        match names.binary_search_by(|k| k.as_ref().cmp(&key)) {
            Ok(i) => values[i] = value,
            Err(i) => {
                names.insert(i, key);
                values.insert(i, value);
            }
        }
        *self = Object::with_shape(Arc::new(names.into_boxed_slice()), values);
    }

    /// Sets the value of field `i` (in name order). Copies the object.
    pub fn set_at(&mut self, i: usize, value: Value) {
        if i >= self.len() {
            return;
        }
        let mut values = self.values().to_vec();
        values[i] = value;
        *self = Object::with_shape(self.shape().clone(), values);
    }

    /// Removes field `i` (in name order). Copies the object.
    pub fn remove_at(&mut self, i: usize) {
        if i >= self.len() {
            return;
        }
        let mut names = self.names().to_vec();
        names.remove(i);
        let mut values = self.values().to_vec();
        values.remove(i);
        *self = Object::with_shape(Arc::new(names.into_boxed_slice()), values);
    }

    /// The fields as owned pairs, in name order.
    pub fn into_pairs(self) -> Vec<(FieldName, Value)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Builds an object from unsorted pairs; a later duplicate key wins.
    pub fn from_pairs(mut pairs: Vec<(FieldName, Value)>) -> Self {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                std::mem::swap(&mut later.1, &mut earlier.1);
                true
            } else {
                false
            }
        });
        if pairs.is_empty() {
            return Object::default();
        }
        let (names, values): (Vec<FieldName>, Vec<Value>) = pairs.into_iter().unzip();
        Object::with_shape(Arc::new(names.into_boxed_slice()), values)
    }
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
            || (self.len() == other.len()
                && (Arc::ptr_eq(self.shape(), other.shape()) || self.shape() == other.shape())
                && self.values() == other.values())
    }
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Serialised as the list of `(name, value)` pairs it always was, so state
/// files stay readable across versions.
impl Serialize for Object {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(FieldName, Value)>::deserialize(deserializer)?;
        Ok(Object::from_pairs(pairs))
    }
}
