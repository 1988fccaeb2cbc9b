//! The table of the consumer-group commands (arity, flags, key positions and docs are Redis
//! 7.0.15's; subcommands in the order Redis's COMMAND INFO lists them).

use super::{ack, claim, info, pending, readgroup, xgroup};
use crate::table::{CommandSpec, Handler, flags::*};

const WRITE_ACL: &[&str] = &["write", "stream", "slow"];
const READ_ACL: &[&str] = &["read", "stream", "slow"];
const FAST_WRITE_ACL: &[&str] = &["write", "stream", "fast"];

/// A subcommand of XGROUP or XINFO with its key at position 2 (one argument per table field).
#[allow(clippy::too_many_arguments)]
const fn sub(
    name: &'static str,
    arity: i32,
    flags: u32,
    acl: &'static [&'static str],
    since: &'static str,
    summary: &'static str,
    complexity: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "stream", handler)
        .with_flags(flags)
        .with_keys(2, 2, 1)
        .with_acl(acl)
        .with_docs(since, summary, complexity)
}

/// A HELP subcommand.
const fn help(handler: Handler) -> CommandSpec {
    CommandSpec::new("help", 2, "stream", handler)
        .with_flags(LOADING | STALE)
        .with_acl(&["stream", "slow"])
        .with_docs(
            "5.0.0",
            "Show helpful text about the different subcommands",
            "O(1)",
        )
}

/// A command with one key at position 1 (one argument per table field).
#[allow(clippy::too_many_arguments)]
const fn one_key(
    name: &'static str,
    arity: i32,
    flags: u32,
    acl: &'static [&'static str],
    since: &'static str,
    summary: &'static str,
    complexity: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl,
        group: "stream",
        since,
        summary,
        complexity,
        handler,
        subcommands: &[],
    }
}

const XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    sub(
        "createconsumer",
        5,
        WRITE | DENYOOM,
        WRITE_ACL,
        "6.2.0",
        "Create a consumer in a consumer group.",
        "O(1)",
        xgroup::createconsumer,
    ),
    sub(
        "destroy",
        4,
        WRITE,
        WRITE_ACL,
        "5.0.0",
        "Destroy a consumer group.",
        "O(N) where N is the number of entries in the group's pending entries list (PEL).",
        xgroup::destroy,
    ),
    sub(
        "delconsumer",
        5,
        WRITE,
        WRITE_ACL,
        "5.0.0",
        "Delete a consumer from a consumer group.",
        "O(1)",
        xgroup::delconsumer,
    ),
    help(xgroup::help),
    sub(
        "create",
        -5,
        WRITE | DENYOOM,
        WRITE_ACL,
        "5.0.0",
        "Create a consumer group.",
        "O(1)",
        xgroup::create,
    ),
    sub(
        "setid",
        -5,
        WRITE,
        WRITE_ACL,
        "5.0.0",
        "Set a consumer group to an arbitrary last delivered ID value.",
        "O(1)",
        xgroup::setid,
    ),
];

const XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    sub(
        "stream",
        -3,
        READONLY,
        READ_ACL,
        "5.0.0",
        "Get information about a stream",
        "O(1)",
        info::stream,
    ),
    help(info::help),
    sub(
        "groups",
        3,
        READONLY,
        READ_ACL,
        "5.0.0",
        "List the consumer groups of a stream",
        "O(1)",
        info::groups,
    ),
    sub(
        "consumers",
        4,
        READONLY,
        READ_ACL,
        "5.0.0",
        "List the consumers in a consumer group",
        "O(1)",
        info::consumers,
    ),
];

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "xgroup",
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["slow"],
        group: "stream",
        since: "5.0.0",
        summary: "A container for consumer groups commands",
        complexity: "Depends on subcommand.",
        handler: xgroup::container,
        subcommands: XGROUP_SUBCOMMANDS,
    },
    CommandSpec {
        name: "xreadgroup",
        arity: -7,
        flags: WRITE | BLOCKING,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["write", "stream", "slow", "blocking"],
        group: "stream",
        since: "5.0.0",
        summary: "Return new entries from a stream using a consumer group, or access the history \
                  of the pending entries for a given consumer. Can block.",
        complexity: "For each stream mentioned: O(M) with M being the number of elements \
                     returned. If M is constant (e.g. always asking for the first 10 elements \
                     with COUNT), you can consider it O(1). On the other side when XREADGROUP \
                     blocks, XADD will pay the O(N) time in order to serve the N clients blocked \
                     on the stream getting new data.",
        handler: readgroup::xreadgroup,
        subcommands: &[],
    },
    one_key(
        "xack",
        -4,
        WRITE | FAST,
        FAST_WRITE_ACL,
        "5.0.0",
        "Marks a pending message as correctly processed, effectively removing it from the \
         pending entries list of the consumer group. Return value of the command is the number \
         of messages successfully acknowledged, that is, the IDs we were actually able to \
         resolve in the PEL.",
        "O(1) for each message ID processed.",
        ack::xack,
    ),
    one_key(
        "xpending",
        -3,
        READONLY,
        READ_ACL,
        "5.0.0",
        "Return information and entries from a stream consumer group pending entries list, \
         that are messages fetched but never acknowledged.",
        "O(N) with N being the number of elements returned, so asking for a small fixed number \
         of entries per call is O(1). O(M), where M is the total number of entries scanned when \
         used with the IDLE filter. When the command returns just the summary and the list of \
         consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for \
         iterating every consumer.",
        pending::xpending,
    ),
    one_key(
        "xclaim",
        -6,
        WRITE | FAST,
        FAST_WRITE_ACL,
        "5.0.0",
        "Changes (or acquires) ownership of a message in a consumer group, as if the message \
         was delivered to the specified consumer.",
        "O(log N) with N being the number of messages in the PEL of the consumer group.",
        claim::xclaim,
    ),
    one_key(
        "xautoclaim",
        -6,
        WRITE | FAST,
        FAST_WRITE_ACL,
        "6.2.0",
        "Changes (or acquires) ownership of messages in a consumer group, as if the messages \
         were delivered to the specified consumer.",
        "O(1) if COUNT is small.",
        claim::xautoclaim,
    ),
    CommandSpec {
        name: "xinfo",
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["slow"],
        group: "stream",
        since: "5.0.0",
        summary: "A container for stream introspection commands",
        complexity: "Depends on subcommand.",
        handler: info::container,
        subcommands: XINFO_SUBCOMMANDS,
    },
];
