//! RDB persistence end to end: dump.rdb files moving between redis-server and Ferrite in both
//! directions, SAVE / BGSAVE / SHUTDOWN / SIGTERM keeping (or not keeping) data across a
//! restart, BGSAVE's point-in-time snapshot under concurrent writers, corrupt files refused at
//! start-up, and a full disk turning writes into MISCONF errors until a save succeeds.

mod common;

use common::{Conn, Ferrite, RedisServer, TempDir, Tmpfs, free_port, sort_reply, split_aggregate};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

per_backend!(
    redis_dump_loads_in_ferrite,
    ferrite_dump_loads_in_redis,
    save_survives_kill_9,
    bgsave_is_point_in_time,
    shutdown_save_nosave_and_sigterm,
    full_disk_denies_writes,
    save_points_trigger_bgsave,
    flushall_saves_the_empty_dataset,
    snapshots_include_data_on_disk,
    bgsave_reports_progress,
);

/// Ferrite on `dir` (its data directory) with two threads and the small test store.
fn start_on(backend: &str, dir: &Path, extra: &[&str]) -> Ferrite {
    Ferrite::start_in(backend, dir, extra)
        .unwrap_or_else(|e| panic!("ferrite on {} did not start: {e}", dir.display()))
}

fn ok(c: &mut Conn, args: &[&str]) {
    let r = c.cmd_str(args);
    assert!(
        !r.starts_with(b"-"),
        "{args:?} failed: {}",
        common::escape(&r)
    );
}

/// The bulk strings of an array reply.
fn bulks(reply: &[u8]) -> Vec<Vec<u8>> {
    let (_, elems) = split_aggregate(reply).unwrap_or_default();
    elems
        .into_iter()
        .map(|e| {
            let nl = e.iter().position(|&b| b == b'\n').unwrap_or(0);
            e[nl + 1..e.len().saturating_sub(2)].to_vec()
        })
        .collect()
}

fn int_reply(reply: &[u8]) -> i64 {
    std::str::from_utf8(&reply[1..reply.len() - 2])
        .unwrap()
        .parse()
        .unwrap()
}

/// Everything a client can see of dbs 0..16: per (db, key), its type, its value read the
/// type's own way (unordered collections sorted) and its PTTL.
type Snapshot = BTreeMap<(u8, Vec<u8>), (Vec<u8>, Vec<u8>, i64)>;

fn snapshot(c: &mut Conn) -> Snapshot {
    let mut out = BTreeMap::new();
    for db in 0..16u8 {
        ok(c, &["SELECT", &db.to_string()]);
        for key in bulks(&c.cmd_str(&["KEYS", "*"])) {
            let k: &[u8] = &key;
            let t = c.cmd(&[b"TYPE", k]);
            let value = match &t[..] {
                b"+string\r\n" => c.cmd(&[b"GET", k]),
                b"+list\r\n" => c.cmd(&[b"LRANGE", k, b"0", b"-1"]),
                b"+set\r\n" => sort_reply(&c.cmd(&[b"SMEMBERS", k])),
                b"+zset\r\n" => c.cmd(&[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]),
                b"+hash\r\n" => {
                    let mut pairs: Vec<Vec<u8>> = bulks(&c.cmd(&[b"HGETALL", k]))
                        .chunks(2)
                        .map(|p| [p[0].clone(), b"=".to_vec(), p[1].clone()].concat())
                        .collect();
                    pairs.sort();
                    pairs.join(&b'\n')
                }
                // Entries, then groups, consumers and pending entries with their times (which
                // a snapshot keeps exactly).
                b"+stream\r\n" => [
                    c.cmd(&[b"XRANGE", k, b"-", b"+"]),
                    c.cmd(&[b"XINFO", b"STREAM", k, b"FULL"]),
                ]
                .concat(),
                other => panic!("unexpected type {}", common::escape(other)),
            };
            let pttl = int_reply(&c.cmd(&[b"PTTL", k]));
            out.insert((db, key), (t, value, pttl));
        }
    }
    ok(c, &["SELECT", "0"]);
    out
}

fn assert_same(a: &Snapshot, b: &Snapshot, what: &str) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: different keys"
    );
    for (k, (ta, va, pa)) in a {
        let (tb, vb, pb) = &b[k];
        let key = String::from_utf8_lossy(&k.1);
        assert_eq!(ta, tb, "{what}: type of db{} {key}", k.0);
        assert!(va == vb, "{what}: value of db{} {key} differs", k.0);
        if *pa < 0 || *pb < 0 {
            assert_eq!(pa, pb, "{what}: PTTL of db{} {key}", k.0);
        } else {
            assert!(
                (pa - pb).abs() < 10_000,
                "{what}: PTTL {pa} vs {pb} of {key}"
            );
        }
    }
}

/// A deterministic pseudo-random byte string (xorshift), incompressible enough for LZF.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A dataset of every type Ferrite stores, in several encodings, with TTLs, in dbs 0, 3, 15.
/// Function libraries, which RDB files carry beside the keys: a short one and one long enough
/// for its code to be LZF-compressed.
const LIBRARIES: [&str; 2] = [
    "#!lua name=short\nredis.register_function('short', function(keys) return redis.call('get', keys[1]) end)",
    "#!lua name=long\nlocal pad = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\n\
     redis.register_function{function_name='long', callback=function() return #pad end, \
     flags={'no-writes'}, description='pads'}",
];

/// The libraries a server has, with their code, in a fixed order.
fn libraries(c: &mut Conn) -> Vec<u8> {
    sort_reply(&c.cmd_str(&["FUNCTION", "LIST", "WITHCODE"]))
}

fn fill(c: &mut Conn) {
    for code in LIBRARIES {
        ok(c, &["FUNCTION", "LOAD", code]);
    }
    ok(c, &["SELECT", "0"]);
    ok(c, &["SET", "str", "hello"]);
    ok(c, &["SET", "int", "12345"]);
    ok(c, &["SET", "neg", "-2147483649"]);
    ok(c, &["SET", "empty", ""]);
    ok(c, &["SET", "compressible", &"abc".repeat(5000)]);
    let big = noise(7, 100_000);
    c.cmd(&[b"SET", b"big", &big]);
    ok(c, &["SET", "ttl-str", "v", "PX", "500000"]);
    ok(c, &["RPUSH", "list", "a", "b", "1", "-5000", "c"]);
    let long: Vec<String> = (0..3000).map(|i| format!("element-{i}")).collect();
    let mut args = vec!["RPUSH", "biglist"];
    args.extend(long.iter().map(String::as_str));
    ok(c, &args);
    ok(c, &["HSET", "hash", "f1", "v1", "f2", "2", "f3", ""]);
    let mut args = vec!["HSET".to_string(), "bighash".to_string()];
    for i in 0..300 {
        args.push(format!("field{i}"));
        args.push(format!("value{i}"));
    }
    ok(c, &args.iter().map(String::as_str).collect::<Vec<_>>());
    ok(
        c,
        &["SADD", "intset", "1", "2", "3", "-70000", "4294967296"],
    );
    ok(c, &["SADD", "strset", "a", "b", "c"]);
    let mut args = vec!["SADD".to_string(), "bigintset".to_string()];
    args.extend((0..700).map(|i| (i * 3).to_string()));
    ok(c, &args.iter().map(String::as_str).collect::<Vec<_>>());
    ok(
        c,
        &["ZADD", "zset", "1.5", "a", "-2", "b", "3", "c", "inf", "d"],
    );
    let mut args = vec!["ZADD".to_string(), "bigzset".to_string()];
    for i in 0..200 {
        args.push(format!("{}", f64::from(i) / 7.0));
        args.push(format!("member{i}"));
    }
    ok(c, &args.iter().map(String::as_str).collect::<Vec<_>>());
    ok(c, &["PFADD", "hll", "a", "b", "c", "d"]);
    fill_streams(c);
    ok(c, &["EXPIRE", "hash", "100000"]);
    ok(c, &["SELECT", "3"]);
    ok(c, &["SET", "db3", "three", "EX", "200000"]);
    ok(c, &["LPUSH", "db3list", "x", "y"]);
    ok(c, &["PEXPIRE", "db3list", "300000"]);
    ok(c, &["SELECT", "15"]);
    ok(c, &["SET", "db15", "fifteen"]);
    ok(c, &["ZADD", "db15z", "1", "one"]);
    ok(c, &["SELECT", "0"]);
}

/// Streams: several nodes (by count and by size), deleted entries, a group with pending
/// entries of two consumers and an idle consumer, a group with nothing read, and a stream
/// whose entries were all deleted.
fn fill_streams(c: &mut Conn) {
    for i in 1..=250 {
        let id = format!("{i}-{}", i % 3);
        let v = if i % 50 == 0 {
            "x".repeat(3000)
        } else {
            format!("v{i}")
        };
        if i % 7 == 0 {
            ok(
                c,
                &["XADD", "stream", &id, "other", &v, "n", &i.to_string()],
            );
        } else {
            ok(c, &["XADD", "stream", &id, "f", &v]);
        }
    }
    ok(c, &["XDEL", "stream", "3-0", "4-1", "5-2", "120-0"]);
    ok(c, &["XGROUP", "CREATE", "stream", "workers", "0"]);
    ok(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "alice",
            "COUNT",
            "3",
            "STREAMS",
            "stream",
            ">",
        ],
    );
    ok(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "bob",
            "COUNT",
            "2",
            "STREAMS",
            "stream",
            ">",
        ],
    );
    ok(c, &["XACK", "stream", "workers", "2-2"]);
    ok(
        c,
        &["XGROUP", "CREATECONSUMER", "stream", "workers", "carol"],
    );
    ok(c, &["XGROUP", "CREATE", "stream", "late", "$"]);
    ok(c, &["XADD", "emptied", "7-7", "a", "b"]);
    ok(c, &["XDEL", "emptied", "7-7"]);
    ok(c, &["XGROUP", "CREATE", "made", "g", "$", "MKSTREAM"]);
}

fn copy_dump(from: &Path, to: &Path) {
    std::fs::copy(from.join("dump.rdb"), to.join("dump.rdb"))
        .unwrap_or_else(|e| panic!("copy dump.rdb from {}: {e}", from.display()));
}

fn redis_dump_loads_in_ferrite(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut r = redis.conn();
    fill(&mut r);
    assert_eq!(r.cmd_str(&["SAVE"]), b"+OK\r\n");
    let dir = TempDir::new("ferrite-rdb-in");
    copy_dump(redis.dir(), dir.path());
    let f = start_on(backend, dir.path(), &["--save", ""]);
    assert!(
        f.log().contains("DB loaded from disk"),
        "no load line:\n{}",
        f.log()
    );
    let mut c = f.conn();
    assert_same(&snapshot(&mut r), &snapshot(&mut c), "redis -> ferrite");
    assert_eq!(libraries(&mut c), libraries(&mut r), "redis -> ferrite");
    assert_eq!(c.cmd_str(&["FCALL", "long", "0"]), b":66\r\n");
    // INFO persistence: the same fields in the same order (the AOF lines are the AOF's).
    let names = |c: &mut Conn| -> Vec<String> {
        let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).into_owned();
        info.lines()
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_owned()))
            .filter(|n| !n.starts_with("aof_") && !n.starts_with("module_"))
            .collect()
    };
    assert_eq!(names(&mut r), names(&mut c));
    let loaded = |c: &mut Conn| {
        let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).into_owned();
        info.lines()
            .find(|l| l.starts_with("rdb_last_load_keys_loaded:"))
            .map(str::to_owned)
    };
    let expected = format!("rdb_last_load_keys_loaded:{}", snapshot(&mut r).len());
    assert_eq!(loaded(&mut c).as_deref(), Some(expected.as_str()));
}

fn ferrite_dump_loads_in_redis(backend: &str) {
    let dir = TempDir::new("ferrite-rdb-out");
    let f = start_on(backend, dir.path(), &["--save", ""]);
    let mut c = f.conn();
    fill(&mut c);
    assert_eq!(c.cmd_str(&["SAVE"]), b"+OK\r\n");
    let copy = TempDir::new("redis-rdb-in");
    copy_dump(dir.path(), copy.path());
    let d = copy.path().display().to_string();
    let Some(redis) = RedisServer::start_with(&["--dir", &d]) else {
        return;
    };
    let mut r = redis.conn();
    assert_same(&snapshot(&mut c), &snapshot(&mut r), "ferrite -> redis");
    assert_eq!(libraries(&mut r), libraries(&mut c), "ferrite -> redis");
    assert_eq!(
        r.cmd_str(&["FCALL", "short", "1", "str"]),
        b"$5\r\nhello\r\n"
    );
    if common::have_program("redis-check-rdb") {
        let out = Command::new("redis-check-rdb")
            .arg(dir.path().join("dump.rdb"))
            .output()
            .expect("redis-check-rdb");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("RDB looks OK"), "redis-check-rdb:\n{text}");
    }
}

fn kill9(s: &mut common::Server) {
    // SAFETY: kill(2) on the pid of our own child process.
    unsafe {
        libc::kill(s.pid() as libc::pid_t, libc::SIGKILL);
    }
    let _ = s.terminate(Duration::from_secs(5));
}

fn save_survives_kill_9(backend: &str) {
    let dir = TempDir::new("ferrite-rdb-kill");
    let mut f = start_on(backend, dir.path(), &["--save", ""]);
    let mut c = f.conn();
    fill(&mut c);
    let before = snapshot(&mut c);
    // One change per write command that succeeded (fill runs 285: 2 FUNCTION LOADs, 23, then
    // 260 on streams), none for reads.
    let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).into_owned();
    assert!(
        info.contains("rdb_changes_since_last_save:285\r\n"),
        "{info}"
    );
    let libs = libraries(&mut c);
    assert_eq!(c.cmd_str(&["SAVE"]), b"+OK\r\n");
    let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).into_owned();
    assert!(info.contains("rdb_changes_since_last_save:0\r\n"), "{info}");
    ok(&mut c, &["SET", "after-save", "lost"]);
    kill9(&mut f);
    let g = start_on(backend, dir.path(), &["--save", ""]);
    let mut c = g.conn();
    assert_same(&before, &snapshot(&mut c), "after kill -9");
    assert_eq!(libraries(&mut c), libs, "after kill -9");
    let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).into_owned();
    assert!(info.contains("rdb_last_load_keys_loaded:"), "{info}");
}

fn wait_bgsave(c: &mut Conn) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).into_owned();
        if info.contains("rdb_bgsave_in_progress:0") {
            return info;
        }
        assert!(Instant::now() < deadline, "BGSAVE did not finish:\n{info}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `batches` MSETs of `per_batch` keys `k<batch>:<i>`, each of `value_len` bytes of `x`.
fn mset_batches(c: &mut Conn, batches: usize, per_batch: usize, value_len: usize) {
    let value = "x".repeat(value_len);
    for batch in 0..batches {
        let mut args = vec!["MSET".to_string()];
        for i in 0..per_batch {
            args.push(format!("k{batch}:{i}"));
            args.push(value.clone());
        }
        ok(c, &args.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

/// One `name:value` field of an INFO reply.
fn info_field<'a>(info: &'a str, name: &str) -> &'a str {
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {name} in\n{info}"))
}

/// While a BGSAVE child runs, INFO persistence shows its progress from the child's reports
/// (keys written, share of the dataset, copy-on-write size), and zeros again once it ends.
fn bgsave_reports_progress(backend: &str) {
    let dir = TempDir::new("ferrite-rdb-progress");
    // 1 ms per key: 3000 keys take the child about 3 s, reporting after keys 1, 1025, 2049.
    let f = start_on(
        backend,
        dir.path(),
        &["--save", "", "--rdb-key-save-delay", "1000"],
    );
    let mut c = f.conn();
    mset_batches(&mut c, 30, 100, 50);
    assert_eq!(c.cmd_str(&["BGSAVE"]), b"+Background saving started\r\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    let info = loop {
        let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).into_owned();
        if info_field(&info, "current_save_keys_processed") != "0" {
            break info;
        }
        assert!(Instant::now() < deadline, "no progress reported:\n{info}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(info_field(&info, "rdb_bgsave_in_progress"), "1", "{info}");
    assert_eq!(
        info_field(&info, "current_save_keys_total"),
        "3000",
        "{info}"
    );
    let done: u64 = info_field(&info, "current_save_keys_processed")
        .parse()
        .unwrap();
    assert!((1..=3000).contains(&done), "{info}");
    let perc: f64 = info_field(&info, "current_fork_perc").parse().unwrap();
    assert!(perc > 0.0 && perc <= 100.0, "{info}");
    let cow: u64 = info_field(&info, "current_cow_size").parse().unwrap();
    let peak: u64 = info_field(&info, "current_cow_peak").parse().unwrap();
    assert!(peak >= cow, "{info}");
    let age: u64 = info_field(&info, "current_cow_size_age").parse().unwrap();
    assert!(age < 20, "{info}");
    let info = wait_bgsave(&mut c);
    for (name, zero) in [
        ("current_cow_peak", "0"),
        ("current_cow_size", "0"),
        ("current_cow_size_age", "0"),
        ("current_fork_perc", "0.00"),
        ("current_save_keys_processed", "0"),
        ("current_save_keys_total", "0"),
    ] {
        assert_eq!(info_field(&info, name), zero, "{info}");
    }
    assert_eq!(info_field(&info, "rdb_last_bgsave_status"), "ok", "{info}");
}

fn bgsave_is_point_in_time(backend: &str) {
    let dir = TempDir::new("ferrite-rdb-bg");
    let mut f = start_on(backend, dir.path(), &["--save", ""]);
    let mut c = f.conn();
    // Enough data that the child takes a while to write it.
    mset_batches(&mut c, 40, 1000, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            let port = f.port;
            std::thread::spawn(move || {
                let mut w = Conn::connect(port);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    w.send(&[b"MULTI"]);
                    w.send(&[b"INCR", b"a"]);
                    w.send(&[b"INCR", b"b"]);
                    w.send(&[b"RPUSH", b"list", b"x"]);
                    w.send(&[b"HINCRBY", b"hash", b"f", b"1"]);
                    w.send(&[b"EXEC"]);
                    for _ in 0..6 {
                        w.read_reply();
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        c.cmd_str(&["BGSAVE"]),
        b"+Background saving started\r\n".to_vec()
    );
    // The server answers while the child writes.
    let t = Instant::now();
    assert_eq!(c.cmd_str(&["PING"]), b"+PONG\r\n");
    assert!(t.elapsed() < Duration::from_secs(1));
    // Until the tick reaps the child (a fast child, in a release build, may be gone already).
    let again = c.cmd_str(&["BGSAVE"]);
    assert!(
        again == b"-ERR Background save already in progress\r\n"
            || again == b"+Background saving started\r\n",
        "{}",
        common::escape(&again)
    );
    let info = wait_bgsave(&mut c);
    assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let done: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(done > 0);
    let live_a = int_reply(&c.cmd_str(&["GET", "a"]).replace_bulk());
    kill9(&mut f);
    let g = start_on(backend, dir.path(), &["--save", ""]);
    let mut c = g.conn();
    let a = c.cmd_str(&["GET", "a"]);
    let b = c.cmd_str(&["GET", "b"]);
    assert_eq!(a, b, "the snapshot is not point-in-time");
    let n = a.replace_bulk();
    assert_eq!(c.cmd_str(&["LLEN", "list"]), n, "list not point-in-time");
    assert_eq!(
        c.cmd_str(&["HGET", "hash", "f"]),
        a,
        "hash not point-in-time"
    );
    let saved_a = int_reply(&a.replace_bulk());
    assert!(
        saved_a > 0 && saved_a <= live_a,
        "a={saved_a} live={live_a}"
    );
    assert_eq!(c.cmd_str(&["EXISTS", "k39:999"]), b":1\r\n");
}

/// A bulk reply's body as an integer reply, for `int_reply`.
trait ReplaceBulk {
    fn replace_bulk(&self) -> Vec<u8>;
}

impl ReplaceBulk for Vec<u8> {
    fn replace_bulk(&self) -> Vec<u8> {
        let nl = self.iter().position(|&b| b == b'\n').unwrap_or(0);
        [b":".as_slice(), &self[nl + 1..]].concat()
    }
}

fn shutdown_save_nosave_and_sigterm(backend: &str) {
    // SHUTDOWN SAVE without save points: saved, and the connection just closes.
    let dir = TempDir::new("ferrite-rdb-shut");
    let mut f = start_on(backend, dir.path(), &["--save", ""]);
    let mut c = f.conn();
    ok(&mut c, &["SET", "k", "saved"]);
    c.send(&[b"SHUTDOWN", b"SAVE"]);
    assert!(c.wait_closed(Duration::from_secs(10)), "still connected");
    let st = f.terminate(Duration::from_secs(10)).expect("exit");
    assert!(st.success(), "{st}");
    let mut f = start_on(backend, dir.path(), &["--save", "3600 1"]);
    let mut c = f.conn();
    assert_eq!(c.cmd_str(&["GET", "k"]), b"$5\r\nsaved\r\n");
    // SHUTDOWN NOSAVE with save points: the change is lost.
    ok(&mut c, &["SET", "k", "lost"]);
    c.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(c.wait_closed(Duration::from_secs(10)));
    let _ = f.terminate(Duration::from_secs(10));
    // SIGTERM with save points saves first.
    let mut f = start_on(backend, dir.path(), &["--save", "3600 1"]);
    let mut c = f.conn();
    assert_eq!(c.cmd_str(&["GET", "k"]), b"$5\r\nsaved\r\n");
    ok(&mut c, &["SET", "k", "sigterm"]);
    let st = f.terminate(Duration::from_secs(10)).expect("exit");
    assert!(st.success(), "{st}\n{}", f.log());
    assert!(
        f.log().contains("Saving the final RDB snapshot"),
        "{}",
        f.log()
    );
    // SIGTERM without save points does not.
    let mut f = start_on(backend, dir.path(), &["--save", ""]);
    let mut c = f.conn();
    assert_eq!(c.cmd_str(&["GET", "k"]), b"$7\r\nsigterm\r\n");
    ok(&mut c, &["SET", "k", "gone"]);
    let st = f.terminate(Duration::from_secs(10)).expect("exit");
    assert!(st.success());
    let g = start_on(backend, dir.path(), &["--save", ""]);
    let mut c = g.conn();
    assert_eq!(c.cmd_str(&["GET", "k"]), b"$7\r\nsigterm\r\n");
    assert_eq!(
        c.cmd_str(&["SHUTDOWN", "ABORT"]),
        b"-ERR No shutdown in progress.\r\n"
    );
}

fn save_points_trigger_bgsave(backend: &str) {
    let dir = TempDir::new("ferrite-rdb-points");
    let mut f = start_on(backend, dir.path(), &["--save", "1 1"]);
    let mut c = f.conn();
    ok(&mut c, &["SET", "k", "v"]);
    ok(&mut c, &["INCR", "n"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f
        .log()
        .contains("Background saving terminated with success")
    {
        assert!(Instant::now() < deadline, "no automatic save:\n{}", f.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        f.log().contains("1 changes in 1 seconds. Saving..."),
        "{}",
        f.log()
    );
    kill9(&mut f);
    let g = start_on(backend, dir.path(), &["--save", ""]);
    let mut c = g.conn();
    assert_eq!(c.cmd_str(&["GET", "k"]), b"$1\r\nv\r\n");
}

fn flushall_saves_the_empty_dataset(backend: &str) {
    let dir = TempDir::new("ferrite-rdb-flush");
    let mut f = start_on(backend, dir.path(), &["--save", "3600 1"]);
    let mut c = f.conn();
    ok(&mut c, &["SET", "k", "v"]);
    assert_eq!(c.cmd_str(&["SAVE"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["FLUSHALL"]), b"+OK\r\n");
    kill9(&mut f);
    let g = start_on(backend, dir.path(), &["--save", ""]);
    let mut c = g.conn();
    assert_eq!(c.cmd_str(&["DBSIZE"]), b":0\r\n");
}

fn full_disk_denies_writes(backend: &str) {
    let Some(dir) = Tmpfs::mount("ferrite-rdb-full", "256k") else {
        return;
    };
    let f = start_on(backend, dir.path(), &["--save", "3600 1"]);
    let mut c = f.conn();
    let big = noise(3, 400_000);
    assert_eq!(c.cmd(&[b"SET", b"big", &big]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["BGSAVE"]), b"+Background saving started\r\n");
    let info = wait_bgsave(&mut c);
    assert!(info.contains("rdb_last_bgsave_status:err"), "{info}");
    let misconf = "-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to \
         persist to disk. Commands that may modify the data set are disabled, because this \
         instance is configured to report errors during writes if RDB snapshotting fails \
         (stop-writes-on-bgsave-error option). Please check the Redis logs for details about \
         the RDB error.\r\n";
    assert_eq!(
        String::from_utf8_lossy(&c.cmd_str(&["SET", "a", "1"])),
        misconf
    );
    assert_eq!(String::from_utf8_lossy(&c.cmd_str(&["PING"])), misconf);
    assert_eq!(c.cmd_str(&["STRLEN", "big"]), b":400000\r\n");
    assert_eq!(c.cmd_str(&["SAVE"]), b"-ERR\r\n");
    // The final save fails too: SHUTDOWN refuses to exit, unless told NOSAVE or FORCE.
    assert_eq!(
        c.cmd_str(&["SHUTDOWN"]),
        b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    assert_eq!(
        c.cmd_str(&["SHUTDOWN", "SAVE", "NOW"]),
        b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    assert!(f.log().contains("Error trying to save the DB, can't exit."));
    assert!(
        !dir.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("temp-")),
        "a temp file was left behind"
    );
    // More room: the next BGSAVE succeeds and writes work again.
    dir.resize("8m");
    assert_eq!(c.cmd_str(&["BGSAVE"]), b"+Background saving started\r\n");
    let info = wait_bgsave(&mut c);
    assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
    assert_eq!(c.cmd_str(&["SET", "a", "1"]), b"+OK\r\n");
    assert!(f.log().contains("No space left on device"), "{}", f.log());
    drop(c);
    drop(f);
}

/// Truncated and bit-flipped copies of a valid dump (seeded): Ferrite must refuse each at
/// start-up with a message and a non-zero exit, and never panic.
#[test]
fn corrupt_files_are_refused() {
    let dir = TempDir::new("ferrite-rdb-corrupt");
    let f = start_on("epoll", dir.path(), &["--save", ""]);
    let mut c = f.conn();
    fill(&mut c);
    assert_eq!(c.cmd_str(&["SAVE"]), b"+OK\r\n");
    drop(c);
    drop(f);
    let good = std::fs::read(dir.path().join("dump.rdb")).expect("dump.rdb");
    let seed: u64 = std::env::var("RDB_CORRUPT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    eprintln!("RDB_CORRUPT_SEED={seed}");
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for _ in 0..12 {
        let cut = (rnd() % good.len() as u64) as usize;
        cases.push((format!("truncated at {cut}"), good[..cut].to_vec()));
    }
    // The ends matter most: the header and the checksum.
    for cut in [0, 5, 9, good.len() - 9, good.len() - 1] {
        cases.push((format!("truncated at {cut}"), good[..cut].to_vec()));
    }
    for _ in 0..16 {
        let at = (rnd() % good.len() as u64) as usize;
        let mask = (rnd() % 255 + 1) as u8;
        let mut bad = good.clone();
        bad[at] ^= mask;
        cases.push((format!("byte {at} ^ {mask:#x}"), bad));
    }
    for (what, bytes) in cases {
        let d = TempDir::new("ferrite-rdb-bad");
        std::fs::write(d.path().join("dump.rdb"), &bytes).unwrap();
        let port = free_port().to_string();
        let mut cmd = Command::new(common::ferrite_bin());
        cmd.args(["--port", &port, "--bind", "127.0.0.1", "--dir"])
            .arg(d.path())
            .args(["--index-size", "1mb", "--memory-size", "128mb"]);
        let out = common::run_with_timeout(&mut cmd, Duration::from_secs(20));
        let log = format!("{}{}", out.stdout, out.stderr);
        let st = out
            .status
            .unwrap_or_else(|| panic!("{what}: ferrite started on a corrupt file:\n{log}"));
        assert!(!st.success(), "{what}: exit status {st}\n{log}");
        assert!(!log.contains("panicked"), "{what}: panicked\n{log}");
        assert!(
            log.contains("RDB") || log.contains("DB"),
            "{what}: no message\n{log}"
        );
    }
}

/// A dataset ten times `memory-size`, most of it in the disk tier when BGSAVE forks: the
/// snapshot holds every key, and a restart (after `kill -9`) serves them all.
fn snapshots_include_data_on_disk(backend: &str) {
    let dir = TempDir::new("ferrite-rdb-tier");
    let args = ["--save", "", "--memory-size", "4mb"];
    let mut f = start_on(backend, dir.path(), &args);
    let mut c = f.conn();
    const KEYS: usize = 40_000;
    let value = |i: usize| {
        let mut v = format!("{i}:").into_bytes();
        v.resize(1000, b'a' + (i % 26) as u8);
        v
    };
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(200) {
        for &i in chunk {
            c.send(&[b"SET", format!("t:{i}").as_bytes(), &value(i)]);
        }
        for _ in chunk {
            assert_eq!(c.read_reply(), b"+OK\r\n");
        }
    }
    ok(&mut c, &["RPUSH", "list", "a", "b", "c"]);
    let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "tiering"])).into_owned();
    assert!(!info.contains("tier_pages_flushed:0\r\n"), "{info}");
    assert_eq!(c.cmd_str(&["BGSAVE"]), b"+Background saving started\r\n");
    let info = wait_bgsave(&mut c);
    assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
    kill9(&mut f);
    let g = start_on(backend, dir.path(), &args);
    let mut c = g.conn();
    assert_eq!(
        c.cmd_str(&["DBSIZE"]),
        format!(":{}\r\n", KEYS + 1).into_bytes()
    );
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(200) {
        for &i in chunk {
            c.send(&[b"GET", format!("t:{i}").as_bytes()]);
        }
        for &i in chunk {
            let mut want = b"$1000\r\n".to_vec();
            want.extend_from_slice(&value(i));
            want.extend_from_slice(b"\r\n");
            assert!(c.read_reply() == want, "t:{i}");
        }
    }
    assert_eq!(
        c.cmd_str(&["LRANGE", "list", "0", "-1"]),
        b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
}
