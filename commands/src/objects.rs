//! The collections commands store in the log: one enum over the collection types, so that the
//! store sees one object type and handlers downcast once.

use std::any::Any;

use ferrite_collections::{Hash, List, Set, SortedSet, Stream};
use ferrite_hybridlog::{
    NO_EXPIRY, ObjectEntryMut, ObjectWrite, StoreObject, Value, ValueKind, ValueMut,
};

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
    /// A stream.
    Stream(Stream),
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

    /// Rebuilds a collection from what [`StoreObject::serialize`] wrote: the store's
    /// [`ObjectReader`](ferrite_hybridlog::tier::ObjectReader), which it calls for collections
    /// read back from its object log (register it with `Store::set_object_reader`).
    pub fn read(kind: ValueKind, bytes: &[u8]) -> Result<Box<dyn StoreObject>, String> {
        let e = |e: ferrite_collections::DecodeError| e.to_string();
        let c = match kind {
            ValueKind::List => Collection::List(List::deserialize(bytes).map_err(e)?),
            ValueKind::Hash => Collection::Hash(Hash::deserialize(bytes).map_err(e)?),
            ValueKind::Set => Collection::Set(Set::deserialize(bytes).map_err(e)?),
            ValueKind::ZSet => Collection::ZSet(SortedSet::deserialize(bytes).map_err(e)?),
            ValueKind::Stream => Collection::Stream(Stream::deserialize(bytes).map_err(e)?),
            ValueKind::String => return Err("a string is not a collection".into()),
        };
        Ok(c.boxed())
    }
}

impl StoreObject for Collection {
    fn kind(&self) -> ValueKind {
        match self {
            Collection::List(_) => ValueKind::List,
            Collection::Hash(_) => ValueKind::Hash,
            Collection::Set(_) => ValueKind::Set,
            Collection::ZSet(_) => ValueKind::ZSet,
            Collection::Stream(_) => ValueKind::Stream,
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
            Collection::Stream(c) => c.serialize(out),
        }
    }

    fn memory_usage(&self) -> usize {
        match self {
            Collection::List(c) => c.memory_usage(),
            Collection::Hash(c) => c.memory_usage(),
            Collection::Set(c) => c.memory_usage(),
            Collection::ZSet(c) => c.memory_usage(),
            Collection::Stream(c) => c.memory_usage(),
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
    /// A new empty collection (what a write to a missing key starts from).
    fn empty() -> Self;
    /// Runs `f` on an empty collection that may be this thread's cached one: a write to a
    /// missing key that leaves it empty (ZPOPMIN, SREM, LPOP on nothing) then allocates
    /// nothing. The collection comes back to the caller only if `f` filled it.
    fn with_empty<R>(f: impl FnOnce(&mut Self) -> R) -> (R, Option<Self>);
    /// Elements.
    fn count(&self) -> usize;
    /// Wraps it for the store.
    fn into_collection(self) -> Collection;
}

macro_rules! collection_type {
    ($ty:ty, $variant:ident) => {
        impl CollectionType for $ty {
            fn empty() -> Self {
                <$ty>::new()
            }
            fn with_empty<R>(f: impl FnOnce(&mut Self) -> R) -> (R, Option<Self>) {
                thread_local! {
                    static SPARE: std::cell::RefCell<Option<$ty>> =
                        const { std::cell::RefCell::new(None) };
                }
                let mut c = SPARE
                    .with_borrow_mut(Option::take)
                    .unwrap_or_else(<$ty>::new);
                let r = f(&mut c);
                if c.is_empty() {
                    SPARE.with_borrow_mut(|spare| *spare = Some(c));
                    (r, None)
                } else {
                    (r, Some(c))
                }
            }
            fn count(&self) -> usize {
                self.len()
            }
            fn into_collection(self) -> Collection {
                Collection::$variant(self)
            }
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

/// Streams take part in the generic reads ([`read_collection`], [`with_collection`]); their
/// writes go through `cmd::streams`, because an empty stream is not deleted.
impl CollectionType for Stream {
    fn of_ref(c: &Collection) -> Option<&Self> {
        match c {
            Collection::Stream(s) => Some(s),
            _ => None,
        }
    }
    fn of_mut(c: &mut Collection) -> Option<&mut Self> {
        match c {
            Collection::Stream(s) => Some(s),
            _ => None,
        }
    }
    fn empty() -> Self {
        Stream::new()
    }
    fn with_empty<R>(f: impl FnOnce(&mut Self) -> R) -> (R, Option<Self>) {
        let mut s = Stream::new();
        let r = f(&mut s);
        (r, (!s.is_empty()).then_some(s))
    }
    fn count(&self) -> usize {
        self.len()
    }
    fn into_collection(self) -> Collection {
        Collection::Stream(self)
    }
}

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
            ctx.miss(key);
            Found::Missing
        }
        Some(found) => {
            ctx.hit();
            found
        }
    }
}

/// The key holds a value of another type: the caller replies with [`Ctx::wrong_type`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongType;

/// Reads `key` as collection type `T`, as Redis's `lookupKeyRead` + `checkType`: `f` gets the
/// collection (`None` when the key is missing or expired) and the reply to write into. It runs
/// under the record's lock, so it must be short and must not use the store. `stats` counts a
/// keyspace hit or miss (readers; writers use `lookupKeyWrite`, which does not). Returns
/// `Err(WrongType)`, without calling `f`, when the key holds another type.
pub fn with_collection<T: CollectionType, R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    stats: bool,
    f: impl FnOnce(Option<&T>, &mut Reply<'_>) -> R,
) -> Result<R, WrongType> {
    let mut f = Some(f);
    let reply = &mut ctx.reply;
    let found = ctx
        .store
        .read_value(ctx.client.db, key, ctx.now_ms, |e| match e.value {
            Value::Object(o) => match Collection::of(o).and_then(T::of_ref) {
                Some(c) => f.take().map(|f| f(Some(c), reply)).ok_or(WrongType),
                None => Err(WrongType),
            },
            Value::String(_) => Err(WrongType),
        });
    match found {
        Some(r) => {
            if stats {
                ctx.hit();
            }
            r
        }
        None => {
            if stats {
                ctx.miss(key);
            }
            // `f` is still there: the store did not call the closure.
            f.take().map(|f| f(None, &mut ctx.reply)).ok_or(WrongType)
        }
    }
}

/// Read-modify-write of `key` as collection type `T`, atomically. `f` gets the collection (a new
/// empty one when the key is missing) and returns its result and whether it changed anything.
/// A new non-empty collection is stored without TTL, an existing one that became empty is
/// deleted (Redis deletes empty keys), an updated one keeps its TTL. `f` may be called again
/// with a fresh view if a racing insert wins, so it must not have side effects outside the
/// collection and its result. Also says what happened to the key ([`Change`]).
pub fn update_collection<T: CollectionType, R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    mut f: impl FnMut(&mut T) -> (R, bool),
) -> (Result<R, WrongType>, Change) {
    let mut grew = false;
    let mut emptied = false;
    let r = ctx.store.rmw_value(ctx.client.db, key, ctx.now_ms, |e| {
        grew = false;
        emptied = false;
        match slot::<T>(e) {
            Slot::Missing => match T::with_empty(|c| f(c).0) {
                (r, None) => ObjectWrite::Keep(Ok(r)),
                (r, Some(c)) => {
                    grew = true;
                    ObjectWrite::Put {
                        object: c.into_collection().boxed(),
                        expire_at: NO_EXPIRY,
                        result: Ok(r),
                    }
                }
            },
            Slot::WrongType => ObjectWrite::Keep(Err(WrongType)),
            Slot::Of(c) => {
                let before = c.count();
                let (r, changed) = f(c);
                grew = c.count() > before;
                if c.count() == 0 {
                    emptied = true;
                    ObjectWrite::Delete(Ok(r))
                } else if changed {
                    ObjectWrite::Updated(Ok(r))
                } else {
                    ObjectWrite::Keep(Ok(r))
                }
            }
        }
    });
    (r, Change { grew, emptied })
}

/// What [`update_collection`] did to the key.
#[derive(Debug, Clone, Copy)]
pub struct Change {
    /// The collection grew (blocked clients wait for that).
    pub grew: bool,
    /// The collection became empty, so the key was deleted (Redis then raises `del`).
    pub emptied: bool,
}
