//! One replication history along a chain of servers (Redis's PSYNC2): a replica serves replicas
//! of its own, relaying its master's stream byte for byte, so that the whole chain shares one
//! replication ID and offset; a sub-replica continues from its replica's backlog after a lost
//! link and after that replica is promoted (REPLICAOF NO ONE keeps the backlog under a new ID,
//! the old one second); and after a failover the old master, turned replica of the promoted
//! one, continues with a partial resync instead of reloading everything. Each scenario runs
//! with redis-server in every role (the reference, validating the test) and with Ferrite, on
//! both I/O backends, in the role under test; the same assertions hold for all. A replica
//! restarted from the dump it saved at shutdown continues where that dump was cut.

mod common;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::replication::*;
use common::{Conn, Ferrite, RedisServer, Server, TempDir, escape};

per_backend!(
    ferrite_in_the_middle,
    ferrite_at_both_ends_of_a_chain,
    a_chain_of_ferrites,
    ferrite_master_fails_over_to_a_redis_replica,
    ferrite_replica_takes_over_from_a_redis_master,
    restarted_ferrite_replica_continues
);

#[test]
fn redis_in_the_middle() {
    let Some([top, middle, bottom]) = redis_nodes() else {
        return;
    };
    chain_scenario(top.port, middle.port, bottom.port);
}

fn ferrite_in_the_middle(backend: &str) {
    let Some([top, bottom]) = redis_nodes() else {
        return;
    };
    let middle = ferrite_node(backend);
    chain_scenario(top.port, middle.port, bottom.port);
}

fn ferrite_at_both_ends_of_a_chain(backend: &str) {
    let Some([middle]) = redis_nodes() else {
        return;
    };
    let (top, bottom) = (ferrite_node(backend), ferrite_node(backend));
    chain_scenario(top.port, middle.port, bottom.port);
}

fn a_chain_of_ferrites(backend: &str) {
    let (top, middle, bottom) = (
        ferrite_node(backend),
        ferrite_node(backend),
        ferrite_node(backend),
    );
    chain_scenario(top.port, middle.port, bottom.port);
}

/// top <- middle <- bottom: the bottom gets the top's data and stream through the middle, with
/// the top's replication ID and offsets; it continues partially after losing its link and
/// after the middle's promotion, and then follows the middle's own writes.
fn chain_scenario(top_port: u16, middle_port: u16, bottom_port: u16) {
    if !common::require_tool("redis-benchmark") {
        return;
    }
    let mut top = Conn::connect(top_port);
    let mut middle = Conn::connect(middle_port);
    let mut bottom = Conn::connect(bottom_port);
    load_initial_data(&mut top);
    replicaof(&mut middle, top_port);
    wait_in_sync(&mut top, &mut middle, top_port, middle_port);

    // The top's stream has db 3 selected when the bottom's full sync is cut from the middle's
    // relay, and writes there again without a SELECT: the snapshot says where they go.
    ok(&mut top, &["SELECT", "3"]);
    ok(&mut top, &["SET", "before-cut", "1"]);
    wait_in_sync(&mut top, &mut middle, top_port, middle_port);
    replicaof(&mut bottom, middle_port);
    wait_in_sync(&mut middle, &mut bottom, middle_port, bottom_port);
    ok(&mut top, &["SET", "after-cut", "1"]);
    ok(&mut top, &["SELECT", "0"]);
    wait_chain_in_sync(&mut top, &mut middle, &mut bottom, middle_port, bottom_port);
    ok(&mut bottom, &["SELECT", "3"]);
    assert_eq!(
        escape(&bottom.cmd_str(&["GET", "after-cut"])),
        "$1\\r\\n1\\r\\n"
    );
    ok(&mut bottom, &["SELECT", "0"]);

    // Another full sync of the bottom (its offset is out of the middle's smallest backlog),
    // cut while the top is written to: it must hold every write exactly once.
    ok(
        &mut middle,
        &["CONFIG", "SET", "repl-backlog-size", "16384"],
    );
    ok(&mut bottom, &["REPLICAOF", "NO", "ONE"]);
    write_load(top_port, "20000");
    let (full, _) = syncs(&mut middle);
    let synced = Arc::new(AtomicBool::new(false));
    let bench = {
        let synced = Arc::clone(&synced);
        std::thread::spawn(move || {
            while !synced.load(Ordering::Acquire) {
                write_load(top_port, "20000");
            }
        })
    };
    replicaof(&mut bottom, middle_port);
    wait_for("the bottom's link to be up", || {
        field_of(&info(&mut bottom, "replication"), "master_link_status") == "up"
    });
    synced.store(true, Ordering::Release);
    bench.join().unwrap();
    assert_eq!(syncs(&mut middle).0, full + 1, "a full resync under writes");
    stream_writes(&mut top);
    wait_chain_in_sync(&mut top, &mut middle, &mut bottom, middle_port, bottom_port);
    assert_same_data(&mut top, &mut bottom, "through the middle");
    assert_same_data(&mut top, &mut middle, "in the middle");
    let top_id = field_of(&info(&mut top, "replication"), "master_replid");
    for (name, c) in [("middle", &mut middle), ("bottom", &mut bottom)] {
        assert_eq!(
            field_of(&info(c, "replication"), "master_replid"),
            top_id,
            "the {name}'s history is the top's"
        );
    }

    // A lost link: the bottom continues from the middle's backlog.
    let (full, partial) = syncs(&mut middle);
    ok(&mut middle, &["CLIENT", "KILL", "TYPE", "replica"]);
    ok(&mut top, &["SET", "after-kill", "1"]);
    wait_chain_in_sync(&mut top, &mut middle, &mut bottom, middle_port, bottom_port);
    assert_eq!(
        syncs(&mut middle),
        (full, partial + 1),
        "the bottom continued"
    );
    assert_eq!(
        escape(&bottom.cmd_str(&["GET", "after-kill"])),
        "$1\\r\\n1\\r\\n"
    );

    // The middle is promoted: the bottom continues under its new ID, the top's second.
    let offset = field_of(&info(&mut middle, "replication"), "master_repl_offset");
    ok(&mut middle, &["REPLICAOF", "NO", "ONE"]);
    let promoted = info(&mut middle, "replication");
    assert_eq!(field_of(&promoted, "role"), "master");
    assert_eq!(field_of(&promoted, "master_replid2"), top_id);
    let next: i64 = offset.parse::<i64>().unwrap() + 1;
    assert_eq!(field_of(&promoted, "second_repl_offset"), next.to_string());
    assert_eq!(field_of(&promoted, "repl_backlog_active"), "1");
    let new_id = field_of(&promoted, "master_replid");
    assert_ne!(new_id, top_id);
    wait_for("the bottom to continue under the middle's new ID", || {
        field_of(&info(&mut bottom, "replication"), "master_replid") == new_id
    });
    ok(&mut middle, &["SELECT", "3"]);
    ok(&mut middle, &["SET", "promoted", "yes"]);
    ok(&mut middle, &["INCR", "int"]);
    wait_in_sync(&mut middle, &mut bottom, middle_port, bottom_port);
    assert_eq!(syncs(&mut middle), (full, partial + 2), "no full resync");
    assert_same_data(&mut middle, &mut bottom, "after the promotion");
}

/// The offsets of the whole chain agree, the middle counting the bottom online.
fn wait_chain_in_sync(
    top: &mut Conn,
    middle: &mut Conn,
    bottom: &mut Conn,
    middle_port: u16,
    bottom_port: u16,
) {
    wait_in_sync(middle, bottom, middle_port, bottom_port);
    wait_for("the bottom to reach the top's offset", || {
        let at = field_of(&info(top, "replication"), "master_repl_offset");
        field_of(&info(bottom, "replication"), "slave_repl_offset") == at
            && field_of(&info(middle, "replication"), "master_repl_offset") == at
    });
}

#[test]
fn redis_master_fails_over_to_a_redis_replica() {
    let Some([master, replica]) = redis_nodes() else {
        return;
    };
    failover_scenario(master.port, replica.port);
}

fn ferrite_master_fails_over_to_a_redis_replica(backend: &str) {
    let Some([replica]) = redis_nodes() else {
        return;
    };
    let master = ferrite_node(backend);
    failover_scenario(master.port, replica.port);
}

fn ferrite_replica_takes_over_from_a_redis_master(backend: &str) {
    let Some([master]) = redis_nodes() else {
        return;
    };
    let replica = ferrite_node(backend);
    failover_scenario(master.port, replica.port);
}

/// A manual failover: the replica is promoted, and the old master, told to follow it,
/// continues its own history from the new master's backlog (a partial resync: its data stays)
/// and then follows the new master's writes.
fn failover_scenario(master_port: u16, replica_port: u16) {
    let mut m = Conn::connect(master_port);
    let mut r = Conn::connect(replica_port);
    load_initial_data(&mut m);
    replicaof(&mut r, master_port);
    wait_in_sync(&mut m, &mut r, master_port, replica_port);
    stream_writes(&mut m);
    wait_in_sync(&mut m, &mut r, master_port, replica_port);
    let old_id = field_of(&info(&mut m, "replication"), "master_replid");
    let digest_before = digest(&mut m);

    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    let (full, partial) = syncs(&mut r);
    replicaof(&mut m, replica_port);
    wait_in_sync(&mut r, &mut m, replica_port, master_port);
    assert_eq!(
        syncs(&mut r),
        (full, partial + 1),
        "the old master continued its history"
    );
    let demoted = info(&mut m, "replication");
    assert_eq!(
        field_of(&demoted, "master_replid"),
        field_of(&info(&mut r, "replication"), "master_replid")
    );
    assert_eq!(field_of(&demoted, "master_replid2"), old_id);
    assert_eq!(
        digest(&mut m),
        digest_before,
        "the old master's data stayed"
    );

    ok(&mut r, &["SELECT", "3"]);
    ok(&mut r, &["SET", "after-failover", "1"]);
    ok(&mut r, &["SELECT", "0"]);
    ok(&mut r, &["LPUSH", "list", "new-master"]);
    wait_in_sync(&mut r, &mut m, replica_port, master_port);
    assert_same_data(&mut r, &mut m, "after the failover");
}

fn replicaof(c: &mut Conn, master_port: u16) {
    ok(c, &["REPLICAOF", "127.0.0.1", &master_port.to_string()]);
}

#[test]
fn restarted_redis_replica_continues() {
    let Some([master]) = redis_nodes() else {
        return;
    };
    let dir = TempDir::new("redis-replica");
    let mp = master.port.to_string();
    let d = dir.path().display().to_string();
    let args = [NODE_ARGS, &["--dir", &d, "--replicaof", "127.0.0.1", &mp]].concat();
    restart_scenario(master.port, || {
        RedisServer::start_with(&args).map(|r| Box::new(r) as Box<dyn Deref<Target = Server>>)
    });
}

fn restarted_ferrite_replica_continues(backend: &str) {
    let Some([master]) = redis_nodes() else {
        return;
    };
    let dir = TempDir::new("ferrite-replica");
    let mp = master.port.to_string();
    let args = [NODE_ARGS, &["--replicaof", "127.0.0.1", &mp]].concat();
    restart_scenario(master.port, || {
        let r = Ferrite::start_in(backend, dir.path(), &args).unwrap();
        Some(Box::new(r) as Box<dyn Deref<Target = Server>>)
    });
}

/// A replica saves at SHUTDOWN while its master's stream has db 3 selected; the master goes on
/// writing there; the replica, started again on its dump, continues with a partial resync and
/// puts the writes in db 3.
fn restart_scenario(
    master_port: u16,
    mut start_replica: impl FnMut() -> Option<Box<dyn Deref<Target = Server>>>,
) {
    let mut m = Conn::connect(master_port);
    load_initial_data(&mut m);
    let Some(replica) = start_replica() else {
        return;
    };
    let mut r = Conn::connect(replica.port);
    wait_in_sync(&mut m, &mut r, master_port, replica.port);
    ok(&mut m, &["SELECT", "3"]);
    ok(&mut m, &["SET", "before-restart", "1"]);
    wait_in_sync(&mut m, &mut r, master_port, replica.port);
    let (full, partial) = syncs(&mut m);
    // (No reply: the connection closes as the server exits; dropping it waits for the exit.)
    r.send(&[b"SHUTDOWN", b"SAVE"]);
    drop(replica);
    ok(&mut m, &["SET", "while-down", "1"]);

    let Some(replica) = start_replica() else {
        return;
    };
    let mut r = Conn::connect(replica.port);
    wait_in_sync(&mut m, &mut r, master_port, replica.port);
    assert_eq!(syncs(&mut m), (full, partial + 1), "a partial resync");
    ok(&mut m, &["SET", "after-restart", "1"]);
    ok(&mut m, &["SELECT", "0"]);
    wait_in_sync(&mut m, &mut r, master_port, replica.port);
    ok(&mut r, &["SELECT", "3"]);
    for key in ["before-restart", "while-down", "after-restart"] {
        assert_eq!(
            escape(&r.cmd_str(&["GET", key])),
            "$1\\r\\n1\\r\\n",
            "{key}"
        );
    }
    ok(&mut r, &["SELECT", "0"]);
    assert_same_data(&mut m, &mut r, "after the restart");
}
