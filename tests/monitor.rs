//! MONITOR end to end, on both I/O backends with two reactor threads. The same command
//! sequences run against a reference redis-server 7.0.15 and Ferrite, with a monitor connected,
//! and the monitor streams (time stamps and client ports replaced by placeholders) must be the
//! same bytes: plain, binary and quoted arguments, SELECTed databases, MULTI/EXEC, EVAL and its
//! `[db lua]` commands, redacted passwords, commands that are never shown (unknown, wrong
//! arity, administrative), blocked commands, and what a monitoring connection itself may do.
//! Then, on Ferrite alone: lines from every thread, and a monitor that reads nothing is
//! dropped instead of growing without bound.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Ferrite, RedisServer, escape};

per_backend!(
    stream_matches_redis,
    monitor_connection_matches_redis,
    lines_from_every_thread,
    slow_monitor_is_dropped,
    idle_monitor_is_not_timed_out,
    fed_monitor_is_not_idle,
);

fn start_ferrite(backend: &str) -> Ferrite {
    Ferrite::start(backend, &["--threads", "2"])
}

/// Runs `run` against a fresh redis-server and then a fresh Ferrite and requires the same
/// text from both (skipped when redis-server is missing outside CI).
fn same_on_both(backend: &str, run: impl Fn(u16) -> String) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ferrite = start_ferrite(backend);
    let (want, got) = (run(redis.port), run(ferrite.port));
    assert_eq!(got, want);
}

/// The local port of a connection: how monitor lines name it.
fn local_port(c: &Conn) -> u16 {
    c.stream.local_addr().expect("local address").port()
}

/// A monitor line (without its CRLF) with its time stamp checked and replaced by `T`, and the
/// peer addresses of `names` replaced by their names. Lines are ASCII: arguments are escaped.
fn normalize(line: &[u8], names: &[(u16, &str)]) -> String {
    let text = String::from_utf8(line.to_vec()).expect("an ASCII line");
    let text = text.strip_suffix("\r\n").unwrap_or(&text);
    let rest = text
        .strip_prefix('+')
        .unwrap_or_else(|| panic!("not a status line: {text}"));
    let (stamp, rest) = rest
        .split_once(' ')
        .unwrap_or_else(|| panic!("no time stamp: {text}"));
    let (secs, usecs) = stamp
        .split_once('.')
        .unwrap_or_else(|| panic!("bad time stamp: {text}"));
    assert!(
        !secs.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && usecs.len() == 6
            && usecs.bytes().all(|b| b.is_ascii_digit()),
        "bad time stamp: {text}"
    );
    let mut rest = rest.to_string();
    for (port, name) in names {
        rest = rest.replace(&format!(" 127.0.0.1:{port}]"), &format!(" {name}]"));
    }
    format!("+T {rest}")
}

/// Replies and monitor lines read together: each monitor line normalized, the rest escaped.
fn mask(bytes: &[u8], names: &[(u16, &str)]) -> String {
    let mut parts = Vec::new();
    for seg in bytes.split_inclusive(|&b| b == b'\n') {
        if seg.len() > 1 && seg[0] == b'+' && seg[1].is_ascii_digit() {
            parts.push(normalize(seg, names));
        } else {
            parts.push(escape(seg));
        }
    }
    parts.join("|")
}

/// Reads monitor lines up to and including the one that ends with `last`.
fn lines_until(m: &mut Conn, last: &str, names: &[(u16, &str)]) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = normalize(&m.read_reply(), names);
        let done = line.ends_with(last);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn cmd(c: &mut Conn, args: &[&[u8]]) -> String {
    escape(&c.cmd(args))
}

fn stream_matches_redis(backend: &str) {
    same_on_both(backend, |port| {
        let mut m = Conn::connect(port);
        let mut a = Conn::connect(port);
        let mut b = Conn::connect(port);
        let names = [(local_port(&a), "A"), (local_port(&b), "B")];
        let mut out = vec![cmd(&mut m, &[b"MONITOR"])];
        let steps: &[(bool, &[&[u8]])] = &[
            (true, &[b"SET", b"foo", b"bar"]),
            (true, &[b"GET", b"foo"]),
            // Quotes, backslashes, control bytes, DEL, high bytes, UTF-8, an empty argument.
            (
                true,
                &[
                    b"SET",
                    b"a\"\\\x01\n\r\t\x07\x08 ~\x7f\xff",
                    "\u{20ac}".as_bytes(),
                ],
            ),
            (true, &[b"ECHO", b""]),
            (true, &[b"SELECT", b"3"]),
            (true, &[b"SET", b"k", b"v", b"EX", b"100"]),
            (true, &[b"MULTI"]),
            (true, &[b"SET", b"n", b"1"]),
            (true, &[b"INCR", b"n"]),
            (true, &[b"EXEC"]),
            (true, &[b"EVAL", b"return redis.call('set','x','y')", b"0"]),
            (
                true,
                &[
                    b"EVAL",
                    b"redis.call('select', 5); return redis.call('get','x')",
                    b"0",
                ],
            ),
            (true, &[b"EVAL", b"return redis.pcall('nosuch')", b"0"]),
            (true, &[b"EVALSHA", b"0123", b"0"]),
            // FCALL is shown before its function's commands, as EVAL; FUNCTION LOAD as sent.
            (
                true,
                &[
                    b"FUNCTION",
                    b"LOAD",
                    b"#!lua name=mlib\nredis.register_function('fset', function(k, a) \
                      return redis.call('set', k[1], a[1]) end)",
                ],
            ),
            (true, &[b"FCALL", b"fset", b"1", b"fk", b"v"]),
            (true, &[b"FCALL_RO", b"fset", b"1", b"fk", b"v"]),
            (true, &[b"FCALL", b"nosuch", b"0"]),
            (true, &[b"FUNCTION", b"DELETE", b"mlib"]),
            (true, &[b"AUTH", b"secret"]),
            (true, &[b"AUTH", b"user", b"secret"]),
            (true, &[b"AUTH", b"a", b"b", b"c"]),
            (true, &[b"HELLO", b"3", b"AUTH", b"user", b"secret"]),
            (
                true,
                &[b"hello", b"2", b"auth", b"u1", b"p1", b"auth", b"u2", b"p2"],
            ),
            (
                true,
                &[b"HELLO", b"2", b"SETNAME", b"x", b"AUTH", b"u", b"p"],
            ),
            (true, &[b"HELLO", b"foo", b"AUTH", b"u", b"p"]),
            (true, &[b"HELLO", b"3", b"AUTH", b"u"]),
            (true, &[b"NOSUCHCMD", b"a"]),
            (true, &[b"GET"]),
            (true, &[b"CONFIG", b"GET", b"maxmemory"]),
            (false, &[b"CLIENT", b"LIST"]),
            (true, &[b"CLIENT", b"SETNAME", b"conn-a"]),
            (true, &[b"SELECT", b"0"]),
        ];
        for (compare, args) in steps {
            let reply = cmd(&mut a, args);
            if *compare {
                out.push(reply);
            }
        }
        // Another connection (on the other thread, for most ports).
        out.push(cmd(&mut b, &[b"PING"]));
        b.send_raw(b"ECHO \"hello\\tworld\"\r\n");
        out.push(escape(&b.read_reply()));
        for args in [
            &[&b"MULTI"[..]][..],
            &[b"GET"],
            &[b"EXEC"],
            &[b"WATCH", b"w"],
            &[b"UNWATCH"],
            &[b"MULTI"],
            &[b"DISCARD"],
            &[b"BLPOP", b"nolist", b"0.1"],
        ] {
            out.push(cmd(&mut b, args));
        }
        // A command that blocks is shown when it blocks, not again when it is served.
        a.send(&[b"BLPOP", b"list", b"0"]);
        out.extend(lines_until(&mut m, "\"BLPOP\" \"list\" \"0\"", &names));
        out.push(cmd(&mut b, &[b"RPUSH", b"list", b"x"]));
        out.push(escape(&a.read_reply()));
        // Inside EXEC a blocking command answers at once; SELECT shows its new database.
        for args in [
            &[&b"MULTI"[..]][..],
            &[b"BLPOP", b"nolist", b"0"],
            &[b"PING"],
            &[b"SELECT", b"2"],
            &[b"EXEC"],
            &[b"SELECT", b"0"],
        ] {
            out.push(cmd(&mut a, args));
        }
        out.push(cmd(&mut b, &[b"QUIT"]));
        out.push(cmd(&mut a, &[b"ECHO", b"end"]));
        out.extend(lines_until(&mut m, "\"ECHO\" \"end\"", &names));
        out.join("\n")
    });
}

/// What a monitoring connection may still do, and how it leaves monitoring.
fn monitor_connection_matches_redis(backend: &str) {
    same_on_both(backend, |port| {
        let mut m = Conn::connect(port);
        let mut c = Conn::connect(port);
        let names = [(local_port(&m), "M"), (local_port(&c), "C")];
        let mut out = vec![cmd(&mut m, &[b"MONITOR"])];
        // The monitor's own command: its reply, then its line.
        for args in [
            &[&b"PING"[..]][..],
            &[b"GET", b"k"],
            &[b"SET", b"k", b"v"],
            &[b"EVAL", b"return 1", b"0"],
            &[b"EVAL_RO", b"return 1", b"0"],
            // A script known not to write may run; its commands' lines precede its reply.
            &[
                b"EVAL",
                b"#!lua flags=no-writes\nreturn redis.call('echo', 'in')",
                b"0",
            ],
            &[b"EVAL_RO", b"#!lua flags=no-writes\nreturn 1", b"0"],
            &[b"EVAL", b"#!lua flags=bad\nreturn 1", b"0"],
            &[b"EVAL", b"#!lua\nreturn 1", b"0"],
            &[b"EVALSHA", b"0123", b"0"],
            &[b"SELECT", b"1"],
            &[b"MULTI"],
            &[b"PING"],
            &[b"GET", b"k"],
            &[b"EXEC"],
            // Inside EXEC, a monitor's lines come inside EXEC's reply, after each reply.
            &[b"MULTI"],
            &[b"PING"],
            &[b"ECHO", b"a"],
            &[b"EXEC"],
            // Replies a monitor turned off take its own lines with them, but CLIENT REPLY SKIP
            // skips the next command's only.
            &[b"CLIENT", b"REPLY", b"SKIP"],
            &[b"PING"],
            &[b"CLIENT", b"REPLY", b"OFF"],
            &[b"PING"],
            &[b"CLIENT", b"REPLY", b"ON"],
        ] {
            m.send(args);
            let (bytes, _) = m.read_until_idle(Duration::from_millis(200), Duration::from_secs(5));
            out.push(mask(&bytes, &names));
        }
        // Nor do the lines of other clients' commands run meanwhile.
        m.send(&[b"CLIENT", b"REPLY", b"OFF"]);
        std::thread::sleep(Duration::from_millis(200));
        out.push(cmd(&mut c, &[b"SET", b"other", b"1"]));
        m.send(&[b"CLIENT", b"REPLY", b"ON"]);
        let (bytes, _) = m.read_until_idle(Duration::from_millis(200), Duration::from_secs(5));
        out.push(mask(&bytes, &names));
        // MONITOR again answers nothing.
        m.send(&[b"MONITOR"]);
        out.push(cmd(&mut m, &[b"ECHO", b"x"]));
        out.push(normalize(&m.read_reply(), &names));
        // CLIENT LIST shows the monitor with flag O (and is itself not shown).
        let list = String::from_utf8_lossy(&c.cmd(&[b"CLIENT", b"LIST"])).into_owned();
        let me = format!("addr=127.0.0.1:{} ", names[0].0);
        let line = list
            .lines()
            .find(|l| l.contains(&me))
            .expect("monitor listed");
        out.push(
            line.split(' ')
                .find(|f| f.starts_with("flags="))
                .unwrap()
                .into(),
        );
        // Inside a transaction MONITOR is refused when EXEC runs it.
        for args in [&[&b"MULTI"[..]][..], &[b"MONITOR"], &[b"EXEC"]] {
            out.push(cmd(&mut c, args));
        }
        out.push(cmd(&mut c, &[b"SET", b"k", b"1"]));
        out.extend(lines_until(&mut m, "\"SET\" \"k\" \"1\"", &names));
        // RESET ends monitoring: the keyspace is reachable again, no more lines come.
        out.push(cmd(&mut m, &[b"RESET"]));
        out.push(cmd(&mut c, &[b"SET", b"k", b"2"]));
        out.push(cmd(&mut m, &[b"GET", b"k"]));
        // A RESP3 monitor still gets status lines.
        m.cmd(&[b"HELLO", b"3"]);
        out.push(cmd(&mut m, &[b"MONITOR"]));
        out.push(cmd(&mut c, &[b"DEL", b"k"]));
        out.push(normalize(&m.read_reply(), &names));
        out.join("\n")
    });
}

/// Commands from connections on every reactor thread all reach the monitor, each
/// connection's in its order.
fn lines_from_every_thread(backend: &str) {
    let server = start_ferrite(backend);
    let mut m = server.conn();
    assert_eq!(cmd(&mut m, &[b"MONITOR"]), "+OK\\r\\n");
    let (clients, each) = (6, 40);
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let port = server.port;
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                for j in 0..each {
                    c.cmd(&[b"SET", format!("c{i}").as_bytes(), j.to_string().as_bytes()]);
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let mut next = vec![0; clients];
    for _ in 0..clients * each {
        let line = normalize(&m.read_reply(), &[]);
        let fields: Vec<&str> = line.split(' ').collect();
        // +T [0 127.0.0.1:port] "SET" "c<i>" "<j>"
        let i: usize = fields[4].trim_matches('"')[1..].parse().unwrap();
        let j: usize = fields[5].trim_matches('"').parse().unwrap();
        assert_eq!(j, next[i], "out of order: {line}");
        next[i] += 1;
    }
    assert!(next.iter().all(|&n| n == each));
}

/// A monitor that reads nothing is dropped at the output-buffer limit, not buffered without
/// bound.
fn slow_monitor_is_dropped(backend: &str) {
    let server = start_ferrite(backend);
    let mut m = server.conn();
    assert_eq!(cmd(&mut m, &[b"MONITOR"]), "+OK\\r\\n");
    let mut c = server.conn();
    let value = vec![b'x'; 1 << 20];
    let listed =
        |c: &mut Conn| String::from_utf8_lossy(&c.cmd(&[b"CLIENT", b"LIST"])).contains("flags=O");
    // Past the 32 MiB hard limit plus whatever the socket buffers absorb (see the Pub/Sub test).
    for sent in 1..=192 {
        c.cmd(&[b"SET", b"big", &value]);
        if sent >= 64 && !listed(&mut c) {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while listed(&mut c) {
        assert!(
            Instant::now() < deadline,
            "the slow monitor is still connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, closed) = m.read_until_idle(Duration::from_millis(500), Duration::from_secs(30));
    assert!(closed, "the slow monitor was not disconnected");
}

/// `timeout` closes idle clients, but not monitors (Redis exempts them as replicas).
fn idle_monitor_is_not_timed_out(backend: &str) {
    let server = start_ferrite(backend);
    let mut m = server.conn();
    let mut idle = server.conn();
    assert_eq!(cmd(&mut m, &[b"MONITOR"]), "+OK\\r\\n");
    server.conn().cmd(&[b"CONFIG", b"SET", b"timeout", b"1"]);
    assert!(
        idle.wait_closed(Duration::from_secs(10)),
        "idle client kept"
    );
    server.conn().cmd(&[b"PING"]);
    let line = normalize(&m.read_reply(), &[]);
    assert!(line.ends_with("\"PING\""), "{line}");
}

/// Output written to a monitor counts as an interaction, as in Redis: CLIENT LIST shows a
/// monitor being fed as not idle, though it sends nothing.
fn fed_monitor_is_not_idle(backend: &str) {
    let server = start_ferrite(backend);
    let mut m = server.conn();
    assert_eq!(cmd(&mut m, &[b"MONITOR"]), "+OK\\r\\n");
    let me = format!("addr=127.0.0.1:{} ", local_port(&m));
    let mut c = server.conn();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        c.cmd(&[b"PING"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let list = String::from_utf8_lossy(&c.cmd(&[b"CLIENT", b"LIST"])).into_owned();
    let line = list
        .lines()
        .find(|l| l.contains(&me))
        .expect("monitor listed");
    let idle: u64 = line
        .split(' ')
        .find_map(|f| f.strip_prefix("idle="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(idle <= 1, "{line}");
}
