//! HyperLogLog commands (Redis's `hyperloglog.c`): PFADD, PFCOUNT, PFMERGE, and the debugging
//! commands PFDEBUG (GETREG, DECODE, ENCODING, TODENSE) and PFSELFTEST.
//!
//! An HLL is a plain string holding Redis's `HYLL` bytes, so GET, SET, DUMP and APPEND see
//! exactly what Redis would store. PFADD and single-key PFCOUNT (which writes the cached
//! cardinality back into the string, as Redis does) are one `rmw` each; the multi-key PFCOUNT
//! and PFMERGE run with the EXCLUSIVE flag.

use ferrite_collections::{Hll, HllError, HllUnion};
use ferrite_hybridlog::{NO_EXPIRY, ValueKind, Write};

use crate::args::Args;
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "pfadd",
        arity: -2,
        flags: WRITE | DENYOOM | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "hyperloglog", "fast"],
        group: "hyperloglog",
        since: "2.8.9",
        summary: "Adds the specified elements to the specified HyperLogLog.",
        complexity: "O(1) to add every element.",
        handler: pfadd,
        subcommands: &[],
    },
    CommandSpec {
        name: "pfcount",
        arity: -2,
        flags: READONLY | EXCLUSIVE_MULTI_KEY,
        first_key: 1,
        last_key: -1,
        step: 1,
        acl: &["read", "hyperloglog", "slow"],
        group: "hyperloglog",
        since: "2.8.9",
        summary: "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
        complexity: "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.",
        handler: pfcount,
        subcommands: &[],
    },
    CommandSpec {
        name: "pfmerge",
        arity: -2,
        flags: WRITE | DENYOOM | EXCLUSIVE,
        first_key: 1,
        last_key: -1,
        step: 1,
        acl: &["write", "hyperloglog", "slow"],
        group: "hyperloglog",
        since: "2.8.9",
        summary: "Merge N different HyperLogLogs into a single one.",
        complexity: "O(N) to merge N HyperLogLogs, but with high constant times.",
        handler: pfmerge,
        subcommands: &[],
    },
    CommandSpec::new("pfdebug", 3, "hyperloglog", pfdebug)
        .with_flags(WRITE | DENYOOM | ADMIN)
        .with_keys(2, 2, 1)
        .with_acl(&["write", "hyperloglog", "admin", "slow", "dangerous"])
        .with_docs(
            "2.8.9",
            "Internal commands for debugging HyperLogLog values",
            "N/A",
        ),
    CommandSpec::new("pfselftest", 1, "hyperloglog", pfselftest)
        .with_flags(ADMIN)
        .with_acl(&["hyperloglog", "admin", "slow", "dangerous"])
        .with_docs(
            "2.8.9",
            "An internal command for testing HyperLogLog values",
            "N/A",
        ),
];

/// What an HLL operation on one key decided, for the reply.
enum Outcome {
    Int(i64),
    /// The key holds a list, hash, set or sorted set.
    WrongType,
    /// A string that is not an HLL, or a corrupt one.
    Hll(HllError),
}

fn reply_outcome(ctx: &mut Ctx<'_>, outcome: Outcome) {
    match outcome {
        Outcome::Int(n) => ctx.reply.int(n),
        Outcome::WrongType => ctx.wrong_type(),
        Outcome::Hll(e) => hll_error(ctx, e),
    }
}

/// The error texts carry their own codes (`WRONGTYPE ...`, `INVALIDOBJ ...`).
#[cold]
fn hll_error(ctx: &mut Ctx<'_>, e: HllError) {
    ctx.reply.error(&e.to_string());
}

/// Copies a stored string into the rmw scratch buffer and adopts it as an HLL, so the update
/// reuses the session's buffer instead of allocating per command.
fn adopt(buf: &mut Vec<u8>, value: &[u8]) -> Result<Hll, HllError> {
    Hll::check(value)?;
    let mut bytes = std::mem::take(buf);
    bytes.clear();
    bytes.extend_from_slice(value);
    Hll::from_bytes(bytes)
}

/// `PFADD key [element ...]`: 1 when the key was created or a register changed, else 0.
fn pfadd(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let outcome = ctx
        .store
        .rmw(ctx.client.db, args.get(1), ctx.now_ms, |entry, buf| {
            let (mut hll, mut updated, expire_at) = match entry {
                None => (Hll::new(), true, NO_EXPIRY),
                Some(e) if e.kind != ValueKind::String => return Write::Keep(Outcome::WrongType),
                Some(e) => match adopt(buf, e.value) {
                    Ok(h) => (h, false, e.expire_at),
                    Err(err) => return Write::Keep(Outcome::Hll(err)),
                },
            };
            let mut result = None;
            for elem in args.iter_from(2) {
                match hll.add(
                    elem,
                    ferrite_collections::Limits::get(ferrite_collections::Limit::HllSparseBytes),
                ) {
                    Ok(changed) => updated |= changed,
                    Err(err) => {
                        // Redis updates in place: registers set before the corrupt opcode
                        // was found stay set.
                        result = Some(Outcome::Hll(err));
                        break;
                    }
                }
            }
            if !updated {
                return Write::Keep(result.unwrap_or(Outcome::Int(0)));
            }
            hll.invalidate_cache();
            *buf = hll.into_bytes();
            Write::Put {
                kind: ValueKind::String,
                expire_at,
                result: result.unwrap_or(Outcome::Int(1)),
            }
        });
    if let Outcome::Int(1) = outcome {
        ctx.notify(flags::STRING, "pfadd", args.get(1));
    }
    reply_outcome(ctx, outcome);
}

/// `PFCOUNT key [key ...]`: one key answers from (and refreshes) its cached cardinality;
/// several keys count their union without writing anything.
fn pfcount(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() > 2 {
        return pfcount_union(ctx, args);
    }
    let mut found = false;
    let outcome = ctx
        .store
        .rmw(ctx.client.db, args.get(1), ctx.now_ms, |entry, buf| {
            let Some(e) = entry else {
                found = false;
                return Write::Keep(Outcome::Int(0));
            };
            found = true;
            if e.kind != ValueKind::String {
                return Write::Keep(Outcome::WrongType);
            }
            if let Err(err) = Hll::check(e.value) {
                return Write::Keep(Outcome::Hll(err));
            }
            if let Some(card) = Hll::cached_count(e.value) {
                return Write::Keep(Outcome::Int(card as i64));
            }
            let mut hll = match adopt(buf, e.value) {
                Ok(h) => h,
                Err(err) => return Write::Keep(Outcome::Hll(err)),
            };
            match hll.count() {
                Ok(card) => {
                    *buf = hll.into_bytes();
                    Write::Put {
                        kind: ValueKind::String,
                        expire_at: e.expire_at,
                        result: Outcome::Int(card as i64),
                    }
                }
                Err(err) => Write::Keep(Outcome::Hll(err)),
            }
        });
    if found {
        ctx.hit();
    } else {
        ctx.miss(args.get(1));
    }
    reply_outcome(ctx, outcome);
}

/// Merges the HLLs at `keys` into `union` in order, as Redis's lookups do (a missing key is an
/// empty HLL); the first bad key's error wins.
fn merge_keys<'a>(
    ctx: &mut Ctx<'_>,
    keys: impl Iterator<Item = &'a [u8]>,
    union: &mut HllUnion,
) -> Result<(), Outcome> {
    for key in keys {
        let merged = ctx.store.read(ctx.client.db, key, ctx.now_ms, |e| {
            if e.kind != ValueKind::String {
                return Err(Outcome::WrongType);
            }
            union.merge(e.value).map_err(Outcome::Hll)
        });
        match merged {
            None => ctx.miss(key),
            Some(r) => {
                ctx.hit();
                r?;
            }
        }
    }
    Ok(())
}

fn pfcount_union(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut union = HllUnion::new();
    match merge_keys(ctx, args.iter_from(1), &mut union) {
        Ok(()) => ctx.reply.int(union.count() as i64),
        Err(outcome) => reply_outcome(ctx, outcome),
    }
}

/// `PFMERGE destkey [sourcekey ...]`: the destination takes the registerwise maximum of itself
/// and the sources; it keeps its TTL.
fn pfmerge(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut union = HllUnion::new();
    if let Err(outcome) = merge_keys(ctx, args.iter_from(1), &mut union) {
        return reply_outcome(ctx, outcome);
    }
    let outcome = ctx
        .store
        .rmw(ctx.client.db, args.get(1), ctx.now_ms, |entry, buf| {
            // The sources were checked under exclusion, so the destination is an HLL or absent;
            // the checks stay for robustness.
            let (mut hll, expire_at) = match entry {
                None => (Hll::new(), NO_EXPIRY),
                Some(e) if e.kind != ValueKind::String => return Write::Keep(Outcome::WrongType),
                Some(e) => match adopt(buf, e.value) {
                    Ok(h) => (h, e.expire_at),
                    Err(err) => return Write::Keep(Outcome::Hll(err)),
                },
            };
            if let Err(err) = union.store_into(
                &mut hll,
                ferrite_collections::Limits::get(ferrite_collections::Limit::HllSparseBytes),
            ) {
                return Write::Keep(Outcome::Hll(err));
            }
            *buf = hll.into_bytes();
            Write::Put {
                kind: ValueKind::String,
                expire_at,
                result: Outcome::Int(0),
            }
        });
    match outcome {
        Outcome::Int(_) => {
            // Redis raises `pfadd` for a merge too.
            ctx.notify(flags::STRING, "pfadd", args.get(1));
            ctx.reply.ok();
        }
        other => reply_outcome(ctx, other),
    }
}

/// What PFDEBUG answers.
enum Debugged {
    Registers(Vec<u8>),
    Text(String),
    Status(&'static str),
    Int(i64),
    Error(String),
    Other(Outcome),
}

/// `PFDEBUG GETREG|DECODE|ENCODING|TODENSE key`: the key is looked up and checked before the
/// subcommand, as in Redis; GETREG and TODENSE store a sparse HLL back densified.
fn pfdebug(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let sub = args.get(1).to_ascii_lowercase();
    let outcome = ctx
        .store
        .rmw(ctx.client.db, args.get(2), ctx.now_ms, |entry, buf| {
            let Some(e) = entry else {
                let msg = "ERR The specified key does not exist".to_string();
                return Write::Keep(Debugged::Error(msg));
            };
            if e.kind != ValueKind::String {
                return Write::Keep(Debugged::Other(Outcome::WrongType));
            }
            let expire_at = e.expire_at;
            let mut hll = match adopt(buf, e.value) {
                Ok(h) => h,
                Err(err) => return Write::Keep(Debugged::Other(Outcome::Hll(err))),
            };
            let was_sparse = hll.is_sparse();
            let (answer, densified) = match sub.as_slice() {
                b"getreg" => match hll.registers() {
                    Ok(regs) => (Debugged::Registers(regs), was_sparse),
                    Err(err) => (Debugged::Other(Outcome::Hll(err)), false),
                },
                b"decode" => match hll.decode_sparse() {
                    Some(text) => (Debugged::Text(text), false),
                    None => (
                        Debugged::Error("ERR HLL encoding is not sparse".into()),
                        false,
                    ),
                },
                b"encoding" => (
                    Debugged::Status(if was_sparse { "sparse" } else { "dense" }),
                    false,
                ),
                b"todense" => match hll.to_dense() {
                    Ok(converted) => (Debugged::Int(i64::from(converted)), converted),
                    Err(err) => (Debugged::Other(Outcome::Hll(err)), false),
                },
                _ => (
                    Debugged::Error(format!(
                        "ERR Unknown PFDEBUG subcommand '{}'",
                        String::from_utf8_lossy(args.get(1))
                    )),
                    false,
                ),
            };
            if !densified {
                return Write::Keep(answer);
            }
            *buf = hll.into_bytes();
            Write::Put {
                kind: ValueKind::String,
                expire_at,
                result: answer,
            }
        });
    match outcome {
        Debugged::Registers(regs) => {
            ctx.reply.array_len(regs.len());
            for r in regs {
                ctx.reply.int(i64::from(r));
            }
        }
        Debugged::Text(t) => ctx.reply.bulk(t.as_bytes()),
        Debugged::Status(s) => ctx.reply.simple(s),
        Debugged::Int(n) => ctx.reply.int(n),
        Debugged::Error(msg) => ctx.reply.error(&msg),
        Debugged::Other(o) => reply_outcome(ctx, o),
    }
}

/// `PFSELFTEST`: the HLL implementation's self-test (`Hll::self_test`).
fn pfselftest(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    match Hll::self_test() {
        Ok(()) => ctx.reply.ok(),
        Err(msg) => ctx.reply.error(&msg),
    }
}
