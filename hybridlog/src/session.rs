//! Sessions: the per-thread handle through which every operation runs.

use std::sync::Arc;

use crossbeam_epoch::LocalHandle;

use crate::KeyHash;
use crate::commit::{Commit, Journal, KeyEvent};
use crate::ops::{self, Decision, Read};
use crate::store::Store;
use crate::tier::{self, Fetch};
use crate::{Db, Entry, ValueKind, Write};

/// Buffers bigger than this are released after the operation that grew them, so one 512 MiB
/// value does not pin 512 MiB per session forever.
const KEEP_BUFFER_BYTES: usize = 1 << 20;

/// A per-thread handle on the store (owns the thread's epoch participant and scratch buffers).
pub struct Session {
    pub(crate) store: Arc<Store>,
    pub(crate) handle: LocalHandle,
    slot: usize,
    /// In the gate's shared section.
    inside: bool,
    /// Running an `exclusive` callback.
    exclusive: bool,
    /// Seqlock copies of values handed to read callbacks.
    pub(crate) buf: Vec<u8>,
    /// The `rmw` callbacks' output buffer.
    pub(crate) scratch: Vec<u8>,
    /// Record addresses already seen on the chain being walked (SCAN and friends).
    pub(crate) seen: Vec<u64>,
    /// Chain heads of the bucket being walked.
    pub(crate) heads: Vec<u64>,
    /// Keys collected for a follow-up write (reaping, flushing).
    pub(crate) work: Vec<(u8, Vec<u8>)>,
    /// Next bucket of the active expiry cycle.
    pub(crate) expire_cursor: usize,
    /// Commit numbers this session's writes took (only while the commit sequence is on), and
    /// their key events (only while those are on).
    pub(crate) commits: Journal,
    /// The hash of the key the current command was prefetched for (see
    /// [`hint_key`](Session::hint_key)); an address of 0 is no hint.
    hint: KeyHash,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("slot", &self.slot)
            .field("inside", &self.inside)
            .finish_non_exhaustive()
    }
}

// SAFETY: the only non-`Send` field is the epoch `LocalHandle`, which is `!Send` because it
// points at a participant record with unsynchronised `Cell` counters. Those are touched only
// while pinning or unpinning, and every guard a session creates lives inside one `&mut self`
// method, so no guard exists when the session moves; the move itself (through `Send`)
// synchronises the counters. The participant has no thread affinity (no thread-locals: it is
// registered on the store's own `Collector`).
unsafe impl Send for Session {}

impl Drop for Session {
    fn drop(&mut self) {
        if self.inside {
            self.store.gate.leave(self.slot);
        }
        self.store.gate.deregister(self.slot);
    }
}

impl Session {
    pub(crate) fn new(store: Arc<Store>, slot: usize) -> Self {
        let handle = store.collector.register();
        let buckets = store.index.bucket_count();
        Session {
            handle,
            slot,
            inside: false,
            exclusive: false,
            buf: Vec::new(),
            scratch: Vec::new(),
            seen: Vec::new(),
            heads: Vec::new(),
            work: Vec::new(),
            // Spread the sessions' expiry cursors over the index.
            expire_cursor: slot.wrapping_mul(0x9E37_79B9) & (buckets - 1),
            commits: Journal::default(),
            hint: KeyHash {
                hash: 0,
                addr: 0,
                len: 0,
            },
            store,
        }
    }

    /// Tells the session the hash [`prefetch`](Session::prefetch) computed for a key, so that
    /// the command about to run, which passes those very bytes, does not hash them again. Call
    /// [`forget_key`](Session::forget_key) once the command has run: the hint is trusted for
    /// any key at the same address and length, so it must not outlive the bytes.
    #[inline]
    pub fn hint_key(&mut self, hash: KeyHash) {
        self.hint = hash;
    }

    /// Drops the hint of [`hint_key`](Session::hint_key).
    #[inline]
    pub fn forget_key(&mut self) {
        self.hint.addr = 0;
    }

    /// `key`'s hash: the hint's when it describes these bytes, otherwise computed.
    #[inline]
    pub(crate) fn hash_of(&self, key: &[u8]) -> u64 {
        let h = self.hint;
        if h.addr == key.as_ptr().addr() && h.len == key.len() && h.addr != 0 {
            h.hash
        } else {
            self.store.hasher.hash(key)
        }
    }

    /// The store this session works on.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Whether any lookup could reach the disk: false until a page has left memory, which is
    /// the common case and lets callers skip per-key [`locate`](Self::locate) calls outright.
    #[inline]
    pub fn may_read_disk(&self) -> bool {
        let s = &*self.store;
        s.tier.is_some() && s.log.head_address() > crate::log::BEGIN_ADDRESS
    }

    /// Whether looking `key` up would read the device: if so, the walk to drive with
    /// asynchronous reads before running the command (see [`Fetch`]).
    pub fn locate(&mut self, db: Db, key: &[u8]) -> Option<Fetch> {
        if !self.may_read_disk() {
            return None;
        }
        let s = &*self.store;
        let pdb = s.pdb(db);
        let _guard = self.handle.pin();
        let entry = s.index.find(self.hash_of(key))?;
        let from = s.disk_start(entry.address(), pdb, key)?;
        if tier::is_resolved(from, pdb, key) {
            return None;
        }
        Some(Fetch::new(tier::Walk::new(s, from, pdb, key)))
    }

    /// Waits, unpinned, while the flusher is so far behind that the pages in memory exceed the
    /// budget by more than a little. Pinning now and then lets the epoch advance, which is what
    /// moves the safe read-only address the flusher waits for. Does not wait while the
    /// flusher's writes fail.
    pub(crate) fn wait_for_flusher(&self) {
        let s = &*self.store;
        if s.tier.is_none() || !s.flush_is_behind() {
            return;
        }
        s.nudge_flusher();
        while s.flush_is_behind() {
            if s.tier_writes_failing().is_some() {
                // The flusher cannot write (a full disk): waiting would hang this thread.
                // Memory goes over its budget by this write; the command layer refuses the
                // next ones (`Store::tier_write_error`) until the disk takes writes again.
                return;
            }
            self.handle.pin().flush();
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    /// Runs `f` (reads of this session) without copying records found on disk to the tail:
    /// for bulk passes over the keyspace (RDB save, AOF rewrite), which would otherwise pull
    /// every record they read into memory, pushing the hot set out.
    pub fn without_copying_reads<R>(&mut self, f: impl FnOnce(&mut Session) -> R) -> R {
        tier::without_promotion(|| f(self))
    }

    /// Lets go of records read back from disk for earlier commands. Call between commands,
    /// never while a store callback runs.
    pub fn end_command(&mut self) {
        tier::release_resolved();
    }

    pub(crate) fn trim_buffers(&mut self) {
        if self.buf.capacity() > KEEP_BUFFER_BYTES {
            self.buf = Vec::new();
        }
        if self.scratch.capacity() > KEEP_BUFFER_BYTES {
            self.scratch = Vec::new();
        }
    }

    /// Calls `f` with a consistent snapshot of `key`'s live record; `None` when absent or expired.
    /// An object is seen as an empty value of its kind (enough for WRONGTYPE and TYPE).
    pub fn read<R>(
        &mut self,
        db: Db,
        key: &[u8],
        now_ms: u64,
        f: impl FnOnce(Entry<'_>) -> R,
    ) -> Option<R> {
        let s = &*self.store;
        let guard = self.handle.pin();
        let pdb = s.pdb(db);
        let hash = self.hash_of(key);
        let out = match ops::read(s, &guard, pdb, key, hash, now_ms, &mut self.buf, f) {
            Read::Found(r) => Some(r),
            Read::Absent => None,
            Read::Expired if !s.reaps_on_read() => None,
            Read::Expired => {
                let keep = |_: Option<Entry<'_>>, _: &mut Vec<u8>| Decision::Keep;
                ops::write(
                    s,
                    &guard,
                    pdb,
                    key,
                    hash,
                    now_ms,
                    &mut self.scratch,
                    &mut self.commits,
                    None,
                    keep,
                );
                None
            }
        };
        drop(guard);
        self.trim_buffers();
        out
    }

    /// Appends `key`'s live value to `out`, copied once, straight from the record: GET without
    /// a snapshot buffer. For a live key `header(out, kind, len)` first writes what goes before
    /// the value (a RESP bulk header) and returns whether the value is wanted; when it is not
    /// (WRONGTYPE), `out` is rolled back to its length on entry. A torn read (a concurrent
    /// in-place writer) rolls `out` back too and retries, so `header` may run more than once;
    /// only the final, consistent attempt stays in `out`. Returns the kind (objects show as
    /// empty values of their kind); `None`, with `out` untouched, when absent or expired (an
    /// expired key is deleted, as [`read`](Self::read) does).
    pub fn read_append(
        &mut self,
        db: Db,
        key: &[u8],
        now_ms: u64,
        out: &mut Vec<u8>,
        header: impl FnMut(&mut Vec<u8>, ValueKind, usize) -> bool,
    ) -> Option<ValueKind> {
        let s = &*self.store;
        let guard = self.handle.pin();
        let pdb = s.pdb(db);
        let hash = self.hash_of(key);
        match ops::read_append(s, &guard, pdb, key, hash, now_ms, out, header) {
            Read::Found(kind) => Some(kind),
            Read::Absent => None,
            Read::Expired if !s.reaps_on_read() => None,
            Read::Expired => {
                let keep = |_: Option<Entry<'_>>, _: &mut Vec<u8>| Decision::Keep;
                let (scratch, commits) = (&mut self.scratch, &mut self.commits);
                ops::write(
                    s, &guard, pdb, key, hash, now_ms, scratch, commits, None, keep,
                );
                drop(guard);
                self.trim_buffers();
                None
            }
        }
    }

    /// Whether `key` is live (without copying its value).
    pub fn exists(&mut self, db: Db, key: &[u8], now_ms: u64) -> bool {
        self.kind_and_expiry(db, key, now_ms).is_some()
    }

    /// The kind and expiry of a live `key` (TYPE, TTL), without copying or touching its value.
    pub fn kind_and_expiry(&mut self, db: Db, key: &[u8], now_ms: u64) -> Option<(ValueKind, u64)> {
        let s = &*self.store;
        let guard = self.handle.pin();
        let pdb = s.pdb(db);
        let hash = self.hash_of(key);
        match ops::probe(s, &guard, pdb, key, hash, now_ms) {
            Read::Found(info) => Some(info),
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
        }
    }

    /// The access-tracking bits of `key`'s live record (OBJECT IDLETIME and FREQ), without
    /// counting this as an access.
    pub fn access_bits(&mut self, db: Db, key: &[u8], now_ms: u64) -> Option<u32> {
        let s = &*self.store;
        let _guard = self.handle.pin();
        let pdb = s.pdb(db);
        let rec = s.newest(self.hash_of(key), pdb, key)?;
        let (meta, expire_at) = ops::state(s, rec);
        (!meta.tombstone() && !ops::is_expired(expire_at, now_ms)).then(|| rec.access())
    }

    /// Sets the access-tracking bits of `key`'s live record (RESTORE IDLETIME/FREQ).
    pub fn set_access_bits(&mut self, db: Db, key: &[u8], now_ms: u64, bits: u32) {
        let s = &*self.store;
        let _guard = self.handle.pin();
        let pdb = s.pdb(db);
        let in_memory = s.log.head_address();
        if let Some(rec) = s.newest(self.hash_of(key), pdb, key) {
            let (meta, expire_at) = ops::state(s, rec);
            if !meta.tombstone()
                && !ops::is_expired(expire_at, now_ms)
                && rec.address() >= in_memory
            {
                rec.touch(|_| bits);
            }
        }
    }

    /// Blind write: replaces value, kind and expiry. (It takes no clock, so overwriting a key
    /// whose TTL has passed counts as a replacement, not as an expiry in `expired_keys`.)
    pub fn upsert(&mut self, db: Db, key: &[u8], value: &[u8], kind: ValueKind, expire_at: u64) {
        let s = &*self.store;
        self.wait_for_flusher();
        let guard = self.handle.pin();
        let put = |_: Option<Entry<'_>>, _: &mut Vec<u8>| Decision::Put { kind, expire_at };
        let hash = self.hash_of(key);
        // `now` only matters for counting a replaced expired key; 0 never calls it expired, so
        // an overwritten, already-expired key counts as replaced rather than reaped.
        ops::write(
            s,
            &guard,
            s.pdb(db),
            key,
            hash,
            0,
            &mut self.scratch,
            &mut self.commits,
            Some(value),
            put,
        );
    }

    /// Read-modify-write; `f` may be called more than once if a concurrent writer wins a race.
    /// `f` runs with the key's newest record locked against other writers (that is what makes
    /// the update atomic), so it must not use the store itself.
    pub fn rmw<R>(
        &mut self,
        db: Db,
        key: &[u8],
        now_ms: u64,
        mut f: impl FnMut(Option<Entry<'_>>, &mut Vec<u8>) -> Write<R>,
    ) -> R {
        let s = &*self.store;
        self.wait_for_flusher();
        let guard = self.handle.pin();
        let mut result = None;
        let decide = |old: Option<Entry<'_>>, scratch: &mut Vec<u8>| {
            let (d, r) = match f(old, scratch) {
                Write::Keep(r) => (Decision::Keep, r),
                Write::Put {
                    kind,
                    expire_at,
                    result,
                } => (Decision::Put { kind, expire_at }, result),
                Write::SetExpiry { expire_at, result } => {
                    (Decision::SetExpiry { expire_at }, result)
                }
                Write::Delete(r) => (Decision::Delete, r),
            };
            result = Some(r);
            d
        };
        let hash = self.hash_of(key);
        ops::write(
            s,
            &guard,
            s.pdb(db),
            key,
            hash,
            now_ms,
            &mut self.scratch,
            &mut self.commits,
            None,
            decide,
        );
        drop(guard);
        self.trim_buffers();
        result.expect("write calls its decision at least once")
    }

    /// Deletes `key`; true when a live key was removed.
    pub fn delete(&mut self, db: Db, key: &[u8], now_ms: u64) -> bool {
        let s = &*self.store;
        self.wait_for_flusher();
        let guard = self.handle.pin();
        let del = |old: Option<Entry<'_>>, _: &mut Vec<u8>| {
            if old.is_some() {
                Decision::Delete
            } else {
                Decision::Keep
            }
        };
        let hash = self.hash_of(key);
        ops::write(
            s,
            &guard,
            s.pdb(db),
            key,
            hash,
            now_ms,
            &mut self.scratch,
            &mut self.commits,
            None,
            del,
        )
        .old_live
    }

    /// Moves the commit numbers this session's writes took since the last call into `into`
    /// (in the order taken). Empty while the commit sequence is off.
    #[inline]
    pub fn take_commits(&mut self, into: &mut Vec<Commit>) {
        if !self.commits.is_empty() {
            into.append(&mut self.commits);
        }
    }

    /// Moves the keys this session's writes changed (while
    /// [`Store::set_modified_events`](crate::Store::set_modified_events) is on) to `into`, in
    /// order: Redis's `signalModifiedKey` calls, for client-side caching's invalidations.
    pub fn take_modified(&mut self, into: &mut Vec<KeyEvent>) {
        if !self.commits.modified.is_empty() {
            into.append(&mut self.commits.modified);
        }
    }

    /// Whether writes left `Modified` events to take (one length check).
    #[inline]
    pub fn has_modified(&self) -> bool {
        !self.commits.modified.is_empty()
    }

    /// Moves the key events this session's writes caused since the last call into `into` (in
    /// the order they happened). Empty while key events are off.
    #[inline]
    pub fn take_key_events(&mut self, into: &mut Vec<KeyEvent>) {
        if !self.commits.events.is_empty() {
            into.append(&mut self.commits.events);
        }
    }

    /// Takes a commit number for something that is not a store write but must keep its place
    /// in the order of writes (a PUBLISH the replication stream carries), recorded with this
    /// session's other numbers. False when the sequence is off.
    pub fn note_commit(&mut self) -> bool {
        match self.store.commits.take() {
            Some(seq) => {
                self.commits.push(crate::Commit { seq, reaped: None });
                true
            }
            None => false,
        }
    }

    /// Takes one commit number for a command that runs under [`exclusive`](Self::exclusive)
    /// (no other session writes meanwhile): its one place in the total order of writes.
    pub fn take_commit_seq(&mut self) -> u64 {
        self.store.commits.take_always()
    }

    /// Swaps two databases atomically: every lookup maps through a logical → physical table,
    /// and the swap exchanges two of its entries under a seqlock, in O(1). An operation already
    /// past its lookup completes on the database it mapped (it linearises before the swap); use
    /// [`exclusive`](Self::exclusive) for isolation from in-flight commands.
    pub fn swap_db(&mut self, a: Db, b: Db) {
        if a != b {
            self.store.swap_db(a, b);
        }
    }

    /// Enters this session's shared section: held while the thread runs a batch of commands, so
    /// that a multi-key command on another thread can exclude it. Costs a store to a line this
    /// session owns and a fence, no shared read-modify-write.
    pub fn enter(&mut self) {
        // Inside `exclusive` the whole store is ours already; entering would wait on ourselves.
        if !self.inside && !self.exclusive {
            self.store.gate.enter(self.slot);
            self.inside = true;
        }
    }

    /// Enters the shared section unless an exclusive holder runs and `give_up` says to stop
    /// waiting for it (see `Gate::enter_unless`); returns whether the session is inside.
    pub fn enter_unless(&mut self, give_up: impl Fn() -> bool) -> bool {
        if !self.inside && !self.exclusive {
            self.inside = self.store.gate.enter_unless(self.slot, give_up);
            return self.inside;
        }
        true
    }

    /// Whether the session is in its shared section (or holds the store exclusively).
    pub fn is_inside(&self) -> bool {
        self.inside || self.exclusive
    }

    /// Whether the session holds the store exclusively (inside [`Session::exclusive`]).
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Leaves the shared section (before the thread waits for I/O).
    pub fn leave(&mut self) {
        if self.inside {
            self.store.gate.leave(self.slot);
            self.inside = false;
        }
    }

    /// Runs `f` while every other session is outside its shared section: multi-key commands
    /// (MSET, RENAME, FLUSHALL, ...) are atomic this way. Must be called outside `enter`; if it
    /// is not, the session leaves first and re-enters afterwards. Nested calls just run `f`.
    pub fn exclusive<R>(&mut self, f: impl FnOnce(&mut Session) -> R) -> R {
        if self.exclusive {
            return f(self);
        }
        let was_inside = self.inside;
        self.leave();
        self.store.gate.lock_exclusive(Some(self.slot));
        /// Releases the gate even if `f` unwinds.
        struct Release<'a>(&'a crate::gate::Gate);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.unlock_exclusive();
            }
        }
        let store = Arc::clone(&self.store);
        let release = Release(&store.gate);
        self.exclusive = true;
        let r = f(self);
        self.exclusive = false;
        drop(release);
        if was_inside {
            self.enter();
        }
        r
    }
}
