//! Ferrite as a master: a redis-server 7.0.15 replica (and a Ferrite one) pointed at it with
//! REPLICAOF gets a full resync of a mix of types in several databases, then the command stream
//! (transactions, scripts, FLUSHDB, expiries, SPOP, a large value), acknowledged so that WAIT
//! counts it; the master lists it in INFO replication, ROLE and CLIENT LIST (flag `S`, type
//! `replica`); after CLIENT KILL TYPE replica it comes back with a partial resync from the
//! backlog. A replica that asks while a BGSAVE runs waits for the next fork. Full resyncs are
//! diskless (Redis 7.0's default) unless a test asks for disk-based ones
//! (`repl-diskless-sync no`); two replicas share one diskless fork when
//! `repl-diskless-sync-max-replicas` is reached before the delay. Every scenario runs
//! with a redis-server master too (the reference, validating the test itself), and with Ferrite
//! on both I/O backends; the same assertions hold for all.

mod common;

use std::time::Duration;

use common::replication::*;
use common::{Conn, Ferrite, RedisServer, Server, escape, split_aggregate};

per_backend!(
    redis_replica_of_ferrite,
    redis_replica_of_ferrite_disk,
    ferrite_replica_of_ferrite,
    ferrite_replica_of_ferrite_disk,
    diskless_replicas_share_a_fork_of_ferrite,
    redis_replica_of_ferrite_waits_for_the_next_fork,
    wait_of_ferrite,
    min_replicas_of_ferrite,
    aof_switches_under_a_replica_of_ferrite,
    replica_killed_during_sync_of_ferrite,
    replica_killed_during_disk_sync_of_ferrite,
    concurrent_writers_replicate_exactly_from_ferrite,
    shutdown_waits_for_replicas_of_ferrite,
    backlog_expires_on_ferrite
);

/// Ferrite as the master: DEBUG DIGEST allowed, a (diskless) full resync that starts at once.
const FERRITE_MASTER_ARGS: &[&str] = &[
    "--threads",
    "2",
    "--enable-debug-command",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
];
/// redis-server as the master: DEBUG DIGEST allowed, a (diskless) full resync that starts at
/// once.
const REDIS_MASTER_ARGS: &[&str] = &[
    "--enable-debug-command",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
];
/// What turns either master's full resyncs disk-based: the dump is written, then sent.
const DISK_SYNC: &[&str] = &["--repl-diskless-sync", "no"];

fn with(base: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    [base, more].concat()
}
/// The replicas: DEBUG DIGEST allowed.
const REPLICA_ARGS: &[&str] = &["--enable-debug-command", "yes"];

#[test]
fn redis_replica_of_redis() {
    let Some(master) = RedisServer::start_with(REDIS_MASTER_ARGS) else {
        return;
    };
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    scenario(master.port, replica.port);
}

fn redis_replica_of_ferrite(backend: &str) {
    let master = Ferrite::start(backend, FERRITE_MASTER_ARGS);
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    scenario(master.port, replica.port);
}

fn ferrite_replica_of_ferrite(backend: &str) {
    let master = Ferrite::start(backend, FERRITE_MASTER_ARGS);
    let replica = Ferrite::start(
        backend,
        &["--threads", "2", "--enable-debug-command", "yes"],
    );
    scenario(master.port, replica.port);
}

#[test]
fn redis_replica_of_redis_disk() {
    let Some(master) = RedisServer::start_with(&with(REDIS_MASTER_ARGS, DISK_SYNC)) else {
        return;
    };
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    scenario(master.port, replica.port);
}

fn redis_replica_of_ferrite_disk(backend: &str) {
    let master = Ferrite::start(backend, &with(FERRITE_MASTER_ARGS, DISK_SYNC));
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    scenario(master.port, replica.port);
}

fn ferrite_replica_of_ferrite_disk(backend: &str) {
    let master = Ferrite::start(backend, &with(FERRITE_MASTER_ARGS, DISK_SYNC));
    let replica = Ferrite::start(
        backend,
        &["--threads", "2", "--enable-debug-command", "yes"],
    );
    scenario(master.port, replica.port);
}

/// Diskless with a long delay that a second replica cuts short: one fork serves both.
const SHARED_FORK: &[&str] = &[
    "--repl-diskless-sync-delay",
    "60",
    "--repl-diskless-sync-max-replicas",
    "2",
];

#[test]
fn diskless_replicas_share_a_fork_of_redis() {
    let Some(master) = RedisServer::start_with(&with(REDIS_MASTER_ARGS, SHARED_FORK)) else {
        return;
    };
    let (Some(r1), Some(r2)) = (
        RedisServer::start_with(REPLICA_ARGS),
        RedisServer::start_with(REPLICA_ARGS),
    ) else {
        return;
    };
    shared_fork_scenario(master.port, r1.port, r2.port);
}

fn diskless_replicas_share_a_fork_of_ferrite(backend: &str) {
    let master = Ferrite::start(backend, &with(FERRITE_MASTER_ARGS, SHARED_FORK));
    let Some(r1) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    let r2 = Ferrite::start(backend, &["--enable-debug-command", "yes"]);
    shared_fork_scenario(master.port, r1.port, r2.port);
}

/// The first replica waits (no fork within the delay); the second one reaches
/// `repl-diskless-sync-max-replicas`, and a single diskless fork, not a save, syncs both; the
/// stream then reaches both.
fn shared_fork_scenario(master_port: u16, r1_port: u16, r2_port: u16) {
    let mut m = Conn::connect(master_port);
    load_initial_data(&mut m);
    let forks = |m: &mut Conn| int_field(&info(m, "stats"), "total_forks");
    let forks_before = forks(&mut m);
    let saves_before = int_field(&info(&mut m, "persistence"), "rdb_saves");
    let mut r1 = Conn::connect(r1_port);
    ok(
        &mut r1,
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    wait_for("the first replica to wait for a fork", || {
        info(&mut m, "replication")
            .get("slave0")
            .is_some_and(|s| s.contains("state=wait_bgsave"))
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(forks(&mut m), forks_before, "no fork within the delay");
    assert_eq!(
        field_of(&info(&mut m, "persistence"), "rdb_bgsave_in_progress"),
        "0"
    );
    ok(&mut m, &["SET", "while-waiting", "1"]);
    let mut r2 = Conn::connect(r2_port);
    ok(
        &mut r2,
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    wait_all_in_sync(
        &mut m,
        &mut [(&mut r1, r1_port), (&mut r2, r2_port)],
        master_port,
    );
    assert_eq!(
        forks(&mut m),
        forks_before + 1,
        "one fork for both replicas"
    );
    assert_eq!(
        int_field(&info(&mut m, "persistence"), "rdb_saves"),
        saves_before,
        "a diskless transfer is not a save"
    );
    assert_eq!(syncs(&mut m), (2, 0), "(full, partial) resyncs");
    stream_writes(&mut m);
    assert_eq!(escape(&m.cmd_str(&["WAIT", "2", "5000"])), ":2\\r\\n");
    assert_same_data(&mut m, &mut r1, "first replica");
    assert_same_data(&mut m, &mut r2, "second replica");
}

fn int_field(info: &std::collections::BTreeMap<String, String>, name: &str) -> i64 {
    field_of(info, name).parse().expect(name)
}

#[test]
fn redis_replica_of_redis_waits_for_the_next_fork() {
    let Some(master) = RedisServer::start_with(REDIS_MASTER_ARGS) else {
        return;
    };
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    busy_child_scenario(master.port, replica.port);
}

fn redis_replica_of_ferrite_waits_for_the_next_fork(backend: &str) {
    let master = Ferrite::start(backend, FERRITE_MASTER_ARGS);
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    busy_child_scenario(master.port, replica.port);
}

#[test]
fn wait_of_redis() {
    let Some(master) = RedisServer::start_with(REDIS_MASTER_ARGS) else {
        return;
    };
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    assert_eq!(wait_scenario(master.port, replica.port), EXPECTED_WAITS);
}

fn wait_of_ferrite(backend: &str) {
    let master = Ferrite::start(backend, FERRITE_MASTER_ARGS);
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    assert_eq!(wait_scenario(master.port, replica.port), EXPECTED_WAITS);
}

#[test]
fn min_replicas_of_redis() {
    let Some(master) = RedisServer::start_with(REDIS_MASTER_ARGS) else {
        return;
    };
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    min_replicas_scenario(master.port, replica.port);
}

fn min_replicas_of_ferrite(backend: &str) {
    let master = Ferrite::start(backend, FERRITE_MASTER_ARGS);
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    min_replicas_scenario(master.port, replica.port);
}

#[test]
fn aof_switches_under_a_replica_of_redis() {
    let mut args = REDIS_MASTER_ARGS.to_vec();
    args.extend(["--appendonly", "yes"]);
    let Some(master) = RedisServer::start_with(&args) else {
        return;
    };
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    aof_scenario(master.port, replica.port);
}

fn aof_switches_under_a_replica_of_ferrite(backend: &str) {
    let mut args = FERRITE_MASTER_ARGS.to_vec();
    args.extend(["--appendonly", "yes"]);
    let master = Ferrite::start(backend, &args);
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    aof_scenario(master.port, replica.port);
}

/// The AOF and the replication stream share one sequence of writes: turning the AOF off and on
/// again (a rewrite, whose fork also cuts the AOF) while a replica follows leaves the replica
/// with every write, acknowledged to WAIT at each step.
fn aof_scenario(master_port: u16, replica_port: u16) {
    let mut m = Conn::connect(master_port);
    let mut r = Conn::connect(replica_port);
    load_initial_data(&mut m);
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    wait_in_sync(&mut m, &mut r, master_port, replica_port);
    let step = |m: &mut Conn, r: &mut Conn, i: usize, when: &str| {
        for j in 0..100 {
            ok(m, &["SET", &format!("step{i}:{j}"), &"v".repeat(j)]);
        }
        ok(m, &["INCR", "steps"]);
        assert_eq!(
            escape(&m.cmd_str(&["WAIT", "1", "5000"])),
            ":1\\r\\n",
            "{when}"
        );
        assert_eq!(digest(r), digest(m), "{when}");
    };
    step(&mut m, &mut r, 0, "with the AOF on");
    ok(&mut m, &["CONFIG", "SET", "appendonly", "no"]);
    step(&mut m, &mut r, 1, "after CONFIG SET appendonly no");
    ok(&mut m, &["CONFIG", "SET", "appendonly", "yes"]);
    step(
        &mut m,
        &mut r,
        2,
        "during the rewrite of CONFIG SET appendonly yes",
    );
    wait_for("the AOF rewrite to end", || {
        let p = info(&mut m, "persistence");
        field_of(&p, "aof_rewrite_in_progress") == "0" && field_of(&p, "aof_enabled") == "1"
    });
    step(&mut m, &mut r, 3, "after the rewrite");
    ok(&mut m, &["BGREWRITEAOF"]);
    step(&mut m, &mut r, 4, "during BGREWRITEAOF");
    assert_same_data(&mut m, &mut r, "at the end");
}

#[test]
fn replica_killed_during_sync_of_redis() {
    let Some(master) = RedisServer::start_with(REDIS_MASTER_ARGS) else {
        return;
    };
    killed_replica_scenario(master.port);
}

fn replica_killed_during_sync_of_ferrite(backend: &str) {
    if !common::require_tool("redis-server") {
        return;
    }
    let master = Ferrite::start(backend, FERRITE_MASTER_ARGS);
    killed_replica_scenario(master.port);
}

#[test]
fn replica_killed_during_disk_sync_of_redis() {
    let Some(master) = RedisServer::start_with(&with(REDIS_MASTER_ARGS, DISK_SYNC)) else {
        return;
    };
    killed_replica_scenario(master.port);
}

fn replica_killed_during_disk_sync_of_ferrite(backend: &str) {
    if !common::require_tool("redis-server") {
        return;
    }
    let master = Ferrite::start(backend, &with(FERRITE_MASTER_ARGS, DISK_SYNC));
    killed_replica_scenario(master.port);
}

/// A replica killed (SIGKILL) while the master's BGSAVE for it runs: the master forgets it,
/// keeps serving, and syncs the next replica completely.
fn killed_replica_scenario(master_port: u16) {
    let mut m = Conn::connect(master_port);
    for i in 0..500 {
        ok(&mut m, &["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    // About half a second of saving: 1 ms per key.
    ok(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
    let Some(doomed) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    ok(
        &mut Conn::connect(doomed.port),
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    wait_for("the replica to wait for the snapshot", || {
        info(&mut m, "replication")
            .get("slave0")
            .is_some_and(|s| s.contains("state=wait_bgsave"))
    });
    let status = std::process::Command::new("kill")
        .args(["-9", &doomed.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    drop(doomed);
    wait_for("the master to forget the killed replica", || {
        field_of(&info(&mut m, "replication"), "connected_slaves") == "0"
    });
    ok(&mut m, &["SET", "after-kill", "1"]);
    ok(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    let mut r = replica.conn();
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    wait_in_sync(&mut m, &mut r, master_port, replica.port);
    assert_eq!(digest(&mut r), digest(&mut m));
    assert_eq!(r.cmd_str(&["DBSIZE"]), b":501\r\n");
}

#[test]
fn concurrent_writers_replicate_exactly_from_redis() {
    let Some(master) = RedisServer::start_with(REDIS_MASTER_ARGS) else {
        return;
    };
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    concurrent_scenario(master.port, replica.port);
}

fn concurrent_writers_replicate_exactly_from_ferrite(backend: &str) {
    let master = Ferrite::start(backend, FERRITE_MASTER_ARGS);
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    concurrent_scenario(master.port, replica.port);
}

/// Fifty clients spread over the master's reactor threads write the same few hundred keys at
/// once (redis-benchmark's SET, INCR, LPUSH, RPOP, SADD, HSET, ZADD, LPOP, pipelined), while
/// a replica syncs and streams: its dataset must end equal to the master's, which holds only if
/// the stream orders the writes of one key as they took effect.
fn concurrent_scenario(master_port: u16, replica_port: u16) {
    if !common::require_tool("redis-benchmark") {
        return;
    }
    let mut m = Conn::connect(master_port);
    let mut r = Conn::connect(replica_port);
    let bench = |n: &str| write_load(master_port, n);
    bench("5000");
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    // Writes while the replica syncs, then while it streams.
    bench("20000");
    wait_in_sync(&mut m, &mut r, master_port, replica_port);
    bench("20000");
    assert_eq!(escape(&m.cmd_str(&["WAIT", "1", "10000"])), ":1\\r\\n");
    // WAIT covers this connection's writes (none): the benchmark's are in once the offsets
    // agree.
    wait_in_sync(&mut m, &mut r, master_port, replica_port);
    assert_eq!(digest(&mut r), digest(&mut m), "after concurrent writers");
    assert_eq!(keyspace(&mut r), keyspace(&mut m));
}

#[test]
fn shutdown_waits_for_replicas_of_redis() {
    let Some(mut master) = RedisServer::start_with(REDIS_MASTER_ARGS) else {
        return;
    };
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    let Some(mut stuck) = RedisServer::start_with(REDIS_MASTER_ARGS) else {
        return;
    };
    shutdown_scenario(&mut master, replica.port, &mut stuck);
}

fn shutdown_waits_for_replicas_of_ferrite(backend: &str) {
    if !common::require_tool("redis-server") {
        return;
    }
    let mut master = Ferrite::start(backend, FERRITE_MASTER_ARGS);
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    let mut stuck = Ferrite::start(backend, FERRITE_MASTER_ARGS);
    shutdown_scenario(&mut master, replica.port, &mut stuck);
}

/// Redis 7.0's `shutdown-timeout`: SHUTDOWN right after a write waits for the replica to
/// acknowledge it (so the replica has it), and with a replica that never acknowledges, waits
/// the timeout out and names the lagging replica in the log.
fn shutdown_scenario(master: &mut Server, replica_port: u16, stuck: &mut Server) {
    let mut m = master.conn();
    let mut r = Conn::connect(replica_port);
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master.port.to_string()],
    );
    wait_in_sync(&mut m, &mut r, master.port, replica_port);
    let big = "x".repeat(1 << 20);
    ok(&mut m, &["SET", "last", &big]);
    m.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(
        m.wait_closed(Duration::from_secs(15)),
        "SHUTDOWN did not end"
    );
    wait_for("the master to exit", || !master.is_running());
    assert_eq!(int_reply(&r.cmd_str(&["STRLEN", "last"])), 1 << 20);
    assert!(
        master
            .log()
            .contains("Waiting for replicas before shutting down."),
        "{}",
        master.log()
    );

    // A replica that never acknowledges: the master waits shutdown-timeout (1 s) out.
    let mut s = stuck.conn();
    ok(&mut s, &["CONFIG", "SET", "shutdown-timeout", "1"]);
    let mut fake = stuck.conn();
    ok(&mut fake, &["REPLCONF", "listening-port", "1"]);
    fake.send(&[b"PSYNC", b"?", b"-1"]);
    wait_for("the fake replica to be online", || {
        info(&mut s, "replication")
            .get("slave0")
            .is_some_and(|l| l.contains("state=online"))
    });
    ok(&mut s, &["SET", "k", "v"]);
    // SHUTDOWN ABORT stops the wait: the waiting SHUTDOWN gets the error, writes resume.
    ok(&mut s, &["CONFIG", "SET", "shutdown-timeout", "30"]);
    let mut waiting = stuck.conn();
    waiting.send(&[b"SHUTDOWN", b"NOSAVE"]);
    wait_for("the shutdown to wait", || {
        stuck
            .log()
            .contains("Waiting for replicas before shutting down.")
    });
    assert_eq!(escape(&s.cmd_str(&["SHUTDOWN", "ABORT"])), "+OK\\r\\n");
    assert_eq!(
        escape(&waiting.read_reply()),
        "-ERR Errors trying to SHUTDOWN. Check logs.\\r\\n"
    );
    assert_eq!(escape(&s.cmd_str(&["SET", "k", "w"])), "+OK\\r\\n");
    assert_eq!(
        escape(&s.cmd_str(&["SHUTDOWN", "ABORT"])),
        "-ERR No shutdown in progress.\\r\\n"
    );
    ok(&mut s, &["CONFIG", "SET", "shutdown-timeout", "1"]);
    let started = std::time::Instant::now();
    s.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(
        s.wait_closed(Duration::from_secs(15)),
        "SHUTDOWN did not end"
    );
    wait_for("the master to exit", || !stuck.is_running());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "exited after {:?} without waiting",
        started.elapsed()
    );
    assert!(
        stuck
            .log()
            .contains("Lagging replica 127.0.0.1:1 reported offset"),
        "{}",
        stuck.log()
    );
}

#[test]
fn backlog_expires_on_redis() {
    let Some(master) = RedisServer::start_with(REDIS_MASTER_ARGS) else {
        return;
    };
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    backlog_ttl_scenario(master.port, replica.port);
}

fn backlog_expires_on_ferrite(backend: &str) {
    let master = Ferrite::start(backend, FERRITE_MASTER_ARGS);
    let Some(replica) = RedisServer::start_with(REPLICA_ARGS) else {
        return;
    };
    backlog_ttl_scenario(master.port, replica.port);
}

/// `repl-backlog-ttl`: once the last replica has been gone that long, the backlog is freed
/// and the replication ID changes; writes go on, and the next replica syncs in full.
fn backlog_ttl_scenario(master_port: u16, replica_port: u16) {
    let mut m = Conn::connect(master_port);
    let mut r = Conn::connect(replica_port);
    ok(&mut m, &["CONFIG", "SET", "repl-backlog-ttl", "1"]);
    ok(&mut m, &["SET", "a", "1"]);
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    wait_in_sync(&mut m, &mut r, master_port, replica_port);
    let replid = field_of(&info(&mut m, "replication"), "master_replid");
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    wait_for("the backlog to be freed", || {
        field_of(&info(&mut m, "replication"), "repl_backlog_active") == "0"
    });
    let mi = info(&mut m, "replication");
    assert_ne!(
        field_of(&mi, "master_replid"),
        replid,
        "a new replication ID"
    );
    assert_eq!(field_of(&mi, "repl_backlog_histlen"), "0");
    ok(&mut m, &["SET", "b", "2"]);
    ok(&mut r, &["FLUSHALL"]);
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    wait_in_sync(&mut m, &mut r, master_port, replica_port);
    assert_eq!(syncs(&mut m), (2, 0), "(full, partial) resyncs");
    assert_eq!(digest(&mut r), digest(&mut m));
    assert_eq!(escape(&m.cmd_str(&["WAIT", "1", "5000"])), ":1\\r\\n");
}

/// `min-replicas-to-write 1`: writes are refused with NOREPLICAS until a replica is online and
/// acknowledging, INFO counts it as good, and writes are refused again once it leaves.
fn min_replicas_scenario(master_port: u16, replica_port: u16) {
    const NOREPLICAS: &[u8] = b"-NOREPLICAS Not enough good replicas to write.\r\n";
    let mut m = Conn::connect(master_port);
    let mut r = Conn::connect(replica_port);
    ok(&mut m, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    assert_eq!(m.cmd_str(&["SET", "k", "1"]), NOREPLICAS);
    assert_eq!(m.cmd_str(&["GET", "k"]), b"$-1\r\n");
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    wait_for("writes to be accepted with a good replica", || {
        m.cmd_str(&["SET", "k", "1"]) == b"+OK\r\n"
    });
    assert_eq!(
        field_of(&info(&mut m, "replication"), "min_slaves_good_slaves"),
        "1"
    );
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    wait_for("writes to be refused without a good replica", || {
        m.cmd_str(&["SET", "k", "2"]) == NOREPLICAS
    });
    assert_eq!(
        field_of(&info(&mut m, "replication"), "min_slaves_good_slaves"),
        "0"
    );
}

fn scenario(master_port: u16, replica_port: u16) {
    let mut m = Conn::connect(master_port);
    let mut r = Conn::connect(replica_port);
    ok(&mut r, &["SET", "replica-only", "1"]);
    load_initial_data(&mut m);

    // 1. The full resync.
    assert_eq!(
        escape(&r.cmd_str(&["REPLICAOF", "127.0.0.1", &master_port.to_string()])),
        "+OK\\r\\n"
    );
    wait_in_sync(&mut m, &mut r, master_port, replica_port);
    assert_same_data(&mut m, &mut r, "after the full sync");
    assert_eq!(r.cmd_str(&["EXISTS", "replica-only"]), b":0\r\n");
    assert_eq!(syncs(&mut m), (1, 0), "(full, partial) resyncs");

    // 2. The stream, acknowledged to WAIT.
    stream_writes(&mut m);
    assert_eq!(escape(&m.cmd_str(&["WAIT", "1", "5000"])), ":1\\r\\n");
    assert_same_data(&mut m, &mut r, "after streaming");
    assert_eq!(r.cmd_str(&["GET", "evalkey"]), b"$7\r\nscripty\r\n");
    for cmd in [
        &["SWAPDB", "0", "3"][..],
        &["SWAPDB", "0", "3"],
        &["SET", "expiring", "x", "EX", "1000"],
        &["COPY", "evalkey", "evalcopy"],
    ] {
        ok(&mut m, cmd);
    }
    assert_eq!(escape(&m.cmd_str(&["WAIT", "1", "5000"])), ":1\\r\\n");
    assert_same_data(&mut m, &mut r, "after SWAPDB and COPY");

    // PUBLISH reaches the replica's subscribers through the stream, in order with the writes.
    let mut sub = Conn::connect(replica_port);
    sub.send(&[b"SUBSCRIBE", b"news"]);
    assert_eq!(
        escape(&sub.read_reply()),
        "*3\\r\\n$9\\r\\nsubscribe\\r\\n$4\\r\\nnews\\r\\n:1\\r\\n"
    );
    ok(&mut m, &["SET", "before-publish", "1"]);
    assert_eq!(m.cmd_str(&["PUBLISH", "news", "hello"]), b":0\r\n");
    assert_eq!(
        escape(&sub.read_reply()),
        "*3\\r\\n$7\\r\\nmessage\\r\\n$4\\r\\nnews\\r\\n$5\\r\\nhello\\r\\n"
    );
    assert_eq!(r.cmd_str(&["GET", "before-publish"]), b"$1\r\n1\r\n");

    // 3. How the master shows its replica: apart from its clients.
    check_master_role(&mut m, replica_port);
    assert_eq!(field_of(&info(&mut m, "clients"), "connected_clients"), "1");
    let list =
        String::from_utf8_lossy(&m.cmd_str(&["CLIENT", "LIST", "TYPE", "replica"])).into_owned();
    let lines = list.lines().filter(|l| l.contains("id=")).count();
    assert_eq!(lines, 1, "CLIENT LIST TYPE replica: {list}");
    assert!(
        list.contains(" flags=S "),
        "CLIENT LIST TYPE replica: {list}"
    );
    assert_eq!(
        m.cmd_str(&["CLIENT", "LIST", "TYPE", "normal"])
            .windows(8)
            .filter(|w| w == b" flags=S")
            .count(),
        0
    );

    // 4. The link is cut and writes go on: the replica continues from the backlog.
    assert_eq!(m.cmd_str(&["CLIENT", "KILL", "TYPE", "replica"]), b":1\r\n");
    ok(&mut m, &["SET", "during-outage", "1"]);
    ok(&mut m, &["HSET", "hsmall", "outage", "yes"]);
    wait_for("the replica to resync after CLIENT KILL", || {
        let (full, partial) = syncs(&mut m);
        full + partial == 2
    });
    assert_eq!(syncs(&mut m), (1, 1), "(full, partial) resyncs");
    wait_in_sync(&mut m, &mut r, master_port, replica_port);
    assert_same_data(&mut m, &mut r, "after the partial resync");
    assert_eq!(r.cmd_str(&["GET", "during-outage"]), b"$1\r\n1\r\n");

    // 5. The replica leaves.
    assert_eq!(escape(&r.cmd_str(&["REPLICAOF", "NO", "ONE"])), "+OK\\r\\n");
    wait_for("the master to see no replica", || {
        field_of(&info(&mut m, "replication"), "connected_slaves") == "0"
    });
    let mi = info(&mut m, "replication");
    assert_eq!(field_of(&mi, "repl_backlog_active"), "1");
    assert_eq!(field_of(&mi, "repl_backlog_size"), "1048576");
}

/// ROLE on a master with one replica: ["master", offset, [[ip, port, acked offset]]].
fn check_master_role(m: &mut Conn, replica_port: u16) {
    let role = m.cmd_str(&["ROLE"]);
    let (header, elems) =
        split_aggregate(&role).unwrap_or_else(|| panic!("ROLE: {}", escape(&role)));
    assert_eq!(header, b"*3\r\n", "ROLE: {}", escape(&role));
    assert_eq!(elems[0], b"$6\r\nmaster\r\n", "ROLE: {}", escape(&role));
    let offset = int_reply(&elems[1]);
    assert!(offset > 0, "ROLE: {}", escape(&role));
    let (list, replicas) =
        split_aggregate(&elems[2]).unwrap_or_else(|| panic!("ROLE: {}", escape(&role)));
    assert_eq!(list, b"*1\r\n", "ROLE: {}", escape(&role));
    let (one, fields) = split_aggregate(&replicas[0]).expect("ROLE's replica");
    assert_eq!(one, b"*3\r\n", "ROLE: {}", escape(&role));
    assert_eq!(fields[0], b"$9\r\n127.0.0.1\r\n", "ROLE: {}", escape(&role));
    let port = replica_port.to_string();
    assert_eq!(
        fields[1],
        format!("${}\r\n{port}\r\n", port.len()).as_bytes(),
        "ROLE: {}",
        escape(&role)
    );
    assert!(fields[2].starts_with(b"$"), "ROLE: {}", escape(&role));
}

/// A replica that asks while a BGSAVE child runs is served by a fork made after it asked, so
/// the writes made while it waited reach it.
fn busy_child_scenario(master_port: u16, replica_port: u16) {
    let mut m = Conn::connect(master_port);
    let mut r = Conn::connect(replica_port);
    for i in 0..200 {
        ok(&mut m, &["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    // About 200 ms of saving: 1 ms per key.
    ok(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
    assert_eq!(
        escape(&m.cmd_str(&["BGSAVE"])),
        "+Background saving started\\r\\n"
    );
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    ok(&mut m, &["SET", "while-waiting", "1"]);
    ok(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_for("the replica's link to be up", || {
        field_of(&info(&mut r, "replication"), "master_link_status") == "up"
    });
    ok(&mut m, &["SET", "after", "1"]);
    assert_eq!(escape(&m.cmd_str(&["WAIT", "1", "5000"])), ":1\\r\\n");
    assert_eq!(digest(&mut r), digest(&mut m));
    assert_eq!(r.cmd_str(&["GET", "while-waiting"]), b"$1\r\n1\r\n");
    assert_eq!(r.cmd_str(&["DBSIZE"]), b":202\r\n");
}

/// WAIT's answers, in order, in [`wait_scenario`].
const EXPECTED_WAITS: [&str; 5] = [":0\\r\\n", ":1\\r\\n", ":1\\r\\n", ":0\\r\\n", ":1\\r\\n"];

/// WAIT with no replica (0 at once), with one that acknowledges (1), asking for more replicas
/// than there are (the count at the timeout), inside MULTI (at once: 0, as the transaction's
/// own write before it cannot have been acknowledged), and after a pipeline of writes.
fn wait_scenario(master_port: u16, replica_port: u16) -> [String; 5] {
    let mut m = Conn::connect(master_port);
    let mut r = Conn::connect(replica_port);
    let alone = escape(&m.cmd_str(&["WAIT", "0", "0"]));
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master_port.to_string()],
    );
    wait_for("the master to count an online replica", || {
        info(&mut m, "replication")
            .get("slave0")
            .is_some_and(|s| s.contains("state=online"))
    });
    ok(&mut m, &["SET", "a", "1"]);
    let one = escape(&m.cmd_str(&["WAIT", "1", "5000"]));
    ok(&mut m, &["SET", "b", "2"]);
    let started = std::time::Instant::now();
    let short = escape(&m.cmd_str(&["WAIT", "2", "300"]));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "WAIT 2 300 answered before its timeout"
    );
    ok(&mut m, &["MULTI"]);
    assert_eq!(m.cmd_str(&["SET", "c", "3"]), b"+QUEUED\r\n");
    assert_eq!(m.cmd_str(&["WAIT", "1", "0"]), b"+QUEUED\r\n");
    let exec = m.cmd_str(&["EXEC"]);
    let (_, replies) = split_aggregate(&exec).expect("EXEC's replies");
    let in_multi = escape(&replies[1]);
    let cmds: Vec<Vec<Vec<u8>>> = (0..200)
        .map(|i| {
            if i == 199 {
                vec![b"WAIT".to_vec(), b"1".to_vec(), b"5000".to_vec()]
            } else {
                vec![b"INCR".to_vec(), b"counter".to_vec()]
            }
        })
        .collect();
    let replies = m.pipeline(&cmds, 200);
    let piped = escape(&replies[199]);
    assert_eq!(r.cmd_str(&["GET", "counter"]), b"$3\r\n199\r\n");
    [alone, one, short, in_multi, piped]
}
