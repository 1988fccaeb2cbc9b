//! The collections commands store in the log: one enum over the collection types, so that the
//! store sees one object type and handlers downcast once.

use std::any::Any;

use ferrite_collections::{Hash, List, Set, SortedSet};
use ferrite_hybridlog::{StoreObject, ValueKind};

/// A collection value.
#[derive(Clone, Debug)]
pub enum Collection {
    /// A list.
    List(List),
    /// A hash.
    Hash(Hash),
    /// A set.
    Set(Set),
    /// A sorted set.
    ZSet(SortedSet),
}

impl Collection {
    /// The collection inside a stored object, if the object is one of ours.
    pub fn of(object: &dyn StoreObject) -> Option<&Collection> {
        object.as_any().downcast_ref()
    }

    /// The collection inside a stored object, mutably.
    pub fn of_mut(object: &mut dyn StoreObject) -> Option<&mut Collection> {
        object.as_any_mut().downcast_mut()
    }

    /// Boxes the collection for the store.
    pub fn boxed(self) -> Box<dyn StoreObject> {
        Box::new(self)
    }
}

impl StoreObject for Collection {
    fn kind(&self) -> ValueKind {
        match self {
            Collection::List(_) => ValueKind::List,
            Collection::Hash(_) => ValueKind::Hash,
            Collection::Set(_) => ValueKind::Set,
            Collection::ZSet(_) => ValueKind::ZSet,
        }
    }

    fn clone_box(&self) -> Box<dyn StoreObject> {
        Box::new(self.clone())
    }

    fn serialize(&self, out: &mut Vec<u8>) {
        match self {
            Collection::List(c) => c.serialize(out),
            Collection::Hash(c) => c.serialize(out),
            Collection::Set(c) => c.serialize(out),
            Collection::ZSet(c) => c.serialize(out),
        }
    }

    fn memory_usage(&self) -> usize {
        match self {
            Collection::List(c) => c.memory_usage(),
            Collection::Hash(c) => c.memory_usage(),
            Collection::Set(c) => c.memory_usage(),
            Collection::ZSet(c) => c.memory_usage(),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
