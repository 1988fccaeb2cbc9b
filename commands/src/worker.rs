//! The connection state machine of one reactor thread: it turns a connection's input bytes into
//! commands, runs them against the store and appends their replies. It knows nothing of sockets
//! or of the backend that moves the bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ferrite_hybridlog::Session;

use crate::client::{Client, ClientShared, ReplyMode};
use crate::config::Config;
use crate::ctx::Ctx;
use crate::resp::{Limits, Parse, Parser, Reply};
use crate::server::{Server, unix_ms};
use crate::stats::ThreadStats;
use crate::table::{self, CommandSpec, flags};

/// What the connection should do after an `input` or `poll` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Send what is pending, then close.
    CloseAfterFlush,
    /// Close at once, dropping pending output.
    CloseNow,
}

/// Buckets the active expiry cycle walks per tick.
const ACTIVE_EXPIRE_BUCKETS_PER_TICK: usize = 1024;

/// One reactor thread's command engine.
pub struct Worker {
    server: Arc<Server>,
    session: Session,
    thread: usize,
}

impl Worker {
    /// The engine of reactor thread `thread`.
    pub fn new(server: Arc<Server>, thread: usize) -> Self {
        let session = server.store.session();
        Self {
            server,
            session,
            thread,
        }
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
        let id = self.server.clients.next_id();
        let fmt = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        let shared = Arc::new(ClientShared::new(
            id,
            self.thread,
            fmt(peer),
            fmt(local),
            unix_ms(),
        ));
        let authenticated = !self.server.config.auth_required();
        shared.authenticated.store(authenticated, Ordering::Relaxed);
        self.server.clients.insert(shared.clone());
        Some(Client {
            id,
            db: 0,
            resp3: false,
            authenticated,
            parser: Parser::new(),
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            no_evict: false,
            shared,
        })
    }

    /// The connection closed.
    pub fn closed(&mut self, client: Client) {
        self.server.clients.remove(client.id);
    }

    /// Runs every complete command in `input`, appending replies to `out`; returns the bytes
    /// consumed. A partial command stays in `input` and parsing resumes when more arrives.
    pub fn input(&mut self, client: &mut Client, input: &[u8], out: &mut Vec<u8>) -> (usize, Flow) {
        ThreadStats::add(&self.stats().net_input_bytes, input.len() as u64);
        let out_start = out.len();
        let mut parser = std::mem::take(&mut client.parser);
        let max_bulk_len = Config::load(&self.server.config.proto_max_bulk_len);
        let mut pos = 0;
        // One clock read per batch: the commands of one read run within microseconds of each
        // other, and a clock read per command was a measurable share of a pipelined GET.
        let now_ms = unix_ms();
        // Redis decides "authentication required" per request, so a connection opened while a
        // password was set is free once `CONFIG SET requirepass ""` clears it.
        if !client.authenticated && !self.server.config.auth_required() {
            client.authenticated = true;
            client.shared.authenticated.store(true, Ordering::Relaxed);
        }
        self.session.enter();
        let flow = loop {
            let limits = Limits {
                max_bulk_len,
                authenticated: client.authenticated,
            };
            match parser.parse(&input[pos..], &limits) {
                Parse::Command { consumed } => {
                    let args = parser.args(&input[pos..]);
                    self.execute(client, args, out, now_ms);
                    pos += consumed;
                    if client.close_after_reply {
                        break Flow::CloseAfterFlush;
                    }
                }
                Parse::Skip { consumed } => pos += consumed,
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
                    let mut reply = Reply::new(out, client.resp3);
                    reply.error(&format!("ERR Protocol error: {msg}"));
                    ThreadStats::add(&self.stats().error_replies, 1);
                    log::debug!("Protocol error ({msg}) from client id={}", client.id);
                    break Flow::CloseAfterFlush;
                }
            }
        };
        self.session.leave();
        client.parser = parser;
        client
            .shared
            .qbuf
            .store((input.len() - pos) as u64, Ordering::Relaxed);
        ThreadStats::add(
            &self.stats().net_output_bytes,
            (out.len() - out_start) as u64,
        );
        (pos, flow)
    }

    /// Resolves, checks and runs one command.
    fn execute(
        &mut self,
        client: &mut Client,
        args: crate::args::Args<'_>,
        out: &mut Vec<u8>,
        now_ms: u64,
    ) {
        let mark = out.len();
        let stats = self.server.stats.thread(self.thread);
        let spec = match resolve(args) {
            Ok(spec) => spec,
            Err(msg) => {
                Reply::new(out, client.resp3).error(&msg);
                ThreadStats::add(&stats.error_replies, 1);
                ThreadStats::add(&stats.rejected_calls, 1);
                return;
            }
        };
        if !client.authenticated && !spec.has(flags::NO_AUTH) {
            Reply::new(out, client.resp3).error("NOAUTH Authentication required.");
            ThreadStats::add(&stats.error_replies, 1);
            ThreadStats::add(&stats.rejected_calls, 1);
            return;
        }
        if client.reply_mode == ReplyMode::Skip {
            client.reply_mode = ReplyMode::SkipThis;
        }
        let resp3 = client.resp3;
        let thread = self.thread;
        let server = &*self.server;
        let errors = if spec.has(flags::EXCLUSIVE) {
            self.session.leave();
            let errors = self.session.exclusive(|store| {
                run(
                    server, store, client, out, resp3, now_ms, thread, spec, args,
                )
            });
            self.session.enter();
            errors
        } else {
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
        let stats = self.server.stats.thread(self.thread);
        ThreadStats::add(&stats.commands, 1);
        ThreadStats::add(&stats.error_replies, u64::from(errors));
        match client.reply_mode {
            ReplyMode::On => {}
            ReplyMode::Off => out.truncate(mark),
            ReplyMode::SkipThis => {
                out.truncate(mark);
                client.reply_mode = ReplyMode::On;
            }
            // CLIENT REPLY SKIP itself is answered by nothing; the next command is skipped.
            ReplyMode::Skip => out.truncate(mark),
        }
        let shared = &client.shared;
        shared.last_interaction_ms.store(now_ms, Ordering::Relaxed);
        shared.set_last_cmd(spec);
    }

    /// Periodic work: one step of active expiry.
    pub fn tick(&mut self) {
        let now = unix_ms();
        self.session
            .active_expire(now, ACTIVE_EXPIRE_BUCKETS_PER_TICK);
    }

    /// Per-connection periodic check: CLIENT KILL from any thread, idle `timeout`.
    pub fn poll(&mut self, client: &mut Client) -> Flow {
        if client.shared.killed() {
            return Flow::CloseNow;
        }
        let timeout_s = Config::load(&self.server.config.timeout);
        if timeout_s > 0 {
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

/// Builds the context and runs the handler; returns the error replies it wrote.
#[allow(clippy::too_many_arguments)]
#[inline]
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
    let mut ctx = Ctx {
        server,
        store,
        client,
        reply: Reply::new(out, resp3),
        now_ms,
        thread,
        spec,
    };
    (spec.handler)(&mut ctx, args);
    ctx.reply.errors()
}

/// Finds the command (or container subcommand) and checks its arity, with Redis's error texts.
fn resolve(args: crate::args::Args<'_>) -> Result<&'static CommandSpec, String> {
    let name = args.get(0);
    let Some(spec) = table::lookup(name) else {
        let mut msg = format!(
            "ERR unknown command '{}', with args beginning with: ",
            clip(name)
        );
        for a in args.iter_from(1) {
            msg.push_str(&format!("'{}' ", clip(a)));
        }
        return Err(msg);
    };
    if spec.subcommands.is_empty() || args.len() < 2 {
        if !spec.arity_ok(args.len()) {
            return Err(format!(
                "ERR wrong number of arguments for '{}' command",
                spec.name
            ));
        }
        return Ok(spec);
    }
    let Some(sub) = spec.subcommand(args.get(1)) else {
        return Err(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            clip(args.get(1)),
            spec.name.to_ascii_uppercase()
        ));
    };
    if !sub.arity_ok(args.len()) {
        return Err(format!(
            "ERR wrong number of arguments for '{}|{}' command",
            spec.name, sub.name
        ));
    }
    Ok(sub)
}

/// Redis prints at most 128 bytes of a user-supplied name in an error (`%.128s`).
fn clip(s: &[u8]) -> String {
    String::from_utf8_lossy(&s[..s.len().min(128)]).into_owned()
}
