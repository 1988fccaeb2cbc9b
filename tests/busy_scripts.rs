//! Scripts that run too long, against redis-server 7.0.15: once a script has run past
//! `busy-reply-threshold`, other clients are answered BUSY except for the commands Redis allows
//! then (SCRIPT KILL, FUNCTION KILL, FUNCTION STATS, MULTI/DISCARD, WATCH, SHUTDOWN NOSAVE...);
//! SCRIPT KILL stops a script that has not written and refuses one that has; SHUTDOWN NOSAVE
//! stops the server. The same steps run on both servers and the replies are compared byte for
//! byte (FUNCTION STATS's duration aside).
//!
//! Ferrite runs the script on one of its two reactor threads, whose other connections wait
//! for the script to end (Redis serves them from inside the script); the test opens many
//! probe connections, uses those the other thread answers, and checks that the waiting ones
//! are answered once the script is gone.

mod common;

use std::time::Duration;

use common::{Conn, Ferrite, RedisServer, escape};

per_backend!(busy_scripts_match_redis);

/// Probe connections: the chance that every one lands on the script's thread is 2^-16.
const PROBES: usize = 16;

const LIBRARY: &str = "#!lua name=busylib\n\
    redis.register_function('spin', function(keys, args) while true do end end)";

/// One server's replies, labelled by step.
type Transcript = Vec<(String, Vec<u8>)>;

fn busy_scripts_match_redis(backend: &str) {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let mut ferrite = Ferrite::start(backend, &["--threads", "2"]);
    let expected = scenario(redis.port, true);
    let got = scenario(ferrite.port, false);
    common::assert_same_transcript(&ferrite.name, &expected, &got);
    for (server, name) in [(&mut *ferrite, "ferrite"), (&mut *redis, "redis-server")] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while server.is_running() {
            assert!(
                std::time::Instant::now() < deadline,
                "{name} still runs after SHUTDOWN NOSAVE"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Every step on the server at `port`; `all_answer`: every probe must answer while the script
/// is busy (redis-server), else at least one (Ferrite, whose script's thread waits).
fn scenario(port: u16, all_answer: bool) -> Transcript {
    let mut t = Transcript::new();
    let mut a = Conn::connect(port);
    let step = |t: &mut Transcript, label: &str, c: &mut Conn, args: &[&str]| {
        let reply = c.cmd_str(args);
        t.push((label.to_string(), without_duration(&reply)));
    };
    step(
        &mut t,
        "threshold",
        &mut a,
        &["CONFIG", "SET", "lua-time-limit", "100"],
    );
    step(
        &mut t,
        "threshold shown",
        &mut a,
        &["CONFIG", "GET", "busy-reply-threshold"],
    );
    step(&mut t, "load", &mut a, &["FUNCTION", "LOAD", LIBRARY]);
    let mut probes: Vec<Conn> = (0..PROBES).map(|_| Conn::connect(port)).collect();
    for p in &mut probes {
        assert_eq!(p.cmd_str(&["PING"]), b"+PONG\r\n");
    }

    // An EVAL that never writes: refused commands, allowed ones, then SCRIPT KILL.
    a.send(&[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"]);
    let (busy, mut waiting) = probe(&mut probes, all_answer);
    t.push(("busy eval".into(), busy));
    let r = &mut probes[0];
    for (label, args) in [
        ("function kill of an eval", &["FUNCTION", "KILL"][..]),
        ("function stats", &["FUNCTION", "STATS"]),
        ("get", &["GET", "k"]),
        ("unknown command", &["NOSUCHCOMMAND"]),
        ("wrong arity", &["GET"]),
        ("multi", &["MULTI"]),
        ("set in multi", &["SET", "k", "v"]),
        ("exec", &["EXEC"]),
        ("discard", &["DISCARD"]),
        ("watch", &["WATCH", "k"]),
        ("unwatch", &["UNWATCH"]),
        ("shutdown without nosave", &["SHUTDOWN"]),
        ("script kill", &["SCRIPT", "KILL"]),
    ] {
        step(&mut t, label, r, args);
    }
    t.push(("killed eval".into(), a.read_reply()));
    for i in waiting.drain(..) {
        assert_eq!(probes[i].read_reply(), b"+PONG\r\n", "a waiting probe");
    }
    step(
        &mut t,
        "script kill, none running",
        &mut probes[0],
        &["SCRIPT", "KILL"],
    );
    step(&mut t, "after the kill", &mut a, &["PING"]);

    // A function: the other BUSY text, SCRIPT KILL refused, FUNCTION KILL.
    a.send(&[b"FCALL", b"spin", b"0"]);
    let (busy, mut waiting) = probe(&mut probes, all_answer);
    t.push(("busy function".into(), busy));
    let r = &mut probes[0];
    step(&mut t, "script kill of a function", r, &["SCRIPT", "KILL"]);
    step(&mut t, "function stats", r, &["FUNCTION", "STATS"]);
    step(&mut t, "function kill", r, &["FUNCTION", "KILL"]);
    t.push(("killed function".into(), a.read_reply()));
    for i in waiting.drain(..) {
        assert_eq!(probes[i].read_reply(), b"+PONG\r\n", "a waiting probe");
    }

    // A script that wrote cannot be killed; SHUTDOWN NOSAVE stops the server. Its push wakes
    // clients blocked on the list (on both of Ferrite's threads): they are not served while
    // the script runs, and the threads keep answering meanwhile.
    let mut blocked: Vec<Conn> = (0..6).map(|_| Conn::connect(port)).collect();
    for b in &mut blocked {
        b.send(&[b"BLPOP", b"q", b"0"]);
    }
    std::thread::sleep(Duration::from_millis(100));
    a.send(&[
        b"EVAL",
        b"redis.call('set', 'w', '1') redis.call('rpush', 'q', 'x') while true do end",
        b"0",
    ]);
    let (busy, _) = probe(&mut probes, all_answer);
    t.push(("busy writer".into(), busy));
    // Blocked clients that leave meanwhile do not stop their thread from answering.
    blocked.truncate(3);
    std::thread::sleep(Duration::from_millis(100));
    let r = &mut probes[0];
    step(&mut t, "after blocked clients left", r, &["PING"]);
    step(&mut t, "script kill of a writer", r, &["SCRIPT", "KILL"]);
    r.send(&[b"SHUTDOWN", b"NOSAVE"]);
    t.push(("shutdown nosave".into(), closed(r)));
    t.push(("the script's client".into(), closed(&mut a)));
    for b in &mut blocked {
        t.push(("a blocked client".into(), closed(b)));
    }
    t
}

/// Sends PING on every probe once the script must be busy: the BUSY reply (every answer must
/// be the same), with a probe that answered moved to `probes[0]`, and the indexes of those
/// that did not answer within two seconds (Ferrite's script thread).
fn probe(probes: &mut [Conn], all_answer: bool) -> (Vec<u8>, Vec<usize>) {
    std::thread::sleep(Duration::from_millis(300));
    for p in probes.iter_mut() {
        p.send(&[b"PING"]);
    }
    // One deadline for all: a busy machine may be slow to answer, but the script's thread
    // does not answer at all until the script ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut answers: Vec<Option<Vec<u8>>> = vec![None; probes.len()];
    while std::time::Instant::now() < deadline && answers.iter().any(Option::is_none) {
        for (p, answer) in probes.iter_mut().zip(answers.iter_mut()) {
            if answer.is_some() {
                continue;
            }
            p.stream
                .set_read_timeout(Some(Duration::from_millis(10)))
                .unwrap();
            if let Ok(reply) = p.try_read_reply() {
                *answer = Some(reply);
            }
        }
    }
    for p in probes.iter_mut() {
        p.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
    let mut waiting: Vec<usize> = (0..probes.len())
        .filter(|&i| answers[i].is_none())
        .collect();
    assert!(
        !all_answer || waiting.is_empty(),
        "redis-server answers every probe"
    );
    let replies: Vec<&Vec<u8>> = answers.iter().flatten().collect();
    let busy = (*replies
        .first()
        .expect("no probe was answered while the script was busy"))
    .clone();
    for r in &replies {
        assert_eq!(escape(r), escape(&busy), "probes answer alike");
    }
    // A probe that answered goes first: the steps use probes[0].
    let first = (0..probes.len()).find(|i| !waiting.contains(i)).unwrap();
    probes.swap(0, first);
    for w in waiting.iter_mut() {
        if *w == 0 {
            *w = first;
        }
    }
    (busy, waiting)
}

/// What a connection reads once the server is gone: end of file.
fn closed(c: &mut Conn) -> Vec<u8> {
    match c.try_read_reply() {
        Ok(reply) => reply,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => b"<closed>".to_vec(),
        Err(e) => format!("<{:?}>", e.kind()).into_bytes(),
    }
}

/// FUNCTION STATS with its running script's `duration_ms` as 0 (it differs run to run).
fn without_duration(reply: &[u8]) -> Vec<u8> {
    let tag = b"duration_ms\r\n:";
    let Some(at) = reply.windows(tag.len()).position(|w| w == tag) else {
        return reply.to_vec();
    };
    let start = at + tag.len();
    let end = start + reply[start..].iter().position(|&b| b == b'\r').unwrap_or(0);
    [&reply[..start], b"0", &reply[end..]].concat()
}
