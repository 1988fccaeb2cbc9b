//! The two operation cores every public call is built from: a lock-free read and a write that
//! decides on the old value and commits atomically with respect to it.
//!
//! Writes on a key serialise on the seqlock of the key's newest record: whoever holds it may
//! update in place (mutable region, value fits), or append a copy and publish it by CASing the
//! index entry (read-copy-update), then *seal* the old record. A writer that finds its record
//! sealed has lost a race and starts over from the index. A key with no record at all is
//! inserted by CASing the entry from the chain head the writer searched; any concurrent change to
//! that chain fails the CAS, so two inserts of one key cannot both win. This is what makes
//! `rmw` free of lost updates, including across the read-only boundary (FASTER's fuzzy region):
//! an in-place writer and a copier of the same record hold the same lock.

use std::cell::Cell;

use crossbeam_epoch::Guard;

use crate::KeyEventKind;
use crate::commit::{Commit, Journal};
use crate::index::EntrySlot;
use crate::object::{ObjectEntry, Value};
use crate::record::{Meta, ObjectCell, Rec, RecordInit, RecordLock, Shape, object_mut, object_ref};
use crate::store::Store;
use crate::sync::Ordering;
use crate::sync::spin_wait;
use crate::{Entry, NO_EXPIRY, StoreObject, ValueKind};

/// Records an access to the live record a read found (LRU/LFU). A copy read back from disk
/// would not keep the change: it is copied to the tail instead (access bits included, this
/// access counted), so that the next read of a hot key is served from memory.
#[inline]
fn touch_found(s: &Store, g: &Guard, hash: u64, rec: Rec<'_>) {
    if rec.address() >= s.log.head_address() {
        s.access.touch(rec);
    } else {
        crate::tier::promote(s, g, hash, rec);
    }
}

/// Whether `expire_at` has passed at `now_ms`.
#[inline]
pub(crate) fn is_expired(expire_at: u64, now_ms: u64) -> bool {
    expire_at != NO_EXPIRY && expire_at <= now_ms
}

/// A write's decision, without the value bytes (which are in the scratch buffer or the caller's
/// slice).
#[derive(Debug)]
pub(crate) enum Decision {
    Keep,
    Put {
        kind: ValueKind,
        expire_at: u64,
    },
    /// Replace the value with this object.
    PutObject {
        cell: ObjectCell,
        expire_at: u64,
    },
    /// The object handed to the decision was mutated: keep it (in place, or publish the copy).
    Updated,
    SetExpiry {
        expire_at: u64,
    },
    Delete,
}

/// What a write's decision sees of a live key.
pub(crate) enum Seen<'a> {
    /// A string, or an object seen by a write that did not ask for objects (value empty).
    Entry(Entry<'a>),
    /// An object the decision may mutate (the record's own, or its copy for read-copy-update).
    Object {
        object: &'a mut dyn StoreObject,
        expire_at: u64,
    },
}

/// What a write found and did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Outcome {
    /// A live (unexpired) value existed when the decision was made.
    pub old_live: bool,
    /// An expired record was reaped.
    pub reaped: bool,
    /// Nothing was applied: the key changed under a record read back from disk; start over.
    pub retry: bool,
}

/// What a read found.
pub(crate) enum Read<R> {
    Found(R),
    Absent,
    Expired,
}

/// Reads the newest record of `key` without taking any lock. `guard` is the caller's pin, which
/// every borrow handed to `f` depends on.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read<R>(
    s: &Store,
    guard: &Guard,
    pdb: u8,
    key: &[u8],
    hash: u64,
    now: u64,
    buf: &mut Vec<u8>,
    f: impl FnOnce(Entry<'_>) -> R,
) -> Read<R> {
    let Some(rec) = s.newest(hash, pdb, key) else {
        return Read::Absent;
    };
    read_record(s, guard, hash, rec, now, buf, f)
}

/// [`read`] of a record already found (objects show as empty values of their kind). The
/// caller is pinned since before it loaded the index entry that led to `rec`.
fn read_record<R>(
    s: &Store,
    guard: &Guard,
    hash: u64,
    rec: Rec<'_>,
    now: u64,
    buf: &mut Vec<u8>,
    f: impl FnOnce(Entry<'_>) -> R,
) -> Read<R> {
    let (meta, expire_at, value);
    if rec.address() < s.log.safe_read_only_address() {
        (meta, expire_at) = (Meta(rec.meta()), rec.expire_at());
        if meta.tombstone() || is_expired(expire_at, now) {
            return if meta.tombstone() {
                Read::Absent
            } else {
                Read::Expired
            };
        }
        // SAFETY: below the safe read-only address no thread writes the value any more, and a
        // heap value of the newest record is retired only through the epoch we are pinned in.
        value = unsafe { rec.value_unsynchronized(meta.0) };
    } else {
        let (m, e, ptr) = rec.snapshot(buf);
        (meta, expire_at) = (Meta(m), e);
        if meta.tombstone() || is_expired(expire_at, now) {
            return if meta.tombstone() {
                Read::Absent
            } else {
                Read::Expired
            };
        }
        value = if rec.value_heap() {
            debug_assert!(ptr != 0, "a live heap record has a block");
            // SAFETY: the validated snapshot says the block belonged to the key's newest record
            // while we were pinned (we pinned before loading the index entry), so its retirement,
            // if any, is deferred past our guard; blocks are immutable.
            unsafe { std::slice::from_raw_parts(ptr as *const u8, meta.len()) }
        } else {
            &buf[..]
        };
    }
    touch_found(s, guard, hash, rec);
    Read::Found(f(Entry {
        value,
        expire_at,
        kind: meta.kind(),
    }))
}

/// Reads the newest record of `key` straight into `out`: for a live record, `header(out, kind,
/// len)` writes whatever goes before the value and says whether the value is wanted; if so the
/// value's `len` bytes are appended, copied once from the record (or its heap block). If not,
/// `out` is rolled back to where it was. In the mutable and fuzzy regions the copy runs under
/// the record's seqlock, and a torn copy is rolled back (header included) and retried, so
/// `header` may run more than once. Objects show as empty values of their kind. `guard` is
/// the caller's pin.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_append(
    s: &Store,
    guard: &Guard,
    pdb: u8,
    key: &[u8],
    hash: u64,
    now: u64,
    out: &mut Vec<u8>,
    mut header: impl FnMut(&mut Vec<u8>, ValueKind, usize) -> bool,
) -> Read<ValueKind> {
    let Some(rec) = s.newest(hash, pdb, key) else {
        return Read::Absent;
    };
    let mark = out.len();
    if rec.address() < s.log.safe_read_only_address() {
        let (meta, expire_at) = (Meta(rec.meta()), rec.expire_at());
        if meta.tombstone() {
            return Read::Absent;
        }
        if is_expired(expire_at, now) {
            return Read::Expired;
        }
        // SAFETY: below the safe read-only address no thread writes the value any more, and a
        // heap value of the newest record is retired only through the epoch we are pinned in.
        let value = unsafe { rec.value_unsynchronized(meta.0) };
        if header(out, meta.kind(), value.len()) {
            out.extend_from_slice(value);
        } else {
            out.truncate(mark);
        }
        touch_found(s, guard, hash, rec);
        return Read::Found(meta.kind());
    }
    let heap = rec.value_heap();
    let mut step = 0;
    loop {
        let Some(v) = crate::seqlock::read_begin(rec.version()) else {
            spin_wait(&mut step);
            continue;
        };
        let (meta, expire_at) = (Meta(rec.meta()), rec.expire_at());
        let ptr = if heap {
            rec.value_ptr().load(Ordering::Relaxed)
        } else {
            0
        };
        if meta.tombstone() || is_expired(expire_at, now) || heap {
            // Nothing is copied under the lock: validate what decides before acting on it.
            if !crate::seqlock::read_validate(rec.version(), v) {
                spin_wait(&mut step);
                continue;
            }
            if meta.tombstone() {
                return Read::Absent;
            }
            if is_expired(expire_at, now) {
                return Read::Expired;
            }
            debug_assert!(ptr != 0, "a live heap record has a block");
            // SAFETY: the validated snapshot says the block belonged to the key's newest record
            // while we were pinned (we pinned before loading the index entry), so its
            // retirement, if any, is deferred past our guard; blocks are immutable.
            let value = unsafe { std::slice::from_raw_parts(ptr as *const u8, meta.len()) };
            if header(out, meta.kind(), value.len()) {
                out.extend_from_slice(value);
            } else {
                out.truncate(mark);
            }
            touch_found(s, guard, hash, rec);
            return Read::Found(meta.kind());
        }
        // An inline value: header and bytes go out under the seqlock, and come back out if the
        // version moved (the length, the kind and the bytes may all have been torn).
        let wanted = header(out, meta.kind(), meta.len());
        if wanted {
            rec.append_inline(meta.len(), out);
        }
        if crate::seqlock::read_validate(rec.version(), v) {
            if !wanted {
                out.truncate(mark);
            }
            touch_found(s, guard, hash, rec);
            return Read::Found(meta.kind());
        }
        out.truncate(mark);
        spin_wait(&mut step);
    }
}

/// A record's (meta, expire) under its seqlock (or directly below the safe read-only address),
/// without copying the value.
pub(crate) fn state(s: &Store, r: Rec<'_>) -> (Meta, u64) {
    if r.address() < s.log.safe_read_only_address() {
        return (Meta(r.meta()), r.expire_at());
    }
    let mut step = 0;
    loop {
        if let Some(v) = crate::seqlock::read_begin(r.version()) {
            let (m, e) = (r.meta(), r.expire_at());
            if crate::seqlock::read_validate(r.version(), v) {
                return (Meta(m), e);
            }
        }
        spin_wait(&mut step);
    }
}

/// The kind and expiry of `key`'s live record, without copying its value.
pub(crate) fn probe(
    s: &Store,
    _guard: &Guard,
    pdb: u8,
    key: &[u8],
    hash: u64,
    now: u64,
) -> Read<(ValueKind, u64)> {
    let Some(rec) = s.newest(hash, pdb, key) else {
        return Read::Absent;
    };
    let (meta, expire_at) = state(s, rec);
    if meta.tombstone() {
        Read::Absent
    } else if is_expired(expire_at, now) {
        Read::Expired
    } else {
        Read::Found((meta.kind(), expire_at))
    }
}

/// Reads the newest record of `key`, strings through [`read`] and objects under their record's
/// lock (or lock-free below the safe read-only address, where nothing mutates them).
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_value<R>(
    s: &Store,
    guard: &Guard,
    pdb: u8,
    key: &[u8],
    hash: u64,
    now: u64,
    buf: &mut Vec<u8>,
    f: impl FnOnce(ObjectEntry<'_>) -> R,
) -> Read<R> {
    let mut f = Some(f);
    let mut step = 0;
    loop {
        let Some(rec) = s.newest(hash, pdb, key) else {
            return Read::Absent;
        };
        if !rec.is_object() {
            let f = f.take().expect("called once");
            return read_record(s, guard, hash, rec, now, buf, |e| {
                f(ObjectEntry {
                    value: Value::String(e.value),
                    expire_at: e.expire_at,
                    kind: e.kind,
                })
            });
        }
        if rec.address() < s.log.safe_read_only_address() {
            let (meta, expire_at) = (Meta(rec.meta()), rec.expire_at());
            if meta.tombstone() {
                return Read::Absent;
            }
            if is_expired(expire_at, now) {
                return Read::Expired;
            }
            let ptr = rec.object_ptr().load(Ordering::Relaxed);
            // SAFETY: below the safe read-only address no thread mutates the object or its
            // pointer word; a live record's cell is non-zero, and if the record is being sealed
            // the cell's drop is deferred past our pin (taken before we loaded the index entry).
            let object = unsafe { object_ref(ptr) };
            let f = f.take().expect("called once");
            touch_found(s, guard, hash, rec);
            return Read::Found(f(ObjectEntry {
                value: Value::Object(object),
                expire_at,
                kind: meta.kind(),
            }));
        }
        let Some(lock) = rec.try_lock() else {
            spin_wait(&mut step);
            continue;
        };
        let meta = Meta(rec.meta());
        if meta.sealed() {
            continue;
        }
        if meta.tombstone() {
            return Read::Absent;
        }
        let expire_at = rec.expire_at();
        if is_expired(expire_at, now) {
            return Read::Expired;
        }
        let ptr = rec.object_ptr().load(Ordering::Relaxed);
        // SAFETY: we hold the record's writer lock, so nobody mutates the object or replaces
        // its cell while `f` runs; the unsealed, live record owns its (non-zero) cell.
        let object = unsafe { object_ref(ptr) };
        let f = f.take().expect("called once");
        let r = f(ObjectEntry {
            value: Value::Object(object),
            expire_at,
            kind: meta.kind(),
        });
        drop(lock);
        touch_found(s, guard, hash, rec);
        return Read::Found(r);
    }
}

/// Runs `decide` on the key's current value and commits its decision atomically with respect to
/// that value. `decide` gets an emptied `scratch` each call and may be called again after a lost
/// race. A `Put` stores `fixed` if given, else the scratch bytes. `decide` runs while the key's
/// record is locked: it must not touch the store (another session reading the same key would
/// wait for it forever). Objects are seen as empty values of their kind.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write(
    s: &Store,
    g: &Guard,
    pdb: u8,
    key: &[u8],
    hash: u64,
    now: u64,
    scratch: &mut Vec<u8>,
    commits: &mut Journal,
    fixed: Option<&[u8]>,
    mut decide: impl FnMut(Option<Entry<'_>>, &mut Vec<u8>) -> Decision,
) -> Outcome {
    let decide = |seen: Option<Seen<'_>>, scratch: &mut Vec<u8>| {
        let entry = seen.map(|seen| match seen {
            Seen::Entry(e) => e,
            Seen::Object { .. } => unreachable!("objects are only handed to object writes"),
        });
        decide(entry, scratch)
    };
    write_core(
        s, g, pdb, key, hash, now, scratch, commits, fixed, false, None, decide,
    )
}

/// The write core. With `objects`, a live object is handed to `decide` as [`Seen::Object`]
/// (the record's own in the mutable region, a copy below the read-only address); otherwise as
/// an empty [`Entry`] of its kind. An object put by a lost insert race goes back to `recycle`
/// if given (else it is dropped, and `decide` makes another).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_core(
    s: &Store,
    g: &Guard,
    pdb: u8,
    key: &[u8],
    hash: u64,
    now: u64,
    scratch: &mut Vec<u8>,
    commits: &mut Journal,
    fixed: Option<&[u8]>,
    objects: bool,
    recycle: Option<&Cell<Option<ObjectCell>>>,
    mut decide: impl FnMut(Option<Seen<'_>>, &mut Vec<u8>) -> Decision,
) -> Outcome {
    let mut step = 0;
    loop {
        let found = s.newest_entry(hash, pdb, key);
        let Some((entry, rec)) = found else {
            scratch.clear();
            let (value, object, kind, expire_at) = match decide(None, scratch) {
                Decision::Put { kind, expire_at } => {
                    (fixed.unwrap_or(scratch), None, kind, expire_at)
                }
                Decision::PutObject { cell, expire_at } => {
                    let kind = object_kind(&cell);
                    (&[][..], Some(cell), kind, expire_at)
                }
                _ => return Outcome::default(),
            };
            match insert(
                s, g, pdb, key, hash, value, object, kind, expire_at, commits,
            ) {
                Ok(()) => {
                    if s.key_events_on() {
                        commits.note(pdb, key, false, true);
                    }
                    if s.modified_events_on() {
                        commits.push_event(KeyEventKind::Modified, pdb, key);
                    }
                    return Outcome::default();
                }
                Err(cell) => {
                    if let (Some(r), Some(cell)) = (recycle, cell) {
                        r.set(Some(cell));
                    }
                }
            }
            spin_wait(&mut step);
            continue;
        };
        let Some(lock) = rec.try_lock() else {
            spin_wait(&mut step);
            continue;
        };
        if Meta(rec.meta()).sealed() {
            continue;
        }
        let outcome = update(
            s,
            g,
            lock,
            entry,
            now,
            scratch,
            commits,
            fixed,
            objects,
            &mut decide,
        );
        if outcome.retry {
            spin_wait(&mut step);
            continue;
        }
        return outcome;
    }
}

/// The kind of the object in a cell we own.
fn object_kind(cell: &ObjectCell) -> ValueKind {
    // SAFETY: we own the cell and nobody else can reach it.
    let kind = unsafe { object_ref(cell.as_raw()) }.kind();
    debug_assert!(kind.is_object(), "StoreObject::kind must be an object kind");
    kind
}

/// Inserts the first record of a key whose chain (from the current head) holds none. False when
/// a concurrent writer changed the chain first (then `object`, unpublished, comes back).
#[allow(clippy::too_many_arguments)]
fn insert(
    s: &Store,
    g: &Guard,
    pdb: u8,
    key: &[u8],
    hash: u64,
    value: &[u8],
    object: Option<ObjectCell>,
    kind: ValueKind,
    expire_at: u64,
    commits: &mut Vec<Commit>,
) -> Result<(), Option<ObjectCell>> {
    let mut entry = s.index.find_or_create(hash);
    if s.find_record(entry.address(), pdb, key).is_some() {
        return Err(object);
    }
    let init = RecordInit {
        prev: entry.address(),
        pdb,
        key,
        value,
        kind,
        expire_at,
        tombstone: false,
        object: object.as_ref().map_or(0, ObjectCell::as_raw),
    };
    let new = s.append(g, &init);
    // Before the CAS that publishes the key: whoever writes it next finds this record first.
    // A lost race still reports its number (as a write of nothing).
    if let Some(seq) = s.commits.take() {
        commits.push(Commit { seq, reaped: None });
    }
    if entry.try_swap(new.address()) {
        // The published record owns the cell now.
        object.map(ObjectCell::into_raw);
        s.count(pdb, 1, i64::from(expire_at != NO_EXPIRY));
        s.count_bytes(new.size() as i64);
        Ok(())
    } else {
        s.discard(new);
        Err(object)
    }
}

/// Applies a decision to a key whose newest record we hold locked (and unsealed).
#[allow(clippy::too_many_arguments)]
fn update(
    s: &Store,
    g: &Guard,
    mut lock: RecordLock<'_>,
    entry: EntrySlot<'_>,
    now: u64,
    scratch: &mut Vec<u8>,
    commits: &mut Journal,
    fixed: Option<&[u8]>,
    objects: bool,
    decide: &mut impl FnMut(Option<Seen<'_>>, &mut Vec<u8>) -> Decision,
) -> Outcome {
    let rec = lock.rec();
    let meta = Meta(rec.meta());
    let expire = rec.expire_at();
    let tomb = meta.tombstone();
    let expired = !tomb && is_expired(expire, now);
    let live = !tomb && !expired;
    let mutable = rec.address() >= s.log.read_only_address();
    let is_object = rec.is_object() && live;
    // Below the read-only address an object is never mutated: a writer that wants it mutable
    // gets a copy, published by read-copy-update if it keeps its changes.
    let mut copy_cell: Option<ObjectCell> = None;
    // The record's own object handed out mutably, and what it measured before: whatever the
    // decision, a change in place is counted (a collection emptied and then deleted is taken
    // off at the size it shrank to).
    let mut in_place: Option<(u64, usize)> = None;
    scratch.clear();
    let decision = if !live {
        decide(None, scratch)
    } else if is_object && objects {
        let ptr = rec.object_ptr().load(Ordering::Relaxed);
        let object: &mut dyn StoreObject = if mutable {
            // SAFETY: we hold the writer lock of a live, unsealed record in the mutable region:
            // it owns its non-zero cell, and no reader or writer touches the object meanwhile
            // (readers of mutable-region objects take this lock).
            let object = unsafe { object_mut(ptr) };
            in_place = Some((ptr, object.memory_usage()));
            object
        } else {
            // SAFETY: we hold the writer lock and the record owns its cell; below the
            // read-only address the object is only read.
            let original = unsafe { object_ref(ptr) };
            copy_cell
                .insert(ObjectCell::new(original.clone_box()))
                .get_mut()
        };
        decide(
            Some(Seen::Object {
                object,
                expire_at: expire,
            }),
            scratch,
        )
    } else {
        // SAFETY: we hold the writer lock, so nobody writes the value while `decide` reads it,
        // and the unsealed record still owns its heap block. (An object record's bytes are
        // empty.)
        let value = unsafe { rec.value_unsynchronized(meta.0) };
        decide(
            Some(Seen::Entry(Entry {
                value,
                expire_at: expire,
                kind: meta.kind(),
            })),
            scratch,
        )
    };
    if let Some((ptr, before)) = in_place {
        // SAFETY: as above: still locked, the record still owns the cell (`decide` cannot
        // replace it), and `decide`'s borrow has ended.
        let after = unsafe { object_ref(ptr) }.memory_usage();
        if after != before {
            s.object_delta(rec.address(), after as i64 - before as i64);
            if after > before {
                s.after_growth(g);
            }
        }
    }
    let puts = matches!(decision, Decision::Put { .. } | Decision::PutObject { .. });
    let reap_only = expired && !puts;
    // Without a live value only a Put means anything; an expired record is reaped regardless.
    let decision = match (decision, live) {
        (d @ (Decision::Put { .. } | Decision::PutObject { .. }), _) | (d, true) => d,
        (_, false) if expired => Decision::Delete,
        (_, false) => Decision::Keep,
    };
    let decision = match decision {
        // Only an object handed out mutably can have been updated.
        Decision::Updated if !(is_object && objects) => Decision::Keep,
        d => d,
    };
    let (new_live, new_ttl) = match decision {
        Decision::Keep => {
            return Outcome {
                old_live: live,
                reaped: false,
                retry: false,
            };
        }
        Decision::Updated => (true, expire != NO_EXPIRY),
        Decision::Put { expire_at, .. }
        | Decision::PutObject { expire_at, .. }
        | Decision::SetExpiry { expire_at } => (true, expire_at != NO_EXPIRY),
        Decision::Delete => (false, false),
    };
    let pdb = rec.pdb();
    let key = rec.key();
    // Under the record's lock: the next writer of this key takes a larger number.
    let mut took_commit = false;
    if let Some(seq) = s.commits.take() {
        let reaped = reap_only.then(|| (pdb, Box::<[u8]>::from(key)));
        commits.push(Commit { seq, reaped });
        took_commit = true;
    }
    let copy = |value, kind, expire_at, tombstone| RecordInit {
        prev: 0,
        pdb,
        key,
        value,
        kind,
        expire_at,
        tombstone,
        object: 0,
    };
    // The size of the record that holds the key afterwards (this one, unless replaced).
    let mut new_size = rec.size();
    match decision {
        Decision::Keep => unreachable!("returned above"),
        Decision::Updated => {
            if let Some(cell) = copy_cell.take() {
                let init = copy(&[], object_kind(&cell), expire, false);
                new_size = record_size(s, &init, true);
                if !replace(s, g, &mut lock, entry, init, Some(cell)) {
                    return retry(commits, took_commit);
                }
            } else {
                lock.mark_changed();
            }
        }
        Decision::Put { kind, expire_at } => {
            let value = fixed.unwrap_or(scratch);
            if mutable && lock.fits(value.len(), s.inline_limit) {
                s.heap_delta(rec.address(), lock.put(value, kind, expire_at, g));
            } else {
                let init = copy(value, kind, expire_at, false);
                new_size = record_size(s, &init, false);
                if !replace(s, g, &mut lock, entry, init, None) {
                    return retry(commits, took_commit);
                }
            }
        }
        Decision::PutObject { cell, expire_at } => {
            let kind = object_kind(&cell);
            if mutable && rec.is_object() {
                s.charge_object(rec.address(), &cell);
                s.release(rec.address(), lock.put_object(cell, kind, expire_at, g));
            } else {
                let init = copy(&[], kind, expire_at, false);
                new_size = record_size(s, &init, true);
                if !replace(s, g, &mut lock, entry, init, Some(cell)) {
                    return retry(commits, took_commit);
                }
            }
        }
        Decision::SetExpiry { expire_at } => {
            if mutable {
                lock.set_expiry(expire_at);
            } else if rec.is_object() {
                let cell = copy_cell.take().unwrap_or_else(|| {
                    let ptr = rec.object_ptr().load(Ordering::Relaxed);
                    // SAFETY: as above: locked, owned, only read below the read-only address.
                    ObjectCell::new(unsafe { object_ref(ptr) }.clone_box())
                });
                let init = copy(&[], meta.kind(), expire_at, false);
                new_size = record_size(s, &init, true);
                if !replace(s, g, &mut lock, entry, init, Some(cell)) {
                    return retry(commits, took_commit);
                }
            } else {
                // SAFETY: as above, we hold the writer lock.
                let value = unsafe { rec.value_unsynchronized(meta.0) };
                let init = copy(value, meta.kind(), expire_at, false);
                new_size = record_size(s, &init, false);
                if !replace(s, g, &mut lock, entry, init, None) {
                    return retry(commits, took_commit);
                }
            }
        }
        Decision::Delete => {
            if mutable {
                s.release(rec.address(), lock.tombstone(g));
            } else {
                let init = copy(&[], ValueKind::String, 0, true);
                new_size = record_size(s, &init, false);
                if !replace(s, g, &mut lock, entry, init, None) {
                    return retry(commits, took_commit);
                }
            }
        }
    }
    if new_live && new_size == rec.size() {
        // Updated in place (or copied at the same size): an access, as Redis counts a write.
        s.access.touch(rec);
    }
    drop(lock);
    s.count_bytes(
        if new_live { new_size as i64 } else { 0 } - if tomb { 0 } else { rec.size() as i64 },
    );
    if new_live && tomb {
        entry.mark_live()
    } // occupancy: tombstone revived in place (index.rs)
    let old_ttl = !tomb && expire != NO_EXPIRY;
    s.count(
        pdb,
        i64::from(new_live) - i64::from(!tomb),
        i64::from(new_ttl) - i64::from(old_ttl),
    );
    if expired {
        s.count_expired();
    }
    // Only a write that took effect gets here (a lost race returned `RETRY` above).
    if s.key_events_on() {
        commits.note(pdb, key, expired, new_live && !live);
    }
    if s.modified_events_on() {
        commits.push_event(KeyEventKind::Modified, pdb, key);
    }
    Outcome {
        old_live: live,
        reaped: expired,
        retry: false,
    }
}

/// Copies the live newest record `rec` (one holding a heap key, heap value or object) to the
/// tail so that its page can leave memory, moving its object rather than cloning it. False if
/// it is no longer its key's newest live record (a writer superseded it: nothing to keep).
pub(crate) fn relocate(s: &Store, g: &Guard, rec: Rec<'_>) -> bool {
    let (pdb, key) = (rec.pdb(), rec.key());
    let hash = s.hasher.hash(key);
    let mut step = 0;
    loop {
        let Some(entry) = s.index.find(hash) else {
            return false;
        };
        match s.find_record(entry.address(), pdb, key) {
            Some(newest) if newest.address() == rec.address() => {}
            _ => return false,
        }
        let Some(mut lock) = rec.try_lock() else {
            spin_wait(&mut step);
            continue;
        };
        let meta = Meta(rec.meta());
        if meta.sealed() || meta.tombstone() {
            return false;
        }
        let init = RecordInit {
            prev: 0,
            pdb,
            key,
            value: &[],
            kind: meta.kind(),
            expire_at: rec.expire_at(),
            tombstone: false,
            object: 0,
        };
        if rec.is_object() {
            let cell = rec.object_ptr().load(Ordering::Relaxed);
            // Measured before the move publishes it (its new record's writers may change it
            // then): the new record is charged this much at append, this one gives it up.
            // SAFETY: locked, unsealed and live: the record owns its non-zero cell.
            let bytes = unsafe { object_ref(cell) }.memory_usage();
            publish(
                s,
                g,
                entry,
                RecordInit {
                    object: cell,
                    ..init
                },
            );
            lock.seal_moved();
            s.object_delta(rec.address(), -(bytes as i64));
        } else {
            // SAFETY: we hold the writer lock of the unsealed record, which owns its value.
            let value = unsafe { rec.value_unsynchronized(meta.0) };
            replace(s, g, &mut lock, entry, RecordInit { value, ..init }, None);
        }
        return true;
    }
}

/// Appends a copy of `init` after the chain head of `entry` and CASes the entry to it, retrying
/// with a fresh record until the CAS wins (a failure only means another key moved the head).
fn publish(s: &Store, g: &Guard, mut entry: EntrySlot<'_>, init: RecordInit<'_>) {
    loop {
        entry.reload();
        let new: Rec<'_> = s.append(
            g,
            &RecordInit {
                prev: entry.address(),
                ..init
            },
        );
        if entry.try_swap(new.address()) {
            return;
        }
        s.discard(new);
    }
}

/// The size of the record `init` makes (an object record when `object`).
fn record_size(s: &Store, init: &RecordInit<'_>, object: bool) -> usize {
    if object {
        Shape::object(init.key.len(), s.inline_limit).size
    } else {
        Shape::new(
            init.key.len(),
            init.value.len(),
            init.tombstone,
            s.inline_limit,
        )
        .size
    }
}

/// What `update` returns when a write on a record read back from disk lost a race: its commit
/// number, if it took one, stays filed, but as a write of nothing (a reap it meant to log did
/// not happen; the retry takes a new number).
fn retry(commits: &mut [Commit], took_commit: bool) -> Outcome {
    if took_commit && let Some(c) = commits.last_mut() {
        c.reaped = None;
    }
    RETRY
}

/// What `update` returns when a write on a record read back from disk lost a race.
const RETRY: Outcome = Outcome {
    old_live: false,
    reaped: false,
    retry: true,
};

/// Read-copy-update: publishes a new newest record for the locked record's key (holding
/// `object`, if given, which it then owns), then seals the old one. Holding the old record's
/// lock means no other writer can add a record for this key, so a failed CAS only means another
/// key on the chain moved the head: retry with a fresh record (allocated after the new head,
/// keeping chain addresses decreasing).
///
/// A record below the head is this thread's private copy read back from disk, and its lock
/// excludes nobody: then the CAS must succeed from the entry as it was when the record was
/// found (any change of the chain since may be a newer record of this very key), and a
/// failure returns false with nothing published (the caller starts over).
fn replace(
    s: &Store,
    g: &Guard,
    lock: &mut RecordLock<'_>,
    mut entry: EntrySlot<'_>,
    init: RecordInit<'_>,
    object: Option<ObjectCell>,
) -> bool {
    let init = RecordInit {
        object: object.as_ref().map_or(0, ObjectCell::as_raw),
        ..init
    };
    if lock.rec().address() < s.log.head_address() {
        let new = s.append(
            g,
            &RecordInit {
                prev: entry.address(),
                ..init
            },
        );
        if !entry.try_swap(new.address()) {
            s.discard(new);
            return false;
        }
    } else {
        publish(s, g, entry, init);
    }
    // The published record owns the cell now.
    object.map(ObjectCell::into_raw);
    s.release(lock.rec().address(), lock.seal(g));
    true
}
