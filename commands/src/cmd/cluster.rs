//! The cluster commands of a server that is not a cluster node: Ferrite runs as a standalone
//! Redis (`cluster-enabled no`), which answers every CLUSTER subcommand, READONLY, READWRITE and
//! ASKING with the same error, so that clients probing for a cluster (CLUSTER INFO, CLUSTER
//! SLOTS, READONLY) learn they talk to a single node, as they would from redis-server.

use crate::args::Args;
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("cluster", -2, "cluster", cluster_disabled)
        .with_acl(&["slow"])
        .with_docs(
            "3.0.0",
            "A container for cluster commands",
            "Depends on subcommand.",
        )
        .with_subcommands(SUBCOMMANDS),
    CommandSpec::new("readonly", 1, "cluster", cluster_disabled)
        .with_flags(LOADING | STALE | FAST)
        .with_acl(&["fast", "connection"])
        .with_docs(
            "3.0.0",
            "Enables read queries for a connection to a cluster replica node",
            "O(1)",
        ),
    CommandSpec::new("readwrite", 1, "cluster", cluster_disabled)
        .with_flags(LOADING | STALE | FAST)
        .with_acl(&["fast", "connection"])
        .with_docs(
            "3.0.0",
            "Disables read queries for a connection to a cluster replica node",
            "O(1)",
        ),
    CommandSpec::new("asking", 1, "cluster", cluster_disabled)
        .with_flags(FAST)
        .with_acl(&["fast", "connection"])
        .with_docs(
            "3.0.0",
            "Sent by cluster clients after an -ASK redirect",
            "O(1)",
        ),
];

/// Redis 7.0.15's CLUSTER subcommands (HELP too answers the error on a standalone server).
const SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("addslots", -3, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Assign new hash slots to receiving node", "O(N) where N is the total number of hash slot arguments"),
    CommandSpec::new("addslotsrange", -4, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("7.0.0", "Assign new hash slots to receiving node", "O(N) where N is the total number of the slots between the start slot and end slot arguments."),
    CommandSpec::new("bumpepoch", 2, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Advance the cluster config epoch", "O(1)"),
    CommandSpec::new("count-failure-reports", 3, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Return the number of failure reports active for a given node", "O(N) where N is the number of failure reports"),
    CommandSpec::new("countkeysinslot", 3, "cluster", cluster_disabled)
        .with_flags(STALE)
        .with_acl(&["slow"])
        .with_docs("3.0.0", "Return the number of local keys in the specified hash slot", "O(1)"),
    CommandSpec::new("delslots", -3, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Set hash slots as unbound in receiving node", "O(N) where N is the total number of hash slot arguments"),
    CommandSpec::new("delslotsrange", -4, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("7.0.0", "Set hash slots as unbound in receiving node", "O(N) where N is the total number of the slots between the start slot and end slot arguments."),
    CommandSpec::new("failover", -2, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Forces a replica to perform a manual failover of its master.", "O(1)"),
    CommandSpec::new("flushslots", 2, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Delete a node's own slots information", "O(1)"),
    CommandSpec::new("forget", 3, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Remove a node from the nodes table", "O(1)"),
    CommandSpec::new("getkeysinslot", 4, "cluster", cluster_disabled)
        .with_flags(STALE)
        .with_acl(&["slow"])
        .with_docs("3.0.0", "Return local key names in the specified hash slot", "O(log(N)) where N is the number of requested keys"),
    CommandSpec::new("help", 2, "cluster", cluster_disabled)
        .with_flags(LOADING | STALE)
        .with_acl(&["slow"])
        .with_docs("5.0.0", "Show helpful text about the different subcommands", "O(1)"),
    CommandSpec::new("info", 2, "cluster", cluster_disabled)
        .with_flags(STALE)
        .with_acl(&["slow"])
        .with_docs("3.0.0", "Provides info about Redis Cluster node state", "O(1)"),
    CommandSpec::new("keyslot", 3, "cluster", cluster_disabled)
        .with_flags(STALE)
        .with_acl(&["slow"])
        .with_docs("3.0.0", "Returns the hash slot of the specified key", "O(N) where N is the number of bytes in the key"),
    CommandSpec::new("links", 2, "cluster", cluster_disabled)
        .with_flags(STALE)
        .with_acl(&["slow"])
        .with_docs("7.0.0", "Returns a list of all TCP links to and from peer nodes in cluster", "O(N) where N is the total number of Cluster nodes"),
    CommandSpec::new("meet", -4, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Force a node cluster to handshake with another node", "O(1)"),
    CommandSpec::new("myid", 2, "cluster", cluster_disabled)
        .with_flags(STALE)
        .with_acl(&["slow"])
        .with_docs("3.0.0", "Return the node id", "O(1)"),
    CommandSpec::new("nodes", 2, "cluster", cluster_disabled)
        .with_flags(STALE)
        .with_acl(&["slow"])
        .with_docs("3.0.0", "Get Cluster config for the node", "O(N) where N is the total number of Cluster nodes"),
    CommandSpec::new("replicas", 3, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("5.0.0", "List replica nodes of the specified master node", "O(1)"),
    CommandSpec::new("replicate", 3, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Reconfigure a node as a replica of the specified master node", "O(1)"),
    CommandSpec::new("reset", -2, "cluster", cluster_disabled)
        .with_flags(ADMIN | NOSCRIPT | STALE)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Reset a Redis Cluster node", "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect."),
    CommandSpec::new("saveconfig", 2, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Forces the node to save cluster state on disk", "O(1)"),
    CommandSpec::new("set-config-epoch", 3, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Set the configuration epoch in a new node", "O(1)"),
    CommandSpec::new("setslot", -4, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "Bind a hash slot to a specific node", "O(1)"),
    CommandSpec::new("shards", 2, "cluster", cluster_disabled)
        .with_flags(STALE)
        .with_acl(&["slow"])
        .with_docs("7.0.0", "Get array of cluster slots to node mappings", "O(N) where N is the total number of cluster nodes"),
    CommandSpec::new("slaves", 3, "cluster", cluster_disabled)
        .with_flags(ADMIN | STALE)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("3.0.0", "List replica nodes of the specified master node", "O(1)"),
    CommandSpec::new("slots", 2, "cluster", cluster_disabled)
        .with_flags(STALE)
        .with_acl(&["slow"])
        .with_docs("3.0.0", "Get array of Cluster slot to node mappings", "O(N) where N is the total number of Cluster nodes"),
];

/// Every cluster command on a standalone server.
fn cluster_disabled(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR This instance has cluster support disabled");
}
