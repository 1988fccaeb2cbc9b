//! The commit sequence: one total order of the store's writes across threads, for the
//! append-only file.
//!
//! While it is on, every write that changes the store takes the next number while it holds the
//! key's record lock (in-place update, read-copy-update, tombstone, reaping) or before the index
//! CAS that publishes a key's first record (insert). Any later writer of that key can only
//! take its lock, or find the published record, after that, so it takes a larger number: the
//! numbers order every key's writes as they took effect. The numbers a session takes are
//! collected in the session ([`Session::take_commits`](crate::Session::take_commits)); every
//! number taken is reported there, including one whose insert lost its race (the caller then
//! reports it as "nothing"), so a consumer that waits for a contiguous prefix never waits for
//! a number nobody reports.
//!
//! Off (the default), a write costs one relaxed load of a flag that no hot path writes.

// Plain std atomics: the store's counters are not part of a loom-checked protocol.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One store write's place in the commit sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Its number.
    pub seq: u64,
    /// The write only deleted an expired key (lazy or active expiry): its physical database
    /// and key, so that the deletion can be propagated (`DEL`).
    pub reaped: Option<(u8, Box<[u8]>)>,
}

/// The counter and its switch.
#[derive(Debug)]
pub(crate) struct CommitSeq {
    on: AtomicBool,
    next: AtomicU64,
}

impl CommitSeq {
    pub(crate) fn new() -> Self {
        Self {
            on: AtomicBool::new(false),
            next: AtomicU64::new(1),
        }
    }

    /// The next number, if the sequence is on.
    #[inline]
    pub(crate) fn take(&self) -> Option<u64> {
        if self.on.load(Ordering::Relaxed) {
            Some(self.take_always())
        } else {
            None
        }
    }

    /// The next number, on or off (an exclusive command's own place in the order).
    #[inline]
    pub(crate) fn take_always(&self) -> u64 {
        // Relaxed is enough: the writers this number must follow released the record lock or
        // published the index entry this writer acquired, so their increments come first in
        // the counter's modification order.
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn set(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// The number the next write will take.
    pub(crate) fn peek(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }
}

/// What happened to a key as a side effect of a store write, for keyspace notifications:
/// Redis's `expired`, `evicted` and `new` events, which its database layer (not the command)
/// raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEventKind {
    /// An expired key was deleted (lazily, by a write that found it, or by active expiry).
    Expired,
    /// A key was evicted for maxmemory.
    Evicted,
    /// A key was created.
    Created,
    /// A write changed the key (any write that took effect: update, creation, deletion,
    /// expiry, eviction), recorded only while [`Store::set_modified_events`] is on.
    ///
    /// [`Store::set_modified_events`]: crate::Store::set_modified_events
    Modified,
}

/// One [`KeyEventKind`] of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// What happened.
    pub kind: KeyEventKind,
    /// The key's physical database (map it with `Store::logical_db`).
    pub pdb: u8,
    /// The key.
    pub key: Box<[u8]>,
}

/// A session's record of its writes: commit numbers (while the sequence is on) and key events
/// (while [`Store::set_key_events`](crate::Store::set_key_events) is on). It derefs to the
/// commit numbers, which is what most of the write path touches.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    pub(crate) commits: Vec<Commit>,
    pub(crate) events: Vec<KeyEvent>,
    /// `Modified` events, apart from the notification events: they are handed over only at
    /// the end of a command ([`Session::take_modified`](crate::Session::take_modified)).
    pub(crate) modified: Vec<KeyEvent>,
}

impl std::ops::Deref for Journal {
    type Target = Vec<Commit>;
    fn deref(&self) -> &Vec<Commit> {
        &self.commits
    }
}

impl std::ops::DerefMut for Journal {
    fn deref_mut(&mut self) -> &mut Vec<Commit> {
        &mut self.commits
    }
}

impl Journal {
    /// Records what a finished write did to `key`, in Redis's order: the expiry its lookup
    /// found, then the creation.
    #[inline]
    pub(crate) fn note(&mut self, pdb: u8, key: &[u8], reaped: bool, created: bool) {
        if reaped {
            self.push_event(KeyEventKind::Expired, pdb, key);
        }
        if created {
            self.push_event(KeyEventKind::Created, pdb, key);
        }
    }

    pub(crate) fn push_event(&mut self, kind: KeyEventKind, pdb: u8, key: &[u8]) {
        let to = if kind == KeyEventKind::Modified {
            &mut self.modified
        } else {
            &mut self.events
        };
        to.push(KeyEvent {
            kind,
            pdb,
            key: key.into(),
        });
    }
}
