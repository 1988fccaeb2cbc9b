//! Per-connection state. [`Client`] is owned by the connection's reactor thread; the part other
//! threads may read or act on (CLIENT LIST, CLIENT KILL, INFO clients) lives in [`ClientShared`].

use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicU8, AtomicU16, AtomicU32, AtomicU64,
    Ordering,
};
use std::sync::{Arc, Mutex};

use ferrite_hybridlog::Db;

use crate::resp::Parser;
use crate::table::CommandSpec;

/// What `CLIENT REPLY` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Replies are sent.
    On,
    /// Replies are dropped until `CLIENT REPLY ON`.
    Off,
    /// The reply of the next command is dropped.
    Skip,
    /// Set while the command after `CLIENT REPLY SKIP` runs.
    SkipThis,
}

/// A connection's state, owned by its reactor thread.
pub struct Client {
    /// Unique id (CLIENT ID), never reused.
    pub id: u64,
    /// Selected database.
    pub db: Db,
    /// Whether the connection speaks RESP3 (HELLO 3).
    pub resp3: bool,
    /// Whether the connection has authenticated (or no password was needed when it opened).
    pub authenticated: bool,
    /// No password is needed now, though the connection never authenticated (set per batch of
    /// input: Redis's `authRequired` is false).
    pub auth_waived: bool,
    /// The ACL user commands run as (`None`: an internal client no ACL applies to, as Redis's
    /// master and AOF clients), as of [`Client::acl_version`].
    pub user: Option<Arc<crate::acl::User>>,
    /// The [`crate::acl::Acl::version`] `user` was read at.
    pub acl_version: u64,
    /// `user` may run anything on anything (or is `None`): no check needed while
    /// `acl_version` is current.
    pub acl_free: bool,
    /// The request parser, resuming across reads.
    pub parser: Parser,
    /// CLIENT REPLY mode.
    pub reply_mode: ReplyMode,
    /// Close once the current replies are sent (QUIT, protocol error, CLIENT KILL of self).
    pub close_after_reply: bool,
    /// The master this server follows (the replication link's client): CLIENT LIST type
    /// `master`, flag `M`.
    pub master_link: bool,
    /// The master's stream applied by this (master link) client but not yet relayed to this
    /// server's own stream: an open transaction's, relayed with its EXEC.
    pub repl_unrelayed: Vec<u8>,
    /// CLIENT NO-EVICT.
    pub no_evict: bool,
    /// The part other threads can see.
    pub shared: Arc<ClientShared>,
    /// The connection's reactor token, packed by the binary (the worker hands it back to resume
    /// a parked connection; it never looks inside).
    pub token: u64,
    /// Set while a blocking command must not block (EXEC, scripts): it then answers as if it
    /// had timed out, as Redis's `CLIENT_DENY_BLOCKING`.
    pub deny_blocking: bool,
    /// The AOF loader's client (Redis's `mustObeyClient`): commands replay what the original
    /// did, so checks that only guard what a user may ask (XADD's LIMIT without `~`) are off.
    pub obey: bool,
    /// The wait of a parked blocking command (BLPOP, ...), kept across its re-executions.
    pub blocked: Option<crate::blocking::BlockState>,
    /// Set by a handler that parks: the worker then leaves the command unconsumed.
    pub(crate) park: bool,
    /// Set with `park` when CLIENT PAUSE postponed the command (no blocking state).
    pub(crate) postponed: bool,
    /// The shared block state shows the postponement (until the command runs).
    pub(crate) shows_postponed: bool,
    /// The open transaction (between MULTI and EXEC/DISCARD).
    pub multi: Option<Box<MultiState>>,
    /// While EXEC runs the queue: its length and [`MultiState::memory`] (Redis still shows the
    /// client as in MULTI then: `flags=x multi=N`).
    pub in_exec: Option<(i64, u64)>,
    /// Keys under WATCH, with the version each had when watched.
    pub watched: Vec<WatchedKey>,
    /// Pub/Sub subscriptions (`None`: never subscribed, the common case).
    pub pubsub: Option<Box<Subscriptions>>,
    /// CLIENT TRACKING state (`None`: not tracking, the common case).
    pub tracking: Option<Box<crate::tracking::ClientTracking>>,
    /// Since when (Unix ms) a subscriber's unsent output has been above the pubsub soft limit
    /// (0: it is not).
    pub output_soft_since_ms: u64,
    /// Replies held until the AOF writer has them (see [`crate::aof`]).
    pub held: crate::aof::feed::Held,
    /// EXEC's propagated transaction, handed from the handler to the worker's AOF feed.
    pub aof_txn: Option<crate::aof::Txn>,
    /// Peak of the output buffer in the current [`PEAK_WINDOW_MS`] window (CLIENT LIST `rbp`),
    /// and when the window started.
    pub out_peak: (u64, u64),
    /// Positions of the running command's arguments that must not be shown (passwords: AUTH,
    /// HELLO's AUTH, CONFIG SET requirepass), as Redis's `redactClientCommandArgument` marks
    /// them for the slow log and monitors. Emptied when the command ends.
    pub redacted: Vec<u32>,
    /// In MONITOR mode (Redis's `CLIENT_MONITOR`): every command run is shown to it, and it may
    /// no longer touch the keyspace.
    pub monitor: bool,
    /// What a replica told with REPLCONF before its PSYNC.
    pub replconf: crate::master::ReplConf,
    /// This connection is a replica of this server (after PSYNC or SYNC).
    pub replica: Option<Arc<crate::master::Replica>>,
    /// A WAIT in progress: the stream offset its writes end at, once known.
    pub wait: Option<crate::master::WaitTarget>,
}

/// Redis keeps a client's reply-buffer peak over windows of 5 seconds.
pub const PEAK_WINDOW_MS: u64 = 5000;

/// A client's channels, patterns and shard channels (Redis's `c->pubsub_channels`,
/// `c->pubsub_patterns`, `c->pubsub_shard_channels`).
#[derive(Debug, Default)]
pub struct Subscriptions {
    /// SUBSCRIBE channels.
    pub channels: std::collections::HashSet<Vec<u8>>,
    /// PSUBSCRIBE patterns.
    pub patterns: std::collections::HashSet<Vec<u8>>,
    /// SSUBSCRIBE shard channels.
    pub shards: std::collections::HashSet<Vec<u8>>,
}

impl Subscriptions {
    /// Channels plus patterns, the count (P)SUBSCRIBE replies carry.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Every subscription: the client is in Pub/Sub mode while this is not 0.
    pub fn total(&self) -> usize {
        self.count() + self.shards.len()
    }
}

impl Client {
    /// Runs the connection's commands as `user` (read at ACL `version`; `None`: unchecked, shown
    /// as Redis shows its master client, `(superuser)`).
    pub fn set_user(&mut self, user: Option<Arc<crate::acl::User>>, version: u64) {
        let name: &[u8] = user.as_ref().map_or(b"(superuser)", |u| &u.name);
        if **self.shared.user.lock().unwrap_or_else(|e| e.into_inner()) != *name {
            *self.shared.user.lock().unwrap_or_else(|e| e.into_inner()) = Arc::from(name);
        }
        self.acl_free = user.as_ref().is_none_or(|u| u.unrestricted());
        self.user = user;
        self.acl_version = version;
    }

    /// Whether the client is in Pub/Sub mode (Redis's `CLIENT_PUBSUB`): subscribed to at least
    /// one channel, pattern or shard channel.
    #[inline]
    pub fn subscribed(&self) -> bool {
        self.pubsub.as_ref().is_some_and(|s| s.total() > 0)
    }

    /// The CLIENT LIST flags this client has now ([`FLAG_PUBSUB`], ...; blocking is kept in
    /// [`ClientShared::block`]).
    pub fn flag_bits(&self) -> u16 {
        let mut f = 0;
        if self.monitor {
            f |= FLAG_MONITOR;
        }
        if self.master_link {
            f |= FLAG_MASTER;
        }
        if self.replica.is_some() {
            f |= FLAG_REPLICA;
        }
        if self.subscribed() {
            f |= FLAG_PUBSUB;
        }
        if self.multi.is_some() || self.in_exec.is_some() {
            f |= FLAG_MULTI;
        }
        if self.no_evict {
            f |= FLAG_NO_EVICT;
        }
        if let Some(t) = &self.tracking {
            f |= FLAG_TRACKING;
            if t.mode.bcast {
                f |= FLAG_TRACKING_BCAST;
            }
        }
        f
    }

    /// Publishes what CLIENT LIST shows of this connection (called by its thread at the end of
    /// each `input` call): `qbuf` unconsumed query bytes, `argv_mem` the bytes of a parked
    /// command's arguments, `out` the connection's pending output.
    pub fn publish(&mut self, qbuf: u64, argv_mem: u64, out: &[u8], out_cap: usize, now_ms: u64) {
        let pending = out.len() as u64;
        let (peak, since) = &mut self.out_peak;
        if now_ms.saturating_sub(*since) >= PEAK_WINDOW_MS {
            *peak = pending;
            *since = now_ms;
        } else {
            *peak = (*peak).max(pending);
        }
        let s = &self.shared;
        let r = Ordering::Relaxed;
        s.qbuf.store(qbuf, r);
        let i = &s.conn;
        i.flags.store(self.flag_bits(), r);
        let (sub, psub, ssub) = self.pubsub.as_ref().map_or((0, 0, 0), |p| {
            let n = |set: &std::collections::HashSet<Vec<u8>>| set.len() as u32;
            (n(&p.channels), n(&p.patterns), n(&p.shards))
        });
        i.sub.store(sub, r);
        i.psub.store(psub, r);
        i.ssub.store(ssub, r);
        let (multi, multi_mem) = self
            .multi
            .as_ref()
            .map_or((-1, 0), |m| (m.commands.len() as i64, m.memory()));
        i.multi.store(multi, r);
        i.multi_mem.store(multi_mem, r);
        i.argv_mem.store(argv_mem, r);
        i.obl.store(pending, r);
        i.rbs.store(out_cap as u64, r);
        i.rbp.store(self.out_peak.0, r);
    }
}

impl Client {
    /// Publishes the state of the output buffer alone (on the periodic poll, after the reactor
    /// has sent what the last `input` left pending).
    pub fn publish_output(&self, out: &[u8], out_cap: usize) {
        let i = &self.shared.conn;
        i.obl.store(out.len() as u64, Ordering::Relaxed);
        i.rbs.store(out_cap as u64, Ordering::Relaxed);
    }
}

/// CLIENT LIST flag `P`: subscribed (Redis's `CLIENT_PUBSUB`).
pub const FLAG_PUBSUB: u16 = 1;
/// CLIENT LIST flag `x`: in MULTI.
pub const FLAG_MULTI: u16 = 2;
/// CLIENT LIST flag `e`: CLIENT NO-EVICT on.
pub const FLAG_NO_EVICT: u16 = 4;
/// CLIENT LIST flag `t`: CLIENT TRACKING on.
pub const FLAG_TRACKING: u16 = 8;
/// CLIENT LIST flag `R`: the tracking redirect's client is gone.
pub const FLAG_TRACKING_BROKEN: u16 = 16;
/// CLIENT LIST flag `B`: tracking in BCAST mode.
pub const FLAG_TRACKING_BCAST: u16 = 32;
/// CLIENT LIST flag `O`: in MONITOR mode.
pub const FLAG_MONITOR: u16 = 64;
/// CLIENT LIST flag `M`: the master this server follows; its type is `master`.
pub const FLAG_MASTER: u16 = 128;
/// CLIENT LIST flag `S`: a replica of this server; its type is `replica`.
pub const FLAG_REPLICA: u16 = 256;

/// Redis's `flags=` letters (`getClientInfoString`, in its order) for `bits` and blocking;
/// `N` when none applies.
pub fn flag_letters(bits: u16, blocked: bool) -> String {
    let mut s = String::new();
    if bits & FLAG_MONITOR != 0 {
        s.push('O');
    } else if bits & FLAG_REPLICA != 0 {
        s.push('S');
    }
    if bits & FLAG_MASTER != 0 {
        s.push('M');
    }
    if bits & FLAG_PUBSUB != 0 {
        s.push('P');
    }
    if bits & FLAG_MULTI != 0 {
        s.push('x');
    }
    if blocked {
        s.push('b');
    }
    for (bit, c) in [
        (FLAG_TRACKING, 't'),
        (FLAG_TRACKING_BROKEN, 'R'),
        (FLAG_TRACKING_BCAST, 'B'),
    ] {
        if bits & bit != 0 {
            s.push(c);
        }
    }
    if bits & FLAG_NO_EVICT != 0 {
        s.push('e');
    }
    if s.is_empty() {
        s.push('N');
    }
    s
}

/// A transaction being queued: the commands' arguments copied out of the input buffer (which
/// is consumed as they arrive) into one buffer, with spans per command.
#[derive(Debug, Default)]
pub struct MultiState {
    /// Every queued argument's bytes, back to back.
    pub data: Vec<u8>,
    /// `(offset, len)` of each argument in `data`, all commands in order.
    pub spans: Vec<(u32, u32)>,
    /// Per queued command: its table entry and the range of `spans` holding its arguments.
    pub commands: Vec<(&'static CommandSpec, u32, u32)>,
    /// A command failed its checks while queueing: EXEC must refuse (Redis's
    /// `CLIENT_DIRTY_EXEC`).
    pub dirty: bool,
}

impl MultiState {
    /// Queues one command, copying its arguments. False when the transaction outgrew the
    /// 4 GiB the `u32` spans can address (the caller then refuses the command).
    pub fn queue(&mut self, spec: &'static CommandSpec, args: crate::args::Args<'_>) -> bool {
        let first = self.spans.len();
        for a in args.iter_from(0) {
            let (Ok(offset), Ok(len)) = (u32::try_from(self.data.len()), u32::try_from(a.len()))
            else {
                return false;
            };
            if offset.checked_add(len).is_none() {
                return false;
            }
            self.data.extend_from_slice(a);
            self.spans.push((offset, len));
        }
        let (Ok(start), Ok(end)) = (u32::try_from(first), u32::try_from(self.spans.len())) else {
            return false;
        };
        self.commands.push((spec, start, end));
        true
    }

    /// Redis's `multi-mem` (`mstate.argv_len_sums`): the queued arguments' bytes plus a
    /// pointer per argument.
    pub fn memory(&self) -> u64 {
        (self.data.len() + self.spans.len() * std::mem::size_of::<usize>()) as u64
    }

    /// The arguments of queued command `i` (as queued by [`queue`](Self::queue)).
    pub fn args(&self, i: usize) -> Option<(&'static CommandSpec, crate::args::Args<'_>)> {
        let &(spec, start, end) = self.commands.get(i)?;
        let spans = self.spans.get(start as usize..end as usize)?;
        Some((spec, crate::args::Args::new(&self.data, spans)))
    }
}

/// One WATCHed key.
#[derive(Debug, Clone)]
pub struct WatchedKey {
    /// Database the key was watched in.
    pub db: Db,
    /// The key.
    pub key: Vec<u8>,
    /// Its version at WATCH time.
    pub version: ferrite_hybridlog::KeyVersion,
}

/// What other threads can see of a client (CLIENT LIST/INFO/KILL, INFO clients).
#[derive(Debug)]
pub struct ClientShared {
    /// Client id.
    pub id: u64,
    /// Reactor thread that owns the connection.
    pub thread: usize,
    /// Peer address, `ip:port`.
    pub addr: String,
    /// Local address, `ip:port`.
    pub laddr: String,
    /// Creation time, Unix ms.
    pub created_ms: u64,
    /// CLIENT SETNAME.
    pub name: Mutex<Option<Vec<u8>>>,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: Mutex<Option<Vec<u8>>>,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: Mutex<Option<Vec<u8>>>,
    /// Selected database (mirrors `Client::db`).
    pub db: AtomicU8,
    /// Protocol version, 2 or 3.
    pub resp: AtomicU8,
    /// Last command's completion time, Unix ms.
    pub last_interaction_ms: AtomicU64,
    /// The last command run (null: none yet); always points at a `'static` table entry.
    last_cmd: AtomicPtr<CommandSpec>,
    /// Unconsumed query buffer bytes (CLIENT LIST `qbuf`).
    pub qbuf: AtomicU64,
    /// Set by CLIENT KILL from any thread; the owner closes the connection when it sees it.
    pub kill: AtomicBool,
    /// The ACL user's name (CLIENT LIST `user=`, CLIENT KILL USER).
    pub user: Mutex<Arc<[u8]>>,
    /// Blocking state (`BLOCK_*`): whether a blocking command is parked, and whether CLIENT
    /// UNBLOCK asked it to give up.
    pub block: AtomicU8,
    /// Pub/Sub messages published to this client by any thread and not yet moved to its
    /// connection's output (see [`crate::pubsub`]).
    pub outbox: Mutex<Vec<u8>>,
    /// Set (under the `outbox` lock) when the outbox has bytes: the owner checks it without
    /// locking.
    pub outbox_ready: AtomicBool,
    /// The socket's file descriptor (CLIENT LIST `fd`): -1 where the connection has none in
    /// the process's table (io_uring keeps it only in the ring's fixed-file table).
    pub fd: AtomicI32,
    /// The rest of what CLIENT LIST shows, as of the owner's last `input` call.
    pub conn: ConnInfo,
}

/// What the owning thread publishes of a connection for CLIENT LIST ([`Client::publish`]).
#[derive(Debug)]
pub struct ConnInfo {
    /// `FLAG_*` bits.
    pub flags: AtomicU16,
    /// Channels subscribed to.
    pub sub: AtomicU32,
    /// Patterns subscribed to.
    pub psub: AtomicU32,
    /// Shard channels subscribed to.
    pub ssub: AtomicU32,
    /// Queued commands, -1 outside MULTI.
    pub multi: AtomicI64,
    /// See [`MultiState::memory`].
    pub multi_mem: AtomicU64,
    /// Argument bytes of a parked command.
    pub argv_mem: AtomicU64,
    /// Output bytes not yet handed to the kernel.
    pub obl: AtomicU64,
    /// Capacity of the output buffer.
    pub rbs: AtomicU64,
    /// Peak of pending output in the last window.
    pub rbp: AtomicU64,
}

impl Default for ConnInfo {
    fn default() -> Self {
        Self {
            flags: AtomicU16::new(0),
            sub: AtomicU32::new(0),
            psub: AtomicU32::new(0),
            ssub: AtomicU32::new(0),
            multi: AtomicI64::new(-1),
            multi_mem: AtomicU64::new(0),
            argv_mem: AtomicU64::new(0),
            obl: AtomicU64::new(0),
            rbs: AtomicU64::new(0),
            rbp: AtomicU64::new(0),
        }
    }
}

/// [`ClientShared::block`]: not blocked.
pub const BLOCK_NONE: u8 = 0;
/// [`ClientShared::block`]: parked in a blocking command.
pub const BLOCK_WAITING: u8 = 1;
/// [`ClientShared::block`]: CLIENT UNBLOCK ... TIMEOUT asked it to answer as on a timeout.
pub const BLOCK_UNBLOCK_TIMEOUT: u8 = 2;
/// [`ClientShared::block`]: CLIENT UNBLOCK ... ERROR asked it to answer with an error.
pub const BLOCK_UNBLOCK_ERROR: u8 = 3;
/// [`ClientShared::block`]: its command waits for a CLIENT PAUSE to end. Shown as blocked
/// (CLIENT LIST `b`, INFO `blocked_clients`), as Redis shows it, but CLIENT UNBLOCK leaves it
/// alone (Redis 7.0 crashes on that).
pub const BLOCK_POSTPONED: u8 = 4;
/// [`ClientShared::block`]: the server became a replica (REPLICAOF): answered with Redis's
/// UNBLOCKED error and closed, as Redis's `disconnectAllBlockedClients`.
pub const BLOCK_UNBLOCK_REPLICA: u8 = 5;

impl ClientShared {
    /// Fresh shared state for a new connection.
    pub fn new(id: u64, thread: usize, addr: String, laddr: String, now_ms: u64) -> Self {
        Self {
            id,
            thread,
            addr,
            laddr,
            created_ms: now_ms,
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            db: AtomicU8::new(0),
            resp: AtomicU8::new(2),
            last_interaction_ms: AtomicU64::new(now_ms),
            last_cmd: AtomicPtr::new(std::ptr::null_mut()),
            qbuf: AtomicU64::new(0),
            kill: AtomicBool::new(false),
            user: Mutex::new(Arc::from(&b"default"[..])),
            block: AtomicU8::new(BLOCK_NONE),
            outbox: Mutex::new(Vec::new()),
            outbox_ready: AtomicBool::new(false),
            fd: AtomicI32::new(-1),
            conn: ConnInfo::default(),
        }
    }

    /// Records the command just run (CLIENT LIST `cmd=`).
    #[inline]
    pub fn set_last_cmd(&self, spec: &'static CommandSpec) {
        self.last_cmd
            .store(std::ptr::from_ref(spec).cast_mut(), Ordering::Relaxed);
    }

    /// The last command run, if any.
    pub fn last_cmd(&self) -> Option<&'static CommandSpec> {
        let p = self.last_cmd.load(Ordering::Relaxed);
        // SAFETY: the pointer is null or was made from a `&'static CommandSpec` in
        // `set_last_cmd`; the table is never freed or mutated, so it is valid for 'static.
        unsafe { p.cast_const().as_ref() }
    }

    /// Whether the client is parked in a blocking command (CLIENT LIST `flags=b`).
    #[inline]
    pub fn is_blocked(&self) -> bool {
        self.block.load(Ordering::Acquire) != BLOCK_NONE
    }

    /// Whether CLIENT KILL marked this client.
    #[inline]
    pub fn killed(&self) -> bool {
        self.kill.load(Ordering::Acquire)
    }
}

/// Every connected client, by id. Touched on connect, disconnect and by CLIENT LIST/KILL, never
/// per command.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Mutex<std::collections::BTreeMap<u64, Arc<ClientShared>>>,
    next_id: AtomicU64,
}

impl ClientRegistry {
    /// The next client id (ids start at 1 and are never reused).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a connected client.
    pub fn insert(&self, c: Arc<ClientShared>) {
        self.lock().insert(c.id, c);
    }

    /// Forgets a disconnected client.
    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of every connected client, by id.
    pub fn snapshot(&self) -> Vec<Arc<ClientShared>> {
        self.lock().values().cloned().collect()
    }

    /// One client by id.
    pub fn get(&self, id: u64) -> Option<Arc<ClientShared>> {
        self.lock().get(&id).cloned()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, Arc<ClientShared>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_cmd_round_trips() {
        let c = ClientShared::new(1, 0, String::new(), String::new(), 0);
        assert!(c.last_cmd().is_none());
        let spec = crate::table::lookup(b"PING").expect("ping exists");
        c.set_last_cmd(spec);
        assert!(std::ptr::eq(c.last_cmd().expect("set"), spec));
    }
}
