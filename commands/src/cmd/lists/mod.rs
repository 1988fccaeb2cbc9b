//! List commands (Redis's `t_list.c`): pushes and pops at both ends, ranges, edits by index and
//! by value, LPOS, and the moves between lists (LMOVE, RPOPLPUSH, LMPOP).
//!
//! Single-key writes are one `rmw_value` each; the commands that touch several keys (LMOVE,
//! RPOPLPUSH, LMPOP) run with the EXCLUSIVE flag. A list that becomes empty is deleted, as Redis
//! never keeps an empty list.

mod edit;
pub(crate) mod moves;
mod push_pop;
mod query;
#[cfg(test)]
mod tests;

use ferrite_collections::{End, List};
use ferrite_hybridlog::{ObjectEntryMut, Value, ValueMut};

use crate::args::eq_ignore_case;
use crate::ctx::Ctx;
use crate::objects::Collection;
use crate::resp::Reply;
use crate::table::{CommandSpec, flags::*};

use edit::*;
use moves::*;
use push_pop::*;
use query::*;

/// What a key holds, as the list commands see it inside `rmw_value`.
pub(super) enum Slot<'e> {
    /// No such key (or it expired).
    Missing,
    /// A key of another type.
    WrongType,
    /// The list, mutable in place.
    List(&'e mut List),
}

/// Classifies an `rmw_value` entry.
pub(super) fn slot(entry: Option<ObjectEntryMut<'_>>) -> Slot<'_> {
    let Some(entry) = entry else {
        return Slot::Missing;
    };
    match entry.value {
        ValueMut::Object(o) => match Collection::of_mut(o) {
            Some(Collection::List(l)) => Slot::List(l),
            _ => Slot::WrongType,
        },
        ValueMut::String(_) => Slot::WrongType,
    }
}

/// The outcome of a read through [`read_list`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Found {
    /// No such key.
    Missing,
    /// A key of another type.
    WrongType,
    /// The callback ran.
    Yes,
}

/// Reads `key` as a list for a read-only command, counting the keyspace hit or miss as Redis's
/// `lookupKeyRead` does. `f` runs under the record's lock and may write the reply directly
/// (no copy of the elements); the caller replies for the other outcomes.
pub(super) fn read_list<'c>(
    ctx: &mut Ctx<'c>,
    key: &[u8],
    f: impl FnOnce(&List, &mut Reply<'c>),
) -> Found {
    let db = ctx.client.db;
    let reply = &mut ctx.reply;
    let found = ctx
        .store
        .read_value(db, key, ctx.now_ms, |e| match e.value {
            Value::Object(o) => match Collection::of(o) {
                Some(Collection::List(l)) => {
                    f(l, reply);
                    Found::Yes
                }
                _ => Found::WrongType,
            },
            Value::String(_) => Found::WrongType,
        });
    match found {
        None => {
            ctx.miss();
            Found::Missing
        }
        Some(found) => {
            ctx.hit();
            found
        }
    }
}

/// Redis's `getListPositionFromObjectOrReply`: `LEFT` or `RIGHT`, case-insensitively.
pub(super) fn parse_end(arg: &[u8]) -> Option<End> {
    if eq_ignore_case(arg, "left") {
        Some(End::Left)
    } else if eq_ignore_case(arg, "right") {
        Some(End::Right)
    } else {
        None
    }
}

/// Writes popped elements as an array of bulk strings.
pub(super) fn reply_elements(reply: &mut Reply<'_>, items: &[Box<[u8]>]) {
    reply.array_len(items.len());
    for v in items {
        reply.bulk(v);
    }
}

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "lpush",
        arity: -3,
        flags: WRITE | DENYOOM | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "list", "fast"],
        group: "list",
        since: "1.0.0",
        summary: "Prepend one or multiple elements to a list",
        complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        handler: lpush,
        subcommands: &[],
    },
    CommandSpec {
        name: "rpush",
        arity: -3,
        flags: WRITE | DENYOOM | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "list", "fast"],
        group: "list",
        since: "1.0.0",
        summary: "Append one or multiple elements to a list",
        complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        handler: rpush,
        subcommands: &[],
    },
    CommandSpec {
        name: "lpushx",
        arity: -3,
        flags: WRITE | DENYOOM | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "list", "fast"],
        group: "list",
        since: "2.2.0",
        summary: "Prepend an element to a list, only if the list exists",
        complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        handler: lpushx,
        subcommands: &[],
    },
    CommandSpec {
        name: "rpushx",
        arity: -3,
        flags: WRITE | DENYOOM | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "list", "fast"],
        group: "list",
        since: "2.2.0",
        summary: "Append an element to a list, only if the list exists",
        complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        handler: rpushx,
        subcommands: &[],
    },
    CommandSpec {
        name: "lpop",
        arity: -2,
        flags: WRITE | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "list", "fast"],
        group: "list",
        since: "1.0.0",
        summary: "Remove and get the first elements in a list",
        complexity: "O(N) where N is the number of elements returned",
        handler: lpop,
        subcommands: &[],
    },
    CommandSpec {
        name: "rpop",
        arity: -2,
        flags: WRITE | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "list", "fast"],
        group: "list",
        since: "1.0.0",
        summary: "Remove and get the last elements in a list",
        complexity: "O(N) where N is the number of elements returned",
        handler: rpop,
        subcommands: &[],
    },
    CommandSpec {
        name: "llen",
        arity: 2,
        flags: READONLY | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "list", "fast"],
        group: "list",
        since: "1.0.0",
        summary: "Get the length of a list",
        complexity: "O(1)",
        handler: llen,
        subcommands: &[],
    },
    CommandSpec {
        name: "lrange",
        arity: 4,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "list", "slow"],
        group: "list",
        since: "1.0.0",
        summary: "Get a range of elements from a list",
        complexity: "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.",
        handler: lrange,
        subcommands: &[],
    },
    CommandSpec {
        name: "lindex",
        arity: 3,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "list", "slow"],
        group: "list",
        since: "1.0.0",
        summary: "Get an element from a list by its index",
        complexity: "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).",
        handler: lindex,
        subcommands: &[],
    },
    CommandSpec {
        name: "lset",
        arity: 4,
        flags: WRITE | DENYOOM,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "list", "slow"],
        group: "list",
        since: "1.0.0",
        summary: "Set the value of an element in a list by its index",
        complexity: "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).",
        handler: lset,
        subcommands: &[],
    },
    CommandSpec {
        name: "linsert",
        arity: 5,
        flags: WRITE | DENYOOM,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "list", "slow"],
        group: "list",
        since: "2.2.0",
        summary: "Insert an element before or after another element in a list",
        complexity: "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).",
        handler: linsert,
        subcommands: &[],
    },
    CommandSpec {
        name: "lrem",
        arity: 4,
        flags: WRITE,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "list", "slow"],
        group: "list",
        since: "1.0.0",
        summary: "Remove elements from a list",
        complexity: "O(N+M) where N is the length of the list and M is the number of elements removed.",
        handler: lrem,
        subcommands: &[],
    },
    CommandSpec {
        name: "ltrim",
        arity: 4,
        flags: WRITE,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "list", "slow"],
        group: "list",
        since: "1.0.0",
        summary: "Trim a list to the specified range",
        complexity: "O(N) where N is the number of elements to be removed by the operation.",
        handler: ltrim,
        subcommands: &[],
    },
    CommandSpec {
        name: "lpos",
        arity: -3,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "list", "slow"],
        group: "list",
        since: "6.0.6",
        summary: "Return the index of matching elements on a list",
        complexity: "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.",
        handler: lpos,
        subcommands: &[],
    },
    CommandSpec {
        name: "lmove",
        arity: 5,
        flags: WRITE | DENYOOM | EXCLUSIVE,
        first_key: 1,
        last_key: 2,
        step: 1,
        acl: &["write", "list", "slow"],
        group: "list",
        since: "6.2.0",
        summary: "Pop an element from a list, push it to another list and return it",
        complexity: "O(1)",
        handler: lmove,
        subcommands: &[],
    },
    CommandSpec {
        name: "rpoplpush",
        arity: 3,
        flags: WRITE | DENYOOM | EXCLUSIVE,
        first_key: 1,
        last_key: 2,
        step: 1,
        acl: &["write", "list", "slow"],
        group: "list",
        since: "1.2.0",
        summary: "Remove the last element in a list, prepend it to another list and return it",
        complexity: "O(1)",
        handler: rpoplpush,
        subcommands: &[],
    },
    CommandSpec {
        name: "lmpop",
        arity: -4,
        flags: WRITE | EXCLUSIVE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["write", "list", "slow"],
        group: "list",
        since: "7.0.0",
        summary: "Pop elements from a list",
        complexity: "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
        handler: lmpop,
        subcommands: &[],
    },
];
