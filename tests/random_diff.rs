//! Seeded random differential test: long random command sequences over every data type, from a
//! small key space (so types collide and WRONGTYPE happens), sent to a real redis-server and to
//! Ferrite (`--threads 2`, each I/O backend), comparing every reply byte for byte.
//!
//! The seed is random per run and always printed; replay a failure with
//! `RANDOM_DIFF_SEED=<seed> cargo test --test random_diff`. `RANDOM_DIFF_STEPS` changes the
//! number of commands per seed (default 3000).
//!
//! Also here: DUMP/RESTORE across the two servers in both directions, and redis-benchmark's
//! data-type tests against Ferrite.

mod common;
#[path = "random_diff/streams.rs"]
mod streams;

use common::{Conn, Ferrite, RedisServer, escape, sort_reply};
use std::collections::VecDeque;
use std::process::Command;
use std::time::{Duration, Instant};

per_backend!(random_commands, dump_restore_across, datatypes_benchmark);

/// How two replies are compared.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    /// Byte for byte.
    Exact,
    /// After sorting the top-level elements (unordered collections).
    Sorted,
    /// Only the reply type, and for integers the class -2 / -1 / >= 0 (TTLs).
    Class,
    /// DUMP: exact, except payloads of hash tables, whose order is each server's own.
    Dump,
}

/// A generated command.
struct Step {
    args: Vec<Vec<u8>>,
    cmp: Cmp,
    /// Milliseconds to sleep after it (lets short PEXPIREs pass on both servers).
    sleep_ms: u64,
}

/// xorshift64*: small, seedable, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k\x00 7"];
const MEMBERS: &[&str] = &[
    "a", "b", "c", "d", "1", "2", "10", "-3", "", "x y", "007", "1.5", "zz\x00z",
];

fn key(r: &mut Rng) -> String {
    r.pick(KEYS).to_string()
}

fn member(r: &mut Rng) -> String {
    if r.chance(15) {
        r.range(-1000, 100_000).to_string()
    } else {
        r.pick(MEMBERS).to_string()
    }
}

fn int(r: &mut Rng) -> String {
    match r.below(10) {
        0 => r
            .pick(&["9223372036854775807", "-9223372036854775808", "abc", "1.5"])
            .to_string(),
        1..=3 => r.range(-3, 3).to_string(),
        _ => r.range(-20, 20).to_string(),
    }
}

fn score(r: &mut Rng) -> String {
    match r.below(12) {
        0 => r
            .pick(&["inf", "-inf", "+inf", "nan", "1e309", "x"])
            .to_string(),
        1 => format!("{}.{}", r.range(-50, 50), r.range(0, 99)),
        _ => r.range(-10, 10).to_string(),
    }
}

/// One random command over the whole implemented surface.
fn gen_step(r: &mut Rng) -> Step {
    use Cmp::*;
    let k = key(r);
    let k2 = key(r);
    let m = member(r);
    let m2 = member(r);
    let i = int(r);
    let i2 = int(r);
    let (s, s2) = (score(r), score(r));
    let mut sleep_ms = 0;
    let (cmp, line): (Cmp, Vec<String>) = match r.below(155) {
        // strings
        0 => (Exact, vec!["SET".into(), k, m]),
        1 => (Exact, vec!["GET".into(), k]),
        2 => (Exact, vec!["APPEND".into(), k, m]),
        3 => (Exact, vec!["INCRBY".into(), k, i]),
        4 => (Exact, vec!["INCR".into(), k]),
        5 => (Exact, vec!["DECRBY".into(), k, i]),
        6 => (Exact, vec!["STRLEN".into(), k]),
        7 => (Exact, vec!["GETRANGE".into(), k, i, i2]),
        8 => (
            Exact,
            vec!["SETRANGE".into(), k, r.range(0, 20).to_string(), m],
        ),
        9 => (Exact, vec!["MSET".into(), k, m, k2, m2]),
        10 => (Exact, vec!["MGET".into(), k, k2, "nokey".into()]),
        11 => (Exact, vec!["GETDEL".into(), k]),
        12 => (Exact, vec!["SETNX".into(), k, m]),
        13 => (Exact, vec!["INCRBYFLOAT".into(), k, s]),
        // keys
        14 => (Exact, vec!["DEL".into(), k, k2]),
        15 => (Exact, vec!["EXISTS".into(), k.clone(), k2, k]),
        16 => (Exact, vec!["TYPE".into(), k]),
        17 => (
            Exact,
            vec!["EXPIRE".into(), k, r.range(50, 1000).to_string()],
        ),
        18 => (Class, vec!["TTL".into(), k]),
        19 => (Exact, vec!["PERSIST".into(), k]),
        20 => (Exact, vec!["RENAME".into(), k, k2]),
        21 => (Exact, vec!["COPY".into(), k, k2, "REPLACE".into()]),
        22 if r.chance(30) => {
            // A TTL that passes before the next command on both servers.
            sleep_ms = 15;
            (Exact, vec!["PEXPIRE".into(), k, r.range(1, 5).to_string()])
        }
        // Not OBJECT ENCODING: Ferrite reports the encoding SET would give a string, where Redis
        // says "raw" after APPEND or SETRANGE.
        23 => (Exact, vec!["STRLEN".into(), k]),
        24 => (Sorted, vec!["KEYS".into(), "k*".into()]),
        25 => (Dump, vec!["DUMP".into(), k]),
        // lists
        26..=28 => (Exact, vec![r.pick(&["LPUSH", "RPUSH"]).into(), k, m, m2]),
        29 => (Exact, vec![r.pick(&["LPOP", "RPOP"]).into(), k]),
        30 => (
            Exact,
            vec![
                r.pick(&["LPOP", "RPOP"]).into(),
                k,
                r.range(-1, 4).to_string(),
            ],
        ),
        31 | 32 => (Exact, vec!["LRANGE".into(), k, i, i2]),
        33 => (Exact, vec!["LLEN".into(), k]),
        34 => (Exact, vec!["LINDEX".into(), k, i]),
        35 => (Exact, vec!["LSET".into(), k, i, m]),
        36 => (Exact, vec!["LREM".into(), k, i, m]),
        37 => (Exact, vec!["LTRIM".into(), k, i, i2]),
        38 => (
            Exact,
            vec![
                "LINSERT".into(),
                k,
                r.pick(&["BEFORE", "AFTER", "X"]).into(),
                m,
                m2,
            ],
        ),
        39 => (Exact, vec!["LPOS".into(), k, m]),
        40 => (
            Exact,
            vec![
                "LMOVE".into(),
                k,
                k2,
                r.pick(&["LEFT", "RIGHT"]).into(),
                r.pick(&["LEFT", "RIGHT"]).into(),
            ],
        ),
        // hashes
        41..=43 => (Exact, vec!["HSET".into(), k, m, m2]),
        44 => (Exact, vec!["HGET".into(), k, m]),
        45 => (Exact, vec!["HDEL".into(), k, m, m2]),
        46 => (Exact, vec!["HLEN".into(), k]),
        47 => (Exact, vec!["HINCRBY".into(), k, m, i]),
        48 => (Sorted, vec!["HGETALL".into(), k]),
        49 => (Exact, vec!["HEXISTS".into(), k, m]),
        50 => (Exact, vec!["HMGET".into(), k, m, m2]),
        51 => (Exact, vec!["HSETNX".into(), k, m, m2]),
        // sets
        52..=54 => (Exact, vec!["SADD".into(), k, m, m2]),
        55 => (Exact, vec!["SREM".into(), k, m]),
        56 => (Exact, vec!["SCARD".into(), k]),
        57 => (Exact, vec!["SISMEMBER".into(), k, m]),
        58 => (Sorted, vec!["SMEMBERS".into(), k]),
        59 => (
            Sorted,
            vec![r.pick(&["SINTER", "SUNION", "SDIFF"]).into(), k, k2],
        ),
        60 => (
            Exact,
            vec![
                r.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]).into(),
                k,
                k2,
                key(r),
            ],
        ),
        61 => (Exact, vec!["SMOVE".into(), k, k2, m]),
        62 => (Exact, vec!["SMISMEMBER".into(), k, m, m2]),
        // sorted sets
        63..=65 => (Exact, vec!["ZADD".into(), k, s, m, s2, m2]),
        66 => (
            Exact,
            vec![
                "ZADD".into(),
                k,
                r.pick(&["NX", "XX", "GT", "LT", "CH", "INCR"]).into(),
                s,
                m,
            ],
        ),
        67 => (Exact, vec!["ZINCRBY".into(), k, s, m]),
        68 => (Exact, vec!["ZREM".into(), k, m]),
        69 | 70 => (Exact, vec!["ZRANGE".into(), k, i, i2, "WITHSCORES".into()]),
        71 => (
            Exact,
            vec!["ZRANGEBYSCORE".into(), k, s, s2, "WITHSCORES".into()],
        ),
        72 => (Exact, vec!["ZSCORE".into(), k, m]),
        73 => (Exact, vec!["ZRANK".into(), k, m]),
        74 => (Exact, vec!["ZCARD".into(), k]),
        75 => (
            Exact,
            vec![
                r.pick(&["ZPOPMIN", "ZPOPMAX"]).into(),
                k,
                r.range(-1, 3).to_string(),
            ],
        ),
        76 => (
            Exact,
            vec![
                r.pick(&["ZUNIONSTORE", "ZINTERSTORE"]).into(),
                key(r),
                "2".into(),
                k,
                k2,
            ],
        ),
        77 => (Exact, vec!["ZCOUNT".into(), k, s, s2]),
        78 => (Exact, vec!["ZREVRANGE".into(), k, i, i2]),
        // HyperLogLog
        79 | 80 => (Exact, vec!["PFADD".into(), k, m, m2]),
        81 => (Exact, vec!["PFCOUNT".into(), k]),
        82 => (Exact, vec!["PFMERGE".into(), k, k2]),
        // geo
        83 | 84 => (
            Exact,
            vec![
                "GEOADD".into(),
                k,
                format!("{}.{}", r.range(-179, 179), r.range(0, 999)),
                format!("{}.{}", r.range(-84, 84), r.range(0, 999)),
                m,
            ],
        ),
        85 => (Exact, vec!["GEODIST".into(), k, m, m2]),
        86 => (Exact, vec!["GEOHASH".into(), k, m, m2]),
        // Members at the same distance come in an unspecified order.
        87 => (
            Sorted,
            vec![
                "GEOSEARCH".into(),
                k,
                "FROMLONLAT".into(),
                "0".into(),
                "0".into(),
                "BYRADIUS".into(),
                "20000".into(),
                "km".into(),
                "ASC".into(),
            ],
        ),
        // SORT
        88 => (Exact, vec!["SORT".into(), k]),
        89 => (Exact, vec!["SORT".into(), k, "ALPHA".into(), "DESC".into()]),
        90 => (
            Exact,
            vec![
                "SORT".into(),
                k,
                "ALPHA".into(),
                "LIMIT".into(),
                "1".into(),
                "3".into(),
                "STORE".into(),
                k2,
            ],
        ),
        // BY nosort keeps a hash-table set's own (arbitrary) order.
        91 => (
            Sorted,
            vec![
                "SORT_RO".into(),
                k,
                "BY".into(),
                "nosort".into(),
                "GET".into(),
                "#".into(),
                "GET".into(),
                "k*".into(),
            ],
        ),
        // RESTORE of a DUMP: both servers dump the same key then restore it elsewhere, and the
        // copy must read back the same.
        92 => (Exact, vec!["TYPE".into(), k]),
        93 => (Exact, vec!["SELECT".into(), "0".into()]),
        94 => (Exact, vec!["FLUSHDB".into()]),
        // Not DBSIZE: it counts expired keys until they are reaped, at each server's own pace.
        95 => (Exact, vec!["ECHO".into(), m]),
        96..=139 => more_step(r, k, k2, m, m2, i, i2, s, s2),
        140..=154 => streams::step(r, k, k2, m, m2),
        _ => (Exact, vec!["EXISTS".into(), k]),
    };
    // Rare FLUSHDB keeps collections from growing forever.
    let line = if line[0] == "FLUSHDB" && !r.chance(5) {
        vec!["PING".to_string()]
    } else {
        line
    };
    Step {
        args: line.into_iter().map(String::into_bytes).collect(),
        cmp,
        sleep_ms,
    }
}

/// The rest of the surface: option forms and the less common commands of each type (none
/// whose reply is random).
#[allow(clippy::too_many_arguments)]
fn more_step(
    r: &mut Rng,
    k: String,
    k2: String,
    m: String,
    m2: String,
    i: String,
    i2: String,
    s: String,
    s2: String,
) -> (Cmp, Vec<String>) {
    use Cmp::*;
    let v = |items: &[&str]| -> Vec<String> { items.iter().map(|x| x.to_string()).collect() };
    let bit = r.range(0, 40).to_string();
    match r.below(51) {
        // strings
        0 => (
            Exact,
            v(&["SET", &k, &m, r.pick(&["NX", "XX", "GET", "KEEPTTL"])]),
        ),
        1 => (Exact, v(&["SET", &k, &m, "XX", "GET", "EX", "100"])),
        // A TTL far beyond the run: one that ran out mid-run could do so between the moments
        // the two servers answer a command.
        2 => (
            Exact,
            v(&["GETEX", &k, r.pick(&["EX", "PX", "PERSIST"]), "500000"]),
        ),
        3 => (Exact, v(&["GETSET", &k, &m])),
        4 => (Exact, v(&["MSETNX", &k, &m, &k2, &m2])),
        5 => (Exact, v(&["DECR", &k])),
        6 => (Exact, v(&["SUBSTR", &k, &i, &i2])),
        7 => (Exact, v(&["LCS", &k, &k2])),
        8 => (Exact, v(&["LCS", &k, &k2, "IDX", "WITHMATCHLEN"])),
        9 => (Exact, v(&["SETBIT", &k, &bit, r.pick(&["0", "1", "2"])])),
        10 => (Exact, v(&["GETBIT", &k, &bit])),
        11 => (Exact, v(&["BITCOUNT", &k, &i, &i2])),
        12 => (Exact, v(&["BITPOS", &k, r.pick(&["0", "1"]), &i])),
        13 => (
            Exact,
            v(&["BITOP", r.pick(&["AND", "OR", "XOR", "NOT"]), &k, &k2]),
        ),
        14 => (
            Exact,
            v(&[
                "BITFIELD", &k, "INCRBY", "i5", &bit, &i, "GET", "u4", "0", "OVERFLOW", "SAT",
                "INCRBY", "u2", "3", "1",
            ]),
        ),
        15 => (Exact, v(&["SETEX", &k, "100", &m])),
        // keys
        16 => (Exact, v(&["RENAMENX", &k, &k2])),
        // Reply by type only: GT/LT against an expiry set by an equal relative TTL earlier
        // depend on whether a millisecond passed in between, on each server's own clock
        // (tests/diff/keys.txt checks the options exactly).
        17 => (
            Class,
            v(&["EXPIRE", &k, "500", r.pick(&["NX", "XX", "GT", "LT"])]),
        ),
        18 => (Class, v(&["EXPIRETIME", &k])),
        19 => (Exact, v(&["TOUCH", &k, &k2])),
        20 => (Exact, v(&["UNLINK", &k])),
        // hashes
        21 => (Exact, v(&["HINCRBYFLOAT", &k, &m, &s])),
        22 => (Exact, v(&["HSTRLEN", &k, &m])),
        23 => (Sorted, v(&[r.pick(&["HKEYS", "HVALS"]), &k])),
        // lists
        24 => (Exact, v(&[r.pick(&["LPUSHX", "RPUSHX"]), &k, &m])),
        25 => (Exact, v(&["RPOPLPUSH", &k, &k2])),
        26 => (
            Exact,
            v(&[
                "LMPOP",
                "2",
                &k,
                &k2,
                r.pick(&["LEFT", "RIGHT"]),
                "COUNT",
                "2",
            ]),
        ),
        27 => (Exact, v(&["LPOS", &k, &m, "RANK", "-1", "COUNT", "0"])),
        // sets
        28 => (Exact, v(&["SINTERCARD", "2", &k, &k2, "LIMIT", "3"])),
        // sorted sets
        29 => (
            Exact,
            v(&["ZMPOP", "2", &k, &k2, r.pick(&["MIN", "MAX"]), "COUNT", "2"]),
        ),
        30 => (Exact, v(&["ZINTERCARD", "2", &k, &k2])),
        31 => (Exact, v(&["ZRANGESTORE", &k2, &k, &i, &i2])),
        // Lex ranges are specified for one score only. With mixed scores Ferrite answers as
        // Redis for listpack-sized sets (it walks them as Redis walks a listpack), but a
        // skiplist's answer depends on its random levels: random keys compare the reply's type
        // only, and `kz`, whose members all score 0, compares exactly.
        32 => (Class, v(&["ZLEXCOUNT", &k, "-", "+"])),
        33 => (Class, v(&["ZRANGEBYLEX", &k, "[a", "(z"])),
        34 => (Exact, v(&["ZREMRANGEBYSCORE", &k, &s, &s2])),
        35 => (Exact, v(&["ZREMRANGEBYRANK", &k, &i, &i2])),
        36 => (Exact, v(&["ZMSCORE", &k, &m, &m2])),
        37 => (
            Exact,
            v(&[
                r.pick(&["ZDIFF", "ZUNION", "ZINTER"]),
                "2",
                &k,
                &k2,
                "WITHSCORES",
            ]),
        ),
        38 => (Exact, v(&["ZREVRANK", &k, &m])),
        39 => (
            Exact,
            v(&["ZRANGE", &k, &s2, &s, "BYSCORE", "REV", "LIMIT", "0", "2"]),
        ),
        // (Not ZREMRANGEBYLEX on random keys: with mixed scores a skiplist's answer depends on
        // its random levels, and a different removal would make the servers' data diverge.)
        40 => (Class, v(&["ZREVRANGEBYLEX", &k, "[z", "-"])),
        41 => (Exact, v(&["ZADD", &k, "GT", "CH", &s, &m, &s2, &m2])),
        42 => (Exact, v(&["HRANDFIELD", "nokey"])),
        43 => (Exact, v(&["OBJECT", "FREQ", &k])),
        44 | 45 => (Exact, v(&["ZADD", "kz", "0", &m, "0", &m2])),
        46 => (
            Exact,
            v(&["ZRANGEBYLEX", "kz", "[a", "(z", "LIMIT", "0", "3"]),
        ),
        47 => (Exact, v(&["ZREVRANGEBYLEX", "kz", "+", "[1"])),
        48 => (Exact, v(&["ZLEXCOUNT", "kz", "(1", "[x y"])),
        49 => (Exact, v(&["ZREMRANGEBYLEX", "kz", "[1", "(a"])),
        _ => (Exact, v(&["ZRANGE", "kz", "[b", "-", "BYLEX", "REV"])),
    }
}

/// The integer class used for TTLs: -2, -1 or >= 0.
fn class(reply: &[u8]) -> (u8, i64) {
    let first = reply.first().copied().unwrap_or(0);
    let n = std::str::from_utf8(reply.get(1..).unwrap_or(b""))
        .ok()
        .and_then(|s| s.trim_end().parse::<i64>().ok())
        .unwrap_or(0);
    (first, if n >= 0 { 0 } else { n.max(-2) })
}

/// Whether a DUMP reply holds a hash table (RDB type 2, a set, or 4, a hash), whose order is
/// each server's own.
fn is_table_dump(reply: &[u8]) -> bool {
    matches!(
        reply
            .iter()
            .position(|&b| b == b'\n')
            .and_then(|i| reply.get(i + 1)),
        Some(2 | 4)
    )
}

fn same(cmp: Cmp, a: &[u8], b: &[u8]) -> bool {
    match cmp {
        Cmp::Exact => a == b,
        Cmp::Sorted => sort_reply(a) == sort_reply(b),
        Cmp::Class => class(a) == class(b),
        Cmp::Dump if is_table_dump(a) && is_table_dump(b) => a.len() == b.len(),
        Cmp::Dump => a == b,
    }
}

fn render(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| format!("\"{}\"", escape(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The seed of this run: `RANDOM_DIFF_SEED`, or the clock.
fn run_seed() -> u64 {
    match std::env::var("RANDOM_DIFF_SEED") {
        Ok(s) => s.trim().parse().expect("RANDOM_DIFF_SEED must be a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

fn steps_per_seed() -> usize {
    std::env::var("RANDOM_DIFF_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

/// Runs one seed's sequence against both servers; Err describes the first mismatch.
fn run_sequence(
    seed: u64,
    redis_port: u16,
    redis: &mut Conn,
    ferrite: &mut Conn,
    backend: &str,
) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let mut recent: VecDeque<String> = VecDeque::new();
    // RANDOM_DIFF_TRACE=path writes every command of the run, one per line, for debugging, to
    // `path.<backend>` (the backends run at the same time).
    let mut trace = std::env::var_os("RANDOM_DIFF_TRACE").and_then(|p| {
        let mut p = p;
        p.push(format!(".{backend}"));
        std::fs::File::create(p).ok()
    });
    for conn in [&mut *redis, &mut *ferrite] {
        conn.cmd(&[b"FLUSHALL"]);
    }
    for step_no in 0..steps_per_seed() {
        let step = gen_step(&mut rng);
        let args: Vec<&[u8]> = step.args.iter().map(Vec::as_slice).collect();
        let a = redis.try_send(&args).and_then(|()| redis.try_read_reply());
        let b = ferrite
            .try_send(&args)
            .and_then(|()| ferrite.try_read_reply());
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                return Err(format!(
                    "seed {seed} step {step_no} [{backend}]: {}\n  redis: {a:?}\n  ferrite: {b:?}",
                    render(&step.args)
                ));
            }
        };
        // Redis 7.0's SORT never clears errno before strtod, so an ERANGE left by an earlier
        // libc call (math in GEO commands, not only parsing) fails it spuriously until some
        // syscall overwrites errno. A new connection does (accept() ends in EAGAIN): reset it
        // that way and ask Redis again.
        let a = if a.starts_with(b"-ERR One or more scores") && !b.starts_with(b"-") {
            drop(Conn::connect(redis_port));
            std::thread::sleep(Duration::from_millis(5));
            redis.cmd(&args)
        } else {
            a
        };
        if !same(step.cmp, &a, &b) {
            return Err(format!(
                "random differential mismatch [{backend}]\n  seed {seed}, step {step_no}\n  \
                 command: {}\n  redis:   {}\n  ferrite: {}\n  recent commands:\n    {}\n  \
                 replay: RANDOM_DIFF_SEED={seed} cargo test --test random_diff",
                render(&step.args),
                escape(&a),
                escape(&b),
                recent.iter().cloned().collect::<Vec<_>>().join("\n    "),
            ));
        }
        if let Some(t) = trace.as_mut() {
            use std::io::Write as _;
            let _ = writeln!(t, "{}", render(&step.args));
        }
        recent.push_back(render(&step.args));
        if recent.len() > 12 {
            recent.pop_front();
        }
        if step.sleep_ms > 0 {
            std::thread::sleep(Duration::from_millis(step.sleep_ms));
        }
    }
    Ok(())
}

fn random_commands(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ferrite = Ferrite::start(backend, &["--threads", "2"]);
    let seed = run_seed();
    eprintln!(
        "random_diff [{backend}]: seed {seed} (replay: RANDOM_DIFF_SEED={seed} cargo test --test \
         random_diff)"
    );
    let (mut rc, mut fc) = (redis.conn(), ferrite.conn());
    let t0 = Instant::now();
    for s in 0..3 {
        let seed = seed.wrapping_add(s);
        if let Err(e) = run_sequence(seed, redis.port, &mut rc, &mut fc, backend) {
            panic!("{e}");
        }
    }
    eprintln!(
        "random_diff [{backend}]: 3 x {} commands agreed in {:.1} s",
        steps_per_seed(),
        t0.elapsed().as_secs_f64()
    );
}

/// The bulk payload of a `$` reply.
fn bulk_payload(reply: &[u8]) -> Option<Vec<u8>> {
    let nl = reply.iter().position(|&b| b == b'\n')?;
    let len: usize = std::str::from_utf8(reply.get(1..nl - 1)?)
        .ok()?
        .parse()
        .ok()?;
    reply.get(nl + 1..nl + 1 + len).map(<[u8]>::to_vec)
}

/// Reads a key's whole contents as a comparable reply (unordered types sorted).
fn contents(c: &mut Conn, key: &[u8]) -> Vec<u8> {
    let t = c.cmd(&[b"TYPE", key]);
    let r = match &t[..] {
        b"+string\r\n" => c.cmd(&[b"GET", key]),
        b"+list\r\n" => c.cmd(&[b"LRANGE", key, b"0", b"-1"]),
        b"+hash\r\n" => sort_reply(&c.cmd(&[b"HGETALL", key])),
        b"+set\r\n" => sort_reply(&c.cmd(&[b"SMEMBERS", key])),
        b"+zset\r\n" => c.cmd(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]),
        b"+stream\r\n" => [
            c.cmd(&[b"XRANGE", key, b"-", b"+"]),
            c.cmd(&[b"XINFO", b"GROUPS", key]),
        ]
        .concat(),
        _ => Vec::new(),
    };
    [t, r].concat()
}

/// Values of every type and size, DUMPed by one server and RESTOREd into the other (both ways);
/// the copies must read back the same, and Redis must accept every Ferrite payload.
fn dump_restore_across(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ferrite = Ferrite::start(backend, &["--threads", "2"]);
    let (mut rc, mut fc) = (redis.conn(), ferrite.conn());
    let mut setup: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut add =
        |args: Vec<String>| setup.push(args.into_iter().map(String::into_bytes).collect());
    add(vec!["SET".into(), "s1".into(), "hello".into()]);
    add(vec!["SET".into(), "s2".into(), "-123456".into()]);
    add(vec!["SET".into(), "s3".into(), "abc".repeat(400)]);
    add(vec!["SET".into(), "s4".into(), "bin\x00\u{7f}".repeat(9)]);
    let mut l = vec!["RPUSH".to_string(), "l1".into()];
    l.extend((0..3000).map(|i| format!("item-{}", i * 7919 % 10007)));
    add(l);
    add(vec![
        "LPUSH".into(),
        "l2".into(),
        "x".into(),
        "-1".into(),
        "".into(),
    ]);
    let mut h = vec!["HSET".to_string(), "h1".into()];
    h.extend((0..50).flat_map(|i| [format!("f{i}"), format!("{}", i * 37)]));
    add(h);
    let mut h = vec!["HSET".to_string(), "h2".into()];
    h.extend((0..500).flat_map(|i| [format!("field{i}"), "v".repeat(i % 90)]));
    add(h);
    let mut s = vec!["SADD".to_string(), "set1".into()];
    s.extend((0..300).map(|i| (i * 1_000_003 - 70_000).to_string()));
    add(s);
    let mut s = vec!["SADD".to_string(), "set2".into()];
    s.extend((0..700).map(|i| format!("m{i}")));
    add(s);
    let mut z = vec!["ZADD".to_string(), "z1".into()];
    z.extend((0..100).flat_map(|i| [format!("{}", f64::from(i) / 8.0 - 3.0), format!("e{i}")]));
    add(z);
    let mut z = vec!["ZADD".to_string(), "z2".into()];
    z.extend((0..1000).flat_map(|i| [format!("{}", i % 17), format!("member-{i}")]));
    add(z);
    add(vec![
        "ZADD".into(),
        "z3".into(),
        "-inf".into(),
        "a".into(),
        "inf".into(),
        "b".into(),
    ]);
    // A stream of several nodes with deletions, a group with pending entries, and an emptied
    // stream that keeps its IDs.
    for i in 1..=400 {
        let v = if i % 60 == 0 {
            "w".repeat(2000)
        } else {
            format!("v{i}")
        };
        add(vec![
            "XADD".into(),
            "x1".into(),
            format!("{i}-{}", i % 4),
            "f".into(),
            v,
        ]);
    }
    add(vec![
        "XDEL".into(),
        "x1".into(),
        "5-1".into(),
        "200-0".into(),
    ]);
    add(vec![
        "XGROUP".into(),
        "CREATE".into(),
        "x1".into(),
        "g".into(),
        "0".into(),
    ]);
    add(vec![
        "XREADGROUP".into(),
        "GROUP".into(),
        "g".into(),
        "c".into(),
        "COUNT".into(),
        "5".into(),
        "STREAMS".into(),
        "x1".into(),
        ">".into(),
    ]);
    add(vec![
        "XADD".into(),
        "x2".into(),
        "9-9".into(),
        "a".into(),
        "1".into(),
    ]);
    add(vec!["XDEL".into(), "x2".into(), "9-9".into()]);
    let mut keys: Vec<Vec<u8>> = setup
        .iter()
        .filter(|c| !c[0].starts_with(b"XGROUP") && !c[0].starts_with(b"XREADGROUP"))
        .map(|c| c[1].clone())
        .collect();
    keys.dedup();
    for conn in [&mut rc, &mut fc] {
        conn.cmd(&[b"FLUSHALL"]);
        for c in &setup {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            let r = conn.cmd(&args);
            assert_ne!(
                r.first(),
                Some(&b'-'),
                "setup {}: {}",
                render(c),
                escape(&r)
            );
        }
    }
    for swap in [false, true] {
        let (from, to, dir) = if swap {
            (&mut fc, &mut rc, "ferrite -> redis")
        } else {
            (&mut rc, &mut fc, "redis -> ferrite")
        };
        for k in &keys {
            let dumped = from.cmd(&[b"DUMP", k]);
            let payload =
                bulk_payload(&dumped).unwrap_or_else(|| panic!("DUMP {k:?}: {}", escape(&dumped)));
            let copy = [b"copy-".as_slice(), k].concat();
            let r = to.cmd(&[b"RESTORE", &copy, b"0", &payload, b"REPLACE"]);
            assert_eq!(r, b"+OK\r\n", "[{backend}] {dir}: RESTORE of {}", escape(k));
            assert_eq!(
                escape(&contents(to, &copy)),
                escape(&contents(from, k)),
                "[{backend}] {dir}: contents of {} after RESTORE",
                escape(k)
            );
            let (e1, e2) = (
                from.cmd(&[b"OBJECT", b"ENCODING", k]),
                to.cmd(&[b"OBJECT", b"ENCODING", &copy]),
            );
            assert_eq!(e1, e2, "[{backend}] {dir}: encoding of {}", escape(k));
        }
    }
    // Payloads with a TTL and ABSTTL keep their expiry.
    let dumped = rc.cmd(&[b"DUMP", b"s1"]);
    let payload = bulk_payload(&dumped).unwrap();
    assert_eq!(fc.cmd(&[b"RESTORE", b"t", b"100000", &payload]), b"+OK\r\n");
    let ttl = String::from_utf8(fc.cmd(&[b"PTTL", b"t"])).unwrap();
    let ttl: i64 = ttl.trim_start_matches(':').trim().parse().unwrap();
    assert!(
        (90_000..=100_000).contains(&ttl),
        "PTTL after RESTORE: {ttl}"
    );
}

/// redis-benchmark's data-type tests against Ferrite: exit 0, every test reported, no errors.
fn datatypes_benchmark(backend: &str) {
    if !common::require_tool("redis-benchmark") {
        return;
    }
    let f = Ferrite::start_bin(&common::ferrite_release_bin(), backend, &["--threads", "2"]);
    let tests =
        "lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_300,lrange_600";
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-p", &f.port.to_string(), "-t", tests, "-n", "20000", "-q"]);
    let t0 = Instant::now();
    let out = common::run_with_timeout(&mut cmd, Duration::from_secs(300));
    let all = format!("{}{}", out.stdout, out.stderr);
    eprintln!(
        "redis-benchmark [{backend}] ({:.1} s):\n{all}",
        t0.elapsed().as_secs_f64()
    );
    let st = out
        .status
        .expect("redis-benchmark did not finish within 300 s");
    assert!(st.success(), "redis-benchmark exited with {st}:\n{all}");
    assert!(
        !all.contains("ERR") && !all.contains("error"),
        "redis-benchmark reported errors:\n{all}"
    );
    for t in [
        "LPUSH: ",
        "RPUSH: ",
        "LPOP: ",
        "RPOP: ",
        "SADD: ",
        "HSET: ",
        "SPOP: ",
        "ZADD: ",
        "ZPOPMIN: ",
        "LPUSH (needed to benchmark LRANGE): ",
        "LRANGE_100 (first 100 elements): ",
        "LRANGE_300 (first 300 elements): ",
        "LRANGE_600 (first 600 elements): ",
    ] {
        assert!(all.contains(t), "no result line for {t:?}:\n{all}");
    }
    // The server must still answer after the run.
    assert_eq!(f.conn().cmd_str(&["PING"]), b"+PONG\r\n");
}
