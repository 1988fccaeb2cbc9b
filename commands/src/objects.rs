//! The collections commands store in the log: one enum over the collection types, so that the
//! store sees one object type and handlers downcast once.

use std::any::Any;

use ferrite_collections::{Hash, List, Set, SortedSet};
use ferrite_hybridlog::{ObjectEntryMut, StoreObject, Value, ValueKind, ValueMut};

use crate::ctx::Ctx;
use crate::resp::Reply;

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

/// A collection type commands can ask for by type.
pub trait CollectionType: Sized {
    /// The collection if it is of this type.
    fn of_ref(c: &Collection) -> Option<&Self>;
    /// The collection if it is of this type, mutably.
    fn of_mut(c: &mut Collection) -> Option<&mut Self>;
}

macro_rules! collection_type {
    ($ty:ty, $variant:ident) => {
        impl CollectionType for $ty {
            fn of_ref(c: &Collection) -> Option<&Self> {
                match c {
                    Collection::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn of_mut(c: &mut Collection) -> Option<&mut Self> {
                match c {
                    Collection::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

collection_type!(List, List);
collection_type!(Hash, Hash);
collection_type!(Set, Set);
collection_type!(SortedSet, ZSet);

/// What a key holds, as a write command for collection type `T` sees it inside `rmw_value`.
pub enum Slot<'e, T> {
    /// No such key (or it expired).
    Missing,
    /// A key of another type.
    WrongType,
    /// The collection, mutable in place.
    Of(&'e mut T),
}

/// Classifies an `rmw_value` entry for collection type `T`.
pub fn slot<T: CollectionType>(entry: Option<ObjectEntryMut<'_>>) -> Slot<'_, T> {
    let Some(entry) = entry else {
        return Slot::Missing;
    };
    match entry.value {
        ValueMut::Object(o) => match Collection::of_mut(o).and_then(T::of_mut) {
            Some(c) => Slot::Of(c),
            None => Slot::WrongType,
        },
        ValueMut::String(_) => Slot::WrongType,
    }
}

/// The outcome of a read through [`read_collection`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Found {
    /// No such key.
    Missing,
    /// A key of another type.
    WrongType,
    /// The callback ran.
    Yes,
}

/// Reads `key` as collection type `T` for a read-only command, counting the keyspace hit or miss
/// as Redis's `lookupKeyRead` does. `f` runs under the record's lock and may write the reply
/// directly (no copy of the elements); the caller replies for the other outcomes.
pub fn read_collection<'c, T: CollectionType>(
    ctx: &mut Ctx<'c>,
    key: &[u8],
    f: impl FnOnce(&T, &mut Reply<'c>),
) -> Found {
    let db = ctx.client.db;
    let reply = &mut ctx.reply;
    let found = ctx
        .store
        .read_value(db, key, ctx.now_ms, |e| match e.value {
            Value::Object(o) => match Collection::of(o).and_then(T::of_ref) {
                Some(c) => {
                    f(c, reply);
                    Found::Yes
                }
                None => Found::WrongType,
            },
            Value::String(_) => Found::WrongType,
        });
    match found {
        None => {
            ctx.miss();
            Found::Missing
        }
        Some(found) => {
            ctx.hit();
            found
        }
    }
}
