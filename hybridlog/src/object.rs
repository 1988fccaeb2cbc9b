//! Collections as native objects in the log (Garnet's object store, inside the one log).
//!
//! A record whose kind is an object kind holds a pointer to a heap object instead of value
//! bytes. While the record is in memory the object is updated in place; below the read-only
//! address a writer clones it to the tail first (read-copy-update); when the tiering work moves
//! its page to disk it is serialized, and deserialized when read back.
//!
//! CONTRACT: the signatures below are what `commands` codes against.

use std::any::Any;
use std::cell::Cell;

use crate::ops::{self, Decision, Read, Seen};
use crate::record::ObjectCell;
use crate::{Db, Entry, Session, ValueKind};

/// A collection stored as a native object.
pub trait StoreObject: Any + Send + Sync {
    /// Which kind of value this is (never `ValueKind::String`).
    fn kind(&self) -> ValueKind;
    /// A deep copy, for read-copy-update of a record below the read-only address.
    fn clone_box(&self) -> Box<dyn StoreObject>;
    /// Appends a serialized form (used when the record's page leaves memory).
    fn serialize(&self, out: &mut Vec<u8>);
    /// Approximate heap bytes (MEMORY USAGE, INFO memory, `maxmemory`, the memory budget).
    /// Called after every write in place, so it must be O(1), and a function of the object's
    /// state alone: the store charges the difference between the figures before and after a
    /// write, and takes off the figure it reads when the object is given up, so two calls on an
    /// unchanged object must agree.
    fn memory_usage(&self) -> usize;
    /// For downcasting to the concrete type.
    fn as_any(&self) -> &dyn Any;
    /// For downcasting to the concrete type.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A key's value as object-aware commands read it.
pub enum Value<'a> {
    /// A string's bytes.
    String(&'a [u8]),
    /// A collection.
    Object(&'a dyn StoreObject),
}

/// A consistent view of a live key, for [`Session::read_value`].
pub struct ObjectEntry<'a> {
    /// The value.
    pub value: Value<'a>,
    /// Absolute expiry in Unix ms, or `NO_EXPIRY`.
    pub expire_at: u64,
    /// The value's kind.
    pub kind: ValueKind,
}

/// A mutable value, for [`Session::rmw_value`].
pub enum ValueMut<'a> {
    /// A string's bytes (strings are replaced, not mutated, through this API).
    String(&'a [u8]),
    /// A collection, which the callback may mutate in place.
    Object(&'a mut dyn StoreObject),
}

/// A live key under its record's lock, for [`Session::rmw_value`].
pub struct ObjectEntryMut<'a> {
    /// The value.
    pub value: ValueMut<'a>,
    /// Absolute expiry in Unix ms, or `NO_EXPIRY`.
    pub expire_at: u64,
    /// The value's kind.
    pub kind: ValueKind,
}

/// What an object read-modify-write decided.
pub enum ObjectWrite<R> {
    /// Nothing changed.
    Keep(R),
    /// The callback mutated the object in place.
    Updated(R),
    /// Replace the key's value (whatever its kind) with this object.
    Put {
        /// The new value.
        object: Box<dyn StoreObject>,
        /// Absolute expiry in Unix ms, or `NO_EXPIRY`.
        expire_at: u64,
        /// What `rmw_value` returns.
        result: R,
    },
    /// Change only the expiry.
    SetExpiry {
        /// Absolute expiry in Unix ms, or `NO_EXPIRY`.
        expire_at: u64,
        /// What `rmw_value` returns.
        result: R,
    },
    /// Delete the key (e.g. a collection that became empty).
    Delete(R),
}

impl Session {
    /// Calls `f` with a consistent view of `key` (string or object); `None` when absent or
    /// expired. Objects are seen under their record's lock, so `f` must be short and must not use
    /// the store.
    pub fn read_value<R>(
        &mut self,
        db: Db,
        key: &[u8],
        now_ms: u64,
        f: impl FnOnce(ObjectEntry<'_>) -> R,
    ) -> Option<R> {
        let s = &*self.store;
        let guard = self.handle.pin();
        let pdb = s.pdb(db);
        let hash = self.hash_of(key);
        let out = match ops::read_value(s, &guard, pdb, key, hash, now_ms, &mut self.buf, f) {
            Read::Found(r) => Some(r),
            Read::Absent => None,
            Read::Expired if !s.reaps_on_read() => None,
            Read::Expired => {
                let keep = |_: Option<Entry<'_>>, _: &mut Vec<u8>| Decision::Keep;
                let (scratch, commits) = (&mut self.scratch, &mut self.commits);
                ops::write(
                    s, &guard, pdb, key, hash, now_ms, scratch, commits, None, keep,
                );
                None
            }
        };
        drop(guard);
        self.trim_buffers();
        out
    }

    /// Read-modify-write of any value: `f` sees the live value under its record's lock (`None`
    /// when absent or expired) and may mutate an object in place (then returns `Updated`) or
    /// replace the value. `f` may be called again, with a fresh view, if a racing insert wins;
    /// it is never called again after it mutated an object.
    pub fn rmw_value<R>(
        &mut self,
        db: Db,
        key: &[u8],
        now_ms: u64,
        mut f: impl FnMut(Option<ObjectEntryMut<'_>>) -> ObjectWrite<R>,
    ) -> R {
        let s = &*self.store;
        self.wait_for_flusher();
        let guard = self.handle.pin();
        let mut result = None;
        let decide = |seen: Option<Seen<'_>>, _: &mut Vec<u8>| {
            let entry = seen.map(|seen| match seen {
                Seen::Entry(e) => ObjectEntryMut {
                    value: ValueMut::String(e.value),
                    expire_at: e.expire_at,
                    kind: e.kind,
                },
                Seen::Object { object, expire_at } => ObjectEntryMut {
                    kind: object.kind(),
                    value: ValueMut::Object(object),
                    expire_at,
                },
            });
            let (d, r) = match f(entry) {
                ObjectWrite::Keep(r) => (Decision::Keep, r),
                ObjectWrite::Updated(r) => (Decision::Updated, r),
                ObjectWrite::Put {
                    object,
                    expire_at,
                    result,
                } => (
                    Decision::PutObject {
                        cell: ObjectCell::new(object),
                        expire_at,
                    },
                    result,
                ),
                ObjectWrite::SetExpiry { expire_at, result } => {
                    (Decision::SetExpiry { expire_at }, result)
                }
                ObjectWrite::Delete(r) => (Decision::Delete, r),
            };
            result = Some(r);
            d
        };
        let hash = self.hash_of(key);
        let pdb = s.pdb(db);
        let (scratch, commits) = (&mut self.scratch, &mut self.commits);
        ops::write_core(
            s, &guard, pdb, key, hash, now_ms, scratch, commits, None, true, None, decide,
        );
        drop(guard);
        self.trim_buffers();
        result.expect("write calls its decision at least once")
    }

    /// Blind write of an object (SUNIONSTORE, SORT ... STORE, RESTORE, COPY).
    pub fn upsert_object(
        &mut self,
        db: Db,
        key: &[u8],
        object: Box<dyn StoreObject>,
        expire_at: u64,
    ) {
        let s = &*self.store;
        self.wait_for_flusher();
        let guard = self.handle.pin();
        // A lost insert race hands the unpublished cell back here for the next attempt.
        let slot = Cell::new(Some(ObjectCell::new(object)));
        let put = |_: Option<Seen<'_>>, _: &mut Vec<u8>| Decision::PutObject {
            cell: slot.take().expect("the cell comes back after a lost race"),
            expire_at,
        };
        let hash = self.hash_of(key);
        // As in `upsert`: no clock, so an overwritten expired key counts as replaced.
        let (pdb, scratch) = (s.pdb(db), &mut self.scratch);
        ops::write_core(
            s,
            &guard,
            pdb,
            key,
            hash,
            0,
            scratch,
            &mut self.commits,
            None,
            false,
            Some(&slot),
            put,
        );
    }

    /// Runs the epoch's deferred frees that are due (superseded values and objects). The store
    /// does this on its own as sessions pin; tests and idle ticks may call it to hurry it along.
    pub fn collect_garbage(&mut self) {
        self.handle.pin().flush();
    }
}
