//! Transactions end to end, on both I/O backends with two reactor threads: WATCH sees writes
//! from other connections (and so, for most pairs, other threads), EXEC is atomic against
//! concurrent readers, optimistic check-and-set loops never lose an update, and the `redis`
//! crate's atomic pipelines (MULTI/EXEC, as redis-py's `pipeline()`) work.

mod common;

use std::thread;

use common::{Conn, Ferrite, escape};

per_backend!(
    watch_sees_other_connections,
    exec_is_atomic_for_readers,
    check_and_set_loses_no_update,
    redis_crate_atomic_pipeline,
);

fn start(backend: &str) -> Ferrite {
    Ferrite::start(backend, &["--threads", "2"])
}

fn cmd(c: &mut Conn, args: &[&str]) -> String {
    escape(&c.cmd_str(args))
}

fn watch_sees_other_connections(backend: &str) {
    let f = start(backend);
    // Several writers, so that some are on the other reactor thread.
    for i in 0..4 {
        let mut a = f.conn();
        let mut b = f.conn();
        assert_eq!(cmd(&mut a, &["SET", "k", "1"]), "+OK\\r\\n");
        assert_eq!(cmd(&mut a, &["WATCH", "k", "other"]), "+OK\\r\\n");
        match i % 4 {
            0 => assert_eq!(cmd(&mut b, &["SET", "k", "2"]), "+OK\\r\\n"),
            1 => assert_eq!(cmd(&mut b, &["DEL", "k"]), ":1\\r\\n"),
            2 => assert_eq!(cmd(&mut b, &["SET", "other", "x"]), "+OK\\r\\n"),
            _ => assert_eq!(cmd(&mut b, &["FLUSHALL"]), "+OK\\r\\n"),
        }
        assert_eq!(cmd(&mut a, &["MULTI"]), "+OK\\r\\n");
        assert_eq!(cmd(&mut a, &["SET", "k", "3"]), "+QUEUED\\r\\n");
        assert_eq!(cmd(&mut a, &["EXEC"]), "*-1\\r\\n", "case {i}");
        assert_ne!(cmd(&mut b, &["GET", "k"]), "$1\\r\\n3\\r\\n", "case {i}");
        // Untouched, the same transaction goes through.
        assert_eq!(cmd(&mut a, &["WATCH", "k"]), "+OK\\r\\n");
        assert_eq!(cmd(&mut a, &["MULTI"]), "+OK\\r\\n");
        assert_eq!(cmd(&mut a, &["SET", "k", "3"]), "+QUEUED\\r\\n");
        assert_eq!(cmd(&mut a, &["EXEC"]), "*1\\r\\n+OK\\r\\n");
        assert_eq!(cmd(&mut b, &["GET", "k"]), "$1\\r\\n3\\r\\n");
        assert_eq!(cmd(&mut b, &["FLUSHALL"]), "+OK\\r\\n");
    }
}

fn exec_is_atomic_for_readers(backend: &str) {
    let f = start(backend);
    const ROUNDS: usize = 2000;
    let port = f.port;
    let writer = thread::spawn(move || {
        let mut c = Conn::connect(port);
        // Padding between the two increments widens the window a non-atomic EXEC would open.
        const PAD: usize = 16;
        let mut batch = common::encode_command(&[b"MULTI"]);
        batch.extend(common::encode_command(&[b"INCR", b"a"]));
        for _ in 0..PAD {
            batch.extend(common::encode_command(&[
                b"SETRANGE",
                b"pad",
                b"1000",
                b"x",
            ]));
        }
        batch.extend(common::encode_command(&[b"INCR", b"b"]));
        batch.extend(common::encode_command(&[b"EXEC"]));
        for i in 1..=ROUNDS {
            c.send_raw(&batch);
            for _ in 0..PAD + 3 {
                c.read_reply();
            }
            let n = i.to_string();
            let exec = escape(&c.read_reply());
            assert!(
                exec.starts_with(&format!("*{}\\r\\n:{n}\\r\\n", PAD + 2)),
                "{exec}"
            );
            assert!(exec.ends_with(&format!(":{n}\\r\\n")), "{exec}");
        }
    });
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut seen = 0;
            let get_a = common::encode_command(&[b"GET", b"a"]);
            let get_b = common::encode_command(&[b"GET", b"b"]);
            let both = [get_a, get_b].concat();
            let int = |r: Vec<u8>| -> u64 {
                String::from_utf8_lossy(&r)
                    .lines()
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            loop {
                // Two separate reads, `a` first: `b` can only have caught up or moved past.
                c.send_raw(&both);
                let (a, b) = (int(c.read_reply()), int(c.read_reply()));
                assert!(b >= a, "GET saw a half-applied transaction: a={a} b={b}");
                let r = escape(&c.cmd_str(&["MGET", "a", "b"]));
                let parts: Vec<&str> = r.split("\\r\\n").collect();
                // *2, then either two nils or $len value $len value.
                let (a, b) = if parts.get(1) == Some(&"$-1") {
                    (None, parts.get(2).and_then(|p| (*p != "$-1").then_some(*p)))
                } else {
                    (parts.get(2).copied(), parts.get(4).copied())
                };
                assert_eq!(a, b, "MGET saw a half-applied transaction: {r}");
                if let Some(v) = a.and_then(|v| v.parse::<usize>().ok()) {
                    seen = v;
                }
                if seen >= ROUNDS {
                    break;
                }
            }
        }));
    }
    writer.join().expect("writer");
    for r in readers {
        r.join().expect("reader");
    }
}

fn check_and_set_loses_no_update(backend: &str) {
    let f = start(backend);
    const CLIENTS: usize = 4;
    const INCREMENTS: usize = 150;
    let port = f.port;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Conn::connect(port);
                let mut aborted = 0usize;
                for _ in 0..INCREMENTS {
                    loop {
                        assert_eq!(escape(&c.cmd_str(&["WATCH", "x"])), "+OK\\r\\n");
                        let v = String::from_utf8_lossy(&c.cmd_str(&["GET", "x"])).into_owned();
                        let cur: u64 = v.lines().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                        let next = (cur + 1).to_string();
                        assert_eq!(escape(&c.cmd_str(&["MULTI"])), "+OK\\r\\n");
                        assert_eq!(escape(&c.cmd_str(&["SET", "x", &next])), "+QUEUED\\r\\n");
                        let r = escape(&c.cmd_str(&["EXEC"]));
                        if r == "*1\\r\\n+OK\\r\\n" {
                            break;
                        }
                        assert_eq!(r, "*-1\\r\\n");
                        aborted += 1;
                    }
                }
                aborted
            })
        })
        .collect();
    let aborted: usize = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    let mut c = f.conn();
    let total = (CLIENTS * INCREMENTS).to_string();
    assert_eq!(
        escape(&c.cmd_str(&["GET", "x"])),
        format!("${}\\r\\n{total}\\r\\n", total.len()),
        "lost updates ({aborted} aborted attempts)"
    );
}

fn redis_crate_atomic_pipeline(backend: &str) {
    let f = start(backend);
    let mut c = redis::Client::open(f.url())
        .expect("client")
        .get_connection()
        .expect("connect");
    let (a, b, l): (i64, i64, Vec<String>) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("a")
        .cmd("INCRBY")
        .arg("a")
        .arg(5)
        .cmd("SET")
        .arg("s")
        .arg("v")
        .ignore()
        .cmd("RPUSH")
        .arg("l")
        .arg("x")
        .ignore()
        .cmd("LRANGE")
        .arg("l")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("pipeline");
    assert_eq!((a, b, l), (1, 6, vec!["x".to_string()]));
    // A runtime error inside EXEC surfaces as an error of the pipeline.
    let r: redis::RedisResult<(i64,)> = redis::pipe().atomic().cmd("INCR").arg("s").query(&mut c);
    assert!(r.is_err());
    // The transaction helper retries on a WATCH conflict; without one it runs once.
    let key = "counter";
    let (n,): (i64,) = redis::transaction(&mut c, &[key], |con, pipe| {
        let cur: Option<i64> = redis::cmd("GET").arg(key).query(con)?;
        pipe.set(key, cur.unwrap_or(0) + 10)
            .ignore()
            .get(key)
            .query(con)
    })
    .expect("transaction");
    assert_eq!(n, 10);
}
