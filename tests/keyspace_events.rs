//! Keyspace notifications, differentially: the same script runs against a real redis-server
//! and Ferrite (on each I/O backend) with `notify-keyspace-events` set, while a second
//! connection on each server is PSUBSCRIBEd to `__key*__:*`; every message each subscriber
//! receives must be identical, byte for byte, and so must the replies. Expiry is covered both
//! lazily (a command finds the key expired) and actively (nothing touches it).

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Ferrite, RedisServer, split_args};

per_backend!(
    every_event_with_kea,
    narrower_classes,
    active_expiry,
    eviction,
    set_on_the_command_line,
    resp3_connection_gets_its_own_events,
    config_values,
    key_misses,
);

/// One command per line; `SLEEP ms` pauses; a `~` prefix leaves a random reply uncompared. A key that expires is touched by the very next
/// command after its sleep, so lazy and active expiry give the same sequence.
const SCRIPT: &str = r#"
SET s1 hello
SET s1 world EX 100
SET s1 x PX 100000 GET
SET s1 y NX
SET s2 y XX
SET s2 y NX KEEPTTL
SETNX s2 z
SETNX s3 z
SETEX s3 100 v
PSETEX s3 100000 v
GETSET s3 w
GETDEL s3
GETDEL s3
GETEX s1 EX 100
GETEX s1 PERSIST
GETEX s1 PERSIST
GETEX s1 PXAT 1
GETEX nosuch EX 10
MSET m1 1 m2 2
MSETNX m1 1 m3 3
MSETNX m3 3 m4 4
INCR counter
INCRBY counter 5
DECR counter
DECRBY counter 2
INCRBYFLOAT counter 1.5
INCR s2
APPEND s2 more
APPEND s4 new
SETRANGE s4 1 XY
SETRANGE s5 0 ""
SETRANGE s4 0 ""
SET e1 v PX 20
SLEEP 120
GET e1
SET e2 5 PX 20
SLEEP 120
INCR e2
SET e3 v PX 20
SLEEP 120
SET e3 v2
DEL s1 nosuch s2
UNLINK m1 m2
SET r1 a
RENAME r1 r2
RENAME r2 r2
RENAMENX r2 m3
SET r3 b
RENAME r2 r3
RENAME nosuch r3
MOVE r3 1
MOVE r3 1
SELECT 1
SET r3 other
MOVE r3 0
COPY r3 r4
SELECT 0
COPY r3 r4 DB 1
COPY r3 r4 DB 1 REPLACE
COPY r3 c1
COPY r3 c1
COPY r3 c1 REPLACE
EXPIRE c1 100
PEXPIRE c1 100000 NX
PEXPIRE c1 200000 GT
EXPIRE c1 50 GT
EXPIREAT c1 99999999999
PERSIST c1
PERSIST c1
EXPIRE c1 -1
EXPIRE nosuch 10
SET c2 v
PEXPIREAT c2 1
DUMPRESTORE r3 rs1 0
DUMPRESTORE r3 rs1 0
DUMPRESTORE r3 rs1 0 REPLACE
DUMPRESTORE r3 rs1 1 REPLACE ABSTTL
DUMPRESTORE r3 rs2 100000
SET e4 v PX 20
SLEEP 120
RENAME e4 e5
SET e6 v PX 20
SLEEP 120
SET e7 v
RENAME e7 e6
LPUSH l1 a b c
RPUSH l1 d
LPUSHX l2 a
RPUSHX l1 e
LPUSH s1 x
LINSERT l1 BEFORE a z
LINSERT l1 BEFORE nosuch z
LINSERT l2 BEFORE a z
LSET l1 0 y
LSET l1 100 y
LREM l1 0 nosuch
LREM l1 1 y
LTRIM l1 0 100
LTRIM l1 1 -1
LTRIM nosuch 0 1
LPOP l1
RPOP l1 2
LPOP l1 0
RPUSH l3 1 2 3
LMOVE l3 l4 LEFT RIGHT
RPOPLPUSH l3 l4
LMOVE l3 l4 RIGHT LEFT
LMOVE l4 l4 LEFT RIGHT
LMOVE nosuch l4 LEFT RIGHT
LMPOP 2 nosuch l4 LEFT COUNT 2
BLPOP l4 0
BLMPOP 0 1 l1 RIGHT COUNT 10
RPUSH l5 1
BRPOPLPUSH l5 l6 0
BLMOVE l6 l7 LEFT LEFT 0
LTRIM l7 1 0
RPUSH l8 a b
SORT l8 ALPHA STORE l9
SORT nosuch STORE l9
SORT nosuch STORE l9
RPUSH e8 a
PEXPIRE e8 20
SLEEP 120
LPUSH e8 b
HSET h1 a 1 b 2
HSET h1 a 1
HMSET h1 c 3
HSETNX h1 a 9
HSETNX h1 z 9
HSETNX h2 z 9
HINCRBY h1 a 5
HINCRBY h1 b notanumber
HINCRBYFLOAT h1 n 1.5
HDEL h1 nosuch
HDEL h1 a b
HDEL h2 z
HSET l1 a 1
SADD st1 a b c
SADD st1 a
SREM st1 nosuch
SREM st1 a
SADD st2 x
SMOVE st1 st2 b
SMOVE st1 st2 c
SMOVE st2 st2 x
SMOVE nosuch st2 x
SADD st3 1 2 3
~SPOP st3
SPOP st3 0
~SPOP st3 1
~SPOP st3 5
SADD st4 1 2 3 4
SPOP st4 10
SADD st5 a b
SADD st6 b c
SINTERSTORE st7 st5 st6
SUNIONSTORE st7 st5 st6
SDIFFSTORE st7 st5 st6
SINTERSTORE st7 st5 nosuch
SINTERSTORE st7 st5 nosuch
SDIFFSTORE st8 st5 st5
ZADD z1 1 a 2 b 3 c
ZADD z1 1 a
ZADD z1 CH 5 a
ZADD z1 INCR 1 a
ZADD z1 XX 1 nosuch
ZADD z2 XX 1 a
ZADD z1 NX GT 1 a
ZINCRBY z1 2 b
ZINCRBY z1 nan b
ZREM z1 nosuch
ZREM z1 a
ZADD z3 1 a 2 b 3 c 4 d 5 e 6 f
ZREMRANGEBYRANK z3 0 0
ZREMRANGEBYSCORE z3 2 2
ZREMRANGEBYLEX z3 [d [d
ZREMRANGEBYSCORE z3 100 200
ZPOPMIN z3
ZPOPMAX z3 0
ZPOPMAX z3 5
ZPOPMIN nosuch
ZADD z4 1 a 2 b
ZMPOP 2 nosuch z4 MIN COUNT 1
BZPOPMAX z4 0
BZMPOP 0 1 z1 MAX COUNT 100
ZADD z5 1 a 2 b
ZADD z6 2 b 3 c
ZUNIONSTORE z7 2 z5 z6
ZINTERSTORE z7 2 z5 z6
ZDIFFSTORE z7 2 z5 z6
ZINTERSTORE z7 2 z5 nosuch
ZINTERSTORE z7 2 z5 nosuch
ZRANGESTORE z8 z5 0 -1
ZRANGESTORE z8 z5 10 20
GEOADD g1 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
GEOADD g1 13.361389 38.115556 Palermo
GEOADD g1 XX CH 13.361389 38.115557 Palermo
GEOSEARCHSTORE g2 g1 FROMLONLAT 15 37 BYRADIUS 200 km ASC
GEORADIUS g1 15 37 200 km STORE g3
GEOSEARCHSTORE g2 g1 FROMLONLAT 0 0 BYRADIUS 1 km ASC
GEOSEARCHSTORE g2 g1 FROMLONLAT 0 0 BYRADIUS 1 km ASC
SORT z5 BY nosort STORE z9
SETBIT b1 7 1
SETBIT b1 7 1
SETBIT b1 100 0
SETBIT z5 1 1
BITFIELD b2 GET u8 0
BITFIELD b2 SET u8 0 255 GET u8 0
BITFIELD b2 OVERFLOW FAIL INCRBY u8 0 10
BITFIELD b2 OVERFLOW WRAP INCRBY u8 0 10
BITOP OR b3 b1 b2
BITOP AND b3 nosuch1 nosuch2
BITOP AND b3 nosuch1 nosuch2
PFADD p1 a b c
PFADD p1 a
PFADD p2
PFADD p2
PFMERGE p3 p1 p2
PFCOUNT p1 p3
XADD x1 1-1 f v
XADD x1 2-1 f v
XADD x1 MAXLEN 1 3-1 f v
XADD x1 MAXLEN 5 4-1 f v
XADD x1 1-1 f v
XADD x2 NOMKSTREAM 1-1 f v
XTRIM x1 MAXLEN 1
XTRIM x1 MAXLEN 1
XDEL x1 4-1
XDEL x1 4-1
XSETID x1 10-1
XSETID x1 1-1
XGROUP CREATE x1 g1 $
XGROUP CREATE x1 g1 $
XGROUP CREATE x3 g1 $ MKSTREAM
XGROUP CREATE x4 g1 $
XGROUP SETID x1 g1 0
XGROUP SETID x1 nosuch 0
XGROUP CREATECONSUMER x1 g1 c1
XGROUP CREATECONSUMER x1 g1 c1
XGROUP DELCONSUMER x1 g1 c1
XGROUP DELCONSUMER x1 g1 c1
XGROUP DESTROY x1 g1
XGROUP DESTROY x1 g1
MULTI
SET tx 1
INCR tx
LPUSH tx a
DEL tx
EXEC
FLUSHALL
"#;

fn start_ferrite(backend: &str) -> Ferrite {
    Ferrite::start(backend, &["--threads", "2"])
}

/// Both halves of one server's run: the replies of the writer, the subscriber's messages.
struct Run {
    replies: Vec<u8>,
    messages: Vec<u8>,
}

/// PSUBSCRIBEs a new connection to every keyspace and keyevent channel.
fn subscriber(port: u16) -> Conn {
    let mut sub = Conn::connect(port);
    sub.cmd_str(&["PSUBSCRIBE", "__key*__:*"]);
    sub
}

/// Runs `script` with `classes` set, then reads the subscriber up to a marker published last.
fn run(port: u16, classes: &str, script: &str) -> Run {
    let mut sub = subscriber(port);
    let mut c = Conn::connect(port);
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", classes]),
        b"+OK\r\n"
    );
    let mut replies = Vec::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(ms) = line.strip_prefix("SLEEP ") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            continue;
        }
        let (line, compared) = match line.strip_prefix('~') {
            Some(rest) => (rest, false),
            None => (line, true),
        };
        let mut args = split_args(line).unwrap();
        if args[0] == b"DUMPRESTORE" {
            // `DUMPRESTORE src dst ttl [options]`: RESTORE dst from DUMP src.
            let dump = c.cmd(&[b"DUMP", &args[1]]);
            let payload = payload_of(&dump);
            args = [
                &[
                    b"RESTORE".to_vec(),
                    args[2].clone(),
                    args[3].clone(),
                    payload,
                ][..],
                &args[4..],
            ]
            .concat();
        }
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        replies.extend_from_slice(format!("{line} -> ").as_bytes());
        let reply = c.cmd(&args);
        if compared {
            replies.extend_from_slice(&reply);
        }
        replies.push(b'\n');
    }
    c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", ""]);
    Run {
        replies,
        messages: until_marker(&mut sub, &mut c),
    }
}

/// The bytes of a bulk reply.
fn payload_of(reply: &[u8]) -> Vec<u8> {
    let start = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
    reply[start..reply.len() - 2].to_vec()
}

/// Everything `sub` received before a marker message the writer publishes now.
fn until_marker(sub: &mut Conn, c: &mut Conn) -> Vec<u8> {
    const MARKER: &[u8] = b"__keyevent@0__:zz-end-of-script";
    c.cmd(&[b"PUBLISH", MARKER, b"."]);
    let mut messages = Vec::new();
    loop {
        let reply = sub.read_reply();
        if reply.windows(MARKER.len()).any(|w| w == MARKER) {
            return messages;
        }
        messages.extend_from_slice(&reply);
    }
}

/// The messages as lines of `channel message`, for a readable diff.
fn render(messages: &[u8]) -> String {
    let text = String::from_utf8_lossy(messages);
    let parts: Vec<&str> = text.split("\r\n").collect();
    let mut out = String::new();
    // pmessage arrays: *4, $8 pmessage, $n pattern, $n channel, $n message.
    let mut i = 0;
    while i + 8 < parts.len() {
        out.push_str(&format!("{} {}\n", parts[i + 6], parts[i + 8]));
        i += 9;
    }
    out
}

fn compare(backend: &str, classes: &str, script: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ferrite = start_ferrite(backend);
    let want = run(redis.port, classes, script);
    let got = run(ferrite.port, classes, script);
    let (want_r, got_r) = (
        String::from_utf8_lossy(&want.replies),
        String::from_utf8_lossy(&got.replies),
    );
    for (w, g) in want_r.lines().zip(got_r.lines()) {
        assert_eq!(g, w, "replies differ ({classes})");
    }
    if got.messages != want.messages {
        panic!(
            "events differ with {classes}\n--- redis\n{}--- ferrite\n{}",
            render(&want.messages),
            render(&got.messages)
        );
    }
    if classes == "KEA" {
        let text = render(&want.messages);
        for event in EXPECTED {
            let channel = format!("__keyevent@0__:{event} ");
            assert!(text.contains(&channel), "the script raised no {event}");
        }
    }
}

fn every_event_with_kea(backend: &str) {
    compare(backend, "KEA", SCRIPT);
}

/// The events the script must raise (a guard against a script that silently stops early).
const EXPECTED: &[&str] = &[
    "set",
    "expire",
    "del",
    "persist",
    "incrby",
    "incrbyfloat",
    "append",
    "setrange",
    "expired",
    "rename_from",
    "rename_to",
    "move_from",
    "move_to",
    "copy_to",
    "restore",
    "lpush",
    "rpush",
    "lpop",
    "rpop",
    "linsert",
    "lset",
    "lrem",
    "ltrim",
    "sortstore",
    "hset",
    "hincrby",
    "hincrbyfloat",
    "hdel",
    "sadd",
    "srem",
    "spop",
    "sinterstore",
    "sunionstore",
    "sdiffstore",
    "zadd",
    "zincr",
    "zrem",
    "zremrangebyrank",
    "zremrangebyscore",
    "zremrangebylex",
    "zpopmin",
    "zpopmax",
    "zunionstore",
    "zinterstore",
    "zdiffstore",
    "zrangestore",
    "geosearchstore",
    "georadiusstore",
    "setbit",
    "pfadd",
];

fn narrower_classes(backend: &str) {
    for classes in ["K$", "Eg", "Kx", "El", "AKEn", "En", "n", "x"] {
        compare(backend, classes, SCRIPT);
    }
}

/// A key nothing touches is reaped by the active expiry cycle, which publishes `expired`.
fn active_expiry(backend: &str) {
    same_on_both(backend, |port| {
        let mut sub = subscriber(port);
        let mut c = Conn::connect(port);
        c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
        c.cmd_str(&["SET", "volatile", "v", "PX", "30"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = Vec::new();
        // set, expire (keyspace and keyevent each), then the two expired messages.
        for _ in 0..6 {
            assert!(Instant::now() < deadline, "no active expiry on {port}");
            got.extend(sub.read_reply());
        }
        got
    });
}

/// Keys evicted for maxmemory are announced as `evicted` (which keys go is the policy's random
/// choice, so this is checked on Ferrite alone): one event per key that is gone.
fn eviction(backend: &str) {
    let ferrite = start_ferrite(backend);
    let mut sub = Conn::connect(ferrite.port);
    sub.cmd_str(&["SUBSCRIBE", "__keyevent@0__:evicted"]);
    let mut c = Conn::connect(ferrite.port);
    c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", "Ee"]);
    c.cmd_str(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    c.cmd_str(&["CONFIG", "SET", "maxmemory", "1mb"]);
    let value = "x".repeat(1000);
    let written = 3000;
    for i in 0..written {
        c.cmd_str(&["SET", &format!("key:{i}"), &value]);
    }
    let left = c.cmd_str(&["DBSIZE"]);
    let left: usize = String::from_utf8_lossy(&left[1..left.len() - 2])
        .parse()
        .unwrap();
    assert!(left < written, "nothing was evicted");
    let mut evicted = std::collections::HashSet::new();
    while evicted.len() < written - left {
        let msg = sub.read_reply();
        let text = String::from_utf8_lossy(&msg).into_owned();
        let key = text.split("\r\n").nth(6).unwrap().to_owned();
        assert!(key.starts_with("key:"), "{text}");
        evicted.insert(key);
    }
    for key in &evicted {
        assert_eq!(
            c.cmd_str(&["EXISTS", key]),
            b":0\r\n",
            "{key} was announced"
        );
    }
}

/// `--notify-keyspace-events` (like any parameter, also a ferrite.toml key) applies from the
/// start, expired events included (the store records them only once told to).
fn set_on_the_command_line(backend: &str) {
    let ferrite = Ferrite::start(backend, &["--notify-keyspace-events", "Ex"]);
    let mut c = Conn::connect(ferrite.port);
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "notify-keyspace-events"]),
        b"*2\r\n$22\r\nnotify-keyspace-events\r\n$2\r\nxE\r\n"
    );
    let mut sub = subscriber(ferrite.port);
    c.cmd_str(&["SET", "k", "v", "PX", "10"]);
    std::thread::sleep(Duration::from_millis(50));
    c.cmd_str(&["GET", "k"]);
    let msg = sub.read_reply();
    assert!(
        msg.ends_with(b"$22\r\n__keyevent@0__:expired\r\n$1\r\nk\r\n"),
        "{}",
        String::from_utf8_lossy(&msg)
    );
}

/// A RESP3 connection may subscribe and write: its own events arrive as pushes, in the same
/// place relative to the replies as Redis puts them.
fn resp3_connection_gets_its_own_events(backend: &str) {
    same_on_both(backend, |port| {
        let mut c = Conn::connect(port);
        c.cmd_str(&["HELLO", "3"]);
        c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
        let mut out = c.cmd_str(&["PSUBSCRIBE", "__keyevent@*"]);
        for cmd in [
            &["SET", "k", "v"][..],
            &["SET", "k", "w", "GET"][..],
            &["INCR", "n"][..],
            &["DEL", "k", "n"][..],
            &["LPUSH", "l", "a", "b"][..],
            &["LPOP", "l", "2"][..],
            &["EXPIRE", "nosuch", "10"][..],
            &["SET", "k", "v"][..],
            &["EXPIRE", "k", "10"][..],
            &["EXPIRE", "k", "-1"][..],
            &["HSET", "h", "f", "v"][..],
            &["ZADD", "z", "1", "m"][..],
            &["SADD", "s", "m"][..],
            &["XADD", "x", "1-1", "f", "v"][..],
        ] {
            let a: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
            c.send(&a);
            let (bytes, _) = c.read_until_idle(Duration::from_millis(300), Duration::from_secs(5));
            out.extend_from_slice(&bytes);
        }
        out
    });
}

/// Class `m`: every read that finds no key raises `keymiss` (on both channels with `K` and
/// `E`), in the order the command looked its keys up; writes and OBJECT raise none.
fn key_misses(backend: &str) {
    same_on_both(backend, |port| {
        let mut c = Conn::connect(port);
        let mut sub = Conn::connect(port);
        c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", "KEm"]);
        let mut out = sub.cmd_str(&["PSUBSCRIBE", "__key*__:*"]);
        c.cmd_str(&["SET", "present", "v"]);
        for cmd in [
            "GET nokey",
            "GET present",
            "MGET a present b",
            "EXISTS x present y",
            "TYPE t",
            "TTL t",
            "PTTL t",
            "STRLEN s",
            "GETRANGE g 0 1",
            "GETBIT b 0",
            "BITCOUNT b",
            "BITPOS b 1",
            "BITFIELD_RO bf GET u8 0",
            "HGET h f",
            "HGETALL h",
            "LRANGE l 0 -1",
            "LLEN l",
            "SMEMBERS s",
            "SINTER s1 s2",
            "SUNIONSTORE dst u1 u2",
            "ZSCORE z m",
            "ZUNIONSTORE dst 2 z1 z2",
            "XRANGE x - +",
            "SET k v GET",
            "GETDEL gd",
            "GETEX ge",
            "DUMP d",
            "OBJECT ENCODING o",
            "SORT so",
            "SORT present BY nosuch_*",
            "PFCOUNT p",
            "COPY src dst2",
            "LCS a b",
            "INCR i",
            "HSET h2 f v",
            "RENAME nope x",
            "DEL gone",
        ] {
            c.cmd_str(&cmd.split(' ').collect::<Vec<_>>());
        }
        c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", ""]);
        let (bytes, _) = sub.read_until_idle(Duration::from_millis(300), Duration::from_secs(5));
        out.extend_from_slice(&bytes);
        out
    });
}

/// CONFIG SET/GET of the parameter answer as Redis's, errors included.
fn config_values(backend: &str) {
    same_on_both(backend, |port| {
        let mut c = Conn::connect(port);
        let mut out = Vec::new();
        for v in ["KEA", "AKEmn", "Ex", "$x", "mnKgl", "q", "KEA ", ""] {
            out.extend_from_slice(&c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", v]));
            out.extend_from_slice(&c.cmd_str(&["CONFIG", "GET", "notify-keyspace-events"]));
        }
        out.extend_from_slice(&c.cmd_str(&["CONFIG", "GET", "notify-*"]));
        out
    });
}

/// Runs `run` against a fresh redis-server and then a fresh Ferrite and requires the same
/// bytes from both (skipped when redis-server is missing outside CI).
fn same_on_both(backend: &str, run: impl Fn(u16) -> Vec<u8>) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ferrite = start_ferrite(backend);
    let (want, got) = (run(redis.port), run(ferrite.port));
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}
