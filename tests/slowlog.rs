//! SLOWLOG entries against redis-server 7.0.15: the same steps on both servers, then every
//! entry compared with what cannot match normalized (ids become their order, times and
//! durations are checked for sense, addresses become the name of the test connection that
//! owns them). Both I/O backends; Ferrite runs two reactor threads, so entries come from both.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Conn, Ferrite, RedisServer};

per_backend!(
    entries_match_redis,
    blocked_commands_match_redis,
    slow_script_is_logged_with_its_duration,
    entries_from_every_thread_share_one_sequence,
    parameters_from_the_command_line,
    pipelines_time_each_command,
);

/// A parsed RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Int(i64),
    Bulk(Vec<u8>),
    Arr(Vec<Val>),
    Other(Vec<u8>),
}

fn parse(buf: &[u8], pos: &mut usize) -> Val {
    let end = *pos + buf[*pos..].windows(2).position(|w| w == b"\r\n").unwrap();
    let line = &buf[*pos + 1..end];
    let kind = buf[*pos];
    *pos = end + 2;
    let num = || std::str::from_utf8(line).unwrap().parse::<i64>().unwrap();
    match kind {
        b':' => Val::Int(num()),
        b'$' => {
            let n = num() as usize;
            let v = buf[*pos..*pos + n].to_vec();
            *pos += n + 2;
            Val::Bulk(v)
        }
        b'*' => Val::Arr((0..num()).map(|_| parse(buf, pos)).collect()),
        _ => Val::Other(line.to_vec()),
    }
}

/// One entry, normalized: (arguments, who ran it, client name).
type Entry = (Vec<String>, String, String);

/// SLOWLOG GET -1 on `c`, oldest first, normalized: checks that ids are consecutive and
/// times are now-ish, and names each address after the connection in `who` it belongs to.
fn entries(c: &mut Conn, who: &[(&str, SocketAddr)]) -> Vec<Entry> {
    let reply = c.cmd_str(&["SLOWLOG", "GET", "-1"]);
    let Val::Arr(list) = parse(&reply, &mut 0) else {
        panic!("not an array: {}", common::escape(&reply));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut out = Vec::new();
    let mut last_id = None;
    for e in list.into_iter().rev() {
        let Val::Arr(f) = e else {
            panic!("entry {e:?}")
        };
        let [
            Val::Int(id),
            Val::Int(time),
            Val::Int(us),
            Val::Arr(args),
            Val::Bulk(addr),
            Val::Bulk(name),
        ] = &f[..]
        else {
            panic!("entry fields {f:?}");
        };
        if let Some(last) = last_id {
            assert_eq!(*id, last + 1, "ids increase one by one");
        }
        last_id = Some(*id);
        assert!(
            (now - 60..=now + 1).contains(time),
            "time {time} vs now {now}"
        );
        assert!((0..10_000_000).contains(us), "duration {us}");
        let args = args
            .iter()
            .map(|a| match a {
                Val::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("argument {other:?}"),
            })
            .collect();
        let addr = String::from_utf8_lossy(addr).into_owned();
        let label = who
            .iter()
            .find(|(_, a)| a.to_string() == addr)
            .map_or(addr, |(n, _)| (*n).to_string());
        out.push((args, label, String::from_utf8_lossy(name).into_owned()));
    }
    out
}

fn local(c: &Conn) -> SocketAddr {
    c.stream.local_addr().unwrap()
}

/// Commands sent one at a time; replies must be the same on both servers too, but for
/// HELLO's, which carry the client id: only their type.
fn run(c: &mut Conn, cmds: &[&[&str]]) -> Vec<Vec<u8>> {
    cmds.iter()
        .map(|cmd| {
            let mut reply = c.cmd_str(cmd);
            if cmd[0] == "HELLO" {
                reply.truncate(1);
            }
            reply
        })
        .collect()
}

fn basic_scenario(port: u16) -> (Vec<Vec<u8>>, Vec<Entry>) {
    let mut a = Conn::connect(port);
    let mut b = Conn::connect(port);
    let who = [("a", local(&a)), ("b", local(&b))];
    let long = "v".repeat(200);
    let many: Vec<String> = (0..40).map(|i| format!("e{i}")).collect();
    let mut rpush: Vec<&str> = vec!["RPUSH", "list"];
    rpush.extend(many.iter().map(String::as_str));
    let mut replies = run(
        &mut a,
        &[
            &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
            &["SLOWLOG", "RESET"],
            &["SET", "k", "v"],
            &["GET", "k"],
            &["GET"],
            &["SET", "long", &long],
            &rpush,
            &["CLIENT", "SETNAME", "alpha"],
            &["AUTH", "x"],
            &["AUTH", "default", "x"],
            &["AUTH", "a", "b", "c"],
            &["HELLO", "2", "AUTH", "default", "pw", "SETNAME", "beta"],
            &[
                "HELLO", "2", "auth", "default", "pw", "AUTH", "nobody", "pw",
            ],
            &["HELLO", "2", "SETNAME", "bad name", "AUTH", "default", "pw"],
            &["CONFIG", "SET", "requirepass", ""],
            &[
                "CONFIG",
                "SET",
                "nosuch",
                "1",
                "REQUIREPASS",
                "x",
                "masterauth",
                "y",
            ],
            &["MULTI"],
            &["SET", "t", "1"],
            &["INCR", "t"],
            &["AUTH", "x"],
            &["EXEC"],
            &[
                "EVAL",
                "redis.call('set', KEYS[1], 'x') return redis.call('get', KEYS[1])",
                "1",
                "s",
            ],
        ],
    );
    replies.extend(run(&mut b, &[&["PING"], &["CLIENT", "SETNAME", "bee"]]));
    replies.extend(run(
        &mut a,
        &[&["CLIENT", "SETNAME", ""], &["SLOWLOG", "LEN"]],
    ));
    let got = entries(&mut a, &who);
    a.cmd_str(&["CONFIG", "SET", "slowlog-log-slower-than", "10000"]);
    (replies, got)
}

fn entries_match_redis(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let want = basic_scenario(redis.port);
    let got = basic_scenario(f.port);
    for (i, (g, w)) in got.0.iter().zip(&want.0).enumerate() {
        assert_eq!(
            common::escape(g),
            common::escape(w),
            "reply {i}: ferrite (left) vs redis-server (right)"
        );
    }
    assert_eq!(got.1, want.1, "ferrite (left) vs redis-server (right)");
    // The checks the comparison rests on.
    let e = &got.1;
    assert!(
        e.iter()
            .any(|(args, _, _)| args[..] == ["AUTH", "(redacted)"])
    );
    let rpush = e.iter().find(|(args, _, _)| args[0] == "RPUSH").unwrap();
    assert_eq!(rpush.0.len(), 32);
    assert_eq!(rpush.0[31], "... (11 more arguments)");
    let set_long = e.iter().find(|(args, _, _)| args[1] == "long").unwrap();
    assert!(set_long.0[2].ends_with("... (72 more bytes)"));
    assert!(
        e.iter()
            .any(|(args, who, _)| args[0] == "set" && who == "?:0")
    );
}

fn blocked_scenario(port: u16) -> (Vec<Vec<u8>>, Vec<Entry>) {
    let mut a = Conn::connect(port);
    let mut b = Conn::connect(port);
    let who = [("a", local(&a)), ("b", local(&b))];
    let mut replies = run(
        &mut a,
        &[
            &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
            &["SLOWLOG", "RESET"],
        ],
    );
    let id = String::from_utf8(b.cmd_str(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim_end().to_string();
    replies.push(b.cmd_str(&["CLIENT", "SETNAME", "blocked"]));
    // A timeout is not logged (Redis 7.0).
    replies.push(b.cmd_str(&["BLPOP", "none", "0.05"]));
    // Served by a push: logged after the push, with its arguments.
    b.send(&[b"BLPOP", b"l1", b"5"]);
    std::thread::sleep(Duration::from_millis(200));
    replies.push(a.cmd_str(&["RPUSH", "l1", "x"]));
    replies.push(b.read_reply());
    // Ended by CLIENT UNBLOCK: logged by it, before it, with no arguments.
    for how in ["ERROR", "TIMEOUT"] {
        b.send(&[b"BLPOP", b"l2", b"5"]);
        std::thread::sleep(Duration::from_millis(200));
        replies.push(a.cmd_str(&["CLIENT", "UNBLOCK", &id, how]));
        replies.push(b.read_reply());
    }
    let got = entries(&mut a, &who);
    a.cmd_str(&["CONFIG", "SET", "slowlog-log-slower-than", "10000"]);
    // LATENCY HISTOGRAM counts the same calls: served and unblocked, not timed out.
    let hist = a.cmd_str(&["LATENCY", "HISTOGRAM", "blpop"]);
    let hist = String::from_utf8_lossy(&hist).into_owned();
    let calls = hist.split("\r\n").skip_while(|l| *l != "calls").nth(1);
    replies.push(calls.unwrap_or("none").as_bytes().to_vec());
    (replies, got)
}

fn blocked_commands_match_redis(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut want = blocked_scenario(redis.port);
    let mut got = blocked_scenario(f.port);
    // CLIENT UNBLOCK's own entry names the client id, which differs between the servers.
    for e in want.1.iter_mut().chain(got.1.iter_mut()) {
        if e.0.len() == 4 && e.0[1] == "UNBLOCK" {
            e.0[2] = "<id>".into();
        }
    }
    assert_eq!(
        got.0, want.0,
        "replies: ferrite (left) vs redis-server (right)"
    );
    assert_eq!(
        got.0.last().unwrap(),
        b":3",
        "LATENCY HISTOGRAM blpop calls"
    );
    assert_eq!(got.1, want.1, "ferrite (left) vs redis-server (right)");
    assert!(
        got.1
            .iter()
            .any(|(args, who, name)| args.is_empty() && who == "b" && name == "blocked")
    );
}

/// With the default threshold, a script that loops for a while is logged with about the time
/// it took, and the quick commands around it are not.
fn slow_script_is_logged_with_its_duration(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut c = f.conn();
    assert_eq!(c.cmd_str(&["PING"]), b"+PONG\r\n");
    let script = "local i = 0 while i < 3000000 do i = i + 1 end return i";
    let started = std::time::Instant::now();
    let mut took = Duration::ZERO;
    // A fast machine may finish the loop under 10 ms: lengthen it until it does not.
    for scale in 1..=8 {
        let body = script.replace("3000000", &(3_000_000 * scale).to_string());
        let t = std::time::Instant::now();
        c.cmd_str(&["EVAL", &body, "0"]);
        took = t.elapsed();
        if took >= Duration::from_millis(20) {
            break;
        }
    }
    assert!(took >= Duration::from_millis(20), "the loop stays too fast");
    c.cmd_str(&["GET", "k"]);
    let reply = c.cmd_str(&["SLOWLOG", "GET"]);
    let Val::Arr(list) = parse(&reply, &mut 0) else {
        panic!("{}", common::escape(&reply));
    };
    let Val::Arr(newest) = &list[0] else { panic!() };
    let (Val::Int(us), Val::Arr(args)) = (&newest[2], &newest[3]) else {
        panic!("{newest:?}")
    };
    assert_eq!(args[0], Val::Bulk(b"EVAL".to_vec()));
    assert!(*us >= 10_000, "logged {us} µs");
    assert!(
        *us as u128 <= took.as_micros() + 1000,
        "logged {us} µs, the client saw {took:?}"
    );
    assert!(
        list.iter().all(|e| {
            let Val::Arr(e) = e else { return false };
            e[3] != Val::Arr(vec![Val::Bulk(b"GET".to_vec()), Val::Bulk(b"k".to_vec())])
        }),
        "a quick GET is not logged"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Clients on both reactor threads log at once: one sequence of ids, nothing lost.
fn entries_from_every_thread_share_one_sequence(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut admin = f.conn();
    admin.cmd_str(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    admin.cmd_str(&["CONFIG", "SET", "slowlog-max-len", "10000"]);
    admin.cmd_str(&["SLOWLOG", "RESET"]);
    const CONNS: usize = 8;
    const EACH: usize = 200;
    let port = f.port;
    let workers: Vec<_> = (0..CONNS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                for j in 0..EACH {
                    c.cmd_str(&["SET", &format!("k{i}"), &j.to_string()]);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let reply = admin.cmd_str(&["SLOWLOG", "GET", "-1"]);
    let Val::Arr(list) = parse(&reply, &mut 0) else {
        panic!()
    };
    // The RESET, the SETs, not yet this GET.
    assert_eq!(list.len(), 1 + CONNS * EACH);
    let ids: Vec<i64> = list
        .iter()
        .map(|e| match e {
            Val::Arr(f) => match f[0] {
                Val::Int(id) => id,
                _ => panic!(),
            },
            _ => panic!(),
        })
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1] + 1),
        "newest first, no gaps"
    );
    admin.cmd_str(&["CONFIG", "SET", "slowlog-max-len", "2"]);
    assert_eq!(admin.cmd_str(&["SLOWLOG", "LEN"]), b":2\r\n");
}

/// The parameters are start-up settings like the others.
fn parameters_from_the_command_line(backend: &str) {
    let f = Ferrite::start(
        backend,
        &["--slowlog-log-slower-than", "0", "--slowlog-max-len", "3"],
    );
    let mut c = f.conn();
    let got = c.cmd_str(&["CONFIG", "GET", "slowlog-max-len"]);
    assert_eq!(got, b"*2\r\n$15\r\nslowlog-max-len\r\n$1\r\n3\r\n");
    for _ in 0..5 {
        c.cmd_str(&["PING"]);
    }
    assert_eq!(c.cmd_str(&["SLOWLOG", "LEN"]), b":3\r\n");
}

fn pipeline_scenario(port: u16) -> Vec<Entry> {
    let mut c = Conn::connect(port);
    let who = [("c", local(&c))];
    c.cmd_str(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    c.cmd_str(&["SLOWLOG", "RESET"]);
    // One write: the log turns on in the middle of a batch (the CONFIG SET logs itself), and
    // runs of the same command are timed one command at a time.
    let mut batch = Vec::new();
    let cmds: Vec<Vec<&[u8]>> = vec![
        vec![b"PING"],
        vec![b"SET", b"k", b"1"],
        vec![b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"],
        vec![b"PING"],
        vec![b"PING"],
        vec![b"INCR", b"k"],
        vec![b"INCR", b"k"],
        vec![b"CONFIG", b"SET", b"slowlog-log-slower-than", b"-1"],
        vec![b"PING"],
        vec![b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"],
        vec![b"GET", b"k"],
    ];
    for cmd in &cmds {
        batch.extend_from_slice(&common::encode_command(cmd));
    }
    c.send_raw(&batch);
    for _ in &cmds {
        c.read_reply();
    }
    let got = entries(&mut c, &who);
    c.cmd_str(&["CONFIG", "SET", "slowlog-log-slower-than", "10000"]);
    got
}

fn pipelines_time_each_command(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let want = pipeline_scenario(redis.port);
    let got = pipeline_scenario(f.port);
    assert_eq!(got, want, "ferrite (left) vs redis-server (right)");
    assert_eq!(got.len(), 7, "{got:?}");
}
