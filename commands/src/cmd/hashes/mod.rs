//! Hash commands (Redis's `t_hash.c`): field reads and writes, counters, HRANDFIELD and HSCAN.
//!
//! Every write is one `rmw_value`; a hash whose last field is deleted is deleted with it. While
//! a hash is small its fields are kept in insertion order, so HGETALL, HKEYS and HSCAN reply in
//! the order a Redis listpack does.

mod fields;
mod numeric;
mod random_scan;
#[cfg(test)]
mod tests;

use ferrite_collections::Hash;
use ferrite_hybridlog::ObjectEntryMut;

use crate::ctx::Ctx;
use crate::resp::Reply;
use crate::table::{CommandSpec, flags::*};

use fields::*;
use numeric::*;
use random_scan::*;

/// What a key holds, as the hash commands see it inside `rmw_value`.
pub(super) type Slot<'e> = crate::objects::Slot<'e, Hash>;

/// Classifies an `rmw_value` entry.
pub(super) fn slot(entry: Option<ObjectEntryMut<'_>>) -> Slot<'_> {
    crate::objects::slot(entry)
}

pub(super) use crate::objects::Found;

/// Reads `key` as a hash for a read-only command (see [`crate::objects::read_collection`]).
pub(super) fn read_hash<'c>(
    ctx: &mut Ctx<'c>,
    key: &[u8],
    f: impl FnOnce(&Hash, &mut Reply<'c>),
) -> Found {
    crate::objects::read_collection(ctx, key, f)
}

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "hset",
        arity: -4,
        flags: WRITE | DENYOOM | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "hash", "fast"],
        group: "hash",
        since: "2.0.0",
        summary: "Set the string value of a hash field",
        complexity: "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.",
        handler: hset,
        subcommands: &[],
    },
    CommandSpec {
        name: "hsetnx",
        arity: 4,
        flags: WRITE | DENYOOM | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "hash", "fast"],
        group: "hash",
        since: "2.0.0",
        summary: "Set the value of a hash field, only if the field does not exist",
        complexity: "O(1)",
        handler: hsetnx,
        subcommands: &[],
    },
    CommandSpec {
        name: "hget",
        arity: 3,
        flags: READONLY | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "hash", "fast"],
        group: "hash",
        since: "2.0.0",
        summary: "Get the value of a hash field",
        complexity: "O(1)",
        handler: hget,
        subcommands: &[],
    },
    CommandSpec {
        name: "hmget",
        arity: -3,
        flags: READONLY | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "hash", "fast"],
        group: "hash",
        since: "2.0.0",
        summary: "Get the values of all the given hash fields",
        complexity: "O(N) where N is the number of fields being requested.",
        handler: hmget,
        subcommands: &[],
    },
    CommandSpec {
        name: "hmset",
        arity: -4,
        flags: WRITE | DENYOOM | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "hash", "fast"],
        group: "hash",
        since: "2.0.0",
        summary: "Set multiple hash fields to multiple values",
        complexity: "O(N) where N is the number of fields being set.",
        handler: hmset,
        subcommands: &[],
    },
    CommandSpec {
        name: "hdel",
        arity: -3,
        flags: WRITE | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "hash", "fast"],
        group: "hash",
        since: "2.0.0",
        summary: "Delete one or more hash fields",
        complexity: "O(N) where N is the number of fields to be removed.",
        handler: hdel,
        subcommands: &[],
    },
    CommandSpec {
        name: "hlen",
        arity: 2,
        flags: READONLY | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "hash", "fast"],
        group: "hash",
        since: "2.0.0",
        summary: "Get the number of fields in a hash",
        complexity: "O(1)",
        handler: hlen,
        subcommands: &[],
    },
    CommandSpec {
        name: "hstrlen",
        arity: 3,
        flags: READONLY | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "hash", "fast"],
        group: "hash",
        since: "3.2.0",
        summary: "Get the length of the value of a hash field",
        complexity: "O(1)",
        handler: hstrlen,
        subcommands: &[],
    },
    CommandSpec {
        name: "hexists",
        arity: 3,
        flags: READONLY | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "hash", "fast"],
        group: "hash",
        since: "2.0.0",
        summary: "Determine if a hash field exists",
        complexity: "O(1)",
        handler: hexists,
        subcommands: &[],
    },
    CommandSpec {
        name: "hkeys",
        arity: 2,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "hash", "slow"],
        group: "hash",
        since: "2.0.0",
        summary: "Get all the fields in a hash",
        complexity: "O(N) where N is the size of the hash.",
        handler: hkeys,
        subcommands: &[],
    },
    CommandSpec {
        name: "hvals",
        arity: 2,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "hash", "slow"],
        group: "hash",
        since: "2.0.0",
        summary: "Get all the values in a hash",
        complexity: "O(N) where N is the size of the hash.",
        handler: hvals,
        subcommands: &[],
    },
    CommandSpec {
        name: "hgetall",
        arity: 2,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "hash", "slow"],
        group: "hash",
        since: "2.0.0",
        summary: "Get all the fields and values in a hash",
        complexity: "O(N) where N is the size of the hash.",
        handler: hgetall,
        subcommands: &[],
    },
    CommandSpec {
        name: "hincrby",
        arity: 4,
        flags: WRITE | DENYOOM | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "hash", "fast"],
        group: "hash",
        since: "2.0.0",
        summary: "Increment the integer value of a hash field by the given number",
        complexity: "O(1)",
        handler: hincrby,
        subcommands: &[],
    },
    CommandSpec {
        name: "hincrbyfloat",
        arity: 4,
        flags: WRITE | DENYOOM | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "hash", "fast"],
        group: "hash",
        since: "2.6.0",
        summary: "Increment the float value of a hash field by the given amount",
        complexity: "O(1)",
        handler: hincrbyfloat,
        subcommands: &[],
    },
    CommandSpec {
        name: "hrandfield",
        arity: -2,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "hash", "slow"],
        group: "hash",
        since: "6.2.0",
        summary: "Get one or multiple random fields from a hash",
        complexity: "O(N) where N is the number of fields returned",
        handler: hrandfield,
        subcommands: &[],
    },
    CommandSpec {
        name: "hscan",
        arity: -3,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "hash", "slow"],
        group: "hash",
        since: "2.8.0",
        summary: "Incrementally iterate hash fields and associated values",
        complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
        handler: hscan,
        subcommands: &[],
    },
];
