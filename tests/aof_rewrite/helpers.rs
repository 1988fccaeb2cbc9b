//! Starting Ferrite on a directory, workloads, and reading a server's whole dataset and state.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use redis::{Commands, Value};

use super::common::{Conn, Ferrite};

/// Ferrite with `--appendonly yes` (unless `extra` says otherwise) in `dir`, on 2 reactor
/// threads.
pub(crate) fn start(backend: &str, dir: &Path, extra: &[&str]) -> Ferrite {
    Ferrite::start_aof_in(backend, dir, extra).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn client(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// SIGKILL, and wait for the process to be gone.
pub(crate) fn kill9(s: &mut Ferrite) {
    s.kill9();
}

/// `kill` (SIGKILL) or a clean SIGTERM exit.
pub(crate) fn stop(mut s: Ferrite, how: &str) {
    if how == "kill" {
        kill9(&mut s);
    } else {
        let st = s.terminate(Duration::from_secs(20));
        assert!(
            st.is_some_and(|s| s.success()),
            "clean exit: {st:?}\n{}",
            s.log()
        );
    }
}

/// The processes whose parent is `pid` (a rewrite child).
pub(crate) fn children_of(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// A seeded xorshift, as tests/aof.rs (the model drives it).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A seed from `AOF_TEST_SEED` or the clock, printed for replay.
pub(crate) fn seed(name: &str) -> u64 {
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
    seed
}

/// `pre:0..n` = `value-<i>`, pipelined.
pub(crate) fn preload(c: &mut redis::Connection, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut p = redis::pipe();
        for i in chunk {
            p.set(format!("pre:{i}"), format!("value-{i}")).ignore();
        }
        let _: () = p.query(c).expect("preload");
    }
}

/// `rounds` rounds of overwriting the same keys of every type (and TTLs, and a second
/// database): the AOF grows with every round, the dataset does not.
pub(crate) fn overwrite_workload(c: &mut redis::Connection, rounds: usize) {
    for r in 0..rounds {
        let mut p = redis::pipe();
        for k in 0..100 {
            p.set(format!("s{k}"), format!("round-{r}-{k}")).ignore();
            p.hset(format!("h{}", k % 10), format!("f{k}"), r).ignore();
            p.zadd(
                format!("z{}", k % 10),
                format!("m{k}"),
                (r * k) as f64 + 0.5,
            )
            .ignore();
        }
        for k in 0..10 {
            p.rpush(format!("l{k}"), r).ignore();
            p.lpop(format!("l{k}"), None).ignore();
            p.sadd(format!("set{k}"), format!("a{r}")).ignore();
            p.srem(format!("set{k}"), format!("a{}", r.saturating_sub(1)))
                .ignore();
            p.cmd("SET")
                .arg(format!("ttl{k}"))
                .arg(r)
                .arg("EX")
                .arg(100_000 + k)
                .ignore();
        }
        p.cmd("SELECT").arg(3).ignore();
        p.incr("in3", 1).ignore();
        p.cmd("SELECT").arg(0).ignore();
        let _: () = p.query(c).expect("workload");
    }
}

/// A few of each type, a TTL, two databases, a big value.
pub(crate) fn mixed_workload(c: &mut redis::Connection) {
    let cmds: &[&[&str]] = &[
        &["SET", "s", "1"],
        &["SET", "ex", "v", "EX", "100000"],
        &["INCR", "s"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["RPUSH", "l", "a", "b", "c", "d"],
        &["LPOP", "l"],
        &["SADD", "set", "a", "b", "c", "12", "-3"],
        &["SADD", "intset", "1", "2", "3"],
        &["HSET", "h", "a", "1", "b", "2"],
        &["ZADD", "z", "1", "a", "2.5", "b", "-inf", "c", "1e300", "d"],
        &["PEXPIREAT", "z", "99999999999999"],
        &["XADD", "x", "1-1", "f", "v"],
        &["XADD", "x", "2-*", "f", "w", "n", "12"],
        &["XADD", "x", "3-0", "big", "y"],
        &["XDEL", "x", "2-0"],
        &["XGROUP", "CREATE", "x", "g", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "x",
            ">",
        ],
        &["XGROUP", "CREATECONSUMER", "x", "g", "bob"],
        &["XGROUP", "CREATE", "x", "idle", "$"],
        &["XADD", "emptied", "5-5", "a", "b"],
        &["XDEL", "emptied", "5-5"],
        &["XGROUP", "CREATE", "made", "g", "$", "MKSTREAM"],
        &["SELECT", "2"],
        &["SET", "in2", "x"],
        &["RPUSH", "l2", "x"],
        &["SELECT", "0"],
    ];
    for cmd in cmds {
        let mut q = redis::cmd(cmd[0]);
        for a in &cmd[1..] {
            q.arg(*a);
        }
        let _: Value = q.query(c).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    }
    let big = "B".repeat(100_000);
    let _: () = c.set("big", &big).expect("SET big");
    let mut p = redis::pipe();
    for i in 0..300 {
        p.rpush("biglist", format!("item-{i}")).ignore();
        p.hset("bighash", format!("f{i}"), i).ignore();
        p.zadd("bigz", format!("m{i}"), i).ignore();
        p.sadd("bigset", format!("e{i}")).ignore();
    }
    let _: () = p.query(c).expect("big collections");
}

/// Every key of every database: type, value and absolute expiry (PEXPIRETIME).
pub(crate) fn snapshot_all(c: &mut redis::Connection) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for db in 0..16 {
        let _: () = redis::cmd("SELECT").arg(db).query(c).expect("SELECT");
        let keys: Vec<String> = c.keys("*").expect("KEYS");
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
                // Entries, then groups (pending counts, last IDs, entries-read and lag) and
                // the pending summary of `g`: everything but times.
                "stream" => {
                    let parts: redis::RedisResult<Vec<Value>> = [
                        redis::cmd("XRANGE").arg(&k).arg("-").arg("+").query(c),
                        redis::cmd("XINFO").arg("GROUPS").arg(&k).query(c),
                        redis::cmd("XPENDING")
                            .arg(&k)
                            .arg("g")
                            .query(c)
                            .or(Ok(Value::Nil)),
                    ]
                    .into_iter()
                    .collect();
                    parts.map(Value::Array)
                }
                _ => Ok(Value::Nil),
            }
            .expect("read");
            let v = match v {
                // HGETALL order is the encoding's: compare as a map.
                Value::Array(items) if t == "hash" => {
                    let mut pairs: Vec<String> = items
                        .chunks(2)
                        .map(|p| format!("{:?}={:?}", p[0], p.get(1)))
                        .collect();
                    pairs.sort();
                    format!("{pairs:?}")
                }
                other => format!("{other:?}"),
            };
            let exp: i64 = redis::cmd("PEXPIRETIME")
                .arg(&k)
                .query(c)
                .expect("PEXPIRETIME");
            out.insert(format!("{db}:{k}"), format!("{t} {v} expire:{exp}"));
        }
    }
    let _: () = redis::cmd("SELECT").arg(0).query(c).expect("SELECT");
    out
}

/// Total bytes of `dir/appendonlydir`.
pub(crate) fn aof_dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir.join("appendonlydir"))
        .expect("appendonlydir")
        .flatten()
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

/// The manifest's text.
pub(crate) fn manifest(dir: &Path) -> String {
    fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).expect("manifest")
}

/// One INFO persistence field.
pub(crate) fn info_field(c: &mut Conn, name: &str) -> String {
    let reply = c.cmd_str(&["INFO", "persistence"]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let prefix = format!("{name}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Waits (up to 60 s) until INFO shows `name:value`.
pub(crate) fn wait_for(c: &mut Conn, name: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(c, name) != value {
        assert!(Instant::now() < deadline, "{name} never became {value}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `n` rewrites have started and none is running or scheduled, and the last one
/// succeeded.
pub(crate) fn wait_rewrites(c: &mut Conn, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started: u64 = info_field(c, "aof_rewrites").parse().expect("aof_rewrites");
        if started >= n
            && info_field(c, "aof_rewrite_in_progress") == "0"
            && info_field(c, "aof_rewrite_scheduled") == "0"
        {
            break;
        }
        assert!(Instant::now() < deadline, "rewrite {n} never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(info_field(c, "aof_last_bgrewrite_status"), "ok");
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
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
