//! Serving replicas (the master side of Redis's `replication.c`): a redis-server or a Ferrite
//! replica points `REPLICAOF` at this server and follows it.
//!
//! # The stream
//! Replicas receive the same propagated forms the AOF gets (see [`crate::aof`]): the sequencer
//! emits every write in commit order into a second buffer with its own `SELECT`s, and hands it
//! here under its lock ([`Master::feed`]), so the stream's order is the commit order and the
//! backlog and every replica see the same bytes. The stream is started by the first replica
//! (`PSYNC`/`SYNC`, under the exclusive gate, so that it begins at an exact commit number) and
//! stays on, as Redis's backlog does, until `repl-backlog-ttl` passes without replicas.
//! `master_repl_offset` counts its bytes; the backlog keeps the last `repl-backlog-size` of
//! them for partial resyncs.
//!
//! # A replica's life
//! `PSYNC replid offset` continues from the backlog when it can (`+CONTINUE`), else a full
//! resync: the replica waits for the next BGSAVE fork (started at once when no child runs, by
//! the cron otherwise). The fork happens under the exclusive gate, so the stream's offset at the
//! fork is an exact cut: the snapshot holds every write before it, and the replica's pending
//! buffer collects every byte after it (`+FULLRESYNC replid offset` names it). When the child
//! has written the dump, a transfer thread hands `$<size>\r\n` and the file to the replica's
//! connection in chunks as its output drains (`transfer.rs`), then the pending bytes, and the
//! replica is online:
//! from then on the stream goes to its outbox as Pub/Sub messages go to a subscriber, and its
//! thread is woken to send it. Replicas acknowledge their offset (`REPLCONF ACK`) every second
//! and on `REPLCONF GETACK *`, which WAIT sends; the cron pings them every
//! `repl-ping-replica-period` seconds through the stream and drops one silent for `repl-timeout`.
//!
//! `acks.rs` holds what waits for acknowledgements (WAIT, `min-replicas-to-write`, the wait
//! before a shutdown); `transfer.rs` the sending of a full resync's dump.
//!
//! Lock order: the sequencer's lock, then [`Master`]'s, then a client's outbox.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

mod acks;
mod failover;
mod transfer;

pub use acks::{ShutdownWait, WaitTarget, answer_failed_shutdown};
pub use failover::Failover;

use ferrite_hybridlog::Db;

use crate::client::ClientShared;
use crate::server::{Server, random_hex, unix_ms};

/// `client-output-buffer-limit replica`'s hard limit: a replica that falls this far behind
/// (in its pending buffer or its outbox) is dropped and must resync (0: no limit).
fn replica_output_limit(server: &Server) -> usize {
    let (hard, _, _) = server
        .config
        .output_limit(crate::config::OutputClass::Replica);
    match usize::try_from(hard) {
        Ok(0) | Err(_) => usize::MAX,
        Ok(n) => n,
    }
}

/// Redis's `shared.noreplicaserr`.
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// Whether writes must be refused for want of good replicas (`min-replicas-to-write`); never
/// on a replica.
#[inline]
pub fn refuses_writes(server: &Server) -> bool {
    server.master.too_few_replicas(server) && !server.replication.is_replica()
}

/// Whether the stream is the followed master's, relayed as applied ([`Master::relay`]), rather
/// than this server's own propagation: exactly while this server is a replica (the flag flips
/// under the exclusive gate at a cut of the stream, see `replica::at_a_cut`).
#[inline]
fn relaying(server: &Server) -> bool {
    server.replication.is_replica()
}

/// `PING` as the stream carries it.
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
/// `REPLCONF GETACK *` as the stream carries it.
const GETACK: &[u8] = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";

/// Where a replica is in its sync (Redis's `replstate`, the names INFO shows).
#[derive(Debug)]
enum Phase {
    /// Waiting for a BGSAVE fork to cut the stream.
    WaitBgsaveStart,
    /// The child writes the snapshot; the stream after the cut collects in `pending`.
    WaitBgsaveEnd { pending: Vec<u8> },
    /// The dump is being sent; `pending` follows it.
    SendBulk { pending: Vec<u8> },
    /// A diskless child streams the snapshot, relayed to the replica as it comes; `pending`
    /// follows it. (Redis keeps such a replica in `wait_bgsave` until the child is done.)
    Relay { pending: Vec<u8> },
    /// A diskless transfer ended: the replica is online, but `pending` waits for its first
    /// `REPLCONF ACK`, so that nothing follows the payload's end mark while the replica looks
    /// for it (Redis's `repl_start_cmd_stream_on_ack`).
    WaitAck { pending: Vec<u8> },
    /// Receiving the stream.
    Online,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::WaitBgsaveStart | Phase::WaitBgsaveEnd { .. } | Phase::Relay { .. } => {
                "wait_bgsave"
            }
            Phase::SendBulk { .. } => "send_bulk",
            Phase::WaitAck { .. } | Phase::Online => "online",
        }
    }

    /// Online as INFO, ROLE, WAIT and `min-replicas-to-write` count replicas.
    fn is_online(&self) -> bool {
        matches!(self, Phase::WaitAck { .. } | Phase::Online)
    }
}

/// One replica: a client connection of some reactor thread.
#[derive(Debug)]
pub struct Replica {
    /// The connection.
    pub shared: Arc<ClientShared>,
    /// The port it listens on (REPLCONF listening-port), for INFO and ROLE.
    pub port: u16,
    /// Its address as REPLCONF ip-address gave it, else the connection's peer address.
    pub ip: String,
    /// The offset it acknowledged last (REPLCONF ACK), 0 before any.
    ack: AtomicI64,
    /// When it acknowledged last, Unix ms (0: never).
    ack_ms: AtomicU64,
    /// It asked with SYNC: no `+FULLRESYNC` line before the payload.
    sync_only: bool,
    /// It announced `capa eof`: it can take a diskless transfer.
    eof: bool,
    /// When it started waiting for a full resync, Unix ms (`repl-diskless-sync-delay`).
    since_ms: u64,
    /// Its stream waits for its first acknowledgement ([`Phase::WaitAck`]).
    start_on_ack: AtomicBool,
}

impl Replica {
    /// The offset it acknowledged last.
    pub fn acked(&self) -> i64 {
        self.ack.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct Entry {
    replica: Arc<Replica>,
    phase: Phase,
}

/// What the feed, the replicas and PSYNC share, under one lock.
#[derive(Debug, Default)]
struct State {
    /// The newest bytes of the stream; its last byte has offset `Master::offset`.
    backlog: VecDeque<u8>,
    /// Whether the stream runs (Redis's `repl_backlog != NULL`).
    active: bool,
    replicas: Vec<Entry>,
    /// When the last replica left, Unix ms (for `repl-backlog-ttl`).
    alone_since_ms: u64,
    /// Unix ms of the last PING fed.
    last_ping_ms: u64,
    /// `repl-backlog-size` as applied (read from the configuration by PSYNC and the cron, not
    /// per write).
    backlog_cap: usize,
    /// `feed`'s per-thread wake flags, kept between calls.
    wake: Vec<bool>,
}

/// The master side of replication.
#[derive(Debug)]
pub struct Master {
    replid: Mutex<String>,
    /// The replication ID this server's history continues (after a promotion), and the first
    /// offset not of it (`second_repl_offset`), -1 for none.
    replid2: Mutex<(String, i64)>,
    /// `master_repl_offset`: bytes of stream produced.
    offset: AtomicI64,
    /// Replicas in any phase (`connected_slaves`).
    count: AtomicUsize,
    state: Mutex<State>,
    /// WAIT clients (id, thread) to wake when acknowledgements arrive.
    waiters: Mutex<Vec<(u64, usize)>>,
    /// Whether any WAIT waits (one load for the ACK path).
    waiting: AtomicBool,
    /// A shutdown waits for replicas now; and SHUTDOWN ABORT asked it to stop.
    shutdown_waiting: AtomicBool,
    shutdown_abort: AtomicBool,
    /// INFO stats `sync_full`, `sync_partial_ok`, `sync_partial_err`.
    syncs: [AtomicU64; 3],
    /// Online replicas that acknowledged within `min-replicas-max-lag` seconds (Redis's
    /// `repl_good_slaves_count`), refreshed on acknowledgements, state changes and the cron.
    good: AtomicUsize,
    /// Held by the master's client from before it applies a chunk of the stream until it has
    /// relayed it (see [`Master::stream_cut`]).
    cut: Mutex<()>,
    /// FAILOVER's state.
    pub failover: Failover,
    /// The database the relayed stream selected last (the master client's), which a snapshot
    /// cut from the relayed stream records as `repl-stream-db`.
    stream_db: AtomicU8,
}

impl Default for Master {
    fn default() -> Self {
        Master {
            replid: Mutex::new(random_hex(40)),
            replid2: Mutex::new(("0".repeat(40), -1)),
            offset: AtomicI64::new(0),
            count: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            waiters: Mutex::new(Vec::new()),
            waiting: AtomicBool::new(false),
            shutdown_waiting: AtomicBool::new(false),
            shutdown_abort: AtomicBool::new(false),
            syncs: Default::default(),
            good: AtomicUsize::new(0),
            cut: Mutex::new(()),
            failover: Failover::default(),
            stream_db: AtomicU8::new(0),
        }
    }
}

/// What a replica says about itself with REPLCONF before PSYNC.
#[derive(Debug, Default, Clone)]
pub struct ReplConf {
    /// `listening-port`.
    pub port: u16,
    /// `ip-address`.
    pub ip: Option<String>,
    /// `capa psync2`: it understands `+CONTINUE <replid>`.
    pub psync2: bool,
    /// `capa eof`: it takes a diskless transfer.
    pub eof: bool,
}

/// How PSYNC was answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Sync {
    /// `+CONTINUE`: the replica is online, its backlog part queued.
    Continue,
    /// A full resync: the replica waits for a fork.
    Full,
}

/// What a PSYNC is judged against: this server's replication IDs, offset and backlog.
struct History<'a> {
    replid: &'a [u8],
    /// The second ID (the master's before a promotion) and the first offset not of it.
    replid2: &'a (String, i64),
    /// `master_repl_offset`: the backlog's last byte has this offset.
    offset: i64,
    /// Bytes in the backlog.
    backlog: usize,
}

impl History<'_> {
    /// Redis's `masterTryPartialResynchronization`: where in the backlog `PSYNC id want`
    /// continues (bytes to skip), or None for a full resync: `id` must be this server's ID (or
    /// the second one, up to its offset) and the backlog must still hold byte `want` (or `want`
    /// is the next byte, with nothing to send).
    fn resume_at(&self, id: &[u8], want: i64) -> Option<usize> {
        let (id2, second) = self.replid2;
        let known = id == self.replid || (id == id2.as_bytes() && want <= *second);
        let first = self.offset - self.backlog as i64 + 1;
        (known && want >= first && want <= self.offset + 1).then(|| (want - first) as usize)
    }
}

impl State {
    /// The entry of `replica`, if it is still attached.
    fn entry_mut(&mut self, replica: &Replica) -> Option<&mut Entry> {
        self.replicas
            .iter_mut()
            .find(|e| e.replica.shared.id == replica.shared.id)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Master {
    /// The replication ID.
    pub fn replid(&self) -> String {
        lock(&self.replid).clone()
    }

    /// `master_repl_offset`.
    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::Acquire)
    }

    /// INFO stats' `sync_full`, `sync_partial_ok` and `sync_partial_err`.
    pub fn sync_stats(&self) -> [u64; 3] {
        self.syncs.each_ref().map(|c| c.load(Ordering::Relaxed))
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&self) {
        for c in &self.syncs {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Replicas attached, in any phase.
    pub fn replicas(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Adds this server's own propagated `bytes` to the stream. Called by the sequencer under
    /// its lock (so in stream order); ignored while the stream is a master's, relayed.
    pub(crate) fn feed(&self, server: &Server, bytes: &[u8]) {
        if !relaying(server) {
            self.append(server, bytes);
        }
    }

    /// Adds `bytes` of the followed master's stream, just applied by its client (whose
    /// database is now `db`), to this server's stream, as Redis's
    /// `replicationFeedStreamFromMasterStream`: the backlog and the replicas get the master's
    /// bytes unchanged, so offsets mean the same all along a chain of replicas. Called inside
    /// the store's shared section that applied them, so that a fork (exclusive) cuts the
    /// stream exactly where the data it saves ends.
    pub(crate) fn relay(&self, server: &Server, bytes: &[u8], db: Db) {
        if relaying(server) {
            self.stream_db.store(db, Ordering::Relaxed);
            self.append(server, bytes);
        }
    }

    /// The backlog and every replica, as its phase wants them, get `bytes`.
    fn append(&self, server: &Server, bytes: &[u8]) {
        let mut st = self.state();
        if !st.active {
            return;
        }
        st.backlog.extend(bytes);
        let excess = st.backlog.len().saturating_sub(st.backlog_cap);
        st.backlog.drain(..excess);
        self.offset.fetch_add(bytes.len() as i64, Ordering::AcqRel);
        let limit = replica_output_limit(server);
        // Every batch of writes comes here: the wake flags are kept, not allocated per call.
        let mut wake = std::mem::take(&mut st.wake);
        wake.clear();
        wake.resize(server.threads, false);
        for e in &mut st.replicas {
            match &mut e.phase {
                Phase::WaitBgsaveStart => {}
                Phase::WaitBgsaveEnd { pending }
                | Phase::SendBulk { pending }
                | Phase::Relay { pending }
                | Phase::WaitAck { pending } => {
                    if pending.len().saturating_add(bytes.len()) > limit {
                        drop_replica(server, &e.replica, "output buffer limit");
                        pending.clear();
                    } else {
                        pending.extend_from_slice(bytes);
                    }
                    continue;
                }
                Phase::Online => deliver(server, &e.replica.shared, bytes, &mut wake),
            }
        }
        server.wake_marked(&wake);
        st.wake = wake;
    }

    /// PSYNC/SYNC from `shared` (under the exclusive gate): registers the replica and answers
    /// `+CONTINUE` with the backlog from `want` when `replid` continues this server's history
    /// and the backlog still holds `want`, else leaves it waiting for a full resync.
    /// `psync2`: the replica understands `+CONTINUE <replid>`.
    pub fn attach(
        &self,
        server: &Server,
        replica: Arc<Replica>,
        psync: Option<(&[u8], i64)>,
        psync2: bool,
    ) -> Sync {
        let relayed = relaying(server);
        if !relayed {
            server.aof.start_repl(server);
        }
        let mut st = self.state();
        st.backlog_cap = backlog_size(server);
        // A replica's backlog is its master's history, there once the first sync is done.
        let had_backlog = if relayed {
            st.active
        } else {
            std::mem::replace(&mut st.active, true)
        };
        let replid = self.replid();
        let history = History {
            replid: replid.as_bytes(),
            replid2: &lock(&self.replid2).clone(),
            offset: self.offset(),
            backlog: st.backlog.len(),
        };
        let skip = psync
            .filter(|_| had_backlog)
            .and_then(|(id, want)| history.resume_at(id, want));
        let sync = if let Some(skip) = skip {
            let mut msg = if psync2 {
                format!("+CONTINUE {replid}\r\n").into_bytes()
            } else {
                b"+CONTINUE\r\n".to_vec()
            };
            msg.extend(st.backlog.iter().skip(skip));
            let mut wake = vec![false; server.threads];
            deliver(server, &replica.shared, &msg, &mut wake);
            server.wake_marked(&wake);
            replica.ack_ms.store(unix_ms(), Ordering::Relaxed);
            st.replicas.push(Entry {
                replica,
                phase: Phase::Online,
            });
            self.syncs[1].fetch_add(1, Ordering::Relaxed);
            Sync::Continue
        } else {
            // A PSYNC that named a history (not `?`) and could not continue it.
            if psync.is_some_and(|(id, _)| id != b"?") {
                self.syncs[2].fetch_add(1, Ordering::Relaxed);
            }
            self.syncs[0].fetch_add(1, Ordering::Relaxed);
            st.replicas.push(Entry {
                replica,
                phase: Phase::WaitBgsaveStart,
            });
            Sync::Full
        };
        self.count.store(st.replicas.len(), Ordering::Relaxed);
        self.refresh_good(server, &st);
        sync
    }

    /// Whether a replica waits for a fork (the cron starts a BGSAVE for it).
    fn wants_fork(&self) -> bool {
        self.state()
            .replicas
            .iter()
            .any(|e| matches!(e.phase, Phase::WaitBgsaveStart))
    }

    /// A BGSAVE child was just forked (under the exclusive gate): the stream's offset now is
    /// the snapshot's, so every replica waiting for a fork starts its full resync here.
    pub fn forked(&self, server: &Server) {
        if !self.wants_fork() {
            return;
        }
        // The replicas' stream starts here: this server's own selects its database again
        // (before taking this lock: the sequencer's comes first); a relayed one goes on in the
        // database the snapshot names (`repl-stream-db`), as the master's stream does not.
        if !relaying(server) {
            server.aof.repl_reselect();
        }
        let mut st = self.state();
        let line = format!("+FULLRESYNC {} {}\r\n", self.replid(), self.offset());
        let mut wake = vec![false; server.threads];
        for e in &mut st.replicas {
            if matches!(e.phase, Phase::WaitBgsaveStart) {
                // SYNC (the protocol before PSYNC) gets the payload without the line.
                if !e.replica.sync_only {
                    deliver(server, &e.replica.shared, line.as_bytes(), &mut wake);
                }
                e.phase = Phase::WaitBgsaveEnd {
                    pending: Vec::new(),
                };
            }
        }
        drop(st);
        server.wake_marked(&wake);
    }

    /// A replica's connection closed.
    pub fn detach(&self, server: &Server, id: u64) {
        let mut st = self.state();
        let before = st.replicas.len();
        st.replicas.retain(|e| e.replica.shared.id != id);
        if st.replicas.len() != before {
            if st.replicas.is_empty() {
                st.alone_since_ms = unix_ms();
            }
            log::info!("Connection with replica client id #{id} lost.");
        }
        self.count.store(st.replicas.len(), Ordering::Relaxed);
        self.refresh_good(server, &st);
    }

    /// Redis's backlog expiry: with still no replica, the backlog is freed, the stream stops
    /// (writes no longer pay for it) and the history gets a new replication ID, so no replica
    /// can take the gap for a continuation.
    /// A replica's backlog, its master's history, is never freed.
    fn free_backlog(&self, server: &Server, ttl_ms: u64) {
        let was_active = {
            let mut st = self.state();
            if !st.replicas.is_empty()
                || (!st.active && !server.aof.repl_streaming())
                || relaying(server)
            {
                return;
            }
            st.backlog = VecDeque::new();
            std::mem::replace(&mut st.active, false)
        };
        server.aof.stop_repl(server);
        if !was_active {
            return;
        }
        *lock(&self.replid) = random_hex(40);
        *lock(&self.replid2) = ("0".repeat(40), -1);
        log::info!(
            "Replication backlog freed after {} seconds without connected replicas.",
            ttl_ms / 1000
        );
    }

    /// The master's client holds this while it applies and relays a chunk of the stream
    /// (taken inside its shared section).
    pub(crate) fn relay_guard(&self) -> MutexGuard<'_, ()> {
        lock(&self.cut)
    }

    /// Under the exclusive gate: whether the data and the relayed stream agree now (no chunk
    /// applied and not yet relayed), held so until the guard is dropped. None while the
    /// master's client is in the middle of a chunk, which it can be here only when the chunk
    /// holds an exclusive command waiting for the gate. Always Some on a master, whose own
    /// stream is exact at any exclusive section.
    pub(crate) fn stream_cut(&self) -> Option<MutexGuard<'_, ()>> {
        match self.cut.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The history this server asks a master to continue (`PSYNC replid offset+1`): its own,
    /// as Redis's cached master "using myself", once it has one that a master could know of (a
    /// backlog); None for a full sync.
    pub fn history(&self) -> Option<(String, i64)> {
        let st = self.state();
        st.active.then(|| (self.replid(), self.offset()))
    }

    /// A full sync from the master is about to replace the data (Redis's
    /// `replicationAttachToNewMaster`): the history ends here, so the replicas are dropped and
    /// the backlog is forgotten.
    pub fn full_sync_begins(&self, server: &Server) {
        let mut st = self.state();
        for e in &st.replicas {
            drop_replica(server, &e.replica, "full sync with my master");
        }
        st.active = false;
        st.backlog = VecDeque::new();
    }

    /// A full sync's data is loaded: the history is the master's `replid` up to `offset`, and
    /// the backlog starts after it.
    pub fn full_sync_done(&self, server: &Server, replid: &str, offset: i64) {
        let mut st = self.state();
        *lock(&self.replid) = replid.to_string();
        *lock(&self.replid2) = ("0".repeat(40), -1);
        self.offset.store(offset, Ordering::Release);
        st.backlog = VecDeque::new();
        st.backlog_cap = backlog_size(server);
        st.active = true;
    }

    /// At start-up, a replica whose dump was cut from its master's stream (`repl-id`,
    /// `repl-offset`, `repl-stream-db`): that is its history, which it asks the master to
    /// continue (Redis restores it the same way), with an empty backlog.
    pub fn restore_history(&self, server: &Server, replid: &str, offset: i64, db: Db) {
        self.full_sync_done(server, replid, offset);
        self.stream_db.store(db, Ordering::Relaxed);
    }

    /// The database the stream had selected at the history's last cut or relayed chunk: where
    /// a master client that continues it starts.
    pub fn stream_db(&self) -> Db {
        self.stream_db.load(Ordering::Relaxed)
    }

    /// The master continued this server's history under `replid` (`+CONTINUE replid`). A new
    /// ID (the master was promoted, or this server was one and follows its successor) becomes
    /// this server's too, the old one its second, valid up to here; the replicas are dropped
    /// so that they learn it, and continue at once through that second ID.
    pub fn continued(&self, server: &Server, replid: &str) {
        let old = self.replid();
        if replid.is_empty() || replid == old {
            return;
        }
        let st = self.state();
        *lock(&self.replid2) = (old, self.offset() + 1);
        *lock(&self.replid) = replid.to_string();
        log::info!("Master replication ID changed to {replid}");
        for e in &st.replicas {
            drop_replica(server, &e.replica, "master replication ID changed");
        }
    }

    /// `REPLICAOF NO ONE` (Redis's `shiftReplicationId` and `disconnectSlaves`, under the
    /// exclusive gate): a new replication ID; the master's becomes the second one, valid up to
    /// the offset applied, from which this server's own stream continues the backlog. The
    /// replicas are dropped so that they learn the new ID; they continue at once.
    pub fn promote(&self, server: &Server) {
        let mut st = self.state();
        *lock(&self.replid2) = (self.replid(), self.offset() + 1);
        *lock(&self.replid) = random_hex(40);
        for e in &st.replicas {
            drop_replica(server, &e.replica, "role change");
        }
        st.alone_since_ms = unix_ms();
        let active = st.active;
        drop(st);
        if active {
            // This server's writes continue the stream from here, after a SELECT.
            server.aof.start_repl(server);
        }
    }

    /// What a snapshot records of the stream it was cut from (Redis's `rdbPopulateSaveInfo`):
    /// the database the stream selected (`repl-stream-db`; 0 for this server's own stream,
    /// which selects again after a cut), the replication ID and the offset. None without a
    /// backlog.
    pub fn save_info(&self, server: &Server) -> Option<(u8, String, i64)> {
        let st = self.state();
        if !st.active {
            return None;
        }
        let db = if relaying(server) {
            self.stream_db.load(Ordering::Relaxed)
        } else {
            0
        };
        Some((db, self.replid(), self.offset()))
    }

    /// The replica at `host` (its announced or peer address, ASCII case ignored) and
    /// `port` (its listening port), as Redis's `findReplica`: whether it is online, and the
    /// offset it acknowledged.
    pub fn replica_at(&self, host: &str, port: u16) -> Option<(bool, i64)> {
        self.state()
            .replicas
            .iter()
            .find(|e| e.replica.ip.eq_ignore_ascii_case(host) && e.replica.port == port)
            .map(|e| (e.phase.is_online(), e.replica.acked()))
    }

    /// The first replica that acknowledged `offset` (FAILOVER without TO picks it).
    pub fn caught_up(&self, offset: i64) -> Option<(String, u16)> {
        self.state()
            .replicas
            .iter()
            .find(|e| e.replica.acked() == offset)
            .map(|e| (e.replica.ip.clone(), e.replica.port))
    }

    /// Online replicas as ROLE lists them: (ip, port, acknowledged offset).
    pub fn online(&self) -> Vec<(String, u16, i64)> {
        self.state()
            .replicas
            .iter()
            .filter(|e| e.phase.is_online())
            .map(|e| (e.replica.ip.clone(), e.replica.port, e.replica.acked()))
            .collect()
    }

    /// INFO replication's master fields from `connected_slaves` to `repl_backlog_histlen`.
    pub fn info(&self, server: &Server, out: &mut String) {
        use std::fmt::Write;
        let st = self.state();
        let now = unix_ms();
        let _ = write!(out, "connected_slaves:{}\r\n", st.replicas.len());
        let cfg = &server.config;
        if cfg.min_replicas_to_write.load(Ordering::Relaxed) != 0
            && cfg.min_replicas_max_lag.load(Ordering::Relaxed) != 0
        {
            let _ = write!(out, "min_slaves_good_slaves:{}\r\n", self.good_replicas());
        }
        for (i, e) in st.replicas.iter().enumerate() {
            let r = &e.replica;
            let lag = now.saturating_sub(r.ack_ms.load(Ordering::Relaxed)) / 1000;
            let _ = write!(
                out,
                "slave{i}:ip={},port={},state={},offset={},lag={lag}\r\n",
                r.ip,
                r.port,
                e.phase.name(),
                r.acked()
            );
        }
        let offset = self.offset();
        let (id2, second) = lock(&self.replid2).clone();
        let histlen = st.backlog.len() as i64;
        let _ = write!(
            out,
            "master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{id2}\r\n\
             master_repl_offset:{offset}\r\nsecond_repl_offset:{second}\r\n\
             repl_backlog_active:{}\r\nrepl_backlog_size:{}\r\n\
             repl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{histlen}\r\n",
            self.failover.state_name(),
            self.replid(),
            u8::from(st.active),
            server.config.value_u64("repl-backlog-size"),
            if st.active { offset - histlen + 1 } else { 0 },
        );
    }

    /// The master part of Redis's `replicationCron`, from thread 0's tick: starts the fork a
    /// waiting replica needs, pings the replicas, drops the silent ones, wakes WAIT clients
    /// (whose writes may have reached the stream since), and frees the backlog after
    /// `repl-backlog-ttl` without replicas.
    pub fn cron(&self, server: &Server, session: &mut ferrite_hybridlog::Session) {
        self.failover.update(server, session);
        let relaying = relaying(server);
        if relaying && server.aof.repl_streaming() {
            // This server follows a master now: its own writes no longer feed the stream, so
            // they stop being numbered for it (under the exclusive gate, every number filed).
            session.exclusive(|_| {
                if server.replication.is_replica() {
                    server.aof.stop_repl(server);
                }
            });
        }
        if self.replicas() == 0 {
            if relaying {
                return;
            }
            let ttl_ms = server.config.value_u64("repl-backlog-ttl") * 1000;
            let expired = {
                let mut st = self.state();
                st.backlog_cap = backlog_size(server);
                let idle = ttl_ms > 0 && unix_ms().saturating_sub(st.alone_since_ms) > ttl_ms;
                st.active && idle
            };
            if expired {
                // Under the exclusive gate (every number filed, no PSYNC running), and after
                // this lock is let go: the sequencer's lock comes first.
                session.exclusive(|_| self.free_backlog(server, ttl_ms));
            }
            return;
        }
        self.start_pending_fork(server, session);
        let now = unix_ms();
        let period_ms = server.config.value_u64("repl-ping-replica-period").max(1) * 1000;
        let cap = backlog_size(server);
        let ping = {
            let mut st = self.state();
            st.backlog_cap = cap;
            // A replica's replicas get its master's pings, relayed; a failover waits for the
            // stream to stand still.
            let due = !relaying
                && !self.failover.active()
                && now.saturating_sub(st.last_ping_ms) >= period_ms;
            if due {
                st.last_ping_ms = now;
            }
            due
        };
        if ping {
            server.aof.feed_raw(server, PING);
        }
        let timeout_ms = server.config.value_u64("repl-timeout").max(1) * 1000;
        let st = self.state();
        self.refresh_good(server, &st);
        for e in &st.replicas {
            let at = e.replica.ack_ms.load(Ordering::Relaxed);
            if e.phase.is_online() && at != 0 && now.saturating_sub(at) > timeout_ms {
                log::warn!(
                    "Disconnecting timedout replica (streaming sync): {}:{}",
                    e.replica.ip,
                    e.replica.port
                );
                drop_replica(server, &e.replica, "timeout");
            }
        }
        drop(st);
        if self.waiting.load(Ordering::Acquire) {
            self.wake_waiters(server);
        }
    }
}

impl Replica {
    /// A replica on the connection `shared`.
    pub fn new(shared: Arc<ClientShared>, ip: String, conf: &ReplConf, sync_only: bool) -> Replica {
        Replica {
            shared,
            port: conf.port,
            ip,
            sync_only,
            eof: conf.eof,
            since_ms: unix_ms(),
            start_on_ack: AtomicBool::new(false),
            ack: AtomicI64::new(0),
            ack_ms: AtomicU64::new(0),
        }
    }
}

/// Appends stream bytes to a replica's outbox and marks its thread for waking, or drops it
/// past the replica output limit.
fn deliver(server: &Server, shared: &ClientShared, msg: &[u8], wake: &mut [bool]) {
    crate::pubsub::append_limited(shared, msg, replica_output_limit(server), wake);
}

fn drop_replica(server: &Server, replica: &Replica, why: &str) {
    log::warn!(
        "Dropping replica {}:{} (client id={}): {why}",
        replica.ip,
        replica.port,
        replica.shared.id
    );
    replica.shared.kill.store(true, Ordering::Release);
    server.wake(replica.shared.thread);
}

fn backlog_size(server: &Server) -> usize {
    server.config.value_u64("repl-backlog-size").max(16 * 1024) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history<'a>(replid2: &'a (String, i64), offset: i64, backlog: usize) -> History<'a> {
        History {
            replid: b"aaaa",
            replid2,
            offset,
            backlog,
        }
    }

    #[test]
    fn psync_continues_only_inside_the_backlog_of_a_known_history() {
        let none = ("0000".to_string(), -1);
        // Offsets 91..=100 are in the backlog.
        let h = history(&none, 100, 10);
        assert_eq!(h.resume_at(b"aaaa", 91), Some(0), "the oldest byte held");
        assert_eq!(h.resume_at(b"aaaa", 95), Some(4));
        assert_eq!(
            h.resume_at(b"aaaa", 101),
            Some(10),
            "caught up: nothing to send"
        );
        assert_eq!(
            h.resume_at(b"aaaa", 90),
            None,
            "already dropped from the backlog"
        );
        assert_eq!(h.resume_at(b"aaaa", 102), None, "ahead of this server");
        assert_eq!(h.resume_at(b"bbbb", 95), None, "another history");
        assert_eq!(h.resume_at(b"?", 95), None, "asked for a full resync");
        // An empty backlog continues a replica that has everything.
        let empty = history(&none, 100, 0);
        assert_eq!(empty.resume_at(b"aaaa", 101), Some(0));
        assert_eq!(empty.resume_at(b"aaaa", 100), None);
    }

    fn server() -> Server {
        let store = ferrite_hybridlog::Store::new(ferrite_hybridlog::StoreConfig {
            index_buckets: 1 << 10,
            ..Default::default()
        })
        .expect("valid config");
        Server::new(store, crate::config::Config::default(), 1)
    }

    #[test]
    fn a_replica_history_is_its_master_and_survives_a_promotion() {
        let server = server();
        let m = &server.master;
        assert_eq!(
            m.history(),
            None,
            "no backlog: nothing a master could continue"
        );
        server.replication.mark_replica(true);
        m.full_sync_begins(&server);
        m.full_sync_done(&server, &"a".repeat(40), 100);
        assert_eq!(m.history(), Some(("a".repeat(40), 100)));
        // The relayed bytes extend the history and name the stream's database.
        m.relay(&server, b"*1\r\n$4\r\nPING\r\n", 3);
        assert_eq!(m.offset(), 114);
        assert_eq!(m.save_info(&server), Some((3, "a".repeat(40), 114)));
        // This server's own propagation is not the stream while it relays.
        m.feed(&server, b"ignored");
        assert_eq!(m.offset(), 114);
        // The master continues under the same ID: nothing changes; under a new one, it
        // becomes ours and the old one second.
        m.continued(&server, &"a".repeat(40));
        assert_eq!(lock(&m.replid2).1, -1);
        m.continued(&server, &"b".repeat(40));
        assert_eq!(m.replid(), "b".repeat(40));
        assert_eq!(*lock(&m.replid2), ("a".repeat(40), 115));
        // REPLICAOF NO ONE: a new ID, the master's second up to here, the backlog kept.
        server.replication.mark_replica(false);
        m.promote(&server);
        assert!(!relaying(&server));
        assert_ne!(m.replid(), "b".repeat(40));
        assert_eq!(*lock(&m.replid2), ("b".repeat(40), 115));
        assert_eq!(m.history().map(|(_, o)| o), Some(114));
        assert_eq!(m.state().backlog.len(), 14);
        // Relayed bytes are ignored once this server's own writes are the stream.
        m.relay(&server, b"late", 0);
        assert_eq!(m.offset(), 114);
    }

    #[test]
    fn the_second_id_is_valid_up_to_the_promotion() {
        // Promoted at offset 50: the old master's ID covers offsets up to 51.
        let promoted = ("mmmm".to_string(), 51);
        let h = history(&promoted, 60, 20);
        assert_eq!(h.resume_at(b"mmmm", 45), Some(4));
        assert_eq!(h.resume_at(b"mmmm", 51), Some(10));
        assert_eq!(h.resume_at(b"mmmm", 52), None, "past the old history");
        assert_eq!(h.resume_at(b"aaaa", 52), Some(11));
    }
}
