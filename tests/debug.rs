//! DEBUG against redis-server 7.0.15 where the differential files cannot compare: DEBUG OBJECT
//! (whose address and LRU clock differ) field by field, DEBUG RELOAD with its options (a dump
//! saved and loaded back, functions included, checked with DEBUG DIGEST), and DEBUG SLEEP
//! stopping the whole server. Both backends, two reactor threads.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Ferrite, RedisServer, escape};

per_backend!(
    object_fields_match_redis,
    reload_matches_redis,
    sleep_stops_every_client
);

const ENABLE: &[&str] = &["--enable-debug-command", "yes"];

/// Both servers with DEBUG enabled, or `None` without redis-server.
fn servers(backend: &str) -> Option<(RedisServer, Ferrite)> {
    let redis = RedisServer::start_with(ENABLE)?;
    let ferrite = Ferrite::start(backend, &[&["--threads", "2"][..], ENABLE].concat());
    Some((redis, ferrite))
}

/// DEBUG OBJECT's line without what differs between processes (the address, the LRU clock).
fn object_fields(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply)
        .split_whitespace()
        .filter(|f| !f.starts_with("at:") && !f.starts_with("lru:") && !f.starts_with("lru_"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn object_fields_match_redis(backend: &str) {
    let Some((redis, ferrite)) = servers(backend) else {
        return;
    };
    let long = "x".repeat(100);
    let many: Vec<String> = (0..3000).map(|i| format!("element-{i}")).collect();
    let setup: Vec<Vec<String>> = vec![
        vec!["SET".into(), "int".into(), "12345".into()],
        vec!["SET".into(), "embstr".into(), "hello".into()],
        vec!["SET".into(), "raw".into(), long],
        vec!["SET".into(), "compressible".into(), "ab".repeat(200)],
        vec![
            "RPUSH".into(),
            "small".into(),
            "a".into(),
            "b".into(),
            "1".into(),
        ],
        [vec!["RPUSH".to_string(), "big".to_string()], many].concat(),
        vec!["HSET".into(), "h".into(), "f".into(), "v".into()],
        vec!["SADD".into(), "is".into(), "1".into(), "2".into()],
        vec!["SADD".into(), "s".into(), "a".into(), "b".into()],
        vec!["ZADD".into(), "z".into(), "1".into(), "a".into()],
        vec![
            "XADD".into(),
            "x".into(),
            "1-1".into(),
            "f".into(),
            "v".into(),
        ],
    ];
    let mut got = Vec::new();
    for port in [redis.port, ferrite.port] {
        let mut c = Conn::connect(port);
        let mut replies = Vec::new();
        for cmd in &setup {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            c.cmd_str(&args);
        }
        for key in [
            "int",
            "embstr",
            "raw",
            "compressible",
            "small",
            "big",
            "h",
            "is",
            "s",
            "z",
            "x",
            "nokey",
        ] {
            let reply = c.cmd_str(&["DEBUG", "OBJECT", key]);
            replies.push((key, object_fields(&reply)));
        }
        got.push(replies);
    }
    for ((key, want), (_, have)) in got[0].iter().zip(&got[1]) {
        assert_eq!(have, want, "{}: DEBUG OBJECT {key}", ferrite.name);
    }
}

fn reload_matches_redis(backend: &str) {
    let Some((redis, ferrite)) = servers(backend) else {
        return;
    };
    let lib = "#!lua name=lib\nredis.register_function('f', function() return 'hi' end)";
    let steps: &[&[&str]] = &[
        &["SET", "s", "v"],
        &["SET", "e", "v", "EX", "1000"],
        &["RPUSH", "l", "a", "b"],
        &["HSET", "h", "f", "v"],
        &["ZADD", "z", "1.5", "m"],
        &["SELECT", "2"],
        &["SADD", "set", "x"],
        &["SELECT", "0"],
        &["FUNCTION", "LOAD", lib],
        &["DEBUG", "DIGEST"],
        &["DEBUG", "RELOAD"],
        &["DEBUG", "DIGEST"],
        &["FCALL", "f", "0"],
        &["SET", "after", "1"],
        &["DEBUG", "RELOAD", "NOSAVE"],
        &["EXISTS", "after"],
        &["DEBUG", "DIGEST"],
        &["DEBUG", "RELOAD", "NOFLUSH"],
        &["DEBUG", "RELOAD", "NOFLUSH", "MERGE"],
        &["DEBUG", "DIGEST"],
        &["FCALL", "f", "0"],
        &["FLUSHALL"],
        &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"],
        &["DEBUG", "DIGEST"],
        &["DEBUG", "RELOAD", "MERGE", "BAD"],
    ];
    let mut transcripts = Vec::new();
    for port in [redis.port, ferrite.port] {
        let mut c = Conn::connect(port);
        transcripts.push(steps.iter().map(|s| c.cmd_str(s)).collect::<Vec<_>>());
    }
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(
            escape(&transcripts[1][i]),
            escape(&transcripts[0][i]),
            "{}: step {i} {step:?}",
            ferrite.name
        );
    }
}

fn sleep_stops_every_client(backend: &str) {
    let ferrite = Ferrite::start(backend, &[&["--threads", "2"][..], ENABLE].concat());
    let mut a = ferrite.conn();
    let mut others: Vec<Conn> = (0..6).map(|_| ferrite.conn()).collect();
    for o in &mut others {
        assert_eq!(o.cmd_str(&["PING"]), b"+PONG\r\n");
    }
    a.send(&[b"DEBUG", b"SLEEP", b"1.5"]);
    // Time for the sleep to start, on a loaded machine too.
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    for o in &mut others {
        assert_eq!(o.cmd_str(&["PING"]), b"+PONG\r\n");
    }
    // Every connection, on either thread, waited for the sleep to end.
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "a PING was answered during DEBUG SLEEP ({:?})",
        start.elapsed()
    );
    assert_eq!(a.read_reply(), b"+OK\r\n");
}
