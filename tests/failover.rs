//! FAILOVER, Redis's coordinated failover (after redis-server's own
//! `tests/integration/failover.tcl`): three servers, a master and two replicas; the argument
//! and state errors; a failover to a named replica and to whichever catches up first, after
//! which the others follow the new master with partial resyncs only; a failover that gives up
//! when its replica never catches up, one that FAILOVER ABORT stops (the write it paused goes
//! through), and one that FORCE completes at its deadline. Each runs with redis-server in every
//! role (the reference), with Ferrite as the master handing over to redis-server replicas, with
//! redis-server handing over to Ferrite replicas, and with Ferrite only, on both I/O backends.

mod common;

use common::replication::*;
use common::{Conn, Server, escape};

per_backend!(
    ferrite_master_hands_over_to_redis,
    redis_master_hands_over_to_ferrite,
    ferrite_only
);

#[test]
fn redis_only() {
    let Some([a, b, c]) = redis_nodes() else {
        return;
    };
    scenario([&a, &b, &c]);
}

fn ferrite_master_hands_over_to_redis(backend: &str) {
    let Some([b, c]) = redis_nodes() else {
        return;
    };
    let a = ferrite_node(backend);
    scenario([&a, &b, &c]);
}

fn redis_master_hands_over_to_ferrite(backend: &str) {
    let Some([a]) = redis_nodes() else {
        return;
    };
    let (b, c) = (ferrite_node(backend), ferrite_node(backend));
    scenario([&a, &b, &c]);
}

fn ferrite_only(backend: &str) {
    let (a, b, c) = (
        ferrite_node(backend),
        ferrite_node(backend),
        ferrite_node(backend),
    );
    scenario([&a, &b, &c]);
}

/// Stops (SIGSTOP) or resumes (SIGCONT) a server, so that it acknowledges nothing meanwhile.
fn signal(server: &Server, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([sig, &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill {sig}");
}

fn state(c: &mut Conn) -> String {
    field_of(&info(c, "replication"), "master_failover_state")
}

fn role(c: &mut Conn) -> String {
    field_of(&info(c, "replication"), "role")
}

fn error(c: &mut Conn, args: &[&str], want: &str) {
    assert_eq!(
        escape(&c.cmd_str(args)),
        format!("-{want}\\r\\n"),
        "{args:?}"
    );
}

fn wait_done(c: &mut Conn) {
    wait_for("the failover to end", || state(c) == "no-failover");
}

/// The other two servers follow `n[m]`, in sync with it, all holding the same data; `n[m]`
/// served `resyncs` (full, partial) in all when given.
fn all_follow(n: &mut [Conn; 3], ports: [u16; 3], m: usize, resyncs: Option<(u64, u64)>) {
    let [a, b, c] = n;
    let (master, x, y, xi, yi) = match m {
        0 => (a, b, c, 1, 2),
        1 => (b, a, c, 0, 2),
        _ => (c, a, b, 0, 1),
    };
    wait_all_in_sync(
        master,
        &mut [(&mut *x, ports[xi]), (&mut *y, ports[yi])],
        ports[m],
    );
    assert_eq!(role(master), "master");
    if let Some(want) = resyncs {
        assert_eq!(syncs(master), want, "resyncs served by the master");
    }
    let d = digest(master);
    assert_eq!(digest(x), d);
    assert_eq!(digest(y), d);
}

fn scenario(servers: [&Server; 3]) {
    let ports = servers.map(|s| s.port);
    let p = ports.map(|p| p.to_string());
    let mut n = ports.map(Conn::connect);

    error(
        &mut n[0],
        &["FAILOVER", "TO", "127.0.0.1", &p[1]],
        "ERR FAILOVER requires connected replicas.",
    );
    load_initial_data(&mut n[0]);
    for i in [1, 2] {
        ok(&mut n[i], &["REPLICAOF", "127.0.0.1", &p[0]]);
    }
    all_follow(&mut n, ports, 0, None);

    // The errors, in Redis's order of checks.
    let errors: &[(&[&str], &str)] = &[
        (
            &["FAILOVER", "TO", "invalidhost", &p[1]],
            "ERR FAILOVER target HOST and PORT is not a replica.",
        ),
        (
            &["FAILOVER", "TO", "127.0.0.1", "invalidport"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["FAILOVER", "FORCE", "TIMEOUT", "100"],
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        ),
        (
            &["FAILOVER", "TO", "127.0.0.1", &p[1], "FORCE"],
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        ),
        (
            &["FAILOVER", "TIMEOUT", "0"],
            "ERR FAILOVER timeout must be greater than 0",
        ),
        (
            &["FAILOVER", "TIMEOUT", "10", "TIMEOUT", "20"],
            "ERR syntax error",
        ),
        (
            &["FAILOVER", "TO", "127.0.0.1", "1"],
            "ERR FAILOVER target HOST and PORT is not a replica.",
        ),
        (&["FAILOVER", "ABORT"], "ERR No failover in progress."),
    ];
    for (args, want) in errors {
        error(&mut n[0], args, want);
    }
    error(
        &mut n[1],
        &["FAILOVER", "TO", "127.0.0.1", &p[1]],
        "ERR FAILOVER is not valid when server is a replica.",
    );
    assert_eq!(state(&mut n[0]), "no-failover");

    // To a named replica: it takes over, the old master follows it, and the other replica
    // moves to it, both with partial resyncs.
    stream_writes(&mut n[0]);
    let (full, partial) = syncs(&mut n[1]);
    ok(&mut n[0], &["FAILOVER", "TO", "127.0.0.1", &p[1]]);
    wait_done(&mut n[0]);
    ok(&mut n[2], &["REPLICAOF", "127.0.0.1", &p[1]]);
    all_follow(&mut n, ports, 1, Some((full, partial + 2)));

    // To any replica: the one that catches up (the other is stopped) takes over.
    let (full, partial) = syncs(&mut n[2]);
    signal(servers[0], "-STOP");
    ok(&mut n[1], &["SET", "CASE", "1"]);
    ok(&mut n[1], &["FAILOVER"]);
    wait_done(&mut n[1]);
    signal(servers[0], "-CONT");
    ok(&mut n[0], &["REPLICAOF", "127.0.0.1", &p[2]]);
    all_follow(&mut n, ports, 2, Some((full, partial + 2)));

    // A replica that never catches up: the failover gives up at its deadline.
    let (full, partial) = syncs(&mut n[2]);
    signal(servers[1], "-STOP");
    ok(&mut n[2], &["SET", "CASE", "2"]);
    ok(
        &mut n[2],
        &["FAILOVER", "TO", "127.0.0.1", &p[1], "TIMEOUT", "500"],
    );
    wait_done(&mut n[2]);
    signal(servers[1], "-CONT");
    assert!(
        servers[2]
            .log()
            .contains("aborted: Replica never caught up before timeout"),
        "the log says why"
    );
    all_follow(&mut n, ports, 2, Some((full, partial)));

    // FAILOVER ABORT: reads go on while writes wait, and the paused write goes through. (The
    // write before it keeps the stopped replica behind: its last acknowledgement would
    // otherwise match the idle master's offset, and the hand-over would start at once.)
    signal(servers[1], "-STOP");
    ok(&mut n[2], &["SET", "CASE", "3"]);
    ok(
        &mut n[2],
        &["FAILOVER", "TO", "127.0.0.1", &p[1], "TIMEOUT", "60000"],
    );
    assert_eq!(state(&mut n[2]), "waiting-for-sync");
    error(
        &mut n[2],
        &["FAILOVER"],
        "ERR FAILOVER already in progress.",
    );
    error(
        &mut n[2],
        &["REPLICAOF", "127.0.0.1", &p[1]],
        "ERR REPLICAOF not allowed while failing over.",
    );
    ok(&mut n[2], &["GET", "CASE"]);
    let mut writer = Conn::connect(ports[2]);
    writer.send(&[b"SET", b"FOO", b"BAR"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    ok(&mut n[2], &["FAILOVER", "ABORT"]);
    assert_eq!(state(&mut n[2]), "no-failover");
    assert_eq!(escape(&writer.read_reply()), "+OK\\r\\n");
    signal(servers[1], "-CONT");
    all_follow(&mut n, ports, 2, Some((full, partial)));

    // FORCE: at the deadline the master hands over to the stopped replica anyway, and is never
    // a second master meanwhile.
    signal(servers[0], "-STOP");
    ok(&mut n[2], &["SET", "case", "4"]);
    ok(
        &mut n[2],
        &[
            "FAILOVER",
            "TO",
            "127.0.0.1",
            &p[0],
            "TIMEOUT",
            "100",
            "FORCE",
        ],
    );
    wait_for("the forced hand-over", || {
        state(&mut n[2]) == "failover-in-progress"
    });
    assert_eq!(role(&mut n[1]), "slave");
    assert_eq!(role(&mut n[2]), "slave");
    signal(servers[0], "-CONT");
    wait_done(&mut n[2]);
    ok(&mut n[1], &["REPLICAOF", "127.0.0.1", &p[0]]);
    all_follow(&mut n, ports, 0, None);
    assert!(
        servers[2]
            .log()
            .contains("time out exceeded, failing over."),
        "the log says the deadline forced it"
    );
}
