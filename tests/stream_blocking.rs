//! XREAD and XREADGROUP with BLOCK end to end, on both I/O backends with two reactor threads:
//! readers parked on a stream are woken by an XADD on another connection (every reader of the
//! stream, not only the first), `$` means the last ID when the reader blocked, a group reader
//! learns that its group was destroyed, and timeouts and MULTI answer a null array.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Ferrite, escape};

per_backend!(
    xread_is_served_by_an_xadd_on_another_connection,
    every_reader_of_the_stream_is_served,
    dollar_is_the_last_id_when_blocking,
    timeout_and_multi_answer_null,
    xreadgroup_is_served_once_per_entry,
    destroyed_group_unblocks_with_nogroup,
);

fn start(backend: &str) -> Ferrite {
    Ferrite::start(backend, &["--threads", "2"])
}

fn cmd(c: &mut Conn, args: &[&str]) -> String {
    escape(&c.cmd_str(args))
}

fn send(c: &mut Conn, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send(&a);
}

/// Waits until `n` clients are blocked.
fn wait_blocked(c: &mut Conn, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = c.info_u64("clients", "blocked_clients");
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} blocked clients, have {now}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The RESP2 reply of XREAD for one stream and its entries (id, one field-value pair each).
fn xread_reply(key: &str, entries: &[(&str, &str, &str)]) -> String {
    let mut s = format!(
        "*1\\r\\n*2\\r\\n${}\\r\\n{key}\\r\\n*{}\\r\\n",
        key.len(),
        entries.len()
    );
    for (id, f, v) in entries {
        s += &format!(
            "*2\\r\\n${}\\r\\n{id}\\r\\n*2\\r\\n${}\\r\\n{f}\\r\\n${}\\r\\n{v}\\r\\n",
            id.len(),
            f.len(),
            v.len()
        );
    }
    s
}

fn xread_is_served_by_an_xadd_on_another_connection(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut reader = f.conn();
    let mut writer = f.conn();
    send(&mut reader, &["XREAD", "BLOCK", "0", "STREAMS", "s", "0-0"]);
    wait_blocked(&mut admin, 1);
    // A write to another key, or of another type, does not serve it.
    assert_eq!(
        cmd(&mut writer, &["XADD", "other", "1-1", "a", "b"]),
        "$3\\r\\n1-1\\r\\n"
    );
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(admin.info_u64("clients", "blocked_clients"), 1);
    assert_eq!(
        cmd(&mut writer, &["XADD", "s", "5-1", "f", "v"]),
        "$3\\r\\n5-1\\r\\n"
    );
    assert_eq!(
        escape(&reader.read_reply()),
        xread_reply("s", &[("5-1", "f", "v")])
    );
    wait_blocked(&mut admin, 0);
    // The connection goes on normally.
    assert_eq!(cmd(&mut reader, &["XLEN", "s"]), ":1\\r\\n");
}

fn every_reader_of_the_stream_is_served(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut readers: Vec<Conn> = (0..4).map(|_| f.conn()).collect();
    for r in &mut readers {
        send(
            r,
            &["XREAD", "COUNT", "10", "BLOCK", "5000", "STREAMS", "s", "$"],
        );
    }
    wait_blocked(&mut admin, 4);
    assert_eq!(
        cmd(&mut admin, &["XADD", "s", "1-1", "f", "v"]),
        "$3\\r\\n1-1\\r\\n"
    );
    for r in &mut readers {
        assert_eq!(
            escape(&r.read_reply()),
            xread_reply("s", &[("1-1", "f", "v")])
        );
    }
    wait_blocked(&mut admin, 0);
}

fn dollar_is_the_last_id_when_blocking(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut reader = f.conn();
    cmd(&mut admin, &["XADD", "s", "5-0", "old", "1"]);
    send(
        &mut reader,
        &["XREAD", "BLOCK", "0", "STREAMS", "missing", "s", "$", "$"],
    );
    wait_blocked(&mut admin, 1);
    cmd(&mut admin, &["XADD", "s", "6-0", "new", "2"]);
    assert_eq!(
        escape(&reader.read_reply()),
        xread_reply("s", &[("6-0", "new", "2")])
    );
    // `$` on a missing key is 0-0: the first entry ever added serves it.
    send(
        &mut reader,
        &["XREAD", "BLOCK", "0", "STREAMS", "missing", "$"],
    );
    wait_blocked(&mut admin, 1);
    cmd(&mut admin, &["XADD", "missing", "1-1", "a", "b"]);
    assert_eq!(
        escape(&reader.read_reply()),
        xread_reply("missing", &[("1-1", "a", "b")])
    );
}

fn timeout_and_multi_answer_null(backend: &str) {
    let f = start(backend);
    let mut c = f.conn();
    let t = Instant::now();
    assert_eq!(
        cmd(&mut c, &["XREAD", "BLOCK", "100", "STREAMS", "s", "$"]),
        "*-1\\r\\n"
    );
    assert!(t.elapsed() >= Duration::from_millis(100));
    cmd(&mut c, &["HELLO", "3"]);
    assert_eq!(
        cmd(&mut c, &["XREAD", "BLOCK", "50", "STREAMS", "s", "$"]),
        "_\\r\\n"
    );
    cmd(&mut c, &["HELLO", "2"]);
    assert_eq!(cmd(&mut c, &["MULTI"]), "+OK\\r\\n");
    assert_eq!(
        cmd(&mut c, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]),
        "+QUEUED\\r\\n"
    );
    assert_eq!(cmd(&mut c, &["EXEC"]), "*1\\r\\n*-1\\r\\n");
}

fn xreadgroup_is_served_once_per_entry(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut a = f.conn();
    let mut b = f.conn();
    assert_eq!(
        cmd(&mut admin, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
        "+OK\\r\\n"
    );
    send(
        &mut a,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    wait_blocked(&mut admin, 1);
    send(
        &mut b,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    wait_blocked(&mut admin, 2);
    cmd(&mut admin, &["XADD", "s", "1-1", "f", "v"]);
    // One of them gets the entry; the other stays blocked until the next one.
    std::thread::sleep(Duration::from_millis(100));
    wait_blocked(&mut admin, 1);
    cmd(&mut admin, &["XADD", "s", "2-1", "f", "w"]);
    let ra = escape(&a.read_reply());
    let rb = escape(&b.read_reply());
    let mut got = [ra, rb];
    got.sort();
    assert_eq!(
        got,
        [
            xread_reply("s", &[("1-1", "f", "v")]),
            xread_reply("s", &[("2-1", "f", "w")])
        ]
    );
    wait_blocked(&mut admin, 0);
    let pending = cmd(&mut admin, &["XPENDING", "s", "g"]);
    assert!(pending.starts_with("*4\\r\\n:2\\r\\n"), "{pending}");
}

fn destroyed_group_unblocks_with_nogroup(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut reader = f.conn();
    cmd(&mut admin, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    send(
        &mut reader,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    wait_blocked(&mut admin, 1);
    assert_eq!(
        cmd(&mut admin, &["XGROUP", "DESTROY", "s", "g"]),
        ":1\\r\\n"
    );
    assert_eq!(
        escape(&reader.read_reply()),
        "-NOGROUP the consumer group this client was blocked on no longer exists\\r\\n"
    );
    wait_blocked(&mut admin, 0);
}
