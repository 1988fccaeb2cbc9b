//! The connection state machine of one reactor thread: it turns a connection's input bytes into
//! commands, runs them against the store and appends their replies. It knows nothing of sockets
//! or of the backend that moves the bytes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ferrite_hybridlog::Session;

use crate::ahead::Ahead;
use crate::aof;
use crate::blocking;
use crate::client::{BLOCK_UNBLOCK_ERROR, BLOCK_UNBLOCK_TIMEOUT, Client, ClientShared, ReplyMode};
use crate::cmd::scripting::busy::BUSY_EVAL;
use crate::cmd::transactions;
use crate::config::Config;
use crate::ctx::Ctx;
use crate::disk_wait::{DiskRead, DiskWaits, READ_FAILED, Start};
use crate::eviction;
use crate::resolve::{count_rejected, resolve};
use crate::resp::{Limits, Parse, Parser, Reply};
use crate::server::{Server, unix_ms};
use crate::slowlog;
use crate::stats::{CallTimer, Rates, RunTimer, ThreadStats};
use crate::table::{self, CmdId, CommandSpec, flags};

/// What the connection should do after an `input` or `poll` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Send what is pending, then close.
    CloseAfterFlush,
    /// Close at once, dropping pending output.
    CloseNow,
    /// A blocking command is waiting: stop calling `input` (its request stays unconsumed)
    /// until the worker asks, through `tick` or `woken`, to resume the connection.
    Park,
}

/// Buckets the active expiry cycle walks per tick.
const ACTIVE_EXPIRE_BUCKETS_PER_TICK: usize = 1024;

/// One reactor thread's command engine.
pub struct Worker {
    server: Arc<Server>,
    session: Session,
    thread: usize,
    /// Clients of this thread parked in a blocking command, by id: their reactor token.
    parked: HashMap<u64, u64>,
    /// Deadlines of parked clients, soonest first (stale entries are skipped when popped).
    deadlines: BinaryHeap<Reverse<(i64, u64)>>,
    /// Scratch for the mailbox.
    mailbox: Vec<u64>,
    /// Commands waiting for their keys to be read back from disk.
    disk: DiskWaits,
    /// Clients whose command a CLIENT PAUSE postponed, in order (also in `parked`).
    postponed: Vec<u64>,
    /// Seed of `maxmemory` eviction's sampling.
    evict_seed: u64,
    /// Whether commands may park for disk reads: false for a worker no reactor drives (the AOF
    /// loader), whose commands read below the head synchronously instead.
    async_disk: bool,
    /// This thread's entries for the append-only file.
    feed: aof::Feed,
    /// Times runs of commands for INFO commandstats.
    timer: RunTimer,
    /// Samples this thread's rates for INFO's instantaneous fields.
    rates: Rates,
    /// Requests parsed ahead of the one running (kept for its buffers' capacity).
    ahead: Ahead,
    /// When (Unix ms) this worker last measured the clock's nanoseconds per tick again.
    ns_per_tick_at: u64,
    /// While a script on another thread is busy and this batch could not enter the store: the
    /// reply its commands get.
    busy: Option<&'static str>,
}

/// How often a worker measures the clock's ratio again.
const NS_PER_TICK_REFRESH_MS: u64 = 10;

/// The commandstats clock's nanoseconds per tick in 32.32 fixed point (0: not measured yet),
/// for the per-command latency histograms: converting a command's ticks must not read the time.
static NS_PER_TICK_FIXED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Worker {
    /// The engine of reactor thread `thread`.
    pub fn new(server: Arc<Server>, thread: usize) -> Self {
        let session = server.store.session();
        eviction::sync_tracking(&server.config, &session);
        Self {
            server,
            session,
            thread,
            parked: HashMap::new(),
            deadlines: BinaryHeap::new(),
            mailbox: Vec::new(),
            disk: DiskWaits::default(),
            postponed: Vec::new(),
            evict_seed: thread as u64 + 1,
            async_disk: true,
            feed: aof::Feed::default(),
            timer: RunTimer::default(),
            rates: Rates::default(),
            ahead: Ahead::default(),
            ns_per_tick_at: {
                measure_ns_per_tick();
                unix_ms()
            },
            busy: None,
        }
    }

    /// A worker for a caller that runs commands itself, without a reactor (the AOF loader): its
    /// commands never park for disk reads, the store reads synchronously instead.
    pub fn without_reactor(server: Arc<Server>) -> Self {
        let mut worker = Self::new(server, 0);
        worker.async_disk = false;
        worker
    }

    /// Moves the disk reads this worker's parked commands wait for into `into`; the reactor
    /// performs them and calls [`Worker::disk_read_done`].
    pub fn take_disk_reads(&mut self, into: &mut Vec<DiskRead>) {
        self.disk.take_reads(into);
    }

    /// A disk read finished. Returns the token of a connection to resume: its command's
    /// records are all read back now.
    pub fn disk_read_done(&mut self, tag: u64, result: std::io::Result<&[u8]>) -> Option<u64> {
        self.disk.done(&self.session, tag, result)
    }

    /// The shared server.
    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }

    fn stats(&self) -> &ThreadStats {
        self.server.stats.thread(self.thread)
    }

    /// A connection arrived: a new client, or `None` (with an error in `out`) past `maxclients`.
    pub fn accept(
        &mut self,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        out: &mut Vec<u8>,
    ) -> Option<Client> {
        let maxclients = Config::load(&self.server.config.maxclients);
        if self.server.clients.len() as u64 >= maxclients {
            ThreadStats::add(&self.stats().rejected_connections, 1);
            out.extend_from_slice(b"-ERR max number of clients reached\r\n");
            return None;
        }
        ThreadStats::add(&self.stats().connections, 1);
        Some(self.new_client(peer, local))
    }

    /// A worker for a background thread that runs commands itself (the replication link):
    /// its statistics go to the slot after the reactor threads', and the store reads
    /// synchronously, as for [`Worker::without_reactor`].
    pub fn background(server: Arc<Server>) -> Self {
        let thread = server.threads;
        let mut worker = Self::new(server, thread);
        worker.async_disk = false;
        worker
    }

    /// The client the AOF loader replays commands as: authenticated, never blocking.
    pub fn internal_client(&mut self) -> Client {
        let mut client = self.new_client(None, None);
        client.authenticated = true;
        client.set_user(None, 0);
        client.deny_blocking = true;
        client.obey = true;
        client
    }

    fn new_client(&mut self, peer: Option<SocketAddr>, local: Option<SocketAddr>) -> Client {
        let id = self.server.clients.next_id();
        let fmt = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        let shared = Arc::new(ClientShared::new(
            id,
            self.thread,
            fmt(peer),
            fmt(local),
            unix_ms(),
        ));
        let authenticated = !self.server.acl.auth_required();
        self.server.clients.insert(shared.clone());
        let version = self.server.acl.version();
        let user = self.server.acl.default_user();
        let mut client = Client {
            id,
            db: 0,
            resp3: false,
            authenticated,
            auth_waived: false,
            acl_version: 0,
            acl_free: false,
            user: None,
            parser: Parser::new(),
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            master_link: false,
            repl_unrelayed: Vec::new(),
            no_evict: false,
            shared,
            token: 0,
            deny_blocking: false,
            obey: false,
            blocked: None,
            park: false,
            postponed: false,
            shows_postponed: false,
            multi: None,
            in_exec: None,
            watched: Vec::new(),
            pubsub: None,
            tracking: None,
            output_soft_since_ms: 0,
            held: aof::feed::Held::default(),
            aof_txn: None,
            out_peak: (0, 0),
            monitor: false,
            redacted: Vec::new(),
            replconf: Default::default(),
            replica: None,
            wait: None,
        };
        client.set_user(Some(user), version);
        client
    }

    /// The connection closed.
    pub fn closed(&mut self, mut client: Client) {
        self.disk.forget(client.id);
        if self.parked.remove(&client.id).is_some() {
            self.postponed.retain(|&id| id != client.id);
        }
        if client.blocked.is_some() {
            // While a script is busy the release runs outside the shared section rather than
            // wait for the script: it only leaves the wait queues and reads the keys whose turn
            // it passes on, which needs no exclusion from the script.
            self.enter_unless_busy();
            blocking::release(&self.server, &mut self.session, &mut client, unix_ms());
            self.session.leave();
        }
        crate::cmd::pubsub::unsubscribe_all(&mut client);
        if client.tracking.take().is_some() {
            self.server.tracking.disable(&self.server.store, client.id);
        }
        if client.monitor {
            self.server.monitors.remove(client.id);
        }
        if !client.held.out.is_empty() {
            self.server.aof.unhold();
        }
        if client.replica.is_some() {
            self.server.master.detach(&self.server, client.id);
        }
        self.server.clients.remove(client.id);
    }

    /// Runs every complete command in `input`, appending replies to `out`; returns the bytes
    /// consumed. A partial command stays in `input` and parsing resumes when more arrives.
    pub fn input(&mut self, client: &mut Client, input: &[u8], out: &mut Vec<u8>) -> (usize, Flow) {
        ThreadStats::add(&self.stats().net_input_bytes, input.len() as u64);
        let out_start = out.len();
        // Messages published to this client go out before the replies of its next commands.
        take_outbox(client, out);
        let mut parser = std::mem::take(&mut client.parser);
        let max_bulk_len = Config::load(&self.server.config.proto_max_bulk_len);
        let mut pos = 0;
        // A parked command's bytes: still in the input, but no longer "query buffer" for
        // CLIENT LIST, as Redis has already parsed them into argv.
        let mut held = 0;
        let mut argv_mem = 0;
        // One clock read per batch: the commands of one read run within microseconds of each
        // other, and a clock read per command was a measurable share of a pipelined GET.
        let now_ms = unix_ms();
        self.session.store().access().set_clock(now_ms);
        if now_ms.wrapping_sub(self.ns_per_tick_at) >= NS_PER_TICK_REFRESH_MS {
            measure_ns_per_tick();
            self.ns_per_tick_at = now_ms;
        }
        // Redis decides "authentication required" per request (`authRequired`), so a
        // connection opened while a password was set is free while no password is set, and
        // bound again when one is: it never authenticated.
        client.auth_waived = !client.authenticated && !self.server.acl.auth_required();
        self.enter_or_busy();
        // The master's stream: a chunk is applied and relayed as one step that no fork or role
        // change splits (see `Master::stream_cut`).
        let server = client.master_link.then(|| Arc::clone(&self.server));
        let cut = match &server {
            Some(server) => {
                let cut = server.master.relay_guard();
                if !server.replication.is_replica() || client.shared.killed() {
                    // The link ended (REPLICAOF): nothing more of this master's stream applies.
                    drop(cut);
                    self.session.leave();
                    client.parser = parser;
                    return (0, Flow::CloseNow);
                }
                Some(cut)
            }
            None => None,
        };
        // Where the master's stream applied so far ends outside a transaction.
        let mut relayable = 0;
        let mut ahead = std::mem::take(&mut self.ahead);
        let flow = loop {
            let limits = Limits {
                max_bulk_len,
                authenticated: client.authenticated || client.auth_waived,
            };
            if !self.session.is_inside() {
                // A script on another thread turned busy: each command checks again, so the
                // batch goes back to the store the moment the script ends.
                self.enter_or_busy();
            }
            if ahead.is_empty() && parser.is_idle() && pos < input.len() && self.busy.is_none() {
                ahead.fill(&input[pos..], &limits, &mut self.session, client.db);
            }
            let (consumed, args, found, key_hash) = if let Some(request) = ahead.pop(&input[pos..])
            {
                (
                    request.consumed,
                    request.args,
                    Some(request.found),
                    request.key_hash,
                )
            } else {
                match parser.parse(&input[pos..], &limits) {
                    Parse::Command { consumed } => {
                        (consumed, parser.args(&input[pos..]), None, None)
                    }
                    Parse::Skip { consumed } => {
                        pos += consumed;
                        continue;
                    }
                    Parse::Incomplete => {
                        let limit = Config::load(&self.server.config.client_query_buffer_limit);
                        if (input.len() - pos) as u64 > limit {
                            log::warn!(
                                "Closing client that reached max query buffer length: id={} qbuf={}",
                                client.id,
                                input.len() - pos
                            );
                            break Flow::CloseNow;
                        }
                        break Flow::Continue;
                    }
                    Parse::Error(msg) => {
                        let stats = self.server.stats.thread(self.thread);
                        let mut reply = Reply::counted(out, client.resp3, stats);
                        reply.error_bytes(&[b"ERR Protocol error: ", msg].concat());
                        log::debug!(
                            "Protocol error ({}) from client id={}",
                            msg.escape_ascii(),
                            client.id
                        );
                        break Flow::CloseAfterFlush;
                    }
                }
            };
            if client.blocked.is_some() && self.give_up(client, out, now_ms) {
                pos += consumed;
                if client.close_after_reply {
                    break Flow::CloseAfterFlush;
                }
                continue;
            }
            if client.blocked.is_some() && self.busy.is_some() {
                // A parked command woken while a script is busy was accepted before: it is not
                // refused, and the thread does not wait for the store either (it must keep
                // answering BUSY and SCRIPT KILL); it stays parked and looks again each tick.
                client.postponed = true;
                self.park(client);
                held = consumed;
                argv_mem = args.iter_from(0).map(|a| a.len() as u64).sum();
                break Flow::Park;
            }
            let keeps = matches!(found, Some(Some((spec, _))) if Ahead::keeps_after(spec));
            // The hint names the key by its address: it lives exactly as long as this command
            // runs, never past these input bytes (the buffer is reused for later reads).
            if let Some(hash) = key_hash {
                self.session.hint_key(hash);
            }
            self.execute(client, args, out, now_ms, found);
            self.session.forget_key();
            // As Redis checks after adding a reply: a normal client past its output limit is
            // closed, its output dropped (one load while the normal class has no limit).
            if self.server.config.normal_output_limited()
                && client.pubsub.is_none()
                && !client.monitor
                && self.output_over_limit(client, false, out.len())
            {
                break Flow::CloseNow;
            }
            if client.blocked.is_none() && !self.parked.is_empty() {
                // A parked command that was just answered.
                self.parked.remove(&client.id);
            }
            if client.park {
                client.park = false;
                self.park(client);
                held = consumed;
                // A parked command's arguments stay in memory, as Redis's blocked client's argv.
                argv_mem = args.iter_from(0).map(|a| a.len() as u64).sum();
                break Flow::Park;
            }
            if !keeps {
                ahead.clear();
            }
            pos += consumed;
            if client.master_link && client.multi.is_none() {
                relayable = pos;
            }
            if client.close_after_reply {
                break Flow::CloseAfterFlush;
            }
        };
        ahead.clear();
        self.ahead = ahead;
        if client.master_link {
            self.relay(client, &input[..pos], relayable);
        }
        drop(cut);
        // Before leaving the shared section, so an exclusive section elsewhere finds every
        // number this thread took already filed.
        self.push_feed();
        self.session.leave();
        self.busy = None;
        self.timer
            .stop(&self.server.stats.thread(self.thread).commands_by_id);
        // No store callback is running: records read back from disk may be let go.
        self.session.end_command();
        client.parser = parser;
        let qbuf = (input.len() - pos - held) as u64;
        client.publish(qbuf, argv_mem, out, out.capacity(), now_ms);
        ThreadStats::add(
            &self.stats().net_output_bytes,
            (out.len() - out_start) as u64,
        );
        aof::feed::hold_replies(&self.server, client, out, out_start);
        if flow == Flow::CloseAfterFlush && !client.held.out.is_empty() {
            self.wait_released(client, out);
        }
        (pos, flow)
    }

    /// Relays what the master's client applied of `input` to this server's own stream (still
    /// inside the shared section that applied it): up to `relayable`, where no transaction is
    /// open, at once, after whatever an earlier call held back; the rest waits for its EXEC.
    fn relay(&mut self, client: &mut Client, input: &[u8], relayable: usize) {
        let master = &self.server.master;
        if relayable > 0 {
            if client.repl_unrelayed.is_empty() {
                master.relay(&self.server, &input[..relayable], client.db);
            } else {
                client.repl_unrelayed.extend_from_slice(&input[..relayable]);
                master.relay(&self.server, &client.repl_unrelayed, client.db);
                client.repl_unrelayed.clear();
            }
        }
        client.repl_unrelayed.extend_from_slice(&input[relayable..]);
    }

    /// Enters the store's shared section, unless a script running on another thread has turned
    /// busy: then `self.busy` holds the reply its commands get (Redis's BUSY), and the thread
    /// keeps serving rather than waiting for the script.
    fn enter_or_busy(&mut self) {
        self.busy = None;
        if !self.enter_unless_busy() {
            // The script may end right after giving up; its reply is still the right one.
            let running = &self.server.scripts.running;
            self.busy = Some(running.busy_reply().unwrap_or(BUSY_EVAL));
        }
    }

    /// Enters the store's shared section unless a script on another thread is busy (it holds
    /// the store for as long as it runs); whether it entered.
    fn enter_unless_busy(&mut self) -> bool {
        let running = &self.server.scripts.running;
        self.session.enter_unless(|| running.busy_reply().is_some())
    }

    /// Files this thread's AOF entries with the sequencer.
    #[inline]
    fn push_feed(&mut self) {
        if !self.feed.is_empty() {
            self.feed.push(&self.server);
        }
    }

    /// A connection closing after its replies (QUIT) waits for the AOF writer to release them,
    /// so that its acknowledged writes are never answered by a dropped connection.
    fn wait_released(&mut self, client: &mut Client, out: &mut Vec<u8>) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while aof::feed::release_replies(&self.server, client, out) {
            if std::time::Instant::now() > deadline {
                log::warn!(
                    "Closing client id={} with replies the AOF never released",
                    client.id
                );
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// Why the client's ACL user may not run `spec` with `args` (Redis's `ACLCheckAllPerm` in
    /// `processCommand`), logged in ACL LOG. Reads the user again first if any changed.
    #[inline(never)]
    fn acl_refusal(
        &self,
        client: &mut Client,
        spec: &'static CommandSpec,
        args: crate::args::Args<'_>,
    ) -> Option<String> {
        let version = self.server.acl.version();
        if version != client.acl_version
            && !crate::acl::refresh(&self.server, client, version)
            && !spec.has(flags::NO_AUTH)
        {
            return Some("NOAUTH Authentication required.".into());
        }
        let user = client.user.as_ref()?;
        if user.unrestricted() {
            return None;
        }
        let argv: Vec<&[u8]> = args.iter_from(0).collect();
        let denied = crate::acl::check(user, spec, &argv).err()?;
        let context = if client.multi.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        crate::cmd::acl::log_denied(&self.server, client, denied, spec, &argv, context, spec);
        let name = crate::acl::full_name(spec);
        Some(format!("NOPERM {}", denied.message(name)))
    }

    /// Resolves, checks and runs one command.
    fn execute(
        &mut self,
        client: &mut Client,
        args: crate::args::Args<'_>,
        out: &mut Vec<u8>,
        now_ms: u64,
        found: Option<Option<(&'static CommandSpec, CmdId)>>,
    ) {
        let mark = out.len();
        // A parked command that runs again was shown to monitors when it first ran.
        let first_run = client.blocked.is_none();
        let stats = self.server.stats.thread(self.thread);
        let (spec, id) = match resolve(args, found) {
            Ok(found) => found,
            Err((msg, id)) => {
                transactions::reject(client, args, out, &msg, stats);
                count_rejected(stats, id);
                return;
            }
        };
        // Redis's `CMD_PROTECTED` check, before authentication: DEBUG and MODULE LOAD/LOADEX/
        // UNLOAD run only where `enable-debug-command` / `enable-module-command` allow.
        if spec.has(flags::PROTECTED)
            && let Some(msg) = protected_refusal(&self.server.config, client, spec)
        {
            transactions::reject(client, args, out, msg.as_bytes(), stats);
            count_rejected(stats, Some(id));
            return;
        }
        if !client.authenticated && !client.auth_waived && !spec.has(flags::NO_AUTH) {
            let msg = b"NOAUTH Authentication required.";
            transactions::reject(client, args, out, msg, stats);
            count_rejected(stats, Some(id));
            return;
        }
        if client.multi.is_some() && spec.has(flags::NO_MULTI) && transactions::queues(args) {
            let msg = b"ERR Command not allowed inside a transaction";
            transactions::reject(client, args, out, msg, stats);
            count_rejected(stats, Some(id));
            return;
        }
        // ACL: one load and compare for a user who may run anything (the default user).
        if !(client.acl_free && client.acl_version == self.server.acl.version())
            && let Some(msg) = self.acl_refusal(client, spec, args)
        {
            transactions::reject(client, args, out, msg.as_bytes(), stats);
            count_rejected(stats, Some(id));
            return;
        }
        // Redis's disk-error check: write commands (EXEC of a transaction holding one) and PING
        // are refused while the disk cannot take what they would write. The command's kind is
        // tested first: the error's sources cost ~30 instructions, a tenth of a pipelined GET's
        // own work.
        let writes = runs_any(spec, client, |s| s.has(flags::WRITE));
        if (writes || spec.name == "ping")
            && let Some(msg) = self.disk_error()
        {
            transactions::reject(client, args, out, msg.as_bytes(), stats);
            count_rejected(stats, Some(id));
            return;
        }
        // A master short of good replicas refuses writes (Redis's `noreplicaserr`).
        if writes && crate::master::refuses_writes(&self.server) {
            let msg = crate::master::NOREPLICAS.as_bytes();
            transactions::reject(client, args, out, msg, stats);
            count_rejected(stats, Some(id));
            return;
        }
        // A read-only replica takes writes only from its master (Redis's `roslaveerr`).
        if writes
            && self.server.replication.is_replica()
            && !client.obey
            && crate::replica::refuses_writes(&self.server)
        {
            let msg = crate::replica::READONLY_ERROR;
            transactions::reject(client, args, out, msg, stats);
            count_rejected(stats, Some(id));
            return;
        }
        if client.pubsub.is_some()
            && !client.resp3
            && client.subscribed()
            && !crate::cmd::pubsub::allowed_when_subscribed(args.get(0))
        {
            // Redis names a subcommand by its full name (`client|list`).
            let name = match table::lookup(args.get(0)) {
                Some(top) if !std::ptr::eq(top, spec) => format!("{}|{}", top.name, spec.name),
                _ => spec.name.to_string(),
            };
            let msg = format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / \
                 QUIT / RESET are allowed in this context"
            );
            transactions::reject(client, args, out, msg.as_bytes(), stats);
            count_rejected(stats, Some(id));
            return;
        }
        // A replica whose link is down serves only `stale` commands when told not to serve
        // stale data (Redis's `masterdownerr`); EXEC counts as stale only if all it queued is.
        if self.server.replication.is_replica()
            && runs_any(spec, client, |s| !s.has(flags::STALE))
            && crate::replica::refuses_stale_reads(&self.server)
        {
            let msg = crate::replica::MASTERDOWN_ERROR;
            transactions::reject(client, args, out, msg, stats);
            count_rejected(stats, Some(id));
            return;
        }
        // Redis's `isInsideYieldingLongCommand` check: while a script is busy, only the few
        // commands marked `allow_busy` run (outside the store's shared section, which the
        // script holds); no eviction runs either.
        if let Some(busy) = self.busy
            && !spec.has(flags::ALLOW_BUSY)
        {
            transactions::reject(client, args, out, busy.as_bytes(), stats);
            count_rejected(stats, Some(id));
            return;
        }
        if Config::load(&self.server.config.maxmemory) != 0
            && self.busy.is_none()
            && !self.server.pause.holds(now_ms)
            && !make_room(
                &self.server,
                &mut self.session,
                &mut self.evict_seed,
                client,
                out,
                now_ms,
            )
            && may_grow(client, spec)
        {
            let msg = b"OOM command not allowed when used memory > 'maxmemory'.";
            transactions::reject(client, args, out, msg, stats);
            count_rejected(stats, Some(id));
            return;
        }
        if client.monitor && crate::cmd::monitor::touches_keyspace(&self.server, spec, args) {
            let msg = b"ERR Replica can't interact with the keyspace";
            transactions::reject(client, args, out, msg, stats);
            count_rejected(stats, Some(id));
            return;
        }
        // After the refusals, before queueing (a write inside MULTI waits too), as Redis's
        // `processCommand`: a paused command parks unrun and runs when the pause ends.
        if self
            .server
            .pause
            .postpones(&self.server, client, spec, args, now_ms)
        {
            client.park = true;
            client.postponed = true;
            // Shown as blocked in this command, as Redis shows a postponed client; a blocked
            // command that was woken keeps its own state.
            let shared = &client.shared;
            shared.set_last_cmd(spec);
            let shown = shared
                .block
                .compare_exchange(
                    crate::client::BLOCK_NONE,
                    crate::client::BLOCK_POSTPONED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
            client.shows_postponed |= shown;
            return;
        }
        if client.shows_postponed {
            client.shows_postponed = false;
            client
                .shared
                .block
                .store(crate::client::BLOCK_NONE, Ordering::Release);
        }
        let queued = client.multi.is_some() && transactions::queues(args);
        if !queued && self.async_disk {
            match self.disk.start(&mut self.session, client, spec, args) {
                Start::Run => {}
                Start::Park => {
                    // Re-run once the keys are read back; nothing is written or counted
                    // meanwhile.
                    client.park = true;
                    return;
                }
                Start::Failed => {
                    transactions::reject(client, args, out, READ_FAILED, stats);
                    count_rejected(stats, Some(id));
                    return;
                }
            }
        }
        if client.reply_mode == ReplyMode::Skip {
            client.reply_mode = ReplyMode::SkipThis;
        }
        let resp3 = client.resp3;
        let thread = self.thread;
        let server = &*self.server;
        let aof_on = server.aof.propagating();
        let db = client.db;
        let mut exclusive_seq = None;
        // An exclusive command is timed for the slow log inside the gate: waiting for the
        // other threads to leave the store is not the command's own time.
        let mut exclusive_ticks = None;
        if queued {
            // Queueing is not a call: its time goes to no command.
            self.timer.stop(&stats.commands_by_id);
        } else {
            self.timer.enter(id, &stats.commands_by_id);
            if spec.has(flags::ADMIN) {
                self.timer.mark_if_unknown();
            }
        }
        let errors = if queued {
            transactions::queue(client, spec, args, out, stats)
        } else if spec.runs_exclusive(args.len()) && self.busy.is_none() {
            self.feed.push(server);
            self.session.leave();
            let (errors, seq, ticks) = self.session.exclusive(|store| {
                let timer = CallTimer::start();
                let errors = run(
                    server, store, client, out, resp3, now_ms, thread, spec, args,
                );
                let ticks = timer.ticks();
                // Its place in the order of writes: after everything it did, before any
                // thread resumes.
                (errors, aof_on.then(|| store.take_commit_seq()), ticks)
            });
            exclusive_seq = seq;
            exclusive_ticks = Some(ticks);
            self.session.enter();
            errors
        } else {
            if aof_on && (spec.has(flags::ADMIN) || spec.name == "wait") {
                // CONFIG SET appendonly may stop the AOF: file what came before it. WAIT
                // counts the replicas that acknowledged this client's writes: those must be
                // in the stream.
                self.feed.push(server);
            }
            run(
                server,
                &mut self.session,
                client,
                out,
                resp3,
                now_ms,
                thread,
                spec,
                args,
            )
        };
        if aof_on && !queued {
            let txn = client.aof_txn.take();
            self.feed.command(
                server,
                &mut self.session,
                db,
                spec,
                args,
                &out[mark..],
                now_ms,
                exclusive_seq,
                txn,
            );
        }
        let reply_end = out.len();
        if !queued && first_run && self.server.monitors.any() {
            // After the command, as Redis 7.0's `call()`: a SELECT shows its new database.
            crate::monitor::show(&self.server, client, spec, args, false, out);
        }
        let stats = self.server.stats.thread(self.thread);
        if client.park {
            // Nothing was written; the command is counted when it is finally answered, and a
            // pending CLIENT REPLY SKIP applies to that answer.
            client.shared.set_last_cmd(spec);
            return;
        }
        // A queued command is counted when EXEC runs it, as Redis does.
        if !queued {
            ThreadStats::add(&stats.commands, 1);
            stats.commands_by_id.call(id, errors > 0);
            crate::persist::count_write(stats, spec, errors);
            // After the command, as Redis's `call()`: a CONFIG SET of the threshold applies
            // to itself.
            let config = &self.server.config;
            let slower_than = config.slowlog_log_slower_than.load(Ordering::Relaxed);
            let spike_ms = config.latency_monitor_threshold.load(Ordering::Relaxed);
            let tracking = config.latency_tracking.load(Ordering::Relaxed);
            if slower_than >= 0 || spike_ms > 0 || tracking {
                let lap = self.timer.lap();
                if let Some(ticks) = exclusive_ticks.or(lap) {
                    if tracking && !client.obey {
                        stats.latency.record(id, ticks_to_ns(ticks));
                    }
                    timed(
                        &self.server,
                        client,
                        spec,
                        args,
                        ticks,
                        slower_than,
                        spike_ms,
                    );
                }
            } else {
                self.timer.unmark();
            }
            if !client.redacted.is_empty() {
                client.redacted.clear();
            }
        }
        match client.reply_mode {
            ReplyMode::On => {}
            ReplyMode::Off => out.truncate(mark),
            ReplyMode::SkipThis => {
                out.truncate(mark);
                client.reply_mode = ReplyMode::On;
            }
            // CLIENT REPLY SKIP itself is answered by nothing, but a monitor still gets its
            // line; the next command is skipped.
            ReplyMode::Skip => {
                out.drain(mark..reply_end);
            }
        }
        let shared = &client.shared;
        shared.last_interaction_ms.store(now_ms, Ordering::Relaxed);
        shared.set_last_cmd(spec);
    }

    /// Periodic work: one step of active expiry, and the parked clients whose deadline passed
    /// (`resume` is called with their tokens; they answer when their input runs again).
    pub fn tick(&mut self, resume: &mut dyn FnMut(u64)) {
        let now = unix_ms();
        let stats = &self.server.stats;
        self.rates
            .sample(stats.thread(self.thread), stats.epoch(), now);
        self.session.store().access().set_clock(now);
        eviction::sync_tracking(&self.server.config, &self.session);
        // Inside the shared section, as commands: an exclusive command (SWAPDB, EXEC, a fork for
        // BGSAVE) never overlaps a reap, so a reaped key's database and its place in the AOF's
        // order are the ones it had when it was deleted.
        if !self.enter_unless_busy() {
            // A busy script holds the store: expiry, the cron and blocked clients' timeouts
            // wait for it, as they wait in Redis while a script runs.
            return;
        }
        let session = &mut self.session;
        // A pause keeps the dataset as it is: keys expire again once it ends.
        // A replica leaves expiry to its master, whose DELs come down the stream.
        if !self.server.pause.holds(now)
            && self.server.active_expire.load(Ordering::Relaxed)
            && !self.server.replication.is_replica()
        {
            let (_, ms) = crate::latency::timed_ms(&self.server, || {
                session.active_expire(now, ACTIVE_EXPIRE_BUCKETS_PER_TICK)
            });
            if let Some(ms) = ms {
                crate::latency::add_if_needed(&self.server, "expire-cycle", ms);
            }
        }
        if Config::load32(&self.server.config.notify_keyspace_events) != 0 {
            crate::notify::flush(&self.server, &mut self.session, 0, &mut Vec::new());
        }
        crate::tracking::after_command(&self.server, &mut self.session, 0, &mut Vec::new());
        self.feed.background(&self.server, &mut self.session);
        self.push_feed();
        self.session.leave();
        if self.thread == 0 {
            // A pause that ended by its deadline lets reads delete expired keys again.
            self.server.sync_lazy_expiry(now);
            crate::persist::cron(&self.server, &mut self.session);
        }
        self.resume_postponed(now, resume);
        self.expire_parked(now, resume);
    }

    /// Another thread woke this one: resumes the parked clients a writer or CLIENT UNBLOCK
    /// marked (`resume` is called with their tokens).
    pub fn woken(&mut self, resume: &mut dyn FnMut(u64)) {
        blocking::take_mailbox(&self.server, self.thread, &mut self.mailbox);
        for id in self.mailbox.drain(..) {
            if let Some(&token) = self.parked.get(&id) {
                resume(token);
            }
        }
        let now = unix_ms();
        self.resume_postponed(now, resume);
        self.expire_parked(now, resume);
    }

    /// Once no pause holds (CLIENT UNPAUSE), runs the postponed commands again, in the order
    /// they were postponed; one that is still covered (or whose re-run still meets a busy
    /// script) parks again.
    fn resume_postponed(&mut self, now: u64, resume: &mut dyn FnMut(u64)) {
        if self.postponed.is_empty() || self.server.pause.holds(now) {
            return;
        }
        for id in self.postponed.drain(..) {
            if let Some(&token) = self.parked.get(&id) {
                resume(token);
            }
        }
    }

    /// Number of clients of this thread parked in a blocking command.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// Resumes parked clients whose deadline is before `now` (Redis: `timeout < now`).
    fn expire_parked(&mut self, now: u64, resume: &mut dyn FnMut(u64)) {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        while let Some(&Reverse((deadline, id))) = self.deadlines.peek() {
            if deadline >= now {
                break;
            }
            self.deadlines.pop();
            if let Some(&token) = self.parked.get(&id) {
                resume(token);
            }
        }
    }

    /// Records a client whose command just parked.
    fn park(&mut self, client: &mut Client) {
        let first = self.parked.insert(client.id, client.token).is_none();
        if client.postponed {
            // Looked at again when the pause ends, or when CLIENT UNPAUSE wakes the thread.
            client.postponed = false;
            let at = i64::try_from(self.server.pause.retry_at()).unwrap_or(i64::MAX);
            self.deadlines.push(Reverse((at, client.id)));
            if !self.postponed.contains(&client.id) {
                self.postponed.push(client.id);
            }
            return;
        }
        if first
            && let Some(state) = &client.blocked
            && state.deadline != 0
        {
            self.deadlines.push(Reverse((state.deadline, client.id)));
        }
    }

    /// Before re-running a parked command: answers it instead when CLIENT UNBLOCK asked or its
    /// deadline passed. Returns whether it was answered (the command is then consumed).
    fn give_up(&mut self, client: &mut Client, out: &mut Vec<u8>, now_ms: u64) -> bool {
        let asked = client.shared.block.load(Ordering::Acquire);
        let to_replica = asked == crate::client::BLOCK_UNBLOCK_REPLICA;
        let expired = client.blocked.as_ref().is_some_and(|b| b.expired(now_ms));
        let acks = client
            .blocked
            .as_ref()
            .is_some_and(|b| b.want == blocking::Want::Acks);
        if asked != BLOCK_UNBLOCK_TIMEOUT && asked != BLOCK_UNBLOCK_ERROR && !to_replica && !expired
        {
            return false;
        }
        self.parked.remove(&client.id);
        blocking::release(&self.server, &mut self.session, client, now_ms);
        let wait = client.wait.take();
        let mark = out.len();
        let stats = self.server.stats.thread(self.thread);
        let mut reply = Reply::counted(out, client.resp3, stats);
        if asked == BLOCK_UNBLOCK_ERROR {
            reply.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
        } else if to_replica {
            reply.error(
                "UNBLOCKED force unblock from blocking operation, instance state changed \
                 (master -> replica?)",
            );
            client.close_after_reply = true;
        } else if acks {
            // WAIT times out with the replicas that acknowledged its writes.
            let target = wait
                .and_then(|w| w.offset)
                .unwrap_or_else(|| self.server.master.offset());
            reply.int(self.server.master.acked(target));
        } else {
            reply.null_array();
        }
        ThreadStats::add(&stats.commands, 1);
        // The parked command is the last one the client ran. Redis 7.0 counts it failed when
        // CLIENT UNBLOCK ended it, in either mode (`updateStatsOnUnblock(.., 1)`).
        let by_unblock =
            asked == BLOCK_UNBLOCK_TIMEOUT || asked == BLOCK_UNBLOCK_ERROR || to_replica;
        if let Some(id) = client.shared.last_cmd().and_then(table::id_of) {
            stats.commands_by_id.call(id, by_unblock);
        }
        match client.reply_mode {
            ReplyMode::On | ReplyMode::Skip => {}
            ReplyMode::Off => out.truncate(mark),
            ReplyMode::SkipThis => {
                out.truncate(mark);
                client.reply_mode = ReplyMode::On;
            }
        }
        client
            .shared
            .last_interaction_ms
            .store(now_ms, Ordering::Relaxed);
        true
    }

    /// Per-connection periodic check: CLIENT KILL from any thread, idle `timeout`; moves the
    /// Pub/Sub messages published to the client into `out` (its unsent output), closing a
    /// subscriber that is past Redis's pubsub output-buffer limits.
    pub fn poll(&mut self, client: &mut Client, out: &mut Vec<u8>) -> Flow {
        if client.shared.killed() {
            return Flow::CloseNow;
        }
        client.publish_output(out, out.capacity());
        // Messages other threads sent the client: Pub/Sub, monitor lines, client-side caching's
        // invalidations (which may go to a connection that only receives a redirect). One
        // atomic load when there are none.
        let listens = client.pubsub.is_some() || client.monitor;
        if aof::feed::release_replies(&self.server, client, out) {
            // Replies still wait for the AOF: messages queue behind them.
            let mut held = std::mem::take(&mut client.held.out);
            take_outbox(client, &mut held);
            client.held.out = held;
        } else {
            let before = out.len();
            take_outbox(client, out);
            if listens && out.len() > before {
                // Redis counts output written to a client as an interaction (CLIENT LIST
                // `idle` of a subscriber or monitor that is being fed stays 0).
                let now = unix_ms();
                client
                    .shared
                    .last_interaction_ms
                    .store(now, Ordering::Relaxed);
            }
            // A normal client is checked only while its class has a limit (one load).
            if (listens || client.replica.is_some() || self.server.config.normal_output_limited())
                && self.output_over_limit(client, listens, out.len())
            {
                return Flow::CloseNow;
            }
        }
        let timeout_s = Config::load(&self.server.config.timeout);
        // Redis never closes a blocked client for idleness ("No timeout for BLPOP").
        // Nor a subscriber, a monitor or a replica (silent while it waits for its snapshot).
        if timeout_s > 0
            && client.blocked.is_none()
            && !client.subscribed()
            && !client.monitor
            && client.replica.is_none()
        {
            let idle_ms =
                unix_ms().saturating_sub(client.shared.last_interaction_ms.load(Ordering::Relaxed));
            if idle_ms / 1000 > timeout_s {
                log::debug!("Closing idle client id={}", client.id);
                return Flow::CloseNow;
            }
        }
        Flow::Continue
    }
}

impl Worker {
    fn disk_error(&self) -> Option<std::borrow::Cow<'static, str>> {
        disk_error(&self.server, &self.session)
    }

    /// Redis's `checkClientOutputBufferLimits` (`client-output-buffer-limit`): past the hard
    /// limit, or past the soft limit for longer than its grace time, the client is dropped.
    /// Subscribers and monitors (a `normal` client to Redis, unlimited by default; Ferrite
    /// bounds it as a subscriber) take the pubsub class, replicas theirs, others the normal
    /// class, which has no limit by default (one load then).
    fn output_over_limit(&self, client: &mut Client, listens: bool, unsent: usize) -> bool {
        use crate::config::OutputClass;
        let config = &self.server.config;
        let class = if listens {
            OutputClass::Pubsub
        } else if client.replica.is_some() {
            OutputClass::Replica
        } else if config.normal_output_limited() {
            OutputClass::Normal
        } else {
            return false;
        };
        let (hard, soft, soft_secs) = config.output_limit(class);
        let unsent = unsent as u64;
        let over = if hard != 0 && unsent > hard {
            true
        } else if soft != 0 && unsent > soft {
            let now = unix_ms();
            if client.output_soft_since_ms == 0 {
                client.output_soft_since_ms = now;
            }
            now.saturating_sub(client.output_soft_since_ms) / 1000 > soft_secs
        } else {
            client.output_soft_since_ms = 0;
            false
        };
        if over {
            let name = match class {
                OutputClass::Normal => "normal",
                OutputClass::Replica => "replica",
                OutputClass::Pubsub if client.subscribed() => "pubsub",
                OutputClass::Pubsub => "monitor",
            };
            log::warn!(
                "Client id={} closed for overcoming of output buffer limits ({name}, {unsent} \
                 bytes).",
                client.id
            );
        }
        over
    }
}

/// Builds the context and runs the handler; returns the error replies it wrote.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run(
    server: &Server,
    store: &mut Session,
    client: &mut Client,
    out: &mut Vec<u8>,
    resp3: bool,
    now_ms: u64,
    thread: usize,
    spec: &'static CommandSpec,
    args: crate::args::Args<'_>,
) -> u32 {
    let tracked = crate::tracking::before_read(server, client, spec, args);
    let mut ctx = Ctx {
        server,
        store,
        client,
        reply: Reply::counted(out, resp3, server.stats.thread(thread)),
        now_ms,
        thread,
        spec,
    };
    (spec.handler)(&mut ctx, args);
    if let Some(table) = tracked {
        crate::tracking::remember(table, server, ctx.client, spec, args);
    }
    if Config::load32(&server.config.notify_keyspace_events) != 0 {
        // Expiries a read found, keys created by a command that raises no event of its own.
        ctx.flush_key_events();
    }
    // Invalidations for the keys the command changed: the client's own after its reply.
    crate::tracking::after_command(server, ctx.store, ctx.client.id, ctx.reply.raw());
    if ctx.client.tracking.is_some() {
        crate::tracking::after_tracked_command(ctx.client, spec);
    }
    ctx.reply.errors()
}

/// A command's duration in clock ticks as nanoseconds, for its latency histogram: one
/// 64x64-bit multiply in fixed point. Converting through `f64` (u64 to f64 and back, ~20
/// instructions without AVX-512) was a visible share of a pipelined GET.
#[inline]
pub(crate) fn ticks_to_ns(ticks: u64) -> u64 {
    let mut fixed = NS_PER_TICK_FIXED.load(Ordering::Relaxed);
    if fixed == 0 {
        measure_ns_per_tick();
        fixed = NS_PER_TICK_FIXED.load(Ordering::Relaxed);
    }
    ((u128::from(ticks) * u128::from(fixed)) >> 32).min(u128::from(u64::MAX)) as u64
}

/// Measures the clock's nanoseconds per tick again (it gets more exact with time).
fn measure_ns_per_tick() {
    let ns_per_tick = 1000.0 / crate::stats::clock::Clock::get().ticks_per_us();
    NS_PER_TICK_FIXED.store(to_fixed(ns_per_tick), Ordering::Relaxed);
}

/// `ns_per_tick` in 32.32 fixed point, at least 1 (0 means "not measured").
fn to_fixed(ns_per_tick: f64) -> u64 {
    ((ns_per_tick * 4_294_967_296.0) as u64).max(1)
}

/// What a command's own time (`ticks`) feeds while the slow log (`slower_than` µs, if not
/// negative) or the latency monitor (`spike_ms`, if positive) is on: two comparisons when the
/// command was quick.
#[inline]
pub(crate) fn timed(
    server: &Server,
    client: &Client,
    spec: &CommandSpec,
    args: crate::args::Args<'_>,
    ticks: u64,
    slower_than: i64,
    spike_ms: i64,
) {
    if slower_than >= 0 && slowlog::may_be_slow(ticks, slower_than) {
        log_slow(server, client, spec, args, ticks);
    }
    if spike_ms > 0 && slowlog::may_be_slow(ticks, spike_ms.saturating_mul(1000)) {
        latency_spike(server, client, spec, ticks, spike_ms);
    }
}

/// Redis's `latencyAddSampleIfNeeded("command" or "fast-command", duration / 1000)` after a
/// command (but one the AOF loader replays).
#[cold]
#[inline(never)]
fn latency_spike(server: &Server, client: &Client, spec: &CommandSpec, ticks: u64, spike_ms: i64) {
    let ms = crate::stats::commands::ticks_to_us(ticks) / 1000;
    if client.obey || ms < spike_ms as u64 {
        return;
    }
    server
        .latency
        .add_sample(crate::latency::command_event(spec), ms);
}

/// Logs a command that may have run for `slowlog-log-slower-than` (`ticks` of the commandstats
/// clock) in the slow log, unless it is EXEC's (Redis's `CMD_SKIP_SLOWLOG`) or a command the
/// AOF loader replays. Off the hot path: a fast command never gets here.
#[cold]
#[inline(never)]
pub(crate) fn log_slow(
    server: &Server,
    client: &Client,
    spec: &CommandSpec,
    args: crate::args::Args<'_>,
    ticks: u64,
) {
    if spec.has(flags::SKIP_SLOWLOG) || client.obey {
        return;
    }
    let name = client_name(client);
    let caller = slowlog::Caller {
        addr: &client.shared.addr,
        name: &name,
    };
    let us = crate::stats::commands::ticks_to_us(ticks);
    server
        .slowlog
        .push(&server.config, args, &client.redacted, us, caller);
}

/// CLIENT SETNAME's name, empty when none.
fn client_name(client: &Client) -> Vec<u8> {
    let name = client.shared.name.lock().unwrap_or_else(|e| e.into_inner());
    name.clone().unwrap_or_default()
}

/// Moves what other threads sent a client (Pub/Sub messages, monitor lines) to `out`. A
/// monitor's lines are dropped under CLIENT REPLY OFF, as Redis writes no status line to such a
/// client (Pub/Sub messages still go out: Redis 7.0.15 lets pushes through); a monitor that
/// also subscribes keeps both, as they share one outbox.
#[inline]
fn take_outbox(client: &Client, out: &mut Vec<u8>) {
    if client.reply_mode == ReplyMode::Off && client.monitor && !client.subscribed() {
        crate::pubsub::discard(&client.shared);
    } else {
        crate::pubsub::drain(&client.shared, out);
    }
}

/// Evicts for `maxmemory` before a command (see [`eviction::make_room`]), publishing the
/// `evicted` events first, as Redis does before it runs the command.
fn make_room(
    server: &Server,
    session: &mut Session,
    seed: &mut u64,
    client: &Client,
    out: &mut Vec<u8>,
    now_ms: u64,
) -> bool {
    let (room, ms) = crate::latency::timed_ms(server, || {
        eviction::make_room(&server.config, session, now_ms, seed)
    });
    if let Some(ms) = ms {
        crate::latency::add_if_needed(server, "eviction-cycle", ms);
    }
    if Config::load32(&server.config.notify_keyspace_events) != 0 {
        crate::notify::flush(server, session, client.id, out);
    }
    crate::tracking::after_command(server, session, 0, &mut Vec::new());
    room
}

/// Whether `spec` is a command `is` holds for, or EXEC of a transaction that queued one (Redis
/// judges EXEC by the flags of what it queued: `is_write_command`, `is_denystale_command`).
#[inline]
fn runs_any(spec: &CommandSpec, client: &Client, is: impl Fn(&CommandSpec) -> bool) -> bool {
    is(spec)
        || (spec.name == "exec"
            && client
                .multi
                .as_ref()
                .is_some_and(|m| m.commands.iter().any(|c| is(c.0))))
}

/// Why writes are refused now, as Redis's `writeCommandsDeniedByDiskError` decides (a failed
/// BGSAVE while save points are set, then a failing AOF write), and Ferrite's own case: a disk
/// tier that cannot write while the log is at its memory budget. Three atomic loads when all
/// is well.
pub(crate) fn disk_error(
    server: &Server,
    session: &Session,
) -> Option<std::borrow::Cow<'static, str>> {
    if crate::persist::writes_denied(server) {
        return Some(crate::persist::MISCONF.into());
    }
    if let Some(errno) = server.aof.write_error()
        && server.aof.is_on()
    {
        let text = strerror(errno);
        return Some(format!("MISCONF Errors writing to the AOF file: {text}").into());
    }
    let errno = session.store().tier_write_error()?;
    let text = strerror(errno);
    Some(format!("MISCONF Errors writing to the disk tier: {text}").into())
}

/// C's `strerror`: the OS's text for `errno`, without Rust's " (os error N)".
fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Whether `spec` may grow memory, as Redis's `processCommand` decides for `-OOM`: DENYOOM
/// commands, EXEC of a transaction holding one, and anything queued inside MULTI but EXEC,
/// DISCARD, QUIT and RESET.
fn may_grow(client: &Client, spec: &CommandSpec) -> bool {
    if spec.has(flags::DENYOOM) {
        return true;
    }
    match &client.multi {
        Some(multi) if spec.name == "exec" => {
            multi.commands.iter().any(|(c, ..)| c.has(flags::DENYOOM))
        }
        Some(_) => !matches!(spec.name, "discard" | "quit" | "reset"),
        None => false,
    }
}

/// Why `client` may not run the protected command `spec` (Redis's `allowProtectedAction`), if
/// it may not: its option is `no`, or `local` and the client is not on the loopback.
fn protected_refusal(config: &Config, client: &Client, spec: &CommandSpec) -> Option<String> {
    let (command, option) = if spec.name == "debug" {
        ("DEBUG", "enable-debug-command")
    } else {
        ("MODULE", "enable-module-command")
    };
    let allowed = match config.value(option).as_deref() {
        Some("yes") => true,
        Some("local") => {
            client.shared.addr.starts_with("127.0.0.1:")
                || client.shared.addr.starts_with("[::1]:")
                || client.shared.addr.starts_with("::1:")
        }
        _ => false,
    };
    (!allowed).then(|| {
        format!(
            "ERR {command} command not allowed. If the {option} option is set to \"local\", you \
             can run it from a local connection, otherwise you need to set this option in the \
             configuration file, and then restart the server."
        )
    })
}

#[cfg(test)]
mod ticks_tests {
    use super::to_fixed;

    /// The fixed-point conversion agrees with the floating-point one it replaced to within a
    /// nanosecond per 2^32 ticks, for clocks from 1 to 4 GHz and durations up to an hour.
    #[test]
    fn fixed_point_ticks_to_ns_matches_floating_point() {
        for ns_per_tick in [1.0, 0.25, 1.0 / 2.9, 1.0 / 3.7, 0.999_999] {
            let fixed = to_fixed(ns_per_tick);
            for ticks in [0u64, 1, 7, 1000, 123_456_789, 3_600_000_000_000] {
                let want = (ticks as f64 * ns_per_tick) as u64;
                let have = ((u128::from(ticks) * u128::from(fixed)) >> 32) as u64;
                assert!(
                    want.abs_diff(have) <= 1 + ticks / (1 << 32),
                    "{ns_per_tick} x {ticks}: {have} vs {want}"
                );
            }
        }
    }
}
