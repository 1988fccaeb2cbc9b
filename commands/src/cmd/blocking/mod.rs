//! The blocking pops (Redis's `blockingPopGenericCommand`, `blmoveGenericCommand`,
//! `blockingGenericZpopCommand`): BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
//! BZMPOP.
//!
//! Each handler parses its arguments (in Redis's order, so the same error wins), then hands an
//! "attempt" closure to [`crate::blocking::serve_or_block`]: the attempt pops like the
//! non-blocking command and replies, or reports that there is nothing to pop, in which case the
//! client parks and the same request runs again when a writer signals one of its keys.
//! Single-list pops are one `rmw_value` per key; BLMOVE, BRPOPLPUSH and the MPOP forms run with
//! the EXCLUSIVE flag because they look at several keys before writing.

mod list;
mod zset;

#[cfg(test)]
mod tests;

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};

use list::*;
use zset::*;

/// Parses the timeout argument, replying Redis's error when it is bad.
fn timeout_or_reply(ctx: &mut Ctx<'_>, arg: &[u8]) -> Option<i64> {
    match crate::blocking::parse_timeout(arg) {
        Ok(ms) => Some(ms),
        Err(msg) => {
            ctx.reply.error(msg);
            None
        }
    }
}

/// The parsed tail of BLMPOP / BZMPOP: `numkeys key [key ...] where [COUNT count]`.
struct Mpop {
    /// Index of the first key.
    first_key: usize,
    /// Number of keys.
    numkeys: usize,
    /// Index of the LEFT/RIGHT or MIN/MAX argument.
    where_at: usize,
    /// COUNT (1 when absent).
    count: u64,
}

/// Redis's `lmpopGenericCommand` / `zmpopGenericCommand` argument parsing from `numkeys_at`,
/// leaving the direction to the caller (`args.get(where_at)`); replies and returns `None` on
/// error.
fn parse_mpop(ctx: &mut Ctx<'_>, args: Args<'_>, numkeys_at: usize) -> Option<Mpop> {
    let numkeys = match parse_i64(args.get(numkeys_at)) {
        Some(n) if n >= 1 => n.unsigned_abs(),
        _ => {
            ctx.reply.error("ERR numkeys should be greater than 0");
            return None;
        }
    };
    let where_at = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_at + 1))
        .filter(|&i| i < args.len());
    let Some(where_at) = where_at else {
        ctx.syntax_error();
        return None;
    };
    Some(Mpop {
        first_key: numkeys_at + 1,
        numkeys: where_at - numkeys_at - 1,
        where_at,
        count: 1,
    })
}

/// The optional `COUNT count` after the direction (parsed after the direction, as Redis does).
fn parse_mpop_count(ctx: &mut Ctx<'_>, args: Args<'_>, m: &mut Mpop) -> Option<()> {
    let mut seen = false;
    let mut j = m.where_at + 1;
    while j < args.len() {
        if !seen && eq_ignore_case(args.get(j), "count") && j + 1 < args.len() {
            match parse_i64(args.get(j + 1)) {
                Some(c) if c >= 1 => m.count = c.unsigned_abs(),
                _ => {
                    ctx.reply.error("ERR count should be greater than 0");
                    return None;
                }
            }
            seen = true;
            j += 2;
        } else {
            ctx.syntax_error();
            return None;
        }
    }
    Some(())
}

const LIST_ACL: &[&str] = &["write", "list", "slow", "blocking"];
const ZSET_FAST_ACL: &[&str] = &["write", "sortedset", "fast", "blocking"];
const ZSET_SLOW_ACL: &[&str] = &["write", "sortedset", "slow", "blocking"];

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "blpop",
        arity: -3,
        flags: WRITE | NOSCRIPT | BLOCKING,
        first_key: 1,
        last_key: -2,
        step: 1,
        acl: LIST_ACL,
        group: "list",
        since: "2.0.0",
        summary: "Remove and get the first element in a list, or block until one is available",
        complexity: "O(N) where N is the number of provided keys.",
        handler: blpop,
        subcommands: &[],
    },
    CommandSpec {
        name: "brpop",
        arity: -3,
        flags: WRITE | NOSCRIPT | BLOCKING,
        first_key: 1,
        last_key: -2,
        step: 1,
        acl: LIST_ACL,
        group: "list",
        since: "2.0.0",
        summary: "Remove and get the last element in a list, or block until one is available",
        complexity: "O(N) where N is the number of provided keys.",
        handler: brpop,
        subcommands: &[],
    },
    CommandSpec {
        name: "blmove",
        arity: 6,
        flags: WRITE | DENYOOM | NOSCRIPT | BLOCKING | EXCLUSIVE,
        first_key: 1,
        last_key: 2,
        step: 1,
        acl: LIST_ACL,
        group: "list",
        since: "6.2.0",
        summary: "Pop an element from a list, push it to another list and return it; or block until one is available",
        complexity: "O(1)",
        handler: blmove,
        subcommands: &[],
    },
    CommandSpec {
        name: "brpoplpush",
        arity: 4,
        flags: WRITE | DENYOOM | NOSCRIPT | BLOCKING | EXCLUSIVE,
        first_key: 1,
        last_key: 2,
        step: 1,
        acl: LIST_ACL,
        group: "list",
        since: "2.2.0",
        summary: "Pop an element from a list, push it to another list and return it; or block until one is available",
        complexity: "O(1)",
        handler: brpoplpush,
        subcommands: &[],
    },
    CommandSpec {
        name: "blmpop",
        arity: -5,
        flags: WRITE | BLOCKING | EXCLUSIVE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: LIST_ACL,
        group: "list",
        since: "7.0.0",
        summary: "Pop elements from a list, or block until one is available",
        complexity: "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
        handler: blmpop,
        subcommands: &[],
    },
    CommandSpec {
        name: "bzpopmin",
        arity: -3,
        flags: WRITE | NOSCRIPT | BLOCKING | FAST,
        first_key: 1,
        last_key: -2,
        step: 1,
        acl: ZSET_FAST_ACL,
        group: "sorted-set",
        since: "5.0.0",
        summary: "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available",
        complexity: "O(log(N)) with N being the number of elements in the sorted set.",
        handler: bzpopmin,
        subcommands: &[],
    },
    CommandSpec {
        name: "bzpopmax",
        arity: -3,
        flags: WRITE | NOSCRIPT | BLOCKING | FAST,
        first_key: 1,
        last_key: -2,
        step: 1,
        acl: ZSET_FAST_ACL,
        group: "sorted-set",
        since: "5.0.0",
        summary: "Remove and return the member with the highest score from one or more sorted sets, or block until one is available",
        complexity: "O(log(N)) with N being the number of elements in the sorted set.",
        handler: bzpopmax,
        subcommands: &[],
    },
    CommandSpec {
        name: "bzmpop",
        arity: -5,
        flags: WRITE | BLOCKING | EXCLUSIVE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: ZSET_SLOW_ACL,
        group: "sorted-set",
        since: "7.0.0",
        summary: "Remove and return members with scores in a sorted set or block until one is available",
        complexity: "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
        handler: bzmpop,
        subcommands: &[],
    },
];
