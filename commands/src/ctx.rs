//! What a command handler works with.

use ferrite_hybridlog::Session;

use crate::client::Client;
use crate::resp::Reply;
use crate::server::Server;
use crate::stats::ThreadStats;
use crate::table::CommandSpec;

/// The context of one command execution on a reactor thread.
pub struct Ctx<'a> {
    /// Shared server state.
    pub server: &'a Server,
    /// This thread's store session.
    pub store: &'a mut Session,
    /// The calling client.
    pub client: &'a mut Client,
    /// Where the reply goes.
    pub reply: Reply<'a>,
    /// Time of the command, Unix ms (one clock read per command, as Redis's command time
    /// snapshot: every key of a multi-key command expires against the same instant).
    pub now_ms: u64,
    /// Index of this reactor thread.
    pub thread: usize,
    /// The command being run (the subcommand for containers).
    pub spec: &'static CommandSpec,
}

impl Ctx<'_> {
    /// This thread's counters.
    #[inline]
    pub fn stats(&self) -> &ThreadStats {
        self.server.stats.thread(self.thread)
    }

    /// Counts a successful key lookup (INFO `keyspace_hits`).
    #[inline]
    pub fn hit(&self) {
        ThreadStats::add(&self.stats().keyspace_hits, 1);
    }

    /// A failed read of `key`, as Redis's `lookupKeyRead`: counted (INFO `keyspace_misses`)
    /// and announced as a `keymiss` keyspace event (class `m`).
    #[inline]
    pub fn miss(&mut self, key: &[u8]) {
        self.miss_quiet();
        self.notify(crate::notify::flags::KEY_MISS, "keymiss", key);
    }

    /// A failed lookup that is counted but raises no event (Redis's `LOOKUP_NONOTIFY`: OBJECT).
    #[inline]
    pub fn miss_quiet(&self) {
        ThreadStats::add(&self.stats().keyspace_misses, 1);
    }

    /// `-WRONGTYPE Operation against a key holding the wrong kind of value`.
    #[cold]
    pub fn wrong_type(&mut self) {
        self.reply
            .error("WRONGTYPE Operation against a key holding the wrong kind of value");
    }

    /// `-ERR syntax error`.
    #[cold]
    pub fn syntax_error(&mut self) {
        self.reply.error("ERR syntax error");
    }

    /// Redis's `addReplySubcommandSyntaxError`: an unknown subcommand, or a known one with the
    /// wrong number of arguments (the subcommand as given, cut at 128 bytes).
    #[cold]
    pub fn subcommand_syntax_error(&mut self, args: crate::args::Args<'_>) {
        let sub = args.get(1);
        let msg = format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
            String::from_utf8_lossy(&sub[..sub.len().min(128)]),
            String::from_utf8_lossy(args.get(0)).to_uppercase()
        );
        self.reply.error(&msg);
    }

    /// `-ERR value is not an integer or out of range`.
    #[cold]
    pub fn not_integer(&mut self) {
        self.reply
            .error("ERR value is not an integer or out of range");
    }

    /// Marks argument `i` of the running command as a secret: the slow log shows
    /// `(redacted)` in its place (Redis's `redactClientCommandArgument`).
    pub fn redact(&mut self, i: usize) {
        if let Ok(i) = u32::try_from(i)
            && !self.client.redacted.contains(&i)
        {
            self.client.redacted.push(i);
        }
    }

    /// `-ERR value is not a valid float`.
    #[cold]
    pub fn not_float(&mut self) {
        self.reply.error("ERR value is not a valid float");
    }
}

impl Ctx<'_> {
    /// Number of logical databases.
    #[inline]
    pub fn store_databases(&self) -> usize {
        self.server.store.databases()
    }
}

impl Ctx<'_> {
    /// Tells clients blocked on `key` (BLPOP and friends, on any thread) that it may be ready.
    /// Call after every write that adds elements to a list or a sorted set, including one that
    /// creates the key.
    #[inline]
    pub fn signal_key_ready(&mut self, key: &[u8]) {
        crate::blocking::signal_key_ready(self, key);
    }
}
