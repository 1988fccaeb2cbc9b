//! Keyspace commands (Redis's `generic` group): DEL UNLINK EXISTS TOUCH TYPE, the expiry family,
//! KEYS SCAN RANDOMKEY, RENAME RENAMENX COPY MOVE, and OBJECT.

mod expire;
mod generic;
pub mod glob;
mod object;
mod scan;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use object::{collection_encoding, string_encoding, string_refcount};

use crate::table::{CommandSpec, flags::*};

/// A keyspace command with one key at position 1, the usual shape here.
const fn one_key(
    name: &'static str,
    arity: i32,
    flags: u32,
    acl: &'static [&'static str],
    since: &'static str,
    summary: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "generic", handler)
        .with_flags(flags)
        .with_keys(1, 1, 1)
        .with_acl(acl)
        .with_docs(since, summary, "O(1)")
}

const KW_FAST: &[&str] = &["keyspace", "write", "fast"];
const KR_FAST: &[&str] = &["keyspace", "read", "fast"];

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "del",
        arity: -2,
        flags: WRITE | EXCLUSIVE_MULTI_KEY,
        first_key: 1,
        last_key: -1,
        step: 1,
        acl: &["keyspace", "write", "slow"],
        group: "generic",
        since: "1.0.0",
        summary: "Delete a key",
        complexity: "O(N) where N is the number of keys that will be removed. When a key to \
                     remove holds a value other than a string, the individual complexity for \
                     this key is O(M) where M is the number of elements in the list, set, sorted \
                     set or hash. Removing a single key that holds a string value is O(1).",
        handler: generic::del,
        subcommands: &[],
    },
    CommandSpec {
        name: "unlink",
        arity: -2,
        flags: WRITE | FAST | EXCLUSIVE_MULTI_KEY,
        first_key: 1,
        last_key: -1,
        step: 1,
        acl: KW_FAST,
        group: "generic",
        since: "4.0.0",
        summary: "Delete a key asynchronously in another thread. Otherwise it is just as DEL, \
                  but non blocking.",
        complexity: "O(1) for each key removed regardless of its size. Then the command does \
                     O(N) work in a different thread in order to reclaim memory, where N is the \
                     number of allocations the deleted objects where composed of.",
        handler: generic::del,
        subcommands: &[],
    },
    CommandSpec {
        name: "exists",
        arity: -2,
        flags: READONLY | FAST | EXCLUSIVE_MULTI_KEY,
        first_key: 1,
        last_key: -1,
        step: 1,
        acl: KR_FAST,
        group: "generic",
        since: "1.0.0",
        summary: "Determine if a key exists",
        complexity: "O(N) where N is the number of keys to check.",
        handler: generic::exists,
        subcommands: &[],
    },
    CommandSpec {
        name: "touch",
        arity: -2,
        flags: READONLY | FAST | EXCLUSIVE_MULTI_KEY,
        first_key: 1,
        last_key: -1,
        step: 1,
        acl: KR_FAST,
        group: "generic",
        since: "3.2.1",
        summary: "Alters the last access time of a key(s). Returns the number of existing keys \
                  specified.",
        complexity: "O(N) where N is the number of keys that will be touched.",
        handler: generic::touch,
        subcommands: &[],
    },
    one_key(
        "type",
        2,
        READONLY | FAST,
        KR_FAST,
        "1.0.0",
        "Determine the type stored at key",
        generic::type_cmd,
    ),
    one_key(
        "expire",
        -3,
        WRITE | FAST,
        KW_FAST,
        "1.0.0",
        "Set a key's time to live in seconds",
        expire::expire,
    ),
    one_key(
        "pexpire",
        -3,
        WRITE | FAST,
        KW_FAST,
        "2.6.0",
        "Set a key's time to live in milliseconds",
        expire::pexpire,
    ),
    one_key(
        "expireat",
        -3,
        WRITE | FAST,
        KW_FAST,
        "1.2.0",
        "Set the expiration for a key as a UNIX timestamp",
        expire::expireat,
    ),
    one_key(
        "pexpireat",
        -3,
        WRITE | FAST,
        KW_FAST,
        "2.6.0",
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
        expire::pexpireat,
    ),
    one_key(
        "ttl",
        2,
        READONLY | FAST,
        KR_FAST,
        "1.0.0",
        "Get the time to live for a key in seconds",
        expire::ttl,
    ),
    one_key(
        "pttl",
        2,
        READONLY | FAST,
        KR_FAST,
        "2.6.0",
        "Get the time to live for a key in milliseconds",
        expire::pttl,
    ),
    one_key(
        "expiretime",
        2,
        READONLY | FAST,
        KR_FAST,
        "7.0.0",
        "Get the expiration Unix timestamp for a key",
        expire::expiretime,
    ),
    one_key(
        "pexpiretime",
        2,
        READONLY | FAST,
        KR_FAST,
        "7.0.0",
        "Get the expiration Unix timestamp for a key in milliseconds",
        expire::pexpiretime,
    ),
    one_key(
        "persist",
        2,
        WRITE | FAST,
        KW_FAST,
        "2.2.0",
        "Remove the expiration from a key",
        expire::persist,
    ),
    CommandSpec {
        name: "keys",
        arity: 2,
        flags: READONLY,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["keyspace", "read", "slow", "dangerous"],
        group: "generic",
        since: "1.0.0",
        summary: "Find all keys matching the given pattern",
        complexity: "O(N) with N being the number of keys in the database, under the assumption \
                     that the key names in the database and the given pattern have limited length.",
        handler: scan::keys,
        subcommands: &[],
    },
    CommandSpec {
        name: "scan",
        arity: -2,
        flags: READONLY,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["keyspace", "read", "slow"],
        group: "generic",
        since: "2.8.0",
        summary: "Incrementally iterate the keys space",
        complexity: "O(1) for every call. O(N) for a complete iteration, including enough \
                     command calls for the cursor to return back to 0. N is the number of \
                     elements inside the collection.",
        handler: scan::scan,
        subcommands: &[],
    },
    CommandSpec {
        name: "randomkey",
        arity: 1,
        flags: READONLY,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["keyspace", "read", "slow"],
        group: "generic",
        since: "1.0.0",
        summary: "Return a random key from the keyspace",
        complexity: "O(1)",
        handler: generic::randomkey,
        subcommands: &[],
    },
    CommandSpec {
        name: "rename",
        arity: 3,
        flags: WRITE | EXCLUSIVE,
        first_key: 1,
        last_key: 2,
        step: 1,
        acl: &["keyspace", "write", "slow"],
        group: "generic",
        since: "1.0.0",
        summary: "Rename a key",
        complexity: "O(1)",
        handler: generic::rename,
        subcommands: &[],
    },
    CommandSpec {
        name: "renamenx",
        arity: 3,
        flags: WRITE | FAST | EXCLUSIVE,
        first_key: 1,
        last_key: 2,
        step: 1,
        acl: KW_FAST,
        group: "generic",
        since: "1.0.0",
        summary: "Rename a key, only if the new key does not exist",
        complexity: "O(1)",
        handler: generic::renamenx,
        subcommands: &[],
    },
    CommandSpec {
        name: "copy",
        arity: -3,
        flags: WRITE | DENYOOM | EXCLUSIVE,
        first_key: 1,
        last_key: 2,
        step: 1,
        acl: &["keyspace", "write", "slow"],
        group: "generic",
        since: "6.2.0",
        summary: "Copy a key",
        complexity: "O(N) worst case for collections, where N is the number of nested items. \
                     O(1) for string values.",
        handler: generic::copy,
        subcommands: &[],
    },
    CommandSpec {
        name: "move",
        arity: 3,
        flags: WRITE | FAST | EXCLUSIVE,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: KW_FAST,
        group: "generic",
        since: "1.0.0",
        summary: "Move a key to another database",
        complexity: "O(1)",
        handler: generic::move_cmd,
        subcommands: &[],
    },
    CommandSpec {
        name: "object",
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["slow"],
        group: "generic",
        since: "2.2.3",
        summary: "A container for object introspection commands",
        complexity: "Depends on subcommand.",
        handler: object::object,
        subcommands: OBJECT_SUBCOMMANDS,
    },
];

const OBJECT_ACL: &[&str] = &["keyspace", "read", "slow"];

/// An OBJECT subcommand taking the key at position 2.
const fn object_sub(
    name: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, 3, "generic", handler)
        .with_flags(READONLY)
        .with_keys(2, 2, 1)
        .with_acl(OBJECT_ACL)
        .with_docs(since, summary, "O(1)")
}

const OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    object_sub(
        "encoding",
        "2.2.3",
        "Inspect the internal encoding of a Redis object",
        object::encoding,
    ),
    object_sub(
        "freq",
        "4.0.0",
        "Get the logarithmic access frequency counter of a Redis object",
        object::freq,
    ),
    object_sub(
        "idletime",
        "2.2.3",
        "Get the time since a Redis object was last accessed",
        object::idletime,
    ),
    object_sub(
        "refcount",
        "2.2.3",
        "Get the number of references to the value of the key",
        object::refcount,
    ),
    CommandSpec {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["keyspace", "slow"],
        group: "generic",
        since: "6.2.0",
        summary: "Show helpful text about the different subcommands",
        complexity: "O(1)",
        handler: object::help,
        subcommands: &[],
    },
];
