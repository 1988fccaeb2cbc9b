//! A server as the replica of a redis-server 7.0.15 master (REPLICAOF host port): the initial
//! full resync of a mix of types in several databases (the replica's own data replaced), the
//! command stream that follows (transactions, scripts, FLUSHDB, expiries, SPOP, a large value)
//! acknowledged so that the master's WAIT counts the replica, the replica refusing writes with
//! `-READONLY`, ROLE and INFO replication, promotion with REPLICAOF NO ONE keeping the data, and
//! a master that goes away and comes back on the same port with other data and a password
//! (`masterauth`, a disk-based transfer instead of the diskless one). Every scenario runs with a
//! second redis-server as the replica (the reference, validating the test itself) and with
//! Ferrite on both I/O backends; the same assertions hold for both.

mod common;

use std::fs::{self, File};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::replication::*;
use common::{Conn, Ferrite, RedisServer, TempDir, escape, split_aggregate};

per_backend!(
    ferrite_replica_syncs_streams_and_promotes,
    ferrite_replica_survives_master_restart,
    ferrite_replica_drops_blocked_clients,
    ferrite_replica_shows_and_kills_its_master_client,
    ferrite_replica_leaves_expiry_to_its_master
);

/// What the replica under test is started with when it is Ferrite.
const FERRITE_ARGS: &[&str] = &["--threads", "2", "--enable-debug-command", "yes"];
/// The masters: DEBUG DIGEST allowed, and a full resync that starts at once (redis-server waits
/// 5 s by default for more replicas before a diskless transfer).
const MASTER_ARGS: &[&str] = &[
    "--enable-debug-command",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
];
/// Redis's refusal of a client write on a read-only replica.
const READONLY: &str = "-READONLY You can't write against a read only replica.\r\n";

#[test]
fn redis_replica_syncs_streams_and_promotes() {
    let Some(replica) = RedisServer::start_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    scenario(replica.port);
}

#[test]
fn redis_replica_survives_master_restart() {
    let Some(replica) = RedisServer::start_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    link_loss_scenario(replica.port);
}

fn ferrite_replica_syncs_streams_and_promotes(backend: &str) {
    if !common::require_tool("redis-server") {
        return;
    }
    let replica = Ferrite::start(backend, FERRITE_ARGS);
    scenario(replica.port);
}

fn ferrite_replica_survives_master_restart(backend: &str) {
    if !common::require_tool("redis-server") {
        return;
    }
    let replica = Ferrite::start(backend, FERRITE_ARGS);
    link_loss_scenario(replica.port);
}

#[test]
fn redis_replica_drops_blocked_clients() {
    let Some(replica) = RedisServer::start() else {
        return;
    };
    assert_eq!(blocked_clients_scenario(replica.port), EXPECTED_BLOCKED);
}

fn ferrite_replica_drops_blocked_clients(backend: &str) {
    if !common::require_tool("redis-server") {
        return;
    }
    let replica = Ferrite::start(backend, &["--threads", "2"]);
    assert_eq!(blocked_clients_scenario(replica.port), EXPECTED_BLOCKED);
}

#[test]
fn redis_replica_shows_and_kills_its_master_client() {
    let Some(replica) = RedisServer::start() else {
        return;
    };
    master_client_scenario(replica.port);
}

fn ferrite_replica_shows_and_kills_its_master_client(backend: &str) {
    if !common::require_tool("redis-server") {
        return;
    }
    let replica = Ferrite::start(backend, &["--threads", "2"]);
    master_client_scenario(replica.port);
}

/// The master's connection on the replica: CLIENT LIST TYPE master shows it (flag `M`), TYPE
/// normal does not; CLIENT KILL TYPE master drops it, and the replica connects again with a
/// partial resync (the master counts one full and one partial) and keeps replicating, in the
/// database the stream had selected.
fn master_client_scenario(replica_port: u16) {
    let Some(master) = RedisServer::start_with(MASTER_ARGS) else {
        return;
    };
    let mut r = Conn::connect(replica_port);
    let mut m = master.conn();
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master.port.to_string()],
    );
    let up = |r: &mut Conn| field_of(&info(r, "replication"), "master_link_status") == "up";
    wait_for("the link", || up(&mut r));
    let listed =
        String::from_utf8_lossy(&r.cmd_str(&["CLIENT", "LIST", "TYPE", "master"])).into_owned();
    assert_eq!(listed.matches("flags=M ").count(), 1, "{listed}");
    let normal =
        String::from_utf8_lossy(&r.cmd_str(&["CLIENT", "LIST", "TYPE", "normal"])).into_owned();
    assert!(!normal.contains("flags=M"), "{normal}");
    // The stream selects database 2 before the kill; after it, the master sends no SELECT.
    ok(&mut m, &["SELECT", "2"]);
    ok(&mut m, &["SET", "before-kill", "1"]);
    assert_eq!(m.cmd_str(&["WAIT", "1", "5000"]), b":1\r\n");
    assert_eq!(r.cmd_str(&["CLIENT", "KILL", "TYPE", "master"]), b":1\r\n");
    assert_eq!(m.cmd_str(&["SET", "after-kill", "1"]), b"+OK\r\n");
    ok(&mut r, &["SELECT", "2"]);
    wait_for("the link back and the write replicated", || {
        up(&mut r) && r.cmd_str(&["GET", "after-kill"]) == b"$1\r\n1\r\n"
    });
    assert_eq!(syncs(&mut m), (1, 1), "one full sync, then a partial one");
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
}

#[test]
fn redis_replica_leaves_expiry_to_its_master() {
    let Some(replica) = RedisServer::start() else {
        return;
    };
    assert_eq!(expiry_scenario(replica.port), EXPECTED_EXPIRY);
}

fn ferrite_replica_leaves_expiry_to_its_master(backend: &str) {
    if !common::require_tool("redis-server") {
        return;
    }
    let replica = Ferrite::start(backend, &["--threads", "2"]);
    assert_eq!(expiry_scenario(replica.port), EXPECTED_EXPIRY);
}

/// On the replica, a key past its TTL that the master has not expired yet (its active expiry
/// is off): GET and EXISTS answer it as missing, DBSIZE still counts it; then the master's
/// lazy expiry (a GET there) propagates a DEL and the key is gone.
const EXPECTED_EXPIRY: [&str; 4] = ["$-1\r\n", ":0\r\n", ":1\r\n", ":0\r\n"];

/// A replica deletes no key on its own (Redis's `expireIfNeeded` on a replica): the master's
/// DELs expire keys, so both stay the same dataset.
fn expiry_scenario(replica_port: u16) -> [String; 4] {
    let Some(master) = RedisServer::start_with(MASTER_ARGS) else {
        return EXPECTED_EXPIRY.map(str::to_string);
    };
    let mut r = Conn::connect(replica_port);
    let mut m = master.conn();
    ok(&mut m, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master.port.to_string()],
    );
    wait_for("the link", || {
        field_of(&info(&mut r, "replication"), "master_link_status") == "up"
    });
    ok(&mut m, &["SET", "soon", "v", "PX", "100"]);
    assert_eq!(m.cmd_str(&["WAIT", "1", "5000"]), b":1\r\n");
    std::thread::sleep(Duration::from_millis(150));
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let get = text(r.cmd_str(&["GET", "soon"]));
    let exists = text(r.cmd_str(&["EXISTS", "soon"]));
    let kept = text(r.cmd_str(&["DBSIZE"]));
    // The master's own lazy expiry propagates the DEL.
    assert_eq!(m.cmd_str(&["GET", "soon"]), b"$-1\r\n");
    assert_eq!(m.cmd_str(&["WAIT", "1", "5000"]), b":1\r\n");
    let gone = text(r.cmd_str(&["DBSIZE"]));
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    [get, exists, kept, gone]
}

/// What a client blocked in BLPOP (and one in WAIT) sees when its server becomes a replica,
/// what a BLPOP sent afterwards gets, and whether the master's push is still in the list.
const EXPECTED_BLOCKED: [&str; 4] = [
    "-UNBLOCKED force unblock from blocking operation, instance state changed (master -> \
     replica?)\r\n",
    "-UNBLOCKED force unblock from blocking operation, instance state changed (master -> \
     replica?)\r\n",
    "-READONLY You can't write against a read only replica.\r\n",
    "*1\r\n$1\r\nx\r\n",
];

/// Redis's `disconnectAllBlockedClients`: a server that starts following a master answers its
/// blocked clients with the UNBLOCKED error and closes them, so that a BLPOP never pops on the
/// replica what the master's stream pushes.
fn blocked_clients_scenario(replica_port: u16) -> [String; 4] {
    let Some(master) = RedisServer::start_with(MASTER_ARGS) else {
        return EXPECTED_BLOCKED.map(str::to_string);
    };
    let mut r = Conn::connect(replica_port);
    let mut blpop = Conn::connect(replica_port);
    blpop.send(&[b"BLPOP", b"list", b"0"]);
    let mut wait = Conn::connect(replica_port);
    wait.send(&[b"WAIT", b"1", b"0"]);
    wait_for("two blocked clients", || {
        field_of(&info(&mut r, "clients"), "blocked_clients") == "2"
    });
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master.port.to_string()],
    );
    let unblocked = String::from_utf8_lossy(&blpop.read_reply()).into_owned();
    let waited = String::from_utf8_lossy(&wait.read_reply()).into_owned();
    assert!(blpop.wait_closed(DEADLINE), "the BLPOP client stays open");
    assert!(wait.wait_closed(DEADLINE), "the WAIT client stays open");
    let mut m = master.conn();
    wait_for("the link", || {
        field_of(&info(&mut r, "replication"), "master_link_status") == "up"
    });
    let refused = String::from_utf8_lossy(&r.cmd_str(&["BLPOP", "list", "0"])).into_owned();
    assert_eq!(m.cmd_str(&["RPUSH", "list", "x"]), b":1\r\n");
    assert_eq!(m.cmd_str(&["WAIT", "1", "5000"]), b":1\r\n");
    let left = String::from_utf8_lossy(&r.cmd_str(&["LRANGE", "list", "0", "-1"])).into_owned();
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    [unblocked, waited, refused, left]
}

/// Full sync, streaming, read-only replica, promotion: the replica at `replica_port` against a
/// redis-server master started here.
fn scenario(replica_port: u16) {
    let Some(master) = RedisServer::start_with(MASTER_ARGS) else {
        return;
    };
    let mut m = master.conn();
    let mut r = Conn::connect(replica_port);

    // 1. Initial full sync. The replica's own data must be gone after it.
    for cmd in [
        &["SET", "replica-only", "1"][..],
        &["SELECT", "5"],
        &["SET", "replica-only-db5", "1"],
        &["SELECT", "0"],
    ] {
        ok(&mut r, cmd);
    }
    load_initial_data(&mut m);
    assert_eq!(
        escape(&r.cmd_str(&["REPLICAOF", "127.0.0.1", &master.port.to_string()])),
        "+OK\\r\\n",
        "REPLICAOF on the replica"
    );
    wait_in_sync(&mut m, &mut r, master.port, replica_port);
    assert_same_data(&mut m, &mut r, "after the full sync");
    assert_eq!(r.cmd_str(&["EXISTS", "replica-only"]), b":0\r\n");
    let ttl = int_reply(&r.cmd_str(&["TTL", "ttl"]));
    assert!(ttl > 0 && ttl <= 1000, "TTL of the key with a TTL: {ttl}");
    assert_eq!(r.cmd_str(&["TTL", "str"]), b":-1\r\n");

    // 2. The command stream, acknowledged to WAIT.
    stream_writes(&mut m);
    assert_eq!(
        escape(&m.cmd_str(&["WAIT", "1", "5000"])),
        ":1\\r\\n",
        "WAIT 1 5000"
    );
    assert_same_data(&mut m, &mut r, "after streaming");
    assert_eq!(r.cmd_str(&["EXISTS", "short"]), b":0\r\n");
    assert_eq!(r.cmd_str(&["GET", "evalkey"]), b"$7\r\nscripty\r\n");

    // 3. Read-only replica, ROLE, INFO replication.
    assert_eq!(
        escape(&r.cmd_str(&["SET", "x", "1"])),
        escape(READONLY.as_bytes())
    );
    assert_eq!(escape(&r.cmd_str(&["GET", "new"])), "$5\\r\\nvalue\\r\\n");
    assert_eq!(
        escape(&r.cmd_str(&["REPLICAOF", "127.0.0.1", &master.port.to_string()])),
        "+OK Already connected to specified master\\r\\n"
    );
    check_role(&mut r, master.port);
    let ri = info(&mut r, "replication");
    for (field, want) in [
        ("role", "slave".to_string()),
        ("master_host", "127.0.0.1".to_string()),
        ("master_port", master.port.to_string()),
        ("master_link_status", "up".to_string()),
        ("master_sync_in_progress", "0".to_string()),
        ("slave_read_only", "1".to_string()),
        ("connected_slaves", "0".to_string()),
    ] {
        assert_eq!(field_of(&ri, field), want, "replica's INFO {field}");
    }
    for field in ["slave_repl_offset", "master_last_io_seconds_ago"] {
        let v = field_of(&ri, field);
        assert!(v.parse::<i64>().is_ok(), "replica's INFO {field}: {v:?}");
    }

    // 4. Promotion keeps the data and makes the server writable.
    let master_digest = digest(&mut m);
    assert_eq!(escape(&r.cmd_str(&["REPLICAOF", "NO", "ONE"])), "+OK\\r\\n");
    assert_eq!(
        digest(&mut r),
        master_digest,
        "data kept by REPLICAOF NO ONE"
    );
    assert_eq!(escape(&r.cmd_str(&["SET", "x", "1"])), "+OK\\r\\n");
    assert_eq!(field_of(&info(&mut r, "replication"), "role"), "master");
    assert_eq!(r.cmd_str(&["GET", "x"]), b"$1\r\n1\r\n");
    assert_ne!(digest(&mut r), master_digest, "the SET after promotion");
    wait_for("the master to see no replica", || {
        field_of(&info(&mut m, "replication"), "connected_slaves") == "0"
    });
}

/// The replica at `replica_port` attached with SLAVEOF to a master that is shut down, then
/// started again on the same port with other data and a password: the link goes down, and
/// comes back up with a full resync once `masterauth` is set.
fn link_loss_scenario(replica_port: u16) {
    let Some(mut master) = RedisServer::start_with(MASTER_ARGS) else {
        return;
    };
    let port = master.port;
    let mut m = master.conn();
    let mut r = Conn::connect(replica_port);
    for i in 0..50 {
        ok(&mut m, &["SET", &format!("old:{i}"), &format!("v{i}")]);
    }
    ok(&mut m, &["HSET", "shared", "from", "old"]);
    assert_eq!(
        escape(&r.cmd_str(&["SLAVEOF", "127.0.0.1", &port.to_string()])),
        "+OK\\r\\n"
    );
    wait_in_sync(&mut m, &mut r, port, replica_port);
    assert_eq!(digest(&mut r), digest(&mut m), "after the first sync");
    assert_eq!(
        syncs(&mut m),
        (1, 0),
        "(full, partial) resyncs on the master"
    );

    // The master drops the link and takes writes meanwhile: the replica reconnects, by PSYNC
    // +CONTINUE (what redis-server does, from the master's backlog) or a full resync.
    assert_eq!(m.cmd_str(&["CLIENT", "KILL", "TYPE", "replica"]), b":1\r\n");
    ok(&mut m, &["SET", "during-outage", "1"]);
    ok(&mut m, &["HSET", "shared", "also", "during"]);
    wait_for("the replica to resync after CLIENT KILL", || {
        let (full, partial) = syncs(&mut m);
        full + partial == 2
    });
    wait_in_sync(&mut m, &mut r, port, replica_port);
    assert_eq!(digest(&mut r), digest(&mut m), "after the reconnection");
    assert_eq!(r.cmd_str(&["GET", "during-outage"]), b"$1\r\n1\r\n");
    eprintln!(
        "replica on port {replica_port}: (full, partial) resyncs after CLIENT KILL: {:?}",
        syncs(&mut m)
    );

    // The master goes away.
    m.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(m.wait_closed(DEADLINE), "SHUTDOWN NOSAVE did not close");
    drop(m);
    master.terminate(DEADLINE);
    wait_for("master_link_status:down", || {
        field_of(&info(&mut r, "replication"), "master_link_status") == "down"
    });
    let info_down = info(&mut r, "replication");
    assert_eq!(field_of(&info_down, "role"), "slave");
    assert_eq!(field_of(&info_down, "master_port"), port.to_string());
    // Still a read-only replica with its data while the link is down.
    assert_eq!(
        escape(&r.cmd_str(&["SET", "x", "1"])),
        escape(READONLY.as_bytes())
    );
    assert_eq!(r.cmd_str(&["HGET", "shared", "from"]), b"$3\r\nold\r\n");

    // A new master on the same port, with other data (from a dump made by a scratch server),
    // a password, and a disk-based transfer. A restarted redis-server master has a new
    // replication ID (7.0 restores it from the dump only on a replica), so this is a full
    // resync. (Another test could take the port while no server holds it: unlikely enough.)
    let Some(scratch) = RedisServer::start() else {
        return;
    };
    let mut s = scratch.conn();
    for i in 0..30 {
        ok(&mut s, &["SET", &format!("new:{i}"), &format!("w{i}")]);
    }
    ok(&mut s, &["HSET", "shared", "from", "new"]);
    ok(&mut s, &["SELECT", "2"]);
    ok(&mut s, &["SADD", "new-set", "a", "b", "c"]);
    ok(&mut s, &["SAVE"]);
    ok(&mut r, &["CONFIG", "SET", "masterauth", "s3cret"]);
    let new_master = PinnedRedis::start(
        port,
        Some(&scratch.dir().join("dump.rdb")),
        &[
            "--enable-debug-command",
            "yes",
            "--requirepass",
            "s3cret",
            "--repl-diskless-sync",
            "no",
        ],
    );
    drop(scratch);
    let mut m = new_master.conn();
    ok(&mut m, &["AUTH", "s3cret"]);
    assert_eq!(
        m.cmd_str(&["DBSIZE"]),
        b":31\r\n",
        "the new master loaded the dump"
    );
    wait_in_sync(&mut m, &mut r, port, replica_port);
    assert_same_data(&mut m, &mut r, "after the resync with the new master");
    assert_eq!(r.cmd_str(&["EXISTS", "old:1"]), b":0\r\n");
    assert_eq!(
        syncs(&mut m),
        (1, 0),
        "(full, partial) resyncs on the new master"
    );
    assert!(
        new_master
            .log()
            .contains("Starting BGSAVE for SYNC with target: disk"),
        "the new master's transfer was not disk-based:\n{}",
        new_master.log()
    );
    assert_eq!(r.cmd_str(&["HGET", "shared", "from"]), b"$3\r\nnew\r\n");

    // The stream from the new master.
    ok(&mut m, &["SET", "after-restart", "1"]);
    ok(&mut m, &["DEL", "new:0"]);
    assert_eq!(
        escape(&m.cmd_str(&["WAIT", "1", "5000"])),
        ":1\\r\\n",
        "WAIT 1 5000"
    );
    assert_eq!(
        digest(&mut r),
        digest(&mut m),
        "after streaming from the new master"
    );
    check_role(&mut r, port);
}

/// ROLE on a connected replica: ["slave", host, port, "connected", offset].
fn check_role(r: &mut Conn, master_port: u16) {
    let role = r.cmd_str(&["ROLE"]);
    let (header, elems) =
        split_aggregate(&role).unwrap_or_else(|| panic!("ROLE: {}", escape(&role)));
    assert_eq!(header, b"*5\r\n", "ROLE: {}", escape(&role));
    assert_eq!(elems[0], b"$5\r\nslave\r\n", "ROLE: {}", escape(&role));
    assert_eq!(elems[1], b"$9\r\n127.0.0.1\r\n", "ROLE: {}", escape(&role));
    assert_eq!(
        elems[2],
        format!(":{master_port}\r\n").as_bytes(),
        "ROLE: {}",
        escape(&role)
    );
    assert_eq!(elems[3], b"$9\r\nconnected\r\n", "ROLE: {}", escape(&role));
    assert!(int_reply(&elems[4]) >= 0, "ROLE: {}", escape(&role));
    // HELLO names the role too (its reply also carries the client id, so only that pair).
    let hello = r.cmd_str(&["HELLO", "2"]);
    let pair: &[u8] = b"$4\r\nrole\r\n$7\r\nreplica\r\n";
    assert!(
        hello.windows(pair.len()).any(|w| w == pair),
        "HELLO: {}",
        escape(&hello)
    );
}

/// A redis-server on a port chosen by the test (the harness always picks a free one), started
/// from a given dump if any; SIGKILLed on drop, its log printed if the test is failing.
struct PinnedRedis {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl PinnedRedis {
    fn start(port: u16, dump: Option<&Path>, extra_args: &[&str]) -> PinnedRedis {
        let dir = TempDir::new("redis-pinned");
        if let Some(dump) = dump {
            fs::copy(dump, dir.path().join("dump.rdb")).expect("copy the dump");
        }
        let log = File::create(dir.path().join("server.log")).expect("create the log");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(extra_args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log"))
            .stderr(log)
            .spawn()
            .expect("spawn redis-server");
        let mut s = PinnedRedis { child, port, dir };
        let deadline = Instant::now() + common::START_DEADLINE;
        while !(s.log().contains("Ready to accept connections")
            && TcpStream::connect(("127.0.0.1", port)).is_ok())
        {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("redis-server on port {port} exited ({st}):\n{}", s.log());
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not start:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }
}

impl Drop for PinnedRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- redis-server (port {}) log ---\n{}\n--- end of log ---",
                self.port,
                self.log()
            );
        }
    }
}
