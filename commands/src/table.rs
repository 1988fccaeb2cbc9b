//! The command table: one entry per command with Redis's arity, flags, key positions and docs,
//! and the handler. `COMMAND`, `COMMAND DOCS`, arity checks and `docs/COMMANDS.md` are all derived
//! from it, so there is one place that says what Ferrite implements.

use std::collections::HashMap;
use std::sync::OnceLock;

mod names;
use names::NameTable;

use crate::args::Args;
use crate::ctx::Ctx;

/// A command handler: reads its arguments, works on the store, writes its reply.
pub type Handler = fn(&mut Ctx<'_>, Args<'_>);

/// Command flags, as `COMMAND INFO` reports them (plus Ferrite's own execution flags).
pub mod flags {
    /// May modify the keyspace.
    pub const WRITE: u32 = 1 << 0;
    /// Only reads.
    pub const READONLY: u32 = 1 << 1;
    /// May use more memory (refused when out of memory).
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// Pub/Sub related.
    pub const PUBSUB: u32 = 1 << 4;
    /// Not allowed in scripts.
    pub const NOSCRIPT: u32 = 1 << 5;
    /// Allowed while loading.
    pub const LOADING: u32 = 1 << 6;
    /// Allowed on a stale replica.
    pub const STALE: u32 = 1 << 7;
    /// Not shown in MONITOR.
    pub const SKIP_MONITOR: u32 = 1 << 8;
    /// Not counted in slowlog.
    pub const SKIP_SLOWLOG: u32 = 1 << 9;
    /// O(1) or O(log N).
    pub const FAST: u32 = 1 << 10;
    /// Allowed before authentication.
    pub const NO_AUTH: u32 = 1 << 11;
    /// May replicate even when read-only.
    pub const MAY_REPLICATE: u32 = 1 << 12;
    /// Keys are optional.
    pub const NO_MANDATORY_KEYS: u32 = 1 << 13;
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: u32 = 1 << 14;
    /// Blocking command.
    pub const BLOCKING: u32 = 1 << 15;
    /// Not allowed in MULTI.
    pub const NO_MULTI: u32 = 1 << 16;
    /// Refused while a replica loads a dataset asynchronously.
    pub const NO_ASYNC_LOADING: u32 = 1 << 17;
    /// Refused unless enabled in the configuration (Redis's `CMD_PROTECTED`: DEBUG, MODULE
    /// LOAD/LOADEX/UNLOAD); not shown by COMMAND INFO, as in Redis 7.0.
    pub const PROTECTED: u32 = 1 << 18;
    /// Accepted from a client that sent ASKING (cluster mode; shown by COMMAND INFO).
    pub const ASKING: u32 = 1 << 19;
    /// Ferrite: runs with every other thread excluded (multi-key atomicity); not reported.
    pub const EXCLUSIVE: u32 = 1 << 31;
    /// Ferrite: like [`EXCLUSIVE`], but only when the arguments name more than one key (by
    /// the table's key positions), so that `DEL k` or `MGET k` costs what `GET k` costs. Only for
    /// commands whose key positions are complete (no keys hidden in options).
    pub const EXCLUSIVE_MULTI_KEY: u32 = 1 << 30;

    /// Names reported by `COMMAND INFO`, in Redis's order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// One command (or one subcommand of a container such as CLIENT).
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name (`get`, or `setname` for `client|setname`).
    pub name: &'static str,
    /// Redis arity: `n` means exactly `n` arguments, `-n` at least `n`; the name counts.
    pub arity: i32,
    /// Bits from [`flags`].
    pub flags: u32,
    /// Position of the first key (0: none).
    pub first_key: i32,
    /// Position of the last key (-1: the last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// ACL categories without the `@` (e.g. `["write", "string", "slow"]`).
    pub acl: &'static [&'static str],
    /// Group for COMMAND DOCS (`string`, `generic`, `server`, `connection`, `bitmap`, ...).
    pub group: &'static str,
    /// Redis version that introduced it.
    pub since: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Time complexity.
    pub complexity: &'static str,
    /// The handler; containers point at a handler that is only called for `HELP`-less misuse.
    pub handler: Handler,
    /// Subcommands (CLIENT, CONFIG, COMMAND, OBJECT); empty for plain commands.
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// A table entry without flags, keys, ACL categories, docs or subcommands: the start of an
    /// entry completed with the `with_*` setters, so that an entry names only what it has
    /// (`CommandSpec::new("asking", 1, "cluster", f).with_flags(FAST).with_acl(&["fast"])`).
    pub const fn new(
        name: &'static str,
        arity: i32,
        group: &'static str,
        handler: Handler,
    ) -> Self {
        CommandSpec {
            name,
            arity,
            flags: 0,
            first_key: 0,
            last_key: 0,
            step: 0,
            acl: &[],
            group,
            since: "",
            summary: "",
            complexity: "",
            handler,
            subcommands: &[],
        }
    }

    /// The entry with `flags` (bits from [`flags`]).
    pub const fn with_flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// The entry with its ACL categories.
    pub const fn with_acl(mut self, acl: &'static [&'static str]) -> Self {
        self.acl = acl;
        self
    }

    /// The entry with its COMMAND DOCS texts.
    pub const fn with_docs(
        mut self,
        since: &'static str,
        summary: &'static str,
        complexity: &'static str,
    ) -> Self {
        self.since = since;
        self.summary = summary;
        self.complexity = complexity;
        self
    }

    /// The entry with its keys at `first..=last` (-1: the last argument) every `step`.
    pub const fn with_keys(mut self, first: i32, last: i32, step: i32) -> Self {
        self.first_key = first;
        self.last_key = last;
        self.step = step;
        self
    }

    /// The container entry of `subcommands`.
    pub const fn with_subcommands(mut self, subcommands: &'static [CommandSpec]) -> Self {
        self.subcommands = subcommands;
        self
    }

    /// Whether `argc` arguments (name included) satisfy the arity.
    #[inline]
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= self.arity.unsigned_abs() as usize
        }
    }

    /// Whether a flag bit is set.
    #[inline]
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// How many keys `argc` arguments name, by the table's first/last/step positions.
    pub fn key_count(&self, argc: usize) -> usize {
        if self.first_key <= 0 || self.step <= 0 {
            return 0;
        }
        let first = self.first_key as usize;
        let last = if self.last_key < 0 {
            argc as i64 + i64::from(self.last_key)
        } else {
            i64::from(self.last_key)
        };
        if last < first as i64 {
            return 0;
        }
        (last as usize - first) / self.step as usize + 1
    }

    /// Whether this invocation must run with every other thread excluded.
    #[inline]
    pub fn runs_exclusive(&self, argc: usize) -> bool {
        self.has(flags::EXCLUSIVE)
            || (self.has(flags::EXCLUSIVE_MULTI_KEY) && self.key_count(argc) > 1)
    }

    /// Finds a subcommand by name, case-insensitively.
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.subcommands
            .iter()
            .find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Every command Ferrite implements, in no particular order.
pub fn all() -> &'static [&'static CommandSpec] {
    static ALL: OnceLock<Vec<&'static CommandSpec>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v: Vec<&'static CommandSpec> = Vec::new();
        for group in crate::cmd::GROUPS {
            v.extend(group.iter());
        }
        v
    })
}

/// Dense id of a command or a subcommand (index of its per-command counters): top-level
/// commands in [`all`] order, then each container's subcommands.
pub type CmdId = u16;

/// The id tables.
struct Ids {
    /// Every command by id, with its container for a subcommand.
    specs: Vec<(&'static CommandSpec, Option<&'static CommandSpec>)>,
    /// Id of the first subcommand of each top-level command, by its id.
    sub_base: Vec<CmdId>,
    /// Id by table entry address, for callers that only hold the entry.
    by_addr: HashMap<usize, CmdId>,
}

fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| {
        let top = all();
        let mut specs: Vec<_> = top.iter().map(|c| (*c, None)).collect();
        let mut sub_base = Vec::with_capacity(top.len());
        for c in top {
            sub_base.push(CmdId::try_from(specs.len()).expect("fewer than 65536 commands"));
            specs.extend(c.subcommands.iter().map(|s| (s, Some(*c))));
        }
        assert!(CmdId::try_from(specs.len()).is_ok(), "too many commands");
        let by_addr = specs
            .iter()
            .enumerate()
            .map(|(i, (c, _))| (std::ptr::from_ref(*c) as usize, i as CmdId))
            .collect();
        Ids {
            specs,
            sub_base,
            by_addr,
        }
    })
}

/// Number of command ids (commands plus subcommands).
pub fn command_count() -> usize {
    ids().specs.len()
}

/// The command with id `id`, and its container when it is a subcommand.
pub fn by_id(id: CmdId) -> Option<(&'static CommandSpec, Option<&'static CommandSpec>)> {
    ids().specs.get(usize::from(id)).copied()
}

/// The id of a table entry (a hash look-up: for paths that hold only the entry).
pub fn id_of(spec: &'static CommandSpec) -> Option<CmdId> {
    ids()
        .by_addr
        .get(&(std::ptr::from_ref(spec) as usize))
        .copied()
}

/// Finds subcommand `name` of the top-level command `parent` (whose id is `parent_id`).
#[inline]
pub fn lookup_sub(
    parent: &'static CommandSpec,
    parent_id: CmdId,
    name: &[u8],
) -> Option<(&'static CommandSpec, CmdId)> {
    let i = parent
        .subcommands
        .iter()
        .position(|c| c.name.as_bytes().eq_ignore_ascii_case(name))?;
    let base = *ids().sub_base.get(usize::from(parent_id))?;
    Some((&parent.subcommands[i], base + i as CmdId))
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    lookup_id(name).map(|(c, _)| c)
}

/// [`lookup`], with the command's id.
#[inline]
pub fn lookup_id(name: &[u8]) -> Option<(&'static CommandSpec, CmdId)> {
    static NAMES: OnceLock<NameTable<(&'static CommandSpec, CmdId)>> = OnceLock::new();
    NAMES
        .get_or_init(|| {
            // Top-level ids are positions in `all()` (see `ids`).
            NameTable::new(
                all()
                    .iter()
                    .enumerate()
                    .map(|(id, c)| (c.name, (*c, id as CmdId))),
            )
        })
        .get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_exact() {
        for c in all() {
            let upper = c.name.to_ascii_uppercase();
            assert!(std::ptr::eq(lookup(upper.as_bytes()).unwrap(), *c));
            assert!(std::ptr::eq(lookup(c.name.as_bytes()).unwrap(), *c));
        }
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(b"").is_none());
        assert!(lookup(&[b'x'; 100]).is_none());
        // Folding bit 5 makes "g%t" hash like "GET"; the exact comparison still tells them apart.
        assert!(lookup(b"g%t").is_none());
    }

    #[test]
    fn ids_are_dense_and_consistent() {
        for id in 0..command_count() {
            let id = id as CmdId;
            let (c, parent) = by_id(id).unwrap();
            assert_eq!(id_of(c), Some(id));
            match parent {
                None => assert_eq!(lookup_id(c.name.as_bytes()).unwrap().1, id),
                Some(p) => {
                    let pid = lookup_id(p.name.as_bytes()).unwrap().1;
                    let (s, sid) = lookup_sub(p, pid, c.name.as_bytes()).unwrap();
                    assert!(std::ptr::eq(s, c));
                    assert_eq!(sid, id);
                }
            }
        }
        assert!(by_id(command_count() as CmdId).is_none());
    }

    #[test]
    fn multi_key_commands_are_exclusive_only_with_several_keys() {
        let del = lookup(b"del").unwrap();
        assert_eq!(del.key_count(2), 1);
        assert!(!del.runs_exclusive(2));
        assert!(del.runs_exclusive(3));
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.key_count(3), 1);
        assert!(!mset.runs_exclusive(3));
        assert_eq!(mset.key_count(5), 2);
        assert!(mset.runs_exclusive(5));
        assert!(!lookup(b"get").unwrap().runs_exclusive(2));
        assert!(lookup(b"rename").unwrap().runs_exclusive(3));
    }
}
