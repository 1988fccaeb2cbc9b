//! CLIENT PAUSE against redis-server 7.0.15: the same steps on both servers, each reply (or
//! that none came within a moment, because the command was postponed) compared byte for byte.
//! WRITE postpones writes, PUBLISH, scripts that may write and a transaction's queued writes,
//! not reads or `no-writes` scripts; CLIENT UNPAUSE runs the postponed commands; ALL postpones
//! everything, CLIENT UNPAUSE included, until the deadline; a key that expires during a pause
//! is answered as missing but not deleted until the pause ends. Ferrite runs two reactor
//! threads, so the paused clients are spread over both.

mod common;

use std::time::Duration;

use common::{Conn, Ferrite, RedisServer};

per_backend!(
    client_pause_matches_redis,
    unblock_leaves_a_postponed_client_alone
);

/// What a command got: its reply, or that none came yet.
const WAITS: &[u8] = b"<waits>";

fn client_pause_matches_redis(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ferrite = Ferrite::start(backend, &["--threads", "2"]);
    let expected = scenario(redis.port);
    let got = scenario(ferrite.port);
    common::assert_same_transcript(&ferrite.name, &expected, &got);
}

/// Sends a command and reads its reply if one comes within 800 ms (a postponed command's
/// does not; a loaded machine may take a while to answer the others).
fn send(t: &mut Vec<(String, Vec<u8>)>, label: &str, c: &mut Conn, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send(&args);
    read(t, label, c, Duration::from_millis(800));
}

/// Reads one reply, waiting at most `wait`.
fn read(t: &mut Vec<(String, Vec<u8>)>, label: &str, c: &mut Conn, wait: Duration) {
    c.stream.set_read_timeout(Some(wait)).unwrap();
    let reply = c.try_read_reply().unwrap_or_else(|_| WAITS.to_vec());
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    t.push((label.to_string(), reply));
}

fn scenario(port: u16) -> Vec<(String, Vec<u8>)> {
    let mut t = Vec::new();
    let [mut p, mut a, mut b, mut c, mut d] = [0; 5].map(|_| Conn::connect(port));
    let b_id = String::from_utf8_lossy(&b.cmd_str(&["CLIENT", "ID"]))
        .trim_start_matches(':')
        .trim()
        .to_string();
    send(&mut t, "set before", &mut a, &["SET", "k", "1"]);
    send(
        &mut t,
        "script load",
        &mut a,
        &["SCRIPT", "LOAD", "return 1"],
    );

    send(
        &mut t,
        "pause write",
        &mut p,
        &["CLIENT", "PAUSE", "100000", "WRITE"],
    );
    send(&mut t, "read runs", &mut a, &["GET", "k"]);
    send(&mut t, "ping runs", &mut a, &["PING"]);
    send(&mut t, "write waits", &mut b, &["SET", "k", "2"]);
    // A postponed client shows as blocked in its command, as in Redis.
    let list = p.cmd_str(&["CLIENT", "LIST", "ID", &b_id]);
    let shown: Vec<String> = String::from_utf8_lossy(&list)
        .split_whitespace()
        .filter(|f| f.starts_with("flags=") || f.starts_with("cmd="))
        .map(str::to_string)
        .collect();
    t.push((
        "postponed in CLIENT LIST".into(),
        shown.join(" ").into_bytes(),
    ));
    let info = p.cmd_str(&["INFO", "clients"]);
    let blocked = String::from_utf8_lossy(&info)
        .lines()
        .find(|l| l.starts_with("blocked_clients:"))
        .unwrap_or("")
        .to_string();
    t.push(("blocked_clients".into(), blocked.into_bytes()));
    // (CLIENT UNBLOCK of a postponed client crashes redis-server 7.0.15; Ferrite answers 0.)
    send(&mut t, "multi", &mut a, &["MULTI"]);
    send(&mut t, "queued write waits", &mut a, &["INCR", "k"]);
    send(&mut t, "script waits", &mut c, &["EVAL", "return 1", "0"]);
    let ro = "#!lua flags=no-writes\nreturn redis.call('get', 'k')";
    send(&mut t, "no-writes script runs", &mut d, &["EVAL", ro, "0"]);
    send(&mut t, "publish waits", &mut d, &["PUBLISH", "ch", "m"]);
    send(&mut t, "unpause", &mut p, &["CLIENT", "UNPAUSE"]);
    for (label, conn) in [
        ("postponed write", &mut b),
        ("postponed queued write", &mut a),
        ("postponed script", &mut c),
        ("postponed publish", &mut d),
    ] {
        read(&mut t, label, conn, Duration::from_secs(5));
    }
    send(&mut t, "exec", &mut a, &["EXEC"]);
    send(&mut t, "after", &mut a, &["GET", "k"]);

    // A transaction queued before the pause: its EXEC waits.
    send(&mut t, "multi 2", &mut a, &["MULTI"]);
    send(&mut t, "queue 2", &mut a, &["SET", "k", "3"]);
    send(
        &mut t,
        "pause write 2",
        &mut p,
        &["CLIENT", "PAUSE", "100000", "WRITE"],
    );
    send(&mut t, "exec waits", &mut a, &["EXEC"]);
    send(&mut t, "read-only exec runs", &mut b, &["MULTI"]);
    send(&mut t, "read-only queued", &mut b, &["GET", "k"]);
    send(&mut t, "read-only exec", &mut b, &["EXEC"]);
    send(&mut t, "unpause 2", &mut p, &["CLIENT", "UNPAUSE"]);
    read(&mut t, "postponed exec", &mut a, Duration::from_secs(5));

    // ALL: everything waits for the deadline, CLIENT UNPAUSE too.
    send(
        &mut t,
        "pause all",
        &mut p,
        &["CLIENT", "PAUSE", "1200", "ALL"],
    );
    send(&mut t, "ping waits", &mut a, &["PING"]);
    send(&mut t, "unpause waits", &mut b, &["CLIENT", "UNPAUSE"]);
    send(&mut t, "the pauser waits", &mut p, &["GET", "k"]);
    for (label, conn) in [("ping", &mut a), ("unpause", &mut b), ("get", &mut p)] {
        read(&mut t, label, conn, Duration::from_secs(5));
    }
    // A longer pause extends a shorter one; a write pause under an ALL one stays ALL.
    send(
        &mut t,
        "pause all 2",
        &mut p,
        &["CLIENT", "PAUSE", "600", "ALL"],
    );
    send(
        &mut t,
        "pause write 3",
        &mut c,
        &["CLIENT", "PAUSE", "100", "WRITE"],
    );
    read(
        &mut t,
        "pause write 3 waits for all",
        &mut c,
        Duration::from_secs(5),
    );
    send(&mut t, "read after", &mut a, &["GET", "k"]);
    // A key that expires during a pause is answered as missing but kept (counted) until the
    // pause ends; the first access after deletes it.
    send(
        &mut t,
        "set expiring",
        &mut a,
        &["SET", "exp", "1", "PX", "100"],
    );
    send(&mut t, "dbsize before", &mut a, &["DBSIZE"]);
    send(
        &mut t,
        "pause write 4",
        &mut p,
        &["CLIENT", "PAUSE", "5000", "WRITE"],
    );
    std::thread::sleep(Duration::from_millis(300));
    send(&mut t, "expired get", &mut a, &["GET", "exp"]);
    send(&mut t, "expired exists", &mut a, &["EXISTS", "exp"]);
    send(&mut t, "dbsize keeps it", &mut a, &["DBSIZE"]);
    send(&mut t, "unpause 4", &mut p, &["CLIENT", "UNPAUSE"]);
    send(&mut t, "get after the pause", &mut a, &["GET", "exp"]);
    send(&mut t, "dbsize after the pause", &mut a, &["DBSIZE"]);
    t
}

/// CLIENT UNBLOCK of a client whose command a pause postponed answers 0 and leaves the command
/// to run when the pause ends (redis-server 7.0.15 crashes here, so this is Ferrite alone).
fn unblock_leaves_a_postponed_client_alone(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let (mut p, mut b) = (f.conn(), f.conn());
    let id = String::from_utf8_lossy(&b.cmd_str(&["CLIENT", "ID"]))
        .trim_start_matches(':')
        .trim()
        .to_string();
    assert_eq!(
        p.cmd_str(&["CLIENT", "PAUSE", "10000", "WRITE"]),
        b"+OK\r\n"
    );
    b.send(&[b"SET", b"k", b"v"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(p.cmd_str(&["CLIENT", "UNBLOCK", &id]), b":0\r\n");
    assert_eq!(p.cmd_str(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    assert_eq!(b.read_reply(), b"+OK\r\n");
    assert_eq!(p.cmd_str(&["GET", "k"]), b"$1\r\nv\r\n");
    let info = String::from_utf8_lossy(&p.cmd_str(&["INFO", "clients"])).into_owned();
    assert!(info.contains("blocked_clients:0"), "{info}");
}
