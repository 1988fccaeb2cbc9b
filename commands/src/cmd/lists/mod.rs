//! List commands (Redis's `t_list.c`): pushes and pops at both ends, ranges, edits by index and
//! by value, LPOS, and the moves between lists (LMOVE, RPOPLPUSH, LMPOP).
//!
//! Single-key writes are one `rmw_value` each; the commands that touch several keys (LMOVE,
//! RPOPLPUSH, LMPOP) run with the EXCLUSIVE flag. A list that becomes empty is deleted, as Redis
//! never keeps an empty list.

mod edit;
pub(crate) mod moves;
mod push_pop;
pub(crate) use push_pop::notify_popped;
mod query;
#[cfg(test)]
mod tests;

use ferrite_collections::{End, List};
use ferrite_hybridlog::ObjectEntryMut;

use crate::args::eq_ignore_case;
use crate::ctx::Ctx;
use crate::resp::Reply;
use crate::table::{CommandSpec, flags::*};

use edit::*;
use moves::*;
use push_pop::*;
use query::*;

/// What a key holds, as the list commands see it inside `rmw_value`.
pub(super) type Slot<'e> = crate::objects::Slot<'e, List>;

/// Classifies an `rmw_value` entry.
pub(super) fn slot(entry: Option<ObjectEntryMut<'_>>) -> Slot<'_> {
    crate::objects::slot(entry)
}

pub(super) use crate::objects::Found;

/// Reads `key` as a list for a read-only command (see [`crate::objects::read_collection`]).
pub(super) fn read_list<'c>(
    ctx: &mut Ctx<'c>,
    key: &[u8],
    f: impl FnOnce(&List, &mut Reply<'c>),
) -> Found {
    crate::objects::read_collection(ctx, key, f)
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
