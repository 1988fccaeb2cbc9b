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

use crossbeam_epoch::Guard;

use crate::index::EntrySlot;
use crate::record::{Meta, Rec, RecordInit, RecordLock};
use crate::store::Store;
use crate::sync::spin_wait;
use crate::{Entry, NO_EXPIRY, ValueKind};

/// Whether `expire_at` has passed at `now_ms`.
#[inline]
pub(crate) fn is_expired(expire_at: u64, now_ms: u64) -> bool {
    expire_at != NO_EXPIRY && expire_at <= now_ms
}

/// A write's decision, without the value (which is in the scratch buffer or the caller's slice).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Decision {
    Keep,
    Put { kind: ValueKind, expire_at: u64 },
    SetExpiry { expire_at: u64 },
    Delete,
}

/// What a write found and did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Outcome {
    /// A live (unexpired) value existed when the decision was made.
    pub old_live: bool,
    /// An expired record was reaped.
    pub reaped: bool,
}

/// What a read found.
pub(crate) enum Read<R> {
    Found(R),
    Absent,
    Expired,
}

/// Reads the newest record of `key` without taking any lock. `_guard` is the caller's pin, which
/// every borrow handed to `f` depends on.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read<R>(
    s: &Store,
    _guard: &Guard,
    pdb: u8,
    key: &[u8],
    hash: u64,
    now: u64,
    buf: &mut Vec<u8>,
    f: impl FnOnce(Entry<'_>) -> R,
) -> Read<R> {
    let Some(rec) = s
        .index
        .find(hash)
        .and_then(|e| s.find_record(e.address(), pdb, key))
    else {
        return Read::Absent;
    };
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
    Read::Found(f(Entry {
        value,
        expire_at,
        kind: meta.kind(),
    }))
}

/// Runs `decide` on the key's current value and commits its decision atomically with respect to
/// that value. `decide` gets an emptied `scratch` each call and may be called again after a lost
/// race. A `Put` stores `fixed` if given, else the scratch bytes. `decide` runs while the key's
/// record is locked: it must not touch the store (another session reading the same key would
/// wait for it forever).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write(
    s: &Store,
    g: &Guard,
    pdb: u8,
    key: &[u8],
    hash: u64,
    now: u64,
    scratch: &mut Vec<u8>,
    fixed: Option<&[u8]>,
    mut decide: impl FnMut(Option<Entry<'_>>, &mut Vec<u8>) -> Decision,
) -> Outcome {
    let mut step = 0;
    loop {
        let found = s
            .index
            .find(hash)
            .and_then(|e| s.find_record(e.address(), pdb, key).map(|r| (e, r)));
        let Some((entry, rec)) = found else {
            scratch.clear();
            let Decision::Put { kind, expire_at } = decide(None, scratch) else {
                return Outcome::default();
            };
            if insert(
                s,
                g,
                pdb,
                key,
                hash,
                fixed.unwrap_or(scratch),
                kind,
                expire_at,
            ) {
                return Outcome::default();
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
        return update(s, g, lock, entry, now, scratch, fixed, &mut decide);
    }
}

/// Inserts the first record of a key whose chain (from the current head) holds none. False when
/// a concurrent writer changed the chain first.
#[allow(clippy::too_many_arguments)]
fn insert(
    s: &Store,
    g: &Guard,
    pdb: u8,
    key: &[u8],
    hash: u64,
    value: &[u8],
    kind: ValueKind,
    expire_at: u64,
) -> bool {
    let mut entry = s.index.find_or_create(hash);
    if s.find_record(entry.address(), pdb, key).is_some() {
        return false;
    }
    let init = RecordInit {
        prev: entry.address(),
        pdb,
        key,
        value,
        kind,
        expire_at,
        tombstone: false,
    };
    let new = s.append(g, &init);
    if entry.try_swap(new.address()) {
        s.count(pdb, 1, i64::from(expire_at != NO_EXPIRY));
        true
    } else {
        s.discard(new);
        false
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
    fixed: Option<&[u8]>,
    decide: &mut impl FnMut(Option<Entry<'_>>, &mut Vec<u8>) -> Decision,
) -> Outcome {
    let rec = lock.rec();
    let meta = Meta(rec.meta());
    let expire = rec.expire_at();
    let tomb = meta.tombstone();
    let expired = !tomb && is_expired(expire, now);
    let live = !tomb && !expired;
    scratch.clear();
    let decision = if live {
        // SAFETY: we hold the writer lock, so nobody writes the value while `decide` reads it,
        // and the unsealed record still owns its heap block.
        let value = unsafe { rec.value_unsynchronized(meta.0) };
        decide(
            Some(Entry {
                value,
                expire_at: expire,
                kind: meta.kind(),
            }),
            scratch,
        )
    } else {
        decide(None, scratch)
    };
    // Without a live value only a Put means anything; an expired record is reaped regardless.
    let decision = match (decision, live) {
        (d @ Decision::Put { .. }, _) | (d, true) => d,
        (_, false) if expired => Decision::Delete,
        (_, false) => Decision::Keep,
    };
    let (new_live, new_ttl) = match decision {
        Decision::Keep => {
            return Outcome {
                old_live: live,
                reaped: false,
            };
        }
        Decision::Put { expire_at, .. } | Decision::SetExpiry { expire_at } => {
            (true, expire_at != NO_EXPIRY)
        }
        Decision::Delete => (false, false),
    };
    let mutable = rec.address() >= s.log.read_only_address();
    let pdb = rec.pdb();
    let key = rec.key();
    let copy = |value, kind, expire_at, tombstone| RecordInit {
        prev: 0,
        pdb,
        key,
        value,
        kind,
        expire_at,
        tombstone,
    };
    match decision {
        Decision::Keep => unreachable!("returned above"),
        Decision::Put { kind, expire_at } => {
            let value = fixed.unwrap_or(scratch);
            if mutable && lock.fits(value.len(), s.inline_limit) {
                s.heap_delta(lock.put(value, kind, expire_at, g));
            } else {
                replace(s, g, &mut lock, entry, copy(value, kind, expire_at, false));
            }
        }
        Decision::SetExpiry { expire_at } => {
            if mutable {
                lock.set_expiry(expire_at);
            } else {
                // SAFETY: as above, we hold the writer lock.
                let value = unsafe { rec.value_unsynchronized(meta.0) };
                replace(
                    s,
                    g,
                    &mut lock,
                    entry,
                    copy(value, meta.kind(), expire_at, false),
                );
            }
        }
        Decision::Delete => {
            if mutable {
                s.heap_delta(-(lock.tombstone(g) as i64));
            } else {
                replace(
                    s,
                    g,
                    &mut lock,
                    entry,
                    copy(&[], ValueKind::String, 0, true),
                );
            }
        }
    }
    drop(lock);
    let old_ttl = !tomb && expire != NO_EXPIRY;
    s.count(
        pdb,
        i64::from(new_live) - i64::from(!tomb),
        i64::from(new_ttl) - i64::from(old_ttl),
    );
    if expired {
        s.count_expired();
    }
    Outcome {
        old_live: live,
        reaped: expired,
    }
}

/// Read-copy-update: publishes a new newest record for the locked record's key, then seals the
/// old one. Holding the old record's lock means no other writer can add a record for this key,
/// so a failed CAS only means another key on the chain moved the head: retry with a fresh record
/// (allocated after the new head, keeping chain addresses decreasing).
fn replace(
    s: &Store,
    g: &Guard,
    lock: &mut RecordLock<'_>,
    mut entry: EntrySlot<'_>,
    init: RecordInit<'_>,
) {
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
            break;
        }
        s.discard(new);
    }
    s.heap_delta(-(lock.seal(g) as i64));
}
