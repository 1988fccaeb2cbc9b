//! Client-side caching across connections, differentially: the same steps run against a real
//! redis-server and Ferrite (on each I/O backend), with the tracking client, its redirect
//! target and the writers on separate connections (Ferrite's on different reactor threads);
//! everything each connection receives must be identical, byte for byte. Single-connection
//! behaviour (options, errors, own invalidations) is in tests/diff/tracking.txt.

mod common;

use std::time::Duration;

use common::{Conn, Ferrite, RedisServer};

per_backend!(
    other_clients_writes_invalidate,
    redirect_to_a_resp2_subscriber,
    broken_redirect,
    bcast_hears_every_writer,
    expiry_and_eviction_invalidate,
    no_stale_value_under_concurrent_writes,
    table_stays_within_its_limit,
);

/// Reads what arrived on `c` until it has been quiet for a while.
fn drain(c: &mut Conn) -> Vec<u8> {
    c.read_until_idle(Duration::from_millis(250), Duration::from_secs(5))
        .0
}

/// Sends one command and appends everything that arrives until quiet.
fn step(c: &mut Conn, out: &mut Vec<u8>, cmd: &str) {
    let args: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
    c.send(&args);
    out.extend_from_slice(&drain(c));
}

/// The id a connection has (ids differ between servers: the caller replaces them).
fn client_id(c: &mut Conn) -> String {
    let r = c.cmd_str(&["CLIENT", "ID"]);
    String::from_utf8_lossy(&r[1..r.len() - 2]).into_owned()
}

/// A RESP3 tracking client sees other clients' writes to the keys it read, once per read.
fn other_clients_writes_invalidate(backend: &str) {
    same_on_both(backend, |port| {
        let (mut t, mut w) = (Conn::connect(port), Conn::connect(port));
        let mut out = Vec::new();
        step(&mut t, &mut out, "HELLO 3");
        out.clear();
        for cmd in ["CLIENT TRACKING ON", "GET a", "MGET b c", "HGETALL h"] {
            step(&mut t, &mut out, cmd);
        }
        for cmd in [
            "SET a 1",
            "SET a 2",
            "DEL b c",
            "HSET h f v",
            "SET untracked 1",
        ] {
            step(&mut w, &mut out, cmd);
            out.extend_from_slice(&drain(&mut t));
        }
        // Read again: tracked again.
        step(&mut t, &mut out, "GET a");
        step(&mut w, &mut out, "INCR a");
        out.extend_from_slice(&drain(&mut t));
        step(&mut w, &mut out, "FLUSHDB");
        out.extend_from_slice(&drain(&mut t));
        out
    });
}

/// A RESP2 tracking client redirects to a connection subscribed to `__redis__:invalidate`.
fn redirect_to_a_resp2_subscriber(backend: &str) {
    same_on_both(backend, |port| {
        let (mut t, mut sub, mut w) = (
            Conn::connect(port),
            Conn::connect(port),
            Conn::connect(port),
        );
        let mut out = Vec::new();
        let id = client_id(&mut sub);
        step(&mut sub, &mut out, "SUBSCRIBE __redis__:invalidate");
        step(
            &mut t,
            &mut out,
            &format!("CLIENT TRACKING ON REDIRECT {id}"),
        );
        out.extend_from_slice(&t.cmd_str(&["CLIENT", "GETREDIR"]).replace_id(&id));
        out.extend_from_slice(&t.cmd_str(&["CLIENT", "TRACKINGINFO"]).replace_id(&id));
        for cmd in ["GET k", "GET j"] {
            step(&mut t, &mut out, cmd);
        }
        step(&mut w, &mut out, "MSET k 1 j 2");
        out.extend_from_slice(&drain(&mut sub));
        step(&mut w, &mut out, "FLUSHALL");
        out.extend_from_slice(&drain(&mut sub));
        out
    });
}

/// Redirecting to a client that went away: a RESP3 tracking client is told once per message
/// it could not deliver, and CLIENT TRACKINGINFO / CLIENT LIST show it.
fn broken_redirect(backend: &str) {
    same_on_both(backend, |port| {
        let (mut t, mut w) = (Conn::connect(port), Conn::connect(port));
        let mut out = Vec::new();
        step(&mut t, &mut out, "HELLO 3");
        out.clear();
        // The target must exist when tracking starts.
        let mut target = Conn::connect(port);
        let id = client_id(&mut target);
        step(
            &mut t,
            &mut out,
            &format!("CLIENT TRACKING ON REDIRECT {id}"),
        );
        step(&mut t, &mut out, "GET k");
        drop(target);
        std::thread::sleep(Duration::from_millis(200));
        step(&mut w, &mut out, "SET k 1");
        out.extend_from_slice(&drain(&mut t).replace_id(&id));
        out.extend_from_slice(&t.cmd_str(&["CLIENT", "TRACKINGINFO"]).replace_id(&id));
        let me = t.cmd_str(&["CLIENT", "INFO"]);
        let me = String::from_utf8_lossy(&me).into_owned();
        let flags = me
            .split(' ')
            .find(|f| f.starts_with("flags="))
            .unwrap_or("")
            .to_owned();
        out.extend_from_slice(flags.as_bytes());
        out
    });
}

/// BCAST: every writer's changes under the prefixes, from any connection.
fn bcast_hears_every_writer(backend: &str) {
    same_on_both(backend, |port| {
        let (mut t, mut w) = (Conn::connect(port), Conn::connect(port));
        let mut out = Vec::new();
        step(&mut t, &mut out, "HELLO 3");
        out.clear();
        step(
            &mut t,
            &mut out,
            "CLIENT TRACKING ON BCAST PREFIX user: PREFIX session:",
        );
        for cmd in [
            "SET user:1 a",
            "SET other b",
            "DEL session:9",
            "SET session:9 x",
            "HSET user:2 f v",
        ] {
            step(&mut w, &mut out, cmd);
            out.extend_from_slice(&drain(&mut t));
        }
        out
    });
}

/// Keys that expire (found by a read or by active expiry) or are evicted are invalidated.
fn expiry_and_eviction_invalidate(backend: &str) {
    same_on_both(backend, |port| {
        let (mut t, mut w) = (Conn::connect(port), Conn::connect(port));
        let mut out = Vec::new();
        step(&mut t, &mut out, "HELLO 3");
        out.clear();
        step(&mut w, &mut out, "SET e1 v PX 100");
        step(&mut t, &mut out, "CLIENT TRACKING ON");
        step(&mut t, &mut out, "GET e1");
        // Active expiry (nobody reads it): the invalidation still comes.
        std::thread::sleep(Duration::from_millis(1500));
        out.extend_from_slice(&drain(&mut t));
        out
    });
}

/// A client that caches what it reads and drops what it is told to never keeps a value older
/// than the last write, while a writer on another reactor thread changes the key as fast as it
/// can (no invalidation lost between a read and the table).
fn no_stale_value_under_concurrent_writes(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let port = f.port;
    let mut t = Conn::connect(port);
    t.cmd_str(&["HELLO", "3"]);
    assert_eq!(t.cmd_str(&["CLIENT", "TRACKING", "ON"]), b"+OK\r\n");
    let writes = 3000;
    let writer = std::thread::spawn(move || {
        let mut w = Conn::connect(port);
        for _ in 0..writes {
            w.cmd_str(&["INCR", "k"]);
        }
    });
    let mut cache: Option<Vec<u8>> = None;
    let mut invalidations = 0;
    // Reads the reply to the last command, applying the pushes that come before it.
    let mut reply = |t: &mut Conn, cache: &mut Option<Vec<u8>>| -> Vec<u8> {
        loop {
            let r = t.read_reply();
            if r.starts_with(b">") {
                *cache = None;
                invalidations += 1;
                continue;
            }
            return r;
        }
    };
    while !writer.is_finished() {
        if cache.is_none() {
            t.send(&[b"GET", b"k"]);
            let v = reply(&mut t, &mut cache);
            cache = Some(v);
        } else {
            t.send(&[b"PING"]);
            reply(&mut t, &mut cache);
        }
    }
    writer.join().expect("writer");
    std::thread::sleep(Duration::from_millis(300));
    t.send(&[b"PING"]);
    reply(&mut t, &mut cache);
    let last = Conn::connect(port).cmd_str(&["GET", "k"]);
    if let Some(v) = &cache {
        assert_eq!(
            String::from_utf8_lossy(v),
            String::from_utf8_lossy(&last),
            "a cached value outlived a write ({invalidations} invalidations seen)"
        );
    }
    assert!(invalidations > 0);
}

/// `tracking-table-max-keys` bounds the table: keys read past it push older ones out, and the
/// clients that tracked those are told to drop them (so nothing a client reads makes the server
/// grow without bound).
fn table_stays_within_its_limit(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut t = Conn::connect(f.port);
    t.cmd_str(&["HELLO", "3"]);
    assert_eq!(
        t.cmd_str(&["CONFIG", "SET", "tracking-table-max-keys", "3"]),
        b"+OK\r\n"
    );
    t.cmd_str(&["CLIENT", "TRACKING", "ON"]);
    let mut pushes = 0;
    for i in 0..10 {
        t.send(&[b"GET", format!("key:{i}").as_bytes()]);
        loop {
            let r = t.read_reply();
            if r.starts_with(b">") {
                pushes += 1;
            } else {
                break;
            }
        }
    }
    let rest = drain(&mut t);
    pushes += String::from_utf8_lossy(&rest).matches("invalidate").count();
    assert_eq!(pushes, 7, "one invalidation per key pushed out");
    let mut c = Conn::connect(f.port);
    let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "stats"])).into_owned();
    assert!(info.contains("tracking_total_keys:3\r\n"), "{info}");
}

/// Replaces the integer replies `:<id>` by `:ID` (ids differ between the servers).
trait ReplaceId {
    fn replace_id(&self, id: &str) -> Vec<u8>;
}

impl ReplaceId for Vec<u8> {
    fn replace_id(&self, id: &str) -> Vec<u8> {
        String::from_utf8_lossy(self)
            .replace(&format!(":{id}\r\n"), ":ID\r\n")
            .into_bytes()
    }
}

/// Runs `run` against a fresh redis-server and then a fresh Ferrite and requires the same
/// bytes from both (skipped when redis-server is missing outside CI).
fn same_on_both(backend: &str, run: impl Fn(u16) -> Vec<u8>) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ferrite = Ferrite::start(backend, &["--threads", "2"]);
    let (want, got) = (run(redis.port), run(ferrite.port));
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}
