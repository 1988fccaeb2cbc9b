//! Blocking commands end to end, on both I/O backends with two reactor threads: clients parked
//! in BLPOP and friends are woken by writers on other connections (and so, for most pairs,
//! other threads), in the order they blocked, on time, by CLIENT UNBLOCK, and forgotten when
//! they disconnect; a parked client costs no CPU.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Ferrite, escape};

per_backend!(
    served_by_a_push_on_another_connection,
    first_blocked_first_served,
    timeout_returns_nil,
    blmove_and_chained_waiters,
    bzpopmin_and_wrong_kind_writes,
    client_unblock,
    disconnect_while_blocked,
    pipelined_commands_wait_behind_the_blocked_one,
    no_lost_wakeups,
    blocked_clients_use_no_cpu,
    rename_move_copy_and_swapdb_serve_waiters,
);

fn start(backend: &str) -> Ferrite {
    Ferrite::start(backend, &["--threads", "2"])
}

fn s(reply: &[u8]) -> String {
    escape(reply)
}

fn cmd(c: &mut Conn, args: &[&str]) -> String {
    s(&c.cmd_str(args))
}

fn send(c: &mut Conn, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send(&a);
}

/// INFO's `blocked_clients`.
fn blocked(c: &mut Conn) -> u64 {
    let info = c.cmd_str(&["INFO", "clients"]);
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// Waits until `n` clients are blocked (a client that was sent a blocking command has parked).
fn wait_blocked(c: &mut Conn, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = blocked(c);
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

/// Several connections, so the pairs land on both threads.
fn conns(f: &Ferrite, n: usize) -> Vec<Conn> {
    (0..n).map(|_| f.conn()).collect()
}

fn served_by_a_push_on_another_connection(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut waiters = conns(&f, 4);
    let mut pushers = conns(&f, 4);
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BLPOP", &format!("k{i}"), "0"]);
    }
    wait_blocked(&mut admin, 4);
    let list = String::from_utf8_lossy(&admin.cmd_str(&["CLIENT", "LIST"])).into_owned();
    assert_eq!(list.matches("flags=b").count(), 4, "{list}");
    for (i, p) in pushers.iter_mut().enumerate() {
        assert_eq!(
            cmd(p, &["LPUSH", &format!("k{i}"), &format!("v{i}")]),
            ":1\\r\\n"
        );
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        assert_eq!(
            s(&w.read_reply()),
            format!("*2\\r\\n$2\\r\\nk{i}\\r\\n$2\\r\\nv{i}\\r\\n")
        );
    }
    wait_blocked(&mut admin, 0);
    for i in 0..4 {
        assert_eq!(cmd(&mut admin, &["EXISTS", &format!("k{i}")]), ":0\\r\\n");
    }
    // A served client goes on with its next command.
    assert_eq!(cmd(&mut waiters[0], &["PING"]), "+PONG\\r\\n");
}

fn first_blocked_first_served(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut waiters = conns(&f, 3);
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BRPOP", "q", "0"]);
        wait_blocked(&mut admin, i as u64 + 1);
    }
    // One push of three elements: each waiter gets the one its turn gives it.
    assert_eq!(cmd(&mut admin, &["LPUSH", "q", "a", "b", "c"]), ":3\\r\\n");
    for (w, v) in waiters.iter_mut().zip(["a", "b", "c"]) {
        assert_eq!(
            s(&w.read_reply()),
            format!("*2\\r\\n$1\\r\\nq\\r\\n$1\\r\\n{v}\\r\\n")
        );
    }
    // One at a time: each push serves the longest waiting client.
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BLPOP", "q", "0"]);
        wait_blocked(&mut admin, i as u64 + 1);
    }
    for (left, v) in [(2, "x"), (1, "y"), (0, "z")] {
        assert_eq!(cmd(&mut admin, &["RPUSH", "q", v]), ":1\\r\\n");
        wait_blocked(&mut admin, left);
    }
    for (w, v) in waiters.iter_mut().zip(["x", "y", "z"]) {
        assert_eq!(
            s(&w.read_reply()),
            format!("*2\\r\\n$1\\r\\nq\\r\\n$1\\r\\n{v}\\r\\n")
        );
    }
}

fn timeout_returns_nil(backend: &str) {
    let f = start(backend);
    let mut c = f.conn();
    let t = Instant::now();
    assert_eq!(cmd(&mut c, &["BLPOP", "nokey", "0.1"]), "*-1\\r\\n");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_millis(600),
        "{took:?}"
    );
    let t = Instant::now();
    assert_eq!(
        cmd(&mut c, &["BZMPOP", "0.1", "2", "a", "b", "MIN"]),
        "*-1\\r\\n"
    );
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert!(!cmd(&mut c, &["HELLO", "3"]).is_empty());
    assert_eq!(cmd(&mut c, &["BRPOPLPUSH", "a", "b", "0.05"]), "_\\r\\n");
    // A timed-out client is no longer blocked and a later push is not given to it.
    assert_eq!(blocked(&mut c), 0);
    assert_eq!(cmd(&mut c, &["RPUSH", "nokey", "v"]), ":1\\r\\n");
    assert_eq!(cmd(&mut c, &["LLEN", "nokey"]), ":1\\r\\n");
}

fn blmove_and_chained_waiters(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut mover = f.conn();
    let mut popper = f.conn();
    send(&mut mover, &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]);
    wait_blocked(&mut admin, 1);
    send(&mut popper, &["BLPOP", "dst", "0"]);
    wait_blocked(&mut admin, 2);
    assert_eq!(cmd(&mut admin, &["RPUSH", "src", "v1", "v2"]), ":2\\r\\n");
    assert_eq!(s(&mover.read_reply()), "$2\\r\\nv1\\r\\n");
    // The element BLMOVE pushed wakes the client blocked on the destination.
    assert_eq!(
        s(&popper.read_reply()),
        "*2\\r\\n$3\\r\\ndst\\r\\n$2\\r\\nv1\\r\\n"
    );
    assert_eq!(
        cmd(&mut admin, &["LRANGE", "src", "0", "-1"]),
        "*1\\r\\n$2\\r\\nv2\\r\\n"
    );
    assert_eq!(cmd(&mut admin, &["EXISTS", "dst"]), ":0\\r\\n");
    // BRPOPLPUSH onto a destination of the wrong type: WRONGTYPE when woken.
    assert_eq!(cmd(&mut admin, &["SET", "str", "x"]), "+OK\\r\\n");
    send(&mut mover, &["BRPOPLPUSH", "empty", "str", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(cmd(&mut admin, &["LPUSH", "empty", "e"]), ":1\\r\\n");
    assert_eq!(
        s(&mover.read_reply()),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\\r\\n"
    );
    assert_eq!(cmd(&mut admin, &["LLEN", "empty"]), ":1\\r\\n");
}

fn bzpopmin_and_wrong_kind_writes(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut zw = f.conn();
    let mut lw = f.conn();
    send(&mut zw, &["BZPOPMIN", "z", "0"]);
    send(&mut lw, &["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 2);
    assert_eq!(
        cmd(&mut admin, &["ZADD", "z", "2", "b", "1", "a"]),
        ":2\\r\\n"
    );
    assert_eq!(
        s(&zw.read_reply()),
        "*3\\r\\n$1\\r\\nz\\r\\n$1\\r\\na\\r\\n$1\\r\\n1\\r\\n"
    );
    // The list waiter stays blocked through a string and a sorted set of its key's name.
    assert_eq!(cmd(&mut admin, &["SET", "k", "v"]), "+OK\\r\\n");
    assert_eq!(cmd(&mut admin, &["DEL", "k"]), ":1\\r\\n");
    assert_eq!(cmd(&mut admin, &["ZADD", "k", "1", "m"]), ":1\\r\\n");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(blocked(&mut admin), 1);
    assert_eq!(cmd(&mut admin, &["DEL", "k"]), ":1\\r\\n");
    assert_eq!(cmd(&mut admin, &["RPUSH", "k", "x"]), ":1\\r\\n");
    assert_eq!(
        s(&lw.read_reply()),
        "*2\\r\\n$1\\r\\nk\\r\\n$1\\r\\nx\\r\\n"
    );
    // RESP3: the score is a double.
    assert!(!cmd(&mut zw, &["HELLO", "3"]).is_empty());
    send(&mut zw, &["BZPOPMAX", "z2", "z", "0"]);
    assert_eq!(
        s(&zw.read_reply()),
        "*3\\r\\n$1\\r\\nz\\r\\n$1\\r\\nb\\r\\n,2\\r\\n"
    );
    send(&mut zw, &["BZMPOP", "0", "1", "z3", "MAX", "COUNT", "5"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(
        cmd(&mut admin, &["ZADD", "z3", "1", "a", "2", "b"]),
        ":2\\r\\n"
    );
    assert_eq!(
        s(&zw.read_reply()),
        "*2\\r\\n$2\\r\\nz3\\r\\n*2\\r\\n*2\\r\\n$1\\r\\nb\\r\\n,2\\r\\n*2\\r\\n$1\\r\\na\\r\\n,1\\r\\n"
    );
}

fn client_id(c: &mut Conn) -> String {
    let r = cmd(c, &["CLIENT", "ID"]);
    r.trim_start_matches(':')
        .trim_end_matches("\\r\\n")
        .to_owned()
}

fn client_unblock(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut w = conns(&f, 3);
    let ids: Vec<String> = w.iter_mut().map(client_id).collect();
    assert_eq!(cmd(&mut admin, &["CLIENT", "UNBLOCK", &ids[0]]), ":0\\r\\n");
    send(&mut w[0], &["BLPOP", "a", "0"]);
    send(&mut w[1], &["BZPOPMAX", "b", "0"]);
    send(&mut w[2], &["BLMPOP", "0", "1", "c", "LEFT"]);
    wait_blocked(&mut admin, 3);
    assert_eq!(cmd(&mut admin, &["CLIENT", "UNBLOCK", &ids[0]]), ":1\\r\\n");
    assert_eq!(s(&w[0].read_reply()), "*-1\\r\\n");
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "UNBLOCK", &ids[1], "ERROR"]),
        ":1\\r\\n"
    );
    assert_eq!(
        s(&w[1].read_reply()),
        "-UNBLOCKED client unblocked via CLIENT UNBLOCK\\r\\n"
    );
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "UNBLOCK", &ids[2], "TIMEOUT"]),
        ":1\\r\\n"
    );
    assert_eq!(s(&w[2].read_reply()), "*-1\\r\\n");
    wait_blocked(&mut admin, 0);
    assert_eq!(cmd(&mut admin, &["CLIENT", "UNBLOCK", &ids[2]]), ":0\\r\\n");
    // Unblocked clients are gone from the queues: a push is left in the list.
    assert_eq!(cmd(&mut admin, &["RPUSH", "a", "v"]), ":1\\r\\n");
    assert_eq!(cmd(&mut w[0], &["LPOP", "a"]), "$1\\r\\nv\\r\\n");
}

fn disconnect_while_blocked(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut first = f.conn();
    let mut second = f.conn();
    send(&mut first, &["BLPOP", "q", "0"]);
    wait_blocked(&mut admin, 1);
    send(&mut second, &["BLPOP", "q", "0"]);
    wait_blocked(&mut admin, 2);
    drop(first);
    wait_blocked(&mut admin, 1);
    assert_eq!(cmd(&mut admin, &["RPUSH", "q", "v"]), ":1\\r\\n");
    assert_eq!(
        s(&second.read_reply()),
        "*2\\r\\n$1\\r\\nq\\r\\n$1\\r\\nv\\r\\n"
    );
    assert_eq!(cmd(&mut admin, &["EXISTS", "q"]), ":0\\r\\n");
    // A client that disconnects while holding its turn passes it on.
    let mut a = f.conn();
    let mut b = f.conn();
    send(&mut a, &["BLPOP", "r", "0"]);
    wait_blocked(&mut admin, 1);
    send(&mut b, &["BLPOP", "r", "0"]);
    wait_blocked(&mut admin, 2);
    a.shutdown_write();
    drop(a);
    assert_eq!(cmd(&mut admin, &["RPUSH", "r", "1"]), ":1\\r\\n");
    assert_eq!(s(&b.read_reply()), "*2\\r\\n$1\\r\\nr\\r\\n$1\\r\\n1\\r\\n");
    // admin, second and b are left.
    let info = cmd(&mut admin, &["INFO", "clients"]);
    assert!(info.contains("connected_clients:3"), "{info}");
}

fn pipelined_commands_wait_behind_the_blocked_one(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut c = f.conn();
    let mut req = Vec::new();
    req.extend_from_slice(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n");
    req.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    c.send_raw(&req);
    wait_blocked(&mut admin, 1);
    let list = String::from_utf8_lossy(&admin.cmd_str(&["CLIENT", "LIST"])).into_owned();
    assert!(
        list.contains("flags=b") && list.contains("cmd=blpop"),
        "{list}"
    );
    assert_eq!(cmd(&mut admin, &["LPUSH", "q", "v"]), ":1\\r\\n");
    assert_eq!(s(&c.read_reply()), "*2\\r\\n$1\\r\\nq\\r\\n$1\\r\\nv\\r\\n");
    assert_eq!(s(&c.read_reply()), "+PONG\\r\\n");
}

/// A push racing with a client that is about to block must never be missed.
fn no_lost_wakeups(backend: &str) {
    let f = start(backend);
    let port = f.port;
    const ROUNDS: usize = 300;
    let waiter = std::thread::spawn(move || {
        let mut c = Conn::connect(port);
        for i in 0..ROUNDS {
            let r = c.cmd_str(&["BLPOP", "race", "0"]);
            assert_eq!(
                s(&r),
                format!(
                    "*2\\r\\n$4\\r\\nrace\\r\\n${}\\r\\n{i}\\r\\n",
                    i.to_string().len()
                )
            );
        }
    });
    let mut p = f.conn();
    for i in 0..ROUNDS {
        assert!(cmd(&mut p, &["RPUSH", "race", &i.to_string()]).starts_with(':'));
        if i % 7 == 0 {
            std::thread::yield_now();
        }
    }
    waiter.join().expect("waiter saw every element in order");
    assert_eq!(cmd(&mut p, &["EXISTS", "race"]), ":0\\r\\n");
}

fn blocked_clients_use_no_cpu(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut waiters = conns(&f, 50);
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BLPOP", &format!("idle{i}"), "0"]);
    }
    wait_blocked(&mut admin, 50);
    let before = f.cpu_seconds();
    std::thread::sleep(Duration::from_secs(1));
    let used = f.cpu_seconds() - before;
    assert!(used < 0.1, "50 blocked clients used {used} s of CPU in 1 s");
    assert_eq!(cmd(&mut admin, &["RPUSH", "idle49", "v"]), ":1\\r\\n");
    assert_eq!(
        s(&waiters[49].read_reply()),
        "*2\\r\\n$6\\r\\nidle49\\r\\n$1\\r\\nv\\r\\n"
    );
}

/// A list that arrives under a waited-on name by RENAME, MOVE, COPY or SWAPDB serves the
/// waiter, as in Redis.
fn rename_move_copy_and_swapdb_serve_waiters(backend: &str) {
    let f = start(backend);
    let mut admin = f.conn();
    let mut w = f.conn();
    let check = |w: &mut Conn, admin: &mut Conn, setup: &[&[&str]], key: &str, value: &str| {
        send(w, &["BLPOP", key, "5"]);
        wait_blocked(admin, 1);
        for c in setup {
            let r = cmd(admin, c);
            assert!(!r.starts_with('-'), "{c:?}: {r}");
        }
        assert_eq!(
            s(&w.read_reply()),
            format!(
                "*2\\r\\n${}\\r\\n{key}\\r\\n${}\\r\\n{value}\\r\\n",
                key.len(),
                value.len()
            )
        );
        wait_blocked(admin, 0);
    };
    check(
        &mut w,
        &mut admin,
        &[&["RPUSH", "src", "a"], &["RENAME", "src", "dst"]],
        "dst",
        "a",
    );
    check(
        &mut w,
        &mut admin,
        &[&["RPUSH", "c1", "b"], &["COPY", "c1", "dst2"]],
        "dst2",
        "b",
    );
    // The waiter is in db 0; MOVE from db 1 into db 0.
    check(
        &mut w,
        &mut admin,
        &[
            &["SELECT", "1"],
            &["RPUSH", "m", "c"],
            &["MOVE", "m", "0"],
            &["SELECT", "0"],
        ],
        "m",
        "c",
    );
    check(
        &mut w,
        &mut admin,
        &[
            &["SELECT", "1"],
            &["RPUSH", "sw", "d"],
            &["SWAPDB", "0", "1"],
            &["SELECT", "0"],
        ],
        "sw",
        "d",
    );
}
