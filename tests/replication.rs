//! WAIT on a master without replicas, where one connection's behaviour needs another to see:
//! a WAIT with no timeout blocks until CLIENT UNBLOCK (TIMEOUT answers the count, 0; ERROR the
//! UNBLOCKED error), counts as a blocked client meanwhile, and is shown to MONITOR once. Run
//! against redis-server 7.0.15 and Ferrite, on both I/O backends; the rest of ROLE and WAIT is
//! in `tests/diff/replication.txt`.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Ferrite, RedisServer, escape};

per_backend!(wait_blocks_until_unblocked);

fn wait_blocks_until_unblocked(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ferrite = Ferrite::start(backend, &["--threads", "2"]);
    let (want, got) = (unblock_steps(redis.port), unblock_steps(ferrite.port));
    assert_eq!(got, want);
}

/// Waits until INFO says `n` clients are blocked.
fn wait_blocked(c: &mut Conn, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.info_u64("clients", "blocked_clients") != n {
        assert!(Instant::now() < deadline, "never {n} blocked clients");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn unblock_steps(port: u16) -> String {
    let mut m = Conn::connect(port);
    let mut w = Conn::connect(port);
    let mut c = Conn::connect(port);
    let id = String::from_utf8(w.cmd(&[b"CLIENT", b"ID"])).unwrap();
    let id = id.trim_start_matches(':').trim_end();
    let mut out = vec![escape(&m.cmd(&[b"MONITOR"]))];
    for (verb, how) in [("WAIT", "TIMEOUT"), ("wait", "ERROR")] {
        w.send(&[verb.as_bytes(), b"1", b"0"]);
        wait_blocked(&mut c, 1);
        out.push(escape(&c.cmd_str(&["CLIENT", "UNBLOCK", id, how])));
        out.push(escape(&w.read_reply()));
        wait_blocked(&mut c, 0);
        // The monitor line: shown once, when it blocked (the polls' INFO lines aside, as many
        // as the timing makes them).
        loop {
            let line = String::from_utf8(m.read_reply()).unwrap();
            let shown = line.split_once(']').unwrap().1.to_string();
            if !shown.starts_with(" \"INFO\"") {
                out.push(shown);
                break;
            }
        }
    }
    out.push(escape(&c.cmd_str(&["CLIENT", "UNBLOCK", id])));
    out.push(escape(&w.cmd(&[b"PING"])));
    out.join("\n")
}
