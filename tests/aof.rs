//! The append-only file: every acknowledged write survives a restart (clean or `kill -9`) under
//! each `appendfsync` policy, writes of one key from several reactor threads replay in the order
//! they took effect, a torn or corrupt file loads its prefix or is refused as Redis would, and
//! redis-server 7.0 and Ferrite load each other's AOF directory. Every test runs on both I/O
//! backends.

mod common;

use common::{Ferrite, RedisServer, TempDir, ferrite_bin, free_port};
use redis::{Commands, Value};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One `#[test]` per backend for each listed function `fn name(backend: &str)`.
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod uring {
            $(#[test] fn $name() { super::$name("uring") })*
        }
        mod epoll {
            $(#[test] fn $name() { super::$name("epoll") })*
        }
    };
}

per_backend!(
    restart_keeps_acknowledged_writes,
    crash_loop_keeps_acknowledged_writes,
    same_key_order_across_threads,
    torn_tail_loads_prefix_or_refuses,
    redis_loads_ferrite_aof,
    ferrite_loads_redis_aof,
    ferrite_upgrades_old_style_aof,
    config_set_appendonly,
    propagated_forms_match_redis,
    disk_full_misconf_then_recovers,
    expiry_propagates_del,
);

/// Ferrite with the AOF on in `dir`, on 2 reactor threads; Err (with its log) if it exits
/// during start-up.
fn start_in(backend: &str, dir: &Path, extra: &[&str]) -> Result<Ferrite, String> {
    let port = free_port();
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--io-backend",
        backend,
        "--threads",
        "2",
        "--appendonly",
        "yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--dir".to_string(), dir.display().to_string()]);
    for pair in common::TEST_STORE_ARGS.chunks(2) {
        args.extend(pair.iter().map(|s| s.to_string()));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    Ferrite::start_custom(&ferrite_bin(), &args, port, &format!("ferrite[{backend}]"))
}

fn start(backend: &str, dir: &Path, extra: &[&str]) -> Ferrite {
    start_in(backend, dir, extra).unwrap_or_else(|e| panic!("{e}"))
}

fn client(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// SIGKILL, and wait for the process to be gone.
fn kill9(s: &mut Ferrite) {
    // SAFETY: kill(2) with a pid we spawned; no memory is involved.
    unsafe { libc::kill(s.pid() as i32, libc::SIGKILL) };
    for _ in 0..200 {
        if !s.is_running() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("ferrite survived SIGKILL");
}

fn stop(mut s: Ferrite, how: &str) {
    if how == "kill" {
        kill9(&mut s);
    } else {
        let st = s.terminate(Duration::from_secs(10));
        assert!(
            st.is_some_and(|s| s.success()),
            "clean exit: {st:?}\n{}",
            s.log()
        );
    }
}

/// A seeded xorshift (no dependency): the seed is printed so a failure can be replayed with
/// `AOF_TEST_SEED`.
struct Rng(u64);

impl Rng {
    fn seeded(name: &str) -> Rng {
        let seed = std::env::var("AOF_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("{name}: seed {seed} (AOF_TEST_SEED={seed} replays it)");
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------------------------
// A model of one writer's keys.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Val {
    Str(String),
    List(Vec<String>),
    Hash(BTreeMap<String, String>),
}

type Model = BTreeMap<String, Val>;

/// One operation a writer sends; each touches only that writer's keys.
#[derive(Debug, Clone)]
enum Op {
    Set(String, String),
    Incr(String),
    Push(String, String),
    HSet(String, String, String),
    SetEx(String, String),
    Multi(String, String, String),
    Del(String),
}

impl Op {
    fn random(rng: &mut Rng, t: usize, i: usize) -> Op {
        let k = |n: &str| format!("w{t}:{n}");
        match rng.below(7) {
            0 => Op::Set(k("s"), format!("v{i}")),
            1 => Op::Incr(k("n")),
            2 => Op::Push(k("l"), format!("e{i}")),
            3 => Op::HSet(k("h"), format!("f{}", i % 5), format!("{i}")),
            4 => Op::SetEx(k("e"), format!("x{i}")),
            5 => Op::Multi(k("m1"), k("m2"), format!("{i}")),
            _ => Op::Del(k("s")),
        }
    }

    fn send(&self, c: &mut redis::Connection) -> redis::RedisResult<()> {
        match self {
            Op::Set(k, v) => c.set(k, v),
            Op::Incr(k) => c.incr(k, 1),
            Op::Push(k, v) => c.rpush(k, v),
            Op::HSet(k, f, v) => c.hset(k, f, v),
            Op::SetEx(k, v) => redis::cmd("SET")
                .arg(k)
                .arg(v)
                .arg("EX")
                .arg(100_000)
                .query(c),
            Op::Multi(a, b, v) => redis::pipe().atomic().set(a, v).incr(b, 1).query::<()>(c),
            Op::Del(k) => c.del(k),
        }
    }

    fn apply(&self, m: &mut Model) {
        let incr = |m: &mut Model, k: &str| {
            let n = match m.get(k) {
                Some(Val::Str(s)) => s.parse::<i64>().unwrap_or(0),
                _ => 0,
            };
            m.insert(k.to_string(), Val::Str((n + 1).to_string()));
        };
        match self {
            Op::Set(k, v) | Op::SetEx(k, v) => {
                m.insert(k.clone(), Val::Str(v.clone()));
            }
            Op::Incr(k) => incr(m, k),
            Op::Push(k, v) => {
                if let Val::List(l) = m.entry(k.clone()).or_insert(Val::List(Vec::new())) {
                    l.push(v.clone());
                }
            }
            Op::HSet(k, f, v) => {
                if let Val::Hash(h) = m.entry(k.clone()).or_insert(Val::Hash(BTreeMap::new())) {
                    h.insert(f.clone(), v.clone());
                }
            }
            Op::Multi(a, b, v) => {
                m.insert(a.clone(), Val::Str(v.clone()));
                incr(m, b);
            }
            Op::Del(k) => {
                m.remove(k);
            }
        }
    }
}

/// The value of `key` on the server, as the model sees it.
fn read(c: &mut redis::Connection, key: &str) -> Option<Val> {
    let t: String = redis::cmd("TYPE").arg(key).query(c).expect("TYPE");
    match t.as_str() {
        "none" => None,
        "string" => Some(Val::Str(c.get(key).expect("GET"))),
        "list" => Some(Val::List(c.lrange(key, 0, -1).expect("LRANGE"))),
        "hash" => Some(Val::Hash(c.hgetall(key).expect("HGETALL"))),
        other => panic!("{key} has unexpected type {other}"),
    }
}

fn writer_keys(t: usize) -> Vec<String> {
    ["s", "n", "l", "h", "e", "m1", "m2"]
        .iter()
        .map(|n| format!("w{t}:{n}"))
        .collect()
}

/// Runs `writers` concurrent writers of random ops against `port` until `stop` (or `ops`
/// each); returns each writer's model after its acknowledged ops, and its one op in flight
/// when the connection broke (if any).
fn run_writers(
    port: u16,
    writers: usize,
    ops: usize,
    seed: u64,
    models: &[Model],
    stop: &Arc<AtomicBool>,
) -> Vec<(Model, Option<Op>)> {
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let stop = Arc::clone(stop);
            let mut model = models[t].clone();
            let mut rng = Rng(seed.wrapping_add(t as u64 * 7919) | 1);
            std::thread::spawn(move || {
                let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .and_then(|cl| cl.get_connection())
                else {
                    return (model, None);
                };
                for i in 0..ops {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let op = Op::random(&mut rng, t, i);
                    match op.send(&mut c) {
                        Ok(()) => op.apply(&mut model),
                        Err(_) => return (model, Some(op)),
                    }
                }
                (model, None)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("writer thread"))
        .collect()
}

/// Checks the server holds each writer's acknowledged state, or that state plus its op in
/// flight (applied whole); returns the state found, to continue from.
fn verify(port: u16, results: &[(Model, Option<Op>)], what: &str) -> Vec<Model> {
    let mut c = client(port);
    let mut found = Vec::new();
    for (t, (acked, inflight)) in results.iter().enumerate() {
        let actual: Model = writer_keys(t)
            .into_iter()
            .filter_map(|k| read(&mut c, &k).map(|v| (k, v)))
            .collect();
        let mut with = acked.clone();
        if let Some(op) = inflight {
            op.apply(&mut with);
        }
        assert!(
            actual == *acked || actual == with,
            "{what}: writer {t} lost an acknowledged write or holds a torn one\n\
             acknowledged: {acked:?}\nin flight: {inflight:?}\nfound: {actual:?}"
        );
        found.push(actual);
    }
    found
}

// ---------------------------------------------------------------------------------------------

fn restart_keeps_acknowledged_writes(backend: &str) {
    for policy in ["always", "everysec", "no"] {
        for how in ["term", "kill"] {
            let dir = TempDir::new("aof-restart");
            let what = format!("{backend} appendfsync {policy}, {how}");
            let s = start(backend, dir.path(), &["--appendfsync", policy]);
            let stop_flag = Arc::new(AtomicBool::new(false));
            let models = vec![Model::new(); 4];
            let results = run_writers(s.port, 4, 150, 42, &models, &stop_flag);
            assert!(
                results.iter().all(|r| r.1.is_none()),
                "{what}: a write failed"
            );
            stop(s, how);
            let s = start(backend, dir.path(), &["--appendfsync", policy]);
            verify(s.port, &results, &what);
            // The replayed file is appended to: a second restart sees the same.
            let mut c = client(s.port);
            let _: () = c.set("after", "restart").expect("SET");
            stop(s, "term");
            let s = start(backend, dir.path(), &["--appendfsync", policy]);
            verify(s.port, &results, &what);
            let v: Option<String> = client(s.port).get("after").expect("GET");
            assert_eq!(v.as_deref(), Some("restart"), "{what}");
        }
    }
}

fn crash_loop_keeps_acknowledged_writes(backend: &str) {
    let mut rng = Rng::seeded(&format!("crash_loop[{backend}]"));
    let dir = TempDir::new("aof-crash");
    let writers = 4;
    let mut models = vec![Model::new(); writers];
    for round in 0..10 {
        // Mostly `always`; the others too, as a kill -9 loses nothing written either (replies
        // wait for the write under every policy, as Redis writes before it replies).
        let policy = ["always", "always", "everysec", "no"][round % 4];
        let mut s = start(backend, dir.path(), &["--appendfsync", policy]);
        if round > 0 {
            // What the previous round left must be there before this one writes.
            let prev: Vec<(Model, Option<Op>)> = models.iter().map(|m| (m.clone(), None)).collect();
            verify(s.port, &prev, &format!("round {round} start"));
        }
        let stop_flag = Arc::new(AtomicBool::new(false));
        let kill_after = Duration::from_millis(30 + rng.below(250));
        let port = s.port;
        let seed = rng.next();
        let m = models.clone();
        let flag = Arc::clone(&stop_flag);
        let run = std::thread::spawn(move || run_writers(port, writers, 100_000, seed, &m, &flag));
        std::thread::sleep(kill_after);
        kill9(&mut s);
        stop_flag.store(true, Ordering::Relaxed);
        let results = run.join().expect("writers");
        drop(s);
        let s = start(backend, dir.path(), &["--appendfsync", policy]);
        let what = format!("round {round}, {policy} (killed after {kill_after:?})");
        let in_flight = results.iter().filter(|r| r.1.is_some()).count();
        eprintln!("crash loop {what}: {in_flight} writes in flight at the kill");
        models = verify(s.port, &results, &what);
        stop(s, "term");
    }
}

fn same_key_order_across_threads(backend: &str) {
    for how in ["term", "kill"] {
        let dir = TempDir::new("aof-order");
        let s = start(backend, dir.path(), &["--appendfsync", "always"]);
        // Four connections (so that, with two reactor threads, the alternation crosses
        // threads whatever the kernel's SO_REUSEPORT hashing), taking turns: each SET is sent
        // only after the previous one was acknowledged.
        let mut conns: Vec<_> = (0..4).map(|_| client(s.port)).collect();
        let mut last = 0;
        for i in 0..400 {
            let c = &mut conns[i % 4];
            let _: () = c.set("k", i).expect("SET");
            let _: i64 = c.incr("n", 1).expect("INCR");
            last = i;
        }
        stop(s, how);
        let s = start(backend, dir.path(), &["--appendfsync", "always"]);
        let mut c = client(s.port);
        let v: i64 = c.get("k").expect("GET");
        let n: i64 = c.get("n").expect("GET");
        assert_eq!(
            v, last as i64,
            "{how}: the last acknowledged SET wins after replay"
        );
        assert_eq!(n, 400, "{how}");
        stop(s, "term");
    }
    // Concurrent, pipelined appends to one string and one list from four connections: any
    // reordering of two appends across threads changes the value, so the replayed value must
    // be the very one the server held.
    let dir = TempDir::new("aof-order-concurrent");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let port = s.port;
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = client(port);
                for round in 0..20 {
                    let mut p = redis::pipe();
                    for i in 0..10 {
                        let item = format!("{t}.{round}.{i},");
                        p.append("s", &item).ignore().rpush("l", &item).ignore();
                    }
                    let _: () = p.query(&mut c).expect("pipeline");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("appender");
    }
    let mut c = client(port);
    let before: (String, Vec<String>) = (
        c.get("s").expect("GET"),
        c.lrange("l", 0, -1).expect("LRANGE"),
    );
    stop(s, "kill");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    let after: (String, Vec<String>) = (
        c.get("s").expect("GET"),
        c.lrange("l", 0, -1).expect("LRANGE"),
    );
    assert_eq!(before.1.len(), 800);
    assert!(
        before == after,
        "concurrent appends replayed in another order"
    );
}

/// The incremental file of a Ferrite AOF directory.
fn incr_file(dir: &Path) -> PathBuf {
    dir.join("appendonlydir").join("appendonly.aof.1.incr.aof")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

fn torn_tail_loads_prefix_or_refuses(backend: &str) {
    let mut rng = Rng::seeded(&format!("torn_tail[{backend}]"));
    let dir = TempDir::new("aof-torn");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    let n = 60;
    for i in 0..n {
        let _: () = c.set(format!("k{i}"), format!("value-{i}")).expect("SET");
    }
    stop(s, "term");
    let full = fs::read(incr_file(dir.path())).expect("read incr");
    for trial in 0..12 {
        let flip = trial % 3 == 2;
        let work = TempDir::new("aof-torn-trial");
        copy_dir(dir.path(), work.path());
        let mut bytes = full.clone();
        let at = rng.below(full.len() as u64) as usize;
        if flip {
            bytes[at] ^= 1 << rng.below(8);
        } else {
            bytes.truncate(at);
        }
        fs::write(incr_file(work.path()), &bytes).expect("write");
        let what = format!(
            "trial {trial}: {} at {at}",
            if flip { "flip" } else { "cut" }
        );
        match start_in(backend, work.path(), &[]) {
            Ok(s) => {
                assert!(!s.log().contains("panicked"), "{what}: {}", s.log());
                let mut c = client(s.port);
                // A prefix of the SETs, in order: k0..kj present, nothing after.
                let mut present = Vec::new();
                for i in 0..n {
                    // A flipped bit may have landed in a value: bytes, not text.
                    let v: Option<Vec<u8>> = c.get(format!("k{i}")).expect("GET");
                    present.push(v.is_some());
                }
                if !flip {
                    let j = present.iter().take_while(|&&p| p).count();
                    assert!(present[j..].iter().all(|&p| !p), "{what}: not a prefix");
                    assert!(
                        at >= full.len() - 40 || j < n,
                        "{what}: a cut file cannot hold every command"
                    );
                }
                stop(s, "term");
            }
            Err(log) => {
                assert!(
                    flip,
                    "{what}: a truncated tail must load (aof-load-truncated yes)\n{log}"
                );
                assert!(!log.contains("panicked"), "{what}: {log}");
                assert!(
                    log.contains("Bad file format") || log.contains("Unknown command"),
                    "{what}: refused without Redis's reason\n{log}"
                );
            }
        }
    }
    // With aof-load-truncated no, a cut tail is refused.
    let work = TempDir::new("aof-torn-strict");
    copy_dir(dir.path(), work.path());
    fs::write(incr_file(work.path()), &full[..full.len() - 3]).expect("write");
    let err = start_in(backend, work.path(), &["--aof-load-truncated", "no"]).err();
    let log = err.expect("aof-load-truncated no refuses a truncated file");
    assert!(log.contains("Unexpected end of file"), "{log}");
}

/// Every key of db 0 with its type and value, for comparing two servers.
fn snapshot(c: &mut redis::Connection) -> BTreeMap<String, String> {
    let keys: Vec<String> = c.keys("*").expect("KEYS");
    let mut out = BTreeMap::new();
    for k in keys {
        let t: String = redis::cmd("TYPE").arg(&k).query(c).expect("TYPE");
        let v: Value = match t.as_str() {
            "string" => redis::cmd("GET").arg(&k).query(c),
            "list" => redis::cmd("LRANGE").arg(&k).arg(0).arg(-1).query(c),
            "hash" => redis::cmd("HGETALL").arg(&k).query(c),
            "set" => redis::cmd("SORT").arg(&k).arg("ALPHA").query(c),
            "zset" => redis::cmd("ZRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(c),
            _ => Ok(Value::Nil),
        }
        .expect("read");
        let ttl: i64 = c.ttl(&k).expect("TTL");
        out.insert(k, format!("{t} {v:?} ttl>0:{}", ttl > 0));
    }
    out
}

/// A workload both servers understand, exercising the propagation rewrites.
fn workload(c: &mut redis::Connection) {
    let cmds: &[&[&str]] = &[
        &["SET", "s", "1"],
        &["SET", "ex", "v", "EX", "1000"],
        &["SETEX", "sx", "1000", "v"],
        &["INCR", "s"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["RPUSH", "l", "a", "b", "c", "d"],
        &["LPOP", "l"],
        &["SADD", "set", "a", "b", "c", "d"],
        &["SPOP", "set"],
        &["HSET", "h", "a", "1", "b", "2"],
        &["HINCRBYFLOAT", "h", "a", "0.5"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["ZPOPMIN", "z"],
        &["EXPIRE", "s", "1000"],
        &["PERSIST", "s"],
        &["GETEX", "l2", "EX", "10"],
        &["SET", "gone", "x"],
        &["GETDEL", "gone"],
        &["SELECT", "2"],
        &["SET", "in2", "x"],
        &["SELECT", "0"],
        &["APPEND", "ap", "xyz"],
        &["SETRANGE", "ap", "1", "Q"],
        &["MSET", "m1", "1", "m2", "2"],
        &["RENAME", "m2", "m3"],
        &["BLPOP", "l", "0"],
    ];
    for cmd in cmds {
        let mut q = redis::cmd(cmd[0]);
        for a in &cmd[1..] {
            q.arg(*a);
        }
        let _: Value = q.query(c).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    }
    let _: Value = redis::pipe()
        .atomic()
        .set("t1", "a")
        .incr("t2", 5)
        .query(c)
        .expect("MULTI/EXEC");
}

fn redis_loads_ferrite_aof(backend: &str) {
    let dir = TempDir::new("aof-to-redis");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    workload(&mut c);
    let ours = snapshot(&mut c);
    stop(s, "term");
    let d = dir.path().display().to_string();
    let Some(r) = RedisServer::start_with(&["--appendonly", "yes", "--dir", &d]) else {
        return;
    };
    let mut rc = client(r.port);
    assert_eq!(
        snapshot(&mut rc),
        ours,
        "redis-server loaded Ferrite's AOF differently\n{}",
        r.log()
    );
    let v: Option<String> = redis::cmd("GET")
        .arg("in2")
        .query(&mut client_db(r.port, 2))
        .expect("GET");
    assert_eq!(v.as_deref(), Some("x"));
}

fn client_db(port: u16, db: u8) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/{db}"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

fn ferrite_loads_redis_aof(backend: &str) {
    // An AOF-format base (no RDB preamble), which Ferrite can load.
    let Some(mut r) = RedisServer::start_with(&[
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
        "--appendfsync",
        "always",
    ]) else {
        return;
    };
    let mut rc = client(r.port);
    workload(&mut rc);
    let theirs = snapshot(&mut rc);
    let _ = r.terminate(Duration::from_secs(10));
    let dir = TempDir::new("aof-from-redis");
    copy_dir(
        &r.dir().join("appendonlydir"),
        &dir.path().join("appendonlydir"),
    );
    let s = start(backend, dir.path(), &[]);
    let mut c = client(s.port);
    assert_eq!(
        snapshot(&mut c),
        theirs,
        "Ferrite loaded redis-server's AOF differently\n{}",
        s.log()
    );
    stop(s, "term");

    // A base in RDB format (Redis's default) is refused clearly, not misread.
    let Some(mut r) = RedisServer::start_with(&["--appendonly", "yes"]) else {
        return;
    };
    let _: () = client(r.port).set("a", "1").expect("SET");
    let _ = r.terminate(Duration::from_secs(10));
    let dir = TempDir::new("aof-from-redis-rdb");
    copy_dir(
        &r.dir().join("appendonlydir"),
        &dir.path().join("appendonlydir"),
    );
    let log = start_in(backend, dir.path(), &[])
        .err()
        .expect("an RDB base is refused");
    assert!(log.contains("RDB format"), "{log}");
}

fn config_set_appendonly(backend: &str) {
    let dir = TempDir::new("aof-config");
    let s = start(backend, dir.path(), &["--appendonly", "no"]);
    let mut c = client(s.port);
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut c)
        .expect("INFO");
    assert!(info.contains("aof_enabled:0"), "{info}");
    // An empty dataset: turning the AOF on starts an empty incremental file.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .query(&mut c)
        .expect("CONFIG SET");
    let _: () = c.set("k", "v").expect("SET");
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut c)
        .expect("INFO");
    assert!(
        info.contains("aof_enabled:1") && info.contains("aof_last_write_status:ok"),
        "{info}"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("no")
        .query(&mut c)
        .expect("off");
    // With data and no AOF rewrite, turning it on is refused (and says why in the log).
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .query::<()>(&mut c)
        .expect_err("refused with data");
    assert!(e.to_string().contains("Unable to turn on AOF"), "{e}");
    let v: String = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query::<Vec<String>>(&mut c)
        .expect("GET")[1]
        .clone();
    assert_eq!(v, "no");
    stop(s, "term");
    let s = start(backend, dir.path(), &[]);
    let v: Option<String> = client(s.port).get("k").expect("GET");
    assert_eq!(v.as_deref(), Some("v"));
}

/// The bytes Ferrite writes for the workload are the bytes redis-server 7.0 writes (for the
/// commands whose propagation does not depend on the clock or randomness).
fn propagated_forms_match_redis(backend: &str) {
    let cmds: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["set", "a", "2", "XX", "KEEPTTL"],
        &["SET", "a", "3", "NX"],
        &["DEL", "nothing"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["HINCRBYFLOAT", "h", "x", "2.5"],
        &["SADD", "s", "a"],
        &["SADD", "s", "a"],
        &["RPUSH", "l", "a", "b", "c"],
        &["LMPOP", "1", "l", "LEFT", "COUNT", "2"],
        &["ZADD", "z", "1", "a", "2", "b"],
        &["ZMPOP", "1", "z", "MIN", "COUNT", "5"],
        &["GETDEL", "a"],
        &["GETDEL", "a"],
        &["EXPIRE", "missing", "10"],
        &["PERSIST", "f"],
        &["SET", "e", "1"],
        &["EXPIRE", "e", "0"],
        &["SADD", "one", "only"],
        &["SPOP", "one"],
        &["SADD", "two", "a", "b"],
        &["SPOP", "two", "5"],
        &["RPUSH", "bl", "a", "b", "c", "d", "e"],
        &["BLPOP", "nothing", "bl", "0"],
        &["BRPOP", "bl", "0"],
        &["BRPOPLPUSH", "bl", "bl2", "0"],
        &["BLMOVE", "bl", "bl2", "LEFT", "RIGHT", "0"],
        &["BLMPOP", "0", "1", "bl2", "RIGHT", "COUNT", "9"],
        &["ZADD", "bz", "1", "a", "2", "b", "3", "c"],
        &["BZPOPMIN", "bz", "0"],
        &["BZPOPMAX", "bz", "0"],
        &["BZMPOP", "0", "1", "bz", "MIN"],
        &["SET", "p", "1", "PXAT", "99999999999999", "GET"],
        &["GETEX", "p", "PXAT", "99999999999999"],
        &["GETEX", "p", "PERSIST"],
        &["PEXPIREAT", "p", "1"],
        &["HSET", "hh", "a", "1"],
        &["HSETNX", "hh", "a", "2"],
        &["HDEL", "hh", "a"],
        &["SELECT", "5"],
        &["SET", "in5", "x"],
        &["MOVE", "in5", "6"],
        &["SELECT", "0"],
        &["SWAPDB", "5", "6"],
        &["MULTI"],
        &["SET", "t", "1"],
        &["INCR", "t"],
        &["GET", "t"],
        &["SELECT", "3"],
        &["DEL", "t3"],
        &["SET", "t3", "x"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "t4", "one write"],
        &["GET", "t4"],
        &["EXEC"],
        &["MULTI"],
        &["GET", "t4"],
        &["EXEC"],
        &["SELECT", "0"],
        &[
            "GEOADD",
            "g",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
        &[
            "GEOADD",
            "g",
            "XX",
            "CH",
            "13.361389",
            "38.115556",
            "Palermo",
        ],
        &["GEOADD", "g", "NX", "1", "1", "m"],
        &["LPUSH", "ll", "a", "b", "c", "a"],
        &["LSET", "ll", "0", "z"],
        &["LINSERT", "ll", "BEFORE", "z", "y"],
        &["LINSERT", "ll", "BEFORE", "nope", "y"],
        &["LREM", "ll", "0", "a"],
        &["LREM", "ll", "0", "nope"],
        &["LTRIM", "ll", "0", "1"],
        &["LPUSHX", "missing", "a"],
        &["RPOPLPUSH", "ll", "ll2"],
        &["LMOVE", "ll", "ll2", "LEFT", "LEFT"],
        &["SETRANGE", "sr", "0", ""],
        &["SETRANGE", "sr", "2", "ab"],
        &["SETBIT", "bits", "7", "1"],
        &["SETBIT", "bits", "7", "1"],
        &["BITOP", "OR", "dest", "bits", "sr"],
        &["BITFIELD", "bf", "SET", "u8", "0", "255", "GET", "u8", "0"],
        &["PFADD", "hll", "a", "b"],
        &["PFADD", "hll", "a"],
        &["PFMERGE", "hll2", "hll"],
        &["SADD", "sa", "1", "2", "3"],
        &["SADD", "sb", "3", "4"],
        &["SMOVE", "sa", "sb", "1"],
        &["SMOVE", "sa", "sb", "nope"],
        &["SINTERSTORE", "sd", "sa", "sb"],
        &["SINTERSTORE", "empty", "sa", "nothing"],
        &["SUNIONSTORE", "su", "sa", "sb"],
        &["SDIFFSTORE", "sf", "sa", "sb"],
        &["SREM", "sa", "nope"],
        &["ZADD", "za", "1", "a", "2", "b", "3", "c"],
        &["ZINCRBY", "za", "5", "a"],
        &["ZREM", "za", "nope"],
        &["ZREMRANGEBYSCORE", "za", "0", "2"],
        &["ZRANGESTORE", "zr", "za", "0", "-1"],
        &["ZUNIONSTORE", "zu", "2", "za", "zr"],
        &["ZPOPMAX", "zu", "2"],
        &["HSET", "hm", "a", "1"],
        &["HMSET", "hm", "b", "2"],
        &["HDEL", "hm", "nope"],
        &["HINCRBY", "hm", "a", "3"],
        &["GETSET", "gs", "1"],
        &["SETNX", "gs", "2"],
        &["MSETNX", "gs", "3", "new", "4"],
        &["RENAMENX", "gs", "hm"],
        &["COPY", "gs", "gs2"],
        &["UNLINK", "gs2", "nothing"],
        &["DEL", "gs", "nothing"],
        &["INCRBY", "cnt", "5"],
        &["DECRBY", "cnt", "2"],
        &["SORT", "ll2", "ALPHA", "STORE", "sorted"],
        &["EXPIREAT", "cnt", "99999999999"],
        &["EXPIREAT", "cnt", "99999999998", "XX"],
        &["EXPIRE", "cnt", "10", "NX"],
        &["PERSIST", "cnt"],
        &["FLUSHDB"],
        &["SET", "y", "1"],
        &["FLUSHALL"],
    ];
    let run = |port: u16| {
        let mut c = client(port);
        for cmd in cmds {
            let mut q = redis::cmd(cmd[0]);
            for a in &cmd[1..] {
                q.arg(*a);
            }
            let _: Value = q.query(&mut c).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        }
    };
    let dir = TempDir::new("aof-forms");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    run(s.port);
    stop(s, "term");
    let ours = fs::read(incr_file(dir.path())).expect("ours");
    let Some(mut r) = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    else {
        return;
    };
    run(r.port);
    let _ = r.terminate(Duration::from_secs(10));
    let theirs = fs::read(r.dir().join("appendonlydir/appendonly.aof.1.incr.aof")).expect("theirs");
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "Ferrite's AOF differs from redis-server's"
    );
}

/// A small tmpfs mounted for a test (root only); unmounted on drop.
struct Tmpfs(TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = TempDir::new("aof-tmpfs");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }

    fn resize(&self, size: &str) {
        let st = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0.path())
            .status()
            .expect("remount");
        assert!(st.success(), "remount {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

/// A full disk: the failing write is answered (as Redis does with `everysec`), later writes
/// and PING get `-MISCONF Errors writing to the AOF file: ...`, reads keep working, and once
/// there is room again the writer catches up and writes are accepted.
fn disk_full_misconf_then_recovers(backend: &str) {
    let Some(fs) = Tmpfs::mount("256k") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let s = start(backend, fs.0.path(), &["--appendfsync", "everysec"]);
    let mut c = client(s.port);
    let big = "x".repeat(16 * 1024);
    let mut refused = None;
    for i in 0..200 {
        match c.set::<_, _, ()>(format!("k{i}"), &big) {
            Ok(()) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    let e = refused.expect("a full disk refuses writes");
    assert!(
        e.contains("MISCONF")
            && e.contains("Errors writing to the AOF file: No space left on device"),
        "{e}"
    );
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut c)
        .expect("INFO");
    assert!(info.contains("aof_last_write_status:err"), "{info}");
    let v: Option<String> = c.get("k0").expect("reads keep working");
    assert_eq!(v.as_deref(), Some(big.as_str()));
    let ping = redis::cmd("PING")
        .query::<String>(&mut c)
        .expect_err("PING is refused too");
    assert!(ping.to_string().contains("MISCONF"), "{ping}");
    fs.resize("16m");
    let mut ok = false;
    for _ in 0..100 {
        if c.set::<_, _, ()>("after", "room").is_ok() {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        ok,
        "writes are accepted again once the AOF can be written\n{}",
        s.log()
    );
    assert!(
        s.log().contains("AOF write error looks solved"),
        "{}",
        s.log()
    );
    stop(s, "term");
    let s = start(backend, fs.0.path(), &[]);
    let v: Option<String> = client(s.port).get("after").expect("GET");
    assert_eq!(v.as_deref(), Some("room"));
    stop(s, "term");

    // With `always` a failed write cannot be answered honestly: Redis exits, and so do we,
    // never acknowledging the write that did not reach the file.
    let Some(fs) = Tmpfs::mount("256k") else {
        return;
    };
    let mut s = start(backend, fs.0.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    let mut acked = 0;
    for i in 0..200 {
        if c.set::<_, _, ()>(format!("k{i}"), &big).is_err() {
            break;
        }
        acked += 1;
    }
    assert!(acked < 200, "a full disk must stop acknowledging writes");
    let st = s.terminate(Duration::from_secs(10));
    assert!(
        st.is_some_and(|st| !st.success()),
        "exits with an error: {st:?}"
    );
    assert!(
        s.log()
            .contains("Can't recover from AOF write error when the AOF fsync policy is 'always'"),
        "{}",
        s.log()
    );
    fs.resize("16m");
    let s = start(backend, fs.0.path(), &[]);
    let mut c = client(s.port);
    for i in 0..acked {
        let v: Option<String> = c.get(format!("k{i}")).expect("GET");
        assert!(v.is_some(), "acknowledged k{i} is in the AOF");
    }
    stop(s, "term");
}

/// Lazy expiry (a read finds the key expired) and active expiry (the tick's cycle) delete keys
/// and write `DEL` for them, as Redis does; a restart then does not resurrect them.
fn expiry_propagates_del(backend: &str) {
    let dir = TempDir::new("aof-expiry");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    let _: () = redis::cmd("SET")
        .arg("lazy")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut c)
        .expect("SET");
    let _: () = redis::cmd("SET")
        .arg("active")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut c)
        .expect("SET");
    let mut c3 = client_db(s.port, 3);
    let _: () = redis::cmd("SET")
        .arg("in3")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut c3)
        .expect("SET");
    std::thread::sleep(Duration::from_millis(100));
    let v: Option<String> = c.get("lazy").expect("GET");
    assert_eq!(v, None);
    let del = |k: &str| format!("*2\r\n$3\r\nDEL\r\n${}\r\n{k}\r\n", k.len());
    let mut text = String::new();
    for _ in 0..100 {
        text =
            String::from_utf8_lossy(&fs::read(incr_file(dir.path())).expect("read")).into_owned();
        if text.contains(&del("active")) && text.contains(&del("in3")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        text.contains(&del("lazy")),
        "lazy expiry wrote no DEL:\n{text}"
    );
    assert!(
        text.contains(&del("active")),
        "active expiry wrote no DEL:\n{text}"
    );
    let at = text.find(&del("in3")).expect("DEL in3");
    let select = "SELECT\r\n$1\r\n";
    let last = text[..at].rfind(select).expect("a SELECT before");
    assert_eq!(
        &text[last + select.len()..last + select.len() + 1],
        "3",
        "DEL in3 runs in db 3:\n{text}"
    );
    stop(s, "term");
}

/// A Redis 6 style single `appendonly.aof` in the working directory is moved into the AOF
/// directory as its base, as redis-server 7 does, and loaded.
fn ferrite_upgrades_old_style_aof(backend: &str) {
    let dir = TempDir::new("aof-old-style");
    let old = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$3\r\nold\r\n$5\r\nstyle\r\n";
    fs::write(dir.path().join("appendonly.aof"), old).expect("write");
    let s = start(backend, dir.path(), &[]);
    let v: Option<String> = client(s.port).get("old").expect("GET");
    assert_eq!(v.as_deref(), Some("style"));
    assert!(
        s.log()
            .contains("Successfully migrated an old-style AOF file"),
        "{}",
        s.log()
    );
    stop(s, "term");
    let manifest = fs::read_to_string(dir.path().join("appendonlydir/appendonly.aof.manifest"))
        .expect("manifest");
    assert_eq!(
        manifest,
        "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert!(!dir.path().join("appendonly.aof").exists());
}
