//! Command handlers, one module per group (as Redis's `t_string.c`, `db.c`, ...). Each module
//! exports `COMMANDS`, its table entries.

pub(crate) mod acl;
pub use acl::AclLog;
pub mod bgrewriteaof;
pub mod bitmaps;
pub mod blocking;
pub mod client;
mod client_tracking;
mod cluster;
pub mod command;
pub mod config_cmd;
pub mod connection;
pub mod db;
mod debug;
pub mod dump;
pub mod geo;
pub mod hashes;
pub mod hll;
pub mod info;
pub mod keys;
pub mod latency;
pub mod lists;
mod lolwut;
pub mod memory;
mod migrate;
pub use migrate::SocketCache;
mod module;
pub mod monitor;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod sets;
pub mod slowlog;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod zsets;

use crate::table::CommandSpec;

/// Every group's table entries.
pub const GROUPS: &[&[CommandSpec]] = &[
    connection::COMMANDS,
    strings::COMMANDS,
    bitmaps::COMMANDS,
    keys::COMMANDS,
    db::COMMANDS,
    client::COMMANDS,
    command::COMMANDS,
    info::COMMANDS,
    config_cmd::COMMANDS,
    sets::COMMANDS,
    zsets::COMMANDS,
    lists::COMMANDS,
    hashes::COMMANDS,
    hll::COMMANDS,
    geo::COMMANDS,
    blocking::COMMANDS,
    sort::COMMANDS,
    dump::COMMANDS,
    memory::COMMANDS,
    slowlog::COMMANDS,
    latency::COMMANDS,
    monitor::COMMANDS,
    persistence::COMMANDS,
    bgrewriteaof::COMMANDS,
    transactions::COMMANDS,
    pubsub::COMMANDS,
    replication::COMMANDS,
    cluster::COMMANDS,
    module::COMMANDS,
    debug::COMMANDS,
    acl::COMMANDS,
    lolwut::COMMANDS,
    migrate::COMMANDS,
    scripting::COMMANDS,
    scripting::functions::COMMANDS,
    streams::CORE_COMMANDS,
    streams::GROUP_COMMANDS,
];
