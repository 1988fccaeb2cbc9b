//! The append-only file, with Redis 7.0's semantics and multi-part layout (`appenddirname`,
//! a manifest, `<appendfilename>.<n>.incr.aof` files), so redis-server and Ferrite load each
//! other's AOF.
//!
//! # One total order across reactor threads
//! Commands run concurrently on several threads against one store. While the AOF is on, the
//! store numbers every write with a commit sequence (see `ferrite_hybridlog::Commit`): a
//! number taken under the written record's lock, so that later writers of the same key take
//! larger numbers. After each command the thread's [`Feed`] files the command's propagated
//! form ([`propagate`]) under the largest number the command took (under a number taken inside
//! the exclusive section for multi-key commands), and "nothing" under its other numbers. At the
//! end of each reactor call the feed hands its batch to the [`Sequencer`], which emits entries
//! in number order, only the contiguous prefix, with `SELECT` wherever the database changes.
//! The writer thread (`writer.rs`) writes what was emitted and fsyncs per `appendfsync`.
//!
//! # Replies wait for the file
//! A reply leaves only once everything the store had numbered when the reply was produced is
//! written (`everysec`, `no`: as Redis, which writes before it replies) or fsynced (`always`):
//! the worker holds the connection's output until the writer's watermark passes, and the
//! writer wakes the reactor threads. One fdatasync covers every write pending at that moment,
//! across clients and threads (group commit). Replies keep their order, and a read is never
//! answered with a write that is not yet durable.

pub mod base;
pub mod entry;
pub mod feed;
pub mod load;
pub mod manifest;
mod open;
pub mod propagate;
pub mod rewrite;
mod writer;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use ferrite_hybridlog::Db;

pub use entry::{Entry, Txn};
pub use feed::Feed;
pub use manifest::Manifest;
pub use open::{apply_config, open_at_startup};

use crate::server::Server;

/// Errors opening or loading the AOF (each is fatal at start-up, as in Redis).
#[derive(Debug, thiserror::Error)]
pub enum AofError {
    /// The manifest could not be read or parsed.
    #[error("AOF manifest {path}: {reason}")]
    Manifest {
        /// The manifest's path.
        path: String,
        /// Redis's reason.
        reason: String,
    },
    /// A file could not be loaded.
    #[error("{0}")]
    Load(String),
    /// An I/O error opening, creating or writing AOF files.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl AofError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AofError {
        let what = what.into();
        move |source| AofError::Io { what, source }
    }
}

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// fsync before every reply that depends on a write.
    Always,
    /// fsync once a second.
    Everysec,
    /// Never fsync (the OS decides).
    No,
}

impl Fsync {
    /// Parses a config value.
    pub fn parse(v: &str) -> Fsync {
        match v {
            "always" => Fsync::Always,
            "no" => Fsync::No,
            _ => Fsync::Everysec,
        }
    }
}

/// Redis's `aof_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No AOF.
    Off,
    /// Appending to the files the manifest lists.
    On,
    /// Turned on at runtime: waiting for the first rewrite (its base) before the files are
    /// listed in the manifest; commands go to a temporary incremental file meanwhile.
    WaitRewrite,
}

/// The process's AOF state.
pub struct Aof {
    /// Appending: commands are propagated and replies wait for the writer.
    on: AtomicBool,
    /// Commands are propagated: the AOF is on, or replicas are (or were) served and the
    /// replication stream runs (see [`crate::master`]). One flag, as every command reads it.
    propagate: AtomicBool,
    /// The replication stream runs (it never stops once started, as Redis's backlog).
    repl_on: AtomicBool,
    /// [`State`] as a number.
    state: AtomicU8,
    policy: AtomicU8,
    /// Every commit number up to this one is written (fsynced with `always`); replies that
    /// need no more may leave.
    released: AtomicU64,
    /// Connections holding output for the writer (so the writer knows to wake the threads).
    holders: AtomicUsize,
    /// errno of the last failed write, 0 when the last write succeeded.
    write_errno: AtomicI32,
    /// Bytes in the incremental file the writer appends to (Redis's `aof_last_incr_size`).
    incr_size: AtomicU64,
    /// Bytes of the base and the earlier incremental files still listed: INFO
    /// `aof_current_size` is this plus `incr_size`.
    older_size: AtomicU64,
    /// `aof_current_size` at start-up or after the last rewrite (Redis's
    /// `aof_rewrite_base_size`, INFO `aof_base_size`): automatic rewrites measure growth
    /// against it.
    base_size: AtomicU64,
    /// File switches the writer has made (a rewrite's cut); see [`Switch`].
    switches: AtomicU64,
    /// BGREWRITEAOF: the child, the schedule, the statistics.
    pub rewrite: rewrite::Rewrite,
    /// Fsyncs that found the previous one still running (INFO `aof_delayed_fsync`).
    delayed_fsync: AtomicU64,
    seq: Mutex<Sequencer>,
    /// Wakes the writer when the sequencer emitted something.
    emitted: Condvar,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The directory and the manifest, for runtime re-opens.
    files: Mutex<Option<Files>>,
}

/// Where the AOF lives.
#[derive(Debug, Clone)]
pub(crate) struct Files {
    dir: PathBuf,
    filename: String,
    manifest: Manifest,
}

/// Orders the entries of every thread by commit number.
#[derive(Debug, Default)]
pub struct Sequencer {
    /// The next number to emit.
    next: u64,
    /// Entries (None: "nothing") waiting for a smaller number.
    pending: BTreeMap<u64, Option<Entry>>,
    /// The database the emitted stream has selected.
    selected: Option<Db>,
    /// The AOF is on: entries are emitted into `buf` for the writer.
    file: bool,
    /// Emitted and not yet written.
    buf: Vec<u8>,
    /// The replication stream, when replicas are served: entries are emitted here too (with
    /// their own `SELECT`s) and handed to [`crate::master`] under the sequencer's lock, so the
    /// stream keeps the commit order.
    repl: Option<ReplOut>,
    /// A switch to another file at a commit number (an AOF rewrite's cut).
    switch: Option<Switch>,
    /// The writer should finish and exit.
    stop: bool,
}

/// The replication stream's side of the sequencer.
#[derive(Debug, Default)]
pub(crate) struct ReplOut {
    /// Emitted and not yet handed to the replicas.
    pub(crate) buf: Vec<u8>,
    /// The database the replication stream has selected (None: the next entry selects).
    pub(crate) selected: Option<Db>,
}

/// Where a rewrite cuts the stream: entries numbered below `at` belong to the file being
/// written (the rewrite's base has them), entries from `at` on to `file`.
#[derive(Debug)]
pub(crate) struct Switch {
    at: u64,
    file: File,
    /// The offset in the sequencer's buffer where `at`'s entry starts, once emitted that far.
    offset: Option<usize>,
}

impl Sequencer {
    /// Files a thread's batch and emits the contiguous prefix; returns whether it advanced.
    pub fn push(&mut self, batch: &mut Vec<(u64, Option<Entry>)>) -> bool {
        for (seq, e) in batch.drain(..) {
            // Below `next`: taken before this sequencer started (the AOF was switched off
            // and on again meanwhile); that period's file is closed.
            if seq >= self.next {
                self.pending.insert(seq, e);
            }
        }
        let start = self.next;
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            if let Some(e) = entry.remove() {
                if self.file && !e.repl_only() {
                    e.emit(&mut self.buf, &mut self.selected);
                }
                if let Some(r) = &mut self.repl {
                    e.emit(&mut r.buf, &mut r.selected);
                }
            }
            self.next += 1;
            self.mark_switch();
        }
        self.next != start
    }

    /// Records where the switch falls once every number below it is emitted; the new file
    /// starts with its own `SELECT`.
    fn mark_switch(&mut self) {
        if let Some(sw) = &mut self.switch
            && sw.offset.is_none()
            && self.next >= sw.at
        {
            sw.offset = Some(self.buf.len());
            self.selected = None;
        }
    }

    /// Whether the writer has a switch to make.
    fn switch_ready(&self) -> bool {
        self.switch.as_ref().is_some_and(|w| w.offset.is_some())
    }

    /// Every number below this one has been emitted.
    pub fn emitted_below(&self) -> u64 {
        self.next
    }
}

impl Default for Aof {
    fn default() -> Self {
        Self {
            on: AtomicBool::new(false),
            propagate: AtomicBool::new(false),
            repl_on: AtomicBool::new(false),
            state: AtomicU8::new(0),
            policy: AtomicU8::new(Fsync::Everysec as u8),
            released: AtomicU64::new(u64::MAX),
            holders: AtomicUsize::new(0),
            write_errno: AtomicI32::new(0),
            incr_size: AtomicU64::new(0),
            older_size: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            rewrite: rewrite::Rewrite::default(),
            delayed_fsync: AtomicU64::new(0),
            seq: Mutex::new(Sequencer::default()),
            emitted: Condvar::new(),
            writer: Mutex::new(None),
            files: Mutex::new(None),
        }
    }
}

impl std::fmt::Debug for Aof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aof")
            .field("on", &self.is_on())
            .finish_non_exhaustive()
    }
}

impl Aof {
    /// Whether commands are being appended.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Whether commands are propagated (to the AOF, to replicas, or both): what every write
    /// command checks before filing its propagated form.
    #[inline]
    pub fn propagating(&self) -> bool {
        self.propagate.load(Ordering::Relaxed)
    }

    /// Whether the replication stream runs (replicas are or were served).
    #[inline]
    pub fn repl_streaming(&self) -> bool {
        self.repl_on.load(Ordering::Relaxed)
    }

    /// Redis's `aof_state`.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::SeqCst) {
            0 => State::Off,
            1 => State::On,
            _ => State::WaitRewrite,
        }
    }

    pub(crate) fn set_state(&self, st: State) {
        let v = match st {
            State::Off => 0,
            State::On => 1,
            State::WaitRewrite => 2,
        };
        self.state.store(v, Ordering::SeqCst);
    }

    /// INFO `aof_current_size`: the base and incremental files the manifest lists.
    pub fn current_size(&self) -> u64 {
        self.older_size.load(Ordering::Relaxed) + self.incr_size.load(Ordering::Relaxed)
    }

    /// `appendfsync` as applied.
    pub fn policy(&self) -> Fsync {
        match self.policy.load(Ordering::Relaxed) {
            0 => Fsync::Always,
            1 => Fsync::Everysec,
            _ => Fsync::No,
        }
    }

    /// Applies `appendfsync`.
    pub fn set_policy(&self, p: Fsync) {
        self.policy.store(p as u8, Ordering::Relaxed);
    }

    /// The highest commit number whose record replies may rely on.
    #[inline]
    pub fn released(&self) -> u64 {
        self.released.load(Ordering::SeqCst)
    }

    /// The errno of a failing AOF write (`-MISCONF` for writes), if the last write failed.
    pub fn write_error(&self) -> Option<i32> {
        match self.write_errno.load(Ordering::Relaxed) {
            0 => None,
            e => Some(e),
        }
    }

    /// INFO persistence: the aof_* lines.
    pub fn info(&self, out: &mut String) {
        use std::fmt::Write;
        let state = self.state();
        let status = if self.write_error().is_some() {
            "err"
        } else {
            "ok"
        };
        let rw = &self.rewrite;
        let (in_progress, current_secs) = rw.running_secs();
        let scheduled = u8::from(rw.scheduled());
        let _ = write!(
            out,
            "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{scheduled}\r\n\
             aof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{current_secs}\r\n\
             aof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\n\
             aof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{status}\r\n\
             aof_last_cow_size:{}\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
            u8::from(state != State::Off),
            u8::from(in_progress),
            rw.last_secs(),
            if rw.last_ok() { "ok" } else { "err" },
            rw.rewrites(),
            rw.consecutive_failures(),
            rw.last_cow(),
        );
        // `appendonly yes`, including while waiting for the first rewrite (as Redis).
        if state != State::Off {
            let pending = self.lock().buf.len();
            let _ = write!(
                out,
                "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{scheduled}\r\n\
                 aof_buffer_length:{pending}\r\naof_pending_bio_fsync:0\r\n\
                 aof_delayed_fsync:{}\r\n",
                self.current_size(),
                self.base_size.load(Ordering::Relaxed),
                self.delayed_fsync.load(Ordering::Relaxed),
            );
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sequencer> {
        self.seq.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Files a thread's batch (see [`Sequencer::push`]), hands what it emitted for replicas to
    /// them, and wakes the writer if it advanced.
    pub fn push(&self, server: &Server, batch: &mut Vec<(u64, Option<Entry>)>) {
        if batch.is_empty() {
            return;
        }
        let mut s = self.lock();
        let advanced = s.push(batch);
        if let Some(r) = &mut s.repl
            && !r.buf.is_empty()
        {
            server.master.feed(server, &r.buf);
            r.buf.clear();
        }
        let file = s.file;
        drop(s);
        if advanced && file {
            self.emitted.notify_one();
        }
    }

    /// Adds bytes of the master's own (a `PING`, `REPLCONF GETACK *`) to the replication
    /// stream, in order with the commands emitted so far. Nothing when no stream is on.
    pub(crate) fn feed_raw(&self, server: &Server, bytes: &[u8]) {
        let s = self.lock();
        if s.repl.is_some() {
            server.master.feed(server, bytes);
        }
    }

    /// Starts the replication stream (Redis's `createReplicationBacklog` moment): from the
    /// store's next commit number on, every write is propagated into it. Call with no command
    /// running (under the exclusive gate), so that every earlier number is already filed.
    /// Returns the number the stream starts at. Its next entry selects its database.
    pub(crate) fn start_repl(&self, server: &Server) -> u64 {
        let store = &server.store;
        let mut s = self.lock();
        if !self.propagating() {
            *s = Sequencer {
                next: store.next_commit_seq(),
                ..Sequencer::default()
            };
            store.set_commit_sequence(true);
        }
        s.repl.get_or_insert_with(ReplOut::default).selected = None;
        self.propagate.store(true, Ordering::SeqCst);
        self.repl_on.store(true, Ordering::SeqCst);
        s.next
    }

    /// Stops the replication stream (its backlog was freed): with the AOF off, writes stop
    /// taking commit numbers and filing propagated forms. Call with no command running.
    pub(crate) fn stop_repl(&self, server: &Server) {
        let mut s = self.lock();
        s.repl = None;
        self.repl_on.store(false, Ordering::SeqCst);
        if !self.on.load(Ordering::SeqCst) {
            self.propagate.store(false, Ordering::SeqCst);
            server.store.set_commit_sequence(false);
        }
    }

    /// The replication stream's offset once every commit number below `seq` is in it (None
    /// while some is not emitted yet). With no stream running, the offset as it stands.
    pub(crate) fn repl_offset_covering(&self, server: &Server, seq: u64) -> Option<i64> {
        let s = self.lock();
        (s.repl.is_none() || s.next >= seq).then(|| server.master.offset())
    }

    /// Makes the replication stream select its database again before its next entry (a full
    /// sync's cut: the replica's stream starts there).
    pub(crate) fn repl_reselect(&self) {
        if let Some(r) = &mut self.lock().repl {
            r.selected = None;
        }
    }

    /// A connection starts holding output until `released() >= seq`; returns false (nothing
    /// to hold) when the writer is already there. The count and the re-check pair with the
    /// writer's store-then-load so that one of the two always sees the other.
    pub fn hold(&self, seq: u64) -> bool {
        self.holders.fetch_add(1, Ordering::SeqCst);
        if self.released() >= seq {
            self.holders.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// A connection stopped holding output.
    pub fn unhold(&self) {
        self.holders.fetch_sub(1, Ordering::SeqCst);
    }

    /// Turns appending on with the incremental file `name` of `files` (already listed in the
    /// persisted manifest). Call only while no command runs (start-up, or an exclusive
    /// section): the commit sequence starts here.
    fn start(&self, server: &Arc<Server>, files: Files, name: &str) -> Result<(), AofError> {
        let path = files.dir.join(name);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(AofError::io(format!(
                "Can't open the append-only file {name}"
            )))?;
        self.start_file(server, Some(files), file)
    }

    /// Turns appending on with `file` (see [`Aof::start`]); `files` replaces the known layout
    /// when given.
    pub(crate) fn start_file(
        &self,
        server: &Arc<Server>,
        files: Option<Files>,
        file: File,
    ) -> Result<(), AofError> {
        let store = &server.store;
        {
            let mut s = self.lock();
            // The replication stream, when on, continues: no command runs, so it has emitted
            // every number below the store's next one.
            let repl = s.repl.take();
            *s = Sequencer {
                next: store.next_commit_seq(),
                file: true,
                repl,
                ..Sequencer::default()
            };
            self.released.store(s.next - 1, Ordering::SeqCst);
        }
        if let Some(files) = files {
            *self.files() = Some(files);
        }
        self.write_errno.store(0, Ordering::Relaxed);
        store.set_commit_sequence(true);
        self.on.store(true, Ordering::SeqCst);
        self.propagate.store(true, Ordering::SeqCst);
        let srv = Arc::clone(server);
        let handle = std::thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || writer::run(&srv, file))
            .map_err(AofError::io("cannot start the AOF writer thread"))?;
        *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(())
    }

    /// Stops appending: writes and fsyncs everything emitted, closes the file, releases every
    /// held reply. Call with no command running (shutdown, or an exclusive section).
    pub fn stop(&self, server: &Server) {
        // As Redis's `stopAppendOnly`: a rewrite in progress would describe a file nobody
        // appends to any more (and at shutdown it would outlive the server).
        rewrite::kill_child(server);
        self.rewrite.unschedule();
        if self.state() == State::WaitRewrite {
            rewrite::remove_temp_incr(server);
        }
        self.set_state(State::Off);
        if !self.on.swap(false, Ordering::SeqCst) {
            return;
        }
        // The replication stream, when on, keeps the sequence running.
        let repl = self.lock().repl.is_some();
        self.propagate.store(repl, Ordering::SeqCst);
        if !repl {
            server.store.set_commit_sequence(false);
        }
        self.lock().stop = true;
        self.emitted.notify_one();
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            log::warn!("The AOF writer thread panicked");
        }
        {
            let mut s = self.lock();
            s.switch = None;
            s.file = false;
            s.stop = false;
            s.buf.clear();
        }
        self.incr_size.store(0, Ordering::Relaxed);
        self.older_size.store(0, Ordering::Relaxed);
        self.released.store(u64::MAX, Ordering::SeqCst);
        for t in 0..server.threads {
            server.wake(t);
        }
    }
}

impl Aof {
    /// The known layout (directory, names, manifest); None until the AOF was first opened or
    /// rewritten.
    pub(crate) fn files(&self) -> MutexGuard<'_, Option<Files>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends from the commit number `at` on go to `file` (call with no command running, so
    /// that `at` is the store's next number). The writer makes the switch once every earlier
    /// number is written; [`Aof::switches`] counts it.
    pub(crate) fn switch_at(&self, at: u64, file: File) {
        let mut s = self.lock();
        s.switch = Some(Switch {
            at,
            file,
            offset: None,
        });
        s.mark_switch();
        drop(s);
        self.emitted.notify_one();
    }

    /// Switches the writer has made so far.
    pub(crate) fn switches(&self) -> u64 {
        self.switches.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(db: Db, k: &str) -> Option<Entry> {
        let mut e = Entry::default();
        e.push(db, [&b"SET"[..], k.as_bytes(), b"v"]);
        Some(e)
    }

    #[test]
    fn sequencer_emits_only_the_contiguous_prefix_in_order() {
        let mut s = Sequencer {
            next: 5,
            file: true,
            ..Sequencer::default()
        };
        // Thread B filed 6 and 8 first; 5 (thread A) is missing: nothing goes out.
        assert!(!s.push(&mut vec![(6, set(0, "b")), (8, set(1, "d"))]));
        assert!(s.buf.is_empty());
        // Thread A files 5 (a write) and 7 ("nothing"): 5..=8 go out, in number order.
        assert!(s.push(&mut vec![(5, set(0, "a")), (7, None)]));
        assert_eq!(s.emitted_below(), 9);
        let text = String::from_utf8(std::mem::take(&mut s.buf)).expect("ascii");
        let keys: Vec<&str> = text
            .split("\r\n")
            .filter(|w| ["a", "b", "d", "0", "1"].contains(w))
            .collect();
        assert_eq!(
            keys,
            ["0", "a", "b", "1", "d"],
            "SELECT 0, a, b, SELECT 1, d: {text}"
        );
        assert!(s.pending.is_empty());
    }

    #[test]
    fn switch_falls_where_every_earlier_number_is_emitted() {
        let mut s = Sequencer {
            next: 5,
            file: true,
            ..Sequencer::default()
        };
        assert!(s.push(&mut vec![(5, set(0, "a"))]));
        s.switch = Some(Switch {
            at: 7,
            file: File::open("/dev/null").expect("/dev/null"),
            offset: None,
        });
        s.mark_switch();
        // 8 arrives before 6 and 7: nothing moves, the cut is not placed yet.
        assert!(!s.push(&mut vec![(8, set(0, "d"))]));
        assert!(!s.switch_ready());
        assert!(s.push(&mut vec![(6, set(0, "b"))]));
        let cut = s
            .switch
            .as_ref()
            .and_then(|w| w.offset)
            .expect("cut placed");
        assert_eq!(cut, s.buf.len(), "the cut follows 6");
        assert!(s.push(&mut vec![(7, set(0, "c"))]));
        let after = String::from_utf8(s.buf[cut..].to_vec()).expect("ascii");
        // The new file selects its database again before 7 and 8.
        assert!(
            after.starts_with("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nc"),
            "{after}"
        );
        assert!(!after.contains("\r\nb\r\n") && after.contains("\r\nd\r\n"));
    }

    #[test]
    fn switch_at_the_next_number_cuts_at_once() {
        let mut s = Sequencer {
            next: 3,
            file: true,
            buf: b"earlier".to_vec(),
            ..Sequencer::default()
        };
        s.switch = Some(Switch {
            at: 3,
            file: File::open("/dev/null").expect("/dev/null"),
            offset: None,
        });
        s.mark_switch();
        assert!(s.switch_ready());
        assert_eq!(s.switch.as_ref().and_then(|w| w.offset), Some(7));
    }

    #[test]
    fn replicas_get_every_entry_and_the_aof_skips_replica_only_ones() {
        let mut s = Sequencer {
            next: 1,
            file: true,
            repl: Some(ReplOut::default()),
            ..Sequencer::default()
        };
        let mut publish = Entry::default();
        publish.push(0, [&b"PUBLISH"[..], b"ch", b"hi"]);
        publish.set_repl_only();
        assert!(s.push(&mut vec![
            (1, set(0, "a")),
            (2, Some(publish)),
            (3, set(2, "b"))
        ]));
        let aof = String::from_utf8(std::mem::take(&mut s.buf)).expect("ascii");
        let repl =
            String::from_utf8(std::mem::take(&mut s.repl.as_mut().unwrap().buf)).expect("ascii");
        assert!(!aof.contains("PUBLISH") && aof.contains("\r\na\r\n") && aof.contains("\r\nb\r\n"));
        assert!(
            repl.contains("PUBLISH") && repl.contains("\r\na\r\n") && repl.contains("\r\nb\r\n")
        );
        // Each stream selects its own databases: both start with SELECT 0 and change to 2.
        for text in [&aof, &repl] {
            assert!(
                text.starts_with("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"),
                "{text}"
            );
            assert!(text.contains("SELECT\r\n$1\r\n2\r\n"), "{text}");
        }
    }
}
